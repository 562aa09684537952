package cluster

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestSnapshotStreamRealProcesses is the real-process check of streamed
// snapshots (docs/cluster.md, "Snapshots to followers"), outside .ci/run:
// three keel server processes, one follower stopped while
// KEEL_SNAPSTREAM_MB megabytes of 200-byte SETs are written (so the leader
// compacts its log many times past it), then restarted. It must catch up
// from a snapshot several times the transport's 64 MiB frame, and the
// leader must never drop an oversized message. It reports the catch-up
// time and the leader's resident memory while it sends.
//
//	KEEL_SNAPSTREAM_MB=300 go test -run TestSnapshotStreamRealProcesses -v -timeout 30m ./cluster
func TestSnapshotStreamRealProcesses(t *testing.T) {
	mb, _ := strconv.Atoi(os.Getenv("KEEL_SNAPSTREAM_MB"))
	if testing.Short() || mb <= 0 {
		t.Skip("set KEEL_SNAPSTREAM_MB (e.g. 300) to run three keel servers and stream a snapshot that large")
	}
	const valBytes = 200
	keys := mb << 20 / valBytes
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "keel")
	build := exec.Command("go", "build", "-o", bin, "./cmd/keel")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build keel: %v\n%s", err, out)
	}
	ports := clusterPorts(t, 3)
	var peers []string
	for i, p := range ports {
		peers = append(peers, fmt.Sprintf("%d@127.0.0.1:%d", i+1, p))
	}
	procs := make([]*keelProc, 3)
	for i := range procs {
		procs[i] = &keelProc{t: t, bin: bin, id: i + 1, port: ports[i], dir: filepath.Join(tmp, fmt.Sprintf("n%d", i+1)),
			log: filepath.Join(tmp, fmt.Sprintf("n%d.log", i+1)), peers: strings.Join(peers, ",")}
		procs[i].start()
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.kill()
		}
	})
	ctx := context.Background()
	leader := -1
	for deadline := time.Now().Add(30 * time.Second); leader < 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for i, p := range procs {
			if info(t, p.client(), "raft_role") == "leader" {
				leader = i
			}
		}
	}
	if leader < 0 {
		t.Fatal("no leader after 30 s")
	}
	l := procs[leader]
	f := procs[(leader+1)%3]
	f.kill()

	// Write while the follower is down: 8 writers, pipelines of 500 SETs.
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	rdb := redis.NewClient(&redis.Options{Addr: l.addr(), PoolSize: 8, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	defer rdb.Close()
	pad := strings.Repeat("v", valBytes-10)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(500)) - 500
				if from >= keys {
					return
				}
				pipe := rdb.Pipeline()
				for k := from; k < min(from+500, keys); k++ {
					pipe.Set(ctx, "k"+strconv.Itoa(k), pad+fmt.Sprintf("%010d", k), 0)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("write: %v", err)
	}
	wrote := time.Since(start)
	snapBytes := newestSnapshotBytes(t, l.dir)
	t.Logf("wrote %d keys (%d MB of values) in %v; the leader's newest snapshot is %d MB", keys, mb, wrote.Round(time.Millisecond), snapBytes>>20)
	if snapBytes < 64<<20 {
		t.Fatalf("snapshot of %d bytes: not past the transport's frame bound", snapBytes)
	}

	// Restart the follower; watch the leader's memory until it holds
	// every key.
	rssBefore := rssBytes(t, l.cmd.Process.Pid, "VmRSS")
	var peak atomic.Int64
	peak.Store(rssBefore)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if v := rssBytes(t, l.cmd.Process.Pid, "VmRSS"); v > peak.Load() {
				peak.Store(v)
			}
		}
	}()
	restart := time.Now()
	f.start()
	fc := f.client()
	// Phases, as seen from outside: the partial file reaching the
	// snapshot's size (streamed), the install, every key applied.
	var streamed, installed, caught time.Duration
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if streamed == 0 {
			if parts, _ := filepath.Glob(filepath.Join(f.dir, "snap", "*.part")); len(parts) == 1 {
				if st, err := os.Stat(parts[0]); err == nil && st.Size() >= snapBytes {
					streamed = time.Since(restart)
				}
			}
		}
		if installed == 0 && info(t, fc, "raft_snapshots_received") == "1" {
			installed = time.Since(restart)
		}
		if n, err := fc.DBSize(ctx).Result(); err == nil && n == int64(keys) {
			caught = time.Since(restart)
			break
		}
	}
	close(stop)
	<-sampled
	if caught == 0 {
		t.Fatalf("follower never caught up: %s", info(t, fc, "raft_snapshots_received"))
	}
	ro := redis.NewClient(&redis.Options{Addr: f.addr(), PoolSize: 1, OnConnect: func(ctx context.Context, cn *redis.Conn) error {
		return cn.Do(ctx, "READONLY").Err()
	}})
	defer ro.Close()
	for _, k := range []int{0, keys / 2, keys - 1} {
		var v string
		var err error
		for i := 0; i < 50; i++ { // until it counts itself fresh
			if v, err = ro.Get(ctx, "k"+strconv.Itoa(k)).Result(); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || v != pad+fmt.Sprintf("%010d", k) {
			t.Fatalf("follower's k%d: %d bytes, %v", k, len(v), err)
		}
	}
	if got := info(t, fc, "raft_snapshots_received"); got == "0" {
		t.Fatal("the follower caught up without a snapshot")
	}
	logBytes, _ := os.ReadFile(l.log)
	if strings.Contains(string(logBytes), "over MessageBytesMax") {
		t.Fatal("the leader dropped an oversized message")
	}
	t.Logf("follower caught up %v after its restart (snapshot streamed by %v, installed by %v); leader RSS %d MB before, peak %d MB while sending (VmHWM %d MB)",
		caught.Round(time.Millisecond), streamed.Round(time.Millisecond), installed.Round(time.Millisecond),
		rssBefore>>20, peak.Load()>>20, rssBytes(t, l.cmd.Process.Pid, "VmHWM")>>20)
}

