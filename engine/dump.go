package engine

import (
	"encoding/binary"
	"math"

	"github.com/cockroachdb/errors"
)

// How a key's value travels in snapshots and slot moves (docs/engine.md,
// "Snapshots of collections"). A string, or a collection in a pack, is
// one piece: the value's bytes as the key's cell holds them (a pack
// starts with its encoding byte). A tree-backed collection is written in
// pieces of bounded size, so that a collection of any size fits
// snapshot blocks and log entries:
//
//	piece 0:  [enc][uvarint count] elements...
//	piece k:  elements...
//
// with its elements in the tree's order: a list's [uvarint len][element],
// a set's [uvarint len][member], a hash's [uvarint len][field][uvarint
// len][value], a sorted set's [uvarint len][member][8-byte score] by score.
// A snapshot marks the pieces after the first with TypeContinued in the
// entry's type, and a loader appends them to the key before.

// TypeContinued is set in an Entry's type (and a snapshot entry's) when
// it continues the value of the key before it.
const TypeContinued ValueType = 0x80

// Base is t without TypeContinued.
func (t ValueType) Base() ValueType { return t &^ TypeContinued }

// Known reports whether t (TypeContinued aside) is a value type this
// engine stores.
func (t ValueType) Known() bool {
	b := t.Base()
	return b >= TypeString && b <= TypeHash
}

// Continued reports whether t marks a continuation piece.
func (t ValueType) Continued() bool { return t&TypeContinued != 0 }

// PieceBytesDefault is the piece size snapshots use: about one snapshot
// block.
const PieceBytesDefault = 256 << 10

// isTreeEnc reports a collection encoding that names trees.
func isTreeEnc(enc byte) bool {
	return enc == encQuicklist || enc == encHashtableSet || enc == encHashtable || enc == encSkiplist
}

// Units is the number of units AppendPiece walks: the elements of a
// tree-backed collection, 1 for anything else (one piece).
func (e *Entry) Units() uint64 {
	if e.Type.Base() == TypeString || len(e.Value) == 0 || !isTreeEnc(e.Value[0]) {
		return 1
	}
	if e.Value[0] == encSkiplist {
		return binary.LittleEndian.Uint64(e.Value[9:])
	}
	return treeRoot(e.Value).count
}

// pieceTree is the tree a tree-backed value is written from.
func pieceTree(v []byte) (troot, treeKind) {
	switch v[0] {
	case encQuicklist:
		return treeRoot(v), tkList
	case encHashtableSet:
		return treeRoot(v), tkSet
	case encHashtable:
		return treeRoot(v), tkHash
	}
	_, byScore := zsetRoots(v)
	return byScore, tkZScore
}

// AppendPiece appends to dst the piece of e's value that starts at unit
// from: from 0 adds the value's header (or the whole value, when it is
// one piece); elements follow until about maxBytes were added (one at
// least) or the value ends. It returns the unit after the last one added,
// Units() when the value is complete. Reading a tree needs the DB (or
// View) the entry came from unchanged meanwhile.
func (e *Entry) AppendPiece(dst []byte, from uint64, maxBytes int) ([]byte, uint64) {
	if e.Units() == 1 && (e.Type.Base() == TypeString || !isTreeEnc(e.Value[0])) {
		if from > 0 {
			return dst, 1
		}
		return append(dst, e.Value...), 1
	}
	start := len(dst)
	v := e.Value
	t, kind := pieceTree(v)
	if from == 0 {
		dst = append(dst, v[0])
		dst = binary.AppendUvarint(dst, t.count)
	}
	it := titer{t: tview{d: e.dirs, kind: kind}}
	n := from
	for it.seekIndex(t.root, t.count, from); it.Valid(); it.Next() {
		if n > from && len(dst)-start >= maxBytes {
			break
		}
		a, b := it.Entry()
		switch kind {
		case tkHash:
			dst = appendPackField(appendPackField(dst, a), b)
		case tkZScore:
			dst = appendPackField(dst, a[8:])
			dst = append(dst, a[:8]...)
		default:
			dst = appendPackField(dst, a)
		}
		n++
	}
	return dst, n
}

