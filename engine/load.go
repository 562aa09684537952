package engine

import (
	"unsafe"

	"github.com/cockroachdb/errors"
)

const (
	// loadItemsPerSlab is how many items a Loader allocates at once. Loading
	// allocates items, keys and values in slabs instead of three objects per
	// key: recovery of 1M keys was mostly allocator and GC work (marking 3M
	// small objects while the heap doubles its way up). A slab stays alive
	// while any of its items does, so it is kept small: 256 × 80 B = 20 KiB.
	loadItemsPerSlab = 256
	// loadBytesPerSlab is the size of one pointer-free slab holding loaded
	// keys and values side by side (about 280 keys with 200-byte values).
	// Like an item slab it is freed only when every key in it is gone or
	// has been given a new, separately allocated value.
	loadBytesPerSlab = 64 << 10
	// loadBytesInSlabMax: a key plus value larger than this is allocated on
	// its own, so that one big value does not pin (or waste) a slab.
	loadBytesInSlabMax = loadBytesPerSlab / 8
)

// slabs carves items, keys and values out of shared allocations while a
// DB is being recovered (Loader, or BeginBulk for log replay).
type slabs struct {
	items []item // unused tail of the current item slab
	bytes []byte // unused tail of the current byte slab
}

// newItem returns a zeroed item whose key and val hold copies of key and
// val, carved from the slabs.
func (s *slabs) newItem(key, val []byte) *item {
	if len(s.items) == 0 {
		s.items = make([]item, loadItemsPerSlab)
	}
	it := &s.items[0]
	s.items = s.items[1:]
	n := len(key) + len(val)
	var kv []byte
	if n > loadBytesInSlabMax {
		kv = make([]byte, n)
	} else {
		if len(s.bytes) < n {
			s.bytes = make([]byte, loadBytesPerSlab)
		}
		kv = s.bytes[:n:n]
		s.bytes = s.bytes[n:]
	}
	copy(kv, key)
	copy(kv[len(key):], val)
	if len(key) > 0 {
		// The key bytes are never written again: keys are immutable.
		it.key = unsafe.String(&kv[0], len(key))
	}
	// Full slice expression: an APPEND that outgrows the value
	// reallocates instead of writing past it into the next key.
	it.val = kv[len(key):n:n]
	it.slot = slotNone
	return it
}

// BeginBulk makes new keys come from slabs until EndBulk: for replaying a
// log into a DB during recovery, where allocating three objects per key was
// most of the cost. Nothing else changes (see Loader for the retention
// trade-off).
func (db *DB) BeginBulk() {
	if db.bulk == nil {
		db.bulk = &slabs{}
	}
}

// EndBulk goes back to allocating every key on its own.
func (db *DB) EndBulk() { db.bulk = nil }

// Loader bulk-loads keys into a DB during recovery (a snapshot, read in
// key order). It is Restore without the per-key costs that an empty,
// ordered load does not need: no point-index probe for an existing key
// while the keys arrive in strictly ascending order (so none can repeat),
// and items, keys and values carved from slabs. A key that is not above the
// previous one goes through Restore. Call Finish when done; the DB must not
// be used for anything else between NewLoader and Finish.
type Loader struct {
	db   *DB
	s    slabs
	last string // the previous key, for the ordering check
	any  bool
}

// NewLoader starts a bulk load into db, reserving room for hint keys
// (0 when unknown).
func (db *DB) NewLoader(hint int) *Loader {
	db.Reserve(hint)
	return &Loader{db: db}
}

// Add loads one key, replacing any key of that name. It copies e's slices
// and, like Restore, does not check expiry.
func (l *Loader) Add(e Entry) {
	if e.Type != TypeString {
		panic(errors.AssertionFailedf("engine: restore of key %q with unknown type %d", e.Key, e.Type))
	}
	if l.any && bytesAsString(e.Key) <= l.last {
		l.db.Restore(e)
		return
	}
	if !l.any && len(l.db.keys) > 0 {
		// Keys loaded before the loader (or by Restore) may repeat.
		if old := l.db.find(e.Key); old != nil {
			l.db.remove(old)
		}
	}
	it := l.s.newItem(e.Key, e.Value)
	it.typ = e.Type
	l.db.insertItem(it)
	if e.ExpireAt != 0 {
		l.db.setExpire(it, e.ExpireAt)
	}
	l.last = it.key
	l.any = true
}

// Finish ends the load; the loader must not be used again.
func (l *Loader) Finish() {
	l.s = slabs{}
	l.db = nil
}
