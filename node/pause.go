package node

import (
	"strings"

	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/resp"
)

// CLIENT PAUSE, UNPAUSE, REPLY and NO-EVICT.
//
// CLIENT PAUSE ms [WRITE|ALL] holds, until CLIENT UNPAUSE or the time
// runs out on the node's clock, every command (ALL) or every command that
// may write (WRITE: writes, FCALL, FUNCTION LOAD/DELETE/FLUSH/RESTORE,
// PUBLISH, an EXEC holding any of them), as Redis 7 does; a command with
// the wrong number of arguments is answered at once. A new pause extends
// the current one and never weakens it. The session that meets a held
// command first answers what it gathered, then returns a Step with
// PauseUntil set: the runtime waits for OnPause's signal or that time and
// calls Next again, which tries the command anew.

type pauseState struct {
	all   bool
	until int64 // node clock nanoseconds
}

// OnPause registers fn, called whenever CLIENT PAUSE or UNPAUSE changes
// the pause: the runtime wakes the sessions waiting on one.
func (n *Node) OnPause(fn func()) { n.onPause.Store(&fn) }

func (n *Node) pauseChanged() {
	if fn := n.onPause.Load(); fn != nil {
		(*fn)()
	}
}

// Paused reports the pause in force and until when (node clock
// nanoseconds); false when there is none.
func (n *Node) Paused() (all bool, until int64, ok bool) {
	p := n.pause.Load()
	if p == nil || n.clock.Now() >= p.until {
		return false, 0, false
	}
	return p.all, p.until, true
}

// pauseHold reports whether argv must wait for the pause to end (the
// node's pause is set); the pause's end is then in c.pauseUntil.
func (c *Session) pauseHold(argv [][]byte) bool {
	p := c.n.pause.Load()
	if p == nil {
		return false
	}
	if c.n.clock.Now() >= p.until {
		c.n.pause.CompareAndSwap(p, nil)
		return false
	}
	if c.obs.side != 0 {
		return false // a transaction's own commands, run inside its EXEC
	}
	id := statID(argv)
	if id < 0 || !c.arityFits(argv) {
		return false // answered with its error at once, as in Redis
	}
	if !p.all && !c.mayReplicate(argv, id) {
		return false
	}
	c.obs.pauseUntil = p.until
	return true
}

func (c *Session) arityFits(argv [][]byte) bool {
	if sc := lookupServerCommand(argv[0]); sc != nil {
		return arityOK(sc.arity, len(argv))
	}
	if ec := engine.Lookup(argv[0]); ec != nil {
		return ec.ArityOK(len(argv))
	}
	return true
}

// mayReplicate: the commands CLIENT PAUSE WRITE holds.
func (c *Session) mayReplicate(argv [][]byte, id int32) bool {
	if statTable().info[id].mayReplicate {
		return true
	}
	if eqFold(argv[0], "exec") && c.tx.active {
		for _, q := range c.tx.queued {
			if qid := statID(q); qid >= 0 && statTable().info[qid].mayReplicate {
				return true
			}
		}
	}
	return false
}

// pauseStep is the Step that makes the runtime wait for the pause: what
// ran so far has had its time, the wait is no command's.
func (c *Session) pauseStep() (Step, bool) {
	until := c.obs.pauseUntil
	c.obs.pauseUntil = 0
	c.obsReading(c.n.clock.Now())
	c.obs.waited = true
	return Step{PauseUntil: until}, true
}

func clientPause(c *Session, argv [][]byte) {
	if len(argv) > 4 {
		c.Out.WriteError("ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.")
		return
	}
	all := true
	if len(argv) == 4 {
		switch {
		case eqFold(argv[3], "write"):
			all = false
		case eqFold(argv[3], "all"):
		default:
			c.Out.WriteError("ERR CLIENT PAUSE mode must be WRITE or ALL")
			return
		}
	}
	ms, ok := resp.ParseInt(argv[2])
	if !ok {
		c.Out.WriteError("ERR timeout is not an integer or out of range")
		return
	}
	if ms < 0 {
		c.Out.WriteError("ERR timeout is negative")
		return
	}
	now := c.n.clock.Now()
	until := now + min(ms, (1<<62-now)/1e6)*1e6
	for {
		cur := c.n.pause.Load()
		next := &pauseState{all: all, until: until}
		if cur != nil && now < cur.until {
			next.all = next.all || cur.all
			next.until = max(next.until, cur.until)
		}
		if c.n.pause.CompareAndSwap(cur, next) {
			break
		}
	}
	c.n.pauseChanged()
	c.Out.WriteSimple("OK")
}

func clientUnpause(c *Session) {
	c.n.pause.Store(nil)
	c.n.pauseChanged()
	c.Out.WriteSimple("OK")
}

// clientReply is CLIENT REPLY ON|OFF|SKIP: OFF and SKIP have no reply
// of their own.
func clientReply(c *Session, argv [][]byte) {
	switch strings.ToLower(string(truncate(argv[2], 8))) {
	case "on":
		c.obs.replyOff, c.obs.skipNext = false, false
		c.obs.shown = true
		c.Out.WriteSimple("OK")
	case "off":
		c.obs.replyOff = true
	case "skip":
		if !c.obs.replyOff {
			c.obs.skipNext = true
		}
	default:
		c.Out.WriteError("ERR syntax error")
	}
}

// clientNoEvict is CLIENT NO-EVICT ON|OFF: kept and shown (flag e in
// CLIENT LIST); keel does not evict clients (maxmemory-clients).
func clientNoEvict(c *Session, argv [][]byte) {
	switch {
	case eqFold(argv[2], "on"):
		c.obs.noEvict.Store(true)
	case eqFold(argv[2], "off"):
		c.obs.noEvict.Store(false)
	default:
		c.Out.WriteError("ERR syntax error")
		return
	}
	c.Out.WriteSimple("OK")
}

// NoEvict reports CLIENT NO-EVICT: the client asked not to be evicted.
func (c *Session) NoEvict() bool { return c.obs.noEvict.Load() }
