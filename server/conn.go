package server

import (
	"errors"
	"io"
	stdnet "net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-db/keel/node"
	"github.com/keel-db/keel/resp"
)

// outboxDrainTimeout bounds how long a leaving subscriber's last replies
// (QUIT's +OK) may take to reach the socket.
const outboxDrainTimeout = time.Second

// conn is one client connection: its goroutine reads a batch, runs it
// through the node's session and writes every reply of the batch with one
// write. Other goroutines only read its atomics (through the session) or
// close nc (CLIENT KILL, shutdown).
type conn struct {
	srv   *Server
	nc    stdnet.Conn
	sess  *node.Session
	rd    *resp.Reader
	addr  string
	laddr string
	fd    int

	// waits[g-1] is this connection's waiter on group g's queue, made on
	// first use.
	waits []*waiter
	// abandoned: the server stopped while a batch waited for its answer
	// (cluster mode); the replica may still write to the session's
	// output, so this goroutine must not touch it again and just leaves.
	abandoned bool

	// deadline: a read deadline is set (idleReader).
	deadline bool

	// A session parked in a blocking command (BLPOP, ...): unparked is
	// set, and the read the parked goroutine waits in is cut short, when
	// the node says it can go on; held keeps what the client sent
	// meanwhile, for the reader once the batch is over.
	unparked atomic.Bool
	held     []byte

	// writer is the subscriber's output goroutine (started on the first
	// Wake): woken through wake, it writes what the session pushed.
	wake       chan struct{}
	writerDone chan struct{}

	// In an event loop (loop_linux.go), lp is the loop and lfd the
	// loop's descriptor of the socket, while nc is nil; the loop's
	// goroutine is then the connection's goroutine. Leaving the loop
	// (detachFD) sets nc and closes ready, which a subscriber's writer
	// waits for. fdMu guards the switches of nc and the descriptor's
	// close against kill from other goroutines; killed is set by kill.
	lp       *eventLoop
	lfd      int
	ready    chan struct{}
	fdMu     sync.Mutex
	fdClosed bool
	killed   bool
	// active is when the loop last read from the socket (idle timeout);
	// turn is the loop's turn that last served the connection.
	active int64
	turn   uint64
	// pendingOut is the part of the replies the loop's write left: the
	// goroutine the connection goes to writes it first.
	pendingOut []byte
	// inflight: the loop submitted the batch's first step to a
	// replicated group, which has not answered yet; unwatched: its
	// socket is out of epoll meanwhile (eventLoop.unwatch).
	inflight, unwatched bool
}

func newConn(s *Server, nc stdnet.Conn) *conn {
	c := &conn{
		srv:   s,
		nc:    nc,
		rd:    nil, // below: it reads through the idle-timeout reader
		addr:  nc.RemoteAddr().String(),
		laddr: nc.LocalAddr().String(),
		fd:    connFD(nc),
		lfd:   -1,
		waits: make([]*waiter, len(s.groups)),
	}
	c.rd = resp.NewReader(idleReader{c}, s.node.Limits())
	c.sess = s.node.NewSession(c)
	return c
}

// idleReader reads the connection with the idle timeout (CONFIG SET
// timeout) as the read deadline, renewed at every read, as Redis counts
// idleness from the last interaction; no deadline when the session has
// no timeout (a subscriber, or timeout 0).
type idleReader struct{ c *conn }

func (r idleReader) Read(p []byte) (int, error) {
	c := r.c
	if c.lp != nil {
		return c.readFD(p) // the loop counts idleness itself (sweep)
	}
	if c.unparked.Swap(false) {
		// An unpark the batch went on without parking for (it saw the
		// wake first) left its deadline; nothing can unpark it now.
		c.nc.SetReadDeadline(time.Time{})
		c.deadline = false
	}
	if len(c.held) > 0 {
		k := copy(p, c.held)
		c.held = c.held[k:]
		if len(c.held) == 0 {
			c.held = nil
		}
		return k, nil
	}
	if t := c.sess.IdleTimeout(); t > 0 {
		c.nc.SetReadDeadline(time.Now().Add(t))
		c.deadline = true
	} else if c.deadline {
		c.nc.SetReadDeadline(time.Time{})
		c.deadline = false
	}
	return c.nc.Read(p)
}

// The node.Conn view of the connection.
func (c *conn) RemoteAddr() string { return c.addr }
func (c *conn) LocalAddr() string  { return c.laddr }
func (c *conn) FD() int            { return c.fd }
func (c *conn) BytesIn() int64     { return c.rd.BytesRead() }
func (c *conn) QueryBuffer() (int, int) {
	return c.rd.Shown() // read from other goroutines (CLIENT LIST)
}

func connFD(nc stdnet.Conn) int {
	fd := -1
	if tc, ok := nc.(*stdnet.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			raw.Control(func(f uintptr) { fd = int(f) })
		}
	}
	return fd
}

func (c *conn) serve() {
	defer c.srv.removeConn(c)
	defer c.nc.Close()
	defer c.end()
	c.serveBatches()
}

