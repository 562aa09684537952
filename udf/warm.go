package udf

import (
	"bytes"
	"context"
	"math/bits"

	"github.com/cockroachdb/errors"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Instance reuse. Creating a wazero instance for every call cost most of a
// call (instantiation, a new call engine per exported function, and the
// garbage both leave), so each library keeps one warm instance between
// calls and puts it back into the state a fresh instance has:
//
//   - Image: right after instantiation (before _initialize, which runs on
//     every call as before) the library's state is a pure function of the
//     module: data segments copied into zeroed memory, globals set by their
//     constant initializers, no code run (a module with a start function is
//     never reused). The first instance's linear memory and mutable globals
//     are copied once into the library's image.
//   - Reset: after a call that succeeded, every mutable global is set back
//     (meterModule exports them all, fuel and oom included) and the chunks
//     of linear memory the call may have written are copied back from the
//     image: the metering pass marks a chunk's bit in a global before every
//     store (all bits before memory.fill/copy/init), and the host marks the
//     bytes it writes (callState.written). Unmetered modules (a measuring
//     aid) have no marks and get their whole memory copied back. A call
//     that grew memory cannot be undone (wazero does not shrink a memory),
//     so that instance is closed instead.
//   - Anything else an instance holds is either constant (code, imports)
//     or refused at load for reuse (tables changed by table.set/grow/fill/
//     copy/init, segments dropped by data.drop/elem.drop, mutable globals of
//     reference or vector type): such libraries get a fresh instance per
//     call, as before.
//   - A call that fails in any way (trap, fuel, memory, abort, proc_exit, a
//     refused host call, a cancelled context) closes its instance: the next
//     call instantiates afresh.
//
// So every call starts from the same bytes and the same globals as a fresh
// instance, and its verdict, fuel and effects are the same as they were
// with an instance per call (TestWarmInstanceMatchesFresh compares the two
// byte for byte after random calls). The Host is single-threaded, so one
// warm instance per library is enough.

// warmBytesMax bounds the memory warm instances and their images hold
// across all libraries (each costs twice its initial memory). A library
// that would exceed it gets a fresh instance per call.
const warmBytesMax = 64 << 20

// instance is one guest instance and what a call needs from it, looked up
// once.
type instance struct {
	mod     api.Module
	mem     api.Memory
	fuel    api.MutableGlobal // nil when unmetered
	stop    api.MutableGlobal // nil when unmetered
	mark    api.MutableGlobal // nil when unmetered
	oom     api.Global
	depth   api.Global        // nil when unmetered
	dirty   api.MutableGlobal // nil when unmetered: restore everything
	shift   uint32            // log2 of a dirty chunk's size
	init    api.Function      // _initialize, or nil
	fns     map[string]api.Function
	globals []api.MutableGlobal // in resetPlan.globals order
}

// image is a library's state right after instantiation.
type image struct {
	mem     []byte
	globals []uint64
	bytes   int // charged to Host.warmBytes
}

// instance returns the library's warm instance, or a new one.
func (h *Host) instance(ctx context.Context, lib *Library) (*instance, error) {
	if inst := lib.warm; inst != nil {
		lib.warm = nil
		return inst, nil
	}
	h.stats.Instances++
	mod, err := h.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, h.mem), lib.compiled, h.modCfg)
	if err != nil {
		return nil, err
	}
	inst := &instance{mod: mod, mem: mod.Memory(), fns: map[string]api.Function{}}
	if g, ok := mod.ExportedGlobal(fuelGlobalName).(api.MutableGlobal); ok {
		inst.fuel = g
	}
	stop, okStop := mod.ExportedGlobal(stopGlobalName).(api.MutableGlobal)
	mark, okMark := mod.ExportedGlobal(markGlobalName).(api.MutableGlobal)
	if okStop && okMark {
		inst.stop, inst.mark = stop, mark
	}
	inst.oom = mod.ExportedGlobal(oomGlobalName)
	inst.depth = mod.ExportedGlobal(depthGlobalName)
	if g, ok := mod.ExportedGlobal(dirtyGlobalName).(api.MutableGlobal); ok {
		inst.dirty, inst.shift = g, lib.reset.dirtyShift
	}
	if lib.hasInit {
		inst.init = mod.ExportedFunction("_initialize")
	}
	if !lib.reset.reusable {
		return inst, nil
	}
	for _, name := range lib.reset.globals {
		g, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		if !ok {
			_ = mod.Close(ctx)
			return nil, errors.AssertionFailedf("udf: library %s lost its global export %s", lib.name, name)
		}
		inst.globals = append(inst.globals, g)
	}
	if lib.image == nil {
		h.takeImage(lib, inst)
	}
	return inst, nil
}

