package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
)

type config struct {
	throughput  bool
	rounds      int
	requests    int
	modes       []mode
	tests       []benchTest
	pipelines   []int
	clients     int
	dataBytes   int
	keyspace    int
	memoryKeys  int
	scanMatches int
	scanReps    int
	recovery    bool
	recKeys     []int
	keelBin     string
	standIn     bool
	keelEnv     []string
	keelArgs    []string
	outDir      string
	install     bool
	keep        bool
	// profileSeconds > 0 takes a CPU profile of keel under SET/GET -P 16.
	profileSeconds int
	pprofFlag      string
	profileOut     string
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var c config
	fs.BoolVar(&c.throughput, "throughput", true, "run the redis-benchmark comparison (false: only memory/scan/recovery/profile)")
	fs.IntVar(&c.rounds, "rounds", 3, "alternating rounds (each runs every test on both systems back to back; odd rounds Redis first, even rounds keel first)")
	fs.IntVar(&c.requests, "requests", 100000, "requests per redis-benchmark run at -P 1 (×P/2 when pipelined; ×P/8 for MSET/MGET)")
	modesFlag := fs.String("modes", "off,everysec", "persistence modes, applied to both: off, everysec, always, no")
	testsFlag := fs.String("tests", "set,get,incr,mset,mget", "tests to run")
	pipesFlag := fs.String("pipelines", "1,16", "redis-benchmark -P values")
	fs.IntVar(&c.clients, "clients", 50, "redis-benchmark -c")
	fs.IntVar(&c.dataBytes, "datasize", 200, "redis-benchmark -d, and the value size of the memory and recovery tests")
	fs.IntVar(&c.keyspace, "keyspace", 100000, "redis-benchmark -r")
	fs.IntVar(&c.memoryKeys, "memory-keys", 1000000, "keys loaded for the memory and prefix-scan test (0 skips it)")
	fs.IntVar(&c.scanMatches, "scan-matches", 100, "keys among -memory-keys that match the scanned prefix")
	fs.IntVar(&c.scanReps, "scan-reps", 5, "timed repetitions of the prefix scan")
	fs.BoolVar(&c.recovery, "recovery", false, "also time kill -9 → restart → every key loaded")
	recKeys := fs.String("recovery-keys", "1000000", "key counts for -recovery, comma separated (e.g. 1000000,10000000)")
	fs.StringVar(&c.keelBin, "keel-bin", "", "use this keel binary instead of building ./cmd/keel")
	fs.BoolVar(&c.standIn, "standin", false, "run redis-server in keel's place (to check the harness itself)")
	keelEnv := fs.String("keel-env", "", "space-separated VAR=value added to keel's environment (e.g. GOMAXPROCS=1)")
	keelArgs := fs.String("keel-args", "", "space-separated extra flags for keel server")
	fs.StringVar(&c.outDir, "out", "bench/results", "directory for the Markdown report")
	fs.BoolVar(&c.install, "install", true, "apt-get install redis-server redis-tools when missing")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (server logs and data)")
	fs.IntVar(&c.profileSeconds, "profile", 0, "about this many seconds of keel CPU profile under redis-benchmark -t set,get -P 16 (0: none)")
	fs.StringVar(&c.pprofFlag, "pprof-flag", "", "a keel server flag that takes an address to serve net/http/pprof on; empty: profile the server in-process (bench/inproc)")
	fs.StringVar(&c.profileOut, "profile-out", "", "also save the raw CPU profile here")
	quick := fs.Bool("quick", false, "short smoke run: 1 round, 10k requests, mode off, 100k keys for memory/scan, 100k for recovery")
	set, err := harness.ParseFlags(fs, args)
	if err != nil {
		return c, err
	}
	if *quick {
		// Explicit flags win over the quick defaults.
		if !set["rounds"] {
			c.rounds = 1
		}
		if !set["requests"] {
			c.requests = 10000
		}
		if !set["modes"] {
			*modesFlag = "off"
		}
		if !set["memory-keys"] {
			c.memoryKeys = 100000
		}
		if !set["recovery-keys"] {
			*recKeys = "100000"
		}
	}
	for _, name := range harness.SplitList(*modesFlag) {
		m, ok := modes[name]
		if !ok {
			return c, errors.Newf("unknown mode %q (want off, everysec, always, no)", name)
		}
		c.modes = append(c.modes, m)
	}
	for _, name := range harness.SplitList(*testsFlag) {
		found := false
		for _, t := range allTests {
			if strings.EqualFold(t.name, name) || name == "collections" && t.collection {
				c.tests = append(c.tests, t)
				found = true
			}
		}
		if !found {
			return c, errors.Newf("unknown test %q (want set, get, incr, mset, mget, collections or one of lpush, rpush, lpop, rpop, sadd, hset, spop, zadd, zpopmin, lrange_100)", name)
		}
	}
	if c.pipelines, err = harness.PositiveInts(*pipesFlag); err != nil {
		return c, errors.Wrap(err, "-pipelines")
	}
	if c.recKeys, err = harness.PositiveInts(*recKeys); err != nil {
		return c, errors.Wrap(err, "-recovery-keys")
	}
	c.keelEnv = strings.Fields(*keelEnv)
	c.keelArgs = strings.Fields(*keelArgs)
	if c.rounds < 1 || c.requests < 1 || len(c.modes) == 0 || len(c.tests) == 0 || len(c.pipelines) == 0 {
		return c, errors.New("need at least one round, request, mode, test and pipeline")
	}
	if c.memoryKeys > 0 && c.scanMatches >= c.memoryKeys {
		return c, errors.New("-scan-matches must be less than -memory-keys")
	}
	return c, nil
}

