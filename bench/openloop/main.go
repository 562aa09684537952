// Command openloop measures latency under an open-loop load: requests
// arrive at a fixed rate whatever the server does, and each one's latency
// is counted from when it was meant to be sent, so a stall is not hidden
// (coordinated omission corrected; HDR histograms). keel and Redis are
// measured the same way in the same run, step after step of offered load,
// the systems' order rotated at each step, and the run ends with a table
// and a picture of p99 latency against offered load (issue 18, the
// seed's targets: at 50k ops/s per node, 80 % GET / 20 % SET, p99 GET
// under 2 ms and p99 SET under 5 ms).
//
//	go run ./bench/openloop                                  # the default curve
//	go run ./bench/openloop --rates 50000 --seconds 20       # one point, longer
//	go run ./bench/openloop --systems keel,redis --quick     # a smoke run
//
// The systems, all with appendonly yes and appendfsync everysec:
//
//   - keel: one `keel server`.
//   - keel-3: three keel nodes of one Raft group, driven at the leader (a
//     write is answered once a majority holds it).
//   - redis: redis-server 7 (RDB snapshots off).
//
// Each is loaded with --keys keys of --datasize bytes first; the load
// draws keys uniformly. A step's first --warmup seconds are sent but not
// recorded. A step that lost replies or got error replies says so in the
// table. The report goes to bench/results/openloop/<time>.md with the
// picture beside it as an SVG.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
)

type config struct {
	systems  []string
	rates    []int
	seconds  float64
	warmup   float64
	conns    int
	getRatio float64
	keys     int
	data     int
	keelArgs []string
	harness.Common
}

var knownSystems = []string{"keel", "keel-3", "redis"}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("openloop", flag.ContinueOnError)
	var c config
	systems := fs.String("systems", strings.Join(knownSystems, ","), "systems to measure: "+strings.Join(knownSystems, ", "))
	rates := fs.String("rates", "10000,25000,50000,75000,100000", "offered loads, requests per second, comma-separated")
	fs.Float64Var(&c.seconds, "seconds", 10, "measured seconds per step")
	fs.Float64Var(&c.warmup, "warmup", 2, "seconds of load before each step's measurement")
	fs.IntVar(&c.conns, "conns", 32, "connections the load is spread over")
	fs.Float64Var(&c.getRatio, "get-ratio", 0.8, "share of GETs (the rest are SETs)")
	fs.IntVar(&c.keys, "keys", 100_000, "keys loaded before measuring, and drawn from")
	fs.IntVar(&c.data, "datasize", 200, "value bytes")
	keelArgs := fs.String("keel-args", "", "space-separated extra flags for keel server")
	c.Register(fs, "bench/results/openloop")
	quick := fs.Bool("quick", false, "a smoke run: rates 5000,20000, 2 s steps, 1 s warm-up")
	set, err := harness.ParseFlags(fs, args)
	if err != nil {
		return c, err
	}
	if *quick {
		if !set["rates"] {
			*rates = "5000,20000"
		}
		if !set["seconds"] {
			c.seconds = 2
		}
		if !set["warmup"] {
			c.warmup = 1
		}
	}
	c.systems = harness.SplitList(*systems)
	for _, s := range c.systems {
		if !slices.Contains(knownSystems, s) {
			return c, errors.Newf("-systems: unknown system %q (known: %s)", s, strings.Join(knownSystems, ", "))
		}
	}
	if len(c.systems) == 0 {
		return c, errors.New("-systems: none given")
	}
	if c.rates, err = harness.PositiveInts(*rates); err != nil {
		return c, errors.Wrap(err, "-rates")
	}
	c.keelArgs = strings.Fields(*keelArgs)
	switch {
	case c.seconds <= 0 || c.warmup < 0:
		return c, errors.New("-seconds must be positive and -warmup not negative")
	case c.conns < 1 || c.keys < 1 || c.data < 1:
		return c, errors.New("-conns, -keys and -datasize must be positive")
	case c.getRatio < 0 || c.getRatio > 1:
		return c, errors.New("-get-ratio must be between 0 and 1")
	}
	return c, nil
}

func main() { harness.Main("openloop", parseFlags, run) }

// system is one measured server: its processes and the address the load
// goes to.
type system struct {
	name  string
	procs []*harness.Proc
	// addr is where requests go now (keel-3: the current leader).
	addr func() (string, error)
}

func (s *system) stop() {
	for _, p := range s.procs {
		p.Stop()
	}
}

// pids are the system's processes, the one at addr (where the load goes)
// first.
func (s *system) pids(addr string) []int {
	var first, rest []int
	for _, p := range s.procs {
		if p.Addr() == addr {
			first = append(first, p.Cmd.Process.Pid)
		} else {
			rest = append(rest, p.Cmd.Process.Pid)
		}
	}
	return append(first, rest...)
}

