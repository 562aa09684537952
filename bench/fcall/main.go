// Command fcall measures FCALL of a WASM function on keel against plain
// INCR on keel and against Redis running the same logic as a Lua function,
// in the same run (docs/functions.md, "Benchmark"):
//
//	go run ./bench/fcall [--requests 50000] [--rounds 3] [--modes off,everysec] [--pipelines 1,16] [--baseline BIN]
//
// It builds keel, starts keel and redis-server on free loopback ports with
// the same persistence, loads testdata/functions/counter.wasm into keel and
// an equivalent Lua library into Redis, and drives both with
// redis-benchmark (-c 50, random keys), alternating the systems round by
// round so machine noise hits both alike. With --baseline, a second keel
// binary (an older build: `git worktree add /tmp/base REV && go build -o
// /tmp/keel-base ./cmd/keel` there) runs as a third system in the same
// rounds, so a change is measured before and after in one run. Every
// process it starts is stopped before it exits.
//
// Like bench/, it is a black-box client: it depends on no keel package but
// the harness code the benchmarks share (bench/internal/harness).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/bench/internal/harness"
	"github.com/redis/go-redis/v9"
)

// luaLibrary is incr_by in Lua, as a Redis user would write it.
const luaLibrary = `#!lua name=bench
redis.register_function('incr_by', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)`

type system struct {
	name string
	proc *harness.Proc
	port int
}

func main() {
	requests := flag.Int("requests", 50000, "requests per redis-benchmark run")
	rounds := flag.Int("rounds", 3, "alternating rounds")
	modesFlag := flag.String("modes", "off,everysec", "persistence: off or everysec (both systems alike)")
	pipesFlag := flag.String("pipelines", "1,16", "redis-benchmark -P values")
	clients := flag.Int("clients", 50, "redis-benchmark -c")
	baseline := flag.String("baseline", "", "a second keel binary (e.g. the build before a change) to run alongside")
	flag.Parse()
	if err := run(*requests, *rounds, *clients, strings.Split(*modesFlag, ","), strings.Split(*pipesFlag, ","), *baseline); err != nil {
		fmt.Fprintln(os.Stderr, "fcall bench:", err)
		os.Exit(1)
	}
}

