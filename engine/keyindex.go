package engine

import (
	"bytes"
	"math"
	"slices"

	"github.com/cockroachdb/errors"
)

// keyIndex is the ordered index: every key's ref in key order, for SCAN,
// KEYS, the functions' prefix scans and snapshots (a View walks a clone).
// It is a B+tree that compares inside its nodes.
//
// The cost it removes: a tree of bare refs reads a stored key for every
// comparison, through the key's record and then its cell, two dependent
// cache misses; a new key's insert into 10M keys made ~23 of those
// comparisons one after another, and was most of a new-key SET's time.
// Here each entry carries a tag, four bytes of its key, and a comparison
// reads the key itself only when the tags are equal.
//
// Which four bytes: every node knows its fences, the separators in its
// ancestors between which all its keys lie (lo inclusive, hi exclusive),
// and every key between two strings starts with their longest common
// prefix. A node's pfx is a length no longer than that prefix; its tags are
// the key bytes at [pfx, pfx+4), big-endian, zero-padded past the key's
// end. Two keys of a node whose tags differ are ordered as their tags are
// (a padding zero only ever sits where the shorter key has ended, and a
// key that ends first is the smaller); equal tags say nothing, and the
// keys themselves decide. A probe (the key of an insert, delete or seek)
// descends into the child whose fences hold it, so it shares that child's
// prefix too and its tag at pfx orders it against the child's entries.
//
// In a leaf with 10M keys of the form key:NNNNNNNNNNNN, the fences share
// all but the last few digits, so the tags are exactly the digits that
// differ: a search reads no stored key at all, and only an insert that
// splits a leaf reads the keys of the two halves (warmed together) to tag
// them at their longer prefix. The root and the tree's two outer spines
// have an infinite fence, so their pfx is 0; their comparisons fall back to
// keys more often, but they are few nodes and hot in cache.
//
// Inner nodes hold separators as strings of their own (a separator is a
// fence and must outlive the key it was copied from), cut to the shortest
// string between the two halves of the split that made them, and tagged
// the same way.
//
// Copy-on-write: a clone (for a View) shares every node; the index's gen
// then moves on, and a node whose gen is not the index's is copied before
// it changes, path by path from the root. A clone is only read.
type keyIndex struct {
	gen    uint64
	height int // 0: the root is a leaf
	leaf   *kiLeaf
	inner  *kiInner
	count  int
	// keyOf reads a stored key; warm loads the records and cells of a run
	// of refs at once before keyOf reads them one by one.
	keyOf func(ref) []byte
	warm  func([]ref)
	// lastLeaf and lastPos are where the last insert went. An insert into
	// a full leaf right after it is taken for a run of ascending keys in
	// the middle of the index (key:1000, key:1001, ... between key:100
	// and key:101) and splits there, so the run fills leaves instead of
	// leaving a trail of half-full ones behind it.
	lastLeaf *kiLeaf
	lastPos  int
	// path is the descent's scratch (kiStep), kept to allocate it once.
	path []kiStep
}

const (
	// kiLeafMax makes a leaf 512 bytes (a size class of its own).
	kiLeafMax = 62
	// kiInnerMax is an inner node's children.
	kiInnerMax = 64
	// kiMergeBelow is the size under which a node is merged with a
	// neighbour that has room for it.
	kiMergeBelow = 16
)

type kiLeaf struct {
	gen  uint64
	n    int32
	pfx  int32
	tags [kiLeafMax]uint32
	refs [kiLeafMax]ref
}

// kiInner has n children and n-1 separators: child i holds the keys k with
// seps[i-1] <= k < seps[i]. Its children are leaves when the inner node is
// at height 1 (leaves), inner nodes above (inners).
type kiInner struct {
	gen    uint64
	n      int32
	pfx    int32
	tags   [kiInnerMax - 1]uint32
	seps   [kiInnerMax - 1]string
	leaves [kiInnerMax]*kiLeaf
	inners [kiInnerMax]*kiInner
}

// kiFences are a node's fences; hiInf stands for no upper fence (a lo of
// "" is no lower fence: every key is >= "").
type kiFences struct {
	lo, hi string
	hiInf  bool
}

// pfx is the length of the prefix every key between the fences shares.
func (f kiFences) pfx() int {
	if f.hiInf {
		return 0
	}
	n := min(len(f.lo), len(f.hi))
	for i := 0; i < n; i++ {
		if f.lo[i] != f.hi[i] {
			return i
		}
	}
	return n
}

