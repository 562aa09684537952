package engine

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// pointIndex is the point index: an open-addressing hash table with linear
// probing whose slots are uint64s, fingerprint<<32 | ref (0 = empty). It
// holds no pointers, so the garbage collector never scans it.
//
// A key's home slot is derived from its 32-bit fingerprint alone
// (fp·len(slots)/2^32), so growing or shrinking the table re-places every
// slot without reading a single key, and deletion shifts later entries
// back (no tombstones; a probe never walks over dead slots). A resize is
// incremental: the old table is drained a few slots per write, and
// lookups probe both until it is empty. A lookup
// compares the key bytes only when the fingerprints agree (a false match
// is 1 in 2^32 per probed slot).
//
// The hash is seeded per DB from Options.Rand (a node's seeded source, so
// the simulator sees the same layout on every replay), which also makes
// the slot a key lands in — the only thing RANDOMKEY's sampling depends on
// besides the command history — reproducible.
type pointIndex struct {
	slots []uint64
	n     int // keys in both tables
	seed  uint64
	// old is the previous table while a resize drains it into slots, a
	// few slots per write (migrateSlotsPerWrite): entries old[i] with
	// i >= oldNext have not moved yet. A key removed from old leaves a
	// tombstone (ref 0) there, so later probes of old walk past it.
	old     []uint64
	oldNext int
}

const (
	// indexSlotsMin is the smallest table (and the one Reset starts with).
	indexSlotsMin = 8
	// A table grows (×2) past 4/5 full and shrinks under 1/16 full (to
	// about 1/4 full), so RANDOMKEY's sampling needs at most 16 draws per
	// hit on average once a resize has drained.
	indexLoadMaxNum, indexLoadMaxDen = 4, 5
	indexLoadMinDen                  = 16
	// indexBytesPerSlot is what one slot costs.
	indexBytesPerSlot = 8
	// migrateSlotsPerWrite is how many old slots each insert or removal
	// moves during a resize. Growth starts with the old table 4/5 full and
	// the new one twice its size, so the new table can take 4/5·old more
	// keys before it must grow again; moving 8 slots per write finishes
	// after old/8 writes, well before. A resize therefore never stops the
	// world: no write does more than 8 slots of extra work (growing
	// 10M keys at once took seconds on the build machine).
	migrateSlotsPerWrite = 8
	// oldTombstone marks a removed key in the old table.
	oldTombstone = uint64(1<<32-1) << 32
)

