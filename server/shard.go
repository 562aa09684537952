package server

import (
	"sync"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/seam"
)

// submitRequestsMax bounds one group commit: the leader stops gathering
// queued batches once it holds this many requests, so no one waits behind
// an unbounded group.
const submitRequestsMax = 8192

// shard owns the single *cluster.Replica. Connection goroutines run their
// own batches on it — no hand-off to an executor goroutine — under a
// LevelDB-style writer queue: the goroutine at the head of the queue is the
// leader; it takes every request batch queued behind it into one Submit
// (one log write, one fsync under appendfsync always), runs it without the
// queue lock, then wakes the followers whose replies are already written.
// Work that is not a request batch (Tick, INFO reading the keyspace) joins
// the same queue and runs alone when it reaches the head.
type shard struct {
	replica *cluster.Replica
	clock   seam.Clock

	mu    sync.Mutex
	queue []*waiter // head is the leader; at most one entry per connection plus ticker

	reqs []cluster.Request // the leader's gathered group; only the leader touches it

	// dead, once set (by the leader), answers every request with this
	// error instead of touching the replica: it was closed after a disk
	// failure and could not be reopened.
	dead string
}

// waiter is one goroutine's place in the queue. A connection keeps one and
// reuses it, so queuing does not allocate.
type waiter struct {
	cond sync.Cond
	reqs []cluster.Request
	fn   func(*cluster.Replica)
	done bool
}

func newShard(r *cluster.Replica, clock seam.Clock) *shard {
	return &shard{replica: r, clock: clock}
}

func (s *shard) newWaiter() *waiter {
	w := &waiter{}
	w.cond.L = &s.mu
	return w
}

// submit runs reqs on the replica; every reply has been written when it
// returns.
func (s *shard) submit(w *waiter, reqs []cluster.Request) {
	w.reqs = reqs
	s.run(w)
	w.reqs = nil
}

// do runs fn with exclusive ownership of the replica.
func (s *shard) do(w *waiter, fn func(*cluster.Replica)) {
	w.fn = fn
	s.run(w)
	w.fn = nil
}

func (s *shard) run(w *waiter) {
	s.mu.Lock()
	w.done = false
	s.queue = append(s.queue, w)
	for !w.done && s.queue[0] != w {
		w.cond.Wait()
	}
	if w.done {
		s.mu.Unlock()
		return
	}
	// Leader: gather the group while holding the lock, run it without.
	n := 1
	if w.fn == nil {
		s.reqs = append(s.reqs[:0], w.reqs...)
		for n < len(s.queue) {
			f := s.queue[n]
			if f.fn != nil || len(s.reqs)+len(f.reqs) > submitRequestsMax {
				break
			}
			s.reqs = append(s.reqs, f.reqs...)
			n++
		}
	}
	s.mu.Unlock()

	switch {
	case w.fn != nil:
		if s.dead == "" {
			w.fn(s.replica)
		}
	case s.dead != "":
		for i := range s.reqs {
			s.reqs[i].W.WriteError(s.dead)
		}
		clear(s.reqs)
	default:
		s.replica.Submit(s.clock.Now(), s.reqs)
		clear(s.reqs) // drop references to argv and writers
	}

	s.mu.Lock()
	for _, f := range s.queue[1:n] {
		f.done = true
		f.cond.Signal()
	}
	m := copy(s.queue, s.queue[n:])
	clear(s.queue[m:])
	s.queue = s.queue[:m]
	if m > 0 {
		s.queue[0].cond.Signal()
	}
	s.mu.Unlock()
}
