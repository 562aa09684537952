// Command cluster measures what replication and sharding cost: a 3-node
// keel cluster of one Raft group, and one of three groups, against a
// single keel node, Redis with one asynchronous replica and a 3-master
// Redis Cluster, all on this machine, in the same run, as ratios.
//
//	go run ./bench/cluster            # 3 rounds of SET/GET at -P 1 and -P 16
//	go run ./bench/cluster --quick    # 1 round, 10k requests: a smoke run
//	go run ./bench/cluster --baseline-bin /tmp/keel-base --systems cluster,cluster-base,single
//	                                  # a change to the group against a build without it, side by side
//
// The five systems, all with appendonly yes and appendfsync everysec:
//
//   - cluster: three `keel server --node-id N --peers ...` processes, one
//     Raft group; a write is acknowledged once a majority holds it.
//   - single: one `keel server` with the same flags but no peers.
//   - redis+replica: redis-server and a second redis-server with
//     --replicaof it; the primary acknowledges before the replica has the
//     write (Redis's asynchronous replication).
//   - sharded: three keel nodes with --groups 3: each hosts a replica of
//     every group, group g owns the g-th third of the slots, and each node
//     leads one group, so CLUSTER NODES shows three masters. Measurement
//     starts once every node shows all three (startTimeout).
//   - redis-cluster: three redis-server --cluster-enabled processes, the
//     slots assigned by redis-cli --cluster create --cluster-replicas 0:
//     sharded's yardstick (three masters, no replication).
//   - placed: six keel nodes with --groups 6 --replicas 3 (issue 17's
//     placement: each node hosts half of the groups and leads one),
//     against the one group on three nodes.
//
// redis-benchmark (-c 50 -d 200 -r 100000, --csv) drives each in turn
// within a round, the order rotated round by round (A B C D E, B C D E A,
// ...) so that outside load drifting during the run favours none; the
// figures are medians over rounds and the ratios medians of per-round
// ratios. The sharded systems are driven with redis-benchmark --cluster,
// which spreads its clients over the masters. The one-group cluster is
// driven at its leader: with redis-benchmark --cluster when that works
// against keel's CLUSTER NODES (--cluster-mode auto probes it;
// redis-benchmark 7.0 refuses a cluster with a single master, which a
// one-group keel cluster is), else by the leader's port directly. A run
// that got an error reply (redis-benchmark 7 then exits non-zero) or
// during which the leader (sharded: the masters or their slots) changed is
// reported as missing, not as fast. A system that cannot be started, or
// whose process exits, is reported missing with the reason; the others are
// still measured.
//
// --baseline-bin adds a sixth system, cluster-base: the same 3-node group
// started from another keel binary (a build of the commit before a
// change), measured in the same rounds, so that a change is judged by
// cluster/single against cluster-base/single of the same run rather than
// by two runs under different outside load. --systems measures only the
// systems named (the others are reported as not asked for).
//
// Every run also accounts its CPU: each server process's utime+stime
// (/proc/PID/stat) and redis-benchmark's own, per request, next to the
// machine's busy share (/proc/stat). Once the cores are busy, throughput
// cannot pass cores / (CPU per request of everything serving it), and CPU
// per request moves far less with outside load than throughput; the
// report puts the throughput ratio to the single node next to the ratio
// that bound predicts (issue 18: whether a 3-node group on two shared
// cores can reach a given fraction of a single node).
//
// Like bench/, it is a black-box client: it starts binaries and speaks
// RESP through go-redis; it imports nothing of keel but the harness code it
// shares with bench/ (bench/internal/harness). docs/performance.md
// ("Replicated cluster") holds the figures.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
	"github.com/redis/go-redis/v9"
)

