// Command latency measures GET latency with a large keyspace under a
// write-heavy load, keel and Redis side by side in the same run (issue 8:
// "with 10M keys loaded, p99 GET stays under 2 ms during a write-heavy
// run"). See docs/performance.md, "GET latency under writes".
//
//	go run ./bench/latency                       # 10M keys, 3 rounds
//	go run ./bench/latency --keys 1000000 --rounds 1   # a quick look
//	go run ./bench/latency --keel-env GODEBUG=gctrace=1  # adds keel's GC cycles per phase
//
// Both servers are started (persistence off by default), each gets the
// same N keys key:000000000000 … (the names redis-benchmark's -r uses)
// with 200-byte values, and then, round after round, alternating which
// system goes first, each system gets two phases:
//
//   - "GET alone": the probe for --idle-seconds;
//   - "GET under writes": redis-benchmark SET -P 16 -c 50 -r N overwriting
//     the loaded keys (--write-keyspace larger than N adds new keys), with
//     the probe running for as long as the writer does.
//
// The probe is --probe-clients connections, each sending one GET of a
// random loaded key and waiting for its reply (closed loop, -P 1), every
// latency kept. The report gives p50, p99, p99.9 and max per phase and
// system (medians over rounds) and keel/Redis as the median of per-round
// ratios. With GODEBUG=gctrace=1 in --keel-env, keel's GC cycles that
// ended during each phase are summed from its log.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
)

type config struct {
	keys          int
	dataBytes     int
	rounds        int
	persistence   string
	writeRequests int
	writeClients  int
	writePipeline int
	writeKeyspace int
	probeClients  int
	idleSeconds   float64
	loaders       int
	slowMillis    float64
	keelEnv       []string
	keelArgs      []string
	harness.Common
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("latency", flag.ContinueOnError)
	var c config
	fs.IntVar(&c.keys, "keys", 10_000_000, "keys loaded into each system before measuring")
	fs.IntVar(&c.dataBytes, "datasize", 200, "value bytes, for the load and the write load")
	fs.IntVar(&c.rounds, "rounds", 3, "alternating rounds (odd rounds Redis first, even rounds keel first)")
	fs.StringVar(&c.persistence, "persistence", "off", "off or everysec, applied to both")
	fs.IntVar(&c.writeRequests, "write-requests", 3_000_000, "SETs per write phase (redis-benchmark -n)")
	fs.IntVar(&c.writeClients, "write-clients", 50, "write load connections (redis-benchmark -c)")
	fs.IntVar(&c.writePipeline, "write-pipeline", 16, "write load pipeline depth (redis-benchmark -P)")
	fs.IntVar(&c.writeKeyspace, "write-keyspace", 0, "write load key range (redis-benchmark -r); 0: the loaded keys, so every SET overwrites")
	fs.IntVar(&c.probeClients, "probe-clients", 10, "closed-loop GET connections")
	fs.Float64Var(&c.idleSeconds, "idle-seconds", 3, "length of the GET-alone phase (0 skips it)")
	fs.IntVar(&c.loaders, "loaders", 2, "connections loading keys in parallel")
	fs.Float64Var(&c.slowMillis, "slow-ms", 2, "GETs slower than this are counted, and the slowest are listed with their times")
	keelEnv := fs.String("keel-env", "", "space-separated VAR=value added to keel's environment (e.g. GODEBUG=gctrace=1 GOGC=200)")
	keelArgs := fs.String("keel-args", "", "space-separated extra flags for keel server (e.g. --pprof-addr 127.0.0.1:6060)")
	c.Register(fs, "bench/results/latency")
	if _, err := harness.ParseFlags(fs, args); err != nil {
		return c, err
	}
	c.keelEnv = strings.Fields(*keelEnv)
	c.keelArgs = strings.Fields(*keelArgs)
	switch {
	case c.keys < 1 || c.rounds < 1 || c.writeRequests < 1 || c.writeClients < 1 || c.writePipeline < 1 ||
		c.probeClients < 1 || c.loaders < 1 || c.dataBytes < 1:
		return c, errors.New("keys, rounds, datasize, write-requests, write-clients, write-pipeline, probe-clients and loaders must be positive")
	case c.persistence != "off" && c.persistence != "everysec":
		return c, errors.Newf("-persistence %q: want off or everysec", c.persistence)
	case c.writeKeyspace < 0 || c.idleSeconds < 0:
		return c, errors.New("-write-keyspace and -idle-seconds must not be negative")
	case c.keys > 1e12:
		return c, errors.New("-keys must fit the 12-digit key names")
	}
	if c.writeKeyspace == 0 {
		c.writeKeyspace = c.keys
	}
	return c, nil
}

func main() { harness.Main("latency", parseFlags, run) }

