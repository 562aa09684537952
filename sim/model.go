package sim

import (
	"sort"
	"strconv"
	"strings"
)

// kv is one key in the reference model: a string value and an absolute
// expiry in Unix milliseconds (0: none).
type kv struct {
	val string
	exp int64
}

// state is the reference keyspace. Small by design (workloads use a few
// dozen keys), so copying it is cheap.
type state map[string]kv

func (s state) clone() state {
	c := make(state, len(s))
	for k, v := range s {
		c[k] = v
	}
	return c
}

// alive follows Redis: a key expires when now > when, so at now == when it
// is still there.
func (s state) get(key string, nowMs int64) (kv, bool) {
	v, ok := s[key]
	if !ok || (v.exp != 0 && nowMs > v.exp) {
		return kv{}, false
	}
	return v, true
}

type mutation struct {
	key string
	del bool
	v   kv
}

func (s state) apply(muts []mutation) {
	for _, m := range muts {
		if m.del {
			delete(s, m.key)
		} else {
			s[m.key] = m.v
		}
	}
}

// expectation is what the model predicts for one command.
type expectation struct {
	reply Reply
	// scan: reply is checked as a SCAN page against alive keys instead of
	// compared exactly.
	scan  bool
	alive []string
	write bool
	muts  []mutation
	// orNull: a null reply is also right, and then nothing was written
	// (an EXEC under WATCH: the model does not track key versions).
	orNull bool
}

var (
	okReply   = Reply{Kind: '+', Str: "OK"}
	nullReply = Reply{Kind: '_'}
)

func errReply(s string) Reply  { return Reply{Kind: '-', Str: s} }
func intReply(n int64) Reply   { return Reply{Kind: ':', Int: n} }
func bulkReply(s string) Reply { return Reply{Kind: '$', Str: s} }
func isCanonicalInt(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != s {
		return 0, false
	}
	return n, true
}

// predict runs argv against s at nowMs without changing s. It models
// exactly the commands the workload and the recovery probe send.
func predict(s state, nowMs int64, argv []string) expectation {
	if _, ok := txnCommands(argv); ok {
		return predictTxn(s, nowMs, argv)
	}
	name := strings.ToLower(argv[0])
	switch name {
	case "get":
		if v, ok := s.get(argv[1], nowMs); ok {
			return expectation{reply: bulkReply(v.val)}
		}
		return expectation{reply: nullReply}
	case "mget":
		r := Reply{Kind: '*'}
		for _, k := range argv[1:] {
			if v, ok := s.get(k, nowMs); ok {
				r.Elems = append(r.Elems, bulkReply(v.val))
			} else {
				r.Elems = append(r.Elems, nullReply)
			}
		}
		return expectation{reply: r}
	case "pttl":
		v, ok := s.get(argv[1], nowMs)
		switch {
		case !ok:
			return expectation{reply: intReply(-2)}
		case v.exp == 0:
			return expectation{reply: intReply(-1)}
		}
		return expectation{reply: intReply(max(v.exp-nowMs, 0))}
	case "set":
		key, val := argv[1], argv[2]
		var nx, xx bool
		var exp int64
		for i := 3; i < len(argv); i++ {
			switch strings.ToLower(argv[i]) {
			case "nx":
				nx = true
			case "xx":
				xx = true
			case "ex":
				n, _ := strconv.ParseInt(argv[i+1], 10, 64)
				exp = nowMs + n*1000
				i++
			case "px":
				n, _ := strconv.ParseInt(argv[i+1], 10, 64)
				exp = nowMs + n
				i++
			}
		}
		_, exists := s.get(key, nowMs)
		if (nx && exists) || (xx && !exists) {
			return expectation{reply: nullReply, write: true}
		}
		return expectation{reply: okReply, write: true, muts: []mutation{{key: key, v: kv{val: val, exp: exp}}}}
	case "del":
		e := expectation{write: true}
		var n int64
		seen := map[string]bool{}
		for _, k := range argv[1:] {
			if _, ok := s.get(k, nowMs); ok && !seen[k] {
				n++
			}
			seen[k] = true
			e.muts = append(e.muts, mutation{key: k, del: true})
		}
		e.reply = intReply(n)
		return e
	case "incrby":
		delta, _ := strconv.ParseInt(argv[2], 10, 64)
		var cur int64
		var exp int64
		if v, ok := s.get(argv[1], nowMs); ok {
			n, ok := isCanonicalInt(v.val)
			if !ok {
				return expectation{reply: errReply("ERR value is not an integer or out of range"), write: true}
			}
			cur, exp = n, v.exp
		}
		if (delta > 0 && cur > 1<<63-1-delta) || (delta < 0 && cur < -1<<63-delta) {
			return expectation{reply: errReply("ERR increment or decrement would overflow"), write: true}
		}
		n := cur + delta
		return expectation{reply: intReply(n), write: true,
			muts: []mutation{{key: argv[1], v: kv{val: strconv.FormatInt(n, 10), exp: exp}}}}
	case "expire":
		secs, _ := strconv.ParseInt(argv[2], 10, 64)
		v, ok := s.get(argv[1], nowMs)
		if !ok {
			return expectation{reply: intReply(0), write: true}
		}
		if secs <= 0 {
			return expectation{reply: intReply(1), write: true, muts: []mutation{{key: argv[1], del: true}}}
		}
		v.exp = nowMs + secs*1000
		return expectation{reply: intReply(1), write: true, muts: []mutation{{key: argv[1], v: v}}}
	case "scan":
		var alive []string
		for k := range s {
			if _, ok := s.get(k, nowMs); ok {
				alive = append(alive, k)
			}
		}
		sort.Strings(alive)
		return expectation{scan: true, alive: alive}
	}
	if name == "fcall" || name == "fcall_ro" || name == "function" {
		return predictFunction(s, nowMs, argv)
	}
	return expectation{reply: errReply("ERR the simulator's model does not know " + name)}
}

