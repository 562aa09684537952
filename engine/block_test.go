package engine

import (
	"testing"
)

// TestBlockingCompare runs the blocking pops without blocking, as the
// engine always does (what Redis does inside MULTI): served at once when
// a key holds elements, null when none does. Redis beside it blocks on an
// empty key, so those lines use a 10 ms timeout and see Redis's null
// after it; argument errors come before any wait.
func TestBlockingCompare(t *testing.T) {
	runCompare(t, map[string]string{
		"list": `
			RPUSH l a b c d e
			RPUSH m x
			BLPOP nope l m 0
			BRPOP nope l m 0
			resp3: BLPOP l 0
			BLPOP l 0
			BLPOP nope l m 0.01
			BLPOP nope 0.01
			resp3: BRPOP nope 0.01
			BRPOPLPUSH m d 0
			LRANGE d 0 -1
			# Redis answers a timeout with a null array but an empty
			# source inside MULTI with a null bulk, which is what the
			# engine's answer is (the node answers timeouts).
			keel=(nil): BRPOPLPUSH m d 0.01
			RPUSH s1 1 2 3
			BLMOVE s1 s1 LEFT RIGHT 0
			LRANGE s1 0 -1
			BLMOVE s1 d2 RIGHT LEFT 5
			keel=(nil): BLMOVE nope d2 RIGHT LEFT 0.01
			resp3: BLMOVE nope d2 RIGHT LEFT 0.01
			BLMPOP 0 2 nope s1 LEFT COUNT 5
			RPUSH s1 1 2 3
			BLMPOP 0 1 s1 RIGHT
			resp3: BLMPOP 0.5 1 s1 RIGHT COUNT 2
			BLMPOP 0.01 1 s1 RIGHT
		`,
		"zset": `
			ZADD z 1 a 2 b 3 c
			ZADD y 5 q
			BZPOPMIN nope z y 0
			BZPOPMAX nope z y 0
			resp3: BZPOPMIN z 0
			resp3: BZPOPMAX y 0
			BZPOPMIN nope z y 0.01
			resp3: BZPOPMAX nope 0.01
			ZADD z 1 a 2 b 3 c 4 d
			BZMPOP 0 2 nope z MIN COUNT 2
			resp3: BZMPOP 0 2 nope z MAX COUNT 5
			BZMPOP 0.01 1 z MAX
		`,
		"errors": `
			SET str x
			BLPOP str 0
			BLPOP nope str 0
			BRPOP l abc
			BLPOP l -1
			BLPOP l -0.5
			BLPOP l 1e16
			BLPOP l inf
			BLPOP l -inf
			BLPOP l nan
			BLPOP l " 1"
			BLPOP l
			BRPOPLPUSH str d 0
			BRPOPLPUSH l d -1
			RPUSH l a
			BRPOPLPUSH l str 0
			BLMOVE l d UP LEFT -1
			BLMOVE l d LEFT DOWN 0
			BLMOVE l d LEFT LEFT x
			BLMPOP x 1 l LEFT
			BLMPOP -1 1 l LEFT
			BLMPOP 0 0 l LEFT
			BLMPOP 0 -1 l LEFT
			BLMPOP 0 2 l LEFT
			BLMPOP 0 1 l UP
			BLMPOP 0 1 l LEFT COUNT 0
			BLMPOP 0 1 l LEFT COUNT 1 COUNT 2
			BLMPOP 0 1 l LEFT junk
			BLMPOP 0 1 str LEFT
			BLMPOP 0 1 l
			BZPOPMIN str 0
			BZPOPMAX l 0
			BZPOPMIN z abc
			BZMPOP 0 1 z SIDEWAYS
			BZMPOP 0 1 l MIN
			BZMPOP -2 1 z MIN
			BZMPOP 0 1 z MIN COUNT -3
		`,
	})
}

func TestParseBlockingTimeout(t *testing.T) {
	for _, c := range []struct {
		arg  string
		ms   int64
		err  string
		keys int
	}{
		{"0", 0, "", 1}, {"1.5", 1500, "", 1}, {"0.0001", 0, "", 1}, {"-0.0001", 0, "", 1},
		{"0x10", 16000, "", 1}, {"2e0", 2000, "", 1}, {"-1", 0, errTimeoutNegative, 1},
		{"1e16", 0, errTimeoutNegative, 1}, {"inf", 0, errTimeoutNegative, 1},
		{"x", 0, errTimeoutFloat, 1}, {"", 0, errTimeoutFloat, 1},
	} {
		bp, msg := ParseBlocking([][]byte{[]byte("BLPOP"), []byte("k"), []byte(c.arg)})
		if msg != c.err || (msg == "" && (bp.TimeoutMillis != c.ms || len(bp.Keys) != c.keys)) {
			t.Errorf("BLPOP k %q: %d %q, want %d %q", c.arg, bp.TimeoutMillis, msg, c.ms, c.err)
		}
	}
	bp, msg := ParseBlocking([][]byte{[]byte("bzmpop"), []byte("2"), []byte("2"), []byte("a"), []byte("b"), []byte("MIN")})
	if msg != "" || len(bp.Keys) != 2 || string(bp.Keys[1]) != "b" || bp.Type != TypeZSet || string(bp.Pop[0]) != "ZMPOP" || bp.TimeoutMillis != 2000 {
		t.Errorf("BZMPOP: %+v %q", bp, msg)
	}
}
