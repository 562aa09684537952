package udf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wabin/leb128"
	"github.com/tetratelabs/wabin/wasm"
	"pgregory.net/rapid"
)

// genModule draws a random valid guest: an exported "run" whose body is a
// random structured program over the instructions that cost the most or
// run the longest: bulk memory and table instructions of every size (zero
// to 2^31, some out of bounds), memory.grow and table.grow, loops nested
// three deep (counted up to 4 billion, or without end), blocks, ifs,
// calls of helpers, call_indirect, recursion of any depth (without end
// too), host calls, loads and stores. Every statement leaves the operand
// stack as it found it, so any sequence of them is valid.
//
// A function's locals: x0, x1 (i32), y0 (i64), then one i32 loop counter
// per nesting depth; a helper with a parameter has it before them.
type moduleGen struct {
	rt      *rapid.T
	w       *wmod
	base    uint32   // index of x0 in the function being generated
	helpers []uint32 // func() helpers, callable from later functions
	rec     uint32   // func(i32) -> i32: recursion, depth its argument
	dataSeg uint32
	elemSeg uint32
	n       int // statements drawn so far, bounded by genStatementsMax
}

const (
	genDepthMax      = 3
	genStatementsMax = 40
)

var genLocals = []wasm.ValueType{wasm.ValueTypeI32, wasm.ValueTypeI32, wasm.ValueTypeI64,
	wasm.ValueTypeI32, wasm.ValueTypeI32, wasm.ValueTypeI32}

func (g *moduleGen) x(i uint32) uint32    { return g.base + i }
func (g *moduleGen) y0() uint32           { return g.base + 2 }
func (g *moduleGen) counter(d int) uint32 { return g.base + 3 + uint32(d) }
func (g *moduleGen) pick(label string, vs ...int64) int64 {
	return rapid.SampledFrom(vs).Draw(g.rt, label)
}

// size is a bulk instruction's size operand: a constant from nothing to
// 2^31-1, or the value in x0.
func (g *moduleGen) size() []byte {
	if rapid.IntRange(0, 5).Draw(g.rt, "size from x0") == 0 {
		return lget(g.x(0))
	}
	return i32c(int32(g.pick("size", 0, 1, 7, 64, 4096, 65536, 1<<20, 16<<20, 1<<31-1)))
}

func (g *moduleGen) addr() []byte {
	return i32c(int32(g.pick("addr", 0, 8, 1000, 65535, 65536, 3*65536, 1<<24, -1)))
}

func (g *moduleGen) body(d int) []byte {
	n := rapid.IntRange(1, 4).Draw(g.rt, "statements")
	var out [][]byte
	for i := 0; i < n && g.n < genStatementsMax; i++ {
		out = append(out, g.stmt(d))
	}
	return bytes.Join(out, nil)
}