// child returns the fences of n's child i.
func (f kiFences) child(n *kiInner, i int) kiFences {
	c := f
	if i > 0 {
		c.lo = n.seps[i-1]
	}
	if i < int(n.n)-1 {
		c.hi, c.hiInf = n.seps[i], false
	}
	return c
}

// kiStep is one step of a descent: inner node n and the child i taken.
type kiStep struct {
	n *kiInner
	i int
}

// fencesAt returns the fences of the node a descent reached through path.
// They are read only when a node splits or merges: an insert that does
// neither should not touch the separators' cache lines.
func fencesAt(path []kiStep) kiFences {
	f := kiFences{hiInf: true}
	loSet, hiSet := false, false
	for j := len(path) - 1; j >= 0 && !(loSet && hiSet); j-- {
		s := path[j]
		if !loSet && s.i > 0 {
			f.lo, loSet = s.n.seps[s.i-1], true
		}
		if !hiSet && s.i < int(s.n.n)-1 {
			f.hi, f.hiInf, hiSet = s.n.seps[s.i], false, true
		}
	}
	return f
}

// merged returns the fences of n's children j and j+1 made one.
func (f kiFences) merged(n *kiInner, j int) kiFences {
	m, right := f.child(n, j), f.child(n, j+1)
	m.hi, m.hiInf = right.hi, right.hiInf
	return m
}

// kiTag is k's tag at pfx: the bytes at [pfx, pfx+4), big-endian,
// zero-padded.
func kiTag[K string | []byte](k K, pfx int) uint32 {
	if len(k) >= pfx+4 {
		return uint32(k[pfx])<<24 | uint32(k[pfx+1])<<16 | uint32(k[pfx+2])<<8 | uint32(k[pfx+3])
	}
	var t uint32
	for i := pfx; i < pfx+4; i++ {
		t <<= 8
		if i < len(k) {
			t |= uint32(k[i])
		}
	}
	return t
}

func newKeyIndex(keyOf func(ref) []byte, warm func([]ref)) *keyIndex {
	return &keyIndex{gen: 1, leaf: &kiLeaf{gen: 1}, keyOf: keyOf, warm: warm}
}

// Len is the number of keys.
func (t *keyIndex) Len() int { return t.count }

// clone returns a read-only image of the index; from now on the index
// copies a node before changing it.
func (t *keyIndex) clone() *keyIndex {
	c := &keyIndex{gen: 0, height: t.height, leaf: t.leaf, inner: t.inner, count: t.count}
	t.gen++
	return c
}

func (t *keyIndex) ownLeaf(l *kiLeaf) *kiLeaf {
	if l.gen == t.gen {
		return l
	}
	c := *l
	c.gen = t.gen
	return &c
}

func (t *keyIndex) ownInner(n *kiInner) *kiInner {
	if n.gen == t.gen {
		return n
	}
	c := *n
	c.gen = t.gen
	return &c
}

// tagRun returns the run [lo, hi) of tags equal to qt in ascending tags
// (lo = hi where qt would go when none is).
func tagRun(tags []uint32, qt uint32) (lo, hi int) {
	lo, found := slices.BinarySearch(tags, qt)
	if !found {
		return lo, lo
	}
	if qt == math.MaxUint32 {
		return lo, len(tags)
	}
	hi, _ = slices.BinarySearch(tags[lo+1:], qt+1)
	return lo, lo + 1 + hi
}

// leafSearch returns the position of key in l (found) or where it would go.
func (t *keyIndex) leafSearch(l *kiLeaf, key []byte) (int, bool) {
	a, e := tagRun(l.tags[:l.n], kiTag(key, int(l.pfx)))
	for a < e { // equal tags: first key >= key
		m := int(uint(a+e) >> 1)
		switch c := bytes.Compare(t.keyOf(l.refs[m]), key); {
		case c == 0:
			return m, true
		case c < 0:
			a = m + 1
		default:
			e = m
		}
	}
	return a, false
}

// childFor returns the child of n whose fences hold key: the first i with
// key < seps[i], or the last child.
func childFor(n *kiInner, key []byte) int {
	a, e := tagRun(n.tags[:n.n-1], kiTag(key, int(n.pfx)))
	k := bytesAsString(key)
	for a < e { // equal tags: first separator > key
		m := int(uint(a+e) >> 1)
		if n.seps[m] <= k {
			a = m + 1
		} else {
			e = m
		}
	}
	return a
}

