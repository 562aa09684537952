package main

import (
	"context"
	"fmt"
	stdnet "net"
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

// TestBackupFromFollower: on a 3-node, 2-group cluster, `keel backup`
// named at a group's leader copies every group from a follower
// (--from follower, the default) or from its leader (--from leader),
// and says so; the follower's backup, restored as a new cluster, holds
// every key written before it. On a node outside cluster mode --from
// follower copies from the node itself.
func TestBackupFromFollower(t *testing.T) {
	redis.SetLogger(quietRedisLogger{})
	ctx := context.Background()
	root := t.TempDir()
	const groups = 2
	var peers []cluster.TopoNode
	var lns []stdnet.Listener
	for id := uint64(1); id <= 3; id++ {
		ln, port := freeClusterPort(t)
		lns = append(lns, ln)
		peers = append(peers, cluster.TopoNode{ID: id, Host: "127.0.0.1", Port: port})
	}
	var nodes []*memberTestNode
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop(t)
		}
	})
	for i := range 3 {
		nodes = append(nodes, startMemberNode(t, filepath.Join(root, strconv.Itoa(i+1)), uint64(i+1), peers, groups, false, lns[i]))
	}
	addrOf := func(id uint64) string { return nodes[id-1].addr }
	dial := func(a string) *redis.Client {
		return redis.NewClient(&redis.Options{Addr: a, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	}
	// Every group led, every node in agreement, every write applied
	// everywhere: the followers' snapshots then hold every key.
	var leaders [groups + 1]uint64
	settled := func(wantApplied bool) bool {
		var applied [groups + 1]uint64
		for i, n := range nodes {
			c := dial(n.addr)
			info, err := c.Info(ctx, "groups").Result()
			c.Close()
			if err != nil {
				return false
			}
			gs := parseInfoGroups(info)
			if len(gs) != groups {
				return false
			}
			for _, g := range gs {
				if g.leader == 0 || i > 0 && (g.leader != leaders[g.group] || wantApplied && g.applied != applied[g.group]) {
					return false
				}
				leaders[g.group], applied[g.group] = g.leader, g.applied
			}
		}
		return true
	}
	waitSettled := func(wantApplied bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !settled(wantApplied); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the cluster did not settle")
			}
		}
	}
	waitSettled(false)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{nodes[0].addr, nodes[1].addr, nodes[2].addr}, MaxRedirects: 8})
	defer cc.Close()
	const keys = 200
	for i := range keys {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			err := cc.Set(ctx, "k"+strconv.Itoa(i), strconv.Itoa(i*7), 0).Err()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
		}
	}
	waitSettled(true)

	named := addrOf(leaders[1])
	nc := dial(named)
	defer nc.Close()
	out := filepath.Join(root, "follower.keel")
	summary, err := backupFrom(nc, named, dial, backupFromFollower, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("--from follower at node %d: %s", leaders[1], summary)
	for g := uint64(1); g <= groups; g++ {
		prefix := fmt.Sprintf("group %d at index ", g)
		i := strings.Index(summary, prefix)
		if i < 0 {
			t.Fatalf("summary lacks group %d: %s", g, summary)
		}
		part, _, _ := strings.Cut(summary[i:], ", group")
		if !strings.HasSuffix(part, "(follower)") || strings.Contains(part, fmt.Sprintf("from node %d ", leaders[g])) {
			t.Fatalf("group %d (leader %d) not copied from a follower: %s", g, leaders[g], part)
		}
	}
	lsum, err := backupFrom(nc, named, dial, backupFromLeader, filepath.Join(root, "leader.keel"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("--from leader: %s", lsum)
	for g := uint64(1); g <= groups; g++ {
		if want := fmt.Sprintf("from node %d %s (leader)", leaders[g], addrOf(leaders[g])); !strings.Contains(lsum, fmt.Sprintf("group %d at", g)) || !strings.Contains(lsum, want) {
			t.Fatalf("--from leader: group %d not from %s: %s", g, want, lsum)
		}
	}

	// The follower's backup holds every key.
	dst := filepath.Join(root, "restored")
	if _, err := restoreBackup(out, dst, true); err != nil {
		t.Fatal(err)
	}
	ln1, port1 := freeClusterPort(t)
	_, port2 := freeClusterPort(t)
	r := startMemberNode(t, dst, 1, []cluster.TopoNode{{ID: 1, Host: "127.0.0.1", Port: port1}, {ID: 2, Host: "127.0.0.1", Port: port2}}, groups, false, ln1)
	nodes = append(nodes, r)
	rc := dial(r.addr)
	defer rc.Close()
	for i := range keys {
		k := "k" + strconv.Itoa(i)
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			v, err := rc.Get(ctx, k).Result()
			if err == nil && v == strconv.Itoa(i*7) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("restored follower backup: GET %s = %q (%v), want %q", k, v, err, strconv.Itoa(i*7))
			}
		}
	}

	// Outside cluster mode the node is its own source.
	single := startDiskServer(t, filepath.Join(root, "single"))
	sc := dial(single)
	defer sc.Close()
	if err := sc.Set(ctx, "one", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	ssum, err := backupFrom(sc, single, dial, backupFromFollower, filepath.Join(root, "single.keel"))
	if err != nil || !strings.HasPrefix(ssum, "group 1 at index ") || strings.Contains(ssum, "from") {
		t.Fatalf("single node --from follower: %q %v", ssum, err)
	}
}
