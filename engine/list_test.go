package engine

import (
	"strings"
	"testing"
)

func TestListCompare(t *testing.T) {
	long := strings.Repeat("x", 5000)
	runCompare(t, map[string]string{
		"push-pop": `
			LPUSH l a b c
			RPUSH l d e
			LRANGE l 0 -1
			LLEN l
			LPOP l
			RPOP l
			LRANGE l 0 -1
			LPOP l 2
			RPOP l 5
			EXISTS l
			LPOP l
			LPOP l 2
			RPOP nokey
			RPOP nokey 0
			RPUSH l a b c
			LPOP l 0
			LPOP l -1
			LPOP l abc
			LPOP l 1 2
			RPOP l 10
			LPUSHX l a
			RPUSHX l a
			RPUSH l x
			LPUSHX l y z
			RPUSHX l w
			LRANGE l 0 -1
			resp3: LPOP nokey
			resp3: LPOP nokey 2
			resp3: LPOP l 2
		`,
		"range-index": `
			RPUSH l 0 1 2 3 4 5 6 7 8 9
			LRANGE l 0 0
			LRANGE l -3 -1
			LRANGE l 5 100
			LRANGE l 100 200
			LRANGE l -100 2
			LRANGE l 3 1
			LRANGE l -1 -3
			LRANGE l a 1
			LRANGE l 0 -9223372036854775808
			LRANGE l -9223372036854775808 9223372036854775807
			LRANGE nokey 0 -1
			LINDEX l 0
			LINDEX l -1
			LINDEX l 10
			LINDEX l -11
			LINDEX l x
			LINDEX nokey x
			LSET l 0 zero
			LSET l -1 nine
			LSET l 10 x
			LSET l x y
			LSET nokey 0 x
			LRANGE l 0 -1
		`,
		"insert-rem-trim": `
			RPUSH l a b c b a
			LINSERT l BEFORE b X
			LINSERT l AFTER a Y
			LINSERT l after nope Z
			LINSERT l middle a b
			LINSERT nokey BEFORE a b
			LRANGE l 0 -1
			LREM l 1 b
			LRANGE l 0 -1
			LREM l -1 a
			LRANGE l 0 -1
			RPUSH l a a a
			LREM l 0 a
			LRANGE l 0 -1
			LREM l 0 nope
			LREM l x a
			LREM nokey 0 a
			LREM l -9223372036854775808 b
			LRANGE l 0 -1
			RPUSH t 1 2 3 4 5 6
			LTRIM t 1 -2
			LRANGE t 0 -1
			LTRIM t 5 10
			EXISTS t
			LTRIM nokey 0 1
			LTRIM t x 1
		`,
		"lpos": `
			RPUSH l a b c 1 2 3 c c
			LPOS l c
			LPOS l c RANK 2
			LPOS l c RANK -1
			LPOS l c RANK -2
			LPOS l c COUNT 0
			LPOS l c COUNT 2
			LPOS l c RANK -1 COUNT 2
			LPOS l c MAXLEN 2
			LPOS l c MAXLEN 3 COUNT 0
			LPOS l nope
			LPOS l nope COUNT 1
			LPOS nokey a
			LPOS nokey a COUNT 1
			LPOS l c RANK 0
			LPOS l c RANK x
			LPOS l c RANK -9223372036854775808
			LPOS l c COUNT -1
			LPOS l c COUNT x
			LPOS l c MAXLEN -1
			LPOS l c BOGUS 1
			LPOS l c RANK
			LPOS l c RANK 10
		`,
		"move": `
			RPUSH src a b c
			LMOVE src dst LEFT RIGHT
			LMOVE src dst RIGHT LEFT
			LRANGE src 0 -1
			LRANGE dst 0 -1
			LMOVE src src LEFT RIGHT
			LRANGE src 0 -1
			LMOVE src dst LEFT LEFT
			EXISTS src
			LRANGE dst 0 -1
			LMOVE nokey dst LEFT LEFT
			LMOVE dst x UP LEFT
			LMOVE dst x LEFT DOWN
			SET s v
			LMOVE dst s LEFT LEFT
			LMOVE s dst LEFT LEFT
			LRANGE dst 0 -1
			RPOPLPUSH dst dst2
			RPOPLPUSH dst dst2
			RPOPLPUSH dst dst2
			RPOPLPUSH dst dst2
			LRANGE dst2 0 -1
			RPUSH one x
			LMOVE one one LEFT RIGHT
			LRANGE one 0 -1
		`,
		"lmpop": `
			RPUSH a 1 2 3
			RPUSH b 4 5
			LMPOP 2 nokey a LEFT
			LMPOP 2 nokey a RIGHT COUNT 10
			LMPOP 2 a b RIGHT COUNT 1
			LMPOP 1 nokey LEFT
			LMPOP 0 a LEFT
			LMPOP -1 a LEFT
			LMPOP x a LEFT
			LMPOP 3 a b LEFT
			LMPOP 1 a UP
			LMPOP 1 b LEFT COUNT 0
			LMPOP 1 b LEFT COUNT x
			LMPOP 1 b LEFT COUNT 1 COUNT 1
			LMPOP 1 b LEFT BOGUS
			SET s v
			LMPOP 2 s b LEFT
			LMPOP 2 b s LEFT
			resp3: LMPOP 1 b LEFT
			resp3: LMPOP 1 nokey LEFT
		`,
		"errors": `
			SET s v
			LPUSH s a
			RPUSH s a
			LPUSHX s a
			LPOP s
			LRANGE s 0 1
			LINDEX s 0
			LLEN s
			LSET s 0 a
			LINSERT s BEFORE a b
			LREM s 0 a
			LTRIM s 0 1
			LPOS s a
			LPUSH
			LPUSH l
			LRANGE l 0
		`,
		"large": `
			RPUSH big` + manyArgs(3000, "element:%d") + `
			LLEN big
			LINDEX big 1500
			LINDEX big -1
			LRANGE big 1000 1010
			LRANGE big -5 -1
			LSET big 2000 changed
			LINDEX big 2000
			LINSERT big BEFORE element:2500 inserted
			LINDEX big 2500
			LREM big 0 element:7
			LPOS big element:2999
			LPOS big inserted RANK -1
			LTRIM big 100 -100
			LLEN big
			LRANGE big 0 2
			LPOP big 3
			RPOP big 3
			LMOVE big other RIGHT LEFT
			LLEN big
			RPUSH big ` + long + `
			LLEN big
			LINDEX big -1
			RPOP big
			LTRIM big 0 9
			LRANGE big 0 -1
		`,
	})
}

