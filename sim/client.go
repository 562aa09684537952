package sim

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/checker"
)

// WorkloadConfig is the client side of a run.
type WorkloadConfig struct {
	Clients int
	// PlainKeys are used by SET/GET/DEL/INCRBY/MGET and recorded in the
	// linearizability history; VolatileKeys also get TTLs (SET EX,
	// EXPIRE), which the kv checker model does not know, so their
	// operations are checked by the oracle only.
	PlainKeys    int
	VolatileKeys int
	// Think is the mean pause between a reply and the next request.
	Think time.Duration
	// Timeout: a request unanswered this long has an unknown outcome.
	Timeout time.Duration
	// Bank, when set, replaces the mix with the transfer workload through
	// FCALL (bank.go).
	Bank *BankConfig
	// KeyPrefix is put before every key name ("{g}" in the replicated
	// worlds: one hash tag, so MGET stays within one slot).
	KeyPrefix string
	// KeyTags, when set, spreads the plain keys over hash tags (and so
	// over slots, and the replica groups owning them): key i is
	// "{tag}k<i>" with tag KeyTags[i % len(KeyTags)], and an MGET reads
	// keys of one tag. KeyPrefix is then not used.
	KeyTags []string
}

// keyName is plain key i's name.
func (w *WorkloadConfig) keyName(i int) string {
	if len(w.KeyTags) > 0 {
		return "{" + w.KeyTags[i%len(w.KeyTags)] + "}k" + strconv.Itoa(i)
	}
	return w.KeyPrefix + "k" + strconv.Itoa(i)
}

// opSpec is one generated operation: the command and its history entry.
type opSpec struct {
	argv []string
	hist *checker.Op // nil: not in the linearizability history
	// readOnly: a follower read on a READONLY connection (groupclient.go),
	// recorded outside the history.
	readOnly bool
}

// Client is a simulated Redis client without pipelining: one request
// outstanding, a timeout, a history of what it saw.
type Client struct {
	r       *Run
	id      uint64
	name    string
	rng     *rand.Rand
	node    *Node
	seq     uint64
	cur     *opSpec
	curSeq  uint64
	curCall int64
	stopped bool
	// route is the replicated world's routing state (groupclient.go).
	route route
}

func (c *Client) start() {
	c.r.W.After(c.think(), c.issue)
}

func (c *Client) think() time.Duration {
	m := c.r.cfg.Workload.Think
	if m <= 0 {
		return 0
	}
	return time.Duration(c.rng.ExpFloat64() * float64(m))
}

func (c *Client) issue() {
	if c.r.Group != nil {
		c.issueGroup()
		return
	}
	if c.stopped || c.r.W.now >= int64(c.r.cfg.Duration) {
		return
	}
	if c.bankWaiting() {
		c.r.W.After(c.think()+time.Millisecond, c.issue)
		return
	}
	op := c.gen()
	c.seq++
	seq := c.seq
	c.cur, c.curSeq, c.curCall = &op, seq, c.r.W.now
	c.r.Stats.Ops++
	words := make([]string, len(op.argv))
	for i, a := range op.argv {
		words[i] = traceArg(a)
	}
	c.r.W.Trace(c.name, "call #"+itoa(int64(seq))+" "+strings.Join(words, " "))
	argv := make([][]byte, len(op.argv))
	for i, a := range op.argv {
		argv[i] = []byte(a)
	}
	q := &request{client: c.id, seq: seq, argv: argv, words: op.argv}
	node := c.node
	c.r.Net.sendStream(c.id, node.cfg.ID, func() { node.receive(q) })
	c.r.W.After(c.r.cfg.Workload.Timeout, func() {
		if c.cur != nil && c.curSeq == seq {
			c.r.W.Trace(c.name, "timeout #"+itoa(int64(seq)))
			c.r.Stats.Unknown++
			c.finish(nil)
		}
	})
}

func (c *Client) onReply(seq uint64, r Reply) {
	if c.r.Group != nil {
		c.onGroupReply(seq, r)
		return
	}
	if c.cur == nil || c.curSeq != seq {
		c.r.W.Trace(c.name, "late reply #"+itoa(int64(seq))+" "+r.String())
		return
	}
	c.r.W.Trace(c.name, "return #"+itoa(int64(seq))+" "+r.String())
	c.finish(&r)
}

// finish records the operation (r nil: unknown outcome) and moves on.
func (c *Client) finish(r *Reply) {
	op := c.cur
	c.cur = nil
	c.bankReplied(op, r) // banktxn.go: WATCH-retry state; may drop op.hist
	if op.hist != nil {
		h := *op.hist
		h.Client = int(c.id)
		h.Call = c.curCall
		switch {
		case r == nil:
			h.Unknown = true
		case !historyOutput(&h, *r):
			if r.IsError() && h.Kind != checker.Get && h.Kind != checker.MGet {
				// A write refused with an error (disk full, disk fault) did
				// not happen: that is keel's contract, and the oracle holds
				// the node to it (a refused write that took effect breaks
				// the sequential model at the next read of its key). Left
				// out of the history rather than kept as an unknown
				// outcome, which would make the search explode.
				c.r.Stats.Refused++
				c.r.Refused = append(c.r.Refused, RefusedOp{Call: c.curCall, Return: c.r.W.now, Reply: r.Str})
				c.r.W.After(c.think(), c.issue)
				return
			}
			h.Unknown = true
		default:
			h.Return = c.r.W.now
		}
		c.r.History = append(c.r.History, h)
	}
	c.r.W.After(c.think(), c.issue)
}

