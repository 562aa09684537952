package scenarios

import (
	"time"

	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/sim"
)

// CheckTimeout bounds the linearizability check of one seed.
const CheckTimeout = 10 * time.Second

// CheckTimeoutGroupBank bounds it for bank workloads on a replicated
// group: their unknown outcomes carry no deadline (see RunSeed), and a
// seed with a dozen of them on one account map can take 20–30 s on a
// loaded 2-core machine (cluster-fcall seed 718: 24 s, linearizable).
const CheckTimeoutGroupBank = 90 * time.Second

// Outcome is a judged seed.
type Outcome struct {
	*sim.Result
	// Linearizability is the checker's verdict ("ok", "illegal",
	// "unknown", or "skipped" when acknowledged writes were allowed to be
	// lost), and Check the full result when it ran.
	Linearizability string
	Check           checker.Result
}

// RunSeed runs one seed of s and judges it. trace (optional) gets every
// trace line.
func RunSeed(s *Scenario, seed uint64, opts ...func(*sim.Config)) *Outcome {
	cfg := s.Config(seed)
	for _, o := range opts {
		o(&cfg)
	}
	res := sim.Execute(cfg)
	out := &Outcome{Result: res, Linearizability: "skipped"}
	if !res.LinearizabilityApplies || len(res.History) == 0 {
		return out
	}
	// After Execute: porcupine uses goroutines and the wall clock, which
	// must never run inside a simulated world.
	model := checker.ModelKV
	if cfg.Workload.Bank != nil {
		model = checker.ModelBank
	}
	// Each simulated client is one in-order connection that a crash
	// breaks only after recovery ends, and a request a partition blocks is
	// dropped, never delivered late: an unknown outcome took effect, if at
	// all, before the client's next command returned. The deadline keeps
	// a broken history's check short and its verdict illegal (with an
	// explanation) rather than unknown.
	//
	// Not in a replicated group: a write whose client timed out can sit
	// in a deposed leader's log and commit much later, after the client
	// moved on to another node (sim/group.go), so no deadline is sound.
	if cfg.Group == nil {
		checker.DeadlinesFromNextOp(res.History)
	}
	timeout := CheckTimeout
	if cfg.Group != nil && model == checker.ModelBank {
		timeout = CheckTimeoutGroupBank
	}
	chk, err := checker.Check(res.History, checker.Options{Model: model, Timeout: timeout})
	if err != nil {
		out.Failures = append(out.Failures, "the simulator recorded a history the checker cannot read: "+err.Error())
		out.Linearizability = "error"
		return out
	}
	out.Check = chk
	out.Linearizability = string(chk.Verdict)
	if !chk.Passed() { // illegal, or unknown (out of time): both fail the seed
		out.Failures = append(out.Failures, "linearizability: "+chk.Summary()+": "+chk.Explanation)
	}
	return out
}
