package sim

import (
	"time"

	"io"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/node"
	"github.com/keel-db/keel/resp"
)

// A conn is one client connection to one node, as TCP would carry it:
// bytes in order both ways, no loss, but broken for good by a partition
// (a send dropped on a blocked link breaks it), by either end closing it,
// or by the node's process ending. The node's side runs a real session:
// the bytes the client sent are parsed by resp.Reader and handed to
// node.Session, and what the session writes goes back as bytes that the
// client parses with resp.ParseReply. A client whose connection broke
// opens a new one (a new session: its MULTI, WATCH, ASKING and
// subscriptions are gone).
//
// A connection is opened by the client's first send. Bytes that reach a
// node whose process is not the one the connection was opened to find no
// socket there: the node answers with a reset (the client learns at once
// that nothing was done); a node that is down answers nothing.

// connErrNoData is the connection source's "would block": the reader asks
// for more only when no complete command is buffered, and the simulator
// calls it only when one is.
var connErrNoData = errors.New("sim: no more buffered input")

type conn struct {
	id     uint64
	client *Client
	n      *Node
	// epoch is the node process the connection was opened to (0 until
	// its first bytes arrive).
	epoch uint64
	// broken: the connection is dead (partition, reset, closed, the node
	// gone); neither end sends on it any more.
	broken bool

	// The node's side.
	sess    *node.Session
	rd      *resp.Reader
	src     []byte // bytes received, not yet read by rd
	inBatch bool   // a batch is running in the session
	waiting bool   // a step of the session is out
	queued  bool   // in the node's ready list
	// bytesIn counts what the node received (node.Conn).
	bytesIn int64
	// unread: the client's sends waiting for the session to read them
	// into a batch (conn.send's read), oldest first.
	unread []unreadSend

	// The client's side: reply bytes not yet parsed.
	in []byte
	// readonly: a connection the client sent READONLY on (follower reads
	// only).
	readonly bool
	// onBatch, when set, is shown every batch of commands the node's
	// session begins, before it runs (the world noting when a subscriber's
	// PSUBSCRIBE ran, subscriber.go).
	onBatch func(cmds [][][]byte)
}

func (c *conn) name() string {
	return c.client.name + "/" + itoa(int64(c.id))
}

// The node.Conn view.
func (c *conn) RemoteAddr() string { return c.client.name + ":" + itoa(int64(c.id)) }
func (c *conn) LocalAddr() string  { return NodeAddr(c.n.cfg.ID) }
func (c *conn) FD() int            { return -1 }
func (c *conn) BytesIn() int64     { return c.bytesIn }
func (c *conn) QueryBuffer() (int, int) {
	if c.rd == nil {
		return 0, 0
	}
	return c.rd.Buffered(), c.rd.BufferCap()
}

// Read is the reader's source: the bytes received so far.
func (c *conn) Read(p []byte) (int, error) {
	if len(c.src) == 0 {
		return 0, connErrNoData
	}
	k := copy(p, c.src)
	c.src = c.src[k:]
	return k, nil
}

// unreadSend is one send of the client's the session has not read yet:
// its first byte's offset in the connection's input, and what to tell.
type unreadSend struct {
	start int64
	read  func()
}

// send carries data from the client to the node. read (optional) runs
// when the node's session reads any of it into a batch, which is where
// keel first sees a command: bytes dropped on the way, arriving while the
// node is down, or still unread when the connection breaks (the session
// reads no more of a broken connection) never reach keel at all.
func (c *conn) send(data []byte, read func()) {
	if c.broken {
		return
	}
	cl, n := c.client, c.n
	cl.r.Net.sendStreamOr(cl.id, n.cfg.ID, func() {
		if n.receive(c, data) && read != nil {
			c.unread = append(c.unread, unreadSend{start: c.bytesIn - int64(len(data)), read: read})
		}
	}, c.breakConn)
}

// receive is data from the client arriving at the node. It reports
// whether a session of the running process took it (to read when the
// node gets to it).
func (n *Node) receive(c *conn, data []byte) bool {
	if c.broken {
		return false
	}
	switch {
	case !n.up:
		if n.stopped && n.grp != nil {
			// A process stopped for good on a machine that is up refuses
			// the connection at once.
			n.trace("refuse " + c.name() + " (stopped)")
			c.reset(true)
			return false
		}
		n.trace("drop input of " + c.name() + " (down)")
		c.breakConn()
		return false
	case c.epoch == 0:
		c.epoch = n.epoch
		c.rd = resp.NewReader(c, resp.DefaultLimits())
		c.sess = n.nd.NewSession(c)
		n.conns[c.id] = c
	case c.epoch != n.epoch:
		// The process the connection was opened to is gone.
		n.trace("reset " + c.name() + " (no such connection in this process)")
		c.reset(false)
		return false
	}
	c.bytesIn += int64(len(data))
	c.src = append(c.src, data...)
	n.makeReady(c)
	return true
}

// advance runs the session as far as it goes: batches of what was
// received, each until it needs a step (gathered for the node's next
// Submit) or is answered (its replies sent back).
func (c *conn) advance() {
	n := c.n
	for !c.broken && !c.waiting {
		if !c.inBatch {
			if len(c.src) == 0 && c.rd.Buffered() == 0 {
				return
			}
			cmds, err := c.rd.ReadBatch()
			if err == nil {
				c.noteRead()
			}
			if err != nil {
				var pe *resp.ProtocolError
				if errors.As(err, &pe) && pe != resp.ErrQueryBufferLimit {
					c.sess.Out.WriteError("ERR " + pe.Error())
					c.reply()
				}
				if !errors.Is(err, connErrNoData) {
					c.closeFromNode()
				}
				return
			}
			if c.onBatch != nil {
				c.onBatch(cmds)
			}
			c.sess.Begin(cmds)
			c.inBatch = true
		}
		st, ok := c.sess.Next()
		if ok && st.Park {
			// Blocked (BLPOP and the like): what came before goes out,
			// and the session waits for Runtime.Unpark.
			c.reply()
			return
		}
		if ok && st.PauseUntil != 0 {
			c.pauseWait()
			return
		}
		if ok {
			c.waiting = true
			n.steps[st.Group] = append(n.steps[st.Group], stepItem{c: c, st: st})
			return
		}
		c.inBatch = false
		c.reply()
		if c.sess.CloseAfter() {
			c.closeFromNode()
			return
		}
	}
}

