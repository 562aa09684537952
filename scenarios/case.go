package scenarios

import (
	"encoding/json"
	"os"
	"runtime/debug"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/sim"
)

// A Case is one run written down as data: a scenario, a seed and a
// variant (which faults and operations happen, how long the workload
// runs, the swarm mix), with what the run showed when it was written (its
// trace hash, the check it failed). `keel sim shrink` writes one; `keel
// sim replay --case FILE` runs it again and compares the trace hash: with
// the same binary it is the same run, event for event.
type Case struct {
	Scenario string      `json:"scenario"`
	Seed     uint64      `json:"seed"`
	Variant  sim.Variant `json:"variant"`
	// SwarmMix names the swarm mix the variant's Swarm draws (for the
	// reader: the seed draws it again on replay).
	SwarmMix string `json:"swarm_mix,omitempty"`
	// TraceHash is the run's trace hash when the case was written.
	TraceHash string `json:"trace_hash"`
	// Check is the check the run failed (sim.FailureCheck; "" for a
	// passing run), Failure its first failure message.
	Check   string `json:"check,omitempty"`
	Failure string `json:"failure,omitempty"`
	// Faults and Ops count what the run injected and sent; Original*
	// what the seed's own run did, before shrinking.
	Faults         int `json:"faults"`
	Ops            int `json:"ops"`
	OriginalFaults int `json:"original_faults,omitempty"`
	OriginalOps    int `json:"original_ops,omitempty"`
	// Build names the binary that wrote the case (a replay with another
	// binary may run differently).
	Build string `json:"build,omitempty"`
}

// maxCaseBytes bounds a case file read back: a shrunk case lists a few
// dozen ids, an unshrunk one every operation of a run (some 10^4 ids).
const maxCaseBytes = 64 << 20

// NewCase describes the judged run o of s.
func NewCase(s *Scenario, o *Outcome) Case {
	c := Case{
		Scenario: s.Name, Seed: o.Seed, Variant: o.Variant.Clone(), SwarmMix: o.SwarmMix,
		TraceHash: o.TraceHash, Faults: o.Injected(), Ops: len(o.SentOps), Build: buildName(),
	}
	if !o.Passed() {
		c.Failure = o.Failures[0]
		c.Check = sim.FailureCheck(o.Failures[0])
	}
	return c
}

// buildName is the module version and VCS revision the binary carries.
func buildName() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	name := bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			name += " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				name += "+modified"
			}
		}
	}
	return name
}

// WriteCase writes c to path as indented JSON.
func WriteCase(path string, c Case) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return errors.Wrap(err, "encode case")
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return errors.Wrapf(err, "write case %s", path)
	}
	return nil
}

// ReadCase reads a case file, refusing one that names no known scenario.
func ReadCase(path string) (Case, *Scenario, error) {
	var c Case
	st, err := os.Stat(path)
	if err != nil {
		return c, nil, errors.Wrapf(err, "read case")
	}
	if st.Size() > maxCaseBytes {
		return c, nil, errors.Newf("case %s is %d bytes, over the %d-byte limit", path, st.Size(), maxCaseBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return c, nil, errors.Wrapf(err, "read case")
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, nil, errors.Wrapf(err, "case %s is not a case file", path)
	}
	s := Lookup(c.Scenario)
	if s == nil {
		return c, nil, errors.Newf("case %s names scenario %q, which this binary does not know", path, c.Scenario)
	}
	return c, s, nil
}

// Run runs the case.
func (c Case) Run(opts ...func(*sim.Config)) *Outcome {
	return RunVariant(Lookup(c.Scenario), c.Seed, c.Variant, opts...)
}
