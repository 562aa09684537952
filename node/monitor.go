package node

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// MONITOR, as Redis's: once a client sends it, every command the node
// runs afterwards (any client's, its own included; not admin commands,
// not ones refused before running) reaches it as one line,
//
//	+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"
//
// through its outbox (pubsub.go), which the runtime drains on the
// client's own writer: a slow monitor never holds up the clients it
// watches. The outbox is bounded by client-output-buffer-limit's normal
// class, as Redis bounds a monitor; when that class has no limit (the
// default) by monitorLimitDefault, since a monitor that stops reading
// would otherwise keep the whole command stream in memory. A monitor
// over its limit is disconnected.
//
// The line is made when the node runs the command: a request gathered for
// a replica group is shown as it goes to the group, an EXEC's commands
// just before the EXEC, as Redis shows them when EXEC runs them.

// monitorLimitDefault bounds a monitor's pending output when the normal
// class of client-output-buffer-limit sets none.
var monitorLimitDefault = BufferLimit{HardBytes: 32 << 20, SoftBytes: 8 << 20, SoftSeconds: 60}

type monitors struct {
	active atomic.Int32 // len(list), read on every command
	mu     sync.Mutex
	list   []*Session // by id
}

func init() {
	serverCommands["monitor"] = &serverCommand{name: "monitor", arity: 1, flags: []string{"admin", "noscript", "loading", "stale"},
		categories: []string{"@admin", "@slow", "@dangerous"}, run: cmdMonitor,
		doc: commandDoc{summary: "Listens for all requests received by the server in real-time.", since: "1.0.0", group: "server", complexity: "O(1)"}}
}

func cmdMonitor(c *Session, argv [][]byte) {
	if c.obs.side != 0 {
		c.Out.WriteError("ERR MONITOR isn't allowed for DENY BLOCKING client")
		return
	}
	if c.obs.monitor {
		return // Redis ignores a second MONITOR, without a reply
	}
	ps := c.n.pubsub
	ps.mu.Lock() // CLIENT LIST reads c.box under it
	box := c.startOutbox()
	ps.mu.Unlock()
	box.mon.Store(true)
	c.obs.monitor = true
	// The reply goes out through the outbox from this goroutine before
	// any other session can push a line to it: the runtime starts the
	// outbox's writer on the first push.
	c.Out.WriteSimple("OK")
	box.push(c.Out.Bytes())
	c.Out.Reset()
	m := &c.n.mon
	m.mu.Lock()
	i, _ := slices.BinarySearchFunc(m.list, c.id, bySessionID)
	m.list = slices.Insert(m.list, i, c)
	m.active.Store(int32(len(m.list)))
	m.mu.Unlock()
}

// monitorGone takes a closed session out of the monitors.
func (c *Session) monitorGone() {
	if !c.obs.monitor {
		return
	}
	m := &c.n.mon
	m.mu.Lock()
	if i, ok := slices.BinarySearchFunc(m.list, c.id, bySessionID); ok {
		m.list = slices.Delete(m.list, i, i+1)
	}
	m.active.Store(int32(len(m.list)))
	m.mu.Unlock()
}

// monitorLimit is the bound of a monitor's outbox.
func (n *Node) monitorLimit() BufferLimit {
	if l := n.limits.Load().normal; l.HardBytes > 0 || l.SoftBytes > 0 {
		return l
	}
	return monitorLimitDefault
}

// feedIfCalled shows r's command to the monitors unless it was refused.
func (c *Session) feedIfCalled(r *cmdRec) {
	if c.n.mon.active.Load() == 0 || r.id < 0 || r.flags&(recRejected|recNoStat) != 0 {
		return
	}
	c.feedMonitors(r.argv, r.id)
}

// feedMonitors sends argv's line to every monitor (not admin commands).
func (c *Session) feedMonitors(argv [][]byte, id int32) {
	if id >= 0 && statTable().info[id].admin {
		return
	}
	line := monitorLine(c.n.clock.Now(), c.addr(), argv)
	m := &c.n.mon
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.list {
		if s == c {
			c.obs.monOwn = append(c.obs.monOwn, line...)
			continue
		}
		s.box.push(line)
	}
}

// flushOwnMonitor sends a monitor its own commands' lines, after their
// replies.
func (c *Session) flushOwnMonitor() {
	if len(c.obs.monOwn) > 0 && c.box != nil {
		c.box.push(c.obs.monOwn)
		c.obs.monOwn = c.obs.monOwn[:0]
	}
}

// monitorLine is Redis's MONITOR line for argv run at now by the client
// at addr, secrets redacted.
func monitorLine(now int64, addr string, argv [][]byte) []byte {
	b := make([]byte, 0, 64)
	b = append(b, '+')
	b = strconv.AppendInt(b, now/1e9, 10)
	b = append(b, '.')
	us := strconv.AppendInt(nil, (now%1e9)/1e3, 10)
	for range 6 - len(us) {
		b = append(b, '0')
	}
	b = append(b, us...)
	b = append(b, " [0 "...)
	b = append(b, addr...)
	b = append(b, ']')
	redacted := redactedArgs(argv)
	for j, a := range argv {
		b = append(b, ' ')
		if slices.Contains(redacted, j) {
			a = []byte("(redacted)")
		}
		b = appendRepr(b, a)
	}
	return append(b, '\r', '\n')
}

// appendRepr quotes s as Redis's sdscatrepr does.
func appendRepr(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, ch := range s {
		switch ch {
		case '\\', '"':
			b = append(b, '\\', ch)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\a':
			b = append(b, '\\', 'a')
		case '\b':
			b = append(b, '\\', 'b')
		default:
			if ch >= 0x20 && ch < 0x7f {
				b = append(b, ch)
			} else {
				b = append(b, '\\', 'x', hex[ch>>4], hex[ch&15])
			}
		}
	}
	return append(b, '"')
}
