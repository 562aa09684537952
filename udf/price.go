package udf

import (
	"github.com/cockroachdb/errors"
	"github.com/tetratelabs/wabin/wasm"
)

// Fuel prices. One unit of fuel is about what one plain WebAssembly
// instruction costs (BenchmarkInstructionCost: an i64 multiply-add loop
// runs at 0.066 ns per unit on the 2-core VM keel is built on), and an
// instruction is charged in proportion to what it costs in time, so that a
// call's fuel bounds its time whatever instructions it runs. Most
// instructions cost one unit. The ones priced here cost tens to thousands
// of times more, and the bulk instructions cost in proportion to their
// size: when they cost one unit each, a loop of 64 KiB memory.fill ran
// about 1,000 times longer per unit of fuel than arithmetic, and the
// default fuel lasted 13 seconds instead of milliseconds (issue 15).
//
// The figures (ns; fuel-eq is ns / 0.066, docs/functions.md "Limits" has
// the full table) and the prices taken from them, rounded up:
//
//	memory.fill/copy/init    1.6-2.1 per instruction, 0.007-0.017 per byte -> 32 + 1 per 4 bytes
//	table.copy/init          1.4-1.8 per instruction, 0.05-0.10 per element -> 32 + 2 per element
//	table.fill               84 per instruction (a call into Go), 0.07-0.11 per element -> 1300 + 2 per element
//	memory.grow, table.grow  23-24 (a call into Go) -> 400; what they grow is bounded by the caps
//	host calls               30 for the cheapest (keel.now) -> hostCallFuel 500, + 1 per 4 bytes moved
//
// Calls (1.7 ns, charged 1 here and the callee's own entry check) are left
// at their instruction count: pricing them would multiply the fuel every
// guest uses (a Go guest's start-up alone makes millions of calls), for a
// factor of about 3 over arithmetic. What remains uneven is bounded in time
// by the runtime's per-call deadline (interrupt.go), not by fuel.
const (
	// bulkByteShift: memory.fill/copy/init and host calls pay one unit per
	// 1<<bulkByteShift bytes (rounded up).
	bulkByteShift     = 2
	bulkMemoryFuel    = 32   // memory.fill, memory.copy, memory.init
	tableCopyFuel     = 32   // table.copy, table.init
	tableFillFuel     = 1300 // table.fill: wazero calls into Go for it
	tableElementFuel  = 2    // per element of table.fill/copy/init
	growFuel          = 400  // memory.grow, table.grow: a call into Go
	hostCallFuel      = 500  // every host call (keel.*, wasi), before it runs
	hostCallByteShift = bulkByteShift
)

// sizePrice is what a bulk instruction pays for its size n:
// ceil(n*mul / 2^shift) units.
type sizePrice struct {
	mul   int64
	shift uint8
}

// sizePrices by 0xfc sub-opcode.
var sizePrices = map[uint32]sizePrice{
	8:  {mul: 1, shift: bulkByteShift}, // memory.init
	10: {mul: 1, shift: bulkByteShift}, // memory.copy
	11: {mul: 1, shift: bulkByteShift}, // memory.fill
	12: {mul: tableElementFuel},        // table.init
	14: {mul: tableElementFuel},        // table.copy
	17: {mul: tableElementFuel},        // table.fill
}

// instructionPrice is the fixed price of the instruction at pc (its size,
// if it has one, is charged apart by sizeCharge).
func instructionPrice(body []byte, pc int) int64 {
	switch body[pc] {
	case wasm.OpcodeMemoryGrow:
		return growFuel
	case wasm.OpcodeMiscPrefix:
		sub, _, err := readU32(body, pc+1)
		if err != nil {
			return 1 // skipInstruction has refused it already
		}
		switch sub {
		case 8, 10, 11:
			return bulkMemoryFuel
		case 12, 14:
			return tableCopyFuel
		case 15:
			return growFuel
		case 17:
			return tableFillFuel
		}
	}
	return 1
}

// TableElementsMax bounds the elements of all a module's tables together,
// at start and after any table.grow: 2^17 function references, 1 MiB.
// wazero allocates a table's minimum when it instantiates a module and lets
// table.grow reach 2^32 elements when a table declares no maximum, neither
// counted against the memory limit: a 20-byte module could make the server
// allocate tens of gigabytes. The bound also bounds what growing tables
// can cost one call (table.grow pays growFuel per instruction, not per
// element: growing 64 elements at a time to 2^20 took 44 ms, to 2^17 it
// takes a few). A Go guest's table holds about 2,200 functions per MB of
// module (5,895 for the 2.65 MB example), so the largest module keel
// accepts (LibraryBytesMax) fits.
const TableElementsMax = 1 << 17

// boundTables refuses a module whose tables start with more than
// TableElementsMax elements together, and lowers the declared maxima (an
// absent one counts as 2^32-1) so that they add up to at most that: the
// first tables keep their headroom first. A table.grow past its maximum
// fails with -1, as it would for any declared maximum. It reports whether
// it changed a table.
func boundTables(m *wasm.Module) (bool, error) {
	var mins uint64
	for _, t := range m.TableSection {
		mins += uint64(t.Min)
	}
	if mins > TableElementsMax {
		return false, errors.Newf("its tables start with %d elements, above the limit of %d", mins, TableElementsMax)
	}
	headroom := TableElementsMax - mins
	changed := false
	for _, t := range m.TableSection {
		declared := uint64(1<<32 - 1)
		if t.Max != nil {
			declared = uint64(*t.Max)
		}
		if declared < uint64(t.Min) {
			continue // invalid: compilation refuses it
		}
		extra := min(declared-uint64(t.Min), headroom)
		headroom -= extra
		if uint64(t.Min)+extra != declared {
			max := t.Min + uint32(extra)
			t.Max = &max
			changed = true
		}
	}
	return changed, nil
}
