package node

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/seam"
	"github.com/keel-db/keel/udf"
)

// Blocking pops (BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP). The engine never waits (engine/cmd_block.go); the
// node does:
//
//   - A blocking command is answered by proposing the pop it becomes
//     (engine.ParseBlocking: LMPOP, LMOVE, RPOPLPUSH, ZMPOP) through the
//     group's log like any write, its reply reshaped to the blocking
//     command's. So what is logged, replicated and replayed is the pop the
//     command became, and every replica agrees. Routing, CROSSSLOT and a
//     follower's redirect are those of any write.
//   - When that attempt finds every key empty, the session parks: its
//     batch stops there (Step.Park) and the client is queued on each of
//     its keys, in arrival order, in its group's registry.
//   - A write that gives a list or sorted set elements (a push from any
//     connection, a MULTI block, a function) raises the engine's Ready
//     hook as it applies; after the call into the replica (afterCall) the
//     node looks at each such key and, if it holds elements of the type
//     its first waiter wants, unparks that waiter (Runtime.Unpark), which
//     proposes its pop again. One attempt per key is out at a time, so
//     clients are served in the order they blocked; once one is served
//     the next is tried while the key still holds elements.
//   - Timeouts come from the group's ticks (Tick) against the node's
//     clock, at the tick's resolution (100 ms at hz 10): a client past
//     its deadline proposes its pop once more and is answered null only
//     if that pop, through the log, finds the keys empty (a replica that
//     lost leadership without knowing it cannot claim they were). CLIENT UNBLOCK
//     answers a parked client with a timeout or an error; a closed
//     connection's waiter is dropped (Session.Close).
//   - A leader change or a slot move wakes every waiter of the node: the
//     retry reaches the replica, which serves it, redirects it (MOVED, as
//     Redis Cluster answers a client blocked on a slot that moved) or
//     finds the keys still empty and parks it again. On a retry an
//     ASK or TRYAGAIN (a slot being migrated), or a key of another type,
//     keeps the client waiting, as Redis keeps it blocked.
//
// Inside MULTI and functions the commands run in the engine without
// waiting, as Redis runs them.
//
// A first attempt on empty keys is one log entry that changes nothing
// (the pop finds nothing); a client arriving behind others already
// waiting on its keys parks without one.

// waitState is where a blocked client is; guarded by blocking.mu.
type waitState uint8

const (
	wInFlight     waitState = iota // an attempt (a pop through the log) is out
	wParked                        // waiting for a key to be ready
	wWoken                         // unparked: its session will try again
	wTimedOut                      // the timeout passed: answered with null
	wUnblocked                     // CLIENT UNBLOCK ... TIMEOUT: null
	wUnblockedErr                  // CLIENT UNBLOCK ... ERROR
)

const errUnblocked = "UNBLOCKED client unblocked via CLIENT UNBLOCK"

// waiter is one blocked client.
type waiter struct {
	s     *Session
	g     uint64
	slot  int
	pop   [][]byte // the pop it becomes, copied out of the batch
	keys  []string
	typ   engine.ValueType
	bp    engine.BlockingPop
	until int64 // clock milliseconds; 0: no timeout
	seq   uint64

	state waitState
	// dirty: a key it waits on became ready while its attempt was out;
	// if the attempt found nothing, it tries again at once.
	dirty bool
	// unblock: CLIENT UNBLOCK came while an attempt was out; it applies
	// if the attempt does not serve it.
	unblock waitState
}

// groupWaits is one group's blocked clients.
type groupWaits struct {
	// queues: key -> its waiters in the order they blocked.
	queues map[string][]*waiter
	// all: every waiter of the group, in the order they blocked (timeouts).
	all []*waiter
	// ready: keys the engine reported (Ready) or a leaving waiter freed,
	// to look at after the call into the replica; in the order reported.
	ready []string
}

