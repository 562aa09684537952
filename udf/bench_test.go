package udf

import (
	"bytes"
	"context"
	"errors"
	"math"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/leb128"
	"github.com/tetratelabs/wabin/wasm"
	"pgregory.net/rapid"
)

// BenchmarkCallIncrBy is one FCALL of the C counter: instantiate a fresh
// instance, run incr_by, close it, build the effects.
//
//	go test -run '^$' -bench CallIncrBy -benchmem ./udf/
func BenchmarkCallIncrBy(b *testing.B) {
	h := newHost(b, NewConfig(), "counter")
	s := newFakeStore()
	ctx := context.Background()
	keys, args := bs("counter"), bs("1")
	b.ReportAllocs()
	for b.Loop() {
		res, err := h.Call(ctx, "incr_by", keys, args, s, false)
		if err != nil {
			b.Fatal(err)
		}
		s.vals["counter"] = res.Effects[0][2]
	}
}

// BenchmarkLoopGuard measures the cost of the CPU guards on a loop-heavy
// guest: 1e6 rounds of an LCG (loopn), reported per loop iteration.
//
//	go test -run '^$' -bench LoopGuard ./udf/
func BenchmarkLoopGuard(b *testing.B) {
	const rounds = 1_000_000
	for _, c := range []struct {
		name        string
		metered     bool
		closeOnDone bool
	}{
		{"none", false, false},
		{"ctxdone", false, true},
		{"fuel", true, false},
		{"fuel+ctxdone", true, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := NewConfig().WithCloseOnContextDone(c.closeOnDone).WithFuel(1 << 40)
			cfg.unmetered = !c.metered
			h := newHost(b, cfg, "abi")
			s := newFakeStore()
			args := bs("1000000")
			for b.Loop() {
				if _, err := h.Call(context.Background(), "loopn", nil, args, s, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rounds, "ns/iter")
		})
	}
}

// BenchmarkGoGuestIncrBy is BenchmarkCallIncrBy with the Go guest: each
// call starts the Go runtime (_initialize) in a fresh instance.
//
//	go test -run '^$' -bench GoGuest -benchmem ./udf/
func BenchmarkGoGuestIncrBy(b *testing.B) {
	code := buildGoGuest(b)
	h := newHost(b, NewConfig())
	if _, err := h.Load(context.Background(), "gocounter", code, false); err != nil {
		b.Fatal(err)
	}
	s := newFakeStore()
	keys, args := bs("counter"), bs("1")
	b.ReportAllocs()
	for b.Loop() {
		res, err := h.Call(context.Background(), "incr_by", keys, args, s, false)
		if err != nil {
			b.Fatal(err)
		}
		s.vals["counter"] = res.Effects[0][2]
	}
	b.ReportMetric(float64(h.Stats().FuelUsed)/float64(h.Stats().Calls), "fuel/call")
}

// BenchmarkLoad is FUNCTION LOAD's cost (prescan, decode, meter, compile),
// paid once per library in the executor: the C abi example and the Go
// guest.
//
//	go test -run '^$' -bench Load -benchmem ./udf/
func BenchmarkLoad(b *testing.B) {
	for _, c := range []struct {
		name string
		code func(testing.TB) []byte
	}{
		{"c_abi", func(tb testing.TB) []byte { return example(tb, "abi") }},
		{"go_counter", buildGoGuest},
	} {
		b.Run(c.name, func(b *testing.B) {
			code := c.code(b)
			h := newHost(b, NewConfig())
			ctx := context.Background()
			for b.Loop() {
				if _, err := h.Load(ctx, "lib", code, true); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(code)), "module-bytes")
		})
	}
}

