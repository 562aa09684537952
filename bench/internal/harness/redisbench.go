package harness

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
)

// Result is one redis-benchmark measurement. Latencies are in
// milliseconds; NaN when the redis-benchmark version does not print them.
type Result struct {
	OpsPerSec float64
	P50Millis float64
	P99Millis float64
	// ClientCPU is redis-benchmark's own user plus system CPU time over
	// the run: what the load generator took from the cores the servers
	// share with it.
	ClientCPU time.Duration
}

// Missing is a measurement that was not taken; medians skip it.
var Missing = Result{OpsPerSec: math.NaN(), P50Millis: math.NaN(), P99Millis: math.NaN()}

// RunRedisBenchmark runs bin (redis-benchmark) with --csv and args and
// parses its one result row. redis-benchmark 7 exits non-zero at the
// first error reply, so a clean exit means the server answered no errors.
func RunRedisBenchmark(ctx context.Context, bin string, args []string) (Result, error) {
	return RunRedisBenchmarkRow(ctx, bin, args, "")
}

// RunRedisBenchmarkRow is RunRedisBenchmark for a run that prints several
// rows (lrange_100 first fills its list with LPUSH): it returns the one
// named row; an empty row wants exactly one.
func RunRedisBenchmarkRow(ctx context.Context, bin string, args []string, row string) (Result, error) {
	// --csv goes first: redis-benchmark takes everything after the first
	// non-option word as a custom command (MGET key ... --csv would send
	// "--csv" as a key and print no CSV).
	args = append([]string{"--csv"}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Missing, errors.Wrapf(err, "%s %s: %s%s", bin, strings.Join(args, " "), stdout.String(), stderr.String())
	}
	rows, err := ParseBenchCSV(stdout.Bytes())
	if err != nil {
		return Missing, errors.Wrapf(err, "%s %s", bin, strings.Join(args, " "))
	}
	if row != "" {
		r, ok := rows[row]
		if !ok {
			return Missing, errors.Newf("%s %s: no row %q in:\n%s", bin, strings.Join(args, " "), row, stdout.String())
		}
		r.ClientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		return r, nil
	}
	if len(rows) != 1 {
		return Missing, errors.Newf("%s %s: want one result row, got %d:\n%s", bin, strings.Join(args, " "), len(rows), stdout.String())
	}
	for _, r := range rows {
		r.ClientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		return r, nil
	}
	panic("unreachable")
}

// ParseBenchCSV reads redis-benchmark --csv output, keyed by test name.
// Redis 7 prints a header ("test","rps","avg_latency_ms",...,"p50_latency_ms",
// ...,"p99_latency_ms",...) and one row per test; Redis 6 and older print
// rows of ("TEST","rps") without a header, which yields NaN latencies.
// Lines that are not CSV rows (error messages printed with -e) are skipped.
func ParseBenchCSV(out []byte) (map[string]Result, error) {
	cols := map[string]int{"test": 0, "rps": 1}
	rows := map[string]Result{}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, `"`) {
			continue
		}
		rec, err := csv.NewReader(strings.NewReader(line)).Read()
		if err == io.EOF {
			continue
		}
		if err != nil {
			return nil, errors.Wrapf(err, "parse CSV line %q", line)
		}
		if rec[0] == "test" {
			cols = map[string]int{}
			for i, name := range rec {
				cols[name] = i
			}
			continue
		}
		get := func(name string) (float64, error) {
			i, ok := cols[name]
			if !ok || i >= len(rec) {
				return math.NaN(), nil
			}
			v, err := strconv.ParseFloat(rec[i], 64)
			if err != nil {
				return 0, errors.Wrapf(err, "column %s in %q", name, line)
			}
			return v, nil
		}
		var r Result
		if r.OpsPerSec, err = get("rps"); err != nil {
			return nil, err
		}
		if math.IsNaN(r.OpsPerSec) {
			return nil, errors.Newf("no rps column in %q", line)
		}
		if r.P50Millis, err = get("p50_latency_ms"); err != nil {
			return nil, err
		}
		if r.P99Millis, err = get("p99_latency_ms"); err != nil {
			return nil, err
		}
		rows[rec[cols["test"]]] = r
	}
	if len(rows) == 0 {
		return nil, errors.Newf("no result rows in redis-benchmark output %q", out)
	}
	return rows, nil
}
