package cluster

import (
	"time"

	"github.com/cockroachdb/errors"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/keel-db/keel/disk"
)

// newJob takes a view of the applied state for a snapshot. The WAL is
// synced first, so that every entry the snapshot covers is durable in the
// log too and falling back to the previous snapshot can always replay past
// this one's index.
func (r *Replica) newJob(ms int64, bg bool) (*Job, error) {
	if r.Replicated() && r.logMillis > 0 && r.logMillis < ms {
		// The snapshot's time is the log's, not this replica's clock: it
		// is the cutoff below which loading drops keys as expired, and a
		// replica whose clock runs ahead would otherwise drop a key the
		// log's later entries still find (a ZINCRBY the leader refused
		// with WRONGTYPE then created a sorted set on this replica;
		// cluster-grammar seed 44).
		ms = r.logMillis
	}
	if err := r.wal.Sync(); err != nil {
		r.fatal = err
		return nil, err
	}
	term, err := r.store.Term(r.applied)
	if err != nil {
		return nil, errors.NewAssertionErrorWithWrappedErrf(err, "cluster: term of applied index %d", r.applied)
	}
	voters := append([]uint64(nil), r.conf.Voters...)
	learners := append([]uint64(nil), r.conf.Learners...)
	view := r.db.View()
	return &Job{
		fs:       r.opts.FS,
		dir:      r.opts.Dir,
		view:     view,
		meta:     disk.SnapshotMeta{Index: r.applied, Term: term, Voters: voters, Learners: learners, SaveMillis: ms, KeysHint: uint64(view.Len())},
		changes:  r.changes,
		walBytes: r.wal.BytesWritten(),
		bg:       bg,

		createdNanos: r.lastNowNanos,
		functions:    r.functionsDump(),
		slots:        r.slotsDump(),
		members:      r.membersDump(),
		acl:          r.acl,
		metaRecord:   r.meta,
		knobs:        r.opts.Knobs,
	}, nil
}

// dropPendingJob forgets a job that was never handed to the runtime.
func (r *Replica) dropPendingJob() {
	if r.job != nil && !r.jobHanded {
		r.job.view.Release()
		r.job = nil
	}
}

// PendingJob returns a snapshot job for the runtime to Run (off the
// replica's lock), or nil. Each job is handed out once; report its end
// with JobDone.
func (r *Replica) PendingJob() *Job {
	if r.job == nil || r.jobHanded {
		return nil
	}
	r.jobHanded = true
	return r.job
}

// JobDone installs a finished snapshot: the log entries it covers leave
// memory, a snapshot marker is logged, snapshots older than the previous
// one and WAL segments covered by the previous one are deleted (the
// previous snapshot and the log after it stay as the fallback until the
// next snapshot is durable).
func (r *Replica) JobDone(j *Job, err error) {
	if j == nil || j != r.job {
		return
	}
	r.job, r.jobHanded = nil, false
	if err != nil {
		r.lastBgsaveErr = err
		if errors.Is(err, disk.ErrDirSync) && r.fatal == nil {
			r.fatal = err
		}
		return
	}
	r.lastBgsaveErr = nil
	r.lastSaveMillis = j.meta.SaveMillis
	r.changesAtSave = j.changes
	r.walBytesAtSnap = j.walBytes
	if j.meta.Index > r.snapIndex {
		r.prevSnapIndex, r.snapIndex = r.snapIndex, j.meta.Index
	}
	r.store.compact(j.meta.Index, j.meta.Term)
	if len(j.meta.Voters) > 0 && j.meta.Index >= r.store.snapIndex {
		// The configuration as of the snapshot: what Raft sends a
		// follower that needs it.
		r.store.cs = pb.ConfState{Voters: j.meta.Voters, Learners: j.meta.Learners}
	}
	if r.fatal != nil || r.noSpace != nil {
		return
	}
	marker := disk.Record{Type: disk.RecSnapshot, Index: j.meta.Index, Term: j.meta.Term}
	if err := r.wal.Append([]disk.Record{marker, hardStateRecord(r.store.hs)}); err != nil {
		if r.wal.Broken() != nil {
			r.fatal = err
			return
		}
	} else if r.wal.Dirty() && r.dirtySince < r.lastNowNanos-int64(everysecSyncAfter) {
		r.dirtySince = r.lastNowNanos
	}
	snaps, _, err := disk.ListSnapshots(r.opts.FS, r.opts.Dir)
	if err == nil && len(snaps) > 2 {
		for _, old := range snaps[2:] {
			if rerr := r.opts.FS.Remove(old); rerr != nil {
				r.lastBgsaveErr = rerr
			}
		}
		// Not durable is harmless: a resurrected old snapshot is never
		// the newest.
		_ = r.opts.FS.SyncDir(disk.SnapshotDir(r.opts.Dir))
	}
	if _, err := r.wal.Compact(r.prevSnapIndex); err != nil {
		// A removal that did not stick leaves an old segment behind,
		// which recovery recognises and deletes (see disk.OpenWAL).
		r.lastBgsaveErr = err
	}
}

// jobUncollectedMax is how long a snapshot job may wait for a runtime that
// never calls PendingJob before Tick runs it inline (a pause, but BGSAVE
// and compaction still happen).
const jobUncollectedMax = 5 * time.Second

func (r *Replica) runUncollectedJob() {
	j := r.job
	if j == nil || r.jobHanded || r.lastNowNanos-j.createdNanos < int64(jobUncollectedMax) {
		return
	}
	r.jobHanded = true
	r.JobDone(j, j.Run())
}

