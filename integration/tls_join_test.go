package integration

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A cluster whose bus is mutual TLS grows as the README shows: `keel
// cluster certs --id 4` signs node 4's certificate with the cluster's CA,
// the node starts with --join yes and the TLS flags, `keel cluster
// addnode` makes it a voter, and it receives the data written before it
// came (through the TLS bus: there is no other).
func TestJoinOverTLSBus(t *testing.T) {
	tmp := t.TempDir()
	tlsDir := filepath.Join(tmp, "tls")
	certs := func(args ...string) {
		t.Helper()
		out, err := exec.Command(keelBin, append([]string{"cluster", "certs", "--dir", tlsDir}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("keel cluster certs %v: %v\n%s", args, err, out)
		}
	}
	certs("--nodes", "3")
	ports := freePorts(t, 4, false)
	peers := make([]string, 4)
	for i, p := range ports {
		peers[i] = fmt.Sprintf("%d@127.0.0.1:%d", i+1, p)
	}
	c := newTestCluster(t)
	newNode := func(id int, join bool) *node {
		n := &node{id: id, port: ports[id-1], dir: filepath.Join(tmp, fmt.Sprintf("node-%d", id)),
			log: filepath.Join(tmp, fmt.Sprintf("node-%d.log", id))}
		ps := peers[:3]
		if join {
			ps = peers
		}
		n.args = []string{"server", "--bind", "127.0.0.1", "--port", strconv.Itoa(n.port), "--dir", n.dir,
			"--node-id", strconv.Itoa(id), "--peers", strings.Join(ps, ","),
			"--tls-cluster", "yes", "--tls-ca-cert-file", filepath.Join(tlsDir, "ca.crt"),
			"--tls-cert-file", filepath.Join(tlsDir, fmt.Sprintf("node-%d.crt", id)),
			"--tls-key-file", filepath.Join(tlsDir, fmt.Sprintf("node-%d.key", id))}
		if join {
			n.args = append(n.args, "--join", "yes")
		}
		c.nodes = append(c.nodes, n)
		return n
	}
	for id := 1; id <= 3; id++ {
		newNode(id, false)
	}
	for _, n := range c.nodes {
		n.start(t)
	}
	c.waitOK(30 * time.Second)
	ctx := context.Background()
	lead := c.leader()
	if lead == nil {
		t.Fatal("no leader")
	}
	lc := nodeClient(lead.addr())
	defer lc.Close()
	const keys = 200
	for i := range keys {
		if err := lc.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatalf("SET k%d at the leader: %v", i, err)
		}
	}

	certs("--id", "4")
	n4 := newNode(4, true)
	n4.start(t)
	out, err := exec.Command(keelBin, "cluster", "addnode", "--node", lead.addr(), "--id", "4", "--addr", n4.addr()).CombinedOutput()
	if err != nil {
		t.Fatalf("keel cluster addnode: %v\n%s", err, out)
	}
	c4 := nodeClient(n4.addr())
	defer c4.Close()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		// READONLY reads the joiner's own replica.
		n, err := func() (int64, error) {
			conn := c4.Conn()
			defer conn.Close()
			if err := conn.ReadOnly(ctx).Err(); err != nil {
				return 0, err
			}
			return conn.DBSize(ctx).Result()
		}()
		if err == nil && n == keys {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 4 holds %d keys (%v) 60 s after joining, want %d", n, err, keys)
		}
	}
	if v, err := lc.ClusterNodes(ctx).Result(); err != nil || !strings.Contains(v, fmt.Sprintf(":%d@", n4.port)) {
		t.Fatalf("CLUSTER NODES at the leader does not list node 4: %q %v", v, err)
	}
}
