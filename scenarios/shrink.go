package scenarios

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/sim"
)

// Shrinking a failing run (keel sim shrink): the smallest variant of the
// seed's run that still fails the same check, found by re-running the
// seed deterministically with parts of it left out (sim.Variant):
//
//  1. a shorter workload (Until): just past the first failure when one
//     was seen while the run went, else by halving;
//  2. ambient fault kinds switched off (message loss and duplication,
//     torn sectors, latency spikes);
//  3. whole clients left out; then every read (an operation that writes
//     nothing), and every operation on one key at a time, the keys the
//     failure names excepted: bulk steps that delta debugging would reach
//     only through many runs, when at all (a failure that needs a
//     snapshot taken at the right moment breaks when any single write
//     goes, but may survive losing the reads or a key's whole history);
//  4. delta debugging (Zeller and Hildebrandt, "Simplifying and Isolating
//     Failure-Inducing Input", 2002) over the run's fault log, then over
//     its operations, then over the faults once more (fewer operations
//     often make faults redundant).
//
// When that leaves more than a tenth of the operations, a second pass
// (with a budget of its own) does it all again in a world whose log is
// scaled down (sim.Variant.LogScale: a snapshot after fewer writes), and
// the smaller case wins.
//
// A step is kept when the run still fails the check the seed's own run
// failed first (sim.FailureCheck: the same invariant, the same oracle
// check; for a wrong reply, the same command getting the same kind of
// reply: sim.FailureSignature), whatever else its message says. After
// each kept step the lists of faults and operations to keep are cut to
// what that run injected and sent: ids that never came up change nothing,
// and smaller lists make the next step cheaper. Faults are numbered per
// source (variant.go), so one left out moves few others; a disk's faults
// are numbered by the disk's operations, so fewer operations renumber
// them, which is why a step is judged by running it, never by reasoning
// about ids.

// ShrinkOptions bound a shrink.
type ShrinkOptions struct {
	// MaxRuns bounds the runs tried (0: DefaultShrinkRuns).
	MaxRuns int
	// Budget bounds the wall time (0: none); the best case so far is
	// kept when it runs out.
	Budget time.Duration
	// Log, when set, gets one line per kept step.
	Log func(string)
}

// DefaultShrinkRuns bounds a shrink's runs when ShrinkOptions says
// nothing: about a minute for a one-node scenario here, a few for a
// group.
const DefaultShrinkRuns = 1500

// ShrinkResult is a shrink's outcome.
type ShrinkResult struct {
	// Original is the seed's run under the starting variant, Final the
	// shrunk one (Final.Variant is the case's).
	Original, Final *Outcome
	// Check is the check both fail.
	Check string
	// Runs counts the runs tried, the original's included.
	Runs int
	// Exhausted: the run or time budget ran out before delta debugging
	// finished (the result is smaller than the original, not minimal).
	Exhausted bool
}

// Case is the shrunk run as a case file.
func (r *ShrinkResult) Case(s *Scenario) Case {
	c := NewCase(s, r.Final)
	c.Failure = r.SignatureFailure()
	c.Check = r.Check
	c.OriginalFaults, c.OriginalOps = r.Original.Injected(), len(r.Original.SentOps)
	return c
}

type shrinker struct {
	s       *Scenario
	seed    uint64
	opts    ShrinkOptions
	check   string
	sig     string // the failure's signature, finer than check
	runs    int
	start   time.Time
	best    *Outcome
	outOfIt bool
	// passRuns is the run count when the current pass began (each pass
	// has MaxRuns of its own).
	passRuns int
}

// size is what a shrink minimizes: faults and operations.
func size(o *Outcome) int { return o.Injected() + len(o.SentOps) }

func (k *shrinker) log(format string) {
	if k.opts.Log != nil {
		k.opts.Log(format)
	}
}

// budgetLeft reports whether another run may start.
func (k *shrinker) budgetLeft() bool {
	if k.runs-k.passRuns >= k.opts.MaxRuns || (k.opts.Budget > 0 && time.Since(k.start) > k.opts.Budget) {
		k.outOfIt = true
		return false
	}
	return true
}

