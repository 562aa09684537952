package sim

import (
	"strconv"

	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/seam"
)

// TTL keys in the replicated worlds (WorkloadConfig.TTLKeys): keys that
// every write gives a time to live far longer than the run (SET k v PX
// <1–2 h>, EXPIRE k <1–2 h>; never INCRBY, which would create a key
// without one), so none expires during the run and the kv checker judges
// their values as usual (a SET PX is a SET), while their TTLs are checked
// apart. Every PTTL a client reads, and one per key after the final reads,
// must show, on a key that exists, a TTL (never -1) whose deadline is no
// later than the latest one a write issued before the read returned could
// have set. A write's deadline is its leader's clock when it applied plus
// its TTL, and the leader's clock then is at most the fastest node clock
// at the write's return (or at the read's, if it returned later or never);
// the read's deadline is at least the slowest node clock at its call plus
// the TTL it read. Clocks are not stepped in these worlds, so a node's
// clock at an earlier moment is known (Clock.at).

// ttlSharePct is the share (percent) of operations on TTL keys.
const ttlSharePct = 40

// ttlWrite is a write that set a key's TTL (SET PX, EXPIRE).
type ttlWrite struct {
	call, ret int64 // virtual times; ret 0: no reply (yet, or ever)
	ttlMs     int64
}

// ttlBook holds the TTL writes per key and counts the checks.
type ttlBook struct {
	writes  map[string][]*ttlWrite
	checked int64
}

// ttlKeyName is TTL key i's name: "{tag}x<i>" over the workload's tags.
func (w *WorkloadConfig) ttlKeyName(i int) string {
	if len(w.KeyTags) > 0 {
		return "{" + w.KeyTags[i%len(w.KeyTags)] + "}x" + strconv.Itoa(i)
	}
	return w.KeyPrefix + "x" + strconv.Itoa(i)
}

// genTTL draws an operation on a TTL key.
func (c *Client) genTTL() opSpec {
	w := &c.r.cfg.Workload
	k := w.ttlKeyName(c.rng.IntN(w.TTLKeys))
	ttlMs := int64(3_600_000) + c.rng.Int64N(3_600_000)
	switch p := c.rng.IntN(100); {
	case p < 35:
		v := c.value()
		h := &checker.Op{Kind: checker.Set, Key: k, Value: v}
		argv := []string{"SET", k, v, "PX", strconv.FormatInt(ttlMs, 10)}
		switch c.rng.IntN(6) {
		case 0:
			argv, h.NX = append(argv, "NX"), true
		case 1:
			argv, h.XX = append(argv, "XX"), true
		}
		return opSpec{argv: argv, hist: h, ttlMs: ttlMs}
	case p < 50:
		secs := ttlMs / 1000
		return opSpec{argv: []string{"EXPIRE", k, strconv.FormatInt(secs, 10)}, ttlMs: secs * 1000}
	case p < 70:
		return opSpec{argv: []string{"GET", k}, hist: &checker.Op{Kind: checker.Get, Key: k}}
	case p < 93:
		return opSpec{argv: []string{"PTTL", k}, ttlRead: true}
	default:
		return opSpec{argv: []string{"DEL", k}, hist: &checker.Op{Kind: checker.Del, Key: k}}
	}
}

// ttlIssued records a TTL write when it is issued (it may take effect
// even if no reply ever comes).
func (r *Run) ttlIssued(op *opSpec, call int64) *ttlWrite {
	if r.ttl.writes == nil {
		r.ttl.writes = map[string][]*ttlWrite{}
	}
	w := &ttlWrite{call: call, ttlMs: op.ttlMs}
	k := op.argv[1]
	r.ttl.writes[k] = append(r.ttl.writes[k], w)
	return w
}

// clockBounds are the slowest and fastest node clocks (ms) at virtual
// time v.
func (r *Run) clockBounds(v int64) (slowest, fastest int64) {
	nodes := []*Node{r.Node}
	if r.Group != nil {
		nodes = r.Group.Nodes
	}
	for i, n := range nodes {
		t := seam.Millis(n.Clock.at(v))
		if i == 0 || t < slowest {
			slowest = t
		}
		if i == 0 || t > fastest {
			fastest = t
		}
	}
	return slowest, fastest
}

// checkTTLRead judges a PTTL of key issued at call and answered r now.
func (r *Run) checkTTLRead(key string, call int64, rep Reply, final bool) {
	if rep.Kind != ':' || rep.Int == -2 {
		return // an error (judged elsewhere), or no such key
	}
	r.ttl.checked++
	who := "PTTL " + key
	if final {
		who = "the final " + who
	}
	where := "ttl: " + who + " (issued at " + fmtVirtual(call) + ") answered " + strconv.FormatInt(rep.Int, 10)
	if rep.Int < 0 {
		r.Oracle.fail(where + ": the key exists without a TTL, but every write of it sets one")
		return
	}
	now := r.W.now
	slowest, _ := r.clockBounds(call)
	deadline := slowest + rep.Int // at least this
	latest, any := int64(0), false
	for _, w := range r.ttl.writes[key] {
		if w.call >= now {
			continue
		}
		at := now
		if w.ret > 0 && w.ret < now {
			at = w.ret
		}
		_, fastest := r.clockBounds(at)
		if b := fastest + w.ttlMs; !any || b > latest {
			latest, any = b, true
		}
	}
	switch {
	case !any:
		r.Oracle.fail(where + ": no write that sets a TTL on the key was issued before")
	case deadline > latest+1: // PTTL rounds to the millisecond
		r.Oracle.fail(where + ": a deadline of at least " + strconv.FormatInt(deadline-simEpoch/1e6, 10) +
			" ms (simulation epoch), later than any write could have set (" + strconv.FormatInt(latest-simEpoch/1e6, 10) + " ms)")
	}
}

func fmtVirtual(v int64) string { return strconv.FormatFloat(float64(v)/1e9, 'f', 6, 64) + "s" }
