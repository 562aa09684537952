package server

import (
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	dto "github.com/prometheus/client_model/go"

	"github.com/keel-db/keel/disk"
)

// scrape reads /metrics through Prometheus's own text parser.
func scrape(t *testing.T, ts *testServer) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	ts.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	body, _ := io.ReadAll(rec.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("Prometheus's parser refuses the exposition: %v\n%s", err, body)
	}
	return fams
}

// value is the sample of family name whose labels include want
// (counter, gauge, or a histogram's count).
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.Label {
				found = found || l.GetName() == want[i] && l.GetValue() == want[i+1]
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// The metrics move with what the node does: commands by name and their
// latency histogram, errors by code, connections, keys, expirations,
// the group's Raft indexes, the log's appends and fsyncs.
func TestMetricsMove(t *testing.T) {
	ts := startDurableServer(t, disk.OS(), t.TempDir())
	before := scrape(t, ts)
	rc := ts.raw(t)
	for _, args := range [][]string{{"SET", "a", "1"}, {"SET", "b", "2"}, {"GET", "a"}, {"INCR", "b"}, {"LPUSH", "a", "x"},
		{"GET"}, {"SET", "t", "v", "PX", "1"}, {"CONFIG", "SET", "latency-monitor-threshold", "1"}} {
		rc.do(args...)
	}
	waitFor(t, "the key with a 1 ms TTL to expire", func() bool { return rc.do("EXISTS", "t") == ":0" })
	after := scrape(t, ts)
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"keel_commands_total", []string{"cmd", "set"}, 3},
		{"keel_commands_total", []string{"cmd", "get"}, 1},
		{"keel_commands_total", []string{"cmd", "config set"}, 1},
		{"keel_commands_failed_total", []string{"cmd", "lpush"}, 1},
		{"keel_commands_rejected_total", []string{"cmd", "get"}, 1},
		{"keel_command_duration_seconds", []string{"cmd", "set"}, 3},
		{"keel_error_replies_total", []string{"code", "WRONGTYPE"}, 1},
		{"keel_error_replies_total", []string{"code", "ERR"}, 1},
		{"keel_connected_clients", nil, 1},
		{"keel_connections_received_total", nil, 1},
		{"keel_keys", []string{"group", "1"}, 2},
		{"keel_expired_keys_total", []string{"group", "1"}, 1},
		{"keel_raft_applied_index", []string{"group", "1"}, 4},
		{"keel_raft_is_leader", []string{"group", "1"}, 1},
		{"keel_raft_leader_changes_total", []string{"group", "1"}, 1},
		{"keel_wal_append_duration_seconds", nil, 4},
		{"keel_wal_fsync_duration_seconds", nil, 4},
		{"keel_wal_written_bytes_total", nil, 1},
		{"keel_memory_heap_bytes", nil, 1},
		{"go_goroutines", nil, 1},
	} {
		got := value(after, c.name, c.labels...)
		if got < c.min {
			t.Errorf("%s%v = %v after the commands, want >= %v", c.name, c.labels, got, c.min)
		}
		if c.name == "keel_commands_total" || c.name == "keel_wal_fsync_duration_seconds" {
			if was := value(before, c.name, c.labels...); was >= got {
				t.Errorf("%s%v did not move: %v before, %v after", c.name, c.labels, was, got)
			}
		}
	}
	if value(after, "keel_recovery_duration_seconds") < 0 {
		t.Error("no keel_recovery_duration_seconds")
	}
}

// Every metric the Grafana dashboard (ops/grafana/keel.json) queries is
// one the server exposes.
func TestDashboardQueriesExposedMetrics(t *testing.T) {
	b, err := os.ReadFile("../ops/grafana/keel.json")
	if err != nil {
		t.Fatal(err)
	}
	ts := startDurableServer(t, disk.OS(), t.TempDir())
	rc := ts.raw(t)
	rc.do("SET", "a", "1")
	rc.do("GET")
	fams := scrape(t, ts)
	names := regexp.MustCompile(`keel_[a-z_]+`).FindAllString(string(b), -1)
	if len(names) < 20 {
		t.Fatalf("only %d metric names in the dashboard", len(names))
	}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
		if fams[base] == nil {
			t.Errorf("the dashboard queries %s, which /metrics does not expose", name)
		}
	}
}

// A three-node cluster with two groups: every node's exposition passes
// Prometheus's parser and they agree on each group's leader and term;
// writes move the commit index everywhere and the leader's command
// counters.
func TestClusterMetrics(t *testing.T) {
	tc := newTestClusterGroups(t, 3, 2)
	tc.leader()
	cc := tc.clusterClient()
	for i := range 50 {
		if err := cc.Set(ctx(), "k"+strconv.Itoa(i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every node to apply the writes of both groups", func() bool {
		for _, cs := range tc.srvs {
			fams := scrape(t, &testServer{srv: cs.srv})
			for _, g := range []string{"1", "2"} {
				if value(fams, "keel_raft_applied_index", "group", g) < 10 {
					return false
				}
			}
		}
		return true
	})
	var sets float64
	for _, g := range []string{"1", "2"} {
		leaders, isLeader := map[float64]bool{}, 0.0
		terms := map[float64]bool{}
		for _, cs := range tc.srvs {
			fams := scrape(t, &testServer{srv: cs.srv})
			leaders[value(fams, "keel_raft_leader_id", "group", g)] = true
			terms[value(fams, "keel_raft_term", "group", g)] = true
			isLeader += value(fams, "keel_raft_is_leader", "group", g)
			if g == "1" {
				sets += max(value(fams, "keel_commands_total", "cmd", "set"), 0)
			}
		}
		if len(leaders) != 1 || leaders[0] || len(terms) != 1 || isLeader != 1 {
			t.Errorf("group %s: leaders %v, terms %v, %v nodes say they lead", g, leaders, terms, isLeader)
		}
	}
	// INFO groups (keel cluster status reads it) says the same.
	for i := range tc.srvs {
		info := tc.raw(i).do("INFO", "groups")
		if !strings.Contains(info, "group1:hosted=1,role=") || !strings.Contains(info, "group2:hosted=1,role=") {
			t.Errorf("node %d INFO groups: %s", i+1, info)
		}
	}
	if sets < 50 {
		t.Errorf("keel_commands_total{cmd=set} summed over the nodes: %v, want >= 50", sets)
	}
}
