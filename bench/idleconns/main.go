// Command idleconns measures what an idle client connection costs a server
// in resident memory: keel with its event loop, keel with a goroutine per
// connection (--event-loops 0) and Redis, in the same run. Each round
// starts the server, opens --conns connections that each send one PING
// and then stay idle, waits for the server to settle, and reads its VmRSS
// before and after from /proc (docs/performance.md, "Tenth run").
//
//	go run ./bench/idleconns                  # 3 rounds of 5,000 connections
//	go run ./bench/idleconns --conns 2000 --rounds 1
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	stdnet "net"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
)

type config struct {
	harness.Common
	rounds, conns int
	settle        time.Duration
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("idleconns", flag.ContinueOnError)
	var c config
	c.Register(fs, "")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds, the systems' order rotated each round")
	fs.IntVar(&c.conns, "conns", 5000, "idle connections per server (below both servers' maxclients, 10,000)")
	fs.DurationVar(&c.settle, "settle", 2*time.Second, "wait after the last connection before reading RSS")
	if _, err := harness.ParseFlags(fs, args); err != nil {
		return c, err
	}
	if c.rounds < 1 || c.conns < 1 || c.conns > 9000 {
		return c, errors.New("-rounds must be positive and -conns within 1..9000")
	}
	return c, nil
}

func main() { harness.Main("idleconns", parseFlags, run) }

var systems = []string{"keel", "keel-goroutines", "redis"}

func run(ctx context.Context, c config) error {
	ws, keelBin, cleanup, err := c.Start(ctx, "keel-idleconns-")
	defer cleanup()
	if err != nil {
		return err
	}
	// Room for this process's end of every connection.
	lim := syscall.Rlimit{Cur: uint64(c.conns + 1024), Max: uint64(c.conns + 1024)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return errors.Wrap(err, "raise the open files limit")
	}
	perConn := map[string][]float64{}
	for r := range c.rounds {
		order := append(systems[r%len(systems):], systems[:r%len(systems)]...)
		for _, name := range order {
			b, err := measure(ws, keelBin, name, r, c)
			if err != nil {
				return errors.Wrapf(err, "%s, round %d", name, r+1)
			}
			perConn[name] = append(perConn[name], b)
			fmt.Printf("round %d %-16s %6.0f B of RSS per idle connection\n", r+1, name, b)
		}
	}
	fmt.Printf("\n%d idle connections (one PING each), RSS growth over the idle server, %d rounds; medians (ratios: medians of per-round ratios)\n\n", c.conns, c.rounds)
	fmt.Println("| server | RSS per idle connection | / Redis |")
	fmt.Println("| --- | --: | --: |")
	for _, name := range systems {
		fmt.Printf("| %s | %.0f B | %s |\n", name, harness.Median(perConn[name]),
			harness.FmtRatio(harness.MedianRatio(perConn[name], perConn["redis"]), "×"))
	}
	return nil
}

// measure starts one server, holds c.conns idle connections to it, and
// returns its RSS growth per connection in bytes.
func measure(ws harness.Workspace, keelBin, name string, round int, c config) (float64, error) {
	port, err := harness.FreePort()
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(ws.Tmp, fmt.Sprintf("%s-%d", name, round))
	p := strconv.Itoa(port)
	var bin string
	var args []string
	switch name {
	case "keel":
		bin, args = keelBin, []string{"server", "--bind", "127.0.0.1", "--port", p, "--dir", dir, "--appendonly", "no"}
	case "keel-goroutines":
		bin, args = keelBin, []string{"server", "--bind", "127.0.0.1", "--port", p, "--dir", dir, "--appendonly", "no", "--event-loops", "0"}
	case "redis":
		bin, args = ws.RedisServer, []string{"--bind", "127.0.0.1", "--port", p, "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no"}
	}
	proc, err := harness.Start(name, bin, args, nil, dir, port)
	if err != nil {
		return 0, err
	}
	defer proc.Stop()
	if err := proc.WaitUntil("PONG", harness.Pong); err != nil {
		return 0, err
	}
	time.Sleep(c.settle)
	before, err := proc.RSS()
	if err != nil {
		return 0, err
	}
	conns := make([]stdnet.Conn, 0, c.conns)
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for range c.conns {
		nc, err := stdnet.Dial("tcp", "127.0.0.1:"+p)
		if err != nil {
			return 0, errors.Wrapf(err, "connection %d", len(conns)+1)
		}
		conns = append(conns, nc)
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write([]byte("PING\r\n")); err != nil {
			return 0, errors.Wrap(err, "PING")
		}
		if line, err := bufio.NewReader(nc).ReadString('\n'); err != nil || line != "+PONG\r\n" {
			return 0, errors.Newf("PING on connection %d: %q, %v", len(conns), line, err)
		}
	}
	time.Sleep(c.settle)
	after, err := proc.RSS()
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(c.conns), nil
}
