package scenarios

import (
	"testing"
)

// TestScenariosShort runs every scenario for a few seeds. Failures here
// are findings about the code under test; the test reports them all.
func TestScenariosShort(t *testing.T) {
	seeds := uint64(3)
	if testing.Short() {
		seeds = 2
	}
	for _, s := range All() {
		t.Run(s.Name, func(t *testing.T) {
			for seed := uint64(1); seed <= seeds; seed++ {
				out := RunSeed(s, seed)
				t.Logf("seed %d: ops=%d unknown=%d oracle=%+v faults=[%s] lin=%s sim=%s events=%d",
					seed, out.Ops, out.Unknown, out.Oracle, out.FaultSummary(), out.Linearizability, out.SimTime, out.Events)
				if out.Oracle.Checked == 0 {
					t.Errorf("seed %d checked nothing", seed)
				}
				for _, f := range out.Failures {
					t.Errorf("seed %d: %s", seed, f)
				}
			}
		})
	}
}
