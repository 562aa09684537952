package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/keel-db/keel/scenarios"
	"github.com/keel-db/keel/sim"
)

func init() { subcommands["sim"] = runSim }

const simUsage = `usage:
  keel sim list [--verbose] [--planted]
  keel sim run --scenario NAME|all --seeds A..B [--parallel N] [--out DIR] [--for DURATION] [--swarm] [--resume]
  keel sim replay --scenario NAME --seed N [--swarm] [--trace FILE|-] [--out DIR]
  keel sim replay --case FILE [--trace FILE|-] [--out DIR]
  keel sim shrink --scenario NAME --seed N [--swarm] [--out DIR] [--runs N] [--for DURATION]
  keel sim explore --scenario NAME [--for DURATION] [--runs N] [--first-seed N] [--out DIR] [--stop]

list     prints the scenario names, one a line (--verbose adds what each does;
         --planted lists the planted-bug scenarios instead: each runs a
         scenario with one deliberate bug switched on in the simulated node,
         to show what a caught bug looks like; "all" never includes them)
run      runs every seed of the scenario(s); exit 0 when all passed, 1 otherwise.
         It first prints how long the sweep should take here, and the
         progress line an estimate of what is left.
         --parallel N runs N worker processes (one world per process).
         --for DURATION stops starting seeds once that long has passed
         (seeds are then taken seed by seed across the scenarios, so a
         bounded sweep covers every scenario); CI runs one on every change.
         A failing seed leaves a report folder under --out and prints its
         replay command. --out also gets index.html (the sweep's summary:
         scenarios by outcome, failures linked to their reports, markers,
         slowest seeds) and sweep-state.jsonl (the seeds finished so far).
         Ctrl-C stops starting seeds and ends with the summary; --resume
         (same --scenario, --seeds, --swarm and --out) runs only the seeds
         the state lacks and counts the others in the table and the page.
         --swarm gives each seed its own mix of fault kinds and rates (swarm
         testing: a random half of the kinds, each at a random density) in
         place of the scenario's schedule; scenarios without a swarm world
         (membership, resharding, bus attacks) run as they are. A failing
         seed's line names its mix.
replay   re-runs one seed; --trace writes every event, one a line (- for
         stdout). The last line is trace-hash: <hex>, the same on every replay
         of the same seed with the same binary. --case replays a case file
         (what shrink writes: a seed with some of its faults and operations
         left out) and says whether its trace hash is the one recorded.
shrink   reduces a failing seed's run to the fewest faults and client
         operations that still fail the same check (a shorter workload,
         quiet ambient faults, clients left out, then delta debugging over
         the run's fault log and operations, re-running the seed each time),
         and writes the result as a case file into --out (default
         keel-sim-cases). Exit 0 with a case written, 1 when the seed passes.
         The last line is: case: PATH faults A -> B ops C -> D
explore  runs seeds and variants of the runs that reached something new (a
         marker, a fault kind, an election count, each by how often): half
         fresh seeds from --first-seed up, half mutants of kept runs (a fault
         schedule or a client's workload drawn anew, a crash aimed at a
         window, the swarm mix on or off). Each failing run is written as a
         case file into --out (replay it with replay --case); --stop ends at
         the first. Exit 0 when nothing failed, 1 otherwise.
`

// simGCPercent is the garbage collector's target for simulation
// commands (GOGC, when set, wins): a run allocates a lot and keeps little,
// and collecting at 800% instead of 100% took a third of the CPU off a
// cluster seed here, for a heap of some 100 MB instead of 40; the soft
// limit brings the collector back should a run grow.
const (
	simGCPercent   = 800
	simMemoryLimit = 2 << 30
)

func runSim(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, simUsage)
		return 2
	}
	if isHelp(args[0]) || wantsHelp(args) {
		fmt.Fprint(os.Stdout, simUsage)
		return 0
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(simGCPercent)
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(simMemoryLimit)
		}
	}
	switch args[0] {
	case "list":
		return simList(args[1:], os.Stdout)
	case "run":
		return simRun(args[1:], os.Stdout, os.Stderr)
	case "replay":
		return simReplay(args[1:], os.Stdout, os.Stderr)
	case "shrink":
		return simShrink(args[1:], os.Stdout, os.Stderr)
	case "explore":
		return simExplore(args[1:], os.Stdout, os.Stderr)
	case "worker":
		return simWorker(os.Stdin, os.Stdout)
	}
	fmt.Fprintf(os.Stderr, "keel sim: unknown command %q\n\n%s", args[0], simUsage)
	return 2
}

