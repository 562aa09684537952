package scenarios

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/sim"
)

// SeedResult is one judged seed as a sweep reports it (and as a worker
// process sends it to its parent, one JSON object a line).
type SeedResult struct {
	Scenario      string   `json:"scenario"`
	Seed          uint64   `json:"seed"`
	Passed        bool     `json:"passed"`
	Failures      []string `json:"failures,omitempty"`
	FailuresTotal int      `json:"failures_total,omitempty"`
	Ops           int64    `json:"ops"`
	Unknown       int64    `json:"unknown"`
	// NotRun: timed-out operations no node read, left out of the
	// history (sim.Result.NotRun).
	NotRun        int64  `json:"not_run,omitempty"`
	Checked       int64  `json:"checked"`
	Recoveries    int64  `json:"recoveries"`
	LostWrites    int64  `json:"lost_writes"`
	RefusedStarts int64  `json:"refused_starts"`
	Faults        string `json:"faults"`
	FaultsTotal   int64  `json:"faults_total"`
	Lin           string `json:"linearizability"`
	SimNanos      int64  `json:"sim_ns"`
	Events        int64  `json:"events"`
	TraceHash     string `json:"trace_hash"`
	WallNanos     int64  `json:"wall_ns"`
	ReportDir     string `json:"report,omitempty"`
	// SwarmMix names the seed's swarm fault mix (a --swarm sweep).
	SwarmMix string `json:"swarm_mix,omitempty"`
	// Markers counts the rare states the run passed (sim/aim.go).
	Markers map[string]int64 `json:"markers,omitempty"`
}

// ReplayCommand is the command that re-runs one seed.
func ReplayCommand(scenario string, seed uint64) string {
	return "keel sim replay --scenario " + scenario + " --seed " + strconv.FormatUint(seed, 10)
}

// VariantReplayCommand is the command that re-runs one seed under v: a
// swarm run's is the seed's with --swarm; any other variant lives in a
// case file (case.go), which the report folder holds.
func VariantReplayCommand(scenario string, seed uint64, v sim.Variant) string {
	cmd := ReplayCommand(scenario, seed)
	if v.Swarm {
		cmd += " --swarm"
	}
	return cmd
}

// Judge runs one seed and, when it fails and outDir is set, writes its
// report folder (re-running the seed once more to capture the trace).
func Judge(s *Scenario, seed uint64, outDir string) SeedResult {
	return JudgeVariant(s, seed, sim.Variant{}, outDir)
}

// JudgeVariant is Judge under a variant (a swarm sweep's).
func JudgeVariant(s *Scenario, seed uint64, v sim.Variant, outDir string) SeedResult {
	start := time.Now()
	out := RunVariant(s, seed, v)
	r := SeedResult{SwarmMix: out.SwarmMix, Markers: out.Markers,
		Scenario: s.Name, Seed: seed, Passed: out.Passed(), Failures: out.Failures,
		FailuresTotal: out.FailuresTotal, Ops: out.Ops, Unknown: out.Unknown, NotRun: out.NotRun,
		Checked: out.Oracle.Checked, Recoveries: out.Oracle.Recoveries, LostWrites: out.Oracle.LostWrites,
		RefusedStarts: out.Oracle.RefusedStarts, Faults: out.FaultSummary(), Lin: out.Linearizability,
		SimNanos: int64(out.SimTime), Events: out.Events, TraceHash: out.TraceHash,
	}
	for _, n := range out.Faults {
		r.FaultsTotal += n
	}
	r.WallNanos = int64(time.Since(start))
	if !r.Passed && outDir != "" {
		dir, err := WriteFailureReport(s, seed, out, outDir)
		if err != nil {
			r.Failures = append(r.Failures, "writing the report failed: "+err.Error())
		}
		r.ReportDir = dir
	}
	return r
}

// WriteFailureReport writes outDir/<scenario>-seed-<seed>/ with the
// checker's files (summary, history, visualization) and the full trace,
// captured by running the seed again (same seed, same binary, same run).
func WriteFailureReport(s *Scenario, seed uint64, out *Outcome, outDir string) (string, error) {
	dir := filepath.Join(outDir, fmt.Sprintf("%s-seed-%d", s.Name, seed))
	if out.Variant.Swarm {
		dir += "-swarm" // the seed's own run may fail too, with its own report
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return dir, errors.Wrapf(err, "create %s", dir)
	}
	tracePath := filepath.Join(dir, "trace.tmp")
	f, err := os.Create(tracePath)
	if err != nil {
		return dir, errors.Wrapf(err, "create %s", tracePath)
	}
	again := RunVariant(s, seed, out.Variant, func(c *sim.Config) { c.Trace = f })
	f.Close()
	defer os.Remove(tracePath)
	failure := strings.Join(out.Failures, "\n")
	if out.SwarmMix != "" {
		failure += "\nswarm mix: " + out.SwarmMix
	}
	if again.TraceHash != out.TraceHash {
		failure += "\nNONDETERMINISM: the re-run for this report produced trace-hash " + again.TraceHash + ", the first run " + out.TraceHash
	}
	rep := checker.Report{
		Scenario: s.Name, Seed: seed, Result: out.Check, Model: reportModel(out), Ops: out.History,
		Failure: failure, TraceFile: tracePath, Replay: VariantReplayCommand(s.Name, seed, out.Variant),
	}
	return dir, checker.WriteReport(dir, rep)
}

// reportModel is the model a report checks with when the seed's own check
// did not run (linearizability skipped): the bank model for a history with
// transfers, which the kv model cannot read.
func reportModel(out *Outcome) string {
	if out.Check.Model != "" {
		return out.Check.Model
	}
	for _, op := range out.History {
		if op.Kind == checker.Transfer {
			return checker.ModelBank
		}
		if m := checker.CollectionModel(op.Kind); m != "" {
			return m
		}
	}
	return checker.ModelKV
}
