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
// did, and derive new runs from them by mutating their variants. What
// counts as something new is a feature of the run:
//
//   - each marker it passed (sim.Markers), by how often (1, 2–3, 4–7, ...:
//     a window passed 40 times is not new after one passed 35 times, one
//     passed 1000 times is);
//   - each fault kind it injected, by how often;
//   - how many elections it saw, by the same buckets;
//   - the check a failure came from.
//
// The first runs are the plain seeds in order (the warm-up: a bug that
// one seed in a few finds is found at the very run a plain sweep finds
// it), until fresh seeds stop bringing features; from then on a third of
// the runs are fresh seeds (the sweep goes on), the rest mutants of the
// corpus. A parent is drawn in proportion to its energy:
// the sum, over its features, of one over the number of runs that showed
// each, so a run that reached a state few runs reach is mutated most. Half
// the mutants aim crashes at a crash window the parent passed (windows
// few runs have crashed in first), at a rate that spreads half a crash to
// three over the parent's passes, from the start or from a later moment
// (the same window in a later state: a node with snapshots of its own, a
// longer log); the others draw the fault schedule anew from the moment
// the parent first reached its rarest marker (Variant.SaltFrom: the run
// up to the rare state is kept, what follows varies), or from the start,
// draw one client's workload anew, drop an aim or switch the swarm mix.
// The explorer's own choices come from a stream of its seed, so an
// exploration with the same options and binary is the same sequence of
// runs.

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
	// Warmup is how many of the first runs were the warm-up's plain
	// seeds.
	Warmup int
}

type exploreEntry struct {
	seed uint64
	v    sim.Variant
	// What its run reached: its features, how often it passed each
	// marker, and when it first did.
	features []string
	markers  map[string]int64
	first    map[string]time.Duration
}

// freshShare is the share of runs spent on fresh seeds once the corpus
// holds something and the warm-up is over (the rest are mutants).
const freshShare = 3

// The warm-up: the first runs are fresh seeds in order, exactly the runs
// a plain sweep from the same first seed makes, so a bug that one seed in
// a few finds is found at the very run the plain sweep finds it (a mutant
// is no better a try than a fresh seed there, and was measured worse: it
// keeps its parent's workload and most of its schedule, so a parent that
// does not have a common bug's ingredients passes them on). Mutants come
// in once fresh seeds stop bringing features: after warmQuiet fresh runs
// in a row with nothing new, but not before warmMin runs, and at the
// latest after warmMax (a world whose every seed brings a new bucket of
// something must still get its mutants).
const (
	warmMin   = 8
	warmQuiet = 2
	warmMax   = 12
)