func simList(args []string, stdout io.Writer) int {
	fs := flag.NewFlagSet("sim list", flag.ContinueOnError)
	verbose := fs.Bool("verbose", false, "also print what each scenario does")
	plantedOnly := fs.Bool("planted", false, "list the planted-bug scenarios")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	list := scenarios.All()
	if *plantedOnly {
		list = scenarios.PlantedScenarios()
	}
	for _, s := range list {
		if *verbose {
			fmt.Fprintf(stdout, "%-14s %s\n", s.Name, s.Summary)
		} else {
			fmt.Fprintln(stdout, s.Name)
		}
	}
	return 0
}

// parseSeeds reads "A..B" (inclusive) or "N".
func parseSeeds(s string) (lo, hi uint64, err error) {
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		b = a
	}
	if lo, err = strconv.ParseUint(a, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bad --seeds %q: want A..B", s)
	}
	if hi, err = strconv.ParseUint(b, 10, 64); err != nil || hi < lo {
		return 0, 0, fmt.Errorf("bad --seeds %q: want A..B with A <= B", s)
	}
	return lo, hi, nil
}

func pickScenarios(name string) ([]*scenarios.Scenario, error) {
	if name == "all" {
		return scenarios.All(), nil
	}
	s := scenarios.Lookup(name)
	if s == nil {
		var names []string
		for _, s := range scenarios.All() {
			names = append(names, s.Name)
		}
		return nil, fmt.Errorf("unknown scenario %q (known: %s, or all)", name, strings.Join(names, ", "))
	}
	return []*scenarios.Scenario{s}, nil
}

type job struct {
	Scenario string `json:"scenario"`
	Seed     uint64 `json:"seed"`
	Out      string `json:"out"`
	Swarm    bool   `json:"swarm,omitempty"`
}

// scenarioTotals is one row of the summary table.
type scenarioTotals struct {
	seeds, failures int
	sim, wall       time.Duration
	events, ops     int64
	faults          int64
	// unknown counts seeds whose linearizability check ran out of time:
	// failures too, but a different kind (no verdict, no explanation).
	unknown int
	// markerRuns counts the seeds that passed each marker.
	markerRuns map[string]int
}

func simRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("scenario", "", "scenario name, or all")
	seedsFlag := fs.String("seeds", "", "seed range A..B (inclusive)")
	parallel := fs.Int("parallel", 1, "worker processes")
	out := fs.String("out", "keel-sim-reports", "folder for failing seeds' reports")
	budget := fs.Duration("for", 0, "stop starting seeds after this long (0: run them all)")
	swarm := fs.Bool("swarm", false, "each seed draws its own mix of fault kinds and rates")
	resume := fs.Bool("resume", false, "continue the sweep recorded in --out, skipping the seeds it finished")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *name == "" || *seedsFlag == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "keel sim run: %s\n\n%s", missingFlags(map[string]string{"--scenario NAME|all": *name, "--seeds A..B": *seedsFlag}, fs.Args()), simUsage)
		return 2
	}
	scs, err := pickScenarios(*name)
	if err != nil {
		fmt.Fprintln(stderr, "keel sim run:", err)
		return 2
	}
	lo, hi, err := parseSeeds(*seedsFlag)
	if err != nil {
		fmt.Fprintln(stderr, "keel sim run:", err)
		return 2
	}
	var jobs []job
	if *budget > 0 {
		// Seed by seed across the scenarios: whatever the budget allows
		// covers all of them.
		for seed := lo; ; seed++ {
			for _, s := range scs {
				jobs = append(jobs, job{Scenario: s.Name, Seed: seed, Out: *out, Swarm: *swarm})
			}
			if seed == hi {
				break
			}
		}
	} else {
		for _, s := range scs {
			for seed := lo; ; seed++ {
				jobs = append(jobs, job{Scenario: s.Name, Seed: seed, Out: *out, Swarm: *swarm})
				if seed == hi {
					break
				}
			}
		}
	}
	planned := len(jobs)
	params := scenarios.SweepParams{Scenario: *name, Seeds: fmt.Sprintf("%d..%d", lo, hi), Swarm: *swarm}
	var prior []scenarios.SeedResult
	var state *scenarios.SweepStateWriter
	if *resume {
		st, err := scenarios.ReadSweepState(*out)
		if err != nil {
			fmt.Fprintln(stderr, "keel sim run: --resume:", err)
			return 2
		}
		if st.Params != params {
			fmt.Fprintf(stderr, "keel sim run: --resume: %s records the sweep %s; give the same --scenario, --seeds and --swarm\n",
				filepath.Join(*out, scenarios.SweepStateFile), sweepCommand(st.Params))
			return 2
		}
		jobs, prior = resumeJobs(jobs, st.Results)
		fmt.Fprintf(stderr, "keel sim run: resuming: %d of %d seeds done (%s), %d to run\n",
			len(prior), planned, filepath.Join(*out, scenarios.SweepStateFile), len(jobs))
		state, err = scenarios.OpenSweepState(*out)
		if err != nil {
			fmt.Fprintln(stderr, "keel sim run:", err)
			return 2
		}
	} else if state, err = scenarios.CreateSweepState(*out, params); err != nil {
		fmt.Fprintln(stderr, "keel sim run:", err)
		return 2
	}
	defer state.Close()
	expected := expectedSweep(jobs, max(*parallel, 1))
	if *budget > 0 && expected > *budget {
		fmt.Fprintf(stderr, "keel sim run: %d seeds would take about %s here; stopping new seeds after %s\n", len(jobs), roundDuration(expected), *budget)
	} else {
		fmt.Fprintf(stderr, "keel sim run: %d seeds (%d scenario(s)), about %s here with %d process(es)\n", len(jobs), len(scs), roundDuration(expected), max(*parallel, 1))
	}
	// stop ends the starting of seeds: the --for budget or a Ctrl-C, the
	// first of them (a second Ctrl-C ends the process at once).
	stop := make(chan struct{})
	var stopOnce sync.Once
	var stopped atomic.Value // why, a string
	halt := func(why string) {
		stopOnce.Do(func() { stopped.Store(why); close(stop) })
	}
	if *budget > 0 {
		timer := time.AfterFunc(*budget, func() { halt("the --for budget of " + budget.String() + " was spent") })
		defer timer.Stop()
	}
	var interrupted atomic.Bool
	sigc := make(chan os.Signal, 1)
	quit := make(chan struct{})
	defer close(quit)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc) // runs before close(quit)
	go func() {
		select {
		case <-sigc:
		case <-quit:
			return
		}
		signal.Stop(sigc)
		interrupted.Store(true)
		halt("interrupted; " + sweepCommand(params) + " --resume continues it")
		fmt.Fprintln(stderr, "\nkeel sim run: interrupted: finishing the seeds already running (Ctrl-C again to quit now); --resume continues the sweep")
	}()
	results := make(chan scenarios.SeedResult)
	errc := make(chan error, 1)
	go func() {
		defer close(results)
		if *parallel <= 1 {
			for _, j := range jobs {
				select {
				case <-stop:
					return
				default:
				}
				results <- j.judge(scenarios.Lookup(j.Scenario))
			}
			return
		}
		if err := runWorkers(jobs, min(*parallel, len(jobs)), results, stop); err != nil {
			errc <- err
		}
	}()

	start := time.Now()
	totals := map[string]*scenarioTotals{}
	var failed []scenarios.SeedResult
	all := append([]scenarios.SeedResult(nil), prior...)
	count := func(r scenarios.SeedResult) {
		t := totals[r.Scenario]
		if t == nil {
			t = &scenarioTotals{}
			totals[r.Scenario] = t
		}
		t.seeds++
		t.sim += time.Duration(r.SimNanos)
		t.wall += time.Duration(r.WallNanos)
		t.events += r.Events
		t.ops += r.Ops
		t.faults += r.FaultsTotal
		if r.Lin == "unknown" {
			t.unknown++
		}
		for m, n := range r.Markers {
			if n > 0 {
				if t.markerRuns == nil {
					t.markerRuns = map[string]int{}
				}
				t.markerRuns[m]++
			}
		}
		if !r.Passed {
			t.failures++
			failed = append(failed, r)
		}
	}
	for _, r := range prior {
		count(r)
	}
	done := 0
	tty := isTerminal(stderr)
	lastPrint := time.Time{}
	var stateErr error
	for r := range results {
		if interrupted.Load() && strings.HasPrefix(firstLine(r.Failures), workerDiedPrefix) {
			// The Ctrl-C reached the worker processes too: the seed did
			// not fail, it was cut off, and a resumed sweep runs it.
			continue
		}
		done++
		count(r)
		all = append(all, r)
		if stateErr == nil {
			if stateErr = state.Add(r); stateErr != nil {
				fmt.Fprintf(stderr, "\nkeel sim run: %v (the sweep goes on; --resume will not know the seeds from here)\n", stateErr)
			}
		}
		if !r.Passed {
			clear := "\r"
			if tty {
				clear = "\r\033[K" // the progress bar's line
			}
			fmt.Fprintf(stderr, "%sFAIL %s seed %d: %s\n", clear, r.Scenario, r.Seed, firstLine(r.Failures))
		}
		if now := time.Now(); done == len(jobs) || now.Sub(lastPrint) > time.Second || tty {
			lastPrint = now
			rate := float64(done) / now.Sub(start).Seconds()
			left := time.Duration(float64(len(jobs)-done) / rate * float64(time.Second))
			if tty {
				fmt.Fprintf(stderr, "\r\033[K%s", progressBar(done, len(jobs), rate, len(failed), roundDuration(left), progressBarWidth))
			} else {
				fmt.Fprintf(stderr, "[%d/%d seeds] %.1f seeds/s, %d failures, about %s left\n", done, len(jobs), rate, len(failed), roundDuration(left))
			}
		}
	}
	if tty {
		fmt.Fprintln(stderr)
	}
	why, _ := stopped.Load().(string)
	if len(all) == planned {
		why = "" // the budget ran out with the last seed
	}
	summary := scenarios.SweepSummary{Params: params, Results: all, Planned: planned, Wall: time.Since(start),
		Resumed: len(prior), Stopped: why, ReplayCommand: func(r scenarios.SeedResult) string {
			return scenarios.VariantReplayCommand(r.Scenario, r.Seed, sim.Variant{Swarm: *swarm})
		}}
	for _, s := range scs {
		summary.Scenarios = append(summary.Scenarios, s.Name)
	}
	if err := scenarios.WriteSweepHTML(*out, summary); err != nil {
		fmt.Fprintln(stderr, "keel sim run:", err)
	} else {
		fmt.Fprintf(stderr, "keel sim run: summary in %s\n", filepath.Join(*out, scenarios.SweepIndexFile))
	}
	if interrupted.Load() {
		fmt.Fprintf(stderr, "keel sim run: interrupted with %d of %d seeds done; continue with: %s --out %s --resume\n", len(all), planned, sweepCommand(params), *out)
	}
	select {
	case err := <-errc:
		fmt.Fprintln(stderr, "keel sim run:", err)
		return 1
	default:
	}
	fmt.Fprintf(stdout, "%-14s %7s %8s %12s %12s %10s %8s %9s\n", "scenario", "seeds", "failures", "sim time", "events", "ops", "faults", "seeds/s")
	var sum scenarioTotals
	for _, s := range scs {
		t := totals[s.Name]
		if t == nil {
			continue
		}
		fmt.Fprintf(stdout, "%-14s %7d %8d %12s %12d %10d %8d %9.1f\n", s.Name, t.seeds, t.failures,
			t.sim.Round(time.Millisecond), t.events, t.ops, t.faults, float64(t.seeds)/t.wall.Seconds())
		sum.seeds += t.seeds
		sum.failures += t.failures
		sum.sim += t.sim
		sum.events += t.events
		sum.ops += t.ops
		sum.faults += t.faults
		sum.unknown += t.unknown
	}
	// The total's seeds/s is this run's: seeds it ran per wall second.
	fmt.Fprintf(stdout, "%-14s %7d %8d %12s %12d %10d %8d %9.1f  (wall %s, %d process(es))\n", "total", sum.seeds, sum.failures,
		sum.sim.Round(time.Millisecond), sum.events, sum.ops, sum.faults, float64(done)/time.Since(start).Seconds(),
		time.Since(start).Round(time.Millisecond), max(*parallel, 1))
	if sum.unknown > 0 {
		fmt.Fprintf(stdout, "linearizability unknown (the check ran out of time; counted as failures): %d seed(s)\n", sum.unknown)
	}
	printMarkers(stdout, scs, totals)
	if len(failed) == 0 {
		if interrupted.Load() {
			return 130 // what a shell reports for a command ended by SIGINT
		}
		return 0
	}
	sort.Slice(failed, func(i, j int) bool {
		if failed[i].Scenario != failed[j].Scenario {
			return failed[i].Scenario < failed[j].Scenario
		}
		return failed[i].Seed < failed[j].Seed
	})
	fmt.Fprintf(stdout, "\n%d failing seed(s):\n", len(failed))
	for _, r := range failed {
		fmt.Fprintf(stdout, "  %s", scenarios.VariantReplayCommand(r.Scenario, r.Seed, sim.Variant{Swarm: *swarm}))
		if r.ReportDir != "" {
			fmt.Fprintf(stdout, "    # report: %s", r.ReportDir)
		}
		if r.SwarmMix != "" {
			fmt.Fprintf(stdout, "    # mix %s", r.SwarmMix)
		}
		fmt.Fprintln(stdout)
	}
	return 1
}

