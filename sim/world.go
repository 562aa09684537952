package sim

import (
	crand "crypto/rand"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// eventsMax bounds the events one run may execute: a run that schedules
// without end is a bug in a scenario or a node, not a long simulation.
const eventsMax = 50_000_000

// event is one scheduled callback. Events at the same virtual time run in
// the order they were scheduled (seq), so ties never depend on the heap.
type event struct {
	at  int64
	seq uint64
	fn  func()
}

// eventHeap is a binary min-heap of events by (at, seq). Hand-written
// rather than container/heap: that one boxes every event pushed and
// popped in an interface (an allocation each) and swaps through method
// calls, some 10% of a run's CPU. (at, seq) is a total order (seq is
// unique), so any correct heap pops the same sequence.
type eventHeap []event

func (h eventHeap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}

func (h *eventHeap) push(e event) {
	*h = append(*h, e)
	q := *h
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *eventHeap) pop() event {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q[n] = event{}
	q = q[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return top
}

// World is the virtual time, the event queue, the random streams and the
// trace of one run. It is not safe for concurrent use: a run is one
// goroutine.
type World struct {
	seed   uint64
	now    int64 // virtual nanoseconds since the start of the run
	seq    uint64
	queue  eventHeap
	events int64
	trace  *Trace
	halted bool
	// salt re-seeds named streams (Variant.Salt).
	salt map[string]uint64
	// saltFrom: the salt applies to draws from then on (Variant.SaltFrom).
	saltFrom int64
}

// NewWorld returns a world at virtual time 0. trace may write lines to out
// (nil: hash only).
func NewWorld(seed uint64, out io.Writer) *World {
	return &World{seed: seed, trace: newTrace(out)}
}

// Now is the virtual time in nanoseconds since the run started. Nodes read
// their own Clock, never this.
func (w *World) Now() int64 { return w.now }

// Seed is the run's seed.
func (w *World) Seed() uint64 { return w.seed }

// Events is how many events have run.
func (w *World) Events() int64 { return w.events }

// Stream returns an independent PRNG named by what it drives ("node/1/disk",
// "client/3"). Streams are derived from the seed and the name only, so
// adding a client never reshuffles the disk faults of a node.
func (w *World) Stream(name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	seed := w.seed
	s, ok := w.salt[name]
	if !ok {
		return rand.New(rand.NewPCG(seed, h.Sum64()))
	}
	salted := rand.NewPCG(seed^(s*0x9e3779b97f4a7c15+1), h.Sum64())
	if w.saltFrom <= 0 {
		return rand.New(salted)
	}
	return rand.New(&saltFromSource{w: w, plain: rand.NewPCG(seed, h.Sum64()), salted: salted})
}

// saltFromSource draws a stream's unsalted values until the world reaches
// its saltFrom moment and the salted ones from then on: a run that keeps
// its prefix and varies what follows (Variant.SaltFrom).
type saltFromSource struct {
	w             *World
	plain, salted *rand.PCG
}

func (s *saltFromSource) Uint64() uint64 {
	if s.w.now < s.w.saltFrom {
		return s.plain.Uint64()
	}
	return s.salted.Uint64()
}

// SeedStream is the stream World.Stream(name) gives a run of seed, for
// choices made before a world exists (a scenario's swarm mix).
func SeedStream(seed uint64, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// At schedules fn at virtual time at (clamped to now: the past is gone).
func (w *World) At(at int64, fn func()) {
	if at < w.now {
		at = w.now
	}
	w.seq++
	w.queue.push(event{at: at, seq: w.seq, fn: fn})
}

// After schedules fn d after now.
func (w *World) After(d time.Duration, fn func()) { w.At(w.now+int64(d), fn) }

// Halt stops the run after the current event.
func (w *World) Halt() { w.halted = true }

// RunUntil executes events in (time, seq) order until the queue is empty,
// Halt is called, or the next event is after end. Virtual time ends at end
// (or at the last event).
func (w *World) RunUntil(end int64) {
	for len(w.queue) > 0 && !w.halted {
		if w.queue[0].at > end {
			break
		}
		e := w.queue.pop()
		w.now = e.at
		w.events++
		if w.events > eventsMax {
			panic("sim: event budget exhausted (eventsMax): a scenario or node schedules without end")
		}
		e.fn()
	}
	if !w.halted && w.now < end {
		w.now = end
	}
}

// Trace records one event line: virtual time, who, what.
func (w *World) Trace(who, what string) { w.trace.line(w.now, who, what) }

// TraceHash is the hex hash of every trace line so far.
func (w *World) TraceHash() string { return w.trace.sum() }

// TraceLines is how many lines were traced.
func (w *World) TraceLines() int64 { return w.trace.lines }

// FlushTrace flushes the trace writer, if any.
func (w *World) FlushTrace() error { return w.trace.flush() }

// cryptoMu guards the process-global crypto/rand.Reader swap: only one
// world may own it at a time.
var (
	cryptoMu     sync.Mutex
	cryptoActive bool
)

// seededReader replaces crypto/rand.Reader during a run. go.etcd.io/raft
// reads election jitter from it.
type seededReader struct{ r *rand.Rand }

func (s *seededReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s.r.Uint64())
	}
	return len(p), nil
}

// installCrypto swaps in a seeded crypto/rand.Reader and returns the undo.
// Two worlds at once in one process would share (and reorder) the stream,
// so that panics instead of silently breaking replay.
func (w *World) installCrypto() (restore func()) {
	cryptoMu.Lock()
	if cryptoActive {
		cryptoMu.Unlock()
		panic("sim: two simulated worlds at once in one process; run seeds in parallel as separate processes")
	}
	cryptoActive = true
	orig := crand.Reader
	crand.Reader = &seededReader{r: w.Stream("crypto/rand")}
	cryptoMu.Unlock()
	return func() {
		cryptoMu.Lock()
		crand.Reader = orig
		cryptoActive = false
		cryptoMu.Unlock()
	}
}