// kiSplit is what a node that split hands its parent: the separator and
// the new right node.
type kiSplit struct {
	sep   string
	leaf  *kiLeaf
	inner *kiInner
}

// insert adds r under key, or replaces the ref of an equal key.
func (t *keyIndex) insert(r ref, key []byte) { t.add(r, key, false) }

// append adds r under key, which the caller knows is greater than every
// key in the index (a bulk load in key order): it goes to the end of the
// rightmost leaf with no comparison, and full nodes on the right edge
// split by starting an empty right sibling, so a load leaves full nodes.
func (t *keyIndex) append(r ref, key []byte) { t.add(r, key, t.count > 0) }

// add is insert, or append when last.
func (t *keyIndex) add(r ref, key []byte, last bool) {
	var sp kiSplit
	var split bool
	if t.height == 0 {
		t.leaf = t.ownLeaf(t.leaf)
		sp, split = t.addLeaf(t.leaf, r, key, nil, last)
	} else {
		t.inner = t.ownInner(t.inner)
		sp, split = t.addInner(t.inner, t.height, r, key, t.path[:0], last)
	}
	if split {
		t.growRoot(sp)
	}
}

func (t *keyIndex) addLeaf(l *kiLeaf, r ref, key []byte, path []kiStep, last bool) (kiSplit, bool) {
	if last {
		return t.appendLeaf(l, r, key, path)
	}
	return t.insertLeaf(l, r, key, path)
}

func (t *keyIndex) growRoot(sp kiSplit) {
	root := &kiInner{gen: t.gen, n: 2}
	root.seps[0] = sp.sep
	root.tags[0] = kiTag(sp.sep, 0)
	if t.height == 0 {
		root.leaves[0], root.leaves[1] = t.leaf, sp.leaf
		t.leaf = nil
	} else {
		root.inners[0], root.inners[1] = t.inner, sp.inner
	}
	t.inner = root
	t.height++
}

func (t *keyIndex) insertLeaf(l *kiLeaf, r ref, key []byte, path []kiStep) (kiSplit, bool) {
	pos, found := t.leafSearch(l, key)
	if found {
		l.refs[pos] = r
		return kiSplit{}, false
	}
	t.count++
	if l.n < kiLeafMax {
		l.put(pos, r, kiTag(key, int(l.pfx)))
		t.lastLeaf, t.lastPos = l, pos
		return kiSplit{}, false
	}
	if pos == kiLeafMax {
		return t.startRightLeaf(l, r, key, fencesAt(path)), true
	}
	f := fencesAt(path)
	// Split in half, or where a run of ascending inserts is going.
	mid := kiLeafMax / 2
	if l == t.lastLeaf && pos > t.lastPos {
		mid = pos
	}
	right := &kiLeaf{gen: t.gen, n: int32(kiLeafMax - mid), pfx: l.pfx}
	copy(right.refs[:], l.refs[mid:])
	copy(right.tags[:], l.tags[mid:])
	l.n = int32(mid)
	// The separator is the shortest string between the halves
	// (separator, tree.go): a long key is not copied whole into the inner
	// node, and the fences, and so the prefixes tags are taken after, are
	// no longer than the keys need.
	sep := string(separator(tkSet, t.keyOf(l.refs[mid-1]), t.keyOf(right.refs[0])))
	t.retagLeaf(l, kiFences{lo: f.lo, hi: sep}.pfx())
	t.retagLeaf(right, kiFences{lo: sep, hi: f.hi, hiInf: f.hiInf}.pfx())
	// A key at the cut lies between the halves' keys, on either side of
	// the separator.
	if pos < mid || (pos == mid && bytesAsString(key) < sep) {
		l.put(pos, r, kiTag(key, int(l.pfx)))
		t.lastLeaf, t.lastPos = l, pos
	} else {
		right.put(pos-mid, r, kiTag(key, int(right.pfx)))
		t.lastLeaf, t.lastPos = right, pos-mid
	}
	return kiSplit{sep: sep, leaf: right}, true
}

