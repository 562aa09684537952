package scenarios

import (
	"testing"

	"github.com/keel-db/keel/sim"
)

// TestOpenWithNowReplaysExactly runs seeds with cluster.Options.NowNanos
// set at open. These seeds used to fail: loading skipped keys expired at
// the time of opening, but the log entries after the snapshot had run
// (and answered) while those keys were alive — EXPIRE answered 1, SET NX
// answered nil — so replay reached a state no client saw. Loading now cuts
// off at the snapshot's own time.
func TestOpenWithNowReplaysExactly(t *testing.T) {
	for _, c := range []struct {
		scenario string
		seed     uint64
	}{{"clock-skew", 2}, {"clock-skew", 3}, {"fsync-failure", 3}} {
		out := RunSeed(Lookup(c.scenario), c.seed, func(cfg *sim.Config) { cfg.Node.OpenWithNow = true })
		if !out.Passed() {
			t.Errorf("%s seed %d with OpenWithNow: %s", c.scenario, c.seed, out.Failures[0])
		}
	}
}
