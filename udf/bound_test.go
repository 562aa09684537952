package udf

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tetratelabs/wabin/wasm"
)

// hostile is a module of the guests issue 15 is about, and of the ones
// that test stopping a call. Every function that loops first writes key
// "k" (declare it), so that "no effects" can fail.
//
//	fill64k    set k; loop: memory.fill 64 KiB                (2-page memory)
//	fill16m    set k; memory.fill 16 MiB: out of bounds unless charged first
//	existsfill loop: exists k; memory.fill 64 KiB
//	tfill      set k; loop: table.fill of 65536 elements
//	tgrow      reply table.grow(2^31-1), then table.grow(1000): -1 then 0
//	spinlog    set k; loop: log "v"
//	logspin    set k; log "v"; loop forever, no host call
//	setspin    set k; loop forever
//	spinro     loop forever (no write)
//	ok         reply 7
//	deeprec    reply rec(2^32-1), rec(n) = n == 0 ? 0 : rec(n-1)+1: recursion without end
//	rec1000    reply rec(1000)
func hostile() []byte {
	w := newWmod(2, "set", "log", "reply_array", "exists")
	w.activeData(0, []byte("kv"))
	w.table(65536, 65536)
	w.table(0, -1)
	set := bytes.Join([][]byte{i32c(0), i32c(1), i32c(1), i32c(1), i64c(0), callf(w.imp("set"))}, nil)
	log := bytes.Join([][]byte{i32c(1), i32c(1), i32c(1), callf(w.imp("log"))}, nil)
	// Fills start at the second page, clear of "kv".
	fill := func(n int32) []byte { return bytes.Join([][]byte{i32c(64 << 10), i32c(0), i32c(n), memoryFill()}, nil) }
	end := op(wasm.OpcodeEnd)
	w.fn("fill64k", tyVoid, nil, set, forever(fill(64<<10)), end)
	w.fn("fill16m", tyVoid, nil, set, fill(16<<20), end)
	w.fn("existsfill", tyVoid, nil, forever(i32c(0), i32c(1), callf(w.imp("exists")), op(wasm.OpcodeDrop), fill(64<<10)), end)
	w.fn("tfill", tyVoid, nil, set, forever(i32c(0), refNull(), i32c(65536), tableFill(0)), end)
	grow := func(n int32) []byte {
		return bytes.Join([][]byte{refNull(), i32c(n), tableGrow(1), op(wasm.OpcodeI64ExtendI32S), replyI64()}, nil)
	}
	w.fn("tgrow", tyVoid, nil, i32c(2), callf(w.imp("reply_array")), grow(1<<31-1), grow(1000), end)
	w.fn("spinlog", tyVoid, nil, set, forever(log), end)
	w.fn("logspin", tyVoid, nil, set, log, forever(), end)
	w.fn("setspin", tyVoid, nil, set, forever(), end)
	w.fn("spinro", tyVoid, nil, forever(), end)
	w.fn("ok", tyVoid, nil, i64c(7), replyI64(), end)
	rec := uint32(len(w.m.ImportSection) + len(w.m.FunctionSection))
	w.fn("", tyI32I32, nil, lget(0), op(wasm.OpcodeI32Eqz), op(wasm.OpcodeIf, 0x40), i32c(0), op(wasm.OpcodeReturn), end,
		lget(0), i32c(1), op(wasm.OpcodeI32Sub), callf(rec), i32c(1), op(wasm.OpcodeI32Add), end)
	w.fn("deeprec", tyVoid, nil, i32c(-1), callf(rec), op(wasm.OpcodeI64ExtendI32U), replyI64(), end)
	w.fn("rec1000", tyVoid, nil, i32c(1000), callf(rec), op(wasm.OpcodeI64ExtendI32U), replyI64(), end)
	return w.bytes()
}

func loadHostile(t testing.TB, cfg Config) *Host {
	t.Helper()
	h := newHost(t, cfg)
	if _, err := h.Load(context.Background(), "hostile", hostile(), false); err != nil {
		t.Fatal(err)
	}
	return h
}

// runHostile calls fn with key k declared and checks the call failed with
// a user error and no effects; it returns the error text.
func runHostile(t *testing.T, ctx context.Context, h *Host, fn string) string {
	t.Helper()
	s := newFakeStore()
	res, err := h.Call(ctx, fn, bs("k"), nil, s, false)
	if err == nil {
		t.Fatalf("%s succeeded: %v", fn, res.Reply)
	}
	var ue *Error
	if !asUserError(err, &ue) {
		t.Fatalf("%s: internal error %v", fn, err)
	}
	if len(res.Effects) != 0 || s.snapshot() != "" {
		t.Fatalf("%s failed but left effects %q / state %q", fn, res.Effects, s.snapshot())
	}
	return ue.Error()
}