// startRightLeaf splits full leaf l by giving key, greater than all of
// l's keys, a leaf of its own to l's right.
func (t *keyIndex) startRightLeaf(l *kiLeaf, r ref, key []byte, f kiFences) kiSplit {
	sep := string(separator(tkSet, t.keyOf(l.refs[l.n-1]), key))
	right := &kiLeaf{gen: t.gen}
	right.pfx = int32(kiFences{lo: sep, hi: f.hi, hiInf: f.hiInf}.pfx())
	right.put(0, r, kiTag(key, int(right.pfx)))
	t.retagLeaf(l, kiFences{lo: f.lo, hi: sep}.pfx())
	t.lastLeaf, t.lastPos = right, 0
	return kiSplit{sep: sep, leaf: right}
}

func (t *keyIndex) appendLeaf(l *kiLeaf, r ref, key []byte, path []kiStep) (kiSplit, bool) {
	t.count++
	if l.n < kiLeafMax {
		l.put(int(l.n), r, kiTag(key, int(l.pfx)))
		return kiSplit{}, false
	}
	return t.startRightLeaf(l, r, key, fencesAt(path)), true
}

func (l *kiLeaf) put(pos int, r ref, tag uint32) {
	n := int(l.n)
	copy(l.refs[pos+1:n+1], l.refs[pos:n])
	copy(l.tags[pos+1:n+1], l.tags[pos:n])
	l.refs[pos], l.tags[pos] = r, tag
	l.n++
}

func (l *kiLeaf) remove(pos int) {
	n := int(l.n)
	copy(l.refs[pos:n-1], l.refs[pos+1:n])
	copy(l.tags[pos:n-1], l.tags[pos+1:n])
	l.n--
	l.refs[n-1], l.tags[n-1] = 0, 0
}

// retagLeaf sets l's pfx, reading its keys to tag them again when it
// changes.
func (t *keyIndex) retagLeaf(l *kiLeaf, pfx int) {
	if int(l.pfx) == pfx {
		return
	}
	l.pfx = int32(pfx)
	refs := l.refs[:l.n]
	for i := 0; i < len(refs); i += WarmBatchKeys {
		batch := refs[i:min(i+WarmBatchKeys, len(refs))]
		t.warm(batch)
		for j, r := range batch {
			l.tags[i+j] = kiTag(t.keyOf(r), pfx)
		}
	}
}

// retagInner sets n's pfx and tags its separators at it.
func retagInner(n *kiInner, pfx int) {
	if int(n.pfx) == pfx {
		return
	}
	n.pfx = int32(pfx)
	for i := 0; i < int(n.n)-1; i++ {
		n.tags[i] = kiTag(n.seps[i], pfx)
	}
}

// addInner adds r under key below n (height h): into the child whose
// fences hold key, or the last child when appending (last).
func (t *keyIndex) addInner(n *kiInner, h int, r ref, key []byte, path []kiStep, last bool) (kiSplit, bool) {
	i := int(n.n) - 1
	if !last {
		i = childFor(n, key)
	}
	below := append(path, kiStep{n, i})
	t.path = below[:0]
	var sp kiSplit
	var split bool
	if h == 1 {
		c := t.ownLeaf(n.leaves[i])
		n.leaves[i] = c
		sp, split = t.addLeaf(c, r, key, below, last)
	} else {
		c := t.ownInner(n.inners[i])
		n.inners[i] = c
		sp, split = t.addInner(c, h-1, r, key, below, last)
	}
	if !split {
		return kiSplit{}, false
	}
	return t.addChild(n, h, i+1, sp, path)
}

// addChild puts sp's node in n at child position pos (its separator before
// it), splitting n when it is full: in half, or, when the new child goes
// last, by starting an empty right sibling.
func (t *keyIndex) addChild(n *kiInner, h, pos int, sp kiSplit, path []kiStep) (kiSplit, bool) {
	if n.n < kiInnerMax {
		n.put(pos, sp, h)
		return kiSplit{}, false
	}
	f := fencesAt(path)
	if pos == kiInnerMax {
		right := &kiInner{gen: t.gen, n: 1}
		right.leaves[0], right.inners[0] = sp.leaf, sp.inner
		right.pfx = int32(kiFences{lo: sp.sep, hi: f.hi, hiInf: f.hiInf}.pfx())
		retagInner(n, kiFences{lo: f.lo, hi: sp.sep}.pfx())
		return kiSplit{sep: sp.sep, inner: right}, true
	}
	// Children [0, mid) stay, [mid, n) move right, and separator mid-1
	// goes up.
	const mid = kiInnerMax / 2
	up := n.seps[mid-1]
	right := &kiInner{gen: t.gen, n: kiInnerMax - mid}
	copy(right.seps[:], n.seps[mid:])
	copy(right.leaves[:], n.leaves[mid:])
	copy(right.inners[:], n.inners[mid:])
	for i := mid - 1; i < kiInnerMax-1; i++ {
		n.seps[i] = ""
	}
	for i := mid; i < kiInnerMax; i++ {
		n.leaves[i], n.inners[i] = nil, nil
	}
	n.n = mid
	n.pfx = -1 // forces the retags below
	right.pfx = -1
	retagInner(n, kiFences{lo: f.lo, hi: up}.pfx())
	retagInner(right, kiFences{lo: up, hi: f.hi, hiInf: f.hiInf}.pfx())
	if pos <= mid {
		n.put(pos, sp, h)
	} else {
		right.put(pos-mid, sp, h)
	}
	return kiSplit{sep: up, inner: right}, true
}

