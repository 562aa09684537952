package engine

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// replyCounter checks the Writer contract: exactly one top-level reply,
// aggregates followed by exactly their elements.
type replyCounter struct {
	top     int
	pending []int
}

func (c *replyCounter) elem() {
	if len(c.pending) == 0 {
		c.top++
		return
	}
	for len(c.pending) > 0 {
		c.pending[len(c.pending)-1]--
		if c.pending[len(c.pending)-1] > 0 {
			return
		}
		c.pending = c.pending[:len(c.pending)-1]
	}
}

func (c *replyCounter) open(n int) {
	if n == 0 {
		c.elem()
		return
	}
	// A nested aggregate counts as its parent's element when it closes
	// (elem pops finished levels and decrements the parent then).
	if len(c.pending) == 0 {
		c.top++
	}
	c.pending = append(c.pending, n)
}

func (c *replyCounter) WriteSimple(string)     { c.elem() }
func (c *replyCounter) WriteError(string)      { c.elem() }
func (c *replyCounter) WriteInt(int64)         { c.elem() }
func (c *replyCounter) WriteBulk([]byte)       { c.elem() }
func (c *replyCounter) WriteBulkString(string) { c.elem() }
func (c *replyCounter) WriteNull()             { c.elem() }
func (c *replyCounter) WriteArray(n int)       { c.open(n) }
func (c *replyCounter) WriteNullArray()        { c.elem() }
func (c *replyCounter) WriteDouble(float64)    { c.elem() }
func (c *replyCounter) WriteMap(n int)         { c.open(2 * n) }
func (c *replyCounter) WriteSet(n int)         { c.open(n) }

// TestAnyArgs throws random arguments at every command: no panic, exactly
// one well-formed reply each time, and the indexes stay consistent.
func TestAnyArgs(t *testing.T) {
	var names []string
	for _, c := range Commands() {
		names = append(names, c.Name)
	}
	tokens := []string{
		"k", "k2", "user:1", "", "0", "1", "-1", "10", "1.5", "abc", "inf", "nan", "1e400",
		"9223372036854775807", "-9223372036854775808", "18446744073709551616", "536870911",
		"NX", "XX", "GT", "LT", "EX", "PX", "EXAT", "PXAT", "KEEPTTL", "GET", "PERSIST",
		"MATCH", "COUNT", "TYPE", "REPLACE", "DB", "SYNC", "ASYNC", "*", "[", "\\", "k*", "string",
		// Collections' options and arguments.
		"WITHSCORES", "WITHSCORE", "BYSCORE", "BYLEX", "REV", "LIMIT", "LEFT", "RIGHT", "MIN", "MAX",
		"WEIGHTS", "AGGREGATE", "SUM", "BEFORE", "AFTER", "RANK", "MAXLEN", "CH", "INCR", "WITHVALUES",
		"IDX", "LEN", "MINMATCHLEN", "WITHMATCHLEN", "BIT", "BYTE", "OVERFLOW", "WRAP", "SAT", "FAIL",
		"i8", "u4", "i64", "#1", "(1", "[a", "(a", "-", "+", "(", "ENCODING", "HELP", "2", "3", "-2",
		"AND", "OR", "NOT", "SET", "INCRBY", "list", "hash", "zset", "set",
	}
	rapid.Check(t, func(t *rapid.T) {
		db := newTestDB()
		now := int64(1_000_000)
		for i := rapid.IntRange(1, 60).Draw(t, "n"); i > 0; i-- {
			argv := [][]byte{[]byte(rapid.SampledFrom(names).Draw(t, "cmd"))}
			for j := rapid.IntRange(0, 9).Draw(t, "argc"); j > 0; j-- {
				argv = append(argv, []byte(rapid.SampledFrom(tokens).Draw(t, "arg")))
			}
			now += int64(rapid.IntRange(0, 2000).Draw(t, "dt"))
			var c replyCounter
			db.Exec(now, argv, &c)
			if c.top != 1 || len(c.pending) != 0 {
				t.Fatalf("%q: %d top-level replies, %d unfinished aggregates", argv, c.top, len(c.pending))
			}
			if rapid.IntRange(0, 9).Draw(t, "expire") == 0 {
				db.ActiveExpire(now, 10)
			}
		}
		checkWheel(t, db)
		db.tree.ascend(func(r ref) bool {
			checkValueTrees(t, &db.s.slabDirs, db.rec(r))
			return true
		})
	})
}

