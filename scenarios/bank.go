package scenarios

import (
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// The transaction bank workload (sim/banktxn.go): transfers are MULTI
// INCRBY INCRBY EXEC, one log entry each; reads are MGET or a read-only
// EXEC of GETs. Small balances and large amounts so balances often go
// negative (Overdraft): the total must still be conserved at every read
// and after every crash.
const (
	bankAccounts  = 4
	bankOpening   = 100
	bankAmountMax = 60
	bankClients   = 6
	// bankFaultsFrom leaves the accounts time to open before the first
	// crash.
	bankFaultsFrom = time.Second
)

func init() {
	register(&Scenario{
		Name:    "bank-crash",
		Summary: "bank transfers as MULTI/EXEC transactions (one log entry each) under power loss and crashes mid-I/O; appendfsync always; totals conserved, history linearizable (bank model)",
		Config: func(seed uint64) sim.Config {
			return bankConfig("bank-crash", seed, bankClients, bankAccounts,
				&sim.BankConfig{Multi: true, Opening: bankOpening, AmountMax: bankAmountMax})
		},
	})
}

// bankConfig is the world every bank scenario shares: appendfsync always,
// torn crashes, only the accounts as keys, and from bankFaultsFrom on a
// power loss or a crash mid-I/O every 1.5 s.
func bankConfig(name string, seed uint64, clients, accounts int, bank *sim.BankConfig) sim.Config {
	cfg := base(name, seed, cluster.FsyncAlways)
	cfg.Node.FS.TornProb = 0.3
	cfg.Workload.Clients = clients
	cfg.Workload.PlainKeys = accounts
	cfg.Workload.VolatileKeys = 0
	cfg.Workload.Bank = bank
	cfg.Schedule = func(r *sim.Run) {
		r.At(bankFaultsFrom, func() { crashEvery(r, 1500*time.Millisecond) })
	}
	return cfg
}

func init() {
	register(&Scenario{
		Name:    "bank-watch",
		Summary: "bank transfers as WATCH-retry loops (read the payer under WATCH, EXEC the two INCRBYs, start over on a null EXEC; no overdraft) under power loss and crashes mid-I/O; totals conserved, history linearizable (bank model)",
		Config: func(seed uint64) sim.Config {
			cfg := Lookup("bank-crash").Config(seed)
			cfg.Scenario = "bank-watch"
			cfg.Workload.Bank.Watch = true
			// Requests on a 10 ms grid share batches, so a WATCH meets a
			// write of its key in the same batch (20–40 times a seed;
			// never with spread-out think times).
			cfg.Workload.ThinkAlign = 10 * time.Millisecond
			return cfg
		},
	})
}
