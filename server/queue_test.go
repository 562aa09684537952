package server

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
)

func argvReq(args ...string) cluster.Request {
	argv := make([][]byte, len(args))
	for i, a := range args {
		argv[i] = []byte(a)
	}
	return cluster.Request{Argv: argv}
}

func TestReadOnlyBatch(t *testing.T) {
	for _, c := range []struct {
		reqs []cluster.Request
		want bool
	}{
		{[]cluster.Request{argvReq("GET", "a")}, true},
		{[]cluster.Request{argvReq("get", "a"), argvReq("MGET", "a", "b"), argvReq("EXISTS", "a")}, true},
		{[]cluster.Request{argvReq("GET", "a"), argvReq("SET", "a", "1")}, false},
		{[]cluster.Request{argvReq("INCR", "a")}, false},
		{[]cluster.Request{argvReq("GETEX", "a", "EX", "1")}, false},
		{[]cluster.Request{argvReq("NOSUCH", "a")}, false},
		{[]cluster.Request{{Argv: [][]byte{[]byte("GET"), []byte("a")}, Txn: &cluster.Txn{}}}, false},
		{nil, false},
	} {
		if got := readOnlyBatch(c.reqs); got != c.want {
			t.Errorf("readOnlyBatch(%v) = %v, want %v", c.reqs, got, c.want)
		}
	}
}

// enqueue puts a read-only batch after the group being run and the reads
// already ahead, before queued writes, unless reads are being run.
func TestEnqueueReadsAheadOfWrites(t *testing.T) {
	name := map[*waiter]string{}
	mk := func(n string, read bool) *waiter {
		w := &waiter{read: read}
		name[w] = n
		return w
	}
	names := func(q *execQueue) []string {
		var out []string
		for _, w := range q.queue {
			out = append(out, name[w])
		}
		return out
	}
	for _, c := range []struct {
		queue   []string // r… is a read batch, f… work that is not a batch
		running int
		add     string
		want    []string
	}{
		{nil, 0, "r1", []string{"r1"}},
		{[]string{"w1"}, 1, "r1", []string{"w1", "r1"}},
		{[]string{"w1", "w2"}, 1, "r1", []string{"w1", "r1", "w2"}},
		{[]string{"w1", "r1", "w2"}, 1, "r2", []string{"w1", "r1", "r2", "w2"}},
		{[]string{"w1", "w2", "w3", "w4"}, 3, "r1", []string{"w1", "w2", "w3", "r1", "w4"}},
		{[]string{"w1", "w2"}, 0, "r1", []string{"w1", "r1", "w2"}}, // w1 is about to lead
		{[]string{"f1", "w2"}, 1, "r1", []string{"f1", "r1", "w2"}},
		{[]string{"r1", "w1"}, 1, "r2", []string{"r1", "w1", "r2"}}, // reads are running: no jump
		{[]string{"w1", "w2"}, 1, "w3", []string{"w1", "w2", "w3"}},
	} {
		q := &execQueue{running: c.running}
		for _, n := range c.queue {
			q.queue = append(q.queue, mk(n, n[0] == 'r'))
		}
		q.enqueue(mk(c.add, c.add[0] == 'r'))
		if got := names(q); !slices.Equal(got, c.want) {
			t.Errorf("queue %v (running %d) + %s = %v, want %v", c.queue, c.running, c.add, got, c.want)
		}
	}
}

// Under concurrent pipelines of reads and writes (reads jumping ahead,
// groups of each), every connection reads back what it wrote last and
// every reply arrives: a batch marked done that the group did not run
// would answer nothing or the wrong thing.
func TestReadsAheadKeepEveryReply(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	const conns, rounds = 16, 200
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := ts.client(t, &redis.Options{PoolSize: 1})
			key := fmt.Sprintf("k%d", c)
			for i := range rounds {
				if c%2 == 0 {
					p := cl.Pipeline()
					for j := range 8 {
						p.Set(ctx, key, strconv.Itoa(i*8+j), 0)
					}
					if _, err := p.Exec(ctx); err != nil {
						errs <- err
						return
					}
				}
				p := cl.Pipeline()
				gets := make([]*redis.StringCmd, 8)
				for j := range gets {
					gets[j] = p.Get(ctx, key)
				}
				mget := p.MGet(ctx, key, "k0", "k1")
				if _, err := p.Exec(ctx); err != nil && !(c%2 == 1 && err == redis.Nil) {
					errs <- err
					return
				}
				for _, g := range gets {
					want := strconv.Itoa(i*8 + 7)
					if c%2 == 1 {
						if g.Err() != redis.Nil {
							errs <- fmt.Errorf("conn %d: GET of a key nobody writes = %q, %v", c, g.Val(), g.Err())
							return
						}
						continue
					}
					if g.Val() != want {
						errs <- fmt.Errorf("conn %d round %d: GET = %q, want %q", c, i, g.Val(), want)
						return
					}
				}
				if len(mget.Val()) != 3 {
					errs <- fmt.Errorf("conn %d: MGET answered %d values", c, len(mget.Val()))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
