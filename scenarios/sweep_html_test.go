package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The HTML summary has a row for every scenario of the sweep (one with no
// seed judged too), links every failing seed's report folder, and escapes
// what the seeds report: a failure message cannot write markup.
func TestSweepHTML(t *testing.T) {
	dir := t.TempDir()
	elsewhere := t.TempDir()
	results := []SeedResult{
		{Scenario: "baseline", Seed: 1, Passed: true, WallNanos: 3e8, Markers: map[string]int64{"compaction": 1}},
		{Scenario: "baseline", Seed: 2, Failures: []string{`stale read <script>alert("x")</script>` + "\nsecond line"}, FailuresTotal: 3,
			ReportDir: filepath.Join(dir, "baseline-seed-2"), WallNanos: 9e8},
		{Scenario: "torn-writes", Seed: 7, Failures: []string{"lost write"}, Lin: "unknown",
			ReportDir: filepath.Join(elsewhere, "torn-writes-seed-7"), SwarmMix: "node: torn=0.5 & more"},
	}
	err := WriteSweepHTML(dir, SweepSummary{
		Params: SweepParams{Scenario: "all", Seeds: "1..7"}, Scenarios: []string{"baseline", "torn-writes", "bit-rot"},
		Results: results, Planned: 21, Stopped: "interrupted",
		ReplayCommand: func(r SeedResult) string { return ReplayCommand(r.Scenario, r.Seed) },
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, SweepIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{
		`<tr class="scenario" data-scenario="baseline"><td>baseline</td><td>2</td><td>1</td><td class="bad">1</td><td class="">0</td>`,
		`<tr class="scenario" data-scenario="torn-writes"><td>torn-writes</td><td>1</td><td>0</td><td class="bad">1</td><td class="bad">1</td>`,
		`<tr class="scenario" data-scenario="bit-rot"><td>bit-rot</td><td>0</td>`,
		`<a href="baseline-seed-2/">`,
		`<a href="` + filepath.ToSlash(filepath.Join(elsewhere, "torn-writes-seed-7")) + `/">`,
		`stale read &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; (and 2 more)`,
		`mix: node: torn=0.5 &amp; more`,
		`<code>keel sim replay --scenario torn-writes --seed 7</code>`,
		`3 of 21 seeds judged, 2 failed`,
		`The sweep stopped early: interrupted.`,
		`<td>baseline</td><td>2</td><td>900ms</td>`, // the slowest seed first
	} {
		if !strings.Contains(page, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "second line") {
		t.Errorf("index.html carries a failure's markup or its later lines:\n%s", page)
	}
	if _, err := os.Stat(filepath.Join(dir, SweepIndexFile+".tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
}
