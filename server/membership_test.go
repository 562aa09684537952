package server

import (
	"fmt"
	stdnet "net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/node"
)

// startJoining starts node tc.nodes[len]+1 with --join on a fresh port and
// returns its address.
func (tc *testCluster) startJoining() string {
	tc.t.Helper()
	var ln stdnet.Listener
	var port int
	for ln == nil {
		l, err := stdnet.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tc.t.Fatal(err)
		}
		port = l.Addr().(*stdnet.TCPAddr).Port
		if port+10000 > 65535 {
			l.Close()
			continue
		}
		peer, err := stdnet.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			l.Close()
			continue
		}
		peer.Close()
		ln = l
	}
	id := uint64(len(tc.nodes) + 1)
	tc.nodes = append(tc.nodes, cluster.TopoNode{ID: id, Host: "127.0.0.1", Port: port})
	tc.srvs = append(tc.srvs, nil)
	tc.joining = true
	tc.start(len(tc.srvs)-1, ln)
	tc.joining = false
	return "127.0.0.1:" + strconv.Itoa(port)
}

// groupMembers reads CLUSTER GROUPS on node i: each group's members.
func (tc *testCluster) groupMembers(i int) [][]int64 {
	tc.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: tc.srvs[i].addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	v, err := c.Do(ctx(), "CLUSTER", "GROUPS").Slice()
	if err != nil {
		tc.t.Fatalf("node %d: CLUSTER GROUPS: %v", i+1, err)
	}
	var out [][]int64
	for _, e := range v {
		kvs := e.([]any)
		var members []int64
		for k := 0; k+1 < len(kvs); k += 2 {
			if kvs[k] == "members" {
				for _, m := range kvs[k+1].([]any) {
					members = append(members, m.(int64))
				}
			}
		}
		out = append(out, members)
	}
	return out
}

// groupOwned reads CLUSTER GROUPS on node i: each group's owned ranges.
func (tc *testCluster) groupOwned(i int) string {
	tc.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: tc.srvs[i].addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	v, err := c.Do(ctx(), "CLUSTER", "GROUPS").Slice()
	if err != nil {
		tc.t.Fatalf("node %d: CLUSTER GROUPS: %v", i+1, err)
	}
	var parts []string
	for _, e := range v {
		kvs := e.([]any)
		for k := 0; k+1 < len(kvs); k += 2 {
			if kvs[k] == "owned" {
				parts = append(parts, fmt.Sprint(kvs[k+1]))
			}
		}
	}
	return strings.Join(parts, " ")
}

// waitMembers waits until node i's CLUSTER GROUPS lists want as every
// group's members.
func (tc *testCluster) waitMembers(i int, want []int64) {
	tc.t.Helper()
	var got [][]int64
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = tc.groupMembers(i)
		ok := len(got) == tc.groups
		for _, m := range got {
			ok = ok && slices.Equal(m, want)
		}
		if ok {
			return
		}
	}
	tc.t.Fatalf("node %d: group members %v, want %v in every group", i+1, got, want)
}

