package sim

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/resp"
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
	// Queue, when set, replaces the mix with LPUSH, RPOP and BLPOP on the
	// plain keys (queue.go; the queue model).
	Queue *QueueConfig
	// ZSet, when set, replaces the mix with sorted-set commands on the
	// plain keys (zsetwork.go; the zset model).
	ZSet *ZSetConfig
	// Set, when set, replaces the mix with set commands on the plain keys
	// (setwork.go; the set model).
	Set *SetConfig
	// KeyPrefix is put before every key name ("{g}" in the replicated
	// worlds: one hash tag, so MGET stays within one slot).
	KeyPrefix string
	// ValueBytesMin and ValueBytesMax, when set, pad the unique string
	// values written to a size between them (big values make snapshots
	// many times the transport's message limit).
	ValueBytesMin, ValueBytesMax int
	// TTLKeys are keys every write gives a TTL far longer than the run
	// (ttlkeys.go; the replicated worlds): their values are in the
	// history, their TTLs are checked apart.
	TTLKeys int
	// Subscribers are clients that PSUBSCRIBE to keyspace events and
	// check what they get (subscriber.go; the single-node world, with
	// NodeConfig.NotifyKeyspaceEvents set).
	Subscribers int
	// ThinkAlign, when set, makes every client issue its next request at
	// a multiple of it (after its think time): requests of different
	// clients arrive together and share batches, so a WATCH meets a
	// write of its key in the same batch (contention the spread-out
	// think times almost never give: 3 of 3,238 batches held two
	// requests in one bank-watch seed).
	ThinkAlign time.Duration
	// PlainSetTTLPct is the share (percent) of SETs on volatile keys sent
	// without EX: a plain SET on a key that has a TTL, which must clear it.
	PlainSetTTLPct int
	// Grammar, when set, replaces the mix with commands drawn from each
	// command's grammar (grammar.go; the typed model, gmodel.go).
	Grammar *GrammarConfig
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
	// keepsSession: the operation's connection must serve the next one
	// too (a WATCH whose EXEC follows); session, when set, is the
	// connection the operation must go on (the EXEC under that WATCH).
	keepsSession bool
	session      *conn
	// ttlMs, for a write of a TTL key (ttlkeys.go), is the TTL it sets;
	// ttlW is its record once issued. ttlRead marks a PTTL whose answer
	// the TTL check judges.
	ttlMs   int64
	ttlW    *ttlWrite
	ttlRead bool
	// at, when set, is the node the operation goes to first (a FUNCTION
	// LOAD aimed at a group's leader, bank.go).
	at *Node
}

// Client is a simulated Redis client: one operation outstanding at a time
// (an operation may be a pipeline, such as MULTI ... EXEC), a timeout, a
// history of what it saw. It speaks RESP over simulated connections
// (conn.go), one per node it talks to, opened on first use and again after
// one breaks, as a client library's pool does.
type Client struct {
	r       *Run
	id      uint64
	name    string
	rng     *rand.Rand
	node    *Node // the single-node world's node
	seq     uint64
	cur     *opSpec
	curSeq  uint64
	curCall int64
	// curRead: a node's session read some attempt's bytes of the
	// current operation into a batch (conn.send); until then keel has
	// not seen it, and it cannot have run. notRun is the last operation
	// left out of the history for never having been read: no session
	// may read its bytes later.
	curRead bool
	notRun  uint64
	stopped bool
	// route is the replicated world's routing state (groupclient.go).
	route route
	// conns are the client's connections, by node id; roConns those it
	// sent READONLY on (follower reads).
	conns, roConns map[uint64]*conn
	// att is the attempt in flight: where the current operation was sent
	// and the replies that came back so far.
	att attempt
	// sub is a subscriber's state (subscriber.go); nil for the others.
	sub *subscriberState
	// zipf draws the grammar workload's hot keys; gw is its WATCH in
	// progress (grammar.go).
	zipf *rand.Zipf
	gw   *gwatch
}

// attempt is one send of the current operation.
type attempt struct {
	id       uint64
	conn     *conn
	want     int
	got      []Reply
	inFlight bool
}

