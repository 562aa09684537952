package server

import (
	"errors"
	"fmt"
	stdnet "net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-db/keel/resp"

	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/node"
	"github.com/keel-db/keel/seam"
)

// testCluster is a replicated group of in-process servers on loopback,
// each on a free client port whose port+10000 was free too.
type testCluster struct {
	t     *testing.T
	nodes []cluster.TopoNode
	dir   string
	srvs  []*clusterServer // nil once stopped
	quiet atomic.Bool      // the test is over: stop logging

	joining bool // start a node with --join
	groups  int  // replica groups per node (groups_test.go); 0 or 1: one
	// replicas is --replicas (placement_test.go); 0: every node hosts
	// every group.
	replicas int
	// fs, when set, is the file system of node i's replica of group g
	// (disk.OS() otherwise). With several groups each replica is reopened
	// from disk after a disk failure, as keel server does.
	fs func(i int, g uint64) disk.FS
	// fsync is every replica's appendfsync (everysec when zero).
	fsync cluster.FsyncPolicy
	// nodeDeadAfter is --node-dead-after (moves_test.go).
	nodeDeadAfter time.Duration
	// groupsMax is --groups-max (split_test.go); 0: groups.
	groupsMax int
}

type clusterServer struct {
	srv  *Server
	addr string
	done chan error
}

func newTestCluster(t *testing.T, n int) *testCluster {
	return newTestClusterGroups(t, n, 1)
}

// newTestClusterGroups is newTestCluster with every node hosting groups
// replica groups.
func newTestClusterGroups(t *testing.T, n, groups int) *testCluster {
	tc := &testCluster{t: t, dir: t.TempDir(), groups: groups}
	tc.startAll(n)
	return tc
}

// startAll starts n nodes as configured in tc.
func (tc *testCluster) startAll(n int) {
	t := tc.t
	t.Cleanup(func() { tc.quiet.Store(true) }) // runs last
	var lns []stdnet.Listener
	for len(lns) < n {
		ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*stdnet.TCPAddr).Port
		if port+10000 > 65535 {
			ln.Close()
			continue
		}
		peer, err := stdnet.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			ln.Close()
			continue
		}
		peer.Close()
		lns = append(lns, ln)
		tc.nodes = append(tc.nodes, cluster.TopoNode{ID: uint64(len(lns)), Host: "127.0.0.1", Port: port})
	}
	tc.srvs = make([]*clusterServer, n)
	for i, ln := range lns {
		tc.start(i, ln)
	}
	t.Cleanup(func() {
		for i := range tc.srvs {
			tc.stop(i)
		}
	})
}

func (tc *testCluster) logf(format string, args ...any) {
	if !tc.quiet.Load() {
		tc.t.Logf(format, args...)
	}
}