// TestGroupsMembership: three nodes, two groups; slots 0-99 are moved to
// group 2 and every replica snapshots first. A fourth node started with
// --join is added to each group by CLUSTER ADDNODE sent to that group's
// leader (a node-wide command: it changes the groups the node leads)
// while a ClusterClient writes; it becomes a voter of both groups and
// receives their data and slot state (from the leaders' snapshots). Node
// 3 is then removed the same way, one group at a time: while only group 1
// has dropped it, group 2 (whose voter it still is) keeps replicating to
// it, so the address book must not forget it; once both have, the
// cluster serves without it and every acknowledged write reads back.
func TestGroupsMembership(t *testing.T) {
	tc := newTestClusterGroups(t, 3, 2)
	leaders := tc.waitGroupLeaders(true) // group 1 on node 1, group 2 on node 2
	cc := tc.clusterClient()

	var (
		mu    sync.Mutex
		acked = map[string]string{}
		wg    sync.WaitGroup
		stop  chan struct{}
	)
	writers := func() {
		stop = make(chan struct{})
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					k, v := fmt.Sprintf("w%d:%d:%d", w, time.Now().UnixNano()%1e6, i), strconv.Itoa(i)
					if err := cc.Set(ctx(), k, v, 0).Err(); err != nil {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					mu.Lock()
					acked[k] = v
					mu.Unlock()
				}
			}()
		}
	}
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	waitAcked := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ackedCount() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("only %d writes acknowledged, want %d", ackedCount(), n)
			}
		}
	}
	writers()
	waitAcked(200)
	// Slots 0-99 move to group 2 and every replica snapshots (SAVE
	// compacts the log), so the newcomer learns the groups' slot state
	// from a snapshot, not by replaying the starting split.
	moved := newReshardDriver(tc).run(cluster.SlotRange{First: 0, Last: 99}, 1, 2, 50)
	for i := range tc.srvs {
		if got := tc.raw(i).do("SAVE"); got != "+OK" {
			t.Fatalf("node %d SAVE: %q", i+1, got)
		}
	}
	wantOwned := tc.groupOwned(leaders[0])
	if wantOwned != "[100-8191] [0-99 8192-16383]" {
		t.Fatalf("owned after the move: %s", wantOwned)
	}
	t.Logf("moved %d keys of slots 0-99 to group 2", moved)

	addr4 := tc.startJoining()
	if got := tc.raw(2).do("CLUSTER", "ADDNODE", "4", addr4); !strings.HasPrefix(got, "-ERR this node leads no replica group") ||
		!strings.Contains(got, "group 1: node 1 at "+tc.addrs()[leaders[0]]) {
		t.Fatalf("ADDNODE at a node leading nothing: %q", got)
	}
	if got := tc.raw(leaders[0]).do("CLUSTER", "ADDNODE", "0", addr4); !strings.HasPrefix(got, "-ERR invalid node id") {
		t.Fatalf("ADDNODE with a bad id: %q", got)
	}
	// Node 1 leads group 1 only: the change reaches group 1 only.
	if got := tc.raw(leaders[0]).do("CLUSTER", "ADDNODE", "4", addr4); got != "+OK" {
		t.Fatalf("ADDNODE at group 1's leader: %q", got)
	}
	if got := tc.groupMembers(leaders[0]); fmt.Sprint(got) != "[[1 2 3 4] [1 2 3]]" {
		t.Fatalf("after ADDNODE at group 1's leader, members %v", got)
	}
	// Idempotent: again, it is already a member.
	if got := tc.raw(leaders[0]).do("CLUSTER", "ADDNODE", "4", addr4); got != "+OK" {
		t.Fatalf("second ADDNODE at group 1's leader: %q", got)
	}
	if got := tc.raw(leaders[1]).do("CLUSTER", "ADDNODE", "4", addr4); got != "+OK" {
		t.Fatalf("ADDNODE at group 2's leader: %q", got)
	}
	for i := range tc.srvs {
		tc.waitMembers(i, []int64{1, 2, 3, 4})
	}
	waitAcked(ackedCount() + 200)
	close(stop)
	wg.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got := tc.groupOwned(3)
		if got == wantOwned {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 4's groups own %s, want %s", got, wantOwned)
		}
	}
	// It started from its leaders' snapshots (the logs were compacted).
	for g := uint64(1); g <= 2; g++ {
		snaps, err := os.ReadDir(disk.SnapshotDir(node.GroupDir(filepath.Join(tc.dir, "4"), 2, g)))
		if err != nil || len(snaps) == 0 {
			t.Fatalf("node 4 group %d: no snapshot received (%v)", g, err)
		}
	}

	// Node 4 holds both groups' data: its replicas catch up with the
	// leaders', and it serves READONLY reads of acknowledged writes.
	for g := range 2 {
		lead, mine := tc.srvs[leaders[g]].srv, tc.srvs[3].srv
		var want, got int
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			lead.onReplica(g, func(r *cluster.Replica) { want = r.DB().Len() })
			mine.onReplica(g, func(r *cluster.Replica) { got = r.DB().Len() })
			if got == want && want > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("group %d: node 4 holds %d keys, its leader %d", g+1, got, want)
			}
		}
		t.Logf("group %d: node 4 holds all %d keys", g+1, got)
	}
	r4 := tc.raw(3)
	r4.do("READONLY")
	mu.Lock()
	checked := 0
	for k, v := range acked {
		if checked++; checked > 300 {
			break
		}
		if got := r4.do("GET", k); got != "$"+v {
			t.Fatalf("node 4 READONLY GET %s = %q, want %q", k, got, v)
		}
	}
	mu.Unlock()

	// Node 3 leaves group 1 only (node 1 leads group 1 only). Group 2
	// still counts it: its leader must keep replicating to it.
	writers()
	if got := tc.raw(leaders[0]).do("CLUSTER", "DELNODE", "3"); got != "+OK" {
		t.Fatalf("DELNODE at group 1's leader: %q", got)
	}
	if got := tc.groupMembers(leaders[0]); fmt.Sprint(got) != "[[1 2 4] [1 2 3 4]]" {
		t.Fatalf("after DELNODE at group 1's leader, members %v", got)
	}
	for _, i := range []int{0, 1, 3} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			got := tc.groupMembers(i)
			if fmt.Sprint(got) == "[[1 2 4] [1 2 3 4]]" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: members %v, want node 3 out of group 1 only", i+1, got)
			}
		}
		if nodes := tc.raw(i).do("CLUSTER", "NODES"); !strings.Contains(nodes, tc.addrs()[2]+"@") {
			t.Fatalf("node %d forgot node 3, still a voter of group 2:\n%s", i+1, nodes)
		}
	}
	key := "after-del-1"
	for cluster.KeySlot([]byte(key)) < cluster.SplitSlots(2)[1][0].First {
		key += "x"
	}
	if err := cc.Set(ctx(), key, "v", 0).Err(); err != nil {
		t.Fatalf("SET %s (group 2): %v", key, err)
	}
	r3 := tc.raw(2)
	r3.do("READONLY")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got := r3.do("GET", key); got == "$v" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("node 3, still in group 2, never received %s: %q", key, got)
		}
	}

	// Then group 2; the change is idempotent where already done.
	if got := tc.raw(leaders[1]).do("CLUSTER", "DELNODE", "3"); got != "+OK" {
		t.Fatalf("DELNODE at group 2's leader: %q", got)
	}
	if got := tc.raw(leaders[0]).do("CLUSTER", "DELNODE", "3"); got != "+OK" {
		t.Fatalf("second DELNODE at group 1's leader: %q", got)
	}
	for _, i := range []int{0, 1, 3} {
		tc.waitMembers(i, []int64{1, 2, 4})
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			nodes := tc.raw(i).do("CLUSTER", "NODES")
			if !strings.Contains(nodes, tc.addrs()[2]+"@") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d still lists node 3:\n%s", i+1, nodes)
			}
		}
	}
	before := ackedCount()
	tc.stop(2)
	waitAcked(before + 300)
	close(stop)
	wg.Wait()
	now := tc.waitGroupLeaders(false)
	if slices.Contains(now, 2) {
		t.Fatalf("group leaders %v: node 3 was removed", now)
	}
	mu.Lock()
	defer mu.Unlock()
	for k, v := range acked {
		if got, err := cc.Get(ctx(), k).Result(); err != nil || got != v {
			t.Fatalf("acknowledged %s=%s, read %q (%v)", k, v, got, err)
		}
	}
	t.Logf("%d acknowledged writes read back; leaders %v", len(acked), now)
}