var errBadValue = errors.New("malformed value")

// checkPack verifies a pack value's structure, so that a damaged or
// foreign one is refused rather than served.
func checkPack(typ ValueType, v []byte) error {
	if len(v) == 0 {
		return errBadValue
	}
	fields := func(start, per, extra int, count int) error {
		o := start
		for i := 0; i < count; i++ {
			for f := 0; f < per; f++ {
				n, k := binary.Uvarint(v[o:])
				if k <= 0 || n > uint64(len(v)-o-k) {
					return errBadValue
				}
				o += k + int(n)
			}
			if o+extra > len(v) {
				return errBadValue
			}
			o += extra
		}
		if o != len(v) {
			return errBadValue
		}
		return nil
	}
	switch {
	case typ == TypeList && v[0] == encListpackList && len(v) >= listPackHdrBytes:
		return fields(listPackHdrBytes, 1, 0, packCount(v))
	case typ == TypeSet && v[0] == encListpackSet && len(v) >= packHdrBytes:
		return fields(packHdrBytes, 1, 0, packCount(v))
	case typ == TypeHash && v[0] == encListpackHash && len(v) >= packHdrBytes:
		return fields(packHdrBytes, 2, 0, packCount(v))
	case typ == TypeZSet && v[0] == encListpackZSet && len(v) >= packHdrBytes:
		var pm []byte
		var ps float64
		o, i := packHdrBytes, 0
		for ; o < len(v); i++ {
			n, k := binary.Uvarint(v[o:])
			if k <= 0 || n > uint64(len(v)-o-k) {
				return errBadValue
			}
			so := o + k + int(n)
			if so >= len(v) {
				return errBadValue
			}
			if x, k := binary.Uvarint(v[so:]); k <= 0 || (x == 1 && so+9 > len(v)) {
				return errBadValue
			}
			m, s, next := zpackEntry(v, o)
			if math.IsNaN(s) || (i > 0 && cmpScoreMember(ps, pm, s, m) >= 0) {
				return errBadValue
			}
			pm, ps, o = m, s, next
		}
		if o != len(v) || i != packCount(v) {
			return errBadValue
		}
		return nil
	case typ == TypeSet && v[0] == encIntset && len(v) >= intsetHdrBytes:
		width := int(v[1])
		if (width != 2 && width != 4 && width != 8) || len(v) != intsetHdrBytes+width*intsetLen(v) {
			return errBadValue
		}
		for i := 1; i < intsetLen(v); i++ {
			if intsetAt(v, i-1) >= intsetAt(v, i) {
				return errBadValue
			}
		}
		return nil
	}
	return errBadValue
}

// treeEncOf is the tree encoding of type typ.
func treeEncOf(typ ValueType) byte {
	switch typ {
	case TypeList:
		return encQuicklist
	case TypeSet:
		return encHashtableSet
	case TypeHash:
		return encHashtable
	case TypeZSet:
		return encSkiplist
	}
	return 0
}

// restoring is the tree-backed key a restore is filling piece by piece.
type restoring struct {
	r    ref
	key  []byte
	typ  ValueType
	left uint64 // elements the first piece announced and not yet seen
}

