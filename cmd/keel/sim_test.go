package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/scenarios"
)

func TestSimList(t *testing.T) {
	var out bytes.Buffer
	if code := simList(nil, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	names := strings.Fields(out.String())
	for _, want := range []string{"baseline", "crash-restart", "torn-writes", "fsync-failure", "disk-full", "bit-rot", "clock-skew", "slow-disk"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("keel sim list lacks %s: %v", want, names)
		}
	}
}

func TestSimReplayLastLineIsStableTraceHash(t *testing.T) {
	var a, b bytes.Buffer
	if code := simReplay([]string{"--scenario", "crash-restart", "--seed", "3"}, &a, &a); code != 0 {
		t.Fatalf("exit %d:\n%s", code, a.String())
	}
	if code := simReplay([]string{"--scenario", "crash-restart", "--seed", "3", "--trace", "-"}, &b, &b); code != 0 {
		t.Fatalf("exit %d", code)
	}
	last := func(s string) string {
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		return lines[len(lines)-1]
	}
	if !strings.HasPrefix(last(a.String()), "trace-hash: ") || last(a.String()) != last(b.String()) {
		t.Fatalf("last lines differ or lack the hash: %q vs %q", last(a.String()), last(b.String()))
	}
	if !strings.Contains(b.String(), " n1 submit ") {
		t.Fatalf("--trace - did not write the trace")
	}
}

func TestSimRunExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := simRun([]string{"--scenario", "nope", "--seeds", "1..2"}, &out, &errb); code != 2 {
		t.Fatalf("unknown scenario: exit %d", code)
	}
	if code := simRun([]string{"--scenario", "baseline", "--seeds", "5..1"}, &out, &errb); code != 2 {
		t.Fatalf("bad range: exit %d", code)
	}
	out.Reset()
	if code := simRun([]string{"--scenario", "baseline", "--seeds", "1..2", "--out", t.TempDir()}, &out, &errb); code != 0 {
		t.Fatalf("baseline 1..2: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "baseline") || !strings.Contains(out.String(), "total") {
		t.Fatalf("no summary table:\n%s", out.String())
	}
	// The markers: baseline appends, snapshots and compacts, and never
	// sees a vote (one node).
	if !regexp.MustCompile(`(?m)^  baseline +append-unsynced 2/2, `).MatchString(out.String()) ||
		!regexp.MustCompile(`(?m)^markers no seed reached: vote-unsynced, `).MatchString(out.String()) {
		t.Fatalf("no markers report:\n%s", out.String())
	}
}

