package server

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keel-db/keel/resp"

	"github.com/keel-db/keel/engine"
)

// Pub/sub lives in the server alone: it is neither logged nor replicated
// (as in Redis, a message reaches the clients subscribed at the moment it
// is published, and nothing survives a restart).
//
// The registry maps channels and patterns to subscribed clients under its
// own lock. A client that subscribes gets an outbox: from then on all of
// its output (replies and messages) goes through the outbox, in order, and
// a writer goroutine of its own drains the outbox to the socket, so a
// publisher (PUBLISH on another connection, or a keyspace event raised
// inside the shard) only ever appends bytes and never blocks on a slow
// reader. The outbox is bounded by client-output-buffer-limit pubsub.

// PubSubLimit is Redis's client-output-buffer-limit for the pubsub class:
// a client whose pending output would pass HardBytes is disconnected at
// once; one that stays above SoftBytes for SoftSeconds is disconnected
// too. Zero disables a limit.
type PubSubLimit struct {
	HardBytes   int64
	SoftBytes   int64
	SoftSeconds int64
}

// DefaultPubSubLimit is Redis's default: pubsub 32mb 8mb 60.
func DefaultPubSubLimit() PubSubLimit {
	return PubSubLimit{HardBytes: 32 << 20, SoftBytes: 8 << 20, SoftSeconds: 60}
}

func (l PubSubLimit) String() string {
	return "pubsub " + strconv.FormatInt(l.HardBytes, 10) + " " + strconv.FormatInt(l.SoftBytes, 10) + " " + strconv.FormatInt(l.SoftSeconds, 10)
}

const (
	// outboxSpareBytesMax: a drained outbox buffer up to this size is kept
	// for reuse; a larger one is dropped so a burst's memory is returned.
	outboxSpareBytesMax = 64 << 10
	// outboxDrainTimeout bounds how long a leaving subscriber's last
	// replies (QUIT's +OK) may take to reach the socket.
	outboxDrainTimeout = time.Second
	// subscriptionsMax bounds one client's channels plus patterns.
	subscriptionsMax = 1 << 16
)

// pubsub is the server's registry of subscriptions.
type pubsub struct {
	mu       sync.Mutex
	channels map[string]map[*client]struct{}
	patterns map[string]map[*client]struct{}
	// shards are sharded channels (SSUBSCRIBE/SPUBLISH): on one shard a
	// namespace of their own, delivered as "smessage".
	shards map[string]map[*client]struct{}
}

func newPubsub() *pubsub {
	return &pubsub{channels: map[string]map[*client]struct{}{}, patterns: map[string]map[*client]struct{}{},
		shards: map[string]map[*client]struct{}{}}
}

// subState is one client's subscriptions. It is changed only by the
// client's goroutine, under the registry's lock.
type subState struct {
	channels map[string]struct{}
	patterns map[string]struct{}
	shards   map[string]struct{}
}

// count is every subscription: RESP2 subscriber mode lasts while it is
// not zero.
func (s *subState) count() int {
	if s == nil {
		return 0
	}
	return len(s.channels) + len(s.patterns) + len(s.shards)
}

// replyCount is the number a (un)subscribe confirmation reports: channels
// plus patterns, or shard channels for the sharded kind, as in Redis.
func (s *subState) replyCount(k subKind) int {
	if k == subShard {
		return len(s.shards)
	}
	return len(s.channels) + len(s.patterns)
}

type subKind int

const (
	subChannel subKind = iota
	subPattern
	subShard
)

// outbox holds a subscriber's output until its writer goroutine sends it.
type outbox struct {
	c   *client
	mu  sync.Mutex
	buf []byte
	// spare is the buffer last drained, reused for the next batch.
	spare     []byte
	closed    bool
	draining  bool
	softSince int64 // clock nanos when buf first went above the soft limit; 0 below it
	peak      int   // largest len(buf) ever held (tests, INFO)
	wake      chan struct{}
	exited    chan struct{}
}

func (c *client) startOutbox() *outbox {
	if c.box != nil {
		return c.box
	}
	b := &outbox{c: c, wake: make(chan struct{}, 1), exited: make(chan struct{})}
	c.box = b
	go b.writeLoop()
	return b
}

