package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keel-db/keel/bench/internal/harness"
)

type rendered struct{ text, markdown string }

var fmtOps, fmtMillis = harness.FmtOps, harness.FmtMillis

// fmtRatio is a bare ratio: the column header says what it divides.
func fmtRatio(x float64) string { return harness.FmtRatio(x, "") }

// ratio is the median of per-round ratios of ops/s num/den, with their
// range when there is more than one: "0.65 (0.46–0.72)".
func ratio(by map[string][]result, num, den string) string {
	return spread(harness.Ratios(field(by[num], harness.Ops), field(by[den], harness.Ops)))
}

// table returns the header and rows of one comparison: per test and
// pipeline depth, each of shown's median ops/s, p50 and p99, then the
// throughput of subject as a ratio to each of against.
func table(res results, shown []string, subject string, against []string) ([]string, [][]string) {
	head := []string{"test", "-P"}
	for _, s := range shown {
		head = append(head, s+" ops/s", "p50 ms", "p99 ms")
	}
	for _, a := range against {
		head = append(head, subject+"/"+a)
	}
	var rows [][]string
	for _, c := range res.cells {
		by := res.byCell[c]
		row := []string{strings.ToUpper(c.test), fmt.Sprint(c.pipeline)}
		for _, s := range shown {
			row = append(row, fmtOps(harness.Median(field(by[s], harness.Ops))), fmtMillis(harness.Median(field(by[s], harness.P50))), fmtMillis(harness.Median(field(by[s], harness.P99))))
		}
		for _, a := range against {
			row = append(row, ratio(by, subject, a))
		}
		rows = append(rows, row)
	}
	return head, rows
}

// The two comparisons: what replication costs (one Raft group against a
// single node and against Redis with a replica), and what sharding buys
// (three groups against all of those and against Redis Cluster).
func replicationTable(res results) ([]string, [][]string) {
	return table(res, []string{"cluster", "single", "redis+replica"}, "cluster", []string{"single", "redis+replica"})
}

func shardedTable(res results) ([]string, [][]string) {
	return table(res, []string{"sharded", "redis-cluster"}, "sharded", []string{"single", "cluster", "redis+replica", "redis-cluster"})
}

// placedTable: six groups of three replicas on six nodes (issue 17's
// placement) against one group on three nodes and the others.
func placedTable(res results) ([]string, [][]string) {
	return table(res, []string{"placed"}, "placed", []string{"cluster", "sharded", "single", "redis-cluster"})
}

// baselineTable compares the group with the baseline build's
// (--baseline-bin), each against the single node of the same rounds.
func baselineTable(res results) ([]string, [][]string) {
	head, rows := table(res, []string{"cluster", baseSystem, "single"}, "cluster", []string{"single"})
	head = append(head, baseSystem+"/single", "cluster/"+baseSystem)
	for i, c := range res.cells {
		by := res.byCell[c]
		rows[i] = append(rows[i], ratio(by, baseSystem, "single"), ratio(by, "cluster", baseSystem))
	}
	return head, rows
}

