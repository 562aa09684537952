//go:build linux

package server

import (
	"errors"
	"io"
	stdnet "net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/node"
)

// An event loop serves many plain-TCP client connections from one
// goroutine, woken by epoll readiness, as Redis's event loop does: a
// request costs a read, the node's run and a write, without the park,
// wake-up and hand-off of a goroutine per connection (issue 18's -P 1
// floor: docs/performance.md, "Event loops").
//
// A turn reads one batch from every ready connection and submits the
// first steps of all of them as one group commit per replica group. On a
// single node that commit is answered when Submit returns, and the turn
// writes the replies. A replicated group (cluster mode) answers only once
// a majority holds the writes, from whichever goroutine runs the group
// then: the turn leaves those connections in flight (loopBatch), and the
// group's done hands the batch back to the loop (complete), which writes
// their replies in a later turn. A connection in flight is not read from;
// if its socket signals meanwhile it is taken out of epoll (unwatch) and
// put back when its batch is answered.
//
// A connection stays in its loop while its steps run so and its replies
// fit the socket. Anything else — a blocking command (Step.Park), CLIENT
// PAUSE, a second step for a replicated group in one batch, a function
// call, a subscriber's pushes, a reply the socket does not take whole —
// hands the connection to a goroutine of its own for good (detach): the
// socket moves to Go's poller, and the goroutine carries on from the step
// it was given, with the same session and reader, so nothing read or
// written so far is lost or repeated. TLS connections never enter a
// loop. Everything a connection does in a loop is what the goroutine
// path (conn.serve) does; the server's tests run through both.

// loopEventsMax is how many readiness events one epoll_wait returns.
const loopEventsMax = 256

// loopSweepEvery is how often a loop closes its connections idle past
// their timeout (CONFIG SET timeout), as Redis's clientsCron does.
const loopSweepEvery = 100 * time.Millisecond

// errWouldBlock: the socket has nothing more to read for now.
var errWouldBlock = errors.New("server: read would block")

type eventLoop struct {
	s      *Server
	epfd   int
	wakeFD int // an eventfd: close writes it so that epoll_wait returns

	mu    sync.Mutex
	conns map[int]*conn // by fd; the accept goroutine adds, the loop removes

	stop  atomic.Bool
	done  chan struct{}
	turns atomic.Uint64 // turns taken (tests: a loop that spins)

	events []unix.EpollEvent
	// ready: the connections of this turn; again: those with input left
	// after theirs, served next turn without blocking; turnNo counts
	// turns (conn.turn: served this turn already).
	ready, again []*conn
	turnNo       uint64
	now          int64 // since loopEpoch, read once a turn (conn.active, sweeps)
	pend         []pending
	took         []int // the indexes in pend of one group commit
	reqs         []cluster.Request
	waits        []*waiter // waits[g-1]: the loop's waiter on group g's queue
	sweptAt      int64     // l.now at the last sweep

	// Replicated groups' batches answered (complete, from any goroutine)
	// and not yet resumed; busy: the loop is in a turn and will look at
	// doneList before it sleeps, so complete need not wake it. finished
	// is the loop's own: the list it took.
	doneMu   sync.Mutex
	doneList []*loopBatch
	busy     bool
	finished []*loopBatch

	// yields: a group is replicated, so a turn wakes the peer
	// transport's goroutines, and the loop yields to them before it
	// blocks (run).
	yields bool
}

// loopsSupported: this platform has event loops.
const loopsSupported = true

