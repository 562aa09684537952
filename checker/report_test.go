package checker

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func staleRead() []Op {
	return []Op{
		{Client: 1, Kind: Set, Key: "x", Value: "1", Call: 0, Return: 10, Output: Str("OK")},
		{Client: 1, Kind: Set, Key: "x", Value: "2", Call: 20, Return: 30, Output: Str("OK")},
		{Client: 2, Kind: Get, Key: "x", Call: 40, Return: 50, Output: Str("1")},
		{Client: 3, Kind: Del, Key: "y", Call: 45, Unknown: true},
	}
}

func TestWriteReport(t *testing.T) {
	ops := staleRead()
	res := mustCheck(t, ops, ModelKV)
	dir := filepath.Join(t.TempDir(), "reports", "crash-restart-42")
	err := WriteReport(dir, Report{
		Scenario: "crash-restart", Seed: 42, Result: res, Ops: ops,
		Trace:  []string{"0.000000 n1 start", "0.000040 n1 crash"},
		Replay: "keel sim replay --scenario crash-restart --seed 42",
	})
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	summary := read(SummaryFile)
	lines := strings.Split(summary, "\n")
	if lines[0] != "FAIL scenario crash-restart seed 42" || lines[1] != "replay: keel sim replay --scenario crash-restart --seed 42" ||
		!strings.HasPrefix(lines[2], "linearizability: illegal") {
		t.Fatalf("summary starts:\n%s", summary)
	}
	if !strings.Contains(summary, `key "x" is not linearizable`) {
		t.Fatalf("summary lacks the explanation:\n%s", summary)
	}
	f, err := os.Open(filepath.Join(dir, HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	back, err := ReadHistory(f)
	if err != nil || !reflect.DeepEqual(back, ops) {
		t.Fatalf("history.jsonl: %v\n%+v", err, back)
	}
	if html := read(VisualizationFile); !strings.Contains(html, "<html") || !strings.Contains(html, `get x -\u003e \"1\"`) && !strings.Contains(html, `get x -> \"1\"`) {
		t.Fatalf("visualization.html does not show the history (%d bytes)", len(html))
	}
	if trace := read(TraceFile); trace != "0.000000 n1 start\n0.000040 n1 crash\n" {
		t.Fatalf("trace.txt %q", trace)
	}
}

// TestWriteReportChecksAndCopiesTrace: a seed that failed for its own reason
// (here a durability check) passes no Result; the report checks the history
// itself and copies the trace file.
func TestWriteReportChecksAndCopiesTrace(t *testing.T) {
	tmp := t.TempDir()
	tracePath := filepath.Join(tmp, "trace.log")
	if err := os.WriteFile(tracePath, []byte("event 1\nevent 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ops := staleRead()[:2]
	dir := filepath.Join(tmp, "r")
	err := WriteReport(dir, Report{
		Scenario: "torn-writes", Seed: 7, Ops: ops, TraceFile: tracePath,
		Failure: `acknowledged SET x "2" missing after recovery`,
		Replay:  "keel sim replay --scenario torn-writes --seed 7",
	})
	if err != nil {
		t.Fatal(err)
	}
	summary, _ := os.ReadFile(filepath.Join(dir, SummaryFile))
	for _, want := range []string{"failure: acknowledged SET x \"2\" missing after recovery", "linearizability: ok: 2 operations (0 unknown outcomes) on 1 keys"} {
		if !strings.Contains(string(summary), want) {
			t.Fatalf("summary lacks %q:\n%s", want, summary)
		}
	}
	if trace, _ := os.ReadFile(filepath.Join(dir, TraceFile)); string(trace) != "event 1\nevent 2\n" {
		t.Fatalf("trace %q", trace)
	}
	if _, err := os.Stat(filepath.Join(dir, VisualizationFile)); err != nil {
		t.Fatal(err)
	}

	// A missing trace file is reported, but the rest is still written.
	dir2 := filepath.Join(tmp, "r2")
	err = WriteReport(dir2, Report{Scenario: "x", Seed: 1, Ops: ops, TraceFile: filepath.Join(tmp, "nope")})
	if err == nil || !strings.Contains(err.Error(), "open trace") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir2, SummaryFile)); err != nil {
		t.Fatal(err)
	}
}
