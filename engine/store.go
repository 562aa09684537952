package engine

import (
	"encoding/binary"
	"unsafe"

	"github.com/cockroachdb/errors"
)

// ValueType is the kind of value a key holds. The numbers are stored in
// snapshots (disk/snapshot.go's entry type): never renumber them.
type ValueType uint8

const (
	// TypeNone is the zero value: no key.
	TypeNone ValueType = iota
	// TypeString is a byte string (Redis "string"), bitmaps included.
	TypeString
	// TypeList is a list (Redis "list").
	TypeList
	// TypeSet is a set of strings (Redis "set").
	TypeSet
	// TypeZSet is a sorted set (Redis "zset").
	TypeZSet
	// TypeHash is a hash of fields to values (Redis "hash").
	TypeHash
)

// String is the name TYPE reports.
func (t ValueType) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeList:
		return "list"
	case TypeSet:
		return "set"
	case TypeZSet:
		return "zset"
	case TypeHash:
		return "hash"
	default:
		return "none"
	}
}

const (
	// valueSlackBytes bounds how much larger than needed a value's cell
	// may stay when it is overwritten in place; beyond it (or beyond 2× the
	// new length) the value moves to a cell of its own size class so a
	// shrinking value frees memory.
	valueSlackBytes = 64
	// treeBytesPerKey is what UsedBytes charges per key for the ordered
	// index (keyindex.go): a 4-byte ref and a 4-byte tag in 512-byte leaves
	// about 60 % full after random inserts (13.6 B/key measured; 9.1 after
	// a bulk load, 15.9 after ascending key:N inserts), plus the inner
	// nodes and separators (see docs/engine.md).
	treeBytesPerKey = 14
	// tombstoneBuckets sizes the table of "last deleted at" versions used by
	// KeyVersion for keys that no longer exist (see KeyVersion).
	tombstoneBuckets = 4096
)

// bytesAsString views b as a string without copying. The result must not
// outlive b's next modification; it is used only for lookups and probes
// that finish before the call returns.
func bytesAsString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// rec, keyOf, valOf read the live keyspace.
func (db *DB) rec(r ref) *record      { return db.s.rec(r) }
func (db *DB) keyOf(r ref) []byte     { return db.s.keyOf(db.s.rec(r)) }
func (db *DB) valOf(r ref) []byte     { return db.s.valOf(db.s.rec(r)) }
func (db *DB) typeOf(r ref) ValueType { return db.s.rec(r).typ }

// expireAt is r's deadline in Unix ms, 0 = none.
func (db *DB) expireAt(r ref) int64 { return db.s.expireAtOf(db.s.rec(r)) }

// keyBytes is what UsedBytes charges for one key besides the point index
// (charged by its actual size): its cell, its record, its TTL entry if it
// has one, and its share of the ordered index.
func (db *DB) keyBytes(rc *record) int64 {
	n := db.s.cellBytes(rc) + recordBytes + treeBytesPerKey
	if rc.ttl != 0 {
		n += ttlEntryBytes
	}
	return n
}

// find returns the key's record without checking expiry, or 0.
func (db *DB) find(key []byte) ref {
	_, r := db.index.find(&db.s.slabDirs, db.index.fingerprint(key), key)
	return r
}

// lookup returns the live record for key at now, or 0, and records the
// access in the key's metadata (access.go), as Redis's lookupKey does. An
// expired key is deleted on the way (lazy expiry); as reads check expiry
// against now, doing so is invisible to every client.
func (db *DB) lookup(now int64, key []byte) ref {
	r := db.find(key)
	if r == 0 {
		return 0
	}
	rc := db.rec(r)
	if rc.ttl != 0 && now > db.s.ttl(rc.ttl).expireAt {
		db.expireItem(r)
		return 0
	}
	if db.acc.lfu {
		db.touch(rc)
	} else {
		rc.access = db.lruNow // touch's LRU case, inlined: GET's hot path
	}
	return r
}

// peek is lookup without recording an access (Redis's LOOKUP_NOTOUCH:
// EXISTS, TYPE, TTL and its kin, OBJECT).
func (db *DB) peek(now int64, key []byte) ref {
	r := db.find(key)
	if r == 0 {
		return 0
	}
	if at := db.expireAt(r); at != 0 && now > at {
		db.expireItem(r)
		return 0
	}
	return r
}

// lookupRead is lookup for a command that reads the key (GET, MGET,
// ...): a miss raises Redis's "keymiss" event, as lookupKeyRead does.
// Write lookups (SET, INCR, DEL) stay silent, also as in Redis.
func (db *DB) lookupRead(now int64, key []byte) ref {
	r := db.lookup(now, key)
	if r == 0 && db.opts.Notify != nil {
		db.opts.Notify("keymiss", key)
	}
	return r
}

// peekRead is lookupRead without recording an access.
func (db *DB) peekRead(now int64, key []byte) ref {
	r := db.peek(now, key)
	if r == 0 && db.opts.Notify != nil {
		db.opts.Notify("keymiss", key)
	}
	return r
}

