package engine

import (
	"encoding/binary"
)

// A list is a pack of elements ([enc][u16 count][u32 lpBytes][entries])
// while Redis 7.2 would keep it in one listpack: until a push would take
// Redis's listpack past 8 KiB (list-max-listpack-size -2; lpBytes is that
// listpack's size, computed with Redis's entry sizes). Then it is a tree
// of elements in order ("quicklist"), which goes back to a pack when a
// removal leaves it under half the limit (Redis does so when its
// quicklist has one node left; keel, lacking Redis's nodes, when the
// listpack size is under 4 KiB).

var emptyListPack = []byte{encListpackList, 0, 0, lpHeaderBytes, 0, 0, 0}

// lpHeaderBytes is a Redis listpack's header and end byte.
const lpHeaderBytes = 7

// lpEntryBytes is the size of s as an entry of a Redis listpack:
// encoding, data and back-length, integers encoded as integers.
func lpEntryBytes(s []byte) int {
	n := 0
	if len(s) <= 20 {
		if v, ok := parseInt(s); ok {
			switch {
			case v >= 0 && v <= 127:
				n = 1
			case v >= -4096 && v <= 4095:
				n = 2
			case v >= -1<<15 && v < 1<<15:
				n = 3
			case v >= -1<<23 && v < 1<<23:
				n = 4
			case v >= -1<<31 && v < 1<<31:
				n = 5
			default:
				n = 9
			}
			return n + 1
		}
	}
	switch l := len(s); {
	case l < 64:
		n = 1 + l
	case l < 4096:
		n = 2 + l
	default:
		n = 5 + l
	}
	switch {
	case n <= 127:
		return n + 1
	case n < 16383:
		return n + 2
	case n < 2097151:
		return n + 3
	case n < 268435455:
		return n + 4
	}
	return n + 5
}

func listPackLPBytes(v []byte) uint64 { return uint64(binary.LittleEndian.Uint32(v[3:])) }
func setListPackLPBytes(v []byte, n uint64) {
	binary.LittleEndian.PutUint32(v[3:], uint32(n))
}

// listLPBytes is Redis's listpack size of list r (an estimate for a
// quicklist).
func (db *DB) listLPBytes(r ref) uint64 {
	v := db.valOf(r)
	if v[0] == encListpackList {
		return listPackLPBytes(v)
	}
	return binary.LittleEndian.Uint64(v[13:])
}

// listTree reads a quicklist header.
func listTree(v []byte) (troot, uint64) {
	return treeRoot(v), binary.LittleEndian.Uint64(v[13:])
}

// putListTree writes a quicklist header's tree and size estimate.
func putListTree(v []byte, t troot, lp uint64) {
	putTreeRoot(v, t)
	binary.LittleEndian.PutUint64(v[13:], lp)
}

// packOffsets appends the offsets of the one-field entries of pack v
// (from start) to dst.
func packOffsets(v []byte, start int, dst []int) []int {
	dst = dst[:0]
	for o := start; o < len(v); {
		dst = append(dst, o)
		n, k := uvarint(v[o:])
		o += k + int(n)
	}
	return dst
}

// listTryGrow is Redis's listTypeTryConvertListpack before adding
// elements whose lengths add up to addBytes: a pack that would pass
// listMaxListpackBytes becomes a tree.
func (db *DB) listTryGrow(r ref, addBytes, addCount int) {
	v := db.valOf(r)
	if v[0] != encListpackList {
		return
	}
	if listPackLPBytes(v)+uint64(addBytes) > listMaxListpackBytes || packCount(v)+addCount > listPackCountMax {
		db.listToTree(r)
	}
}

// listToTree turns pack list r (writable) into a tree.
func (db *DB) listToTree(r ref) {
	v := db.valOf(r)
	lp := listPackLPBytes(v)
	var t troot
	for o := listPackHdrBytes; o < len(v); {
		e, next := packField(v, o)
		db.tinsertAt(&t, tkList, t.count, e)
		o = next
	}
	h := db.hdr[:quickHdrBytes]
	h[0] = encQuicklist
	putListTree(h, t, lp)
	db.setValue(r, h)
}

// listTryShrink is Redis's conversion after removals: a tree list whose
// listpack would be at most half the limit becomes a pack again.
func (db *DB) listTryShrink(r ref) {
	v := db.valOf(r)
	if v[0] != encQuicklist {
		return
	}
	t, lp := listTree(v)
	if lp > listMaxListpackBytes/2 || t.count > listPackCountMax {
		return
	}
	p := append(db.pack[:0], emptyListPack...)
	it := db.iter(tkList)
	for it.seekIndex(t.root, t.count, 0); it.Valid(); it.Next() {
		e, _ := it.Entry()
		p = appendPackField(p, e)
	}
	db.doneIter(&it)
	setPackCount(p, int(t.count))
	setListPackLPBytes(p, lp)
	db.pack = p
	db.tfree(&t, tkList)
	db.setValue(r, p)
}

