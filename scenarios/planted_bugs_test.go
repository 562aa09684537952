package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-db/keel/sim"
)

// TestPlantedBugs proves that the simulator catches each planted bug
// (planted.go): a sweep of the bug's seed range (Seeds in -short mode, Long
// otherwise) has a failing seed, judged by the oracle or the checker (not a
// panic), whose report folder holds the four files; at least one failing
// seed's history is found not linearizable by the checker itself (for a
// bug planted against a Raft invariant: at least one failing seed names
// that invariant instead); and the same seeds pass with the bug off, so
// the failure is the bug's.
func TestPlantedBugs(t *testing.T) {
	for _, p := range Planted {
		t.Run(p.Name, func(t *testing.T) {
			s := Lookup(PlantedPrefix + p.Name)
			if s == nil {
				t.Fatalf("no scenario %s", PlantedPrefix+p.Name)
			}
			lo, hi := p.Seeds[0], p.Seeds[1]
			if !testing.Short() {
				lo, hi = p.Long[0], p.Long[1]
			}
			var caught, byChecker, byInvariant []uint64
			for seed := lo; seed <= hi; seed++ {
				out := RunSeed(s, seed)
				if out.Passed() {
					continue
				}
				caught = append(caught, seed)
				if out.Linearizability == "illegal" {
					byChecker = append(byChecker, seed)
				}
				for _, f := range out.Failures {
					if p.Invariant != "" && strings.HasPrefix(f, p.Invariant+":") {
						byInvariant = append(byInvariant, seed)
						break
					}
				}
				// A panic is a miss unless a check had already failed:
				// once a term has two leaders (vote-reject-lost, seed 8 of
				// its long range), go.etcd.io/raft's own assertions may
				// fire later in the run ("need non-empty snapshot"),; the check
				// caught the bug first.
				checkedFirst := false
				for _, f := range out.Failures {
					if strings.Contains(f, "panic") && !checkedFirst {
						t.Errorf("seed %d: the bug made the node panic rather than being caught: %s", seed, f)
					}
					if !strings.Contains(f, "panic") {
						checkedFirst = true
					}
				}
				t.Logf("seed %d caught (linearizability %s): %.300s", seed, out.Linearizability, out.Failures[0])
				if len(caught) == 1 {
					checkReportFolder(t, s, seed, out)
				}
			}
			if len(caught) == 0 {
				t.Fatalf("no seed in %d..%d caught the planted bug %q", lo, hi, p.Name)
			}
			t.Logf("caught by %d of %d seeds: %v; the checker's verdict was illegal in %v", len(caught), hi-lo+1, caught, byChecker)
			switch {
			case p.Invariant != "":
				t.Logf("%s failed in %v", p.Invariant, byInvariant)
				if len(byInvariant) == 0 {
					t.Errorf("the bug was caught, but never by the %s check it was planted against", p.Invariant)
				}
			case len(byChecker) == 0 && !p.CheckerBlind:
				t.Errorf("the oracle caught the bug, but no seed's history was found not linearizable by the checker")
			}
			for seed := lo; seed <= hi; seed++ {
				out := RunSeed(s, seed, func(c *sim.Config) { c.Node.Knobs, c.Node.NodeKnobs = nil, nil })
				if !out.Passed() {
					t.Errorf("seed %d fails without the planted bug: %s", seed, out.Failures[0])
				}
			}
		})
	}
}

func checkReportFolder(t *testing.T, s *Scenario, seed uint64, out *Outcome) {
	t.Helper()
	dir, err := WriteFailureReport(s, seed, out, t.TempDir())
	if err != nil {
		t.Fatalf("report for seed %d: %v", seed, err)
	}
	for _, f := range []string{"summary.txt", "history.jsonl", "visualization.html", "trace.txt"} {
		if f == "history.jsonl" && len(out.History) == 0 {
			continue // a workload that keeps no history (the grammar's)
		}
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("report %s: %s missing or empty (%v)", dir, f, err)
		}
	}
	sum, err := os.ReadFile(filepath.Join(dir, "summary.txt"))
	if err != nil {
		return
	}
	replay := ReplayCommand(s.Name, seed)
	if !strings.Contains(string(sum), replay) {
		t.Errorf("summary.txt lacks the replay command %q:\n%s", replay, sum)
	}
	if strings.Contains(string(sum), "NONDETERMINISM") {
		t.Errorf("the planted bug made the run nondeterministic:\n%s", sum)
	}
}

// TestPlantedScenariosStayOutOfAll: `--scenario all` never runs a planted
// bug, and every planted scenario is found by name.
func TestPlantedScenariosStayOutOfAll(t *testing.T) {
	for _, s := range All() {
		if strings.HasPrefix(s.Name, PlantedPrefix) {
			t.Errorf("planted scenario %s is in All()", s.Name)
		}
	}
	if got := len(PlantedScenarios()); got != len(Planted) || got < 6 {
		t.Errorf("%d planted scenarios for %d bugs, want at least 6", got, len(Planted))
	}
}

// TestOnlyTheSimulatorPlantsBugs: no production code path can switch a
// planted bug on. Outside cluster/ and disk/ (which define the knobs),
// sim/ (whose node passes them) and scenarios/ (which sets them), no
// non-test Go file names them.
func TestOnlyTheSimulatorPlantsBugs(t *testing.T) {
	names := []string{"TestingKnobs", "Knobs", "WALPlanted", "Planted:"}
	for _, dir := range []string{"../server", "../cmd", "../engine", "../net", "../seam", "../udf", "../bench"} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, n := range names {
				if strings.Contains(string(b), n) {
					t.Errorf("%s mentions %s: production code must not plant bugs", path, n)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
