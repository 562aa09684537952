package server

import (
	"slices"
	"sync"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/node"
	"github.com/keel-db/keel/seam"
)

// submitRequestsMax bounds one group commit: the leader stops gathering
// queued batches once it holds this many requests, so no one waits behind
// an unbounded group.
const submitRequestsMax = 8192

// execQueue serialises every call into one replica group of the node
// (node.Submit, Tick, Step, JobDone, ...): it is how the server provides
// node.Runtime.Exclusive. Connection goroutines run their own batches —
// no hand-off to an executor goroutine — under a LevelDB-style writer
// queue: the goroutine at the head of the queue is the leader; it takes
// every request batch queued behind it into one node.Submit (one log
// write, one fsync under appendfsync always), runs it without the queue
// lock, then wakes the followers whose replies are already written. Work
// that is not a request batch (a tick, INFO reading the keyspace) joins
// the same queue and runs alone when it reaches the head.
//
// A replicated group (async) answers a batch only once a majority holds
// its writes, during some later Submit, Step or Tick run by whichever
// goroutine owns the queue then. So the leader hands the group to Submit
// with a done callback, gives up the queue at once (other connections'
// batches and peer messages must go on: they are what commits it), and
// every goroutine of the group then waits on its own condition until done
// marks it answered. done runs inside the node's call, after the last
// reply was written, and takes mu to mark the waiters: that lock is what
// publishes the replies, written by another goroutine, to the connection
// that flushes them.
type execQueue struct {
	node  *node.Node
	group uint64
	clock seam.Clock
	async bool // a replicated group: submit with a done callback and wait for it
	// loops: event loops submit here (submitUnlessCall), so a queued
	// batch notes whether it calls a function (waiter.calls).
	loops bool

	mu    sync.Mutex
	queue []*waiter // head is the leader; at most one entry per connection plus ticker
	// running is how many entries at the head of queue form the group
	// being run (0 while none is): a read-only batch that moves ahead
	// of queued writes (enqueue) goes after them.
	running int

	reqs []cluster.Request // the leader's gathered group; only the leader touches it

	// Replicated groups: goroutines waiting for their batch's done, and
	// closed, set when the server stops, after which they give up waiting
	// (no tick or peer message will finish their batch any more).
	awaiting map[*waiter]struct{}
	closed   bool
	// loopBatches: event loops' batches submitted and not yet answered;
	// close abandons them.
	loopBatches map[*loopBatch]struct{}
}

// waiter is one goroutine's place in the queue. A connection keeps one
// per group and reuses it, so queuing does not allocate.
type waiter struct {
	cond sync.Cond
	reqs []cluster.Request
	fn   func()
	// read: every request of reqs only reads (readOnlyBatch); calls:
	// one calls a function (callsFunction).
	read, calls bool
	done        bool // no longer queued: its batch was handed to the node
	// answered (replicated groups): every reply of its batch is written.
	answered bool
	// lb: an event loop's batch (submitUnlessCall), told of its answer
	// instead of this waiter.
	lb *loopBatch
}

// loopBatch is an event loop's group commit on a replicated group
// (loop_linux.go): the connections whose first steps it holds, in flight
// until the group hands it back to the loop.
type loopBatch struct {
	l     *eventLoop
	conns []*conn
	// abandoned: the server stopped before the answer; the replica may
	// still write the replies, so the sessions are not touched again.
	abandoned bool
}

// answerTo is one member of a replicated group's group commit: the waiter
// to mark answered, or the event loop's batch to hand back.
type answerTo struct {
	w  *waiter
	lb *loopBatch
}

func newExecQueue(n *node.Node, g uint64, clock seam.Clock) *execQueue {
	// Placed: a group without a replica here now may get a replicated one
	// at any time (a move, node/moves.go), so its queue waits for done
	// from the start (a group not hosted answers at once, done included).
	q := &execQueue{node: n, group: g, clock: clock, async: n.Replicated(g) || n.Placed()}
	if q.async {
		q.awaiting = map[*waiter]struct{}{}
		q.loopBatches = map[*loopBatch]struct{}{}
	}
	return q
}

func (q *execQueue) newWaiter() *waiter {
	w := &waiter{}
	w.cond.L = &q.mu
	return w
}

// submit runs reqs on the group; every reply has been written when it
// returns true. False (replicated groups only) means the server is
// stopping and the batch may never be answered: the caller must not
// touch the writers of reqs again, as the replica may still write to
// them.
func (q *execQueue) submit(w *waiter, reqs []cluster.Request) bool {
	w.reqs, w.read, w.calls = reqs, readOnlyBatch(reqs), q.loops && callsFunction(reqs)
	q.run(w, false)
	w.reqs, w.read, w.calls = nil, false, false
	if !q.async {
		return true
	}
	return q.await(w)
}

// submitUnlessCall is submit for an event loop, which must not wait
// behind a function call: false, and nothing run, when one is queued or
// running. On a replicated group it does not wait for the answer either:
// it returns once the node holds the batch, and lb's loop is handed lb
// when every reply is written (loopBatch.abandoned: the server stopped
// first); lb is nil for any other group.
func (q *execQueue) submitUnlessCall(w *waiter, reqs []cluster.Request, lb *loopBatch) bool {
	w.reqs, w.read, w.lb = reqs, readOnlyBatch(reqs), lb
	ran := q.run(w, true)
	w.reqs, w.read, w.lb = nil, false, nil
	return ran
}

// await waits until w's batch is answered or the queue closes.
func (q *execQueue) await(w *waiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !w.answered && !q.closed {
		q.awaiting[w] = struct{}{}
		for !w.answered && !q.closed {
			w.cond.Wait()
		}
		delete(q.awaiting, w)
	}
	return w.answered
}

