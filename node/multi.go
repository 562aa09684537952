package node

import (
	"bytes"
	"sync/atomic"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
)

// Transactions. MULTI opens a block on the connection; every command up to
// EXEC is checked (known, right arity) and queued here, on the connection,
// with +QUEUED. EXEC hands the whole block to the replica as one Request
// carrying a cluster.Txn: it runs as one step of the shard and, if it
// writes, as one log entry (see cluster/txn.go and docs/transactions.md).
// WATCH records each key's version under the shard; the replica compares
// them right before the block would run.

const (
	// txnQueuedBytesMax bounds what one MULTI block may queue; past it the
	// block is flagged and EXEC answers EXECABORT (the log could not hold
	// it in one entry anyway).
	txnQueuedBytesMax = 64 << 20
	// watchedKeysMax bounds the keys one connection may WATCH.
	watchedKeysMax = 1 << 16
)

const (
	errExecAbort     = "EXECABORT Transaction discarded because of previous errors."
	errNotInMulti    = "ERR Command not allowed inside a transaction"
	errTxnTooLarge   = "ERR transaction too large"
	errWatchTooLarge = "ERR too many watched keys"
)

// txState is a connection's MULTI/WATCH state; only its goroutine uses it.
type txState struct {
	active      bool
	failed      bool // a command failed to queue: EXEC answers EXECABORT
	queued      [][][]byte
	queuedBytes int
	watched     []cluster.Watch
	// watchOn is the replica the versions were read from: versions mean
	// nothing on another one.
	watchOn *cluster.Replica
	// shown mirrors the block for CLIENT LIST: 0 outside MULTI, else one
	// more than the commands queued.
	shown atomic.Int32
}

func (t *txState) reset() {
	t.active, t.failed = false, false
	t.shown.Store(0)
	clear(t.queued)
	t.queued = t.queued[:0]
	t.queuedBytes = 0
}

func (t *txState) unwatch() {
	clear(t.watched)
	t.watched = t.watched[:0]
	t.watchOn = nil
}

func init() {
	for _, sc := range []*serverCommand{
		{name: "multi", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, categories: []string{"@fast", "@transaction"}, run: cmdMulti},
		{name: "exec", arity: 1, flags: []string{"noscript", "loading", "stale", "skip_slowlog"}, categories: []string{"@slow", "@transaction"}, run: cmdExec},
		{name: "discard", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, categories: []string{"@fast", "@transaction"}, run: cmdDiscard},
		{name: "watch", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, categories: []string{"@fast", "@transaction"}, run: cmdWatch},
		{name: "unwatch", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, categories: []string{"@fast", "@transaction"}, run: cmdUnwatch},
	} {
		serverCommands[sc.name] = sc
	}
}

// queueInMulti is called for every command while a MULTI block is open.
// It returns false for the commands that act on the block itself (EXEC,
// DISCARD, MULTI, WATCH, QUIT, RESET), which run normally.
func (c *Session) queueInMulti(argv [][]byte) bool {
	if sc := lookupServerCommand(argv[0]); sc != nil {
		switch sc.name {
		case "exec", "discard", "multi", "watch", "quit", "reset":
			return false
		}
		if !arityOK(sc.arity, len(argv)) {
			c.tx.failed = true
			c.Out.WriteError("ERR wrong number of arguments for '" + sc.name + "' command")
			return true
		}
		if sc.name == "publish" || sc.name == "spublish" {
			if msg := c.aclDeny(argv); msg != "" {
				c.tx.failed = true
				c.Out.WriteError(msg)
				return true
			}
			return c.queue(argv) // run at its turn by txnSide
		}
		// Connection commands run outside the shard; a block runs inside
		// it, so they cannot be part of one.
		c.tx.failed = true
		c.Out.WriteError(errNotInMulti)
		return true
	}
	if c.needsAuth() {
		c.tx.failed = true
		c.Out.WriteError(errNoAuth)
		return true
	}
	if c.n.oomRefusesQueue() {
		c.tx.failed = true
		c.Out.WriteError(ErrMsgOOM)
		return true
	}
	ec := engine.Lookup(argv[0])
	name := bytes.ToLower(argv[0])
	switch {
	case ec == nil && string(name) == "lastsave":
		if len(argv) != 1 {
			c.tx.failed = true
			c.Out.WriteError("ERR wrong number of arguments for 'lastsave' command")
			return true
		}
	case ec == nil && isReplicaCommand(argv[0]):
		// SAVE, BGSAVE, BGREWRITEAOF start disk work: not inside a block.
		c.tx.failed = true
		c.Out.WriteError(errNotInMulti)
		return true
	case ec == nil:
		c.tx.failed = true
		c.Out.WriteError(unknownCommand(argv))
		return true
	case !ec.ArityOK(len(argv)):
		c.tx.failed = true
		c.Out.WriteError("ERR wrong number of arguments for '" + ec.Name + "' command")
		return true
	}
	if msg := c.aclDeny(argv); msg != "" {
		c.tx.failed = true
		c.Out.WriteError(msg)
		return true
	}
	if c.n.clustered {
		// As Redis Cluster: a command whose own keys span slots is refused
		// and flags the block; EXEC checks the block as a whole.
		if _, msg := cluster.CommandSlot(argv); msg != "" {
			c.tx.failed = true
			c.Out.WriteError(msg)
			return true
		}
	}
	return c.queue(argv)
}

