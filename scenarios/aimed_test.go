package scenarios

import (
	"strings"
	"testing"

	"github.com/keel-db/keel/sim"
)

// The aimed scenarios pass every crash window and crash nodes there, and
// the correct program survives it; a variant can leave the aimed crashes
// out like any other fault.
func TestAimedCrashesLand(t *testing.T) {
	for _, tc := range []struct {
		name    string
		windows []string
	}{
		{"aimed-crash", []string{sim.MarkAppendUnsynced, sim.MarkSnapshotWrite, sim.MarkCompaction}},
		{"cluster-aimed-crash", []string{sim.MarkVoteUnsynced, sim.MarkAppendUnsynced, sim.MarkSnapshotInstall}},
	} {
		reached, aimed := map[string]int64{}, map[string]int64{}
		for seed := uint64(1); seed <= 5; seed++ {
			o := RunSeed(Lookup(tc.name), seed)
			if !o.Passed() {
				t.Errorf("%s seed %d: %s", tc.name, seed, o.Failures[0])
			}
			for m, n := range o.Markers {
				reached[m] += n
			}
			for k, n := range o.Faults {
				if m, ok := strings.CutPrefix(k, "aimed-"); ok {
					aimed[m] += n
				}
			}
		}
		t.Logf("%s: reached %s; crashed at %s", tc.name, sim.MarkerCounts(reached), sim.MarkerCounts(aimed))
		for _, m := range tc.windows {
			if reached[m] == 0 {
				t.Errorf("%s: no run passed %s", tc.name, m)
			}
			if aimed[m] == 0 {
				t.Errorf("%s: no crash landed at %s", tc.name, m)
			}
		}
	}
	s := Lookup("cluster-aimed-crash")
	o := RunSeed(s, 1)
	var keep []string
	for _, e := range o.FaultLog {
		if !e.Dropped && !strings.HasPrefix(e.ID, "a") {
			keep = append(keep, e.ID)
		}
	}
	v := RunVariant(s, 1, sim.Variant{LimitFaults: true, KeepFaults: keep})
	for k := range v.Faults {
		if strings.HasPrefix(k, "aimed-") {
			t.Fatalf("aimed crashes left out by the variant still struck: %s", v.FaultSummary())
		}
	}
}
