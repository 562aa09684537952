package engine

import (
	"encoding/binary"
	"math/bits"
)

// pointIndex is the point index: an open-addressing hash table with linear
// probing whose slots are uint64s, fingerprint<<32 | ref (0 = empty). It
// holds no pointers, so the garbage collector never scans it.
//
// A key's home slot is derived from its 32-bit fingerprint alone
// (fp·len(slots)/2^32), so growing or shrinking the table re-places every
// slot without reading a single key, and deletion shifts later entries
// back (no tombstones; a probe never walks over dead slots). A lookup
// compares the key bytes only when the fingerprints agree (a false match
// is 1 in 2^32 per probed slot).
//
// The hash is seeded per DB from Options.Rand (a node's seeded source, so
// the simulator sees the same layout on every replay), which also makes
// the slot a key lands in — the only thing RANDOMKEY's sampling depends on
// besides the command history — reproducible.
type pointIndex struct {
	slots []uint64
	n     int // occupied slots
	seed  uint64
}

const (
	// indexSlotsMin is the smallest table (and the one Reset starts with).
	indexSlotsMin = 8
	// A table grows (×2) past 4/5 full and shrinks (÷2) under 1/16 full,
	// so it is between 2/5 and 4/5 full after growth and RANDOMKEY's
	// sampling needs at most 16 draws per hit on average.
	indexLoadMaxNum, indexLoadMaxDen = 4, 5
	indexLoadMinDen                  = 16
	// indexBytesPerSlot is what one slot costs.
	indexBytesPerSlot = 8
)

func (x *pointIndex) init(seed uint64) {
	x.seed = seed
	x.slots = make([]uint64, indexSlotsMin)
	x.n = 0
}

// home is the first slot probed for fingerprint fp in a table of size n.
func home(fp uint32, n int) int { return int(uint64(fp) * uint64(n) >> 32) }

// hashKey is a seeded multiply-fold hash (in the spirit of wyhash): 8 bytes
// per step, each step a 64×64→128 multiply folded to 64 bits.
func hashKey(seed uint64, b []byte) uint64 {
	const (
		p0 = 0xa0761d6478bd642f
		p1 = 0xe7037ed1a0b428db
		p2 = 0x8ebc6af09c88c6e3
	)
	h := seed ^ uint64(len(b))*p0
	for len(b) >= 8 {
		h = mum(h^binary.LittleEndian.Uint64(b), p1)
		b = b[8:]
	}
	if len(b) > 0 {
		var v uint64
		for i, c := range b {
			v |= uint64(c) << (8 * uint(i))
		}
		h = mum(h^v, p2)
	}
	return mum(h^h>>29, p0)
}

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// fingerprint is the 32 bits of the hash a slot keeps.
func (x *pointIndex) fingerprint(key []byte) uint32 {
	return uint32(hashKey(x.seed, key) >> 32)
}

// find returns the slot and ref holding key (fingerprint fp), or (-1, 0).
func (x *pointIndex) find(d *slabDirs, fp uint32, key []byte) (int, ref) {
	n := len(x.slots)
	for i := home(fp, n); ; i++ {
		if i == n {
			i = 0
		}
		s := x.slots[i]
		if s == 0 {
			return -1, 0
		}
		if uint32(s>>32) == fp {
			r := ref(s)
			if string(d.keyOf(d.rec(r))) == string(key) {
				return i, r
			}
		}
	}
}

// insert adds r under fingerprint fp; the key must not be present.
func (x *pointIndex) insert(fp uint32, r ref) {
	if (x.n+1)*indexLoadMaxDen > len(x.slots)*indexLoadMaxNum {
		x.resize(len(x.slots) * 2)
	}
	x.place(uint64(fp)<<32 | uint64(r))
	x.n++
}

func (x *pointIndex) place(s uint64) {
	n := len(x.slots)
	for i := home(uint32(s>>32), n); ; i++ {
		if i == n {
			i = 0
		}
		if x.slots[i] == 0 {
			x.slots[i] = s
			return
		}
	}
}

// set points slot i (found by find) at r.
func (x *pointIndex) set(i int, r ref) {
	x.slots[i] = x.slots[i]&^(1<<32-1) | uint64(r)
}

// removeAt empties slot i, shifting back the entries after it that would
// otherwise become unreachable from their home slot.
func (x *pointIndex) removeAt(i int) {
	n := len(x.slots)
	for j := i; ; {
		j++
		if j == n {
			j = 0
		}
		s := x.slots[j]
		if s == 0 {
			break
		}
		h := home(uint32(s>>32), n)
		// The entry at j stays if its home is cyclically in (i, j].
		if i <= j {
			if i < h && h <= j {
				continue
			}
		} else if i < h || h <= j {
			continue
		}
		x.slots[i] = s
		i = j
	}
	x.slots[i] = 0
	x.n--
	if len(x.slots) > indexSlotsMin && x.n*indexLoadMinDen < len(x.slots) {
		x.resize(len(x.slots) / 2)
	}
}

// resize re-places every entry in a table of n slots. It reads no key.
func (x *pointIndex) resize(n int) {
	old := x.slots
	x.slots = make([]uint64, n)
	for _, s := range old {
		if s != 0 {
			x.place(s)
		}
	}
}

// reserve grows the table so that n entries in all fit without growing.
func (x *pointIndex) reserve(n int) {
	size := len(x.slots)
	for n*indexLoadMaxDen > size*indexLoadMaxNum {
		size *= 2
	}
	if size != len(x.slots) {
		x.resize(size)
	}
}

func (x *pointIndex) bytes() int64 { return int64(len(x.slots)) * indexBytesPerSlot }