// push appends p (copied) to the outbox. It returns false, and closes the
// connection, when the limit is passed or the outbox is closed.
func (b *outbox) push(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	lim := b.c.srv.pubsubLimit()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	n := int64(len(b.buf) + len(p))
	reason := ""
	switch {
	case lim.HardBytes > 0 && n > lim.HardBytes:
		reason = "hard"
	case lim.SoftBytes > 0 && n > lim.SoftBytes:
		now := b.c.srv.clock.Now()
		if b.softSince == 0 {
			b.softSince = now
		} else if now-b.softSince >= lim.SoftSeconds*int64(time.Second) {
			reason = "soft"
		}
	default:
		b.softSince = 0
	}
	if reason != "" {
		b.closed = true
		b.buf = nil
		b.mu.Unlock()
		b.c.srv.cfg.Logf("closing client id=%d addr=%s: pubsub output buffer over its %s limit (%s)",
			b.c.id, b.c.addr, reason, lim)
		b.c.srv.pubsubDisconnects.Add(1)
		b.c.killed.Store(true)
		b.c.conn.Close()
		b.signal()
		return false
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.peak {
		b.peak = len(b.buf)
	}
	b.mu.Unlock()
	b.signal()
	return true
}

func (b *outbox) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// pending is how many bytes wait to be written.
func (b *outbox) pending() (n, peak int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buf), b.peak
}

func (b *outbox) writeLoop() {
	defer close(b.exited)
	for range b.wake {
		b.mu.Lock()
		out := b.buf
		b.buf = b.spare[:0]
		b.spare = nil
		closed, draining := b.closed, b.draining
		b.mu.Unlock()
		if len(out) > 0 && (!closed || draining) {
			_, err := b.c.conn.Write(out)
			b.c.bytesOut.Add(int64(len(out)))
			if err != nil {
				b.mu.Lock()
				b.closed = true
				b.buf = nil
				b.mu.Unlock()
				b.c.conn.Close()
				return
			}
		}
		b.mu.Lock()
		if cap(out) <= outboxSpareBytesMax && b.spare == nil {
			b.spare = out[:0]
		}
		stop := b.closed && len(b.buf) == 0
		b.mu.Unlock()
		if stop {
			return
		}
	}
}

// close stops the writer after it sent what is queued (bounded by a write
// deadline), so a QUIT's reply still arrives.
func (b *outbox) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed, b.draining = true, true
	}
	b.mu.Unlock()
	b.c.conn.SetWriteDeadline(time.Now().Add(outboxDrainTimeout))
	b.signal()
	<-b.exited
}

// flushToOutbox hands the batch's replies to the outbox (client.flush).
func (c *client) flushToOutbox() bool {
	ok := c.box.push(c.out.Bytes())
	c.out.Reset()
	return ok
}

// leavePubsub drops the client's subscriptions and stops its writer; run
// when the connection ends.
func (c *client) leavePubsub() {
	c.unsubscribeAll()
	if c.box != nil {
		c.box.close()
	}
}

// unsubscribeAll takes the client out of every channel, pattern and shard
// channel it is subscribed to, and forgets them.
func (c *client) unsubscribeAll() {
	if c.sub.count() == 0 {
		return
	}
	ps := c.srv.pubsub
	ps.mu.Lock()
	for ch := range c.sub.channels {
		ps.remove(ps.channels, ch, c)
	}
	for p := range c.sub.patterns {
		ps.remove(ps.patterns, p, c)
	}
	for ch := range c.sub.shards {
		ps.remove(ps.shards, ch, c)
	}
	clear(c.sub.channels)
	clear(c.sub.patterns)
	clear(c.sub.shards)
	ps.mu.Unlock()
}

func (ps *pubsub) remove(m map[string]map[*client]struct{}, name string, c *client) {
	if set := m[name]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(m, name)
		}
	}
}