type config struct {
	rounds      int
	requests    int
	clients     int
	dataBytes   int
	keyspace    int
	pipelines   []int
	tests       []string
	clusterMode string // auto, yes, no: redis-benchmark --cluster for the keel cluster
	keelBin     string
	baseBin     string          // --baseline-bin: cluster-base runs it
	systems     map[string]bool // --systems; nil: all
	install     bool
	keep        bool
	outDir      string
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench/cluster", flag.ContinueOnError)
	var c config
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; each runs every test on every system back to back")
	fs.IntVar(&c.requests, "requests", 100000, "requests per redis-benchmark run at -P 1 (×P/2 when pipelined)")
	fs.IntVar(&c.clients, "clients", 50, "redis-benchmark -c")
	fs.IntVar(&c.dataBytes, "datasize", 200, "redis-benchmark -d")
	fs.IntVar(&c.keyspace, "keyspace", 100000, "redis-benchmark -r")
	pipes := fs.String("pipelines", "1,16", "redis-benchmark -P values")
	tests := fs.String("tests", "set,get", "redis-benchmark -t tests (GET after SET so it mostly hits)")
	fs.StringVar(&c.clusterMode, "cluster-mode", "auto", "drive the keel cluster with redis-benchmark --cluster: auto (probe it), yes, no (leader's port)")
	fs.StringVar(&c.keelBin, "keel-bin", "", "use this keel binary instead of building ./cmd/keel")
	fs.StringVar(&c.baseBin, "baseline-bin", "", "also measure cluster-base: the 3-node group started from this keel binary")
	systems := fs.String("systems", "", "measure only these systems (comma-separated: "+strings.Join(allSystems, ", ")+"); empty: all")
	fs.BoolVar(&c.install, "install", true, "apt-get install redis-server redis-tools when missing")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (logs and data)")
	fs.StringVar(&c.outDir, "out", "bench/cluster/results", "directory for the Markdown report (relative to the module root)")
	quick := fs.Bool("quick", false, "smoke run: 1 round, 10k requests")
	set, err := harness.ParseFlags(fs, args)
	if err != nil {
		return c, err
	}
	if *quick {
		if !set["rounds"] {
			c.rounds = 1
		}
		if !set["requests"] {
			c.requests = 10000
		}
	}
	if c.pipelines, err = harness.PositiveInts(*pipes); err != nil {
		return c, errors.Wrap(err, "-pipelines")
	}
	for _, f := range strings.Split(*tests, ",") {
		switch f = strings.ToLower(strings.TrimSpace(f)); f {
		case "set", "get", "incr":
			c.tests = append(c.tests, f)
		default:
			return c, errors.Newf("-tests: %q is not one of set, get, incr", f)
		}
	}
	if *systems != "" {
		c.systems = map[string]bool{}
		for _, f := range strings.Split(*systems, ",") {
			f = strings.TrimSpace(f)
			if !slices.Contains(allSystems, f) {
				return c, errors.Newf("-systems: %q is not one of %s", f, strings.Join(allSystems, ", "))
			}
			c.systems[f] = true
		}
	}
	if c.systems[baseSystem] && c.baseBin == "" {
		return c, errors.New("-systems names cluster-base, which needs -baseline-bin")
	}
	switch c.clusterMode {
	case "auto", "yes", "no":
	default:
		return c, errors.Newf("-cluster-mode %q: want auto, yes or no", c.clusterMode)
	}
	if c.rounds < 1 || c.requests < 1 || c.clients < 1 || len(c.pipelines) == 0 || len(c.tests) == 0 {
		return c, errors.New("need at least one round, request, client, pipeline and test")
	}
	return c, nil
}

// allSystems are the systems a run can measure, in report order;
// baseSystem is measured only with --baseline-bin.
var allSystems = []string{"cluster", baseSystem, "single", "redis+replica", "sharded", "redis-cluster", "placed"}

const baseSystem = "cluster-base"

// wants reports whether the run measures system name.
func (c config) wants(name string) bool {
	if name == baseSystem && c.baseBin == "" {
		return false
	}
	return c.systems == nil || c.systems[name]
}

