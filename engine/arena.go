package engine

import (
	"encoding/binary"
	"math/bits"
	"slices"

	"github.com/cockroachdb/errors"
)

// The keyspace lives in large pointer-free blocks, so the garbage collector
// marks a few thousand blocks instead of scanning millions of small objects
// (see docs/engine.md, "Storage layout"):
//
//   - records: one fixed-size record per key (deadline, version, wheel
//     links, where its bytes are), in chunks of recsPerChunk. A key is
//     named by its record number (ref), which never changes while the key
//     lives, so the point index, the ordered index and the wheel hold
//     32-bit refs, not pointers.
//   - cells: a key's bytes and its value side by side,
//     [uvarint len(key)][key][value ... up to the cell's capacity], in
//     64 KiB pages carved into cells of one size class each; freed cells
//     of a class are reused by that class (a free list threaded through
//     the free cells themselves). A cell larger than cellMaxBytes is a
//     separate heap allocation (large), as there are few of them.
//
// Copy-on-write: a View reads records and cells in place, so a record (and
// its cell) that a live View may read is never changed or reused; it is
// copied first (DB.writable), and when it is deleted its release is
// deferred until no View is left.
const (
	pageShift = 16
	pageBytes = 1 << pageShift
	pageMask  = pageBytes - 1
	// cellMaxBytes is the largest cell carved from a page: 16 per page at
	// least, so the tail a page cannot use stays under 1/16 of it.
	cellMaxBytes = 4096
	// recShift sets records per chunk (1024 × 32 B = 32 KiB).
	recShift     = 10
	recsPerChunk = 1 << recShift
	recMask      = recsPerChunk - 1
	// classLarge marks a record whose cell is a heap allocation, large[cell].
	classLarge = 255
	// recordBytes and ttlEntryBytes are what a record and a TTL entry cost
	// (unsafe.Sizeof, checked by a test).
	recordBytes   = 32
	ttlEntryBytes = 24
	// ttlShift sets TTL entries per chunk (1024 × 24 B = 24 KiB).
	ttlShift     = 10
	ttlsPerChunk = 1 << ttlShift
	ttlMask      = ttlsPerChunk - 1
	// maxValueBytes is bounded by record.vlen.
	maxValueBytes = 1<<32 - 1
	// maxKeys is bounded by the 32-bit ref (0 is "no key").
	maxKeys = 1<<32 - 2
)

// ref names a key's record; 0 is no key.
type ref uint32

// record is one key's fixed-size part (32 bytes). Its cell, vlen, typ and
// its TTL entry's deadline are immutable while a View may read it
// (DB.writable).
type record struct {
	version uint64 // DB.modCount at the last change (WATCH)
	// cell is page<<pageShift | offset, or an index into large; in a free
	// record, the next free record.
	cell uint64
	vlen uint32
	ttl  tref // the key's TTL entry, 0 = no TTL
	// access is the key's eviction metadata in Redis's 24-bit layout:
	// the LRU clock, or the LFU time and counter (evict.go). It fills
	// what was padding, so the record stays 32 bytes. Reads write it in
	// place, even on a record a View may read: Views never read it.
	access uint32
	class  uint8 // size class of the cell, classLarge for large
	typ    ValueType
	// strEnc is how OBJECT ENCODING names a string value that is not
	// named by its content alone (strEncAuto: int, embstr or raw by the
	// value, see stringEncoding).
	strEnc uint8
}

// tref names a TTL entry; 0 is none.
type tref uint32

// ttlEntry is the deadline of one key with a TTL and its timing-wheel
// links (24 bytes). Only keys with a TTL pay for one, so the record of a
// key without one is 18 bytes smaller than if the record carried them.
// expireAt is immutable while a View may read the owner; the links and
// slot belong to the DB alone (a View never reads them).
type ttlEntry struct {
	expireAt int64 // Unix ms
	owner    ref
	// prev and next link the entry into a timing-wheel list; next also
	// links free entries. Only a list head's slot is authoritative.
	prev, next tref
	slot       int16 // wheel list index, slotNone when not linked
}

// Size classes: multiples of 8 up to 256 bytes (waste under 8 bytes per
// key), then steps of about 1/8 rounded to 8 (waste under 12.5%) up to
// cellMaxBytes.
var (
	classSizes [classLarge]uint32
	classCount int
	// classFor[(n+7)/8] is the smallest class holding n bytes.
	classFor [cellMaxBytes/8 + 1]uint8
)

