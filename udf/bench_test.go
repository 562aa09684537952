package udf

import (
	"context"
	"testing"

	"github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/wasm"
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
