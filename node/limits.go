package node

import (
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/resp"
)

// Client limits, as Redis 7 has them, each settable with CONFIG SET:
//
//   - Before AUTH a client may send only small commands (resp's
//     UnauthMultibulkLenMax arguments of UnauthBulkBytesMax bytes); the
//     runtime tells its reader whether the session is authenticated.
//   - client-query-buffer-limit and proto-max-bulk-len bound what one
//     connection may make the server buffer (the runtime's reader reads
//     Limits before every batch).
//   - client-output-buffer-limit: the normal class bounds one batch's
//     replies (a connection's output is written at the end of each batch,
//     so the hard limit is what counts; the soft one, above which output
//     may stay for its seconds, is checked across batches); the pubsub
//     class bounds a subscriber's outbox (pubsub.go).
//   - timeout closes a connection idle for that many seconds (not a
//     subscriber's), as Redis does; 0 never.

// BufferLimit is one class of client-output-buffer-limit: a client whose
// pending output would pass HardBytes is disconnected at once; one that
// stays above SoftBytes for SoftSeconds is disconnected too. Zero turns a
// limit off.
type BufferLimit struct {
	HardBytes   int64
	SoftBytes   int64
	SoftSeconds int64
}

// limitsState is the node's online client limits.
type limitsState struct {
	normal  BufferLimit
	reader  resp.Limits
	timeout time.Duration
}

func (n *Node) initLimits() {
	n.limits.Store(&limitsState{reader: n.cfg.Limits, normal: n.cfg.NormalLimit, timeout: n.cfg.Timeout})
}

// Limits are the reader limits for the next batch of every connection.
func (n *Node) Limits() resp.Limits { return n.limits.Load().reader }

// IdleTimeout is how long session c may stay idle before the runtime
// closes its connection (0: never; a subscriber is never closed for
// idleness, as in Redis).
func (c *Session) IdleTimeout() time.Duration {
	if c.box != nil && c.sub.count() > 0 {
		return 0
	}
	return c.n.limits.Load().timeout
}

// Authenticated reports whether the session passed AUTH (or needs none):
// until then the runtime's reader applies Redis's limits for
// unauthenticated clients (resp.Reader.SetAuthenticated).
func (c *Session) Authenticated() bool { return c.authed }

// outputTooBig enforces the normal class of client-output-buffer-limit on
// a batch's replies about to be written: true means the connection closes
// and the replies are dropped, as Redis drops a client over its limit.
// A batch's replies count from their first byte (Redis counts what does
// not fit its own reply buffer of up to 16 KB, which it resizes with the
// client's use, so a reply just over a small limit may slip through
// there).
func (c *Session) outputTooBig(size int) bool {
	lim := c.n.limits.Load().normal
	reason := ""
	switch {
	case lim.HardBytes > 0 && int64(size) > lim.HardBytes:
		reason = "hard"
	case lim.SoftBytes > 0 && int64(size) > lim.SoftBytes:
		now := c.n.clock.Now()
		if c.softSince == 0 {
			c.softSince = now
		} else if now-c.softSince >= lim.SoftSeconds*1e9 {
			reason = "soft"
		}
	default:
		c.softSince = 0
	}
	if reason == "" {
		return false
	}
	c.n.logf("closing client id=%d addr=%s: output buffer over its %s limit (normal %d %d %d)",
		c.id, c.addr(), reason, lim.HardBytes, lim.SoftBytes, lim.SoftSeconds)
	c.n.pubsubDisconnects.Add(1) // client_output_buffer_limit_disconnections counts every class
	c.killed.Store(true)
	c.closeAfter = true
	return true
}

