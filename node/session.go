package node

import (
	"sync"
	"sync/atomic"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/resp"
	"github.com/keel-db/keel/udf"
)

// Conn is what a session knows of its connection, for CLIENT LIST and
// CLIENT KILL; the runtime provides it.
type Conn interface {
	// RemoteAddr and LocalAddr are "host:port".
	RemoteAddr() string
	LocalAddr() string
	// FD is the socket's file descriptor, -1 when there is none.
	FD() int
	// QueryBuffer is how many bytes of input wait to be parsed, and the
	// read buffer's capacity.
	QueryBuffer() (buffered, capacity int)
	// BytesIn is every byte read from the connection.
	BytesIn() int64
}

// Step is work a session needs done before its batch can go on: the
// runtime submits Reqs to group Group (Node.Submit, inside Exclusive),
// waits until their replies are written, and calls Next again.
type Step struct {
	Group uint64
	Reqs  []cluster.Request
	// Park: the session blocks (BLPOP and the like, blocking.go). The
	// runtime writes what Out holds (TakeOutput), runs nothing more for
	// the session, and calls Next again once Runtime.Unpark names it (a
	// spurious call just returns Park again). If the connection closes
	// meanwhile, Close drops the wait.
	Park bool
	// PauseUntil, when not zero, asks the runtime to wait instead (CLIENT
	// PAUSE, pause.go): until Node.OnPause's signal or the node's clock
	// reaches it, then to call Next again.
	PauseUntil int64
}

// Session is one client connection's state — authentication, the RESP
// version, MULTI/WATCH, ASKING and READONLY, subscriptions — and the
// runner of its commands. The runtime parses a batch of commands with a
// resp.Reader, hands it to Begin, and calls Next until it returns false:
// each Step it returns is a run of requests for one replica group, which
// the runtime submits and waits for. Every reply is then in Out (in the
// order of the commands), which the runtime writes with one write(2)
// (TakeOutput). Commands answered by the session itself (PING, HELLO,
// CLIENT, INFO, CLUSTER, CONFIG, ...) and the redirects decided before a
// request reaches a replica are written here; MOVED/ASK/TRYAGAIN decided
// by a replica come from the node's hooks (routing.go).
type Session struct {
	n    *Node
	id   uint64
	conn Conn

	// Out collects the replies of the batch in progress.
	Out *resp.Writer

	// The batch in progress: cmds[pos:] still to run; reqs are gathered
	// for group runGroup; cont runs once the step out is answered.
	cmds     [][][]byte
	pos      int
	reqs     []cluster.Request
	runGroup uint64
	stepOut  bool
	cont     func()
	yieldNow bool

	authed     bool
	closeAfter bool // QUIT, CLIENT KILL of itself, SHUTDOWN
	// user is the ACL user the session runs as: the default user until
	// AUTH or HELLO AUTH (acl_cmd.go). busy: a batch is in progress (a
	// session whose user is deleted then closes when it ends).
	user atomic.Pointer[aclRef]
	busy atomic.Bool
	// readOnly (cluster mode, READONLY): a follower may serve this
	// connection's keyed reads, possibly stale (cluster.Request.ReadOnly).
	readOnly bool
	// asking (cluster mode, ASKING): the next command may be served by a
	// group importing its slot (cluster.Request.Asking). Redis keeps it
	// through a MULTI block up to EXEC.
	asking bool

	created    int64        // clock nanoseconds
	lastActive atomic.Int64 // clock nanoseconds of the last batch
	lastCmd    atomic.Pointer[string]
	commands   atomic.Int64
	bytesOut   atomic.Int64
	proto      atomic.Int32
	killed     atomic.Bool
	closed     bool

	// softSince is when the batch output first went above the normal
	// class's soft limit (0: below it; limits.go).
	softSince int64

	blk *waiter   // the blocking command it waits in (blocking.go)
	tx  txState   // MULTI/WATCH (multi.go)
	sub *subState // subscriptions (pubsub.go)
	box *outbox   // set once subscribed: all output goes through it

	mu      sync.Mutex // guards the strings below, read by CLIENT LIST
	name    string
	libName string
	libVer  string

	obs sessionObs // statistics, CLIENT REPLY, MONITOR, buffer figures (batchstats.go)
}