// blocking is the node's registry of blocked clients.
type blocking struct {
	mu     sync.Mutex
	groups []groupWaits // [g-1]
	seq    uint64
	count  atomic.Int64 // blocked clients (INFO blocked_clients)
}

// readyKeysMax bounds a group's list of ready keys between two calls into
// its replica; past it the oldest are dropped and every waiter of the
// group is woken instead (a retry that finds nothing parks again).
const readyKeysMax = 1 << 16

func (n *Node) initBlocking() {
	n.blk.groups = make([]groupWaits, len(n.groups))
	for i := range n.blk.groups {
		n.blk.groups[i].queues = map[string][]*waiter{}
	}
}

// attachBlocking routes a (re)opened replica's Ready hook to the node.
func (n *Node) attachBlocking(gr *group) {
	gw := &n.blk.groups[gr.id-1]
	gr.replica.DB().SetReady(func(key []byte) {
		if n.blk.count.Load() == 0 {
			return // nobody waits: a push pays one atomic load
		}
		n.blk.mu.Lock()
		if len(gw.queues[string(key)]) > 0 && !slices.Contains(gw.ready, string(key)) {
			if len(gw.ready) >= readyKeysMax {
				gw.ready = gw.ready[1:]
				n.wakeAllLocked(gw)
			}
			gw.ready = append(gw.ready, string(key))
		}
		n.blk.mu.Unlock()
	})
}

// serveReady runs after every call into group gr's replica (afterCall,
// inside Exclusive): the first waiter of each ready key that holds what it
// waits for is unparked.
func (n *Node) serveReady(gr *group) {
	if n.blk.count.Load() == 0 {
		return
	}
	gw := &n.blk.groups[gr.id-1]
	n.blk.mu.Lock()
	defer n.blk.mu.Unlock()
	if len(gw.ready) == 0 {
		return
	}
	now := seam.Millis(n.clock.Now())
	db := gr.replica.DB()
	for _, key := range gw.ready {
		q := gw.queues[key]
		if len(q) == 0 {
			continue
		}
		w := q[0]
		switch w.state {
		case wInFlight:
			w.dirty = true
		case wParked:
			if typ, ok := db.Holds(now, []byte(key)); ok && typ == w.typ {
				n.wakeLocked(w, wWoken)
			}
		}
	}
	clear(gw.ready)
	gw.ready = gw.ready[:0]
}

// wakeLocked moves a parked waiter to state st and unparks its session.
func (n *Node) wakeLocked(w *waiter, st waitState) {
	w.state = st
	n.rt.Unpark(w.s)
}

// wakeAllLocked unparks every parked waiter of a group for a retry.
func (n *Node) wakeAllLocked(gw *groupWaits) {
	for _, w := range gw.all {
		switch w.state {
		case wParked:
			n.wakeLocked(w, wWoken)
		case wInFlight:
			w.dirty = true
		}
	}
}

// blockingMoved wakes every waiter of the node: a group's leader changed
// or the slot table did, so a waiter's retry may now be redirected.
func (n *Node) blockingMoved() {
	if n.blk.count.Load() == 0 {
		return
	}
	n.blk.mu.Lock()
	for i := range n.blk.groups {
		n.wakeAllLocked(&n.blk.groups[i])
	}
	n.blk.mu.Unlock()
}

// expireWaiters makes the waiters of group gr whose timeout has passed
// try one last time (Tick, inside Exclusive): a timeout is answered null
// only once a pop through the log found the keys empty after the
// deadline. Answering at once would claim the keys were empty on the
// word of a replica that may have stopped leading without knowing it (a
// partitioned leader applies no one's pushes), or for a client that
// parked behind others without ever looking: a stale read.
func (n *Node) expireWaiters(gr *group, nowNanos int64) {
	if n.blk.count.Load() == 0 {
		return
	}
	now := seam.Millis(nowNanos)
	n.blk.mu.Lock()
	for _, w := range n.blk.groups[gr.id-1].all {
		if w.state == wParked && w.until > 0 && now >= w.until {
			n.wakeLocked(w, wWoken)
		}
	}
	n.blk.mu.Unlock()
}

