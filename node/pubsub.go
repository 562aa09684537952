package node

import (
	"bytes"
	"cmp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keel-db/keel/resp"

	"github.com/keel-db/keel/engine"
)

// Pub/sub lives in the node alone: it is neither logged nor replicated
// (as in Redis, a message reaches the clients subscribed at the moment it
// is published, and nothing survives a restart).
//
// The registry maps channels and patterns to subscribed sessions under its
// own lock, each set ordered by session id, and patterns are tried in
// sorted order, so a publish reaches its subscribers in the same order on
// every run (the simulator replays it). A session that subscribes gets an
// outbox: from then on all of its output (replies and messages) goes
// through the outbox, in order, and the runtime drains it to the
// connection when woken (Runtime.Wake, Session.TakePushed), so a
// publisher (PUBLISH on another connection, or a keyspace event raised
// inside a replica) only ever appends bytes and never blocks on a slow
// reader. The outbox is bounded by client-output-buffer-limit pubsub.

// PubSubLimit is client-output-buffer-limit's pubsub class.
type PubSubLimit = BufferLimit

// DefaultPubSubLimit is Redis's default: pubsub 32mb 8mb 60.
func DefaultPubSubLimit() PubSubLimit {
	return PubSubLimit{HardBytes: 32 << 20, SoftBytes: 8 << 20, SoftSeconds: 60}
}

func (l BufferLimit) String() string { return "pubsub " + l.fields() }

const (
	// subscriptionsMax bounds one client's channels plus patterns.
	subscriptionsMax = 1 << 16
)

// pubsub is the node's registry of subscriptions.
type pubsub struct {
	mu       sync.Mutex
	channels map[string]*subscribers
	patterns map[string]*subscribers
	// patternNames are the keys of patterns, sorted: publish tries them
	// in this order.
	patternNames []string
	// shards are sharded channels (SSUBSCRIBE/SPUBLISH): on one shard a
	// namespace of their own, delivered as "smessage".
	shards map[string]*subscribers
}

// subscribers is one channel's or pattern's sessions, ordered by id.
type subscribers struct{ list []*Session }

func bySessionID(o *Session, id uint64) int { return cmp.Compare(o.id, id) }

func newPubsub() *pubsub {
	return &pubsub{channels: map[string]*subscribers{}, patterns: map[string]*subscribers{},
		shards: map[string]*subscribers{}}
}

func (ps *pubsub) registry(k subKind) map[string]*subscribers {
	switch k {
	case subPattern:
		return ps.patterns
	case subShard:
		return ps.shards
	}
	return ps.channels
}

// join adds c to name's subscribers. Hold mu.
func (ps *pubsub) join(k subKind, name string, c *Session) {
	reg := ps.registry(k)
	set := reg[name]
	if set == nil {
		set = &subscribers{}
		reg[name] = set
		if k == subPattern {
			i, _ := slices.BinarySearch(ps.patternNames, name)
			ps.patternNames = slices.Insert(ps.patternNames, i, name)
		}
	}
	if i, found := slices.BinarySearchFunc(set.list, c.id, bySessionID); !found {
		set.list = slices.Insert(set.list, i, c)
	}
}

