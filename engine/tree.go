package engine

import (
	"bytes"
	"encoding/binary"
	"math"

	"github.com/cockroachdb/errors"
)

// A large collection (a list past its listpack, a set, hash or sorted set
// past its compact encoding) is a counted B+tree whose nodes are 4 KiB
// cells of the keyspace's own pages (arena.go): no Go pointers, so the
// garbage collector marks the pages and never looks at an element, and a
// View reads the nodes through its copy of the page directory like it
// reads keys (docs/engine.md, "Collections").
//
//   - Leaves hold the elements packed one after another, each entry one
//     field (list element, set member, the sorted set's score key) or two
//     (hash field and value, sorted-set member and score). A field is
//     [uvarint len<<1][bytes], or, past fieldInlineMax bytes,
//     [uvarint len<<1|1][class][cell]: the bytes in a cell of their own
//     (an overflow cell, never changed in place).
//   - Inner nodes hold per child [nid u32][count u64] and, in keyed trees,
//     a separator field: a lower bound of the child's keys that is greater
//     than every key of the child before it (the first child's is empty).
//     Separators are cut to the shortest such prefix, so they are short.
//   - Every inner entry counts the elements under its child, so the tree
//     finds the i-th element in O(log n): list indexes, ranks, and random
//     picks that depend only on the collection's content (determinism).
//
// Keyed trees are ordered by the key's bytes (sets, hashes, a sorted set's
// members) or by (score, member) (a sorted set's scores). Lists are
// positional.
//
// Copy-on-write: a node's header holds the DB's modification counter at
// its last change. A node a live View may read (version <= viewVersion) is
// copied before it changes, and the copy replaces it in its parent, which
// was made writable first (writes descend from the root, which lives in
// the key's own value and is made writable with the key). Replaced and
// removed nodes, and overflow cells freed while any View is alive, are
// freed once no View is left (deferredCells).
const (
	nodeBytes    = 4096
	nodeShift    = 12
	nodeHdrBytes = 16
	nodeCapBytes = nodeBytes - nodeHdrBytes
	// fieldInlineMax bounds a field kept inside a node. With it an entry
	// is at most about a quarter of a node, so a full node plus one entry
	// always splits into two nodes that fit.
	fieldInlineMax = 512
	// nodeMergeBelow is the fill under which a node is merged into a
	// neighbour when the two fit in one node.
	nodeMergeBelow = nodeCapBytes / 4
	// treeDepthMax bounds a tree's height: every inner node has at least
	// two children after a split (a separator is at most fieldInlineMax
	// bytes or an overflow reference), so 2^40 elements need fewer levels.
	treeDepthMax = 48
	// overflowRefBytes is a field kept in an overflow cell: class and cell.
	overflowRefBytes = 9

	nodeLeaf  = 1
	nodeInner = 2
)

// nid names a node: its cell address >> nodeShift, plus one (0 = none).
// Nodes are cells of the 4096-byte class, which are aligned in their page.
type nid uint32

// treeKind says what a tree's entries are and how they are ordered.
type treeKind uint8

const (
	tkList    treeKind = iota + 1 // positional; one field
	tkSet                         // by member; one field
	tkHash                        // by field; field and value
	tkZMember                     // by member; member and an 8-byte score
	tkZScore                      // by (score, member): one field, 8-byte score then member
)

func (k treeKind) keyed() bool  { return k != tkList }
func (k treeKind) hasVal() bool { return k == tkHash || k == tkZMember }

// cmp orders two keys of a keyed tree.
func (k treeKind) cmp(a, b []byte) int {
	if k == tkZScore {
		return cmpScoreKey(a, b)
	}
	return bytes.Compare(a, b)
}

// cmpScoreKey orders (score, member) keys: scores as numbers (-0 equals
// 0), then members by their bytes, as Redis's skiplist does.
func cmpScoreKey(a, b []byte) int {
	sa := math.Float64frombits(binary.LittleEndian.Uint64(a))
	sb := math.Float64frombits(binary.LittleEndian.Uint64(b))
	switch {
	case sa < sb:
		return -1
	case sa > sb:
		return 1
	}
	return bytes.Compare(a[8:], b[8:])
}

// troot is a tree as its owner keeps it: the root node and the element
// count (0 and 0 for an empty tree).
type troot struct {
	root  nid
	count uint64
}

// node returns node n's bytes.
func (d *slabDirs) node(n nid) []byte {
	a := uint64(n-1) << nodeShift
	off := a & pageMask
	return d.pages[a>>pageShift][off : off+nodeBytes : off+nodeBytes]
}

func nodeCount(p []byte) int       { return int(binary.LittleEndian.Uint16(p[2:])) }
func setNodeCount(p []byte, n int) { binary.LittleEndian.PutUint16(p[2:], uint16(n)) }
func nodeUsed(p []byte) int        { return int(binary.LittleEndian.Uint16(p[4:])) }
func setNodeUsed(p []byte, n int)  { binary.LittleEndian.PutUint16(p[4:], uint16(n)) }
func nodeVersion(p []byte) uint64  { return binary.LittleEndian.Uint64(p[8:]) }

// payload is the used part of a node's entries.
func payload(p []byte) []byte { return p[nodeHdrBytes : nodeHdrBytes+nodeUsed(p)] }

// A keyed tree's node also keeps the offset of each entry, a u16 per
// entry at the node's end (entry i's at nodeBytes-2(i+1)), so a lookup
// halves its way to a key in a few comparisons instead of walking the
// node's entries. Positional nodes (lists) are not: their inner entries
// have one size, their leaves are read at their ends and in runs, and
// their elements stay 2 bytes smaller.

// tabbed reports whether node p keeps an offset table.
func tabbed(p []byte, k treeKind) bool { return k.keyed() }

// tabBytes is what the table of node p with n entries takes.
func tabBytes(p []byte, k treeKind, n int) int {
	if tabbed(p, k) {
		return 2 * n
	}
	return 0
}

func tabGet(p []byte, i int) int { return int(binary.LittleEndian.Uint16(p[nodeBytes-2*(i+1):])) }
func tabSet(p []byte, i, o int)  { binary.LittleEndian.PutUint16(p[nodeBytes-2*(i+1):], uint16(o)) }

