package cluster

import (
	"bytes"
	"strconv"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
)

// TestingKnobs plant deliberate bugs, so that tests can prove the
// simulator and the checker catch them (a sweep that cannot fail proves
// nothing). Production code never sets them: only the simulator's node
// passes them (sim.NodeConfig.Knobs), the server has no way to. A nil
// *TestingKnobs is the correct program, and every hook below is a no-op
// on nil. Each knob is one plausible mistake, a small deviation from the
// correct line it sits next to; scenarios/planted.go runs each in a
// scenario that catches it (docs/checker.md, "Planted bugs").
type TestingKnobs struct {
	// AckBeforeFsync: under appendfsync always, reply to writes without
	// fsyncing the WAL first, the bug "appendfsync always" exists to rule
	// out. The bytes reach the disk only at a later fsync (a HardState
	// change, a snapshot), so a power loss drops acknowledged writes.
	AckBeforeFsync bool

	// StaleReadFromSnapshot: while a snapshot job's point-in-time view
	// exists, GET is answered from that view rather than from the live
	// keyspace — the shortcut a "don't make readers wait on BGSAVE" change
	// might take. A GET after a completed SET can return the older value.
	StaleReadFromSnapshot bool

	// IncrByFromBatchStart: Submit logs INCRBY as its result ("SET key
	// <value+delta> KEEPTTL", log the effect rather than the command),
	// computing the value from the keyspace as it was before the batch,
	// forgetting earlier writes of the same batch. Two concurrent INCRBYs
	// of one key in one group commit: one increment is lost.
	IncrByFromBatchStart bool

	// RecoverOlderSnapshotData: recovery takes the replay start (the
	// snapshot index) from the newest snapshot but loads the keys of the
	// one before it (retention keeps two) — an index mix-up in the
	// snapshot list. Keys deleted between the two snapshots come back
	// (and writes between them are lost).
	RecoverOlderSnapshotData bool

	// WALTornTailAnywhere: recovery trusts the first read of the active
	// WAL segment and calls any bad record in it a torn tail, truncating
	// the valid, fsynced records after it (disk.WALPlanted).
	WALTornTailAnywhere bool

	// ReplayFromSnapshotIndex: recovery replays the log from the
	// snapshot's index instead of the entry after it (an off-by-one at the
	// snapshot boundary), so the last entry the snapshot already contains
	// is applied a second time: an INCRBY in it counts twice.
	ReplayFromSnapshotIndex bool

	// MovedKeysLoseTTL: IMPORTKEYS stores each moved key without the
	// absolute deadline MOVEKEYS read for it (slotstate.go), the slip of
	// a "SET key value" that forgot its PXAT. A key that had a TTL in
	// the group it left lives forever in the group it moved to.
	MovedKeysLoseTTL bool

	// FCallKeysUngated: the slot gate walks no key of an FCALL (visitKeys
	// in slotstate.go forgets the numkeys form), so a call on a migrating
	// slot whose keys are locked, or already moved, runs on the group
	// giving the slot away: its writes land on keys that group is about
	// to delete, or it reads accounts that are no longer there.
	FCallKeysUngated bool

	// SnapStreamDropsTail: the leader announces a streamed snapshot one
	// byte shorter than its file (snapstream.go), an off-by-one in the
	// size, so the stream ends before the file's last byte. The
	// follower's copy never verifies: it is received again, then given
	// up, and a follower that needs a snapshot never catches up.
	SnapStreamDropsTail bool

	// VoteRejectLost: a vote response leaves with its Reject flag
	// cleared (send in group.go), the slip of a frame encoder that forgot
	// the field: a candidate counts a refusal as a vote, so two
	// candidates of one term can both win (election safety).
	VoteRejectLost bool

	// LogTruncateOffByOne: when a new leader's entries conflict with a
	// follower's log, the log store cuts the stale suffix one entry too
	// late (storage.go): the first conflicting entry survives, and the
	// leader's entry for that index is dropped (log matching).
	LogTruncateOffByOne bool

	// GetExUnlogged: Submit treats GETEX as the read GET is (a command
	// table slip), so its PERSIST or new TTL changes the leader's memory
	// and never reaches the log: after a restart the old TTL is back, or
	// the key a GETEX EXAT in the past deleted. Only the grammar workload
	// sends GETEX (issue 20).
	GetExUnlogged bool

	// ApplyBeforeCommit: a replicated replica applies the entries it
	// persisted at once, before they commit, "so that a leader's writes
	// are visible sooner" (drive in replica.go), and skips them when they
	// commit later. An entry a new leader replaces stays applied
	// (state-machine safety), and a leader answers writes before a
	// majority holds them.
	ApplyBeforeCommit bool

	// FollowerPopsWrongEnd: a replica applying a function's effects it did
	// not run itself (a follower, a recovery) applies an RPOP effect as
	// LPOP (applyEffectsEntry in functions.go), the slip of an effects
	// decoder that mapped the two pop commands to one: the leader's list
	// and its followers' differ, and a new leader pops the wrong elements.
	FollowerPopsWrongEnd bool

	// WALTornTailResync: recovery steps over a bad record in the active
	// WAL segment to the next valid one and reads on (disk.WALPlanted):
	// a torn tail that kept a later sector and lost an earlier one brings
	// back records after a hole, and the log skips an index.
	WALTornTailResync bool

	// ReceiveClearsSnapshots: a follower about to receive its leader's
	// snapshot first deletes the snapshots it holds and fsyncs the
	// directory, to make room for the leader's (adoptStream in
	// snapstream.go), rather than after the received one is in place. A
	// crash before the install completes leaves no snapshot at all and a
	// log compacted past its start: the follower refuses to start.
	ReceiveClearsSnapshots bool

	// SnapshotJobClearsFirst: a snapshot job deletes the snapshots it
	// will replace, and fsyncs the directory, before it writes the new
	// one ("make room first", retention run at the start of the job
	// rather than in JobDone). A crash while the job writes leaves no
	// snapshot at all and a log compacted past its start: the node
	// refuses to start.
	SnapshotJobClearsFirst bool

	// SnapshotWalkSkipsKeys: a snapshot job's walk of the keyspace steps
	// over one key in every 64, the off-by-one of a loop that hands the
	// ordered index's entries out in batches and loses the last of each.
	// With the default eight keys no snapshot holds 64; with thousands,
	// a restart from the snapshot loses acknowledged writes.
	SnapshotWalkSkipsKeys bool
}