// remove takes c out of name's subscribers. Hold mu.
func (ps *pubsub) remove(k subKind, name string, c *Session) {
	reg := ps.registry(k)
	set := reg[name]
	if set == nil {
		return
	}
	if i, found := slices.BinarySearchFunc(set.list, c.id, bySessionID); found {
		set.list = slices.Delete(set.list, i, i+1)
	}
	if len(set.list) == 0 {
		delete(reg, name)
		if k == subPattern {
			if i, found := slices.BinarySearch(ps.patternNames, name); found {
				ps.patternNames = slices.Delete(ps.patternNames, i, i+1)
			}
		}
	}
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

// of is the set of subscriptions of kind k.
func (s *subState) of(k subKind) map[string]struct{} {
	switch k {
	case subPattern:
		return s.patterns
	case subShard:
		return s.shards
	}
	return s.channels
}

type subKind int

const (
	subChannel subKind = iota
	subPattern
	subShard
)

// outbox holds a subscriber's output until the runtime takes it
// (TakePushed) and writes it.
type outbox struct {
	c   *Session
	mu  sync.Mutex
	buf []byte
	// spare is a buffer the runtime handed back once written (Recycle),
	// reused for the next batch.
	spare     []byte
	closed    bool
	softSince int64 // clock nanos when buf first went above the soft limit; 0 below it
	peak      int   // largest len(buf) ever held (tests, INFO)
	// mon: a MONITOR's outbox, bounded by the normal class (monitor.go).
	mon atomic.Bool
}

// outboxSpareBytesMax: a written outbox buffer up to this size is kept
// for reuse; a larger one is dropped so a burst's memory is returned.
const outboxSpareBytesMax = 64 << 10

func (c *Session) startOutbox() *outbox {
	if c.box == nil {
		c.box = &outbox{c: c}
	}
	return c.box
}

// push appends p (copied) to the outbox and wakes the runtime; when the
// limit is passed it closes the outbox and has the runtime disconnect the
// session. It reports whether the message counts as reaching the
// subscriber for PUBLISH's reply: false only once the outbox was already
// closed (as in Redis, the push that passes the limit still counts, and
// a client being closed is not counted by later publishes even while
// its connection has not yet ended).
func (b *outbox) push(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	n := b.c.n
	lim, class := n.pubsubLimit(), "pubsub"
	if b.mon.Load() {
		lim, class = n.monitorLimit(), "monitor"
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	size := int64(len(b.buf) + len(p))
	reason := ""
	switch {
	case lim.HardBytes > 0 && size > lim.HardBytes:
		reason = "hard"
	case lim.SoftBytes > 0 && size > lim.SoftBytes:
		now := n.clock.Now()
		if b.softSince == 0 {
			b.softSince = now
		} else if now-b.softSince >= lim.SoftSeconds*1e9 {
			reason = "soft"
		}
	default:
		b.softSince = 0
	}
	if reason != "" {
		b.closed = true
		b.buf = nil
		b.mu.Unlock()
		n.logf("closing client id=%d addr=%s: %s output buffer over its %s limit (%s)",
			b.c.id, b.c.addr(), class, reason, lim.fields())
		n.pubsubDisconnects.Add(1)
		b.c.killed.Store(true)
		n.rt.Disconnect(b.c)
		return true
	}
	if b.buf == nil && b.spare != nil {
		b.buf, b.spare = b.spare[:0], nil
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.peak {
		b.peak = len(b.buf)
	}
	b.mu.Unlock()
	n.rt.Wake(b.c)
	return true
}

// take hands the pending bytes to the runtime.
func (b *outbox) take() (p []byte, closed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, b.buf = b.buf, nil
	return p, b.closed
}

func (b *outbox) recycle(p []byte) {
	if cap(p) > outboxSpareBytesMax {
		return
	}
	b.mu.Lock()
	if b.spare == nil {
		b.spare = p[:0]
	}
	b.mu.Unlock()
}

// pending is how many bytes wait to be written.
func (b *outbox) pending() (size, peak int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buf), b.peak
}

// close marks the outbox closed once the session ends: the runtime
// writes what it still holds (a QUIT's +OK) and stops its writer.
func (b *outbox) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.c.n.rt.Wake(b.c)
}

// unsubscribeAll takes the client out of every channel, pattern and shard
// channel it is subscribed to, and forgets them.
func (c *Session) unsubscribeAll() {
	if c.sub.count() == 0 {
		return
	}
	ps := c.n.pubsub
	ps.mu.Lock()
	for _, k := range []subKind{subChannel, subPattern, subShard} {
		mine := c.sub.of(k)
		for name := range mine {
			ps.remove(k, name, c)
		}
		clear(mine)
	}
	ps.mu.Unlock()
}

// subscriberGate applies RESP2 subscriber-mode rules: while a RESP2 client
// has subscriptions, only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING, QUIT and
// RESET run. It returns true when it answered argv itself.
func (c *Session) subscriberGate(argv [][]byte) bool {
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
		if msg := c.aclDeny(argv); msg != "" {
			c.Out.WriteError(msg)
			return true
		}
		// Redis answers a subscribed RESP2 PING as a message-shaped array.
		c.Out.WriteArray(2)
		c.Out.WriteBulkString("pong")
		if len(argv) == 2 {
			c.Out.WriteBulk(argv[1])
		} else {
			c.Out.WriteBulkString("")
		}
		return true
	}
	c.Out.WriteError("ERR Can't execute '" + name + "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
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
func (c *Session) writeKind(n int, kind string) {
	if c.proto.Load() >= 3 {
		c.Out.WritePush(n)
	} else {
		c.Out.WriteArray(n)
	}
	c.Out.WriteBulkString(kind)
}

// subscribe changes the client's subscriptions and, under the registry
// lock, hands the confirmations to its outbox: a message published right
// after the change can only arrive after its confirmation.
func (c *Session) subscribe(k subKind, on bool, names [][]byte) {
	ps := c.n.pubsub
	ps.mu.Lock()
	defer ps.mu.Unlock()
	// Set under the registry lock: CLIENT LIST reads them under it.
	box := c.startOutbox()
	if c.sub == nil {
		c.sub = &subState{channels: map[string]struct{}{}, patterns: map[string]struct{}{}, shards: map[string]struct{}{}}
	}
	kind := map[subKind]string{subChannel: "subscribe", subPattern: "psubscribe", subShard: "ssubscribe"}[k]
	mine := c.sub.of(k)
	if !on {
		kind = kind[:len(kind)-len("subscribe")] + "unsubscribe"
	}
	if !on && len(names) == 0 {
		for name := range mine {
			names = append(names, []byte(name))
		}
		slices.SortFunc(names, bytes.Compare)
		if len(names) == 0 {
			c.writeKind(3, kind)
			c.Out.WriteNull()
			c.Out.WriteInt(int64(c.sub.replyCount(k)))
		}
	}
	for _, name := range names {
		key := string(name)
		if on {
			if _, ok := mine[key]; !ok && c.sub.count() < subscriptionsMax {
				mine[key] = struct{}{}
				ps.join(k, key, c)
			}
		} else if _, ok := mine[key]; ok {
			delete(mine, key)
			ps.remove(k, key, c)
		}
		c.writeKind(3, kind)
		c.Out.WriteBulk(name)
		c.Out.WriteInt(int64(c.sub.replyCount(k)))
	}
	// The batch's replies so far, then these confirmations, go out through
	// the outbox from now on: a message published right after the change
	// can only arrive after its confirmation.
	box.push(c.Out.Bytes())
	c.Out.Reset()
}

// subscribeCmd and unsubscribeCmd build the six (un)subscribe commands of
// one kind. Subscribing inside MULTI is refused, as in Redis.
func subscribeCmd(kind subKind) func(*Session, [][]byte) {
	return func(c *Session, argv [][]byte) {
		if c.tx.active {
			c.Out.WriteError(errNotInMulti)
			return
		}
		if kind == subShard {
			if _, msg := c.n.shardChannelsSlot(argv[1:]); msg != "" { // pubsub_bus.go
				c.Out.WriteError(msg)
				return
			}
		}
		c.subscribe(kind, true, argv[1:])
	}
}

func unsubscribeCmd(kind subKind) func(*Session, [][]byte) {
	return func(c *Session, argv [][]byte) {
		if kind == subShard {
			if _, msg := c.n.shardChannelsSlot(argv[1:]); msg != "" {
				c.Out.WriteError(msg)
				return
			}
		}
		c.subscribe(kind, false, argv[1:])
	}
}

// cmdSpublish delivers to this node's subscribers of the shard channel
// and forwards to the other nodes hosting its slot's group.
func cmdSpublish(c *Session, argv [][]byte) {
	g, msg := c.n.shardChannelsSlot(argv[1:2])
	if msg == "" {
		msg = c.n.publishTooLarge(argv[1], argv[2])
	}
	if msg != "" {
		c.Out.WriteError(msg)
		return
	}
	got := c.n.pubsub.spublish(argv[1], argv[2])
	c.n.forwardPublish(publishKindShard, g, argv[1], argv[2])
	c.Out.WriteInt(int64(got))
}

// spublish delivers msg to the clients subscribed to the shard channel.
func (ps *pubsub) spublish(channel, msg []byte) int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var frames [2][]byte
	return ps.deliver(ps.shards[string(channel)], &frames, "smessage", nil, channel, msg)
}

// deliver pushes a message to each of set's sessions, in id order,
// building each protocol's frame once, and returns how many it reached
// (a session already disconnected for its output limit is not counted).
func (ps *pubsub) deliver(set *subscribers, frames *[2][]byte, kind string, pattern, channel, msg []byte) int {
	if set == nil {
		return 0
	}
	reached := 0
	for _, c := range set.list {
		p := 0
		if c.proto.Load() >= 3 {
			p = 1
		}
		if frames[p] == nil {
			frames[p] = messageFrame(p == 1, kind, pattern, channel, msg)
		}
		if c.box.push(frames[p]) {
			reached++
		}
	}
	return reached
}

// cmdPublish delivers to this node's subscribers and forwards to every
// other node (pubsub_bus.go); the reply counts this node's receivers.
func cmdPublish(c *Session, argv [][]byte) {
	if msg := c.n.publishTooLarge(argv[1], argv[2]); msg != "" {
		c.Out.WriteError(msg)
		return
	}
	got := c.n.pubsub.publish(argv[1], argv[2])
	c.n.forwardPublish(publishKindChannel, 0, argv[1], argv[2])
	c.Out.WriteInt(int64(got))
}

// publish delivers msg to every client subscribed to channel, then to
// those subscribed to a pattern matching it (patterns in sorted order),
// and returns how many deliveries were made.
func (ps *pubsub) publish(channel, msg []byte) int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var frames [2][]byte // by protocol: RESP2, RESP3
	n := ps.deliver(ps.channels[string(channel)], &frames, "message", nil, channel, msg)
	for _, pat := range ps.patternNames {
		if !engine.GlobMatch([]byte(pat), channel) {
			continue
		}
		var pf [2][]byte
		n += ps.deliver(ps.patterns[pat], &pf, "pmessage", []byte(pat), channel, msg)
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

func cmdPubsub(c *Session, argv [][]byte) {
	sub := strings.ToLower(string(truncate(argv[1], 32)))
	if !subArityOK(c, pubsubSubs, "pubsub|"+sub, len(argv)) {
		return
	}
	ps := c.n.pubsub
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
		c.Out.WriteArray(len(names))
		for _, n := range names {
			c.Out.WriteBulkString(n)
		}
	case "numsub", "shardnumsub":
		reg := ps.channels
		if sub == "shardnumsub" {
			reg = ps.shards
		}
		ps.mu.Lock()
		counts := make([]int, len(argv)-2)
		for i, ch := range argv[2:] {
			if set := reg[string(ch)]; set != nil {
				counts[i] = len(set.list)
			}
		}
		ps.mu.Unlock()
		c.Out.WriteMap(len(counts))
		for i, ch := range argv[2:] {
			c.Out.WriteBulk(ch)
			c.Out.WriteInt(int64(counts[i]))
		}
	case "numpat":
		ps.mu.Lock()
		n := len(ps.patterns)
		ps.mu.Unlock()
		c.Out.WriteInt(int64(n))
	case "help":
		help := []string{
			"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"CHANNELS [<pattern>]", "    Return the currently active channels matching a <pattern> (default: '*').",
			"NUMPAT", "    Return number of subscriptions to patterns.",
			"NUMSUB [<channel> ...]", "    Return the number of subscribers for the specified channels, excluding",
			"    pattern subscriptions(default: no channels).",
			"SHARDCHANNELS [<pattern>]", "    Return the currently active shard level channels matching a <pattern> (default: '*').",
			"SHARDNUMSUB [<shardchannel> ...]", "    Return the number of subscribers for the specified shard level channel(s)",
			"HELP", "    Prints this help.",
		}
		c.Out.WriteArray(len(help))
		for _, h := range help {
			c.Out.WriteSimple(h)
		}
	default:
		unknownSubcommand(c, "pubsub", argv[1])
	}
}

// cmdReset is Redis's RESET: leave MULTI, unwatch, unsubscribe from
// everything, back to RESP2, no name, and the default user (authenticated
// only if it needs no password).
func cmdReset(c *Session, argv [][]byte) {
	c.user.Store(c.n.acl.def.Load())
	c.authed = c.n.defaultUserOpen()
	c.tx.reset()
	c.tx.unwatch()
	c.unsubscribeAll()
	c.readOnly = false // READWRITE, as Redis's RESET does in cluster mode
	c.proto.Store(2)
	c.Out.SetProto(2)
	c.mu.Lock()
	c.name = ""
	c.mu.Unlock()
	c.Out.WriteSimple("RESET")
}

// PubSubDisconnects counts the subscribers disconnected at their output
// buffer limit.
func (n *Node) PubSubDisconnects() int64 { return n.pubsubDisconnects.Load() }

// pubsubClients counts the sessions with a subscription (INFO clients).
func (n *Node) pubsubClients() int {
	ps := n.pubsub
	ps.mu.Lock()
	defer ps.mu.Unlock()
	seen := map[uint64]bool{}
	for _, reg := range []map[string]*subscribers{ps.channels, ps.patterns, ps.shards} {
		for _, set := range reg {
			for _, c := range set.list {
				seen[c.id] = true
			}
		}
	}
	return len(seen)
}

// infoPubsub adds Redis's pub/sub counters to INFO stats.
func (n *Node) infoPubsub(b *strings.Builder) {
	n.pubsub.mu.Lock()
	channels, patterns := len(n.pubsub.channels), len(n.pubsub.patterns)
	n.pubsub.mu.Unlock()
	kv(b, "pubsub_channels", channels)
	kv(b, "pubsub_patterns", patterns)
	kv(b, "client_output_buffer_limit_disconnections", n.pubsubDisconnects.Load())
	if n.clustered {
		bs := n.BusPublishStats()
		kv(b, "cluster_pubsub_sent", bs.Sent)
		kv(b, "cluster_pubsub_received", bs.Received)
		kv(b, "cluster_pubsub_dropped", bs.Dropped)
		kv(b, "cluster_pubsub_refused", bs.Refused)
	}
}

// clientListFields are CLIENT LIST's pub/sub and MULTI fields for c,
// read from another goroutine: subscriptions under the registry lock,
// the MULTI state from its atomic mirror.
func (c *Session) clientListFields() string {
	ps := c.n.pubsub
	var sub, psub, ssub int
	ps.mu.Lock()
	if c.sub != nil {
		sub, psub, ssub = len(c.sub.channels), len(c.sub.patterns), len(c.sub.shards)
	}
	ps.mu.Unlock()
	bf := c.bufferFigures() // batchstats.go, memory_cmd.go
	flags := ""
	if bf.monitor {
		flags += "O"
	}
	if sub+psub+ssub > 0 {
		flags += "P"
	}
	multi := int(c.tx.shown.Load()) - 1
	if multi >= 0 {
		flags += "x"
	}
	if c.obs.noEvict.Load() {
		flags += "e"
	}
	if flags == "" {
		flags = "N"
	}
	return "flags=" + flags + " db=0 sub=" + strconv.Itoa(sub) + " psub=" + strconv.Itoa(psub) + " ssub=" + strconv.Itoa(ssub) +
		" multi=" + strconv.Itoa(multi) + " qbuf=" + itoa64(bf.qbuf) + " qbuf-free=" + itoa64(max(bf.qbufCap-bf.qbuf, 0)) +
		" argv-mem=" + itoa64(bf.argvMem) + " multi-mem=" + itoa64(bf.multiMem) + " rbs=" + itoa64(bf.rbs) + " rbp=" + itoa64(bf.rbp) +
		" obl=0 oll=0 omem=" + itoa64(bf.omem) + " tot-mem=" + itoa64(bf.totMem) + " events=r"
}