// serveDetached is the goroutine of a connection that left its event
// loop: it runs the step the loop handed over (st, when not nil) and the
// rest of the batch (midBatch), or writes the replies the loop's write
// left, then serves the connection as serve does.
func (c *conn) serveDetached(st *node.Step, midBatch bool) {
	defer c.srv.removeConn(c)
	defer c.nc.Close()
	defer c.end()
	if len(c.pendingOut) > 0 {
		_, err := c.nc.Write(c.pendingOut)
		c.pendingOut = nil
		c.sess.ResetOutput()
		if err != nil || c.sess.CloseAfter() {
			return
		}
	}
	if midBatch {
		if st != nil && !c.step(*st) {
			return
		}
		if !c.run() || !c.flush() || c.sess.CloseAfter() {
			return
		}
	}
	c.serveBatches()
}

// serveBatches reads and runs batches until the connection ends.
func (c *conn) serveBatches() {
	for {
		c.rd.SetLimits(c.srv.node.Limits())
		c.rd.SetAuthenticated(c.sess.Authenticated())
		cmds, err := c.rd.ReadBatch()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.sess.Begin(cmds)
		if !c.run() || !c.flush() || c.sess.CloseAfter() {
			return
		}
	}
}

// readFailed answers or logs why a read ended the connection.
func (c *conn) readFailed(err error) {
	var pe *resp.ProtocolError
	var ne stdnet.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout() && c.deadline:
		c.srv.logf("closing client id=%d addr=%s: idle for %s (timeout)", c.sess.ID(), c.addr, c.sess.IdleTimeout())
	case errors.As(err, &pe) && pe != resp.ErrQueryBufferLimit:
		c.sess.Out.WriteError("ERR " + pe.Error())
		c.flush()
	case pe == resp.ErrQueryBufferLimit:
		c.srv.logf("closing client id=%d addr=%s: query buffer limit reached", c.sess.ID(), c.addr)
	case !errors.Is(err, io.EOF) && !c.sess.Killed() && !errors.Is(err, stdnet.ErrClosed):
		c.srv.logf("client id=%d addr=%s: %v", c.sess.ID(), c.addr, err)
	}
}

// run carries out the batch's steps: each is a run of requests for one
// group, submitted through that group's queue (group commit with every
// other connection's) and answered before the session goes on.
func (c *conn) run() bool {
	for {
		st, ok := c.sess.Next()
		if !ok {
			return true
		}
		if !c.step(st) {
			return false
		}
	}
}

// step carries out one step of the batch.
func (c *conn) step(st node.Step) bool {
	if st.Park {
		return c.flush() && c.park()
	}
	if st.PauseUntil != 0 { // CLIENT PAUSE (pause.go)
		return c.pauseWait(st.PauseUntil)
	}
	g := c.srv.groups[st.Group-1]
	if !g.queue.submit(c.waiterFor(st.Group), st.Reqs) {
		c.abandoned = true
		return false
	}
	return true
}

// runInline is run in an event loop: it runs the batch's steps until the
// batch is over or a step would make the loop wait, or made the session a
// subscriber (leave: the connection must leave the loop; st, when ok, is
// the step its own goroutine runs first).
func (c *conn) runInline() (st node.Step, ok, leave bool) {
	for {
		st, ok, leave = c.nextInline()
		if leave || !ok {
			return st, ok, leave
		}
		// A replicated group answers later: the loop submits only a
		// batch's first step to one (eventLoop.turn).
		if q := c.srv.groups[st.Group-1].queue; q.async || !q.submitUnlessCall(c.waiterFor(st.Group), st.Reqs, nil) {
			return st, true, true
		}
	}
}

// nextInline is the session's next step in an event loop; leave: the
// step (if ok) must run on the connection's own goroutine, as must the
// rest of the batch.
func (c *conn) nextInline() (st node.Step, ok, leave bool) {
	st, ok = c.sess.Next()
	if c.wake != nil {
		// A subscriber (SUBSCRIBE is answered inside Next): its writer
		// needs a socket.
		return st, ok, true
	}
	if ok && (st.Park || st.PauseUntil != 0 || callsFunction(st.Reqs)) {
		// A function call may hold the group for seconds: it runs on
		// the connection's goroutine, so that the loop's other clients
		// are served meanwhile (-BUSY, FUNCTION KILL), as Redis serves
		// them during a long script.
		return st, true, true
	}
	return st, ok, false
}

type flushResult int

const (
	flushOK flushResult = iota
	flushPartial
	flushFailed
)

// flushInline is flush in an event loop: what the socket does not take
// at once is kept in pendingOut (flushPartial), for the goroutine the
// connection then leaves to.
func (c *conn) flushInline() flushResult {
	b := c.sess.TakeOutput()
	if len(b) == 0 {
		if c.sess.Killed() {
			return flushFailed
		}
		return flushOK
	}
	n, err := c.writeFD(b)
	if err != nil {
		return flushFailed
	}
	if n < len(b) {
		c.pendingOut = b[n:]
		return flushPartial
	}
	c.sess.ResetOutput()
	return flushOK
}

