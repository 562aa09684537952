package node

import (
	"bytes"
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

// primaryGroup is the group keyless requests go to: the first this node
// leads, else group 1.
func (n *Node) primaryGroup() uint64 {
	for _, gr := range n.groups {
		if gr.hosted.Load() && gr.leader.Load() == n.id && n.id != 0 {
			return gr.id
		}
	}
	return n.firstHosted()
}

// fanoutTargets are the groups a node-wide command of kind runs on:
// every group for disk work, else those this node leads (group 1 when
// none: a follower then answers as before sharding).
func (n *Node) fanoutTargets(kind int) []uint64 {
	var out []uint64
	for _, gr := range n.groups {
		if gr.hosted.Load() && (kind == fanLocal || gr.leader.Load() == n.id && n.id != 0) {
			out = append(out, gr.id)
		}
	}
	if len(out) == 0 {
		out = append(out, n.firstHosted())
	}
	return out
}

// runOn makes argv on group g the next step, its reply going to w, and
// then run once it is answered.
func (c *Session) runOn(g uint64, argv [][]byte, w *recorder, then func()) {
	c.submitThen(g, []cluster.Request{{Argv: argv, W: w}}, then)
}

// runNodeWide runs a node-wide command on its groups, one after another,
// and writes the merged reply (slot is CommandSlot's, -1 here).
func (c *Session) runNodeWide(argv [][]byte, slot int) {
	kind := fanoutKind(argv)
	targets := c.n.fanoutTargets(kind)
	if kind == fanSearch {
		c.scanGroups(argv, targets)
		return
	}
	if len(targets) == 1 {
		c.submitThen(targets[0], []cluster.Request{{Argv: argv, W: c.Out}}, nil)
		return
	}
	// The reader may reuse argv's buffers once the batch ends; the steps
	// outlive this call, so they get a copy.
	argv = cloneArgv(argv)
	recs := make([]*recorder, len(targets))
	var step func(i int)
	step = func(i int) {
		if i == len(targets) {
			c.mergeNodeWide(argv, recs)
			return
		}
		recs[i] = &recorder{}
		c.runOn(targets[i], argv, recs[i], func() { step(i + 1) })
	}
	step(0)
}

func cloneArgv(argv [][]byte) [][]byte {
	out := make([][]byte, len(argv))
	for i, a := range argv {
		out[i] = bytes.Clone(a)
	}
	return out
}

func (c *Session) mergeNodeWide(argv [][]byte, recs []*recorder) {
	for _, r := range recs {
		if r.err != "" {
			c.Out.WriteError(r.err)
			return
		}
	}
	name := argv[0]
	switch {
	case eqFold(name, "dbsize"):
		var total int64
		for _, r := range recs {
			total += r.int()
		}
		c.Out.WriteInt(total)
	case eqFold(name, "lastsave"):
		v := recs[0].int()
		for _, r := range recs[1:] {
			v = min(v, r.int())
		}
		c.Out.WriteInt(v)
	case eqFold(name, "keys"):
		total := 0
		for _, r := range recs {
			total += len(r.bulks())
		}
		c.Out.WriteArray(total)
		for _, r := range recs {
			for _, k := range r.bulks() {
				c.Out.WriteBulk(k)
			}
		}
	case eqFold(name, "randomkey"):
		start := int(c.n.random() % uint64(len(recs)))
		for i := range recs {
			if b := recs[(start+i)%len(recs)].bulks(); len(b) > 0 {
				c.Out.WriteBulk(b[0])
				return
			}
		}
		c.Out.WriteNull()
	default:
		// FLUSHALL, FLUSHDB, FUNCTION ..., SAVE, BGSAVE, BGREWRITEAOF:
		// every group answered the same success; pass on the first.
		recs[0].replay(c)
	}
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
func (r *recorder) replay(c *Session) {
	if len(r.items) == 0 {
		c.Out.WriteSimple("OK")
		return
	}
	switch it := r.items[0]; it.kind {
	case '+':
		c.Out.WriteSimple(string(it.b))
	case ':':
		c.Out.WriteInt(it.n)
	case '$':
		c.Out.WriteBulk(it.b)
	default:
		c.Out.WriteNull()
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
	group  uint64 // the group scanned
	inner  uint64 // the group's own cursor
}

const scanCursorsKept = 4096

func (g *groupScans) put(random func() uint64, group uint64, inner uint64) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.next == 0 {
		g.next = random()%(1<<40) + 1
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
func (c *Session) scanGroups(argv [][]byte, targets []uint64) {
	if len(targets) == 1 {
		c.submitThen(targets[0], []cluster.Request{{Argv: argv, W: c.Out}}, nil)
		return
	}
	cur, err := strconv.ParseUint(string(argv[1]), 10, 64)
	if err != nil {
		c.Out.WriteError("ERR invalid cursor")
		return
	}
	pos := 0 // index in targets
	inner := cur
	if cur != 0 {
		if e, ok := c.n.scans.get(cur); ok {
			inner = e.inner
			pos = len(targets) // the group is no longer led: scan is over
			for i, g := range targets {
				if g >= e.group {
					pos = i
					if g != e.group {
						inner = 0 // that group is gone: start the next one
					}
					break
				}
			}
		}
	}
	if pos == len(targets) {
		c.Out.WriteArray(2)
		c.Out.WriteBulkString("0")
		c.Out.WriteArray(0)
		return
	}
	args := cloneArgv(argv)
	args[1] = strconv.AppendUint(nil, inner, 10)
	rec := &recorder{}
	c.runOn(targets[pos], args, rec, func() {
		if rec.err != "" {
			c.Out.WriteError(rec.err)
			return
		}
		items := rec.bulks()
		if len(items) == 0 {
			c.Out.WriteError("ERR SCAN of a replica group gave no cursor")
			return
		}
		next, _ := strconv.ParseUint(string(items[0]), 10, 64)
		out := uint64(0)
		switch {
		case next != 0:
			out = c.n.scans.put(c.n.random, targets[pos], next)
		case pos+1 < len(targets):
			out = c.n.scans.put(c.n.random, targets[pos+1], 0)
		}
		c.Out.WriteArray(2)
		c.Out.WriteBulk(strconv.AppendUint(nil, out, 10))
		c.Out.WriteArray(len(items) - 1)
		for _, k := range items[1:] {
			c.Out.WriteBulk(k)
		}
	})
}
