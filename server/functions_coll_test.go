package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// FCALL on hashes, lists, sets and sorted sets through go-redis: the job
// queue and the leaderboard examples, the passthrough of collections.c,
// WRONGTYPE as Redis words it, an aborted call that leaves nothing,
// keyspace events with Redis's names for the effects, a blocked BLPOP
// woken by a function's push, and everything again after a restart (the
// log replays the effects; no guest runs).
func TestFunctionsOnCollectionsGoRedis(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() (*redis.Client, func()) { return durableClient(t, dir) }
	rdb, stop := open()
	loadLibraries(ctx, t, rdb, "jobqueue", "collections")
	if err := rdb.ConfigSet(ctx, "notify-keyspace-events", "KEA").Err(); err != nil {
		t.Fatal(err)
	}
	sub := rdb.PSubscribe(ctx, "__keyevent@0__:*")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	ready, running, jobs := "{q}ready", "{q}running", "{q}jobs"
	for i, id := range []string{"j1", "j2", "j3"} {
		n, err := rdb.FCall(ctx, "job_push", []string{ready, jobs}, id, "payload-"+id).Int64()
		if err != nil || n != int64(i+1) {
			t.Fatalf("job_push %s: %d %v", id, n, err)
		}
	}
	wantErr(t, rdb.FCall(ctx, "job_push", []string{ready, jobs}, "j1", "again").Err(), "ERR job exists")
	got, err := rdb.FCall(ctx, "job_take", []string{ready, running, jobs}).StringSlice()
	if err != nil || strings.Join(got, ",") != "j1,payload-j1" {
		t.Fatalf("job_take: %v %v", got, err)
	}
	if n, err := rdb.FCall(ctx, "job_done", []string{running, jobs}, "j1").Int64(); err != nil || n != 1 {
		t.Fatalf("job_done: %d %v", n, err)
	}
	counts, err := rdb.FCallRO(ctx, "job_count", []string{ready, running, jobs}).Int64Slice()
	if err != nil || len(counts) != 3 || counts[0] != 2 || counts[1] != 0 || counts[2] != 2 {
		t.Fatalf("job_count: %v %v", counts, err)
	}
	// The effects are plain keys to every other command.
	if v, _ := rdb.LRange(ctx, ready, 0, -1).Result(); strings.Join(v, ",") != "j2,j3" {
		t.Fatalf("LRANGE: %v", v)
	}
	if v, _ := rdb.HGet(ctx, jobs, "j3").Result(); v != "payload-j3" {
		t.Fatalf("HGET: %q", v)
	}
	// The leaderboard.
	for _, s := range []struct {
		p string
		n int
	}{{"ann", 5}, {"bob", 7}, {"ann", 4}} {
		if err := rdb.FCall(ctx, "lb_add", []string{"board"}, s.p, s.n).Err(); err != nil {
			t.Fatal(err)
		}
	}
	top, err := rdb.FCallRO(ctx, "lb_top", []string{"board"}, 2).StringSlice()
	if err != nil || strings.Join(top, ",") != "ann,9,bob,7" {
		t.Fatalf("lb_top: %v %v", top, err)
	}
	if s, _ := rdb.ZScore(ctx, "board", "ann").Result(); s != 9 {
		t.Fatalf("ZSCORE: %v", s)
	}
	// WRONGTYPE, as an error reply of the function (its text is Redis's).
	rdb.Set(ctx, "str", "x", 0)
	wantErr(t, rdb.FCall(ctx, "call", []string{"str"}, "HSET", "str", "f", "v").Err(),
		"WRONGTYPE Operation against a key holding the wrong kind of value")
	wantErr(t, rdb.FCall(ctx, "call", []string{"s"}, "SPOP", "s").Err(), "ERR function 'call' called 'spop', which draws randomness")
	wantErr(t, rdb.FCall(ctx, "call", []string{"s"}, "SADD", "t", "x").Err(), "ERR function 'call' accessed key 't' (keel.call) that was not declared")
	// An aborted call leaves nothing behind.
	wantErr(t, rdb.FCall(ctx, "call_abort", []string{"board"}, "ZADD", "board", "100", "cat").Err(), "ERR aborted after the command")
	if n, _ := rdb.ZCard(ctx, "board").Result(); n != 2 {
		t.Fatalf("ZCARD after an aborted call: %d", n)
	}
	// Keyspace events with Redis's names.
	want := map[string]bool{"hset": false, "rpush": false, "lpop": false, "lrem": false, "hdel": false, "zincr": false}
	deadline := time.After(5 * time.Second)
	for missing := len(want); missing > 0; {
		select {
		case m := <-sub.Channel():
			ev := strings.TrimPrefix(m.Channel, "__keyevent@0__:")
			if seen, ok := want[ev]; ok && !seen {
				want[ev] = true
				missing--
			}
		case <-deadline:
			t.Fatalf("keyspace events missing: %v", want)
		}
	}
	// A client blocked on a list is woken by a function's push.
	popped := make(chan []string, 1)
	go func() {
		c := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, Protocol: 2})
		defer c.Close()
		v, _ := c.BLPop(ctx, 5*time.Second, "{w}list").Result()
		popped <- v
	}()
	time.Sleep(100 * time.Millisecond) // let the BLPOP block first (not an assertion)
	if err := rdb.FCall(ctx, "call", []string{"{w}list"}, "RPUSH", "{w}list", "hello").Err(); err != nil {
		t.Fatal(err)
	}
	if v := <-popped; strings.Join(v, ",") != "{w}list,hello" {
		t.Fatalf("BLPOP woken with %v", v)
	}
	stop()

	// Replayed from the log: the effects, not the guests.
	rdb, stop = open()
	defer stop()
	if v, _ := rdb.LRange(ctx, ready, 0, -1).Result(); strings.Join(v, ",") != "j2,j3" {
		t.Fatalf("after replay LRANGE: %v", v)
	}
	if v, _ := rdb.ZRevRangeWithScores(ctx, "board", 0, -1).Result(); len(v) != 2 || v[0].Member != "ann" || v[0].Score != 9 {
		t.Fatalf("after replay board: %v", v)
	}
	if v, _ := rdb.HGetAll(ctx, jobs).Result(); len(v) != 2 || v["j2"] != "payload-j2" {
		t.Fatalf("after replay jobs: %v", v)
	}
}
