package udf

import (
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
// The rewrite adds two exported mutable globals:
//   - fuelGlobalName (i64): the fuel left. Every function entry and every
//     loop header subtracts the number of instructions the guest may run
//     before it reaches the next such point (a loop body's own
//     instructions, nested loops excluded), and traps with `unreachable`
//     once the count drops below zero. The host tells "out of fuel" from
//     any other trap by reading the global afterwards.
//   - oomGlobalName (i32): set to 1 when a memory.grow failed, so a trap
//     that follows can be reported as "memory limit" rather than a bare
//     out-of-bounds access.
//
// Inserted code is self-contained (a balanced if/end) and placed right
// after an instruction boundary, so branch depths, local indices (a scratch
// local is appended after the guest's own) and function indices stay valid.
//
// The same pass prepares instance reuse (warm.go): it exports every
// mutable global (under globalExportPrefix plus its index, or the fuel and
// oom names), so the host can put each back to its initial value after a
// call, and it looks for the instructions that change state the host
// cannot reset (tables, dropped segments) and for a start function.
const (
	fuelGlobalName = "__keel_fuel"
	oomGlobalName  = "__keel_oom"
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
}

// meterModule instruments every function body of m (which it changes)
// and returns the encoded module, with fuel metering unless meter is
// false (a measuring aid only: BenchmarkLoopGuard), and the module's
// reset plan.
func meterModule(m *wasm.Module, fuel int64, meter bool) ([]byte, resetPlan, error) {
	var err error
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
	if m.StartSection != nil {
		// It would run once per instance, not once per call, with the
		// time, randomness and fuel of whichever call created the instance.
		noReuse("it has a start function")
	}
	fuelIdx := m.ImportGlobalCount() + uint32(len(m.GlobalSection))
	oomIdx := fuelIdx + 1
	if meter {
		m.GlobalSection = append(m.GlobalSection,
			&wasm.Global{
				Type: &wasm.GlobalType{ValType: wasm.ValueTypeI64, Mutable: true},
				Init: &wasm.ConstantExpression{Opcode: wasm.OpcodeI64Const, Data: leb128.EncodeInt64(fuel)},
			},
			&wasm.Global{
				Type: &wasm.GlobalType{ValType: wasm.ValueTypeI32, Mutable: true},
				Init: &wasm.ConstantExpression{Opcode: wasm.OpcodeI32Const, Data: leb128.EncodeInt32(0)},
			})
		m.ExportSection = append(m.ExportSection,
			&wasm.Export{Name: fuelGlobalName, Type: wasm.ExternTypeGlobal, Index: fuelIdx},
			&wasm.Export{Name: oomGlobalName, Type: wasm.ExternTypeGlobal, Index: oomIdx})
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
		default:
			m.ExportSection = append(m.ExportSection, &wasm.Export{Name: name, Type: wasm.ExternTypeGlobal, Index: idx})
		}
		plan.globals = append(plan.globals, name)
	}

	nImportFuncs := m.ImportFuncCount()
	for i, code := range m.CodeSection {
		if int(m.FunctionSection[i]) >= len(m.TypeSection) {
			return nil, plan, errors.Newf("function %d has an invalid type index", nImportFuncs+uint32(i))
		}
		ft := m.TypeSection[m.FunctionSection[i]]
		scratch := uint32(len(ft.Params) + len(code.LocalTypes))
		body, usedScratch, mutates, err := meterBody(code.Body, fuelIdx, oomIdx, scratch)
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
			code.LocalTypes = append(code.LocalTypes, wasm.ValueTypeI32)
		}
	}
	out := binary.EncodeModule(m)
	if m.DataCountSection != nil {
		// wabin decodes the data count section but does not encode it;
		// memory.init and data.drop fail validation without it.
		out, err = insertDataCount(out, *m.DataCountSection)
		if err != nil {
			return nil, plan, err
		}
	}
	return out, plan, nil
}