// register queues w at the end of its keys' queues in group g.
func (n *Node) registerLocked(w *waiter) {
	gw := &n.blk.groups[w.g-1]
	n.blk.seq++
	w.seq = n.blk.seq
	for _, k := range w.keys {
		q := gw.queues[k]
		if !slices.Contains(q, w) {
			gw.queues[k] = append(q, w)
		}
	}
	gw.all = append(gw.all, w)
	n.blk.count.Add(1)
}

// unregisterLocked takes w out of its group. A key whose first waiter it
// was goes on the ready list, so the next one is looked at.
func (n *Node) unregisterLocked(w *waiter) {
	gw := &n.blk.groups[w.g-1]
	i := slices.Index(gw.all, w)
	if i < 0 {
		return
	}
	gw.all = slices.Delete(gw.all, i, i+1)
	for _, k := range w.keys {
		q := gw.queues[k]
		j := slices.Index(q, w)
		if j < 0 {
			continue
		}
		if j == 0 && len(q) > 1 && !slices.Contains(gw.ready, k) && len(gw.ready) < readyKeysMax {
			gw.ready = append(gw.ready, k)
		}
		q = slices.Delete(q, j, j+1)
		if len(q) == 0 {
			delete(gw.queues, k)
		} else {
			gw.queues[k] = q
		}
	}
	n.blk.count.Add(-1)
}

// ahead reports whether another client already waits on one of w's keys.
func (n *Node) aheadLocked(g uint64, keys []string) bool {
	gw := &n.blk.groups[g-1]
	for _, k := range keys {
		if len(gw.queues[k]) > 0 {
			return true
		}
	}
	return false
}

// Session side.

// runBlocking starts a blocking command (runOne, outside MULTI); asking
// is the one-shot ASKING flag it was sent with.
func (c *Session) runBlocking(ec *engine.Command, argv [][]byte, asking bool) {
	if !ec.ArityOK(len(argv)) {
		c.Out.WriteError("ERR wrong number of arguments for '" + ec.Name + "' command")
		return
	}
	slot := -1
	if c.n.clustered {
		s, msg := cluster.CommandSlot(argv)
		if msg != "" {
			c.Out.WriteError(msg) // CROSSSLOT
			return
		}
		slot = s
	}
	bp, msg := engine.ParseBlocking(argv)
	if msg != "" {
		c.Out.WriteError(msg)
		return
	}
	g := c.blockingGroup(slot, asking)
	if c.n.groups[g-1].busy.Load() {
		c.Out.WriteError(udf.BusyMessage)
		return
	}
	w := &waiter{s: c, g: g, slot: slot, typ: bp.Type, bp: bp}
	w.pop = make([][]byte, len(bp.Pop))
	for i, a := range bp.Pop {
		w.pop[i] = slices.Clone(a)
	}
	for _, k := range bp.Keys {
		if !slices.Contains(w.keys, string(k)) {
			w.keys = append(w.keys, string(k))
		}
	}
	if bp.TimeoutMillis > 0 {
		now := seam.Millis(c.n.clock.Now())
		w.until = now + bp.TimeoutMillis
		if w.until < now {
			w.until = 0 // past the clock's range: as good as forever
		}
	}
	n := c.n
	n.blk.mu.Lock()
	ahead := n.aheadLocked(g, w.keys)
	w.state = wInFlight
	if ahead {
		// Others wait on these keys already: they are served first, and
		// this one parks without proposing anything.
		w.state = wParked
	}
	n.registerLocked(w)
	n.blk.mu.Unlock()
	c.blk = w
	if !ahead {
		c.attempt(w, asking, false)
	}
}

