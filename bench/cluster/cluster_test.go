package main

import (
	"math"
	"testing"

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
