package scenarios

import (
	"strings"
	"testing"

	"github.com/keel-db/keel/checker"
)

// TestBankCrash runs the transaction bank workload for a few seeds: every
// seed must pass the oracle, conserve the total at every read and be
// linearizable under the bank model, and the workload must really have
// moved money (transfers acknowledged, reads checked).
func TestBankCrash(t *testing.T) {
	s := Lookup("bank-crash")
	if s == nil {
		t.Fatal("bank-crash not registered")
	}
	seeds := uint64(8)
	if testing.Short() {
		seeds = 3
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		out := RunSeed(s, seed)
		if len(out.Failures) > 0 {
			t.Fatalf("seed %d: %s", seed, strings.Join(out.Failures, "\n"))
		}
		transfers, reads := 0, 0
		for _, op := range out.History {
			if op.Unknown {
				continue
			}
			switch op.Kind {
			case checker.Transfer:
				transfers++
			case checker.MGet:
				reads++
			}
		}
		if transfers < 10 || reads < 5 {
			t.Fatalf("seed %d: only %d transfers and %d reads completed", seed, transfers, reads)
		}
		if out.Linearizability != "ok" {
			t.Fatalf("seed %d: linearizability %s", seed, out.Linearizability)
		}
		t.Logf("seed %d: %d transfers, %d full reads, linearizability %s", seed, transfers, reads, out.Linearizability)
	}
}
