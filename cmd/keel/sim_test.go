package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestSimList(t *testing.T) {
	var out bytes.Buffer
	if code := simList(nil, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	names := strings.Fields(out.String())
	for _, want := range []string{"baseline", "crash-restart", "torn-writes", "fsync-failure", "disk-full", "bit-rot", "clock-skew", "slow-disk"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("keel sim list lacks %s: %v", want, names)
		}
	}
}

func TestSimReplayLastLineIsStableTraceHash(t *testing.T) {
	var a, b bytes.Buffer
	if code := simReplay([]string{"--scenario", "crash-restart", "--seed", "3"}, &a, &a); code != 0 {
		t.Fatalf("exit %d:\n%s", code, a.String())
	}
	if code := simReplay([]string{"--scenario", "crash-restart", "--seed", "3", "--trace", "-"}, &b, &b); code != 0 {
		t.Fatalf("exit %d", code)
	}
	last := func(s string) string {
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		return lines[len(lines)-1]
	}
	if !strings.HasPrefix(last(a.String()), "trace-hash: ") || last(a.String()) != last(b.String()) {
		t.Fatalf("last lines differ or lack the hash: %q vs %q", last(a.String()), last(b.String()))
	}
	if !strings.Contains(b.String(), " n1 submit ") {
		t.Fatalf("--trace - did not write the trace")
	}
}

func TestSimRunExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := simRun([]string{"--scenario", "nope", "--seeds", "1..2"}, &out, &errb); code != 2 {
		t.Fatalf("unknown scenario: exit %d", code)
	}
	if code := simRun([]string{"--scenario", "baseline", "--seeds", "5..1"}, &out, &errb); code != 2 {
		t.Fatalf("bad range: exit %d", code)
	}
	out.Reset()
	if code := simRun([]string{"--scenario", "baseline", "--seeds", "1..2", "--out", t.TempDir()}, &out, &errb); code != 0 {
		t.Fatalf("baseline 1..2: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "baseline") || !strings.Contains(out.String(), "total") {
		t.Fatalf("no summary table:\n%s", out.String())
	}
}