// parseBufferLimits reads client-output-buffer-limit: one or more
// "<class> <hard> <soft> <seconds>" groups (sizes may carry k/kb/m/mb/g/gb),
// class normal, replica (slave) or pubsub. Only the classes named change.
func parseBufferLimits(v string) (normal, pubsub *BufferLimit, ok bool) {
	f := strings.Fields(strings.ToLower(v))
	if len(f) == 0 || len(f)%4 != 0 {
		return nil, nil, false
	}
	for i := 0; i < len(f); i += 4 {
		hard, ok1 := parseMemory(f[i+1])
		soft, ok2 := parseMemory(f[i+2])
		secs, err := strconv.ParseInt(f[i+3], 10, 64)
		if !ok1 || !ok2 || err != nil || secs < 0 {
			return nil, nil, false
		}
		l := &BufferLimit{HardBytes: hard, SoftBytes: soft, SoftSeconds: secs}
		switch f[i] {
		case "normal":
			normal = l
		case "pubsub":
			pubsub = l
		case "replica", "slave":
			// keel has no replicas to feed through a client connection.
		default:
			return nil, nil, false
		}
	}
	return normal, pubsub, true
}

func (l BufferLimit) fields() string {
	return strconv.FormatInt(l.HardBytes, 10) + " " + strconv.FormatInt(l.SoftBytes, 10) + " " + strconv.FormatInt(l.SoftSeconds, 10)
}

func init() {
	for name, p := range map[string]configParam{
		"client-output-buffer-limit": {
			get: func(n *Node) string {
				return "normal " + n.limits.Load().normal.fields() + " slave 268435456 67108864 60 pubsub " + n.pubsubLimit().fields()
			},
			check: func(v string) bool {
				_, _, ok := parseBufferLimits(v)
				return ok
			},
			set: func(n *Node, v string) {
				normal, pubsub, _ := parseBufferLimits(v)
				if normal != nil {
					l := *n.limits.Load()
					l.normal = *normal
					n.limits.Store(&l)
				}
				if pubsub != nil {
					n.psLimit.Store(pubsub)
				}
			},
			bad: "Wrong number of arguments in buffer limit configuration.",
		},
		"timeout": {
			get: func(n *Node) string { return strconv.FormatInt(int64(n.limits.Load().timeout/time.Second), 10) },
			check: func(v string) bool {
				s, err := strconv.ParseInt(v, 10, 64)
				return err == nil && s >= 0 && s <= 1<<31-1
			},
			set: func(n *Node, v string) {
				s, _ := strconv.ParseInt(v, 10, 64)
				l := *n.limits.Load()
				l.timeout = time.Duration(s) * time.Second
				n.limits.Store(&l)
			},
			bad: "argument must be between 0 and 2147483647 inclusive",
		},
		"client-query-buffer-limit": {
			get: func(n *Node) string { return strconv.Itoa(n.limits.Load().reader.QueryBufferBytesMax) },
			check: func(v string) bool {
				b, ok := parseMemory(strings.ToLower(v))
				return ok && b >= 1<<20 && b <= 1<<40
			},
			set: func(n *Node, v string) {
				b, _ := parseMemory(strings.ToLower(v))
				l := *n.limits.Load()
				l.reader.QueryBufferBytesMax = int(b)
				n.limits.Store(&l)
			},
			bad: "argument must be a memory value between 1mb and 1tb",
		},
		"proto-max-bulk-len": {
			get: func(n *Node) string { return strconv.FormatInt(n.limits.Load().reader.BulkBytesMax, 10) },
			check: func(v string) bool {
				b, ok := parseMemory(strings.ToLower(v))
				return ok && b >= 1<<20
			},
			set: func(n *Node, v string) {
				b, _ := parseMemory(strings.ToLower(v))
				l := *n.limits.Load()
				l.reader.BulkBytesMax = b
				if int64(l.reader.QueryBufferBytesMax) < b+(1<<20) {
					l.reader.QueryBufferBytesMax = int(b + 1<<20)
				}
				n.limits.Store(&l)
			},
			bad: "argument must be a memory value of at least 1mb",
		},
	} {
		extraConfig[name] = p
	}
}

// ParseBufferLimits reads client-output-buffer-limit (for the config
// file): the normal and pubsub classes it names (nil: not named).
func ParseBufferLimits(v string) (normal, pubsub *BufferLimit, ok bool) { return parseBufferLimits(v) }
