package udf

import (
	"context"
	"strings"
	"testing"

	"github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/leb128"
	"github.com/tetratelabs/wabin/wasm"
	"github.com/tetratelabs/wazero"
)

// module builds a small module: one memory, the ABI marker, and the given
// exported functions (all func() with an empty body), plus extra imports.
func module(funcs []string, imports ...*wasm.Import) *wasm.Module {
	m := &wasm.Module{
		TypeSection:   []*wasm.FunctionType{{}},
		ImportSection: imports,
		MemorySection: &wasm.Memory{Min: 1},
		ExportSection: []*wasm.Export{{Name: "memory", Type: wasm.ExternTypeMemory}},
	}
	nImp := m.ImportFuncCount()
	for i, name := range append([]string{abiMarker}, funcs...) {
		m.FunctionSection = append(m.FunctionSection, 0)
		m.CodeSection = append(m.CodeSection, &wasm.Code{Body: []byte{wasm.OpcodeEnd}})
		m.ExportSection = append(m.ExportSection, &wasm.Export{Name: name, Type: wasm.ExternTypeFunc, Index: nImp + uint32(i)})
	}
	return m
}

func TestLoadRefusesBadModules(t *testing.T) {
	h := newHost(t, NewConfig())
	ctx := context.Background()
	i32i32 := &wasm.FunctionType{Params: []wasm.ValueType{wasm.ValueTypeI32, wasm.ValueTypeI32}, Results: []wasm.ValueType{wasm.ValueTypeI32}}
	withType := func(m *wasm.Module, ft *wasm.FunctionType) *wasm.Module {
		m.TypeSection = append(m.TypeSection, ft)
		return m
	}
	noABI := module([]string{"f"})
	noABI.ExportSection = noABI.ExportSection[:1]
	noABI.ExportSection = append(noABI.ExportSection, &wasm.Export{Name: "f", Type: wasm.ExternTypeFunc, Index: 1})
	noMem := module([]string{"f"})
	noMem.MemorySection = nil
	noMem.ExportSection = noMem.ExportSection[1:]
	bigMem := module([]string{"f"})
	bigMem.MemorySection.Min = 1000
	badBody := module([]string{"f"})
	badBody.CodeSection[1].Body = []byte{wasm.OpcodeI32Add, wasm.OpcodeEnd} // stack underflow
	simd := module([]string{"f"})
	simd.CodeSection[1].Body = []byte{wasm.OpcodeVecPrefix, 0x0c, wasm.OpcodeEnd}

	cases := []struct {
		name string
		code []byte
		want string
	}{
		{"garbage", []byte("not wasm at all"), "ERR library 'garbage' is not a valid WebAssembly module"},
		{"empty", nil, "ERR library 'empty' is not a valid WebAssembly module"},
		{"env", binary.EncodeModule(withType(module([]string{"f"}, &wasm.Import{Module: "env", Name: "open", Type: wasm.ExternTypeFunc, DescFunc: 1}), i32i32)),
			`ERR library 'env': imports env.open; guests may import only from "keel"`},
		{"wasifs", binary.EncodeModule(withType(module([]string{"f"}, &wasm.Import{Module: wasiModule, Name: "path_unknown", Type: wasm.ExternTypeFunc, DescFunc: 1}), i32i32)),
			"ERR library 'wasifs': imports wasi_snapshot_preview1.path_unknown, which keel does not provide"},
		{"badsig", binary.EncodeModule(withType(module([]string{"f"}, &wasm.Import{Module: abiModule, Name: "get", Type: wasm.ExternTypeFunc, DescFunc: 1}), i32i32)),
			"ERR library 'badsig': imports keel.get with signature (i32,i32)->(i32), want (i32,i32,i32,i32)->(i32)"},
		{"nothing", binary.EncodeModule(module(nil)), "ERR library 'nothing' exports no callable function"},
		{"noabi", binary.EncodeModule(noABI), "ERR library 'noabi' does not declare a keel ABI version"},
		{"nomem", binary.EncodeModule(noMem), "ERR library 'nomem' defines no memory"},
		{"bigmem", binary.EncodeModule(bigMem), "ERR library 'bigmem' needs 1000 pages of memory at start, above the limit of 256"},
		{"badbody", binary.EncodeModule(badBody), "ERR library 'badbody' does not compile"},
		{"simd", binary.EncodeModule(simd), "ERR library 'simd' cannot be metered: function 1: SIMD instructions are not supported"},
		{"bad-name", binary.EncodeModule(module([]string{"f"})), "ERR library names can only contain letters, numbers, or underscores(_)"},
	}
	for _, c := range cases {
		_, err := h.Load(ctx, c.name, c.code, false)
		if err == nil || !strings.HasPrefix(Message(err), c.want) {
			t.Errorf("%s: got %v, want prefix %q", c.name, err, c.want)
		}
	}
	if st := h.Stats(); st.Libraries != 0 || st.Functions != 0 {
		t.Fatalf("refused modules were registered: %+v", st)
	}
}

