package cluster

import (
	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
)

// Job is a snapshot being written from an immutable point-in-time view of
// the keyspace. cluster/ starts no goroutines, so the runtime runs it: the
// server on a goroutine, the simulator as an event. Run touches only the
// view and the FS, never the Replica, so writes go on meanwhile; JobDone
// (called by the owner of the Replica) installs the result.
type Job struct {
	fs   disk.FS
	dir  string
	view *engine.View
	meta disk.SnapshotMeta
	// changes is the write-command count at the view, so that
	// rdb_changes_since_last_save counts only later ones.
	changes int64
	// walBytes is the WAL byte count at the view, for the size trigger.
	walBytes int64
	bg       bool // BGSAVE or size-triggered (as opposed to SAVE)
	path     string
	// createdNanos is when the view was taken; a job no runtime collects
	// within jobUncollectedMax is run inline by Tick.
	createdNanos int64
	// functions is the function registry at the view (udf.Host.Dump),
	// nil when no library is loaded.
	functions []byte
	// slots is the group's slot state at the view (slotstate.go), nil
	// when slot gating is off.
	slots []byte
	// members are the member addresses at the view (members.go), nil
	// when none was added by CLUSTER ADDNODE.
	members []byte
	// acl is the ACL table at the view (acl.go), nil when never set.
	acl []byte
	// metaRecord is the meta record at the view (meta.go), nil when never set.
	metaRecord []byte
	// knobs are the replica's planted bugs (nil: none).
	knobs *TestingKnobs
}

// Index is the Raft index the snapshot covers.
func (j *Job) Index() uint64 { return j.meta.Index }

// Run writes, fsyncs and renames the snapshot file. Keys already expired
// at the view's time are left out: every later command runs at a time no
// earlier than that, so they were invisible anyway.
func (j *Job) Run() error {
	defer j.view.Release()
	if err := j.knobs.clearJobSnapshotsFirst(j.fs, j.dir); err != nil {
		return err
	}
	sw, err := disk.CreateSnapshot(j.fs, j.dir, j.meta)
	if err != nil {
		return err
	}
	now := j.meta.SaveMillis
	if len(j.functions) > 0 {
		if err := sw.Add(disk.SnapEntry{Type: disk.SnapTypeFunctions, Value: j.functions}); err != nil {
			sw.Abort()
			return err
		}
	}
	if j.slots != nil {
		if err := sw.Add(disk.SnapEntry{Type: snapTypeSlots, Value: j.slots}); err != nil {
			sw.Abort()
			return err
		}
	}
	if j.members != nil {
		if err := sw.Add(disk.SnapEntry{Type: snapTypeMembers, Value: j.members}); err != nil {
			sw.Abort()
			return err
		}
	}
	if j.acl != nil {
		if err := sw.Add(disk.SnapEntry{Type: snapTypeACL, Value: j.acl}); err != nil {
			sw.Abort()
			return err
		}
	}
	if j.metaRecord != nil {
		if err := sw.Add(disk.SnapEntry{Type: snapTypeMeta, Value: j.metaRecord}); err != nil {
			sw.Abort()
			return err
		}
	}
	var piece []byte
	walked := 0
	j.view.Ascend(func(e engine.Entry) bool {
		walked++
		if e.ExpireAt != 0 && e.ExpireAt <= now || j.knobs.snapshotSkips(walked) {
			return true
		}
		// A large collection goes in pieces of about a block each (the
		// ones after the first marked engine.TypeContinued), so no value
		// is bounded by the block size.
		typ := e.Type
		for from := uint64(0); ; typ |= engine.TypeContinued {
			piece, from = e.AppendPiece(piece[:0], from, engine.PieceBytesDefault)
			if err = sw.Add(disk.SnapEntry{Type: uint8(typ), Key: e.Key, Value: piece, ExpireAt: e.ExpireAt}); err != nil {
				return false
			}
			if from >= e.Units() {
				break
			}
		}
		if cap(piece) > 4*engine.PieceBytesDefault {
			piece = nil // do not keep one huge string's buffer
		}
		return true
	})
	if err != nil {
		sw.Abort()
		return err
	}
	path, meta, err := sw.Commit()
	if err != nil {
		return err
	}
	j.path, j.meta = path, meta
	return nil
}

// snapshotReserveMax bounds the index reservation a snapshot header can ask
// for (the header is checksummed, but a bound costs nothing).
const snapshotReserveMax = 1 << 30

// loadSnapshot loads the snapshot at name into db (emptied first), leaving
// out keys that were already expired when the snapshot was taken. That
// cut-off is the snapshot's own time, never the time of loading: the log
// entries after the snapshot ran while a key expiring between the two was
// still alive (EXPIRE answered 1, SET NX answered nil), and replay must
// reach the state those replies describe. Keys that expired while the node
// was down leave by lazy and active expiry, invisible from the first read.
// nowMillis, when known (> 0), only lowers the cut-off if the clock is
// behind the snapshot's. Entries of reserved types (the function registry,
// the slot state, the member addresses, the ACL table) go to special.
func loadSnapshot(fs disk.FS, name string, db *engine.DB, nowMillis int64, special func(typ uint8, value []byte) error) (disk.SnapshotMeta, uint64, error) {
	db.Reset()
	var loaded uint64
	// Snapshots are written in key order, so the engine's bulk loader
	// (slab allocation, no probe for an existing key) takes them. It is
	// ended explicitly, Finish or Abort, once the whole file has been
	// checked: never Reset the DB under a live loader (its held-back
	// index entries name records of the blocks a Reset drops).
	var ld *engine.Loader
	cutoff := int64(0)
	header := func(m disk.SnapshotMeta) error {
		cutoff = m.SaveMillis
		if nowMillis > 0 && nowMillis < cutoff {
			cutoff = nowMillis
		}
		// Size the indexes once rather than growing them key by key;
		// the hint is bounded so a corrupt header cannot reserve absurdly.
		hint := 0
		if m.KeysHint > 0 && m.KeysHint <= snapshotReserveMax {
			hint = int(m.KeysHint)
		}
		ld = db.NewLoader(hint)
		return nil
	}
	meta, err := disk.ReadSnapshot(fs, name, header, func(e disk.SnapEntry) error {
		if e.Type == disk.SnapTypeFunctions || e.Type == snapTypeSlots || e.Type == snapTypeMembers || e.Type == snapTypeACL || e.Type == snapTypeMeta {
			return special(e.Type, e.Value)
		}
		if e.ExpireAt != 0 && e.ExpireAt <= cutoff {
			return nil
		}
		typ := engine.ValueType(e.Type)
		if !typ.Known() {
			return errors.Newf("key %q has value type %d this keel cannot load", e.Key, e.Type)
		}
		if err := ld.Add(engine.Entry{Type: typ, Key: e.Key, Value: e.Value, ExpireAt: e.ExpireAt}); err != nil {
			return err
		}
		if !typ.Continued() {
			loaded++
		}
		return nil
	})
	if err == nil && ld != nil {
		err = ld.Finish()
		ld = nil
	}
	if err != nil {
		// Whatever was loaded before the damage is dropped: the DB is
		// left empty, never half a snapshot.
		if ld != nil {
			ld.Abort()
		} else {
			db.Reset()
		}
		return meta, 0, err
	}
	return meta, loaded, nil
}
