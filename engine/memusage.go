package engine

import "encoding/binary"

// KeyBytes is what the key costs in the engine's own accounting
// (UsedBytes): its record and cell, its TTL entry, its share of the
// ordered index and a slot of the point index, and for a large
// collection every node and overflow cell of its trees (MEMORY USAGE).
// ok is false when the key does not exist at nowMillis. It changes
// nothing: an expired key is not deleted here.
func (db *DB) KeyBytes(nowMillis int64, key []byte) (bytes int64, ok bool) {
	r := db.find(key)
	if r == 0 || db.expired(r, nowMillis) {
		return 0, false
	}
	rc := db.rec(r)
	n := db.keyBytes(rc) + indexBytesPerSlot
	if rc.typ == TypeString {
		return n, true
	}
	v := db.s.valOf(rc)
	switch v[0] {
	case encQuicklist:
		n += db.treeBytes(treeRoot(v).root, tkList)
	case encHashtableSet:
		n += db.treeBytes(treeRoot(v).root, tkSet)
	case encHashtable:
		n += db.treeBytes(treeRoot(v).root, tkHash)
	case encSkiplist:
		byMember, byScore := zsetRoots(v)
		n += db.treeBytes(byMember.root, tkZMember) + db.treeBytes(byScore.root, tkZScore)
	}
	return n, true
}

// treeBytes is what a collection tree holds: its nodes and the overflow
// cells of its fields (what freeSubtree would free).
func (db *DB) treeBytes(n nid, k treeKind) int64 {
	if n == 0 {
		return 0
	}
	p := db.s.node(n)
	leaf := p[0] == nodeLeaf
	total := int64(nodeBytes)
	for _, o := range offsets(p, k, nil) {
		if leaf {
			total += db.fieldBytes(p, o)
			if k.hasVal() {
				total += db.fieldBytes(p, skipField(p, o))
			}
			continue
		}
		if k.keyed() {
			total += db.fieldBytes(p, o+12)
		}
		total += db.treeBytes(childAt(p, o), k)
	}
	return total
}

// fieldBytes is the overflow cell of the field at p[o:], if it has one.
func (db *DB) fieldBytes(p []byte, o int) int64 {
	h, k := uvarint(p[o:])
	if h&1 == 0 {
		return 0
	}
	return db.s.rawBytes(p[o+k], binary.LittleEndian.Uint64(p[o+k+1:]))
}

// ExpiredKeys counts the keys this DB deleted because their time to live
// ran out (lazily or by active expiry), since it was made (INFO
// expired_keys).
func (db *DB) ExpiredKeys() int64 { return db.expiredKeys }