// BenchmarkStoreLoop measures what the rewrite costs a store-heavy guest:
// 1e6 rounds of a byte store (i32.store8 into a 16 KiB window) with no
// rewrite, and with fuel and the dirty marks (the default), per store.
//
//	go test -run '^$' -bench StoreLoop ./udf/
func BenchmarkStoreLoop(b *testing.B) {
	const rounds = 1_000_000
	m := stateful()
	m.CodeSection[3].LocalTypes = []wasm.ValueType{wasm.ValueTypeI32}
	m.CodeSection[3].Body = []byte{
		wasm.OpcodeLoop, 0x40,
		wasm.OpcodeLocalGet, 0, wasm.OpcodeI32Const, 0xff, 0xff, 0x00 /* 16383 */, wasm.OpcodeI32And,
		wasm.OpcodeLocalGet, 0, wasm.OpcodeI32Store8, 0, 0,
		wasm.OpcodeLocalGet, 0, wasm.OpcodeI32Const, 1, wasm.OpcodeI32Add, wasm.OpcodeLocalTee, 0,
		wasm.OpcodeI32Const, 0xc0, 0x84, 0x3d /* 1e6 */, wasm.OpcodeI32LtU, wasm.OpcodeBrIf, 0,
		wasm.OpcodeEnd,
		wasm.OpcodeI64Const, 1, wasm.OpcodeCall, 0, wasm.OpcodeEnd,
	}
	code := binary.EncodeModule(m)
	for _, c := range []struct {
		name      string
		unmetered bool
	}{{"none", true}, {"fuel+marks", false}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := NewConfig().WithFuel(1 << 40)
			cfg.unmetered = c.unmetered
			h := newHost(b, cfg)
			if _, err := h.Load(context.Background(), "stores", code, false); err != nil {
				b.Fatal(err)
			}
			s := newFakeStore()
			for b.Loop() {
				if _, err := h.Call(context.Background(), "grow", nil, nil, s, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rounds, "ns/store")
		})
	}
}

// costCase is one instruction (or a short sequence) whose cost
// BenchmarkInstructionCost measures: body runs once per loop iteration in
// a module set up by setup; n is its size in units (bytes, elements or
// pages; 0 for none).
type costCase struct {
	name  string
	unit  string
	n     int32
	setup func(w *wmod) // tables, segments, helper functions
	body  func(w *wmod) []byte
}

// runnerLocals are the locals of a measured function: the loop counter
// and an i64 the arithmetic cases use.
var runnerLocals = []wasm.ValueType{wasm.ValueTypeI32, wasm.ValueTypeI64}

const costTableN = 1 << 16

func tableSetup(w *wmod) { w.table(2*costTableN, 2*costTableN) }