func init() {
	add := func(s uint32) {
		if classCount == classLarge {
			panic("engine: too many size classes")
		}
		classSizes[classCount] = s
		classCount++
	}
	for s := uint32(16); s <= 256; s += 8 {
		add(s)
	}
	for s := uint32(256); s < cellMaxBytes; {
		s = min((s+s/8+7)&^7, cellMaxBytes)
		add(s)
	}
	c := 0
	for i := range classFor {
		for uint32(i*8) > classSizes[c] {
			c++
		}
		classFor[i] = uint8(c)
	}
}

// sizeClass returns the class of the smallest cell holding n bytes, or
// classLarge.
func sizeClass(n int) uint8 {
	if n > cellMaxBytes {
		return classLarge
	}
	return classFor[(n+7)>>3]
}

// slabDirs are the directories of the blocks holding records and cells.
// Blocks never move and directories only grow (Reset starts new ones), so
// a View keeps a copy of the three slice headers and reads through them
// while the DB appends to its own.
type slabDirs struct {
	recs  []*[recsPerChunk]record
	ttls  []*[ttlsPerChunk]ttlEntry
	pages []*[pageBytes]byte
	large [][]byte
}

func (d *slabDirs) rec(r ref) *record    { return &d.recs[r>>recShift][r&recMask] }
func (d *slabDirs) ttl(t tref) *ttlEntry { return &d.ttls[t>>ttlShift][t&ttlMask] }

// expireAtOf is rc's deadline, 0 when it has none.
func (d *slabDirs) expireAtOf(rc *record) int64 {
	if rc.ttl == 0 {
		return 0
	}
	return d.ttl(rc.ttl).expireAt
}

// cellOf returns rc's whole cell (its capacity).
func (d *slabDirs) cellOf(rc *record) []byte {
	if rc.class == classLarge {
		return d.large[rc.cell]
	}
	off := rc.cell & pageMask
	end := off + uint64(classSizes[rc.class])
	return d.pages[rc.cell>>pageShift][off:end:end]
}

// keyOf returns rc's key. The bytes are immutable.
func (d *slabDirs) keyOf(rc *record) []byte {
	if rc.class != classLarge {
		// The common case, short of cellOf's work: a key under 128 bytes
		// in a page.
		p := d.pages[rc.cell>>pageShift]
		off := rc.cell & pageMask
		if k := uint64(p[off]); k < 0x80 {
			return p[off+1 : off+1+k : off+1+k]
		}
	}
	c := d.cellOf(rc)
	if k := int(c[0]); k < 0x80 {
		return c[1 : 1+k : 1+k]
	}
	k, n := binary.Uvarint(c)
	return c[n : n+int(k) : n+int(k)]
}

// valOf returns rc's value; the capacity is capped at its length, so an
// append by a caller can never write into the rest of the cell.
func (d *slabDirs) valOf(rc *record) []byte {
	c := d.cellOf(rc)
	start := valueStart(c)
	end := start + int(rc.vlen)
	return c[start:end:end]
}

// valueStart is where the value begins in cell c.
func valueStart(c []byte) int {
	if k := int(c[0]); k < 0x80 {
		return 1 + k
	}
	k, n := binary.Uvarint(c)
	return n + int(k)
}

