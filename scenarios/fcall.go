package scenarios

import (
	_ "embed" // the transfer library
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// transferWasm is testdata/functions/transfer.wasm (built from
// transfer.c), copied here to be embedded; TestTransferWasmMatchesExample
// keeps the copy current.
//
//go:embed testdata/transfer.wasm
var transferWasm []byte

// fcallAccounts and the amounts make refusals common: an account of 100
// pays out transfers of up to 40.
const (
	fcallAccounts  = 4
	fcallOpening   = 100
	fcallAmountMax = 40
	fcallClients   = 6
	// fcallFaultsFrom leaves the setup (library load, account opening)
	// time to finish before the first crash.
	fcallFaultsFrom = time.Second
)

func init() {
	register(&Scenario{
		Name:    "fcall-transfer",
		Summary: "bank transfers as WASM functions (FCALL transfer) under power loss and crashes mid-I/O; appendfsync always; totals conserved, history linearizable (bank model)",
		Config: func(seed uint64) sim.Config {
			cfg := base("fcall-transfer", seed, cluster.FsyncAlways)
			cfg.Node.FS.TornProb = 0.3
			cfg.Workload.Clients = fcallClients
			cfg.Workload.PlainKeys = fcallAccounts
			cfg.Workload.VolatileKeys = 0
			cfg.Workload.Bank = &sim.BankConfig{
				Library:   "#!wasm name=bank\n" + string(transferWasm),
				Opening:   fcallOpening,
				AmountMax: fcallAmountMax,
			}
			cfg.Schedule = func(r *sim.Run) {
				r.At(fcallFaultsFrom, func() {
					every(r, 1500*time.Millisecond, func() {
						if r.Rand.IntN(2) == 0 {
							r.Node.PowerOff()
						} else {
							r.Node.CrashDuringIO(1 + r.Rand.Int64N(20))
						}
					})
				})
			}
			return cfg
		},
	})
}