func (c *Client) start() {
	if c.sub != nil {
		c.r.W.After(c.think(), c.subscribe)
		return
	}
	c.r.W.After(c.think(), c.issue)
}

func (c *Client) think() time.Duration {
	m := c.r.cfg.Workload.Think
	if m <= 0 {
		return 0
	}
	d := time.Duration(c.rng.ExpFloat64() * float64(m))
	if a := int64(c.r.cfg.Workload.ThinkAlign); a > 0 {
		at := c.r.W.now + int64(d)
		d = time.Duration((at+a-1)/a*a - c.r.W.now)
	}
	return d
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
	if !c.r.sendOp(c, c.seq, op.argv) {
		c.skip(&op)
		return
	}
	c.cur, c.curSeq, c.curCall, c.curRead = &op, c.seq, c.r.W.now, false
	c.r.Stats.Ops++
	c.traceCall(&op, "")
	c.send(c.node, false)
}

// skip passes over a drawn operation the run's variant leaves out: it is
// never sent, as if the client had not chosen it (a WATCH-retry transfer
// in progress starts over).
func (c *Client) skip(op *opSpec) {
	c.bankReplied(op, nil)
	c.grammarReplied(op, nil)
	c.r.W.After(c.think(), c.issue)
}

// traceCall traces the start of the current operation.
func (c *Client) traceCall(op *opSpec, suffix string) {
	words := make([]string, len(op.argv))
	for i, a := range op.argv {
		words[i] = traceArg(a)
	}
	c.r.W.Trace(c.name, "call #"+itoa(int64(c.curSeq))+" "+strings.Join(words, " ")+suffix)
}

// connTo is the client's connection to n, opened anew when there is none
// or it broke.
func (c *Client) connTo(n *Node, readonly bool) *conn {
	m := &c.conns
	if readonly {
		m = &c.roConns
	}
	if *m == nil {
		*m = map[uint64]*conn{}
	}
	cn := (*m)[n.cfg.ID]
	if cn == nil || cn.broken {
		c.r.nextConn++
		cn = &conn{id: c.r.nextConn, client: c, n: n, readonly: readonly}
		(*m)[n.cfg.ID] = cn
	}
	return cn
}

// dropConn closes the client's end of cn (after a timeout, a reset).
func (c *Client) dropConn(cn *conn) {
	cn.close()
	for _, m := range []map[uint64]*conn{c.conns, c.roConns} {
		if m[cn.n.cfg.ID] == cn {
			delete(m, cn.n.cfg.ID)
		}
	}
}

// pipeline is what the client sends for an operation: its commands, with
// ASKING or READONLY first when routing asks for it.
func (c *Client) pipeline(op *opSpec, asking, readonly bool) [][]string {
	var cmds [][]string
	if readonly {
		cmds = append(cmds, []string{"READONLY"})
	}
	if asking {
		cmds = append(cmds, []string{"ASKING"})
	}
	return append(cmds, opCommands(op)...)
}

// send sends the current operation to n as a new attempt and arms its
// timeout.
func (c *Client) send(n *Node, asking bool) {
	op := c.cur
	cn := c.connTo(n, op.readOnly)
	cmds := c.pipeline(op, asking, op.readOnly)
	w := resp.NewWriter()
	for _, cmd := range cmds {
		w.WriteArray(len(cmd))
		for _, a := range cmd {
			w.WriteBulkString(a)
		}
	}
	c.att = attempt{id: c.att.id + 1, conn: cn, want: len(cmds), inFlight: true}
	if op.session != nil && op.session != cn {
		// The operation needs the connection an earlier one used (a
		// watched EXEC): on another connection its WATCH is gone.
		c.r.W.Trace(c.name, "connection changed since WATCH: start over")
		c.att.inFlight = false
		c.sessionLost()
		return
	}
	if op.keepsSession {
		op.session = cn
	}
	seq, id := c.curSeq, c.att.id
	cn.send(append([]byte(nil), w.Bytes()...), func() { c.read(seq, cn.n) })
	c.r.W.After(c.r.cfg.Workload.Timeout, func() {
		if c.cur != nil && c.curSeq == seq && c.att.id == id && c.att.inFlight {
			c.r.W.Trace(c.name, "timeout #"+itoa(int64(seq))+" at n"+itoa(int64(n.cfg.ID)))
			c.dropConn(cn)
			c.timedOut()
		}
	})
}