// put inserts child sp at position pos >= 1, its separator at pos-1.
func (n *kiInner) put(pos int, sp kiSplit, h int) {
	c := int(n.n)
	copy(n.seps[pos:c], n.seps[pos-1:c-1])
	copy(n.tags[pos:c], n.tags[pos-1:c-1])
	n.seps[pos-1], n.tags[pos-1] = sp.sep, kiTag(sp.sep, int(n.pfx))
	if h == 1 {
		copy(n.leaves[pos+1:c+1], n.leaves[pos:c])
		n.leaves[pos] = sp.leaf
	} else {
		copy(n.inners[pos+1:c+1], n.inners[pos:c])
		n.inners[pos] = sp.inner
	}
	n.n++
}

// delete removes r, whose key is key; false if it is not in the index.
func (t *keyIndex) delete(r ref, key []byte) bool {
	if t.height == 0 {
		l := t.ownLeaf(t.leaf)
		t.leaf = l
		return t.deleteLeaf(l, r, key)
	}
	t.inner = t.ownInner(t.inner)
	if !t.deleteInner(t.inner, t.height, r, key, t.path[:0]) {
		return false
	}
	// A root with one child gives way to it.
	for t.height > 0 && t.inner.n == 1 {
		if t.height == 1 {
			t.leaf = t.inner.leaves[0]
			t.inner = nil
		} else {
			t.inner = t.inner.inners[0]
		}
		t.height--
	}
	return true
}

func (t *keyIndex) deleteLeaf(l *kiLeaf, r ref, key []byte) bool {
	a, e := tagRun(l.tags[:l.n], kiTag(key, int(l.pfx)))
	for ; a < e; a++ {
		if l.refs[a] == r {
			l.remove(a)
			t.count--
			return true
		}
	}
	return false
}

func (t *keyIndex) deleteInner(n *kiInner, h int, r ref, key []byte, path []kiStep) bool {
	i := childFor(n, key)
	below := append(path, kiStep{n, i})
	t.path = below[:0]
	var size int
	if h == 1 {
		c := t.ownLeaf(n.leaves[i])
		n.leaves[i] = c
		if !t.deleteLeaf(c, r, key) {
			return false
		}
		size = int(c.n)
	} else {
		c := t.ownInner(n.inners[i])
		n.inners[i] = c
		if !t.deleteInner(c, h-1, r, key, below) {
			return false
		}
		size = int(c.n)
	}
	if size >= kiMergeBelow || n.n == 1 {
		return true
	}
	// Merge child i with a neighbour it fits into: j and j+1 become j.
	max := kiLeafMax
	if h > 1 {
		max = kiInnerMax
	}
	j := -1
	if i > 0 && t.childSize(n, h, i-1)+size <= max {
		j = i - 1
	} else if i+1 < int(n.n) && t.childSize(n, h, i+1)+size <= max {
		j = i
	}
	if j < 0 {
		return true
	}
	f := fencesAt(path)
	if h == 1 {
		t.mergeLeaves(n, j, f)
		return true
	}
	merged := f.merged(n, j)
	a, b := t.ownInner(n.inners[j]), n.inners[j+1]
	c := int(a.n)
	a.seps[c-1] = n.seps[j]
	copy(a.seps[c:], b.seps[:b.n-1])
	copy(a.leaves[c:], b.leaves[:b.n])
	copy(a.inners[c:], b.inners[:b.n])
	a.n += b.n
	a.pfx = -1
	retagInner(a, merged.pfx())
	n.inners[j] = a
	n.removeChild(j + 1)
	// An empty leaf is left only as its parent's one child (there was no
	// neighbour to merge it into); now that it has neighbours, merge it.
	if h == 2 {
		for k := 0; k < int(a.n) && a.n > 1; {
			if a.leaves[k].n > 0 {
				k++
				continue
			}
			if k == int(a.n)-1 {
				k--
			}
			t.mergeLeaves(a, k, merged)
		}
	}
	return true
}