// FuzzCollections runs command lines (one per line, words split on
// spaces) against a keyspace holding every collection type in both
// encodings: no panic, exactly one well-formed reply per command, sound
// trees. go test -run '^$' -fuzz FuzzCollections -fuzztime 30s ./engine
func FuzzCollections(f *testing.F) {
	for _, seed := range []string{
		"ZADD z 1 a\nZRANGE z (1 +inf BYSCORE REV LIMIT 0 1 WITHSCORES",
		"LPOS big element:7 RANK -1 COUNT 0 MAXLEN 10\nLINSERT big AFTER element:3 x",
		"BITFIELD b OVERFLOW SAT INCRBY i8 #3 100 GET u4 0\nBITPOS b 0 1 -1 BIT",
		"ZUNIONSTORE d 3 zbig sbig nokey WEIGHTS 1 2 3 AGGREGATE MAX\nZINTERCARD 2 zbig sbig LIMIT 5",
		"SPOP sbig 7\nSRANDMEMBER sbig -3\nSINTERSTORE d sbig s",
		"HRANDFIELD hbig -5 WITHVALUES\nHSCAN hbig 0 MATCH f1* COUNT 3",
		"LCS a b IDX MINMATCHLEN 2 WITHMATCHLEN\nLMPOP 2 big l RIGHT COUNT 3",
	} {
		f.Add(seed)
	}
	base := newTestDB()
	exec(base, 1, "SET", "a", "ohmytext")
	exec(base, 1, "SET", "b", "mynewtext")
	exec(base, 1, "ZADD", "z", "1", "x", "2", "y")
	exec(base, 1, "SADD", "s", "1", "2", "x")
	exec(base, 1, "RPUSH", "l", "a", "b", "c")
	exec(base, 1, "HSET", "h", "f", "v")
	for i := 0; i < 600; i++ {
		exec(base, 1, "RPUSH", "big", fmt.Sprintf("element:%d", i))
		exec(base, 1, "SADD", "sbig", fmt.Sprintf("m%d", i))
		exec(base, 1, "HSET", "hbig", fmt.Sprintf("f%d", i), "v")
		exec(base, 1, "ZADD", "zbig", fmt.Sprint(i%13), fmt.Sprintf("m%d", i))
	}
	v := base.View()
	defer v.Release()
	f.Fuzz(func(t *testing.T, script string) {
		if len(script) > 4096 {
			return
		}
		// Small strings only: SETBIT at bit 2^32 would build 512 MB.
		db := New(Options{Rand: &SplitMix64{}, ProtoMaxBulkLen: 1 << 20})
		ld := db.NewLoader(0)
		v.Ascend(func(e Entry) bool {
			for from, first := uint64(0), true; from < e.Units(); first = false {
				var p []byte
				p, from = e.AppendPiece(nil, from, 1<<20)
				pe := Entry{Type: e.Type, Key: e.Key, Value: p, ExpireAt: e.ExpireAt}
				if !first {
					pe.Type |= TypeContinued
				}
				if err := ld.Add(pe); err != nil {
					t.Fatal(err)
				}
			}
			return true
		})
		if err := ld.Finish(); err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(script, "\n") {
			if i == 40 {
				break
			}
			words := strings.Fields(line)
			if len(words) == 0 {
				continue
			}
			argv := make([][]byte, len(words))
			for j, w := range words {
				// Huge counts (a million random picks) only make runs slow.
				if n, err := strconv.ParseInt(w, 10, 64); err == nil && (n > 100000 || n < -100000) {
					w = "100"
				}
				argv[j] = []byte(w)
			}
			var c replyCounter
			db.ExecSeeded(2, uint64(i), argv, &c)
			if c.top != 1 || len(c.pending) != 0 {
				t.Fatalf("%q: %d top-level replies, %d unfinished aggregates", argv, c.top, len(c.pending))
			}
		}
		db.tree.ascend(func(r ref) bool {
			checkValueTrees(t, &db.s.slabDirs, db.rec(r))
			return true
		})
	})
}
