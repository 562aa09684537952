package scenarios

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/sim"
)

// Exploration starts with the plain seeds in order (the warm-up), then
// keeps runs that bring new features and derives mutants from them, is the
// same sequence of runs given the same options, and finds a planted bug,
// whose failure it hands over as a case that replays.
func TestExploreFindsAndReplays(t *testing.T) {
	s := Lookup("planted-vote-reject-lost")
	var hashes []string
	opts := ExploreOptions{FirstSeed: 1001, MaxRuns: 16, Seed: 1,
		OnRun: func(_ int, _ bool, _ []string, o *Outcome) { hashes = append(hashes, o.TraceHash) }}
	res := Explore(s, opts)
	t.Logf("%d runs (%d fresh, %d mutants, warm-up %d), corpus %d, features %d, first failure at run %d", res.Runs, res.Fresh,
		res.Mutants, res.Warmup, len(res.Corpus), len(res.Features), res.FirstFailRun)
	if res.Mutants == 0 || len(res.Corpus) < 2 || len(res.Features) < 5 {
		t.Fatalf("no exploration: %d mutants, corpus %d, features %d", res.Mutants, len(res.Corpus), len(res.Features))
	}
	if res.Warmup < warmMin || res.Warmup > warmMax {
		t.Fatalf("warm-up of %d runs, want %d to %d", res.Warmup, warmMin, warmMax)
	}
	if len(res.Failures) == 0 {
		t.Fatal("the planted bug was not found in 16 runs")
	}
	c := res.Failures[0]
	// Found in the warm-up: at the very run a plain sweep from 1001
	// finds it, as that seed's own run.
	if res.FirstFailRun <= res.Warmup && (c.Seed != 1000+uint64(res.FirstFailRun) || !c.Variant.IsZero() || c.TraceHash != RunSeed(s, c.Seed).TraceHash) {
		t.Fatalf("failure at warm-up run %d is seed %d under %q, not the plain seed %d", res.FirstFailRun, c.Seed, c.Variant.String(),
			1000+res.FirstFailRun)
	}
	if again := c.Run(); again.TraceHash != c.TraceHash || again.Passed() {
		t.Fatalf("the failing case replays to %s (passed %v), recorded %s", again.TraceHash, again.Passed(), c.TraceHash)
	}
	first := hashes
	hashes = nil
	Explore(s, opts)
	if len(hashes) != len(first) {
		t.Fatalf("a second exploration ran %d runs, the first %d", len(hashes), len(first))
	}
	for i := range first {
		if hashes[i] != first[i] {
			t.Fatalf("run %d of a second exploration differs", i+1)
		}
	}
	if f := runFeatures(&Outcome{Result: &sim.Result{Markers: map[string]int64{"x": 5}}}); f[1] != "marker x 3" {
		t.Fatalf("features %v", f)
	}
}

// TestExploreVersusSeeds (long mode) measures, for each planted bug, the
// runs plain seeds need to find it and the runs exploration needs, both
// from seeds 1001, 2001, ... 5001 (past the seed ranges the planted bugs
// were tuned on):
// the figures in docs/simulation.md.
func TestExploreVersusSeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("explores every planted bug: minutes")
	}
	const limit = 150
	starts := []uint64{1001, 2001, 3001, 4001, 5001}
	if env := os.Getenv("KEEL_VERSUS_STARTS"); env != "" {
		// Other starts (comma-separated), to widen a measurement.
		starts = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatalf("KEEL_VERSUS_STARTS: %v", err)
			}
			starts = append(starts, n)
		}
	}
	for _, p := range Planted {
		t.Run(p.Name, func(t *testing.T) {
			s := Lookup(PlantedPrefix + p.Name)
			var plainSum, exploreSum int
			var plainRuns, exploreRuns []int
			for _, first := range starts {
				plain := limit + 1 // not found: counted as one past the limit
				for i := 0; i < limit; i++ {
					if !RunSeed(s, first+uint64(i)).Passed() {
						plain = i + 1
						break
					}
				}
				res := Explore(s, ExploreOptions{FirstSeed: first, MaxRuns: limit, StopAtFailure: true, Seed: first})
				found := res.FirstFailRun
				if found == 0 {
					found = limit + 1
				}
				plainRuns, exploreRuns = append(plainRuns, plain), append(exploreRuns, found)
				plainSum += plain
				exploreSum += found
			}
			t.Logf("VERSUS %s: plain seeds %v (mean %.1f), exploration %v (mean %.1f); %d = not found in %d",
				p.Name, plainRuns, float64(plainSum)/float64(len(starts)), exploreRuns, float64(exploreSum)/float64(len(starts)), limit+1, limit)
		})
	}
}