// rebuildTab writes node p's offset table from its entries.
func rebuildTab(p []byte, k treeKind) {
	if !tabbed(p, k) {
		return
	}
	end := nodeHdrBytes + nodeUsed(p)
	leaf := p[0] == nodeLeaf
	i := 0
	for o := nodeHdrBytes; o < end; o = entryEnd(p, o, k, leaf) {
		tabSet(p, i, o)
		i++
	}
}

// tabInsert makes room in leaf p's table (of n entries) for entry pos
// at offset at, the entries after it having moved by delta bytes.
func tabInsert(p []byte, n, pos, at, delta int) {
	// Slots pos..n-1 sit at [nodeBytes-2n, nodeBytes-2pos): one slot down.
	copy(p[nodeBytes-2*(n+1):], p[nodeBytes-2*n:nodeBytes-2*pos])
	tabSet(p, pos, at)
	for j := pos + 1; j <= n; j++ {
		tabSet(p, j, tabGet(p, j)+delta)
	}
}

// tabDelete removes entries [from, to) from leaf p's table (of n
// entries), the entries after them having moved back by delta bytes.
func tabDelete(p []byte, n, from, to, delta int) {
	for j := to; j < n; j++ {
		tabSet(p, j, tabGet(p, j)-delta)
	}
	// Slots to..n-1 move up to from.
	gone := to - from
	copy(p[nodeBytes-2*(n-gone):], p[nodeBytes-2*n:nodeBytes-2*to])
}

// uvarint decodes a uvarint with a fast path for one byte.
func uvarint(p []byte) (uint64, int) {
	if p[0] < 0x80 {
		return uint64(p[0]), 1
	}
	return binary.Uvarint(p)
}

// field reads the field at p[o:], resolving an overflow cell, and returns
// its bytes and the offset after it.
func (d *slabDirs) field(p []byte, o int) ([]byte, int) {
	h, k := uvarint(p[o:])
	o += k
	n := int(h >> 1)
	if h&1 == 0 {
		return p[o : o+n : o+n], o + n
	}
	c := d.cellAt(p[o], binary.LittleEndian.Uint64(p[o+1:]))
	return c[:n:n], o + overflowRefBytes
}

// skipField returns the offset after the field at p[o:].
func skipField(p []byte, o int) int {
	h, k := uvarint(p[o:])
	if h&1 == 0 {
		return o + k + int(h>>1)
	}
	return o + k + overflowRefBytes
}

// fieldSize is what a field of n bytes takes in a node.
func fieldSize(n int) int {
	if n <= fieldInlineMax {
		return uvarintLen(uint64(n)<<1) + n
	}
	return uvarintLen(uint64(n)<<1|1) + overflowRefBytes
}

// entryEnd returns the offset after the entry at p[o:] of a node of kind
// k (leaf or inner).
func entryEnd(p []byte, o int, k treeKind, leaf bool) int {
	if !leaf {
		o += 12
		if k.keyed() {
			o = skipField(p, o)
		}
		return o
	}
	o = skipField(p, o)
	if k.hasVal() {
		o = skipField(p, o)
	}
	return o
}

// offsets appends the offsets of n's entries (relative to the node) to
// dst.
func offsets(p []byte, k treeKind, dst []int) []int {
	dst = dst[:0]
	leaf := p[0] == nodeLeaf
	end := nodeHdrBytes + nodeUsed(p)
	if !leaf && !k.keyed() {
		for o := nodeHdrBytes; o < end; o += 12 {
			dst = append(dst, o)
		}
		return dst
	}
	for o := nodeHdrBytes; o < end; o = entryEnd(p, o, k, leaf) {
		dst = append(dst, o)
	}
	return dst
}

func childAt(p []byte, o int) nid { return nid(binary.LittleEndian.Uint32(p[o:])) }
func countAt(p []byte, o int) uint64 {
	return binary.LittleEndian.Uint64(p[o+4:])
}
func setChildAt(p []byte, o int, c nid) { binary.LittleEndian.PutUint32(p[o:], uint32(c)) }
func setCountAt(p []byte, o int, n uint64) {
	binary.LittleEndian.PutUint64(p[o+4:], n)
}

// tview reads trees through a set of block directories: the DB's own, or
// a View's copy.
type tview struct {
	d    *slabDirs
	kind treeKind
	offs []int // scratch
}

// entryAt returns the fields of the leaf entry at p[o:].
func (t *tview) entryAt(p []byte, o int) (a, b []byte) {
	a, o = t.d.field(p, o)
	if t.kind.hasVal() {
		b, _ = t.d.field(p, o)
	}
	return a, b
}

// childFor picks the child of inner node p whose range holds key: the
// last whose separator is <= key. It returns its index and offset, and
// the elements under the children before it.
func (t *tview) childFor(p []byte, key []byte) (i, off int, before uint64) {
	i, off = t.childIndexFor(p, key)
	for j := 0; j < i; j++ {
		before += countAt(p, tabGet(p, j))
	}
	return i, off, before
}

// childIndexFor is childFor without the count of the elements before:
// the last child whose separator is <= key, found by halving over the
// node's offset table.
func (t *tview) childIndexFor(p []byte, key []byte) (i, off int) {
	n := nodeCount(p)
	byBytes := t.kind != tkZScore
	// Children 1..n-1 have separators; find the first > key.
	lo, hi := 1, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		s := tabGet(p, m) + 12
		var c int
		if h := p[s]; h < 0x80 && h&1 == 0 {
			f := p[s+1 : s+1+int(h>>1)]
			if byBytes {
				c = bytes.Compare(f, key)
			} else {
				c = cmpScoreKey(f, key)
			}
		} else {
			sep, _ := t.d.field(p, s)
			c = t.kind.cmp(sep, key)
		}
		if c <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	i = lo - 1
	return i, tabGet(p, i)
}

