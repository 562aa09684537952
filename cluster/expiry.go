package cluster

import (
	"bytes"
	"math"
	"strconv"
)

// Relative times to live become absolute deadlines before they are
// logged in a replicated group, as Redis propagates PEXPIREAT and SET
// PXAT to its replicas and AOF.
//
// Why: the engine computes a relative TTL from its own clock, which is
// the latest time it has seen (engine.DB.Exec), and every replica also
// advances that clock with its own ticks (active expiry) and the reads it
// serves. A follower behind the leader, or with a faster clock, applies
// "SET k v PX 1000" logged at 10:00:00.000 at, say, 10:00:00.700 of its
// engine clock and stores a deadline 700 ms later than the leader's; so
// does the leader itself when a read or a tick ran between the proposal
// and the apply, and replay after a restart gives yet another deadline.
// After a failover, clients see a TTL later than any write set
// (cluster-reshard-ttl found it). With the deadline in the log, every
// replica, and every replay, stores the same one.
//
// Only writes whose relative time parses and is valid are rewritten: an
// invalid one is logged as sent and fails alike everywhere, with its own
// command's error.

// absoluteExpiry returns argv with a relative TTL (SET EX/PX, SETEX,
// PSETEX, GETEX EX/PX, EXPIRE, PEXPIRE) made the absolute deadline it
// has at ms (the entry's time), or argv itself when there is none.
func absoluteExpiry(ms int64, argv [][]byte) [][]byte {
	if len(argv) < 3 {
		return argv
	}
	name := argv[0]
	switch {
	case eqFoldASCII(name, "set") && len(argv) >= 5, eqFoldASCII(name, "getex"):
		start := 3
		if eqFoldASCII(name, "getex") {
			start = 2
		}
		at := -1       // index of the EX/PX option
		other := false // EXAT, PXAT, KEEPTTL or PERSIST seen
		for j := start; j < len(argv); j++ {
			switch {
			case eqFoldASCII(argv[j], "ex"), eqFoldASCII(argv[j], "px"):
				if at >= 0 || j+1 >= len(argv) {
					return argv // a syntax error: the engine says so
				}
				at = j
				j++
			case eqFoldASCII(argv[j], "exat"), eqFoldASCII(argv[j], "pxat"):
				other = true
				j++
			case eqFoldASCII(argv[j], "keepttl"), eqFoldASCII(argv[j], "persist"):
				other = true
			}
		}
		if at < 0 || other {
			return argv // nothing relative, or a syntax error
		}
		deadline, ok := deadlineOf(ms, argv[at+1], eqFoldASCII(argv[at], "ex"))
		if !ok {
			return argv
		}
		out := append([][]byte(nil), argv...)
		out[at], out[at+1] = []byte("PXAT"), deadline
		return out
	case (eqFoldASCII(name, "setex") || eqFoldASCII(name, "psetex")) && len(argv) == 4:
		deadline, ok := deadlineOf(ms, argv[2], eqFoldASCII(name, "setex"))
		if !ok {
			return argv
		}
		return [][]byte{[]byte("SET"), argv[1], argv[3], []byte("PXAT"), deadline}
	case eqFoldASCII(name, "expire") || eqFoldASCII(name, "pexpire"):
		when, err := strconv.ParseInt(string(argv[2]), 10, 64)
		if err != nil || strconv.FormatInt(when, 10) != string(argv[2]) {
			return argv
		}
		if eqFoldASCII(name, "expire") {
			if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
				return argv
			}
			when *= 1000
		}
		if when > math.MaxInt64-ms || when < math.MinInt64+ms {
			return argv
		}
		out := append([][]byte{[]byte("PEXPIREAT"), argv[1], []byte(strconv.FormatInt(ms+when, 10))}, argv[3:]...)
		return out
	}
	return argv
}

// deadlineOf is ms plus a positive relative time (seconds or
// milliseconds), as SET and GETEX accept it; false for anything they
// would refuse.
func deadlineOf(ms int64, arg []byte, seconds bool) ([]byte, bool) {
	d, err := strconv.ParseInt(string(arg), 10, 64)
	if err != nil || d <= 0 || strconv.FormatInt(d, 10) != string(arg) {
		return nil, false
	}
	if seconds {
		if d > math.MaxInt64/1000 {
			return nil, false
		}
		d *= 1000
	}
	if d > math.MaxInt64-ms {
		return nil, false
	}
	return []byte(strconv.FormatInt(ms+d, 10)), true
}

func eqFoldASCII(b []byte, s string) bool { return len(b) == len(s) && bytes.EqualFold(b, []byte(s)) }
