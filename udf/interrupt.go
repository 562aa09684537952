package udf

import (
	"context"
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/seam"
)

// Stopping a call while it runs. Fuel bounds a call deterministically, but
// the price of an instruction is only an estimate of its time (price.go),
// host calls cost what the store costs, and an operator must be able to
// stop a function at once (FUNCTION KILL, SHUTDOWN, SIGTERM). So a call can
// also be stopped from outside, by the runtime, two ways:
//
//   - its context ends: Call and FCall take a context, and
//     Config.WithCallContext lets the runtime derive each call's context
//     (a deadline: the per-call wall-clock bound) without the replica in
//     between knowing about it;
//   - Guard.Kill/KillAll/FunctionKill, from any goroutine.
//
// Either way the host sets the running instance's stop global and raises
// its mark (meter.go), so the guest's next fuel check calls the tick, which
// traps: at its next loop iteration, function entry or bulk instruction,
// or at its next host call, which checks too. (That another goroutine gets
// to run at all while a guest loops is the tick's other job.) The call
// then fails with "ERR function 'f' killed: <cause>", returns no effects,
// and its instance is closed (the next call gets a fresh one), as after
// any failure.
//
// Determinism. udf itself reads no clock and starts no goroutine: the
// deadline is the runtime's context, and the watch on it is
// context.AfterFunc, which costs nothing until the context ends and then
// runs the stop on the goroutine of whoever ended it. A simulation passes
// contexts that never end, so nothing here fires there. A wall-clock stop
// is not a function of the log, and need not be: only the leader runs
// guest code, and a stopped call logs nothing, so followers and recovery,
// which replay effects and never run guests, see the same log whatever the
// leader's clock did.

// ErrFunctionKill is the cause of a call stopped by FUNCTION KILL.
var ErrFunctionKill = errors.New("Script killed by user with FUNCTION KILL")

// Redis's replies about running functions, word for word (redis-server
// 7.0.15): BusyMessage is what a command other than FUNCTION KILL,
// SHUTDOWN NOSAVE and the few that Redis allows while busy answers once a
// function has run longer than busy-reply-threshold.
const (
	BusyMessage       = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
	NotBusyMessage    = "NOTBUSY No scripts in execution right now."
	UnkillableMessage = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
)

// IsKilled reports whether err is the error of a call stopped from
// outside (a context that ended, Guard.Kill), rather than one that failed
// on its own.
func IsKilled(err error) bool {
	var ue *Error
	return errors.As(err, &ue) && ue.killed
}

func killedError(fn string, cause error) *Error {
	why := "stopped"
	if cause != nil {
		why = cause.Error()
	}
	return &Error{msg: "ERR function '" + fn + "' killed: " + why, killed: true}
}

// runState is the part of a Host that other goroutines touch while a call
// runs; everything else in Host belongs to its owner.
type runState struct {
	mu     sync.Mutex
	active bool
	info   CallInfo  // the running call (Keys and Args alias its request)
	inst   *instance // the running instance, once it exists
	cause  error     // why the call was stopped; nil while it may run
	// stopped is cause != nil, read by host calls without the lock.
	stopped atomic.Bool
	// wrote is set once the call buffers a write.
	wrote  atomic.Bool
	lastID uint64 // without a Guard: the last call's ID
}

// begin marks st as the running call and returns its ID.
func (h *Host) begin(st *callState) uint64 {
	var id uint64
	var started int64
	if g := h.cfg.guard; g != nil {
		id = g.seq.Add(1)
		if g.clock != nil {
			started = g.clock.Now()
		}
	}
	r := &h.run
	r.mu.Lock()
	if id == 0 {
		r.lastID++
		id = r.lastID
	}
	r.active, r.inst, r.cause = true, nil, nil
	r.stopped.Store(false)
	r.wrote.Store(false)
	r.info = CallInfo{ID: id, Library: st.lib.name, Function: st.fn, Keys: st.keys, Args: st.args, ReadOnly: st.readOnly, Started: started}
	r.mu.Unlock()
	return id
}

// attach gives the running call's instance to interrupt, and stops it at
// once if the call was stopped while it was being created.
func (h *Host) attach(inst *instance) {
	r := &h.run
	r.mu.Lock()
	r.inst = inst
	if r.cause != nil {
		inst.halt()
	}
	r.mu.Unlock()
}

// halt makes the guest trap at its next fuel check: the stop global
// first, so that the tick the mark brings on sees it. The guest reads both
// outside Go: aligned 64-bit stores, seen at its next check.
func (inst *instance) halt() {
	if inst.stop != nil {
		inst.stop.Set(1)
		inst.mark.Set(math.MaxInt64)
	}
}

// end marks the call finished and returns why it was stopped (nil if it
// was not). Nothing touches the call's instance from outside afterwards.
func (h *Host) end() error {
	r := &h.run
	r.mu.Lock()
	cause := r.cause
	r.active, r.inst, r.info = false, nil, CallInfo{}
	r.mu.Unlock()
	return cause
}

// interruptResult is what interrupt did.
type interruptResult uint8

const (
	notRunning interruptResult = iota // the call had ended
	stopped                           // the call is stopped (now or before)
	refused                           // unlessWrote, and the call has written
)

// interrupt stops call id if it is still running; safe from any
// goroutine. unlessWrote leaves a call that has written alone (FUNCTION
// KILL's rule).
func (h *Host) interrupt(id uint64, cause error, unlessWrote bool) interruptResult {
	if cause == nil {
		cause = errors.New("stopped")
	}
	r := &h.run
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.active || r.info.ID != id {
		return notRunning
	}
	if r.cause != nil {
		return stopped
	}
	if unlessWrote && r.wrote.Load() {
		return refused
	}
	r.cause = cause
	r.stopped.Store(true)
	if r.inst != nil {
		r.inst.halt()
	}
	return stopped
}

