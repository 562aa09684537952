package main

import (
	"errors"
	"strings"
	"testing"
)

// keel cluster status's table: every node's view of every group, the
// lag from the group's highest commit, and health: a node that does not
// answer, a group without a leader or whose nodes disagree on it.
func TestClusterStatusTable(t *testing.T) {
	nodes, err := parseClusterNodes("0000000000000000000000000000000000000002 127.0.0.1:7002@17002 master - 0 0 2 connected 0-8191\n" +
		"0000000000000000000000000000000000000001 127.0.0.1:7001@17001 myself,master - 0 0 2 connected 8192-16383\n" +
		"0000000000000000000000000000000000000003 127.0.0.1:7003@17003 master,fail - 0 0 2 disconnected\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 || nodes[0].id != 1 || nodes[1].addr != "127.0.0.1:7002" || nodes[2].state != "fail" {
		t.Fatalf("parsed %+v", nodes)
	}
	nodes[0].groups = parseInfoGroups("# Groups\r\ngroup1:hosted=1,role=leader,leader=1,term=4,commit_index=120,applied_index=120,keys=7\r\n" +
		"group2:hosted=0,role=none,leader=2,term=3\r\n")
	nodes[1].groups = parseInfoGroups("group1:hosted=1,role=follower,leader=1,term=4,commit_index=118,applied_index=100,keys=7\r\n")
	nodes[2].err = errors.New("dial tcp: connection refused")
	lines, healthy := statusTable(nodes)
	got := strings.Join(lines, "\n")
	want := "1\t127.0.0.1:7001\tconnected\t1\tleader\t1\t4\t120\t120\t0\tok\n" +
		"2\t127.0.0.1:7002\tconnected\t1\tfollower\t1\t4\t118\t100\t20\tok\n" +
		"3\t127.0.0.1:7003\tfail\t-\t-\t-\t-\t-\t-\t-\tunreachable: dial tcp: connection refused"
	if got != want || healthy {
		t.Errorf("table (healthy %v):\n%s\nwant:\n%s", healthy, got, want)
	}
	nodes[2].err = nil
	nodes[1].groups[0].leader = 2
	if lines, healthy := statusTable(nodes); healthy || !strings.Contains(strings.Join(lines, "\n"), "disagree") {
		t.Errorf("two leaders for group 1 reported healthy: %q", lines)
	}
}