// check compares a reply with the expectation; "" means it matches.
// Errors match on their code (first word): messages may be worded
// differently from Redis's.
func (e expectation) check(r Reply) string {
	if e.scan {
		return checkScan(e.alive, r)
	}
	if e.orNull && r.Kind == '_' {
		return ""
	}
	if sameReply(e.reply, r) {
		return ""
	}
	return "want " + e.reply.String() + ", got " + r.String()
}

func sameReply(a, b Reply) bool {
	if a.Kind == '-' || b.Kind == '-' {
		return a.Kind == b.Kind && errCode(a.Str) == errCode(b.Str)
	}
	if a.Kind != b.Kind || a.Str != b.Str || a.Int != b.Int || len(a.Elems) != len(b.Elems) {
		return false
	}
	for i := range a.Elems {
		if !sameReply(a.Elems[i], b.Elems[i]) {
			return false
		}
	}
	return true
}

func errCode(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}

// checkScan accepts one SCAN page: every key returned is alive, and a page
// that ends the iteration (cursor "0") returned every alive key.
func checkScan(alive []string, r Reply) string {
	if r.Kind != '*' || len(r.Elems) != 2 || r.Elems[0].Kind != '$' || r.Elems[1].Kind != '*' {
		return "want [cursor [keys...]], got " + r.String()
	}
	live := map[string]bool{}
	for _, k := range alive {
		live[k] = true
	}
	got := map[string]bool{}
	for _, e := range r.Elems[1].Elems {
		if e.Kind != '$' || !live[e.Str] {
			return "SCAN returned " + e.String() + ", which is not a live key (live: " + strings.Join(alive, ",") + ")"
		}
		got[e.Str] = true
	}
	if r.Elems[0].Str == "0" && len(got) != len(live) {
		return "SCAN ended (cursor 0) without returning every live key: got " + r.String() + ", live " + strings.Join(alive, ",")
	}
	return ""
}
