package scenarios

import (
	_ "embed" // the rmw library
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// rmwWasm is testdata/functions/rmw.wasm (built from rmw.c), copied here
// to be embedded; TestRMWWasmMatchesExample keeps the copy current.
//
//go:embed testdata/rmw.wasm
var rmwWasm []byte

// The grammar scenario (issue 20): commands drawn from each command's
// grammar over every data type, on a few hot keys (Zipf), with MULTI
// blocks, WATCH on the hottest key and FCALLs that read and write one key
// several times, under power loss and crashes in the middle of writes
// with torn sectors. The oracle checks every reply against the typed
// model in the node's execution order, and every recovery (each key read
// back whole) against the prefixes of the writes.
const (
	grammarKeys    = 12
	grammarClients = 10
)

func grammarConfig(name string, seed uint64) sim.Config {
	cfg := base(name, seed, policyFor(seed))
	cfg.Workload.Clients = grammarClients
	cfg.Workload.PlainKeys = grammarKeys
	cfg.Workload.VolatileKeys = 0
	// Requests of different clients arrive together, so a WATCH meets a
	// write of its key in the same batch.
	cfg.Workload.ThinkAlign = 5 * time.Millisecond
	cfg.Workload.Grammar = &sim.GrammarConfig{
		Keys:         grammarKeys,
		Zipf:         1.2,
		IllFormedPct: 4,
		MultiPct:     6,
		WatchPct:     8,
		FcallPct:     4,
		Library:      "#!wasm name=rmw\n" + string(rmwWasm),
	}
	cfg.Node.FS.TornProb = 0.5
	cfg.Schedule = func(r *sim.Run) { crashEvery(r, 1500*time.Millisecond) }
	return cfg
}

func init() {
	register(&Scenario{
		Name: "grammar",
		Summary: "commands drawn from each command's grammar (strings, key space, hashes, lists, sets, sorted sets, bitmaps; every option, " +
			"TTL forms, ill-formed now and then) on a few hot keys of every type, with MULTI, WATCH on the hottest key and FCALLs that " +
			"read and write one key several times; power loss and crashes mid-I/O with torn sectors; every reply checked against a typed model, " +
			"every recovery read back whole",
		Config: func(seed uint64) sim.Config { return grammarConfig("grammar", seed) },
	})
}

func init() {
	register(&Scenario{
		Name: "cluster-grammar",
		Summary: "3-node group, the grammar workload (every data type, every option, hot keys, MULTI, WATCH on the hottest key): " +
			"the leader loses power, crashes mid-I/O or is partitioned away, again and again; appendfsync always; " +
			"at the end every replica holds the same keys, types, contents and deadlines",
		Config: func(seed uint64) sim.Config {
			cfg := clusterBase("cluster-grammar", seed, cluster.FsyncAlways)
			cfg.Node.FS.TornProb = 0.3
			cfg.Workload.Clients = grammarClients
			cfg.Workload.PlainKeys = grammarKeys
			cfg.Workload.ThinkAlign = 5 * time.Millisecond
			cfg.Workload.Grammar = &sim.GrammarConfig{Keys: grammarKeys, Zipf: 1.2, IllFormedPct: 4, MultiPct: 6, WatchPct: 8}
			cfg.Group.FollowerReadPct = 0 // a READONLY GET of a hash answers WRONGTYPE
			cfg.Schedule = leaderFaults
			return cfg
		},
	})
}
