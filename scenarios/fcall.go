package scenarios

import (
	_ "embed" // the transfer library

	"github.com/keel-db/keel/sim"
)

// transferWasm is testdata/functions/transfer.wasm (built from
// transfer.c), copied here to be embedded; TestTransferWasmMatchesExample
// keeps the copy current.
//
//go:embed testdata/transfer.wasm
var transferWasm []byte

// bank2Wasm is testdata/bank2.wasm (built from bank2.c): transfer and
// balance as in transfer.wasm, plus transfer_split, which reads and
// writes each of its keys twice.
//
//go:embed testdata/bank2.wasm
var bank2Wasm []byte

// fcallAccounts and the amounts make refusals common: an account of 100
// pays out transfers of up to 40.
const (
	fcallAccounts  = 4
	fcallOpening   = 100
	fcallAmountMax = 40
	fcallClients   = 6
)

func init() {
	register(&Scenario{
		Name:    "fcall-transfer",
		Summary: "bank transfers as WASM functions (FCALL transfer, and transfer_split, which reads and writes each key twice) under power loss and crashes mid-I/O; appendfsync always; totals conserved, history linearizable (bank model)",
		Config: func(seed uint64) sim.Config {
			return bankConfig("fcall-transfer", seed, fcallClients, fcallAccounts, &sim.BankConfig{
				Library:   "#!wasm name=bank\n" + string(bank2Wasm),
				Opening:   fcallOpening,
				AmountMax: fcallAmountMax,
				SplitPct:  50,
			})
		},
	})
}