func textTable(head []string, rows [][]string) string {
	var txt strings.Builder
	tw := tabwriter.NewWriter(&txt, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
	return txt.String()
}

func markdownTable(head []string, rows [][]string) string {
	var md strings.Builder
	md.WriteString("| " + strings.Join(head, " | ") + " |\n|")
	for range head {
		md.WriteString(" ---: |")
	}
	md.WriteString("\n")
	for _, r := range rows {
		md.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return md.String()
}

func render(cfg config, mach string, started time.Time, how string, res results) rendered {
	repHead, repRows := replicationTable(res)
	shHead, shRows := shardedTable(res)
	var txt strings.Builder
	txt.WriteString(textTable(repHead, repRows) + "\n" + textTable(shHead, shRows))
	placed := cfg.wants("placed")
	var plHead []string
	var plRows [][]string
	if placed {
		plHead, plRows = placedTable(res)
		txt.WriteString("\n" + textTable(plHead, plRows))
	}
	var baseHead []string
	var baseRows [][]string
	if cfg.baseBin != "" {
		baseHead, baseRows = baselineTable(res)
		txt.WriteString("\n" + textTable(baseHead, baseRows))
	}

	var md strings.Builder
	fmt.Fprintf(&md, "# Replicated and sharded clusters vs single node vs Redis, %s\n\n", started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&md, "Command: `go run ./bench/cluster %s`\n\n", strings.Join(os.Args[1:], " "))
	md.WriteString(mach)
	fmt.Fprintf(&md, "\nSystems (all appendonly yes, appendfsync everysec): **cluster** = 3 keel nodes, one Raft group, driven at the leader via %s; "+
		"**single** = one keel node, same flags, no peers; **redis+replica** = redis-server with one redis-server --replicaof it (asynchronous); "+
		"**sharded** = 3 keel nodes with --groups %d (every node a replica of every group, each leading one: 3 masters), driven with redis-benchmark --cluster; "+
		"**redis-cluster** = 3 redis-server --cluster-enabled masters, no replicas (redis-cli --cluster create --cluster-replicas 0), driven with redis-benchmark --cluster.\n\n",
		how, shardedGroups)
	fmt.Fprintf(&md, "redis-benchmark -c %d -d %d -r %d -n %d at -P 1 (×P/2 when pipelined), %d rounds; within a round the systems run back to back, "+
		"order rotated each round. Values are medians over rounds; ratios are medians of per-round ratios of ops/s, with their range in brackets. "+
		"A run with error replies, or during which the leader (sharded: the masters or their slots) changed, counts as missing.\n\n",
		cfg.clients, cfg.dataBytes, cfg.keyspace, cfg.requests, cfg.rounds)
	md.WriteString("## Replication: one Raft group\n\n" + markdownTable(repHead, repRows))
	md.WriteString("\n## Sharded: three groups, each node leading one\n\n" + markdownTable(shHead, shRows))
	if placed {
		fmt.Fprintf(&md, "\n## Placed: %d groups of %d replicas on %d nodes, each leading one\n\n"+
			"**placed** = %d keel nodes with --groups %d --replicas %d (each node hosts half of the groups), driven with redis-benchmark --cluster. "+
			"On a 2-core machine six processes share the same two cores as three: the ratio to **cluster** says what placement costs or buys here, not at scale.\n\n",
			placedNodes, placedReplicas, placedNodes, placedNodes, placedNodes, placedReplicas)
		md.WriteString(markdownTable(plHead, plRows))
	}
	if cfg.baseBin != "" {
		fmt.Fprintf(&md, "\n## The group against the baseline build\n\n**cluster-base** is the same 3-node group started from `%s`, in the same rounds.\n\n", cfg.baseBin)
		md.WriteString(markdownTable(baseHead, baseRows))
	}
	cores := runtime.NumCPU()
	if cpuHead, cpuRows := cpuTable(res, cores); len(cpuRows) > 0 {
		txt.WriteString("\n" + textTable(cpuHead, cpuRows))
		fmt.Fprintf(&md, "\n## CPU per request\n\n"+
			"Each server process's utime+stime (/proc/PID/stat) and redis-benchmark's own CPU over each run, divided by the run's requests; "+
			"medians over rounds. Per process, the one redis-benchmark drives (a group's leader) comes first. "+
			"**CPU bound** is what %d cores could serve at that cost if nothing else ran: ops/s ≤ cores / (server + client µs per request). "+
			"**own utilization** is the servers' and redis-benchmark's CPU over cores × wall time (= ops/s ÷ CPU bound); "+
			"**machine busy** is the non-idle share of all CPUs over the run (/proc/stat: every process on the machine, this run's and anyone else's).\n\n", cores)
		md.WriteString(markdownTable(cpuHead, cpuRows))
		if bHead, bRows := boundTable(res, cores); len(bRows) > 0 {
			txt.WriteString("\n" + textTable(bHead, bRows))
			md.WriteString("\n### The CPU bound against the single node\n\n" +
				"If both runs had the cores to themselves and used them fully, the throughput ratio would be the inverse ratio of their total CPU per request " +
				"(predicted, per round). The measured ratio differs from it by exactly the ratio of the runs' own utilizations: " +
				"a system whose processes wait (for a round trip, a disk, each other) leaves cores idle that the bound counts as usable. " +
				"The **ceiling** is the system's CPU bound over the single node's measured ops/s: the ratio it could not pass at its CPU per request " +
				"even using every core, against the single node as it ran; it means that only when nothing else ran (machine busy close to own utilization): " +
				"a single node starved by other work makes it too high.\n\n")
			md.WriteString(markdownTable(bHead, bRows))
		}
	}
	var absent []string
	for _, s := range res.systems {
		if why, ok := res.absent[s]; ok {
			absent = append(absent, s+": "+why)
		}
	}
	if len(absent) > 0 {
		txt.WriteString("\nnot started (missing):\n  " + strings.Join(absent, "\n  ") + "\n")
		md.WriteString("\nNot started, so missing: " + strings.Join(absent, "; ") + "\n")
	}
	var notes []string
	for _, c := range res.cells {
		for _, s := range res.systems {
			for i, r := range res.byCell[c][s] {
				if r.note != "" {
					notes = append(notes, fmt.Sprintf("round %d %s %s -P %d: %s", i+1, s, c.test, c.pipeline, r.note))
				}
			}
		}
	}
	if len(notes) > 0 {
		txt.WriteString("\nmissing runs:\n  " + strings.Join(notes, "\n  ") + "\n")
		md.WriteString("\nMissing runs: " + strings.Join(notes, "; ") + "\n")
	}
	return rendered{text: txt.String(), markdown: md.String()}
}

// describeMachine is the Markdown list of what the figures depend on.
// A --keel-bin binary may come from another commit than the work tree's:
// the report says so rather than naming the work tree's commit as keel's.
func describeMachine(root, redisServer, keelBin string) string {
	commit := harness.KeelCommit(root)
	keel := "keel commit: " + commit
	if keelBin != "" {
		keel = "keel: --keel-bin " + keelBin + " (the work tree is at " + commit + ")"
	}
	return fmt.Sprintf("- CPUs: %d × %s\n- load average at start: %s\n- %s\n- %s\n- %s\n",
		runtime.NumCPU(), harness.MachineCPUModel(), harness.LoadAverage(),
		harness.CommandOutput(root, redisServer, "--version"), harness.CommandOutput(root, "go", "version"), keel)
}

// cpuFigures are the medians over rounds of one system's CPU accounting
// in one cell; ok is false when no round has any.
type cpuFigures struct {
	ok                       bool
	ops                      float64
	perProc                  []float64 // µs per request, driven process first
	server, client, total    float64   // µs per request
	utilization, machineBusy float64   // shares of cores × wall
	bound                    float64   // cores / total, ops/s
}

func cpuOf(rs []result, cores int) cpuFigures {
	var f cpuFigures
	var ops, server, client, total, util, busy []float64
	var perProc [][]float64
	for _, r := range rs {
		if r.cpu == nil {
			continue
		}
		u := r.cpu
		f.ok = true
		ops = append(ops, r.OpsPerSec)
		for i, d := range u.server {
			if i == len(perProc) {
				perProc = append(perProc, nil)
			}
			perProc[i] = append(perProc[i], u.perRequest(d))
		}
		s, c := u.perRequest(u.serverTotal()), u.perRequest(u.client)
		server, client, total = append(server, s), append(client, c), append(total, s+c)
		util, busy = append(util, u.utilization(cores)), append(busy, u.machineBusy)
	}
	if !f.ok {
		return f
	}
	for _, p := range perProc {
		f.perProc = append(f.perProc, harness.Median(p))
	}
	f.ops, f.server, f.client, f.total = harness.Median(ops), harness.Median(server), harness.Median(client), harness.Median(total)
	f.utilization, f.machineBusy = harness.Median(util), harness.Median(busy)
	f.bound = float64(cores) / f.total * 1e6
	return f
}

func fmtMicros(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.2f", x)
}

func fmtShare(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

// cpuTable is the CPU per request of every system and cell with figures.
func cpuTable(res results, cores int) ([]string, [][]string) {
	head := []string{"test", "-P", "system", "ops/s", "server µs/req per process (driven first)", "server µs/req", "client µs/req",
		"total µs/req", fmt.Sprintf("CPU bound ops/s (%d cores / total)", cores), "own utilization", "machine busy"}
	var rows [][]string
	for _, c := range res.cells {
		for _, s := range res.systems {
			f := cpuOf(res.byCell[c][s], cores)
			if !f.ok {
				continue
			}
			procs := make([]string, len(f.perProc))
			for i, p := range f.perProc {
				procs[i] = fmtMicros(p)
			}
			rows = append(rows, []string{strings.ToUpper(c.test), fmt.Sprint(c.pipeline), s, fmtOps(f.ops), strings.Join(procs, " + "),
				fmtMicros(f.server), fmtMicros(f.client), fmtMicros(f.total), fmtOps(f.bound), fmtShare(f.utilization), fmtShare(f.machineBusy)})
		}
	}
	return head, rows
}

// boundTable puts each system's measured throughput ratio to the single
// node next to the ratio its CPU per request predicts for a saturated
// machine: single's total µs/req over the system's, round by round. The
// two differ by exactly the ratio of the runs' own utilizations, since
// ops/s = utilization × cores / total µs per request. The ceiling is the
// most the system could reach against the single node as measured: its
// CPU bound (all cores, nothing else running) over single's ops/s.
func boundTable(res results, cores int) ([]string, [][]string) {
	head := []string{"test", "-P", "system", "total µs/req", "single total µs/req", "predicted system/single (CPU bound)",
		"measured system/single", "own utilization system/single", "ceiling: system's CPU bound / single's ops/s"}
	var rows [][]string
	for _, c := range res.cells {
		by := res.byCell[c]
		for _, s := range res.systems {
			if s == "single" || !cpuOf(by[s], cores).ok || !cpuOf(by["single"], cores).ok {
				continue
			}
			var pred, meas, util, ceil []float64
			n := min(len(by[s]), len(by["single"]))
			for i := 0; i < n; i++ {
				a, b := by[s][i], by["single"][i]
				if a.cpu == nil || b.cpu == nil {
					continue
				}
				ta := a.cpu.perRequest(a.cpu.serverTotal() + a.cpu.client)
				tb := b.cpu.perRequest(b.cpu.serverTotal() + b.cpu.client)
				pred = append(pred, tb/ta)
				meas = append(meas, a.OpsPerSec/b.OpsPerSec)
				util = append(util, a.cpu.utilization(cores)/b.cpu.utilization(cores))
				ceil = append(ceil, float64(cores)/ta*1e6/b.OpsPerSec)
			}
			rows = append(rows, []string{strings.ToUpper(c.test), fmt.Sprint(c.pipeline), s,
				fmtMicros(cpuOf(by[s], cores).total), fmtMicros(cpuOf(by["single"], cores).total),
				spread(pred), spread(meas), spread(util), spread(ceil)})
		}
	}
	return head, rows
}

// spread is the median of xs with their range: "0.65 (0.46–0.72)".
func spread(xs []float64) string {
	med := harness.Median(xs)
	lo, hi, n := math.Inf(1), math.Inf(-1), 0
	for _, x := range xs {
		if !math.IsNaN(x) {
			lo, hi, n = min(lo, x), max(hi, x), n+1
		}
	}
	if n < 2 {
		return fmtRatio(med)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtRatio(med), fmtRatio(lo), fmtRatio(hi))
}