// fuelCheck returns the instructions that charge cost units and trap when
// the fuel is exhausted.
func fuelCheck(dst []byte, fuelIdx uint32, cost int64) []byte {
	g := leb128.EncodeUint32(fuelIdx)
	dst = append(dst, wasm.OpcodeGlobalGet)
	dst = append(dst, g...)
	dst = append(dst, wasm.OpcodeI64Const)
	dst = append(dst, leb128.EncodeInt64(cost)...)
	dst = append(dst, wasm.OpcodeI64Sub, wasm.OpcodeGlobalSet)
	dst = append(dst, g...)
	dst = append(dst, wasm.OpcodeGlobalGet)
	dst = append(dst, g...)
	dst = append(dst, wasm.OpcodeI64Const, 0, wasm.OpcodeI64LtS,
		wasm.OpcodeIf, 0x40, wasm.OpcodeUnreachable, wasm.OpcodeEnd)
	return dst
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

// meterBody returns body with fuel checks inserted. It walks the body once
// to find instruction boundaries, loop headers and memory.grow sites, then
// copies it with the checks spliced in. mutates names the first
// instruction that changes a table or drops a segment ("" if none): state
// an instance keeps that the host cannot put back.
func meterBody(body []byte, fuelIdx, oomIdx, scratch uint32) (_ []byte, usedScratch bool, mutates string, _ error) {
	sites := []site{{at: 0}}
	// open holds, for each open block, the index in sites of the check
	// that pays for the instructions directly inside it.
	type block struct{ site int }
	open := []block{{site: 0}}
	var grows []int // offsets just after each memory.grow instruction
	pc := 0
	for pc < len(body) {
		op := body[pc]
		sites[open[len(open)-1].site].cost++
		next, err := skipInstruction(body, pc)
		if err != nil {
			return nil, false, "", err
		}
		switch op {
		case wasm.OpcodeBlock, wasm.OpcodeIf:
			open = append(open, block{site: open[len(open)-1].site})
		case wasm.OpcodeLoop:
			sites = append(sites, site{at: next})
			open = append(open, block{site: len(sites) - 1})
		case wasm.OpcodeEnd:
			open = open[:len(open)-1]
			if len(open) == 0 && next != len(body) {
				return nil, false, "", errors.Newf("code after the final end at offset %d", next)
			}
		case wasm.OpcodeMemoryGrow:
			grows = append(grows, next)
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
		case wasm.OpcodeGlobalGet, wasm.OpcodeGlobalSet, wasm.OpcodeLocalGet, wasm.OpcodeLocalSet, wasm.OpcodeLocalTee:
			// The rewrite adds globals and a local after the guest's own. An
			// index that reaches them was invalid in the uploaded module and
			// would let a guest refill its own fuel: refuse it here, since
			// validation only runs after the rewrite.
			idx, _, err := readU32(body, pc+1)
			if err != nil {
				return nil, false, "", err
			}
			if op == wasm.OpcodeGlobalGet || op == wasm.OpcodeGlobalSet {
				if idx >= fuelIdx {
					return nil, false, "", errors.Newf("global index %d out of range at offset %d", idx, pc)
				}
			} else if idx >= scratch {
				return nil, false, "", errors.Newf("local index %d out of range at offset %d", idx, pc)
			}
		}
		pc = next
	}
	if len(open) != 0 {
		return nil, false, "", errors.New("body does not end with end")
	}
	out := make([]byte, 0, len(body)+len(sites)*24+len(grows)*16)
	prev, gi := 0, 0
	for _, s := range sites {
		for gi < len(grows) && grows[gi] <= s.at {
			out = append(out, body[prev:grows[gi]]...)
			out = oomCheck(out, oomIdx, scratch)
			prev = grows[gi]
			gi++
		}
		out = append(out, body[prev:s.at]...)
		out = fuelCheck(out, fuelIdx, s.cost)
		prev = s.at
	}
	for ; gi < len(grows); gi++ {
		out = append(out, body[prev:grows[gi]]...)
		out = oomCheck(out, oomIdx, scratch)
		prev = grows[gi]
	}
	out = append(out, body[prev:]...)
	return out, len(grows) > 0, mutates, nil
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

// insertDataCount splices a data count section (id 12) in front of the
// code section (id 10) of an encoded module.
func insertDataCount(mod []byte, count uint32) ([]byte, error) {
	p := 8 // magic + version
	for p < len(mod) {
		id := mod[p]
		size, q, err := readU32(mod, p+1)
		if err != nil {
			return nil, err
		}
		if id == wasm.SectionIDCode || id == wasm.SectionIDData {
			payload := leb128.EncodeUint32(count)
			sec := append([]byte{wasm.SectionIDDataCount}, leb128.EncodeUint32(uint32(len(payload)))...)
			sec = append(sec, payload...)
			out := make([]byte, 0, len(mod)+len(sec))
			out = append(out, mod[:p]...)
			out = append(out, sec...)
			return append(out, mod[p:]...), nil
		}
		p = q + int(size)
	}
	return mod, nil
}