// queue adds a checked command to the open block.
func (c *Session) queue(argv [][]byte) bool {
	n := 0
	for _, a := range argv {
		n += len(a) + 16
	}
	if c.tx.queuedBytes+n > txnQueuedBytesMax {
		c.tx.failed = true
		c.Out.WriteError(errTxnTooLarge)
		return true
	}
	// The reader reuses its buffers: keep a copy.
	cp := make([][]byte, len(argv))
	buf := make([]byte, 0, n)
	for i, a := range argv {
		buf = append(buf, a...)
		cp[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	c.tx.queued = append(c.tx.queued, cp)
	c.tx.queuedBytes += n
	c.tx.shown.Add(1)
	c.Out.WriteSimple("QUEUED")
	return true
}

func cmdMulti(c *Session, argv [][]byte) {
	if c.tx.active {
		c.Out.WriteError("ERR MULTI calls can not be nested")
		return
	}
	c.tx.active = true
	c.tx.shown.Store(1)
	c.Out.WriteSimple("OK")
}

func cmdDiscard(c *Session, argv [][]byte) {
	if !c.tx.active {
		c.Out.WriteError("ERR DISCARD without MULTI")
		return
	}
	c.tx.reset()
	c.tx.unwatch()
	c.Out.WriteSimple("OK")
}

func cmdExec(c *Session, argv [][]byte) {
	if !c.tx.active {
		c.Out.WriteError("ERR EXEC without MULTI")
		return
	}
	defer func() {
		c.tx.reset()
		c.tx.unwatch()
	}()
	if c.tx.failed {
		c.Out.WriteError(errExecAbort)
		return
	}
	asking := c.asking
	c.asking = false
	g := uint64(1)
	if c.n.clustered {
		// One block runs on one replica group: Redis Cluster answers
		// -CROSSSLOT to an EXEC whose commands span slots and discards it.
		slot, msg := cluster.TxnSlot(c.tx.queued)
		if msg != "" {
			c.Out.WriteError(msg)
			return
		}
		if len(c.n.groups) > 1 {
			// The block goes to its slot's group (a keyless one to the
			// group keyless requests go to).
			g = c.n.primaryGroup()
			if slot >= 0 {
				g = c.n.groupOf(slot)
				if asking {
					g = c.n.askingGroupOf(slot)
				}
			}
		}
	}
	// The user's permissions may have changed since the commands were
	// queued: Redis checks each again as EXEC runs it.
	c.aclDeniedMarkers(c.tx.queued)
	t := &cluster.Txn{Cmds: c.tx.queued, Watched: c.tx.watched, WatchedOn: c.tx.watchOn, Side: c.n.txnSide}
	if c.n.cfg.Knobs.ignoreWatch() {
		t.Watched, t.WatchedOn = nil, nil
	}
	c.tx.queued = nil // handed over: the replica may still read it
	c.tx.watched = nil
	c.runGroup = g
	c.reqs = append(c.reqs, cluster.Request{Argv: argv, W: c.Out, Txn: t, Asking: asking})
}

func cmdWatch(c *Session, argv [][]byte) {
	if c.tx.active {
		c.Out.WriteError("ERR WATCH inside MULTI is not allowed")
		return
	}
	keys := argv[1:]
	if c.n.clustered {
		slot := cluster.KeySlot(keys[0])
		for _, k := range keys[1:] {
			if cluster.KeySlot(k) != slot {
				c.Out.WriteError(cluster.CrossSlotMsg)
				return
			}
		}
	}
	if len(c.tx.watched)+len(keys) > watchedKeysMax {
		c.Out.WriteError(errWatchTooLarge)
		return
	}
	now := c.n.clock.Now()
	// Versions are read on the group the keys' slot is routed to; an
	// EXEC that runs on another group finds WatchedOn differs.
	g := uint64(1)
	if len(c.n.groups) > 1 {
		g = c.n.groupOf(cluster.KeySlot(keys[0]))
	}
	gr := c.n.group(g)
	c.n.rt.Exclusive(c, g, func() {
		r := gr.replica
		if r == nil || gr.dead != "" {
			return
		}
		if c.tx.watchOn != r {
			c.tx.unwatch()
			c.tx.watchOn = r
		}
	next:
		for _, k := range keys {
			for _, w := range c.tx.watched {
				if bytes.Equal(w.Key, k) {
					continue next // Redis keeps the first version
				}
			}
			c.tx.watched = append(c.tx.watched, cluster.Watch{Key: append([]byte(nil), k...), Version: r.KeyVersion(now, k)})
		}
	})
	c.Out.WriteSimple("OK")
}

func cmdUnwatch(c *Session, argv [][]byte) {
	c.tx.unwatch()
	c.Out.WriteSimple("OK")
}

// txnSide runs a block's PUBLISH and SPUBLISH at their turn inside EXEC
// (cluster.Txn.Side): pub/sub is the server's, not the replica's.
func (n *Node) txnSide(argv [][]byte, w engine.Writer) bool {
	switch {
	case eqFold(argv[0], "publish"):
		w.WriteInt(int64(n.pubsub.publish(argv[1], argv[2])))
	case eqFold(argv[0], "spublish"):
		w.WriteInt(int64(n.pubsub.spublish(argv[1], argv[2])))
	default:
		return false
	}
	return true
}
