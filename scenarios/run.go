package scenarios

import (
	"sort"
	"strings"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/sim"
)

// CheckTimeout bounds the linearizability check of one seed.
const CheckTimeout = 10 * time.Second

// CheckTimeoutLong bounds it for bank workloads on a replicated
// group: their unknown outcomes carry no deadline (see RunSeed), and a
// seed with a dozen of them on one account map can take 20–30 s on a
// loaded 2-core machine (cluster-fcall seed 718: 24 s, linearizable).
// The collection models (queue, set, sorted set) get it too: a queue's
// state is its whole list, and 26–35 unknown pops and pushes on 8 lists
// took 25 s (queue-crash-partition seeds 449, 460 and 480 of the sweep
// after the second wave: linearizable, but unknown within 10 s).
//
// Placed worlds (six or seven nodes, clients following -MOVED across
// them while replicas move) get it for the kv model too: their histories
// run to about 11,000 operations, and cluster-rereplicate seed 524's took
// 61 s to prove linearizable (unknown within 10 s in a two-process sweep).
//
// One-node worlds get it for every model but kv: their unknown outcomes
// have deadlines, but a swarm mix that crashes the node every 1–2 s
// leaves many of them on one account map. bank-crash swarm seed 97038
// (55 unknown transfers on 4 accounts) took 55 s for keel check on an
// idle machine, and fcall-transfer's (54) 4m56s, until the simulator
// left out the timed-out operations no node read (sim/client.go,
// timedOut): 10 unknown outcomes are left, checked in under 0.1 s
// (docs/checker.md).
const CheckTimeoutLong = 90 * time.Second

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
	return RunVariant(s, seed, sim.Variant{}, opts...)
}

// SeedConfig is the configuration of seed of s under variant v: the
// scenario's, with a swarm mix in place of its schedule when v asks for
// one and the scenario has a swarm world.
func SeedConfig(s *Scenario, seed uint64, v sim.Variant) sim.Config {
	cfg := s.Config(seed)
	if w := SwarmWorld(s); v.Swarm && w != "" {
		applySwarm(&cfg, seed, w)
	}
	cfg.Variant = v
	return cfg
}

// RunVariant is RunSeed under a variant (shrinking, exploration, swarm).
func RunVariant(s *Scenario, seed uint64, v sim.Variant, opts ...func(*sim.Config)) *Outcome {
	cfg := SeedConfig(s, seed, v)
	for _, o := range opts {
		o(&cfg)
	}
	return judge(cfg)
}

func judge(cfg sim.Config) *Outcome {
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
	if cfg.Workload.Queue != nil {
		model = checker.ModelQueue
	}
	if cfg.Workload.ZSet != nil {
		model = checker.ModelZSet
	}
	if cfg.Workload.Set != nil {
		model = checker.ModelSet
	}
	// Each simulated client is one in-order connection that a crash
	// breaks only after recovery ends, and a request a partition blocks is
	// dropped, never delivered late: an unknown outcome took effect, if at
	// all, before the client's next command returned. (Timed-out commands
	// no node read are not in the history at all: sim/client.go,
	// timedOut.) The deadline keeps
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
	if model != checker.ModelKV || cfg.Group != nil && cfg.Group.Replicas > 0 {
		timeout = CheckTimeoutLong
	}
	var chk checker.Result
	var err error
	if model == checker.ModelBank && len(cfg.Workload.KeyTags) > 1 {
		chk, err = checkBanksByTag(res.History, timeout)
	} else {
		chk, err = checker.Check(res.History, checker.Options{Model: model, Timeout: timeout})
	}
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

// checkBanksByTag checks a bank history whose accounts live under several
// hash tags, one bank per tag (cluster-fcall-groups): no operation spans
// two tags (a call, a transaction or an MGET is served within one slot),
// so the history is linearizable exactly when each tag's is (locality),
// and checking the banks apart keeps each search small. The result is the
// first bank that is not linearizable, else their sum.
func checkBanksByTag(history []checker.Op, timeout time.Duration) (checker.Result, error) {
	var tags []string
	parts := map[string][]checker.Op{}
	for _, op := range history {
		k := op.Key
		switch {
		case op.Kind == checker.Transfer:
			k = op.From
		case len(op.Keys) > 0:
			k = op.Keys[0]
		}
		t := keyTag(k)
		if _, ok := parts[t]; !ok {
			tags = append(tags, t)
		}
		parts[t] = append(parts[t], op)
	}
	sort.Strings(tags)
	var sum checker.Result
	for i, t := range tags {
		r, err := checker.Check(parts[t], checker.Options{Model: checker.ModelBank, Timeout: timeout})
		if err != nil {
			return r, errors.Wrapf(err, "the bank under tag {%s}", t)
		}
		if !r.Passed() {
			r.Explanation = "the bank under tag {" + t + "}: " + r.Explanation
			return r, nil
		}
		if i == 0 {
			sum = r
			continue
		}
		sum.Ops += r.Ops
		sum.UnknownOps += r.UnknownOps
		sum.Partitions += r.Partitions
		sum.Elapsed += r.Elapsed
	}
	return sum, nil
}

// keyTag is a key's hash tag as Redis Cluster reads it ("" for none).
func keyTag(k string) string {
	i := strings.IndexByte(k, '{')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(k[i+1:], '}')
	if j <= 0 {
		return ""
	}
	return k[i+1 : i+1+j]
}
