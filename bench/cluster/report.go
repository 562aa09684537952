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
	rs := harness.Ratios(field(by[num], harness.Ops), field(by[den], harness.Ops))
	med := harness.Median(rs)
	lo, hi, n := math.Inf(1), math.Inf(-1), 0
	for _, r := range rs {
		if !math.IsNaN(r) {
			lo, hi, n = min(lo, r), max(hi, r), n+1
		}
	}
	if n < 2 {
		return fmtRatio(med)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtRatio(med), fmtRatio(lo), fmtRatio(hi))
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
