package engine

import (
	"sync/atomic"
	"unsafe"
)

// Entry is one key as snapshots see it.
type Entry struct {
	Type ValueType
	Key  []byte
	// Value is the value as the key's cell holds it: the bytes of a string,
	// a small collection's pack, or a large collection's header (its
	// elements come with AppendPiece, see dump.go).
	Value []byte
	// ExpireAt is the deadline in Unix ms, 0 = none. A View may contain
	// keys whose deadline has passed but were not yet collected; Restore
	// keeps them and expiry removes them as usual.
	ExpireAt int64
	// dirs reads the trees a large collection's Value names (AppendPiece).
	dirs *slabDirs
}

// View is a point-in-time, read-only image of the keyspace. It is taken in
// O(1) and may be read from any goroutine while the DB keeps applying
// commands: the ordered index is cloned lazily (copy-on-write, keyindex.go), the
// View keeps its own copy of the block directories (blocks never move; the
// DB only appends to its directories), and a key's record and cell are
// never changed or reused while a View may read them (the DB copies a key
// before its first change after a View, and defers freeing a removed one).
// Entries' slices must not be modified.
type View struct {
	tree     *keyIndex
	dirs     slabDirs
	db       *DB
	released atomic.Bool
	// warmSink keeps Ascend's warming loads from being optimised away.
	warmSink uint64
}

// View takes a point-in-time image. Call Release when done so the DB can
// go back to changing values in place; an unreleased View only costs one
// copy per item changed after it.
func (db *DB) View() *View {
	db.viewVersion = db.modCount
	db.views.Add(1)
	return &View{tree: db.tree.clone(), dirs: db.s.slabDirs, db: db}
}

// Len is the number of keys in the view.
func (v *View) Len() int { return v.tree.Len() }

// Ascend calls fn for each key in key order until fn returns false.
func (v *View) Ascend(fn func(e Entry) bool) {
	// The walk reads the clone's leaves only, never the live keyspace.
	// Each leaf's refs are taken WarmBatchKeys at a time and their records
	// and cells warmed before fn sees them (as DB.Warm does for a batch of
	// commands): in key order, consecutive keys' records and cells are far
	// apart, and a snapshot's walk would otherwise pay their misses one
	// after another.
	v.tree.ascendLeaves(func(refs []ref) bool {
		for len(refs) > 0 {
			batch := refs[:min(WarmBatchKeys, len(refs))]
			refs = refs[len(batch):]
			v.warmSink += v.dirs.warmRefs(batch)
			for _, r := range batch {
				if !fn(v.entry(r)) {
					return false
				}
			}
		}
		return true
	})
}

func (v *View) entry(r ref) Entry {
	rc := v.dirs.rec(r)
	return Entry{
		Type:     rc.typ,
		Key:      v.dirs.keyOf(rc),
		Value:    v.dirs.valOf(rc),
		ExpireAt: v.dirs.expireAtOf(rc),
		dirs:     &v.dirs,
	}
}

// Release tells the DB this view will not be read again. It may be called
// from any goroutine, once; later calls do nothing.
func (v *View) Release() {
	if v.released.CompareAndSwap(false, true) {
		v.db.views.Add(-1)
	}
}

// stringBytes views an immutable string as bytes without copying; the
// result must never be written.
func stringBytes(s string) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