func (x *pointIndex) init(seed uint64) {
	x.seed = seed
	x.slots = make([]uint64, indexSlotsMin)
	x.n = 0
	x.old, x.oldNext = nil, 0
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

// A location names a slot: i >= 0 is slots[i], i <= -2 is old[-i-2], and
// -1 is none.
const noSlot = -1

// find returns the location and ref holding key (fingerprint fp), or
// (noSlot, 0).
func (x *pointIndex) find(d *slabDirs, fp uint32, key []byte) (int, ref) {
	n := len(x.slots)
	for i := home(fp, n); ; i++ {
		if i == n {
			i = 0
		}
		s := x.slots[i]
		if s == 0 {
			break
		}
		if uint32(s>>32) == fp {
			r := ref(s)
			if string(d.keyOf(d.rec(r))) == string(key) {
				return i, r
			}
		}
	}
	if x.old == nil {
		return noSlot, 0
	}
	n = len(x.old)
	for i := home(fp, n); ; i++ {
		if i == n {
			i = 0
		}
		s := x.old[i]
		if s == 0 {
			return noSlot, 0
		}
		// Slots before oldNext have moved (their keys are in slots, or
		// were removed since): walk past them, as past tombstones.
		if i >= x.oldNext && uint32(s>>32) == fp && ref(s) != 0 {
			r := ref(s)
			if string(d.keyOf(d.rec(r))) == string(key) {
				return -i - 2, r
			}
		}
	}
}

// insert adds r under fingerprint fp; the key must not be present.
func (x *pointIndex) insert(fp uint32, r ref) {
	if (x.n+1)*indexLoadMaxDen > len(x.slots)*indexLoadMaxNum {
		x.startResize(len(x.slots) * 2)
	}
	x.place(uint64(fp)<<32 | uint64(r))
	x.n++
	x.migrate(migrateSlotsPerWrite)
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

// set points location i (found by find) at r.
func (x *pointIndex) set(i int, r ref) {
	if i >= 0 {
		x.slots[i] = x.slots[i]&^(1<<32-1) | uint64(r)
	} else {
		j := -i - 2
		x.old[j] = x.old[j]&^(1<<32-1) | uint64(r)
	}
}

// removeAt empties location i (found by find).
func (x *pointIndex) removeAt(i int) {
	x.n--
	if i < 0 {
		x.old[-i-2] = oldTombstone
	} else {
		x.shiftBack(i)
	}
	switch {
	case x.n == 0 && len(x.slots)+len(x.old) > indexSlotsMin:
		// Nothing left to move: start over small.
		x.slots = make([]uint64, indexSlotsMin)
		x.old, x.oldNext = nil, 0
	case x.old == nil && len(x.slots) > indexSlotsMin && x.n*indexLoadMinDen < len(x.slots):
		// Shrink to about 1/4 full, not just by half: deletions may
		// keep coming faster than halvings drain.
		size := indexSlotsMin
		for size < 4*x.n {
			size *= 2
		}
		x.startResize(size)
	}
	x.migrate(migrateSlotsPerWrite)
}

// shiftBack empties slots[i], shifting back the entries after it that
// would otherwise become unreachable from their home slot (no tombstones
// in the current table).
func (x *pointIndex) shiftBack(i int) {
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
}

// startResize makes a table of n slots current and starts draining the
// previous one into it. A resize still in progress is finished first.
func (x *pointIndex) startResize(n int) {
	x.migrate(len(x.old))
	x.old, x.oldNext = x.slots, 0
	x.slots = make([]uint64, n)
}

// migrate moves up to k slots of the old table into the current one, or
// k per slot of the current table when the old one is larger (a shrink),
// so a drain always ends within len(slots)/k writes.
func (x *pointIndex) migrate(k int) {
	if x.old == nil {
		return
	}
	if len(x.old) > len(x.slots) {
		k *= len(x.old) / len(x.slots)
	}
	end := min(x.oldNext+k, len(x.old))
	for _, s := range x.old[x.oldNext:end] {
		if s != 0 && ref(s) != 0 {
			x.place(s)
		}
	}
	x.oldNext = end
	if end == len(x.old) {
		x.old, x.oldNext = nil, 0
	}
}

// insertBatch adds entries (fingerprint<<32 | ref, keys not present),
// sorting them first: the home slot grows with the fingerprint, so the
// table is then written front to back instead of at random, which is what
// a bulk load spent most of its index time on (a cache and TLB miss per
// key in a table of tens of MB).
func (x *pointIndex) insertBatch(entries []uint64) {
	x.reserve(x.n + len(entries))
	slices.Sort(entries)
	for _, s := range entries {
		x.place(s)
	}
	x.n += len(entries)
}

// reserve grows the table so that n keys in all fit without growing.
func (x *pointIndex) reserve(n int) {
	size := len(x.slots)
	for n*indexLoadMaxDen > size*indexLoadMaxNum {
		size *= 2
	}
	if size != len(x.slots) {
		x.startResize(size)
		x.migrate(len(x.old))
	}
}

// entry returns the ref at combined position i of the tables (slots, then
// old), or 0 for an empty, moved or removed slot.
func (x *pointIndex) entry(i int) ref {
	if i < len(x.slots) {
		return ref(x.slots[i])
	}
	i -= len(x.slots)
	if i < x.oldNext {
		return 0
	}
	return ref(x.old[i])
}

// positions is the number of combined positions entry accepts.
func (x *pointIndex) positions() int { return len(x.slots) + len(x.old) }

func (x *pointIndex) bytes() int64 {
	return int64(len(x.slots)+len(x.old)) * indexBytesPerSlot
}
