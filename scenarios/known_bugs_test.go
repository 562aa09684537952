package scenarios

import (
	"testing"

	"github.com/keel-db/keel/sim"
)

// TestOpenWithNowReplaysExactly runs seeds with cluster.Options.NowNanos
// set at open, as a production runtime would to skip keys that expired
// while the node was down. It fails today: a key skipped while loading the
// snapshot is missing for the log entries after the snapshot, which were
// executed (and answered) while it was alive — EXPIRE answered 1, SET NX
// answered nil — so replay reaches a state no client saw. Un-skip when
// loadSnapshot filters by the snapshot's own time (or keeps the key until
// replay has passed its deadline).
func TestOpenWithNowReplaysExactly(t *testing.T) {
	t.Skip("known bug in cluster (NowNanos skips keys at snapshot load that later log entries saw alive); see docs/simulation.md, Known limits")
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
