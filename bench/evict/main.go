// Command evict measures keel's eviction against Redis's in the same run
// (issue 16's benchmark): a skewed workload (Zipf, exponent 0.99) of GET,
// then SET on a miss, over a keyspace several times larger than
// maxmemory, under allkeys-lru and allkeys-lfu with the same
// maxmemory-samples on both. It reports the hit ratio, the throughput
// under eviction and the RSS against maxmemory plus the empty server's
// RSS. A second part, active expiry, gives a million keys one expiry
// time and measures GET latency on other keys while they expire.
//
//	go run ./bench/evict                       # 3 rounds, 1M-key space, 64 MB limit
//	go run ./bench/evict --rounds 1 --ops 300000 --expiry-keys 200000   # a quick look
//
// Each trial starts a fresh server (persistence off) so that no policy
// inherits another's keys. Throughput counts GETs and SETs; the ratios
// are medians of per-round ratios, the systems' order alternating. The
// report goes to bench/results/evict/<time>.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
)

type config struct {
	rounds     int
	keys       int
	data       int
	maxmemory  int // MB
	policies   []string
	samples    int
	clients    int
	warmOps    int
	ops        int
	theta      float64
	expiryKeys int
	harness.Common
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("evict", flag.ContinueOnError)
	var c config
	fs.IntVar(&c.rounds, "rounds", 3, "rounds, the systems' order alternating")
	fs.IntVar(&c.keys, "keys", 1_000_000, "the keyspace the workload draws from")
	fs.IntVar(&c.data, "datasize", 200, "value bytes")
	fs.IntVar(&c.maxmemory, "maxmemory-mb", 64, "maxmemory of both servers, MB (the keyspace should be several times larger)")
	policies := fs.String("policies", "allkeys-lru,allkeys-lfu", "maxmemory-policy values to compare")
	fs.IntVar(&c.samples, "samples", 5, "maxmemory-samples of both")
	fs.IntVar(&c.clients, "clients", 50, "connections, each GET then SET on a miss, one request at a time")
	fs.IntVar(&c.warmOps, "warm-ops", 1_000_000, "GETs before measuring (fills the cache)")
	fs.IntVar(&c.ops, "ops", 1_000_000, "GETs measured")
	fs.Float64Var(&c.theta, "zipf", 0.99, "Zipf exponent of the key popularity")
	fs.IntVar(&c.expiryKeys, "expiry-keys", 1_000_000, "keys given one expiry time in the active-expiry part (0 skips it)")
	c.Register(fs, "bench/results/evict")
	if _, err := harness.ParseFlags(fs, args); err != nil {
		return c, err
	}
	c.policies = harness.SplitList(*policies)
	switch {
	case c.rounds < 1 || c.keys < 1 || c.data < 1 || c.maxmemory < 1 || c.samples < 1 || c.clients < 1 || c.ops < 1:
		return c, errors.New("-rounds, -keys, -datasize, -maxmemory-mb, -samples, -clients and -ops must be positive")
	case c.warmOps < 0 || c.expiryKeys < 0:
		return c, errors.New("-warm-ops and -expiry-keys must not be negative")
	case c.theta <= 0:
		return c, errors.New("-zipf must be positive")
	case len(c.policies) == 0:
		return c, errors.New("-policies: none given")
	}
	return c, nil
}

func main() { harness.Main("evict", parseFlags, run) }

var systemNames = []string{"keel", "redis"}