// Issue 15: a loop of 64 KiB fills cost 12 units of fuel per fill and
// held the executor for 13 s at the default fuel. Priced by size, it runs
// out after at most fuel/16384 fills, with the same verdict and the same
// fuel every time, and writes nothing.
func TestFillLoopRunsOutOfFuel(t *testing.T) {
	h := loadHostile(t, NewConfig())
	want := "ERR function 'fill64k' ran out of fuel (limit 50000000 instructions)"
	for i := 0; i < 3; i++ {
		before := h.Stats().FuelUsed
		if got := runHostile(t, context.Background(), h, "fill64k"); got != want {
			t.Fatalf("run %d: %s", i, got)
		}
		if used := h.Stats().FuelUsed - before; used != FuelDefault {
			t.Fatalf("run %d used %d fuel, want all %d", i, used, FuelDefault)
		}
	}
	// How many fills: one keel.exists per fill counts them.
	s := &countingStore{fakeStore: newFakeStore()}
	if _, err := h.Call(context.Background(), "existsfill", bs("k"), nil, s, false); err == nil || !strings.Contains(err.Error(), "ran out of fuel") {
		t.Fatalf("existsfill: %v", err)
	}
	perFill := int64(65536>>bulkByteShift + bulkMemoryFuel + hostCallFuel)
	if n := s.exists; n > FuelDefault/perFill+1 || n < FuelDefault/(perFill+64) {
		t.Fatalf("%d fills before the fuel ran out, want about %d", n, FuelDefault/perFill)
	}
}

type countingStore struct {
	*fakeStore
	exists int64
}

func (s *countingStore) Exists(key []byte) bool {
	s.exists++
	return s.fakeStore.Exists(key)
}

type logFunc func(msg string)

func (f logFunc) Log(_, _ string, _ LogLevel, msg string) { f(msg) }

// A single fill larger than the fuel can pay for traps before it runs:
// in a 2-page memory a 16 MiB fill is out of bounds, yet the verdict is
// the fuel, because the charge comes first. With enough fuel the same
// fill is an out-of-bounds trap; a 16 MiB fill inside memory is allowed
// by the default fuel (it costs 4 M units, under 1 ms).
func TestHugeFillChargedBeforeItRuns(t *testing.T) {
	h := loadHostile(t, NewConfig().WithFuel(1_000_000))
	if got := runHostile(t, context.Background(), h, "fill16m"); got != "ERR function 'fill16m' ran out of fuel (limit 1000000 instructions)" {
		t.Fatal(got)
	}
	h = loadHostile(t, NewConfig())
	if got := runHostile(t, context.Background(), h, "fill16m"); !strings.Contains(got, "out of bounds memory access") {
		t.Fatal(got)
	}
	w := newWmod(256)
	w.fn("big", tyVoid, nil, i32c(0), i32c(1), i32c(16<<20), memoryFill(), i32c(1<<24-1), op(wasm.OpcodeI64Load8U, 0, 0), replyI64(), op(wasm.OpcodeEnd))
	h = newHost(t, NewConfig())
	if _, err := h.Load(context.Background(), "big", w.bytes(), false); err != nil {
		t.Fatal(err)
	}
	if got := call(t, h, newFakeStore(), "big", nil, nil); got != "(integer) 1" {
		t.Fatalf("16 MiB fill in a 16 MiB memory: %s", got)
	}
	if used, want := h.Stats().FuelUsed, int64(16<<20>>bulkByteShift); used < want || used > want+hostCallFuel+2*bulkMemoryFuel {
		t.Fatalf("the fill used %d fuel, want %d and a few", used, want)
	}
}

// Table instructions: table.fill pays per element and its base price (a
// call into Go), and tables cannot grow past TableElementsMax in all.
func TestTableBounds(t *testing.T) {
	h := loadHostile(t, NewConfig())
	if got := runHostile(t, context.Background(), h, "tfill"); !strings.Contains(got, "ran out of fuel") {
		t.Fatal(got)
	}
	// Table 0 holds 65536 elements, so table 1 (declared without a
	// maximum) may grow to TableElementsMax-65536: 2^31-1 fails, 1000 works.
	if got := call(t, h, newFakeStore(), "tgrow", nil, nil); got != "[(integer) -1 (integer) 0]" {
		t.Fatalf("tgrow = %s", got)
	}
	w := newWmod(1)
	w.table(TableElementsMax/2, -1)
	w.table(TableElementsMax/2+1, -1)
	w.fn("f", tyVoid, nil, op(wasm.OpcodeEnd))
	_, err := h.Load(context.Background(), "bigtables", w.bytes(), false)
	if err == nil || !strings.Contains(Message(err), "its tables start with 131073 elements, above the limit of 131072") {
		t.Fatalf("load of oversized tables: %v", err)
	}
}