// parkReadBytes is how much a parked connection reads at a time.
const parkReadBytes = 16 << 10

// park waits while the session is blocked (Step.Park) until the node
// unparks it: true, or false once the connection is gone (the session's
// wait is then dropped by Close). It keeps reading meanwhile, so that a
// client that hangs up is noticed, as Redis notices it; what arrives is
// held for after the blocking command (bounded by the query buffer
// limit). A blocked client has no idle timeout, as in Redis.
func (c *conn) park() bool {
	var buf []byte
	for {
		// Clear the deadline before looking at the flag: an unpark that
		// set its deadline earlier is seen by the flag, a later one cuts
		// the read below short.
		c.nc.SetReadDeadline(time.Time{})
		c.deadline = false
		if c.unparked.Swap(false) {
			return true
		}
		if buf == nil {
			buf = make([]byte, parkReadBytes)
		}
		k, err := c.nc.Read(buf)
		if k > 0 {
			if len(c.held)+k > c.srv.node.Limits().QueryBufferBytesMax {
				c.srv.logf("closing client id=%d addr=%s: query buffer limit reached while blocked", c.sess.ID(), c.addr)
				return false
			}
			c.held = append(c.held, buf[:k]...)
		}
		var ne stdnet.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			return false
		}
	}
}

// unpark is node.Runtime.Unpark: the parked session can go on.
func (c *conn) unpark() {
	c.unparked.Store(true)
	// A session that parked in an event loop may not have its socket
	// yet (the loop is handing it over): the flag is enough then, park
	// looks at it before its first read.
	c.fdMu.Lock()
	nc := c.nc
	c.fdMu.Unlock()
	if nc != nil {
		nc.SetReadDeadline(time.Now())
	}
}

// waiterFor is this connection's waiter on group g's queue.
func (c *conn) waiterFor(g uint64) *waiter {
	if w := c.waits[g-1]; w != nil {
		return w
	}
	w := c.srv.groups[g-1].queue.newWaiter()
	c.waits[g-1] = w
	return w
}

// flush writes the batch's replies with one write(2), or, once the
// session subscribed, hands them to its writer through the session's
// outbox.
func (c *conn) flush() bool {
	b := c.sess.TakeOutput()
	if len(b) == 0 {
		return !c.sess.Killed()
	}
	var err error
	if c.lp != nil {
		_, err = c.writeFD(b) // only a protocol error's reply, before closing
	} else {
		_, err = c.nc.Write(b)
	}
	c.sess.ResetOutput()
	return err == nil
}

// kill closes the connection from any goroutine (CLIENT KILL, shutdown).
func (c *conn) kill() {
	c.fdMu.Lock()
	defer c.fdMu.Unlock()
	c.killed = true
	if c.nc != nil {
		c.nc.Close()
		return
	}
	c.killFD()
}

// end closes the session; a subscriber's writer sends what it still holds
// (bounded by a write deadline) and stops.
func (c *conn) end() {
	if c.rd.PeakBufferCap() >= releaseAfterBytes {
		c.srv.releaseMemory()
	}
	if c.abandoned {
		return // the replica may still write to the session's output
	}
	c.sess.Close()
	if c.writerDone != nil {
		if c.nc != nil {
			c.nc.SetWriteDeadline(time.Now().Add(outboxDrainTimeout))
		}
		<-c.writerDone
	}
}

// wakeWriter is node.Runtime.Wake: the session has pushed output.
func (c *conn) wakeWriter() {
	if c.wake == nil {
		// The first Wake comes from the connection's own goroutine (its
		// SUBSCRIBE), so starting the writer here does not race.
		c.wake = make(chan struct{}, 1)
		c.writerDone = make(chan struct{})
		go c.writeLoop()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) writeLoop() {
	defer close(c.writerDone)
	if c.ready != nil {
		// Started in an event loop: the socket is the writer's once the
		// connection has left the loop (none if it closed there).
		<-c.ready
		if c.nc == nil {
			return
		}
	}
	for range c.wake {
		p, closed := c.sess.TakePushed()
		if len(p) > 0 && !c.sess.Killed() {
			if _, err := c.nc.Write(p); err != nil {
				c.nc.Close()
				return
			}
		}
		c.sess.Recycle(p)
		if closed {
			return
		}
	}
}

// releaseAfterBytes: a connection that held a read buffer this big (a huge
// argument) makes the server hand freed memory back to the OS once it is
// gone, rather than leave it to the runtime's slow background scavenger.
const releaseAfterBytes = 64 << 20

// releaseMemory returns freed memory to the OS soon, at most once per
// releaseEvery: a forced GC is not free.
func (s *Server) releaseMemory() {
	if !s.releasing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.releasing.Store(false)
		debug.FreeOSMemory()
		time.Sleep(releaseEvery)
	}()
}

const releaseEvery = 10 * time.Second
