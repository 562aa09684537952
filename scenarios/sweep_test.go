package scenarios

import (
	"testing"

	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/sim"
)

// A report for a seed whose own check did not run re-checks with the model
// its history needs: kv unless it holds transfers.
func TestReportModel(t *testing.T) {
	kv := &Outcome{Result: &sim.Result{History: []checker.Op{{Kind: checker.Set, Key: "a", Value: "1"}}}}
	if got := reportModel(kv); got != checker.ModelKV {
		t.Errorf("kv history: model %q", got)
	}
	bank := &Outcome{Result: &sim.Result{History: []checker.Op{
		{Kind: checker.Set, Key: "acct:a", Value: "1"},
		{Kind: checker.Transfer, From: "acct:a", To: "acct:b", Amount: 1},
	}}}
	if got := reportModel(bank); got != checker.ModelBank {
		t.Errorf("bank history: model %q", got)
	}
	bank.Check.Model = checker.ModelKV // the seed's own check decides when it ran
	if got := reportModel(bank); got != checker.ModelKV {
		t.Errorf("checked history: model %q", got)
	}
}
