package server

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
)

// metaChange sends CLUSTER ADDNODE/DELNODE to node 1 and follows -MOVED
// to group 1's leader (the meta group's), retrying a version race, as
// `keel cluster addnode/delnode` does.
func (tc *testCluster) metaChange(args ...string) {
	tc.t.Helper()
	argv := []any{"CLUSTER"}
	for _, a := range args {
		argv = append(argv, a)
	}
	tc.group1Do(tc.firstRunning(), argv...)
}

// group1Do sends a change of group 1's state (the meta record, the ACL
// table) to node i (from 0), follows -MOVED to group 1's leader and
// retries other errors for up to 30 s.
func (tc *testCluster) group1Do(i int, argv ...any) {
	tc.t.Helper()
	at := tc.srvs[i].addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c := redis.NewClient(&redis.Options{Addr: at, MaxRetries: -1})
		err := c.Do(ctx(), argv...).Err()
		c.Close()
		if err == nil {
			return
		}
		if f := strings.Fields(err.Error()); len(f) == 3 && f[0] == "MOVED" {
			at = f[2]
			continue
		}
		if time.Now().After(deadline) {
			tc.t.Fatalf("%v: %v", argv, err)
		}
		at = tc.srvs[tc.firstRunning()].addr
	}
}

// clusterWriter writes key:<k> = k for k = 0, 1, ... through a
// ClusterClient, one at a time, until finished, and sorts the answers:
// acknowledged, failed, or unsure (answered cluster.ErrMsgLeaderLost: a
// leader handed its leadership over, as a move does before removing it,
// with the write in flight; applied or not, the client cannot tell.
// Checked as absent or the value, not failed: the same happens when
// leadership spreads, before moves; docs/cluster.md, "Moves", limits).
type clusterWriter struct {
	cc     *redis.ClusterClient
	mu     sync.Mutex
	acked  []int
	errs   []string
	unsure []int
	stop   atomic.Bool
	wg     sync.WaitGroup
	writes atomic.Int64
}

func startClusterWriter(cc *redis.ClusterClient) *clusterWriter {
	w := &clusterWriter{cc: cc}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for k := 0; !w.stop.Load(); k++ {
			c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := cc.Set(c, "key:"+strconv.Itoa(k), k, 0).Err()
			cancel()
			w.mu.Lock()
			switch {
			case err != nil && err.Error() == cluster.ErrMsgLeaderLost:
				w.unsure = append(w.unsure, k)
			case err != nil:
				w.errs = append(w.errs, "key:"+strconv.Itoa(k)+": "+err.Error())
			default:
				w.acked = append(w.acked, k)
			}
			w.mu.Unlock()
			w.writes.Add(1)
		}
	}()
	return w
}

// finish stops the writer and checks what it saw: no failed write, at
// least 100 acknowledged, each acknowledged key readable with its value,
// each unsure one absent or its value. It returns the acknowledged keys.
func (w *clusterWriter) finish(t *testing.T) []int {
	t.Helper()
	w.stop.Store(true)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) > 0 {
		t.Errorf("%d writes failed, first: %s", len(w.errs), w.errs[0])
	}
	if len(w.acked) < 100 {
		t.Fatalf("only %d writes acknowledged", len(w.acked))
	}
	for _, k := range w.acked {
		v, err := w.cc.Get(ctx(), "key:"+strconv.Itoa(k)).Int()
		if err != nil || v != k {
			t.Fatalf("acknowledged key:%d reads %d, %v", k, v, err)
		}
	}
	for _, k := range w.unsure {
		v, err := w.cc.Get(ctx(), "key:"+strconv.Itoa(k)).Int()
		if err != nil && err != redis.Nil || err == nil && v != k {
			t.Fatalf("key:%d (outcome unknown to the writer) reads %d, %v: want %d or nothing", k, v, err, k)
		}
	}
	if len(w.unsure) > 0 {
		t.Logf("%d writes answered %q (a leadership handover with the write in flight)", len(w.unsure), cluster.ErrMsgLeaderLost)
	}
	return slices.Clone(w.acked)
}