// firstPiece checks the first piece of a value of type typ and returns
// the bytes its key's cell starts with (the value, or a header of empty
// trees, in db.hdr), the encoded elements that follow, and how many
// elements the whole value has (0: it is all in this piece).
func (db *DB) firstPiece(typ ValueType, piece []byte) (cell, elems []byte, count uint64, err error) {
	if typ == TypeString {
		return piece, nil, 0, nil
	}
	if len(piece) == 0 {
		return nil, nil, 0, errBadValue
	}
	if !isTreeEnc(piece[0]) {
		if err := checkPack(typ, piece); err != nil {
			return nil, nil, 0, err
		}
		return piece, nil, 0, nil
	}
	if piece[0] != treeEncOf(typ) {
		return nil, nil, 0, errBadValue
	}
	count, k := binary.Uvarint(piece[1:])
	if k <= 0 {
		return nil, nil, 0, errBadValue
	}
	switch piece[0] {
	case encQuicklist:
		h := db.hdr[:quickHdrBytes]
		h[0] = encQuicklist
		putListTree(h, troot{}, lpHeaderBytes)
		cell = h
	case encSkiplist:
		cell = db.zsetHeader(troot{}, troot{})
	default:
		cell = db.treeHeader(piece[0], troot{})
	}
	return cell, piece[1+k:], count, nil
}

// restoreValue creates key (absent) from the first piece of its value
// and returns it, with the number of elements still to come.
func (db *DB) restoreValue(key []byte, typ ValueType, piece []byte, expireAt int64) (ref, uint64, error) {
	cell, elems, count, err := db.firstPiece(typ, piece)
	if err != nil {
		return 0, 0, err
	}
	r := db.addSilent(key, typ, cell, expireAt)
	db.bump(r)
	return db.firstElements(r, elems, count)
}

// firstElements adds the elements of a first piece to r, its new key.
func (db *DB) firstElements(r ref, elems []byte, count uint64) (ref, uint64, error) {
	if count == 0 && len(elems) == 0 {
		return r, 0, nil
	}
	n, err := db.restoreElements(r, elems)
	if err != nil {
		return r, 0, err
	}
	if n > count {
		return r, 0, errors.Newf("%d elements, %d announced", n, count)
	}
	return r, count - n, nil
}

// restoreElements adds the encoded elements of p to tree-backed r
// (writable), in order, and returns how many.
func (db *DB) restoreElements(r ref, p []byte) (uint64, error) {
	v := db.valOf(r)
	enc := v[0]
	next := func() ([]byte, bool) {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return nil, false
		}
		f := p[k : k+int(n)]
		p = p[k+int(n):]
		return f, true
	}
	var count uint64
	switch enc {
	case encQuicklist:
		t, lp := listTree(v)
		for len(p) > 0 {
			e, ok := next()
			if !ok {
				return count, errBadValue
			}
			db.tinsertAt(&t, tkList, t.count, e)
			lp += uint64(lpEntryBytes(e))
			count++
		}
		putListTree(db.valOf(r), t, lp)
	case encHashtableSet, encHashtable:
		t := treeRoot(v)
		kind := tkSet
		if enc == encHashtable {
			kind = tkHash
		}
		for len(p) > 0 {
			a, ok := next()
			var b []byte
			if ok && kind == tkHash {
				b, ok = next()
			}
			if !ok {
				return count, errBadValue
			}
			if db.tput(&t, kind, a, b) {
				count++
			}
		}
		putTreeRoot(db.valOf(r), t)
	case encSkiplist:
		byMember, byScore := zsetRoots(v)
		z := zsetBuf{enc: encSkiplist, byMember: byMember, byScore: byScore}
		for len(p) > 0 {
			m, ok := next()
			if !ok || len(p) < 8 {
				return count, errBadValue
			}
			s := scoreOf(p)
			p = p[8:]
			if math.IsNaN(s) {
				return count, errBadValue
			}
			if old, found := db.zsetScore(db.zsetValueOf(&z), m); found {
				// A repeated piece (a move resent): same member, keep one.
				db.zsetDelete(&z, m, old)
			} else {
				count++
			}
			db.zsetInsertTrees(&z, m, s)
		}
		copy(db.valOf(r), db.zsetValueOf(&z))
	default:
		return 0, errBadValue
	}
	return count, nil
}

