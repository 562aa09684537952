package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestClusterKillLeader starts three keel server processes as one cluster
// (appendfsync always), writes through go-redis's ClusterClient from
// several goroutines, kill -9s the leader under that load, and checks that
//   - writes are acknowledged again within failoverMax (a new leader is
//     elected and the client follows -MOVED / -TRYAGAIN to it),
//   - the killed node, restarted on its directory, catches up, and
//   - every acknowledged write is readable afterwards: a SET holds its
//     value; a counter holds at least its acknowledged INCRs and at most
//     the INCRs ever sent. A write whose reply was an error (the leader
//     lost its leadership: "may or may not have been applied", or the
//     connection broke) has an unknown outcome and may hold either value.
//
// -short kills once; without it, the new leader is killed too after the
// first one is back.
func TestClusterKillLeader(t *testing.T) {
	kills, loadBefore, loadAfter := 2, 3*time.Second, 3*time.Second
	if testing.Short() {
		kills, loadBefore, loadAfter = 1, 1500*time.Millisecond, time.Second
	}
	const (
		writers = 8
		// failoverMax bounds kill → first acknowledged write: elections
		// take 1–2 s; the rest is slack for a loaded 2-core machine.
		failoverMax = 10 * time.Second
		readyMax    = 15 * time.Second
	)
	c := startCluster(t, 3, "always")
	c.waitOK(readyMax)

	l := newLedger()
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: c.addrs(), Protocol: 2, DisableIdentity: true,
		MaxRedirects: 8, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		PoolSize: writers,
		// go-redis reloads its slot map on -MOVED, but a dead master only
		// gives dial errors, so without a short reload interval (default
		// 60 s) it keeps dialling the killed leader.
		ClusterStateReloadInterval: 500 * time.Millisecond,
	})
	// Every INCR a node client sends counts as attempted, retries by the
	// cluster client included: that is the counter's upper bound.
	cc.OnNewNode(func(rdb *redis.Client) { rdb.AddHook(incrCounter{l}) })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { // runs before the processes are killed (Cleanup is LIFO)
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
		cc.Close()
	})
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.write(cc, g, stop)
		}()
	}

	ctx := context.Background()
	for kill := 1; kill <= kills; kill++ {
		time.Sleep(loadBefore)
		leader := waitLeader(t, c, readyMax)
		if l.acks.Load() == 0 {
			t.Fatal("no write acknowledged before the kill")
		}
		// Each writer has one request outstanding, so at most `writers`
		// acknowledgements after the kill can be replies the dead leader
		// sent before it died; one more proves the new leader serves.
		base := l.acks.Load()
		killedAt := time.Now()
		leader.kill()
		t.Logf("kill %d: kill -9 leader node %d (%s) after %d acknowledged writes", kill, leader.id, leader.addr(), base)
		for l.acks.Load() <= base+writers {
			if time.Since(killedAt) > failoverMax {
				t.Fatalf("no write acknowledged by a new leader within %s of killing the leader (%d acknowledged since)",
					failoverMax, l.acks.Load()-base)
			}
			time.Sleep(10 * time.Millisecond)
		}
		resumed := time.Since(killedAt)
		time.Sleep(loadAfter)
		newLeader := waitLeader(t, c, readyMax)
		t.Logf("kill %d: writes acknowledged again %s after the kill; new leader node %d; %d writes acknowledged since",
			kill, resumed.Round(10*time.Millisecond), newLeader.id, l.acks.Load()-base)
		leader.start(t)
	}
	close(stop)
	wg.Wait()
	c.waitOK(readyMax)

	// The restarted nodes catch up: keyless reads such as DBSIZE are
	// answered by a follower from its own applied state.
	leader := waitLeader(t, c, readyMax)
	lc := nodeClient(leader.addr())
	defer lc.Close()
	want, err := lc.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		nc := nodeClient(n.addr())
		deadline := time.Now().Add(readyMax)
		for {
			got, err := nc.DBSize(ctx).Result()
			if err == nil && got == want {
				break
			}
			if time.Now().After(deadline) {
				nc.Close()
				t.Fatalf("node %d has DBSIZE %d (%v) after %s; leader node %d has %d", n.id, got, err, readyMax, leader.id, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		nc.Close()
	}

	l.check(t, cc)
	if msgs := l.unexpected(); len(msgs) > 0 {
		t.Errorf("%d writes failed with errors other than a failover's: %s", len(msgs), strings.Join(msgs, "; "))
	}
}

// waitLeader waits until a running node says it leads.
func waitLeader(t *testing.T, c *testCluster, timeout time.Duration) *node {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if n := c.leader(); n != nil {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader after %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ledger is what the writers were told: acknowledged and unknown SETs,
// and per counter its acknowledged and attempted INCRs.
type ledger struct {
	mu        sync.Mutex
	sets      map[string]setRecord
	counters  map[string]*counterRecord
	unexpErrs []string
	acks      atomic.Int64
}

type setRecord struct {
	value string
	acked bool // false: the outcome is unknown (absent or value)
}

type counterRecord struct {
	acked, attempted int64
	lastReply        int64 // acknowledged INCR replies must rise
}

// unexpectedErrsMax bounds the error texts kept for the report.
const unexpectedErrsMax = 20

func newLedger() *ledger {
	return &ledger{sets: map[string]setRecord{}, counters: map[string]*counterRecord{}}
}

func (l *ledger) acked() { l.acks.Add(1) }

// failed records an error reply; only a failover's errors are expected.
func (l *ledger) failed(op string, err error) {
	if failoverError(err) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.unexpErrs) < unexpectedErrsMax {
		l.unexpErrs = append(l.unexpErrs, op+": "+err.Error())
	}
}

func (l *ledger) unexpected() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.unexpErrs...)
}

