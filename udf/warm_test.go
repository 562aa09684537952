package udf

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/wasm"
	"github.com/tetratelabs/wazero/experimental"
)

// stateful builds a module whose functions change a mutable global
// (initially 7) and a byte of memory set by a data segment (initially 5 at
// offset 16), and reply global*1000 + byte:
//
//	bump       -> 8006 on every call, if each call starts from the initial state
//	bump_trap  -> bumps both, then traps
//	grow       -> grows memory by a page, replies 1
func stateful() *wasm.Module {
	i64v := []wasm.ValueType{wasm.ValueTypeI64}
	m := &wasm.Module{
		TypeSection:   []*wasm.FunctionType{{}, {Params: i64v}},
		ImportSection: []*wasm.Import{{Module: abiModule, Name: "reply_int", Type: wasm.ExternTypeFunc, DescFunc: 1}},
		MemorySection: &wasm.Memory{Min: 1},
		GlobalSection: []*wasm.Global{{
			Type: &wasm.GlobalType{ValType: wasm.ValueTypeI32, Mutable: true},
			Init: &wasm.ConstantExpression{Opcode: wasm.OpcodeI32Const, Data: []byte{7}},
		}},
		DataSection: []*wasm.DataSegment{{
			OffsetExpression: &wasm.ConstantExpression{Opcode: wasm.OpcodeI32Const, Data: []byte{16}},
			Init:             []byte{5},
		}},
		ExportSection: []*wasm.Export{{Name: "memory", Type: wasm.ExternTypeMemory}},
	}
	bump := []byte{
		wasm.OpcodeGlobalGet, 0, wasm.OpcodeI32Const, 1, wasm.OpcodeI32Add, wasm.OpcodeGlobalSet, 0,
		wasm.OpcodeI32Const, 16, wasm.OpcodeI32Const, 16, wasm.OpcodeI32Load8U, 0, 0, wasm.OpcodeI32Const, 1, wasm.OpcodeI32Add, wasm.OpcodeI32Store8, 0, 0,
	}
	reply := []byte{
		wasm.OpcodeGlobalGet, 0, wasm.OpcodeI64ExtendI32U, wasm.OpcodeI64Const, 0xe8, 0x07 /* 1000 */, wasm.OpcodeI64Mul,
		wasm.OpcodeI32Const, 16, wasm.OpcodeI32Load8U, 0, 0, wasm.OpcodeI64ExtendI32U, wasm.OpcodeI64Add,
		wasm.OpcodeCall, 0,
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	funcs := []struct {
		name string
		body []byte
	}{
		{abiMarker, []byte{wasm.OpcodeEnd}},
		{"bump", cat(bump, reply, []byte{wasm.OpcodeEnd})},
		{"bump_trap", cat(bump, []byte{wasm.OpcodeUnreachable, wasm.OpcodeEnd})},
		{"grow", []byte{wasm.OpcodeI32Const, 1, wasm.OpcodeMemoryGrow, 0, wasm.OpcodeDrop, wasm.OpcodeI64Const, 1, wasm.OpcodeCall, 0, wasm.OpcodeEnd}},
	}
	for i, f := range funcs {
		m.FunctionSection = append(m.FunctionSection, 0)
		m.CodeSection = append(m.CodeSection, &wasm.Code{Body: f.body})
		m.ExportSection = append(m.ExportSection, &wasm.Export{Name: f.name, Type: wasm.ExternTypeFunc, Index: 1 + uint32(i)})
	}
	return m
}

// A guest that changes a global and its memory sees their initial values
// on the next call, although the same instance serves it; a failed call
// or one that grew memory gives up its instance.
func TestWarmInstanceStartsFromInitialState(t *testing.T) {
	for _, unmetered := range []bool{false, true} {
		cfg := NewConfig()
		cfg.unmetered = unmetered
		h := newHost(t, cfg)
		if _, err := h.Load(context.Background(), "st", binary.EncodeModule(stateful()), false); err != nil {
			t.Fatal(err)
		}
		s := newFakeStore()
		var fuel []int64
		for i := 0; i < 5; i++ {
			before := h.Stats().FuelUsed
			if got := call(t, h, s, "bump", nil, nil); got != "(integer) 8006" {
				t.Fatalf("unmetered=%v call %d: bump = %s, want 8006 (global 7+1, byte 5+1)", unmetered, i, got)
			}
			fuel = append(fuel, h.Stats().FuelUsed-before)
		}
		if n := h.Stats().Instances; n != 1 {
			t.Fatalf("unmetered=%v: 5 calls made %d instances, want 1 (the warm one)", unmetered, n)
		}
		for i := range fuel {
			if fuel[i] != fuel[0] || (!unmetered && fuel[0] <= 0) {
				t.Fatalf("unmetered=%v: fuel per call %v: the fresh and the warm instance must agree", unmetered, fuel)
			}
		}
		if got := call(t, h, s, "bump_trap", nil, nil); !strings.Contains(got, "trapped") {
			t.Fatalf("bump_trap = %s", got)
		}
		if got := call(t, h, s, "bump", nil, nil); got != "(integer) 8006" {
			t.Fatalf("after a trap: bump = %s", got)
		}
		if got := call(t, h, s, "grow", nil, nil); got != "(integer) 1" {
			t.Fatalf("grow = %s", got)
		}
		if got := call(t, h, s, "bump", nil, nil); got != "(integer) 8006" {
			t.Fatalf("after a grow: bump = %s", got)
		}
		// The trap closed its instance, and so did the grow (memory cannot
		// shrink back): two more fresh ones.
		if n := h.Stats().Instances; n != 3 {
			t.Fatalf("unmetered=%v: %d instances, want 3", unmetered, n)
		}
	}
}

// After any sequence of calls the warm instance holds exactly what a
// fresh instance holds: every global (exported or not, read through
// wazero's InternalModule) and every byte of memory.
func TestWarmInstanceMatchesFresh(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, NewConfig(), "abi", "counter", "transfer", "ratelimit")
	s := newFakeStore()
	s.vals["a"], s.vals["b"] = []byte("100"), []byte("0")
	calls := []struct {
		lib, fn    string
		keys, args []string
	}{
		{"counter", "incr_by", []string{"a"}, []string{"5"}},
		{"transfer", "transfer", []string{"a", "b"}, []string{"30"}},
		{"transfer", "transfer", []string{"a", "b"}, []string{"1000"}}, // insufficient funds: aborts
		{"ratelimit", "ratelimit", []string{"rl"}, []string{"3", "2"}},
		{"abi", "leak", nil, nil},
		{"abi", "scribble", nil, nil}, // grows memory
		{"abi", "leak", nil, nil},
		{"abi", "getv", []string{"a"}, nil},
		{"abi", "shapes", nil, nil},
		{"abi", "clock", nil, nil},
		{"abi", "recurse", nil, []string{"50"}},
		{"abi", "recurse", nil, []string{"100000000"}}, // stack overflow trap
		{"abi", "twice", nil, nil},                     // refused
		{"abi", "setv", []string{"z"}, []string{"v"}},
		{"abi", "loopn", nil, []string{"1000"}},
		{"counter", "incr_by", []string{"a"}, []string{"nope"}}, // fails
		{"counter", "incr_by", []string{"a"}, []string{"7"}},
		{"transfer", "transfer", []string{"b", "a"}, []string{"10"}},
	}
	for i, c := range calls {
		got := call(t, h, s, c.fn, c.keys, c.args)
		lib := h.libs[c.lib]
		if lib.warm == nil {
			if !strings.HasPrefix(got, "-") && c.fn != "scribble" {
				t.Fatalf("call %d (%s = %s): no warm instance after a call that succeeded", i, c.fn, got)
			}
			continue
		}
		fresh, err := h.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, h.mem), lib.compiled, h.modCfg)
		if err != nil {
			t.Fatal(err)
		}
		warm, cold := lib.warm.mod.(experimental.InternalModule), fresh.(experimental.InternalModule)
		if warm.NumGlobal() != cold.NumGlobal() {
			t.Fatalf("call %d: %d globals, fresh %d", i, warm.NumGlobal(), cold.NumGlobal())
		}
		for g := 0; g < warm.NumGlobal(); g++ {
			if w, f := warm.Global(g).Get(), cold.Global(g).Get(); w != f {
				t.Fatalf("call %d (%s): global %d is %d, fresh %d", i, c.fn, g, w, f)
			}
		}
		wm, _ := warm.Memory().Read(0, warm.Memory().Size())
		cm, _ := cold.Memory().Read(0, cold.Memory().Size())
		if !bytes.Equal(wm, cm) {
			t.Fatalf("call %d (%s): memory differs from a fresh instance's", i, c.fn)
		}
		_ = fresh.Close(ctx)
	}
}

