package cluster

import "github.com/keel-db/keel/engine"

// This file maps keys and commands to Redis Cluster's hash slots
// (docs/cluster.md). The rules are Redis's, byte for byte, so that a
// client library computing slots itself (go-redis, redis-cli -c after a
// -MOVED) agrees with the server: CRC16/XMODEM of the key, or of its hash
// tag, modulo 16384. Everything here runs on every routed command, so it
// does not allocate.

// SlotCount is the number of hash slots, as in Redis Cluster.
const SlotCount = 16384

// CrossSlotMsg is Redis's error for a request whose keys hash to more than
// one slot.
const CrossSlotMsg = "CROSSSLOT Keys in request don't hash to the same slot"

// crc16Table is the CRC16-CCITT (XMODEM) table of Redis's crc16.c:
// polynomial 0x1021, initial value 0, no reflection, no final xor.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// crc16 is Redis's crc16(): CRC16/XMODEM of b.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^c]
	}
	return crc
}

// KeySlot is the hash slot of key, exactly as Redis's keyHashSlot: when
// the key holds a '{' followed later by a '}' with at least one byte
// between them, only the bytes between the first '{' and the first '}'
// after it are hashed (the hash tag); otherwise the whole key is.
func KeySlot(key []byte) int {
	for s, c := range key {
		if c != '{' {
			continue
		}
		for e := s + 1; e < len(key); e++ {
			if key[e] == '}' {
				if e == s+1 { // "{}": an empty tag hashes the whole key
					break
				}
				return int(crc16(key[s+1:e]) & (SlotCount - 1))
			}
		}
		break // only the first '{' counts
	}
	return int(crc16(key) & (SlotCount - 1))
}

// CommandSlot is the slot every key of the command argv hashes to. It is
// -1 with no message when the command has no keys, and also when the
// engine does not know it or its arity is wrong: the engine (or the
// function host, for FCALL) then answers with its own error, wherever the
// command runs. Keys in different slots give -1 and CrossSlotMsg.
func CommandSlot(argv [][]byte) (slot int, errMsg string) {
	if len(argv) == 0 {
		return -1, ""
	}
	if functionKind(argv) == fnCall {
		return fcallSlot(argv)
	}
	c := engine.Lookup(argv[0])
	if c == nil || !c.ArityOK(len(argv)) {
		return -1, ""
	}
	if c.MovableKeys() {
		// Keys after a numkeys argument (ZUNIONSTORE, LMPOP, ...): all of
		// them must share the slot, not only the ones the key spec names.
		slot = -1
		for _, i := range c.Keys(argv) {
			if slot, errMsg = mergeSlot(slot, KeySlot(argv[i])); errMsg != "" {
				return -1, errMsg
			}
		}
		return slot, ""
	}
	if c.FirstKey <= 0 {
		return -1, ""
	}
	// The same walk as (*engine.Command).Keys, without the slice it
	// returns: a GET or SET must route without allocating.
	last := c.LastKey
	if last < 0 {
		last += len(argv)
	}
	step := max(c.Step, 1)
	slot = -1
	for i := c.FirstKey; i <= last && i < len(argv); i += step {
		if slot, errMsg = mergeSlot(slot, KeySlot(argv[i])); errMsg != "" {
			return -1, errMsg
		}
	}
	return slot, ""
}

// TxnSlot is CommandSlot across all the commands queued in a MULTI: a
// transaction runs on one replica group, so all its keys share one slot.
func TxnSlot(cmds [][][]byte) (slot int, errMsg string) {
	slot = -1
	for _, argv := range cmds {
		s, msg := CommandSlot(argv)
		if msg != "" {
			return -1, msg
		}
		if s < 0 {
			continue
		}
		if slot, errMsg = mergeSlot(slot, s); errMsg != "" {
			return -1, errMsg
		}
	}
	return slot, ""
}

// mergeSlot folds slot s into the slot seen so far (-1: none yet).
func mergeSlot(seen, s int) (int, string) {
	if seen >= 0 && seen != s {
		return -1, CrossSlotMsg
	}
	return s, ""
}

// fcallSlot routes FCALL/FCALL_RO name numkeys key... arg...: the keys
// are the numkeys arguments after numkeys. A numkeys that udf.ParseFCall
// would refuse (not an integer, negative, more than the arguments left)
// gives -1 and no message, so the function path answers Redis's error.
func fcallSlot(argv [][]byte) (int, string) {
	if len(argv) < 3 {
		return -1, ""
	}
	rest := argv[3:]
	n, ok := parseNumKeys(argv[2], len(rest))
	if !ok {
		return -1, ""
	}
	slot := -1
	for _, key := range rest[:n] {
		var msg string
		if slot, msg = mergeSlot(slot, KeySlot(key)); msg != "" {
			return -1, msg
		}
	}
	return slot, ""
}

// parseNumKeys parses a base-10 key count the way strconv.ParseInt does
// (an optional sign, then digits) and accepts it only when it lies in
// [0, limit]. It does not allocate, unlike strconv on a []byte.
func parseNumKeys(b []byte, limit int) (int, bool) {
	if len(b) > 0 && b[0] == '+' {
		b = b[1:]
	} else if len(b) > 1 && b[0] == '-' {
		// "-0" is zero keys; any other negative count is refused.
		for _, c := range b[1:] {
			if c != '0' {
				return 0, false
			}
		}
		return 0, true
	}
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > limit {
			return 0, false
		}
	}
	return n, true
}