// historyOutput fills h's output from r; false when r says nothing the
// model can use (an unexpected error: the outcome is then unknown).
func historyOutput(h *checker.Op, r Reply) bool {
	if h.Kind == checker.Transfer {
		v, ok := transferOutput(r)
		h.Output = v
		return ok
	}
	conv := func(r Reply) (checker.Value, bool) {
		switch r.Kind {
		case '$', '+':
			return checker.Str(r.Str), true
		case '_':
			return checker.Nil, true
		case ':':
			return checker.Int(r.Int), true
		case '-':
			if h.Kind == checker.IncrBy && (strings.Contains(r.Str, "not an integer") || strings.Contains(r.Str, "overflow")) {
				return checker.Err(r.Str), true
			}
		}
		return checker.Value{}, false
	}
	if h.Kind == checker.MGet {
		if r.Kind != '*' || len(r.Elems) != len(h.Keys) {
			return false
		}
		for _, e := range r.Elems {
			v, ok := conv(e)
			if !ok {
				return false
			}
			h.Outputs = append(h.Outputs, v)
		}
		return true
	}
	v, ok := conv(r)
	h.Output = v
	return ok
}

func (c *Client) plainKey() string {
	return c.r.cfg.Workload.keyName(c.rng.IntN(c.r.cfg.Workload.PlainKeys))
}

// sameTagKey is a plain key with the same hash tag as the plain key
// first (any plain key when the keys carry no KeyTags).
func (c *Client) sameTagKey(first string) string {
	w := &c.r.cfg.Workload
	if len(w.KeyTags) == 0 {
		return c.plainKey()
	}
	i, _ := strconv.Atoi(first[strings.LastIndexByte(first, 'k')+1:])
	t := len(w.KeyTags)
	n := (w.PlainKeys - i%t + t - 1) / t // keys i%t, i%t+t, ... below PlainKeys
	return w.keyName(i%t + t*c.rng.IntN(n))
}
func (c *Client) volatileKey() string {
	return "t" + strconv.Itoa(c.rng.IntN(c.r.cfg.Workload.VolatileKeys))
}

func (c *Client) value() string {
	if c.rng.IntN(10) < 3 {
		return strconv.Itoa(c.rng.IntN(100))
	}
	return "c" + itoa(int64(c.id)) + "-" + itoa(int64(c.seq+1))
}

// gen draws the next operation: mostly single-key string commands on a
// small key space, so clients contend.
func (c *Client) gen() opSpec {
	if c.r.cfg.Workload.Bank != nil {
		return c.genBank()
	}
	vol := c.r.cfg.Workload.VolatileKeys > 0
	for {
		switch p := c.rng.IntN(100); {
		case p < 22:
			k, v := c.plainKey(), c.value()
			h := &checker.Op{Kind: checker.Set, Key: k, Value: v}
			argv := []string{"SET", k, v}
			switch c.rng.IntN(6) {
			case 0:
				argv, h.NX = append(argv, "NX"), true
			case 1:
				argv, h.XX = append(argv, "XX"), true
			}
			return opSpec{argv: argv, hist: h}
		case p < 47:
			k := c.plainKey()
			return opSpec{argv: []string{"GET", k}, hist: &checker.Op{Kind: checker.Get, Key: k}}
		case p < 54:
			k := c.plainKey()
			return opSpec{argv: []string{"DEL", k}, hist: &checker.Op{Kind: checker.Del, Key: k}}
		case p < 68:
			k, d := c.plainKey(), int64(c.rng.IntN(21)-5)
			return opSpec{argv: []string{"INCRBY", k, itoa(d)}, hist: &checker.Op{Kind: checker.IncrBy, Key: k, Delta: d}}
		case p < 78:
			n := 2 + c.rng.IntN(2)
			keys := make([]string, n)
			for i := range keys {
				if i == 0 {
					keys[i] = c.plainKey()
				} else {
					keys[i] = c.sameTagKey(keys[0])
				}
			}
			return opSpec{argv: append([]string{"MGET"}, keys...), hist: &checker.Op{Kind: checker.MGet, Keys: keys}}
		case p < 81:
			return opSpec{argv: []string{"SCAN", "0", "COUNT", "1000"}}
		case !vol:
			continue
		case p < 88:
			argv := []string{"SET", c.volatileKey(), c.value(), "EX", strconv.Itoa(1 + c.rng.IntN(3))}
			if c.rng.IntN(4) == 0 {
				argv = append(argv, "NX")
			}
			return opSpec{argv: argv}
		case p < 93:
			return opSpec{argv: []string{"EXPIRE", c.volatileKey(), strconv.Itoa(1 + c.rng.IntN(3))}}
		default:
			if c.rng.IntN(2) == 0 {
				return opSpec{argv: []string{"GET", c.volatileKey()}}
			}
			return opSpec{argv: []string{"MGET", c.volatileKey(), c.plainKey()}}
		}
	}
}

// ID is the client's id on the network.
func (c *Client) ID() uint64 { return c.id }