// NewSession opens a session for a new connection.
func (n *Node) NewSession(conn Conn) *Session {
	c := &Session{
		n:       n,
		id:      n.nextID.Add(1),
		conn:    conn,
		Out:     resp.NewWriter(),
		authed:  n.defaultUserOpen(),
		created: n.clock.Now(),
	}
	c.user.Store(n.acl.def.Load())
	if len(n.groups) > 0 {
		c.runGroup = 1
	}
	c.lastActive.Store(c.created)
	c.proto.Store(2)
	n.mu.Lock()
	n.sessions[c.id] = c
	n.mu.Unlock()
	return c
}

// ID is the session's client id (CLIENT ID).
func (c *Session) ID() uint64 { return c.id }

// Conn is the connection the session was opened for.
func (c *Session) Conn() Conn { return c.conn }

// Killed reports whether CLIENT KILL or an output limit closed the
// session from outside (the runtime logs nothing for such a close).
func (c *Session) Killed() bool { return c.killed.Load() }

// CloseAfter reports that the connection must close once the batch's
// replies are written (QUIT, SHUTDOWN, CLIENT KILL of itself).
func (c *Session) CloseAfter() bool { return c.closeAfter }

// Close ends the session: subscriptions dropped, counters folded into
// the node's. The runtime calls it once, when the connection is gone.
func (c *Session) Close() {
	if c.closed {
		return
	}
	c.closed = true
	c.dropBlocked()
	c.monitorGone()
	c.unsubscribeAll()
	if c.box != nil {
		c.box.close()
	}
	n := c.n
	n.mu.Lock()
	delete(n.sessions, c.id)
	n.mu.Unlock()
	n.stats.commandsRetired.Add(c.commands.Load())
	n.stats.netOutput.Add(c.bytesOut.Load())
	if c.conn != nil {
		n.stats.netInput.Add(c.conn.BytesIn())
	}
}

// Begin starts a batch of commands (as resp.Reader.ReadBatch returns
// them; they must stay valid until Next returns false).
func (c *Session) Begin(cmds [][][]byte) {
	c.busy.Store(true)
	if c.user.Load().cur.Load() == nil {
		c.closeAfter = true // its user was deleted: nothing more runs
	}
	c.cmds, c.pos = cmds, 0
	now := c.n.clock.Now()
	c.lastActive.Store(now)
	c.commands.Add(int64(len(cmds)))
	c.obsBegin(now, cmds)
}

// Next runs the batch as far as it can without a replica. It returns the
// next Step the runtime must carry out, or false once every command of
// the batch has its reply in Out.
func (c *Session) Next() (Step, bool) {
	if c.obs.waited {
		c.obs.waited = false
		c.obs.t = c.n.clock.Now() // the pause is no command's time
	}
	for {
		if c.stepOut {
			c.stepOut = false
			clear(c.reqs) // drop references to argv and writers
			c.reqs = c.reqs[:0]
			c.obsStepDone()
			if c.user.Load().cur.Load() == nil {
				// The step deleted the session's user (ACL DELUSER,
				// ACL LOAD): its reply goes out, nothing more runs.
				c.closeAfter = true
			}
			if f := c.cont; f != nil {
				c.cont = nil
				f()
				if c.cont == nil {
					c.obsContDone()
				}
				if len(c.reqs) > 0 {
					return c.yield()
				}
			}
		}
		if c.blk != nil {
			// The batch waits in a blocking command (blocking.go).
			if st, ok := c.blockStep(); ok {
				return st, true
			}
		}
		if c.pos >= len(c.cmds) || c.closeAfter {
			if len(c.reqs) > 0 {
				return c.yield()
			}
			c.obsEnd()
			clear(c.cmds)
			c.cmds, c.pos = nil, 0
			// Cleared before the user is looked at, in the opposite
			// order to rebuildACL: one of the two sees the other.
			c.busy.Store(false)
			if c.user.Load().cur.Load() == nil {
				c.closeAfter = true
			}
			return Step{}, false
		}
		if c.runOne(c.cmds[c.pos]) {
			if c.obs.pauseUntil != 0 && len(c.reqs) == 0 {
				return c.pauseStep()
			}
			return c.yield() // what is gathered must be answered first
		}
		c.pos++
		if c.yieldNow {
			c.yieldNow = false
			return c.yield()
		}
	}
}