func main() {
	harness.Main("bench", parseFlags, run)
}

func run(ctx context.Context, cfg config) error {
	ws, cleanup, err := harness.Setup(cfg.install, cfg.keep, "keel-bench-")
	if err != nil {
		return err
	}
	defer cleanup()
	tl, root, tmp := ws.Tools, ws.Root, ws.Tmp

	redis := system{name: "redis", bin: tl.RedisServer, redisLike: true}
	keel := system{name: "keel", env: cfg.keelEnv, extraArgs: cfg.keelArgs}
	keelLabel := "keel"
	switch {
	case cfg.standIn:
		keel.bin, keel.redisLike = tl.RedisServer, true
		keelLabel = "keel (stand-in: redis-server)"
	case cfg.keelBin != "":
		keel.bin = cfg.keelBin
	default:
		keel.bin = filepath.Join(tmp, "keel")
		if err := harness.BuildKeel(ctx, root, keel.bin); err != nil {
			return err
		}
	}
	mach := describeMachine(tl.RedisServer)
	started := time.Now().UTC()

	var rows []row
	for _, m := range cfg.modes {
		if !cfg.throughput {
			break
		}
		r, err := runMode(ctx, cfg, tl, redis, keel, m, tmp)
		if err != nil {
			return errors.Wrapf(err, "mode %s", m.name)
		}
		rows = append(rows, r...)
	}
	var memRedis, memKeel memResult
	if cfg.memoryKeys > 0 {
		memRedis, memKeel = runMemory(cfg, redis, keel, tmp)
	}
	var recs []recoveryResult
	if cfg.recovery {
		for _, n := range cfg.recKeys {
			for _, sys := range []system{redis, keel} {
				for i, v := range recoveryVariants(sys) {
					if sys.redisLike && sys.name == "keel" {
						v = recoveryVariants(redis)[i] // the stand-in persists like Redis
					}
					fmt.Printf("recovery: %s %s, %d keys ... ", sys.name, v.label, n)
					r := measureRecovery(sys, v, filepath.Join(tmp, fmt.Sprintf("rec-%s-%d-%d", sys.name, n, i)), n, cfg.dataBytes)
					if r.err != nil {
						fmt.Println("failed:", r.err)
					} else {
						fmt.Printf("%.2fs\n", r.seconds)
					}
					recs = append(recs, r)
					os.RemoveAll(filepath.Join(tmp, fmt.Sprintf("rec-%s-%d-%d", sys.name, n, i)))
				}
			}
		}
	}

	var profileTop string
	if cfg.profileSeconds > 0 && !cfg.standIn {
		if profileTop, err = runProfile(ctx, cfg, tl, keel, tmp, root); err != nil {
			fmt.Println("profile failed:", err)
			profileTop = "profile failed: " + err.Error()
		}
	}

	report := renderReport(cfg, mach, keelLabel, started, rows, memRedis, memKeel, recs, profileTop)
	fmt.Println()
	fmt.Println(report.text)
	out, err := harness.WriteReport(root, cfg.outDir, started, report.markdown)
	if err != nil {
		return err
	}
	fmt.Println("wrote", out)
	return nil
}