// expired reports Redis's rule: a key is gone once now is past its
// deadline (a key with expireAt == now is still readable).
func (db *DB) expired(r ref, now int64) bool {
	at := db.expireAt(r)
	return at != 0 && now > at
}

// add inserts a new key (which must not exist) holding a copy of val and
// raises Redis's "new" event (dbAdd does the same, before the command's own
// event). Loading a snapshot uses addSilent: restoring is not creating.
func (db *DB) add(key []byte, typ ValueType, val []byte, expireAt int64) ref {
	r := db.addSilent(key, typ, val, expireAt)
	db.notify("new", key)
	return r
}

// addSilent is add without the event.
func (db *DB) addSilent(key []byte, typ ValueType, val []byte, expireAt int64) ref {
	r := db.newKey(key, typ, val)
	db.index.insert(db.index.fingerprint(key), r)
	db.treeInsert(r, key)
	if expireAt != 0 {
		db.setExpire(r, expireAt)
	}
	return r
}

// newKey makes a record and cell holding key and a copy of val, linked
// into no index yet.
func (db *DB) newKey(key []byte, typ ValueType, val []byte) ref {
	if len(val) > maxValueBytes {
		panic(errors.AssertionFailedf("engine: value of %d bytes", len(val)))
	}
	db.reclaim()
	r, rc := db.s.newRecord()
	db.s.allocCell(rc, cellNeed(len(key), len(val)))
	c := db.s.cellOf(rc)
	n := binary.PutUvarint(c, uint64(len(key)))
	n += copy(c[n:], key)
	copy(c[n:], val)
	rc.vlen = uint32(len(val))
	rc.typ = typ
	rc.access = db.newAccess()
	db.usedBytes += db.keyBytes(rc)
	db.bump(r)
	return r
}

// reclaim frees the records, nodes and cells deferred while Views were
// alive, once none is.
func (db *DB) reclaim() {
	if len(db.s.deferred)+len(db.s.deferredCells) == 0 || db.views.Load() > 0 {
		return
	}
	for i, r := range db.s.deferred {
		db.s.freeRecord(r)
		db.s.deferred[i] = 0
	}
	db.s.deferred = db.s.deferred[:0]
	for _, c := range db.s.deferredCells {
		db.s.freeCell(c.class, c.cell)
	}
	db.s.deferredCells = db.s.deferredCells[:0]
}

// release frees r's record and cell, or defers that while a View may read
// them.
func (db *DB) release(r ref) {
	if db.shared(r) {
		db.s.deferred = append(db.s.deferred, r)
		return
	}
	db.s.freeRecord(r)
}

// remove unlinks r from every index, records a tombstone for WATCH and
// frees it, its value's trees included: the caller must not read r
// afterwards.
func (db *DB) remove(r ref) { db.removeKey(r, true) }

// removeKey is remove; freeValue false keeps the trees a collection's
// value names, which the caller has handed to another key (RENAME).
func (db *DB) removeKey(r ref, freeValue bool) {
	rc := db.rec(r)
	key := db.s.keyOf(rc)
	i, _ := db.index.find(&db.s.slabDirs, db.index.fingerprint(key), key)
	db.index.removeAt(i)
	db.treeDelete(r, key)
	if rc.ttl != 0 && db.s.ttl(rc.ttl).slot != slotNone {
		db.wheel.unlink(rc.ttl)
	}
	if freeValue {
		db.freeValue(rc)
	}
	db.usedBytes -= db.keyBytes(rc)
	db.modCount++
	db.tombstones[tombstoneIndex(key)] = db.modCount
	db.release(r)
}

// del removes a live key and reports the event (Redis deletes first; the
// order is invisible, as Notify may not call back into the DB, and the key
// must be read before its cell is freed).
func (db *DB) del(r ref, event string) {
	db.notify(event, db.keyOf(r))
	db.remove(r)
}

// expireItem removes a key whose deadline passed.
func (db *DB) expireItem(r ref) {
	if db.localRead && !db.expired(r, db.clock) {
		return // expired by a local read's clock only: hidden, kept (ExecLocalRead)
	}
	db.expiredKeys++
	db.del(r, "expired")
}

// bump records a change of r for WATCH.
func (db *DB) bump(r ref) {
	db.modCount++
	db.rec(r).version = db.modCount
}

// shared reports whether a live View may be reading r: it was last
// changed before the latest View was taken (every change bumps version,
// and a View records modCount), and some View is unreleased.
func (db *DB) shared(r ref) bool {
	return db.rec(r).version <= db.viewVersion && db.views.Load() > 0
}