// A call whose context is already over does not start; one whose context
// ends during a host call stops at its next host call (deterministically:
// the fuel it uses after the cancel is one loop header's), and one whose
// context ends while it loops without host calls stops at a fuel check
// soon after (context.AfterFunc sets the stop global). Each fails with
// "killed", leaves nothing, and the library serves the next call.
func TestContextEndStopsCall(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("shutting down"))
	h := loadHostile(t, NewConfig())
	if got := runHostile(t, ctx, h, "spinro"); got != "ERR function 'spinro' killed: shutting down" {
		t.Fatal(got)
	}
	if n := h.Stats().Instances; n != 0 {
		t.Fatalf("a call with an ended context created %d instances", n)
	}

	for _, c := range []struct {
		fn        string
		logs      int64 // logs seen: the cancel is at the first
		afterMax  int64 // fuel used after the cancel
		fuelLimit int64
	}{
		{"spinlog", 1, 16, FuelMax},
		{"logspin", 1, 1 << 40, 20_000_000_000}, // the fuel would last seconds: a failure says "fuel", not a hang
	} {
		var logs atomic.Int64
		var fuelAtCancel int64
		ctx, cancel := context.WithCancelCause(context.Background())
		var h *Host
		h = loadHostile(t, NewConfig().WithFuel(c.fuelLimit).WithLogger(logFunc(func(string) {
			if logs.Add(1) == 1 {
				fuelAtCancel = int64(h.st.fuel.Get())
				cancel(errors.New("deadline"))
			}
		})))
		if got := runHostile(t, ctx, h, c.fn); got != "ERR function '"+c.fn+"' killed: deadline" {
			t.Fatalf("%s: %s", c.fn, got)
		}
		after := h.Stats().FuelUsed - (c.fuelLimit - fuelAtCancel)
		if logs.Load() != c.logs || after < 0 || after > c.afterMax {
			t.Fatalf("%s: %d logs, %d fuel used after the cancel (at most %d)", c.fn, logs.Load(), after, c.afterMax)
		}
		t.Logf("%s: %d fuel after the cancel", c.fn, after)
		if got := call(t, h, newFakeStore(), "ok", nil, nil); got != "(integer) 7" {
			t.Fatalf("after the kill: %s", got)
		}
	}
}

// The runtime's per-call context (Config.WithCallContext) applies to every
// call without the caller passing one.
func TestCallContextFromConfig(t *testing.T) {
	var made atomic.Int64
	cfg := NewConfig().WithFuel(FuelMax).WithCallContext(func(ctx context.Context) (context.Context, context.CancelFunc) {
		made.Add(1)
		ctx, cancel := context.WithCancelCause(ctx)
		cancel(errors.New("ran longer than function-time-limit"))
		return ctx, func() {}
	})
	h := loadHostile(t, cfg)
	if got := runHostile(t, context.Background(), h, "spinro"); got != "ERR function 'spinro' killed: ran longer than function-time-limit" {
		t.Fatal(got)
	}
	if made.Load() != 1 {
		t.Fatalf("%d contexts made for one call", made.Load())
	}
}

// Guard.Kill from inside a host call (the earliest point another
// goroutine could act) stops the guest at its next fuel check: the fuel it
// uses afterwards is one loop header's, whatever its fuel.
func TestKillStopsWithinABlock(t *testing.T) {
	g := NewGuard(nil)
	var fuelAtKill int64
	var h *Host
	h = loadHostile(t, NewConfig().WithFuel(FuelMax).WithGuard(g).WithLogger(logFunc(func(string) {
		calls := g.Running()
		if len(calls) != 1 || calls[0].Function != "logspin" || !calls[0].Wrote {
			t.Errorf("running: %+v", calls)
		}
		fuelAtKill = int64(h.st.fuel.Get())
		if !g.Kill(calls[0].ID, errors.New("operator")) {
			t.Error("Kill of the running call failed")
		}
	})))
	if got := runHostile(t, context.Background(), h, "logspin"); got != "ERR function 'logspin' killed: operator" {
		t.Fatal(got)
	}
	if after := h.Stats().FuelUsed - (FuelMax - fuelAtKill); after < 0 || after > 16 {
		t.Fatalf("%d fuel used after the kill", after)
	}
}

