package engine

import (
	"encoding/binary"
	"math"
	"strconv"
)

// A set is, as in Redis 7.2: an intset while every member is an integer
// (Redis's string2ll) and there are at most setMaxIntsetEntries; a pack of
// members in insertion order (listpack) while at most
// setMaxListpackEntries of at most setMaxListpackValue bytes; a tree of
// members in byte order (hashtable) past either. It never goes back.

var (
	emptyIntset  = []byte{encIntset, 2, 0, 0}
	emptySetPack = []byte{encListpackSet, 0, 0}
)

// intsetLen is an intset's member count.
func intsetLen(v []byte) int { return int(binary.LittleEndian.Uint16(v[2:])) }

// intsetDecode reads one member of width len(b).
func intsetDecode(b []byte) int64 {
	switch len(b) {
	case 2:
		return int64(int16(binary.LittleEndian.Uint16(b)))
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(b)))
	}
	return int64(binary.LittleEndian.Uint64(b))
}

// intsetAt is the i-th member (ascending) of intset v.
func intsetAt(v []byte, i int) int64 {
	width := int(v[1])
	o := intsetHdrBytes + i*width
	return intsetDecode(v[o : o+width])
}

// intsetFind returns where x is or would go in intset v.
func intsetFind(v []byte, x int64) (int, bool) {
	lo, hi := 0, intsetLen(v)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if intsetAt(v, m) < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < intsetLen(v) && intsetAt(v, lo) == x
}

// intsetWidth is the bytes Redis's intset needs for x.
func intsetWidth(x int64) int {
	switch {
	case x >= math.MinInt16 && x <= math.MaxInt16:
		return 2
	case x >= math.MinInt32 && x <= math.MaxInt32:
		return 4
	}
	return 8
}

func appendIntsetInt(dst []byte, x int64, width int) []byte {
	switch width {
	case 2:
		return binary.LittleEndian.AppendUint16(dst, uint16(x))
	case 4:
		return binary.LittleEndian.AppendUint32(dst, uint32(x))
	}
	return binary.LittleEndian.AppendUint64(dst, uint64(x))
}

// intsetInsert returns v with x inserted at pos, widening every member if
// x needs it (Redis's upgrade), built in dst.
func intsetInsert(dst, v []byte, pos int, x int64) []byte {
	n := intsetLen(v)
	width := max(int(v[1]), intsetWidth(x))
	dst = append(dst[:0], encIntset, byte(width), 0, 0)
	binary.LittleEndian.PutUint16(dst[2:], uint16(n+1))
	for i := 0; i < n; i++ {
		if i == pos {
			dst = appendIntsetInt(dst, x, width)
		}
		dst = appendIntsetInt(dst, intsetAt(v, i), width)
	}
	if pos == n {
		dst = appendIntsetInt(dst, x, width)
	}
	return dst
}

// setBuf is a set value being changed: a pack (intset or listpack) in a
// buffer of its own, or a tree. Commands load a key's value into one,
// change it, and store it back; set operations build their result in one
// before it becomes a key's value or a reply.
type setBuf struct {
	pack []byte
	tree troot
	enc  byte
}

func (s *setBuf) len() uint64 {
	switch s.enc {
	case encIntset:
		return uint64(intsetLen(s.pack))
	case encListpackSet:
		return uint64(packCount(s.pack))
	}
	return s.tree.count
}

// setLoad reads set r into s, copying a pack into buf.
func (db *DB) setLoad(r ref, buf []byte) setBuf {
	v := db.valOf(r)
	if v[0] == encHashtableSet {
		return setBuf{enc: encHashtableSet, tree: treeRoot(v)}
	}
	return setBuf{enc: v[0], pack: append(buf[:0], v...)}
}

// setValueOf is the value bytes of s (a pack, or a header in db.hdr).
func (db *DB) setValueOf(s *setBuf) []byte {
	if s.enc == encHashtableSet {
		return db.treeHeader(encHashtableSet, s.tree)
	}
	return s.pack
}

// setEmpty is an empty set of the encoding Redis's setTypeCreate picks
// for a first member first and about sizeHint members.
func setEmpty(first []byte, sizeHint int, buf []byte) setBuf {
	if _, ok := parseInt(first); ok && sizeHint <= setMaxIntsetEntries {
		return setBuf{enc: encIntset, pack: append(buf[:0], emptyIntset...)}
	}
	if sizeHint <= setMaxListpackEntries {
		return setBuf{enc: encListpackSet, pack: append(buf[:0], emptySetPack...)}
	}
	return setBuf{enc: encHashtableSet}
}

// setMaybeConvert is Redis's setTypeMaybeConvert before adding about
// sizeHint members: a pack too small for them becomes a tree at once.
func (db *DB) setMaybeConvert(s *setBuf, sizeHint int) {
	if (s.enc == encListpackSet && sizeHint > setMaxListpackEntries) ||
		(s.enc == encIntset && sizeHint > setMaxIntsetEntries) {
		db.setToTree(s)
	}
}

// setToTree turns a pack set into a tree.
func (db *DB) setToTree(s *setBuf) {
	var t troot
	db.setPackEach(s.pack, func(m []byte) bool {
		db.tput(&t, tkSet, m, nil)
		return true
	})
	*s = setBuf{enc: encHashtableSet, tree: t}
}

