// Command ioceiling measures the floor that the connection layer puts
// under a request at redis-benchmark -P 1: servers that answer every
// command +OK and do nothing else, one per I/O model, against keel's SET
// and Redis's SET, in the same run, by throughput and by server CPU per
// request (utime+stime from /proc, which a shared machine's noise moves
// much less than throughput). Issue 18 asks whether an event loop would
// beat Go's goroutine per connection; this is that measurement
// (docs/performance.md, "The -P 1 floor").
//
//	go run ./bench/ioceiling                # 3 rounds of 400k SETs, -c 50 -P 1
//	go run ./bench/ioceiling --rounds 1 --requests 100000
//
// The models: "goroutines" (net.Listener, a goroutine per connection,
// blocking reads: keel's server's model), "gnet" (github.com/panjf2000/
// gnet/v2, one epoll event loop, callbacks on readiness), and the two real
// servers, "keel" (keel server --appendonly no) and "redis" (redis-server,
// persistence off). The toy servers run in child processes of this
// program (it re-executes itself with --serve MODEL) so that their CPU is
// counted alone. Linux only (/proc).
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	stdnet "net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
)

type config struct {
	rounds   int
	requests int
	clients  int
	serve    string
	addr     string
	install  bool
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("ioceiling", flag.ContinueOnError)
	var c config
	fs.IntVar(&c.rounds, "rounds", 3, "rounds, the systems' order rotated each round")
	fs.IntVar(&c.requests, "requests", 400_000, "SETs per system per round (redis-benchmark -n)")
	fs.IntVar(&c.clients, "clients", 50, "redis-benchmark -c")
	fs.StringVar(&c.serve, "serve", "", "internal: run the toy server of this model")
	fs.StringVar(&c.addr, "addr", "", "internal: the toy server's address")
	fs.BoolVar(&c.install, "install", true, "apt-get install redis-server redis-tools when missing")
	if _, err := harness.ParseFlags(fs, args); err != nil {
		return c, err
	}
	if c.rounds < 1 || c.requests < 1 || c.clients < 1 {
		return c, errors.New("-rounds, -requests and -clients must be positive")
	}
	return c, nil
}

func main() {
	harness.Main("ioceiling", parseFlags, func(ctx context.Context, c config) error {
		if c.serve != "" {
			return serveToy(c.serve, c.addr)
		}
		return run(ctx, c)
	})
}

var systems = []string{"goroutines", "gnet", "keel", "redis"}

func run(ctx context.Context, c config) error {
	ws, cleanup, err := harness.Setup(c.install, false, "keel-ioceiling-")
	if err != nil {
		return err
	}
	defer cleanup()
	keelBin, err := ws.KeelBinary(ctx, "")
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return errors.Wrap(err, "own path")
	}
	type fig struct{ ops, cpuMicros []float64 }
	figs := map[string]*fig{}
	for r := range c.rounds {
		order := append(systems[r%len(systems):], systems[:r%len(systems)]...)
		for _, name := range order {
			port, err := harness.FreePort()
			if err != nil {
				return err
			}
			dir := filepath.Join(ws.Tmp, fmt.Sprintf("%s-%d", name, r))
			addr := "127.0.0.1:" + strconv.Itoa(port)
			var bin string
			var args []string
			switch name {
			case "keel":
				bin, args = keelBin, []string{"server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--appendonly", "no"}
			case "redis":
				bin, args = ws.RedisServer, []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no"}
			default:
				bin, args = self, []string{"--serve", name, "--addr", addr}
			}
			p, err := harness.Start(name, bin, args, nil, dir, port)
			if err != nil {
				return err
			}
			if err := p.WaitUntil("PONG", harness.Pong); err != nil {
				p.Stop()
				return err
			}
			before, err := harness.ProcessCPU(p.Cmd.Process.Pid)
			if err != nil {
				p.Stop()
				return err
			}
			res, err := harness.RunRedisBenchmark(ctx, ws.RedisBenchmark, []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port),
				"-c", strconv.Itoa(c.clients), "-n", strconv.Itoa(c.requests), "-d", "200", "-r", "100000", "-P", "1", "-t", "set", "--csv"})
			after, cerr := harness.ProcessCPU(p.Cmd.Process.Pid)
			p.Stop()
			if err != nil {
				return errors.Wrapf(err, "%s", name)
			}
			if cerr != nil {
				return cerr
			}
			f := figs[name]
			if f == nil {
				f = &fig{}
				figs[name] = f
			}
			us := float64(after-before) / float64(time.Microsecond) / float64(c.requests)
			f.ops = append(f.ops, res.OpsPerSec)
			f.cpuMicros = append(f.cpuMicros, us)
			fmt.Printf("round %d %-10s %s SET/s  %.2f µs CPU per request\n", r+1, name, harness.FmtOps(res.OpsPerSec), us)
		}
	}
	fmt.Printf("\nredis-benchmark -t set -P 1 -c %d -d 200 -r 100000 -n %d, %d rounds; medians (ratios: medians of per-round ratios)\n\n", c.clients, c.requests, c.rounds)
	fmt.Println("| server | SET/s | / Redis | server CPU µs per request | / Redis |")
	fmt.Println("| --- | --: | --: | --: | --: |")
	for _, name := range systems {
		f := figs[name]
		fmt.Printf("| %s | %s | %s | %.2f | %s |\n", name, harness.FmtOps(harness.Median(f.ops)),
			harness.FmtRatio(harness.MedianRatio(f.ops, figs["redis"].ops), "×"), harness.Median(f.cpuMicros),
			harness.FmtRatio(harness.MedianRatio(f.cpuMicros, figs["redis"].cpuMicros), "×"))
	}
	return nil
}