// subscriberGate applies RESP2 subscriber-mode rules: while a RESP2 client
// has subscriptions, only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING, QUIT and
// RESET run. It returns true when it answered argv itself.
func (c *client) subscriberGate(argv [][]byte) bool {
	if c.sub.count() == 0 || c.proto.Load() != 2 {
		return false
	}
	name := strings.ToLower(string(truncate(argv[0], 64)))
	switch name {
	case "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe", "quit", "reset":
		return false
	case "ping":
		if len(argv) > 2 {
			wrongArgs(c, "ping")
			return true
		}
		// Redis answers a subscribed RESP2 PING as a message-shaped array.
		c.out.WriteArray(2)
		c.out.WriteBulkString("pong")
		if len(argv) == 2 {
			c.out.WriteBulk(argv[1])
		} else {
			c.out.WriteBulkString("")
		}
		return true
	}
	c.out.WriteError("ERR Can't execute '" + name + "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
	return true
}

func init() {
	for _, sc := range []*serverCommand{
		{name: "subscribe", arity: -2, flags: []string{"pubsub", "noscript", "loading", "stale"}, categories: []string{"@pubsub", "@slow"}, run: subscribeCmd(subChannel)},
		{name: "unsubscribe", arity: -1, flags: []string{"pubsub", "noscript", "loading", "stale"}, categories: []string{"@pubsub", "@slow"}, run: unsubscribeCmd(subChannel)},
		{name: "psubscribe", arity: -2, flags: []string{"pubsub", "noscript", "loading", "stale"}, categories: []string{"@pubsub", "@slow"}, run: subscribeCmd(subPattern)},
		{name: "punsubscribe", arity: -1, flags: []string{"pubsub", "noscript", "loading", "stale"}, categories: []string{"@pubsub", "@slow"}, run: unsubscribeCmd(subPattern)},
		{name: "ssubscribe", arity: -2, flags: []string{"pubsub", "noscript", "loading", "stale"}, categories: []string{"@pubsub", "@slow"}, run: subscribeCmd(subShard)},
		{name: "sunsubscribe", arity: -1, flags: []string{"pubsub", "noscript", "loading", "stale"}, categories: []string{"@pubsub", "@slow"}, run: unsubscribeCmd(subShard)},
		{name: "spublish", arity: 3, flags: []string{"pubsub", "loading", "stale", "fast"}, categories: []string{"@pubsub", "@fast"}, run: cmdSpublish},
		{name: "publish", arity: 3, flags: []string{"pubsub", "loading", "stale", "fast"}, categories: []string{"@pubsub", "@fast"}, run: cmdPublish},
		{name: "pubsub", arity: -2, categories: []string{"@slow"}, run: cmdPubsub, subs: pubsubSubs},
		{name: "reset", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}, categories: []string{"@fast", "@connection"}, noAuth: true, run: cmdReset},
	} {
		serverCommands[sc.name] = sc
	}
}

var pubsubSubs = []subcommand{
	{name: "pubsub|channels", arity: -2, flags: []string{"pubsub", "loading", "stale"}},
	{name: "pubsub|numsub", arity: -2, flags: []string{"pubsub", "loading", "stale"}},
	{name: "pubsub|numpat", arity: 2, flags: []string{"pubsub", "loading", "stale"}},
	{name: "pubsub|shardchannels", arity: -2, flags: []string{"pubsub", "loading", "stale"}},
	{name: "pubsub|shardnumsub", arity: -2, flags: []string{"pubsub", "loading", "stale"}},
	{name: "pubsub|help", arity: 2, flags: []string{"loading", "stale"}},
}

// writeKind writes a pub/sub array header: a push in RESP3, an array in RESP2.
func (c *client) writeKind(n int, kind string) {
	if c.proto.Load() >= 3 {
		c.out.WritePush(n)
	} else {
		c.out.WriteArray(n)
	}
	c.out.WriteBulkString(kind)
}