// blockingGroup is the group a blocking command's keys route to.
func (c *Session) blockingGroup(slot int, asking bool) uint64 {
	if !c.n.clustered || len(c.n.groups) == 1 || slot < 0 {
		return 1
	}
	if asking {
		return c.n.askingGroupOf(slot)
	}
	return c.n.groupOf(slot)
}

// attempt proposes w's pop; attemptDone looks at the answer.
func (c *Session) attempt(w *waiter, asking, retry bool) {
	pw := &popWriter{out: w.bp.Reshape(c.Out), retry: retry, proto: c.Out, lose: retry && c.n.cfg.Knobs.loseRetriedPop()}
	c.submitThen(w.g, []cluster.Request{{Argv: w.pop, W: pw, Asking: asking}}, func() { c.attemptDone(w, pw) })
}

func (c *Session) attemptDone(w *waiter, pw *popWriter) {
	n := c.n
	if pw.outcome == popServed {
		c.finishBlocked(w) // served, or an error the client gets
		return
	}
	now := seam.Millis(n.clock.Now())
	n.blk.mu.Lock()
	switch {
	case w.unblock != 0:
		w.state = w.unblock
	case pw.outcome == popEmpty && w.until > 0 && now >= w.until:
		// The log found the keys empty after the deadline: a timeout.
		// (popWait says nothing about them: the next tick tries again.)
		w.state = wTimedOut
	default:
		w.state = wParked
		if w.dirty {
			w.dirty = false
			w.state = wWoken // something arrived meanwhile: try again
		}
	}
	n.blk.mu.Unlock()
}

// finishBlocked ends w's wait and looks at once at the keys it leaves to
// the next waiter.
func (c *Session) finishBlocked(w *waiter) {
	n := c.n
	n.blk.mu.Lock()
	n.unregisterLocked(w)
	n.blk.mu.Unlock()
	c.blk = nil
	gr := n.group(w.g)
	n.rt.Exclusive(c, w.g, func() {
		if gr.replica != nil && gr.dead == "" {
			n.serveReady(gr)
		}
	})
}

// blockStep is Next's view of a blocked session: the step to take (a
// retry, or Park), or false once the blocking command is answered and
// the batch goes on.
func (c *Session) blockStep() (Step, bool) {
	w := c.blk
	n := c.n
	n.blk.mu.Lock()
	st := w.state
	if st == wWoken {
		w.state = wInFlight
		w.dirty = false
	}
	n.blk.mu.Unlock()
	switch st {
	case wParked, wInFlight:
		return Step{Park: true}, true
	case wWoken:
		c.retry(w)
		return c.yield()
	case wUnblockedErr:
		c.Out.WriteError(errUnblocked)
	default: // timed out, CLIENT UNBLOCK ... TIMEOUT
		c.Out.WriteNullArray()
	}
	n.blk.mu.Lock()
	n.unregisterLocked(w)
	n.blk.mu.Unlock()
	c.blk = nil
	return Step{}, false
}

// retry proposes w's pop again, on the group its slot routes to now (a
// slot moved between this node's groups re-queues it there).
func (c *Session) retry(w *waiter) {
	if g := c.blockingGroup(w.slot, false); g != w.g {
		n := c.n
		n.blk.mu.Lock()
		n.unregisterLocked(w)
		w.g = g
		n.registerLocked(w)
		w.state = wInFlight
		n.blk.mu.Unlock()
	}
	c.attempt(w, false, true)
}

// dropBlocked forgets the session's wait (its connection closed).
func (c *Session) dropBlocked() {
	w := c.blk
	if w == nil {
		return
	}
	c.blk = nil
	c.n.blk.mu.Lock()
	c.n.unregisterLocked(w)
	c.n.blk.mu.Unlock()
}

// Blocked reports whether the session waits in a blocking command.
func (c *Session) Blocked() bool { return c.blk != nil }

// popOutcome is what an attempt's reply said.
type popOutcome uint8