// probe checks that sys answers a test's command without an error.
func probe(c *harness.Conn, t benchTest) error {
	_, err := c.Do(t.probe...)
	return err
}

// runMode starts both systems with persistence m and runs every round.
func runMode(ctx context.Context, cfg config, tl harness.Tools, redis, keel system, m mode, tmp string) ([]row, error) {
	servers := map[string]*server{}
	for _, sys := range []system{redis, keel} {
		dir := filepath.Join(tmp, sys.name+"-"+m.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, errors.Wrap(err, "mkdir")
		}
		s, err := startServer(sys, m, dir, 0)
		if err != nil {
			return nil, err
		}
		defer s.Stop()
		c, err := s.waitReady(time.Minute, -1)
		if err != nil {
			return nil, err
		}
		servers[sys.name] = s
		defer c.Close()
		for _, t := range cfg.tests {
			if err := probe(c, t); err != nil {
				if sys.name == "redis" {
					return nil, errors.Wrapf(err, "redis rejects %s", t.name)
				}
				fmt.Printf("keel rejects %s (%v): not measured\n", strings.Join(t.probe, " "), err)
			}
		}
	}
	// Re-probe keel per test so a rejected command is recorded, not run.
	kc, err := harness.Dial(servers["keel"].Addr(), time.Second)
	if err != nil {
		return nil, err
	}
	defer kc.Close()

	cells := []cell{}
	data := map[cell]*series{}
	for _, t := range cfg.tests {
		for _, p := range cfg.pipelines {
			c := cell{mode: m.name, test: t.name, pipeline: p}
			cells = append(cells, c)
			data[c] = &series{}
			if err := probe(kc, t); err != nil {
				data[c].skipped = "keel: " + oneLine(err.Error())
			}
		}
	}
	for round := 1; round <= cfg.rounds; round++ {
		for _, t := range cfg.tests {
			for _, p := range cfg.pipelines {
				c := cell{mode: m.name, test: t.name, pipeline: p}
				s := data[c]
				params := benchParams{clients: cfg.clients, dataBytes: cfg.dataBytes, keyspace: cfg.keyspace,
					requests: requestsFor(cfg.requests, p, t), pipeline: p}
				var rr, kr harness.Result
				runRedis := func() error {
					var err error
					rr, err = runRedisBenchmark(ctx, tl.RedisBenchmark, servers["redis"].Port, params, t)
					return err
				}
				runKeel := func() {
					kr = harness.Missing
					if s.skipped != "" {
						return
					}
					var err error
					if kr, err = runRedisBenchmark(ctx, tl.RedisBenchmark, servers["keel"].Port, params, t); err != nil {
						fmt.Println("keel:", err)
						kr = harness.Missing
					}
				}
				// Odd rounds run Redis first, even rounds keel first, so a
				// steady rise or fall of outside load favours neither side.
				if round%2 == 1 {
					if err := runRedis(); err != nil {
						return nil, err
					}
					runKeel()
				} else {
					runKeel()
					if err := runRedis(); err != nil {
						return nil, err
					}
				}
				s.redis = append(s.redis, rr)
				if servers["keel"].Exited() {
					return nil, errors.Newf("keel exited during %s -P %d; log:\n%s", t.name, p, servers["keel"].LogTail())
				}
				s.keel = append(s.keel, kr)
				fmt.Printf("[%s round %d/%d] %-4s P=%-2d  redis %9s ops/s p99 %s ms | keel %9s ops/s p99 %s ms | %s\n",
					m.name, round, cfg.rounds, t.name, p, fmtOps(rr.OpsPerSec), fmtMillis(rr.P99Millis),
					fmtOps(kr.OpsPerSec), fmtMillis(kr.P99Millis), fmtRatio(kr.OpsPerSec/rr.OpsPerSec))
			}
		}
	}
	rows := make([]row, 0, len(cells))
	for _, c := range cells {
		rows = append(rows, summarize(c, data[c]))
	}
	return rows, nil
}

type rendered struct{ text, markdown string }

