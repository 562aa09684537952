package server

import (
	"errors"
	"io"
	stdnet "net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-db/keel/resp"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
)

// client is one connection. Its goroutine reads a batch, runs it and writes
// every reply of the batch with one write. Other goroutines only read the
// atomic fields (CLIENT LIST, INFO) or close conn (CLIENT KILL, shutdown).
type client struct {
	srv   *Server
	id    uint64
	conn  stdnet.Conn
	addr  string
	laddr string
	fd    int

	rd   *resp.Reader
	out  *resp.Writer
	wait *waiter // on group 1's shard (the only one without sharding)
	reqs []cluster.Request
	// With several replica groups (groups.go): reqs are bound for group
	// runGroup+1, and waits[i] is this connection's waiter on group i+1's
	// shard (waits[0] is wait), made on first use.
	runGroup int
	waits    []*waiter

	authed     bool
	closeAfter bool // QUIT, CLIENT KILL of itself, SHUTDOWN
	// readOnly (cluster mode, READONLY): a follower may serve this
	// connection's keyed reads, possibly stale (cluster.Request.ReadOnly).
	readOnly bool
	// asking (cluster mode, ASKING): the next command may be served by a
	// group importing its slot (cluster.Request.Asking). Redis keeps it
	// through a MULTI block up to EXEC.
	asking bool
	// abandoned (cluster mode): the server stopped while a batch waited for
	// its answer; the replica may still write to out, so this goroutine
	// must not touch it again and just leaves.
	abandoned bool

	created    time.Time
	lastActive atomic.Int64 // Unix nanoseconds of the last batch
	lastCmd    atomic.Pointer[string]
	commands   atomic.Int64
	bytesIn    atomic.Int64
	bytesOut   atomic.Int64
	proto      atomic.Int32
	killed     atomic.Bool

	tx  txState   // MULTI/WATCH (multi.go)
	sub *subState // subscriptions (pubsub.go)
	box *outbox   // set once subscribed: all output goes through it

	mu      sync.Mutex // guards the strings below, read by CLIENT LIST
	name    string
	libName string
	libVer  string
}

func newClient(s *Server, conn stdnet.Conn) *client {
	c := &client{
		srv:     s,
		id:      s.nextID.Add(1),
		conn:    conn,
		addr:    conn.RemoteAddr().String(),
		laddr:   conn.LocalAddr().String(),
		fd:      connFD(conn),
		rd:      resp.NewReader(conn, s.cfg.Limits),
		out:     resp.NewWriter(),
		wait:    s.shard.newWaiter(),
		authed:  s.password() == "",
		created: time.Now(),
	}
	c.lastActive.Store(c.created.UnixNano())
	c.proto.Store(2)
	return c
}

func connFD(conn stdnet.Conn) int {
	fd := -1
	if tc, ok := conn.(*stdnet.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			raw.Control(func(f uintptr) { fd = int(f) })
		}
	}
	return fd
}

func (c *client) serve() {
	defer c.srv.removeClient(c)
	defer c.conn.Close()
	defer c.leavePubsub()
	for {
		cmds, err := c.rd.ReadBatch()
		if err != nil {
			var pe *resp.ProtocolError
			if errors.As(err, &pe) && pe != resp.ErrQueryBufferLimit {
				c.out.WriteError("ERR " + pe.Error())
				c.flush()
			} else if pe == resp.ErrQueryBufferLimit {
				c.srv.cfg.Logf("closing client id=%d addr=%s: query buffer limit reached", c.id, c.addr)
			} else if !errors.Is(err, io.EOF) && !c.killed.Load() && !isClosedConn(err) {
				c.srv.cfg.Logf("client id=%d addr=%s: %v", c.id, c.addr, err)
			}
			return
		}
		c.lastActive.Store(time.Now().UnixNano())
		c.bytesIn.Store(c.rd.BytesRead())
		c.commands.Add(int64(len(cmds)))
		c.run(cmds)
		if c.abandoned || !c.flush() || c.closeAfter {
			return
		}
	}
}