func (c *Session) yield() (Step, bool) {
	c.stepOut, c.yieldNow = true, false
	c.noteYield()
	return Step{Group: c.runGroup, Reqs: c.reqs}, true
}

// submitThen makes reqs on group g the next step, and then run once they
// are answered (a node-wide command merging the replies of several
// groups, say). It is called only with nothing else gathered.
func (c *Session) submitThen(g uint64, reqs []cluster.Request, then func()) {
	c.runGroup = g
	c.reqs = append(c.reqs, reqs...)
	c.cont = then
	c.yieldNow = true
}

// runOne runs or gathers one command. It returns true, changing nothing,
// when what was gathered so far must be answered before it: the replies
// keep the order of the commands.
func (c *Session) runOne(argv [][]byte) bool {
	if c.n.pause.Load() != nil && c.pauseHold(argv) {
		return true // the gathered requests go first, then the wait
	}
	g, ec, plain := c.plainRequest(argv)
	if len(c.reqs) > 0 && (!plain || g != c.runGroup) {
		return true
	}
	asking := c.asking
	if asking && !c.tx.active && !eqFold(argv[0], "multi") {
		c.asking = false // one-shot: ASKING itself sets it again
	}
	if plain {
		if ec != nil {
			c.lastCmd.Store(&ec.Name)
		}
		if c.n.groups[g-1].busy.Load() {
			// A function call holds the group past busy-reply-threshold
			// (functions.go). Nothing is gathered here: the run before
			// went out first (a new group, or the yield above).
			if len(c.reqs) > 0 {
				return true
			}
			at, errs, nreqs := c.obsBefore()
			c.Out.WriteError(udf.BusyMessage)
			c.noteRun(argv, at, errs, nreqs)
			return false
		}
		c.runGroup = g
		var w engine.Writer = c.Out
		if c.n.cfg.Knobs != nil {
			argv, w = c.n.cfg.Knobs.request(argv, w) // a planted bug (knobs.go)
		}
		c.reqs = append(c.reqs, cluster.Request{Argv: argv, W: w, ReadOnly: c.readOnly, Asking: asking})
		c.noteGathered(ec, argv)
		return false
	}
	at, errs, nreqs := c.obsBefore()
	defer c.noteRun(argv, at, errs, nreqs)
	switch {
	case c.sub != nil && c.subscriberGate(argv):
	case c.tx.active && c.queueInMulti(argv):
	default:
		if sc := lookupServerCommand(argv[0]); sc != nil {
			c.lastCmd.Store(&sc.name)
			c.runServerCommand(sc, argv)
			return false
		}
		if ec == nil {
			ec = engine.Lookup(argv[0])
		}
		if ec == nil && !isReplicaCommand(argv[0]) {
			c.Out.WriteError(unknownCommand(argv))
			return false
		}
		if c.needsAuth() {
			c.Out.WriteError(errNoAuth)
			return false
		}
		if ec != nil {
			c.lastCmd.Store(&ec.Name)
		}
		if msg := c.aclDeny(argv); msg != "" {
			c.Out.WriteError(msg)
			return false
		}
		if isFunctionKill(argv) {
			c.functionKill()
			return false
		}
		if ec != nil && ec.Flags&engine.Blocking != 0 {
			c.runBlocking(ec, argv, asking) // blocking.go
			return false
		}
		slot, msg := cluster.CommandSlot(argv)
		if msg != "" {
			c.Out.WriteError(msg) // keys in several slots (cluster mode only)
			return false
		}
		// What is left is a node-wide command (fanout.go).
		c.runNodeWide(argv, slot)
	}
	return false
}