// mergeLeaves merges leaf j+1 of n into leaf j; f are n's fences.
func (t *keyIndex) mergeLeaves(n *kiInner, j int, f kiFences) {
	merged := f.merged(n, j)
	a, b := t.ownLeaf(n.leaves[j]), n.leaves[j+1]
	// The merged leaf's fences are wider: tag at their prefix, which is
	// no longer than either's.
	pfx := merged.pfx()
	t.retagLeaf(a, pfx)
	base := int(a.n)
	copy(a.refs[base:], b.refs[:b.n])
	a.n += b.n
	if int(b.pfx) == pfx {
		copy(a.tags[base:], b.tags[:b.n])
	} else {
		refs := a.refs[base:a.n]
		t.warm(refs)
		for k, rr := range refs {
			a.tags[base+k] = kiTag(t.keyOf(rr), pfx)
		}
	}
	n.leaves[j] = a
	n.removeChild(j + 1)
}

func (t *keyIndex) childSize(n *kiInner, h, i int) int {
	if h == 1 {
		return int(n.leaves[i].n)
	}
	return int(n.inners[i].n)
}

// removeChild drops child i >= 1 and the separator before it.
func (n *kiInner) removeChild(i int) {
	c := int(n.n)
	copy(n.seps[i-1:c-2], n.seps[i:c-1])
	copy(n.tags[i-1:c-2], n.tags[i:c-1])
	n.seps[c-2], n.tags[c-2] = "", 0
	copy(n.leaves[i:c-1], n.leaves[i+1:c])
	copy(n.inners[i:c-1], n.inners[i+1:c])
	n.leaves[c-1], n.inners[c-1] = nil, nil
	n.n--
}

// max returns the greatest key's ref.
func (t *keyIndex) max() (ref, bool) {
	if t.height == 0 {
		if t.leaf.n == 0 {
			return 0, false
		}
		return t.leaf.refs[t.leaf.n-1], true
	}
	return maxIn(t.inner, t.height)
}

// maxIn is max under n. A leaf can be empty when it is its parent's only
// child (deleteInner merges only into a neighbour with room), so it looks
// further left when the last leaf is.
func maxIn(n *kiInner, h int) (ref, bool) {
	for i := int(n.n) - 1; i >= 0; i-- {
		if h == 1 {
			if l := n.leaves[i]; l.n > 0 {
				return l.refs[l.n-1], true
			}
		} else if r, ok := maxIn(n.inners[i], h-1); ok {
			return r, true
		}
	}
	return 0, false
}

// ascendLeaves calls fn with each leaf's refs in key order until it
// returns false.
func (t *keyIndex) ascendLeaves(fn func(refs []ref) bool) {
	if t.height == 0 {
		if t.leaf.n > 0 {
			fn(t.leaf.refs[:t.leaf.n])
		}
		return
	}
	ascendInner(t.inner, t.height, 0, fn)
}

// ascend calls fn with each ref in key order until it returns false.
func (t *keyIndex) ascend(fn func(r ref) bool) {
	t.ascendLeaves(func(refs []ref) bool {
		for _, r := range refs {
			if !fn(r) {
				return false
			}
		}
		return true
	})
}

func ascendInner(n *kiInner, h, from int, fn func(refs []ref) bool) bool {
	for i := from; i < int(n.n); i++ {
		if h == 1 {
			l := n.leaves[i]
			if l.n > 0 && !fn(l.refs[:l.n]) {
				return false
			}
		} else if !ascendInner(n.inners[i], h-1, 0, fn) {
			return false
		}
	}
	return true
}

// seek calls fn with each ref from the first key >= key in key order
// until it returns false.
func (t *keyIndex) seek(key []byte, fn func(r ref) bool) {
	each := func(refs []ref) bool {
		for _, r := range refs {
			if !fn(r) {
				return false
			}
		}
		return true
	}
	if t.height == 0 {
		pos, _ := t.leafSearch(t.leaf, key)
		each(t.leaf.refs[pos:t.leaf.n])
		return
	}
	t.seekInner(t.inner, t.height, key, each)
}