// start runs one fresh server of system name with extra flags (the same
// names on both: keel takes Redis's).
func start(ws harness.Workspace, keelBin, name, tag string, extra []string) (*harness.Proc, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(ws.Tmp, name+"-"+tag)
	var bin string
	var args []string
	if name == "keel" {
		bin, args = keelBin, []string{"server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--appendonly", "no"}
	} else {
		bin, args = ws.RedisServer, []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no"}
	}
	p, err := harness.Start(name, bin, append(args, extra...), nil, dir, port)
	if err != nil {
		return nil, err
	}
	if err := p.WaitUntil("PONG", harness.Pong); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// trial is one system's figures under one policy in one round.
type trial struct {
	hits, gets, sets int64
	elapsed          time.Duration
	emptyRSS, rss    int64
	evicted          int64
}

func (t trial) hitRatio() float64 { return float64(t.hits) / float64(t.gets) }
func (t trial) opsPerSec() float64 {
	return float64(t.gets+t.sets) / t.elapsed.Seconds()
}

func run(ctx context.Context, cfg config) error {
	started := time.Now()
	ws, keelBin, cleanup, err := cfg.Start(ctx, "keel-evict-")
	defer cleanup()
	if err != nil {
		return err
	}
	z := newZipf(cfg.keys, cfg.theta)
	value := []byte(strings.Repeat("v", cfg.data))
	results := map[string]map[string][]trial{} // policy → system → rounds
	for _, pol := range cfg.policies {
		results[pol] = map[string][]trial{}
	}
	for r := range cfg.rounds {
		for _, pol := range cfg.policies {
			order := slices.Clone(systemNames)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, name := range order {
				fmt.Printf("round %d %s %s ... ", r+1, pol, name)
				t, err := hitTrial(ctx, ws, keelBin, name, pol, cfg, z, value, uint64(r+1))
				if err != nil {
					return errors.Wrapf(err, "%s %s", name, pol)
				}
				fmt.Printf("hit ratio %.4f, %s ops/s, RSS %.1f MB (empty %.1f), %d evicted\n", t.hitRatio(),
					harness.FmtOps(t.opsPerSec()), mb(t.rss), mb(t.emptyRSS), t.evicted)
				results[pol][name] = append(results[pol][name], t)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
	}
	var exp map[string][]expiryResult
	if cfg.expiryKeys > 0 {
		exp = map[string][]expiryResult{}
		for r := range cfg.rounds {
			order := slices.Clone(systemNames)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, name := range order {
				fmt.Printf("round %d active expiry %s ... ", r+1, name)
				e, err := expiryTrial(ctx, ws, keelBin, name, cfg, value, r)
				if err != nil {
					return errors.Wrapf(err, "%s active expiry", name)
				}
				fmt.Printf("GET p99 %s ms before, %s ms during (max %s), %d of %d keys left after %s\n",
					harness.FmtMillis(e.beforeP99), harness.FmtMillis(e.duringP99), harness.FmtMillis(e.duringMax), e.left, cfg.expiryKeys, expiryWatch)
				exp[name] = append(exp[name], e)
			}
		}
	}
	md := report(cfg, results, exp, started, harness.KeelCommit(ws.Root))
	path, err := harness.WriteReport(ws.Root, cfg.OutDir, started, md)
	if err != nil {
		return err
	}
	fmt.Print("\n" + md)
	fmt.Println("report:", path)
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// hitTrial runs the GET-then-SET-on-miss workload on a fresh server.
func hitTrial(ctx context.Context, ws harness.Workspace, keelBin, name, policy string, cfg config, z *zipf, value []byte, seed uint64) (trial, error) {
	p, err := start(ws, keelBin, name, policy, []string{"--maxmemory", strconv.Itoa(cfg.maxmemory) + "mb",
		"--maxmemory-policy", policy, "--maxmemory-samples", strconv.Itoa(cfg.samples)})
	if err != nil {
		return trial{}, err
	}
	defer p.Stop()
	var t trial
	if t.emptyRSS, err = p.RSS(); err != nil {
		return t, err
	}
	var mu sync.Mutex
	phase := func(opsTotal int, count bool, phaseSeed uint64) error {
		var wg sync.WaitGroup
		errs := make([]error, cfg.clients)
		for i := range cfg.clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := harness.Dial(p.Addr(), 5*time.Second)
				if err != nil {
					errs[i] = err
					return
				}
				defer c.Close()
				rnd := rand.New(rand.NewPCG(seed, phaseSeed*1000+uint64(i)))
				var hits, gets, sets int64
				get, set := []byte("GET"), []byte("SET")
				var key []byte
				for n := i; n < opsTotal; n += cfg.clients {
					if ctx.Err() != nil {
						errs[i] = ctx.Err()
						return
					}
					key = strconv.AppendInt(append(key[:0], "key:"...), int64(z.next(rnd)), 10)
					c.Send(get, key)
					if err := c.Flush(); err != nil {
						errs[i] = err
						return
					}
					r, err := c.Read()
					if err != nil {
						errs[i] = errors.Wrap(err, "GET")
						return
					}
					gets++
					if !r.Null {
						hits++
						continue
					}
					c.Send(set, key, value)
					if err := c.Flush(); err != nil {
						errs[i] = err
						return
					}
					if _, err := c.Read(); err != nil {
						// An OOM refusal would be an error reply: both
						// servers evict here, so any error is a failure.
						errs[i] = errors.Wrap(err, "SET")
						return
					}
					sets++
				}
				if count {
					mu.Lock()
					t.hits, t.gets, t.sets = t.hits+hits, t.gets+gets, t.sets+sets
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	if err := phase(cfg.warmOps, false, 1); err != nil {
		return t, err
	}
	begin := time.Now()
	if err := phase(cfg.ops, true, 2); err != nil {
		return t, err
	}
	t.elapsed = time.Since(begin)
	if t.rss, err = p.RSS(); err != nil {
		return t, err
	}
	c, err := harness.Dial(p.Addr(), 5*time.Second)
	if err != nil {
		return t, err
	}
	defer c.Close()
	info, err := c.Do("INFO", "stats")
	if err != nil {
		return t, err
	}
	for _, line := range strings.Split(info.Str, "\r\n") {
		if v, ok := strings.CutPrefix(line, "evicted_keys:"); ok {
			t.evicted, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if t.evicted == 0 {
		return t, errors.Newf("no key was evicted: the keyspace does not exceed -maxmemory-mb %d", cfg.maxmemory)
	}
	return t, nil
}

// The active-expiry part: expiryLead is how far ahead the common expiry
// time is set once the keys are loaded (their PEXPIREATs must all land
// before it); the probe runs from then until expiryWatch after it.
const (
	expiryLead     = 3 * time.Second
	expiryWatch    = 5 * time.Second
	expiryProbes   = 8
	expiryProbeKey = 10_000 // keys without a TTL that the probe reads
)

type expiryResult struct {
	beforeP99, duringP99, duringMax float64 // ms
	left                            int64   // expiring keys still counted by DBSIZE at the end
}

func expiryTrial(ctx context.Context, ws harness.Workspace, keelBin, name string, cfg config, value []byte, round int) (expiryResult, error) {
	var res expiryResult
	p, err := start(ws, keelBin, name, fmt.Sprintf("expiry-%d", round), nil)
	if err != nil {
		return res, err
	}
	defer p.Stop()
	c, err := harness.Dial(p.Addr(), 5*time.Second)
	if err != nil {
		return res, err
	}
	defer c.Close()
	// The probe's keys, then the expiring ones, then one expiry time for
	// all of them.
	if err := c.Pipeline(expiryProbeKey, func(i int) [][]byte {
		return [][]byte{[]byte("SET"), []byte("probe:" + strconv.Itoa(i)), value}
	}); err != nil {
		return res, err
	}
	if err := c.Pipeline(cfg.expiryKeys, func(i int) [][]byte {
		return [][]byte{[]byte("SET"), []byte("exp:" + strconv.Itoa(i)), value}
	}); err != nil {
		return res, err
	}
	at := time.Now().Add(expiryLead)
	atMs := []byte(strconv.FormatInt(at.UnixMilli(), 10))
	if err := c.Pipeline(cfg.expiryKeys, func(i int) [][]byte {
		return [][]byte{[]byte("PEXPIREAT"), []byte("exp:" + strconv.Itoa(i)), atMs}
	}); err != nil {
		return res, err
	}
	if time.Now().After(at) {
		return res, errors.Newf("setting %d expiry times took longer than %s: lower -expiry-keys", cfg.expiryKeys, expiryLead)
	}
	before, during := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3), hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, expiryProbes)
	end := at.Add(expiryWatch)
	for i := range expiryProbes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc, err := harness.Dial(p.Addr(), 5*time.Second)
			if err != nil {
				errs[i] = err
				return
			}
			defer pc.Close()
			rnd := rand.New(rand.NewPCG(uint64(round), uint64(i)))
			get := []byte("GET")
			for ctx.Err() == nil {
				sent := time.Now()
				if sent.After(end) {
					return
				}
				pc.Send(get, []byte("probe:"+strconv.Itoa(rnd.IntN(expiryProbeKey))))
				if err := pc.Flush(); err != nil {
					errs[i] = err
					return
				}
				if _, err := pc.Read(); err != nil {
					errs[i] = err
					return
				}
				us := time.Since(sent).Microseconds()
				mu.Lock()
				if sent.Before(at) {
					before.RecordValue(max(us, 1))
				} else {
					during.RecordValue(max(us, 1))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	n, err := c.Do("DBSIZE")
	if err != nil {
		return res, err
	}
	res.left = n.Num - expiryProbeKey
	res.beforeP99 = float64(before.ValueAtQuantile(99)) / 1000
	res.duringP99 = float64(during.ValueAtQuantile(99)) / 1000
	res.duringMax = float64(during.Max()) / 1000
	return res, nil
}