// subscribe changes the client's subscriptions and, under the registry
// lock, hands the confirmations to its outbox: a message published right
// after the change can only arrive after its confirmation.
func (c *client) subscribe(k subKind, on bool, names [][]byte) {
	ps := c.srv.pubsub
	ps.mu.Lock()
	defer ps.mu.Unlock()
	// Set under the registry lock: CLIENT LIST reads them under it.
	box := c.startOutbox()
	if c.sub == nil {
		c.sub = &subState{channels: map[string]struct{}{}, patterns: map[string]struct{}{}, shards: map[string]struct{}{}}
	}
	var kind string
	var reg map[string]map[*client]struct{}
	var mine map[string]struct{}
	switch k {
	case subPattern:
		kind, reg, mine = "psubscribe", ps.patterns, c.sub.patterns
	case subShard:
		kind, reg, mine = "ssubscribe", ps.shards, c.sub.shards
	default:
		kind, reg, mine = "subscribe", ps.channels, c.sub.channels
	}
	if !on {
		kind = kind[:len(kind)-len("subscribe")] + "unsubscribe"
	}
	if !on && len(names) == 0 {
		for n := range mine {
			names = append(names, []byte(n))
		}
		sort.Slice(names, func(i, j int) bool { return bytes.Compare(names[i], names[j]) < 0 })
		if len(names) == 0 {
			c.writeKind(3, kind)
			c.out.WriteNull()
			c.out.WriteInt(int64(c.sub.replyCount(k)))
		}
	}
	for _, n := range names {
		key := string(n)
		if on {
			if _, ok := mine[key]; !ok && c.sub.count() < subscriptionsMax {
				mine[key] = struct{}{}
				set := reg[key]
				if set == nil {
					set = map[*client]struct{}{}
					reg[key] = set
				}
				set[c] = struct{}{}
			}
		} else if _, ok := mine[key]; ok {
			delete(mine, key)
			ps.remove(reg, key, c)
		}
		c.writeKind(3, kind)
		c.out.WriteBulk(n)
		c.out.WriteInt(int64(c.sub.replyCount(k)))
	}
	box.push(c.out.Bytes())
	c.out.Reset()
}

// subscribeCmd and unsubscribeCmd build the six (un)subscribe commands of
// one kind. Subscribing inside MULTI is refused, as in Redis.
func subscribeCmd(kind subKind) func(*client, [][]byte) {
	return func(c *client, argv [][]byte) {
		if c.tx.active {
			c.out.WriteError(errNotInMulti)
			return
		}
		c.subscribe(kind, true, argv[1:])
	}
}

func unsubscribeCmd(kind subKind) func(*client, [][]byte) {
	return func(c *client, argv [][]byte) { c.subscribe(kind, false, argv[1:]) }
}

func cmdSpublish(c *client, argv [][]byte) {
	c.out.WriteInt(int64(c.srv.pubsub.spublish(argv[1], argv[2])))
}

// spublish delivers msg to the clients subscribed to the shard channel.
func (ps *pubsub) spublish(channel, msg []byte) int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var frames [2][]byte
	n := 0
	for c := range ps.shards[string(channel)] {
		p := 0
		if c.proto.Load() >= 3 {
			p = 1
		}
		if frames[p] == nil {
			frames[p] = messageFrame(p == 1, "smessage", nil, channel, msg)
		}
		c.box.push(frames[p])
		n++
	}
	return n
}

func cmdPublish(c *client, argv [][]byte) {
	c.out.WriteInt(int64(c.srv.pubsub.publish(argv[1], argv[2])))
}

// publish delivers msg to every client subscribed to channel or to a
// pattern matching it and returns how many deliveries were made.
func (ps *pubsub) publish(channel, msg []byte) int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var frames [2][]byte // by protocol: RESP2, RESP3
	n := 0
	if set := ps.channels[string(channel)]; len(set) > 0 {
		for c := range set {
			p := 0
			if c.proto.Load() >= 3 {
				p = 1
			}
			if frames[p] == nil {
				frames[p] = messageFrame(p == 1, "message", nil, channel, msg)
			}
			c.box.push(frames[p])
			n++
		}
	}
	for pat, set := range ps.patterns {
		if !engine.GlobMatch([]byte(pat), channel) {
			continue
		}
		var pf [2][]byte
		for c := range set {
			p := 0
			if c.proto.Load() >= 3 {
				p = 1
			}
			if pf[p] == nil {
				pf[p] = messageFrame(p == 1, "pmessage", []byte(pat), channel, msg)
			}
			c.box.push(pf[p])
			n++
		}
	}
	return n
}

func messageFrame(resp3 bool, kind string, pattern, channel, msg []byte) []byte {
	w := resp.NewWriter()
	n := 3
	if pattern != nil {
		n = 4
	}
	if resp3 {
		w.SetProto(3)
		w.WritePush(n)
	} else {
		w.WriteArray(n)
	}
	w.WriteBulkString(kind)
	if pattern != nil {
		w.WriteBulk(pattern)
	}
	w.WriteBulk(channel)
	w.WriteBulk(msg)
	return w.Bytes()
}

