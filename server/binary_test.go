package server

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startBinary runs the built keel binary and waits for its ready line; it
// returns the address it serves on and a channel with its exit error.
func startBinary(t *testing.T, bin string, args ...string) (*exec.Cmd, string, chan error, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"server"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	ready := make(chan string, 1)
	exited := make(chan error, 1)
	readyRe := regexp.MustCompile(`ready to accept connections tcp (\S+)`)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := readyRe.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	select {
	case addr := <-ready:
		return cmd, addr, exited, &log
	case err := <-exited:
		t.Fatalf("keel exited before ready: %v\n%s", err, log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no ready line:\n%s", log.String())
	}
	return nil, "", nil, nil
}

func TestBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "keel")
	build := exec.Command("go", "build", "-o", bin, "github.com/keel-db/keel/cmd/keel")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	conf := filepath.Join(dir, "keel.conf")
	if err := os.WriteFile(conf, []byte("# test config\nmaxmemory 100mb\nrequirepass \"pw\"\nmaxclients 50\nappendonly no\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, addr, exited, log := startBinary(t, bin, conf, "--port", "0", "--dir", filepath.Join(dir, "data"), "--requirepass", "flagwins")
	c := redis.NewClient(&redis.Options{Addr: addr, Password: "flagwins"})
	defer c.Close()
	if err := c.Set(ctx(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v\n%s", err, log.String())
	}
	if v, err := c.Get(ctx(), "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET: %q %v", v, err)
	}
	cfg, err := c.ConfigGet(ctx(), "*").Result()
	if err != nil || cfg["maxmemory"] != "104857600" || cfg["maxclients"] != "50" || cfg["appendonly"] != "no" {
		t.Fatalf("CONFIG GET: %v %v", cfg, err)
	}
	if info := c.Info(ctx(), "server").Val(); !strings.Contains(info, "config_file:"+conf) {
		t.Fatalf("INFO server: %s", info)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGTERM")
	}

	// SHUTDOWN over the protocol: no reply, clean exit 0.
	_, addr, exited, log = startBinary(t, bin, "--port=0", "--appendonly", "no")
	c2 := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c2.Close()
	if err := c2.Ping(ctx()).Err(); err != nil {
		t.Fatal(err)
	}
	c2.Shutdown(ctx())
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SHUTDOWN: %v\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SHUTDOWN")
	}

	// With appendonly yes (the default), data survives a restart.
	data := filepath.Join(dir, "durable")
	for round := 0; round < 2; round++ {
		cmd, addr, exited, log = startBinary(t, bin, "--port", "0", "--dir", data, "--appendfsync", "always")
		c3 := redis.NewClient(&redis.Options{Addr: addr})
		if round == 0 {
			if err := c3.Set(ctx(), "durable", "yes", 0).Err(); err != nil {
				t.Fatal(err)
			}
			c3.Incr(ctx(), "n")
		} else {
			if v, err := c3.Get(ctx(), "durable").Result(); err != nil || v != "yes" {
				t.Fatalf("after restart: %q %v\n%s", v, err, log.String())
			}
			if v, err := c3.Get(ctx(), "n").Result(); err != nil || v != "1" {
				t.Fatalf("after restart: n=%q %v", v, err)
			}
		}
		c3.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		if err := <-exited; err != nil {
			t.Fatalf("exit: %v\n%s", err, log.String())
		}
	}

	// Bad flags: exit status 2 and a message naming the problem.
	out, err := exec.Command(bin, "server", "--appendfsync", "sometimes").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "appendfsync") {
		t.Fatalf("bad flag: %v\n%s", err, out)
	}
}
