package sim

import (
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/resp"
)

// Keyspace notifications under faults (WorkloadConfig.Subscribers, the
// single-node world with NodeConfig.NotifyKeyspaceEvents set). Subscriber
// clients PSUBSCRIBE to __keyevent@0__:* on a connection of their own,
// PING it to notice a dead connection (a crash, a partition, a reset), and
// subscribe again on a new one. The oracle knows the order the node
// executed every write in and each write's reply, and so the events the
// node owes its subscribers: SET answered OK is "set", INCRBY answered an
// integer is "incrby", DEL answered 1 is "del"; a refused or null reply
// raises none. The world notes, for every subscriber session, where in
// that sequence the node ran its PSUBSCRIBE (the session's batch runs
// before the writes of the same drain are submitted), and checks at the
// end:
//
//   - a session still connected when the run ends got every event of
//     every write executed after its PSUBSCRIBE, exactly once, in
//     execution order;
//   - a session that was lost (crash, partition, reset) got a gap-free,
//     duplicate-free, in-order prefix of them.

// Bounds and pauses of a subscriber.
const (
	// subscriberPingEvery: how often a subscriber pings its connection.
	subscriberPingEvery = 150 * time.Millisecond
	// subscriberDeadAfter: a PSUBSCRIBE or PING unanswered this long
	// means the connection is dead.
	subscriberDeadAfter = 500 * time.Millisecond
	// subscriberSettle: after the workload, how long subscribers keep
	// listening before they are checked (the last writes' events are
	// still on their way).
	subscriberSettle = 300 * time.Millisecond
	// notifyPattern is what subscribers PSUBSCRIBE to.
	notifyPattern = "__keyevent@0__:*"
	// notifyChannelPrefix starts every keyevent channel.
	notifyChannelPrefix = "__keyevent@0__:"
)

// notifyEvent is one keyspace event: the event's name and its key.
type notifyEvent struct{ event, key string }

func (e notifyEvent) String() string { return e.event + " " + e.key }

// notifyEventOf is the event a write executed with reply r raises ("" for
// none).
func notifyEventOf(argv []string, r Reply) string {
	if len(argv) < 2 {
		return ""
	}
	switch strings.ToLower(argv[0]) {
	case "set":
		if r.Kind == '+' && r.Str == "OK" {
			return "set"
		}
	case "incrby":
		if r.Kind == ':' {
			return "incrby"
		}
	case "del":
		if len(argv) == 2 && r.Kind == ':' && r.Int == 1 {
			return "del"
		}
	}
	return ""
}

// subSession is one subscriber connection's session.
type subSession struct {
	n    int // its number among the client's sessions
	conn *conn
	// from is the number of events executed when the node ran the
	// session's PSUBSCRIBE (-1: not yet).
	from int
	got  []notifyEvent
	// confirmed: the PSUBSCRIBE's confirmation came back.
	confirmed bool
	// ended says why the client gave the session up ("": it did not).
	ended string
}

// subscriberState is a subscriber client's.
type subscriberState struct {
	sessions []*subSession
	cur      *subSession
	// waitSince is when the PSUBSCRIBE or PING in flight was sent (0:
	// none in flight).
	waitSince int64
	// until is when the subscriber stops (the workload's end plus the
	// settle time).
	until int64
}

// addSubscribers creates the run's subscriber clients after its workload
// clients (the "subscriber/<i>" streams: adding them reshuffles nothing).
func (r *Run) addSubscribers(n *Node) {
	for i := 0; i < r.cfg.Workload.Subscribers; i++ {
		id := uint64(clientIDBase + len(r.Clients))
		c := &Client{r: r, id: id, name: "s" + strconv.Itoa(int(id)), rng: r.W.Stream("subscriber/" + strconv.Itoa(i)), node: n}
		c.sub = &subscriberState{until: int64(r.cfg.Duration + subscriberSettle)}
		r.Clients = append(r.Clients, c)
	}
}

// subscribe opens a new connection and subscribes on it.
func (c *Client) subscribe() {
	st := c.sub
	if c.r.W.now >= st.until {
		return
	}
	s := &subSession{n: len(st.sessions) + 1, from: -1}
	st.sessions = append(st.sessions, s)
	st.cur = s
	cn := c.connTo(c.node, false)
	s.conn = cn
	cn.onBatch = func(cmds [][][]byte) {
		if s.from < 0 && len(cmds) > 0 && strings.EqualFold(string(cmds[0][0]), "psubscribe") {
			s.from = len(c.r.Oracle.events)
			c.r.W.Trace(c.name, "session "+itoa(int64(s.n))+" subscribed at event "+itoa(int64(s.from)))
		}
	}
	c.r.W.Trace(c.name, "subscribe (session "+itoa(int64(s.n))+")")
	c.subSend(s, "PSUBSCRIBE", notifyPattern)
}

