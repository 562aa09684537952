package server

import (
	"time"

	"sync"

	"github.com/keel-db/keel/cluster"
)

// The node is sans-I/O and starts no goroutines, so the background work
// it hands out is carried out here:
//
//   - Snapshot jobs (BGSAVE, BGREWRITEAOF, the log-size trigger): a Job
//     reads only an immutable view and the disk. It runs on its own
//     goroutine, so writes keep flowing, and its end is reported back to
//     the node (node.JobDone) inside the group's queue.
//   - The everysec fsync (cluster.Options.BackgroundSync): on its own
//     goroutine, so commands keep running while the disk syncs, as Redis's
//     background fsync thread does. A failure makes the replica fatal and
//     the node reopens it.
//
// What to do after a fatal disk error is the node's decision
// (node/group.go, reopen); it asks here only to wait for a running job.
type maintenance struct {
	mu  sync.Mutex
	ran chan struct{} // closed when the running job's Run returned
}

func (s *Server) startJob(g uint64, r *cluster.Replica, job *cluster.Job) {
	gr := s.groups[g-1]
	ran := make(chan struct{})
	gr.maint.mu.Lock()
	gr.maint.ran = ran
	gr.maint.mu.Unlock()
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		start := time.Now()
		err := job.Run()
		s.node.NoteLatency("snapshot", int64(time.Since(start))) // LATENCY's snapshot event
		close(ran)
		s.do(g, func() { s.node.JobDone(g, r, job, err) })
		gr.maint.mu.Lock()
		if gr.maint.ran == ran {
			gr.maint.ran = nil
		}
		gr.maint.mu.Unlock()
	}()
}

func (s *Server) startSync(g uint64, r *cluster.Replica, sj *cluster.SyncJob) {
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		err := sj.Run()
		s.do(g, func() { s.node.SyncDone(g, r, sj, err) })
	}()
}

// waitJobRun blocks until a running job's Run has returned; it does not
// wait for JobDone, which needs the queue the caller may be holding.
func (g *group) waitJobRun() {
	g.maint.mu.Lock()
	ran := g.maint.ran
	g.maint.mu.Unlock()
	if ran != nil {
		<-ran
	}
}
