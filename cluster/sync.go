package cluster

import "github.com/keel-db/keel/disk"

// SyncJob is the WAL's background fsync, named here so that runtimes need
// not import disk.
type SyncJob = disk.SyncJob

// syncUncollectedMax: a background sync that no runtime has collected
// after this long is run inline by Tick, so a runtime that never calls
// PendingSync still gets everysec's promise (late, with a stall).
const syncUncollectedMax = 2 * everysecSyncAfter

// startBackgroundSync starts the everysec fsync as a job for the runtime,
// unless one is already out (then the next one starts after SyncDone).
func (r *Replica) startBackgroundSync() {
	if r.syncJob != nil {
		if !r.syncHanded && r.lastNowNanos-r.syncJobNanos >= int64(syncUncollectedMax) {
			j := r.syncJob
			r.syncHanded = true
			r.SyncDone(j, j.Run())
		}
		return
	}
	j := r.wal.StartSync()
	if j == nil {
		return
	}
	r.syncJob, r.syncHanded, r.syncJobNanos = j, false, r.lastNowNanos
}

// PendingSync returns the everysec fsync for the runtime to Run off the
// shard (Options.BackgroundSync), once; nil when there is none. Appends go
// on while it runs; report the result with SyncDone under the shard. The
// runtime must let a handed-out job finish before Close.
func (r *Replica) PendingSync() *disk.SyncJob {
	if r.syncJob == nil || r.syncHanded {
		return nil
	}
	r.syncHanded = true
	return r.syncJob
}

// SyncDone records a background fsync. Bytes up to the job's start are
// durable; a failure is fatal, as an inline fsync failure is (fsyncgate:
// the kernel may have dropped the dirty pages, so retrying could report
// success over lost data), and the runtime reopens the replica.
func (r *Replica) SyncDone(j *disk.SyncJob, err error) {
	if r.syncJob == j {
		r.syncJob, r.syncHanded = nil, false
	}
	if werr := r.wal.SyncDone(j, err); werr != nil {
		if r.fatal == nil {
			r.fatal = werr
		}
		return
	}
	// What is still unsynced was appended after the job started
	// (syncJobNanos still holds that start: no job has replaced it).
	if r.wal.Dirty() && r.dirtySince < r.syncJobNanos {
		r.dirtySince = r.syncJobNanos
	}
}
