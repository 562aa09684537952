package server

import (
	stdnet "net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/cluster"
)

// restart stops node i and starts it again on the same port, from what
// its replicas left on disk.
func (tc *testCluster) restart(i int) {
	tc.t.Helper()
	tc.stop(i)
	addr := tc.nodes[i].Host + ":" + strconv.Itoa(tc.nodes[i].Port)
	var ln stdnet.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = stdnet.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.start(i, ln)
}

// eventually retries fn (which returns "" when satisfied, else what it
// saw) for up to 10 s.
func eventually(t *testing.T, what string, fn func() string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if last = fn(); last == "" {
			return
		}
	}
	t.Fatalf("%s: still %s after 10 s", what, last)
}

// An ACL change made on the leader is in force on every node of the
// cluster, and still is after every node restarts from a snapshot taken
// after it; a change sent to a follower is redirected to the leader, and
// deleting the user disconnects its sessions on every node.
func TestClusterACL(t *testing.T) {
	tc := newTestCluster(t, 3)
	lead := tc.leader()
	f := (lead + 1) % 3
	leaderAddr := tc.addrs()[lead]
	if got := tc.raw(f).do("ACL", "SETUSER", "app", "on", ">apppw", "~app:*", "+@all", "-@dangerous"); got != "-MOVED 0 "+leaderAddr {
		t.Fatalf("ACL SETUSER on a follower: %s, want -MOVED 0 %s", got, leaderAddr)
	}
	if got := tc.raw(lead).do("ACL", "SETUSER", "app", "on", ">apppw", "~app:*", "+@all", "-@dangerous"); got != "+OK" {
		t.Fatalf("ACL SETUSER on the leader: %s", got)
	}
	inForce := func(i int) string {
		rc := tc.raw(i)
		if got := rc.do("AUTH", "app", "apppw"); got != "+OK" {
			return "AUTH: " + got
		}
		if got := rc.do("GET", "other"); got != "-NOPERM No permissions to access a key" {
			return "GET other: " + got
		}
		if got := rc.do("KEYS", "*"); got != "-NOPERM User app has no permissions to run the 'keys' command" {
			return "KEYS: " + got
		}
		return ""
	}
	for i := range 3 {
		eventually(t, "the user on node "+strconv.Itoa(i+1), func() string { return inForce(i) })
	}
	// A snapshot on every node, then restart them all: the table now
	// comes from the snapshot (entries it covers are not replayed).
	for i := range 3 {
		if got := tc.raw(i).do("SAVE"); got != "+OK" {
			t.Fatalf("SAVE on node %d: %s", i+1, got)
		}
	}
	for i := range 3 {
		tc.restart(i)
	}
	tc.leader()
	for i := range 3 {
		var rec cluster.RecoveryStats
		var table string
		tc.srvs[i].srv.onReplica(0, func(r *cluster.Replica) { rec, table = r.Recovery(), string(r.ACLTable()) })
		if rec.Snapshot == "" || !strings.Contains(table, "user app on") {
			t.Fatalf("node %d restarted with snapshot %q and table %q", i+1, rec.Snapshot, table)
		}
		eventually(t, "the user on restarted node "+strconv.Itoa(i+1), func() string { return inForce(i) })
	}
	// Deleting the user closes its connections everywhere.
	lead = tc.leader()
	conns := make([]*rawConn, 3)
	for i := range 3 {
		conns[i] = tc.raw(i)
		if got := conns[i].do("AUTH", "app", "apppw"); got != "+OK" {
			t.Fatalf("node %d: AUTH %s", i+1, got)
		}
	}
	if got := tc.raw(lead).do("ACL", "DELUSER", "app"); got != ":1" {
		t.Fatalf("ACL DELUSER: %s", got)
	}
	for i := range 3 {
		if !conns[i].closed() {
			t.Errorf("node %d kept the deleted user's connection", i+1)
		}
		if got := tc.raw(i).do("AUTH", "app", "apppw"); got != "-WRONGPASS invalid username-password pair or user is disabled." {
			t.Errorf("node %d: AUTH as the deleted user: %s", i+1, got)
		}
	}
}

// With several replica groups the table lives in group 1: a node that
// does not lead it redirects an ACL change to the node that does, with a
// slot group 1 serves, and go-redis's ClusterClient follows.
func TestGroupsACLHome(t *testing.T) {
	tc := newTestClusterGroups(t, 3, 2)
	leaders := tc.waitGroupLeaders(true)
	if leaders[0] == leaders[1] {
		t.Skip("one node leads both groups: no node to redirect from")
	}
	other := leaders[1]
	got := tc.raw(other).do("ACL", "SETUSER", "app", "on", "nopass", "~app:*", "+@all")
	if want := "-MOVED 0 " + tc.addrs()[leaders[0]]; got != want {
		t.Fatalf("ACL SETUSER on group 2's leader: %s, want %s", got, want)
	}
	cc := tc.clusterClient()
	if err := cc.Do(ctx(), "ACL", "SETUSER", "app", "on", "nopass", "~app:*", "+@all").Err(); err != nil {
		t.Fatalf("ClusterClient ACL SETUSER: %v", err)
	}
	for i := range 3 {
		eventually(t, "the user on node "+strconv.Itoa(i+1), func() string {
			rc := tc.raw(i)
			rc.do("AUTH", "app", "x")
			if got := rc.do("GET", "other"); got != "-NOPERM No permissions to access a key" {
				return got
			}
			return ""
		})
	}
}