func (r *Replica) maybeTriggerSnapshot() {
	if r.job != nil || r.fatal != nil || r.opts.SnapshotLogBytes < 0 {
		return
	}
	if r.wal.BytesWritten()-r.walBytesAtSnap < r.opts.SnapshotLogBytes {
		return
	}
	j, err := r.newJob(r.lastNowMillis, true)
	if err != nil {
		return
	}
	r.job = j
}

// cmdSave is SAVE: a snapshot written before the reply.
func (r *Replica) cmdSave(ms int64, req *Request) {
	if len(req.Argv) != 1 {
		req.W.WriteError("ERR wrong number of arguments for 'save' command")
		return
	}
	if r.refuseSnapshot(req, "nothing to save to") {
		return
	}
	if r.job != nil && r.jobHanded {
		req.W.WriteError("ERR Background save already in progress")
		return
	}
	j := r.replaceJob(ms, false, req)
	if j == nil {
		return
	}
	r.jobHanded = true
	err := j.Run()
	r.JobDone(j, err)
	if err != nil {
		req.W.WriteError("ERR snapshot failed: " + err.Error())
		return
	}
	req.W.WriteSimple("OK")
}

// cmdBgrewriteaof is BGREWRITEAOF: keel's log is compacted by a snapshot,
// so rewriting the log means taking one in the background.
func (r *Replica) cmdBgrewriteaof(ms int64, req *Request) {
	if len(req.Argv) != 1 {
		req.W.WriteError("ERR wrong number of arguments for 'bgrewriteaof' command")
		return
	}
	if r.refuseSnapshot(req, "no log to rewrite") {
		return
	}
	if r.job != nil && r.jobHanded {
		req.W.WriteSimple("Background append only file rewriting scheduled")
		return
	}
	if r.replaceJob(ms, true, req) != nil {
		req.W.WriteSimple("Background append only file rewriting started")
	}
}

// cmdBgsave is BGSAVE: the view is taken now, the file is written by the
// runtime through PendingJob.
func (r *Replica) cmdBgsave(ms int64, req *Request) {
	if len(req.Argv) > 2 || (len(req.Argv) == 2 && !equalFold(req.Argv[1], "schedule")) {
		req.W.WriteError("ERR syntax error")
		return
	}
	if r.refuseSnapshot(req, "nothing to save to") {
		return
	}
	if r.job != nil && r.jobHanded {
		if len(req.Argv) == 2 {
			req.W.WriteSimple("Background saving scheduled")
			return
		}
		req.W.WriteError("ERR Background save already in progress")
		return
	}
	if r.replaceJob(ms, true, req) != nil {
		req.W.WriteSimple("Background saving started")
	}
}

// refuseSnapshot answers a snapshot command the replica cannot serve:
// persistence off (why says what is missing) or a disk that failed.
func (r *Replica) refuseSnapshot(req *Request, why string) bool {
	switch {
	case !r.persist:
		req.W.WriteError("ERR persistence is off (appendonly no): " + why)
	case r.fatal != nil:
		req.W.WriteError(ErrMsgDiskFatal)
	default:
		return false
	}
	return true
}

// replaceJob makes a new snapshot job the pending one, dropping a pending
// job no runtime has taken yet. On failure it answers req and returns nil.
func (r *Replica) replaceJob(ms int64, bg bool, req *Request) *Job {
	r.dropPendingJob()
	j, err := r.newJob(ms, bg)
	if err != nil {
		req.W.WriteError(ErrMsgDiskFatal)
		return nil
	}
	r.job = j
	return j
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// PersistenceStats feed INFO persistence.
type PersistenceStats struct {
	AOFEnabled           bool
	Fsync                string
	LastSaveMillis       int64
	ChangesSinceLastSave int64
	BgsaveInProgress     bool
	LastBgsaveOK         bool
	LastBgsaveErr        string
	AOFLastWriteOK       bool
	AOFLastWriteErr      string
	DiskFull             bool
	AppliedIndex         uint64
	SnapshotIndex        uint64
	LogBytesSinceSave    int64
	WALSegments          int
	Recovery             RecoveryStats
}

// Persistence reports the state INFO persistence shows.
func (r *Replica) Persistence() PersistenceStats {
	s := PersistenceStats{
		AOFEnabled:           r.persist,
		Fsync:                r.opts.Fsync.String(),
		LastSaveMillis:       r.lastSaveMillis,
		ChangesSinceLastSave: r.changes - r.changesAtSave,
		BgsaveInProgress:     r.job != nil && r.jobHanded,
		LastBgsaveOK:         r.lastBgsaveErr == nil,
		AOFLastWriteOK:       r.fatal == nil && r.noSpace == nil,
		DiskFull:             r.noSpace != nil,
		AppliedIndex:         r.applied,
		SnapshotIndex:        r.snapIndex,
		Recovery:             r.recovery,
	}
	if r.lastBgsaveErr != nil {
		s.LastBgsaveErr = r.lastBgsaveErr.Error()
	}
	switch {
	case r.fatal != nil:
		s.AOFLastWriteErr = r.fatal.Error()
	case r.noSpace != nil:
		s.AOFLastWriteErr = r.noSpace.Error()
	}
	if r.wal != nil {
		s.LogBytesSinceSave = r.wal.BytesWritten() - r.walBytesAtSnap
		s.WALSegments = len(r.wal.Segments())
	}
	return s
}
