package scenarios

import (
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// A replicated world replays to the same trace, and it is not a quiet
// one: elections, redirects and final reads on the leader all happen.
func TestClusterSameSeedSameTrace(t *testing.T) {
	s := Lookup("cluster-leader-crash")
	var tr strings.Builder
	a := RunSeed(s, 3, func(c *sim.Config) { c.Trace = &tr })
	b := RunSeed(s, 3)
	if a.TraceHash != b.TraceHash {
		t.Fatalf("seed 3: trace-hash %s then %s", a.TraceHash, b.TraceHash)
	}
	for _, want := range []string{"raft leader term=", "MOVED", "power-off", "final reads done"} {
		if !strings.Contains(tr.String(), want) {
			t.Errorf("trace of seed 3 never shows %q", want)
		}
	}
	if !a.Passed() || a.Linearizability != "ok" || a.Ops < 1000 {
		t.Fatalf("seed 3: passed=%v lin=%s ops=%d failures=%v", a.Passed(), a.Linearizability, a.Ops, a.Failures)
	}
}

// The liveness check bites: with the nodes cut off from each other until
// 6 s, no leader exists and no write is acknowledged in the first 5 s.
func TestClusterLivenessBites(t *testing.T) {
	s := Lookup("cluster-leader-partition")
	out := RunSeed(s, 1, func(c *sim.Config) {
		c.Schedule = func(r *sim.Run) {
			ids := r.Group.IDs()
			for _, a := range ids {
				r.Net.Isolate(a, ids)
			}
			r.At(6*time.Second, r.Net.Heal)
		}
	})
	if len(out.Failures) != 1 || !strings.Contains(out.Failures[0], "liveness: no write") {
		t.Fatalf("failures %q, want exactly the liveness failure", out.Failures)
	}
	if out.Linearizability != "ok" {
		t.Fatalf("linearizability %s, want ok (final reads after healing)", out.Linearizability)
	}
}

// Planted bugs are caught in the replicated world too: acknowledging
// before fsync loses acknowledged writes when every node loses power at
// the end; a leader serving GETs from a snapshot view reads stale values.
func TestClusterCatchesPlantedBugs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		scenario string
		seeds    [2]uint64
		knobs    cluster.TestingKnobs
	}{
		{"ack-before-fsync", "cluster-leader-crash", [2]uint64{1, 3}, cluster.TestingKnobs{AckBeforeFsync: true}},
		{"stale-read", "cluster-leader-crash", [2]uint64{7, 9}, cluster.TestingKnobs{StaleReadFromSnapshot: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Lookup(tc.scenario)
			var caught []uint64
			for seed := tc.seeds[0]; seed <= tc.seeds[1]; seed++ {
				out := RunSeed(s, seed, func(c *sim.Config) {
					k := tc.knobs
					c.Node.Knobs = &k
				})
				if !out.Passed() {
					caught = append(caught, seed)
					t.Logf("seed %d: lin=%s %.300s", seed, out.Linearizability, out.Failures[0])
				}
			}
			if len(caught) == 0 {
				t.Fatalf("no seed of %d..%d caught %s", tc.seeds[0], tc.seeds[1], tc.name)
			}
		})
	}
}

// The membership story happens, under load and a partition: n4 joins;
// the admin's ADDNODE at the leader times out when the leader is cut off,
// the next attempt meets the election (TRYAGAIN), and the new leader
// applies it; a founder is removed and stopped, and the run checks out.
func TestClusterMembership(t *testing.T) {
	var tr strings.Builder
	out := RunSeed(Lookup("cluster-membership"), 7, func(c *sim.Config) { c.Trace = &tr })
	if !out.Passed() || out.Linearizability != "ok" || out.Ops < 1000 {
		t.Fatalf("seed 7: passed=%v lin=%s ops=%d failures=%v", out.Passed(), out.Linearizability, out.Ops, out.Failures)
	}
	for _, want := range []string{"n4 start", "admin timeout #2 at n3", "admin return #4 (error) TRYAGAIN",
		"admin done CLUSTER ADDNODE 4 n4:6379 (members 1,2,3,4)", "admin done CLUSTER DELNODE 2 (members 1,3,4)",
		"n4 address book: n2 removed", "n2 stop for good", "net partition"} {
		if !strings.Contains(tr.String(), want) {
			t.Errorf("trace of seed 7 never shows %q", want)
		}
	}
}