// answer marks a group's waiters answered, and hands event loops their
// batches back: the done of the group.
func (q *execQueue) answer(group []answerTo) {
	q.mu.Lock()
	for _, a := range group {
		if a.lb != nil {
			if _, ok := q.loopBatches[a.lb]; ok {
				q.handBack(a.lb, false)
			}
			continue
		}
		a.w.answered = true
		a.w.cond.Signal()
	}
	q.mu.Unlock()
}

// close wakes every goroutine waiting for an answer, and hands event
// loops their batches back abandoned: they give up.
func (q *execQueue) close() {
	q.mu.Lock()
	q.closed = true
	for w := range q.awaiting {
		w.cond.Signal()
	}
	for lb := range q.loopBatches {
		q.handBack(lb, true)
	}
	q.mu.Unlock()
}

// handBack gives lb back to its loop, answered or (abandoned) given up;
// mu held. Each loop batch is handed back once: by answer, or by close,
// or when it is gathered after close.
func (q *execQueue) handBack(lb *loopBatch, abandoned bool) {
	delete(q.loopBatches, lb)
	lb.abandoned = abandoned
	lb.l.complete(lb)
}

// do runs fn with the group held exclusively.
func (q *execQueue) do(w *waiter, fn func()) {
	w.fn = fn
	q.run(w, false)
	w.fn = nil
}

// run queues w and runs it, as the leader of a group or within one; with
// unlessCall it returns false at once, queuing nothing, when a queued
// batch calls a function, and as the leader it gathers none that does.
func (q *execQueue) run(w *waiter, unlessCall bool) bool {
	q.mu.Lock()
	if unlessCall && slices.ContainsFunc(q.queue, func(f *waiter) bool { return f.calls }) {
		q.mu.Unlock()
		return false
	}
	w.done, w.answered = false, false
	q.enqueue(w)
	for !w.done && q.queue[0] != w {
		w.cond.Wait()
	}
	if w.done {
		q.mu.Unlock()
		return true
	}
	// Leader: gather the group while holding the lock, run it without.
	n := 1
	if w.fn == nil {
		q.reqs = append(q.reqs[:0], w.reqs...)
		for n < len(q.queue) {
			f := q.queue[n]
			if f.fn != nil || len(q.reqs)+len(f.reqs) > submitRequestsMax || w.read && !f.read || unlessCall && f.calls {
				break
			}
			q.reqs = append(q.reqs, f.reqs...)
			n++
		}
	}
	var group []answerTo
	if q.async && w.fn == nil {
		group = make([]answerTo, n)
		for i, f := range q.queue[:n] {
			group[i] = answerTo{w: f, lb: f.lb}
			switch {
			case f.lb == nil:
			case q.closed: // no answer may come: given up at once
				q.handBack(f.lb, true)
			default:
				q.loopBatches[f.lb] = struct{}{}
			}
		}
	}
	q.running = n
	q.mu.Unlock()

	switch {
	case w.fn != nil:
		w.fn()
	case q.async:
		// The replica keeps the batch until done: it gets its own slice.
		reqs := slices.Clone(q.reqs)
		clear(q.reqs)
		q.node.Submit(q.group, q.clock.Now(), reqs, func() { q.answer(group) })
	default:
		q.node.Submit(q.group, q.clock.Now(), q.reqs, nil)
		clear(q.reqs) // drop references to argv and writers
	}

	if q.node.GroupBusy(q.group) {
		// The function call that held the group is over (functions.go).
		q.node.SetGroupBusy(q.group, false)
	}
	q.mu.Lock()
	q.running = 0
	for _, f := range q.queue[1:n] {
		f.done = true
		f.cond.Signal()
	}
	m := copy(q.queue, q.queue[n:])
	clear(q.queue[m:])
	q.queue = q.queue[:m]
	if m > 0 {
		q.queue[0].cond.Signal()
	}
	q.mu.Unlock()
	return true
}

// enqueue places w in the queue (mu held). A read-only batch goes ahead
// of the writes queued behind the group being run, after any reads
// already there, so that a GET does not wait for a group of thousands of
// writes queued before it: every queued batch is concurrent with every
// other (none has been answered, and a connection has at most one in the
// queue), so running the reads first is linearizable. It jumps only when
// the group at the head is not itself reads (or is work that is not a
// batch): reads and writes then alternate, and writes cannot starve.
func (q *execQueue) enqueue(w *waiter) {
	if !w.read || len(q.queue) < 2 || q.queue[0].read {
		q.queue = append(q.queue, w)
		return
	}
	i := max(q.running, 1)
	for i < len(q.queue) && q.queue[i].read {
		i++
	}
	q.queue = slices.Insert(q.queue, i, w)
}

// callsFunction reports whether a request calls a function (FCALL,
// FCALL_RO, alone or in a transaction).
func callsFunction(reqs []cluster.Request) bool {
	for i := range reqs {
		if cluster.CallsFunction(&reqs[i]) {
			return true
		}
	}
	return false
}

// readOnlyBatch reports whether every request only reads: a known
// command flagged read-only, outside a transaction.
func readOnlyBatch(reqs []cluster.Request) bool {
	for i := range reqs {
		r := &reqs[i]
		if r.Txn != nil || len(r.Argv) == 0 {
			return false
		}
		c := engine.Lookup(r.Argv[0])
		if c == nil || c.Flags&engine.ReadOnly == 0 {
			return false
		}
	}
	return len(reqs) > 0
}
