package main

import (
	"math"
	"testing"
	"time"
)

func TestKeyNameMatchesRedisBenchmark(t *testing.T) {
	// redis-benchmark -r replaces __rand_int__ in "key:__rand_int__" with
	// 12 zero-padded digits.
	if got := string(keyName(nil, 12345)); got != "key:000000012345" {
		t.Fatalf("keyName(12345) = %q", got)
	}
	if got := string(keyName(nil, 999999999999)); got != "key:999999999999" {
		t.Fatalf("keyName(max) = %q", got)
	}
}

func TestStats(t *testing.T) {
	var ss []sample
	for i := 1; i <= 1000; i++ {
		ss = append(ss, sample{at: time.Duration(i) * time.Millisecond, latency: time.Duration(i) * time.Microsecond})
	}
	l := stats(ss, time.Second, 0.5)
	if l.n != 1000 || l.p50 != 0.5 || l.p99 != 0.99 || l.p999 != 0.999 || l.max != 1 || l.slow != 500 || l.perSec != 1000 {
		t.Fatalf("stats = %+v", l)
	}
	if got := stats(nil, time.Second, 1); !math.IsNaN(got.p99) || got.n != 0 {
		t.Fatalf("empty stats = %+v", got)
	}
	s := slowest(ss, 3)
	if len(s) != 3 || s[0].latency != 998*time.Microsecond || s[2].latency != time.Millisecond {
		t.Fatalf("slowest = %v", s)
	}
}

func TestParseGCTrace(t *testing.T) {
	log := `keel: listening
gc 12 @3.456s 2%: 0.020+15+0.010 ms clock, 0.040+1.2/7.5/0+0.020 ms cpu, 4->5->2 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 13 @4.000s 2%: 1.5+30+0.25 ms clock, 3.0+1/2/3+0.5 ms cpu, 3000->3100->2900 MB, 6000 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)
gc garbage line ms clock
`
	g, ok := parseGCTrace(log)
	if !ok || g.cycles != 2 || g.stwMaxMillis != 1.5 || math.Abs(g.stwTotalMillis-1.78) > 1e-9 || g.markMillis != 45 || g.heapMB != 2900 {
		t.Fatalf("parseGCTrace = %+v, %v", g, ok)
	}
	if _, ok := parseGCTrace("nothing here\n"); ok {
		t.Fatal("parseGCTrace found cycles in a log without any")
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"--keys", "1000"})
	if err != nil || c.keys != 1000 || c.writeKeyspace != 1000 {
		t.Fatalf("parseFlags = %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"--keys", "0"}, {"--persistence", "always"}, {"--write-keyspace", "-1"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Fatalf("parseFlags(%v) accepted", bad)
		}
	}
}
