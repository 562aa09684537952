package server

import (
	stdnet "net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ACL changes on a placed cluster (6 nodes, 6 groups of 3): ACL SETUSER
// sent to any node reaches group 1's log (a node outside group 1 answers
// -MOVED to its leader, which redis-cli -c and the cluster clients
// follow), and every node, those outside group 1 included, then lets the
// user in; ACL DELUSER keeps them out everywhere, a node restarted in
// between included.
func TestPlacementACL(t *testing.T) {
	tc := &testCluster{t: t, dir: t.TempDir(), groups: 6, replicas: 3}
	tc.startAll(6)
	tc.waitPlacedTopology(6, 3)
	cc := tc.clusterClient()
	defer cc.Close()
	aclDo := func(args ...any) {
		t.Helper()
		tc.group1Do(3, args...) // node 4: outside group 1 (on 1, 2, 3)
	}
	authEverywhere := func(want bool) {
		t.Helper()
		for i, cs := range tc.srvs {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				c := redis.NewClient(&redis.Options{Addr: cs.addr, MaxRetries: -1})
				err := c.Do(ctx(), "AUTH", "alice", "s3cret").Err()
				c.Close()
				if (err == nil) == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node %d: AUTH alice: %v, want success %v", i+1, err, want)
				}
			}
		}
	}
	aclDo("ACL", "SETUSER", "alice", "on", ">s3cret", "~*", "+@all")
	authEverywhere(true)
	// Every node lists her, from its own replica or from the bus.
	for i, cs := range tc.srvs {
		c := redis.NewClient(&redis.Options{Addr: cs.addr, MaxRetries: -1})
		users, err := c.Do(ctx(), "ACL", "USERS").StringSlice()
		c.Close()
		if err != nil || strings.Join(users, ",") != "alice,default" {
			t.Fatalf("node %d: ACL USERS %v, %v", i+1, users, err)
		}
	}
	// Node 5 (outside group 1) is down while alice is deleted: after its
	// restart it must not let her in with the table it had.
	tc.stop(4)
	aclDo("ACL", "DELUSER", "alice")
	ln, err := stdnet.Listen("tcp", tc.nodes[4].Host+":"+strconv.Itoa(tc.nodes[4].Port))
	if err != nil {
		t.Fatal(err)
	}
	tc.start(4, ln)
	authEverywhere(false)
	// The cluster still takes writes (once the restarted node's groups
	// have their leaders again: TRYAGAIN until then).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := cc.Set(ctx(), "after-acl", "v", 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a write after the ACL changes: %v", err)
		}
	}
}