// cellNeed is the cell size for a key of klen bytes and vlen bytes of value.
func cellNeed(klen, vlen int) int {
	return uvarintLen(uint64(klen)) + klen + vlen
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// classState is the allocation state of one size class: a free list of
// cells (addr+1, 0 = empty; the link is in the first 8 bytes of the free
// cell) and the unused tail of the page it carves fresh cells from.
type classState struct {
	free      uint64
	next, end uint64
}

// slabs allocates records and cells. It belongs to the DB; Reset replaces
// it whole.
type slabs struct {
	slabDirs
	classes [classLarge]classState
	// recFree heads the list of free records (linked through next);
	// recCount is the number of records ever handed out (ref 0 excluded).
	recFree  ref
	recCount uint32
	// ttlFree and ttlCount do the same for TTL entries.
	ttlFree   tref
	ttlCount  uint32
	largeFree []uint32
	// deferred holds records (and their cells) removed while a View may
	// read them; they are freed once no View is left. deferredCells does
	// the same for collection nodes and element cells (tree.go).
	deferred      []ref
	deferredCells []cellRef
	// heldBytes is what the blocks occupy: pages, record chunks, large
	// cells at their capacity.
	heldBytes int64
}

// newRecord returns a zeroed record for a new key.
func (s *slabs) newRecord() (ref, *record) {
	r := s.recFree
	if r != 0 {
		rc := s.rec(r)
		s.recFree = ref(rc.cell)
		*rc = record{}
		return r, rc
	}
	if s.recCount >= maxKeys {
		panic(errors.AssertionFailedf("engine: more than %d keys", maxKeys))
	}
	s.recCount++
	r = ref(s.recCount)
	if int(r>>recShift) == len(s.recs) {
		s.recs = append(s.recs, new([recsPerChunk]record))
		s.heldBytes += recsPerChunk * recordBytes
	}
	return r, s.rec(r)
}

// freeRecord releases r, its cell and its TTL entry for reuse.
func (s *slabs) freeRecord(r ref) {
	rc := s.rec(r)
	s.freeCell(rc.class, rc.cell)
	if rc.ttl != 0 {
		s.freeTTL(rc.ttl)
	}
	*rc = record{cell: uint64(s.recFree)}
	s.recFree = r
}

// newTTL returns an unlinked TTL entry owned by r.
func (s *slabs) newTTL(r ref, at int64) (tref, *ttlEntry) {
	t := s.ttlFree
	if t == 0 {
		if s.ttlCount >= maxKeys {
			panic(errors.AssertionFailedf("engine: more than %d keys with a TTL", maxKeys))
		}
		s.ttlCount++
		t = tref(s.ttlCount)
		if int(t>>ttlShift) == len(s.ttls) {
			s.ttls = append(s.ttls, new([ttlsPerChunk]ttlEntry))
			s.heldBytes += ttlsPerChunk * ttlEntryBytes
		}
	} else {
		s.ttlFree = s.ttl(t).next
	}
	e := s.ttl(t)
	*e = ttlEntry{expireAt: at, owner: r, slot: slotNone}
	return t, e
}

// freeTTL releases an unlinked TTL entry.
func (s *slabs) freeTTL(t tref) {
	*s.ttl(t) = ttlEntry{next: s.ttlFree, slot: slotNone}
	s.ttlFree = t
}

// cellRef names a cell outside any record: a collection's node or an
// element too long to sit inside one (tree.go).
type cellRef struct {
	class uint8
	cell  uint64
}

// cellAt returns the whole cell of class class at cell.
func (d *slabDirs) cellAt(class uint8, cell uint64) []byte {
	if class == classLarge {
		return d.large[cell]
	}
	off := cell & pageMask
	end := off + uint64(classSizes[class])
	return d.pages[cell>>pageShift][off:end:end]
}

// allocCell gives rc a cell of at least need bytes, of class class
// (sizeClass(need)); the cell's contents are undefined.
func (s *slabs) allocCell(rc *record, need int) {
	rc.class, rc.cell = s.allocRaw(need)
}

// allocRaw returns a cell of at least need bytes (its class and address);
// its contents are undefined.
func (s *slabs) allocRaw(need int) (uint8, uint64) {
	class := sizeClass(need)
	if class == classLarge {
		var id uint32
		if n := len(s.largeFree); n > 0 {
			id = s.largeFree[n-1]
			s.largeFree = s.largeFree[:n-1]
		} else {
			id = uint32(len(s.large))
			s.large = append(s.large, nil)
		}
		// As large as the allocation Go makes for it (its size class, or
		// whole pages above 32 KiB): the cell may use it all, and the
		// accounting then counts what the heap really holds.
		c := slices.Grow([]byte(nil), need)
		s.large[id] = c[:cap(c)]
		s.heldBytes += int64(cap(c))
		return class, uint64(id)
	}
	cs := &s.classes[class]
	if cs.free != 0 {
		addr := cs.free - 1
		cs.free = binary.LittleEndian.Uint64(s.pages[addr>>pageShift][addr&pageMask:])
		return class, addr
	}
	size := uint64(classSizes[class])
	if cs.next+size > cs.end {
		page := uint64(len(s.pages))
		s.pages = append(s.pages, new([pageBytes]byte))
		s.heldBytes += pageBytes
		cs.next, cs.end = page<<pageShift, page<<pageShift+pageBytes
	}
	addr := cs.next
	cs.next += size
	return class, addr
}

// freeCell puts a cell back on its class's free list.
func (s *slabs) freeCell(class uint8, cell uint64) {
	if class == classLarge {
		s.heldBytes -= int64(len(s.large[cell]))
		s.large[cell] = nil
		s.largeFree = append(s.largeFree, uint32(cell))
		return
	}
	cs := &s.classes[class]
	binary.LittleEndian.PutUint64(s.pages[cell>>pageShift][cell&pageMask:], cs.free)
	cs.free = cell + 1
}

// cellBytes is what a cell of rc's class costs.
func (s *slabs) cellBytes(rc *record) int64 {
	return s.rawBytes(rc.class, rc.cell)
}

// rawBytes is what the cell of class class at cell costs.
func (d *slabDirs) rawBytes(class uint8, cell uint64) int64 {
	if class == classLarge {
		return int64(len(d.large[cell]))
	}
	return int64(classSizes[class])
}
