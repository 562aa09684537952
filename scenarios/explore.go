package scenarios

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/keel-db/keel/sim"
)

// Exploration guided by coverage (keel sim explore): rather than trying
// seeds in order, keep the runs that reached something no run before them
// did, and derive new runs from them by mutating their variants: a fault
// schedule or a client's workload drawn anew (a salted stream), a crash
// aimed at a window, the swarm mix switched on or off. What counts as
// something new is a feature of the run:
//
//   - each marker it passed (sim.Markers), by how often (1, 2–3, 4–7, ...:
//     a window passed 40 times is not new after one passed 35 times, one
//     passed 1000 times is);
//   - each fault kind it injected, by how often;
//   - how many elections it saw, by the same buckets;
//   - the check a failure came from.
//
// Half the runs are fresh seeds (the sweep goes on), half are mutants of
// the corpus. The explorer's own choices come from a stream of its seed,
// so an exploration with the same options and binary is the same
// sequence of runs.

// ExploreOptions bound and steer an exploration.
type ExploreOptions struct {
	// FirstSeed is the first fresh seed; fresh seeds go up from it.
	FirstSeed uint64
	// MaxRuns and Budget bound it (0: no bound; one of them must be set).
	MaxRuns int
	Budget  time.Duration
	// StopAtFailure ends it at the first failing run.
	StopAtFailure bool
	// Seed drives the explorer's choices.
	Seed uint64
	// OnRun, when set, hears every run: its number (1-based), whether it
	// was fresh, the new features it brought, the outcome.
	OnRun func(n int, fresh bool, newFeatures []string, o *Outcome)
}

// ExploreResult is what an exploration did.
type ExploreResult struct {
	Runs, Fresh, Mutants int
	// Corpus is the runs kept (each brought a new feature).
	Corpus []Case
	// Features is every feature seen.
	Features []string
	// Failures are the failing runs, as cases, in order; FirstFailRun is
	// the run number of the first (0: none).
	Failures     []Case
	FirstFailRun int
}

type exploreEntry struct {
	seed uint64
	v    sim.Variant
}

// Explore explores s.
func Explore(s *Scenario, opts ExploreOptions) *ExploreResult {
	rng := rand.New(rand.NewPCG(opts.Seed, 0xe4b10e))
	seen := map[string]bool{}
	var corpus []exploreEntry
	res := &ExploreResult{}
	next := max(opts.FirstSeed, 1)
	start := time.Now()
	clients := SeedConfig(s, next, sim.Variant{}).Workload.Clients
	for {
		if (opts.MaxRuns > 0 && res.Runs >= opts.MaxRuns) || (opts.Budget > 0 && time.Since(start) > opts.Budget) ||
			(opts.MaxRuns <= 0 && opts.Budget <= 0) {
			break
		}
		var e exploreEntry
		fresh := len(corpus) == 0 || rng.IntN(2) == 0
		if fresh {
			e = exploreEntry{seed: next}
			next++
			res.Fresh++
		} else {
			parent := corpus[rng.IntN(len(corpus))]
			e = exploreEntry{seed: parent.seed, v: mutate(rng, s, parent.v, clients)}
			res.Mutants++
		}
		o := RunVariant(s, e.seed, e.v)
		res.Runs++
		var fresh2 []string
		for _, f := range runFeatures(o) {
			if !seen[f] {
				seen[f] = true
				fresh2 = append(fresh2, f)
			}
		}
		if len(fresh2) > 0 {
			corpus = append(corpus, e)
			res.Corpus = append(res.Corpus, NewCase(s, o))
		}
		if opts.OnRun != nil {
			opts.OnRun(res.Runs, fresh, fresh2, o)
		}
		if !o.Passed() {
			res.Failures = append(res.Failures, NewCase(s, o))
			if res.FirstFailRun == 0 {
				res.FirstFailRun = res.Runs
			}
			if opts.StopAtFailure {
				break
			}
		}
	}
	for f := range seen {
		res.Features = append(res.Features, f)
	}
	sort.Strings(res.Features)
	return res
}

// bucket is n's power-of-two class: 1, 2–3, 4–7, ... as "0", "1", "2".
func bucket(n int64) string {
	if n <= 0 {
		return "0"
	}
	return strconv.Itoa(bits.Len64(uint64(n)))
}

// runFeatures are the features of a run.
func runFeatures(o *Outcome) []string {
	var out []string
	for m, n := range o.Markers {
		if n > 0 {
			out = append(out, "marker "+m+" "+bucket(n))
		}
	}
	for k, n := range o.Faults {
		if n > 0 {
			out = append(out, "fault "+k+" "+bucket(n))
		}
	}
	out = append(out, "elections "+bucket(o.Raft.Elections))
	for _, f := range o.Failures {
		out = append(out, "failed "+sim.FailureCheck(f))
	}
	sort.Strings(out)
	return out
}

// mutate derives a variant from v: one change, drawn from rng.
func mutate(rng *rand.Rand, s *Scenario, v sim.Variant, clients int) sim.Variant {
	c := v.Clone()
	if c.Salt == nil {
		c.Salt = map[string]uint64{}
	}
	kinds := 4
	if SwarmWorld(s) != "" {
		kinds = 5
	}
	switch rng.IntN(kinds) {
	case 0, 1: // the fault schedule drawn anew
		c.Salt["scenario/faults"] = rng.Uint64()
	case 2: // one client's workload drawn anew
		c.Salt["client/"+strconv.Itoa(rng.IntN(max(clients, 1)))] = rng.Uint64()
	case 3: // a crash aimed at a window, or an aim dropped
		m := sim.AimMarkers[rng.IntN(len(sim.AimMarkers))]
		if _, on := c.Aim[m]; on {
			delete(c.Aim, m)
			break
		}
		if c.Aim == nil {
			c.Aim = map[string]float64{}
		}
		c.Aim[m] = math.Exp(math.Log(0.01) + rng.Float64()*(math.Log(1)-math.Log(0.01)))
	case 4:
		c.Swarm = !c.Swarm
	}
	if len(c.Salt) == 0 {
		c.Salt = nil
	}
	return c
}