// costCases: ordinary instructions first (the reference for what one unit
// of fuel buys), then the instructions that call into wazero's runtime,
// then the bulk instructions by size.
func costCases() []costCase {
	const mib = 1 << 20
	var helper uint32
	cs := []costCase{
		{name: "empty", body: func(*wmod) []byte { return nil }},
		{name: "arith", body: func(*wmod) []byte { // an LCG step: 6 instructions
			return bytes.Join([][]byte{lget(1), i64c(6364136223846793005), op(wasm.OpcodeI64Mul), i64c(1442695040888963407), op(wasm.OpcodeI64Add), lset(1)}, nil)
		}},
		{name: "load-store", body: func(*wmod) []byte { // 6 instructions
			return bytes.Join([][]byte{i32c(64), i32c(64), op(wasm.OpcodeI64Load, 3, 0), i64c(1), op(wasm.OpcodeI64Add), op(wasm.OpcodeI64Store, 3, 0)}, nil)
		}},
		{name: "call", setup: func(w *wmod) { helper = w.fn("", tyVoid, nil, op(wasm.OpcodeEnd)) },
			body: func(*wmod) []byte { return callf(helper) }},
		{name: "call_indirect", setup: func(w *wmod) {
			helper = w.fn("", tyVoid, nil, op(wasm.OpcodeEnd))
			w.table(1, 1)
			w.m.ElementSection = append(w.m.ElementSection, &wasm.ElementSegment{
				OffsetExpr: &wasm.ConstantExpression{Opcode: wasm.OpcodeI32Const, Data: []byte{0}}, Init: []*wasm.Index{&helper}, Type: wasm.RefTypeFuncref})
		}, body: func(*wmod) []byte { return bytes.Join([][]byte{i32c(0), op(wasm.OpcodeCallIndirect, tyVoid, 0)}, nil) }},
		{name: "host-now", body: func(w *wmod) []byte { return append(callf(w.imp("now")), wasm.OpcodeDrop) }},
		{name: "memory.size", body: func(*wmod) []byte { return op(wasm.OpcodeMemorySize, 0, wasm.OpcodeDrop) }},
		{name: "memory.grow/0", body: func(*wmod) []byte {
			return bytes.Join([][]byte{i32c(0), op(wasm.OpcodeMemoryGrow, 0, wasm.OpcodeDrop)}, nil)
		}},
		{name: "memory.grow/fail", body: func(*wmod) []byte {
			return bytes.Join([][]byte{i32c(1 << 20), op(wasm.OpcodeMemoryGrow, 0, wasm.OpcodeDrop)}, nil)
		}},
		{name: "table.size", setup: tableSetup, body: func(*wmod) []byte { return append(tableSize(0), wasm.OpcodeDrop) }},
		{name: "table.get", setup: tableSetup, body: func(*wmod) []byte {
			return bytes.Join([][]byte{i32c(5), op(wasm.OpcodeTableGet, 0, wasm.OpcodeDrop)}, nil)
		}},
		{name: "table.set", setup: tableSetup, body: func(*wmod) []byte { return bytes.Join([][]byte{i32c(5), refNull(), op(wasm.OpcodeTableSet, 0)}, nil) }},
		{name: "table.grow/0", setup: tableSetup, body: func(*wmod) []byte {
			return bytes.Join([][]byte{refNull(), i32c(0), tableGrow(0), op(wasm.OpcodeDrop)}, nil)
		}},
		{name: "table.grow/fail", setup: tableSetup, body: func(*wmod) []byte {
			return bytes.Join([][]byte{refNull(), i32c(1 << 30), tableGrow(0), op(wasm.OpcodeDrop)}, nil)
		}},
	}
	for _, n := range []int32{0, 1, 4096, 64 << 10, mib, 8 * mib} {
		cs = append(cs,
			costCase{name: "memory.fill", unit: "byte", n: n, body: func(*wmod) []byte {
				return bytes.Join([][]byte{i32c(0), i32c(0), i32c(n), memoryFill()}, nil)
			}},
			costCase{name: "memory.copy", unit: "byte", n: n, body: func(*wmod) []byte {
				return bytes.Join([][]byte{i32c(0), i32c(8 * mib), i32c(n), memoryCopy()}, nil)
			}},
			costCase{name: "memory.init", unit: "byte", n: n, body: func(w *wmod) []byte {
				seg := w.passiveData(make([]byte, n))
				return bytes.Join([][]byte{i32c(0), i32c(0), i32c(n), memoryInit(seg)}, nil)
			}})
	}
	cs = append(cs, costCase{name: "memory.fill", unit: "byte", n: 16 * mib, body: func(*wmod) []byte {
		return bytes.Join([][]byte{i32c(0), i32c(0), i32c(16 * mib), memoryFill()}, nil)
	}})
	for _, n := range []int32{0, 1, 1024, costTableN} {
		cs = append(cs,
			costCase{name: "table.fill", unit: "elem", n: n, setup: tableSetup, body: func(w *wmod) []byte {
				f := w.fn("", tyVoid, nil, op(wasm.OpcodeEnd))
				w.declared = append(w.declared, f)
				return bytes.Join([][]byte{i32c(0), op(wasm.OpcodeRefFunc), leb128.EncodeUint32(f), i32c(n), tableFill(0)}, nil)
			}},
			costCase{name: "table.copy", unit: "elem", n: n, setup: tableSetup, body: func(*wmod) []byte {
				return bytes.Join([][]byte{i32c(0), i32c(costTableN), i32c(n), tableCopy(0, 0)}, nil)
			}},
			costCase{name: "table.init", unit: "elem", n: n, setup: tableSetup, body: func(w *wmod) []byte {
				f := w.fn("", tyVoid, nil, op(wasm.OpcodeEnd))
				funcs := make([]uint32, n)
				for i := range funcs {
					funcs[i] = f
				}
				seg := w.passiveElem(funcs...)
				return bytes.Join([][]byte{i32c(0), i32c(0), i32c(n), tableInit(seg, 0)}, nil)
			}})
	}
	return cs
}

