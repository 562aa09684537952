package engine

import (
	"strconv"
	"testing"

	"pgregory.net/rapid"
)

// TestReplayIsDeterministic: a log of writes (SPOP and the bulk
// conversions among them) replayed with the same per-command seeds gives
// the same keyspace on a DB with other local randomness, and on one
// restored midway from a snapshot of the first (its trees laid out
// differently: random picks must depend on content alone).
func TestReplayIsDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var log [][]string
		for i := rapid.IntRange(1, 80).Draw(t, "n"); i > 0; i-- {
			k := strconv.Itoa(rapid.IntRange(0, 2).Draw(t, "k"))
			n := rapid.IntRange(1, 300).Draw(t, "count")
			var elems []string
			for j := 0; j < n; j++ {
				elems = append(elems, "e"+strconv.Itoa(rapid.IntRange(0, 2000).Draw(t, "e")))
			}
			switch rapid.IntRange(0, 7).Draw(t, "op") {
			case 0:
				log = append(log, append([]string{"SADD", "s" + k}, elems...))
			case 1:
				log = append(log, []string{"SPOP", "s" + k, strconv.Itoa(rapid.IntRange(1, 50).Draw(t, "pop"))})
			case 2:
				log = append(log, []string{"SPOP", "s" + k})
			case 3:
				log = append(log, append([]string{"RPUSH", "l" + k}, elems...))
			case 4:
				var args []string
				for j, e := range elems {
					args = append(args, strconv.Itoa(j%7), e)
				}
				log = append(log, append([]string{"ZADD", "z" + k}, args...))
			case 5:
				log = append(log, []string{"SINTERSTORE", "d" + k, "s0", "s1"})
			case 6:
				log = append(log, []string{"ZPOPMIN", "z" + k, "3"})
			case 7:
				log = append(log, []string{"SMOVE", "s" + k, "s0", elems[0]})
			}
		}
		apply := func(db *DB, from, to int) {
			for i := from; i < to; i++ {
				var d Discard
				db.ExecSeeded(1, uint64(i)*7919, argvOf(log[i]...), &d)
			}
		}
		a := New(Options{Rand: &SplitMix64{state: 1}})
		apply(a, 0, len(log))
		b := New(Options{Rand: &SplitMix64{state: 2}})
		mid := rapid.IntRange(0, len(log)).Draw(t, "mid")
		apply(b, 0, mid)
		// c starts from a snapshot of b at mid.
		c := New(Options{Rand: &SplitMix64{state: 3}})
		ld := c.NewLoader(0)
		v := b.View()
		v.Ascend(func(e Entry) bool {
			for from, first := uint64(0), true; from < e.Units(); first = false {
				var p []byte
				p, from = e.AppendPiece(nil, from, 512)
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
		v.Release()
		if err := ld.Finish(); err != nil {
			t.Fatal(err)
		}
		apply(b, mid, len(log))
		apply(c, mid, len(log))
		want := collState(a.View().Ascend)
		if got := collState(b.View().Ascend); got != want {
			t.Fatal("same log, other Options.Rand: a different keyspace")
		}
		if got := collState(c.View().Ascend); got != want {
			t.Fatal("restored from a snapshot midway: a different keyspace")
		}
	})
}