// noteRead tells the sends whose bytes the batch just read began: the
// input up to the reader's unparsed tail is consumed.
func (c *conn) noteRead() {
	if len(c.unread) == 0 {
		return
	}
	consumed := c.bytesIn - int64(len(c.src)) - int64(c.rd.Buffered())
	k := 0
	for k < len(c.unread) && c.unread[k].start < consumed {
		c.unread[k].read()
		c.unread[k] = unreadSend{}
		k++
	}
	c.unread = c.unread[k:]
}

// pausePoll is how often a session held by CLIENT PAUSE looks again:
// the node's clock may be skewed from the world's, so the wait is polled
// rather than converted.
const pausePoll = 10 * time.Millisecond

// pauseWait holds the batch (CLIENT PAUSE) and runs it again later.
func (c *conn) pauseWait() {
	n := c.n
	c.waiting = true
	epoch := n.epoch
	n.r.W.At(n.r.W.now+int64(pausePoll), func() {
		if epoch != n.epoch {
			return
		}
		c.waiting = false
		if c.broken {
			c.endSession() // it waited for the pause
			return
		}
		n.makeReady(c)
	})
}

// stepAnswered is a Submit's done for one of the conn's steps.
func (c *conn) stepAnswered() {
	c.waiting = false
	if c.broken {
		c.endSession() // it waited for this answer
		return
	}
	if c.n.nd == nil {
		return
	}
	c.n.makeReady(c)
}

// reply sends the batch's replies (or, for a subscriber, moves them to
// its outbox, which pushed then sends).
func (c *conn) reply() {
	b := c.sess.TakeOutput()
	if len(b) > 0 {
		c.toClient(append([]byte(nil), b...))
	}
	c.sess.ResetOutput()
}

// pushed is node.Runtime.Wake: the session has output outside a batch.
func (c *conn) pushed() {
	n := c.n
	n.outbox = append(n.outbox, func() {
		sess := c.sess
		if sess == nil {
			return
		}
		p, _ := sess.TakePushed()
		if len(p) > 0 && !c.broken {
			// A send a partition drops breaks the connection and ends
			// the session (c.sess is then nil): recycle into the one the
			// bytes came from.
			c.sendToClient(append([]byte(nil), p...))
		}
		sess.Recycle(p)
	})
	n.whenFree(&n.flushQ, n.flush)
}

// toClient queues data for the client; it leaves when the node is free.
func (c *conn) toClient(data []byte) {
	n := c.n
	n.outbox = append(n.outbox, func() { c.sendToClient(data) })
}

func (c *conn) sendToClient(data []byte) {
	if c.broken {
		return
	}
	cl, n := c.client, c.n
	cl.r.Net.sendStreamOr(n.cfg.ID, cl.id, func() { cl.onData(c, data) }, c.breakConn)
}

// reset answers a connection the node has no socket for (refused: no
// process listens at all): the client learns at once that nothing it
// sent was done.
func (c *conn) reset(refused bool) {
	c.broken = true
	cl, n := c.client, c.n
	cl.r.Net.sendStream(n.cfg.ID, cl.id, func() { cl.onReset(c, refused) })
}

// breakConn: the connection died (a partition, a full queue, a node that
// went down); each end finds out on its own (the client by its timeout).
func (c *conn) breakConn() {
	if c.broken {
		return
	}
	c.broken = true
	c.endSession()
}

// closeFromNode: the node closed the connection (QUIT, CLIENT KILL, an
// output limit, a protocol error).
func (c *conn) closeFromNode() {
	if c.broken {
		return
	}
	cl, n := c.client, c.n
	c.broken = true
	c.endSession()
	n.outbox = append(n.outbox, func() {
		cl.r.Net.sendStream(n.cfg.ID, cl.id, func() { cl.onReset(c, false) })
	})
}

// close: the client closed the connection; the node ends its session
// when the close arrives.
func (c *conn) close() {
	if c.broken {
		return
	}
	c.broken = true
	cl, n := c.client, c.n
	cl.r.Net.sendStream(cl.id, n.cfg.ID, func() { c.endSession() })
}

// lost: the node's process ended; the session is gone with it.
func (c *conn) lost() {
	c.sess = nil
	c.broken = true
}

func (c *conn) endSession() {
	if c.sess == nil || c.epoch != c.n.epoch || c.n.nd == nil {
		return
	}
	if c.waiting {
		// A step is out: the node may still write to the session's output
		// when it is answered; the session ends then.
		return
	}
	c.sess.Close()
	delete(c.n.conns, c.id)
	c.sess = nil
}

// parseReplies takes every complete reply off the client's buffer.
func (c *conn) parseReplies() ([]Reply, error) {
	var out []Reply
	for len(c.in) > 0 {
		r, k, err := resp.ParseReply(c.in)
		if errors.Is(err, resp.ErrIncomplete) {
			break
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
		c.in = c.in[k:]
	}
	if len(c.in) == 0 {
		c.in = nil
	}
	return out, nil
}

var _ io.Reader = (*conn)(nil)