func isClosedConn(err error) bool { return errors.Is(err, stdnet.ErrClosed) }

// flush writes the batch's replies with one write(2).
func (c *client) flush() bool {
	if c.box != nil {
		return c.flushToOutbox()
	}
	b := c.out.Bytes()
	if len(b) == 0 {
		return true
	}
	c.bytesOut.Add(int64(len(b)))
	_, err := c.conn.Write(b)
	c.out.Reset()
	return err == nil
}

// run executes one batch. Consecutive keyspace commands go to the shard as
// one submission; a connection command in between first submits what
// precedes it, so replies stay in order.
func (c *client) run(cmds [][][]byte) {
	for _, argv := range cmds {
		if c.closeAfter {
			break
		}
		asking := c.asking
		if asking && !c.tx.active && !eqFold(argv[0], "multi") {
			c.asking = false // one-shot: ASKING itself sets it again
		}
		if c.sub != nil && c.subscriberGate(argv) {
			continue
		}
		if c.tx.active && c.queueInMulti(argv) {
			continue
		}
		if sc := lookupServerCommand(argv[0]); sc != nil {
			if !c.submit() {
				return
			}
			c.lastCmd.Store(&sc.name)
			c.runServerCommand(sc, argv)
			continue
		}
		ec := engine.Lookup(argv[0])
		if ec == nil && !isReplicaCommand(argv[0]) {
			if !c.submit() {
				return
			}
			c.out.WriteError(unknownCommand(argv))
			continue
		}
		if !c.authed {
			if !c.submit() {
				return
			}
			c.out.WriteError(errNoAuth)
			continue
		}
		if ec != nil {
			c.lastCmd.Store(&ec.Name)
		}
		if c.srv.node != nil {
			// A group serves one slot per request: Redis Cluster refuses
			// keys in several slots before running anything.
			slot, msg := cluster.CommandSlot(argv)
			if msg != "" {
				if !c.submit() {
					return
				}
				c.out.WriteError(msg)
				continue
			}
			if len(c.srv.groups) > 1 {
				// The batch is cut into runs of consecutive requests for
				// one group, each submitted (and answered) before the
				// next, so replies and effects keep the client's order.
				gi := c.srv.groupIndex(argv, slot, asking)
				if gi < 0 {
					if !c.submit() || !c.runNodeWide(argv) {
						return
					}
					continue
				}
				if gi != c.runGroup && !c.switchGroup(gi) {
					return
				}
			}
		}
		c.reqs = append(c.reqs, cluster.Request{Argv: argv, W: c.out, ReadOnly: c.readOnly, Asking: asking})
	}
	c.submit()
}

// switchGroup submits the requests gathered for the current group and
// makes group gi+1 the one the next requests go to.
func (c *client) switchGroup(gi int) bool {
	if !c.submit() {
		return false
	}
	c.runGroup = gi
	return true
}

// waiterFor is this connection's waiter on group gi+1's shard.
func (c *client) waiterFor(gi int) *waiter {
	if gi == 0 {
		return c.wait
	}
	if c.waits == nil {
		c.waits = make([]*waiter, len(c.srv.groups))
		c.waits[0] = c.wait
	}
	if c.waits[gi] == nil {
		c.waits[gi] = c.srv.groups[gi].shard.newWaiter()
	}
	return c.waits[gi]
}

// submit runs the gathered requests. It returns false when the server
// stopped before they were answered (cluster mode): the client is then
// abandoned and must not write to out.
func (c *client) submit() bool {
	if len(c.reqs) == 0 {
		return !c.abandoned
	}
	sh, w := c.srv.shard, c.wait
	if c.runGroup != 0 {
		sh, w = c.srv.groups[c.runGroup].shard, c.waiterFor(c.runGroup)
	}
	if !sh.submit(w, c.reqs) {
		c.abandoned, c.closeAfter = true, true
		c.reqs = nil // the replica may still read them
		return false
	}
	clear(c.reqs)
	c.reqs = c.reqs[:0]
	return true
}

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

func sortClients(cs []*client) {
	slices.SortFunc(cs, func(a, b *client) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
}