// takeImage records a fresh instance's state as the library's image, if
// the warm budget allows.
func (h *Host) takeImage(lib *Library, inst *instance) {
	size := inst.mem.Size()
	charge := 2 * int(size)
	if h.warmBytes+charge > warmBytesMax {
		return
	}
	buf, ok := inst.mem.Read(0, size)
	if !ok {
		return
	}
	img := &image{mem: append([]byte(nil), buf...), globals: make([]uint64, len(inst.globals)), bytes: charge}
	for i, g := range inst.globals {
		img.globals[i] = g.Get()
	}
	h.warmBytes += charge
	lib.image = img
}

// function returns the instance's export fn, looked up once.
func (inst *instance) function(fn string) api.Function {
	f, ok := inst.fns[fn]
	if !ok {
		f = inst.mod.ExportedFunction(fn)
		inst.fns[fn] = f
	}
	return f
}

// release takes back the instance of a call that succeeded: reset to the
// image and kept warm, or closed when it cannot be reset.
func (h *Host) release(ctx context.Context, lib *Library, inst *instance) {
	img := lib.image
	if img == nil || lib.warm != nil || h.libs[lib.name] != lib {
		h.discard(ctx, inst)
		return
	}
	buf, ok := inst.mem.Read(0, inst.mem.Size())
	if !ok || len(buf) != len(img.mem) {
		// The call grew memory: a fresh instance is smaller.
		h.discard(ctx, inst)
		return
	}
	mask := ^uint64(0)
	if inst.dirty != nil {
		mask = inst.dirty.Get()
	}
	if mask == ^uint64(0) {
		copy(buf, img.mem)
		h.stats.ResetBytes += int64(len(buf))
	} else {
		// A store marks the chunk of its first byte; it may end in the next.
		mask |= mask << 1
		for mask != 0 {
			c := uint32(bits.TrailingZeros64(mask))
			mask &= mask - 1
			lo := uint64(c) << inst.shift
			if lo >= uint64(len(buf)) {
				break
			}
			hi := min(lo+uint64(1)<<inst.shift, uint64(len(buf)))
			copy(buf[lo:hi], img.mem[lo:hi])
			h.stats.ResetBytes += int64(hi - lo)
		}
	}
	for i, g := range inst.globals {
		g.Set(img.globals[i])
	}
	if verifyResets && !bytes.Equal(buf, img.mem) {
		panic(errors.AssertionFailedf("udf: library %s: memory written outside the dirty marks", lib.name))
	}
	lib.warm = inst
}

// verifyResets makes release compare the whole reset memory with the
// image: the tests turn it on, so that a store path the marks miss fails
// every test that takes it.
var verifyResets = false

// written marks guest bytes [ptr, ptr+n) the host is about to write, so
// that release copies them back. Call it before every host write into
// guest memory.
func (st *callState) written(ptr, n uint32) {
	if st.inst == nil || st.inst.dirty == nil || n == 0 {
		// No instance yet: a start function runs while it is created, and
		// a module with one is never reused.
		return
	}
	d := st.inst.dirty
	lo := uint64(ptr) >> st.inst.shift
	hi := (uint64(ptr) + uint64(n) - 1) >> st.inst.shift
	m := ^uint64(0) // past the initial memory: mark all
	if hi < 64 {
		m = (uint64(1)<<(hi-lo+1) - 1) << lo // 1<<64 is 0 in Go: all 64 bits
	}
	d.Set(d.Get() | m)
}

// discard closes an instance that will not serve another call.
func (h *Host) discard(ctx context.Context, inst *instance) {
	_ = inst.mod.Close(ctx)
}

// dropWarm closes a library's warm instance and returns its budget.
func (h *Host) dropWarm(ctx context.Context, lib *Library) {
	if lib.warm != nil {
		h.discard(ctx, lib.warm)
		lib.warm = nil
	}
	if lib.image != nil {
		h.warmBytes -= lib.image.bytes
		lib.image = nil
	}
}
