package server

import (
	"slices"
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
//
// In cluster mode (async) a batch on a replicated group is answered only
// once a majority holds its writes, during some later SubmitAsync, Step or
// Tick run by whichever goroutine owns the shard then. So the leader hands
// the group to SubmitAsync, gives up the queue at once (other connections'
// batches and peer messages must go on: they are what commits it), and
// every goroutine of the group then waits on its own condition until the
// batch's done callback marks it answered. done runs inside the replica's
// call, after the last reply was written, and takes mu to mark the
// waiters: that lock is what publishes the replies, written by another
// goroutine, to the connection that flushes them.
type shard struct {
	replica *cluster.Replica
	clock   seam.Clock
	async   bool // cluster mode: submit with SubmitAsync and wait for done

	mu    sync.Mutex
	queue []*waiter // head is the leader; at most one entry per connection plus ticker

	reqs []cluster.Request // the leader's gathered group; only the leader touches it

	// dead, once set (by the leader), answers every request with this
	// error instead of touching the replica: it was closed after a disk
	// failure and could not be reopened.
	dead string

	// Cluster mode: goroutines waiting for their batch's done, and closed,
	// set when the server stops, after which they give up waiting (no
	// tick or peer message will finish their batch any more).
	awaiting map[*waiter]struct{}
	closed   bool
}

// waiter is one goroutine's place in the queue. A connection keeps one and
// reuses it, so queuing does not allocate.
type waiter struct {
	cond sync.Cond
	reqs []cluster.Request
	fn   func(*cluster.Replica)
	done bool // no longer queued: its batch was handed to the replica
	// answered (cluster mode): every reply of its batch is written.
	answered bool
}

func newShard(r *cluster.Replica, clock seam.Clock, async bool) *shard {
	s := &shard{replica: r, clock: clock, async: async}
	if async {
		s.awaiting = map[*waiter]struct{}{}
	}
	return s
}

func (s *shard) newWaiter() *waiter {
	w := &waiter{}
	w.cond.L = &s.mu
	return w
}

// submit runs reqs on the replica; every reply has been written when it
// returns true. False (cluster mode only) means the server is stopping and
// the batch may never be answered: the caller must not touch the writers
// of reqs again, as the replica may still write to them.
func (s *shard) submit(w *waiter, reqs []cluster.Request) bool {
	w.reqs = reqs
	s.run(w)
	w.reqs = nil
	if !s.async {
		return true
	}
	return s.await(w)
}

// await waits until w's batch is answered or the shard closes.
func (s *shard) await(w *waiter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !w.answered && !s.closed {
		s.awaiting[w] = struct{}{}
		for !w.answered && !s.closed {
			w.cond.Wait()
		}
		delete(s.awaiting, w)
	}
	return w.answered
}

// answer marks a group's waiters answered: the done of their batch.
func (s *shard) answer(group []*waiter) {
	s.mu.Lock()
	for _, g := range group {
		g.answered = true
		g.cond.Signal()
	}
	s.mu.Unlock()
}

// close wakes every goroutine waiting for an answer; they give up.
func (s *shard) close() {
	s.mu.Lock()
	s.closed = true
	for w := range s.awaiting {
		w.cond.Signal()
	}
	s.mu.Unlock()
}

// do runs fn with exclusive ownership of the replica.
func (s *shard) do(w *waiter, fn func(*cluster.Replica)) {
	w.fn = fn
	s.run(w)
	w.fn = nil
}

func (s *shard) run(w *waiter) {
	s.mu.Lock()
	w.done, w.answered = false, false
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
	var group []*waiter
	if s.async && w.fn == nil {
		group = slices.Clone(s.queue[:n])
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
		if group != nil {
			s.answer(group)
		}
	case s.async:
		// The replica keeps the batch until done: it gets its own slice.
		reqs := slices.Clone(s.reqs)
		clear(s.reqs)
		s.replica.SubmitAsync(s.clock.Now(), reqs, func() { s.answer(group) })
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
