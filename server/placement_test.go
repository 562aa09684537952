package server

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/node"
)

// waitPlacedTopology waits until every node knows the same leader of
// every group, then checks that every node's CLUSTER SLOTS describes
// every group: that leader as master and replicas-1 replicas, its
// placed nodes. It returns each group's leader (node id).
func (tc *testCluster) waitPlacedTopology(groups, replicas int) []uint64 {
	tc.t.Helper()
	// Leadership may move between reading the leaders and asking CLUSTER
	// SLOTS (the tests hand it to the placement's first nodes): a
	// mismatch is retried, and reported only once the deadline passes.
	var mismatch string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		leaders, agreed := tc.placedLeaders(groups)
		if agreed {
			if mismatch = tc.slotsMismatch(groups, replicas, leaders); mismatch == "" {
				return leaders
			}
		}
		if time.Now().After(deadline) {
			if !agreed {
				tc.t.Fatalf("the nodes never agreed on every group's leader")
			}
			tc.t.Fatal(mismatch)
		}
	}
}

// placedLeaders is every group's leader, and whether every node agrees.
func (tc *testCluster) placedLeaders(groups int) ([]uint64, bool) {
	leaders := make([]uint64, groups)
	agreed := true
	for g := range groups {
		for _, cs := range tc.srvs {
			l := cs.srv.Node().LeaderOf(uint64(g + 1))
			if l == 0 || leaders[g] != 0 && l != leaders[g] {
				agreed = false
			}
			leaders[g] = l
		}
	}
	return leaders, agreed
}