// listPush adds elems at the head (LPUSH: each in turn, so they end up
// reversed) or the tail of list r (writable), converting first as Redis
// does.
func (db *DB) listPush(r ref, head bool, elems [][]byte) {
	add := 0
	for _, e := range elems {
		add += len(e)
	}
	db.listTryGrow(r, add, len(elems))
	v := db.valOf(r)
	if v[0] == encListpackList {
		lp := listPackLPBytes(v)
		p := append(db.pack[:0], v[:listPackHdrBytes]...)
		if head {
			for i := len(elems) - 1; i >= 0; i-- {
				p = appendPackField(p, elems[i])
			}
			p = append(p, v[listPackHdrBytes:]...)
		} else {
			p = append(p, v[listPackHdrBytes:]...)
			for _, e := range elems {
				p = appendPackField(p, e)
			}
		}
		for _, e := range elems {
			lp += uint64(lpEntryBytes(e))
		}
		setPackCount(p, packCount(v)+len(elems))
		setListPackLPBytes(p, lp)
		db.pack = p
		db.setValue(r, p)
		return
	}
	t, lp := listTree(v)
	for _, e := range elems {
		idx := t.count
		if head {
			idx = 0
		}
		db.tinsertAt(&t, tkList, idx, e)
		lp += uint64(lpEntryBytes(e))
	}
	putListTree(db.valOf(r), t, lp)
}

// listAt returns element idx (0 <= idx < length) of list r.
func (db *DB) listAt(r ref, idx uint64) []byte {
	v := db.valOf(r)
	if v[0] == encListpackList {
		o := listPackHdrBytes
		for i := uint64(0); ; i++ {
			e, next := packField(v, o)
			if i == idx {
				return e
			}
			o = next
		}
	}
	t, _ := listTree(v)
	it := db.iter(tkList)
	it.seekIndex(t.root, t.count, idx)
	e, _ := it.Entry()
	db.doneIter(&it)
	return e
}

// listDelete removes n elements from position idx of list r (writable).
func (db *DB) listDelete(r ref, idx, n uint64) { db.listDeleteVisit(r, idx, n, nil) }

// listDeleteVisit is listDelete calling visit (when not nil) with each
// element just before it goes: a pop reads and removes in one walk.
func (db *DB) listDeleteVisit(r ref, idx, n uint64, visit func(e []byte)) {
	if n == 0 {
		return
	}
	v := db.valOf(r)
	if v[0] == encListpackList {
		offs := packOffsets(v, listPackHdrBytes, db.toffs)
		db.toffs = offs
		from := offs[idx]
		to := len(v)
		if idx+n < uint64(len(offs)) {
			to = offs[idx+n]
		}
		lp := listPackLPBytes(v)
		for o := from; o < to; {
			e, next := packField(v, o)
			if visit != nil {
				visit(e)
			}
			lp -= uint64(lpEntryBytes(e))
			o = next
		}
		p := append(db.pack[:0], v[:from]...)
		p = append(p, v[to:]...)
		setPackCount(p, len(offs)-int(n))
		setListPackLPBytes(p, lp)
		db.pack = p
		db.setValue(r, p)
		return
	}
	t, lp := listTree(v)
	db.tdeleteVisit(&t, tkList, idx, n, func(e, _ []byte) {
		if visit != nil {
			visit(e)
		}
		lp -= uint64(lpEntryBytes(e))
	})
	putListTree(db.valOf(r), t, lp)
}

// listInsert puts e at position idx (0..length) of list r (writable);
// the caller has run listTryGrow.
func (db *DB) listInsert(r ref, idx uint64, e []byte) {
	v := db.valOf(r)
	if v[0] == encListpackList {
		at := len(v)
		if idx < uint64(packCount(v)) {
			offs := packOffsets(v, listPackHdrBytes, db.toffs)
			db.toffs = offs
			at = offs[idx]
		}
		p := append(db.pack[:0], v[:at]...)
		p = appendPackField(p, e)
		p = append(p, v[at:]...)
		setPackCount(p, packCount(v)+1)
		setListPackLPBytes(p, listPackLPBytes(v)+uint64(lpEntryBytes(e)))
		db.pack = p
		db.setValue(r, p)
		return
	}
	t, lp := listTree(v)
	db.tinsertAt(&t, tkList, idx, e)
	putListTree(db.valOf(r), t, lp+uint64(lpEntryBytes(e)))
}

// listIter walks a list's elements from an index, either way.
type listIter struct {
	pack []byte
	offs []int
	i    int
	it   titer
	tree bool
	ok   bool
}

// listIterAt starts at element idx (invalid when out of range). Give
// it back with listIterDone.
func (db *DB) listIterAt(r ref, idx int64) listIter {
	v := db.valOf(r)
	var li listIter
	n := db.collLen(r)
	if v[0] == encListpackList {
		li.pack = v
		li.offs = packOffsets(v, listPackHdrBytes, db.listOffs)
		li.i = int(idx)
		li.ok = idx >= 0 && idx < n
		return li
	}
	li.tree = true
	t, _ := listTree(v)
	li.it = db.iter(tkList)
	if idx >= 0 {
		li.it.seekIndex(t.root, t.count, uint64(idx))
	}
	li.ok = li.it.Valid()
	return li
}

func (db *DB) listIterDone(li *listIter) {
	if li.tree {
		db.doneIter(&li.it)
	} else {
		db.listOffs = li.offs[:0]
	}
}

// Elem is the current element.
func (li *listIter) Elem() []byte {
	if li.tree {
		e, _ := li.it.Entry()
		return e
	}
	e, _ := packField(li.pack, li.offs[li.i])
	return e
}

// Index is the current element's index.
func (li *listIter) Index() int64 {
	if li.tree {
		return int64(li.it.Pos())
	}
	return int64(li.i)
}

func (li *listIter) Next() {
	if li.tree {
		li.it.Next()
		li.ok = li.it.Valid()
		return
	}
	li.i++
	li.ok = li.i < len(li.offs)
}

func (li *listIter) Prev() {
	if li.tree {
		li.it.Prev()
		li.ok = li.it.Valid()
		return
	}
	li.i--
	li.ok = li.i >= 0
}
