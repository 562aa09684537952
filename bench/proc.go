package main

import (
	"bytes"
	"fmt"
	stdnet "net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"
)

// mode is a persistence setting applied equally to both systems.
type mode struct {
	name       string
	appendonly bool
	fsync      string // everysec, always, no; ignored when !appendonly
}

var modes = map[string]mode{
	"off":      {name: "off"},
	"everysec": {name: "everysec", appendonly: true, fsync: "everysec"},
	"always":   {name: "always", appendonly: true, fsync: "always"},
	"no":       {name: "no", appendonly: true, fsync: "no"},
}

// system is one side of the comparison: how to start it.
type system struct {
	name string // "redis" or "keel"
	bin  string
	// redisLike: the binary takes redis-server flags. True for Redis, and for
	// the stand-in used to develop the harness before keel could serve.
	redisLike bool
	env       []string // added to the environment (e.g. GOMAXPROCS=1)
	extraArgs []string
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (s system) args(port int, dir string, m mode) []string {
	var args []string
	if s.redisLike {
		// RDB snapshots off in every mode: the comparison is AOF against
		// keel's log, and a background save would fork mid-run.
		args = []string{"--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--dir", dir,
			"--save", "", "--appendonly", yesNo(m.appendonly), "--daemonize", "no"}
	} else {
		args = []string{"server", "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--dir", dir,
			"--appendonly", yesNo(m.appendonly)}
	}
	if m.appendonly {
		args = append(args, "--appendfsync", m.fsync)
	}
	return append(args, s.extraArgs...)
}

// server is a running server process owned by the harness.
type server struct {
	sys  system
	mode mode
	port int
	dir  string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process has exited
	err  error         // the Wait error, valid after done
}

// running tracks every started process so an interrupt can stop them all;
// the harness must never leave servers behind on a shared machine.
var running struct {
	sync.Mutex
	servers map[*server]bool
}

func freePort() (int, error) {
	l, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, errors.Wrap(err, "find a free port")
	}
	defer l.Close()
	return l.Addr().(*stdnet.TCPAddr).Port, nil
}

// startServer starts sys in dir on a free port (or port, when non-zero) and
// returns once the process is started; call waitReady before using it.
func startServer(sys system, m mode, dir string, port int) (*server, error) {
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	logf, err := os.OpenFile(filepath.Join(dir, "..", filepath.Base(dir)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, errors.Wrap(err, "open server log")
	}
	s := &server{sys: sys, mode: m, port: port, dir: dir, log: logf, done: make(chan struct{})}
	s.cmd = exec.Command(sys.bin, sys.args(port, dir, m)...)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Env = append(os.Environ(), sys.env...)
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, errors.Wrapf(err, "start %s", sys.bin)
	}
	running.Lock()
	if running.servers == nil {
		running.servers = map[*server]bool{}
	}
	running.servers[s] = true
	running.Unlock()
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
		running.Lock()
		delete(running.servers, s)
		running.Unlock()
	}()
	return s, nil
}

func (s *server) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// logTail is the end of the server's log, for error messages.
func (s *server) logTail() string {
	b, err := os.ReadFile(s.log.Name())
	if err != nil {
		return ""
	}
	const tailBytes = 2000
	if len(b) > tailBytes {
		b = b[len(b)-tailBytes:]
	}
	return string(bytes.TrimSpace(b))
}

// readyPollInterval is how often readiness is probed; it bounds the
// resolution of the recovery timings.
const readyPollInterval = 2 * time.Millisecond

// waitReady polls until the server answers PING and, when wantKeys >= 0,
// DBSIZE equals wantKeys. It returns the connection it used.
func (s *server) waitReady(timeout time.Duration, wantKeys int64) (*respConn, error) {
	deadline := time.Now().Add(timeout)
	var c *respConn
	for {
		if s.exited() {
			return nil, errors.Newf("%s exited while starting (%v); log:\n%s", s.sys.name, s.err, s.logTail())
		}
		if time.Now().After(deadline) {
			if c != nil {
				c.Close()
			}
			return nil, errors.Newf("%s not ready after %s; log:\n%s", s.sys.name, timeout, s.logTail())
		}
		if c == nil {
			var err error
			if c, err = dialRESP(s.addr(), time.Second); err != nil {
				time.Sleep(readyPollInterval)
				continue
			}
		}
		c.c.SetDeadline(time.Now().Add(5 * time.Second))
		r, err := c.do("PING")
		if _, isReply := err.(respError); err != nil && !isReply {
			c.Close() // connection-level failure: redial
			c = nil
			time.Sleep(readyPollInterval)
			continue
		}
		if err != nil || r.str != "PONG" { // -LOADING and the like
			time.Sleep(readyPollInterval)
			continue
		}
		if wantKeys < 0 {
			c.c.SetDeadline(time.Time{})
			return c, nil
		}
		r, err = c.do("DBSIZE")
		if err == nil && r.num == wantKeys {
			c.c.SetDeadline(time.Time{})
			return c, nil
		}
		time.Sleep(readyPollInterval)
	}
}

// stopTimeout is how long a server gets to exit after SIGTERM.
const stopTimeout = 30 * time.Second

// stop ends the server gracefully (SIGTERM), then forcibly.
func (s *server) stop() {
	defer s.log.Close()
	if s.exited() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// kill ends the server with SIGKILL, as a crash would.
func (s *server) kill() {
	defer s.log.Close()
	if !s.exited() {
		s.cmd.Process.Kill()
	}
	<-s.done
}

// stopAll kills every server still running; used on interrupt.
func stopAll() {
	running.Lock()
	servers := make([]*server, 0, len(running.servers))
	for s := range running.servers {
		servers = append(servers, s)
	}
	running.Unlock()
	for _, s := range servers {
		s.cmd.Process.Kill()
	}
}

// rssBytes reads the process's resident set size from /proc.
func (s *server) rssBytes() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, errors.Wrap(err, "read process status")
	}
	return parseVmRSS(b)
}

// parseVmRSS extracts VmRSS (reported in kB) from /proc/PID/status.
func parseVmRSS(status []byte) (int64, error) {
	for _, line := range bytes.Split(status, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("VmRSS:")) {
			continue
		}
		var kb int64
		if _, err := fmt.Sscanf(string(bytes.TrimPrefix(line, []byte("VmRSS:"))), "%d kB", &kb); err != nil {
			return 0, errors.Wrapf(err, "parse %q", line)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("no VmRSS line in process status")
}
