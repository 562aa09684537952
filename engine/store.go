package engine

import (
	"unsafe"

	"github.com/cockroachdb/errors"
	"github.com/google/btree"
)

// ValueType is the kind of value a key holds. Only strings exist today;
// lists, hashes, sets and sorted sets get their own constants (and their
// own Entry encodings) when they arrive, and every command already checks
// the type so WRONGTYPE falls out naturally.
type ValueType uint8

const (
	// TypeNone is the zero value: no key.
	TypeNone ValueType = iota
	// TypeString is a byte string (Redis "string").
	TypeString
)

// String is the name TYPE reports.
func (t ValueType) String() string {
	switch t {
	case TypeString:
		return "string"
	default:
		return "none"
	}
}

const (
	// btreeDegree gives nodes of up to 63 items: shallow trees (4 levels
	// for 10M keys) and cheap copy-on-write of a path after a View.
	btreeDegree = 32
	// valueSlackBytes bounds how much larger than needed a value buffer may
	// stay when it is overwritten in place; beyond it (or beyond 2× the new
	// length) the buffer is replaced so a shrinking value frees memory.
	valueSlackBytes = 64
	// itemOverheadBytes is what UsedBytes charges per key besides the key
	// and value bytes: the item struct (80 B, a size class), the point index
	// entry (16 B key header + 8 B pointer + a control byte per slot, at
	// the swiss tables' average load of about 2/3 ≈ 38 B), the ordered
	// index (an 8 B pointer in nodes about half full after ascending
	// inserts ≈ 16 B) and the RANDOMKEY array (8 B). Key and value bytes
	// are rounded up to 16 like the allocator's small size classes.
	// Calibrated against BenchmarkMemoryPerKey (see docs/engine.md).
	itemOverheadBytes = 80 + 38 + 16 + 8
	// tombstoneBuckets sizes the table of "last deleted at" versions used by
	// KeyVersion for keys that no longer exist (see KeyVersion).
	tombstoneBuckets = 4096
)

// item is one key. Its key, typ, val and expireAt are immutable while a
// View may still read the item (see DB.writable); the other fields belong
// to the DB alone and may change at any time.
type item struct {
	key      string
	val      []byte
	expireAt int64  // Unix ms; 0 = no TTL
	version  uint64 // DB.modCount at the last change (WATCH)

	// prev and next link the item into a timing-wheel list (slot); only the
	// list head's slot field is authoritative (see wheel).
	prev, next *item
	idx        int32 // position in DB.dense (RANDOMKEY)
	slot       int16 // wheel list index, slotNone when not volatile
	typ        ValueType
	// 80 bytes in all, an allocator size class: keep it so.
}

func itemLess(a, b *item) bool { return a.key < b.key }

// bytesAsString views b as a string without copying. The result must not
// outlive b's next modification; it is used only for map lookups and
// btree probes that finish before the call returns.
func bytesAsString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func (db *DB) itemBytes(it *item) int64 {
	return int64(itemOverheadBytes + roundAlloc(len(it.key)) + roundAlloc(cap(it.val)))
}

// roundAlloc approximates the allocator's rounding of small objects.
func roundAlloc(n int) int { return (n + 15) &^ 15 }

// find returns the item for key without checking expiry.
func (db *DB) find(key []byte) *item {
	return db.keys[string(key)] // no allocation: the compiler special-cases this
}

// lookup returns the live item for key at now, or nil. An expired item is
// deleted on the way (lazy expiry); as reads check expiry against now,
// doing so is invisible to every client.
func (db *DB) lookup(now int64, key []byte) *item {
	it := db.keys[string(key)]
	if it == nil {
		return nil
	}
	if it.expireAt != 0 && now > it.expireAt {
		db.expireItem(it)
		return nil
	}
	return it
}

// lookupRead is lookup for a command that reads the key (GET, EXISTS,
// TTL, ...): a miss raises Redis's "keymiss" event, as lookupKeyRead
// does. Write lookups (SET, INCR, DEL) stay silent, also as in Redis.
func (db *DB) lookupRead(now int64, key []byte) *item {
	it := db.lookup(now, key)
	if it == nil && db.opts.Notify != nil {
		db.opts.Notify("keymiss", key)
	}
	return it
}

// expired reports Redis's rule: a key is gone once now is past its
// deadline (a key with expireAt == now is still readable).
func expired(it *item, now int64) bool { return it.expireAt != 0 && now > it.expireAt }

// add inserts a new key (which must not exist) holding a copy of val and
// raises Redis's "new" event (dbAdd does the same, before the command's own
// event). Loading a snapshot uses addSilent: restoring is not creating.
func (db *DB) add(key []byte, typ ValueType, val []byte, expireAt int64) *item {
	it := db.addSilent(key, typ, val, expireAt)
	db.notify("new", it.key)
	return it
}

