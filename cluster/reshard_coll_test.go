package cluster

import (
	"fmt"
	"strings"
	"testing"
)

// TestReshardMovesLargeCollectionsInPieces moves a slot range holding a
// set of a million members (100,000 under -short), large lists, hashes
// and sorted sets, small collections and strings, with every step sent
// twice now and then (as after a lost reply): the collections too large
// for one piece move in pieces of movePieceBytes, one per
// MOVEKEYS/IMPORTKEYS/DELKEYS round, and arrive whole on every replica of
// the target.
func TestReshardMovesLargeCollectionsInPieces(t *testing.T) {
	members := 1_000_000
	if testing.Short() {
		members = 100_000
	}
	w := newShardWorld(t, 1<<40) // no snapshots: the move is the subject here
	moving := SlotRange{First: 0, Last: 8191}
	tag, _ := tagIn(moving.First, moving.Last)
	key := func(name string) string { return "{" + tag + "}" + name }
	batch := func(cmd string, n, per int, elem func(i int) string) {
		for i := 0; i < n; i += per {
			var b strings.Builder
			b.WriteString(cmd)
			for j := i; j < min(n, i+per); j++ {
				b.WriteByte(' ')
				b.WriteString(elem(j))
			}
			if got := w.client(b.String()); strings.HasPrefix(got, "-") {
				t.Fatalf("%.40s: %s", cmd, got)
			}
		}
	}
	batch("SADD "+key("bigset"), members, 2000, func(i int) string { return fmt.Sprintf("member:%d", i) })
	batch("RPUSH "+key("biglist"), 60000, 2000, func(i int) string { return fmt.Sprintf("element:%d", i) })
	batch("HSET "+key("bighash"), 40000, 1000, func(i int) string { return fmt.Sprintf("f%d v%d", i, i) })
	batch("ZADD "+key("bigzset"), 40000, 1000, func(i int) string { return fmt.Sprintf("%d m%d", i%1000, i) })
	for _, c := range []string{
		"SADD " + key("small") + " a b c", "HSET " + key("h") + " f v", "RPUSH " + key("l") + " x",
		"ZADD " + key("z") + " 1 m", "SET " + key("s") + " str", "SADD " + key("ints") + " 1 2 3",
		"PEXPIRE " + key("bighash") + " 36000000",
	} {
		if got := w.client(c); strings.HasPrefix(got, "-") {
			t.Fatalf("%s: %s", c, got)
		}
	}
	src := w.groups[1]
	before := dumpKeys(src.reps[src.waitLeader()], src.now)
	if len(before) != 10 {
		var names []string
		for k := range before {
			names = append(names, k)
		}
		t.Fatalf("%d keys before the move: %q", len(before), names)
	}
	m := NewReshard(moving, 1, 2, 100)
	rounds, partial := 0, false
	for steps := 0; steps < 10000; steps++ {
		gid, cmd, done := m.Next()
		if done {
			break
		}
		out := w.run(gid, Request{Argv: cmd})
		if steps%5 == 2 {
			out = w.run(gid, Request{Argv: cmd}) // a resend: every step is idempotent
		}
		if string(cmd[3]) == "MOVEKEYS" && len(out.arr) == 3 && strings.HasSuffix(string(out.arr[2]), ":1") {
			partial = true
			if len(out.arr[1]) > movePieceBytes+64<<10 {
				t.Fatalf("a piece of %d bytes", len(out.arr[1]))
			}
			// The collection being moved is locked at the source.
			if got := w.run(1, Request{Argv: argv("EXISTS " + string(out.arr[0]))}); !strings.HasPrefix(got.err, "TRYAGAIN") {
				t.Fatalf("a key moving in pieces answered %q", got.String())
			}
		}
		if string(cmd[3]) == "MOVEKEYS" {
			rounds++
		}
		m.Reply(out.err, out.arr)
	}
	if err := m.Err(); err != nil {
		t.Fatal(err)
	}
	if !partial || rounds < members/60000 {
		t.Fatalf("%d MOVEKEYS rounds, pieces seen %v: the large collections did not move in pieces", rounds, partial)
	}
	t.Logf("%d members: %d MOVEKEYS rounds", members, rounds)
	if m.Moved() != 10 {
		t.Fatalf("moved %d keys, want 10", m.Moved())
	}
	dst := w.groups[2]
	for _, id := range dst.ids {
		after := dumpKeys(dst.reps[id], dst.now)
		for k, v := range before {
			if after[k] != v {
				t.Fatalf("n%d of the target: key %s differs after the move (%d bytes, want %d)", id, k, len(after[k]), len(v))
			}
		}
	}
	for _, id := range src.ids {
		if left := dumpKeys(src.reps[id], src.now); len(left) != 0 {
			t.Fatalf("n%d of the source still holds %d keys", id, len(left))
		}
	}
	if got := w.client("SCARD " + key("bigset")); got != fmt.Sprintf(":%d", members) {
		t.Fatalf("SCARD after the move: %s", got)
	}
	if got := w.client("SISMEMBER " + key("bigset") + " member:4242"); got != ":1" {
		t.Fatalf("SISMEMBER after the move: %s", got)
	}
	if got := w.client("PTTL " + key("bighash")); got == ":-1" || got == ":-2" {
		t.Fatalf("the hash lost its TTL: %s", got)
	}
}