func cmdPubsub(c *client, argv [][]byte) {
	sub := strings.ToLower(string(truncate(argv[1], 32)))
	if !subArityOK(c, pubsubSubs, "pubsub|"+sub, len(argv)) {
		return
	}
	ps := c.srv.pubsub
	switch sub {
	case "channels", "shardchannels":
		reg := ps.channels
		if sub == "shardchannels" {
			reg = ps.shards
		}
		ps.mu.Lock()
		var names []string
		for ch := range reg {
			if len(argv) == 2 || engine.GlobMatch(argv[2], []byte(ch)) {
				names = append(names, ch)
			}
		}
		ps.mu.Unlock()
		sort.Strings(names)
		c.out.WriteArray(len(names))
		for _, n := range names {
			c.out.WriteBulkString(n)
		}
	case "numsub", "shardnumsub":
		reg := ps.channels
		if sub == "shardnumsub" {
			reg = ps.shards
		}
		ps.mu.Lock()
		counts := make([]int, len(argv)-2)
		for i, ch := range argv[2:] {
			counts[i] = len(reg[string(ch)])
		}
		ps.mu.Unlock()
		c.out.WriteMap(len(counts))
		for i, ch := range argv[2:] {
			c.out.WriteBulk(ch)
			c.out.WriteInt(int64(counts[i]))
		}
	case "numpat":
		ps.mu.Lock()
		n := len(ps.patterns)
		ps.mu.Unlock()
		c.out.WriteInt(int64(n))
	case "help":
		help := []string{
			"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"CHANNELS [<pattern>]", "    Return the currently active channels matching a <pattern> (default: '*').",
			"NUMPAT", "    Return number of subscriptions to patterns.",
			"NUMSUB [<channel> ...]", "    Return the number of subscribers for the specified channels, excluding",
			"    pattern subscriptions(default: no channels).",
			"SHARDCHANNELS [<pattern>]", "    Return the currently active shard level channels matching a <pattern> (default: '*').",
			"SHARDNUMSUB [<shardchannel> ...]", "    Return the number of subscribers for the specified shard level channel(s)",
			"HELP", "    Print this help.",
		}
		c.out.WriteArray(len(help))
		for _, h := range help {
			c.out.WriteSimple(h)
		}
	default:
		unknownSubcommand(c, "pubsub", argv[1])
	}
}

// cmdReset is Redis's RESET: leave MULTI, unwatch, unsubscribe from
// everything, back to RESP2 and no name.
func cmdReset(c *client, argv [][]byte) {
	c.tx.reset()
	c.tx.unwatch()
	c.unsubscribeAll()
	c.readOnly = false // READWRITE, as Redis's RESET does in cluster mode
	c.proto.Store(2)
	c.out.SetProto(2)
	c.mu.Lock()
	c.name = ""
	c.mu.Unlock()
	c.out.WriteSimple("RESET")
}

// infoPubsub adds Redis's pub/sub counters to INFO stats.
func (s *Server) infoPubsub(b *strings.Builder) {
	s.pubsub.mu.Lock()
	channels, patterns := len(s.pubsub.channels), len(s.pubsub.patterns)
	s.pubsub.mu.Unlock()
	kv(b, "pubsub_channels", channels)
	kv(b, "pubsub_patterns", patterns)
	kv(b, "client_output_buffer_limit_disconnections", s.pubsubDisconnects.Load())
}

// clientListFields are CLIENT LIST's pub/sub and MULTI fields for c,
// read from another goroutine: subscriptions under the registry lock,
// the MULTI state from its atomic mirror.
func (c *client) clientListFields() string {
	ps := c.srv.pubsub
	var sub, psub, ssub, omem int
	ps.mu.Lock()
	if c.sub != nil {
		sub, psub, ssub = len(c.sub.channels), len(c.sub.patterns), len(c.sub.shards)
	}
	box := c.box
	ps.mu.Unlock()
	if box != nil {
		omem, _ = box.pending()
	}
	flags := ""
	if sub+psub+ssub > 0 {
		flags += "P"
	}
	multi := int(c.tx.shown.Load()) - 1
	if multi >= 0 {
		flags += "x"
	}
	if flags == "" {
		flags = "N"
	}
	return "flags=" + flags + " db=0 sub=" + strconv.Itoa(sub) + " psub=" + strconv.Itoa(psub) + " ssub=" + strconv.Itoa(ssub) +
		" multi=" + strconv.Itoa(multi) + " qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=" + strconv.Itoa(omem) +
		" tot-mem=0 events=r"
}