func newEventLoop(s *Server) (*eventLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &ev); err != nil {
		unix.Close(wfd)
		unix.Close(epfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l := &eventLoop{
		s: s, epfd: epfd, wakeFD: wfd,
		conns:  map[int]*conn{},
		done:   make(chan struct{}),
		events: make([]unix.EpollEvent, loopEventsMax),
	}
	for _, g := range s.groups {
		l.waits = append(l.waits, g.queue.newWaiter())
		l.yields = l.yields || g.queue.async
	}
	return l, nil
}

// enroll moves nc, a plain TCP connection just accepted, into the loop:
// its socket is duplicated (the loop owns the copy) and nc closed. False:
// the socket could not be taken over, and c goes on with nc as a
// goroutine.
func (l *eventLoop) enroll(c *conn) bool {
	tc, ok := c.nc.(*stdnet.TCPConn)
	if !ok {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	cerr := raw.Control(func(f uintptr) {
		fd, err = unix.Dup(int(f))
	})
	if cerr != nil || err != nil {
		return false
	}
	// The duplicate shares the socket's O_NONBLOCK (set by Go's poller);
	// set it anyway: the loop must never block on a read.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return false
	}
	c.fdMu.Lock()
	if c.killed { // the server is closing
		c.fdMu.Unlock()
		unix.Close(fd)
		return false
	}
	nc := c.nc
	c.nc, c.lfd, c.lp = nil, fd, l
	c.ready = make(chan struct{})
	c.active = int64(time.Since(loopEpoch))
	c.fdMu.Unlock()
	// The loop finds c through the map, under mu: what was set above is
	// seen by it.
	l.mu.Lock()
	l.conns[fd] = c
	l.mu.Unlock()
	if err := l.watch(fd); err != nil {
		l.mu.Lock()
		delete(l.conns, fd)
		l.mu.Unlock()
		c.fdMu.Lock()
		c.nc, c.lfd, c.lp, c.ready = nc, -1, nil, nil
		c.fdMu.Unlock()
		unix.Close(fd)
		return false
	}
	nc.Close() // the socket stays open through fd
	return true
}

// close stops the loop once its connections are gone (Server.Close).
func (l *eventLoop) close() {
	l.stop.Store(true)
	var one = [8]byte{1}
	unix.Write(l.wakeFD, one[:])
	<-l.done
}

func (l *eventLoop) run() {
	defer close(l.done)
	defer unix.Close(l.epfd)
	defer unix.Close(l.wakeFD)
	// polled: the last epoll_wait did not block and found nothing. Only
	// a loop that yields polls first (see below); the others block at
	// once, as they always may.
	polled := !l.yields
	for {
		timeout := int(loopSweepEvery / time.Millisecond)
		if len(l.again) > 0 || !polled {
			timeout = 0
		}
		n, err := unix.EpollWait(l.epfd, l.events, timeout)
		if n == 0 && err == nil && len(l.again) == 0 {
			if !polled {
				// Nothing ready after a turn: let the goroutines the turn
				// woke (the peers' senders, a detached connection) run on
				// this P before the loop blocks in epoll_wait, which would
				// keep them queued behind it until sysmon took the P away
				// (20 µs or more later, and a sysmon that never backs
				// off), as gnet's poller does. A single node's turn
				// wakes no goroutine, and there the extra epoll_wait
				// cost 6 % more CPU per request for nothing.
				polled = true
				runtime.Gosched()
				continue
			}
			polled = !l.yields // a sweep is due (timeout)
		} else {
			polled = !l.yields
		}
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			l.s.logf("event loop: epoll_wait: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		l.turnNo = l.turns.Add(1)
		l.now = int64(time.Since(loopEpoch))
		l.ready = append(l.ready[:0], l.again...)
		clear(l.again)
		l.again = l.again[:0]
		for i := 0; i < n; i++ {
			fd := int(l.events[i].Fd)
			if fd == l.wakeFD {
				var b [8]byte
				unix.Read(l.wakeFD, b[:])
				if l.stop.Load() {
					return
				}
				continue
			}
			l.mu.Lock()
			c := l.conns[fd]
			l.mu.Unlock()
			if c != nil {
				l.ready = append(l.ready, c)
			}
		}
		l.collect(true) // answers that came while the loop slept first
		l.turn()
		l.collect(false)
		if l.now-l.sweptAt >= int64(loopSweepEvery) {
			l.sweptAt = l.now
			l.sweep()
		}
	}
}

// turn serves one batch of every ready connection. Their first steps run
// as one group commit per replica group (one node.Submit: under
// appendfsync a single log write for all of them, as the goroutines'
// execQueue gathers them); the rest of each batch, rarely more than that
// one step, runs connection by connection. A connection with input left
// is served again next turn, after the loop has looked at the others.
func (l *eventLoop) turn() {
	l.pend = l.pend[:0]
	for _, c := range l.ready {
		if c.lp != l || c.turn == l.turnNo {
			continue // left the loop, or listed twice
		}
		c.turn = l.turnNo
		if c.inflight {
			l.unwatch(c) // its socket signals while its batch is in flight
			continue
		}
		l.begin(c)
	}
	clear(l.ready)
	if len(l.pend) == 0 {
		return
	}
	// Usually every step is for group 1; more groups are submitted in
	// the order their first step came. A group that a function call
	// holds or waits for is not waited for: its connections leave the
	// loop (a call may run for seconds, and meanwhile the loop's other
	// clients must get -BUSY and be able to FUNCTION KILL it).
	for i := range l.pend {
		if l.pend[i].taken {
			continue
		}
		// A replicated group gets the turn's read-only steps apart from
		// the others: a batch that reads waits for a ReadIndex round
		// before it proposes its writes (cluster/group.go), and the
		// turn's steps are concurrent (none answered yet), so writes need
		// not wait for reads.
		g, read := l.pend[i].st.Group, l.pend[i].read
		l.reqs, l.took = l.reqs[:0], l.took[:0]
		for j := i; j < len(l.pend); j++ {
			if p := &l.pend[j]; !p.taken && p.st.Group == g && p.read == read {
				l.reqs = append(l.reqs, p.st.Reqs...)
				l.took = append(l.took, j)
				p.taken = true
			}
		}
		q := l.s.groups[g-1].queue
		var lb *loopBatch
		if q.async {
			lb = &loopBatch{l: l, conns: make([]*conn, 0, len(l.took))}
			for _, j := range l.took {
				lb.conns = append(lb.conns, l.pend[j].c)
			}
		}
		// Only this goroutine resumes a handed-back batch (collect, after
		// the turn), so marking its connections in flight after the
		// submit is in time even when the group answered inside it.
		ran := q.submitUnlessCall(l.waiterFor(g), l.reqs, lb)
		for _, j := range l.took {
			if p := &l.pend[j]; !ran {
				p.away = true
			} else if lb != nil {
				p.c.inflight = true
			}
		}
		clear(l.reqs) // drop the references to argv and writers
	}
	for i := range l.pend {
		p := l.pend[i]
		l.pend[i] = pending{}
		if p.c.inflight {
			continue // answered through collect
		}
		if p.away {
			l.leave(p.c, p.st, true)
			continue
		}
		if st, ok, leave := p.c.runInline(); leave {
			l.leave(p.c, st, ok)
			continue
		}
		l.finish(p.c)
	}
}

// pending is a connection whose batch waits for its first step's group
// commit.
type pending struct {
	c  *conn
	st node.Step
	// taken: st is in a group commit being gathered; away: that group
	// could not be waited for, st runs on c's own goroutine; read: st
	// only reads, and its group is replicated (c.inflight: that group
	// has st, and answers it later).
	taken, away, read bool
}

// complete hands lb, answered (or abandoned), back to its loop; any
// goroutine.
func (l *eventLoop) complete(lb *loopBatch) {
	l.doneMu.Lock()
	wake := len(l.doneList) == 0 && !l.busy
	l.doneList = append(l.doneList, lb)
	l.doneMu.Unlock()
	if wake {
		var one = [8]byte{1}
		unix.Write(l.wakeFD, one[:])
	}
}

// collect resumes the connections of every batch answered since the last
// collect; busy: whether the loop goes on with a turn after it (and will
// collect again before it sleeps).
func (l *eventLoop) collect(busy bool) {
	l.doneMu.Lock()
	l.busy = busy
	l.finished, l.doneList = l.doneList, l.finished[:0]
	l.doneMu.Unlock()
	for i, lb := range l.finished {
		l.finished[i] = nil
		l.resume(lb)
	}
}

// resume carries on with the connections of an answered batch: the rest
// of each one's batch, then its replies.
func (l *eventLoop) resume(lb *loopBatch) {
	for _, c := range lb.conns {
		c.inflight = false
		if lb.abandoned {
			c.abandoned = true
			l.drop(c)
			continue
		}
		if c.unwatched {
			if err := l.watch(c.lfd); err != nil {
				l.s.logf("event loop: epoll_ctl: %v", err)
				l.detach(c, nil, true) // its goroutine writes the replies and goes on
				continue
			}
			c.unwatched = false
		}
		// The idle timeout counts from the answer, as a goroutine's read
		// deadline is set after its replies: a commit that took longer
		// than the timeout must not close the connection as idle.
		c.active = l.now
		if st, ok, leave := c.runInline(); leave {
			l.leave(c, st, ok)
			continue
		}
		l.finish(c)
	}
}

// watch adds fd to the loop's epoll set: readable, or hung up.
func (l *eventLoop) watch(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// unwatch takes c, in flight, out of epoll until its batch is answered:
// level-triggered readiness would wake every turn until then.
func (l *eventLoop) unwatch(c *conn) {
	if !c.unwatched {
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.lfd, nil)
		c.unwatched = true
	}
}

// begin reads c's next batch and runs it up to its first step for a
// replica group, which it leaves in pend.
func (l *eventLoop) begin(c *conn) {
	c.rd.SetLimits(c.srv.node.Limits())
	c.rd.SetAuthenticated(c.sess.Authenticated())
	cmds, err := c.rd.ReadBatch()
	if err == errWouldBlock {
		return
	}
	if err != nil {
		c.readFailed(err)
		l.drop(c)
		return
	}
	c.sess.Begin(cmds)
	st, ok, leave := c.nextInline()
	switch {
	case leave:
		l.leave(c, st, ok)
	case ok:
		read := l.s.groups[st.Group-1].queue.async && readOnlyBatch(st.Reqs)
		l.pend = append(l.pend, pending{c: c, st: st, read: read})
	default:
		l.finish(c) // answered by the session alone
	}
}

// finish writes c's replies once its batch is over.
func (l *eventLoop) finish(c *conn) {
	switch c.flushInline() {
	case flushFailed:
		l.drop(c)
		return
	case flushPartial:
		l.detach(c, nil, false)
		return
	}
	if c.sess.CloseAfter() {
		l.drop(c)
		return
	}
	if c.rd.Buffered() > 0 {
		l.again = append(l.again, c) // a pipeline longer than a batch
	}
}

// waiterFor is the loop's waiter on group g's queue.
func (l *eventLoop) waiterFor(g uint64) *waiter { return l.waits[g-1] }

// leave hands c to a goroutine of its own in the middle of its batch,
// with st to run first when pending.
func (l *eventLoop) leave(c *conn, st node.Step, pending bool) {
	if pending {
		l.detach(c, &st, true)
	} else {
		l.detach(c, nil, true)
	}
}

// forget takes c out of the loop: no more events for its socket.
func (l *eventLoop) forget(c *conn) {
	l.mu.Lock()
	delete(l.conns, c.lfd)
	l.mu.Unlock()
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.lfd, nil)
	c.lp = nil
}

// drop closes c: what conn.serve's deferred calls do for a goroutine.
func (l *eventLoop) drop(c *conn) {
	l.forget(c)
	c.fdMu.Lock()
	unix.Close(c.lfd)
	c.fdClosed = true
	c.fdMu.Unlock()
	close(c.ready) // a subscriber's writer, if any, finds no socket and leaves
	c.end()
	c.srv.removeConn(c)
}

// detach hands c to a goroutine of its own, which runs st first when
// given, then the rest of the batch when midBatch, then writes what the
// session holds, then serves c as any goroutine connection.
func (l *eventLoop) detach(c *conn, st *node.Step, midBatch bool) {
	l.forget(c)
	if !c.detachFD() {
		c.end()
		c.srv.removeConn(c)
		return
	}
	go c.serveDetached(st, midBatch)
}

// sweep closes the loop's connections idle past their timeout.
func (l *eventLoop) sweep() {
	var idle []*conn
	l.mu.Lock()
	for _, c := range l.conns {
		if c.inflight {
			continue
		}
		if t := c.sess.IdleTimeout(); t > 0 && l.now-c.active > int64(t) {
			idle = append(idle, c)
		}
	}
	l.mu.Unlock()
	for _, c := range idle {
		c.srv.logf("closing client id=%d addr=%s: idle for %s (timeout)", c.sess.ID(), c.addr, c.sess.IdleTimeout())
		l.drop(c)
	}
}

// loopEpoch is the origin of conn.active.
var loopEpoch = time.Now()

// readFD is the loop connection's read: never blocking.
func (c *conn) readFD(p []byte) (int, error) {
	for {
		n, err := unix.Read(c.lfd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, errWouldBlock
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0:
			return 0, io.EOF
		}
		c.active = c.lp.now // the idle timeout counts from here
		return n, nil
	}
}

// writeFD writes p without blocking: how much the socket took.
func (c *conn) writeFD(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Write(c.lfd, p[done:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return done, nil
		case err != nil:
			return done, os.NewSyscallError("write", err)
		}
		done += n
	}
	return done, nil
}

// detachFD moves the socket from the loop to Go's poller as c.nc, and
// opens c.ready. False: it could not (the connection is closed then).
func (c *conn) detachFD() bool {
	c.fdMu.Lock()
	defer c.fdMu.Unlock()
	defer close(c.ready)
	f := os.NewFile(uintptr(c.lfd), "client")
	nc, err := stdnet.FileConn(f) // duplicates the descriptor
	f.Close()
	c.fdClosed = true
	if err != nil {
		c.srv.logf("client id=%d addr=%s: leaving the event loop: %v", c.sess.ID(), c.addr, err)
		return false
	}
	c.nc = nc
	return true
}

// killFD is kill for a connection in a loop: the loop sees the socket
// shut down and closes it itself (closing it here could close a
// descriptor the loop is using). fdMu held.
func (c *conn) killFD() {
	if !c.fdClosed {
		unix.Shutdown(c.lfd, unix.SHUT_RDWR)
	}
}
