package scenarios

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// updateTraces rewrites testdata/trace-hashes.txt from this build:
//
//	go test ./scenarios -run TestScenariosShort -update-traces
//
// A behaviour change then shows as a reviewed diff of that file.
var updateTraces = flag.Bool("update-traces", false, "rewrite testdata/trace-hashes.txt with the trace hashes of this build")

const traceHashesFile = "testdata/trace-hashes.txt"

// TestScenariosShort runs every scenario for a few seeds. Failures here
// are findings about the code under test; the test reports them all. Each
// run's trace hash must be the one pinned in testdata/trace-hashes.txt:
// the same seed and the same code give the same trace, so a hash that
// moved says the behaviour changed (rewrite the file with -update-traces
// and review the diff).
func TestScenariosShort(t *testing.T) {
	seeds := uint64(2)
	pinned := readTraceHashes(t)
	got := map[string]string{}
	for _, s := range All() {
		t.Run(s.Name, func(t *testing.T) {
			for seed := uint64(1); seed <= seeds; seed++ {
				out := RunSeed(s, seed)
				t.Logf("seed %d: ops=%d unknown=%d oracle=%+v faults=[%s] lin=%s sim=%s events=%d",
					seed, out.Ops, out.Unknown, out.Oracle, out.FaultSummary(), out.Linearizability, out.SimTime, out.Events)
				if out.Oracle.Checked == 0 {
					t.Errorf("seed %d checked nothing", seed)
				}
				for _, f := range out.Failures {
					t.Errorf("seed %d: %s", seed, f)
				}
				key := fmt.Sprintf("%s %d", s.Name, seed)
				got[key] = out.TraceHash
				if want, ok := pinned[key]; !*updateTraces && (!ok || want != out.TraceHash) {
					t.Errorf("seed %d: trace-hash %s, pinned %q: the behaviour changed (keel sim replay --scenario %s --seed %d --trace FILE shows the run; "+
						"go test ./scenarios -run TestScenariosShort -update-traces rewrites %s for review)", seed, out.TraceHash, want, s.Name, seed, traceHashesFile)
				}
			}
		})
	}
	if *updateTraces {
		writeTraceHashes(t, got)
	}
}

func readTraceHashes(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	f, err := os.Open(traceHashesFile)
	if os.IsNotExist(err) && *updateTraces {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("%s: bad line %q (want: scenario seed hash)", traceHashesFile, line)
		}
		out[f[0]+" "+f[1]] = f[2]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func writeTraceHashes(t *testing.T, got map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# The trace hash of each scenario's first seeds on this code (go test ./scenarios -run TestScenariosShort\n")
	b.WriteString("# -update-traces rewrites it). A line that changes says the simulated behaviour changed: review why.\n")
	for _, k := range keys {
		b.WriteString(k + " " + got[k] + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(traceHashesFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(traceHashesFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
