package scenarios

import (
	"testing"
	"time"

	"github.com/keel-db/keel/sim"
)

// TestVariantKeepingEverythingIsTheSeed: a variant that keeps every fault
// and every operation of a run is the run itself, trace for trace; one
// that keeps none injects nothing and sends nothing; Until ends the
// workload early. Single node and group.
func TestVariantKeepingEverythingIsTheSeed(t *testing.T) {
	for _, name := range []string{"crash-restart", "fsync-failure", "cluster-leader-crash"} {
		t.Run(name, func(t *testing.T) {
			s := Lookup(name)
			orig := RunSeed(s, 3)
			if orig.Injected() == 0 || len(orig.SentOps) == 0 {
				t.Fatalf("seed 3 of %s injected %d faults and sent %d ops", name, orig.Injected(), len(orig.SentOps))
			}
			all := sim.Variant{LimitFaults: true, LimitOps: true}
			for _, e := range orig.FaultLog {
				all.KeepFaults = append(all.KeepFaults, e.ID)
			}
			for _, o := range orig.SentOps {
				all.KeepOps = append(all.KeepOps, o.String())
			}
			same := RunSeed(s, 3, func(c *sim.Config) { c.Variant = all })
			if same.TraceHash != orig.TraceHash {
				t.Errorf("keeping every fault and op: trace %s, the seed's %s", same.TraceHash, orig.TraceHash)
			}
			none := RunSeed(s, 3, func(c *sim.Config) { c.Variant = sim.Variant{LimitFaults: true, LimitOps: true} })
			// (A group's final reads are not workload operations.)
			if none.Injected() != 0 || len(none.SentOps) != 0 || (none.Ops != 0 && s.Config(3).Group == nil) {
				t.Errorf("keeping nothing: %d faults injected, %d ops sent (%d ops)", none.Injected(), len(none.SentOps), none.Ops)
			}
			if !none.Passed() && name != "cluster-leader-crash" {
				t.Errorf("a run with no fault and no operation failed: %v", none.Failures)
			}
			short := RunSeed(s, 3, func(c *sim.Config) { c.Variant = sim.Variant{Until: 2 * time.Second} })
			if short.Ops >= orig.Ops/2 || short.Ops == 0 {
				t.Errorf("until 2s: %d ops, the seed %d", short.Ops, orig.Ops)
			}
			t.Logf("faults %d, ops %d; until 2s: ops %d", orig.Injected(), orig.Ops, short.Ops)
		})
	}
}