// BenchmarkInstructionCost measures what instructions cost in wall time,
// so that fuel can be priced by it. Each case runs its instruction in a
// counted loop in two functions, one of k and one of 3k iterations, and
// takes the difference (the fastest of b.N calls of each, in the thread's
// CPU time), which cancels what a call costs besides the loop
// (instantiation, the reset of a warm instance); the empty loop's cost per
// iteration is then subtracted. Reported: ns per instruction, ns per unit
// (byte, element) for the bulk instructions, and "fuel-eq": the
// instruction's cost in units of what one fuel unit of the arith case
// (plain metered arithmetic) costs. docs/functions.md ("Limits") derives
// the fuel prices in meter.go from these figures.
//
//	go test -run '^$' -bench InstructionCost ./udf/
func BenchmarkInstructionCost(b *testing.B) {
	const mib = 1 << 20
	defer func(v bool) { verifyResets = v }(verifyResets)
	verifyResets = false
	var emptyNs, arithNsPerFuel float64
	for _, c := range costCases() {
		name := c.name
		if c.unit != "" {
			name += "/" + strconv.Itoa(int(c.n))
		}
		b.Run(name, func(b *testing.B) {
			// k: about 0.2-2 ms of work per call at the sizes used.
			k, pages := int32(1<<18), uint32(1)
			switch c.unit {
			case "byte":
				k, pages = int32(max(16, min(1<<18, 256*mib/max(int(c.n), 1)))), 256
			case "elem":
				k = int32(max(16, min(1<<18, 16*mib/max(int(c.n), 1))))
			}
			w := newWmod(pages, "now")
			if c.setup != nil {
				c.setup(w)
			}
			body := c.body(w)
			w.fn("run1", tyVoid, runnerLocals, counted(0, k, body), op(wasm.OpcodeEnd))
			w.fn("run2", tyVoid, runnerLocals, counted(0, 3*k, body), op(wasm.OpcodeEnd))
			h := newHost(b, NewConfig().WithFuel(1<<50))
			if _, err := h.Load(context.Background(), "cost", w.bytes(), false); err != nil {
				b.Fatal(err)
			}
			s := newFakeStore()
			ctx := context.Background()
			for _, fn := range []string{"run1", "run2"} { // instantiate, warm up
				if _, err := h.Call(ctx, fn, nil, nil, s, false); err != nil {
					b.Fatal(err)
				}
			}
			// The fastest of b.N calls of each, in thread CPU time: the
			// least disturbed by the machine's other work.
			defer lockThread()()
			d1, d2 := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
			var fuel1, fuel2 int64
			for b.Loop() {
				for _, r := range []struct {
					fn   string
					d    *time.Duration
					fuel *int64
				}{{"run1", &d1, &fuel1}, {"run2", &d2, &fuel2}} {
					before := h.Stats().FuelUsed
					t0 := threadCPU()
					if _, err := h.Call(ctx, r.fn, nil, nil, s, false); err != nil {
						b.Fatal(err)
					}
					*r.d = min(*r.d, threadCPU()-t0)
					*r.fuel = h.Stats().FuelUsed - before
				}
			}
			perIter := float64(d2-d1) / float64(2*k)
			fuelPerIter := float64(fuel2-fuel1) / float64(2*k)
			ns := perIter - emptyNs
			switch c.name {
			case "empty":
				emptyNs = perIter
				ns = perIter
			case "arith":
				arithNsPerFuel = perIter / fuelPerIter
			}
			b.ReportMetric(ns, "ns/instr")
			b.ReportMetric(fuelPerIter, "fuel/iter")
			if arithNsPerFuel > 0 {
				b.ReportMetric(ns/arithNsPerFuel, "fuel-eq")
			}
			if c.n > 0 {
				b.ReportMetric(ns/float64(c.n), "ns/"+c.unit)
			}
		})
	}
}

