package udf

import (
	"bytes"

	wabin "github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/leb128"
	"github.com/tetratelabs/wabin/wasm"
)

// wmod assembles small guest modules for tests and benchmarks: the keel
// ABI marker, an exported memory, keel.reply_int as function 0, the other
// keel imports asked for, and whatever functions, tables and segments a
// test adds. wabin encodes the
// module proper; passive element segments and the data count section,
// which wabin cannot encode, are written here.
type wmod struct {
	m *wasm.Module
	// elems are passive funcref segments, as function indices.
	elems [][]uint32
	// declared are functions named by ref.func (a declarative segment).
	declared []uint32
}

// Type indices every wmod has.
const (
	tyVoid   = 0 // func()
	tyI64    = 1 // func(i64): reply_int
	tyI32I32 = 2 // func(i32) -> i32
)

// newWmod returns a module with a memory of pages pages (max unset: the
// host's cap applies) that imports reply_int (function 0) and then the
// named keel functions (functions 1, 2, ...; imp finds them).
func newWmod(pages uint32, imports ...string) *wmod {
	w := &wmod{m: &wasm.Module{
		TypeSection: []*wasm.FunctionType{
			{},
			{Params: []wasm.ValueType{wasm.ValueTypeI64}},
			{Params: []wasm.ValueType{wasm.ValueTypeI32}, Results: []wasm.ValueType{wasm.ValueTypeI32}},
		},
		ImportSection: []*wasm.Import{{Module: abiModule, Name: "reply_int", Type: wasm.ExternTypeFunc, DescFunc: tyI64}},
		MemorySection: &wasm.Memory{Min: pages},
		ExportSection: []*wasm.Export{{Name: "memory", Type: wasm.ExternTypeMemory}},
	}}
	for _, name := range imports {
		var f *hostFunc
		for i := range keelFuncs {
			if keelFuncs[i].name == name {
				f = &keelFuncs[i]
			}
		}
		if f == nil {
			panic("no keel import " + name)
		}
		w.m.TypeSection = append(w.m.TypeSection, &wasm.FunctionType{Params: f.params, Results: f.results})
		w.m.ImportSection = append(w.m.ImportSection, &wasm.Import{Module: abiModule, Name: name, Type: wasm.ExternTypeFunc,
			DescFunc: uint32(len(w.m.TypeSection) - 1)})
	}
	w.fn(abiMarker, tyVoid, nil, op(wasm.OpcodeEnd))
	return w
}

// imp is the function index of the keel import name.
func (w *wmod) imp(name string) uint32 {
	for i, im := range w.m.ImportSection {
		if im.Name == name {
			return uint32(i)
		}
	}
	panic("not imported: " + name)
}

// fn adds a function of type ty with extra locals, exported as name
// unless name is "", and returns its index.
func (w *wmod) fn(name string, ty uint32, locals []wasm.ValueType, body ...[]byte) uint32 {
	idx := uint32(len(w.m.ImportSection) + len(w.m.FunctionSection))
	w.m.FunctionSection = append(w.m.FunctionSection, ty)
	w.m.CodeSection = append(w.m.CodeSection, &wasm.Code{LocalTypes: locals, Body: bytes.Join(body, nil)})
	if name != "" {
		w.m.ExportSection = append(w.m.ExportSection, &wasm.Export{Name: name, Type: wasm.ExternTypeFunc, Index: idx})
	}
	return idx
}

// table adds a funcref table and returns its index; max < 0: no maximum.
func (w *wmod) table(min uint32, max int64) uint32 {
	t := &wasm.Table{Min: min, Type: wasm.RefTypeFuncref}
	if max >= 0 {
		m := uint32(max)
		t.Max = &m
	}
	w.m.TableSection = append(w.m.TableSection, t)
	return uint32(len(w.m.TableSection) - 1)
}

// passiveData adds a passive data segment and returns its index.
func (w *wmod) passiveData(b []byte) uint32 {
	w.m.DataSection = append(w.m.DataSection, &wasm.DataSegment{Init: b})
	return uint32(len(w.m.DataSection) - 1)
}

// activeData adds a data segment at offset.
func (w *wmod) activeData(offset int32, b []byte) {
	w.m.DataSection = append(w.m.DataSection, &wasm.DataSegment{
		OffsetExpression: &wasm.ConstantExpression{Opcode: wasm.OpcodeI32Const, Data: leb128.EncodeInt32(offset)},
		Init:             b,
	})
}

// passiveElem adds a passive funcref segment of the given functions and
// returns its index.
func (w *wmod) passiveElem(funcs ...uint32) uint32 {
	w.elems = append(w.elems, funcs)
	return uint32(len(w.elems) - 1)
}

// global adds a mutable global of type t (i32 or i64), initially 0.
func (w *wmod) global(t wasm.ValueType) uint32 {
	init := &wasm.ConstantExpression{Opcode: wasm.OpcodeI32Const, Data: []byte{0}}
	if t == wasm.ValueTypeI64 {
		init.Opcode = wasm.OpcodeI64Const
	}
	w.m.GlobalSection = append(w.m.GlobalSection, &wasm.Global{Type: &wasm.GlobalType{ValType: t, Mutable: true}, Init: init})
	return uint32(len(w.m.GlobalSection) - 1)
}