// snapshotSkips reports whether the walk drops its n-th key (from 1)
// (SnapshotWalkSkipsKeys).
func (k *TestingKnobs) snapshotSkips(n int) bool {
	return k != nil && k.SnapshotWalkSkipsKeys && n%64 == 0
}

// clearSnapshotsFirst deletes the snapshots in dataDir and fsyncs the
// directory before a stream from the leader begins
// (ReceiveClearsSnapshots).
func (k *TestingKnobs) clearSnapshotsFirst(fs disk.FS, dataDir string) error {
	if k == nil || !k.ReceiveClearsSnapshots {
		return nil
	}
	return clearSnapshots(fs, dataDir)
}

// clearJobSnapshotsFirst is the same at the start of a snapshot job
// (SnapshotJobClearsFirst).
func (k *TestingKnobs) clearJobSnapshotsFirst(fs disk.FS, dataDir string) error {
	if k == nil || !k.SnapshotJobClearsFirst {
		return nil
	}
	return clearSnapshots(fs, dataDir)
}

func clearSnapshots(fs disk.FS, dataDir string) error {
	snaps, _, err := disk.ListSnapshots(fs, dataDir)
	if err != nil || len(snaps) == 0 {
		return err
	}
	for _, s := range snaps {
		if err := fs.Remove(s); err != nil {
			return err
		}
	}
	return fs.SyncDir(disk.SnapshotDir(dataDir))
}

