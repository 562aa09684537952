package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"

	"github.com/keel-db/keel/bench/internal/harness"
)

// cell names one throughput measurement across rounds.
type cell struct {
	mode     string
	test     string
	pipeline int
}

// series holds one cell's per-round results; index i of both slices comes
// from round i, measured back to back.
type series struct {
	redis, keel []harness.Result
	skipped     string // why keel was not measured (failed probe), if so
}

func ops(rs []harness.Result) []float64 { return harness.Field(rs, harness.Ops) }
func p50(rs []harness.Result) []float64 { return harness.Field(rs, harness.P50) }
func p99(rs []harness.Result) []float64 { return harness.Field(rs, harness.P99) }

// row is one line of the comparison table, all medians over rounds.
type row struct {
	cell
	redisOps, keelOps, opsRatio float64
	redisP50, keelP50           float64
	redisP99, keelP99, p99Ratio float64
	rounds                      int
	skipped                     string
}

func summarize(c cell, s *series) row {
	return row{
		cell:     c,
		redisOps: harness.Median(ops(s.redis)), keelOps: harness.Median(ops(s.keel)),
		opsRatio: harness.MedianRatio(ops(s.keel), ops(s.redis)),
		redisP50: harness.Median(p50(s.redis)), keelP50: harness.Median(p50(s.keel)),
		redisP99: harness.Median(p99(s.redis)), keelP99: harness.Median(p99(s.keel)),
		p99Ratio: harness.MedianRatio(p99(s.keel), p99(s.redis)),
		rounds:   len(s.redis),
		skipped:  s.skipped,
	}
}

var fmtOps, fmtMillis = harness.FmtOps, harness.FmtMillis

// fmtRatio marks keel/redis ratios with "×".
func fmtRatio(x float64) string { return harness.FmtRatio(x, "×") }

func fmtBytesPerKey(x float64) string {
	if x < 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", x)
}

// table is a header and rows of cells, rendered as aligned text or Markdown.
type table struct {
	header []string
	rows   [][]string
}

func (t table) markdown() string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.header, " | ") + " |\n")
	seps := make([]string, len(t.header))
	for i := range seps {
		seps[i] = "---"
		if i > 0 {
			seps[i] = "--:"
		}
	}
	b.WriteString("| " + strings.Join(seps, " | ") + " |\n")
	for _, r := range t.rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

func (t table) text() string {
	widths := make([]int, len(t.header))
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(r []string) {
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		b.WriteString("\n")
	}
	line(t.header)
	for _, r := range t.rows {
		line(r)
	}
	return b.String()
}

func throughputTable(rows []row) table {
	t := table{header: []string{"mode", "test", "P", "redis ops/s", "keel ops/s", "keel/redis",
		"redis p50 ms", "keel p50 ms", "redis p99 ms", "keel p99 ms", "p99 keel/redis"}}
	for _, r := range rows {
		ratio := fmtRatio(r.opsRatio)
		if r.skipped != "" {
			ratio = "not run: " + r.skipped
		}
		t.rows = append(t.rows, []string{r.mode, r.test, fmt.Sprint(r.pipeline),
			fmtOps(r.redisOps), fmtOps(r.keelOps), ratio,
			fmtMillis(r.redisP50), fmtMillis(r.keelP50), fmtMillis(r.redisP99), fmtMillis(r.keelP99),
			fmtRatio(r.p99Ratio)})
	}
	return t
}

// persistenceTable shows what each persistence mode costs each system, as
// the ratio of its median throughput in that mode to its median with
// persistence off (issue 4 asks for SET with always and everysec).
func persistenceTable(rows []row) table {
	t := table{header: []string{"mode", "test", "P", "redis mode/off", "keel mode/off"}}
	off := map[cell]row{}
	for _, r := range rows {
		if r.mode == "off" {
			off[cell{test: r.test, pipeline: r.pipeline}] = r
		}
	}
	for _, r := range rows {
		base, ok := off[cell{test: r.test, pipeline: r.pipeline}]
		if r.mode == "off" || !ok {
			continue
		}
		t.rows = append(t.rows, []string{r.mode, r.test, fmt.Sprint(r.pipeline),
			fmtRatio(r.redisOps / base.redisOps), fmtRatio(r.keelOps / base.keelOps)})
	}
	return t
}

func memoryTable(redis, keel memResult) table {
	t := table{header: []string{"per key", "redis B", "keel B", "keel/redis"}}
	add := func(name string, r, k float64) {
		ratio := math.NaN()
		if r > 0 && k >= 0 {
			ratio = k / r
		}
		t.rows = append(t.rows, []string{name, fmtBytesPerKey(r), fmtBytesPerKey(k), fmtRatio(ratio)})
	}
	add("INFO used_memory", perKey(redis.usedBefore, redis.usedAfter, redis.keys), perKey(keel.usedBefore, keel.usedAfter, keel.keys))
	add("INFO used_memory_rss", perKey(redis.rssBefore, redis.rssAfter, redis.keys), perKey(keel.rssBefore, keel.rssAfter, keel.keys))
	add("process RSS (/proc VmRSS)", perKey(redis.procBefore, redis.procAfter, redis.keys), perKey(keel.procBefore, keel.procAfter, keel.keys))
	return t
}

func scanTable(redis, keel memResult) table {
	rm, km := harness.Median(redis.scanMillis), harness.Median(keel.scanMillis)
	t := table{header: []string{"system", "median ms", "SCAN calls", "keys found", "redis/keel (speed-up)"}}
	t.rows = append(t.rows,
		[]string{"redis", fmtMillis(rm), fmt.Sprint(redis.scanCalls), fmt.Sprint(redis.scanFound), ""},
		[]string{"keel", fmtMillis(km), fmt.Sprint(keel.scanCalls), fmt.Sprint(keel.scanFound), fmtRatio(rm / km)})
	return t
}

func recoveryTable(rs []recoveryResult) table {
	t := table{header: []string{"system", "persistence", "keys", "on disk MB", "start → all keys s", "keys/s"}}
	for _, r := range rs {
		if r.err != nil {
			t.rows = append(t.rows, []string{r.system, r.variant, fmt.Sprint(r.keys), "–", "failed: " + oneLine(r.err.Error()), "–"})
			continue
		}
		t.rows = append(t.rows, []string{r.system, r.variant, fmt.Sprint(r.keys),
			fmt.Sprintf("%.1f", float64(r.diskBytes)/1e6), fmt.Sprintf("%.2f", r.seconds),
			fmtOps(float64(r.keys) / r.seconds)})
	}
	return t
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	const maxLen = 100
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	return s
}

// machine describes where the numbers were taken.
type machine struct {
	cpus                   int
	cpuModel, kernel, load string
	redisVersion           string
	goVersion              string
	keelCommit             string
}

func describeMachine(redisServer string) machine {
	m := machine{cpus: runtime.NumCPU(), cpuModel: harness.MachineCPUModel(), load: harness.LoadAverage()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	m.redisVersion = harness.CommandOutput("", redisServer, "--version")
	m.goVersion = harness.CommandOutput("", "go", "version")
	m.keelCommit = harness.KeelCommit("")
	return m
}

func (m machine) markdown() string {
	return fmt.Sprintf("- CPUs: %d × %s\n- kernel: %s\n- load average at start: %s\n- %s\n- %s\n- keel commit: %s\n",
		m.cpus, m.cpuModel, m.kernel, m.load, m.redisVersion, m.goVersion, m.keelCommit)
}
