package engine

import "math/bits"

// The timing wheel holds every key that has a TTL, so active expiry finds
// due keys without scanning the keyspace.
//
// It is hierarchical: level l has 64 slots, each spanning 64^l ms, and 11
// levels cover every int64 deadline. An item with deadline t lives at the
// level of the highest 6-bit digit in which t differs from the wheel's
// cursor (all items have t > cursor), in the slot named by t's digit at that
// level. So the earliest items are always in the lowest occupied level, in
// its lowest occupied slot above the cursor's digit; one 64-bit occupancy
// mask per level finds it in O(levels), however far time jumps. Reaching a
// slot moves its whole list to the pending list in O(1); pending items are
// then expired (if due) or re-inserted one level down (cascade), one unit of
// budget each. Insert and remove are O(1): the lists are intrusive and
// doubly linked through ttlEntry.prev/next. Only keys with a TTL have
// an entry (arena.go).
//
// Invariants: for every item at level l and slot s, t's digits above l equal
// the cursor's and s > the cursor's digit at l. Items on the pending list
// have t <= cursor, or came from a slot just reached. Only the head of each
// list has an authoritative ttlEntry.slot (a spliced list keeps stale values in
// its tail; they are fixed as items become heads), which is what makes the
// splice O(1). For a non-head item slot only tells "linked or not".
const (
	wheelBits   = 6
	wheelSlots  = 1 << wheelBits
	wheelLevels = 11 // 66 bits ≥ 64
	slotPending = wheelLevels * wheelSlots
	slotNone    = -1
)

type wheel struct {
	d        *slabDirs // where the TTL entries live (the DB's)
	cursor   int64     // every entry in a level has expireAt > cursor
	heads    [wheelLevels*wheelSlots + 1]tref
	occupied [wheelLevels]uint64
	n        int // entries linked (= keys with a TTL)
}

func (w *wheel) reset() { *w = wheel{d: w.d, cursor: w.cursor} }

func (w *wheel) insert(t tref) {
	at := w.d.ttl(t).expireAt
	if at <= w.cursor {
		w.link(t, slotPending)
		return
	}
	level := (63 - bits.LeadingZeros64(uint64(at^w.cursor))) / wheelBits
	slot := int(uint64(at)>>(uint(level)*wheelBits)) & (wheelSlots - 1)
	w.link(t, level*wheelSlots+slot)
	w.occupied[level] |= 1 << uint(slot)
}

func (w *wheel) link(t tref, idx int) {
	head := w.heads[idx]
	e := w.d.ttl(t)
	e.prev = 0
	e.next = head
	if head != 0 {
		w.d.ttl(head).prev = t
	}
	w.heads[idx] = t
	e.slot = int16(idx)
	w.n++
}

func (w *wheel) unlink(t tref) {
	e := w.d.ttl(t)
	if e.prev != 0 {
		w.d.ttl(e.prev).next = e.next
		if e.next != 0 {
			w.d.ttl(e.next).prev = e.prev
		}
	} else {
		idx := int(e.slot)
		w.heads[idx] = e.next
		if e.next != 0 {
			next := w.d.ttl(e.next)
			next.prev = 0
			next.slot = int16(idx)
		} else if idx != slotPending {
			w.occupied[idx/wheelSlots] &^= 1 << uint(idx%wheelSlots)
		}
	}
	e.prev, e.next = 0, 0
	e.slot = slotNone
	w.n--
}

// replace puts cp where old is (copy-on-write of a key).
func (w *wheel) replace(old, cp tref) {
	o, c := w.d.ttl(old), w.d.ttl(cp)
	c.prev, c.next, c.slot = o.prev, o.next, o.slot
	if o.prev != 0 {
		w.d.ttl(o.prev).next = cp
	} else {
		w.heads[o.slot] = cp
	}
	if o.next != 0 {
		w.d.ttl(o.next).prev = cp
	}
	o.prev, o.next = 0, 0
	o.slot = slotNone
}

// nextSlot finds the earliest occupied slot: the lowest level with a slot
// above the cursor's digit there.
func (w *wheel) nextSlot() (level, slot int, ok bool) {
	c := uint64(w.cursor)
	for l := 0; l < wheelLevels; l++ {
		d := (c >> (uint(l) * wheelBits)) & (wheelSlots - 1)
		above := w.occupied[l] &^ (uint64(2)<<d - 1)
		if above != 0 {
			return l, bits.TrailingZeros64(above), true
		}
	}
	return 0, 0, false
}

// slotStart is the first millisecond of a slot, given the invariant that
// its items share the cursor's digits above its level.
func (w *wheel) slotStart(level, slot int) int64 {
	shift := uint(level+1) * wheelBits
	var high uint64
	if shift < 64 {
		high = uint64(w.cursor) >> shift << shift
	}
	return int64(high | uint64(slot)<<(uint(level)*wheelBits))
}

// ActiveExpire removes keys whose deadline is before now, doing at most
// budget units of work (one per key expired or moved down a level, one per
// slot reached) and returning how many keys it removed. Called every tick
// with a budget above the expiry rate per tick, it removes every key within
// one tick of its deadline, whether or not anyone reads it again.
//
// now also advances the DB's clock (see Exec): a replica applying a log must
// not call it with a time later than the next entry it will apply.
func (db *DB) ActiveExpire(nowMillis int64, budget int) (expired int) {
	db.observe(nowMillis)
	// Redis's rule: a key expires once now > expireAt, so the wheel may
	// release deadlines up to now-1.
	limit := db.clock - 1
	w := &db.wheel
	for work := 0; work < budget; work++ {
		if t := w.heads[slotPending]; t != 0 {
			w.unlink(t)
			if e := w.d.ttl(t); e.expireAt <= limit {
				db.expireItem(e.owner)
				expired++
			} else {
				w.insert(t)
				if e.slot == slotPending {
					// Only reachable if the cursor were ahead of the
					// clock, which observe and the cursor rules forbid;
					// stop rather than spin.
					return expired
				}
			}
			continue
		}
		level, slot, ok := w.nextSlot()
		if !ok {
			w.cursor = max(w.cursor, limit)
			return expired
		}
		start := w.slotStart(level, slot)
		if start > limit {
			w.cursor = max(w.cursor, limit)
			return expired
		}
		w.cursor = start
		idx := level*wheelSlots + slot
		head := w.heads[idx]
		w.heads[idx] = 0
		w.occupied[level] &^= 1 << uint(slot)
		// The pending list is empty here, so the splice is O(1).
		w.d.ttl(head).slot = slotPending
		w.heads[slotPending] = head
	}
	return expired
}
