package checker

import (
	"context"
	"sort"

	"github.com/anishathalye/porcupine"
)

// search decides one partition. It is porcupine's algorithm (Lowe's
// just-in-time linearization over a linked list of call and return entries,
// with a cache of visited configurations) plus rules for unknown outcomes:
//
// An operation of unknown outcome and no deadline ("free") is optional: it
// can always go last, or never. So a configuration (other ops done E, free
// ops placed U, state s) is dominated by a visited (E, U', s) with U' ⊆ U:
// everything reachable from the first is reachable from the second. The
// rule prunes only against configurations explored to the end (and failed);
// an ancestor still being explored would prune the very branch through which
// it is about to succeed, which sends the search on long detours. The search
// also stops as soon as every known operation is placed: free ones left over
// go last.
//
// An unknown operation with a deadline is placed before its deadline or, when
// the walk reaches its deadline, left out (a "skip"). It is matched exactly in
// the cache like a known operation: an ancestor configuration without it
// would reach this one by skipping it, so it cannot vouch for it. Deadlines
// are what keep refutations cheap: without them, proving a history illegal
// can mean trying the subsets of its free operations.
//
// It returns ok, whether the context ended the search first, and the longest
// partial linearization seen, for the explanation: operation indexes in
// order, an operation left out at its deadline written as stepID(i, true).
func search(ctx context.Context, sp *spec, ops []porcupine.Operation) (ok, timedOut bool, longest []int) {
	n := len(ops)
	unknown := make([]bool, n)
	free := make([]bool, n) // unknown, no deadline: optional at any time
	known := 0
	for i, o := range ops {
		op := o.Input.(input).op
		unknown[i] = op.Unknown
		free[i] = op.Unknown && op.Deadline == 0
		if !unknown[i] {
			known++
		}
	}
	head := linkEntries(ops)
	equal := sp.equal
	if equal == nil {
		equal = func(a, b any) bool { return a == b }
	}

	type visited struct {
		exact, free bitset
		state       any
		// done: explored to the end and failed. Only a done configuration
		// may vouch for one with more free operations; an ancestor still
		// being explored would prune the branch it is about to succeed by.
		done bool
	}
	type frame struct {
		entry   *entry
		state   any
		skip    bool     // an unknown operation left out: it never took effect
		visited *visited // the configuration this step entered
	}
	var (
		state      = sp.init()
		doneExact  = newBitset(n) // known and deadline-bounded ops placed or skipped
		doneFree   = newBitset(n) // free ops placed
		placed     = 0            // known operations linearized
		stack      []frame
		cache      = map[uint64][]*visited{}
		bestPlaced = -1
		steps      = 0
	)
	dominated := func(next any) (bool, uint64) {
		key := doneExact.hash() ^ sp.hash(next)
		for _, v := range cache[key] {
			if v.exact.equal(doneExact) && (v.free.equal(doneFree) || v.done && v.free.subsetOf(doneFree)) && equal(v.state, next) {
				return true, key
			}
		}
		return false, key
	}
	e := head.next
	for placed < known {
		if steps++; steps&1023 == 0 && ctx.Err() != nil {
			return false, true, longest
		}
		// e is never nil here: while a known operation is unplaced, its
		// return entry stops the walk before the list ends.
		if e.call {
			in := ops[e.id].Input.(input)
			want, next := sp.apply(state, in)
			if want.matches(ops[e.id].Output.(output)) {
				bits := doneExact
				if free[e.id] {
					bits = doneFree
				}
				bits.set(e.id)
				if skip, key := dominated(next); !skip {
					v := &visited{exact: doneExact.clone(), free: doneFree.clone(), state: next}
					cache[key] = append(cache[key], v)
					stack = append(stack, frame{e, state, false, v})
					state = next
					if !unknown[e.id] {
						placed++
					}
					e.lift()
					e = head.next
					continue
				}
				bits.clear(e.id)
			}
			e = e.next
			continue
		}
		// A return entry of an operation not yet placed. If the operation's
		// outcome is unknown, its deadline has come: it may never have
		// happened, so leave it out and go on.
		if unknown[e.id] && !doneExact.has(e.id) {
			call := e.match // a return entry's match is its call
			doneExact.set(e.id)
			if skip, key := dominated(state); !skip {
				v := &visited{exact: doneExact.clone(), free: doneFree.clone(), state: state}
				cache[key] = append(cache[key], v)
				stack = append(stack, frame{call, state, true, v})
				call.lift()
				e = head.next
				continue
			}
			doneExact.clear(e.id)
		}
		// Otherwise this branch is a dead end. Remember how far it got,
		// then backtrack.
		if placed > bestPlaced {
			bestPlaced = placed
			longest = longest[:0]
			for _, f := range stack {
				longest = append(longest, stepID(f.entry.id, f.skip))
			}
		}
		for {
			if len(stack) == 0 {
				return false, false, longest
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			top.visited.done = true
			e, state = top.entry, top.state
			if free[e.id] {
				doneFree.clear(e.id)
			} else {
				doneExact.clear(e.id)
			}
			if !unknown[e.id] {
				placed--
			}
			e.unlift()
			if !top.skip {
				e = e.next
				break
			}
			// Leaving the operation out failed too, and placing it
			// earlier was tried before its deadline came: backtrack on.
		}
	}
	longest = longest[:0]
	for _, f := range stack {
		longest = append(longest, stepID(f.entry.id, f.skip))
	}
	return true, false, longest
}

// entry is a call or return in the doubly linked list the search walks.
type entry struct {
	call       bool
	id         int    // operation index
	match      *entry // a call's return entry
	prev, next *entry
}

// linkEntries lists every call and return in time order, calls before
// returns at equal times (intervals are closed), behind a sentinel head.
func linkEntries(ops []porcupine.Operation) *entry {
	type timed struct {
		e    *entry
		time int64
	}
	all := make([]timed, 0, 2*len(ops))
	for i, o := range ops {
		ret := &entry{id: i}
		call := &entry{call: true, id: i, match: ret}
		ret.match = call
		all = append(all, timed{call, o.Call}, timed{ret, o.Return})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].time != all[j].time {
			return all[i].time < all[j].time
		}
		return all[i].e.call && !all[j].e.call
	})
	head := &entry{id: -1}
	prev := head
	for _, t := range all {
		prev.next, t.e.prev = t.e, prev
		prev = t.e
	}
	return head
}