// waitThreeCopies waits (up to 20 s) until every acknowledged key:<k> is
// held live by exactly three of the running nodes' replicas.
func (tc *testCluster) waitThreeCopies(acked []int) {
	tc.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		copies := tc.copiesOf(acked)
		bad := slices.IndexFunc(acked, func(k int) bool { return copies[k] != 3 })
		if bad < 0 {
			return
		}
		if time.Now().After(deadline) {
			tc.t.Fatalf("key:%d is stored on %d running nodes, want 3", acked[bad], copies[acked[bad]])
		}
	}
}

// copiesOf counts, for each acknowledged key:<k>, the running nodes
// whose replicas hold it live.
func (tc *testCluster) copiesOf(acked []int) map[int]int {
	copies := map[int]int{}
	for _, cs := range tc.srvs {
		if cs == nil {
			continue
		}
		for _, g := range cs.srv.Node().HostedGroups() {
			cs.srv.do(g, func() {
				r := cs.srv.Node().Replica(g)
				if r == nil {
					return
				}
				now := time.Now().UnixNano()
				for _, k := range acked {
					if r.DB().Live(now, []byte("key:"+strconv.Itoa(k))) {
						copies[k]++
					}
				}
			})
		}
	}
	return copies
}

func (tc *testCluster) firstRunning() int {
	for i, cs := range tc.srvs {
		if cs != nil {
			return i
		}
	}
	tc.t.Fatal("no node running")
	return -1
}