// setPackEach calls fn for each member of a pack set (intset members
// formatted in a scratch buffer, valid during the call).
func (db *DB) setPackEach(v []byte, fn func(m []byte) bool) {
	var num [24]byte
	if v[0] == encIntset {
		for i, n := 0, intsetLen(v); i < n; i++ {
			if !fn(strconv.AppendInt(num[:0], intsetAt(v, i), 10)) {
				return
			}
		}
		return
	}
	for o := packHdrBytes; o < len(v); {
		m, next := packField(v, o)
		if !fn(m) {
			return
		}
		o = next
	}
}

// setPackFind returns the offset of m's entry in listpack set v, or -1,
// and the offset after it.
func setPackFind(v, m []byte) (int, int) {
	for o := packHdrBytes; o < len(v); {
		e, next := packField(v, o)
		if string(e) == string(m) {
			return o, next
		}
		o = next
	}
	return -1, 0
}

// setHas reports whether set value v holds m.
func (db *DB) setHas(v, m []byte) bool {
	switch v[0] {
	case encIntset:
		x, ok := parseInt(m)
		if !ok {
			return false
		}
		_, found := intsetFind(v, x)
		return found
	case encListpackSet:
		o, _ := setPackFind(v, m)
		return o >= 0
	}
	t := tview{d: &db.s.slabDirs, kind: tkSet}
	_, _, ok := t.get(treeRoot(v).root, m)
	return ok
}

// setAdd adds m to s with Redis 7.2's conversions (setTypeAddAux) and
// reports whether it is new.
func (db *DB) setAdd(s *setBuf, m []byte) bool {
	switch s.enc {
	case encHashtableSet:
		return db.tput(&s.tree, tkSet, m, nil)
	case encListpackSet:
		if o, _ := setPackFind(s.pack, m); o >= 0 {
			return false
		}
		if n := packCount(s.pack); n < setMaxListpackEntries && len(m) <= setMaxListpackValue {
			s.pack = appendPackField(s.pack, m)
			setPackCount(s.pack, n+1)
			return true
		}
		db.setToTree(s)
		return db.tput(&s.tree, tkSet, m, nil)
	}
	if x, ok := parseInt(m); ok {
		pos, found := intsetFind(s.pack, x)
		if found {
			return false
		}
		// Built aside, then copied back: s.pack stays in the caller's buffer.
		db.setTmp = intsetInsert(db.setTmp, s.pack, pos, x)
		s.pack = append(s.pack[:0], db.setTmp...)
		if intsetLen(s.pack) > setMaxIntsetEntries {
			db.setToTree(s)
		}
		return true
	}
	// A member that is not an integer: a listpack if it would fit one (the
	// intset's members are at most 20 digits, always short enough).
	if n := intsetLen(s.pack); n < setMaxListpackEntries && len(m) <= setMaxListpackValue {
		p := append(db.setTmp[:0], emptySetPack...)
		db.setPackEach(s.pack, func(e []byte) bool {
			p = appendPackField(p, e)
			return true
		})
		p = appendPackField(p, m)
		setPackCount(p, n+1)
		db.setTmp = p
		s.pack = append(s.pack[:0], p...)
		s.enc = encListpackSet
		return true
	}
	db.setToTree(s)
	return db.tput(&s.tree, tkSet, m, nil)
}

// setRemove removes m from s and reports whether it was there.
func (db *DB) setRemove(s *setBuf, m []byte) bool {
	switch s.enc {
	case encHashtableSet:
		return db.tdelete(&s.tree, tkSet, m)
	case encListpackSet:
		o, end := setPackFind(s.pack, m)
		if o < 0 {
			return false
		}
		s.pack = append(s.pack[:o], s.pack[end:]...)
		setPackCount(s.pack, packCount(s.pack)-1)
		return true
	}
	x, ok := parseInt(m)
	if !ok {
		return false
	}
	pos, found := intsetFind(s.pack, x)
	if !found {
		return false
	}
	width := int(s.pack[1])
	o := intsetHdrBytes + pos*width
	s.pack = append(s.pack[:o], s.pack[o+width:]...)
	binary.LittleEndian.PutUint16(s.pack[2:], uint16(intsetLen(s.pack)-1))
	return true
}

// setEach calls fn for each member of set value v in its order until fn
// returns false; fn must not change the DB.
func (db *DB) setEach(v []byte, fn func(m []byte) bool) {
	if v[0] != encHashtableSet {
		db.setPackEach(v, fn)
		return
	}
	t := treeRoot(v)
	it := db.iter(tkSet)
	for it.seekIndex(t.root, t.count, 0); it.Valid(); it.Next() {
		m, _ := it.Entry()
		if !fn(m) {
			break
		}
	}
	db.doneIter(&it)
}

// setAt returns the i-th member of set value v (an intset's formatted in
// db.numBuf, valid until its next use).
func (db *DB) setAt(v []byte, i uint64) []byte {
	switch v[0] {
	case encIntset:
		return strconv.AppendInt(db.numBuf[:0], intsetAt(v, int(i)), 10)
	case encListpackSet:
		o := packHdrBytes
		for j := uint64(0); ; j++ {
			m, next := packField(v, o)
			if j == i {
				return m
			}
			o = next
		}
	}
	t := treeRoot(v)
	it := db.iter(tkSet)
	it.seekIndex(t.root, t.count, i)
	m, _ := it.Entry()
	db.doneIter(&it)
	return m
}

// setLen is a set value's member count.
func setLen(v []byte) uint64 {
	switch v[0] {
	case encIntset:
		return uint64(intsetLen(v))
	case encListpackSet:
		return uint64(packCount(v))
	}
	return treeRoot(v).count
}