// leafSeek finds in keyed leaf p the first entry whose key is >= key and
// returns its index and offset (the leaf's count and end when there is
// none) and whether it equals key. Short inline keys, the common case,
// are compared where they lie.
func (t *tview) leafSeek(p []byte, key []byte) (i, o int, eq bool) {
	n := nodeCount(p)
	byBytes := t.kind != tkZScore
	cmp := func(o int) int {
		if h := p[o]; h < 0x80 && h&1 == 0 {
			f := p[o+1 : o+1+int(h>>1)]
			if byBytes {
				return bytes.Compare(f, key)
			}
			return cmpScoreKey(f, key)
		}
		a, _ := t.d.field(p, o)
		return t.kind.cmp(a, key)
	}
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cmp(tabGet(p, m)) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == n {
		return n, nodeHdrBytes + nodeUsed(p), false
	}
	o = tabGet(p, lo)
	return lo, o, cmp(o) == 0
}

// childAtIndex picks the child of inner node p holding the idx-th element
// of the total under p (idx == total: the last child, for an append). It
// returns its index, offset and the elements under the children before it.
// A positional tree's inner entries have one size, so an index in the
// node's second half is looked for from its end: pushes, pops and reads at
// a list's tail cost as little as at its head.
func (t *tview) childAtIndex(p []byte, idx, total uint64) (i, off int, before uint64) {
	if !t.kind.keyed() {
		n := nodeCount(p)
		if idx >= total/2 {
			cum := total
			for j := n - 1; j >= 0; j-- {
				o := nodeHdrBytes + 12*j
				cum -= countAt(p, o)
				if idx >= cum || j == 0 {
					return j, o, cum
				}
			}
		}
		var cum uint64
		for j := 0; j < n; j++ {
			o := nodeHdrBytes + 12*j
			c := countAt(p, o)
			if idx < cum+c || j == n-1 {
				return j, o, cum
			}
			cum += c
		}
	}
	end := nodeHdrBytes + nodeUsed(p)
	o := nodeHdrBytes
	var cum uint64
	for j := 0; ; j++ {
		next := entryEnd(p, o, t.kind, false)
		c := countAt(p, o)
		if idx < cum+c || next >= end {
			return j, o, cum
		}
		cum += c
		o = next
	}
}

// get finds key in a keyed tree and returns its entry.
func (t *tview) get(root nid, key []byte) (a, b []byte, ok bool) {
	if root == 0 {
		return nil, nil, false
	}
	n := root
	for {
		p := t.d.node(n)
		if p[0] == nodeInner {
			_, off := t.childIndexFor(p, key)
			n = childAt(p, off)
			continue
		}
		if _, o, eq := t.leafSeek(p, key); eq {
			a, b := t.entryAt(p, o)
			return a, b, true
		}
		return nil, nil, false
	}
}

// childOf is child i of inner node p, found without a walk over the
// node: a positional tree's inner entries have one size, and a keyed
// tree's nodes keep an offset table. An iterator crossing into the next
// leaf used to list every child's offset, 6% of the CPU of LRANGE over a
// long list.
func (t *tview) childOf(p []byte, i int) nid {
	if !t.kind.keyed() {
		return childAt(p, nodeHdrBytes+12*i)
	}
	return childAt(p, tabGet(p, i))
}

// titer walks a tree's entries in order, either way.
type titer struct {
	t     tview
	depth int // levels on path, the leaf included
	path  [treeDepthMax]struct {
		n nid
		i int
	}
	leaf  []byte
	leafN int   // the current leaf's entry count
	offs  []int // offsets of the current leaf's first entries (offset)
	pos   uint64
	ok    bool
}

// Valid reports whether the iterator is on an entry.
func (it *titer) Valid() bool { return it.ok }

// Pos is the current entry's index in the tree.
func (it *titer) Pos() uint64 { return it.pos }

// Entry is the current entry's fields.
func (it *titer) Entry() (a, b []byte) {
	return it.t.entryAt(it.leaf, it.offset(it.path[it.depth-1].i))
}

// enterLeaf makes n the current leaf. Its entries' offsets are found as
// the iterator needs them (offset), so a seek to the first entries of a
// leaf does not walk the rest.
func (it *titer) enterLeaf(n nid) {
	it.leaf = it.t.d.node(n)
	it.offs = it.offs[:0]
	it.leafN = nodeCount(it.leaf)
}

// offset is the byte offset of entry i of the current leaf.
func (it *titer) offset(i int) int {
	if it.t.kind.keyed() {
		return tabGet(it.leaf, i)
	}
	for len(it.offs) <= i {
		o := nodeHdrBytes
		if m := len(it.offs); m > 0 {
			o = entryEnd(it.leaf, it.offs[m-1], it.t.kind, true)
		}
		it.offs = append(it.offs, o)
	}
	return it.offs[i]
}

// seekIndex positions the iterator on the idx-th entry (invalid past the
// end).
func (it *titer) seekIndex(root nid, count uint64, idx uint64) {
	it.depth, it.ok = 0, false
	if root == 0 || idx >= count {
		return
	}
	it.pos = idx
	n := root
	total := count
	for {
		p := it.t.d.node(n)
		if p[0] == nodeLeaf {
			it.enterLeaf(n)
			it.path[it.depth] = struct {
				n nid
				i int
			}{n, int(idx)}
			it.depth++
			it.ok = true
			return
		}
		i, off, before := it.t.childAtIndex(p, idx, total)
		total = countAt(p, off)
		it.path[it.depth] = struct {
			n nid
			i int
		}{n, i}
		it.depth++
		idx -= before
		n = childAt(p, off)
	}
}

// seekKey positions the iterator on the first entry >= key and reports
// whether it equals key.
func (it *titer) seekKey(root nid, key []byte) bool {
	it.depth, it.ok = 0, false
	if root == 0 {
		return false
	}
	n := root
	var pos uint64
	for {
		p := it.t.d.node(n)
		if p[0] == nodeLeaf {
			it.enterLeaf(n)
			i, _, eq := it.t.leafSeek(p, key)
			it.path[it.depth] = struct {
				n nid
				i int
			}{n, i}
			it.depth++
			it.pos = pos + uint64(i)
			if i < it.leafN {
				it.ok = true
				return eq
			}
			// Past this leaf's last entry: the next entry is the first
			// of the following leaf.
			it.path[it.depth-1].i = i - 1
			it.pos--
			it.ok = true
			it.Next()
			return false
		}
		i, off, before := it.t.childFor(p, key)
		pos += before
		it.path[it.depth] = struct {
			n nid
			i int
		}{n, i}
		it.depth++
		n = childAt(p, off)
	}
}