// addSilent is add without the event.
func (db *DB) addSilent(key []byte, typ ValueType, val []byte, expireAt int64) *item {
	var it *item
	if db.bulk != nil {
		it = db.bulk.newItem(key, val)
		it.typ = typ
	} else {
		it = &item{
			key:  string(key),
			val:  append(make([]byte, 0, len(val)), val...),
			typ:  typ,
			slot: slotNone,
		}
	}
	db.insertItem(it)
	if expireAt != 0 {
		db.setExpire(it, expireAt)
	}
	return it
}

// insertItem links a fresh item into every index.
func (db *DB) insertItem(it *item) {
	if len(db.dense) >= maxKeys {
		panic(errors.AssertionFailedf("engine: more than %d keys", maxKeys))
	}
	db.keys[it.key] = it
	db.tree.ReplaceOrInsert(it)
	it.idx = int32(len(db.dense))
	db.dense = append(db.dense, it)
	db.usedBytes += db.itemBytes(it)
	db.bump(it)
}

// maxKeys is bounded by the int32 RANDOMKEY index.
const maxKeys = 1<<31 - 1

// remove unlinks it from every index and records a tombstone for WATCH.
func (db *DB) remove(it *item) {
	delete(db.keys, it.key)
	db.tree.Delete(it)
	last := db.dense[len(db.dense)-1]
	db.dense[it.idx] = last
	last.idx = it.idx
	db.dense[len(db.dense)-1] = nil
	db.dense = db.dense[:len(db.dense)-1]
	if it.slot != slotNone {
		db.wheel.unlink(it)
	}
	db.usedBytes -= db.itemBytes(it)
	db.modCount++
	db.tombstones[tombstoneIndex(it.key)] = db.modCount
}

// del removes a live key and reports the event.
func (db *DB) del(it *item, event string) {
	db.remove(it)
	db.notify(event, it.key)
}

// expireItem removes a key whose deadline passed.
func (db *DB) expireItem(it *item) {
	db.remove(it)
	db.notify("expired", it.key)
}

// bump records a change of it for WATCH.
func (db *DB) bump(it *item) {
	db.modCount++
	it.version = db.modCount
}

// shared reports whether a live View may be reading it: it was last
// changed before the latest View was taken (every change bumps version,
// and a View records modCount), and some View is unreleased.
func (db *DB) shared(it *item) bool {
	return it.version <= db.viewVersion && db.views.Load() > 0
}

// writable returns an item whose fields may be changed in place. If a live
// View may be reading it, the item is copied first (value included) and the
// copy replaces it in every index: that is what makes View O(1) without
// stopping writes. Callers change the item right after, so the copy's
// version is bumped here (which also marks it unshared).
func (db *DB) writable(it *item) *item {
	if !db.shared(it) {
		return it
	}
	cp := &item{
		key:      it.key,
		val:      append(make([]byte, 0, len(it.val)), it.val...),
		expireAt: it.expireAt,
		version:  it.version,
		slot:     slotNone,
		idx:      it.idx,
		typ:      it.typ,
	}
	db.bump(cp)
	db.keys[cp.key] = cp
	db.tree.ReplaceOrInsert(cp)
	db.dense[cp.idx] = cp
	if it.slot != slotNone {
		db.wheel.replace(it, cp)
	}
	db.usedBytes += int64(roundAlloc(cap(cp.val)) - roundAlloc(cap(it.val)))
	return cp
}

// setValue overwrites it's value (it must be writable), reusing its buffer
// when that is not much larger than needed.
func (db *DB) setValue(it *item, val []byte) {
	old := cap(it.val)
	if old >= len(val) && old <= 2*len(val)+valueSlackBytes {
		it.val = append(it.val[:0], val...)
	} else {
		it.val = append(make([]byte, 0, len(val)), val...)
	}
	db.usedBytes += int64(roundAlloc(cap(it.val)) - roundAlloc(old))
}

// setExpire gives it (writable) a deadline; at == 0 removes it.
func (db *DB) setExpire(it *item, at int64) {
	if it.slot != slotNone {
		db.wheel.unlink(it)
	}
	it.expireAt = at
	if at != 0 {
		db.wheel.insert(it)
	}
}

func (db *DB) notify(event string, key string) {
	if db.opts.Notify != nil {
		db.opts.Notify(event, []byte(key))
	}
}

// tombstoneIndex hashes a key (FNV-1a: fixed, so versions do not depend on
// a per-process seed) into the tombstone table.
func tombstoneIndex(key string) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % tombstoneBuckets)
}

func newTree() *btree.BTreeG[*item] {
	return btree.NewG[*item](btreeDegree, itemLess)
}