// Modules that change state the host cannot put back get a fresh instance
// per call, and say why.
func TestNotReusable(t *testing.T) {
	ctx := context.Background()
	withTable := stateful()
	withTable.TableSection = []*wasm.Table{{Min: 1, Type: wasm.RefTypeFuncref}}
	// bump_trap's body becomes: ref.null func; i32.const 0 ... table.set
	withTable.CodeSection[2].Body = []byte{wasm.OpcodeI32Const, 0, wasm.OpcodeRefNull, wasm.RefTypeFuncref, wasm.OpcodeTableSet, 0, wasm.OpcodeEnd}
	// The start function asks keel.key for key 0 into memory at 32: a
	// host write while the instance is being created.
	withStart := stateful()
	withStart.TypeSection = append(withStart.TypeSection, &wasm.FunctionType{
		Params: []wasm.ValueType{wasm.ValueTypeI32, wasm.ValueTypeI32, wasm.ValueTypeI32}, Results: []wasm.ValueType{wasm.ValueTypeI32}})
	withStart.ImportSection = append(withStart.ImportSection, &wasm.Import{Module: abiModule, Name: "key", Type: wasm.ExternTypeFunc, DescFunc: 2})
	for _, e := range withStart.ExportSection {
		if e.Type == wasm.ExternTypeFunc {
			e.Index++ // after the second import
		}
	}
	withStart.FunctionSection = append(withStart.FunctionSection, 0)
	withStart.CodeSection = append(withStart.CodeSection, &wasm.Code{Body: []byte{
		wasm.OpcodeI32Const, 0, wasm.OpcodeI32Const, 32, wasm.OpcodeI32Const, 8, wasm.OpcodeCall, 1, wasm.OpcodeDrop, wasm.OpcodeEnd}})
	start := wasm.Index(2 + len(withStart.CodeSection) - 1)
	withStart.StartSection = &start
	for _, c := range []struct {
		name string
		m    *wasm.Module
		why  string
	}{
		{"tables", withTable, "it uses table.set"},
		{"start", withStart, "it has a start function"},
	} {
		h := newHost(t, NewConfig())
		lib, err := h.Load(ctx, c.name, binary.EncodeModule(c.m), false)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if lib.reset.reusable || lib.reset.why != c.why {
			t.Fatalf("%s: reusable %v (%q), want not: %q", c.name, lib.reset.reusable, lib.reset.why, c.why)
		}
		s := newFakeStore()
		for i := 0; i < 3; i++ {
			if got := call(t, h, s, "bump", []string{"k"}, nil); got != "(integer) 8006" {
				t.Fatalf("%s: bump = %s", c.name, got)
			}
		}
		if n := h.Stats().Instances; n != 3 {
			t.Fatalf("%s: %d instances for 3 calls", c.name, n)
		}
	}
}

