package cluster

import (
	"strconv"

	"github.com/cockroachdb/errors"
)

// This file holds the vocabulary of sharding across replica groups
// (docs/cluster.md, "Sharding"): slot ranges, the even split a new
// cluster starts from, and the view of a group's slots that a replica
// publishes. A cluster of G groups starts with group g (1-based) owning
// the g-th of G equal runs of the 16384 slots; slot moves (reshard.go,
// slotstate.go) change that through the groups' own logs.

// SlotRange is an inclusive run of slots, First <= Last.
type SlotRange struct {
	First, Last int
}

// Len is the number of slots in the range.
func (r SlotRange) Len() int { return r.Last - r.First + 1 }

// Contains reports whether slot lies in the range.
func (r SlotRange) Contains(slot int) bool { return r.First <= slot && slot <= r.Last }

// String is "first-last" (or "slot" for one slot), as operators type it.
func (r SlotRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(r.First)
	}
	return strconv.Itoa(r.First) + "-" + strconv.Itoa(r.Last)
}

// ParseSlotRange reads "first-last" or "slot".
func ParseSlotRange(s string) (SlotRange, error) {
	first, last := s, s
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			first, last = s[:i], s[i+1:]
			break
		}
	}
	a, err1 := strconv.Atoi(first)
	b, err2 := strconv.Atoi(last)
	if err1 != nil || err2 != nil {
		return SlotRange{}, errors.Newf("slot range %q: want first-last or one slot", s)
	}
	r := SlotRange{First: a, Last: b}
	if err := r.Check(); err != nil {
		return SlotRange{}, err
	}
	return r, nil
}

// Check reports a range outside 0..16383 or with First > Last.
func (r SlotRange) Check() error {
	if r.First < 0 || r.Last >= SlotCount || r.First > r.Last {
		return errors.Newf("slot range %d-%d: want 0 <= first <= last <= %d", r.First, r.Last, SlotCount-1)
	}
	return nil
}

// SplitSlots is the slot map a cluster of groups groups starts with:
// group g (1-based, index g-1) owns the g-th of groups equal runs, the
// first runs one slot longer when 16384 does not divide evenly.
func SplitSlots(groups int) [][]SlotRange {
	if groups < 1 || groups > SlotCount {
		panic(errors.AssertionFailedf("cluster: SplitSlots(%d)", groups))
	}
	out := make([][]SlotRange, groups)
	base, extra := SlotCount/groups, SlotCount%groups
	first := 0
	for g := range groups {
		n := base
		if g < extra {
			n++
		}
		out[g] = []SlotRange{{First: first, Last: first + n - 1}}
		first += n
	}
	return out
}

// SlotMove is a range on its way between groups: on the source it names
// the target, on the target the source.
type SlotMove struct {
	SlotRange
	Group uint64
}

// SlotInfo is a group's slots as one replica has applied them: the ranges
// it owns (migrating ones included: the source owns a slot until the move
// ends), those it is handing to another group and those it is taking
// from one. Ranges are sorted and do not overlap.
type SlotInfo struct {
	Group     uint64
	Owned     []SlotRange
	Migrating []SlotMove
	Importing []SlotMove
}