const (
	popServed popOutcome = iota // a reply the client gets (data or error)
	popEmpty                    // the pop applied and found nothing to take (null, or a key of another type)
	popWait                     // a retry refused for now (ASK, TRYAGAIN): nothing known about the keys
)

// popWriter passes an attempt's reply to the client unless it says there
// was nothing to pop: a null, or on a retry an error that Redis would
// keep the client blocked through (the key holds another type; the slot
// is being migrated, ASK/TRYAGAIN).
type popWriter struct {
	out     engine.Writer
	proto   interface{ Proto() int }
	retry   bool
	started bool
	outcome popOutcome
	// lose, drop: TestingKnobs.LoseRetriedPop (an array reply is taken
	// for an empty pop and dropped).
	lose, drop bool
}

func (p *popWriter) first() bool {
	if p.started {
		return false
	}
	p.started = true
	return true
}

func (p *popWriter) WriteNull() {
	if p.first() {
		p.outcome = popEmpty
		return
	}
	p.out.WriteNull()
}

func (p *popWriter) WriteNullArray() {
	if p.first() {
		p.outcome = popEmpty
		return
	}
	p.out.WriteNullArray()
}

func (p *popWriter) WriteError(msg string) {
	if p.first() && p.retry {
		switch {
		case strings.HasPrefix(msg, "WRONGTYPE"):
			p.outcome = popEmpty
			return
		case strings.HasPrefix(msg, "ASK ") || strings.HasPrefix(msg, "TRYAGAIN"):
			p.outcome = popWait
			return
		}
	}
	p.out.WriteError(msg)
}

func (p *popWriter) WriteArray(k int) {
	if p.first() && p.lose {
		p.outcome, p.drop = popEmpty, true
	}
	if !p.drop {
		p.out.WriteArray(k)
	}
}

func (p *popWriter) WriteBulk(b []byte) {
	if p.first(); !p.drop {
		p.out.WriteBulk(b)
	}
}

func (p *popWriter) WriteDouble(f float64) {
	if p.first(); !p.drop {
		p.out.WriteDouble(f)
	}
}

func (p *popWriter) WriteSimple(s string)     { p.first(); p.out.WriteSimple(s) }
func (p *popWriter) WriteInt(v int64)         { p.first(); p.out.WriteInt(v) }
func (p *popWriter) WriteBulkString(s string) { p.first(); p.out.WriteBulkString(s) }
func (p *popWriter) WriteMap(k int)           { p.first(); p.out.WriteMap(k) }
func (p *popWriter) WriteSet(k int)           { p.first(); p.out.WriteSet(k) }
func (p *popWriter) Proto() int               { return p.proto.Proto() }

var _ engine.Writer = (*popWriter)(nil)

// CLIENT UNBLOCK.

func clientUnblock(c *Session, argv [][]byte) {
	id, err := strconv.ParseUint(string(argv[2]), 10, 64)
	if err != nil {
		c.Out.WriteError("ERR value is not an integer or out of range")
		return
	}
	how := wUnblocked
	if len(argv) == 4 {
		switch strings.ToLower(string(argv[3])) {
		case "timeout":
		case "error":
			how = wUnblockedErr
		default:
			c.Out.WriteError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
			return
		}
	}
	n := c.n
	n.mu.Lock()
	o := n.sessions[id]
	n.mu.Unlock()
	if o == nil {
		c.Out.WriteInt(0)
		return
	}
	n.blk.mu.Lock()
	found := false
	for i := range n.blk.groups {
		for _, w := range n.blk.groups[i].all {
			if w.s != o {
				continue
			}
			found = true
			switch w.state {
			case wParked:
				n.wakeLocked(w, how)
			case wInFlight, wWoken:
				w.unblock = how
			}
		}
	}
	n.blk.mu.Unlock()
	if found {
		c.Out.WriteInt(1)
	} else {
		c.Out.WriteInt(0)
	}
}
