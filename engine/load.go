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

// Loader bulk-loads keys into a DB during recovery (a snapshot, read in
// key order). It is Restore without the per-key costs that an empty,
// ordered load does not need: no point-index probe for an existing key
// while the keys arrive in strictly ascending order (so none can repeat),
// and items, keys and values carved from slabs. A key that is not above the
// previous one goes through Restore. Call Finish when done; the DB must not
// be used for anything else between NewLoader and Finish.
type Loader struct {
	db    *DB
	items []item // unused tail of the current item slab
	bytes []byte // unused tail of the current byte slab
	last  string // the previous key, for the ordering check
	any   bool
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
	if len(l.items) == 0 {
		l.items = make([]item, loadItemsPerSlab)
	}
	it := &l.items[0]
	l.items = l.items[1:]
	n := len(e.Key) + len(e.Value)
	var kv []byte
	if n > loadBytesInSlabMax {
		kv = make([]byte, n)
	} else {
		if len(l.bytes) < n {
			l.bytes = make([]byte, loadBytesPerSlab)
		}
		kv = l.bytes[:n:n]
		l.bytes = l.bytes[n:]
	}
	copy(kv, e.Key)
	copy(kv[len(e.Key):], e.Value)
	k := kv[:len(e.Key):len(e.Key)]
	*it = item{
		// The key bytes are never written again: keys are immutable.
		key: unsafe.String(unsafe.SliceData(k), len(k)),
		// Full slice expression: an APPEND that outgrows the value
		// reallocates instead of writing past it.
		val:  kv[len(e.Key):n:n],
		typ:  e.Type,
		slot: slotNone,
	}
	if len(e.Key) == 0 {
		it.key = ""
	}
	l.db.insertItem(it)
	if e.ExpireAt != 0 {
		l.db.setExpire(it, e.ExpireAt)
	}
	l.last = it.key
	l.any = true
}

// Finish ends the load; the loader must not be used again.
func (l *Loader) Finish() {
	l.items, l.bytes = nil, nil
	l.db = nil
}
