package engine

import (
	"github.com/cockroachdb/errors"
)

// BeginBulk and EndBulk bracket log replay during recovery. They used to
// switch key allocation to slabs; every key now lives in slabs (arena.go),
// so there is nothing left to switch and they only remain for the callers
// that bracket a replay with them.
func (db *DB) BeginBulk() {}

// EndBulk ends what BeginBulk started (nothing; see BeginBulk).
func (db *DB) EndBulk() {}

// loaderBatchMax bounds how many point-index entries a Loader holds back
// to insert in one sorted batch (8 bytes each).
const loaderBatchMax = 1 << 16

// Loader bulk-loads keys into a DB during recovery (a snapshot, read in
// key order). It is Restore without the point-index probe for an existing
// key while keys arrive in strictly ascending order above every key the
// DB held before (so none can repeat), with the point-index entries
// inserted in sorted batches and each key appended to the ordered index
// without comparing it to stored keys (treeAppend). A key that is not
// above the previous one goes through Restore. Call Finish when
// done, or Abort when the load fails part way; the DB must not be used for
// anything else between NewLoader and Finish or Abort (the point index is
// incomplete until then), and in particular not Reset: the held-back
// entries name records of the blocks a Reset drops.
type Loader struct {
	db      *DB
	last    []byte // a copy of the previous key, for the ordering check
	any     bool
	pending []uint64 // point-index entries not inserted yet
	// above is set once the keys being added are greater than every key
	// the ordered index held before the load (always, when it started
	// empty): from then on each key is appended to the tree (treeAppend)
	// without comparing it to stored keys. below is a copy of the largest
	// key held before the load while above is not set yet.
	above bool
	below []byte
	// flushVersion is the DB's at NewLoader: a Reset since (which drops
	// the blocks the held-back entries point into) changes it.
	flushVersion uint64
	// access, when set, is the access metadata every loaded key starts
	// with (SetAccessTime).
	access    uint32
	accessSet bool
}

// SetAccessTime makes every key loaded from now on look last accessed at
// ms (Unix ms; a snapshot's save time), as a new key created then would:
// snapshots do not keep the access metadata, and a recovering DB's clock
// does not know the time yet.
func (l *Loader) SetAccessTime(ms int64) {
	l.access, l.accessSet = l.db.accessAt(ms), true
}

// NewLoader starts a bulk load into db, reserving room for hint keys
// (0 when unknown).
func (db *DB) NewLoader(hint int) *Loader {
	db.Reserve(hint)
	l := &Loader{db: db, above: db.tree.Len() == 0, flushVersion: db.flushVersion}
	if !l.above {
		m, _ := db.tree.max()
		l.below = append([]byte(nil), db.keyOf(m)...)
	}
	return l
}

// Add loads one key, replacing any key of that name, or (TypeContinued)
// one more piece of the key added before. It copies e's slices and, like
// Restore, does not check expiry; it refuses what Restore refuses.
func (l *Loader) Add(e Entry) error {
	if !e.Type.Known() {
		return errors.Newf("restore of key %q: unknown value type %d", e.Key, e.Type)
	}
	if e.Type.Continued() {
		l.flush() // the key must be findable should the piece be refused
		return l.db.restoreMore(e)
	}
	l.check()
	if l.any && string(e.Key) <= string(l.last) {
		l.flush()
		if err := l.db.Restore(e); err != nil {
			return err
		}
		if r := l.db.find(e.Key); r != 0 && l.accessSet {
			l.db.rec(r).access = l.access
		}
		return nil
	}
	db := l.db
	if err := db.restoreCheckDone(); err != nil {
		return err
	}
	cell, elems, count, err := db.firstPiece(e.Type, e.Value)
	if err != nil {
		return errors.Wrapf(err, "restore of key %q", e.Key)
	}
	if !l.above {
		if string(e.Key) > string(l.below) {
			// Later keys are larger still (or go through Restore).
			l.above, l.below = true, nil
		} else if old := db.find(e.Key); old != 0 {
			// A key held before the load may repeat (the ones this
			// loader added are all smaller).
			db.remove(old)
		}
	}
	r := db.newKey(e.Key, e.Type, cell)
	if l.accessSet {
		db.rec(r).access = l.access
	}
	l.pending = append(l.pending, uint64(db.index.fingerprint(e.Key))<<32|uint64(r))
	if l.above {
		db.treeAppend(r, e.Key)
	} else {
		db.treeInsert(r, e.Key)
	}
	if e.ExpireAt != 0 {
		db.setExpire(r, e.ExpireAt)
	}
	if len(l.pending) == loaderBatchMax {
		l.flush()
	}
	l.last = append(l.last[:0], e.Key...)
	l.any = true
	_, left, err := db.firstElements(r, elems, count)
	if err != nil {
		l.flush()
		return errors.Wrapf(err, "restore of key %q", e.Key)
	}
	if left > 0 {
		db.restore = restoring{r: r, key: append(db.restore.key[:0], e.Key...), typ: e.Type, left: left}
	}
	return nil
}

// check refuses a loader whose DB was reset, or that was finished or
// aborted: inserting its held-back entries would give the point index
// refs into blocks that no longer exist, a corruption found only later,
// by some unrelated lookup.
func (l *Loader) check() {
	if l.db == nil {
		panic(errors.AssertionFailedf("engine: Loader used after Finish or Abort"))
	}
	if l.db.flushVersion != l.flushVersion {
		panic(errors.AssertionFailedf("engine: Loader used after its DB was reset (%d held-back entries)", len(l.pending)))
	}
}

// flush inserts the held-back point-index entries.
func (l *Loader) flush() {
	l.check()
	l.db.index.insertBatch(l.pending)
	l.pending = l.pending[:0]
}

// Finish ends the load; the loader must not be used again. It fails if
// the last key's value is missing pieces.
func (l *Loader) Finish() error {
	l.flush()
	err := l.db.restoreCheckDone()
	l.release()
	return err
}

// Abort ends a load that failed part way (a snapshot that fails its
// check after some of its blocks were loaded): the held-back entries are
// dropped and the DB is emptied, since a partial load cannot be told
// apart from what the DB held before. The DB is then empty and usable,
// as after Reset; the loader must not be used again.
func (l *Loader) Abort() {
	l.check()
	l.db.Reset()
	l.release()
}

func (l *Loader) release() {
	l.pending = nil
	l.last, l.below = nil, nil
	l.db = nil
}
