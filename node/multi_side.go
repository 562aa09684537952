package node

import (
	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/resp"
)

// Connection commands inside MULTI. Redis queues nearly every command in
// a block and runs it at EXEC; keel runs a block as one step of its
// replica group (cluster.Txn), so a connection command of the block runs
// in one of two ways:
//
//   - at its turn, inside the step (cluster.Txn.Side): PING, ECHO, TIME,
//     SELECT, CLIENT, COMMAND, SLOWLOG, LATENCY, AUTH, HELLO,
//     PUBSUB, PUBLISH, SPUBLISH, UNWATCH, READONLY, READWRITE, ASKING,
//     and MONITOR (which refuses, as Redis's does inside a block); these
//     never wait for a replica group, which the step already holds;
//   - ahead, at EXEC, before the block is handed to its group, its reply
//     written at its turn: INFO and MEMORY, which read the replica groups,
//     and CONFIG, whose settings reach into every group (appendfsync,
//     notify-keyspace-events), so none can run inside a step holding one.
//     Nothing of the block has run when they run.
//
// The rest are refused when queued, flagging the block (EXECABORT): ACL
// and CLUSTER (their changes go through a group's log), SUBSCRIBE and
// its kin (a block cannot change the connection into a subscriber),
// SHUTDOWN (as in Redis), FUNCTION KILL.

const (
	multiRefused = iota
	multiSide
	multiAhead
)

var multiModes = map[string]int{
	"ping": multiSide, "echo": multiSide, "time": multiSide, "select": multiSide, "config": multiAhead,
	"client": multiSide, "command": multiSide, "slowlog": multiSide, "latency": multiSide, "auth": multiSide,
	"hello": multiSide, "pubsub": multiSide, "publish": multiSide, "spublish": multiSide, "unwatch": multiSide,
	"readonly": multiSide, "readwrite": multiSide, "asking": multiSide, "monitor": multiSide,
	"info": multiAhead, "memory": multiAhead,
}

// queuesInMulti reports whether connection command sc may be queued.
func queuesInMulti(sc *serverCommand) bool { return multiModes[sc.name] != multiRefused }

// runAhead runs the block's commands that read the replica groups, before
// the block goes to its group (noteRun calls it once EXEC gathered t).
func (c *Session) runAhead(t *cluster.Txn) {
	o := &c.obs
	o.ahead, o.aheadNext = o.ahead[:0], 0
	out := c.Out
	for _, argv := range t.Cmds {
		sc := lookupServerCommand(argv[0])
		if sc == nil || multiModes[sc.name] != multiAhead {
			continue
		}
		w := resp.NewWriter()
		w.SetProto(out.Proto())
		c.Out = w
		sc.run(c, argv)
		o.ahead = append(o.ahead, w.Bytes())
	}
	c.Out = out
}

// txnSide is the block's cluster.Txn.Side: it runs the block's connection
// commands at their turn, writing to w, the EXEC's writer (the session's
// own).
func (c *Session) txnSide(argv [][]byte, w engine.Writer) bool {
	if c.n.txnSide(argv, w) {
		return true // PUBLISH, SPUBLISH
	}
	sc := lookupServerCommand(argv[0])
	if sc == nil || w != engine.Writer(c.Out) {
		return false
	}
	o := &c.obs
	switch multiModes[sc.name] {
	case multiSide:
		prev := o.side
		o.side = o.txnGroup
		sc.run(c, argv)
		o.side = prev
		return true
	case multiAhead:
		if o.aheadNext < len(o.ahead) {
			c.Out.WriteRaw(o.ahead[o.aheadNext])
			o.ahead[o.aheadNext] = nil
			o.aheadNext++
			return true
		}
	}
	return false
}

// inGroup runs fn with group g held: at once inside a block's step on g
// (a connection command of the block), else through the runtime.
func (c *Session) inGroup(g uint64, fn func()) {
	if c.obs.side == g {
		fn()
		return
	}
	c.n.rt.Exclusive(c, g, fn)
}