// Next moves to the following entry.
func (it *titer) Next() {
	if !it.ok {
		return
	}
	it.pos++
	leaf := &it.path[it.depth-1]
	if leaf.i+1 < it.leafN {
		leaf.i++
		return
	}
	// Climb to the first level with a child to the right.
	lvl := it.depth - 2
	for ; lvl >= 0; lvl-- {
		p := it.t.d.node(it.path[lvl].n)
		if it.path[lvl].i+1 < nodeCount(p) {
			break
		}
	}
	if lvl < 0 {
		it.ok = false
		return
	}
	it.path[lvl].i++
	for l := lvl; l < it.depth-1; l++ {
		c := it.t.childOf(it.t.d.node(it.path[l].n), it.path[l].i)
		it.path[l+1].n, it.path[l+1].i = c, 0
	}
	it.enterLeaf(it.path[it.depth-1].n)
}

// Prev moves to the preceding entry.
func (it *titer) Prev() {
	if !it.ok {
		return
	}
	leaf := &it.path[it.depth-1]
	if leaf.i > 0 {
		leaf.i--
		it.pos--
		return
	}
	lvl := it.depth - 2
	for ; lvl >= 0; lvl-- {
		if it.path[lvl].i > 0 {
			break
		}
	}
	if lvl < 0 {
		it.ok = false
		return
	}
	it.pos--
	it.path[lvl].i--
	for l := lvl; l < it.depth-1; l++ {
		c := it.t.childOf(it.t.d.node(it.path[l].n), it.path[l].i)
		cp := it.t.d.node(c)
		it.path[l+1].n, it.path[l+1].i = c, nodeCount(cp)-1
	}
	it.enterLeaf(it.path[it.depth-1].n)
}

// ---- writes ----

// tsplit is a node's new right sibling after a split: the node, the
// elements under it and its separator (encoded, in db.tsep).
type tsplit struct {
	right nid
	count uint64
	sep   []byte
	// left: the new node goes before the split one, not after (a list's
	// head: LPUSH into a full first node starts a node of its own).
	left bool
}

// newNode allocates an empty node of type typ (leaf or inner).
func (db *DB) newNode(typ byte) (nid, []byte) {
	class, cell := db.s.allocRaw(nodeBytes)
	if class == classLarge || cell&(nodeBytes-1) != 0 {
		panic(errors.AssertionFailedf("engine: node cell %d of class %d is not aligned", cell, class))
	}
	n := nid(cell>>nodeShift) + 1
	p := db.s.node(n)
	clear(p[:nodeHdrBytes])
	p[0] = typ
	binary.LittleEndian.PutUint64(p[8:], db.modCount)
	db.usedBytes += nodeBytes
	return n, p
}

// nodeShared reports whether a live View may read node p.
func (db *DB) nodeShared(p []byte) bool {
	return nodeVersion(p) <= db.viewVersion && db.views.Load() > 0
}

// nodeW returns node n ready to change: n itself, or a copy when a View
// may read n (the caller puts the copy in n's place in its parent).
func (db *DB) nodeW(n nid) (nid, []byte) {
	p := db.s.node(n)
	if !db.nodeShared(p) {
		binary.LittleEndian.PutUint64(p[8:], db.modCount)
		return n, p
	}
	c, cp := db.newNode(p[0])
	version := nodeVersion(cp)
	copy(cp, p) // entries and, at the end, a leaf's offset table
	binary.LittleEndian.PutUint64(cp[8:], version)
	db.s.deferredCells = append(db.s.deferredCells, nodeCell(n))
	db.usedBytes -= nodeBytes
	return c, cp
}

func nodeCell(n nid) cellRef {
	a := uint64(n-1) << nodeShift
	return cellRef{class: sizeClass(nodeBytes), cell: a}
}

// dropNode frees node n, or defers that while a View may read it.
func (db *DB) dropNode(n nid) {
	db.leafGen++ // its cell may come back as another node
	p := db.s.node(n)
	db.usedBytes -= nodeBytes
	c := nodeCell(n)
	if db.nodeShared(p) {
		db.s.deferredCells = append(db.s.deferredCells, c)
		return
	}
	db.s.freeCell(c.class, c.cell)
}

// appendField encodes v as a field onto dst, moving it to an overflow
// cell when it is long.
func (db *DB) appendField(dst, v []byte) []byte {
	if len(v) <= fieldInlineMax {
		dst = binary.AppendUvarint(dst, uint64(len(v))<<1)
		return append(dst, v...)
	}
	class, cell := db.s.allocRaw(len(v))
	copy(db.s.cellAt(class, cell), v)
	db.usedBytes += db.s.rawBytes(class, cell)
	dst = binary.AppendUvarint(dst, uint64(len(v))<<1|1)
	dst = append(dst, class)
	return binary.LittleEndian.AppendUint64(dst, cell)
}

// dropField frees the overflow cell of the field at p[o:], if it has
// one. Overflow cells never change, but an older copy of the node may
// still name this one: while any View is alive it is only deferred.
func (db *DB) dropField(p []byte, o int) {
	h, k := uvarint(p[o:])
	if h&1 == 0 {
		return
	}
	c := cellRef{class: p[o+k], cell: binary.LittleEndian.Uint64(p[o+k+1:])}
	db.usedBytes -= db.s.rawBytes(c.class, c.cell)
	if db.views.Load() > 0 {
		db.s.deferredCells = append(db.s.deferredCells, c)
		return
	}
	db.s.freeCell(c.class, c.cell)
}

// dropEntryFields frees the overflow cells of the entry at p[o:].
func (db *DB) dropEntryFields(p []byte, o int, k treeKind, leaf bool) {
	if !leaf {
		if k.keyed() {
			db.dropField(p, o+12)
		}
		return
	}
	db.dropField(p, o)
	if k.hasVal() {
		db.dropField(p, skipField(p, o))
	}
}

// encodeEntry builds a leaf entry in db.tent.
func (db *DB) encodeEntry(k treeKind, a, b []byte) []byte {
	e := db.appendField(db.tent[:0], a)
	if k.hasVal() {
		e = db.appendField(e, b)
	}
	db.tent = e
	return e
}