// subSend sends one command on s's connection and arms the dead-connection
// timer.
func (c *Client) subSend(s *subSession, args ...string) {
	w := resp.NewWriter()
	w.WriteArray(len(args))
	for _, a := range args {
		w.WriteBulkString(a)
	}
	s.conn.send(append([]byte(nil), w.Bytes()...), nil)
	sent := c.r.W.now
	c.sub.waitSince = sent
	c.r.W.After(subscriberDeadAfter, func() {
		if c.sub.cur == s && s.ended == "" && c.sub.waitSince == sent {
			c.subLost(s, "no answer within "+subscriberDeadAfter.String())
		}
	})
}

// subPing pings the current session every subscriberPingEvery.
func (c *Client) subPing(s *subSession) {
	c.r.W.After(subscriberPingEvery, func() {
		if c.sub.cur != s || s.ended != "" || c.r.W.now >= c.sub.until {
			return
		}
		if c.sub.waitSince == 0 {
			c.subSend(s, "PING")
		}
		c.subPing(s)
	})
}

// subLost gives session s up: the client closes its end and subscribes
// again on a new connection.
func (c *Client) subLost(s *subSession, why string) {
	if s.ended != "" {
		return
	}
	s.ended = why
	c.sub.waitSince = 0
	c.r.W.Trace(c.name, "session "+itoa(int64(s.n))+" lost ("+why+") after "+itoa(int64(len(s.got)))+" notifications")
	c.dropConn(s.conn)
	c.r.W.After(reconnectPause+time.Duration(c.rng.Int64N(int64(20*time.Millisecond))), c.subscribe)
}

// subData is bytes arriving on a subscriber's connection.
func (c *Client) subData(cn *conn, data []byte) {
	s := c.sub.cur
	if s == nil || s.conn != cn || s.ended != "" {
		return
	}
	cn.in = append(cn.in, data...)
	replies, err := cn.parseReplies()
	if err != nil {
		c.r.Oracle.fail(c.name + ": unreadable reply from n" + itoa(int64(cn.n.cfg.ID)) + ": " + err.Error())
		c.subLost(s, "unreadable reply")
		return
	}
	for _, r := range replies {
		kind := ""
		if r.Kind == '*' && len(r.Elems) > 0 {
			kind = r.Elems[0].Str
		}
		switch {
		case kind == "pmessage" && len(r.Elems) == 4:
			ch := r.Elems[2].Str
			if r.Elems[1].Str != notifyPattern || !strings.HasPrefix(ch, notifyChannelPrefix) {
				c.r.Oracle.fail(c.name + ": a message on an unexpected channel: " + r.String())
				continue
			}
			s.got = append(s.got, notifyEvent{event: strings.TrimPrefix(ch, notifyChannelPrefix), key: r.Elems[3].Str})
		case kind == "psubscribe" && len(r.Elems) == 3 && !s.confirmed:
			s.confirmed = true
			c.sub.waitSince = 0
			c.subPing(s)
		case kind == "pong":
			c.sub.waitSince = 0
		default:
			c.r.Oracle.fail(c.name + ": unexpected reply on a subscribed connection: " + r.String())
		}
	}
}

// checkSubscribers holds every subscriber session to the events the node
// executed (see the top of this file).
func (r *Run) checkSubscribers() {
	events := r.Oracle.events
	for _, c := range r.Clients {
		if c.sub == nil {
			continue
		}
		for _, s := range c.sub.sessions {
			if s.from < 0 {
				if len(s.got) > 0 {
					r.Oracle.fail("pubsub: " + c.name + " session " + itoa(int64(s.n)) + " got notifications although its PSUBSCRIBE never ran")
				}
				continue
			}
			live := !s.conn.broken && s.ended == ""
			owed := events[s.from:]
			where := "pubsub: " + c.name + " session " + itoa(int64(s.n)) + " (subscribed at event " + itoa(int64(s.from)) + ", "
			if live {
				where += "connected to the end)"
			} else {
				where += "lost)"
			}
			r.Oracle.Stats.Checked += int64(len(s.got))
			for i, e := range s.got {
				if i >= len(owed) {
					r.Oracle.fail(where + " got " + itoa(int64(len(s.got))) + " notifications, but only " + itoa(int64(len(owed))) +
						" writes raising one were executed after it subscribed; the first extra: " + e.String())
					break
				}
				if e != owed[i] {
					r.Oracle.fail(where + ": notification #" + itoa(int64(i+1)) + " is " + e.String() + ", want " + owed[i].String() +
						" (event " + itoa(int64(s.from+i)) + " in execution order)" + notifyContext(owed, s.got, i))
					break
				}
			}
			if live && len(s.got) < len(owed) {
				r.Oracle.fail(where + " got " + itoa(int64(len(s.got))) + " notifications, want " + itoa(int64(len(owed))) +
					": missing from " + owed[len(s.got)].String() + " (event " + itoa(int64(s.from+len(s.got))) + " in execution order)")
			}
		}
	}
}

// notifyContext shows the owed and received events around position i.
func notifyContext(owed, got []notifyEvent, i int) string {
	show := func(es []notifyEvent) string {
		var parts []string
		for j := max(i-2, 0); j < min(i+3, len(es)); j++ {
			parts = append(parts, es[j].String())
		}
		return strings.Join(parts, ", ")
	}
	return "; owed …" + show(owed) + "…, got …" + show(got) + "…"
}
