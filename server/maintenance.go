package server

import (
	"sync"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
)

// The replica is sans-I/O and starts no goroutines, so two kinds of work it
// asks for are carried out here, by the runtime:
//
//   - Snapshot jobs (BGSAVE, BGREWRITEAOF, the log-size trigger): the
//     replica hands out a Job that reads only an immutable view and the
//     disk. It runs on its own goroutine, so writes keep flowing, and its
//     end is reported back under the shard.
//   - A fatal disk error (a failed write or fsync): the replica refuses
//     writes and must not retry over the same dirty pages (fsyncgate). The
//     runtime closes it and opens it again from disk, which replays only
//     what is durable. If that fails the server stops rather than serve
//     from a state it cannot vouch for.
type maintenance struct {
	mu      sync.Mutex
	running *cluster.Job
	ran     chan struct{} // closed when running's Run returned
}

// afterTick runs under group g's shard, right after Tick.
func (s *Server) afterTick(g *group, r *cluster.Replica) {
	if job := r.PendingJob(); job != nil {
		s.startJob(g, r, job)
	}
	if sj := r.PendingSync(); sj != nil {
		s.startSync(g, r, sj)
	}
	if err := r.Err(); err != nil {
		s.reopen(g, r, err)
	}
}

func (s *Server) startJob(g *group, r *cluster.Replica, job *cluster.Job) {
	ran := make(chan struct{})
	g.maint.mu.Lock()
	g.maint.running, g.maint.ran = job, ran
	g.maint.mu.Unlock()
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		err := job.Run()
		close(ran)
		if err != nil {
			s.cfg.Logf("background save failed: %v", err)
		}
		w := g.shard.newWaiter()
		g.shard.do(w, func(cur *cluster.Replica) {
			// A replica reopened meanwhile never handed out this job.
			if cur == r {
				cur.JobDone(job, err)
			}
		})
		g.maint.mu.Lock()
		if g.maint.running == job {
			g.maint.running, g.maint.ran = nil, nil
		}
		g.maint.mu.Unlock()
	}()
}

// startSync runs the everysec fsync (cluster.Options.BackgroundSync) on
// its own goroutine, so that commands keep running while the disk syncs,
// as Redis's background fsync thread does. Its result is reported under
// the shard; a failure makes the replica fatal and the next tick reopens
// it. Close waits for it through s.jobs.
func (s *Server) startSync(g *group, r *cluster.Replica, sj *cluster.SyncJob) {
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		err := sj.Run()
		w := g.shard.newWaiter()
		g.shard.do(w, func(cur *cluster.Replica) {
			// A replica reopened meanwhile never handed out this job
			// (the failed one's file may have been closed under it).
			if cur == r {
				cur.SyncDone(sj, err)
			}
		})
	}()
}

// waitJobRun blocks until a running job's Run has returned; it does not
// wait for JobDone, which needs the shard the caller may be holding.
func (g *group) waitJobRun() {
	g.maint.mu.Lock()
	ran := g.maint.ran
	g.maint.mu.Unlock()
	if ran != nil {
		<-ran
	}
}

// reopen replaces group g's fatally failed replica with one recovered
// from disk. It runs under g's shard, so no request sees the swap half
// done.
func (s *Server) reopen(g *group, r *cluster.Replica, cause error) {
	reopen := s.cfg.Reopen
	if s.cfg.ReopenGroup != nil {
		reopen = func() (*cluster.Replica, error) { return s.cfg.ReopenGroup(g.id) }
	} else if g.id != 1 {
		reopen = nil
	}
	if reopen == nil {
		return // the replica keeps refusing writes and serving reads
	}
	s.cfg.Logf("disk failure in group %d: %v; reopening the replica from disk", g.id, cause)
	g.waitJobRun()
	if err := r.Close(); err != nil {
		s.cfg.Logf("closing the failed replica: %v", err)
	}
	nr, err := reopen()
	if err != nil {
		ferr := errors.Wrap(err, "reopen replica after disk failure")
		s.fatal.Store(&ferr)
		s.cfg.Logf("cannot reopen the replica from disk: %v; shutting down", err)
		g.shard.dead = "ERR replica could not be reopened after a disk failure; server is stopping"
		s.Shutdown()
		return
	}
	g.shard.replica = nr
	s.AttachReplica(nr) // keyspace notifications (notify.go)
	s.stats.replicaReopens.Add(1)
	rec := nr.Recovery()
	s.cfg.Logf("replica reopened from disk: snapshot index %d, %d entries replayed", rec.SnapshotIndex, rec.EntriesReplayed)
}
