package sim

import (
	"strconv"

	"github.com/keel-db/keel/checker"
)

// ZSetConfig turns the workload into sorted-set traffic (issue 21): ZADD,
// ZINCRBY, ZSCORE, ZRANK and ZPOPMIN on the plain keys, over a few members
// with small integer scores so that ranks tie and change, checked with the
// checker's zset model. The final phase pops every key empty.
type ZSetConfig struct {
	// Members is how many members each key's operations draw from.
	Members int
}

func (c *Client) zsetMember() string {
	return "m" + strconv.Itoa(c.rng.IntN(c.r.cfg.Workload.ZSet.Members))
}

// genZSet draws the next sorted-set operation.
func (c *Client) genZSet() opSpec {
	k := c.plainKey()
	switch p := c.rng.IntN(100); {
	case p < 30:
		m, s := c.zsetMember(), int64(c.rng.IntN(21))
		return opSpec{argv: []string{"ZADD", k, itoa(s), m}, hist: &checker.Op{Kind: checker.ZAdd, Key: k, Value: m, Delta: s}}
	case p < 50:
		m, d := c.zsetMember(), int64(c.rng.IntN(11)-5)
		return opSpec{argv: []string{"ZINCRBY", k, itoa(d), m}, hist: &checker.Op{Kind: checker.ZIncrBy, Key: k, Value: m, Delta: d}}
	case p < 65:
		m := c.zsetMember()
		return opSpec{argv: []string{"ZSCORE", k, m}, hist: &checker.Op{Kind: checker.ZScore, Key: k, Value: m}}
	case p < 90:
		m := c.zsetMember()
		return opSpec{argv: []string{"ZRANK", k, m}, hist: &checker.Op{Kind: checker.ZRank, Key: k, Value: m}}
	default:
		return opSpec{argv: []string{"ZPOPMIN", k}, hist: &checker.Op{Kind: checker.ZPopMin, Key: k}}
	}
}

// zpopminOutput maps ZPOPMIN's reply ([member, score], or empty) to the
// zset model's "member score" or null.
func zpopminOutput(r Reply) (checker.Value, bool) {
	switch {
	case r.Kind == '*' && len(r.Elems) == 0, r.Kind == '_':
		return checker.Nil, true
	case r.Kind == '*' && len(r.Elems) == 2 && r.Elems[0].Kind == '$' && (r.Elems[1].Kind == '$' || r.Elems[1].Kind == ','):
		return checker.Str(r.Elems[0].Str + " " + r.Elems[1].Str), true
	}
	return checker.Value{}, false
}

// zsetDrain is the final phase's script for a sorted-set workload: per
// key one ZPOPMIN more than it can hold members, so the last finds it
// empty.
func (r *Run) zsetDrain() []opSpec {
	var script []opSpec
	for _, k := range r.keys {
		for i := 0; i <= r.cfg.Workload.ZSet.Members; i++ {
			script = append(script, opSpec{argv: []string{"ZPOPMIN", k}, hist: &checker.Op{Kind: checker.ZPopMin, Key: k}})
		}
	}
	return script
}