// A module may not export names keel adds.
func TestReservedExportRefused(t *testing.T) {
	m := stateful()
	m.ExportSection = append(m.ExportSection, &wasm.Export{Name: globalExportPrefix + "0", Type: wasm.ExternTypeGlobal, Index: 0})
	h := newHost(t, NewConfig())
	_, err := h.Load(context.Background(), "forge", binary.EncodeModule(m), false)
	if err == nil || !strings.Contains(Message(err), `names starting with "__keel_" are reserved for keel`) {
		t.Fatalf("reserved export: %v", err)
	}
}

// Warm instances and images are bounded, and deleting a library gives
// back what it held.
func TestWarmBudget(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, NewConfig(), "counter", "transfer")
	s := newFakeStore()
	call(t, h, s, "incr_by", []string{"k"}, []string{"1"})
	call(t, h, s, "transfer", []string{"k", "j"}, []string{"1"})
	if h.warmBytes != 2*2*65536 {
		t.Fatalf("two warm 1-page libraries hold %d bytes", h.warmBytes)
	}
	if err := h.Delete(ctx, "counter"); err != nil {
		t.Fatal(err)
	}
	if h.warmBytes != 2*65536 {
		t.Fatalf("after DELETE: %d bytes", h.warmBytes)
	}
	h.Flush(ctx)
	if h.warmBytes != 0 {
		t.Fatalf("after FLUSH: %d bytes", h.warmBytes)
	}
	// Over the budget: calls still work, each on a fresh instance.
	h.warmBytes = warmBytesMax
	if _, err := h.Load(ctx, "counter", example(t, "counter"), false); err != nil {
		t.Fatal(err)
	}
	before := h.Stats().Instances
	for i := 0; i < 3; i++ {
		call(t, h, s, "incr_by", []string{"k"}, []string{"1"})
	}
	if got := h.Stats().Instances - before; got != 3 || h.libs["counter"].warm != nil {
		t.Fatalf("over budget: %d instances for 3 calls, warm %v", got, h.libs["counter"].warm != nil)
	}
}

func TestMain(m *testing.M) {
	// Every test checks, after each reset, that memory equals the image:
	// a write the dirty marks missed fails whichever test made it.
	verifyResets = true
	os.Exit(m.Run())
}