func (g *moduleGen) stmt(d int) []byte {
	g.n++
	kinds := []string{"arith", "arith64", "store", "load", "fill", "copy", "init", "data.drop", "grow", "size",
		"tfill", "tcopy", "tinit", "elem.drop", "tgrow", "tsize", "host", "rec", "indirect"}
	if len(g.helpers) > 0 {
		kinds = append(kinds, "call")
	}
	if d < genDepthMax {
		kinds = append(kinds, "loop", "loop", "forever", "block", "if")
	}
	switch rapid.SampledFrom(kinds).Draw(g.rt, "kind") {
	case "arith":
		return bytes.Join([][]byte{lget(g.x(0)), i32c(int32(g.pick("k", 1, 3, 0x7fff))), op(rapid.SampledFrom([]byte{wasm.OpcodeI32Add, wasm.OpcodeI32Mul, wasm.OpcodeI32Xor}).Draw(g.rt, "aop")), lset(g.x(1))}, nil)
	case "arith64":
		return bytes.Join([][]byte{lget(g.y0()), i64c(6364136223846793005), op(wasm.OpcodeI64Mul), i64c(1442695040888963407), op(wasm.OpcodeI64Add), lset(g.y0())}, nil)
	case "store":
		return bytes.Join([][]byte{g.addr(), lget(g.x(1)), op(wasm.OpcodeI32Store8, 0, 0)}, nil)
	case "load":
		return bytes.Join([][]byte{g.addr(), op(wasm.OpcodeI32Load, 2, 0), lset(g.x(0))}, nil)
	case "fill":
		return bytes.Join([][]byte{g.addr(), i32c(7), g.size(), memoryFill()}, nil)
	case "copy":
		return bytes.Join([][]byte{g.addr(), g.addr(), g.size(), memoryCopy()}, nil)
	case "init":
		return bytes.Join([][]byte{g.addr(), i32c(int32(g.pick("src", 0, 100, 4096))), g.size(), memoryInit(g.dataSeg)}, nil)
	case "data.drop":
		return dataDrop(g.dataSeg)
	case "grow":
		return bytes.Join([][]byte{i32c(int32(g.pick("pages", 0, 1, 4, 64, 1000, -1))), op(wasm.OpcodeMemoryGrow, 0), lset(g.x(0))}, nil)
	case "size":
		return bytes.Join([][]byte{op(wasm.OpcodeMemorySize, 0), lset(g.x(0))}, nil)
	case "tfill":
		ref := refNull()
		if len(g.helpers) > 0 {
			ref = append([]byte{wasm.OpcodeRefFunc}, leb128.EncodeUint32(g.helpers[0])...)
		}
		return bytes.Join([][]byte{i32c(int32(g.pick("at", 0, 3, 16))), ref, g.size(), tableFill(0)}, nil)
	case "tcopy":
		return bytes.Join([][]byte{i32c(int32(g.pick("dst", 0, 8))), i32c(int32(g.pick("src", 0, 4, 15))), g.size(), tableCopy(0, 0)}, nil)
	case "tinit":
		return bytes.Join([][]byte{i32c(int32(g.pick("dst", 0, 8))), i32c(0), g.size(), tableInit(g.elemSeg, 0)}, nil)
	case "elem.drop":
		return elemDrop(g.elemSeg)
	case "tgrow":
		return bytes.Join([][]byte{refNull(), g.size(), tableGrow(0), lset(g.x(0))}, nil)
	case "tsize":
		return bytes.Join([][]byte{tableSize(0), lset(g.x(0))}, nil)
	case "host":
		switch rapid.IntRange(0, 3).Draw(g.rt, "host") {
		case 0:
			return bytes.Join([][]byte{i32c(0), i32c(1), callf(g.w.imp("exists")), op(wasm.OpcodeDrop)}, nil)
		case 1:
			return bytes.Join([][]byte{callf(g.w.imp("now")), op(wasm.OpcodeDrop)}, nil)
		case 2:
			return bytes.Join([][]byte{i32c(1), i32c(1), i32c(1), callf(g.w.imp("log"))}, nil)
		}
		return bytes.Join([][]byte{i32c(0), i32c(1), i32c(1), i32c(1), i64c(0), callf(g.w.imp("set"))}, nil)
	case "rec":
		return bytes.Join([][]byte{i32c(int32(g.pick("depth", 0, 10, 1000, 100000, -1))), callf(g.rec), op(wasm.OpcodeDrop)}, nil)
	case "indirect":
		return bytes.Join([][]byte{i32c(int32(g.pick("slot", 0, 1, 15, 16))), op(wasm.OpcodeCallIndirect, tyVoid, 0)}, nil)
	case "call":
		return callf(rapid.SampledFrom(g.helpers).Draw(g.rt, "helper"))
	case "loop":
		c := g.counter(d)
		return bytes.Join([][]byte{
			i32c(int32(g.pick("iterations", 1, 2, 10, 1000, 100000, 0 /* 2^32 */))), lset(c),
			op(wasm.OpcodeLoop, 0x40), g.body(d + 1),
			lget(c), i32c(1), op(wasm.OpcodeI32Sub), ltee(c), brIf(0),
			op(wasm.OpcodeEnd),
		}, nil)
	case "forever":
		return forever(g.body(d + 1))
	case "block":
		return bytes.Join([][]byte{op(wasm.OpcodeBlock, 0x40), g.body(d + 1), lget(g.x(0)), brIf(0), g.body(d + 1), op(wasm.OpcodeEnd)}, nil)
	case "if":
		return bytes.Join([][]byte{lget(g.x(1)), op(wasm.OpcodeIf, 0x40), g.body(d + 1), op(wasm.OpcodeElse), g.body(d + 1), op(wasm.OpcodeEnd)}, nil)
	}
	panic("unreachable")
}

// genModule returns the module and the memory limit (pages) to run it
// with.
func genModule(rt *rapid.T) []byte {
	g := &moduleGen{rt: rt, w: newWmod(uint32(rapid.IntRange(1, 4).Draw(rt, "pages")), "set", "exists", "log", "now")}
	w := g.w
	w.activeData(0, []byte("kv"))
	w.table(16, g.pick("table max", -1, 16, 64))
	g.dataSeg = w.passiveData(bytes.Repeat([]byte{1}, 4096))
	end := op(wasm.OpcodeEnd)
	// rec(n) = n == 0 ? 0 : rec(n-1)+1; its locals follow its parameter.
	g.rec = uint32(len(w.m.ImportSection) + len(w.m.FunctionSection))
	w.fn("", tyI32I32, nil, lget(0), op(wasm.OpcodeI32Eqz), op(wasm.OpcodeIf, 0x40), i32c(0), op(wasm.OpcodeReturn), end,
		lget(0), i32c(1), op(wasm.OpcodeI32Sub), callf(g.rec), i32c(1), op(wasm.OpcodeI32Add), end)
	for i, n := 0, rapid.IntRange(0, 3).Draw(rt, "helpers"); i < n; i++ {
		g.helpers = append(g.helpers, w.fn("", tyVoid, genLocals, g.body(1), end))
	}
	funcs := append([]uint32{g.rec}, g.helpers...)
	if len(g.helpers) > 0 {
		funcs = g.helpers
		w.declared = append(w.declared, g.helpers...)
	}
	g.elemSeg = w.passiveElem(funcs...)
	w.fn("run", tyVoid, genLocals, g.body(0), i64c(1), replyI64(), end)
	return w.bytes()
}

