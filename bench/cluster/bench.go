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
	// cpu is what the run cost; nil when missing or unreadable.
	cpu *cpuUse
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
	absent  map[string]string // systems never measured → why
}

// requestsAt is the requests of one run at -P pipeline.
func (c config) requestsAt(pipeline int) int { return c.requests * max(1, pipeline/2) }

func (c config) params(pipeline int) []string {
	requests := c.requestsAt(pipeline)
	return []string{"-c", strconv.Itoa(c.clients), "-n", strconv.Itoa(requests), "-d", strconv.Itoa(c.dataBytes),
		"-r", strconv.Itoa(c.keyspace), "-P", strconv.Itoa(pipeline)}
}

// runRounds runs every test at every pipeline depth on every system, the
// systems back to back, their order rotated each round. A system that
// could not be started (absent: name → why) is named in res.systems and
// measured never.
func runRounds(ctx context.Context, cfg config, tl harness.Tools, systems []target, absent map[string]string) (results, error) {
	res := results{byCell: map[cell]map[string][]result{}, absent: absent}
	var live []target
	for _, s := range systems {
		res.systems = append(res.systems, s.name)
		if _, ok := absent[s.name]; !ok {
			live = append(live, s)
		}
	}
	if len(live) == 0 {
		return res, errors.New("no system could be started")
	}
	for _, t := range cfg.tests {
		for _, p := range cfg.pipelines {
			c := cell{test: t, pipeline: p}
			res.cells = append(res.cells, c)
			res.byCell[c] = map[string][]result{}
		}
	}
	for round := 0; round < cfg.rounds; round++ {
		order := append(append([]target(nil), live[round%len(live):]...), live[:round%len(live)]...)
		for _, c := range res.cells {
			line := fmt.Sprintf("[round %d/%d] %-4s P=%-2d", round+1, cfg.rounds, strings.ToUpper(c.test), c.pipeline)
			for _, s := range order {
				if err := ctx.Err(); err != nil {
					return res, err
				}
				r := runOne(ctx, cfg, tl, s, c)
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
// server answered errors, the system was not serving as it should (no
// leader; a sharded cluster with fewer masters than nodes) or its layout
// changed meanwhile (the cluster's leader; a sharded cluster's masters and
// slots). A system whose process exited is down: its runs from then on are
// missing, and the others go on.
func runOne(ctx context.Context, cfg config, tl harness.Tools, s target, c cell) result {
	fail := func(note string) result {
		r := missing
		r.note = note
		return r
	}
	if s.sys.down != "" {
		return fail("down: " + s.sys.down)
	}
	layout := func() (string, error) {
		if s.sys.layout != nil {
			return s.sys.layout()
		}
		port, err := s.sys.target()
		return strconv.Itoa(port), err
	}
	port, err := s.sys.target()
	if err != nil {
		return fail(oneLine(err.Error()))
	}
	before, err := layout()
	if err != nil {
		return fail(oneLine(err.Error()))
	}
	args := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port)}, cfg.params(c.pipeline)...)
	if s.cluster {
		args = append(args, "--cluster")
	}
	// The driven process (a group's leader) first, then the others.
	var pids []int
	for _, p := range s.sys.procs {
		if p.Port == port {
			pids = append([]int{p.Cmd.Process.Pid}, pids...)
		} else {
			pids = append(pids, p.Cmd.Process.Pid)
		}
	}
	meter, meterErr := startCPU(pids)
	r, err := runRedisBenchmark(ctx, tl.RedisBenchmark, append(args, "-t", c.test))
	if err == nil && meterErr == nil {
		if u, uErr := meter.stop(cfg.requestsAt(c.pipeline), r.ClientCPU); uErr == nil {
			r.cpu = &u
		} else {
			meterErr = uErr
		}
	}
	if meterErr != nil {
		fmt.Printf("%s: no CPU figures for this run: %v\n", s.name, meterErr)
	}
	if p := s.sys.exited(); p != nil {
		s.sys.down = fmt.Sprintf("%s exited (%v)", p.Name, p.Err())
		fmt.Printf("%s is down: %s; log:\n%s\n", s.name, s.sys.down, p.LogTail())
		return fail(s.sys.down)
	}
	if err != nil {
		// redis-benchmark 7 stops at the first error reply (a -MOVED
		// after a leader change, say): the run is missing, not fatal.
		return fail(oneLine(err.Error()))
	}
	if after, err := layout(); err != nil || after != before {
		return fail("leader changed during the run")
	}
	return r
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
// against a cluster: it exits 0 (no error reply), reports a row, and its
// writes land (the DBSIZE summed over the nodes that call themselves
// masters grows: the leader of a one-group keel cluster; every master of a
// sharded one, each answering for its own slots). redis-benchmark 7.0
// refuses a cluster of one master ("Invalid cluster: 1 node(s)"), which a
// keel cluster of one replica group is.
func probeBenchmarkCluster(ctx context.Context, bin string, s *system) error {
	port, err := s.target()
	if err != nil {
		return err
	}
	dbsize := func() (int64, error) {
		var n int64
		for _, p := range s.procs {
			if !p.Leads() {
				continue
			}
			c := p.client()
			k, err := c.DBSize(ctx).Result()
			c.Close()
			if err != nil {
				return 0, errors.Wrapf(err, "%s: DBSIZE", p.Name)
			}
			n += k
		}
		return n, nil
	}
	before, err := dbsize()
	if err != nil {
		return err
	}
	if _, err := runRedisBenchmark(ctx, bin, []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "--cluster",
		"-c", "4", "-n", "2000", "-r", "1000000", "-t", "set"}); err != nil {
		return err
	}
	after, err := dbsize()
	if err != nil {
		return err
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