func (tc *testCluster) start(i int, ln stdnet.Listener) {
	t := tc.t
	t.Helper()
	dir := filepath.Join(tc.dir, strconv.Itoa(i+1))
	groups := max(tc.groups, 1)
	cfg := Config{Port: tc.nodes[i].Port, Dir: dir, AppendOnly: true, Logf: tc.logf,
		NodeID: tc.nodes[i].ID, Peers: tc.nodes, Groups: groups, MaxGroups: tc.groupsMax, Replicas: tc.replicas, NodeDeadAfter: tc.nodeDeadAfter, Join: tc.joining, PeerBind: "127.0.0.1", BusInsecure: true,
		ReplicaOptions: func(g uint64) cluster.Options {
			fs := disk.OS()
			if tc.fs != nil {
				fs = tc.fs(i, g)
			}
			return cluster.Options{FS: fs, Dir: node.GroupDir(dir, groups, g), AppendOnly: true, Fsync: tc.fsync, Rand: seam.NewRand(), BackgroundSync: true}
		}}
	srv, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs := &clusterServer{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { cs.done <- srv.Serve(ln) }()
	tc.srvs[i] = cs
}

func (tc *testCluster) stop(i int) {
	cs := tc.srvs[i]
	if cs == nil {
		return
	}
	tc.srvs[i] = nil
	cs.srv.Shutdown()
	if err := <-cs.done; err != nil {
		tc.t.Errorf("node %d: Serve: %v", i+1, err)
	}
}

func (tc *testCluster) addrs() []string {
	var out []string
	for _, n := range tc.nodes {
		out = append(out, n.Host+":"+strconv.Itoa(n.Port))
	}
	return out
}

func (tc *testCluster) raw(i int) *rawConn {
	return (&testServer{addr: tc.srvs[i].addr}).raw(tc.t)
}

// leader waits until every running node knows the same leader and
// returns its index.
func (tc *testCluster) leader() int {
	tc.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		lead, agreed := -1, true
		for i, cs := range tc.srvs {
			if cs == nil {
				continue
			}
			var l uint64
			cs.srv.onReplica(0, func(r *cluster.Replica) { l = r.Leader() })
			if l == 0 || tc.srvs[l-1] == nil || lead >= 0 && lead != int(l-1) {
				agreed = false
				break
			}
			lead = int(l - 1)
			_ = i
		}
		if agreed && lead >= 0 {
			return lead
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.t.Fatal("no leader that every node knows")
	return -1
}

// clusterClient is a go-redis ClusterClient over the group. A dead
// master answers nothing, so the only way go-redis learns of its
// successor is by reloading CLUSTER SLOTS, which it does on a -MOVED or
// once the map is ClusterStateReloadInterval old (60 s by default): as
// against Redis Cluster, a client that must ride out failovers quickly
// sets that low.
func (tc *testCluster) clusterClient() *redis.ClusterClient {
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: tc.addrs(), MaxRedirects: 8, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		MinRetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 200 * time.Millisecond,
		ClusterStateReloadInterval: 500 * time.Millisecond,
	})
	tc.t.Cleanup(func() { c.Close() })
	return c
}