func (s *system) exited() *harness.Proc {
	for _, p := range s.procs {
		if p.Exited() {
			return p
		}
	}
	return nil
}

func keelArgs(cfg config) func(port int, dir string) []string {
	return func(port int, dir string) []string {
		return append([]string{"server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
			"--appendonly", "yes", "--appendfsync", "everysec"}, cfg.keelArgs...)
	}
}

func startSystem(name string, ws harness.Workspace, keelBin string, cfg config) (*system, error) {
	s := &system{name: name}
	switch name {
	case "keel-3":
		procs, err := harness.StartKeelGroup(keelBin, ws.Tmp, "openloop", 3, keelArgs(cfg))
		if err != nil {
			return nil, err
		}
		s.procs = procs
		s.addr = func() (string, error) {
			for _, p := range s.procs {
				if !p.Exited() && p.Leads() {
					return p.Addr(), nil
				}
			}
			return "", errors.New("no keel node says it leads")
		}
		if _, err := s.addr(); err != nil {
			s.stop()
			return nil, err
		}
		return s, nil
	case "keel", "redis":
		port, err := harness.FreePort()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(ws.Tmp, name+"-data")
		bin, args := keelBin, keelArgs(cfg)(port, dir)
		if name == "redis" {
			bin = ws.RedisServer
			args = []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--save", "",
				"--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no"}
		}
		p, err := harness.Start(name, bin, args, nil, dir, port)
		if err != nil {
			return nil, err
		}
		s.procs = []*harness.Proc{p}
		if err := p.WaitUntil("PONG", harness.Pong); err != nil {
			s.stop()
			return nil, err
		}
		s.addr = func() (string, error) { return p.Addr(), nil }
		return s, nil
	}
	return nil, errors.Newf("unknown system %q", name)
}

// point is one system's figures at one offered load; err says why it is
// missing.
type point struct {
	rate int
	res  *result
	err  error
}

func run(ctx context.Context, cfg config) error {
	started := time.Now()
	ws, keelBin, cleanup, err := cfg.Start(ctx, "keel-openloop-")
	defer cleanup()
	if err != nil {
		return err
	}
	value := []byte(strings.Repeat("x", cfg.data))
	systems := map[string]*system{}
	for _, name := range cfg.systems {
		fmt.Printf("starting %s\n", name)
		s, err := startSystem(name, ws, keelBin, cfg)
		if err != nil {
			return errors.Wrapf(err, "start %s", name)
		}
		defer s.stop()
		addr, err := s.addr()
		if err != nil {
			return err
		}
		fmt.Printf("loading %d keys into %s\n", cfg.keys, name)
		if err := preload(addr, cfg.keys, value); err != nil {
			return errors.Wrapf(err, "load %s", name)
		}
		systems[name] = s
	}
	points := map[string][]point{}
	for step, rate := range cfg.rates {
		order := slices.Clone(cfg.systems)
		k := step % len(order)
		order = append(order[k:], order[:k]...)
		for _, name := range order {
			s := systems[name]
			pt := point{rate: rate}
			if p := s.exited(); p != nil {
				pt.err = errors.Newf("%s exited: %v", p.Name, p.Err())
			} else if addr, err := s.addr(); err != nil {
				pt.err = err
			} else {
				fmt.Printf("%s at %d/s for %.0f s ... ", name, rate, cfg.seconds)
				l := load{addr: addr, rate: float64(rate), duration: secs(cfg.seconds), warmup: secs(cfg.warmup),
					conns: cfg.conns, getRatio: cfg.getRatio, keys: cfg.keys, value: value, seed: uint64(step + 1), pids: s.pids(addr)}
				pt.res, pt.err = l.run(ctx)
			}
			if pt.err == nil {
				r := pt.res
				fmt.Printf("%s/s answered, GET p99 %s ms, SET p99 %s ms, client's send lag p99 %s ms, machine %s busy\n", harness.FmtOps(r.achieved()),
					harness.FmtMillis(r.quantile(opGet, 99)), harness.FmtMillis(r.quantile(opSet, 99)), harness.FmtMillis(r.lagQuantile(99)), r.cpu.busy())
			} else {
				fmt.Printf("missing: %v\n", pt.err)
			}
			points[name] = append(points[name], pt)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	svgName := started.Format("2006-01-02T1504Z") + "-p99.svg" // beside WriteReport's name
	md := report(cfg, points, started, svgName, harness.KeelCommit(ws.Root))
	path, err := harness.WriteReport(ws.Root, cfg.OutDir, started, md)
	if err != nil {
		return err
	}
	svgPath := filepath.Join(filepath.Dir(path), svgName)
	if err := os.WriteFile(svgPath, []byte(curveSVG(cfg, points)), 0o644); err != nil {
		return errors.Wrap(err, "write picture")
	}
	fmt.Print(md)
	fmt.Println("report:", path)
	fmt.Println("picture:", svgPath)
	return nil
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
