package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os/exec"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// benchTest is one workload of the comparison.
type benchTest struct {
	name string // the --tests name and the table label
	// args are what follows the common flags on the redis-benchmark command
	// line: either "-t x" for a built-in test or a custom command.
	args []string
	// probe is one command that must succeed on a system before its numbers
	// are trusted: redis-benchmark counts error replies as replies, so a
	// server answering "-ERR unknown command" would otherwise look fast.
	probe []string
	// multiKey marks MSET and MGET, which touch mgetKeys keys per request.
	multiKey bool
}

// mgetKeys is the number of keys in MGET, matching redis-benchmark's MSET
// test, which always sets 10 keys.
const mgetKeys = 10

func mgetArgs() []string {
	args := []string{"MGET"}
	for i := 0; i < mgetKeys; i++ {
		args = append(args, "key:__rand_int__")
	}
	return args
}

// allTests is the comparison's workload list in the order it runs: GET and
// MGET follow SET so they mostly hit keys that exist.
var allTests = []benchTest{
	{name: "SET", args: []string{"-t", "set"}, probe: []string{"SET", "key:probe", "v"}},
	{name: "GET", args: []string{"-t", "get"}, probe: []string{"GET", "key:probe"}},
	{name: "INCR", args: []string{"-t", "incr"}, probe: []string{"INCR", "counter:probe"}},
	{name: "MSET", args: []string{"-t", "mset"}, probe: []string{"MSET", "key:probe", "v", "key:probe2", "w"}, multiKey: true},
	{name: "MGET", args: mgetArgs(), probe: []string{"MGET", "key:probe", "key:probe2"}, multiKey: true},
}

// result is one redis-benchmark measurement. Latencies are in milliseconds;
// NaN when the redis-benchmark version does not print them.
type result struct {
	opsPerSec float64
	p50Millis float64
	p99Millis float64
}

var missing = result{opsPerSec: math.NaN(), p50Millis: math.NaN(), p99Millis: math.NaN()}

// benchParams are the redis-benchmark settings common to every test.
type benchParams struct {
	clients   int
	dataBytes int
	keyspace  int
	requests  int
	pipeline  int
}

func (p benchParams) args(port int) []string {
	return []string{
		"-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-c", strconv.Itoa(p.clients), "-n", strconv.Itoa(p.requests),
		"-d", strconv.Itoa(p.dataBytes), "-r", strconv.Itoa(p.keyspace),
		"-P", strconv.Itoa(p.pipeline), "--csv",
	}
}

// runRedisBenchmark runs one test against one server and parses its CSV.
func runRedisBenchmark(ctx context.Context, bin string, port int, p benchParams, t benchTest) (result, error) {
	args := append(p.args(port), t.args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return missing, errors.Wrapf(err, "%s %s: %s", bin, strings.Join(args, " "), stderr.String())
	}
	rows, err := parseBenchCSV(stdout.Bytes())
	if err != nil {
		return missing, errors.Wrapf(err, "%s %s", bin, strings.Join(args, " "))
	}
	if len(rows) != 1 {
		return missing, errors.Newf("%s %s: want one result row, got %d:\n%s", bin, strings.Join(args, " "), len(rows), stdout.String())
	}
	for _, r := range rows {
		return r, nil
	}
	panic("unreachable")
}

// parseBenchCSV reads redis-benchmark --csv output, keyed by test name.
// Redis 7 prints a header ("test","rps","avg_latency_ms",...,"p50_latency_ms",
// ...,"p99_latency_ms",...) and one row per test; Redis 6 and older print
// rows of ("TEST","rps") without a header, which yields NaN latencies.
// Lines that are not CSV rows (error messages printed with -e) are skipped.
func parseBenchCSV(out []byte) (map[string]result, error) {
	cols := map[string]int{"test": 0, "rps": 1}
	rows := map[string]result{}
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
		var r result
		if r.opsPerSec, err = get("rps"); err != nil {
			return nil, err
		}
		if math.IsNaN(r.opsPerSec) {
			return nil, errors.Newf("no rps column in %q", line)
		}
		if r.p50Millis, err = get("p50_latency_ms"); err != nil {
			return nil, err
		}
		if r.p99Millis, err = get("p99_latency_ms"); err != nil {
			return nil, err
		}
		rows[rec[cols["test"]]] = r
	}
	if len(rows) == 0 {
		return nil, errors.Newf("no result rows in redis-benchmark output %q", out)
	}
	return rows, nil
}

// requestsFor scales the request count with the pipeline depth so that a
// pipelined run lasts about as long as an unpipelined one (a run of a
// fraction of a second measures mostly start-up and noise). Pipelining
// gains multi-key commands (10 keys each) only about 2×, not 8×, so their
// pipelined runs get a quarter of that.
func requestsFor(base, pipeline int, t benchTest) int {
	scale := max(1, pipeline/2)
	if t.multiKey && pipeline > 1 {
		return max(base, base*scale/4)
	}
	return base * scale
}

func (t benchTest) String() string { return fmt.Sprintf("%s(%s)", t.name, strings.Join(t.args, " ")) }
