package udf

import (
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
	"github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/leb128"
	"github.com/tetratelabs/wabin/wasm"
)

// Fuel metering rewrites a guest module once, at load, so that it counts
// its own work and traps when it runs out. Counting inside the guest (not a
// wall-clock deadline) makes the verdict a pure function of the module, its
// inputs and the fuel given: a replayed simulation stops a runaway guest at
// the same instruction every time.
//
// The rewrite adds five exported mutable globals and one function:
//   - fuelGlobalName (i64): the fuel left. Every function entry and every
//     loop header subtracts the price of the instructions the guest may run
//     before it reaches the next such point (a loop body's own
//     instructions, nested loops excluded; most cost one unit, the dearer
//     ones their price, price.go), and calls the tick function once the
//     fuel drops below the mark global. The bulk instructions
//     (memory.fill/copy/init, table.fill/copy/init) are also charged by
//     their size, just before they run, so that one that would exhaust the
//     fuel traps without doing the work. The host tells "out of fuel" from
//     any other trap by reading the global afterwards.
//   - markGlobalName (i64) and the tick function: the tick traps with
//     `unreachable` when the fuel is below zero or the stop global is set,
//     and otherwise moves the mark tickFuel units further down (not below
//     zero) and runs memory.grow 0, which wazero serves in Go. That is the
//     guest's way back into Go every tickFuel units: code wazero compiled
//     cannot be preempted, so without it a guest that loops holds its
//     goroutine, and a garbage collection that must stop the world waits
//     for it, freezing every goroutine of the server, the ones that would
//     answer FUNCTION KILL or SIGTERM included (issue 15). In the common
//     path the check costs what a compare with the constant 0 cost.
//   - depthGlobalName (i64): the call stack in use, in units of about 32
//     bytes of wazero's native stack: every call to a guest function
//     adds the caller's frame (callFrameUnits) before and takes it back
//     after, and traps past callStackUnitsMax. Without it a plain
//     recursion ran 1.5 million calls deep within the default fuel, made
//     wazero grow its stack to 100 MB (161 MB allocated) and took 300 ms,
//     where its fuel stood for a few.
//   - stopGlobalName (i64): 0 while the call may run. To stop a running
//     call from another goroutine (FUNCTION KILL, a deadline, shutdown) the
//     host sets it, then sets the mark to MaxInt64, so the next fuel check
//     ticks and the tick traps (interrupt.go). The guest never writes the
//     stop global, so the stop cannot be lost; if the tick happens to
//     overwrite the mark at the same moment, the stop waits for the next
//     tick, tickFuel units later.
//   - oomGlobalName (i32): set to 1 when a memory.grow failed, so a trap
//     that follows can be reported as "memory limit" rather than a bare
//     out-of-bounds access.
//   - dirtyGlobalName (i64): one bit per 64th of the initial memory (at
//     least 1 KiB a chunk), set by code inserted before every store
//     (memory.fill/copy/init set them all) and by the host for the bytes it
//     writes, so that resetting a warm instance copies back only the chunks
//     a call may have changed (warm.go).
//
// Inserted code is self-contained (a balanced if/end, or a store's operands
// put back as they were) and placed at an instruction boundary, so branch
// depths, local indices (scratch locals are appended after the guest's own)
// and function indices stay valid.
//
// The same pass prepares instance reuse (warm.go): it exports every
// mutable global (under globalExportPrefix plus its index, or the fuel and
// oom names), so the host can put each back to its initial value after a
// call, and it looks for the instructions that change state the host
// cannot reset (tables, dropped segments) and for a start function.
const (
	fuelGlobalName  = "__keel_fuel"
	stopGlobalName  = "__keel_stop"
	markGlobalName  = "__keel_mark"
	depthGlobalName = "__keel_depth"
	oomGlobalName   = "__keel_oom"
	dirtyGlobalName = "__keel_dirty"
	// reservedExportPrefix starts every export name keel adds; a module
	// exporting such a name itself is refused.
	reservedExportPrefix = "__keel_"
	globalExportPrefix   = "__keel_global_"
)

// resetPlan says whether an instance of a library may serve more than one
// call, and how to bring it back to the state a fresh instance has.
type resetPlan struct {
	// reusable is false when the module can change state that the host
	// cannot restore; why then says what (for tests and docs).
	reusable bool
	why      string
	// globals are the export names of every mutable global, in index
	// order: the values to put back after a call.
	globals []string
	// dirtyShift is log2 of the chunk size of dirtyGlobalName's bits.
	dirtyShift uint32
}