// waitBalanced waits until every running node's CLUSTER PLACEMENT says
// balanced with no group moving, and the members are want (id → state).
func (tc *testCluster) waitBalanced(want map[uint64]string) {
	tc.t.Helper()
	last := ""
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(250 * time.Millisecond) {
		ok := true
		for i, cs := range tc.srvs {
			if cs == nil {
				continue
			}
			text := cs.srv.Node().PlacementText()
			if i == tc.firstRunning() && text != last {
				last = text
			}
			members := map[uint64]string{}
			for _, line := range strings.Split(text, "\r\n") {
				if v, found := strings.CutPrefix(line, "member:"); found {
					f := strings.Fields(v)
					id, _ := strconv.ParseUint(f[0], 10, 64)
					members[id] = f[2]
				}
			}
			if !strings.Contains(text, "balanced:true") || len(members) != len(want) {
				ok = false
			}
			for id, st := range want {
				if members[id] != st {
					ok = false
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tc.t.Fatalf("placement never balanced with members %v; node %d says:\n%s", want, tc.firstRunning()+1, last)
		}
	}
}

// preload writes KEEL_MOVES_PRELOAD_KEYS keys of 200 B (none unset), so
// that the moves' times measure data (docs/capacity.md, "Moving replicas").
func (tc *testCluster) preload(cc *redis.ClusterClient) {
	n, _ := strconv.Atoi(os.Getenv("KEEL_MOVES_PRELOAD_KEYS"))
	if n <= 0 {
		return
	}
	start := time.Now()
	val := strings.Repeat("v", 200)
	for i := 0; i < n; i += 1000 {
		for try := 0; ; try++ {
			p := cc.Pipeline()
			for k := i; k < min(i+1000, n); k++ {
				p.Set(ctx(), "pre:"+strconv.Itoa(k), val, 0)
			}
			_, err := p.Exec(ctx())
			if err == nil {
				break
			}
			if try == 50 { // a pipeline is not retried on TRYAGAIN (leaders spreading): the SETs are, whole
				tc.t.Fatalf("preload: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	tc.t.Logf("preloaded %d keys of 200 B in %s", n, time.Since(start).Round(time.Millisecond))
}

// TestPlacementGrowShrinkOnline: a 6-node placed cluster (6 groups of 3)
// grows to 7 nodes and shrinks to 5 while a go-redis ClusterClient writes:
// replicas move onto the new node and away from the two leaving ones,
// each a learner, then a voter, then the old replica removed. Every
// acknowledged write is readable afterwards, every key is on exactly 3 of
// the running nodes, and the writer saw no error (redirects and TRYAGAIN
// are retried inside the client).
func TestPlacementGrowShrinkOnline(t *testing.T) {
	if testing.Short() {
		t.Skip("moves take about a minute")
	}
	tc := &testCluster{t: t, dir: t.TempDir(), groups: 6, replicas: 3}
	tc.startAll(6)
	tc.waitPlacedTopology(6, 3)
	cc := tc.clusterClient()
	tc.preload(cc)

	w := startClusterWriter(cc)

	grow := time.Now()
	addr := tc.startJoining() // node 7, --join yes, same --groups and --replicas
	tc.metaChange("ADDNODE", "7", addr)
	all := map[uint64]string{1: "active", 2: "active", 3: "active", 4: "active", 5: "active", 6: "active", 7: "active"}
	tc.waitBalanced(all)
	t.Logf("grown to 7 nodes in %s (%d writes so far)", time.Since(grow).Round(time.Millisecond), w.writes.Load())
	if got := tc.srvs[6].srv.Node().HostedGroups(); len(got) < 2 {
		t.Errorf("node 7 hosts %v after the rebalance, want 2 or 3 groups", got)
	}

	shrink := time.Now()
	tc.metaChange("DELNODE", "1")
	tc.metaChange("DELNODE", "4")
	delete(all, 1)
	delete(all, 4)
	tc.waitBalanced(all)
	t.Logf("shrunk to 5 nodes in %s (%d writes so far)", time.Since(shrink).Round(time.Millisecond), w.writes.Load())
	for _, i := range []int{0, 3} {
		if got := tc.srvs[i].srv.Node().HostedGroups(); len(got) != 0 {
			t.Errorf("node %d left the cluster but hosts %v", i+1, got)
		}
	}
	tc.stop(0)
	tc.stop(3)
	time.Sleep(500 * time.Millisecond)
	acked := w.finish(t)
	tc.waitThreeCopies(acked) // of the running nodes
	t.Logf("%d acknowledged writes, all readable, each on 3 of the 5 nodes", len(acked))
}

// TestPlacementReReplicate: a node of a 6-node placed cluster stops for
// good; after --node-dead-after (3 s here) the meta leader marks it dead
// and each of its groups gets a new third replica on the other nodes,
// while a ClusterClient writes. Every acknowledged write stays readable,
// on exactly 3 of the 5 running nodes.
func TestPlacementReReplicate(t *testing.T) {
	if testing.Short() {
		t.Skip("re-replication takes about half a minute")
	}
	tc := &testCluster{t: t, dir: t.TempDir(), groups: 6, replicas: 3, nodeDeadAfter: 3 * time.Second}
	tc.startAll(6)
	tc.waitPlacedTopology(6, 3)
	cc := tc.clusterClient()
	tc.preload(cc)
	const keys = 2000
	for k := range keys {
		if err := cc.Set(ctx(), "key:"+strconv.Itoa(k), k, 0).Err(); err != nil {
			t.Fatalf("SET key:%d: %v", k, err)
		}
	}
	lost := tc.srvs[4].srv.Node().HostedGroups()
	start := time.Now()
	tc.stop(4) // node 5, for good
	tc.waitBalanced(map[uint64]string{1: "active", 2: "active", 3: "active", 4: "active", 5: "dead", 6: "active"})
	t.Logf("node 5 (groups %v) stopped; its groups back to 3 replicas in %s (node-dead-after 3s included)", lost, time.Since(start).Round(time.Millisecond))
	for k := range keys {
		if v, err := cc.Get(ctx(), "key:"+strconv.Itoa(k)).Int(); err != nil || v != k {
			t.Fatalf("key:%d reads %d, %v", k, v, err)
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		copies := make([]int, keys)
		for _, cs := range tc.srvs {
			if cs == nil {
				continue
			}
			for _, g := range cs.srv.Node().HostedGroups() {
				cs.srv.do(g, func() {
					if r := cs.srv.Node().Replica(g); r != nil {
						now := time.Now().UnixNano()
						for k := range keys {
							if r.DB().Live(now, []byte("key:"+strconv.Itoa(k))) {
								copies[k]++
							}
						}
					}
				})
			}
		}
		bad := slices.IndexFunc(copies, func(c int) bool { return c != 3 })
		if bad < 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key:%d is stored on %d running nodes, want 3", bad, copies[bad])
		}
	}
}
