package udf

import (
	"context"
	"sort"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/engine"
	"github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/wasm"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Defaults and bounds of the sandbox.
const (
	// MemoryLimitPagesDefault caps a guest's linear memory at 16 MiB:
	// enough for a Go guest's runtime (2 MiB at start), small enough that a
	// hog cannot hurt the node.
	MemoryLimitPagesDefault = 256
	// FuelDefault is the fuel of one call, Go runtime start-up included
	// (about 14.6 million units for a Go guest). A unit is priced at about
	// one plain instruction, 0.064 ns on the VM keel is built on
	// (price.go), so this is a few milliseconds of one core (1.5 ms of 64
	// KiB fills, 6 ms of an empty loop): a deterministic bound on how long
	// one call can hold the replica's executor. The runtime's deadline
	// (Config.WithCallContext) bounds the rest.
	FuelDefault = 50_000_000
	// LibraryBytesMax bounds one module's size.
	LibraryBytesMax = 32 << 20
	// FuelMax bounds Config.WithFuel: a stopped call's mark (MaxInt64)
	// must stay above any fuel left, and charges must not overflow.
	FuelMax = 1 << 62
)

// Config is a Host's configuration. It is immutable: each With… method
// returns a changed copy, as wazero's RuntimeConfig does.
type Config struct {
	memoryLimitPages uint32
	fuel             int64
	logger           Logger
	closeOnDone      bool
	cache            wazero.CompilationCache
	guard            *Guard
	callContext      func(context.Context) (context.Context, context.CancelFunc)
	// unmetered skips fuel instrumentation; only for measuring its cost.
	unmetered bool
}

// NewConfig returns the defaults: 16 MiB of memory, FuelDefault fuel,
// logs discarded, and no context check (fuel is the CPU limit; see
// WithCloseOnContextDone).
func NewConfig() Config {
	return Config{memoryLimitPages: MemoryLimitPagesDefault, fuel: FuelDefault, logger: discardLogger{}}
}

// WithMemoryLimitPages caps each guest instance's memory, in 64 KiB pages.
func (c Config) WithMemoryLimitPages(pages uint32) Config { c.memoryLimitPages = pages; return c }

// WithFuel sets the fuel of one call: how many (metered) WebAssembly
// instructions it may run before it fails with "out of fuel".
func (c Config) WithFuel(units int64) Config { c.fuel = units; return c }

// WithLogger sends guests' keel.log calls and stdout/stderr writes to l.
func (c Config) WithLogger(l Logger) Config { c.logger = l; return c }

// WithCloseOnContextDone turns on wazero's own check of the call's context
// at every loop header and function entry. It is not needed to stop a call
// whose context ends (the metering's stop global does that, interrupt.go,
// for one load per fuel check), and it is dear: 8-18 ns per loop iteration
// against about 0.3 ns for fuel (BenchmarkLoopGuard, docs/functions.md).
// It remains as a second net under a metering bug.
func (c Config) WithCloseOnContextDone(on bool) Config { c.closeOnDone = on; return c }

// WithCallContext has every call run under the context newCtx derives
// from the one Call or FCall was given, and calls the cancel func it
// returns when the call ends. It is how the runtime bounds each call in
// wall-clock time without the code between it and the Host passing
// contexts: for example
//
//	cfg.WithCallContext(func(ctx context.Context) (context.Context, context.CancelFunc) {
//		return context.WithTimeoutCause(ctx, limit, errors.New("ran longer than function-time-limit"))
//	})
//
// A call whose context ends stops within a few instructions and fails with
// "ERR function 'f' killed: <the context's cause>" and no effects
// (interrupt.go). nil (the default) leaves the given context as it is. The
// udf package never reads a clock: the deadline is the runtime's.
func (c Config) WithCallContext(newCtx func(context.Context) (context.Context, context.CancelFunc)) Config {
	c.callContext = newCtx
	return c
}

// WithGuard registers the host's calls with g, through which the runtime
// sees and stops them from other goroutines (FUNCTION KILL, shutdown).
func (c Config) WithGuard(g *Guard) Config { c.guard = g; return c }

// WithCompilationCache keeps compiled libraries in c. With
// wazero.NewCompilationCacheWithDir, a restarted server (which reloads
// every library from its snapshot and log) skips recompiling: a Go guest
// takes about a second or more to compile (BenchmarkLoad). The cache is
// keyed by the metered module's bytes, which are a pure function of the
// upload and the fuel setting.
func (c Config) WithCompilationCache(cache wazero.CompilationCache) Config {
	c.cache = cache
	return c
}

// LogLevel is the level a guest logs at (keel.log's first argument).
type LogLevel int32

// Levels, in the guest ABI's numbering.
const (
	LogDebug LogLevel = iota
	LogInfo
	LogWarn
	LogError
)

// Logger receives what guests log. It must not block for long: it runs
// inside the call.
type Logger interface {
	Log(library, function string, level LogLevel, msg string)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type discardLogger struct{}

func (discardLogger) Log(string, string, LogLevel, string) {}

// Host runs WASM libraries. It owns a wazero runtime with the keel and
// (minimal) WASI host modules, and the registry of loaded libraries.
//
// Not safe for concurrent use: like engine.DB, one owner (the replica's
// executor) loads, deletes and calls, in log order.
type Host struct {
	cfg    Config
	rt     wazero.Runtime
	modCfg wazero.ModuleConfig
	libs   map[string]*Library
	fns    map[string]*Library // function name -> library defining it
	mem    *memPool
	stats  Stats
	// run is what other goroutines may touch while a call runs
	// (interrupt.go).
	run runState
	// warmBytes is what warm instances and their images hold, at most
	// warmBytesMax.
	warmBytes int
	// cur is the call in progress, which host functions serve (nil
	// between calls); st is its storage, reused from call to call.
	cur *callState
	st  callState
	// shadow is the scratch keyspace of keel.call (collections.go), kept
	// empty between calls so that a call does not build one.
	shadow *engine.DB
	// delArgv is the scratch keyspace's DEL of a call's keys, reused.
	delArgv [][]byte
}

// Library is one loaded module.
type Library struct {
	name      string
	wasm      []byte // as uploaded: what DUMP saves and LIST WITHCODE shows
	functions []string
	hasInit   bool
	compiled  wazero.CompiledModule
	reset     resetPlan
	// warm is an instance in the library's initial state, kept between
	// calls; image is that state (warm.go).
	warm  *instance
	image *image
}

// Name is the library's name.
func (l *Library) Name() string { return l.name }

// Functions are the library's callable functions, sorted.
func (l *Library) Functions() []string { return l.functions }

// Code is the module as uploaded.
func (l *Library) Code() []byte { return l.wasm }

// NewHost starts a host.
func NewHost(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.memoryLimitPages == 0 || cfg.memoryLimitPages > 65536 {
		return nil, errors.Newf("udf: memory limit of %d pages; want 1 to 65536", cfg.memoryLimitPages)
	}
	if cfg.fuel <= 0 || cfg.fuel > FuelMax {
		return nil, errors.Newf("udf: fuel %d; want 1 to %d", cfg.fuel, int64(FuelMax))
	}
	rc := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(cfg.memoryLimitPages).
		WithCloseOnContextDone(cfg.closeOnDone).
		WithCoreFeatures(api.CoreFeaturesV2)
	if cfg.cache != nil {
		rc = rc.WithCompilationCache(cfg.cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	h := &Host{
		cfg: cfg,
		rt:  rt,
		// keel serves WASI itself (wasi.go); the rand source given here only
		// spares wazero seeding a math/rand source per instance (~40 µs).
		modCfg: wazero.NewModuleConfig().WithName("").WithStartFunctions().WithRandSource(zeroReader{}),
		libs:   map[string]*Library{},
		fns:    map[string]*Library{},
		mem:    &memPool{},
	}
	for _, m := range []struct {
		name  string
		funcs []hostFunc
	}{{abiModule, keelFuncs}, {wasiModule, wasiFuncs}} {
		b := rt.NewHostModuleBuilder(m.name)
		for _, f := range m.funcs {
			fn := f.fn
			b.NewFunctionBuilder().
				WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, mod api.Module, stack []uint64) {
					// Every host call pays hostCallFuel before it runs, so
					// a guest cannot escape its fuel by making the host
					// work for it; what it moves pays on top (chargeBytes).
					st := h.current()
					st.charge(hostCallFuel)
					fn(st, mod, stack)
				}), f.params, f.results).
				Export(f.name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			_ = rt.Close(ctx)
			return nil, errors.Wrapf(err, "instantiate host module %s", m.name)
		}
	}
	if cfg.guard != nil {
		cfg.guard.add(h)
	}
	return h, nil
}

// Close releases the runtime and every compiled module.
func (h *Host) Close(ctx context.Context) error {
	if h.cfg.guard != nil {
		h.cfg.guard.remove(h)
	}
	return errors.Wrap(h.rt.Close(ctx), "close wazero runtime")
}

// Load validates, meters and compiles a module and registers its
// functions under the library name. With replace, an existing library of
// that name is swapped out (its functions go with it). Nothing changes when
// Load fails.
func (h *Host) Load(ctx context.Context, name string, code []byte, replace bool) (*Library, error) {
	if err := checkName("Library", name); err != nil {
		return nil, err
	}
	old := h.libs[name]
	if old != nil && !replace {
		return nil, userErrorf("ERR Library '%s' already exists", name)
	}
	lib, err := h.compile(ctx, name, code)
	if err != nil {
		return nil, err
	}
	for _, fn := range lib.functions {
		if other := h.fns[fn]; other != nil && other != old {
			_ = lib.compiled.Close(ctx)
			return nil, userErrorf("ERR Function %s already exists", fn)
		}
	}
	if old != nil {
		h.remove(ctx, old)
	}
	h.libs[name] = lib
	for _, fn := range lib.functions {
		h.fns[fn] = lib
	}
	return lib, nil
}

func (h *Host) remove(ctx context.Context, lib *Library) {
	for _, fn := range lib.functions {
		delete(h.fns, fn)
	}
	delete(h.libs, lib.name)
	h.dropWarm(ctx, lib)
	// Closing a compiled module only frees its code; the warm instance
	// was closed above and no other outlives its call.
	_ = lib.compiled.Close(ctx)
}

// compile checks what the module imports and exports, instruments it with
// fuel and compiles it. Every refusal says what to change.
func (h *Host) compile(ctx context.Context, name string, code []byte) (*Library, error) {
	if len(code) > LibraryBytesMax {
		return nil, userErrorf("ERR library '%s' is %d bytes, above the limit of %d", name, len(code), LibraryBytesMax)
	}
	scanned, err := prescan(code)
	if err != nil {
		return nil, userErrorf("ERR library '%s' is not a valid WebAssembly module: %v", name, err)
	}
	m, err := binary.DecodeModule(scanned, wasm.CoreFeaturesV2)
	if err != nil {
		return nil, userErrorf("ERR library '%s' is not a valid WebAssembly module: %v", name, err)
	}
	for _, im := range m.ImportSection {
		if err := checkImport(m, im); err != nil {
			return nil, userErrorf("ERR library '%s': %s", name, err.Error())
		}
	}
	if m.MemorySection == nil {
		return nil, userErrorf("ERR library '%s' defines no memory; keel passes data through the guest's exported \"memory\"", name)
	}
	if m.MemorySection.Min > h.cfg.memoryLimitPages {
		return nil, userErrorf("ERR library '%s' needs %d pages of memory at start, above the limit of %d", name, m.MemorySection.Min, h.cfg.memoryLimitPages)
	}
	lib := &Library{name: name, wasm: append([]byte(nil), code...)}
	var hasABI, hasMemory bool
	for _, e := range m.ExportSection {
		switch {
		case e.Type == wasm.ExternTypeMemory && e.Name == "memory":
			hasMemory = true
		case e.Type != wasm.ExternTypeFunc:
		case e.Name == abiMarker:
			hasABI = true
		case e.Name == "_initialize":
			if isNullary(m, e.Index) {
				lib.hasInit = true
			}
		case len(e.Name) > 0 && e.Name[0] == '_', e.Name == "_start":
		case isNullary(m, e.Index) && checkName("Function", e.Name) == nil:
			lib.functions = append(lib.functions, e.Name)
		}
	}
	if !hasMemory {
		return nil, userErrorf("ERR library '%s' does not export its memory as \"memory\"", name)
	}
	if !hasABI {
		return nil, userErrorf("ERR library '%s' does not declare a keel ABI version: export a function named %s (the SDKs do)", name, abiMarker)
	}
	if len(lib.functions) == 0 {
		return nil, userErrorf("ERR library '%s' exports no callable function: export a function with no parameters and no results", name)
	}
	sort.Strings(lib.functions)
	metered, plan, err := meterModule(scanned, m, h.cfg.fuel, !h.cfg.unmetered)
	if err != nil {
		return nil, userErrorf("ERR library '%s' cannot be metered: %v", name, err)
	}
	lib.reset = plan
	lib.compiled, err = h.rt.CompileModule(ctx, metered)
	if err != nil {
		return nil, userErrorf("ERR library '%s' does not compile: %v", name, err)
	}
	return lib, nil
}

// isNullary reports whether function index fi has type func() -> ().
func isNullary(m *wasm.Module, fi wasm.Index) bool {
	nImp := m.ImportFuncCount()
	var ti wasm.Index
	if fi < nImp {
		n := wasm.Index(0)
		for _, im := range m.ImportSection {
			if im.Type == wasm.ExternTypeFunc {
				if n == fi {
					ti = im.DescFunc
					break
				}
				n++
			}
		}
	} else {
		if int(fi-nImp) >= len(m.FunctionSection) {
			return false
		}
		ti = m.FunctionSection[fi-nImp]
	}
	if int(ti) >= len(m.TypeSection) {
		return false
	}
	t := m.TypeSection[ti]
	return len(t.Params) == 0 && len(t.Results) == 0
}

// checkImport allows only functions keel provides, with their exact
// signatures.
func checkImport(m *wasm.Module, im *wasm.Import) error {
	if im.Type != wasm.ExternTypeFunc {
		return errors.Newf("imports %s.%s, which is not a function; guests may import only keel's functions", im.Module, im.Name)
	}
	var table []hostFunc
	switch im.Module {
	case abiModule:
		table = keelFuncs
	case wasiModule:
		table = wasiFuncs
	default:
		return errors.Newf("imports %s.%s; guests may import only from \"keel\" (and the sandboxed wasi_snapshot_preview1 subset)", im.Module, im.Name)
	}
	for _, f := range table {
		if f.name != im.Name {
			continue
		}
		if int(im.DescFunc) >= len(m.TypeSection) {
			return errors.Newf("import %s.%s has an invalid type", im.Module, im.Name)
		}
		t := m.TypeSection[im.DescFunc]
		if string(t.Params) != string(f.params) || string(t.Results) != string(f.results) {
			return errors.Newf("imports %s.%s with signature %s, want %s (a newer or older keel ABI?)",
				im.Module, im.Name, sigString(t.Params, t.Results), sigString(f.params, f.results))
		}
		return nil
	}
	return errors.Newf("imports %s.%s, which keel does not provide", im.Module, im.Name)
}

func sigString(params, results []api.ValueType) string {
	s := "("
	for i, p := range params {
		if i > 0 {
			s += ","
		}
		s += api.ValueTypeName(p)
	}
	s += ")->("
	for i, r := range results {
		if i > 0 {
			s += ","
		}
		s += api.ValueTypeName(r)
	}
	return s + ")"
}

// Library returns a loaded library, or nil.
func (h *Host) Library(name string) *Library { return h.libs[name] }

// Libraries returns the loaded libraries sorted by name.
func (h *Host) Libraries() []*Library {
	out := make([]*Library, 0, len(h.libs))
	for _, l := range h.libs {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Delete removes a library and its functions.
func (h *Host) Delete(ctx context.Context, name string) error {
	lib := h.libs[name]
	if lib == nil {
		return userErrorf("ERR Library not found")
	}
	h.remove(ctx, lib)
	return nil
}

// Flush removes every library.
func (h *Host) Flush(ctx context.Context) {
	for _, l := range h.Libraries() {
		h.remove(ctx, l)
	}
}

// Stats counts what is loaded and what calls did since the host started.
type Stats struct {
	Libraries, Functions int
	// Calls, Failures and FuelUsed count this process's calls (FuelUsed
	// includes what failed calls used); they are not replicated and
	// restart at zero.
	Calls, Failures, FuelUsed int64
	// Instances counts the guest instances created: a call served by its
	// library's warm instance creates none (warm.go). ResetBytes counts the
	// memory copied back to reset warm instances.
	Instances, ResetBytes int64
}

// Stats returns the registry's counters.
func (h *Host) Stats() Stats {
	s := h.stats
	s.Libraries = len(h.libs)
	s.Functions = len(h.fns)
	return s
}