// failoverError: the errors a client may see while a leader dies and
// another is elected. Every one of them leaves the write's outcome
// unknown (even a final MOVED, ASK or TRYAGAIN may follow an attempt
// whose connection broke: go-redis spends its redirects on dials to the
// dead node, then returns the last redirect it got), so the ledger treats
// them all alike.
func failoverError(err error) bool {
	var netErr stdnet.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"may or may not have been applied", "TRYAGAIN", "MOVED", "ASK ", "CLUSTERDOWN",
		"connection refused", "connection reset", "broken pipe", "i/o timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// write runs one writer until stop: a SET of a fresh key, then an INCR of
// the writer's counter, over and over.
func (l *ledger) write(cc *redis.ClusterClient, g int, stop <-chan struct{}) {
	ctx := context.Background()
	ctr := fmt.Sprintf("ctr:%d", g)
	l.mu.Lock()
	l.counters[ctr] = &counterRecord{}
	l.mu.Unlock()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		k, v := fmt.Sprintf("w%d:%d", g, i), fmt.Sprintf("v%d:%d", g, i)
		errSet := cc.Set(ctx, k, v, 0).Err()
		l.mu.Lock()
		l.sets[k] = setRecord{value: v, acked: errSet == nil}
		l.mu.Unlock()
		if errSet == nil {
			l.acked()
		} else {
			l.failed("SET "+k, errSet)
		}
		n, errIncr := cc.Incr(ctx, ctr).Result()
		if errIncr == nil {
			l.mu.Lock()
			rec := l.counters[ctr]
			rec.acked++
			if n <= rec.lastReply {
				l.unexpErrs = append(l.unexpErrs, fmt.Sprintf("INCR %s replied %d after an acknowledged %d", ctr, n, rec.lastReply))
			}
			rec.lastReply = n
			l.mu.Unlock()
			l.acked()
		} else {
			l.failed("INCR "+ctr, errIncr)
		}
		if errSet != nil || errIncr != nil {
			time.Sleep(20 * time.Millisecond) // no hot loop against a dead node
		}
	}
}

// check reads every key back through the cluster client.
func (l *ledger) check(t *testing.T, cc *redis.ClusterClient) {
	t.Helper()
	ctx := context.Background()
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := make([]string, 0, len(l.sets))
	for k := range l.sets {
		keys = append(keys, k)
	}
	const batch = 500
	ackedN, unknownN, unknownApplied := 0, 0, 0
	for from := 0; from < len(keys); from += batch {
		part := keys[from:min(from+batch, len(keys))]
		cmds := make([]*redis.StringCmd, len(part))
		if _, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range part {
				cmds[i] = p.Get(ctx, k)
			}
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("read back: %v", err)
		}
		for i, k := range part {
			rec := l.sets[k]
			got, err := cmds[i].Result()
			switch {
			case rec.acked && (err != nil || got != rec.value):
				t.Errorf("acknowledged SET %s %s, read %q (%v): an acknowledged write was lost", k, rec.value, got, err)
			case rec.acked:
				ackedN++
			case err == redis.Nil:
				unknownN++
			case err != nil || got != rec.value:
				t.Errorf("SET %s %s (outcome unknown) reads %q (%v): neither absent nor the value written", k, rec.value, got, err)
			default:
				unknownN++
				unknownApplied++
			}
		}
	}
	for k, rec := range l.counters {
		got, err := cc.Get(ctx, k).Int64()
		if errors.Is(err, redis.Nil) {
			got, err = 0, nil
		}
		lower := max(rec.acked, rec.lastReply)
		if err != nil || got < lower || got > rec.attempted {
			t.Errorf("counter %s = %d (%v); want %d..%d (%d INCRs acknowledged, last reply %d, %d sent)",
				k, got, err, lower, rec.attempted, rec.acked, rec.lastReply, rec.attempted)
		}
	}
	t.Logf("checked %d acknowledged and %d unknown-outcome SETs (%d of those applied), %d counters", ackedN, unknownN, unknownApplied, len(l.counters))
	if ackedN == 0 {
		t.Error("no SET was acknowledged")
	}
}

// incrCounter is a go-redis hook on each node client that counts every
// INCR sent, per key.
type incrCounter struct{ l *ledger }

func (incrCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h incrCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); strings.EqualFold(cmd.Name(), "incr") && len(args) == 2 {
			key := fmt.Sprint(args[1])
			h.l.mu.Lock()
			if rec := h.l.counters[key]; rec != nil {
				rec.attempted++
			}
			h.l.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

func (incrCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