// encodeInner builds an inner entry in db.tent; sep is an encoded field
// (keyed trees) or nil.
func (db *DB) encodeInner(k treeKind, child nid, count uint64, sep []byte) []byte {
	e := binary.LittleEndian.AppendUint32(db.tent[:0], uint32(child))
	e = binary.LittleEndian.AppendUint64(e, count)
	if k.keyed() {
		if sep == nil {
			e = append(e, 0)
		} else {
			e = append(e, sep...)
		}
	}
	db.tent = e
	return e
}

// replaceEntry puts e in place of entry i of leaf p, at [o, end), when
// the node still fits: one move of the entries after it (none when the
// sizes are equal, as for an overwrite with a value of the same length),
// where removeEntry then insertEntry moved them twice. It reports false,
// changing nothing, when e does not fit.
func replaceEntry(p []byte, k treeKind, i, o, end int, e []byte) bool {
	used := nodeUsed(p)
	n := nodeCount(p)
	delta := len(e) - (end - o)
	if used+delta+tabBytes(p, k, n) > nodeCapBytes {
		return false
	}
	if delta != 0 {
		copy(p[o+len(e):], p[end:nodeHdrBytes+used])
		setNodeUsed(p, used+delta)
		if tabbed(p, k) {
			for j := i + 1; j < n; j++ {
				tabSet(p, j, tabGet(p, j)+delta)
			}
		}
	}
	copy(p[o:], e)
	return true
}

// removeEntry cuts entry i, [o, end), out of node p. (Callers on leaves
// bump db.leafGen.)
func removeEntry(p []byte, k treeKind, i, o, end int) {
	used := nodeUsed(p)
	n := nodeCount(p)
	copy(p[o:], p[end:nodeHdrBytes+used])
	setNodeUsed(p, used-(end-o))
	setNodeCount(p, n-1)
	if tabbed(p, k) {
		tabDelete(p, n, i, i+1, end-o)
	}
}

