package server

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
)

// waitGroupLeader waits until every running node knows the same leader
// of group g and returns it.
func (tc *testCluster) waitGroupLeader(g uint64) uint64 {
	tc.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		lead, agreed := uint64(0), true
		for _, cs := range tc.srvs {
			if cs == nil {
				continue
			}
			l := cs.srv.Node().LeaderOf(g)
			if l == 0 || lead != 0 && l != lead {
				agreed = false
			}
			lead = l
		}
		if agreed && lead != 0 {
			return lead
		}
		if time.Now().After(deadline) {
			tc.t.Fatalf("the nodes never agreed on group %d's leader", g)
		}
	}
}

// TestSplitOnline: a 6-node placed cluster of 3 groups of 3 (--groups-max
// 4) splits group 2 while a go-redis ClusterClient writes: CLUSTER
// ADDGROUP adds group 4 on three nodes, which bootstrap it, and the upper
// half of group 2's slots moves to it with the slot move. Every
// acknowledged write is readable afterwards, every key is on exactly 3
// nodes, every node's CLUSTER SLOTS shows 4 ranges, and the writer saw no
// error (redirects and TRYAGAIN are retried inside the client).
func TestSplitOnline(t *testing.T) {
	if testing.Short() {
		t.Skip("a split takes several seconds")
	}
	tc := &testCluster{t: t, dir: t.TempDir(), groups: 3, replicas: 3, groupsMax: 4}
	tc.startAll(6)
	tc.waitPlacedTopology(3, 3)
	cc := tc.clusterClient()

	w := startClusterWriter(cc)
	time.Sleep(time.Second) // keys in group 2's upper half before the split

	start := time.Now()
	tc.metaChange("ADDGROUP")
	lead := tc.waitGroupLeader(4)
	var founders []int
	for i, cs := range tc.srvs {
		if slices.Contains(cs.srv.Node().HostedGroups(), 4) {
			founders = append(founders, i+1)
		}
	}
	t.Logf("group 4 added on nodes %v, leader %d, in %s", founders, lead, time.Since(start).Round(time.Millisecond))
	if len(founders) != 3 {
		t.Fatalf("group 4 is hosted on nodes %v, want 3 of them", founders)
	}
	if got := tc.srvs[0].srv.Node().GroupCount(); got != 4 {
		t.Fatalf("GroupCount %d after ADDGROUP", got)
	}
	// A second ADDGROUP is refused at --groups-max.
	c := redis.NewClient(&redis.Options{Addr: tc.srvs[0].addr})
	err := c.Do(ctx(), "CLUSTER", "ADDGROUP").Err()
	c.Close()
	if err == nil || !strings.Contains(err.Error(), "MOVED") && !strings.Contains(err.Error(), "at most 4 groups") {
		t.Fatalf("ADDGROUP past --groups-max: %v", err)
	}

	moved := 0
	d := newReshardDriver(tc)
	for _, r := range cluster.SplitRanges(cluster.SplitSlots(3)[1]) {
		moved += d.run(r, 2, 4, 50)
	}
	t.Logf("split group 2 in %s: %d keys moved to group 4", time.Since(start).Round(time.Millisecond), moved)
	time.Sleep(time.Second)
	acked := w.finish(t)
	if moved == 0 {
		t.Fatal("the split moved no key")
	}

	// Every node routes 4 groups: 4 ranges in CLUSTER SLOTS.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		bad := ""
		for i := range tc.srvs {
			c := redis.NewClient(&redis.Options{Addr: tc.srvs[i].addr})
			slots, err := c.ClusterSlots(ctx()).Result()
			info, _ := c.Info(ctx(), "cluster").Result()
			c.Close()
			if err != nil || len(slots) != 4 || !strings.Contains(info, "replica_groups:4") {
				bad = "node " + strconv.Itoa(i+1) + ": CLUSTER SLOTS has " + strconv.Itoa(len(slots)) + " ranges"
			}
		}
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(bad)
		}
	}
	tc.waitThreeCopies(acked) // and in the group that owns its slot now
	t.Logf("%d acknowledged writes, all readable, each on 3 of the 6 nodes", len(acked))
}