func (k *TestingKnobs) ackBeforeFsync() bool { return k != nil && k.AckBeforeFsync }

func (k *TestingKnobs) getExUnlogged(argv [][]byte) bool {
	return k != nil && k.GetExUnlogged && len(argv) > 0 && bytes.EqualFold(argv[0], []byte("getex"))
}

func (k *TestingKnobs) replayFromSnapshotIndex() bool { return k != nil && k.ReplayFromSnapshotIndex }

func (k *TestingKnobs) movedKeysLoseTTL() bool { return k != nil && k.MovedKeysLoseTTL }

func (k *TestingKnobs) fcallKeysUngated() bool { return k != nil && k.FCallKeysUngated }

func (k *TestingKnobs) followerPopsWrongEnd() bool { return k != nil && k.FollowerPopsWrongEnd }

// voteRejectLost clears a vote response's Reject flag (VoteRejectLost).
func (k *TestingKnobs) voteRejectLost(m *pb.Message) {
	if k != nil && k.VoteRejectLost && m.Type == pb.MsgVoteResp {
		m.Reject = false
	}
}

// truncateOffByOne replaces the store's log from ents' first index on,
// keeping the first conflicting entry (LogTruncateOffByOne). It reports
// whether it did.
func (k *TestingKnobs) truncateOffByOne(s *logStore, ents []pb.Entry) bool {
	if k == nil || !k.LogTruncateOffByOne {
		return false
	}
	off := ents[0].Index - s.firstIndex()
	if off >= uint64(len(s.ents)) || s.ents[off].Term == ents[0].Term {
		return false // no conflict
	}
	s.ents = append(s.ents[:off+1], ents[1:]...)
	return true
}

// applyBeforeCommit applies the normal entries rd persisted that follow
// the applied index at once (ApplyBeforeCommit); applied reports whether
// a committed entry was applied that way already.
func (k *TestingKnobs) applyBeforeCommit(r *Replica, rd *raft.Ready) error {
	if k == nil || !k.ApplyBeforeCommit || !r.Replicated() {
		return nil
	}
	for _, e := range rd.Entries {
		if e.Index != r.applied+1 || e.Type != pb.EntryNormal {
			break
		}
		if err := r.apply(e); err != nil {
			return err
		}
	}
	return nil
}

func (k *TestingKnobs) appliedBeforeCommit(r *Replica, e pb.Entry) bool {
	return k != nil && k.ApplyBeforeCommit && e.Index <= r.applied
}

// streamedSize is the size a leader announces for a snapshot file of
// size bytes (SnapStreamDropsTail).
func (k *TestingKnobs) streamedSize(size int64) uint64 {
	if k != nil && k.SnapStreamDropsTail && size > 0 {
		return uint64(size - 1)
	}
	return uint64(size)
}

// walPlanted is the WAL's share of the knobs.
func (k *TestingKnobs) walPlanted() *disk.WALPlanted {
	if k == nil || !k.WALTornTailAnywhere && !k.WALTornTailResync {
		return nil
	}
	return &disk.WALPlanted{TornTailAnywhere: k.WALTornTailAnywhere, TornTailResync: k.WALTornTailResync}
}

// staleRead answers a GET from the pending snapshot job's view
// (StaleReadFromSnapshot). It reports whether it answered.
func (k *TestingKnobs) staleRead(r *Replica, req *Request) bool {
	if k == nil || !k.StaleReadFromSnapshot || r.job == nil || req.Txn != nil ||
		len(req.Argv) != 2 || !bytes.EqualFold(req.Argv[0], []byte("get")) {
		return false
	}
	found := false
	r.job.view.Ascend(func(e engine.Entry) bool {
		c := bytes.Compare(e.Key, req.Argv[1])
		if c == 0 && e.Type == engine.TypeString && (e.ExpireAt == 0 || e.ExpireAt > r.lastNowMillis) {
			req.W.WriteBulk(e.Value)
			found = true
		}
		return c < 0
	})
	if !found {
		req.W.WriteNull()
	}
	return true
}

