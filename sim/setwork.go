package sim

import (
	"strconv"

	"github.com/keel-db/keel/checker"
)

// SetConfig turns the workload into set traffic (issue 21): SADD, SREM,
// SISMEMBER, SCARD and SPOP on the plain keys over a few members,
// checked with the checker's set model. The final phase pops every key
// empty.
type SetConfig struct {
	// Members is how many members each key's operations draw from.
	Members int
}

// genSet draws the next set operation.
func (c *Client) genSet() opSpec {
	k := c.plainKey()
	m := "m" + strconv.Itoa(c.rng.IntN(c.r.cfg.Workload.Set.Members))
	switch p := c.rng.IntN(100); {
	case p < 35:
		return opSpec{argv: []string{"SADD", k, m}, hist: &checker.Op{Kind: checker.SAdd, Key: k, Value: m}}
	case p < 50:
		return opSpec{argv: []string{"SREM", k, m}, hist: &checker.Op{Kind: checker.SRem, Key: k, Value: m}}
	case p < 75:
		return opSpec{argv: []string{"SISMEMBER", k, m}, hist: &checker.Op{Kind: checker.SIsMember, Key: k, Value: m}}
	case p < 88:
		return opSpec{argv: []string{"SCARD", k}, hist: &checker.Op{Kind: checker.SCard, Key: k}}
	default:
		return opSpec{argv: []string{"SPOP", k}, hist: &checker.Op{Kind: checker.SPop, Key: k}}
	}
}

// setDrain is the final phase's script for a set workload: per key one
// SPOP more than it can hold members, so the last finds it empty.
func (r *Run) setDrain() []opSpec {
	var script []opSpec
	for _, k := range r.keys {
		for i := 0; i <= r.cfg.Workload.Set.Members; i++ {
			script = append(script, opSpec{argv: []string{"SPOP", k}, hist: &checker.Op{Kind: checker.SPop, Key: k}})
		}
	}
	return script
}
