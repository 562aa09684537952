package server

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"sync"

	"github.com/keel-db/keel/cluster"
)

// Routing on a node hosting several replica groups (groups.go). A keyed
// request goes to the group its slot is routed to; CLUSTER RESHARD g to
// group g; other keyless requests to the first group this node leads (or
// group 1 when it leads none). Node-wide keyless commands answer for the
// groups this node leads, as each master of a Redis Cluster answers for
// its own slots and clients fan out over masters: DBSIZE and KEYS sum and
// concatenate, SCAN walks them one group after another, RANDOMKEY picks
// one, FLUSHALL/FLUSHDB and FUNCTION LOAD/DELETE/FLUSH/RESTORE run on each
// (the first error wins). SAVE, BGSAVE, BGREWRITEAOF and LASTSAVE concern
// this node's disk, so they cover every local replica whoever leads it.

// Kinds of node-wide commands.
const (
	fanNone   = iota
	fanLed    // on the groups this node leads
	fanLocal  // on every local replica (disk maintenance)
	fanSearch // SCAN: one led group at a time
)

// fanoutKind says how a keyless command runs on a multi-group node.
func fanoutKind(argv [][]byte) int {
	name := argv[0]
	switch {
	case eqFold(name, "dbsize"), eqFold(name, "keys"), eqFold(name, "randomkey"),
		eqFold(name, "flushall"), eqFold(name, "flushdb"):
		return fanLed
	case eqFold(name, "scan"):
		return fanSearch
	case eqFold(name, "save"), eqFold(name, "bgsave"), eqFold(name, "bgrewriteaof"), eqFold(name, "lastsave"):
		return fanLocal
	case eqFold(name, "function") && len(argv) >= 2:
		sub := argv[1]
		if eqFold(sub, "load") || eqFold(sub, "delete") || eqFold(sub, "flush") || eqFold(sub, "restore") {
			return fanLed
		}
	}
	return fanNone
}

// groupIndex is the index in s.groups of the group argv goes to, or -1
// for a node-wide command (runNodeWide). slot is cluster.CommandSlot's;
// asking says the client sent ASKING first (it follows an -ASK to the
// group importing the slot).
func (s *Server) groupIndex(argv [][]byte, slot int, asking bool) int {
	if slot >= 0 {
		if asking {
			return int(s.node.askingGroupOf(slot)) - 1
		}
		return int(s.node.groupOf(slot)) - 1
	}
	if fanoutKind(argv) != fanNone {
		return -1
	}
	return s.primaryGroup()
}

// primaryGroup is the index of the group keyless requests go to: the
// first this node leads, else group 1.
func (s *Server) primaryGroup() int {
	for i := range s.groups {
		if s.node.leaderOf(uint64(i+1)) == s.node.id {
			return i
		}
	}
	return 0
}

// fanoutTargets are the indexes of the groups a node-wide command of kind
// runs on: every group for disk work, else those this node leads (group
// 1 when none: a follower then answers as before sharding).
func (s *Server) fanoutTargets(kind int) []int {
	var out []int
	for i := range s.groups {
		if kind == fanLocal || s.node.leaderOf(uint64(i+1)) == s.node.id {
			out = append(out, i)
		}
	}
	if len(out) == 0 {
		out = append(out, 0)
	}
	return out
}

// runOn submits one request to group gi+1 and waits for its reply. False:
// the server stopped first (the client is then abandoned).
func (c *client) runOn(gi int, argv [][]byte, w *recorder) bool {
	c.runGroup = gi
	c.reqs = append(c.reqs, cluster.Request{Argv: argv, W: w})
	return c.submit()
}

// runNodeWide runs a node-wide command on its groups and writes the
// merged reply. False: the client was abandoned.
func (c *client) runNodeWide(argv [][]byte) bool {
	kind := fanoutKind(argv)
	targets := c.srv.fanoutTargets(kind)
	if kind == fanSearch {
		return c.scanGroups(argv, targets)
	}
	if len(targets) == 1 {
		c.runGroup = targets[0]
		c.reqs = append(c.reqs, cluster.Request{Argv: argv, W: c.out})
		return c.submit()
	}
	recs := make([]*recorder, len(targets))
	for i, gi := range targets {
		recs[i] = &recorder{}
		if !c.runOn(gi, argv, recs[i]) {
			return false
		}
	}
	for _, r := range recs {
		if r.err != "" {
			c.out.WriteError(r.err)
			return true
		}
	}
	name := argv[0]
	switch {
	case eqFold(name, "dbsize"):
		var n int64
		for _, r := range recs {
			n += r.int()
		}
		c.out.WriteInt(n)
	case eqFold(name, "lastsave"):
		n := recs[0].int()
		for _, r := range recs[1:] {
			n = min(n, r.int())
		}
		c.out.WriteInt(n)
	case eqFold(name, "keys"):
		n := 0
		for _, r := range recs {
			n += len(r.bulks())
		}
		c.out.WriteArray(n)
		for _, r := range recs {
			for _, k := range r.bulks() {
				c.out.WriteBulk(k)
			}
		}
	case eqFold(name, "randomkey"):
		start := rand.IntN(len(recs))
		for i := range recs {
			if b := recs[(start+i)%len(recs)].bulks(); len(b) > 0 {
				c.out.WriteBulk(b[0])
				return true
			}
		}
		c.out.WriteNull()
	default:
		// FLUSHALL, FLUSHDB, FUNCTION ..., SAVE, BGSAVE, BGREWRITEAOF:
		// every group answered the same success; pass on the first.
		recs[0].replay(c)
	}
	return true
}

