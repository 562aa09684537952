package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	stdnet "net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// keelBin is the keel binary every test runs, built once by TestMain from
// this checkout (go build -o $TMP/keel ./cmd/keel).
var keelBin string

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "keel-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		os.Exit(1)
	}
	keelBin = filepath.Join(tmp, "keel")
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", keelBin, "./cmd/keel")
	build.Dir = filepath.Dir(filepath.Dir(file))
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: go build ./cmd/keel: %v\n%s", err, out)
		os.RemoveAll(tmp)
		os.Exit(1)
	}
	// go-redis logs every failed dial; a kill test makes hundreds.
	redis.SetLogger(quietLogger{})
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

const (
	// busPortOffset is Redis Cluster's (and keel's) distance from a node's
	// client port to its bus port.
	busPortOffset = 10000
	// Ports are picked below Linux's ephemeral range (32768 and up) with
	// their bus ports below it too, so that neither collides with the
	// outgoing connections of tests running alongside.
	portLow, portHigh = 20000, 22700
	// readyTimeout bounds a node's start-up (its "ready" line).
	readyTimeout = 30 * time.Second
	// stopTimeout is how long a node gets to exit after SIGTERM.
	stopTimeout = 15 * time.Second
	// logTailBytes is how much of a node's log a failing test prints.
	logTailBytes = 3000
)

// portsMu keeps two tests of this binary from picking the same ports.
var portsMu sync.Mutex

// freePorts returns n client ports whose bus ports are free as well;
// consecutive asks for base, base+1, ... (keel cluster local's layout).
// A port is free when it can be listened on now: another process may
// still take it before the node does, which then fails its start loudly.
func freePorts(t *testing.T, n int, consecutive bool) []int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	free := func(p int) bool {
		for _, q := range []int{p, p + busPortOffset} {
			ln, err := stdnet.Listen("tcp", "127.0.0.1:"+strconv.Itoa(q))
			if err != nil {
				return false
			}
			ln.Close()
		}
		return true
	}
	const triesMax = 500
	var ports []int
	for try := 0; try < triesMax && len(ports) < n; try++ {
		if consecutive {
			base := portLow + rand.IntN(portHigh-portLow-n)
			ports = ports[:0]
			for p := base; p < base+n && free(p); p++ {
				ports = append(ports, p)
			}
			continue
		}
		if p := portLow + rand.IntN(portHigh-portLow); !slices.Contains(ports, p) && free(p) {
			ports = append(ports, p)
		}
	}
	if len(ports) < n {
		t.Fatalf("found only %d of %d free ports (with bus ports) in %d..%d", len(ports), n, portLow, portHigh)
	}
	return ports
}

// node is one keel server process of a test cluster; it can be killed
// and restarted on the same directory.
type node struct {
	id, port int
	dir, log string // data directory; log file (appended across restarts)
	args     []string
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has exited
}

func (n *node) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

func (n *node) running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// start runs the node and waits for its "ready" line.
func (n *node) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "--- start %s %s\n", keelBin, strings.Join(n.args, " "))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(keelBin, n.args...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %d: %v", n.id, err)
	}
	w.Close()
	n.cmd, n.done = cmd, make(chan struct{})
	ready := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		defer logf.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if !seen && slices.Contains(strings.Fields(sc.Text()), "ready") {
				seen = true
				close(ready)
			}
		}
		_, _ = io.Copy(logf, r)
	}()
	done := n.done
	go func() {
		_ = cmd.Wait()
		<-drained
		close(done)
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatalf("node %d exited before it was ready; log:\n%s", n.id, n.logTail())
	case <-time.After(readyTimeout):
		t.Fatalf("node %d not ready after %s; log:\n%s", n.id, readyTimeout, n.logTail())
	}
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (n *node) kill() {
	if n.running() {
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// stop ends the process with SIGTERM, then SIGKILL after stopTimeout.
func (n *node) stop() {
	if !n.running() {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(stopTimeout):
		n.kill()
	}
}

func (n *node) logTail() string {
	b, _ := os.ReadFile(n.log)
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
	}
	return string(b)
}

// testCluster is a keel cluster of real processes on loopback. Its
// processes are killed when the test ends, whatever the outcome, and a
// failing test prints the end of every node's log.
type testCluster struct {
	t     *testing.T
	nodes []*node
}

func startCluster(t *testing.T, size int, fsync string) *testCluster {
	t.Helper()
	return startClusterArgs(t, size, fsync)
}

// startClusterArgs is startCluster with extra server flags for every node.
func startClusterArgs(t *testing.T, size int, fsync string, extra ...string) *testCluster {
	t.Helper()
	ports := freePorts(t, size, false)
	tmp := t.TempDir()
	peers := make([]string, size)
	for i, p := range ports {
		peers[i] = fmt.Sprintf("%d@127.0.0.1:%d", i+1, p)
	}
	c := newTestCluster(t)
	for i, p := range ports {
		n := &node{id: i + 1, port: p, dir: filepath.Join(tmp, fmt.Sprintf("node-%d", i+1)),
			log: filepath.Join(tmp, fmt.Sprintf("node-%d.log", i+1))}
		n.args = []string{"server", "--bind", "127.0.0.1", "--port", strconv.Itoa(p), "--dir", n.dir,
			"--appendonly", "yes", "--appendfsync", fsync,
			"--node-id", strconv.Itoa(n.id), "--peers", strings.Join(peers, ","), "--cluster-insecure", "yes"}
		n.args = append(n.args, extra...)
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		n.start(t)
	}
	return c
}

// newTestCluster is an empty cluster whose nodes are killed when the test
// ends (their log tails printed if it failed).
func newTestCluster(t *testing.T) *testCluster {
	c := &testCluster{t: t}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.kill()
		}
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("node %d (%s) log tail:\n%s", n.id, n.addr(), n.logTail())
			}
		}
	})
	return c
}

func (c *testCluster) addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.addr()
	}
	return out
}

// nodeClient is a plain connection to one node (no redirects followed).
func nodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
}

// waitOK waits until every running node reports cluster_state:ok, that
// is, knows a leader of its group.
func (c *testCluster) waitOK(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var notOK []string
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			cl := nodeClient(n.addr())
			info, err := cl.ClusterInfo(context.Background()).Result()
			cl.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				notOK = append(notOK, fmt.Sprintf("node %d: %q %v", n.id, firstLine(info), err))
			}
		}
		if len(notOK) == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not ok after %s: %s", timeout, strings.Join(notOK, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// leader is the running node that says it leads; nil when none does.
func (c *testCluster) leader() *node {
	for _, n := range c.nodes {
		if n.running() && leads(n.addr()) {
			return n
		}
	}
	return nil
}

// leads reports whether the node at addr says, in its own CLUSTER NODES
// line, that it is a master: a leader, not a stand-in for a leaderless
// group (flagged fail?).
func leads(addr string) bool {
	cl := nodeClient(addr)
	defer cl.Close()
	text, err := cl.ClusterNodes(context.Background()).Result()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 {
			continue
		}
		flags := strings.Split(f[2], ",")
		if slices.Contains(flags, "myself") && slices.Contains(flags, "master") && !slices.Contains(flags, "fail?") {
			return true
		}
	}
	return false
}