func main() {
	// go-redis logs every refused dial while a server starts: noise here.
	redis.SetLogger(quietLogger{})
	harness.Main("bench/cluster", parseFlags, run)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func run(ctx context.Context, cfg config) error {
	ws, cleanup, err := harness.Setup(cfg.install, cfg.keep, "keel-bench-cluster-")
	if err != nil {
		return err
	}
	defer cleanup()
	tl, root, tmp := ws.Tools, ws.Root, ws.Tmp
	keelBin := cfg.keelBin
	if keelBin == "" {
		keelBin = filepath.Join(tmp, "keel")
		if err := harness.BuildKeel(ctx, root, keelBin); err != nil {
			return err
		}
	}
	mach := describeMachine(root, tl.RedisServer, cfg.keelBin)
	started := time.Now().UTC()

	// A system that cannot be started is reported absent, with why; the
	// others are measured.
	absent := map[string]string{}
	start := func(name string, f func() (*system, error)) *system {
		if !cfg.wants(name) {
			if name != baseSystem || cfg.baseBin != "" {
				absent[name] = "not asked for (--systems)"
			}
			return nil
		}
		fmt.Println("starting", name)
		sys, err := f()
		if err != nil {
			absent[name] = oneLine(err.Error())
			fmt.Printf("%s could not be started, reported missing: %+v\n", name, err)
			return nil
		}
		return sys
	}
	cl := start("cluster", func() (*system, error) { return startKeelCluster(keelBin, tmp, "cluster", 3) })
	base := start(baseSystem, func() (*system, error) { return startKeelCluster(cfg.baseBin, tmp, baseSystem, 3) })
	single := start("single", func() (*system, error) { return startKeelSingle(keelBin, tmp) })
	rr := start("redis+replica", func() (*system, error) { return startRedisWithReplica(tl.RedisServer, tmp) })
	sharded := start("sharded", func() (*system, error) {
		s, err := startKeelSharded(keelBin, tmp)
		if err != nil {
			return nil, err
		}
		if err := probeBenchmarkCluster(ctx, tl.RedisBenchmark, s); err != nil {
			s.stop()
			return nil, errors.Wrap(err, "redis-benchmark --cluster against keel --groups")
		}
		return s, nil
	})
	rc := start("redis-cluster", func() (*system, error) {
		s, err := startRedisCluster(ctx, tl.RedisServer, tmp)
		if err != nil {
			return nil, err
		}
		if err := probeBenchmarkCluster(ctx, tl.RedisBenchmark, s); err != nil {
			s.stop()
			return nil, errors.Wrap(err, "redis-benchmark --cluster against Redis Cluster")
		}
		return s, nil
	})
	// placed: issue 17's placement, six groups of three on six nodes.
	placed := start("placed", func() (*system, error) {
		s, err := startKeelPlaced(keelBin, tmp)
		if err != nil {
			return nil, err
		}
		if err := probeBenchmarkCluster(ctx, tl.RedisBenchmark, s); err != nil {
			s.stop()
			return nil, errors.Wrap(err, "redis-benchmark --cluster against keel --groups 6 --replicas 3")
		}
		return s, nil
	})
	for _, s := range []*system{cl, base, single, rr, sharded, rc, placed} {
		if s != nil {
			defer s.stop()
		}
	}

	useCluster := false
	if probe := cmp.Or(cl, base); probe != nil {
		switch cfg.clusterMode {
		case "yes":
			useCluster = true
		case "auto":
			if err := probeBenchmarkCluster(ctx, tl.RedisBenchmark, probe); err != nil {
				fmt.Printf("redis-benchmark --cluster does not work against a one-group keel cluster (%v): driving the leader's port\n", oneLine(err.Error()))
			} else {
				useCluster = true
			}
		}
	}
	systems := []target{
		{name: "cluster", sys: cl, cluster: useCluster},
	}
	if cfg.baseBin != "" {
		systems = append(systems, target{name: baseSystem, sys: base, cluster: useCluster})
	}
	systems = append(systems, []target{
		{name: "single", sys: single},
		{name: "redis+replica", sys: rr},
		{name: "sharded", sys: sharded, cluster: true},
		{name: "redis-cluster", sys: rc, cluster: true},
		{name: "placed", sys: placed, cluster: true},
	}...)
	results, err := runRounds(ctx, cfg, tl, systems, absent)
	if err != nil {
		return err
	}
	how := "the leader's port"
	if useCluster {
		how = "redis-benchmark --cluster (slots from CLUSTER NODES; all on the leader)"
	}
	rep := render(cfg, mach, started, how, results)
	fmt.Println()
	fmt.Println(rep.text)
	out, err := harness.WriteReport(root, cfg.outDir, started, rep.markdown)
	if err != nil {
		return err
	}
	fmt.Println("wrote", out)
	return nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
