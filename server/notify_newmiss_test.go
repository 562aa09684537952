package server

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// nextEvents reads the next n pub/sub messages (bounded waits, see receive)
// as "channel payload" lines, so a test can assert both what arrived and,
// through a later marker event, that nothing came in between.
func nextEvents(t *testing.T, ps *redis.PubSub, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		m := receive(t, ps)
		out[i] = m.Channel + " " + m.Payload
	}
	return out
}

func expectEvents(t *testing.T, ps *redis.PubSub, want ...string) {
	t.Helper()
	got := nextEvents(t, ps, len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events = %q, want %q", got, want)
		}
	}
}

// TestKeyspaceNewAndKeyMiss: 'n' raises "new" when a key is created (not
// when it is overwritten) and 'm' raises "keymiss" when a read finds no
// key; 'A' includes neither, as in Redis 7.
func TestKeyspaceNewAndKeyMiss(t *testing.T) {
	ts := startServer(t, Config{})
	rdb := ts.client(t, nil)
	sub := ts.client(t, nil)
	ps := sub.PSubscribe(ctx(), "__key*__:*")
	defer ps.Close()
	if _, err := ps.Receive(ctx()); err != nil {
		t.Fatal(err)
	}
	config := func(flags string) {
		t.Helper()
		if err := rdb.ConfigSet(ctx(), "notify-keyspace-events", flags).Err(); err != nil {
			t.Fatal(err)
		}
	}

	config("KEn")
	if v, _ := rdb.ConfigGet(ctx(), "notify-keyspace-events").Result(); v["notify-keyspace-events"] != "KEn" {
		t.Fatalf("CONFIG GET = %v", v)
	}
	rdb.Set(ctx(), "fresh", "1", 0)
	expectEvents(t, ps, "__keyspace@0__:fresh new", "__keyevent@0__:new fresh")
	rdb.Set(ctx(), "fresh", "2", 0) // an overwrite: no event
	rdb.Get(ctx(), "nothing")       // a miss, but 'm' is off
	rdb.Incr(ctx(), "counter")      // created by INCR: the next event
	expectEvents(t, ps, "__keyspace@0__:counter new", "__keyevent@0__:new counter")

	config("KEm")
	if err := rdb.Get(ctx(), "missing").Err(); err != redis.Nil {
		t.Fatalf("GET missing: %v", err)
	}
	expectEvents(t, ps, "__keyspace@0__:missing keymiss", "__keyevent@0__:keymiss missing")
	rdb.Get(ctx(), "fresh")           // a hit: no event
	rdb.Set(ctx(), "another", "1", 0) // a write of a missing key is no miss
	rdb.Exists(ctx(), "gone")
	expectEvents(t, ps, "__keyspace@0__:gone keymiss", "__keyevent@0__:keymiss gone")

	config("KEA")
	rdb.Set(ctx(), "third", "1", 0)
	rdb.Get(ctx(), "missing2")
	rdb.Set(ctx(), "marker", "1", 0)
	expectEvents(t, ps,
		"__keyspace@0__:third set", "__keyevent@0__:set third",
		"__keyspace@0__:marker set", "__keyevent@0__:set marker")

	// Everything at once, in Redis's order: GETSET of a missing key reads
	// (keymiss), creates (new), then sets.
	config("KEAnm")
	rdb.GetSet(ctx(), "gs", "1")
	expectEvents(t, ps,
		"__keyspace@0__:gs keymiss", "__keyevent@0__:keymiss gs",
		"__keyspace@0__:gs new", "__keyevent@0__:new gs",
		"__keyspace@0__:gs set", "__keyevent@0__:set gs")
}
