package scenarios

import (
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/sim"
)

// cluster-evict: maxmemory far below what the workload writes, so the
// leader evicts all the time (node/evict.go), under crashes of the leader
// or a follower, partitions of the leader and the leader changes they
// bring. The history learns every eviction the leaders log (sim/evict.go):
// a key may vanish only through one, so the linearizability check proves
// no acknowledged write is lost any other way, and after the final
// restart every replica must hold the same keys (sim/group.go).

// Sizes of cluster-evict: values of 200 B to 2 KB cost about 1.2 KB a key
// as the engine counts them, so evictLimitAllKeys holds about 10 of the
// 24 keys; under a volatile policy only the TTL keys may go, so the limit
// is higher (the 16 plain keys fit, with room for a few TTL keys).
const (
	evictPlainKeys         = 16
	evictTTLKeys           = 8
	evictValueBytesMin     = 200
	evictValueBytesMax     = 2000
	evictLimitAllKeys      = 12 << 10
	evictLimitVolatileKeys = 20 << 10
)

// evictPolicies are the seven policies that evict, one per seed in turn.
var evictPolicies = []engine.Policy{engine.AllKeysLRU, engine.AllKeysLFU, engine.AllKeysRandom,
	engine.VolatileLRU, engine.VolatileLFU, engine.VolatileRandom, engine.VolatileTTL}

func evictConfig(name string, seed uint64) sim.Config {
	cfg := clusterBase(name, seed, cluster.FsyncAlways)
	cfg.Node.FS.TornProb = 0.3
	cfg.Workload.PlainKeys, cfg.Workload.TTLKeys = evictPlainKeys, evictTTLKeys
	cfg.Workload.ValueBytesMin, cfg.Workload.ValueBytesMax = evictValueBytesMin, evictValueBytesMax
	p := evictPolicies[seed%uint64(len(evictPolicies))]
	cfg.Node.MaxMemoryPolicy, cfg.Node.MaxMemory = p, evictLimitAllKeys
	if !p.AllKeys() {
		cfg.Node.MaxMemory = evictLimitVolatileKeys
	}
	cfg.Schedule = func(r *sim.Run) {
		r.Trace("maxmemory " + itoa(uint64(cfg.Node.MaxMemory)) + " policy " + p.String())
		faultCycles(r, time.Second, func() time.Duration {
			switch r.Rand.IntN(3) {
			case 0:
				return crashNode(r, r.Group.Leader())
			case 1:
				return crashNode(r, randomFollower(r))
			}
			if l := r.Group.Leader(); l != nil {
				r.Fault("partition")
				r.Net.Partition([]uint64{l.ID()}, nodeIDs(r.Group.Followers()))
			}
			return 500*time.Millisecond + time.Duration(r.Rand.Int64N(int64(2*time.Second)))
		})
	}
	cfg.Check = func(r *sim.Run) []string {
		if r.Evictions() == 0 {
			return []string{"evict: no leader evicted anything (the limit is not binding)"}
		}
		return nil
	}
	return cfg
}

// Sizes of evict-crash (one node): 8 plain and 4 volatile keys of 200 B
// to 2 KB; about 5 fit under the all-keys limit, and the plain keys
// nearly fill the volatile one, so writes are also refused (OOM) there.
const (
	evictSingleLimitAllKeys      = 6 << 10
	evictSingleLimitVolatileKeys = 10 << 10
)

func evictSingleConfig(name string, seed uint64) sim.Config {
	cfg := base(name, seed, policyFor(seed))
	cfg.Node.FS.TornProb = 0.3
	cfg.Workload.ValueBytesMin, cfg.Workload.ValueBytesMax = evictValueBytesMin, evictValueBytesMax
	// OOM refusals are errors the oracle holds to "did not happen".
	cfg.TolerateWriteErrors = true
	p := evictPolicies[seed%uint64(len(evictPolicies))]
	cfg.Node.MaxMemoryPolicy, cfg.Node.MaxMemory = p, evictSingleLimitAllKeys
	if !p.AllKeys() {
		cfg.Node.MaxMemory = evictSingleLimitVolatileKeys
	}
	cfg.Schedule = func(r *sim.Run) {
		r.Trace("maxmemory " + itoa(uint64(cfg.Node.MaxMemory)) + " policy " + p.String())
		crashEvery(r, 1500*time.Millisecond)
	}
	cfg.Check = func(r *sim.Run) []string {
		if r.Evictions() == 0 {
			return []string{"evict: the node evicted nothing (the limit is not binding)"}
		}
		return nil
	}
	return cfg
}

func init() {
	register(&Scenario{
		Name: "evict-crash",
		Summary: "one node, maxmemory far below the data (the seven evicting policies by seed, keys with TTLs): evictions are logged " +
			"and the oracle's model applies them; power loss at random times and disk operations; recovery replays them exactly",
		Config: func(seed uint64) sim.Config { return evictSingleConfig("evict-crash", seed) },
	})
	register(&Scenario{
		Name: "cluster-evict",
		Summary: "3-node group, maxmemory far below the data (the seven evicting policies by seed, TTL keys): the leader evicts through the log " +
			"under leader and follower crashes and leader partitions; keys vanish only by logged evictions, replicas converge",
		Config: func(seed uint64) sim.Config { return evictConfig("cluster-evict", seed) },
	})
}