// insertEntry puts e at position pos (byte offset at) of node p,
// splitting p when e does not fit: the entries stay in p up to the split
// and the rest move to a new right sibling, returned. le and re say that
// p is on the tree's left or right edge, where entries arrive in order
// (LPUSH, RPUSH, a load in key order): there the split leaves the old
// entries together and the new one alone, so nodes end up full rather
// than half full.
func (db *DB) insertEntry(k treeKind, p []byte, pos, at int, e []byte, le, re bool) (tsplit, bool) {
	db.leafGen++
	used := nodeUsed(p)
	n := nodeCount(p)
	if used+len(e)+tabBytes(p, k, n+1) <= nodeCapBytes {
		copy(p[at+len(e):], p[at:nodeHdrBytes+used])
		copy(p[at:], e)
		setNodeUsed(p, used+len(e))
		setNodeCount(p, n+1)
		if tabbed(p, k) {
			tabInsert(p, n, pos, at, len(e))
		}
		return tsplit{}, false
	}
	if le && pos == 0 && !k.keyed() {
		// A positional tree's head: the new entry starts a node of its own
		// before p, which keeps its entries where they are.
		ln, lp := db.newNode(p[0])
		copy(lp[nodeHdrBytes:], e)
		setNodeUsed(lp, len(e))
		setNodeCount(lp, 1)
		count := uint64(1)
		if p[0] == nodeInner {
			count = countAt(e, 0)
		}
		return tsplit{right: ln, count: count, left: true}, true
	}
	offs := offsets(p, k, db.noffs[:0])
	db.noffs = offs
	leaf := p[0] == nodeLeaf
	// The combined entries, in db.tbuf, with their offsets (from 0).
	buf := append(db.tbuf[:0], p[nodeHdrBytes:at]...)
	buf = append(buf, e...)
	buf = append(buf, p[at:nodeHdrBytes+used]...)
	db.tbuf = buf
	coffs := db.toffs[:0]
	for j := 0; j <= n; j++ {
		switch {
		case j < pos:
			coffs = append(coffs, offs[j]-nodeHdrBytes)
		case j == pos:
			coffs = append(coffs, at-nodeHdrBytes)
		default:
			coffs = append(coffs, offs[j-1]-nodeHdrBytes+len(e))
		}
	}
	db.toffs = coffs
	total := len(buf)
	// fits says whether entries [0, s) and [s, n] each fit a node, with
	// their offset tables.
	fits := func(s int) bool {
		return coffs[s]+tabBytes(p, k, s) <= nodeCapBytes && total-coffs[s]+tabBytes(p, k, n+1-s) <= nodeCapBytes
	}
	// Split before entry s: left [0, s), right [s, n].
	s := 0
	switch {
	case re && pos == n:
		s = n
	case le && pos == 0 && leaf:
		s = 1
	case le && pos <= 1 && !leaf:
		s = pos + 1
	default:
		best := total
		for j := 1; j <= n; j++ {
			if !fits(j) {
				continue
			}
			if d := abs(2*coffs[j] - total); d < best {
				best, s = d, j
			}
		}
	}
	if s < 1 || s > n || !fits(s) {
		panic(errors.AssertionFailedf("engine: no split of a node of %d entries, %d bytes", n+1, total))
	}
	rn, rp := db.newNode(p[0])
	var sp tsplit
	sp.right = rn
	if leaf {
		if k.keyed() {
			// Separator: the shortest key between the left's last and
			// the right's first.
			t := tview{d: &db.s.slabDirs, kind: k}
			last, _ := t.entryAt(buf, coffs[s-1])
			first, _ := t.entryAt(buf, coffs[s])
			db.tsep = db.appendField(db.tsep[:0], separator(k, last, first))
			sp.sep = db.tsep
		}
		sp.count = uint64(n + 1 - s)
		copy(rp[nodeHdrBytes:], buf[coffs[s]:])
		setNodeUsed(rp, total-coffs[s])
		setNodeCount(rp, n+1-s)
	} else {
		for j := s; j <= n; j++ {
			sp.count += countAt(buf, coffs[j])
		}
		w := nodeHdrBytes
		if k.keyed() {
			// The right node's first separator moves up to the parent;
			// in the node it becomes the empty first separator.
			f := coffs[s]
			sepEnd := skipField(buf, f+12)
			db.tsep = append(db.tsep[:0], buf[f+12:sepEnd]...)
			sp.sep = db.tsep
			w += copy(rp[w:], buf[f:f+12])
			rp[w] = 0
			w++
			w += copy(rp[w:], buf[sepEnd:])
		} else {
			w += copy(rp[w:], buf[coffs[s]:])
		}
		setNodeUsed(rp, w-nodeHdrBytes)
		setNodeCount(rp, n+1-s)
	}
	copy(p[nodeHdrBytes:], buf[:coffs[s]])
	setNodeUsed(p, coffs[s])
	setNodeCount(p, s)
	rebuildTab(p, k)
	rebuildTab(rp, k)
	return sp, true
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// separator is the shortest key s with last < s <= first.
func separator(k treeKind, last, first []byte) []byte {
	if k == tkZScore {
		if cmpScoreKey(last[:8:8], first[:8:8]) < 0 {
			return first[:8]
		}
		return first[:8+lcp(last[8:], first[8:])+1]
	}
	return first[:lcp(last, first)+1]
}

func lcp(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// growRoot makes a new root over the old one (left, with left elements)
// and its split sibling.
func (db *DB) growRoot(k treeKind, left nid, leftCount uint64, sp tsplit) nid {
	r, p := db.newNode(nodeInner)
	if sp.left {
		// A new head node (positional trees only): it comes first.
		left, sp.right = sp.right, left
		leftCount, sp.count = sp.count, leftCount
	}
	e := db.encodeInner(k, left, leftCount, nil)
	w := nodeHdrBytes + copy(p[nodeHdrBytes:], e)
	e = db.encodeInner(k, sp.right, sp.count, sp.sep)
	w += copy(p[w:], e)
	setNodeUsed(p, w-nodeHdrBytes)
	setNodeCount(p, 2)
	rebuildTab(p, k)
	return r
}

// newLeafWith makes a one-entry leaf.
func (db *DB) newLeafWith(k treeKind, e []byte) nid {
	n, p := db.newNode(nodeLeaf)
	copy(p[nodeHdrBytes:], e)
	setNodeUsed(p, len(e))
	setNodeCount(p, 1)
	rebuildTab(p, k)
	return n
}

// tput inserts (a, b) into keyed tree t, replacing the value of an equal
// key; it reports whether the key is new.
func (db *DB) tput(t *troot, k treeKind, a, b []byte) bool {
	if !k.hasVal() && t.root != 0 && db.views.Load() > 0 {
		// A key already there is a no-op (SADD of a member the set
		// has), but the descent below copies every node a View shares:
		// the new root would be the caller's to save, and a caller that
		// added nothing saves nothing, leaving the key on nodes freed
		// once the View goes. Look first, without writing.
		if _, _, ok := (&tview{d: &db.s.slabDirs, kind: k}).get(t.root, a); ok {
			return false
		}
	}
	if t.root == 0 {
		t.root = db.newLeafWith(k, db.encodeEntry(k, a, b))
		t.count = 1
		return true
	}
	n, added, sp, split := db.putIn(t.root, k, a, b, true, true)
	if added {
		t.count++
	}
	if split {
		n = db.growRoot(k, n, t.count-sp.count, sp)
	}
	t.root = n
	return added
}

func (db *DB) putIn(n nid, k treeKind, a, b []byte, le, re bool) (nid, bool, tsplit, bool) {
	n, p := db.nodeW(n)
	if p[0] == nodeLeaf {
		t := tview{d: &db.s.slabDirs, kind: k}
		pos, at, eq := t.leafSeek(p, a)
		if eq && !k.hasVal() {
			// The entry is the key alone: putting it again changes
			// nothing (SADD of a member already there).
			return n, false, tsplit{}, false
		}
		if eq {
			db.leafGen++
			end := entryEnd(p, at, k, true)
			if db.zprevOn {
				_, old := t.entryAt(p, at)
				copy(db.zprev[:], old)
			}
			db.dropEntryFields(p, at, k, true)
			e := db.encodeEntry(k, a, b)
			if replaceEntry(p, k, pos, at, end, e) {
				return n, false, tsplit{}, false
			}
			removeEntry(p, k, pos, at, end)
			sp, split := db.insertEntry(k, p, pos, at, e, le, re)
			return n, false, sp, split
		}
		e := db.encodeEntry(k, a, b)
		sp, split := db.insertEntry(k, p, pos, at, e, le, re)
		return n, !eq, sp, split
	}
	t := tview{d: &db.s.slabDirs, kind: k}
	i, off := t.childIndexFor(p, a)
	last := nodeCount(p) - 1
	c, added, csp, csplit := db.putIn(childAt(p, off), k, a, b, le && i == 0, re && i == last)
	setChildAt(p, off, c)
	cnt := countAt(p, off)
	if added {
		cnt++
	}
	if !csplit {
		setCountAt(p, off, cnt)
		return n, added, tsplit{}, false
	}
	setCountAt(p, off, cnt-csp.count)
	e := db.encodeInner(k, csp.right, csp.count, csp.sep)
	sp, split := db.insertEntry(k, p, i+1, entryEnd(p, off, k, false), e, le, re)
	return n, added, sp, split
}

// tinsertAt inserts a at position idx (0..count) of positional tree t.
func (db *DB) tinsertAt(t *troot, k treeKind, idx uint64, a []byte) {
	if t.root == 0 {
		t.root = db.newLeafWith(k, db.encodeEntry(k, a, nil))
		t.count = 1
		return
	}
	n, sp, split := db.insertAtIn(t.root, k, idx, t.count, a, true, true)
	t.count++
	if split {
		n = db.growRoot(k, n, t.count-sp.count, sp)
	}
	t.root = n
}

func (db *DB) insertAtIn(n nid, k treeKind, idx, total uint64, a []byte, le, re bool) (nid, tsplit, bool) {
	orig := n
	n, p := db.nodeW(n)
	if p[0] == nodeLeaf {
		e := db.encodeEntry(k, a, nil)
		count := nodeCount(p)
		tc := &db.tail
		// An append keeps the tail pops' offsets of this leaf (RPUSH then
		// RPOP), when they were current.
		keep := int(idx) == count && tc.gen == db.leafGen && tc.nid == orig && len(tc.offs) == count && tc.used == nodeUsed(p)
		at := leafOffset(p, k, int(idx))
		sp, split := db.insertEntry(k, p, int(idx), at, e, le, re)
		if keep && !split {
			tc.offs = append(tc.offs, at)
			tc.nid, tc.used, tc.gen = n, nodeUsed(p), db.leafGen
		}
		return n, sp, split
	}
	t := tview{d: &db.s.slabDirs, kind: k}
	i, off, before := t.childAtIndex(p, idx, total)
	last := nodeCount(p) - 1
	c, csp, csplit := db.insertAtIn(childAt(p, off), k, idx-before, countAt(p, off), a, le && i == 0, re && i == last)
	setChildAt(p, off, c)
	cnt := countAt(p, off) + 1
	if !csplit {
		setCountAt(p, off, cnt)
		return n, tsplit{}, false
	}
	setCountAt(p, off, cnt-csp.count)
	e := db.encodeInner(k, csp.right, csp.count, csp.sep)
	pos, at := i+1, entryEnd(p, off, k, false)
	if csp.left {
		pos, at = i, off
	}
	sp, split := db.insertEntry(k, p, pos, at, e, le, re)
	return n, sp, split
}

// leafOffset is the byte offset of entry i of leaf p (the end of the
// entries for i == its count): a walk of i entries, none for the end.
func leafOffset(p []byte, k treeKind, i int) int {
	if i >= nodeCount(p) {
		return nodeHdrBytes + nodeUsed(p)
	}
	if tabbed(p, k) {
		return tabGet(p, i)
	}
	o := nodeHdrBytes
	for ; i > 0; i-- {
		o = entryEnd(p, o, k, true)
	}
	return o
}

// tdelete removes key from keyed tree t; it reports whether it was there.
func (db *DB) tdelete(t *troot, k treeKind, key []byte) bool {
	tv := tview{d: &db.s.slabDirs, kind: k}
	if _, _, found := tv.get(t.root, key); !found {
		return false // nothing written: no node copied for a miss
	}
	n := db.deleteKeyIn(t.root, k, key)
	t.count--
	t.root = db.shrinkRoot(n, t.count)
	return true
}

// deleteKeyIn removes key, which is in the subtree n, and returns the
// subtree's node.
func (db *DB) deleteKeyIn(n nid, k treeKind, key []byte) nid {
	n, p := db.nodeW(n)
	t := tview{d: &db.s.slabDirs, kind: k}
	if p[0] == nodeLeaf {
		i, o, _ := t.leafSeek(p, key)
		db.leafGen++
		db.dropEntryFields(p, o, k, true)
		removeEntry(p, k, i, o, entryEnd(p, o, k, true))
		return n
	}
	i, off := t.childIndexFor(p, key)
	c := db.deleteKeyIn(childAt(p, off), k, key)
	setChildAt(p, off, c)
	setCountAt(p, off, countAt(p, off)-1)
	if cp := db.s.node(c); nodeCount(cp) == 0 || nodeUsed(cp) < nodeMergeBelow {
		db.fixChild(k, p, i)
	}
	return n
}

// tdeleteRange removes cnt entries from position idx of t.
func (db *DB) tdeleteRange(t *troot, k treeKind, idx, cnt uint64) {
	db.tdeleteVisit(t, k, idx, cnt, nil)
}

// tdeleteVisit is tdeleteRange calling visit (when not nil) with each
// entry just before it goes, in order: one walk reads and removes.
func (db *DB) tdeleteVisit(t *troot, k treeKind, idx, cnt uint64, visit func(a, b []byte)) {
	cnt = min(cnt, t.count-min(idx, t.count))
	for cnt > 0 {
		n, removed := db.deleteRunIn(t.root, k, idx, cnt, t.count, visit)
		t.count -= removed
		cnt -= removed
		t.root = db.shrinkRoot(n, t.count)
	}
}

// shrinkRoot drops roots that are inner nodes of one child, and the last
// (empty) leaf of an empty tree.
func (db *DB) shrinkRoot(n nid, count uint64) nid {
	for {
		p := db.s.node(n)
		if count == 0 {
			db.freeSubtree(n, tkList) // empty: no fields to free
			return 0
		}
		if p[0] == nodeLeaf || nodeCount(p) > 1 {
			return n
		}
		c := childAt(p, nodeHdrBytes)
		db.dropNode(n)
		n = c
	}
}

// deleteRunIn removes up to cnt entries starting at idx, all from the one
// leaf holding idx, and returns the subtree's node and how many it
// removed.
func (db *DB) deleteRunIn(n nid, k treeKind, idx, cnt, total uint64, visit func(a, b []byte)) (nid, uint64) {
	orig := n
	n, p := db.nodeW(n)
	if p[0] == nodeLeaf {
		from := int(idx)
		count := nodeCount(p)
		to := from + int(min(cnt, uint64(count-from)))
		tail := to == count && from > 0 && !tabbed(p, k)
		var start int
		if tail {
			// Pops at a list's tail (RPOP) would walk the whole leaf each
			// time: the offsets of the leaf last popped this way are kept
			// (db.tail) while nothing else changed a leaf since.
			tc := &db.tail
			if tc.gen != db.leafGen || tc.nid != orig || len(tc.offs) != count || tc.used != nodeUsed(p) {
				tc.offs = tc.offs[:0]
				for o, j := nodeHdrBytes, 0; j < count; j++ {
					tc.offs = append(tc.offs, o)
					o = entryEnd(p, o, k, true)
				}
			}
			start = tc.offs[from]
		} else {
			start = leafOffset(p, k, from)
		}
		db.leafGen++
		end := start
		t := tview{d: &db.s.slabDirs, kind: k}
		for j := from; j < to; j++ {
			if visit != nil {
				visit(t.entryAt(p, end))
			}
			db.dropEntryFields(p, end, k, true)
			end = entryEnd(p, end, k, true)
		}
		used := nodeUsed(p)
		copy(p[start:], p[end:nodeHdrBytes+used])
		setNodeUsed(p, used-(end-start))
		setNodeCount(p, count-(to-from))
		if tabbed(p, k) {
			tabDelete(p, count, from, to, end-start)
		}
		if tail {
			tc := &db.tail
			tc.offs = tc.offs[:from]
			tc.nid, tc.used, tc.gen = n, nodeUsed(p), db.leafGen
		}
		return n, uint64(to - from)
	}
	t := tview{d: &db.s.slabDirs, kind: k}
	i, off, before := t.childAtIndex(p, idx, total)
	c, removed := db.deleteRunIn(childAt(p, off), k, idx-before, cnt, countAt(p, off), visit)
	setChildAt(p, off, c)
	setCountAt(p, off, countAt(p, off)-removed)
	if cp := db.s.node(c); nodeCount(cp) == 0 || nodeUsed(cp) < nodeMergeBelow {
		db.fixChild(k, p, i)
	}
	return n, removed
}

// fixChild repairs child i of inner node p after removals: an empty child
// goes, and a child under nodeMergeBelow bytes is merged with a neighbour
// when both fit in one node.
func (db *DB) fixChild(k treeKind, p []byte, i int) {
	offs := offsets(p, k, db.foffs[:0])
	db.foffs = offs
	off := offs[i]
	c := childAt(p, off)
	cp := db.s.node(c)
	if nodeCount(cp) == 0 {
		db.dropNode(c)
		db.removeInner(k, p, offs, i)
		return
	}
	if nodeUsed(cp) >= nodeMergeBelow || len(offs) < 2 {
		return
	}
	l := i - 1
	if l < 0 {
		l = i
	}
	r := l + 1
	if r >= len(offs) {
		return
	}
	lc, rc := childAt(p, offs[l]), childAt(p, offs[r])
	lp, rp := db.s.node(lc), db.s.node(rc)
	leaf := lp[0] == nodeLeaf
	need := nodeUsed(lp) + nodeUsed(rp) + tabBytes(lp, k, nodeCount(lp)+nodeCount(rp))
	var sepEnc []byte
	if !leaf && k.keyed() {
		// The parent's separator of r comes down as r's first separator
		// (which is empty: one byte).
		sepEnc = p[offs[r]+12 : skipField(p, offs[r]+12)]
		need += len(sepEnc) - 1
	}
	if need > nodeCapBytes {
		return
	}
	db.leafGen++
	lc, lp = db.nodeW(lc)
	setChildAt(p, offs[l], lc)
	w := nodeHdrBytes + nodeUsed(lp)
	rpay := payload(rp)
	if !leaf && k.keyed() {
		w += copy(lp[w:], rpay[:12])
		w += copy(lp[w:], sepEnc)
		w += copy(lp[w:], rpay[13:])
	} else {
		w += copy(lp[w:], rpay)
	}
	setNodeUsed(lp, w-nodeHdrBytes)
	setNodeCount(lp, nodeCount(lp)+nodeCount(rp))
	rebuildTab(lp, k)
	setCountAt(p, offs[l], countAt(p, offs[l])+countAt(p, offs[r]))
	db.dropNode(rc)
	// r's separator moved into l: remove r's entry without freeing it.
	used := nodeUsed(p)
	end := entryEnd(p, offs[r], k, false)
	copy(p[offs[r]:], p[end:nodeHdrBytes+used])
	setNodeUsed(p, used-(end-offs[r]))
	setNodeCount(p, len(offs)-1)
	if tabbed(p, k) {
		tabDelete(p, len(offs), r, r+1, end-offs[r])
	}
}

// removeInner removes entry i of inner node p (its child already gone),
// freeing its separator; when the first entry goes, the new first one's
// separator is emptied.
func (db *DB) removeInner(k treeKind, p []byte, offs []int, i int) {
	db.dropEntryFields(p, offs[i], k, false)
	removeEntry(p, k, i, offs[i], entryEnd(p, offs[i], k, false))
	if i == 0 && k.keyed() && nodeCount(p) > 0 {
		o := nodeHdrBytes
		end := skipField(p, o+12)
		if end != o+13 {
			db.dropField(p, o+12)
			used := nodeUsed(p)
			p[o+12] = 0
			copy(p[o+13:], p[end:nodeHdrBytes+used])
			setNodeUsed(p, used-(end-(o+13)))
			rebuildTab(p, k)
		}
	}
}

// freeSubtree frees a subtree's nodes and overflow cells.
func (db *DB) freeSubtree(n nid, k treeKind) {
	p := db.s.node(n)
	leaf := p[0] == nodeLeaf
	offs := offsets(p, k, nil)
	for _, o := range offs {
		db.dropEntryFields(p, o, k, leaf)
		if !leaf {
			db.freeSubtree(childAt(p, o), k)
		}
	}
	db.dropNode(n)
}

// tfree frees a whole tree.
func (db *DB) tfree(t *troot, k treeKind) {
	if t.root != 0 {
		db.freeSubtree(t.root, k)
	}
	*t = troot{}
}

// tclone copies a tree (COPY): new nodes and overflow cells, the same
// entries.
func (db *DB) tclone(t troot, k treeKind) troot {
	if t.root == 0 {
		return t
	}
	return troot{root: db.cloneSubtree(t.root, k), count: t.count}
}

func (db *DB) cloneSubtree(n nid, k treeKind) nid {
	src := db.s.node(n)
	leaf := src[0] == nodeLeaf
	c, cp := db.newNode(src[0])
	offs := offsets(src, k, nil)
	w := nodeHdrBytes
	for j, o := range offs {
		end := entryEnd(src, o, k, leaf)
		if !leaf {
			child := db.cloneSubtree(childAt(src, o), k)
			src, cp = db.s.node(n), db.s.node(c)
			w += copy(cp[w:], binary.LittleEndian.AppendUint32(nil, uint32(child)))
			w += copy(cp[w:], src[o+4:o+12])
			o += 12
			if !k.keyed() {
				continue
			}
			if j == 0 {
				cp[w] = 0
				w++
				continue
			}
		}
		// Copy fields, duplicating overflow cells.
		for o < end {
			next := skipField(src, o)
			h, _ := uvarint(src[o:])
			if h&1 == 0 {
				w += copy(cp[w:], src[o:next])
			} else {
				v, _ := db.s.field(src, o)
				db.tent = db.appendField(db.tent[:0], v)
				src, cp = db.s.node(n), db.s.node(c)
				w += copy(cp[w:], db.tent)
			}
			o = next
		}
	}
	setNodeUsed(cp, w-nodeHdrBytes)
	setNodeCount(cp, len(offs))
	rebuildTab(cp, k)
	return c
}