type keelProc struct {
	t                    *testing.T
	bin, dir, log, peers string
	id, port             int
	cmd                  *exec.Cmd
}

func (p *keelProc) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

func (p *keelProc) client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: p.addr(), PoolSize: 1})
	p.t.Cleanup(func() { c.Close() })
	return c
}

// start runs the server and waits for its "ready" line.
func (p *keelProc) start() {
	t := p.t
	t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, "server", "--bind", "127.0.0.1", "--port", strconv.Itoa(p.port), "--dir", p.dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--node-id", strconv.Itoa(p.id), "--peers", p.peers,
		"--cluster-insecure", "yes") // loopback only; the bus's TLS is tested elsewhere
	out, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if !sent && strings.Contains(sc.Text(), "ready") {
				ready <- true
				sent = true
			}
		}
		if !sent {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = p.cmd.Wait()
			t.Fatalf("node %d exited before it was ready", p.id)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("node %d not ready after 2 minutes", p.id)
	}
}

func (p *keelProc) kill() {
	if p.cmd != nil && p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// clusterPorts finds n client ports whose node-to-node port (+10000) is
// free too.
func clusterPorts(t *testing.T, n int) []int {
	var out []int
	for len(out) < n {
		p := freePort(t)
		if p+10000 > 65535 {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		l.Close()
		out = append(out, p)
	}
	return out
}

// info is one field of INFO ("" when absent).
func info(t *testing.T, c *redis.Client, field string) string {
	s, err := c.Info(context.Background()).Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}

func newestSnapshotBytes(t *testing.T, dir string) int64 {
	names, _ := filepath.Glob(filepath.Join(dir, "snap", "*.snap"))
	var newest string
	for _, n := range names {
		if n > newest {
			newest = n
		}
	}
	st, err := os.Stat(newest)
	if err != nil {
		t.Fatalf("leader's snapshot: %v", err)
	}
	return st.Size()
}

// rssBytes reads a field of /proc/<pid>/status (kB) in bytes.
func rssBytes(t *testing.T, pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
