package checker

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/errors"
)

// Report is what a failing seed leaves behind for a person to read.
type Report struct {
	Scenario string
	Seed     uint64
	// Result is the checker's verdict on Ops. When it carries no check data
	// (a zero Result), WriteReport runs Check itself with Model.
	Result Result
	Model  string // for that fallback check; ModelKV when empty
	Ops    []Op
	// Failure says why the seed failed when the reason is not (only) the
	// linearizability verdict: an acknowledged write missing after recovery,
	// a panic, a broken invariant. It goes first in summary.txt.
	Failure string
	// The event trace: either lines kept in memory or a file to copy.
	Trace     []string
	TraceFile string
	// Replay is the command that re-runs the seed, e.g.
	// "keel sim replay --scenario crash-restart --seed 42".
	Replay string
}

// Files WriteReport creates in the report folder.
const (
	SummaryFile       = "summary.txt"
	HistoryFile       = "history.jsonl"
	VisualizationFile = "visualization.html"
	TraceFile         = "trace.txt"
)

// WriteReport creates dir (and its parents) and writes the report of one
// failing seed into it: summary.txt (what failed, the replay command, the
// verdict and explanation), history.jsonl, visualization.html and
// trace.txt. It returns the first error but still writes what it can: a
// broken trace copy should not cost the summary.
func WriteReport(dir string, r Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrapf(err, "create report folder %s", dir)
	}
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if !r.Result.checked {
		res, err := Check(r.Ops, Options{Model: r.Model})
		if err != nil {
			keep(errors.Wrap(err, "check history for report"))
			res.Verdict = Unknown
			res.Explanation = "the history could not be checked: " + err.Error()
		}
		r.Result = res
	}
	keep(writeFile(filepath.Join(dir, SummaryFile), func(w io.Writer) error {
		_, err := io.WriteString(w, r.summary())
		return err
	}))
	keep(writeFile(filepath.Join(dir, HistoryFile), func(w io.Writer) error {
		return WriteHistory(w, r.Ops)
	}))
	if r.Result.checked {
		keep(writeFile(filepath.Join(dir, VisualizationFile), r.Result.Visualize))
	}
	keep(writeFile(filepath.Join(dir, TraceFile), func(w io.Writer) error {
		if r.TraceFile != "" {
			f, err := os.Open(r.TraceFile)
			if err != nil {
				return errors.Wrapf(err, "open trace %s", r.TraceFile)
			}
			defer f.Close()
			_, err = io.Copy(w, f)
			return errors.Wrapf(err, "copy trace %s", r.TraceFile)
		}
		for _, line := range r.Trace {
			if _, err := io.WriteString(w, line+"\n"); err != nil {
				return err
			}
		}
		return nil
	}))
	return firstErr
}

func (r Report) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "FAIL scenario %s seed %d\n", r.Scenario, r.Seed)
	if r.Replay != "" {
		fmt.Fprintf(&b, "replay: %s\n", r.Replay)
	}
	if r.Failure != "" {
		fmt.Fprintf(&b, "failure: %s\n", r.Failure)
	}
	fmt.Fprintf(&b, "linearizability: %s\n", r.Result.Summary())
	if r.Result.Explanation != "" {
		b.WriteString("\n" + r.Result.Explanation + "\n")
	}
	fmt.Fprintf(&b, "\nfiles:\n  %s  every client operation (keel check --model %s --history %s)\n"+
		"  %s  porcupine's timeline: open in a browser\n  %s  the event trace\n",
		HistoryFile, r.Result.Model, HistoryFile, VisualizationFile, TraceFile)
	return b.String()
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return errors.Wrapf(err, "create %s", path)
	}
	w := bufio.NewWriter(f)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return errors.Wrapf(err, "write %s", path)
}