// meterModule instruments every function body of m (which it changes;
// mod is the module m was decoded from) and returns the encoded module,
// with fuel metering unless meter is false (a measuring aid only:
// BenchmarkLoopGuard), and the module's reset plan.
func meterModule(mod []byte, m *wasm.Module, fuel int64, meter bool) ([]byte, resetPlan, error) {
	plan := resetPlan{reusable: true}
	noReuse := func(why string) {
		if plan.reusable {
			plan.reusable, plan.why = false, why
		}
	}
	for _, e := range m.ExportSection {
		if strings.HasPrefix(e.Name, reservedExportPrefix) {
			return nil, plan, errors.Newf("module exports %q: names starting with %q are reserved for keel", e.Name, reservedExportPrefix)
		}
	}
	tablesChanged, err := boundTables(m)
	if err != nil {
		return nil, plan, err
	}
	if m.StartSection != nil {
		// It would run once per instance, not once per call, with the
		// time, randomness and fuel of whichever call created the instance.
		noReuse("it has a start function")
	}
	fuelIdx := m.ImportGlobalCount() + uint32(len(m.GlobalSection))
	oomIdx, dirtyIdx, stopIdx, markIdx, depthIdx := fuelIdx+1, fuelIdx+2, fuelIdx+3, fuelIdx+4, fuelIdx+5
	nImportFuncs := m.ImportFuncCount()
	tickIdx := nImportFuncs + uint32(len(m.CodeSection))
	if err := checkFuncIndices(m, tickIdx); err != nil {
		return nil, plan, err
	}
	var minPages uint32
	if m.MemorySection != nil {
		minPages = m.MemorySection.Min
	}
	plan.dirtyShift = dirtyShiftFor(minPages)
	if meter {
		m.GlobalSection = append(m.GlobalSection,
			&wasm.Global{
				Type: &wasm.GlobalType{ValType: wasm.ValueTypeI64, Mutable: true},
				Init: &wasm.ConstantExpression{Opcode: wasm.OpcodeI64Const, Data: leb128.EncodeInt64(fuel)},
			},
			&wasm.Global{
				Type: &wasm.GlobalType{ValType: wasm.ValueTypeI32, Mutable: true},
				Init: &wasm.ConstantExpression{Opcode: wasm.OpcodeI32Const, Data: leb128.EncodeInt32(0)},
			},
			&wasm.Global{
				Type: &wasm.GlobalType{ValType: wasm.ValueTypeI64, Mutable: true},
				Init: &wasm.ConstantExpression{Opcode: wasm.OpcodeI64Const, Data: leb128.EncodeInt64(0)},
			},
			&wasm.Global{
				Type: &wasm.GlobalType{ValType: wasm.ValueTypeI64, Mutable: true},
				Init: &wasm.ConstantExpression{Opcode: wasm.OpcodeI64Const, Data: leb128.EncodeInt64(0)},
			},
			&wasm.Global{
				Type: &wasm.GlobalType{ValType: wasm.ValueTypeI64, Mutable: true},
				Init: &wasm.ConstantExpression{Opcode: wasm.OpcodeI64Const, Data: leb128.EncodeInt64(max(fuel-tickFuel, 0))},
			},
			&wasm.Global{
				Type: &wasm.GlobalType{ValType: wasm.ValueTypeI64, Mutable: true},
				Init: &wasm.ConstantExpression{Opcode: wasm.OpcodeI64Const, Data: leb128.EncodeInt64(0)},
			})
		m.ExportSection = append(m.ExportSection,
			&wasm.Export{Name: fuelGlobalName, Type: wasm.ExternTypeGlobal, Index: fuelIdx},
			&wasm.Export{Name: oomGlobalName, Type: wasm.ExternTypeGlobal, Index: oomIdx},
			&wasm.Export{Name: dirtyGlobalName, Type: wasm.ExternTypeGlobal, Index: dirtyIdx},
			&wasm.Export{Name: stopGlobalName, Type: wasm.ExternTypeGlobal, Index: stopIdx},
			&wasm.Export{Name: markGlobalName, Type: wasm.ExternTypeGlobal, Index: markIdx},
			&wasm.Export{Name: depthGlobalName, Type: wasm.ExternTypeGlobal, Index: depthIdx})
	}
	for i, g := range m.GlobalSection {
		if !g.Type.Mutable {
			continue
		}
		idx := m.ImportGlobalCount() + uint32(i)
		switch g.Type.ValType {
		case wasm.ValueTypeI32, wasm.ValueTypeI64, wasm.ValueTypeF32, wasm.ValueTypeF64:
		default:
			// api.MutableGlobal sets 64 bits; references and vectors are
			// not put back through it.
			noReuse("it has a mutable " + wasm.ValueTypeName(g.Type.ValType) + " global")
		}
		name := globalExportPrefix + strconv.FormatUint(uint64(idx), 10)
		switch {
		case meter && idx == fuelIdx:
			name = fuelGlobalName
		case meter && idx == oomIdx:
			name = oomGlobalName
		case meter && idx == dirtyIdx:
			name = dirtyGlobalName
		case meter && idx == stopIdx:
			name = stopGlobalName
		case meter && idx == markIdx:
			name = markGlobalName
		case meter && idx == depthIdx:
			name = depthGlobalName
		default:
			m.ExportSection = append(m.ExportSection, &wasm.Export{Name: name, Type: wasm.ExternTypeGlobal, Index: idx})
		}
		plan.globals = append(plan.globals, name)
	}

	for i, code := range m.CodeSection {
		if int(m.FunctionSection[i]) >= len(m.TypeSection) {
			return nil, plan, errors.Newf("function %d has an invalid type index", nImportFuncs+uint32(i))
		}
		ft := m.TypeSection[m.FunctionSection[i]]
		nLocals := uint32(len(ft.Params) + len(code.LocalTypes))
		rw := rewrite{meter: meter, fuelIdx: fuelIdx, oomIdx: oomIdx, dirtyIdx: dirtyIdx, markIdx: markIdx, tickIdx: tickIdx,
			depthIdx: depthIdx, importFuncs: nImportFuncs, frame: callFrameUnits(nLocals + uint32(len(scratchLocals))),
			dirtyShift: plan.dirtyShift, scratch: nLocals}
		body, usedScratch, mutates, err := meterBody(code.Body, rw)
		if err != nil {
			return nil, plan, errors.Wrapf(err, "function %d", nImportFuncs+uint32(i))
		}
		if mutates != "" {
			noReuse("it uses " + mutates)
		}
		if !meter {
			continue
		}
		code.Body = body
		if usedScratch {
			code.LocalTypes = append(code.LocalTypes, scratchLocals...)
		}
	}
	// Only the sections the rewrite changed are encoded again; every other
	// section is copied as uploaded. wabin decodes more than it can encode
	// (passive and declarative element segments made EncodeModule panic,
	// so a 116-byte upload crashed the server; the data count section it
	// drops), and copying leaves nothing to that.
	var repl [sectionIDsMax][]byte
	if meter {
		// The tick goes last in the function index space, so no index the
		// guest uses changes. A func() type exists: every callable
		// function has one.
		ty := -1
		for i, t := range m.TypeSection {
			if len(t.Params) == 0 && len(t.Results) == 0 {
				ty = i
				break
			}
		}
		if ty < 0 {
			return nil, plan, errors.New("no func() type")
		}
		m.FunctionSection = append(m.FunctionSection, uint32(ty))
		m.CodeSection = append(m.CodeSection, tickFunction(fuelIdx, stopIdx, markIdx))
		repl[wasm.SectionIDFunction] = encodeSection(&wasm.Module{FunctionSection: m.FunctionSection})
	}
	repl[wasm.SectionIDGlobal] = encodeSection(&wasm.Module{GlobalSection: m.GlobalSection})
	repl[wasm.SectionIDExport] = encodeSection(&wasm.Module{ExportSection: m.ExportSection})
	repl[wasm.SectionIDCode] = encodeSection(&wasm.Module{CodeSection: m.CodeSection})
	if tablesChanged {
		repl[wasm.SectionIDTable] = encodeSection(&wasm.Module{TableSection: m.TableSection})
	}
	out, err := spliceSections(mod, &repl)
	if err != nil {
		return nil, plan, err
	}
	return out, plan, nil
}