// FUNCTION KILL from another goroutine, as a server runs it: Redis's
// NOTBUSY when nothing runs, UNKILLABLE for a function that has written
// (SHUTDOWN's KillAll stops it anyway, and nothing it wrote is applied),
// and a killed function's library keeps serving.
func TestGuardFunctionKill(t *testing.T) {
	clock := fakeClock(1234)
	g := NewGuard(&clock)
	h := loadHostile(t, NewConfig().WithFuel(FuelMax).WithGuard(g))
	if err := g.FunctionKill(); err == nil || Message(err) != NotBusyMessage {
		t.Fatalf("FUNCTION KILL with nothing running: %v", err)
	}
	start := func(fn string, ro bool) (<-chan error, CallInfo) {
		done := make(chan error, 1)
		s := newFakeStore()
		go func() {
			res, err := h.Call(context.Background(), fn, bs("k"), bs("a1"), s, ro)
			if err == nil || len(res.Effects) != 0 || s.snapshot() != "" {
				err = errors.New("ended without a kill, or with effects")
			}
			done <- err
		}()
		for {
			if calls := g.Running(); len(calls) == 1 && (calls[0].Wrote || fn != "setspin") {
				return done, calls[0]
			}
			runtime.Gosched()
		}
	}

	done, info := start("spinro", true)
	if info.Library != "hostile" || info.Function != "spinro" || !info.ReadOnly || info.Wrote || info.Started != 1234 ||
		string(bytes.Join(info.Keys, nil)) != "k" || string(bytes.Join(info.Args, nil)) != "a1" {
		t.Fatalf("running: %+v", info)
	}
	if err := g.FunctionKill(); err != nil {
		t.Fatalf("FUNCTION KILL: %v", err)
	}
	if err := <-done; Message(err) != "ERR function 'spinro' killed: Script killed by user with FUNCTION KILL" || !IsKilled(err) {
		t.Fatalf("killed call: %v", err)
	}
	if len(g.Running()) != 0 {
		t.Fatal("still running after the kill")
	}

	done, info = start("setspin", false)
	if !info.Wrote || info.ID != 2 {
		t.Fatalf("running: %+v", info)
	}
	if err := g.FunctionKill(); err == nil || Message(err) != UnkillableMessage {
		t.Fatalf("FUNCTION KILL of a function that wrote: %v", err)
	}
	if n := g.KillAll(errors.New("SHUTDOWN NOSAVE")); n != 1 {
		t.Fatalf("KillAll stopped %d calls", n)
	}
	if err := <-done; Message(err) != "ERR function 'setspin' killed: SHUTDOWN NOSAVE" {
		t.Fatalf("killed call: %v", err)
	}
	if g.Kill(info.ID, nil) || g.KillAll(nil) != 0 {
		t.Fatal("a kill found a call that had ended")
	}
	if got := call(t, h, newFakeStore(), "ok", nil, nil); got != "(integer) 7" {
		t.Fatalf("after the kills: %s", got)
	}
	_ = h.Close(context.Background())
	if len(g.hosts) != 0 {
		t.Fatal("a closed host stays registered")
	}
}

type fakeClock int64

func (c *fakeClock) Now() int64 { return int64(*c) }

// A garbage collection while a guest loops: wazero's compiled code cannot
// be preempted, and before the tick (meter.go) the collector's
// stop-the-world waited for the guest to finish, freezing every goroutine,
// the one that would kill the guest included. Now runtime.GC returns while
// the guest still runs (its fuel would last seconds), and the guest can be
// killed. Were the world to wait for it, KillAll would find nothing
// running and the call would end "out of fuel".
func TestGCDoesNotWaitForGuest(t *testing.T) {
	g := NewGuard(nil)
	h := loadHostile(t, NewConfig().WithFuel(20_000_000_000).WithGuard(g))
	done := make(chan error, 1)
	go func() {
		_, err := h.Call(context.Background(), "spinro", nil, nil, newFakeStore(), true)
		done <- err
	}()
	for len(g.Running()) == 0 {
		runtime.Gosched()
	}
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	if n := g.KillAll(errors.New("after GC")); n != 1 {
		t.Fatalf("KillAll after the collections stopped %d calls", n)
	}
	if err := <-done; Message(err) != "ERR function 'spinro' killed: after GC" {
		t.Fatal(err)
	}
}

// Recursion without end stops at the call stack limit, long before its
// fuel would, and before wazero grows its native stack beyond a few MiB:
// without the limit the same guest ran 1.5 million calls deep, allocated
// 161 MB and took 300 ms. Recursion of a reasonable depth is untouched.
func TestRecursionBounded(t *testing.T) {
	h := loadHostile(t, NewConfig())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	got := call(t, h, newFakeStore(), "deeprec", nil, nil)
	runtime.ReadMemStats(&ms)
	if got != "-ERR function 'deeprec' nested calls too deeply (call stack limit of 65536 units)" {
		t.Fatal(got)
	}
	if alloc := ms.TotalAlloc - before; alloc > 32<<20 {
		t.Fatalf("the recursion allocated %d MiB", alloc>>20)
	}
	t.Logf("allocated %d KiB", (ms.TotalAlloc-before)>>10)
	if got := call(t, h, newFakeStore(), "rec1000", nil, nil); got != "(integer) 1000" {
		t.Fatal(got)
	}
}