// Explore explores s.
func Explore(s *Scenario, opts ExploreOptions) *ExploreResult {
	rng := rand.New(rand.NewPCG(opts.Seed, 0xe4b10e))
	x := &explorer{seen: map[string]int{}, markerRuns: map[string]int{}}
	res := &ExploreResult{}
	next := max(opts.FirstSeed, 1)
	start := time.Now()
	cfg := SeedConfig(s, next, sim.Variant{})
	clients := cfg.Workload.Clients
	x.duration = cfg.Duration
	for {
		if (opts.MaxRuns > 0 && res.Runs >= opts.MaxRuns) || (opts.Budget > 0 && time.Since(start) > opts.Budget) ||
			(opts.MaxRuns <= 0 && opts.Budget <= 0) {
			break
		}
		var e exploreEntry
		fresh := x.warming() || len(x.corpus) == 0 || rng.IntN(freshShare) == 0
		if fresh {
			e = exploreEntry{seed: next}
			next++
			res.Fresh++
		} else {
			parent := x.pick(rng)
			e = exploreEntry{seed: parent.seed, v: x.mutate(rng, s, parent, clients)}
			res.Mutants++
		}
		o := RunVariant(s, e.seed, e.v)
		res.Runs++
		e.features, e.markers, e.first = runFeatures(o), o.Markers, o.MarkerFirst
		var fresh2 []string
		for _, f := range e.features {
			if x.seen[f] == 0 {
				fresh2 = append(fresh2, f)
			}
			x.seen[f]++
		}
		for m, n := range o.Markers {
			if n > 0 {
				x.markerRuns[m]++
			}
		}
		x.runs++
		if fresh {
			x.freshRun(len(fresh2) > 0)
		}
		if len(fresh2) > 0 {
			x.corpus = append(x.corpus, e)
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
	res.Warmup = x.warm
	for f := range x.seen {
		res.Features = append(res.Features, f)
	}
	sort.Strings(res.Features)
	return res
}

// explorer is an exploration's memory: the corpus, and how many runs
// showed each feature and passed each marker.
type explorer struct {
	corpus     []exploreEntry
	seen       map[string]int
	markerRuns map[string]int
	runs       int
	// warm counts the warm-up's runs, quiet the fresh runs in a row that
	// brought nothing new; done ends the warm-up.
	warm, quiet int
	warmDone    bool
	// duration is the scenario's workload.
	duration time.Duration
}

// warming reports whether the next run is still the warm-up's.
func (x *explorer) warming() bool {
	if !x.warmDone && (x.warm >= warmMax || x.warm >= warmMin && x.quiet >= warmQuiet) {
		x.warmDone = true
	}
	return !x.warmDone
}

// freshRun notes a fresh seed's run: whether it brought something new.
func (x *explorer) freshRun(brought bool) {
	if !x.warmDone {
		x.warm++
	}
	if brought {
		x.quiet = 0
	} else {
		x.quiet++
	}
}

// energy is how much of the mutation budget an entry gets: the sum, over
// its features, of one over the number of runs that showed each (a run
// that reached what few runs reach is mutated more; AFLFast's and
// FairFuzz's rare-branch schedules).
func (x *explorer) energy(e *exploreEntry) float64 {
	w := 0.0
	for _, f := range e.features {
		w += 1 / float64(max(x.seen[f], 1))
	}
	return w
}

// pick chooses a parent, in proportion to energy.
func (x *explorer) pick(rng *rand.Rand) *exploreEntry {
	total := 0.0
	for i := range x.corpus {
		total += x.energy(&x.corpus[i])
	}
	r := rng.Float64() * total
	for i := range x.corpus {
		if r -= x.energy(&x.corpus[i]); r < 0 {
			return &x.corpus[i]
		}
	}
	return &x.corpus[len(x.corpus)-1]
}

// rarest is the marker e passed that the fewest runs passed (ties: by
// name), and when e first passed it; ok false when it passed none.
func (x *explorer) rarest(e *exploreEntry) (m string, at time.Duration, ok bool) {
	best := 0
	for _, name := range sim.Markers {
		if e.markers[name] <= 0 {
			continue
		}
		if n := x.markerRuns[name]; !ok || n < best {
			m, at, best, ok = name, e.first[name], n, true
		}
	}
	return m, at, ok
}

// mutate derives a variant from parent's: one change, drawn from rng.
// Most changes keep the parent's run up to the moment it first reached
// its rarest marker and vary what follows: crashes aimed, from then on, at
// the crash windows the parent passed (rarely crashed-in windows first,
// at a rate that spreads a few crashes over the parent's passes), or the
// fault schedule drawn anew from then on.
func (x *explorer) mutate(rng *rand.Rand, s *Scenario, parent *exploreEntry, clients int) sim.Variant {
	c := parent.v.Clone()
	_, at, rare := x.rarest(parent)
	switch k := rng.IntN(20); {
	case k < 10: // aim at a window the parent passed
		m, ok := x.window(rng, parent)
		if !ok {
			c = x.reschedule(rng, c, 0)
			break
		}
		if c.Aim == nil {
			c.Aim = map[string]float64{}
		}
		// Half a crash to three crashes' worth over the parent's passes:
		// enough that one lands, few enough that they spread over the run
		// rather than strike the first passes (where a node has no
		// snapshot yet, no compacted log) and keep it down (an aimed
		// crash holds the next back 1.5 s).
		crashes := math.Exp(math.Log(0.5) + rng.Float64()*(math.Log(3)-math.Log(0.5)))
		share := 1.0
		c.AimFrom = 0
		if first, ok := parent.first[m]; ok && rng.IntN(2) == 0 && first < x.duration*6/10 {
			// From a later moment: the window in a later state of the
			// run (a follower with a snapshot of its own, a longer log).
			c.AimFrom = first + time.Duration(rng.Int64N(int64(x.duration*6/10-first)))
			share = float64(x.duration-c.AimFrom) / float64(x.duration)
		}
		c.Aim[m] = min(1, crashes/(share*float64(parent.markers[m])))
	case k < 13: // the fault schedule drawn anew after the rare state
		from := time.Duration(0)
		if rare {
			from = at
		}
		c = x.reschedule(rng, c, from)
	case k < 16: // the fault schedule drawn anew
		c = x.reschedule(rng, c, 0)
	case k < 18: // one client's workload drawn anew
		if c.Salt == nil {
			c.Salt = map[string]uint64{}
		}
		c.Salt["client/"+strconv.Itoa(rng.IntN(max(clients, 1)))] = rng.Uint64()
	default: // an aim dropped, or the swarm mix switched
		if len(c.Aim) > 0 {
			keys := make([]string, 0, len(c.Aim))
			for m := range c.Aim {
				keys = append(keys, m)
			}
			sort.Strings(keys)
			delete(c.Aim, keys[rng.IntN(len(keys))])
			if len(c.Aim) == 0 {
				c.Aim, c.AimFrom = nil, 0
			}
		} else if SwarmWorld(s) != "" {
			c.Swarm = !c.Swarm
		} else {
			c = x.reschedule(rng, c, 0)
		}
	}
	return c
}

// reschedule salts the fault schedule's stream, from the moment from on.
func (x *explorer) reschedule(rng *rand.Rand, c sim.Variant, from time.Duration) sim.Variant {
	if c.Salt == nil {
		c.Salt = map[string]uint64{}
	}
	c.Salt["scenario/faults"] = rng.Uint64()
	c.SaltFrom = from
	return c
}

// window draws a crash window the parent passed, each in inverse
// proportion to the runs that crashed in it so far.
func (x *explorer) window(rng *rand.Rand, parent *exploreEntry) (string, bool) {
	var ms []string
	var ws []float64
	total := 0.0
	for _, m := range sim.AimMarkers {
		if parent.markers[m] <= 0 {
			continue
		}
		w := 1 / float64(1+x.markerRuns[sim.CrashIn+m])
		ms, ws = append(ms, m), append(ws, w)
		total += w
	}
	if len(ms) == 0 {
		return "", false
	}
	r := rng.Float64() * total
	for i := range ms {
		if r -= ws[i]; r < 0 {
			return ms[i], true
		}
	}
	return ms[len(ms)-1], true
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
