package engine

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

func TestSetCompare(t *testing.T) {
	runCompare(t, map[string]string{
		"basic": `
			SADD s a b c
			SADD s a d
			SCARD s
			SISMEMBER s a
			SISMEMBER s z
			SISMEMBER nokey a
			SMISMEMBER s a z b
			SMISMEMBER nokey a
			sort: SMEMBERS s
			SMEMBERS nokey
			SREM s a z
			SREM s z
			SREM nokey a
			sort: SMEMBERS s
			SREM s b c d
			EXISTS s
			SCARD nokey
			TYPE s
			SADD s x
			TYPE s
		`,
		"intset": `
			SADD i 3 1 2 -5 100000 9999999999
			SMEMBERS i
			OBJECT ENCODING i
			SISMEMBER i 100000
			SISMEMBER i 01
			SISMEMBER i abc
			SADD i 01
			SREM i 3 abc
			SCARD i
			SADD n 5
			SADD n 10 -1
			SMEMBERS n
			SREM n 5 10 -1
			EXISTS n
			` + "SADD big" + manyArgs(600, "%d") + `
			SCARD big
			OBJECT ENCODING big
			SISMEMBER big 599
			SISMEMBER big 600
		`,
		"errors": `
			SET str v
			SADD str a
			SREM str a
			SMEMBERS str
			SISMEMBER str a
			SMISMEMBER str a
			SCARD str
			SPOP str
			SPOP str 2
			SRANDMEMBER str
			SRANDMEMBER str 2
			SINTER str
			SUNION str
			SDIFF str
			SINTERSTORE d str
			SINTERCARD 1 str
			SSCAN str 0
			SADD s a
			SMOVE str s a
			SMOVE s str a
			SMOVE nokey str a
			SPOP s 1 2
			SRANDMEMBER s 1 2
			SPOP s -1
			SPOP s x
			SRANDMEMBER s x
			SRANDMEMBER s -9223372036854775808
			SADD
			SADD s
		`,
		"pop-rand": `
			SPOP nokey
			SPOP nokey 3
			SRANDMEMBER nokey
			SRANDMEMBER nokey 3
			SRANDMEMBER nokey -3
			SADD s 1 2 3
			SPOP s 0
			SRANDMEMBER s 0
			SRANDMEMBER s 3
			SRANDMEMBER s 5
			sort: SPOP s 5
			EXISTS s
			SADD t a b c
			sort: SRANDMEMBER t 10
			sort: SPOP t 3
			EXISTS t
			SADD u only
			SPOP u
			EXISTS u
			resp3: SPOP nokey 2
			resp3: SMEMBERS nokey
			SADD v 7 8 9
			resp3: SPOP v 9
			skip: SRANDMEMBER v
			skip: SRANDMEMBER v -5
			skip: SRANDMEMBER v 2
		`,
		"move": `
			SADD a 1 2 x
			SADD b 2 3
			SMOVE a b 1
			SMOVE a b 2
			SMOVE a b nope
			SMOVE a a x
			SMOVE a a nope
			sort: SMEMBERS a
			sort: SMEMBERS b
			SMOVE a c x
			EXISTS a
			SMEMBERS c
			SMOVE nokey b 1
		`,
		"algebra": `
			SADD a 1 2 3 4
			SADD b 3 4 5
			SADD c x y 3
			SINTER a b
			SINTER a b c
			SINTER a nokey
			SINTER a
			SUNION a b
			sort: SUNION a b c
			SUNION nokey
			SDIFF a b
			SDIFF a b c
			SDIFF a a
			SDIFF nokey a
			SDIFF a nokey
			SINTERSTORE d a b
			SMEMBERS d
			SINTERSTORE d a nokey
			EXISTS d
			SUNIONSTORE d a b
			SMEMBERS d
			OBJECT ENCODING d
			SDIFFSTORE d a b
			SMEMBERS d
			SDIFFSTORE d a a
			EXISTS d
			SET str v
			SUNIONSTORE str a
			TYPE str
			SUNIONSTORE a a b
			SMEMBERS a
			SINTERSTORE b b b
			SMEMBERS b
			SINTERCARD 2 a b
			SINTERCARD 2 a b LIMIT 1
			SINTERCARD 2 a b LIMIT 0
			SINTERCARD 1 a
			SINTERCARD 2 a nokey
			SINTERCARD 0 a
			SINTERCARD -1 a
			SINTERCARD x a
			SINTERCARD 3 a b
			SINTERCARD 1 a LIMIT -1
			SINTERCARD 1 a LIMIT x
			SINTERCARD 1 a BOGUS 1
			SINTERCARD 1 a LIMIT
			resp3: SINTER a b
			resp3: SUNION nokey
			resp3: SDIFF a nokey
		`,
		"scan": `
			SSCAN nokey 0
			SADD i 1 2 3
			SSCAN i 0
			SSCAN i 0 MATCH 2
			SADD s a b c
			sort: SMEMBERS s
			SSCAN s 0 COUNT 0
			SSCAN s x
		`,
		"large": `
			SADD big` + manyArgs(300, "member:%d") + `
			SCARD big
			SISMEMBER big member:150
			SISMEMBER big member:300
			SMISMEMBER big member:0 x member:299
			SREM big member:0 member:1 nope
			SCARD big
			SADD small member:5 member:77 other
			sort: SINTER big small
			SINTERCARD 2 big small
			SDIFF small big
			SUNIONSTORE u big small
			SCARD u
			SMOVE big small member:200
			SISMEMBER big member:200
			SCARD small
		`,
	})
}