func renderReport(cfg config, mach machine, keelLabel string, started time.Time, rows []row, memRedis, memKeel memResult, recs []recoveryResult, profileTop string) rendered {
	var txt, md strings.Builder
	cmdline := "go run ./bench " + strings.Join(os.Args[1:], " ")
	fmt.Fprintf(&md, "# keel vs Redis, %s\n\n", started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&md, "Command: `%s` (systems: redis, %s)\n\n", strings.TrimSpace(cmdline), keelLabel)
	md.WriteString(mach.markdown())
	fmt.Fprintf(&md, "\nredis-benchmark -c %d -d %d -r %d, %d requests per run at -P 1 (×P/2 when pipelined, ×P/8 for MSET and MGET); %d rounds, "+
		"each running every test on both systems back to back (odd rounds Redis first, even rounds keel first). Values are medians over rounds; keel/redis is the median of "+
		"per-round ratios (throughput: higher is better for keel; p99: lower is better for keel).\n\n",
		cfg.clients, cfg.dataBytes, cfg.keyspace, cfg.requests, cfg.rounds)

	if len(rows) > 0 {
		tt := throughputTable(rows)
		txt.WriteString("Throughput and latency (medians over rounds; ratios are medians of per-round ratios)\n")
		txt.WriteString(tt.text())
		md.WriteString("## Throughput and latency\n\n" + tt.markdown())
	}

	if pt := persistenceTable(rows); len(pt.rows) > 0 {
		txt.WriteString("\nCost of persistence (median ops/s in the mode / median ops/s with persistence off)\n")
		txt.WriteString(pt.text())
		md.WriteString("\n## Cost of persistence\n\nMedian throughput in each mode divided by the same system's median with persistence off.\n\n" + pt.markdown())
	}
	if cfg.memoryKeys > 0 {
		if memRedis.err != nil || memKeel.err != nil {
			fmt.Fprintf(&txt, "\nmemory/scan failed: redis: %v; keel: %v\n", memRedis.err, memKeel.err)
			fmt.Fprintf(&md, "\n## Memory and prefix scan\n\nFailed: redis: %v; keel: %v\n", memRedis.err, memKeel.err)
		} else {
			mt, st := memoryTable(memRedis, memKeel), scanTable(memRedis, memKeel)
			fmt.Fprintf(&txt, "\nMemory per key, %d keys with %d-byte values (after − empty-server baseline)\n%s", memRedis.keys, cfg.dataBytes, mt.text())
			fmt.Fprintf(&txt, "\nPrefix scan: SCAN MATCH %s* COUNT %d to cursor 0, %d matches among %d keys, %d repetitions\n%s",
				scanPrefix, scanCount, cfg.scanMatches, memRedis.keys, cfg.scanReps, st.text())
			fmt.Fprintf(&md, "\n## Memory per key\n\n%d keys with %d-byte values, loaded with pipelined SETs, persistence off; "+
				"(after − empty-server baseline) / keys.\n\n%s", memRedis.keys, cfg.dataBytes, mt.markdown())
			fmt.Fprintf(&md, "\n## Prefix scan\n\n`SCAN cursor MATCH %s* COUNT %d` looped to cursor 0; %d matching keys among %d; median of %d repetitions.\n\n%s",
				scanPrefix, scanCount, cfg.scanMatches, memRedis.keys, cfg.scanReps, st.markdown())
		}
	}
	if len(recs) > 0 {
		rt := recoveryTable(recs)
		fmt.Fprintf(&txt, "\nRecovery after kill -9 (process start → PONG with DBSIZE == keys)\n%s", rt.text())
		fmt.Fprintf(&md, "\n## Recovery after kill -9\n\nLoad the keys (%d-byte values), SAVE where stated, wait %s (> 1 s, so everysec has synced), "+
			"kill -9, restart on the same directory; time from process start to PONG with DBSIZE == keys.\n\n%s",
			cfg.dataBytes, everysecGrace, rt.markdown())
	}
	if profileTop != "" {
		how := "the server run in-process by `go test -bench ServerUnderRedisBenchmark/off ./bench/inproc` (keel server has no pprof flag); the client is a separate process, so its CPU is not in the profile"
		if cfg.pprofFlag != "" {
			how = "`keel server " + cfg.pprofFlag + " ADDR`, fetched over HTTP"
		}
		fmt.Fprintf(&txt, "\nkeel CPU profile under redis-benchmark -t set,get -P 16 (about %d s)\n%s", cfg.profileSeconds, profileTop)
		fmt.Fprintf(&md, "\n## keel CPU profile\n\nAbout %d s under `redis-benchmark -t set,get -P 16 -c 50 -d 200 -r 100000`, persistence off; "+
			"profile from %s; `go tool pprof -top -nodecount=%d`.\n\n```\n%s```\n",
			cfg.profileSeconds, how, profileTopNodes, profileTop)
	}
	return rendered{text: txt.String(), markdown: md.String()}
}