// slotsMismatch is how a node's CLUSTER SLOTS differs from the placement
// with these leaders ("" when none does).
func (tc *testCluster) slotsMismatch(groups, replicas int, leaders []uint64) string {
	place := tc.srvs[0].srv.Node().Placement()
	for i := range tc.srvs {
		c := (&testServer{addr: tc.srvs[i].addr}).client(tc.t, nil)
		slots, err := c.ClusterSlots(ctx()).Result()
		c.Close()
		if err != nil || len(slots) != groups {
			return fmt.Sprintf("node %d: CLUSTER SLOTS has %d ranges (%v), want %d", i+1, len(slots), err, groups)
		}
		for _, s := range slots {
			g := s.Start*groups/cluster.SlotCount + 1
			var got []string
			for _, n := range s.Nodes {
				got = append(got, n.Addr)
			}
			var want []string
			want = append(want, tc.addrs()[leaders[g-1]-1])
			for _, id := range place.Of(uint64(g)) {
				if id != leaders[g-1] {
					want = append(want, tc.addrs()[id-1])
				}
			}
			if len(got) != replicas || got[0] != want[0] || !sameSet(got, want) {
				return fmt.Sprintf("node %d: range %d-%d served by %v, want %v (leader first)", i+1, s.Start, s.End, got, want)
			}
		}
	}
	return ""
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestPlacementSixNodes: six servers, six groups, three replicas. Each
// node opens (and keeps on disk) only its three groups; every node
// answers CLUSTER SLOTS for the whole cluster, each group's leader as
// master and its two followers as replicas; a request for a group a node
// does not host gets -MOVED to its leader; go-redis's ClusterClient
// writes and reads through it; and every key is stored on exactly three
// nodes.
func TestPlacementSixNodes(t *testing.T) {
	tc := &testCluster{t: t, dir: t.TempDir(), groups: 6, replicas: 3}
	tc.startAll(6)
	for i, cs := range tc.srvs {
		hosted := cs.srv.Node().HostedGroups()
		if len(hosted) != 3 {
			t.Fatalf("node %d hosts %v, want three groups", i+1, hosted)
		}
		for g := uint64(1); g <= 6; g++ {
			_, err := os.Stat(node.GroupDir(filepath.Join(tc.dir, strconv.Itoa(i+1)), 6, g))
			if exists := err == nil; exists != slices.Contains(hosted, g) {
				t.Errorf("node %d: group %d's directory exists=%v, hosted=%v", i+1, g, exists, slices.Contains(hosted, g))
			}
		}
	}
	leaders := tc.waitPlacedTopology(6, 3)
	t.Logf("group leaders %v", leaders)
	info := tc.raw(0).do("INFO", "cluster")
	if want := "replica_groups_hosted_ids:1,3,5"; !strings.Contains(info, want) {
		t.Errorf("INFO cluster on node 1 lacks %s: %s", want, info)
	}

	// A node that does not host a slot's group redirects to its leader.
	// Leadership may still move to the placement's first nodes, and the
	// others hear of it from the views sent twice a second: the answers
	// are compared with the leader every node names at the time.
	key := "placed-key"
	slot := cluster.KeySlot([]byte(key))
	g := uint64(slot*6/cluster.SlotCount + 1)
	eventually(t, "nodes not hosting group "+strconv.Itoa(int(g))+" redirect to its leader", func() string {
		now, agreed := tc.placedLeaders(6)
		if !agreed {
			return fmt.Sprintf("the nodes do not agree on the leaders (%v)", now)
		}
		want := "-MOVED " + strconv.Itoa(slot) + " " + tc.addrs()[now[g-1]-1]
		for i, cs := range tc.srvs {
			if cs.srv.Node().Hosts(g) {
				continue
			}
			if got := tc.raw(i).do("SET", key, "v"); got != want {
				return fmt.Sprintf("node %d: SET answered %s, want %s", i+1, got, want)
			}
			// Sharded pub/sub too, as Redis 7 redirects it.
			for _, cmd := range [][]string{{"SSUBSCRIBE", key}, {"SPUBLISH", key, "m"}} {
				if got := tc.raw(i).do(cmd...); got != want {
					return fmt.Sprintf("node %d: %s answered %s, want %s", i+1, cmd[0], got, want)
				}
			}
		}
		return ""
	})

	cc := tc.clusterClient()
	const keys = 3000
	for k := range keys {
		if err := cc.Set(ctx(), "key:"+strconv.Itoa(k), k, 0).Err(); err != nil {
			t.Fatalf("SET key:%d: %v", k, err)
		}
	}
	for k := 0; k < keys; k += 7 {
		if v, err := cc.Get(ctx(), "key:"+strconv.Itoa(k)).Int(); err != nil || v != k {
			t.Fatalf("GET key:%d = %d, %v", k, v, err)
		}
	}
	// Every key on exactly three nodes, once every follower applied.
	var perNode [6]int
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		copies := make([]int, keys)
		perNode = [6]int{}
		for i, cs := range tc.srvs {
			for _, g := range cs.srv.Node().HostedGroups() {
				cs.srv.do(g, func() {
					db := cs.srv.Node().Replica(g).DB()
					now := time.Now().UnixNano()
					for k := range keys {
						if db.Live(now, []byte("key:"+strconv.Itoa(k))) {
							copies[k]++
							perNode[i]++
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
			t.Fatalf("key:%d is stored on %d nodes, want 3", bad, copies[bad])
		}
	}
	t.Logf("keys per node (of %d, 3 copies each): %v", keys, perNode)
	for i, c := range perNode {
		if c < keys/4 || c > keys*3/4 {
			t.Errorf("node %d stores %d of %d keys: placement is not spreading them", i+1, c, keys)
		}
	}

	// Leadership spreads to each group's first placed node: one each.
	for deadline := time.Now().Add(40 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		leaders = tc.waitPlacedTopology(6, 3)
		spread := true
		for g, l := range leaders {
			spread = spread && l == tc.srvs[0].srv.Node().Placement().Preferred(uint64(g+1))
		}
		if spread {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leaders %v never spread to the placement's first nodes", leaders)
		}
	}
}

// TestPlacementNodeLoss: a node of a placed cluster stops. Each of its
// three groups keeps two of its three replicas, elects a leader if it led
// one, and the other nodes learn the new leaders from the pings: a
// ClusterClient keeps reading and writing keys of every group. The node
// comes back and catches up, each key again on exactly three nodes.
func TestPlacementNodeLoss(t *testing.T) {
	tc := &testCluster{t: t, dir: t.TempDir(), groups: 6, replicas: 3}
	tc.startAll(6)
	leaders := tc.waitPlacedTopology(6, 3)
	cc := tc.clusterClient()
	keys := make([]string, 0, 60)
	for k := 0; len(keys) < 60; k++ { // ten keys per group
		key := "k" + strconv.Itoa(k)
		g := cluster.KeySlot([]byte(key))*6/cluster.SlotCount + 1
		n := 0
		for _, o := range keys {
			if cluster.KeySlot([]byte(o))*6/cluster.SlotCount+1 == g {
				n++
			}
		}
		if n < 10 {
			keys = append(keys, key)
		}
	}
	for _, k := range keys {
		if err := cc.Set(ctx(), k, "before", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	victim := int(leaders[0] - 1) // leads group 1, hosts two more
	hosted := tc.srvs[victim].srv.Node().HostedGroups()
	tc.stop(victim)
	t.Logf("stopped node %d (hosting groups %v)", victim+1, hosted)
	for _, k := range keys {
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if err = cc.Set(ctx(), k, "after", 0).Err(); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("SET %s with node %d down: %v", k, victim+1, err)
		}
		if v, err := cc.Get(ctx(), k).Result(); err != nil || v != "after" {
			t.Fatalf("GET %s with node %d down: %q, %v", k, victim+1, v, err)
		}
	}
	// A node not hosting a group learns its leader from the views the
	// group's nodes send twice a second, so it may lag the writes above.
	eventually(t, "every node names a live leader", func() string {
		for i, cs := range tc.srvs {
			if cs == nil {
				continue
			}
			for g := uint64(1); g <= 6; g++ {
				if l := cs.srv.Node().LeaderOf(g); l == uint64(victim+1) {
					return fmt.Sprintf("node %d names the stopped node %d as group %d's leader", i+1, victim+1, g)
				}
			}
		}
		return ""
	})
	tc.restart(victim)
	eventually(t, "the restarted node holds every key of its groups", func() string {
		cs := tc.srvs[victim]
		for _, g := range cs.srv.Node().HostedGroups() {
			missing := ""
			cs.srv.do(g, func() {
				db := cs.srv.Node().Replica(g).DB()
				for _, k := range keys {
					if cluster.KeySlot([]byte(k))*6/cluster.SlotCount+1 == int(g) && !db.Live(time.Now().UnixNano(), []byte(k)) {
						missing = k
					}
				}
			})
			if missing != "" {
				return "group " + strconv.FormatUint(g, 10) + " lacks " + missing
			}
		}
		return ""
	})
}

// TestPlacementReshard: slots move between two groups placed on disjoint
// nodes (group 1 on nodes 1-3, group 4 on 4-6), through their leaders,
// with the steps sent to any node and redirected; afterwards every node
// routes the range to group 4, the keys read back through a
// ClusterClient, and each moved key lives on group 4's three nodes only.
func TestPlacementReshard(t *testing.T) {
	tc := &testCluster{t: t, dir: t.TempDir(), groups: 6, replicas: 3}
	tc.startAll(6)
	tc.waitPlacedTopology(6, 3)
	place := tc.srvs[0].srv.Node().Placement()
	if !slices.Equal(place.Of(1), []uint64{1, 2, 3}) || !slices.Equal(place.Of(4), []uint64{4, 5, 6}) {
		t.Fatalf("placement %v: the test wants groups 1 and 4 on disjoint nodes", place.Replicas)
	}
	cc := tc.clusterClient()
	moved := cluster.SlotRange{First: 0, Last: 999}
	var keys []string
	for k := 0; len(keys) < 200; k++ {
		if key := "m" + strconv.Itoa(k); moved.Contains(cluster.KeySlot([]byte(key))) {
			keys = append(keys, key)
		}
	}
	for _, k := range keys {
		if err := cc.Set(ctx(), k, k, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	if n := newReshardDriver(tc).run(moved, 1, 4, 16); n != len(keys) {
		t.Fatalf("moved %d keys, want %d", n, len(keys))
	}
	eventually(t, "every node routes the moved range to group 4", func() string {
		for i, cs := range tc.srvs {
			c := (&testServer{addr: cs.addr}).client(t, nil)
			slots, err := c.ClusterSlots(ctx()).Result()
			c.Close()
			if err != nil {
				return err.Error()
			}
			for _, s := range slots {
				if s.Start == 0 {
					if s.End != 999 || s.Nodes[0].Addr != tc.addrs()[tc.srvs[0].srv.Node().LeaderOf(4)-1] {
						return "node " + strconv.Itoa(i+1) + " serves 0-" + strconv.Itoa(s.End) + " from " + s.Nodes[0].Addr
					}
				}
			}
		}
		return ""
	})
	for _, k := range keys {
		if v, err := cc.Get(ctx(), k).Result(); err != nil || v != k {
			t.Fatalf("GET %s after the move: %q, %v", k, v, err)
		}
	}
	eventually(t, "each moved key on group 4's nodes only", func() string {
		for i, cs := range tc.srvs {
			for _, g := range cs.srv.Node().HostedGroups() {
				held := 0
				cs.srv.do(g, func() {
					db := cs.srv.Node().Replica(g).DB()
					for _, k := range keys {
						if db.Live(time.Now().UnixNano(), []byte(k)) {
							held++
						}
					}
				})
				if want := map[bool]int{true: len(keys), false: 0}[g == 4]; held != want {
					return "node " + strconv.Itoa(i+1) + " group " + strconv.FormatUint(g, 10) + " holds " + strconv.Itoa(held) + " moved keys, want " + strconv.Itoa(want)
				}
			}
		}
		return ""
	})
}