// genPages is the memory limit generated modules run with (1 MiB), so
// that growth meets it.
const genPages = 16

// genTimePerFuel and genTimeBase state how long a call may take for the
// fuel it is given: base + fuel * perFuel of thread CPU time. The prices
// aim at about 0.066 ns per unit (price.go); 5 ns is the generous factor
// the test allows (75 times that), for calls, which fuel underprices 3
// times, host calls, and a loaded machine. BenchmarkGenerated reports the
// measured figures.
const (
	genTimeBase    = 100 * time.Millisecond
	genTimePerFuel = 5 * time.Nanosecond
)

// Every generated module stops within its bounds: it ends (returns or
// fails with a user error, never an internal one), its linear memory never
// exceeds the limit, it allocates little besides, it takes at most
// genTimeBase + fuel*genTimePerFuel of CPU, and it gives the same verdict
// and uses the same fuel when run again on another host: the metering is
// deterministic. A third run is stopped from outside at its first host
// call, and must then end killed within a bounded amount of fuel.
func TestGeneratedModulesStayInBounds(t *testing.T) {
	defer lockThread()()
	rapid.Check(t, func(rt *rapid.T) {
		code := genModule(rt)
		fuel := rapid.SampledFrom([]int64{10_000, 1_000_000, 10_000_000}).Draw(rt, "fuel")
		verdicts := make([]string, 2)
		used := make([]int64, 2)
		for i := range verdicts {
			r := runGenerated(rt, code, fuel, false)
			verdicts[i], used[i] = r.verdict, r.fuel
			if limit := genTimeBase + time.Duration(fuel)*genTimePerFuel; r.cpu > limit {
				rt.Fatalf("took %v of CPU for %d fuel (bound %v): %s", r.cpu, fuel, limit, r.verdict)
			}
		}
		if verdicts[0] != verdicts[1] || used[0] != used[1] {
			rt.Fatalf("not deterministic: %q (%d fuel) then %q (%d fuel)", verdicts[0], used[0], verdicts[1], used[1])
		}
		runGenerated(rt, code, fuel, true)
	})
}

type genResult struct {
	verdict string
	fuel    int64
	cpu     time.Duration
}

// runGenerated loads code into a fresh host and calls run with fuel,
// checking the bounds that do not depend on time. With kill, a Guard
// stops the call at its first keel.exists.
func runGenerated(rt *rapid.T, code []byte, fuel int64, kill bool) genResult {
	g := NewGuard(nil)
	ctx := context.Background()
	h, err := NewHost(ctx, NewConfig().WithFuel(fuel).WithMemoryLimitPages(genPages).WithGuard(g))
	if err != nil {
		rt.Fatal(err)
	}
	defer h.Close(ctx)
	if _, err := h.Load(ctx, "gen", code, false); err != nil {
		rt.Fatalf("a generated module did not load: %v", err)
	}
	s := &killingStore{fakeStore: newFakeStore()}
	if kill {
		s.kill = func() {
			calls := g.Running()
			s.fuelAtKill = int64(h.st.fuel.Get())
			g.Kill(calls[0].ID, errors.New("test"))
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	allocBefore := ms.TotalAlloc
	t0 := threadCPU()
	res, err := h.Call(ctx, "run", bs("k"), nil, s, false)
	cpu := threadCPU() - t0
	runtime.ReadMemStats(&ms)
	verdict := ""
	if err != nil {
		var ue *Error
		if !asUserError(err, &ue) {
			rt.Fatalf("internal error: %v", err)
		}
		if len(res.Effects) != 0 {
			rt.Fatalf("failed with effects %q", res.Effects)
		}
		verdict = ue.Error()
	} else {
		verdict = fmt.Sprint(res.Reply.String(), res.Effects)
	}
	if peak := h.mem.peak; peak > genPages*65536 {
		rt.Fatalf("linear memory reached %d bytes, above the limit of %d", peak, genPages*65536)
	}
	// Instances, tables, the call stack (callStackUnitsMax) and what the
	// calls buffer: well under this.
	if alloc := ms.TotalAlloc - allocBefore; alloc > 64<<20 {
		rt.Fatalf("the call allocated %d MiB: %s", alloc>>20, verdict)
	}
	if kill && s.killed {
		if !IsKilled(err) {
			rt.Fatalf("stopped at a host call, yet: %s", verdict)
		}
		// After the stop the guest reaches no further fuel check, bulk
		// instruction, call or host call: what it used is the rest of a
		// straight run of plain instructions.
		if after := h.Stats().FuelUsed - (fuel - s.fuelAtKill); after < 0 || after > 4096 {
			rt.Fatalf("%d fuel used after the kill", after)
		}
	}
	return genResult{verdict: verdict, fuel: h.Stats().FuelUsed, cpu: cpu}
}

// killingStore runs kill at the first Exists.
type killingStore struct {
	*fakeStore
	kill       func()
	killed     bool
	fuelAtKill int64
}

func (s *killingStore) Exists(key []byte) bool {
	if s.kill != nil && !s.killed {
		s.killed = true
		s.kill()
	}
	return s.fakeStore.Exists(key)
}