// plainRequest reports whether argv is a request for one replica group
// that can join the run gathered so far (g: its group): not answered by
// the session itself, authenticated, and not node-wide. ec is the engine
// command when it was looked up (nil otherwise, or when there is none):
// the caller need not look it up again.
func (c *Session) plainRequest(argv [][]byte) (g uint64, ec *engine.Command, ok bool) {
	if c.sub != nil && c.sub.count() > 0 && c.proto.Load() == 2 || c.tx.active || c.needsAuth() {
		return 0, nil, false
	}
	if !c.aclUnrestricted() && !c.aclPermits(argv) {
		return 0, nil, false // refused where it is answered and logged (runOne)
	}
	if lookupServerCommand(argv[0]) != nil {
		return 0, nil, false
	}
	ec = engine.Lookup(argv[0])
	if ec == nil && !isReplicaCommand(argv[0]) || isFunctionKill(argv) || ec != nil && ec.Flags&engine.Blocking != 0 {
		return 0, ec, false
	}
	if !c.n.clustered {
		return 1, ec, true
	}
	slot, msg := cluster.CommandSlot(argv)
	if msg != "" {
		return 0, ec, false
	}
	if len(c.n.groups) == 1 {
		return 1, ec, true
	}
	if slot >= 0 {
		if c.asking {
			return c.n.askingGroupOf(slot), ec, true
		}
		return c.n.groupOf(slot), ec, true
	}
	if fanoutKind(argv) != fanNone {
		return 0, ec, false
	}
	return c.n.primaryGroup(), ec, true
}

// TakeOutput returns the batch's replies for the runtime to write, and
// Out is reset once the runtime calls ResetOutput. Once the session has
// subscribed, its replies go through its outbox instead (so they keep
// their order with the messages published to it): TakeOutput then moves
// them there, wakes the runtime, and returns nil.
func (c *Session) TakeOutput() []byte {
	b := c.Out.Bytes()
	if c.box == nil && c.outputTooBig(len(b)) {
		c.Out.Reset()
		return nil
	}
	if c.box == nil {
		c.bytesOut.Add(int64(len(b)))
		c.noteOutput(len(b))
		return b
	}
	c.box.push(b)
	c.Out.Reset()
	c.flushOwnMonitor()
	return nil
}

// ResetOutput empties Out after the runtime wrote what TakeOutput gave.
func (c *Session) ResetOutput() {
	c.Out.Reset()
	c.obs.outLen.Store(0)
}

// TakePushed returns the output that arrived outside a batch (Wake), to
// be written now; nil when there is none. closed is true once the
// session's outbox was closed (the runtime stops its writer after
// writing what it got).
func (c *Session) TakePushed() (p []byte, closed bool) {
	if c.box == nil {
		return nil, false
	}
	p, closed = c.box.take()
	c.bytesOut.Add(int64(len(p)))
	return p, closed
}

// Recycle hands a buffer TakePushed returned back for reuse once it is
// written.
func (c *Session) Recycle(p []byte) {
	if c.box != nil {
		c.box.recycle(p)
	}
}

// OutboxPeak is the most output the session's outbox ever held waiting
// for the runtime (0 without one).
func (c *Session) OutboxPeak() int {
	if c.box == nil {
		return 0
	}
	_, peak := c.box.pending()
	return peak
}

// OutboxPending is how much output waits in the session's outbox.
func (c *Session) OutboxPending() int {
	if c.box == nil {
		return 0
	}
	n, _ := c.box.pending()
	return n
}

// Subscribed reports whether the session has an outbox (it subscribed
// at some point): its output then goes through TakePushed.
func (c *Session) Subscribed() bool { return c.box != nil }

const errNoAuth = "NOAUTH Authentication required."

// unknownCommand words the error exactly as Redis 7 does.
func unknownCommand(argv [][]byte) string {
	b := make([]byte, 0, 64)
	b = append(b, "ERR unknown command '"...)
	b = appendTrunc(b, argv[0], 128)
	b = append(b, "', with args beginning with: "...)
	start := len(b)
	for _, a := range argv[1:] {
		if len(b)-start >= 128 {
			break
		}
		b = append(b, '\'')
		b = appendTrunc(b, a, 128-(len(b)-start-1))
		b = append(b, '\'', ' ')
	}
	return string(b)
}

func appendTrunc(b, s []byte, n int) []byte {
	if n < 0 {
		n = 0
	}
	if len(s) > n {
		s = s[:n]
	}
	return append(b, s...)
}
