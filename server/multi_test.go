package server

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestTxPipelined(t *testing.T) {
	ts := startServer(t, Config{})
	rdb := ts.client(t, nil)
	var incr *redis.IntCmd
	var get *redis.StringCmd
	cmds, err := rdb.TxPipelined(ctx(), func(p redis.Pipeliner) error {
		p.Set(ctx(), "a", "1", 0)
		incr = p.IncrBy(ctx(), "a", 41)
		get = p.Get(ctx(), "a")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 3 || incr.Val() != 42 || get.Val() != "42" {
		t.Fatalf("cmds=%v incr=%d get=%q", cmds, incr.Val(), get.Val())
	}
	// A runtime error inside EXEC does not abort the rest.
	_, err = rdb.TxPipelined(ctx(), func(p redis.Pipeliner) error {
		p.Do(ctx(), "NOSUCHCMD", "a", "x") // unknown: fails to queue -> EXECABORT
		p.Set(ctx(), "b", "2", 0)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "EXECABORT") {
		t.Fatalf("want EXECABORT, got %v", err)
	}
	if n, _ := rdb.Exists(ctx(), "b").Result(); n != 0 {
		t.Fatalf("an aborted block wrote b")
	}
	var bad *redis.IntCmd
	_, _ = rdb.TxPipelined(ctx(), func(p redis.Pipeliner) error {
		p.Set(ctx(), "s", "notanumber", 0)
		bad = p.Incr(ctx(), "s")
		p.Set(ctx(), "c", "3", 0)
		return nil
	})
	if bad.Err() == nil || !strings.Contains(bad.Err().Error(), "not an integer") {
		t.Fatalf("INCR on a string: %v", bad.Err())
	}
	if v, _ := rdb.Get(ctx(), "c").Result(); v != "3" {
		t.Fatalf("command after a runtime error did not run: c=%q", v)
	}
}

func TestMultiErrorsRaw(t *testing.T) {
	ts := startServer(t, Config{})
	rc := ts.raw(t)
	steps := [][2]string{
		{"EXEC", "-ERR EXEC without MULTI"},
		{"DISCARD", "-ERR DISCARD without MULTI"},
		{"MULTI", "+OK"},
		{"MULTI", "-ERR MULTI calls can not be nested"},
		{"WATCH k", "-ERR WATCH inside MULTI is not allowed"},
		{"SET k 1", "+QUEUED"},
		{"GET", "-ERR wrong number of arguments for 'get' command"},
		{"NOSUCH x", "-ERR unknown command 'NOSUCH', with args beginning with: 'x' "},
		{"EXEC", "-EXECABORT Transaction discarded because of previous errors."},
		{"GET k", "$nil"},
		{"MULTI", "+OK"},
		{"SET k 1", "+QUEUED"},
		{"DISCARD", "+OK"},
		{"GET k", "$nil"},
		{"MULTI", "+OK"},
		{"EXEC", "*[]"},
		{"MULTI", "+OK"},
		{"SET k 5", "+QUEUED"},
		{"INCR k", "+QUEUED"},
		{"GET k", "+QUEUED"},
		{"EXEC", "*[+OK :6 $6]"},
	}
	for _, s := range steps {
		if got := rc.do(strings.Fields(s[0])...); got != s[1] {
			t.Fatalf("%s: got %q, want %q", s[0], got, s[1])
		}
	}
}

// Concurrent WATCH/MULTI increments with retry: the final count is exact.
func TestWatchRetryConcurrentIncrements(t *testing.T) {
	ts := startServer(t, Config{})
	const workers, each = 8, 50
	var wg sync.WaitGroup
	var retries [workers]int
	for w := 0; w < workers; w++ {
		rdb := ts.client(t, &redis.Options{PoolSize: 1})
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				for {
					err := rdb.Watch(ctx(), func(tx *redis.Tx) error {
						n, err := tx.Get(ctx(), "counter").Int()
						if err != nil && !errors.Is(err, redis.Nil) {
							return err
						}
						_, err = tx.TxPipelined(ctx(), func(p redis.Pipeliner) error {
							p.Set(ctx(), "counter", strconv.Itoa(n+1), 0)
							return nil
						})
						return err
					}, "counter")
					if err == nil {
						break
					}
					if !errors.Is(err, redis.TxFailedErr) {
						t.Error(err)
						return
					}
					retries[w]++
				}
			}
		}(w)
	}
	wg.Wait()
	rdb := ts.client(t, nil)
	if n, err := rdb.Get(ctx(), "counter").Int(); err != nil || n != workers*each {
		t.Fatalf("counter = %d (%v), want %d", n, err, workers*each)
	}
	total := 0
	for _, r := range retries {
		total += r
	}
	t.Logf("%d increments, %d retries", workers*each, total)
}

func TestWatchInvalidatedByWriteDeleteExpiry(t *testing.T) {
	ts := startServer(t, Config{})
	rc := ts.raw(t)
	other := ts.client(t, nil)
	for _, tc := range []struct {
		name   string
		setup  string
		change func()
	}{
		{"write", "SET w 1", func() { other.Set(ctx(), "w", "2", 0) }},
		{"delete", "SET w 1", func() { other.Del(ctx(), "w") }},
		{"create", "DEL w", func() { other.Set(ctx(), "w", "new", 0) }},
		{"expiry", "SET w 1 PX 30", func() {
			// Wait until the key is gone (bounded), without touching it.
			for i := 0; i < 200; i++ {
				if n, _ := other.Exists(ctx(), "w").Result(); n == 0 {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}},
		{"unchanged", "SET w 1", func() {}},
	} {
		rc.do(strings.Fields(tc.setup)...)
		if got := rc.do("WATCH", "w"); got != "+OK" {
			t.Fatal(got)
		}
		tc.change()
		rc.do("MULTI")
		rc.do("SET", "x", tc.name)
		got := rc.do("EXEC")
		want := "*nil"
		if tc.name == "unchanged" {
			want = "*[+OK]"
		}
		if got != want {
			t.Fatalf("%s: EXEC = %s, want %s", tc.name, got, want)
		}
	}
	// EXEC and DISCARD unwatch: the next block runs whatever happens.
	rc.do("WATCH", "w")
	rc.do("UNWATCH")
	other.Set(ctx(), "w", "3", 0)
	rc.do("MULTI")
	rc.do("GET", "w")
	if got := rc.do("EXEC"); got != "*[$3]" {
		t.Fatalf("after UNWATCH: %s", got)
	}
}

// BenchmarkTransfer compares a transfer as MULTI/EXEC (one log entry
// each, in memory here) with the same two INCRBYs pipelined without a
// transaction. go test ./server -run ^$ -bench Transfer
func BenchmarkTransfer(b *testing.B) {
	ts := startServer(b, Config{})
	for _, tx := range []bool{true, false} {
		name := "pipeline"
		if tx {
			name = "multi-exec"
		}
		b.Run(name, func(b *testing.B) {
			rdb := ts.client(b, &redis.Options{PoolSize: 16})
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					fn := func(p redis.Pipeliner) error {
						p.IncrBy(ctx(), "acct:a", -1)
						p.IncrBy(ctx(), "acct:b", 1)
						return nil
					}
					var err error
					if tx {
						_, err = rdb.TxPipelined(ctx(), fn)
					} else {
						_, err = rdb.Pipelined(ctx(), fn)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
