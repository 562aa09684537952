package main

import (
	"context"
	"fmt"
	stdnet "net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/node"
	"github.com/keel-db/keel/seam"
	"github.com/keel-db/keel/server"
)

func TestParseMemberArgs(t *testing.T) {
	o, err := parseMemberArgs(true, []string{"--node", "127.0.0.1:7001", "--id", "4", "--addr", "127.0.0.1:7004"})
	if err != nil || o.node != "127.0.0.1:7001" || o.id != 4 || o.addr != "127.0.0.1:7004" || !o.add {
		t.Fatalf("addnode: %+v, %v", o, err)
	}
	if o, err := parseMemberArgs(false, []string{"--node", "h:1", "--id", "3"}); err != nil || o.id != 3 || o.add {
		t.Fatalf("delnode: %+v, %v", o, err)
	}
	for _, c := range []struct {
		add  bool
		args []string
		want string
	}{
		{true, []string{"--id", "4", "--addr", "h:7004"}, "--node"},
		{true, []string{"--node", "h:1", "--addr", "h:7004"}, "--id"},
		{true, []string{"--node", "h:1", "--id", "0", "--addr", "h:7004"}, "--id"},
		{true, []string{"--node", "h:1", "--id", "4"}, "--addr"},
		{true, []string{"--node", "h:1", "--id", "4", "--addr", "h:60000"}, "--addr"},
		{true, []string{"--node", "h:1", "--id", "4", "--addr", "nonsense"}, "--addr"},
		{false, []string{"--node", "h:1", "--id", "4", "--addr", "h:7004"}, "addr"}, // delnode takes no --addr
		{false, []string{"--node", "h:1", "--id", "4", "extra"}, "unexpected"},
	} {
		if _, err := parseMemberArgs(c.add, c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parse %v %q: %v, want an error about %s", c.add, c.args, err, c.want)
		}
	}
}

// memberTestNode is an in-process keel server of a test cluster.
type memberTestNode struct {
	srv  *server.Server
	addr string
	done chan error
}

// freeClusterPort listens on a loopback port whose bus port is free too.
func freeClusterPort(t *testing.T) (stdnet.Listener, int) {
	t.Helper()
	for {
		ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*stdnet.TCPAddr).Port
		if port+clusterBusPortOffset > 65535 {
			ln.Close()
			continue
		}
		bus, err := stdnet.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+clusterBusPortOffset))
		if err != nil {
			ln.Close()
			continue
		}
		bus.Close()
		return ln, port
	}
}

