package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os/exec"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// target is a system as the rounds drive it.
type target struct {
	name    string
	sys     *system
	cluster bool // redis-benchmark --cluster
}

// result is one redis-benchmark run; NaN fields are missing.
type result struct {
	opsPerSec, p50Millis, p99Millis float64
	note                            string // why it is missing
}

var missing = result{opsPerSec: math.NaN(), p50Millis: math.NaN(), p99Millis: math.NaN()}

// cell names one measurement across rounds and systems.
type cell struct {
	test     string
	pipeline int
}

// results[cell][system] holds one result per round, index = round.
type results struct {
	cells   []cell
	systems []string
	byCell  map[cell]map[string][]result
}

func (c config) params(pipeline int) []string {
	requests := c.requests * max(1, pipeline/2)
	return []string{"-c", strconv.Itoa(c.clients), "-n", strconv.Itoa(requests), "-d", strconv.Itoa(c.dataBytes),
		"-r", strconv.Itoa(c.keyspace), "-P", strconv.Itoa(pipeline)}
}

// runRounds runs every test at every pipeline depth on every system, the
// systems back to back, their order rotated each round.
func runRounds(ctx context.Context, cfg config, tl tools, systems []target) (results, error) {
	res := results{byCell: map[cell]map[string][]result{}}
	for _, s := range systems {
		res.systems = append(res.systems, s.name)
	}
	for _, t := range cfg.tests {
		for _, p := range cfg.pipelines {
			c := cell{test: t, pipeline: p}
			res.cells = append(res.cells, c)
			res.byCell[c] = map[string][]result{}
		}
	}
	for round := 0; round < cfg.rounds; round++ {
		order := append(append([]target(nil), systems[round%len(systems):]...), systems[:round%len(systems)]...)
		for _, c := range res.cells {
			line := fmt.Sprintf("[round %d/%d] %-4s P=%-2d", round+1, cfg.rounds, strings.ToUpper(c.test), c.pipeline)
			for _, s := range order {
				r, err := runOne(ctx, cfg, tl, s, c)
				if err != nil {
					return res, errors.Wrapf(err, "%s %s -P %d", s.name, c.test, c.pipeline)
				}
				res.byCell[c][s.name] = append(res.byCell[c][s.name], r)
				line += fmt.Sprintf(" | %s %s ops/s p99 %s ms", s.name, fmtOps(r.opsPerSec), fmtMillis(r.p99Millis))
				if r.note != "" {
					line += " (" + r.note + ")"
				}
			}
			fmt.Println(line)
		}
	}
	return res, nil
}

// runOne measures one system once. A run is missing, not fast, when the
// server answered errors or (cluster) the leader changed meanwhile; a
// process that exited ends the benchmark.
func runOne(ctx context.Context, cfg config, tl tools, s target, c cell) (result, error) {
	port, err := s.sys.target()
	if err != nil {
		return result{}, err
	}
	args := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port)}, cfg.params(c.pipeline)...)
	if s.cluster {
		args = append(args, "--cluster")
	}
	r, err := runRedisBenchmark(ctx, tl.redisBenchmark, append(args, "-t", c.test))
	if p := s.sys.exited(); p != nil {
		return result{}, errors.Newf("%s exited (%v); log:\n%s", p.name, p.err, p.logTail())
	}
	if err != nil {
		// redis-benchmark 7 stops at the first error reply (a -MOVED
		// after a leader change, say): the run is missing, not fatal.
		r = missing
		r.note = oneLine(err.Error())
	}
	if after, err := s.sys.target(); err != nil || after != port {
		r = missing
		r.note = "leader changed during the run"
	}
	return r, nil
}

// runRedisBenchmark runs redis-benchmark --csv and parses its one result
// row. redis-benchmark 7 exits non-zero at the first error reply rather
// than counting errors as replies, so a clean exit means no errors.
func runRedisBenchmark(ctx context.Context, bin string, args []string) (result, error) {
	args = append(args, "--csv")
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return missing, errors.Wrapf(err, "%s %s: %s%s", bin, strings.Join(args, " "), stdout.String(), stderr.String())
	}
	rows, err := parseBenchCSV(stdout.Bytes())
	if err != nil {
		return missing, errors.Wrapf(err, "%s %s", bin, strings.Join(args, " "))
	}
	if len(rows) != 1 {
		return missing, errors.Newf("%s %s: want one result row, got %d:\n%s", bin, strings.Join(args, " "), len(rows), stdout.String())
	}
	return rows[0], nil
}

// parseBenchCSV reads redis-benchmark 7's --csv output: a header
// ("test","rps",...,"p50_latency_ms",...,"p99_latency_ms",...) and one row
// per test. Lines that are not CSV rows (warnings) are skipped.
func parseBenchCSV(out []byte) ([]result, error) {
	cols := map[string]int{}
	var rows []result
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
			for i, name := range rec {
				cols[name] = i
			}
			continue
		}
		get := func(name string) float64 {
			i, ok := cols[name]
			if !ok || i >= len(rec) {
				return math.NaN()
			}
			v, err := strconv.ParseFloat(rec[i], 64)
			if err != nil {
				return math.NaN()
			}
			return v
		}
		r := result{opsPerSec: get("rps"), p50Millis: get("p50_latency_ms"), p99Millis: get("p99_latency_ms")}
		if math.IsNaN(r.opsPerSec) {
			return nil, errors.Newf("no rps in %q (redis-benchmark 7 or later is needed for its CSV header)", line)
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil, errors.Newf("no result rows in redis-benchmark output %q", out)
	}
	return rows, nil
}

// probeBenchmarkCluster checks that redis-benchmark --cluster works
// against the keel cluster: it exits 0 (no error reply), reports a row,
// and its writes land (the leader's DBSIZE grows). redis-benchmark 7.0
// refuses a cluster of one master ("Invalid cluster: 1 node(s)"), which a
// keel cluster of one replica group is.
func probeBenchmarkCluster(ctx context.Context, bin string, s *system) error {
	port, err := s.target()
	if err != nil {
		return err
	}
	var leader *proc
	for _, p := range s.procs {
		if p.port == port {
			leader = p
		}
	}
	c := leader.client()
	defer c.Close()
	before, err := c.DBSize(ctx).Result()
	if err != nil {
		return errors.Wrap(err, "DBSIZE")
	}
	if _, err := runRedisBenchmark(ctx, bin, []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "--cluster",
		"-c", "4", "-n", "2000", "-r", "1000000", "-t", "set"}); err != nil {
		return err
	}
	after, err := c.DBSize(ctx).Result()
	if err != nil {
		return errors.Wrap(err, "DBSIZE")
	}
	if after <= before {
		return errors.Newf("DBSIZE stayed %d: the writes went nowhere", before)
	}
	return nil
}

// median of xs ignoring NaNs; NaN when none remain.
func median(xs []float64) float64 {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// medianRatio is the median of per-round ratios num[i]/den[i]: both were
// measured back to back under the same outside load.
func medianRatio(num, den []float64) float64 {
	out := make([]float64, 0, len(num))
	for i := 0; i < min(len(num), len(den)); i++ {
		if den[i] == 0 || math.IsNaN(num[i]) || math.IsNaN(den[i]) {
			continue
		}
		out = append(out, num[i]/den[i])
	}
	return median(out)
}

func field(rs []result, f func(result) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func ops(r result) float64 { return r.opsPerSec }
func p50(r result) float64 { return r.p50Millis }
func p99(r result) float64 { return r.p99Millis }
