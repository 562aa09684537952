package scenarios

import (
	_ "embed" // the collections library

	"github.com/keel-db/keel/sim"
)

// collectionsWasm is testdata/functions/collections.wasm (built from
// collections.c), copied here to be embedded; TestCollectionsWasmMatchesExample
// keeps the copy current. Its `call` runs one engine command on the
// declared key through keel.call.
//
//go:embed testdata/collections.wasm
var collectionsWasm []byte

func init() {
	register(&Scenario{
		Name:    "fcall-queue-crash-partition",
		Summary: "3-node group, lists as queues pushed and popped by WASM functions (FCALL call 1 k LPUSH|RPOP through keel.call; BLPOP clients woken by the functions' pushes): the leader loses power, crashes mid-I/O or is partitioned away, again and again; appendfsync always; linearizable (queue model), every list drained at the end",
		Config: func(seed uint64) sim.Config {
			cfg := queueConfig("fcall-queue-crash-partition", seed)
			cfg.Workload.Queue.Library = "#!wasm name=collections\n" + string(collectionsWasm)
			cfg.Schedule = leaderFaults
			return cfg
		},
	})
}