func (t *keyIndex) seekInner(n *kiInner, h int, key []byte, fn func(refs []ref) bool) bool {
	i := childFor(n, key)
	if h == 1 {
		l := n.leaves[i]
		pos, _ := t.leafSearch(l, key)
		if !fn(l.refs[pos:l.n]) {
			return false
		}
	} else if !t.seekInner(n.inners[i], h-1, key, fn) {
		return false
	}
	return ascendInner(n, h, i+1, fn)
}

// nodeBytes is the memory the index's nodes and separators take
// (TestKeyIndexBytesPerKey holds treeBytesPerKey to it).
func (t *keyIndex) nodeBytes() int64 {
	if t.height == 0 {
		return kiLeafBytes
	}
	return innerBytes(t.inner, t.height)
}

const (
	kiLeafBytes  = 512
	kiInnerBytes = 2304
)

func innerBytes(n *kiInner, h int) int64 {
	b := int64(kiInnerBytes)
	for i := 0; i < int(n.n)-1; i++ {
		b += int64(len(n.seps[i]))
	}
	for i := 0; i < int(n.n); i++ {
		if h == 1 {
			b += kiLeafBytes
		} else {
			b += innerBytes(n.inners[i], h-1)
		}
	}
	return b
}

// check verifies the index's invariants (tests): keys strictly ascending
// and inside their fences, every pfx within its fences' common prefix,
// every tag right, no empty node but a lone leaf, and the count.
func (t *keyIndex) check() error {
	f := kiFences{hiInf: true}
	var last []byte
	seen := 0
	var err error
	// lone: the node is the root or its parent's only child, the one
	// place an empty leaf or an inner node with one child may be.
	var walk func(h int, n *kiInner, l *kiLeaf, f kiFences, lone bool)
	walk = func(h int, n *kiInner, l *kiLeaf, f kiFences, lone bool) {
		if err != nil {
			return
		}
		if h == 0 {
			if l.n == 0 && !lone {
				err = errors.Newf("empty leaf")
				return
			}
			if int(l.pfx) > f.pfx() {
				err = errors.Newf("leaf pfx %d beyond its fences' %d", l.pfx, f.pfx())
				return
			}
			for i := 0; i < int(l.n); i++ {
				k := t.keyOf(l.refs[i])
				if kiTag(k, int(l.pfx)) != l.tags[i] {
					err = errors.Newf("leaf tag of %q wrong", k)
					return
				}
				if bytesAsString(k) < f.lo || (!f.hiInf && bytesAsString(k) >= f.hi) {
					err = errors.Newf("key %q outside its fences [%q, %q)", k, f.lo, f.hi)
					return
				}
				if seen > 0 && bytes.Compare(last, k) >= 0 {
					err = errors.Newf("keys out of order: %q then %q", last, k)
					return
				}
				last = append(last[:0], k...)
				seen++
			}
			return
		}
		if n.n == 0 || (n.n == 1 && h == t.height) {
			err = errors.Newf("inner node with %d children", n.n)
			return
		}
		if int(n.pfx) > f.pfx() {
			err = errors.Newf("inner pfx %d beyond its fences' %d", n.pfx, f.pfx())
			return
		}
		for i := 0; i < int(n.n)-1; i++ {
			if kiTag(n.seps[i], int(n.pfx)) != n.tags[i] {
				err = errors.Newf("separator tag of %q wrong", n.seps[i])
				return
			}
			if i > 0 && n.seps[i-1] >= n.seps[i] {
				err = errors.Newf("separators out of order")
				return
			}
			if n.seps[i] < f.lo || (!f.hiInf && n.seps[i] >= f.hi) {
				err = errors.Newf("separator %q outside its fences", n.seps[i])
				return
			}
		}
		for i := 0; i < int(n.n); i++ {
			if h == 1 {
				walk(0, nil, n.leaves[i], f.child(n, i), n.n == 1)
			} else {
				walk(h-1, n.inners[i], nil, f.child(n, i), n.n == 1)
			}
		}
	}
	walk(t.height, t.inner, t.leaf, f, true)
	if err == nil && seen != t.count {
		err = errors.Newf("count %d, %d keys in the leaves", t.count, seen)
	}
	return err
}
