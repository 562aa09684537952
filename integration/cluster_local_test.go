package integration

import (
	"bufio"
	"context"
	"fmt"
	stdnet "net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestClusterLocal runs `keel cluster local --nodes 3` as a user would,
// waits for its connect hint, uses the cluster through go-redis's
// ClusterClient, kill -9s the leader (it must say so, and the other two
// keep serving), then interrupts it: every node must be stopped.
func TestClusterLocal(t *testing.T) {
	ports := freePorts(t, 3, true)
	base := ports[0]
	dir := filepath.Join(t.TempDir(), "keel-cluster")
	cmd := exec.Command(keelBin, "cluster", "local", "--nodes", "3", "--base-port", strconv.Itoa(base), "--dir", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// output collects every line; wait returns once a line contains want.
	var mu sync.Mutex
	var lines []string
	exited := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-finished:
		default: // SIGTERM stops its nodes too; wait so none outlives the test
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-finished
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("keel cluster local output:\n%s", strings.Join(lines, "\n"))
			mu.Unlock()
		}
	})
	wait := func(want string, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			// Read finished before the lines: once it is closed, every
			// line is in.
			gone := false
			select {
			case <-finished:
				gone = true
			default:
			}
			mu.Lock()
			for _, l := range lines {
				if strings.Contains(l, want) {
					mu.Unlock()
					return
				}
			}
			mu.Unlock()
			if gone {
				t.Fatalf("keel cluster local exited without printing %q", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no output line containing %q after %s", want, timeout)
	}
	wait(fmt.Sprintf("connect with: redis-cli -c -p %d", base), 60*time.Second)
	for i := range 3 {
		// Logs are forwarded with the node's prefix.
		wait(fmt.Sprintf("[node %d :%d]", i+1, base+i), time.Second)
	}

	ctx := context.Background()
	one := nodeClient(fmt.Sprintf("127.0.0.1:%d", base))
	defer one.Close()
	info, err := one.ClusterInfo(ctx).Result()
	if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
		t.Fatalf("CLUSTER INFO: %q, %v", info, err)
	}
	addrs := []string{}
	for i := range 3 {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", base+i))
	}
	// A short reload interval lets go-redis find the new leader if the
	// node killed below leads (README, "A local cluster").
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2, DisableIdentity: true,
		ClusterStateReloadInterval: 500 * time.Millisecond})
	defer cc.Close()
	for i := range 20 { // keys in many slots, all served by the one group
		k := fmt.Sprintf("k%d", i)
		if err := cc.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s through the cluster client: %v", k, err)
		}
		if got, err := cc.Get(ctx, k).Int(); err != nil || got != i {
			t.Fatalf("GET %s = %d, %v; want %d", k, got, err, i)
		}
	}

	// A node that dies is reported, and the other two still form a
	// majority: kill the leader, the harder case for clients.
	victim := 0
	for i := range 3 {
		if leads(addrs[i]) {
			victim = i + 1
		}
	}
	if victim == 0 {
		t.Fatal("no node of keel cluster local says it leads")
	}
	vc := nodeClient(addrs[victim-1])
	pidText, err := vc.Info(ctx, "server").Result()
	vc.Close()
	if err != nil {
		t.Fatal(err)
	}
	pid := infoField(pidText, "process_id")
	if pid <= 0 {
		t.Fatalf("no process_id in INFO server: %q", pidText)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait(fmt.Sprintf("node %d (%s) exited unexpectedly (signal: killed); 2 of 3 nodes still running", victim, addrs[victim-1]), 10*time.Second)
	writeBy := time.Now().Add(15 * time.Second)
	for {
		err := cc.Set(ctx, "after-kill", "v", 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(writeBy) {
			t.Fatalf("no write accepted by the two remaining nodes: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		// A node died during the run, so it exits 1.
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("keel cluster local exited with %v, want exit status 1 (a node died)", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("keel cluster local still running 40s after SIGINT")
	}
	wait("keel cluster local: received interrupt, stopping 2 nodes", time.Second)
	wait("keel cluster local: all nodes stopped", time.Second)
	for i := range 3 {
		if c, err := stdnet.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", base+i), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still accepts connections after keel cluster local exited", base+i)
		}
	}
}

// TestClusterLocalRejectsBadFlags: bad flags get a clear message and
// start nothing.
func TestClusterLocalRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "0"}, "--nodes 0: must be between 1 and 15"},
		{[]string{"--base-port", "60000"}, "must lie in 1..65535"},
		{[]string{"--appendfsync", "sometimes"}, `--appendfsync "sometimes": must be everysec, always or no`},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
		{[]string{"--groups", "0"}, "--groups 0: must be between 1 and 64"},
	} {
		dir := filepath.Join(t.TempDir(), "never-created")
		cmd := exec.Command(keelBin, append([]string{"cluster", "local", "--dir", dir}, tc.args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("keel cluster local %v: %v, output %q; want exit 2 and %q", tc.args, err, out, tc.want)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("keel cluster local %v created %s", tc.args, dir)
		}
	}
}

// infoField reads an integer field of an INFO reply; -1 when absent.
func infoField(info, name string) int {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	return -1
}