// The variant knobs exploration and shrinking lean on: a salt or an aim
// held back past the end of the run changes nothing, one from the start
// changes the run, and a run with stable disk draws is as deterministic
// as any.
func TestVariantPrefixKnobs(t *testing.T) {
	s := Lookup("crash-restart")
	plain := RunSeed(s, 1).TraceHash
	salt := map[string]uint64{"scenario/faults": 7}
	late := time.Hour
	cases := []struct {
		name string
		v    sim.Variant
		same bool
	}{
		{"salt from past the end", sim.Variant{Salt: salt, SaltFrom: late}, true},
		{"aim from past the end", sim.Variant{Aim: map[string]float64{sim.MarkAppendUnsynced: 1}, AimFrom: late}, true},
		{"salt from the start", sim.Variant{Salt: salt}, false},
		{"salt from 3 s", sim.Variant{Salt: salt, SaltFrom: 3 * time.Second}, false},
		{"aim from 3 s", sim.Variant{Aim: map[string]float64{sim.MarkAppendUnsynced: 1}, AimFrom: 3 * time.Second}, false},
		{"stable disk", sim.Variant{StableDisk: true}, false},
		{"segments scaled", sim.Variant{SegmentScale: 0.3}, false},
	}
	for _, c := range cases {
		o := RunVariant(s, 1, c.v)
		if (o.TraceHash == plain) != c.same {
			t.Errorf("%s: trace-hash %s, the seed's %s (want the same: %v)", c.name, o.TraceHash, plain, c.same)
		}
		if again := RunVariant(s, 1, c.v); again.TraceHash != o.TraceHash {
			t.Errorf("%s: not deterministic (%s, then %s)", c.name, o.TraceHash, again.TraceHash)
		}
	}
	// Stable tears deal other tears than the seed's (torn-writes keeps
	// part of every unsynced tail it crashes on), another deal others
	// again, each as deterministic as any run.
	torn := Lookup("torn-writes")
	hashes := map[string]string{"the seed's run": RunSeed(torn, 1).TraceHash}
	for _, deal := range []uint64{0, 1} {
		v := sim.Variant{StableTears: true, TearDeal: deal}
		o := RunVariant(torn, 1, v)
		if o.Faults["torn"] == 0 {
			t.Errorf("%s: no tear", v.String())
		}
		for name, h := range hashes {
			if h == o.TraceHash {
				t.Errorf("%s: the trace of %s", v.String(), name)
			}
		}
		if again := RunVariant(torn, 1, v); again.TraceHash != o.TraceHash {
			t.Errorf("%s: not deterministic", v.String())
		}
		hashes[v.String()] = o.TraceHash
	}
	// A salt from 3 s keeps the run's first 3 s: its first fault is the
	// seed's.
	o, base := RunVariant(s, 1, sim.Variant{Salt: salt, SaltFrom: 3 * time.Second}), RunSeed(s, 1)
	if len(o.FaultLog) == 0 || len(base.FaultLog) == 0 || o.FaultLog[0] != base.FaultLog[0] {
		t.Errorf("the first fault moved under a salt from 3 s")
	}
	if _, ok := o.MarkerFirst[sim.MarkAppendUnsynced]; !ok {
		t.Errorf("no first time for %s: %v", sim.MarkAppendUnsynced, o.MarkerFirst)
	}
}