// system is one side: its binary, arguments and running process.
type system struct {
	name string
	proc *harness.Proc
	dir  string
	// started is just before the process was started: gctrace's "@Ns"
	// counts from about then, so slow GETs can be placed among GC cycles.
	started time.Time
}

func serverArgs(name string, port int, dir string, cfg config) []string {
	var args []string
	aof := cfg.persistence == "everysec"
	yesNo := map[bool]string{true: "yes", false: "no"}
	if name == "redis" {
		// No RDB snapshots: a background save would fork mid-run.
		args = []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
			"--save", "", "--appendonly", yesNo[aof], "--daemonize", "no"}
	} else {
		args = []string{"server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
			"--appendonly", yesNo[aof]}
	}
	if aof {
		args = append(args, "--appendfsync", "everysec")
	}
	if name == "keel" {
		args = append(args, cfg.keelArgs...)
	}
	return args
}

func start(name, bin string, env []string, tmp string, cfg config) (*system, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(tmp, name)
	started := time.Now()
	p, err := harness.Start(name, bin, serverArgs(name, port, dir, cfg), env, dir, port)
	if err != nil {
		return nil, err
	}
	s := &system{name: name, proc: p, dir: dir, started: started}
	deadline := time.Now().Add(time.Minute)
	for {
		if p.Exited() {
			return nil, errors.Newf("%s exited while starting: %v\n%s", name, p.Err(), p.LogTail())
		}
		if c, err := dial(p.Addr()); err == nil {
			line, err := c.do("PING")
			c.Close()
			if err == nil && line == "PONG" {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, errors.Newf("%s not ready after a minute\n%s", name, p.LogTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logSize is the current length of s's log, to cut out one phase's lines.
func (s *system) logSize() int64 {
	fi, err := os.Stat(s.dir + ".log")
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (s *system) logSince(off int64) string {
	b, err := os.ReadFile(s.dir + ".log")
	if err != nil || int64(len(b)) < off {
		return ""
	}
	return string(b[off:])
}

// phaseResult is one system's figures for one phase of one round.
type phaseResult struct {
	lat        latencyStats
	writeOps   float64 // redis-benchmark's SET ops/s; NaN in the idle phase
	writeP99   float64
	slowest    []sample
	gc         gcSummary
	hasGCTrace bool
	// startedAt is when the phase began, counted from the server's start
	// (as gctrace's "@Ns" is): a slow GET at @t in the phase happened at
	// startedAt+t in the server's log.
	startedAt time.Duration
}

const (
	phaseIdle   = "GET alone"
	phaseWrites = "GET under writes"
)

func run(ctx context.Context, cfg config) error {
	ws, keelBin, cleanup, err := cfg.Start(ctx, "keel-latency-")
	defer cleanup()
	if err != nil {
		return err
	}
	started := time.Now().UTC()
	loadAvg := harness.LoadAverage()

	redis, err := start("redis", ws.RedisServer, nil, ws.Tmp, cfg)
	if err != nil {
		return err
	}
	defer redis.proc.Stop()
	keel, err := start("keel", keelBin, cfg.keelEnv, ws.Tmp, cfg)
	if err != nil {
		return err
	}
	defer keel.proc.Stop()
	systems := []*system{redis, keel}

	loadSecs := map[string]float64{}
	for _, s := range systems {
		fmt.Printf("loading %d keys into %s ... ", cfg.keys, s.name)
		t0 := time.Now()
		if err := load(ctx, s.proc.Addr(), cfg.keys, cfg.dataBytes, cfg.loaders); err != nil {
			return errors.Wrapf(err, "load %s", s.name)
		}
		loadSecs[s.name] = time.Since(t0).Seconds()
		c, err := dial(s.proc.Addr())
		if err != nil {
			return err
		}
		n, err := c.do("DBSIZE")
		c.Close()
		if err != nil || n != strconv.Itoa(cfg.keys) {
			return errors.Newf("%s: DBSIZE %q (%v) after load, want %d", s.name, n, err, cfg.keys)
		}
		fmt.Printf("%.1fs (%.0fk keys/s)\n", loadSecs[s.name], float64(cfg.keys)/loadSecs[s.name]/1e3)
	}
	time.Sleep(2 * time.Second) // let the load's GC cycle and the kernel settle

	phases := []string{phaseWrites}
	if cfg.idleSeconds > 0 {
		phases = []string{phaseIdle, phaseWrites}
	}
	results := map[string]map[string][]phaseResult{} // phase → system → rounds
	for _, ph := range phases {
		results[ph] = map[string][]phaseResult{}
	}
	for round := 1; round <= cfg.rounds; round++ {
		order := systems
		if round%2 == 0 {
			order = []*system{keel, redis}
		}
		for _, s := range order {
			for _, ph := range phases {
				r, err := runPhase(ctx, cfg, ws.RedisBenchmark, s, ph, uint64(round))
				if err != nil {
					return errors.Wrapf(err, "%s, %s, round %d", s.name, ph, round)
				}
				if s.proc.Exited() {
					return errors.Newf("%s exited during %s: %s", s.name, ph, s.proc.LogTail())
				}
				results[ph][s.name] = append(results[ph][s.name], r)
				fmt.Printf("[round %d/%d] %-5s %-16s %s", round, cfg.rounds, s.name, ph, r.lat)
				if !math.IsNaN(r.writeOps) {
					fmt.Printf(" | SET %s ops/s", harness.FmtOps(r.writeOps))
				}
				if r.hasGCTrace {
					fmt.Printf(" | %s", r.gc)
				}
				fmt.Println()
				if len(r.slowest) > 0 && r.lat.max > cfg.slowMillis {
					fmt.Printf("        slowest (phase began @%.1fs of %s's life): %v\n", r.startedAt.Seconds(), s.name, r.slowest)
				}
			}
		}
	}
	md := report(cfg, started, loadAvg, loadSecs, phases, results)
	fmt.Println()
	fmt.Print(md)
	out, err := harness.WriteReport(ws.Root, cfg.OutDir, started, md)
	if err != nil {
		return err
	}
	fmt.Println("wrote", out)
	return nil
}

// gcTraced reports whether env turns on GODEBUG=gctrace.
func gcTraced(env []string) bool {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "GODEBUG="); ok && strings.Contains(v, "gctrace=1") {
			return true
		}
	}
	return false
}

// slowestListed is how many of a phase's slowest GETs are printed.
const slowestListed = 5

func runPhase(ctx context.Context, cfg config, benchBin string, s *system, ph string, seed uint64) (phaseResult, error) {
	res := phaseResult{writeOps: math.NaN(), writeP99: math.NaN()}
	logOff := s.logSize()
	stop := make(chan struct{})
	type probeOut struct {
		samples []sample
		err     error
	}
	done := make(chan probeOut, 1)
	t0 := time.Now()
	res.startedAt = t0.Sub(s.started)
	go func() {
		ss, err := probe(s.proc.Addr(), cfg.probeClients, cfg.keys, seed, stop)
		done <- probeOut{ss, err}
	}()
	var benchErr error
	if ph == phaseIdle {
		time.Sleep(time.Duration(cfg.idleSeconds * float64(time.Second)))
	} else {
		args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.proc.Port),
			"-c", strconv.Itoa(cfg.writeClients), "-n", strconv.Itoa(cfg.writeRequests),
			"-d", strconv.Itoa(cfg.dataBytes), "-r", strconv.Itoa(cfg.writeKeyspace),
			"-P", strconv.Itoa(cfg.writePipeline), "-t", "set"}
		var w harness.Result
		w, benchErr = harness.RunRedisBenchmark(ctx, benchBin, args)
		res.writeOps, res.writeP99 = w.OpsPerSec, w.P99Millis
	}
	close(stop)
	p := <-done
	elapsed := time.Since(t0)
	if benchErr != nil {
		return res, benchErr
	}
	if p.err != nil {
		return res, p.err
	}
	res.lat = stats(p.samples, elapsed, cfg.slowMillis)
	res.slowest = slowest(p.samples, slowestListed)
	if s.name == "keel" && gcTraced(cfg.keelEnv) {
		res.gc, _ = parseGCTrace(s.logSince(logOff))
		res.hasGCTrace = true
	}
	return res, nil
}

// latencyStats summarises one phase's GETs; latencies in milliseconds.
type latencyStats struct {
	n                   int
	perSec              float64
	p50, p99, p999, max float64
	slow                int // GETs above the slow threshold
}

func (l latencyStats) String() string {
	return fmt.Sprintf("%7d GETs (%s/s) p50 %.3f p99 %.3f p99.9 %.3f max %.1f ms, %d slow",
		l.n, harness.FmtOps(l.perSec), l.p50, l.p99, l.p999, l.max, l.slow)
}

// percentile is the nearest-rank q-quantile of sorted ms values.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func stats(ss []sample, elapsed time.Duration, slowMillis float64) latencyStats {
	ms := make([]float64, len(ss))
	slow := 0
	for i, s := range ss {
		ms[i] = float64(s.latency) / 1e6
		if ms[i] > slowMillis {
			slow++
		}
	}
	sort.Float64s(ms)
	l := latencyStats{n: len(ms), p50: percentile(ms, 0.50), p99: percentile(ms, 0.99),
		p999: percentile(ms, 0.999), max: percentile(ms, 1), slow: slow}
	if elapsed > 0 {
		l.perSec = float64(len(ms)) / elapsed.Seconds()
	}
	return l
}

// slowest returns the n slowest samples in time order.
func slowest(ss []sample, n int) []sample {
	c := append([]sample(nil), ss...)
	sort.Slice(c, func(i, j int) bool { return c[i].latency > c[j].latency })
	c = c[:min(n, len(c))]
	sort.Slice(c, func(i, j int) bool { return c[i].at < c[j].at })
	return c
}

func report(cfg config, started time.Time, loadAvg string, loadSecs map[string]float64, phases []string, results map[string]map[string][]phaseResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# GET latency under writes, keel vs Redis, %s\n\n", started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Command: `go run ./bench/latency %s`\n\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&b, "- CPUs: %d × %s; load average at start: %s\n- %s\n- %s\n- keel commit: %s\n",
		runtime.NumCPU(), harness.MachineCPUModel(), loadAvg,
		harness.CommandOutput("", "redis-server", "--version"), harness.CommandOutput("", "go", "version"), harness.KeelCommit(""))
	if len(cfg.keelEnv) > 0 {
		fmt.Fprintf(&b, "- keel environment: `%s`\n", strings.Join(cfg.keelEnv, " "))
	}
	fmt.Fprintf(&b, "\n%d keys with %d-byte values in each (load: Redis %.1f s, keel %.1f s, %d connections); persistence %s. "+
		"Write load: `redis-benchmark -t set -P %d -c %d -r %d -n %d -d %d`. Probe: %d closed-loop connections, one GET of a random loaded key at a time. "+
		"%d rounds, odd rounds Redis first; figures are medians over rounds, keel/redis the median of per-round ratios (lower is better for keel).\n\n",
		cfg.keys, cfg.dataBytes, loadSecs["redis"], loadSecs["keel"], cfg.loaders, cfg.persistence,
		cfg.writePipeline, cfg.writeClients, cfg.writeKeyspace, cfg.writeRequests, cfg.dataBytes, cfg.probeClients, cfg.rounds)
	b.WriteString("| phase | system | GETs/s | p50 ms | p99 ms | p99.9 ms | max ms | GETs > " + strconv.FormatFloat(cfg.slowMillis, 'g', -1, 64) + " ms | SET ops/s |\n")
	b.WriteString("| --- | --- | --: | --: | --: | --: | --: | --: | --: |\n")
	col := func(rs []phaseResult, f func(phaseResult) float64) []float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = f(r)
		}
		return out
	}
	getRate := func(r phaseResult) float64 { return r.lat.perSec }
	f50 := func(r phaseResult) float64 { return r.lat.p50 }
	f99 := func(r phaseResult) float64 { return r.lat.p99 }
	f999 := func(r phaseResult) float64 { return r.lat.p999 }
	fmax := func(r phaseResult) float64 { return r.lat.max }
	fslow := func(r phaseResult) float64 { return float64(r.lat.slow) / float64(max(1, r.lat.n)) }
	fw := func(r phaseResult) float64 { return r.writeOps }
	med := func(rs []phaseResult, f func(phaseResult) float64) float64 { return harness.Median(col(rs, f)) }
	ratio := func(ph string, f func(phaseResult) float64) float64 {
		return harness.MedianRatio(col(results[ph]["keel"], f), col(results[ph]["redis"], f))
	}
	for _, ph := range phases {
		for _, name := range []string{"redis", "keel"} {
			rs := results[ph][name]
			fmt.Fprintf(&b, "| %s | %s | %s | %.3f | %.3f | %.3f | %.1f | %.2f%% | %s |\n", ph, name,
				harness.FmtOps(med(rs, getRate)), med(rs, f50), med(rs, f99), med(rs, f999), med(rs, fmax),
				100*med(rs, fslow), harness.FmtOps(med(rs, fw)))
		}
		fmt.Fprintf(&b, "| %s | keel/redis | %s | %s | %s | %s | %s | | %s |\n", ph,
			harness.FmtRatio(ratio(ph, getRate), "×"), harness.FmtRatio(ratio(ph, f50), "×"), harness.FmtRatio(ratio(ph, f99), "×"),
			harness.FmtRatio(ratio(ph, f999), "×"), harness.FmtRatio(ratio(ph, fmax), "×"), harness.FmtRatio(ratio(ph, fw), "×"))
	}
	b.WriteString("\nPer round (p50 / p99 / p99.9 / max ms):\n\n")
	for _, ph := range phases {
		for _, name := range []string{"redis", "keel"} {
			var parts []string
			for _, r := range results[ph][name] {
				s := fmt.Sprintf("%.3f / %.3f / %.3f / %.1f", r.lat.p50, r.lat.p99, r.lat.p999, r.lat.max)
				if r.hasGCTrace {
					s += " (" + r.gc.String() + ")"
				}
				parts = append(parts, s)
			}
			fmt.Fprintf(&b, "- %s, %s: %s\n", ph, name, strings.Join(parts, "; "))
		}
	}
	return b.String()
}