// Restore loads one snapshot entry, replacing any key of that name (a
// first piece), or appending to the key restored just before (an entry
// marked TypeContinued). It copies e's slices. It does not check expiry
// (the DB's clock may not be known yet); expired keys are collected as
// usual. It refuses an entry of unknown type, a malformed value, and a
// continuation that does not follow its key's first piece.
func (db *DB) Restore(e Entry) error {
	if !e.Type.Known() {
		return errors.Newf("restore of key %q: unknown value type %d", e.Key, e.Type)
	}
	if e.Type.Continued() {
		return db.restoreMore(e)
	}
	if err := db.restoreCheckDone(); err != nil {
		return err
	}
	if old := db.find(e.Key); old != 0 {
		db.remove(old)
	}
	r, left, err := db.restoreValue(e.Key, e.Type.Base(), e.Value, e.ExpireAt)
	if err != nil {
		if r != 0 {
			db.remove(r)
		}
		return errors.Wrapf(err, "restore of key %q", e.Key)
	}
	if left > 0 {
		db.restore = restoring{r: r, key: append(db.restore.key[:0], e.Key...), typ: e.Type.Base(), left: left}
	}
	return nil
}

// restoreMore appends a continuation piece to the key being restored.
func (db *DB) restoreMore(e Entry) error {
	rs := &db.restore
	if rs.r == 0 || string(rs.key) != string(e.Key) || rs.typ != e.Type.Base() {
		return errors.Newf("restore of key %q: a continuation without its first piece", e.Key)
	}
	r := db.writable(rs.r)
	db.bump(r)
	rs.r = r
	n, err := db.restoreElements(r, e.Value)
	if err == nil && n > rs.left {
		err = errors.Newf("%d more elements than announced", n-rs.left)
	}
	if err != nil {
		db.remove(r)
		db.restore = restoring{key: rs.key[:0]}
		return errors.Wrapf(err, "restore of key %q", e.Key)
	}
	rs.left -= n
	if rs.left == 0 {
		db.restore = restoring{key: rs.key[:0]}
	}
	return nil
}

// restoreCheckDone fails if the key restored before is missing elements
// its first piece announced.
func (db *DB) restoreCheckDone() error {
	if db.restore.r == 0 {
		return nil
	}
	key, left := db.restore.key, db.restore.left
	db.restore = restoring{key: key[:0]}
	return errors.Newf("restore of key %q: %d elements missing", key, left)
}

// ImportPiece stores a piece of a key moved from another replica group
// (cluster's IMPORTKEYS), at now. from 0: the first piece, which replaces
// key (any type) with a value of type typ and deadline expireAt. from > 0:
// the elements from unit from on, added to key, which must hold a value of
// typ begun by an earlier first piece; a list is cut back to from elements
// first, and keyed collections add each element once, so a piece applied
// twice (a resent command) changes nothing. Events are not raised, as for
// a restore.
func (db *DB) ImportPiece(now int64, key []byte, typ ValueType, from uint64, piece []byte, expireAt int64) error {
	db.observe(now)
	db.reclaim()
	if !typ.Known() || typ.Continued() {
		return errors.Newf("import of key %q: unknown value type %d", key, typ)
	}
	if from == 0 {
		if old := db.find(key); old != 0 {
			db.remove(old)
		}
		r, _, err := db.restoreValue(key, typ, piece, expireAt)
		if err != nil {
			if r != 0 {
				db.remove(r)
			}
			return errors.Wrapf(err, "import of key %q", key)
		}
		return nil
	}
	r := db.find(key)
	if r == 0 || db.typeOf(r) != typ || !isTreeEnc(db.encOf(r)) {
		return errors.Newf("import of key %q: piece at %d without the key's first piece", key, from)
	}
	r = db.change(r)
	if typ == TypeList {
		if n := uint64(db.collLen(r)); n > from {
			db.listDelete(r, from, n-from)
		} else if n < from {
			return errors.Newf("import of key %q: piece at %d after %d elements", key, from, n)
		}
	}
	if _, err := db.restoreElements(r, piece); err != nil {
		return errors.Wrapf(err, "import of key %q", key)
	}
	return nil
}