// The dirty marks keep a reset small: incr_by writes a few hundred bytes
// of stack and arena, so far less than the 64 KiB memory is copied back,
// while a call that fills memory with memory.fill gets all of it copied.
func TestResetCopiesOnlyDirtyChunks(t *testing.T) {
	h := newHost(t, NewConfig(), "counter")
	s := newFakeStore()
	call(t, h, s, "incr_by", []string{"k"}, []string{"1"})
	before := h.Stats().ResetBytes
	for i := 0; i < 10; i++ {
		call(t, h, s, "incr_by", []string{"k"}, []string{"1"})
	}
	per := (h.Stats().ResetBytes - before) / 10
	if per <= 0 || per > 16<<10 {
		t.Fatalf("incr_by resets %d bytes per call; want some, and well under 64 KiB", per)
	}
	t.Logf("incr_by: %d bytes copied back per call", per)

	m := stateful()
	// grow's body becomes memory.fill(0, 0xAB, 65536), reply 1
	m.CodeSection[3].Body = []byte{wasm.OpcodeI32Const, 0, wasm.OpcodeI32Const, 0xab, 0x01, wasm.OpcodeI32Const, 0x80, 0x80, 0x04,
		wasm.OpcodeMiscPrefix, 11, 0, wasm.OpcodeI64Const, 1, wasm.OpcodeCall, 0, wasm.OpcodeEnd}
	h2 := newHost(t, NewConfig())
	if _, err := h2.Load(context.Background(), "fill", binary.EncodeModule(m), false); err != nil {
		t.Fatal(err)
	}
	call(t, h2, s, "bump", nil, nil)
	before = h2.Stats().ResetBytes
	if got := call(t, h2, s, "grow", nil, nil); got != "(integer) 1" {
		t.Fatalf("fill = %s", got)
	}
	if got := h2.Stats().ResetBytes - before; got != 65536 {
		t.Fatalf("memory.fill of the whole memory: %d bytes copied back, want 65536", got)
	}
	if got := call(t, h2, s, "bump", nil, nil); got != "(integer) 8006" {
		t.Fatalf("after fill: bump = %s", got)
	}
}

func TestWrittenMarksChunks(t *testing.T) {
	h := newHost(t, NewConfig())
	if _, err := h.Load(context.Background(), "st", binary.EncodeModule(stateful()), false); err != nil {
		t.Fatal(err)
	}
	inst, err := h.instance(context.Background(), h.libs["st"])
	if err != nil {
		t.Fatal(err)
	}
	st := &callState{inst: inst}
	for _, c := range []struct {
		ptr, n uint32
		want   uint64
	}{
		{0, 0, 0},
		{0, 1, 1},
		{1023, 1, 1},
		{1023, 2, 3},
		{1024, 1024, 2},
		{63 << 10, 1024, 1 << 63},
		{0, 65536, ^uint64(0)},
		{65535, 2, ^uint64(0)}, // past the initial memory
		{1 << 31, 4, ^uint64(0)},
	} {
		inst.dirty.Set(0)
		st.written(c.ptr, c.n)
		if got := inst.dirty.Get(); got != c.want {
			t.Errorf("written(%d, %d) = %#x, want %#x", c.ptr, c.n, got, c.want)
		}
	}
	for pages, want := range map[uint32]uint32{0: 10, 1: 10, 2: 11, 3: 12, 4: 12, 256: 18} {
		if got := dirtyShiftFor(pages); got != want {
			t.Errorf("dirtyShiftFor(%d) = %d, want %d", pages, got, want)
		}
	}
}

// Past writesScannedMax keys the write list is indexed by a map; either
// way a key keeps its first-write position and its latest value.
func TestWriteListIndexed(t *testing.T) {
	st := &callState{store: newFakeStore()}
	for round := 0; round < 2; round++ {
		for i := 0; i < 3*writesScannedMax; i++ {
			st.put([]byte{'k', byte(i)}, write{val: []byte{byte(round), byte(i)}})
		}
	}
	if len(st.writes) != 3*writesScannedMax || st.index == nil {
		t.Fatalf("%d writes, index %v", len(st.writes), st.index != nil)
	}
	for i := 0; i < 3*writesScannedMax; i++ {
		w := st.write([]byte{'k', byte(i)})
		if w == nil || string(w.val) != string([]byte{1, byte(i)}) || st.writes[i].key != string([]byte{'k', byte(i)}) {
			t.Fatalf("key %d: %+v at position %q", i, w, st.writes[i].key)
		}
	}
	if st.write([]byte("absent")) != nil {
		t.Fatal("absent key found")
	}
	if ws := clearWrites(st.writes); len(ws) != 0 || cap(ws) == 0 {
		t.Fatalf("cleared list: len %d cap %d", len(ws), cap(ws))
	}
}
