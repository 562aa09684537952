package scenarios

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/cockroachdb/errors"
)

// SweepStateFile is the file in a sweep's --out folder that records the
// sweep and every seed it finished, so an interrupted sweep can resume.
const SweepStateFile = "sweep-state.jsonl"

// SweepParams names a sweep: a resumed sweep must be the same one.
type SweepParams struct {
	Scenario string `json:"scenario"`
	Seeds    string `json:"seeds"`
	Swarm    bool   `json:"swarm,omitempty"`
}

// SweepState is what a state file holds: the sweep and the seeds it
// finished, in the order they finished.
type SweepState struct {
	Params  SweepParams
	Results []SeedResult
}

// Done is the set of seeds the state holds.
func (s *SweepState) Done() map[SeedKey]bool {
	done := make(map[SeedKey]bool, len(s.Results))
	for _, r := range s.Results {
		done[SeedKey{r.Scenario, r.Seed}] = true
	}
	return done
}

// SeedKey is one seed of one scenario.
type SeedKey struct {
	Scenario string
	Seed     uint64
}

// The state file is JSON lines: the sweep's params first, then one
// SeedResult a line, appended as each seed finishes. Appending a line in
// one write rather than rewriting the file keeps a 10,000-seed sweep from
// writing its whole history again after every seed; a line cut short by a
// kill or a crash is the last one, and reading drops it (that seed runs
// again), so every line read back is a whole record.

// ReadSweepState reads dir's state file. A missing file is an error
// wrapping os.ErrNotExist.
func ReadSweepState(dir string) (*SweepState, error) {
	path := filepath.Join(dir, SweepStateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrapf(err, "read sweep state %s", path)
	}
	// A last line without its newline was cut short by the interruption:
	// that seed runs again.
	if i := bytes.LastIndexByte(data, '\n'); i+1 < len(data) {
		data = data[:i+1]
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'})
	if len(data) == 0 {
		return nil, errors.Newf("sweep state %s is empty", path)
	}
	st := &SweepState{}
	if err := json.Unmarshal(lines[0], &st.Params); err != nil || st.Params.Scenario == "" {
		return nil, errors.Newf("sweep state %s: line 1 is not a sweep's params: %q", path, clip(lines[0]))
	}
	for i, b := range lines[1:] {
		var r SeedResult
		if err := json.Unmarshal(b, &r); err != nil || r.Scenario == "" {
			return nil, errors.Newf("sweep state %s: line %d is not a seed's result: %q", path, i+2, clip(b))
		}
		st.Results = append(st.Results, r)
	}
	return st, nil
}

func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// SweepStateWriter appends finished seeds to a state file.
type SweepStateWriter struct {
	f    *os.File
	path string
}

// CreateSweepState starts dir's state file afresh for a sweep of p.
func CreateSweepState(dir string, p SweepParams) (*SweepStateWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, errors.Wrapf(err, "create %s", dir)
	}
	path := filepath.Join(dir, SweepStateFile)
	// The params line goes in through a rename, so a state file that
	// exists always names its sweep.
	head, err := json.Marshal(p)
	if err != nil {
		return nil, errors.Wrap(err, "encode sweep params")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(head, '\n'), 0o644); err != nil {
		return nil, errors.Wrapf(err, "write %s", tmp)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, errors.Wrapf(err, "rename %s", tmp)
	}
	return OpenSweepState(dir)
}

// OpenSweepState opens dir's state file to append to it (a resumed
// sweep). A torn last line is cut off first, so the next record starts on
// a line of its own.
func OpenSweepState(dir string) (*SweepStateWriter, error) {
	path := filepath.Join(dir, SweepStateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrapf(err, "read %s", path)
	}
	if i := bytes.LastIndexByte(data, '\n'); i+1 < len(data) {
		if err := os.Truncate(path, int64(i+1)); err != nil {
			return nil, errors.Wrapf(err, "cut the torn last line of %s", path)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, errors.Wrapf(err, "open %s", path)
	}
	return &SweepStateWriter{f: f, path: path}, nil
}

// Add records a finished seed: one line in one write, synced, so a seed
// the file holds is one an interrupted sweep need not run again.
func (w *SweepStateWriter) Add(r SeedResult) error {
	b, err := json.Marshal(r)
	if err != nil {
		return errors.Wrap(err, "encode seed result")
	}
	if _, err := w.f.Write(append(b, '\n')); err != nil {
		return errors.Wrapf(err, "append to %s", w.path)
	}
	return errors.Wrapf(w.f.Sync(), "sync %s", w.path)
}

// Close closes the file.
func (w *SweepStateWriter) Close() error {
	return errors.Wrapf(w.f.Close(), "close %s", w.path)
}
