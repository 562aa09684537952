package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Records appended to a state file read back whole; a torn last record
// is dropped on reading and cut off on reopening, so the next record
// starts a line of its own; a bad record in the middle is an error.
func TestSweepStateTornTail(t *testing.T) {
	dir := t.TempDir()
	p := SweepParams{Scenario: "all", Seeds: "1..9", Swarm: true}
	w, err := CreateSweepState(dir, p)
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(1); seed <= 2; seed++ {
		if err := w.Add(SeedResult{Scenario: "baseline", Seed: seed, Passed: seed == 1, Markers: map[string]int64{"compaction": 2}}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	path := filepath.Join(dir, SweepStateFile)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"scenario":"baseline","seed":3,"pas`)
	f.Close()

	st, err := ReadSweepState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Params != p || len(st.Results) != 2 || st.Results[1].Seed != 2 || st.Results[1].Passed || st.Results[0].Markers["compaction"] != 2 {
		t.Fatalf("read back %+v", st)
	}
	if done := st.Done(); !done[SeedKey{"baseline", 2}] || done[SeedKey{"baseline", 3}] {
		t.Errorf("done %v", done)
	}
	w, err = OpenSweepState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(SeedResult{Scenario: "baseline", Seed: 3, Passed: true}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if st, err = ReadSweepState(dir); err != nil || len(st.Results) != 3 || st.Results[2].Seed != 3 {
		t.Fatalf("after reopening: %+v, %v", st, err)
	}

	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(data), "\n")
	os.WriteFile(path, []byte(lines[0]+"garbage\n"+lines[1]), 0o644)
	if _, err := ReadSweepState(dir); err == nil || !strings.Contains(err.Error(), "line 2 is not a seed's result") {
		t.Errorf("a bad middle record: %v", err)
	}
	if _, err := ReadSweepState(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no state file: %v", err)
	}
}
