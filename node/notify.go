package node

import (
	"strconv"
	"strings"
	"sync/atomic"
)

// Keyspace notifications: the engine reports every keyspace event
// (engine.Options.Notify, routed by Replica.SetNotify) as it applies a
// command or expires a key; the server publishes it, filtered by
// notify-keyspace-events, on __keyspace@0__:<key> (message: the event)
// and __keyevent@0__:<event> (message: the key). Events run inside the
// shard, so publishing only appends to subscribers' outboxes.

// Redis's notify-keyspace-events classes.
const (
	nKeyspace = 1 << iota // K
	nKeyevent             // E
	nGeneric              // g
	nString               // $
	nList                 // l
	nSet                  // s
	nHash                 // h
	nZset                 // z
	nExpired              // x
	nEvicted              // e
	nStream               // t
	nKeyMiss              // m
	nModule               // d
	nNew                  // n
	nAll      = nGeneric | nString | nList | nSet | nHash | nZset | nExpired | nEvicted | nStream | nModule
)

var notifyLetters = []struct {
	c    byte
	flag int
}{
	{'g', nGeneric}, {'$', nString}, {'l', nList}, {'s', nSet}, {'h', nHash}, {'z', nZset},
	{'x', nExpired}, {'e', nEvicted}, {'t', nStream}, {'d', nModule},
	{'K', nKeyspace}, {'E', nKeyevent}, {'m', nKeyMiss}, {'n', nNew},
}

// parseNotifyFlags is Redis's keyspaceEventsStringToFlags.
func parseNotifyFlags(s string) (int, bool) {
	flags := 0
	for i := 0; i < len(s); i++ {
		if s[i] == 'A' {
			flags |= nAll
			continue
		}
		found := false
		for _, l := range notifyLetters {
			if l.c == s[i] {
				flags |= l.flag
				found = true
				break
			}
		}
		if !found {
			return 0, false
		}
	}
	return flags, true
}

// formatNotifyFlags is Redis's keyspaceEventsFlagsToString.
func formatNotifyFlags(flags int) string {
	var b strings.Builder
	if flags&nAll == nAll {
		b.WriteByte('A')
	} else {
		for _, l := range notifyLetters[:10] {
			if flags&l.flag != 0 {
				b.WriteByte(l.c)
			}
		}
	}
	for _, l := range notifyLetters[10:] {
		if flags&l.flag != 0 {
			b.WriteByte(l.c)
		}
	}
	return b.String()
}

// eventClass maps the engine's event names to their class letter.
func eventClass(event string) int {
	switch event {
	case "set", "setrange", "append", "incrby", "incrbyfloat", "getdel", "getex", "setbit":
		return nString
	case "expired":
		return nExpired
	case "evicted":
		return nEvicted
	case "new":
		return nNew
	case "keymiss":
		return nKeyMiss
	case "lpush", "rpush", "lpop", "rpop", "linsert", "lset", "ltrim", "lrem":
		return nList
	case "hset", "hdel", "hincrby", "hincrbyfloat":
		return nHash
	case "sadd", "srem", "spop", "sinterstore", "sunionstore", "sdiffstore":
		return nSet
	case "zadd", "zrem", "zincr", "zincrby", "zremrangebyscore", "zremrangebyrank", "zremrangebylex",
		"zpopmin", "zpopmax", "zinterstore", "zunionstore", "zdiffstore", "zrangestore":
		return nZset
	}
	return nGeneric // del, expire, persist, rename_from, rename_to, copy_to, ...
}

// psExt is the server's pub/sub and notification state (embedded in Server).
type psExt struct {
	notifyFlags       atomic.Int64
	psLimit           atomic.Pointer[PubSubLimit]
	pubsubDisconnects atomic.Int64
}