func TestLoadReplaceAndConflicts(t *testing.T) {
	h := newHost(t, NewConfig())
	ctx := context.Background()
	a := binary.EncodeModule(module([]string{"f", "g"}))
	if _, err := h.Load(ctx, "a", a, false); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Load(ctx, "a", a, false); err == nil || Message(err) != "ERR Library 'a' already exists" {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := h.Load(ctx, "b", binary.EncodeModule(module([]string{"g"})), false); err == nil || Message(err) != "ERR Function g already exists" {
		t.Fatalf("function clash: %v", err)
	}
	// REPLACE swaps the library and its functions.
	if _, err := h.Load(ctx, "a", binary.EncodeModule(module([]string{"h"})), true); err != nil {
		t.Fatal(err)
	}
	if got := call(t, h, newFakeStore(), "f", nil, nil); got != "-ERR Function not found" {
		t.Fatalf("old function still callable: %s", got)
	}
	if got := call(t, h, newFakeStore(), "h", nil, nil); got != "(nil)" {
		t.Fatalf("new function: %s", got)
	}
	if _, err := h.Load(ctx, "b", binary.EncodeModule(module([]string{"g"})), false); err != nil {
		t.Fatalf("g is free after replace: %v", err)
	}
}

// The metering rewrite keeps a module valid and behaving the same: every
// example compiles metered, and a counted loop returns the same value with
// and without metering.
func TestMeteringPreservesBehaviour(t *testing.T) {
	metered := newHost(t, NewConfig(), "abi")
	cfg := NewConfig()
	cfg.unmetered = true
	plain := newHost(t, cfg, "abi")
	for _, n := range []string{"0", "1", "1000"} {
		a := call(t, metered, newFakeStore(), "loopn", nil, []string{n})
		b := call(t, plain, newFakeStore(), "loopn", nil, []string{n})
		if a != b || strings.HasPrefix(a, "-") {
			t.Fatalf("loopn %s: metered %s, plain %s", n, a, b)
		}
	}
	// Fuel scales with the work: a limit between two loop sizes separates them.
	h := newHost(t, NewConfig().WithFuel(200_000), "abi")
	if got := call(t, h, newFakeStore(), "loopn", nil, []string{"1000"}); strings.HasPrefix(got, "-") {
		t.Fatalf("1000 rounds in 200k fuel: %s", got)
	}
	if got := call(t, h, newFakeStore(), "loopn", nil, []string{"1000000"}); !strings.Contains(got, "ran out of fuel") {
		t.Fatalf("1e6 rounds in 200k fuel: %s", got)
	}
}

func TestParsePayload(t *testing.T) {
	name, code, err := ParsePayload(FormatPayload("lib_1", []byte{0, 'a', 's', 'm'}))
	if err != nil || name != "lib_1" || string(code) != "\x00asm" {
		t.Fatalf("round trip: %q %q %v", name, code, err)
	}
	for payload, want := range map[string]string{
		"\x00asm":                  "ERR Missing library metadata",
		"#!lua name=x\n":           "ERR Engine 'lua' not found",
		"#!wasm\n":                 "ERR Library name was not given",
		"#!wasm name=x foo=1\n":    "ERR Invalid metadata value given: foo=1",
		"#!wasm name=a name=b\n":   "ERR Invalid metadata value, name argument was given multiple times",
		"#!wasm name=bad-name\nx":  "ERR library names can only contain",
		"#!WASM name=ok\n\x00asm1": "",
	} {
		_, _, err := ParsePayload([]byte(payload))
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", payload, err)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(Message(err), want) {
			t.Errorf("%q: got %v, want %q", payload, err, want)
		}
	}
}

// Load is a function of the bytes: metering the same module twice gives
// the same module, so every replica that applies a FUNCTION LOAD from the
// log compiles the same code.
func TestMeteringIsDeterministic(t *testing.T) {
	for _, name := range []string{"abi", "counter", "transfer", "ratelimit", "spin", "hog", "trap_after_write"} {
		var first []byte
		for i := 0; i < 3; i++ {
			scanned, err := prescan(example(t, name))
			if err != nil {
				t.Fatal(err)
			}
			m, err := binary.DecodeModule(scanned, wasm.CoreFeaturesV2)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := meterModule(scanned, m, FuelDefault, true)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = out
			} else if string(out) != string(first) {
				t.Fatalf("%s: metering differs between runs", name)
			}
		}
	}
}