// startMemberNode starts node id of peers as keel server does with
// --groups groups (and --join yes when join).
func startMemberNode(t *testing.T, dir string, id uint64, peers []cluster.TopoNode, groups int, join bool, ln stdnet.Listener) *memberTestNode {
	t.Helper()
	srv, err := server.Open(server.Config{Port: ln.Addr().(*stdnet.TCPAddr).Port, Dir: dir, AppendOnly: true,
		NodeID: id, Peers: peers, Groups: groups, Join: join, PeerBind: "127.0.0.1", BusInsecure: true,
		ReplicaOptions: func(g uint64) cluster.Options {
			return cluster.Options{FS: disk.OS(), Dir: node.GroupDir(dir, groups, g), AppendOnly: true, Rand: seam.NewRand(), BackgroundSync: true}
		}})
	if err != nil {
		t.Fatal(err)
	}
	n := &memberTestNode{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { n.done <- srv.Serve(ln) }()
	return n
}

func (n *memberTestNode) stop(t *testing.T) {
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	if err := <-n.done; err != nil {
		t.Errorf("%s: Serve: %v", n.addr, err)
	}
	n.srv = nil
}

// membersOn reads CLUSTER GROUPS on addr: each group's members.
func membersOn(t *testing.T, addr string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	v, err := c.Do(context.Background(), "CLUSTER", "GROUPS").Result()
	if err != nil {
		return err.Error()
	}
	gs, err := parseGroups(v)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, g := range gs {
		parts = append(parts, fmt.Sprint(g.members))
	}
	return strings.Join(parts, " ")
}

// TestClusterAddDelNode: `keel cluster addnode` makes a fourth node,
// started with --join, a voter of both groups of a 3-node, 2-group
// cluster while a ClusterClient writes; the node receives the data.
// `keel cluster delnode` then removes node 3 (asked through node 3
// itself), which is stopped; the cluster keeps serving and every
// acknowledged write reads back. Rerunning a finished command succeeds.
func TestClusterAddDelNode(t *testing.T) {
	redis.SetLogger(quietRedisLogger{})
	for _, groups := range []int{2, 1} {
		t.Run(fmt.Sprintf("groups=%d", groups), func(t *testing.T) { testClusterAddDelNode(t, groups) })
	}
}

// testClusterAddDelNode runs TestClusterAddDelNode with every node
// hosting groups replica groups (1: a cluster of one group, which the
// commands serve too).
func testClusterAddDelNode(t *testing.T, groups int) {
	ctx := context.Background()
	dir := t.TempDir()
	var peers []cluster.TopoNode
	var lns []stdnet.Listener
	for id := uint64(1); id <= 4; id++ {
		ln, port := freeClusterPort(t)
		lns = append(lns, ln)
		peers = append(peers, cluster.TopoNode{ID: id, Host: "127.0.0.1", Port: port})
	}
	nodes := make([]*memberTestNode, 4)
	t.Cleanup(func() {
		for _, n := range nodes {
			if n != nil {
				n.stop(t)
			}
		}
	})
	for i := range 3 {
		nodes[i] = startMemberNode(t, filepath.Join(dir, strconv.Itoa(i+1)), uint64(i+1), peers[:3], groups, false, lns[i])
	}
	addrs := []string{nodes[0].addr, nodes[1].addr, nodes[2].addr}
	// Every node sees both groups led.
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a, Protocol: 2, DisableIdentity: true})
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if info, _ := c.ClusterInfo(ctx).Result(); strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no cluster_state:ok", a)
			}
		}
		c.Close()
	}

	if groups == 2 {
		// Leadership spreads (group 1 on node 1, group 2 on node 2), so
		// the command has two leaders to go to.
		c := redis.NewClient(&redis.Options{Addr: addrs[0], Protocol: 2, DisableIdentity: true})
		defer c.Close()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			v, err := c.Do(ctx, "CLUSTER", "GROUPS").Result()
			gs, perr := parseGroups(v)
			if err == nil && perr == nil && len(gs) == 2 && gs[0].leader == 1 && gs[1].leader == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("leadership not spread: %v %v", v, err)
			}
		}
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRedirects: 8, DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MinRetryBackoff: 10 * time.Millisecond,
		MaxRetryBackoff: 200 * time.Millisecond, ClusterStateReloadInterval: 500 * time.Millisecond})
	defer cc.Close()
	var (
		mu    sync.Mutex
		acked = map[string]string{}
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k, v := fmt.Sprintf("m%d:%d", w, i), strconv.Itoa(i)
				if err := cc.Set(ctx, k, v, 0).Err(); err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
			}
		}()
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	waitCount := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); count() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("only %d writes acknowledged, want %d", count(), n)
			}
		}
	}
	waitCount(100)

	nodes[3] = startMemberNode(t, filepath.Join(dir, "4"), 4, peers, groups, true, lns[3])
	var out strings.Builder
	add := memberOptions{add: true, node: addrs[1], id: 4, addr: nodes[3].addr}
	if err := changeMembership(ctx, add, &out); err != nil {
		t.Fatalf("addnode: %v\n%s", err, out.String())
	}
	t.Logf("addnode:\n%s", out.String())
	if !strings.Contains(out.String(), "group 1: addnode done") || groups == 2 && !strings.Contains(out.String(), "group 2: addnode done") {
		t.Fatalf("addnode report:\n%s", out.String())
	}
	for _, a := range append(addrs, nodes[3].addr) {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			got := membersOn(t, a)
			if got == strings.Repeat(" [1 2 3 4]", groups)[1:] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: members %s after addnode", a, got)
			}
		}
	}
	waitCount(count() + 200)

	// Node 4 holds both groups' data (READONLY reads of what was
	// acknowledged before this point).
	mu.Lock()
	snapshot := make(map[string]string, len(acked))
	for k, v := range acked {
		snapshot[k] = v
	}
	mu.Unlock()
	c4 := redis.NewClient(&redis.Options{Addr: nodes[3].addr, Protocol: 2, DisableIdentity: true, PoolSize: 1})
	defer c4.Close()
	if err := c4.Do(ctx, "READONLY").Err(); err != nil {
		t.Fatal(err)
	}
	split := cluster.SplitSlots(2)
	perGroup := [2]int{}
	for k, v := range snapshot {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			got, err := c4.Get(ctx, k).Result()
			if err == nil && got == v {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node 4 READONLY GET %s = %q (%v), want %q", k, got, err, v)
			}
		}
		if split[1][0].Contains(cluster.KeySlot([]byte(k))) {
			perGroup[1]++
		} else {
			perGroup[0]++
		}
	}
	if perGroup[0] == 0 || groups == 2 && perGroup[1] == 0 {
		t.Fatalf("keys per group %v: both groups should hold some", perGroup)
	}
	t.Logf("node 4 serves all %d acknowledged keys (%d in slots 0-8191, %d in 8192-16383)", len(snapshot), perGroup[0], perGroup[1])

	// Again: nothing to do, still success.
	out.Reset()
	if err := changeMembership(ctx, add, &out); err != nil || !strings.Contains(out.String(), "done:") {
		t.Fatalf("second addnode: %v\n%s", err, out.String())
	}

	// Remove node 3, asking node 3 itself.
	out.Reset()
	if err := changeMembership(ctx, memberOptions{node: addrs[2], id: 3}, &out); err != nil {
		t.Fatalf("delnode: %v\n%s", err, out.String())
	}
	t.Logf("delnode:\n%s", out.String())
	for _, a := range []string{addrs[0], addrs[1], nodes[3].addr} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			got := membersOn(t, a)
			if got == strings.Repeat(" [1 2 4]", groups)[1:] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: members %s after delnode", a, got)
			}
		}
	}
	nodes[2].stop(t)
	waitCount(count() + 300)
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for k, v := range acked {
		if got, err := cc.Get(ctx, k).Result(); err != nil || got != v {
			t.Fatalf("acknowledged %s=%s, read %q (%v)", k, v, got, err)
		}
	}
	t.Logf("%d acknowledged writes read back; members %s", len(acked), membersOn(t, addrs[0]))
}