// lift takes a call and its return out of the list; unlift puts them back.
func (e *entry) lift() {
	e.prev.next = e.next
	e.next.prev = e.prev // a call always has its return after it
	m := e.match
	m.prev.next = m.next
	if m.next != nil {
		m.next.prev = m.prev
	}
}

func (e *entry) unlift() {
	m := e.match
	m.prev.next = m
	if m.next != nil {
		m.next.prev = m
	}
	e.prev.next = e
	e.next.prev = e
}

type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) set(i int)   { b[i/64] |= 1 << (i % 64) }
func (b bitset) clear(i int) { b[i/64] &^= 1 << (i % 64) }

func (b bitset) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }

func (b bitset) clone() bitset { return append(bitset(nil), b...) }

func (b bitset) equal(o bitset) bool {
	for i := range b {
		if b[i] != o[i] {
			return false
		}
	}
	return true
}

func (b bitset) subsetOf(o bitset) bool {
	for i := range b {
		if b[i]&^o[i] != 0 {
			return false
		}
	}
	return true
}

func (b bitset) hash() uint64 {
	// MurmurHash3's 64-bit finalizer constant, as porcupine uses.
	const prime = 0xff51afd7ed558ccd
	var h uint64
	for _, w := range b {
		h ^= w
		h *= prime
	}
	return h
}

// stepID encodes a step of a partial linearization: i placed, or -(i+1)
// for i left out (an unknown outcome whose deadline passed).
func stepID(i int, skipped bool) int {
	if skipped {
		return -(i + 1)
	}
	return i
}