// A module that names the fuel global (an index past its own globals) must
// not load: after the rewrite that index would be valid and refill fuel.
func TestMeteringRefusesForgedFuelAccess(t *testing.T) {
	h := newHost(t, NewConfig())
	m := module([]string{"f"})
	// f: i64.const max; global.set 0 (the module has no globals: index 0
	// would become keel's fuel global)
	m.CodeSection[1].Body = []byte{wasm.OpcodeI64Const, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, wasm.OpcodeGlobalSet, 0, wasm.OpcodeEnd}
	_, err := h.Load(context.Background(), "forge", binary.EncodeModule(m), false)
	if err == nil || !strings.Contains(Message(err), "global index 0 out of range") {
		t.Fatalf("forged fuel access: %v", err)
	}
	m.CodeSection[1].Body = []byte{wasm.OpcodeI32Const, 1, wasm.OpcodeLocalSet, 0, wasm.OpcodeEnd}
	_, err = h.Load(context.Background(), "forge", binary.EncodeModule(m), false)
	if err == nil || !strings.Contains(Message(err), "local index 0 out of range") {
		t.Fatalf("forged local access: %v", err)
	}
}

func TestCompilationCache(t *testing.T) {
	ctx := context.Background()
	cache := wazero.NewCompilationCache()
	defer cache.Close(ctx)
	for i := 0; i < 2; i++ {
		h := newHost(t, NewConfig().WithCompilationCache(cache), "counter")
		if got := call(t, h, newFakeStore(), "incr_by", []string{"k"}, []string{"2"}); got != "(integer) 2" {
			t.Fatalf("host %d: %s", i, got)
		}
	}
}

// A module whose declared maximum is above the cap still loads; the cap
// wins at run time.
func TestDeclaredMaxAboveCap(t *testing.T) {
	h := newHost(t, NewConfig().WithMemoryLimitPages(4))
	m := module([]string{"f"})
	m.MemorySection = &wasm.Memory{Min: 1, Max: 1000, IsMaxEncoded: true}
	if _, err := h.Load(context.Background(), "bigmax", binary.EncodeModule(m), false); err != nil {
		t.Fatalf("declared max 1000 pages, cap 4: %v", err)
	}
}

func TestConfigBounds(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []Config{NewConfig().WithMemoryLimitPages(0), NewConfig().WithMemoryLimitPages(65537), NewConfig().WithFuel(0)} {
		if h, err := NewHost(ctx, cfg); err == nil {
			h.Close(ctx)
			t.Fatalf("config %+v accepted", cfg)
		}
	}
}

// Segments wabin decodes but cannot encode (passive and declarative
// element segments) load and run: the rewrite copies every section it does
// not change. Before, EncodeModule panicked on them, so a 116-byte upload
// crashed the server, and again on every replay of its FUNCTION LOAD.
func TestLoadKeepsSegmentsWabinCannotEncode(t *testing.T) {
	w := newWmod(1)
	w.table(4, 4)
	target := w.fn("", tyVoid, nil, op(wasm.OpcodeEnd))
	seg := w.passiveElem(target, target)
	w.declared = []uint32{target}
	data := w.passiveData([]byte{9, 8, 7})
	w.fn("segs", tyVoid, nil,
		i32c(0), i32c(0), i32c(2), tableInit(seg, 0), elemDrop(seg),
		i32c(100), i32c(0), i32c(3), memoryInit(data), dataDrop(data),
		// reply: 2 if table slot 1 holds a function, *1000 + the byte at 101
		op(wasm.OpcodeRefFunc), leb128.EncodeUint32(target), op(wasm.OpcodeDrop),
		i32c(1), op(wasm.OpcodeTableGet, 0), op(wasm.OpcodeRefIsNull), op(wasm.OpcodeI32Eqz), op(wasm.OpcodeI64ExtendI32U),
		i64c(2000), op(wasm.OpcodeI64Mul),
		i32c(101), op(wasm.OpcodeI32Load8U, 0, 0), op(wasm.OpcodeI64ExtendI32U), op(wasm.OpcodeI64Add),
		replyI64(), op(wasm.OpcodeEnd))
	h := newHost(t, NewConfig())
	if _, err := h.Load(context.Background(), "segs", w.bytes(), false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if got := call(t, h, newFakeStore(), "segs", nil, nil); got != "(integer) 2008" {
			t.Fatalf("call %d: segs = %s, want 2008 (table slot set, byte 8 copied)", i, got)
		}
	}
}
