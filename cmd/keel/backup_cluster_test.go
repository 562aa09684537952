package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
)

// TestRestoreNewCluster: the backup of a cluster node (node 3 of its
// cluster; with 2 groups a sharded node) restored with --new-cluster
// starts as node 1 of a one-node cluster with the backup's --groups,
// serving every key; keel cluster addnode then adds a node 2 started
// with --join, which receives every key, the restored ones and one
// written after the restore.
func TestRestoreNewCluster(t *testing.T) {
	redis.SetLogger(quietRedisLogger{})
	for _, groups := range []int{2, 1} {
		t.Run(fmt.Sprintf("groups=%d", groups), func(t *testing.T) { testRestoreNewCluster(t, groups) })
	}
}

func testRestoreNewCluster(t *testing.T, groups int) {
	ctx := context.Background()
	root := t.TempDir()
	waitOK := func(addr string) {
		t.Helper()
		c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
		defer c.Close()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if info, _ := c.ClusterInfo(ctx).Result(); strings.Contains(info, "cluster_state:ok") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no cluster_state:ok", addr)
			}
		}
	}

	// The source: node 3 of a one-node cluster (so its snapshots name
	// voter 3, which the restore must replace).
	srcLn, srcPort := freeClusterPort(t)
	src := startMemberNode(t, filepath.Join(root, "src"), 3, []cluster.TopoNode{{ID: 3, Host: "127.0.0.1", Port: srcPort}}, groups, false, srcLn)
	t.Cleanup(func() { src.stop(t) })
	waitOK(src.addr)
	sc := redis.NewClient(&redis.Options{Addr: src.addr, Protocol: 2, DisableIdentity: true})
	defer sc.Close()
	const keys = 300
	for i := range keys {
		if err := sc.Set(ctx, "k"+strconv.Itoa(i), strconv.Itoa(i*7), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(root, "b.keel")
	summary, err := takeBackup(sc, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backup: %s", summary)
	src.stop(t)

	dst := filepath.Join(root, "1")
	if groups > 1 {
		// A sharded node's backup needs cluster mode.
		if _, err := restoreBackup(out, dst, false); err == nil || !strings.Contains(err.Error(), "--new-cluster") {
			t.Fatalf("restore of %d groups without --new-cluster: %v", groups, err)
		}
	}
	// The command line: the same restore, and how to start the node.
	var stdout, stderr strings.Builder
	if rc := restoreMain([]string{out, "--dir", filepath.Join(root, "cli"), "--new-cluster"}, &stdout, &stderr); rc != 0 ||
		!strings.Contains(stdout.String(), "--node-id 1 --peers") || groups > 1 && !strings.Contains(stdout.String(), fmt.Sprintf("--groups %d", groups)) {
		t.Fatalf("keel restore --new-cluster: exit %d\n%s%s", rc, stdout.String(), stderr.String())
	}
	res, err := restoreBackup(out, dst, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.groups != groups || strings.Count(res.summary, "group ") != groups {
		t.Fatalf("restore: %d groups (%s), want %d", res.groups, res.summary, groups)
	}

	var peers []cluster.TopoNode
	var nodes [2]*memberTestNode
	t.Cleanup(func() {
		for _, n := range nodes {
			if n != nil {
				n.stop(t)
			}
		}
	})
	ln1, port1 := freeClusterPort(t)
	ln2, port2 := freeClusterPort(t)
	peers = append(peers, cluster.TopoNode{ID: 1, Host: "127.0.0.1", Port: port1}, cluster.TopoNode{ID: 2, Host: "127.0.0.1", Port: port2})
	nodes[0] = startMemberNode(t, dst, 1, peers, groups, false, ln1)
	waitOK(nodes[0].addr)
	c1 := redis.NewClient(&redis.Options{Addr: nodes[0].addr, Protocol: 2, DisableIdentity: true})
	defer c1.Close()
	for i := range keys {
		k := "k" + strconv.Itoa(i)
		if v, err := c1.Get(ctx, k).Result(); err != nil || v != strconv.Itoa(i*7) {
			t.Fatalf("restored node 1: GET %s = %q (%v), want %q", k, v, err, strconv.Itoa(i*7))
		}
	}
	if got := membersOn(t, nodes[0].addr); got != strings.Repeat(" [1]", groups)[1:] {
		t.Fatalf("restored node's members %s, want node 1 alone", got)
	}
	if err := c1.Set(ctx, "after-restore", "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}

	nodes[1] = startMemberNode(t, filepath.Join(root, "2"), 2, peers, groups, true, ln2)
	var report strings.Builder
	if err := changeMembership(ctx, memberOptions{add: true, node: nodes[0].addr, id: 2, addr: nodes[1].addr}, &report); err != nil {
		t.Fatalf("addnode: %v\n%s", err, report.String())
	}
	for _, n := range nodes {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			got := membersOn(t, n.addr)
			if got == strings.Repeat(" [1 2]", groups)[1:] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: members %s after addnode", n.addr, got)
			}
		}
	}
	c2 := redis.NewClient(&redis.Options{Addr: nodes[1].addr, Protocol: 2, DisableIdentity: true, PoolSize: 1})
	defer c2.Close()
	if err := c2.Do(ctx, "READONLY").Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"after-restore": "yes"}
	for i := range keys {
		want["k"+strconv.Itoa(i)] = strconv.Itoa(i * 7)
	}
	for k, v := range want {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			got, err := c2.Get(ctx, k).Result()
			if err == nil && got == v {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node 2 READONLY GET %s = %q (%v), want %q", k, got, err, v)
			}
		}
	}
	t.Logf("node 2 serves all %d keys of the restored cluster", len(want))
}
