package main

import (
	"fmt"
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

// table returns the header and rows of the comparison: per test and
// pipeline depth, each system's median ops/s, p50 and p99, then the
// cluster's throughput as a ratio to the other two.
func table(res results) ([]string, [][]string) {
	head := []string{"test", "-P"}
	for _, s := range res.systems {
		head = append(head, s+" ops/s", "p50 ms", "p99 ms")
	}
	head = append(head, "cluster/single", "cluster/redis+replica")
	var rows [][]string
	for _, c := range res.cells {
		by := res.byCell[c]
		row := []string{strings.ToUpper(c.test), fmt.Sprint(c.pipeline)}
		for _, s := range res.systems {
			row = append(row, fmtOps(harness.Median(field(by[s], harness.Ops))), fmtMillis(harness.Median(field(by[s], harness.P50))), fmtMillis(harness.Median(field(by[s], harness.P99))))
		}
		row = append(row,
			fmtRatio(harness.MedianRatio(field(by["cluster"], harness.Ops), field(by["single"], harness.Ops))),
			fmtRatio(harness.MedianRatio(field(by["cluster"], harness.Ops), field(by["redis+replica"], harness.Ops))))
		rows = append(rows, row)
	}
	return head, rows
}

func render(cfg config, mach string, started time.Time, how string, res results) rendered {
	head, rows := table(res)
	var txt strings.Builder
	tw := tabwriter.NewWriter(&txt, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()

	var md strings.Builder
	fmt.Fprintf(&md, "# Replicated cluster vs single node vs Redis with a replica, %s\n\n", started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&md, "Command: `go run ./bench/cluster %s`\n\n", strings.Join(os.Args[1:], " "))
	md.WriteString(mach)
	fmt.Fprintf(&md, "\nSystems (all appendonly yes, appendfsync everysec): **cluster** = 3 keel nodes, one Raft group, driven at the leader via %s; "+
		"**single** = one keel node, same flags, no peers; **redis+replica** = redis-server with one redis-server --replicaof it (asynchronous).\n\n", how)
	fmt.Fprintf(&md, "redis-benchmark -c %d -d %d -r %d -n %d at -P 1 (×P/2 when pipelined), %d rounds; within a round the three systems run back to back, "+
		"order rotated each round. Values are medians over rounds; ratios are medians of per-round ratios of ops/s. "+
		"A run with error replies, or during which the leader changed, counts as missing.\n\n",
		cfg.clients, cfg.dataBytes, cfg.keyspace, cfg.requests, cfg.rounds)
	md.WriteString("| " + strings.Join(head, " | ") + " |\n|")
	for range head {
		md.WriteString(" ---: |")
	}
	md.WriteString("\n")
	for _, r := range rows {
		md.WriteString("| " + strings.Join(r, " | ") + " |\n")
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
