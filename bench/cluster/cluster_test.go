package main

import (
	"math"
	"testing"
	"time"

	"github.com/keel-db/keel/bench/internal/harness"
)

// CLUSTER NODES as keel --groups 3 and Redis Cluster 7.0 printed them on
// this machine, and a keel node whose group has no leader (fail?) next to
// a replica line.
func TestParseMasters(t *testing.T) {
	keel := "0000000000000000000000000000000000000001 127.0.0.1:21001@31001 myself,master - 0 0 3 connected 0-5461\n" +
		"0000000000000000000000000000000000000002 127.0.0.1:21002@31002 master - 0 0 3 connected 5462-10922\n" +
		"0000000000000000000000000000000000000003 127.0.0.1:21003@31003 master,fail? - 0 0 3 connected 10923-16383\n" +
		"0000000000000000000000000000000000000004 127.0.0.1:21004@31004 slave 0000000000000000000000000000000000000001 0 0 3 connected\n"
	ms := parseMasters(keel)
	if len(ms) != 2 || ms[0] != (master{addr: "127.0.0.1:21001", myself: true, slots: "0-5461"}) ||
		ms[1] != (master{addr: "127.0.0.1:21002", slots: "5462-10922"}) {
		t.Errorf("keel masters = %+v", ms)
	}
	redis := "7157ef666ddd6baf7cbdcce31899c2a88423bb87 127.0.0.1:22003@32003 master - 0 1795780817262 3 connected 10923-16383\n" +
		"a42455d91463c3816f37f670744392166a61aeb1 127.0.0.1:22002@32002 master - 0 1795780815987 2 connected 5461-10922\n" +
		"f01d3bc8d325f733e8f96bf56390ad28e6325e0b 127.0.0.1:22001@32001 myself,master - 0 1795780816000 1 connected 0-5460 [5461->-a42455d91463c3816f37f670744392166a61aeb1]\n"
	ms = parseMasters(redis)
	if len(ms) != 3 || ms[2].slots != "0-5460 [5461->-a42455d91463c3816f37f670744392166a61aeb1]" || !ms[2].myself || ms[0].myself {
		t.Errorf("redis masters = %+v", ms)
	}
	if ms := parseMasters("garbage\n\n"); len(ms) != 0 {
		t.Errorf("masters of garbage = %+v", ms)
	}
}

// The sharded table divides sharded's ops/s by each other system's round
// by round; an absent system's columns are "–".
func TestShardedTableRatios(t *testing.T) {
	c := cell{test: "set", pipeline: 1}
	ops := func(xs ...float64) []result {
		var rs []result
		for _, x := range xs {
			r := missing
			r.OpsPerSec, r.P50Millis, r.P99Millis = x*1000, 1, 2
			rs = append(rs, r)
		}
		return rs
	}
	res := results{
		cells:   []cell{c},
		systems: []string{"cluster", "single", "redis+replica", "sharded", "redis-cluster"},
		byCell: map[cell]map[string][]result{c: {
			"sharded": ops(100, 10, 60),
			"single":  ops(200, 20, 100), // per round 0.5, 0.5, 0.6
			"cluster": ops(50, math.NaN(), 60),
		}},
		absent: map[string]string{"redis+replica": "x", "redis-cluster": "y"},
	}
	head, rows := shardedTable(res)
	want := []string{"SET", "1", "60.0k", "1.000", "2.000", "–", "–", "–", "0.50 (0.50–0.60)", "1.50 (1.00–2.00)", "–", "–"}
	if len(head) != len(want) || len(rows) != 1 {
		t.Fatalf("head %v rows %v", head, rows)
	}
	for i, w := range want {
		if rows[0][i] != w {
			t.Errorf("%s = %q, want %q", head[i], rows[0][i], w)
		}
	}
	if got := harness.FmtOps(harness.Median(field(res.byCell[c]["cluster"], harness.Ops))); got != "55.0k" {
		t.Errorf("cluster median = %s, want 55.0k (the missing round skipped)", got)
	}
}

// CPU per request is the run's CPU over its requests; the bound table
// predicts system/single from the two totals and shows the measured ratio
// beside it, round by round.
func TestCPUTables(t *testing.T) {
	c := cell{test: "set", pipeline: 16}
	run := func(ops float64, wall time.Duration, client time.Duration, server ...time.Duration) result {
		r := missing
		r.OpsPerSec, r.P50Millis, r.P99Millis = ops, 1, 2
		r.cpu = &cpuUse{wall: wall, requests: 1_000_000, server: server, client: client, machineBusy: 0.9}
		return r
	}
	res := results{
		cells:   []cell{c},
		systems: []string{"cluster", "single"},
		byCell: map[cell]map[string][]result{c: {
			// 1M requests: 3 + 2 + 2 µs server, 1 µs client = 8 µs;
			// 4 s at 2 cores is 8 core-seconds: fully used.
			"cluster": {run(250e3, 4*time.Second, time.Second, 3*time.Second, 2*time.Second, 2*time.Second)},
			// 2.2 µs server + 1 µs client = 3.2 µs; 2 s at 2 cores:
			// 80% used.
			"single": {run(500e3, 2*time.Second, time.Second, 2200*time.Millisecond)},
		}},
	}
	head, rows := cpuTable(res, 2)
	if len(rows) != 2 {
		t.Fatalf("cpu rows %v", rows)
	}
	want := []string{"SET", "16", "cluster", "250.0k", "3.00 + 2.00 + 2.00", "7.00", "1.00", "8.00", "250.0k", "100%", "90%"}
	for i, w := range want {
		if rows[0][i] != w {
			t.Errorf("cluster %s = %q, want %q", head[i], rows[0][i], w)
		}
	}
	if rows[1][4] != "2.20" || rows[1][8] != "625.0k" || rows[1][9] != "80%" {
		t.Errorf("single row %v", rows[1])
	}
	head, rows = boundTable(res, 2)
	// predicted 3.2 / 8; measured 250k / 500k; utilization 1 / 0.8;
	// ceiling: 2 cores / 8 µs = 250k, over single's 500k.
	want = []string{"SET", "16", "cluster", "8.00", "3.20", "0.40", "0.50", "1.25", "0.50"}
	if len(rows) != 1 {
		t.Fatalf("bound rows %v", rows)
	}
	for i, w := range want {
		if rows[0][i] != w {
			t.Errorf("bound %s = %q, want %q", head[i], rows[0][i], w)
		}
	}
}
