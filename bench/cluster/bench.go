package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
)

// target is a system as the rounds drive it.
type target struct {
	name    string
	sys     *system
	cluster bool // redis-benchmark --cluster
}

// result is one redis-benchmark run; NaN fields are missing.
type result struct {
	harness.Result
	note string // why it is missing
}

var missing = result{Result: harness.Missing}

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
func runRounds(ctx context.Context, cfg config, tl harness.Tools, systems []target) (results, error) {
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
				line += fmt.Sprintf(" | %s %s ops/s p99 %s ms", s.name, fmtOps(r.OpsPerSec), fmtMillis(r.P99Millis))
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
func runOne(ctx context.Context, cfg config, tl harness.Tools, s target, c cell) (result, error) {
	port, err := s.sys.target()
	if err != nil {
		return result{}, err
	}
	args := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port)}, cfg.params(c.pipeline)...)
	if s.cluster {
		args = append(args, "--cluster")
	}
	r, err := runRedisBenchmark(ctx, tl.RedisBenchmark, append(args, "-t", c.test))
	if p := s.sys.exited(); p != nil {
		return result{}, errors.Newf("%s exited (%v); log:\n%s", p.Name, p.Err(), p.LogTail())
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
// row. Only redis-benchmark 7 or later will do: it exits non-zero at the
// first error reply, where older ones count errors as replies, so a clean
// exit means no errors; its CSV has a header, older ones' does not.
func runRedisBenchmark(ctx context.Context, bin string, args []string) (result, error) {
	r, err := harness.RunRedisBenchmark(ctx, bin, args)
	if err == nil && math.IsNaN(r.P50Millis) {
		return missing, errors.Newf("%s: no latency columns in its CSV (redis-benchmark 7 or later is needed)", bin)
	}
	return result{Result: r}, err
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
		if p.Port == port {
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

// field picks one figure from each round's result.
func field(rs []result, f func(harness.Result) float64) []float64 {
	hs := make([]harness.Result, len(rs))
	for i, r := range rs {
		hs[i] = r.Result
	}
	return harness.Field(hs, f)
}