// neverRead counts the current operation as one no node read, which is
// left out of the history (timedOut) or abandoned (endUnanswered): from
// now on, a node reading its bytes fails the run (read).
func (c *Client) neverRead() {
	c.r.Stats.NotRun++
	c.notRun = c.curSeq
}

// read notes that n's session read an attempt of operation seq into a
// batch.
func (c *Client) read(seq uint64, n *Node) {
	switch {
	case c.cur != nil && c.curSeq == seq:
		c.curRead = true
	case seq == c.notRun:
		c.r.Oracle.fail(c.name + ": operation #" + itoa(int64(seq)) + " was left out of the history as never read by a node, and n" +
			itoa(int64(n.cfg.ID)) + " read its request after all")
	}
}

// onData is bytes arriving on one of the client's connections.
func (c *Client) onData(cn *conn, data []byte) {
	if cn.broken {
		return // the client gave it up
	}
	if c.sub != nil {
		c.subData(cn, data)
		return
	}
	cn.in = append(cn.in, data...)
	replies, err := cn.parseReplies()
	if err != nil {
		c.r.Oracle.fail(c.name + ": unreadable reply from n" + itoa(int64(cn.n.cfg.ID)) + ": " + err.Error())
		c.dropConn(cn)
	}
	for _, r := range replies {
		if !c.att.inFlight || c.att.conn != cn {
			c.r.W.Trace(c.name, "late reply "+r.String())
			continue
		}
		c.att.got = append(c.att.got, r)
		if len(c.att.got) == c.att.want {
			c.att.inFlight = false
			c.replied(c.result(c.att.got))
		}
	}
}

// result is an operation's reply from its pipeline's: the last, unless a
// command it depends on (WATCH) failed.
func (c *Client) result(got []Reply) Reply {
	last := got[len(got)-1]
	if !last.IsError() {
		for _, r := range got[:len(got)-1] {
			if r.IsError() {
				return r
			}
		}
	}
	return last
}

// onReset: a connection was reset or closed by the node. Nothing sent on
// it since its last reply was done; the operation is sent again on a new
// connection (a client library retries such a network error), unless it
// depends on the connection's session.
func (c *Client) onReset(cn *conn, refused bool) {
	if c.sub != nil {
		if s := c.sub.cur; s != nil && s.conn == cn {
			c.subLost(s, "connection reset")
		}
		return
	}
	c.dropConn(cn)
	if !c.att.inFlight || c.att.conn != cn || len(c.att.got) > 0 {
		return
	}
	c.att.inFlight = false
	if refused && c.r.Group != nil {
		c.onRefused(cn.n)
		return
	}
	c.r.W.Trace(c.name, "connection reset #"+itoa(int64(c.curSeq))+" by n"+itoa(int64(cn.n.cfg.ID)))
	c.connReset(cn.n)
}

// replied completes the current attempt with its reply.
func (c *Client) replied(r Reply) {
	c.r.W.Trace(c.name, "return #"+itoa(int64(c.curSeq))+" "+r.String())
	if c.r.Group != nil {
		c.onGroupReply(r)
		return
	}
	c.finish(&r)
}

// timedOut ends an attempt that got no reply in time.
func (c *Client) timedOut() {
	if c.r.Group != nil {
		c.forgetRoute()
		c.endUnanswered("timeout")
		return
	}
	if !c.curRead {
		// No node read any attempt (each was dropped on the way, sent
		// on a connection already broken, arrived while the node was
		// down, or was still unread, behind a paused node or a slow
		// batch, when the timeout broke the connection, after which
		// the session reads no more of it): keel never saw it.
		// Left out, like a refused write: an unknown outcome costs the
		// checker a branch of its search. (The replicated world's
		// endUnanswered abandons such an operation likewise.)
		c.neverRead()
		c.finishOp(nil, false)
		return
	}
	c.r.Stats.Unknown++
	c.finish(nil)
}

