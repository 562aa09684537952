package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A failing seed of `keel sim run` (a planted bug) exits 1, prints its
// replay command and where its report folder is, and the folder holds
// the summary (with that replay command), the history, the visualization
// and the trace.
func TestSimRunFailingSeedWritesReport(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := simRun([]string{"--scenario", "planted-stale-read", "--seeds", "5..5", "--out", out}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "FAIL planted-stale-read seed 5: ") {
		t.Errorf("no FAIL line on stderr:\n%s", stderr.String())
	}
	replay := "keel sim replay --scenario planted-stale-read --seed 5"
	m := regexp.MustCompile(regexp.QuoteMeta(replay) + `\s+# report: (\S+)`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no replay command with its report folder in:\n%s", stdout.String())
	}
	dir := m[1]
	if want := filepath.Join(out, "planted-stale-read-seed-5"); dir != want {
		t.Errorf("report folder %s, want %s", dir, want)
	}
	for _, f := range []string{"summary.txt", "history.jsonl", "visualization.html", "trace.txt"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	sum, _ := os.ReadFile(filepath.Join(dir, "summary.txt"))
	if !strings.Contains(string(sum), "replay: "+replay) {
		t.Errorf("summary.txt lacks the replay command:\n%s", sum)
	}
	// The sweep's HTML summary has the scenario's row and links the
	// failing seed's report folder, relative to the page.
	page, err := os.ReadFile(filepath.Join(out, "index.html"))
	if err != nil {
		t.Fatalf("no index.html: %v", err)
	}
	for _, want := range []string{`<tr class="scenario" data-scenario="planted-stale-read"><td>planted-stale-read</td><td>1</td><td>0</td><td class="bad">1</td>`,
		`<a href="planted-stale-read-seed-5/">`, "<code>" + replay + "</code>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("index.html lacks %s:\n%s", want, page)
		}
	}
	// The history re-checks as not linearizable with keel check.
	if code := runCheck([]string{"--model", "kv", "--history", filepath.Join(dir, "history.jsonl")}, nil, &stdout, &stderr); code != 1 {
		t.Errorf("keel check of the report's history: exit %d, want 1", code)
	}
}

// Planted scenarios are listed only on request, and never run by "all".
func TestSimListPlanted(t *testing.T) {
	var b bytes.Buffer
	if code := simList(nil, &b); code != 0 || strings.Contains(b.String(), "planted-") {
		t.Fatalf("plain list shows planted scenarios (exit %d):\n%s", code, b.String())
	}
	b.Reset()
	if code := simList([]string{"--planted"}, &b); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, name := range []string{"planted-ack-before-fsync", "planted-stale-read", "planted-incrby-lost-update",
		"planted-deleted-key-resurrected", "planted-truncate-after-torn", "planted-apply-twice"} {
		if !strings.Contains(b.String(), name+"\n") {
			t.Errorf("--planted lacks %s:\n%s", name, b.String())
		}
	}
}
