package main

import (
	"fmt"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
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

// server is a running server process started with a system's flags.
type server struct {
	*harness.Proc
	sys  system
	mode mode
	dir  string
}

// startServer starts sys in dir on a free port (or port, when non-zero) and
// returns once the process is started; call waitReady before using it.
func startServer(sys system, m mode, dir string, port int) (*server, error) {
	if port == 0 {
		var err error
		if port, err = harness.FreePort(); err != nil {
			return nil, err
		}
	}
	p, err := harness.Start(sys.name, sys.bin, sys.args(port, dir, m), sys.env, dir, port)
	if err != nil {
		return nil, err
	}
	return &server{Proc: p, sys: sys, mode: m, dir: dir}, nil
}

// readyPollInterval is how often readiness is probed; it bounds the
// resolution of the recovery timings.
const readyPollInterval = 2 * time.Millisecond

// waitReady polls until the server answers PING and, when wantKeys >= 0,
// DBSIZE equals wantKeys. It returns the connection it used.
func (s *server) waitReady(timeout time.Duration, wantKeys int64) (*harness.Conn, error) {
	deadline := time.Now().Add(timeout)
	var c *harness.Conn
	for {
		if s.Exited() {
			return nil, errors.Newf("%s exited while starting (%v); log:\n%s", s.sys.name, s.Err(), s.LogTail())
		}
		if time.Now().After(deadline) {
			if c != nil {
				c.Close()
			}
			return nil, errors.Newf("%s not ready after %s; log:\n%s", s.sys.name, timeout, s.LogTail())
		}
		if c == nil {
			var err error
			if c, err = harness.Dial(s.Addr(), time.Second); err != nil {
				time.Sleep(readyPollInterval)
				continue
			}
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r, err := c.Do("PING")
		if _, isReply := err.(harness.RespError); err != nil && !isReply {
			c.Close() // connection-level failure: redial
			c = nil
			time.Sleep(readyPollInterval)
			continue
		}
		if err != nil || r.Str != "PONG" { // -LOADING and the like
			time.Sleep(readyPollInterval)
			continue
		}
		if wantKeys < 0 {
			c.SetDeadline(time.Time{})
			return c, nil
		}
		r, err = c.Do("DBSIZE")
		if err == nil && r.Num == wantKeys {
			c.SetDeadline(time.Time{})
			return c, nil
		}
		time.Sleep(readyPollInterval)
	}
}