// TestClusterRouting: a three-node group speaks Redis Cluster: go-redis's
// ClusterClient reads and writes through it, cross-slot requests are
// refused, a follower redirects (or serves READONLY reads), and the
// CLUSTER replies describe it.
func TestClusterRouting(t *testing.T) {
	tc := newTestCluster(t, 3)
	lead := tc.leader()
	follower := (lead + 1) % 3
	leadAddr := tc.addrs()[lead]

	cc := tc.clusterClient()
	if err := cc.Set(ctx(), "foo", "bar", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := cc.Get(ctx(), "foo").Result(); err != nil || v != "bar" {
		t.Fatalf("GET foo = %q, %v", v, err)
	}
	for i := 1; i <= 3; i++ {
		if n, err := cc.Incr(ctx(), "{user1}:visits").Result(); err != nil || n != int64(i) {
			t.Fatalf("INCR = %d, %v; want %d", n, err, i)
		}
	}
	if err := cc.MSet(ctx(), "{user1}:name", "ann", "{user1}:city", "oslo").Err(); err != nil {
		t.Fatal(err)
	}
	if vs, err := cc.MGet(ctx(), "{user1}:name", "{user1}:city", "{user1}:visits", "{user1}:none").Result(); err != nil ||
		fmt.Sprint(vs) != "[ann oslo 3 <nil>]" {
		t.Fatalf("MGET = %v, %v", vs, err)
	}
	if err := cc.MGet(ctx(), "a", "b").Err(); err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT ") {
		t.Fatalf("cross-slot MGET: %v, want CROSSSLOT", err)
	}
	// A ClusterClient that reads from replicas sends them READONLY.
	ro := redis.NewClusterClient(&redis.ClusterOptions{Addrs: tc.addrs(), ReadOnly: true, MaxRedirects: 8})
	defer ro.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		v, err := ro.Get(ctx(), "{user1}:name").Result()
		if err == nil && v == "ann" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ReadOnly ClusterClient GET = %q, %v", v, err)
		}
	}

	t.Run("crossslot", func(t *testing.T) {
		rc := tc.raw(lead)
		for _, c := range [][]string{{"MSET", "a", "1", "b", "2"}, {"DEL", "a", "b"}, {"MGET", "a", "b"}} {
			if got := rc.do(c...); got != "-"+cluster.CrossSlotMsg {
				t.Fatalf("%v: %s", c, got)
			}
		}
		if got := rc.do("EXISTS", "a"); got != ":0" {
			t.Fatalf("a refused MSET changed a: EXISTS %s", got)
		}
		// A block whose commands each hash to one slot, but not the same.
		rc.do("MULTI")
		rc.do("SET", "a", "1")
		rc.do("SET", "b", "2")
		if got := rc.do("EXEC"); got != "-"+cluster.CrossSlotMsg {
			t.Fatalf("EXEC across slots: %s", got)
		}
		// A command that spans slots by itself flags the block.
		rc.do("MULTI")
		if got := rc.do("MSET", "a", "1", "b", "2"); got != "-"+cluster.CrossSlotMsg {
			t.Fatalf("queued MSET: %s", got)
		}
		if got := rc.do("EXEC"); got != "-EXECABORT Transaction discarded because of previous errors." {
			t.Fatalf("EXEC after CROSSSLOT: %s", got)
		}
		rc.do("MULTI")
		rc.do("SET", "{t}a", "1")
		rc.do("INCR", "{t}b")
		if got := rc.do("EXEC"); got != "*[+OK :1]" {
			t.Fatalf("one-slot EXEC: %s", got)
		}
		if got := rc.do("WATCH", "a", "b"); got != "-"+cluster.CrossSlotMsg {
			t.Fatalf("WATCH a b: %s", got)
		}
		if got := rc.do("EXISTS", "a", "b"); got != "-"+cluster.CrossSlotMsg {
			t.Fatalf("EXISTS a b: %s", got)
		}
	})

	t.Run("follower", func(t *testing.T) {
		rc := tc.raw(follower)
		slot := strconv.Itoa(cluster.KeySlot([]byte("foo")))
		if got := rc.do("GET", "foo"); got != "-MOVED "+slot+" "+leadAddr {
			t.Fatalf("GET on a follower: %s", got)
		}
		if got := rc.do("SET", "foo", "x"); got != "-MOVED "+slot+" "+leadAddr {
			t.Fatalf("SET on a follower: %s", got)
		}
		if got := rc.do("FLUSHALL"); got != "-READONLY You can't write against a read only replica." {
			t.Fatalf("FLUSHALL on a follower: %s", got)
		}
		if got := rc.do("MGET", "a", "b"); got != "-"+cluster.CrossSlotMsg {
			t.Fatalf("cross-slot MGET on a follower: %s", got)
		}
		if got := rc.do("READONLY"); got != "+OK" {
			t.Fatal(got)
		}
		// The follower serves once it has applied what is committed.
		var got string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if got = rc.do("GET", "foo"); got == "$bar" {
				break
			}
		}
		if got != "$bar" {
			t.Fatalf("READONLY GET on a follower: %s", got)
		}
		if got := rc.do("MGET", "{user1}:name", "{user1}:visits"); got != "*[$ann $3]" {
			t.Fatalf("READONLY MGET: %s", got)
		}
		if got := rc.do("SET", "foo", "x"); !strings.HasPrefix(got, "-MOVED ") {
			t.Fatalf("READONLY does not allow writes: %s", got)
		}
		if got := rc.do("RESET"); got != "+RESET" {
			t.Fatal(got)
		}
		if got := rc.do("GET", "foo"); !strings.HasPrefix(got, "-MOVED ") {
			t.Fatalf("GET after RESET: %s", got)
		}
		rc.do("READONLY")
		if got := rc.do("READWRITE"); got != "+OK" {
			t.Fatal(got)
		}
		if got := rc.do("GET", "foo"); !strings.HasPrefix(got, "-MOVED ") {
			t.Fatalf("GET after READWRITE: %s", got)
		}
		if got := rc.do("ASKING"); got != "+OK" {
			t.Fatal(got)
		}
		if got := rc.do("CONFIG", "GET", "cluster-enabled"); got != "*[$cluster-enabled $yes]" {
			t.Fatal(got)
		}
		info := rc.do("INFO", "replication", "cluster")
		for _, want := range []string{"role:slave", "master_port:" + strconv.Itoa(tc.nodes[lead].Port), "master_link_status:up",
			"raft_role:follower", "raft_leader:" + strconv.Itoa(lead+1), "cluster_enabled:1"} {
			if !strings.Contains(info, want+"\r\n") {
				t.Fatalf("INFO lacks %q:\n%s", want, info)
			}
		}
	})

	t.Run("cluster commands", func(t *testing.T) {
		for i := range tc.srvs {
			rc := tc.raw(i)
			name := func(j int) string { return cluster.NodeName(uint64(j + 1)) }
			if got := rc.do("CLUSTER", "MYID"); got != "$"+name(i) {
				t.Fatalf("node %d: MYID %s", i+1, got)
			}
			if got := rc.do("CLUSTER", "KEYSLOT", "foo"); got != ":12182" {
				t.Fatalf("KEYSLOT foo: %s", got)
			}
			if got := rc.do("CLUSTER", "KEYSLOT", "{user1}:name"); got != ":"+strconv.Itoa(cluster.KeySlot([]byte("user1"))) {
				t.Fatalf("KEYSLOT with a tag: %s", got)
			}
			// Master (the leader) first, then the followers in id order.
			want := "*[*[:0 :16383"
			order := []int{lead}
			for j := range tc.nodes {
				if j != lead {
					order = append(order, j)
				}
			}
			for _, j := range order {
				want += fmt.Sprintf(" *[$127.0.0.1 :%d $%s *[]]", tc.nodes[j].Port, name(j))
			}
			want += "]]"
			if got := rc.do("CLUSTER", "SLOTS"); got != want {
				t.Fatalf("node %d: CLUSTER SLOTS\n got %s\nwant %s", i+1, got, want)
			}
			info := rc.do("CLUSTER", "INFO")
			for _, w := range []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:3", "cluster_size:1"} {
				if !strings.Contains(info, w+"\r\n") {
					t.Fatalf("CLUSTER INFO lacks %q: %s", w, info)
				}
			}
			nodes := strings.Split(strings.TrimSuffix(strings.TrimPrefix(rc.do("CLUSTER", "NODES"), "$"), "\n"), "\n")
			if len(nodes) != 3 {
				t.Fatalf("CLUSTER NODES: %q", nodes)
			}
			for j, line := range nodes {
				f := strings.Fields(line)
				if len(f) < 8 || f[0] != name(j) || f[1] != fmt.Sprintf("127.0.0.1:%d@%d", tc.nodes[j].Port, tc.nodes[j].Port+10000) {
					t.Fatalf("CLUSTER NODES line %d: %q", j, line)
				}
				role := f[2]
				if j == i {
					if !strings.HasPrefix(role, "myself,") {
						t.Fatalf("line %d of node %d lacks myself: %q", j, i+1, line)
					}
					role = strings.TrimPrefix(role, "myself,")
				}
				switch {
				case j == lead && (role != "master" || f[3] != "-" || len(f) != 9 || f[8] != "0-16383"):
					t.Fatalf("leader's line: %q", line)
				case j != lead && (role != "slave" || f[3] != name(lead)):
					t.Fatalf("follower's line: %q", line)
				}
			}
		}
		shards, err := tc.clusterClient().ClusterShards(ctx()).Result()
		if err != nil || len(shards) != 1 || len(shards[0].Nodes) != 3 || shards[0].Nodes[0].Role != "master" ||
			shards[0].Nodes[0].Port != int64(tc.nodes[lead].Port) || fmt.Sprint(shards[0].Slots) != "[{0 16383}]" {
			t.Fatalf("CLUSTER SHARDS: %+v, %v", shards, err)
		}
		rc := tc.raw(lead)
		slot := strconv.Itoa(cluster.KeySlot([]byte("user1")))
		if got := rc.do("COMMAND", "DOCS", "cluster"); !strings.Contains(got, "$cluster|slots") || !strings.Contains(got, "$cluster|getkeysinslot") {
			t.Fatalf("COMMAND DOCS CLUSTER: %s", got)
		}
		if got := rc.do("COMMAND", "INFO", "readonly"); !strings.HasPrefix(got, "*[*[$readonly :1 ") {
			t.Fatalf("COMMAND INFO READONLY: %s", got)
		}
		if got := rc.do("CLUSTER", "COUNTKEYSINSLOT", slot); got != ":3" {
			t.Fatalf("COUNTKEYSINSLOT: %s", got)
		}
		if got := rc.do("CLUSTER", "GETKEYSINSLOT", slot, "2"); got != "*[${user1}:city ${user1}:name]" {
			t.Fatalf("GETKEYSINSLOT: %s", got)
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"CLUSTER", "COUNTKEYSINSLOT", "16384"}, "-ERR Invalid slot"},
			{[]string{"CLUSTER", "GETKEYSINSLOT", "1", "-1"}, "-ERR Invalid slot or number of keys"},
			{[]string{"CLUSTER", "GETKEYSINSLOT", "x", "1"}, "-ERR value is not an integer or out of range"},
			{[]string{"CLUSTER", "KEYSLOT"}, "-ERR wrong number of arguments for 'cluster|keyslot' command"},
			{[]string{"CLUSTER", "BOGUS"}, "-ERR unknown subcommand 'BOGUS'. Try CLUSTER HELP."},
		} {
			if got := rc.do(c.args...); got != c.want {
				t.Fatalf("%v: %s, want %s", c.args, got, c.want)
			}
		}
	})
}