// TestListEncoding checks the Redis 7.2 conversions (which 7.0 does not
// have: it reports quicklist for every list): a listpack while Redis's
// listpack would stay within 8 KiB, a quicklist past it, back to a
// listpack under half after removals.
func TestListEncoding(t *testing.T) {
	db := newTestDB()
	check := func(cmd, want string) {
		t.Helper()
		args, _ := splitArgs(cmd)
		if got := exec(db, 1, args...); got != want {
			t.Fatalf("%s: %s, want %s", cmd, got, want)
		}
	}
	check("RPUSH l a b c", ":3")
	check("OBJECT ENCODING l", `"listpack"`)
	// Redis's listpack: 7 bytes + 3 entries of 3 bytes; a push checks its
	// size plus the raw bytes pushed against 8192.
	check("RPUSH l "+strings.Repeat("x", 8192-16), ":4")
	check("OBJECT ENCODING l", `"listpack"`)
	check("RPUSH l xyz", ":5")
	check("OBJECT ENCODING l", `"quicklist"`)
	check("RPOP l 2", `["xyz" "`+strings.Repeat("x", 8192-16)+`"]`)
	check("OBJECT ENCODING l", `"listpack"`)
	check("LRANGE l 0 -1", `["a" "b" "c"]`)
	check("LPUSH big "+strings.Repeat("y", 9000), ":1")
	check("OBJECT ENCODING big", `"quicklist"`)
	check("LSET big 0 small", "+OK")
	check("OBJECT ENCODING big", `"listpack"`)
	check("RPUSH l2 a b c "+strings.Repeat("x", 8192-7-3), ":4")
	check("OBJECT ENCODING l2", `"listpack"`)
	check("RPUSH l3 a b c "+strings.Repeat("x", 8192-7-3+1), ":4")
	check("OBJECT ENCODING l3", `"quicklist"`)
}