// TestSetEncoding checks Redis 7.2's set encodings (7.0 has no listpack
// sets, so these are keel's own expectations, from 7.2's t_set.c).
func TestSetEncoding(t *testing.T) {
	db := newTestDB()
	check := func(cmd, want string) {
		t.Helper()
		args, _ := splitArgs(cmd)
		if got := exec(db, 1, args...); got != want {
			t.Fatalf("%s: %s, want %s", cmd, got, want)
		}
	}
	check("SADD i 3 1 2", ":3")
	check("OBJECT ENCODING i", `"intset"`)
	check("SADD i a", ":1")
	check("OBJECT ENCODING i", `"listpack"`)
	check("SMEMBERS i", `["1" "2" "3" "a"]`)
	check("SADD s b a", ":2")
	check("OBJECT ENCODING s", `"listpack"`)
	check("SMEMBERS s", `["b" "a"]`)
	check("SADD s "+strings.Repeat("x", 65), ":1")
	check("OBJECT ENCODING s", `"hashtable"`)
	check("SADD big"+manyArgs(129, "m%d"), ":129")
	check("OBJECT ENCODING big", `"hashtable"`)
	check("SADD lp"+manyArgs(128, "m%d"), ":128")
	check("OBJECT ENCODING lp", `"listpack"`)
	check("SADD lp one-more", ":1")
	check("OBJECT ENCODING lp", `"hashtable"`)
	check("SADD ints"+manyArgs(512, "%d"), ":512")
	check("OBJECT ENCODING ints", `"intset"`)
	check("SADD ints 1000", ":1")
	check("OBJECT ENCODING ints", `"hashtable"`)
	check("SADD ints2"+manyArgs(200, "%d"), ":200")
	check("SADD ints2 x", ":1")
	check("OBJECT ENCODING ints2", `"hashtable"`)
	check("SUNIONSTORE d lp", ":129")
	check("OBJECT ENCODING d", `"hashtable"`)
	check("SUNIONSTORE d2 i", ":4")
	check("OBJECT ENCODING d2", `"listpack"`)
}

// TestSPopDeterministic: SPOP's choices depend only on the set and the
// seed ExecSeeded is given, so replaying a log with the same seeds gives
// the same sets, whatever other randomness the DB drew (Options.Rand).
func TestSPopDeterministic(t *testing.T) {
	run := func(randSeed uint64) []string {
		db := New(Options{Rand: &SplitMix64{state: randSeed}})
		exec(db, 1, append([]string{"SADD", "s"}, strings.Fields(manyArgs(1000, "m%d"))...)...)
		exec(db, 1, append([]string{"SADD", "small"}, "a", "b", "c", "d", "e")...)
		exec(db, 1, "RANDOMKEY") // draws from Options.Rand, which differs
		var out []string
		for i := uint64(0); i < 20; i++ {
			var r recorder
			db.ExecSeeded(1, 1000+i, [][]byte{[]byte("SPOP"), []byte("s"), []byte("7")}, &r)
			out = append(out, r.String())
			r = recorder{}
			db.ExecSeeded(1, 2000+i, [][]byte{[]byte("SPOP"), []byte("small")}, &r)
			out = append(out, r.String())
		}
		var r recorder
		db.Exec(1, [][]byte{[]byte("SMEMBERS"), []byte("s")}, &r)
		return append(out, r.String())
	}
	a, b := run(1), run(99)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same log and seeds, different SPOPs:\n%v\n%v", a, b)
	}
	// Different seeds choose differently.
	db := newTestDB()
	exec(db, 1, append([]string{"SADD", "s"}, strings.Fields(manyArgs(1000, "m%d"))...)...)
	var r1, r2 recorder
	db.ExecSeeded(1, 1, [][]byte{[]byte("SRANDMEMBER"), []byte("s"), []byte("5")}, &r1)
	db.ExecSeeded(1, 2, [][]byte{[]byte("SRANDMEMBER"), []byte("s"), []byte("5")}, &r2)
	if r1.String() == r2.String() {
		t.Fatalf("seeds 1 and 2 picked the same: %s", r1.String())
	}
}

// TestSRandMemberSpread: picks are uniform over members, whatever the
// encoding.
func TestSRandMemberSpread(t *testing.T) {
	for _, n := range []int{10, 300} {
		db := newTestDB()
		exec(db, 1, append([]string{"SADD", "s"}, strings.Fields(manyArgs(n, "m%d"))...)...)
		counts := map[string]int{}
		const draws = 30000
		var r recorder
		db.Exec(1, [][]byte{[]byte("SRANDMEMBER"), []byte("s"), []byte(fmt.Sprint(-draws))}, &r)
		for _, tok := range strings.Fields(strings.Trim(r.String(), "[]")) {
			counts[tok]++
		}
		if len(counts) != n {
			t.Fatalf("%d members, %d seen", n, len(counts))
		}
		var cs []int
		for _, c := range counts {
			cs = append(cs, c)
		}
		sort.Ints(cs)
		mean := draws / n
		if cs[0] < mean/2 || cs[len(cs)-1] > mean*2 {
			t.Fatalf("uneven picks over %d members: min %d max %d (mean %d)", n, cs[0], cs[len(cs)-1], mean)
		}
	}
}