// bytes encodes the module.
func (w *wmod) bytes() []byte {
	out := wabin.EncodeModule(w.m)
	var elem []byte
	if n := len(w.elems) + min(len(w.declared), 1); n > 0 {
		elem = leb128.EncodeUint32(uint32(n))
		for _, funcs := range w.elems {
			elem = append(elem, 1, 0) // passive, elemkind funcref
			elem = append(elem, leb128.EncodeUint32(uint32(len(funcs)))...)
			for _, f := range funcs {
				elem = append(elem, leb128.EncodeUint32(f)...)
			}
		}
		if len(w.declared) > 0 {
			elem = append(elem, 3, 0) // declarative, elemkind funcref
			elem = append(elem, leb128.EncodeUint32(uint32(len(w.declared)))...)
			for _, f := range w.declared {
				elem = append(elem, leb128.EncodeUint32(f)...)
			}
		}
		elem = section(wasm.SectionIDElement, elem)
	}
	var count []byte
	if len(w.m.DataSection) > 0 {
		count = section(wasm.SectionIDDataCount, leb128.EncodeUint32(uint32(len(w.m.DataSection))))
	}
	// Both go right before the code section (element, data count, code).
	p := 8
	for p < len(out) {
		size, q, err := readU32(out, p+1)
		if err != nil {
			panic(err)
		}
		if out[p] == wasm.SectionIDCode {
			break
		}
		p = q + int(size)
	}
	return bytes.Join([][]byte{out[:p], elem, count, out[p:]}, nil)
}

func section(id byte, payload []byte) []byte {
	return append(append([]byte{id}, leb128.EncodeUint32(uint32(len(payload)))...), payload...)
}

// Instruction helpers.

func op(b ...byte) []byte { return b }

func i32c(v int32) []byte { return append([]byte{wasm.OpcodeI32Const}, leb128.EncodeInt32(v)...) }

func i64c(v int64) []byte { return append([]byte{wasm.OpcodeI64Const}, leb128.EncodeInt64(v)...) }

func lget(i uint32) []byte { return append([]byte{wasm.OpcodeLocalGet}, leb128.EncodeUint32(i)...) }

func lset(i uint32) []byte { return append([]byte{wasm.OpcodeLocalSet}, leb128.EncodeUint32(i)...) }

func ltee(i uint32) []byte { return append([]byte{wasm.OpcodeLocalTee}, leb128.EncodeUint32(i)...) }

func gget(i uint32) []byte { return append([]byte{wasm.OpcodeGlobalGet}, leb128.EncodeUint32(i)...) }

func gset(i uint32) []byte { return append([]byte{wasm.OpcodeGlobalSet}, leb128.EncodeUint32(i)...) }

func callf(i uint32) []byte { return append([]byte{wasm.OpcodeCall}, leb128.EncodeUint32(i)...) }

func brIf(depth uint32) []byte { return append([]byte{wasm.OpcodeBrIf}, leb128.EncodeUint32(depth)...) }

func br(depth uint32) []byte { return append([]byte{wasm.OpcodeBr}, leb128.EncodeUint32(depth)...) }

// misc is a 0xfc instruction with its immediates.
func misc(sub uint32, imm ...uint32) []byte {
	b := append([]byte{wasm.OpcodeMiscPrefix}, leb128.EncodeUint32(sub)...)
	for _, i := range imm {
		b = append(b, leb128.EncodeUint32(i)...)
	}
	return b
}

// The bulk memory and table instructions (0xfc sub-opcodes).
func memoryInit(seg uint32) []byte       { return misc(8, seg, 0) }
func dataDrop(seg uint32) []byte         { return misc(9, seg) }
func memoryCopy() []byte                 { return misc(10, 0, 0) }
func memoryFill() []byte                 { return misc(11, 0) }
func tableInit(seg, table uint32) []byte { return misc(12, seg, table) }
func elemDrop(seg uint32) []byte         { return misc(13, seg) }
func tableCopy(dst, src uint32) []byte   { return misc(14, dst, src) }
func tableGrow(table uint32) []byte      { return misc(15, table) }
func tableSize(table uint32) []byte      { return misc(16, table) }
func tableFill(table uint32) []byte      { return misc(17, table) }
func refNull() []byte                    { return op(wasm.OpcodeRefNull, wasm.RefTypeFuncref) }

// counted wraps body in a loop that runs it n times, counting in local
// i (an i32 local the function must declare).
func counted(i uint32, n int32, body ...[]byte) []byte {
	return bytes.Join([][]byte{
		i32c(0), lset(i),
		op(wasm.OpcodeLoop, 0x40),
		bytes.Join(body, nil),
		lget(i), i32c(1), op(wasm.OpcodeI32Add), ltee(i), i32c(n), op(wasm.OpcodeI32LtU), brIf(0),
		op(wasm.OpcodeEnd),
	}, nil)
}

// forever wraps body in a loop without end.
func forever(body ...[]byte) []byte {
	return bytes.Join([][]byte{op(wasm.OpcodeLoop, 0x40), bytes.Join(body, nil), br(0), op(wasm.OpcodeEnd)}, nil)
}

// replyI64 replies with the i64 on the stack.
func replyI64() []byte { return callf(0) }