// printMarkers lists, per scenario, the rare states (sim.Markers) its
// seeds reached and in how many of them, then the markers no seed of the
// sweep reached.
func printMarkers(stdout io.Writer, scs []*scenarios.Scenario, totals map[string]*scenarioTotals) {
	reached := map[string]bool{}
	fmt.Fprintln(stdout, "\nmarkers reached (seeds that passed each, of the scenario's):")
	for _, s := range scs {
		t := totals[s.Name]
		if t == nil {
			continue
		}
		var parts []string
		for _, m := range sim.Markers {
			if n := t.markerRuns[m]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d/%d", m, n, t.seeds))
				reached[m] = true
			}
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		fmt.Fprintf(stdout, "  %-26s %s\n", s.Name, strings.Join(parts, ", "))
	}
	var never []string
	for _, m := range sim.Markers {
		if !reached[m] {
			never = append(never, m)
		}
	}
	if len(never) > 0 {
		fmt.Fprintf(stdout, "markers no seed reached: %s\n", strings.Join(never, ", "))
	}
}

func firstLine(fs []string) string {
	if len(fs) == 0 {
		return ""
	}
	s, _, _ := strings.Cut(fs[0], "\n")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// judge runs the job's seed.
func (j job) judge(s *scenarios.Scenario) scenarios.SeedResult {
	return scenarios.JudgeVariant(s, j.Seed, sim.Variant{Swarm: j.Swarm}, j.Out)
}

// runWorkers feeds jobs to n worker processes (this binary, "sim worker"),
// one job at a time each, so slow seeds do not hold up a fixed share.
func runWorkers(jobs []job, n int, results chan<- scenarios.SeedResult, stop <-chan struct{}) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary for workers: %w", err)
	}
	queue := make(chan job)
	go func() {
		defer close(queue)
		for _, j := range jobs {
			select {
			case queue <- j:
			case <-stop:
				return
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := worker(exe, queue, results); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// workerDiedPrefix begins the failure of a seed whose worker process died.
const workerDiedPrefix = "the worker process died running this seed: "

func worker(exe string, queue <-chan job, results chan<- scenarios.SeedResult) error {
	cmd := exec.Command(exe, "sim", "worker")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	rd := bufio.NewReader(outPipe)
	enc := json.NewEncoder(in)
	for j := range queue {
		if err := enc.Encode(j); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return fmt.Errorf("send job to worker: %w", err)
		}
		line, err := rd.ReadBytes('\n')
		if err != nil {
			in.Close()
			cmd.Wait()
			// The worker died (a crash of the process itself): the seed
			// fails with what we know.
			results <- scenarios.SeedResult{Scenario: j.Scenario, Seed: j.Seed,
				Failures: []string{workerDiedPrefix + err.Error()}}
			return worker(exe, queue, results)
		}
		var r scenarios.SeedResult
		if err := json.Unmarshal(line, &r); err != nil {
			return fmt.Errorf("worker said %q: %w", line, err)
		}
		results <- r
	}
	in.Close()
	return cmd.Wait()
}

// simWorker runs jobs read from stdin, one JSON job a line, and answers
// each with one JSON SeedResult line. One world at a time per process.
func simWorker(stdin io.Reader, stdout io.Writer) int {
	dec := json.NewDecoder(stdin)
	enc := json.NewEncoder(stdout)
	for {
		var j job
		if err := dec.Decode(&j); err != nil {
			if err == io.EOF {
				return 0
			}
			fmt.Fprintln(os.Stderr, "keel sim worker:", err)
			return 2
		}
		s := scenarios.Lookup(j.Scenario)
		if s == nil {
			fmt.Fprintln(os.Stderr, "keel sim worker: unknown scenario", j.Scenario)
			return 2
		}
		if err := enc.Encode(j.judge(s)); err != nil {
			return 2
		}
	}
}

func simReplay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("scenario", "", "scenario name")
	seed := fs.Uint64("seed", 0, "seed")
	tracePath := fs.String("trace", "", "write the event trace here (- for stdout)")
	out := fs.String("out", "", "on failure, also write a report folder here")
	swarm := fs.Bool("swarm", false, "the seed's swarm mix of fault kinds in place of the scenario's schedule")
	casePath := fs.String("case", "", "replay this case file (keel sim shrink writes them)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	var kase *scenarios.Case
	variant := sim.Variant{Swarm: *swarm}
	if *casePath != "" {
		if *name != "" || seedSet || *swarm {
			fmt.Fprintln(stderr, "keel sim replay: --case names the scenario, seed and variant; give none of --scenario, --seed, --swarm with it")
			return 2
		}
		c, s, err := scenarios.ReadCase(*casePath)
		if err != nil {
			fmt.Fprintln(stderr, "keel sim replay:", err)
			return 2
		}
		kase, variant, seedSet = &c, c.Variant, true
		*name, *seed = s.Name, c.Seed
	}
	s := scenarios.Lookup(*name)
	if s == nil || !seedSet || fs.NArg() > 0 {
		switch {
		case *name != "" && s == nil:
			fmt.Fprintf(stderr, "keel sim replay: unknown scenario %q\n", *name)
		default:
			seedText := ""
			if seedSet {
				seedText = "set"
			}
			fmt.Fprintf(stderr, "keel sim replay: %s\n", missingFlags(map[string]string{"--scenario NAME": *name, "--seed N": seedText}, fs.Args()))
		}
		fmt.Fprint(stderr, simUsage)
		return 2
	}
	var opts []func(*sim.Config)
	if *tracePath != "" {
		var w io.Writer = stdout
		if *tracePath != "-" {
			f, err := os.Create(*tracePath)
			if err != nil {
				fmt.Fprintln(stderr, "keel sim replay:", err)
				return 2
			}
			defer f.Close()
			w = f
		}
		opts = append(opts, func(c *sim.Config) { c.Trace = w })
	}
	start := time.Now()
	o := scenarios.RunVariant(s, *seed, variant, opts...)
	wall := time.Since(start)
	status := "PASS"
	if !o.Passed() {
		status = "FAIL"
	}
	fmt.Fprintf(stdout, "%s scenario %s seed %d: %d ops (%d unknown), %d replies checked, %d recoveries, %d acknowledged writes lost (allowed), %d refused starts\n",
		status, s.Name, *seed, o.Ops, o.Unknown, o.Oracle.Checked, o.Oracle.Recoveries, o.Oracle.LostWrites, o.Oracle.RefusedStarts)
	if o.SwarmMix != "" {
		fmt.Fprintf(stdout, "swarm mix: %s\n", o.SwarmMix)
	}
	fmt.Fprintf(stdout, "faults: %s\n", o.FaultSummary())
	fmt.Fprintf(stdout, "linearizability: %s\n", o.Linearizability)
	fmt.Fprintf(stdout, "simulated %s in %s wall, %d events\n", o.SimTime.Round(time.Millisecond), wall.Round(time.Millisecond), o.Events)
	for _, f := range o.Failures {
		fmt.Fprintf(stdout, "failure: %s\n", f)
	}
	if o.FailuresTotal > len(o.Failures) {
		fmt.Fprintf(stdout, "(%d more failures not shown)\n", o.FailuresTotal-len(o.Failures))
	}
	if !o.Passed() && *out != "" {
		dir, err := scenarios.WriteFailureReport(s, *seed, o, *out)
		if err != nil {
			fmt.Fprintln(stdout, "report:", err)
		} else {
			fmt.Fprintln(stdout, "report:", dir)
		}
	}
	if kase != nil {
		same := "the same"
		if o.TraceHash != kase.TraceHash {
			same = "DIFFERENT: this binary runs the case otherwise (recorded with " + kase.Build + ")"
		}
		fmt.Fprintf(stdout, "case: %s (%s): faults %d, ops %d; recorded trace-hash %s, %s\n",
			*casePath, variant.String(), o.Injected(), len(o.SentOps), kase.TraceHash, same)
	}
	fmt.Fprintf(stdout, "trace-hash: %s\n", o.TraceHash)
	if !o.Passed() || (kase != nil && o.TraceHash != kase.TraceHash) {
		return 1
	}
	return 0
}

func simShrink(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim shrink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("scenario", "", "scenario name")
	seed := fs.Uint64("seed", 0, "seed")
	swarm := fs.Bool("swarm", false, "shrink the seed's swarm run (keel sim run --swarm)")
	out := fs.String("out", "keel-sim-cases", "folder for the case file")
	runs := fs.Int("runs", scenarios.DefaultShrinkRuns, "at most this many runs")
	budget := fs.Duration("for", 10*time.Minute, "stop shrinking after this long, keeping the smallest case so far")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	s := scenarios.Lookup(*name)
	if s == nil || !seedSet || fs.NArg() > 0 || *runs < 1 {
		if *name != "" && s == nil {
			fmt.Fprintf(stderr, "keel sim shrink: unknown scenario %q\n", *name)
		}
		fmt.Fprint(stderr, simUsage)
		return 2
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(stderr, "keel sim shrink:", err)
		return 2
	}
	start := time.Now()
	res, err := scenarios.Shrink(s, *seed, sim.Variant{Swarm: *swarm}, scenarios.ShrinkOptions{
		MaxRuns: *runs, Budget: *budget,
		Log: func(line string) { fmt.Fprintln(stdout, line) },
	})
	if err != nil {
		fmt.Fprintln(stderr, "keel sim shrink:", err)
		return 1
	}
	c := res.Case(s)
	file := fmt.Sprintf("%s-seed-%d", s.Name, *seed)
	if *swarm {
		file += "-swarm"
	}
	path := filepath.Join(*out, file+".case.json")
	if err := scenarios.WriteCase(path, c); err != nil {
		fmt.Fprintln(stderr, "keel sim shrink:", err)
		return 2
	}
	note := ""
	if res.Exhausted {
		note = " (budget spent: smaller than the seed's run, maybe not the smallest)"
	}
	fmt.Fprintf(stdout, "%d runs in %s%s; the case fails %s: %s\n", res.Runs, time.Since(start).Round(time.Millisecond), note, res.Check, firstLine([]string{res.SignatureFailure()}))
	fmt.Fprintf(stdout, "replay: keel sim replay --case %s   # trace-hash %s\n", path, c.TraceHash)
	fmt.Fprintf(stdout, "case: %s faults %d -> %d ops %d -> %d\n", path, c.OriginalFaults, c.Faults, c.OriginalOps, c.Ops)
	return 0
}

// secondsPerSeed is what one seed of a scenario costs one process here,
// as measured in the sweeps written down in docs/simulation.md (a
// 2-core machine shared with other work); scenarios not listed cost
// secondsPerSeedDefault. It only shapes the estimate keel sim run prints.
var secondsPerSeed = map[string]float64{
	"baseline": 0.23, "bank-crash": 0.23, "bank-watch": 0.14, "bit-rot": 0.16, "clock-skew": 0.21,
	"crash-restart": 0.14, "disk-full": 0.1, "fcall-transfer": 0.21, "fsync-failure": 0.07,
	"partition": 0.08, "slow-disk": 0.09, "torn-writes": 0.09,
	"cluster-clock-skew": 0.45, "cluster-disk-faults": 0.6, "cluster-fcall": 0.28, "cluster-flapping": 0.33,
	"cluster-follower-crash": 1.0, "cluster-groups": 1.1, "cluster-groups-membership": 0.5,
	"cluster-leader-crash": 0.29, "cluster-leader-partition": 0.38, "cluster-membership": 0.53,
	"cluster-one-way": 0.55, "cluster-reshard": 0.77, "cluster-rolling-restart": 0.55,
}

const secondsPerSeedDefault = 0.5

// expectedSweep is how long jobs should take on procs processes.
func expectedSweep(jobs []job, procs int) time.Duration {
	total := 0.0
	for _, j := range jobs {
		c, ok := secondsPerSeed[j.Scenario]
		if !ok {
			c = secondsPerSeedDefault
		}
		total += c
	}
	return time.Duration(total / float64(procs) * float64(time.Second))
}

// roundDuration rounds d for people: seconds under ten minutes, minutes
// above.
func roundDuration(d time.Duration) time.Duration {
	if d > 10*time.Minute {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}

func simExplore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim explore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("scenario", "", "scenario name")
	budget := fs.Duration("for", 0, "explore this long")
	runs := fs.Int("runs", 0, "explore this many runs")
	first := fs.Uint64("first-seed", 1, "the first fresh seed")
	out := fs.String("out", "keel-sim-cases", "folder for the failing runs' case files")
	stop := fs.Bool("stop", false, "stop at the first failing run")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	s := scenarios.Lookup(*name)
	if s == nil || fs.NArg() > 0 || (*budget <= 0 && *runs <= 0) || *runs < 0 {
		if *name != "" && s == nil {
			fmt.Fprintf(stderr, "keel sim explore: unknown scenario %q\n", *name)
		}
		if *budget <= 0 && *runs <= 0 {
			fmt.Fprintln(stderr, "keel sim explore: give --for or --runs")
		}
		fmt.Fprint(stderr, simUsage)
		return 2
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(stderr, "keel sim explore:", err)
		return 2
	}
	start := time.Now()
	var writeErr error
	res := scenarios.Explore(s, scenarios.ExploreOptions{
		FirstSeed: *first, MaxRuns: *runs, Budget: *budget, StopAtFailure: *stop, Seed: *first,
		OnRun: func(n int, fresh bool, newFeatures []string, o *scenarios.Outcome) {
			what := "seed " + strconv.FormatUint(o.Seed, 10)
			if !fresh {
				what += " (" + o.Variant.String() + ")"
			}
			if !o.Passed() {
				c := scenarios.NewCase(s, o)
				path := filepath.Join(*out, fmt.Sprintf("%s-explore-%d.case.json", s.Name, n))
				if err := scenarios.WriteCase(path, c); err != nil {
					writeErr = err
				}
				fmt.Fprintf(stdout, "run %d FAIL %s: %s\n  replay: keel sim replay --case %s\n", n, what, firstLine(o.Failures), path)
				return
			}
			if len(newFeatures) > 0 {
				fmt.Fprintf(stdout, "run %d %s: %d new: %s\n", n, what, len(newFeatures), strings.Join(newFeatures, ", "))
			}
		},
	})
	if writeErr != nil {
		fmt.Fprintln(stderr, "keel sim explore:", writeErr)
	}
	fmt.Fprintf(stdout, "explored %d runs (%d fresh seeds, the first %d of them the warm-up's plain seeds in order; %d mutants) in %s: corpus %d, features %d, failures %d\n",
		res.Runs, res.Fresh, res.Warmup, res.Mutants, time.Since(start).Round(time.Millisecond), len(res.Corpus), len(res.Features), len(res.Failures))
	if len(res.Failures) > 0 {
		return 1
	}
	return 0
}