// writable returns a record whose value and deadline may be changed in
// place. If a live View may be reading r, the key is copied first (record
// and cell) and the copy replaces r in every index; r itself is freed once
// no View is left. That is what makes View O(1) without stopping writes.
// Callers change the key right after, so the copy's version is bumped here
// (which also marks it unshared).
func (db *DB) writable(r ref) ref {
	if !db.shared(r) {
		return r
	}
	old := db.rec(r)
	key := db.s.keyOf(old)
	cp := db.newKey(key, old.typ, db.s.valOf(old))
	old = db.rec(r) // newKey may have grown the record directory
	db.rec(cp).strEnc, db.rec(cp).access = old.strEnc, old.access
	i, _ := db.index.find(&db.s.slabDirs, db.index.fingerprint(key), key)
	db.index.set(i, cp)
	db.treeInsert(cp, key)
	if old.ttl != 0 {
		// A TTL entry of its own: the View reads the old one's deadline.
		oe := db.s.ttl(old.ttl)
		t, _ := db.s.newTTL(cp, oe.expireAt)
		db.rec(cp).ttl = t
		db.usedBytes += ttlEntryBytes
		if oe.slot != slotNone {
			db.wheel.replace(old.ttl, t)
		}
	}
	db.usedBytes -= db.keyBytes(old)
	db.s.deferred = append(db.s.deferred, r)
	return cp
}

// valueCap is how many value bytes r's cell holds.
func (db *DB) valueCap(rc *record) int {
	c := db.s.cellOf(rc)
	return len(c) - valueStart(c)
}

// resizeValue makes r's (writable) value n bytes long, keeping its first
// min(n, old length) bytes, and returns it for the caller to fill. The
// value stays in its cell when the cell holds n bytes and is not more than
// 2n + valueSlackBytes; otherwise it moves to a cell of its own size
// class (with room to double when it grows past cellMaxBytes, so repeated
// APPENDs stay amortised O(1)) and the old cell is freed.
func (db *DB) resizeValue(r ref, n int) []byte {
	if n > maxValueBytes {
		panic(errors.AssertionFailedf("engine: value of %d bytes", n))
	}
	rc := db.rec(r)
	c := db.s.cellOf(rc)
	start := valueStart(c)
	capacity := len(c) - start
	if capacity < n || capacity > 2*n+valueSlackBytes {
		need := start + n
		if need > cellMaxBytes && n > int(rc.vlen) {
			need = start + max(n, 2*int(rc.vlen))
		}
		oldClass, oldCell := rc.class, rc.cell
		db.usedBytes -= db.s.cellBytes(rc)
		db.s.allocCell(rc, need)
		nc := db.s.cellOf(rc)
		copy(nc, c[:start+min(n, int(rc.vlen))])
		db.s.freeCell(oldClass, oldCell)
		db.usedBytes += db.s.cellBytes(rc)
		c = nc
	}
	rc.vlen = uint32(n)
	return c[start : start+n : start+n]
}

// setValue overwrites r's (writable) value with val.
func (db *DB) setValue(r ref, val []byte) {
	copy(db.resizeValue(r, len(val)), val)
}

// setExpire gives r (writable) a deadline; at == 0 removes it. A key
// gets a TTL entry with its first deadline and loses it with PERSIST or an
// overwrite without KEEPTTL (r is writable, so no View reads the entry).
func (db *DB) setExpire(r ref, at int64) {
	rc := db.rec(r)
	t := rc.ttl
	if t == 0 {
		if at == 0 {
			return
		}
		t, _ = db.s.newTTL(r, at)
		rc.ttl = t
		db.usedBytes += ttlEntryBytes
		db.wheel.insert(t)
		return
	}
	e := db.s.ttl(t)
	if e.slot != slotNone {
		db.wheel.unlink(t)
	}
	if at == 0 {
		db.s.freeTTL(t)
		rc.ttl = 0
		db.usedBytes -= ttlEntryBytes
		return
	}
	e.expireAt = at
	db.wheel.insert(t)
}

func (db *DB) notify(event string, key []byte) {
	if db.opts.Notify != nil {
		db.opts.Notify(event, key)
	}
}

// tombstoneIndex hashes a key (FNV-1a: fixed, so versions do not depend on
// a per-process seed) into the tombstone table.
func tombstoneIndex(key []byte) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % tombstoneBuckets)
}

// newTree returns an empty ordered index (keyindex.go) reading the live
// keyspace's keys.
func (db *DB) newTree() *keyIndex {
	return newKeyIndex(db.keyOf, func(refs []ref) { db.warmSink += db.s.slabDirs.warmRefs(refs) })
}

// treeInsert inserts r (whose key is key) into the ordered index,
// replacing the ref of an equal key.
func (db *DB) treeInsert(r ref, key []byte) { db.tree.insert(r, key) }

// treeAppend inserts r, whose key the caller knows to be greater than
// every key in the ordered index (a bulk load in key order): no
// comparison, and the load leaves full leaves.
func (db *DB) treeAppend(r ref, key []byte) { db.tree.append(r, key) }

// treeDelete removes r (whose key is key) from the ordered index.
func (db *DB) treeDelete(r ref, key []byte) {
	if !db.tree.delete(r, key) {
		panic(errors.AssertionFailedf("ordered index lost key %q", key))
	}
}