func (n *Node) initPubsub() {
	n.pubsub = newPubsub()
	lim := n.cfg.PubSubLimit
	if lim == (PubSubLimit{}) {
		lim = DefaultPubSubLimit()
	}
	n.psLimit.Store(&lim)
	if f, ok := parseNotifyFlags(n.cfg.NotifyKeyspaceEvents); ok {
		n.notifyFlags.Store(int64(f))
	} else {
		n.logf("ignoring notify-keyspace-events %q: invalid event class character", n.cfg.NotifyKeyspaceEvents)
	}
}

// attach routes a (re)opened replica's keyspace events to this node while
// notifications are enabled. It runs inside the group's Exclusive (or
// before the node serves).
func (n *Node) attach(gr *group) {
	if gr.replica == nil {
		return
	}
	n.attachBlocking(gr)
	if notifyEnabled(int(n.notifyFlags.Load())) {
		// Each replica gets its own buffer for channel names: the
		// replicas of several groups run at the same time.
		nt := &notifier{n: n}
		gr.replica.SetNotify(nt.keyspaceEvent)
	} else {
		gr.replica.SetNotify(nil) // writes pay nothing for events nobody asked for
	}
}

func notifyEnabled(flags int) bool {
	return flags&(nKeyspace|nKeyevent) != 0 && flags&^(nKeyspace|nKeyevent) != 0
}

func (n *Node) pubsubLimit() PubSubLimit { return *n.psLimit.Load() }

// notifier publishes one replica's keyspace events.
type notifier struct {
	n   *Node
	buf []byte // builds channel names; only used inside the replica's Exclusive
	// seq counts the events raised (TestingKnobs.DropNotifyEvery).
	seq int64
}

// keyspaceEvent publishes one engine event (runs inside the replica).
func (nt *notifier) keyspaceEvent(event string, key []byte) {
	n := nt.n
	flags := int(n.notifyFlags.Load())
	if flags&(nKeyspace|nKeyevent) == 0 || flags&eventClass(event) == 0 {
		return
	}
	if nt.seq++; n.cfg.Knobs.dropNotify(nt.seq) {
		return
	}
	if flags&nKeyspace != 0 {
		nt.buf = append(append(nt.buf[:0], "__keyspace@0__:"...), key...)
		n.pubsub.publish(nt.buf, []byte(event))
	}
	if flags&nKeyevent != 0 {
		nt.buf = append(append(nt.buf[:0], "__keyevent@0__:"...), event...)
		n.pubsub.publish(nt.buf, key)
	}
}

// configParam is one parameter CONFIG GET and SET handle online: check
// validates a value; set applies a checked one.
type configParam struct {
	get   func(n *Node) string
	check func(v string) bool
	set   func(n *Node, v string)
	bad   string // why a value was refused, as Redis words it
}

func parseMemory(s string) (int64, bool) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1000}, {"m", 1000 * 1000}, {"g", 1000 * 1000 * 1000}, {"b", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n * mult, true
}

// extraConfig: the parameters this file adds to CONFIG GET/SET. check
// validates a value; set applies a checked one.
// configAliases are other names of parameters (Redis's older ones): CONFIG
// SET takes them, CONFIG GET answers them when asked by that exact name.
var configAliases = map[string]string{}

var extraConfig = map[string]configParam{
	"notify-keyspace-events": {
		get: func(n *Node) string { return formatNotifyFlags(int(n.notifyFlags.Load())) },
		check: func(v string) bool {
			_, ok := parseNotifyFlags(v)
			return ok
		},
		set: func(n *Node, v string) {
			f, _ := parseNotifyFlags(v)
			n.notifyFlags.Store(int64(f))
			for _, gr := range n.groups {
				n.rt.Exclusive(nil, gr.id, func() { n.attach(gr) })
			}
		},
		bad: "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
	},
}

// ValidNotifyKeyspaceEvents reports whether v is a notify-keyspace-events
// value Redis accepts (for the server's flags and config file).
func ValidNotifyKeyspaceEvents(v string) bool {
	_, ok := parseNotifyFlags(v)
	return ok
}