// incrByFromBatchStart rewrites an INCRBY of req into the SET of its result
// computed from the keyspace before the batch (IncrByFromBatchStart), and
// makes the SET's "OK" reply the integer INCRBY owes. It returns the argv
// to log.
func (k *TestingKnobs) incrByFromBatchStart(r *Replica, ms int64, req *Request) [][]byte {
	argv := req.Argv
	if k == nil || !k.IncrByFromBatchStart || req.Txn != nil || len(argv) != 3 || !bytes.EqualFold(argv[0], []byte("incrby")) {
		return argv
	}
	delta, err := strconv.ParseInt(string(argv[2]), 10, 64)
	if err != nil {
		return argv
	}
	var cur captureWriter
	r.db.Exec(ms, [][]byte{[]byte("GET"), argv[1]}, &cur)
	var old int64
	switch {
	case cur.null:
	case cur.bulk != nil:
		if old, err = strconv.ParseInt(string(cur.bulk), 10, 64); err != nil || strconv.FormatInt(old, 10) != string(cur.bulk) {
			return argv // not an integer: let INCRBY give its error
		}
	default:
		return argv
	}
	n := old + delta
	if (delta > 0 && n < old) || (delta < 0 && n > old) {
		return argv // overflow: let INCRBY give its error
	}
	req.W = okAsInt{Writer: req.W, n: n}
	return [][]byte{[]byte("SET"), argv[1], []byte(strconv.FormatInt(n, 10)), []byte("KEEPTTL")}
}

// recoverOlderSnapshotData reloads the keyspace from the snapshot listed
// after the one recovery chose (RecoverOlderSnapshotData).
func (k *TestingKnobs) recoverOlderSnapshotData(r *Replica, snaps []string, loaded int) {
	if k == nil || !k.RecoverOlderSnapshotData || loaded < 0 || loaded+1 >= len(snaps) {
		return
	}
	var keep []engine.Entry
	_, err := disk.ReadSnapshot(r.opts.FS, snaps[loaded+1], func(disk.SnapshotMeta) error { return nil }, func(e disk.SnapEntry) error {
		if engine.ValueType(e.Type) == engine.TypeString {
			// ReadSnapshot reuses its buffers: copy.
			keep = append(keep, engine.Entry{Type: engine.TypeString, Key: append([]byte{}, e.Key...),
				Value: append([]byte{}, e.Value...), ExpireAt: e.ExpireAt})
		}
		return nil
	})
	if err != nil {
		return // the older one is unreadable: the bug has nothing to load
	}
	r.db.Reset()
	for _, e := range keep {
		r.db.Restore(e)
	}
}

// applyAgain applies rec, the entry at the snapshot's index, on top of the
// snapshot (ReplayFromSnapshotIndex).
func (r *Replica) applyAgain(rec disk.Record) error {
	e, err := recordEntry(rec)
	if err != nil || e.Type != pb.EntryNormal {
		return err
	}
	return r.apply(e)
}

// captureWriter keeps a GET's reply.
type captureWriter struct {
	engine.Discard
	bulk []byte
	null bool
}

func (c *captureWriter) WriteBulk(b []byte)       { c.bulk = append([]byte{}, b...) }
func (c *captureWriter) WriteBulkString(s string) { c.bulk = []byte(s) }
func (c *captureWriter) WriteNull()               { c.null = true }

// okAsInt turns the logged SET's "OK" into INCRBY's integer reply.
type okAsInt struct {
	engine.Writer
	n int64
}

func (w okAsInt) WriteSimple(s string) {
	if s == "OK" {
		w.Writer.WriteInt(w.n)
		return
	}
	w.Writer.WriteSimple(s)
}