func run(requests, rounds, clients int, modes, pipes []string, baseline string) error {
	tmp, err := os.MkdirTemp("", "keel-fcall-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	keelBin := filepath.Join(tmp, "keel")
	if out, err := exec.Command("go", "build", "-o", keelBin, "./cmd/keel").CombinedOutput(); err != nil {
		return fmt.Errorf("build keel: %v\n%s", err, out)
	}
	wasm, err := os.ReadFile("testdata/functions/counter.wasm")
	if err != nil {
		return err
	}
	type key struct{ mode, pipe, sys, test string }
	results := map[key][]float64{}
	for _, mode := range modes {
		appendonly := "no"
		if mode == "everysec" {
			appendonly = "yes"
		}
		keelArgs := func(port int, dir string) []string {
			a := []string{"server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--appendonly", appendonly}
			if appendonly == "yes" {
				a = append(a, "--appendfsync", "everysec")
			}
			return a
		}
		keel, err := start("keel", keelBin, tmp, keelArgs)
		if err != nil {
			return err
		}
		var base *system
		if baseline != "" {
			if base, err = start("base", baseline, tmp, keelArgs); err != nil {
				stop(keel)
				return err
			}
		}
		rds, err := start("redis", "redis-server", tmp, func(port int, dir string) []string {
			a := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--save", "", "--appendonly", appendonly, "--daemonize", "no"}
			if appendonly == "yes" {
				a = append(a, "--appendfsync", "everysec")
			}
			return a
		})
		if err != nil {
			stop(keel)
			if base != nil {
				stop(base)
			}
			return err
		}
		err = func() error {
			defer stop(keel)
			defer stop(rds)
			if base != nil {
				defer stop(base)
				if err := load(base.port, "#!wasm name=counter\n"+string(wasm)); err != nil {
					return fmt.Errorf("baseline keel FUNCTION LOAD: %w", err)
				}
			}
			if err := load(keel.port, "#!wasm name=counter\n"+string(wasm)); err != nil {
				return fmt.Errorf("keel FUNCTION LOAD: %w", err)
			}
			if err := load(rds.port, luaLibrary); err != nil {
				return fmt.Errorf("redis FUNCTION LOAD: %w", err)
			}
			for r := 0; r < rounds; r++ {
				order := []*system{rds, keel}
				if base != nil {
					order = append(order, base)
				}
				if r%2 == 1 {
					for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
						order[i], order[j] = order[j], order[i]
					}
				}
				for _, p := range pipes {
					for _, s := range order {
						for _, test := range []string{"INCR", "FCALL"} {
							rps, err := bench(s.port, requests, clients, p, test)
							if err != nil {
								return fmt.Errorf("%s %s -P %s: %w", s.name, test, p, err)
							}
							fmt.Fprintf(os.Stderr, "mode=%s P=%s round %d %s %s: %.0f rps\n", mode, p, r+1, s.name, test, rps)
							k := key{mode, p, s.name, test}
							results[k] = append(results[k], rps)
						}
					}
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	// eachRow calls row per mode and -P with m, the median of a system's
	// test, and r, the median per-round ratio of two.
	eachRow := func(row func(mode, p string, m func(sys, test string) float64, r func(sys1, test1, sys2, test2 string) float64)) {
		for _, mode := range modes {
			for _, p := range pipes {
				row(mode, p, func(sys, test string) float64 { return harness.Median(results[key{mode, p, sys, test}]) },
					func(sys1, test1, sys2, test2 string) float64 {
						return harness.MedianRatio(results[key{mode, p, sys1, test1}], results[key{mode, p, sys2, test2}])
					})
			}
		}
	}
	fmt.Printf("redis-benchmark -c %d -n %d -r 100000, %d rounds, median requests/s; ratios are medians of the per-round ratios (redis-server %s)\n\n", clients, requests, rounds, redisVersion())
	fmt.Println("| persistence | -P | keel INCR | keel FCALL incr_by | keel FCALL/INCR | Redis INCR | Redis FCALL (Lua) | keel FCALL / Redis FCALL |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- |")
	eachRow(func(mode, p string, m func(sys, test string) float64, r func(sys1, test1, sys2, test2 string) float64) {
		fmt.Printf("| %s | %s | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f |\n", mode, p,
			m("keel", "INCR"), m("keel", "FCALL"), r("keel", "FCALL", "keel", "INCR"),
			m("redis", "INCR"), m("redis", "FCALL"), r("keel", "FCALL", "redis", "FCALL"))
	})
	if baseline == "" {
		return nil
	}
	fmt.Printf("\nbaseline keel (%s) in the same rounds\n\n", baseline)
	fmt.Println("| persistence | -P | baseline INCR | baseline FCALL | baseline FCALL/INCR | keel FCALL / baseline FCALL | baseline FCALL / Redis FCALL |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
	eachRow(func(mode, p string, m func(sys, test string) float64, r func(sys1, test1, sys2, test2 string) float64) {
		fmt.Printf("| %s | %s | %.0f | %.0f | %.2f | %.2f | %.2f |\n", mode, p,
			m("base", "INCR"), m("base", "FCALL"), r("base", "FCALL", "base", "INCR"),
			r("keel", "FCALL", "base", "FCALL"), r("base", "FCALL", "redis", "FCALL"))
	})
	return nil
}

func start(name, bin, tmp string, args func(port int, dir string) []string) (*system, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmp, name)
	if err != nil {
		return nil, err
	}
	p, err := harness.Start(name, bin, args(port, dir), nil, dir, port)
	if err != nil {
		return nil, err
	}
	s := &system{name: name, proc: p, port: port}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := redis.NewClient(&redis.Options{Addr: p.Addr(), Protocol: 2, MaxRetries: -1})
		err := c.Ping(context.Background()).Err()
		c.Close()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			stop(s)
			return nil, fmt.Errorf("%s did not start: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func stop(s *system) { s.proc.Kill() }

func load(port int, payload string) error {
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Protocol: 2})
	defer c.Close()
	return c.FunctionLoadReplace(context.Background(), payload).Err()
}

// bench runs one redis-benchmark and returns its requests per second. A
// probe call first checks the command answers without an error, since
// redis-benchmark counts error replies as replies.
func bench(port, n, clients int, pipe, test string) (float64, error) {
	var cmdArgs []string
	if test == "INCR" {
		cmdArgs = []string{"INCR", "key:__rand_int__"}
	} else {
		cmdArgs = []string{"FCALL", "incr_by", "1", "key:__rand_int__", "1"}
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Protocol: 2})
	probe := []any{}
	for _, a := range cmdArgs {
		probe = append(probe, strings.ReplaceAll(a, "__rand_int__", "probe"))
	}
	err := c.Do(context.Background(), probe...).Err()
	c.Close()
	if err != nil {
		return 0, fmt.Errorf("probe %v: %w", probe, err)
	}
	args := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-n", strconv.Itoa(n), "-c", strconv.Itoa(clients),
		"-r", "100000", "-P", pipe}, cmdArgs...)
	r, err := harness.RunRedisBenchmark(context.Background(), "redis-benchmark", args)
	if err != nil {
		return 0, err
	}
	return r.OpsPerSec, nil
}

func redisVersion() string {
	out, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		return "?"
	}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "v=") {
			return f[2:]
		}
	}
	return "?"
}