// TestClusterFailover: the leader stops while a ClusterClient writes; the
// others elect a new one, writes go on, and every acknowledged write is
// readable afterwards.
func TestClusterFailover(t *testing.T) {
	tc := newTestCluster(t, 3)
	lead := tc.leader()
	cc := tc.clusterClient()

	var (
		mu    sync.Mutex
		acked = map[string]string{}
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		after atomic.Int64 // acknowledgements since the leader stopped
		down  atomic.Bool
	)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k, v := fmt.Sprintf("w%d:%d", w, i), strconv.Itoa(i)
				err := cc.Set(ctx(), k, v, 0).Err()
				if err != nil {
					// Unknown outcome (leader lost, connection cut): not
					// acknowledged, so not checked.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
				if down.Load() {
					after.Add(1)
				}
			}
		}()
	}
	waitAcks := func(n int) {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= n {
				return
			}
		}
		t.Fatalf("fewer than %d writes acknowledged", n)
	}
	waitAcks(50)

	stopped := time.Now()
	down.Store(true)
	tc.stop(lead)
	for after.Load() < 50 {
		if time.Since(stopped) > 10*time.Second {
			for i, cs := range tc.srvs {
				if cs == nil {
					continue
				}
				var g cluster.GroupStats
				cs.srv.onReplica(0, func(r *cluster.Replica) { g = r.GroupStats() })
				t.Logf("node %d: %+v; SET: %s", i+1, g, tc.raw(i).do("SET", "probe", "1"))
			}
			t.Fatalf("only %d writes acknowledged in 10 s after the leader stopped", after.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("writes resumed: 50 acknowledged %v after the leader stopped", time.Since(stopped).Round(time.Millisecond))
	close(stop)
	wg.Wait()

	newLead := tc.leader()
	if newLead == lead {
		t.Fatal("the stopped node still leads")
	}
	mu.Lock()
	defer mu.Unlock()
	for k, v := range acked {
		got, err := cc.Get(ctx(), k).Result()
		if errors.Is(err, redis.Nil) || err == nil && got != v {
			t.Fatalf("acknowledged %s=%s, read %q (%v)", k, v, got, err)
		}
		if err != nil {
			t.Fatalf("GET %s: %v", k, err)
		}
	}
	t.Logf("%d acknowledged writes all readable from the new leader (node %d)", len(acked), newLead+1)
}

// Without --peers the Redis Cluster commands answer as a Redis without
// cluster-enabled does.
func TestClusterDisabled(t *testing.T) {
	rc := startServer(t, Config{}).raw(t)
	for _, c := range [][]string{{"CLUSTER", "INFO"}, {"CLUSTER", "SLOTS"}, {"READONLY"}, {"READWRITE"}, {"ASKING"}} {
		if got := rc.do(c...); got != "-ERR This instance has cluster support disabled" {
			t.Fatalf("%v: %s", c, got)
		}
	}
	if got := rc.do("CONFIG", "GET", "cluster-enabled"); got != "*[$cluster-enabled $no]" {
		t.Fatal(got)
	}
	if got := rc.do("INFO", "cluster"); !strings.Contains(got, "cluster_enabled:0\r\n") {
		t.Fatal(got)
	}
	// Keys in different slots are fine on a single node.
	if got := rc.do("MSET", "a", "1", "b", "2"); got != "+OK" {
		t.Fatal(got)
	}
}

func TestParsePeers(t *testing.T) {
	nodes, err := node.ParsePeers(" 2@127.0.0.1:7002, 1@127.0.0.1:7001,3@[::1]:7003")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(nodes) != "[{1 127.0.0.1 7001} {2 127.0.0.1 7002} {3 ::1 7003}]" {
		t.Fatalf("%v", nodes)
	}
	for _, bad := range []string{"", "1@127.0.0.1", "0@127.0.0.1:7001", "x@h:1", "1@h:60000", "1@h:1,1@h:2", "1@h:1,2@h:1", "127.0.0.1:7001"} {
		if _, err := node.ParsePeers(bad); err == nil {
			t.Errorf("ParsePeers(%q) accepted", bad)
		}
	}
	if _, err := Open(Config{NodeID: 4, Peers: nodes, ReplicaOptions: func(uint64) cluster.Options { return cluster.Options{} }}); err == nil {
		t.Fatal("node 4 accepted though not among the peers")
	}
	if _, err := Open(Config{NodeID: 1, Peers: nodes, BusInsecure: true, ReplicaOptions: func(uint64) cluster.Options { return cluster.Options{} }}); err == nil || !strings.Contains(err.Error(), "appendonly yes") {
		t.Fatalf("appendonly no: %v", err)
	}
}

// A write waiting for a commit that cannot come (both followers gone)
// does not hold up the leader's shutdown: the waiting connection gives up
// and is closed without a reply.
func TestClusterShutdownWhileWaiting(t *testing.T) {
	tc := newTestCluster(t, 3)
	lead := tc.leader()
	rc := tc.raw(lead)
	for i := range tc.srvs {
		if i != lead {
			tc.stop(i)
		}
	}
	w := resp.NewWriter()
	w.WriteArray(3)
	for _, a := range []string{"SET", "k", "v"} {
		w.WriteBulkString(a)
	}
	rc.send(string(w.Bytes()))
	time.Sleep(100 * time.Millisecond) // let it reach the replica
	stopped := make(chan struct{})
	go func() {
		tc.stop(lead)
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the leader's shutdown hangs on a write waiting for its commit")
	}
	rc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if s, err := readReply(rc.br); err == nil && s != "-"+cluster.ErrMsgLeaderLost {
		t.Fatalf("the waiting write was answered %q", s)
	}
}

// TestClusterMembership: a fourth server started with --join is added by
// CLUSTER ADDNODE at the leader, receives the data, appears in every
// node's CLUSTER NODES, and leaves again with CLUSTER DELNODE.
func TestClusterMembership(t *testing.T) {
	tc := newTestCluster(t, 3)
	lead := tc.leader()
	rc := tc.raw(lead)
	for i := 0; i < 20; i++ {
		if got := rc.do("SET", "k"+strconv.Itoa(i), "v"+strconv.Itoa(i)); got != "+OK" {
			t.Fatalf("SET: %q", got)
		}
	}
	// A fourth node, joining.
	var ln stdnet.Listener
	var port int
	for ln == nil {
		l, err := stdnet.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = l.Addr().(*stdnet.TCPAddr).Port
		peer, err := stdnet.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if port+10000 > 65535 || err != nil {
			l.Close()
			continue
		}
		peer.Close()
		ln = l
	}
	tc.nodes = append(tc.nodes, cluster.TopoNode{ID: 4, Host: "127.0.0.1", Port: port})
	tc.srvs = append(tc.srvs, nil)
	tc.joining = true
	tc.start(3, ln)
	tc.joining = false
	addr := "127.0.0.1:" + strconv.Itoa(port)

	follower := (lead + 1) % 3
	if got := tc.raw(follower).do("CLUSTER", "ADDNODE", "4", addr); !strings.HasPrefix(got, "-READONLY") {
		t.Fatalf("ADDNODE at a follower: %q", got)
	}
	if got := rc.do("CLUSTER", "ADDNODE", "4", "nonsense"); !strings.HasPrefix(got, "-ERR invalid node address") {
		t.Fatalf("ADDNODE with a bad address: %q", got)
	}
	if got := rc.do("CLUSTER", "ADDNODE", "4", addr); got != "+OK" {
		t.Fatalf("ADDNODE: %q", got)
	}
	if got := rc.do("SET", "after", "add"); got != "+OK" {
		t.Fatalf("SET after ADDNODE: %q", got)
	}
	// The newcomer catches up and every node lists it.
	r4 := tc.raw(3)
	r4.do("READONLY")
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := r4.do("GET", "after")
		if got == "$add" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 4 never caught up: GET after = %q", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := r4.do("GET", "k7"); got != "$v7" {
		t.Fatalf("node 4 GET k7 = %q", got)
	}
	for i := 0; i < 4; i++ {
		nodes := tc.raw(i).do("CLUSTER", "NODES")
		if !strings.Contains(nodes, addr+"@"+strconv.Itoa(port+10000)) {
			t.Fatalf("node %d's CLUSTER NODES lacks node 4:\n%s", i+1, nodes)
		}
	}
	// Four voters: losing one still leaves a majority of three.
	if got := rc.do("CLUSTER", "DELNODE", "4"); got != "+OK" {
		t.Fatalf("DELNODE: %q", got)
	}
	if got := rc.do("CLUSTER", "DELNODE", "4"); !strings.Contains(got, "not a member") {
		t.Fatalf("second DELNODE: %q", got)
	}
	if nodes := rc.do("CLUSTER", "NODES"); strings.Contains(nodes, addr) {
		t.Fatalf("CLUSTER NODES still lists node 4:\n%s", nodes)
	}
	if got := rc.do("SET", "after", "del"); got != "+OK" {
		t.Fatalf("SET after DELNODE: %q", got)
	}
}

// TestClusterNodesFlagsADeadFollower: once the leader has not heard from a
// follower for an election timeout, CLUSTER NODES flags it fail and
// CLUSTER SLOTS stops offering it as a replica; the other follower, which
// Raft never has talk to its peer, flags it too (peer pings, liveness.go).
func TestClusterNodesFlagsADeadFollower(t *testing.T) {
	tc := newTestCluster(t, 3)
	lead := tc.leader()
	f := (lead + 1) % 3
	rc := tc.raw(lead)
	if nodes := rc.do("CLUSTER", "NODES"); strings.Contains(nodes, "fail") {
		t.Fatalf("a healthy cluster has a failed node:\n%s", nodes)
	}
	port := strconv.Itoa(tc.nodes[f].Port)
	if slots := rc.do("CLUSTER", "SLOTS"); !strings.Contains(slots, port) {
		t.Fatalf("CLUSTER SLOTS does not list follower %d (port %s):\n%s", f+1, port, slots)
	}
	other := 3 - lead - f
	oc := tc.raw(other)
	if nodes := oc.do("CLUSTER", "NODES"); strings.Contains(nodes, "fail") {
		t.Fatalf("a healthy cluster has a failed node on the other follower:\n%s", nodes)
	}
	tc.stop(f)
	for _, c := range []struct {
		who string
		rc  *rawConn
	}{{"the leader", rc}, {"the other follower", oc}} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			nodes := c.rc.do("CLUSTER", "NODES")
			if strings.Contains(nodes, ":"+port+"@") && strings.Contains(nodes, "slave,fail") && strings.Contains(nodes, "disconnected") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d stopped 10 s ago, NODES on %s still says:\n%s", f+1, c.who, nodes)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if slots := rc.do("CLUSTER", "SLOTS"); strings.Contains(slots, port) {
		t.Fatalf("CLUSTER SLOTS still offers the dead node:\n%s", slots)
	}
}