// keel sim shrink writes a case whose replay is the shrunk run, trace
// hash for trace hash, and its last line says how much it removed.
func TestSimShrinkWritesCaseThatReplays(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := simShrink([]string{"--scenario", "planted-ack-before-fsync", "--seed", "1", "--out", dir}, &out, &errb); code != 0 {
		t.Fatalf("shrink exit %d: %s%s", code, out.String(), errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`^case: (\S+) faults (\d+) -> (\d+) ops (\d+) -> (\d+)$`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q", last)
	}
	if m[2] == m[3] && m[4] == m[5] {
		t.Fatalf("nothing removed: %s", last)
	}
	hash := regexp.MustCompile(`trace-hash ([0-9a-f]+)`).FindStringSubmatch(out.String())
	out.Reset()
	if code := simReplay([]string{"--case", m[1]}, &out, &errb); code != 1 {
		t.Fatalf("replay of a failing case: exit %d: %s", code, out.String())
	}
	if !strings.Contains(out.String(), "recorded trace-hash "+hash[1]+", the same") || !strings.HasSuffix(strings.TrimSpace(out.String()), "trace-hash: "+hash[1]) {
		t.Fatalf("replay --case:\n%s", out.String())
	}
	if code := simReplay([]string{"--case", m[1], "--seed", "2"}, &out, &errb); code != 2 {
		t.Fatalf("--case with --seed: exit %d", code)
	}
	if code := simShrink([]string{"--scenario", "baseline", "--seed", "1", "--out", dir}, &out, &errb); code != 1 {
		t.Fatalf("shrinking a passing seed: exit %d", code)
	}
}

// A worker process runs a swarm job and answers with the seed's mix and
// markers (what --parallel's parent reads back).
func TestSimWorkerSwarmJob(t *testing.T) {
	in := strings.NewReader(`{"scenario":"crash-restart","seed":2,"swarm":true}` + "\n")
	var out bytes.Buffer
	if code := simWorker(in, &out); code != 0 {
		t.Fatalf("worker exit %d", code)
	}
	if !strings.Contains(out.String(), `"swarm_mix":"node: `) || !strings.Contains(out.String(), `"markers":{"append-unsynced":`) {
		t.Fatalf("worker answered %s", out.String())
	}
}

// A sweep cut short and resumed runs only the seeds its state file lacks
// (a torn last record among them), and ends with the same table and the
// same HTML rows as the sweep run in one go.
func TestSimRunResumeEqualsUninterrupted(t *testing.T) {
	whole, cut := t.TempDir(), t.TempDir()
	args := []string{"--scenario", "baseline", "--seeds", "1..3"}
	var out, errb bytes.Buffer
	if code := simRun(append(args, "--out", whole), &out, &errb); code != 0 {
		t.Fatalf("whole sweep: exit %d\n%s%s", code, out.String(), errb.String())
	}
	wholeTable := tableWithoutRates(out.String())

	// What a Ctrl-C after the first seed leaves: its record, and the
	// second's cut short.
	state, err := os.ReadFile(filepath.Join(whole, scenarios.SweepStateFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(state), "\n")
	if len(lines) != 5 || lines[4] != "" {
		t.Fatalf("state file of 3 seeds has %d lines:\n%s", len(lines), state)
	}
	torn := lines[0] + lines[1] + lines[2][:len(lines[2])/2]
	if err := os.WriteFile(filepath.Join(cut, scenarios.SweepStateFile), []byte(torn), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := simRun(append(args, "--out", cut, "--resume"), &out, &errb); code != 0 {
		t.Fatalf("resumed sweep: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "resuming: 1 of 3 seeds done") || !strings.Contains(errb.String(), "[2/2 seeds]") {
		t.Errorf("the resumed sweep did not run just the 2 seeds left:\n%s", errb.String())
	}
	if got := tableWithoutRates(out.String()); got != wholeTable {
		t.Errorf("resumed table\n%s\nwant the whole sweep's\n%s", got, wholeTable)
	}
	st, err := scenarios.ReadSweepState(cut)
	if err != nil {
		t.Fatal(err)
	}
	var seeds []uint64
	for _, r := range st.Results {
		seeds = append(seeds, r.Seed)
	}
	if !reflect.DeepEqual(seeds, []uint64{1, 2, 3}) {
		t.Errorf("state file after the resume holds seeds %v, want 1 2 3 once each", seeds)
	}
	row := regexp.MustCompile(`<tr class="scenario"[^\n]*`)
	a, _ := os.ReadFile(filepath.Join(whole, scenarios.SweepIndexFile))
	b, _ := os.ReadFile(filepath.Join(cut, scenarios.SweepIndexFile))
	if ra, rb := row.FindString(string(a)), row.FindString(string(b)); ra == "" || ra != rb {
		t.Errorf("HTML rows differ: whole %q, resumed %q", ra, rb)
	}

	// A resume of another sweep, or with no state, is refused.
	if code := simRun([]string{"--scenario", "baseline", "--seeds", "1..4", "--out", cut, "--resume"}, &out, &errb); code != 2 {
		t.Errorf("resume with other seeds: exit %d", code)
	}
	if code := simRun(append(args, "--out", t.TempDir(), "--resume"), &out, &errb); code != 2 {
		t.Errorf("resume with no state: exit %d", code)
	}
}

// tableWithoutRates is the summary table of a sweep's output without its
// seeds/s column and wall time, the parts that differ run to run.
func tableWithoutRates(out string) string {
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 8 && (f[0] == "baseline" || f[0] == "total") {
			rows = append(rows, strings.Join(f[:7], " "))
		}
	}
	return strings.Join(rows, "\n")
}

func TestProgressBar(t *testing.T) {
	got := progressBar(3, 12, 2.5, 1, 4*time.Second, 8)
	if want := "[##......] 3/12 seeds 25%, 2.5 seeds/s, 1 failures, about 4s left"; got != want {
		t.Errorf("progressBar = %q, want %q", got, want)
	}
}