// recorder is an engine.Writer keeping a reply to merge: its error, its
// simple strings, integers and bulk strings in order (nested arrays are
// flattened: the merged commands reply with flat shapes, SCAN's two
// levels apart).
type recorder struct {
	err   string
	items []recItem
}

type recItem struct {
	kind byte // '+', ':', '$', '_' (null)
	n    int64
	b    []byte
}

func (r *recorder) WriteSimple(s string)  { r.items = append(r.items, recItem{kind: '+', b: []byte(s)}) }
func (r *recorder) WriteError(msg string) { r.err = msg }
func (r *recorder) WriteInt(n int64)      { r.items = append(r.items, recItem{kind: ':', n: n}) }
func (r *recorder) WriteBulk(b []byte) {
	r.items = append(r.items, recItem{kind: '$', b: bytes.Clone(b)})
}
func (r *recorder) WriteBulkString(s string) {
	r.items = append(r.items, recItem{kind: '$', b: []byte(s)})
}
func (r *recorder) WriteNull()            { r.items = append(r.items, recItem{kind: '_'}) }
func (r *recorder) WriteArray(int)        {}
func (r *recorder) WriteNullArray()       {}
func (r *recorder) WriteDouble(f float64) { r.WriteBulkString(strconv.FormatFloat(f, 'g', -1, 64)) }
func (r *recorder) WriteMap(int)          {}
func (r *recorder) WriteSet(int)          {}
func (r *recorder) int() int64 {
	for _, it := range r.items {
		if it.kind == ':' {
			return it.n
		}
	}
	return 0
}

// bulks are the reply's bulk strings in order.
func (r *recorder) bulks() [][]byte {
	var out [][]byte
	for _, it := range r.items {
		if it.kind == '$' {
			out = append(out, it.b)
		}
	}
	return out
}

// replay writes a one-value reply (status, integer, bulk or null) to c.
func (r *recorder) replay(c *client) {
	if len(r.items) == 0 {
		c.out.WriteSimple("OK")
		return
	}
	switch it := r.items[0]; it.kind {
	case '+':
		c.out.WriteSimple(string(it.b))
	case ':':
		c.out.WriteInt(it.n)
	case '$':
		c.out.WriteBulk(it.b)
	default:
		c.out.WriteNull()
	}
}

// groupScans remembers SCAN cursors handed out while this node led
// several groups: each names a group and that group's own cursor. A
// cursor it no longer remembers (scanCursorsKept newer ones since) is
// taken as a cursor of the first group scanned, as a single-group node
// would; a scan then resumes somewhere in that group's order, which SCAN
// allows (it returns every key present throughout at least once only
// while the set of groups scanned stays the same).
type groupScans struct {
	mu      sync.Mutex
	next    uint64
	entries [scanCursorsKept]groupScan
}

type groupScan struct {
	cursor uint64 // as handed out; 0: unused
	group  int    // index in Server.groups
	inner  uint64 // the group's own cursor
}

const scanCursorsKept = 4096

func (g *groupScans) put(group int, inner uint64) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.next == 0 {
		g.next = rand.Uint64N(1<<40) + 1
	}
	g.next++
	cur := g.next
	g.entries[cur%scanCursorsKept] = groupScan{cursor: cur, group: group, inner: inner}
	return cur
}

func (g *groupScans) get(cur uint64) (groupScan, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.entries[cur%scanCursorsKept]
	return e, e.cursor == cur && cur != 0
}

// scanGroups runs SCAN over the led groups in turn: a call scans one
// group, and its cursor says which group and where in it to go on.
func (c *client) scanGroups(argv [][]byte, targets []int) bool {
	if len(targets) == 1 {
		c.runGroup = targets[0]
		c.reqs = append(c.reqs, cluster.Request{Argv: argv, W: c.out})
		return c.submit()
	}
	cur, err := strconv.ParseUint(string(argv[1]), 10, 64)
	if err != nil {
		c.out.WriteError("ERR invalid cursor")
		return true
	}
	pos := 0 // index in targets
	inner := cur
	if cur != 0 {
		if e, ok := c.srv.scans.get(cur); ok {
			inner = e.inner
			pos = len(targets) // the group is no longer led: scan is over
			for i, gi := range targets {
				if gi >= e.group {
					pos = i
					if gi != e.group {
						inner = 0 // that group is gone: start the next one
					}
					break
				}
			}
		}
	}
	if pos == len(targets) {
		c.out.WriteArray(2)
		c.out.WriteBulkString("0")
		c.out.WriteArray(0)
		return true
	}
	args := make([][]byte, len(argv))
	copy(args, argv)
	args[1] = strconv.AppendUint(nil, inner, 10)
	rec := &recorder{}
	if !c.runOn(targets[pos], args, rec) {
		return false
	}
	if rec.err != "" {
		c.out.WriteError(rec.err)
		return true
	}
	items := rec.bulks()
	if len(items) == 0 {
		c.out.WriteError("ERR SCAN of a replica group gave no cursor")
		return true
	}
	next, _ := strconv.ParseUint(string(items[0]), 10, 64)
	out := uint64(0)
	switch {
	case next != 0:
		out = c.srv.scans.put(targets[pos], next)
	case pos+1 < len(targets):
		out = c.srv.scans.put(targets[pos+1], 0)
	}
	c.out.WriteArray(2)
	c.out.WriteBulk(strconv.AppendUint(nil, out, 10))
	c.out.WriteArray(len(items) - 1)
	for _, k := range items[1:] {
		c.out.WriteBulk(k)
	}
	return true
}
