package cluster

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file is the real-process exception to cluster's no-OS rule: a test
// that builds the keel binary, kill -9s it under load and checks that
// every acknowledged write survives (appendfsync always, RPO 0).

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startKeel starts the server and waits for its "ready" line.
func startKeel(t *testing.T, bin, dir string, port int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--dir", dir, "--appendonly", "yes", "--appendfsync", "always")
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
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
			_ = cmd.Wait()
			t.Fatal("keel server exited before it was ready")
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("keel server not ready after 60s")
	}
	return cmd
}

func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real server")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "keel")
	build := exec.Command("go", "build", "-o", bin, "./cmd/keel")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build keel: %v\n%s", err, out)
	}
	dir := filepath.Join(tmp, "data")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	const clients = 16
	const rounds = 3
	acked := map[string]string{} // unique key -> acknowledged value
	// ctr:<c> is overwritten by client c with r<round>:c<c>:<i>; after a
	// crash it must hold the last acknowledged value or a later attempt
	// (a write whose reply was lost in the kill may or may not be durable).
	ctrAcked := map[string][2]int{}
	var mu sync.Mutex
	for round := 0; round < rounds; round++ {
		cmd := startKeel(t, bin, dir, port)
		rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: clients, MaxRetries: -1,
			DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
		ctx := context.Background()
		// Everything acknowledged before the earlier kills is still there.
		checkAcked(t, rdb, acked, ctrAcked)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					k := fmt.Sprintf("r%d:c%d:%d", round, c, i)
					v := fmt.Sprintf("v%d", i)
					ctr := fmt.Sprintf("ctr:%d", c) // overwritten key: last ack must win
					if err := rdb.Set(ctx, k, v, 0).Err(); err != nil {
						return // the server is gone
					}
					if err := rdb.Set(ctx, ctr, k, 0).Err(); err != nil {
						mu.Lock()
						acked[k] = v
						mu.Unlock()
						return
					}
					mu.Lock()
					acked[k] = v
					ctrAcked[ctr] = [2]int{round, i}
					mu.Unlock()
				}
			}(c)
		}
		time.Sleep(700 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		close(stop)
		wg.Wait()
		_ = rdb.Close()
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		t.Logf("round %d: %d keys acknowledged so far", round, n)
		if n == 0 {
			t.Fatal("no write was acknowledged")
		}
	}
	// Final check after the last kill.
	cmd := startKeel(t, bin, dir, port)
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	checkAcked(t, rdb, acked, ctrAcked)
	_ = os.RemoveAll(dir)
}

func checkAcked(t *testing.T, rdb *redis.Client, acked map[string]string, ctrAcked map[string][2]int) {
	t.Helper()
	ctx := context.Background()
	for k, v := range acked {
		got, err := rdb.Get(ctx, k).Result()
		if err != nil || got != v {
			t.Fatalf("acknowledged %s=%s, after kill -9 read %q (%v)", k, v, got, err)
		}
	}
	for k, want := range ctrAcked {
		got, err := rdb.Get(ctx, k).Result()
		var round, c, i int
		if err == nil {
			_, err = fmt.Sscanf(got, "r%d:c%d:%d", &round, &c, &i)
		}
		if err != nil || round < want[0] || (round == want[0] && i < want[1]) {
			t.Fatalf("%s: acknowledged r%d:..:%d, after kill -9 read %q (%v): an acknowledged overwrite was lost", k, want[0], want[1], got, err)
		}
	}
}