// BenchmarkHostileStop reports how long each hostile guest of issue 15
// (bound_test.go's hostile) takes to stop at the default fuel, in CPU
// time, and how much fuel it used; "kill" and "deadline" report how long a
// call that would run for ever (its fuel is FuelMax) takes to end once
// Guard.Kill is called from another goroutine, or its context's deadline
// passes, in wall time from that moment.
//
//	go test -run '^$' -bench HostileStop ./udf/
func BenchmarkHostileStop(b *testing.B) {
	defer func(v bool) { verifyResets = v }(verifyResets)
	verifyResets = false
	ctx := context.Background()
	for _, fn := range []string{"fill64k", "existsfill", "tfill", "spinlog", "setspin", "deeprec"} {
		b.Run(fn, func(b *testing.B) {
			h := loadHostile(b, NewConfig())
			defer lockThread()()
			var cpu time.Duration
			verdict := ""
			for b.Loop() {
				before := h.Stats().FuelUsed
				t0 := threadCPU()
				_, err := h.Call(ctx, fn, bs("k"), nil, newFakeStore(), false)
				cpu += threadCPU() - t0
				if err == nil {
					b.Fatalf("%s did not fail", fn)
				}
				verdict = Message(err)
				b.ReportMetric(float64(h.Stats().FuelUsed-before), "fuel")
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/stop")
			b.Logf("%s: %s", fn, verdict)
		})
	}
	b.Run("kill", func(b *testing.B) {
		g := NewGuard(nil)
		h := loadHostile(b, NewConfig().WithFuel(FuelMax).WithGuard(g))
		var total time.Duration
		for b.Loop() {
			done := make(chan time.Time, 1)
			go func() {
				_, err := h.Call(ctx, "spinro", nil, nil, newFakeStore(), true)
				if !IsKilled(err) {
					b.Errorf("spinro: %v", err)
				}
				done <- time.Now()
			}()
			for len(g.Running()) == 0 {
				runtime.Gosched()
			}
			time.Sleep(100 * time.Microsecond) // let it loop
			t0 := time.Now()
			g.KillAll(errors.New("bench"))
			total += (<-done).Sub(t0)
		}
		b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/kill")
	})
	b.Run("deadline", func(b *testing.B) {
		h := loadHostile(b, NewConfig().WithFuel(FuelMax))
		var total time.Duration
		for b.Loop() {
			dctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			_, err := h.Call(dctx, "spinro", nil, nil, newFakeStore(), true)
			end := time.Now()
			deadline, _ := dctx.Deadline()
			cancel()
			if !IsKilled(err) {
				b.Fatalf("spinro: %v", err)
			}
			total += end.Sub(deadline)
		}
		b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-past-deadline")
	})
}

// BenchmarkGenerated runs 1000 generated modules (gen_test.go, seeds 1 to
// 1000) at 10 million fuel each and reports, over those that used at least
// a tenth of it, CPU time per unit of fuel used: the median, the 99th
// percentile and the worst, the figures genTimePerFuel is a generous
// bound on.
//
//	go test -run '^$' -bench Generated -benchtime 1x ./udf/
func BenchmarkGenerated(b *testing.B) {
	defer func(v bool) { verifyResets = v }(verifyResets)
	verifyResets = false
	defer lockThread()()
	gen := rapid.Custom(genModule)
	const fuel = 10_000_000
	type run struct {
		nsPerFuel float64
		seed      int
		fuel      int64
		cpu       time.Duration
		verdict   string
	}
	for b.Loop() {
		var runs []run
		for seed := 1; seed <= 1000; seed++ {
			code := gen.Example(seed)
			ctx := context.Background()
			h, err := NewHost(ctx, NewConfig().WithFuel(fuel).WithMemoryLimitPages(genPages))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := h.Load(ctx, "gen", code, false); err != nil {
				b.Fatal(err)
			}
			t0 := threadCPU()
			res, err := h.Call(ctx, "run", bs("k"), nil, newFakeStore(), false)
			cpu := threadCPU() - t0
			verdict := res.Reply.String()
			if err != nil {
				verdict = Message(err)
			}
			used := h.Stats().FuelUsed
			_ = h.Close(ctx)
			if used < fuel/10 {
				// Ended early (most trap out of bounds): the call's fixed
				// cost (a fresh host, an instance) would swamp the ratio.
				continue
			}
			runs = append(runs, run{float64(cpu.Nanoseconds()) / float64(used), seed, used, cpu, verdict})
		}
		sort.Slice(runs, func(i, j int) bool { return runs[i].nsPerFuel < runs[j].nsPerFuel })
		n := len(runs)
		b.ReportMetric(runs[n/2].nsPerFuel, "p50-ns/fuel")
		b.ReportMetric(runs[n*99/100].nsPerFuel, "p99-ns/fuel")
		b.ReportMetric(runs[n-1].nsPerFuel, "max-ns/fuel")
		b.ReportMetric(float64(n), "modules")
		for _, r := range runs[max(0, n-3):] {
			b.Logf("seed %d: %.3f ns/fuel: %d fuel in %v: %s", r.seed, r.nsPerFuel, r.fuel, r.cpu, r.verdict)
		}
	}
}