// fuelCheck returns the instructions that charge cost units and trap when
// the fuel is exhausted or the call is stopped:
//
//	global.get $fuel; i64.const cost; i64.sub; global.set $fuel
//	global.get $fuel; global.get $stop; i64.lt_s; if unreachable end
func fuelCheck(dst []byte, rw rewrite, cost int64) []byte {
	g := leb128.EncodeUint32(rw.fuelIdx)
	dst = append(dst, wasm.OpcodeGlobalGet)
	dst = append(dst, g...)
	dst = append(dst, wasm.OpcodeI64Const)
	dst = append(dst, leb128.EncodeInt64(cost)...)
	dst = append(dst, wasm.OpcodeI64Sub, wasm.OpcodeGlobalSet)
	dst = append(dst, g...)
	return fuelTrap(dst, rw)
}

// fuelTrap calls the tick function when the fuel global is below the mark
// global: to trap when the fuel is out or the call was stopped, and
// otherwise to pass through Go.
func fuelTrap(dst []byte, rw rewrite) []byte {
	dst = append(dst, wasm.OpcodeGlobalGet)
	dst = append(dst, leb128.EncodeUint32(rw.fuelIdx)...)
	dst = append(dst, wasm.OpcodeGlobalGet)
	dst = append(dst, leb128.EncodeUint32(rw.markIdx)...)
	dst = append(dst, wasm.OpcodeI64LtS, wasm.OpcodeIf, 0x40, wasm.OpcodeCall)
	dst = append(dst, leb128.EncodeUint32(rw.tickIdx)...)
	return append(dst, wasm.OpcodeEnd)
}