// The toy servers answer SET +OK, PING +PONG and anything else (go-redis's
// HELLO) -ERR unknown command. answer appends the replies of the complete
// RESP arrays at the start of b and says how many bytes they took.
func answer(out, b []byte) ([]byte, int) {
	used := 0
	for used < len(b) {
		if b[used] != '*' {
			break
		}
		i := bytes.IndexByte(b[used:], '\n')
		if i < 2 {
			break
		}
		argc, err := strconv.Atoi(string(b[used+1 : used+i-1]))
		if err != nil {
			break
		}
		p, name, whole := used+i+1, "", true
		for a := 0; a < argc; a++ {
			j := bytes.IndexByte(b[p:], '\n')
			if j < 2 {
				whole = false
				break
			}
			l, err := strconv.Atoi(string(b[p+1 : p+j-1]))
			if err != nil || p+j+1+l+2 > len(b) {
				whole = false
				break
			}
			if a == 0 {
				name = strings.ToUpper(string(b[p+j+1 : p+j+1+l]))
			}
			p += j + 1 + l + 2
		}
		if !whole {
			break
		}
		switch name {
		case "SET":
			out = append(out, "+OK\r\n"...)
		case "PING":
			out = append(out, "+PONG\r\n"...)
		default:
			out = append(out, "-ERR unknown command\r\n"...)
		}
		used = p
	}
	return out, used
}

func serveToy(model, addr string) error {
	switch model {
	case "gnet":
		return gnet.Run(&gnetServer{}, "tcp://"+addr, gnet.WithNumEventLoop(1), gnet.WithLogLevel(gnetLogLevel))
	case "goroutines":
		ln, err := stdnet.Listen("tcp", addr)
		if err != nil {
			return errors.Wrap(err, "listen")
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				return errors.Wrap(err, "accept")
			}
			go func() {
				defer c.Close()
				r := bufio.NewReaderSize(c, 16<<10)
				var acc, out []byte
				buf := make([]byte, 16<<10)
				for {
					k, err := r.Read(buf)
					if err != nil {
						return
					}
					acc = append(acc, buf[:k]...)
					var used int
					out, used = answer(out[:0], acc)
					acc = acc[:copy(acc, acc[used:])]
					if len(out) > 0 {
						if _, err := c.Write(out); err != nil {
							return
						}
					}
				}
			}()
		}
	}
	return errors.Newf("unknown model %q", model)
}

type gnetServer struct {
	gnet.BuiltinEventEngine
	out []byte // one event loop: one buffer
}

func (s *gnetServer) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Peek(-1)
	var used int
	s.out, used = answer(s.out[:0], buf)
	if _, err := c.Discard(used); err != nil {
		return gnet.Close
	}
	if len(s.out) > 0 {
		if _, err := c.Write(s.out); err != nil {
			return gnet.Close
		}
	}
	return gnet.None
}

// gnetLogLevel keeps gnet's start-up line out of the child's log.
const gnetLogLevel = logging.ErrorLevel