// checkStopped ends the call in a host call if it was stopped, or if its
// context has ended (the AfterFunc may not have run yet: a deadline seen
// here stops the call at this host call, not some instructions later).
func (h *Host) checkStopped(st *callState) {
	if st.ctxDone && st.ctx.Err() != nil {
		h.interrupt(st.id, context.Cause(st.ctx), false)
	}
	if !h.run.stopped.Load() {
		return
	}
	h.run.mu.Lock()
	cause := h.run.cause
	h.run.mu.Unlock()
	st.fail(killedError(st.fn, cause))
}

// noteWrite records that the call has buffered a write (FUNCTION KILL
// then refuses to stop it, as Redis does).
func (st *callState) noteWrite() {
	if !st.wrote && st.h != nil {
		st.wrote = true
		st.h.run.wrote.Store(true)
	}
}

// Guard is the runtime's handle on the calls that Hosts run, for use from
// other goroutines: to see what runs (FUNCTION STATS, -BUSY replies) and
// stop it (FUNCTION KILL, shutdown). Give the same Guard to every Host of a
// node (Config.WithGuard); all its methods are safe for concurrent use.
type Guard struct {
	clock seam.Clock
	seq   atomic.Uint64
	mu    sync.Mutex
	hosts []*Host
}

// NewGuard returns a guard. clock, if not nil, stamps each call's
// CallInfo.Started (the runtime's clock: nothing in udf decides by it).
func NewGuard(clock seam.Clock) *Guard { return &Guard{clock: clock} }

// CallInfo describes a call in progress.
type CallInfo struct {
	// ID numbers the calls of a Guard's hosts from 1, in the order they
	// started.
	ID                uint64
	Library, Function string
	// Keys and Args are the call's (copies, in Running's result).
	Keys, Args [][]byte
	// ReadOnly is FCALL_RO: the call cannot write.
	ReadOnly bool
	// Wrote: the call has buffered at least one write. Nothing it wrote
	// is visible until it returns, and a stopped call's writes are
	// discarded, but FUNCTION KILL follows Redis and does not stop it.
	Wrote bool
	// Started is the Guard's clock when the call began (0 without one),
	// in its unit (seam.Clock: Unix nanoseconds).
	Started int64
}

func (g *Guard) add(h *Host) {
	g.mu.Lock()
	g.hosts = append(g.hosts, h)
	g.mu.Unlock()
}

func (g *Guard) remove(h *Host) {
	g.mu.Lock()
	for i, o := range g.hosts {
		if o == h {
			g.hosts = append(g.hosts[:i], g.hosts[i+1:]...)
			break
		}
	}
	g.mu.Unlock()
}

// running returns the hosts with a call in progress and their calls'
// information, by ID.
func (g *Guard) running() ([]*Host, []CallInfo) {
	g.mu.Lock()
	hosts := append([]*Host(nil), g.hosts...)
	g.mu.Unlock()
	var hs []*Host
	var out []CallInfo
	for _, h := range hosts {
		r := &h.run
		r.mu.Lock()
		if r.active {
			c := r.info
			c.Keys, c.Args = copyArgs(c.Keys), copyArgs(c.Args)
			c.Wrote = r.wrote.Load()
			hs, out = append(hs, h), append(out, c)
		}
		r.mu.Unlock()
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return out[idx[a]].ID < out[idx[b]].ID })
	sh, so := make([]*Host, len(idx)), make([]CallInfo, len(idx))
	for i, j := range idx {
		sh[i], so[i] = hs[j], out[j]
	}
	return sh, so
}

func copyArgs(in [][]byte) [][]byte {
	out := make([][]byte, len(in))
	for i, b := range in {
		out[i] = append([]byte(nil), b...)
	}
	return out
}

// Running returns the calls in progress, by ID.
func (g *Guard) Running() []CallInfo {
	_, calls := g.running()
	return calls
}

// Kill stops call id if it is still running, whatever it wrote (its
// writes are discarded: nothing of it is applied). It reports whether it
// did.
func (g *Guard) Kill(id uint64, cause error) bool {
	hosts, calls := g.running()
	for i, c := range calls {
		if c.ID == id {
			return hosts[i].interrupt(id, cause, false) == stopped
		}
	}
	return false
}

// KillAll stops every call in progress (shutdown) and returns how many.
func (g *Guard) KillAll(cause error) int {
	hosts, calls := g.running()
	n := 0
	for i, c := range calls {
		if hosts[i].interrupt(c.ID, cause, false) == stopped {
			n++
		}
	}
	return n
}

// FunctionKill is FUNCTION KILL: it stops every call in progress that has
// not written (cause ErrFunctionKill) and returns nil if it stopped one;
// otherwise an *Error whose Message is Redis's reply: NotBusyMessage when
// no call runs, UnkillableMessage when every running call has written.
func (g *Guard) FunctionKill() error {
	hosts, calls := g.running()
	n, wrote := 0, false
	for i, c := range calls {
		switch hosts[i].interrupt(c.ID, ErrFunctionKill, true) {
		case stopped:
			n++
		case refused:
			wrote = true
		}
	}
	switch {
	case n > 0:
		return nil
	case wrote:
		return &Error{msg: UnkillableMessage}
	}
	return &Error{msg: NotBusyMessage}
}