// checkFuncIndices refuses a function index at or past end (the number
// of functions) outside code: the rewrite adds the tick there, which such
// an index, invalid in the upload, would then name. (Code is checked by
// meterBody.)
func checkFuncIndices(m *wasm.Module, end uint32) error {
	bad := func(idx uint32, where string) error {
		if idx >= end {
			return errors.Newf("function index %d out of range in %s", idx, where)
		}
		return nil
	}
	for _, e := range m.ExportSection {
		if e.Type == wasm.ExternTypeFunc {
			if err := bad(e.Index, "export "+strconv.Quote(e.Name)); err != nil {
				return err
			}
		}
	}
	if m.StartSection != nil {
		if err := bad(*m.StartSection, "the start section"); err != nil {
			return err
		}
	}
	for i, seg := range m.ElementSection {
		for _, idx := range seg.Init {
			if idx != nil {
				if err := bad(*idx, "element segment "+strconv.Itoa(i)); err != nil {
					return err
				}
			}
		}
	}
	for i, g := range m.GlobalSection {
		if g.Init != nil && g.Init.Opcode == wasm.OpcodeRefFunc {
			idx, _, err := readU32(g.Init.Data, 0)
			if err != nil {
				return err
			}
			if err := bad(idx, "global "+strconv.Itoa(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// callStackUnitsMax bounds the call stack a call may use, in the units of
// callFrameUnits: about 2 MiB of wazero's native stack, 65536 calls deep
// for small functions.
const callStackUnitsMax = 1 << 16

// callFrameUnits estimates the native stack a function's frame takes, in
// units of 32 bytes: one for the frame itself and one per four locals
// (parameters included), which wazero may keep on the stack.
func callFrameUnits(locals uint32) int64 { return 1 + int64(locals)/4 }

// depthIn goes before a call to a guest function: it adds the caller's
// frame to the depth global and traps past the limit.
//
//	<depthAdd frame>; global.get $depth; i64.const max; i64.gt_s; if unreachable end
func depthIn(dst []byte, rw rewrite) []byte {
	d := leb128.EncodeUint32(rw.depthIdx)
	dst = depthAdd(dst, rw.depthIdx, rw.frame)
	dst = append(dst, wasm.OpcodeGlobalGet)
	dst = append(dst, d...)
	dst = append(dst, wasm.OpcodeI64Const)
	dst = append(dst, leb128.EncodeInt64(callStackUnitsMax)...)
	return append(dst, wasm.OpcodeI64GtS, wasm.OpcodeIf, 0x40, wasm.OpcodeUnreachable, wasm.OpcodeEnd)
}

// depthAdd adds n to the depth global (after a call: takes the frame
// back). It leaves the stack as it was.
func depthAdd(dst []byte, depthIdx uint32, n int64) []byte {
	d := leb128.EncodeUint32(depthIdx)
	dst = append(dst, wasm.OpcodeGlobalGet)
	dst = append(dst, d...)
	dst = append(dst, wasm.OpcodeI64Const)
	dst = append(dst, leb128.EncodeInt64(n)...)
	dst = append(dst, wasm.OpcodeI64Add, wasm.OpcodeGlobalSet)
	return append(dst, d...)
}

// tickFuel is how much fuel a guest may use between two passes through
// Go (the tick). It bounds how long a garbage collection waits for a
// looping guest, and how late a stop can be when it races with a tick:
// 2^18 units, some 20-50 µs of plain instructions (price.go). A pass costs
// about 25 ns, 0.1% of that.
const tickFuel = 1 << 18

// tickFunction is the tick (meterModule): it traps when the fuel is out or
// the call was stopped, and otherwise moves the mark down and passes
// through Go.
//
//	(local $m i64)
//	global.get $fuel; i64.const 0; i64.lt_s; if unreachable end
//	global.get $stop; i64.const 0; i64.ne; if unreachable end
//	global.get $fuel; i64.const tickFuel; i64.sub; local.tee $m
//	i64.const 0; local.get $m; i64.const 0; i64.gt_s; select; global.set $mark
//	i32.const 0; memory.grow 0; drop
func tickFunction(fuelIdx, stopIdx, markIdx uint32) *wasm.Code {
	fuel, stop, mark := leb128.EncodeUint32(fuelIdx), leb128.EncodeUint32(stopIdx), leb128.EncodeUint32(markIdx)
	var b []byte
	b = append(append(append(b, wasm.OpcodeGlobalGet), fuel...), wasm.OpcodeI64Const, 0, wasm.OpcodeI64LtS,
		wasm.OpcodeIf, 0x40, wasm.OpcodeUnreachable, wasm.OpcodeEnd)
	b = append(append(append(b, wasm.OpcodeGlobalGet), stop...), wasm.OpcodeI64Const, 0, wasm.OpcodeI64Ne,
		wasm.OpcodeIf, 0x40, wasm.OpcodeUnreachable, wasm.OpcodeEnd)
	b = append(append(append(b, wasm.OpcodeGlobalGet), fuel...), wasm.OpcodeI64Const)
	b = append(append(b, leb128.EncodeInt64(tickFuel)...), wasm.OpcodeI64Sub, wasm.OpcodeLocalTee, 0,
		wasm.OpcodeI64Const, 0, wasm.OpcodeLocalGet, 0, wasm.OpcodeI64Const, 0, wasm.OpcodeI64GtS, wasm.OpcodeSelect,
		wasm.OpcodeGlobalSet)
	b = append(append(b, mark...), wasm.OpcodeI32Const, 0, wasm.OpcodeMemoryGrow, 0, wasm.OpcodeDrop, wasm.OpcodeEnd)
	return &wasm.Code{LocalTypes: []wasm.ValueType{wasm.ValueTypeI64}, Body: b}
}

// sizeCharge goes before a bulk instruction, whose last operand (top of
// the stack) is its size n in bytes or elements: it ticks if due (so a
// stopped call ends here), then charges
// ceil(n*p.mul / 2^p.shift) units, traps if that exhausts the fuel, and
// puts n back. So the work is paid for before it is done, and a fill that
// the fuel cannot pay for traps without filling anything.
//
//	<fuelTrap>; local.set $n; global.get $fuel
//	local.get $n; i64.extend_i32_u; [i64.const mul; i64.mul]
//	[i64.const 2^shift-1; i64.add; i64.const shift; i64.shr_u]
//	i64.sub; global.set $fuel; <fuelTrap>; local.get $n
func sizeCharge(dst []byte, rw rewrite, p sizePrice) []byte {
	n := leb128.EncodeUint32(rw.scratch) // the i32 scratch local
	g := leb128.EncodeUint32(rw.fuelIdx)
	// A call stopped from outside traps here before it is charged for
	// work it will not do.
	dst = fuelTrap(dst, rw)
	dst = append(dst, wasm.OpcodeLocalSet)
	dst = append(dst, n...)
	dst = append(dst, wasm.OpcodeGlobalGet)
	dst = append(dst, g...)
	dst = append(dst, wasm.OpcodeLocalGet)
	dst = append(dst, n...)
	dst = append(dst, wasm.OpcodeI64ExtendI32U)
	if p.mul != 1 {
		dst = append(dst, wasm.OpcodeI64Const)
		dst = append(dst, leb128.EncodeInt64(p.mul)...)
		dst = append(dst, wasm.OpcodeI64Mul)
	}
	if p.shift != 0 {
		dst = append(dst, wasm.OpcodeI64Const)
		dst = append(dst, leb128.EncodeInt64(1<<p.shift-1)...)
		dst = append(dst, wasm.OpcodeI64Add, wasm.OpcodeI64Const)
		dst = append(dst, leb128.EncodeInt64(int64(p.shift))...)
		dst = append(dst, wasm.OpcodeI64ShrU)
	}
	dst = append(dst, wasm.OpcodeI64Sub, wasm.OpcodeGlobalSet)
	dst = append(dst, g...)
	dst = fuelTrap(dst, rw)
	dst = append(dst, wasm.OpcodeLocalGet)
	return append(dst, n...)
}

// oomCheck follows a memory.grow: it leaves the result on the stack and
// sets the oom global when the result is -1.
func oomCheck(dst []byte, oomIdx, scratch uint32) []byte {
	s := leb128.EncodeUint32(scratch)
	dst = append(dst, wasm.OpcodeLocalTee)
	dst = append(dst, s...)
	dst = append(dst, wasm.OpcodeI32Const, 0x7f /* -1 */, wasm.OpcodeI32Eq,
		wasm.OpcodeIf, 0x40, wasm.OpcodeI32Const, 1, wasm.OpcodeGlobalSet)
	dst = append(dst, leb128.EncodeUint32(oomIdx)...)
	dst = append(dst, wasm.OpcodeEnd, wasm.OpcodeLocalGet)
	dst = append(dst, s...)
	return dst
}

// site is a point in a body where a fuel check goes: the function entry
// (at 0) or just after a loop's block type.
type site struct {
	at   int   // byte offset of the insertion point in the original body
	cost int64 // instructions charged there
}

// edit is code spliced into a body at byte offset at: after the
// instruction that ends there (a fuel check after a loop header, an oom
// check after memory.grow) or before the one that starts there (a dirty
// mark before a store or a bulk memory instruction, a flush of the marks
// before the function can leave). The first kind goes first: an oom check
// expects memory.grow's result on top of the stack.
type edit struct {
	at     int
	before bool // before the instruction at `at` (dirty marks)
	kind   editKind
	cost   int64     // editFuel
	offset uint32    // editStore: the store's constant offset
	val    uint32    // editStore: the scratch local that holds the value
	price  sizePrice // editSize
}

type editKind uint8

const (
	editFuel editKind = iota
	editOOM
	editStore
	editBulk
	editFlush
	editSize
	editDepthIn
	editDepthOut
)

// rewrite is what meterBody inserts and where the inserted code keeps its
// state.
type rewrite struct {
	meter                              bool
	fuelIdx, oomIdx, dirtyIdx, markIdx uint32
	depthIdx                           uint32
	tickIdx                            uint32 // the tick function
	importFuncs                        uint32 // calls below it go to the host
	frame                              int64  // this function's callFrameUnits
	dirtyShift                         uint32
	// scratch is the first local index past the function's own; the
	// rewrite appends scratchLocals there when it needs them.
	scratch uint32
}

// scratchLocals are the locals a rewritten function gets, at
// rewrite.scratch: an i32 for memory.grow's result and for a store's
// address, one per type for a store's value, and (at scratchMarks) the
// dirty bits of this call of the function, flushed into the dirty global
// before it returns: a local keeps a store's mark out of memory, which a
// global read-modify-write per store would not.
var scratchLocals = []wasm.ValueType{wasm.ValueTypeI32, wasm.ValueTypeI32, wasm.ValueTypeI64, wasm.ValueTypeF32, wasm.ValueTypeF64, wasm.ValueTypeI64}

const scratchMarks = 5

// storeValueLocal maps a store opcode to the scratch local (offset from
// rewrite.scratch) that holds its value.
func storeValueLocal(op byte) uint32 {
	switch op {
	case wasm.OpcodeI64Store, wasm.OpcodeI64Store8, wasm.OpcodeI64Store16, wasm.OpcodeI64Store32:
		return 2
	case wasm.OpcodeF32Store:
		return 3
	case wasm.OpcodeF64Store:
		return 4
	}
	return 1 // i32.store, i32.store8, i32.store16
}

// meterBody returns body with fuel checks, oom checks and dirty marks
// inserted (when rw.meter; otherwise body unchanged), and whether it needs
// the scratch locals. It walks the body once to find instruction
// boundaries, loop headers, memory.grow sites and stores, then copies it
// with the edits spliced in. mutates names the first instruction that
// changes a table or drops a segment ("" if none): state an instance keeps
// that the host cannot put back.
func meterBody(body []byte, rw rewrite) (_ []byte, usedScratch bool, mutates string, _ error) {
	sites := []site{{at: 0}}
	// open holds, for each open block, the index in sites of the check
	// that pays for the instructions directly inside it.
	type block struct{ site int }
	open := []block{{site: 0}}
	var edits []edit // oom checks, dirty marks, flushes
	var exits []int  // returns, branches out of the function, the final end
	stores, sized := false, false
	pc := 0
	for pc < len(body) {
		op := body[pc]
		next, err := skipInstruction(body, pc)
		if err != nil {
			return nil, false, "", err
		}
		sites[open[len(open)-1].site].cost += instructionPrice(body, pc)
		switch op {
		case wasm.OpcodeBlock, wasm.OpcodeIf:
			open = append(open, block{site: open[len(open)-1].site})
		case wasm.OpcodeLoop:
			sites = append(sites, site{at: next})
			open = append(open, block{site: len(sites) - 1})
		case wasm.OpcodeEnd:
			open = open[:len(open)-1]
			if len(open) == 0 {
				if next != len(body) {
					return nil, false, "", errors.Newf("code after the final end at offset %d", next)
				}
				exits = append(exits, pc)
			}
		case wasm.OpcodeReturn:
			exits = append(exits, pc)
		case wasm.OpcodeBr, wasm.OpcodeBrIf, wasm.OpcodeBrTable:
			// A branch to the function's own label (depth len(open)-1)
			// leaves the function.
			p, n := pc+1, uint32(1)
			if op == wasm.OpcodeBrTable {
				if n, p, err = readU32(body, p); err != nil {
					return nil, false, "", err
				}
				n++ // the default label
			}
			for i := uint32(0); i < n; i++ {
				var depth uint32
				if depth, p, err = readU32(body, p); err != nil {
					return nil, false, "", err
				}
				if int(depth) == len(open)-1 {
					exits = append(exits, pc)
					break
				}
			}
		case wasm.OpcodeMemoryGrow:
			edits = append(edits, edit{at: next, kind: editOOM})
		case wasm.OpcodeCall, wasm.OpcodeCallIndirect, wasm.OpcodeRefFunc:
			idx, _, err := readU32(body, pc+1)
			if err != nil {
				return nil, false, "", err
			}
			if op != wasm.OpcodeCallIndirect && idx >= rw.tickIdx {
				// Invalid in the upload; after the rewrite it would name
				// the tick.
				return nil, false, "", errors.Newf("function index %d out of range at offset %d", idx, pc)
			}
			if op == wasm.OpcodeRefFunc || (op == wasm.OpcodeCall && idx < rw.importFuncs) {
				break // host calls take no wasm stack
			}
			edits = append(edits, edit{at: pc, before: true, kind: editDepthIn}, edit{at: next, kind: editDepthOut})
		case wasm.OpcodeI32Store, wasm.OpcodeI64Store, wasm.OpcodeF32Store, wasm.OpcodeF64Store,
			wasm.OpcodeI32Store8, wasm.OpcodeI32Store16, wasm.OpcodeI64Store8, wasm.OpcodeI64Store16, wasm.OpcodeI64Store32:
			_, p, err := readU32(body, pc+1) // alignment
			if err != nil {
				return nil, false, "", err
			}
			offset, _, err := readU32(body, p)
			if err != nil {
				return nil, false, "", err
			}
			edits = append(edits, edit{at: pc, before: true, kind: editStore, offset: offset, val: rw.scratch + storeValueLocal(op)})
			stores = true
		case wasm.OpcodeTableSet:
			if mutates == "" {
				mutates = "table.set"
			}
		case wasm.OpcodeMiscPrefix:
			sub, _, err := readU32(body, pc+1)
			if err != nil {
				return nil, false, "", err
			}
			if name := stateChangingMisc[sub]; name != "" && mutates == "" {
				mutates = name
			}
			if sub == 8 || sub == 10 || sub == 11 { // memory.init, memory.copy, memory.fill
				edits = append(edits, edit{at: pc, before: true, kind: editBulk})
			}
			if p, ok := sizePrices[sub]; ok {
				edits = append(edits, edit{at: pc, before: true, kind: editSize, price: p})
				sized = true
			}
		case wasm.OpcodeGlobalGet, wasm.OpcodeGlobalSet, wasm.OpcodeLocalGet, wasm.OpcodeLocalSet, wasm.OpcodeLocalTee:
			// The rewrite adds globals and locals after the guest's own. An
			// index that reaches them was invalid in the uploaded module and
			// would let a guest refill its own fuel or clear its dirty
			// marks: refuse it here, since validation only runs after the
			// rewrite.
			idx, _, err := readU32(body, pc+1)
			if err != nil {
				return nil, false, "", err
			}
			if op == wasm.OpcodeGlobalGet || op == wasm.OpcodeGlobalSet {
				if idx >= rw.fuelIdx {
					return nil, false, "", errors.Newf("global index %d out of range at offset %d", idx, pc)
				}
			} else if idx >= rw.scratch {
				return nil, false, "", errors.Newf("local index %d out of range at offset %d", idx, pc)
			}
		}
		pc = next
	}
	if len(open) != 0 {
		return nil, false, "", errors.New("body does not end with end")
	}
	if !rw.meter {
		return body, false, mutates, nil
	}
	for _, s := range sites {
		edits = append(edits, edit{at: s.at, kind: editFuel, cost: s.cost})
	}
	if stores {
		for _, at := range exits {
			edits = append(edits, edit{at: at, before: true, kind: editFlush})
		}
	}
	sort.SliceStable(edits, func(i, j int) bool {
		if edits[i].at != edits[j].at {
			return edits[i].at < edits[j].at
		}
		return !edits[i].before && edits[j].before
	})
	usedScratch = sized
	out := make([]byte, 0, len(body)+len(edits)*24)
	prev := 0
	for _, e := range edits {
		out = append(out, body[prev:e.at]...)
		prev = e.at
		switch e.kind {
		case editFuel:
			out = fuelCheck(out, rw, e.cost)
		case editSize:
			out = sizeCharge(out, rw, e.price)
		case editDepthIn:
			out = depthIn(out, rw)
		case editDepthOut:
			out = depthAdd(out, rw.depthIdx, -rw.frame)
		case editOOM:
			out = oomCheck(out, rw.oomIdx, rw.scratch)
			usedScratch = true
		case editStore:
			out = dirtyMark(out, rw, e.offset, e.val)
			usedScratch = true
		case editBulk:
			out = dirtyAll(out, rw.dirtyIdx)
		case editFlush:
			out = dirtyFlush(out, rw)
		}
	}
	out = append(out, body[prev:]...)
	return out, usedScratch, mutates, nil
}

// dirtyMark goes before a store, whose address and value are on the
// stack: it sets the bit of the chunk the store's first byte falls in,
// ((address + offset) >> dirtyShift) mod 64, in the function's marks
// local, and puts the operands back. A store of at most 8 bytes can spill
// into the next chunk; the host restores chunk c+1 with every marked chunk
// c. An address past the memory's initial size wraps around the 64 bits,
// but then either the store traps or the memory grew, and neither instance
// is reused; a trap also loses marks not yet flushed, for the same reason
// harmlessly.
//
//	local.set $val; local.set $addr
//	local.get $marks; i64.const 1
//	local.get $addr; [i32.const offset; i32.add]; i32.const shift; i32.shr_u; i64.extend_i32_u
//	i64.shl; i64.or; local.set $marks
//	local.get $addr; local.get $val
func dirtyMark(dst []byte, rw rewrite, offset, val uint32) []byte {
	addr := leb128.EncodeUint32(rw.scratch)
	v := leb128.EncodeUint32(val)
	marks := leb128.EncodeUint32(rw.scratch + scratchMarks)
	dst = append(dst, wasm.OpcodeLocalSet)
	dst = append(dst, v...)
	dst = append(dst, wasm.OpcodeLocalSet)
	dst = append(dst, addr...)
	dst = append(dst, wasm.OpcodeLocalGet)
	dst = append(dst, marks...)
	dst = append(dst, wasm.OpcodeI64Const, 1, wasm.OpcodeLocalGet)
	dst = append(dst, addr...)
	if offset != 0 {
		dst = append(dst, wasm.OpcodeI32Const)
		dst = append(dst, leb128.EncodeInt32(int32(offset))...)
		dst = append(dst, wasm.OpcodeI32Add)
	}
	dst = append(dst, wasm.OpcodeI32Const)
	dst = append(dst, leb128.EncodeInt32(int32(rw.dirtyShift))...)
	dst = append(dst, wasm.OpcodeI32ShrU, wasm.OpcodeI64ExtendI32U, wasm.OpcodeI64Shl, wasm.OpcodeI64Or, wasm.OpcodeLocalSet)
	dst = append(dst, marks...)
	dst = append(dst, wasm.OpcodeLocalGet)
	dst = append(dst, addr...)
	dst = append(dst, wasm.OpcodeLocalGet)
	dst = append(dst, v...)
	return dst
}

// dirtyFlush goes before every way out of a function that stores (return,
// a branch to the function's label, the final end): it ORs the function's
// marks into the dirty global. It leaves the stack as it was.
//
//	global.get $dirty; local.get $marks; i64.or; global.set $dirty
func dirtyFlush(dst []byte, rw rewrite) []byte {
	d := leb128.EncodeUint32(rw.dirtyIdx)
	dst = append(dst, wasm.OpcodeGlobalGet)
	dst = append(dst, d...)
	dst = append(dst, wasm.OpcodeLocalGet)
	dst = append(dst, leb128.EncodeUint32(rw.scratch+scratchMarks)...)
	dst = append(dst, wasm.OpcodeI64Or, wasm.OpcodeGlobalSet)
	return append(dst, d...)
}

// dirtyAll goes before memory.fill, memory.copy and memory.init: it marks
// every chunk, rather than compute the range in the guest.
func dirtyAll(dst []byte, dirtyIdx uint32) []byte {
	dst = append(dst, wasm.OpcodeI64Const, 0x7f /* -1 */, wasm.OpcodeGlobalSet)
	return append(dst, leb128.EncodeUint32(dirtyIdx)...)
}

// dirtyShiftFor picks the chunk size for a memory of minPages pages: 64
// chunks cover it, and a chunk is at least 1 KiB.
func dirtyShiftFor(minPages uint32) uint32 {
	shift := uint32(10)
	for uint64(64)<<shift < uint64(minPages)*65536 {
		shift++
	}
	return shift
}

// stateChangingMisc names the 0xfc instructions that change what an
// instance holds beyond its memory and globals: its tables and which
// passive segments are still there.
var stateChangingMisc = map[uint32]string{
	9:  "data.drop",
	12: "table.init",
	13: "elem.drop",
	14: "table.copy",
	15: "table.grow",
	17: "table.fill",
}

// skipInstruction returns the offset of the instruction after the one at
// pc. It knows WebAssembly 2.0 without SIMD: keel refuses vector and
// thread instructions rather than guess their cost.
func skipInstruction(b []byte, pc int) (int, error) {
	op := b[pc]
	p := pc + 1
	var err error
	switch {
	case op == wasm.OpcodeBlock || op == wasm.OpcodeLoop || op == wasm.OpcodeIf:
		if p >= len(b) {
			return 0, errTruncated(pc)
		}
		switch b[p] {
		case 0x40, wasm.ValueTypeI32, wasm.ValueTypeI64, wasm.ValueTypeF32, wasm.ValueTypeF64,
			wasm.ValueTypeV128, wasm.ValueTypeFuncref, wasm.ValueTypeExternref:
			p++
		default:
			p, err = skipLEB(b, p)
		}
	case op == wasm.OpcodeUnreachable || op == wasm.OpcodeNop || op == wasm.OpcodeElse ||
		op == wasm.OpcodeEnd || op == wasm.OpcodeReturn || op == wasm.OpcodeDrop || op == wasm.OpcodeSelect:
	case op == wasm.OpcodeBr || op == wasm.OpcodeBrIf || op == wasm.OpcodeCall ||
		(op >= wasm.OpcodeLocalGet && op <= wasm.OpcodeTableSet) || op == wasm.OpcodeRefFunc:
		p, err = skipLEB(b, p)
	case op == wasm.OpcodeBrTable:
		var n uint32
		n, p, err = readU32(b, p)
		for i := uint32(0); err == nil && i <= n; i++ {
			p, err = skipLEB(b, p)
		}
	case op == wasm.OpcodeCallIndirect:
		if p, err = skipLEB(b, p); err == nil {
			p, err = skipLEB(b, p)
		}
	case op == wasm.OpcodeTypedSelect:
		var n uint32
		n, p, err = readU32(b, p)
		p += int(n)
	case op >= wasm.OpcodeI32Load && op <= wasm.OpcodeI64Store32:
		if p, err = skipLEB(b, p); err == nil {
			p, err = skipLEB(b, p)
		}
	case op == wasm.OpcodeMemorySize || op == wasm.OpcodeMemoryGrow:
		p++
	case op == wasm.OpcodeI32Const || op == wasm.OpcodeI64Const:
		p, err = skipLEB(b, p)
	case op == wasm.OpcodeF32Const:
		p += 4
	case op == wasm.OpcodeF64Const:
		p += 8
	case op >= wasm.OpcodeI32Eqz && op <= wasm.OpcodeI64Extend32S:
	case op == wasm.OpcodeRefNull:
		p++
	case op == wasm.OpcodeRefIsNull:
	case op == wasm.OpcodeMiscPrefix:
		var sub uint32
		sub, p, err = readU32(b, p)
		if err != nil {
			break
		}
		switch {
		case sub <= 7: // saturating truncations
		case sub == 8: // memory.init dataidx 0x00
			p, err = skipLEB(b, p)
			p++
		case sub == 9, sub == 13, sub == 15, sub == 16, sub == 17: // data.drop, elem.drop, table.grow/size/fill
			p, err = skipLEB(b, p)
		case sub == 10: // memory.copy 0x00 0x00
			p += 2
		case sub == 11: // memory.fill 0x00
			p++
		case sub == 12, sub == 14: // table.init, table.copy
			if p, err = skipLEB(b, p); err == nil {
				p, err = skipLEB(b, p)
			}
		default:
			return 0, errors.Newf("unsupported instruction 0xfc %d at offset %d", sub, pc)
		}
	case op == wasm.OpcodeVecPrefix:
		return 0, errors.Newf("SIMD instructions are not supported (offset %d); build without simd128", pc)
	default:
		return 0, errors.Newf("unsupported instruction 0x%02x at offset %d", op, pc)
	}
	if err != nil {
		return 0, err
	}
	if p > len(b) {
		return 0, errTruncated(pc)
	}
	return p, nil
}

func errTruncated(pc int) error { return errors.Newf("truncated instruction at offset %d", pc) }

func skipLEB(b []byte, p int) (int, error) {
	for i := 0; i < 10; i++ {
		if p >= len(b) {
			return 0, errTruncated(p)
		}
		c := b[p]
		p++
		if c&0x80 == 0 {
			return p, nil
		}
	}
	return 0, errors.Newf("LEB128 too long at offset %d", p)
}

func readU32(b []byte, p int) (uint32, int, error) {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		if p >= len(b) {
			return 0, 0, errTruncated(p)
		}
		c := b[p]
		p++
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, p, nil
		}
	}
	return 0, 0, errors.Newf("LEB128 too long at offset %d", p)
}

// sectionIDsMax bounds the section ids keel knows (tag, 13, is the last).
const sectionIDsMax = 14

// sectionOrder is where each known non-custom section goes in a module,
// by id: the binary format's order (the tag section sits between memory and
// global, the data count section between element and code).
var sectionOrder = [sectionIDsMax]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

// encodeSection returns the one non-empty section of m, encoded (id,
// size, payload), or nil when m has none.
func encodeSection(m *wasm.Module) []byte {
	return binary.EncodeModule(m)[8:] // past the magic and version
}

// spliceSections returns mod with each section whose id has an entry in
// repl replaced by that entry (an encoded section; nil keeps the
// original), and inserted in its place in the order when mod lacks it.
// mod must hold no custom sections (prescan drops them).
func spliceSections(mod []byte, repl *[sectionIDsMax][]byte) ([]byte, error) {
	out := make([]byte, 0, len(mod)+len(repl[wasm.SectionIDCode])+len(repl[wasm.SectionIDGlobal])+len(repl[wasm.SectionIDExport]))
	out = append(out, mod[:8]...)
	var done [sectionIDsMax]bool
	// insertBefore emits the replacements the module lacks that go before
	// a section of order rank.
	insertBefore := func(rank int) {
		for id := range repl {
			if !done[id] && repl[id] != nil && sectionOrder[id] < rank {
				out = append(out, repl[id]...)
				done[id] = true
			}
		}
	}
	for p := 8; p < len(mod); {
		id := mod[p]
		size, q, err := readU32(mod, p+1)
		if err != nil {
			return nil, err
		}
		end := q + int(size)
		if int(id) >= sectionIDsMax || sectionOrder[id] == 0 || end > len(mod) {
			return nil, errors.Newf("unexpected section %d at offset %d", id, p)
		}
		insertBefore(sectionOrder[id])
		if r := repl[id]; r != nil {
			out = append(out, r...)
		} else {
			out = append(out, mod[p:end]...)
		}
		done[id] = true
		p = end
	}
	insertBefore(len(sectionOrder) + 1)
	return out, nil
}
