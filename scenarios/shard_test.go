package scenarios

import (
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// The sharded scenarios replay with their story: moves back and forth
// under load and faults, clients redirected by MOVED and ASK (then
// served with ASKING) and told TRYAGAIN, the final slot map checked.
func TestClusterShardedStories(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		seed     uint64
		want     []string
	}{
		{"cluster-reshard", 1, []string{"resharder done move", "g1->g2", "g2->g1", "(error) ASK ", "(asking)",
			"TRYAGAIN", "(error) MOVED", "resharder timeout", "power-off", "final slots g2"}},
		{"cluster-groups", 2, []string{"resharder done move", "g1->g3", "g3->g1", "(error) ASK ", "(asking)",
			"leader=n1 g3", "submit 1 g2:", "power-off", "final slots g3"}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			var tr strings.Builder
			out := RunSeed(Lookup(tc.scenario), tc.seed, func(c *sim.Config) { c.Trace = &tr })
			if !out.Passed() || out.Linearizability != "ok" || out.Ops < 1000 {
				t.Fatalf("seed %d: passed=%v lin=%s ops=%d failures=%v", tc.seed, out.Passed(), out.Linearizability, out.Ops, out.Failures)
			}
			for _, want := range tc.want {
				if !strings.Contains(tr.String(), want) {
					t.Errorf("trace of seed %d never shows %q", tc.seed, want)
				}
			}
			if n := strings.Count(tr.String(), "resharder done move"); n < 2 {
				t.Errorf("seed %d: %d moves finished, want at least 2", tc.seed, n)
			}
		})
	}
}

// firstTagSlot is the slot of the workload's first hash tag, which both
// sharded scenarios place in group 1's moved range.
func firstTagSlot(c *sim.Config) cluster.SlotRange {
	s := cluster.KeySlot([]byte(c.Workload.KeyTags[0]))
	return cluster.SlotRange{First: s, Last: s}
}

// The sharded checks bite: a move still running when the workload ends
// is unfinished and leaves its slots half moved; a resharder that drops
// the keys it moves loses acknowledged writes.
func TestClusterShardChecksBite(t *testing.T) {
	s := Lookup("cluster-reshard")
	out := RunSeed(s, 2, func(c *sim.Config) {
		rg := firstTagSlot(c)
		c.Schedule = func(r *sim.Run) {
			r.At(clusterDuration-10*time.Millisecond, func() {
				r.Group.Reshard(sim.SlotMoveSpec{Range: rg, From: 1, To: 2, Batch: 1}, nil)
			})
		}
	})
	// Depending on where the move stopped, the keys it locked keep the
	// final reads from completing, or the slots are left half moved.
	all := strings.Join(out.Failures, "\n")
	if !strings.Contains(all, "had not finished when the workload ended") ||
		!strings.Contains(all, "liveness: the final reads did not complete") && !strings.Contains(all, "still has a move half done") {
		t.Errorf("late move: failures %q", out.Failures)
	}

	var tr strings.Builder
	out = RunSeed(s, 2, func(c *sim.Config) {
		rg := firstTagSlot(c)
		c.Trace = &tr
		c.Schedule = func(r *sim.Run) {
			r.At(3*time.Second, func() {
				r.Group.Reshard(sim.SlotMoveSpec{Range: rg, From: 1, To: 2, Batch: 2, DropImports: true}, nil)
			})
		}
	})
	if out.Passed() || out.Linearizability != "illegal" {
		t.Fatalf("dropped imports: passed=%v lin=%s failures=%q, want an illegal history", out.Passed(), out.Linearizability, out.Failures)
	}
	if !strings.Contains(tr.String(), "planted bug: skip IMPORTKEYS") || !strings.Contains(tr.String(), "resharder done move") {
		t.Fatalf("dropped imports: the move did not run as planted")
	}
}

// The multi-group membership story replays: n4 joins every group, each
// group applying the change at its leader; in seed 7 the admin's ADDNODE
// times out at a crashing leader and group 2 applies it later, and the
// removal of n2 meets nodes that lead no group during an election
// ("leads no replica group") until group 2's new leader applies it; in
// seed 10 the removal of n3 lands in group 2 first, then group 1.
func TestClusterGroupsMembership(t *testing.T) {
	for _, tc := range []struct {
		seed uint64
		want []string
	}{
		{7, []string{"admin done CLUSTER ADDNODE 4 n4:6379 in g1 (its members 1,2,3,4)", "admin timeout #4 at n2",
			"admin done CLUSTER ADDNODE 4 n4:6379 in g2 (its members 1,2,3,4)", "admin done CLUSTER DELNODE 2 in g1 (its members 1,3,4)",
			"leads no replica group", "admin done CLUSTER DELNODE 2 in g2 (its members 1,3,4)",
			"admin done CLUSTER DELNODE 2 in every group (members 1,3,4)", "n2 stop for good", "resharder done move"}},
		{10, []string{"admin done CLUSTER DELNODE 3 in g2 (its members 1,2,4)", "admin done CLUSTER DELNODE 3 in g1 (its members 1,2,4)",
			"n1 refuse message from n3", "n3 stop for good", "resharder done move"}},
	} {
		var tr strings.Builder
		out := RunSeed(Lookup("cluster-groups-membership"), tc.seed, func(c *sim.Config) { c.Trace = &tr })
		if !out.Passed() || out.Linearizability != "ok" || out.Ops < 1000 {
			t.Fatalf("seed %d: passed=%v lin=%s ops=%d failures=%v", tc.seed, out.Passed(), out.Linearizability, out.Ops, out.Failures)
		}
		for _, want := range tc.want {
			if !strings.Contains(tr.String(), want) {
				t.Errorf("trace of seed %d never shows %q", tc.seed, want)
			}
		}
	}
}
