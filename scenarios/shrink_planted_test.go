package scenarios

import (
	"testing"
	"time"

	"github.com/keel-db/keel/sim"
)

// TestShrinkEveryPlantedBug (long mode) shrinks the first failing seed of
// each planted bug's short range and reports how much went: the figures
// in docs/simulation.md. Every shrunk case must fail the seed's check, be
// smaller than the seed's run and replay exactly.
func TestShrinkEveryPlantedBug(t *testing.T) {
	if testing.Short() {
		t.Skip("shrinks every planted bug: minutes")
	}
	for _, p := range Planted {
		t.Run(p.Name, func(t *testing.T) {
			s := Lookup(PlantedPrefix + p.Name)
			for seed := p.Seeds[0]; seed <= p.Seeds[1]; seed++ {
				if RunSeed(s, seed).Passed() {
					continue
				}
				start := time.Now()
				res, err := Shrink(s, seed, sim.Variant{}, ShrinkOptions{Budget: 3 * time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				o, f := res.Original, res.Final
				t.Logf("SHRUNK %s seed %d (%s): faults %d -> %d, ops %d -> %d, %d runs, %s%s", p.Name, seed, res.Check,
					o.Injected(), f.Injected(), len(o.SentOps), len(f.SentOps), res.Runs, time.Since(start).Round(time.Second),
					map[bool]string{true: " (budget spent)", false: ""}[res.Exhausted])
				if f.Injected()+len(f.SentOps) >= o.Injected()+len(o.SentOps) {
					t.Errorf("nothing removed")
				}
				// The case replays exactly and still fails its check.
				c := res.Case(s)
				if again := c.Run(); again.TraceHash != c.TraceHash || !failsCheck(again, res.Check) {
					t.Errorf("the case replays to %s (fails %s: %v), recorded %s", again.TraceHash, res.Check,
						failsCheck(again, res.Check), c.TraceHash)
				}
				return
			}
			t.Skipf("no failing seed in %v", p.Seeds)
		})
	}
}