// try runs v and, when it fails the check, makes it the best so far (its
// keep lists cut to what it injected and sent).
func (k *shrinker) try(v sim.Variant) bool {
	if !k.budgetLeft() {
		return false
	}
	k.runs++
	o := RunVariant(k.s, k.seed, v)
	if !failsSignature(o, k.sig) {
		return false
	}
	o.Variant = tightened(o)
	k.best = o
	return true
}

// failsSignature reports whether o failed with a failure of signature sig
// (sim.FailureSignature).
func failsSignature(o *Outcome, sig string) bool {
	for _, f := range o.Failures {
		if sim.FailureSignature(f) == sig {
			return true
		}
	}
	return false
}

// failsCheck reports whether o failed check.
func failsCheck(o *Outcome, check string) bool {
	for _, f := range o.Failures {
		if sim.FailureCheck(f) == check {
			return true
		}
	}
	return false
}

// tightened is o's variant keeping exactly the faults it injected and the
// operations it sent: the same run.
func tightened(o *Outcome) sim.Variant {
	v := o.Variant.Clone()
	v.LimitFaults, v.LimitOps = true, true
	v.KeepFaults, v.KeepOps = injectedIDs(o), sentIDs(o)
	return v
}

func injectedIDs(o *Outcome) []string {
	ids := []string{}
	for _, e := range o.FaultLog {
		if !e.Dropped {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

func sentIDs(o *Outcome) []string {
	ids := make([]string, len(o.SentOps))
	for i, op := range o.SentOps {
		ids[i] = op.String()
	}
	return ids
}

// Shrink shrinks seed's run of s under v (the zero variant, or a swarm
// run's) to the smallest variant it finds that fails the same check.
func Shrink(s *Scenario, seed uint64, v sim.Variant, opts ShrinkOptions) (*ShrinkResult, error) {
	if opts.MaxRuns <= 0 {
		opts.MaxRuns = DefaultShrinkRuns
	}
	k := &shrinker{s: s, seed: seed, opts: opts, start: time.Now()}
	orig := RunVariant(s, seed, v)
	k.runs++
	if orig.Passed() {
		return nil, errors.Newf("%s seed %d passes: nothing to shrink", s.Name, seed)
	}
	k.check, k.sig = sim.FailureCheck(orig.Failures[0]), sim.FailureSignature(orig.Failures[0])
	k.log("shrinking " + s.Name + " seed " + strconv.FormatUint(seed, 10) + ": fails " + k.check +
		" (faults " + strconv.Itoa(orig.Injected()) + ", ops " + strconv.Itoa(len(orig.SentOps)) + ")")
	pass := func(orig *Outcome, scaleLog bool) bool {
		// The starting point, as a variant that keeps everything: the
		// same run.
		k.best = &Outcome{Result: &sim.Result{}}
		*k.best = *orig
		r := *orig.Result
		k.best.Result = &r
		k.best.Variant = tightened(orig)
		k.shrinkUntil(orig)
		k.shrinkQuiet()
		k.shrinkClients()
		if scaleLog && !k.shrinkLog() {
			return false
		}
		k.shrinkReads()
		k.shrinkKeys()
		k.shrinkList("faults", func(v sim.Variant) []string { return v.KeepFaults },
			func(v *sim.Variant, ids []string) { v.KeepFaults = ids })
		k.shrinkList("ops", func(v sim.Variant) []string { return v.KeepOps },
			func(v *sim.Variant, ids []string) { v.KeepOps = ids })
		k.shrinkList("faults", func(v sim.Variant) []string { return v.KeepFaults },
			func(v *sim.Variant, ids []string) { v.KeepFaults = ids })
		return true
	}
	pass(orig, false)
	if len(k.best.SentOps)*10 > len(orig.SentOps) && SeedConfig(s, seed, v).Node.SnapshotLogBytes > 0 {
		// Not down to a tenth: the failure may need a snapshot, which
		// needs many writes. Once more, in a world whose log is scaled
		// down, with a budget of its own; the smaller case wins.
		first, firstOut := k.best, k.outOfIt
		k.log("again with the world's log scaled down (" + k.sizes() + " so far)")
		k.passRuns, k.start, k.outOfIt = k.runs, time.Now(), false
		if !pass(orig, true) || size(k.best) >= size(first) {
			k.best, k.outOfIt = first, firstOut
		}
	}
	if n := k.best.Injected(); n*10 > orig.Injected() && n > stableDiskFaultsMin && !v.StableDisk {
		k.shrinkStableDisk(orig, v, pass)
	}
	if len(k.best.SentOps)*10 > len(orig.SentOps) && SeedConfig(s, seed, v).Node.SegmentBytes > 0 && k.best.Variant.SegmentScale == 0 {
		k.shrinkSegments()
	}
	if len(k.best.SentOps)*10 > len(orig.SentOps) && orig.Faults["torn"] > 0 && !v.StableTears {
		k.shrinkStableTears(orig, v, pass)
	}
	// The final run again, as the case file will replay it.
	final := RunVariant(s, seed, k.best.Variant)
	k.runs++
	if final.TraceHash != k.best.TraceHash || !failsSignature(final, k.sig) {
		return nil, errors.Newf("nondeterminism: the shrunk run gave trace-hash %s, then %s", k.best.TraceHash, final.TraceHash)
	}
	return &ShrinkResult{Original: orig, Final: final, Check: k.check, Runs: k.runs, Exhausted: k.outOfIt}, nil
}

// shrinkUntil ends the workload as early as the failure allows.
func (k *shrinker) shrinkUntil(orig *Outcome) {
	cfg := SeedConfig(k.s, k.seed, orig.Variant)
	full := cfg.Duration
	if k.best.Variant.Until > 0 && k.best.Variant.Until < full {
		full = k.best.Variant.Until
	}
	with := func(until time.Duration) bool {
		v := k.best.Variant.Clone()
		v.Until = until
		return k.try(v)
	}
	if ff := orig.FirstFailAt; ff >= 0 && ff < full {
		// Everything before the shortened workload's end happens as in
		// the seed's run, so a failure seen while the run went comes
		// again; a little slack lets the reply in flight arrive.
		for _, slack := range []time.Duration{time.Millisecond, 100 * time.Millisecond, time.Second} {
			if u := (ff + slack).Round(time.Millisecond); u < full && with(u) {
				k.log("until " + u.String() + ": " + k.sizes())
				return
			}
		}
	}
	// A failure found only by a check after the workload: halve while it
	// holds (not monotone, but cheap).
	lo, hi := time.Duration(0), full
	for i := 0; i < 6 && hi-lo > 100*time.Millisecond; i++ {
		mid := ((lo + hi) / 2).Round(time.Millisecond)
		if with(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	if hi < full {
		k.log("until " + hi.String() + ": " + k.sizes())
	}
}

// cutAtFirstFailure ends the workload just past the best run's first
// failure when a step moved that failure earlier: what came after it
// cannot matter, and a shorter run is a faster next step.
func (k *shrinker) cutAtFirstFailure() {
	ff := k.best.FirstFailAt
	if ff < 0 {
		return
	}
	end := SeedConfig(k.s, k.seed, k.best.Variant).Duration
	if u := k.best.Variant.Until; u > 0 && u < end {
		end = u
	}
	u := (ff + 10*time.Millisecond).Round(time.Millisecond)
	if u+50*time.Millisecond >= end {
		return
	}
	v := k.best.Variant.Clone()
	v.Until = u
	k.try(v)
}

var ambientKinds = []string{"net-loss", "net-dup", "torn", "spikes"}

// shrinkQuiet switches ambient fault kinds off.
func (k *shrinker) shrinkQuiet() {
	v := k.best.Variant.Clone()
	v.Quiet = append([]string(nil), ambientKinds...)
	if k.try(v) {
		k.log("quiet " + strings.Join(ambientKinds, ",") + ": " + k.sizes())
		return
	}
	var quiet []string
	for _, kind := range ambientKinds {
		v := k.best.Variant.Clone()
		v.Quiet = append(v.Quiet, kind)
		if k.try(v) {
			quiet = append(quiet, kind)
		}
	}
	if len(quiet) > 0 {
		k.log("quiet " + strings.Join(quiet, ",") + ": " + k.sizes())
	}
}

// shrinkClients leaves whole clients out, one at a time.
func (k *shrinker) shrinkClients() {
	n := SeedConfig(k.s, k.seed, k.best.Variant).Workload.Clients
	dropped := 0
	for i := 0; i < n; i++ {
		if len(k.best.SentOps) == 0 {
			break
		}
		v := k.best.Variant.Clone()
		v.DropClients = append(v.DropClients, i)
		sort.Ints(v.DropClients)
		if k.try(v) {
			dropped++
		}
	}
	if dropped > 0 {
		k.cutAtFirstFailure()
		k.log(strconv.Itoa(dropped) + " of " + strconv.Itoa(n) + " clients left out: " + k.sizes())
	}
}

// sentArgv maps the best run's operation ids to what they sent.
func (k *shrinker) sentArgv() map[string][]string {
	m := make(map[string][]string, len(k.best.SentOps))
	for _, o := range k.best.SentOps {
		m[o.String()] = o.Argv
	}
	return m
}

// dropOps tries the best variant without the operations drop selects.
func (k *shrinker) dropOps(drop func(argv []string) bool) bool {
	argv := k.sentArgv()
	var keep []string
	for _, id := range k.best.Variant.KeepOps {
		if a, ok := argv[id]; ok && drop(a) {
			continue
		}
		keep = append(keep, id)
	}
	if len(keep) == len(k.best.Variant.KeepOps) {
		return false
	}
	v := k.best.Variant.Clone()
	v.KeepOps = keep
	if keep == nil {
		v.KeepOps = []string{}
	}
	return k.try(v)
}

// shrinkLog scales the world's log down (sim.Variant.LogScale): a
// failure that needs a snapshot then needs fewer writes. Tried only for
// a world with a configured snapshot trigger, in a second pass when the
// first did not get down to a tenth (a smaller world is a different
// world: the first pass keeps the seed's).
func (k *shrinker) shrinkLog() bool {
	if SeedConfig(k.s, k.seed, k.best.Variant).Node.SnapshotLogBytes <= 0 {
		return false
	}
	for _, scale := range []float64{0.125, 0.25, 0.5} {
		v := k.best.Variant.Clone()
		// Operations are numbered per client, so the keep list still
		// names the same draws; the scaled run sends them at other times.
		v.LogScale = scale
		if k.try(v) {
			k.cutAtFirstFailure()
			k.log("log scaled to " + strconv.FormatFloat(scale, 'g', 3, 64) + ": " + k.sizes())
			return true
		}
	}
	// A crash that struck in a window (a snapshot being written, a log
	// compacted, ...) lands elsewhere in a scaled world, where the disk's
	// operations come in another order: aim crashes at the windows the
	// failing run crashed in instead (sim.Variant.Aim), so the scaled
	// run crashes there on purpose; the schedule's own crashes may then
	// go too.
	crashed := crashedWindows(k.best)
	// Each window alone first (one crash aimed where the failure needs
	// it beats crashes everywhere), then all of them.
	var sets [][]string
	for _, m := range crashed {
		sets = append(sets, []string{m})
	}
	if len(crashed) > 1 {
		sets = append(sets, crashed)
	}
	for _, windows := range sets {
		for _, scale := range []float64{0.125, 0.25, 0.5} {
			for _, p := range []float64{1, 0.25, 0.05} {
				v := k.best.Variant.Clone()
				v.LogScale = scale
				if v.Aim == nil {
					v.Aim = map[string]float64{}
				}
				for _, m := range windows {
					v.Aim[m] = p
				}
				if v.LimitFaults {
					for i := 1; i <= aimedFaultsKept; i++ {
						v.KeepFaults = append(v.KeepFaults, "a"+strconv.Itoa(i))
					}
				}
				if k.try(v) {
					k.cutAtFirstFailure()
					k.log("log scaled to " + strconv.FormatFloat(scale, 'g', 3, 64) + ", crashes aimed at " + strings.Join(windows, ",") +
						" (p " + strconv.FormatFloat(p, 'g', 3, 64) + "): " + k.sizes())
					return true
				}
			}
		}
	}
	return false
}

// aimedFaultsKept bounds the aimed crashes a scaled run may add.
const aimedFaultsKept = 8

// crashedWindows are the crash windows o crashed in (its crash-in-*
// markers), in sim.AimMarkers' order; a run whose power loss tore a WAL
// tail counts as having crashed between an append and its fsync (where a
// crash leaves the appended tail unsynced, for a power loss to tear).
func crashedWindows(o *Outcome) []string {
	var out []string
	for _, m := range sim.AimMarkers {
		if o.Markers[sim.CrashIn+m] > 0 || m == sim.MarkAppendUnsynced && o.Markers[sim.MarkTornWALTail] > 0 {
			out = append(out, m)
		}
	}
	return out
}

// shrinkReads leaves out every operation that writes nothing.
func (k *shrinker) shrinkReads() {
	if k.dropOps(sim.OpReadOnly) {
		k.cutAtFirstFailure()
		k.log("reads left out: " + k.sizes())
	}
}

// shrinkKeys leaves out every operation on one key at a time, the keys
// the failure names excepted, the busiest keys first.
func (k *shrinker) shrinkKeys() {
	named := map[string]bool{}
	for _, f := range k.best.Failures {
		if sim.FailureCheck(f) == k.check {
			for _, w := range strings.FieldsFunc(f, func(r rune) bool {
				return r == ' ' || r == '"' || r == ',' || r == ':' || r == ';' || r == '(' || r == ')' || r == '=' || r == '/'
			}) {
				named[w] = true
			}
		}
	}
	count := map[string]int{}
	for _, o := range k.best.SentOps {
		for _, key := range sim.OpKeys(o.Argv) {
			count[key]++
		}
	}
	keys := make([]string, 0, len(count))
	for key := range count {
		if !named[key] {
			keys = append(keys, key)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if count[keys[i]] != count[keys[j]] {
			return count[keys[i]] > count[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var gone []string
	for _, key := range keys {
		if k.dropOps(func(argv []string) bool {
			for _, x := range sim.OpKeys(argv) {
				if x == key {
					return true
				}
			}
			return false
		}) {
			gone = append(gone, key)
		}
	}
	if len(gone) > 0 {
		k.cutAtFirstFailure()
		k.log("operations on " + strings.Join(gone, ",") + " left out: " + k.sizes())
	}
}

// shrinkList is ddmin over one keep list: remove one of n chunks at a
// time while the run still fails, doubling n when no chunk can go, until
// single ids cannot go either.
func (k *shrinker) shrinkList(what string, get func(sim.Variant) []string, set func(*sim.Variant, []string)) {
	before := len(get(k.best.Variant))
	if before == 0 {
		return
	}
	without := func(ids []string) bool {
		v := k.best.Variant.Clone()
		set(&v, ids)
		return k.try(v)
	}
	if without([]string{}) {
		k.log(what + ": " + strconv.Itoa(before) + " -> 0: " + k.sizes())
		return
	}
	n := 2
	for {
		items := get(k.best.Variant)
		if len(items) < 2 || !k.budgetLeft() {
			break
		}
		n = min(n, len(items))
		removed := false
		for i := 0; i < n; i++ {
			items = get(k.best.Variant)
			lo, hi := i*len(items)/n, (i+1)*len(items)/n
			if lo >= hi {
				continue
			}
			rest := append(append([]string{}, items[:lo]...), items[hi:]...)
			if without(rest) {
				removed = true
				k.cutAtFirstFailure()
				// The list shrank under us: keep the granularity, go on
				// from the chunk that now sits where this one was.
				n = max(n-1, 2)
				i--
				if len(get(k.best.Variant)) < 2 {
					break
				}
				n = min(n, len(get(k.best.Variant)))
			}
			if !k.budgetLeft() {
				break
			}
		}
		if !removed {
			if n >= len(get(k.best.Variant)) {
				break
			}
			n = min(2*n, len(get(k.best.Variant)))
		}
	}
	if after := len(get(k.best.Variant)); after < before {
		k.log(what + ": " + strconv.Itoa(before) + " -> " + strconv.Itoa(after) + " (run " + strconv.Itoa(k.runs) + "): " + k.sizes())
	}
}

func (k *shrinker) sizes() string {
	return "faults " + strconv.Itoa(k.best.Injected()) + ", ops " + strconv.Itoa(len(k.best.SentOps))
}

// SignatureFailure is o's first failure of the shrink's signature (the
// one the case is about), else its first.
func (r *ShrinkResult) SignatureFailure() string {
	sig := sim.FailureSignature(r.Original.Failures[0])
	for _, f := range r.Final.Failures {
		if sim.FailureSignature(f) == sig {
			return f
		}
	}
	return r.Final.Failures[0]
}

// stableDiskFaultsMin: a case left with more faults than this (and more
// than a tenth of the seed's) is shrunk once more with stable disk draws.
const stableDiskFaultsMin = 2

// shrinkStableDisk shrinks again under sim.Variant.StableDisk, when the
// seed's run fails the same way under it. A node's disk draws every read
// flip, torn sector and crash point from one stream, in the order its
// operations come, so leaving out a fault that ended a process's life
// early (a power loss) changes how many draws the lives after it make,
// and every later disk fault lands elsewhere: delta debugging over such
// faults keeps almost all of them (truncate-after-torn's 15 of 15). Under
// StableDisk each life draws from a stream named for its start, so the
// faults of a later life survive leaving an earlier one out. It is a
// different run from the seed's (other draws), so it is tried only when
// the seed fails under it too, and the smaller case wins.
func (k *shrinker) shrinkStableDisk(orig *Outcome, v sim.Variant, pass func(*Outcome, bool) bool) {
	first, firstOut := k.best, k.outOfIt
	sv := v.Clone()
	sv.StableDisk = true
	k.passRuns, k.start, k.outOfIt = k.runs, time.Now(), false
	k.runs++
	so := RunVariant(k.s, k.seed, sv)
	if !failsSignature(so, k.sig) {
		k.log("with stable disk draws the seed passes or fails otherwise: " + k.sizes() + " kept")
		return
	}
	k.log("again with stable disk draws (" + k.sizes() + " so far)")
	if !pass(so, false) || size(k.best) >= size(first) {
		k.best, k.outOfIt = first, firstOut
	}
}

// shrinkSegments scales the best case's WAL segments down
// (sim.Variant.SegmentScale), the smallest that still fails, and runs
// delta debugging over its operations and faults again. A failure that
// needs a torn record left behind in a segment the log has moved past
// (torn-tail-resync) needs the writes that fill that segment after the
// tear, and delta debugging, which only removes, cannot trade the writes
// before the tear (which set where in its segment the tear falls) for
// more after it: it stops where cutting any earlier write leaves the
// segment unfilled. In a smaller segment the writes it kept after the
// tear fill it wherever the tear falls, and the ones before can go.
// The scales are m/segmentScaleSteps, multiples of 512 bytes of a
// 16 KiB segment, so the tail a crash finds sits against the sector
// boundaries as it did; the smaller case wins.
func (k *shrinker) shrinkSegments() {
	first, firstOut := k.best, k.outOfIt
	k.passRuns, k.start, k.outOfIt = k.runs, time.Now(), false
	found := false
	for m := segmentScaleSteps / 8; m < segmentScaleSteps && !found; m++ {
		v := k.best.Variant.Clone()
		v.SegmentScale = float64(m) / segmentScaleSteps
		found = k.try(v)
	}
	if !found {
		k.best, k.outOfIt = first, firstOut
		return
	}
	k.log("segments scaled to " + strconv.FormatFloat(k.best.Variant.SegmentScale, 'g', 3, 64) + ": " + k.sizes())
	k.shrinkPrefix()
	k.shrinkList("ops", func(v sim.Variant) []string { return v.KeepOps },
		func(v *sim.Variant, ids []string) { v.KeepOps = ids })
	k.shrinkList("faults", func(v sim.Variant) []string { return v.KeepFaults },
		func(v *sim.Variant, ids []string) { v.KeepFaults = ids })
	if size(k.best) >= size(first) {
		k.best, k.outOfIt = first, firstOut
	}
}

// shrinkPrefix leaves out the first operations (in the order they were
// sent), the largest share of prefixShares whose cut still fails: the
// writes before a tear, once a smaller segment no longer needs them.
// Where the log's tail sits against a sector boundary moves with the
// cut, and a tear needs a tail of some shape (a hole needs two sectors),
// so each share is tried at prefixJitter lengths one operation apart;
// delta debugging tries each chunk at one length only.
func (k *shrinker) shrinkPrefix() {
	ids := k.best.Variant.KeepOps
	for _, share := range prefixShares {
		for j := 0; j < prefixJitter; j++ {
			cut := int(share*float64(len(ids))) + j
			if cut >= len(ids) || !k.budgetLeft() {
				break
			}
			v := k.best.Variant.Clone()
			v.KeepOps = append([]string{}, ids[cut:]...)
			if k.try(v) {
				k.cutAtFirstFailure()
				k.log("the first " + strconv.Itoa(cut) + " operations left out: " + k.sizes())
				return
			}
		}
	}
}

// prefixShares and prefixJitter are the cuts shrinkPrefix tries.
var prefixShares = []float64{0.9, 0.8, 0.7, 0.6, 0.5, 0.25}

const prefixJitter = 8

// segmentScaleSteps: shrinkSegments tries SegmentScale m/segmentScaleSteps.
const segmentScaleSteps = 32

// tearDeals bounds the deals shrinkStableTears tries for one that fails.
const tearDeals = 64

// tearSegmentScales are the worlds shrinkStableTears deals tears in: WAL
// segments scaled down (sim.Variant.SegmentScale; not by powers of two,
// which would put a segment's end where the seed's world had a tail that
// straddled a 4 KiB boundary), then the seed's own.
var tearSegmentScales = []float64{0.3, 0.45, 1}

// shrinkStableTears shrinks again under sim.Variant.StableTears, when the
// case keeps more than a tenth of the operations and the seed's run tore
// a file. In a world whose disk draws from its stream at every operation
// (read flips, latency spikes), leaving out a write before a power loss
// re-deals which sectors its tear keeps, and a failure that needs one
// shape of tear (a hole: an earlier sector of a multi-sector tail lost, a
// later one kept) is gone as soon as a write goes. Under StableTears each
// file's tear is drawn from a stream named by the power loss and the
// file's place, so it stays what it was when earlier writes go or the
// segments are smaller. Those are other tears than the seed's, so deals
// (sim.Variant.TearDeal) are tried in turn, in worlds with smaller WAL
// segments and in the seed's, until one fails the same way; that run is
// shrunk, and the smaller case wins. (torn-tail-resync does not need it:
// bank-crash's disk draws only when a crash point fires, so its tears
// were never re-dealt; delta debugging under StableTears took the very
// path it took without.)
func (k *shrinker) shrinkStableTears(orig *Outcome, v sim.Variant, pass func(*Outcome, bool) bool) {
	first, firstOut := k.best, k.outOfIt
	k.passRuns, k.start, k.outOfIt = k.runs, time.Now(), false
	scales := []float64{1}
	if SeedConfig(k.s, k.seed, v).Node.SegmentBytes > 0 {
		scales = tearSegmentScales
	}
	var so *Outcome
	tried := 0
search:
	for deal := uint64(0); deal < tearDeals; deal++ {
		for _, scale := range scales {
			if !k.budgetLeft() {
				break search
			}
			sv := v.Clone()
			sv.StableTears, sv.TearDeal = true, deal
			if scale < 1 {
				sv.SegmentScale = scale
			}
			k.runs++
			tried++
			if o := RunVariant(k.s, k.seed, sv); failsSignature(o, k.sig) {
				so = o
				break search
			}
		}
	}
	if so == nil {
		k.log("none of " + strconv.Itoa(tried) + " deals of stable tears fails the same way: " + k.sizes() + " kept")
		return
	}
	k.log("again with " + so.Variant.String() + " (" + k.sizes() + " so far)")
	if !pass(so, false) || size(k.best) >= size(first) {
		k.best, k.outOfIt = first, firstOut
	}
}