// connReset re-sends the current operation after its connection to n was
// reset (it was not executed).
func (c *Client) connReset(n *Node) {
	if c.cur.session != nil {
		c.sessionLost()
		return
	}
	if c.r.Group != nil {
		c.route.node = n
		if c.route.redirects++; c.route.redirects > redirectsMax {
			c.abandon("too many resets")
			return
		}
	}
	c.r.W.After(reconnectPause, func() {
		if c.cur != nil && !c.att.inFlight && !c.stopped {
			c.send(n, c.route.asking)
		}
	})
}

// reconnectPause is how long a client waits before reconnecting after a
// reset.
const reconnectPause = time.Millisecond

// sessionLost ends an operation that needed a connection's session (a
// watched EXEC) which is gone: it was not sent, so nothing happened, and
// the WATCH-retry flow starts over.
func (c *Client) sessionLost() {
	op := c.cur
	c.cur = nil
	op.hist = nil
	c.gw = nil
	if c.r.rmw == rmwLoading && len(op.argv) > 1 && op.argv[0] == "FUNCTION" {
		c.r.rmw = rmwUnloaded
	}
	if f := c.r.bank.watch[c.id]; f != nil {
		c.watchRetry(f)
	}
	c.r.W.After(c.think(), c.issue)
}

// finish records the operation (r nil: unknown outcome) and moves on.
func (c *Client) finish(r *Reply) { c.finishOp(r, true) }

// finishOp is finish, leaving the operation out of the history unless
// record.
func (c *Client) finishOp(r *Reply, record bool) {
	op := c.cur
	c.cur = nil
	if op.ttlW != nil && r != nil && !r.IsError() {
		op.ttlW.ret = c.r.W.now
	}
	if op.ttlRead && r != nil {
		c.r.checkTTLRead(op.argv[1], c.curCall, *r, c.route.final)
	}
	c.r.Stats.Contention.replied(op, r)
	if r != nil && c.r.cfg.Workload.Grammar != nil && !r.IsError() && !OpReadOnly(op.argv) {
		// The grammar keeps no history: its acknowledged writes are
		// what the replicated world's liveness check looks at.
		c.r.grammarAcks = append(c.r.grammarAcks, [2]int64{c.curCall, c.r.W.now})
	}
	c.bankSetupEnded(op, r, record)
	c.bankReplied(op, r) // banktxn.go: WATCH-retry state; may drop op.hist
	c.grammarReplied(op, r)
	if op.hist != nil {
		h := *op.hist
		h.Client = int(c.id)
		h.Call = c.curCall
		switch {
		case !record:
			c.r.W.After(c.think(), c.issue)
			return
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
	if h.Kind == checker.BLPop {
		v, ok := blpopOutput(r)
		h.Output = v
		return ok
	}
	if h.Kind == checker.ZPopMin {
		v, ok := zpopminOutput(r)
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
	v := "c" + itoa(int64(c.id)) + "-" + itoa(int64(c.seq+1))
	if w := &c.r.cfg.Workload; w.ValueBytesMax > 0 {
		// Padded to a size in [ValueBytesMin, ValueBytesMax]: still
		// unique, as the follower-read check needs.
		n := w.ValueBytesMin + c.rng.IntN(w.ValueBytesMax-w.ValueBytesMin+1)
		if n > len(v)+1 {
			v += ":" + strings.Repeat("v", n-len(v)-1)
		}
	}
	return v
}

// gen draws the next operation: mostly single-key string commands on a
// small key space, so clients contend.
func (c *Client) gen() opSpec {
	if c.r.cfg.Workload.Grammar != nil {
		return c.genGrammar()
	}
	if c.r.cfg.Workload.Bank != nil {
		return c.genBank()
	}
	if c.r.cfg.Workload.Queue != nil {
		return c.genQueue()
	}
	if c.r.cfg.Workload.ZSet != nil {
		return c.genZSet()
	}
	if c.r.cfg.Workload.Set != nil {
		return c.genSet()
	}
	if c.r.cfg.Workload.TTLKeys > 0 && c.rng.IntN(100) < ttlSharePct {
		return c.genTTL()
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
			if pct := c.r.cfg.Workload.PlainSetTTLPct; pct > 0 && c.rng.IntN(100) < pct {
				argv = argv[:3] // no EX: the key's TTL, if any, goes
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
