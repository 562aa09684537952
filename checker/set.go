package checker

import (
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

// ModelSet checks sets (issue 21), each key on its own: SADD member (1
// added, 0 there already), SREM member (1 removed, 0 absent), SISMEMBER
// member, SCARD, and SPOP (a member, or null when empty). A member
// counted twice, a pop of a member that is not there, a member popped
// twice have no linearization.
//
// SPOP picks at random, so an SPOP whose outcome is unknown removed some
// member, or none: the state keeps it as a pending pop (SCARD counts it)
// and lets a later observation decide which member it took — a member
// the history then finds absent (SISMEMBER 0, SREM 0, SADD 1) is taken
// by a pending pop. That choice is greedy: it never rejects a legal
// history, and may accept a few illegal ones around unknown pops.
const ModelSet = "set"

// The set model's operations; the member is Op.Value.
const (
	SAdd      Kind = "sadd"      // SADD key member: 1 added, 0 there already
	SRem      Kind = "srem"      // SREM key member: 1 removed, 0 absent
	SIsMember Kind = "sismember" // SISMEMBER key member: 1 or 0
	SCard     Kind = "scard"     // SCARD key: the number of members
	SPop      Kind = "spop"      // SPOP key: a member, or null when empty
)

func (k Kind) setKind() bool {
	return k == SAdd || k == SRem || k == SIsMember || k == SCard || k == SPop
}

// setState is one key's set: members sorted, and pops of unknown outcome
// not yet tied to a member. Steps make new states.
type setState struct {
	members []string
	pending int
}

func (s *setState) has(m string) (int, bool) { return slices.BinarySearch(s.members, m) }

func (s *setState) without(i int, pendingDelta int) *setState {
	return &setState{members: slices.Delete(slices.Clone(s.members), i, i+1), pending: s.pending + pendingDelta}
}

func (s *setState) String() string {
	parts := make([]string, len(s.members))
	for i, m := range s.members {
		parts[i] = strconv.Quote(m)
	}
	out := "{" + strings.Join(parts, " ") + "}"
	if s.pending > 0 {
		out += " less " + strconv.Itoa(s.pending) + " unknown pop(s)"
	}
	return out
}

var setSpec = &spec{
	name: ModelSet,
	init: func() any { return &setState{} },
	apply: func(state any, in input) (output, any) {
		s := state.(*setState)
		op := in.op
		got := op.Output
		known := !op.Unknown
		i, there := s.has(op.Value)
		// taken: the history says a member the state holds is gone, which
		// a pending pop explains.
		taken := there && s.pending > 0 && known
		switch op.Kind {
		case SAdd:
			if there && !(taken && got.Kind == IntValue && got.Int == 1) {
				return output{v: Int(0)}, s
			}
			next := s
			if there {
				next = s.without(i, -1)
			}
			j, _ := next.has(op.Value)
			return output{v: Int(1)}, &setState{members: slices.Insert(slices.Clone(next.members), j, op.Value), pending: next.pending}
		case SRem:
			if !there {
				return output{v: Int(0)}, s
			}
			if taken && got.Kind == IntValue && got.Int == 0 {
				return output{v: Int(0)}, s.without(i, -1)
			}
			return output{v: Int(1)}, s.without(i, 0)
		case SIsMember:
			if !there {
				return output{v: Int(0)}, s
			}
			if taken && got.Kind == IntValue && got.Int == 0 {
				return output{v: Int(0)}, s.without(i, -1)
			}
			return output{v: Int(1)}, s
		case SCard:
			return output{v: Int(int64(len(s.members) - s.pending))}, s
		case SPop:
			switch {
			case !known:
				if len(s.members) > s.pending {
					return output{v: Nil}, &setState{members: s.members, pending: s.pending + 1}
				}
				return output{v: Nil}, s
			case got.Kind == NilValue:
				if len(s.members) == s.pending {
					return output{v: Nil}, &setState{}
				}
				return output{v: Str("(a member)")}, s
			}
			j, ok := s.has(got.Str)
			if !ok || len(s.members) == s.pending {
				return output{v: Nil}, s // empty, or not a member: no match
			}
			return output{v: got}, s.without(j, 0)
		}
		// Check refuses every other kind before a search starts.
		panic("checker: " + string(op.Kind) + " is not a set operation")
	},
	hash: func(state any) uint64 {
		s := state.(*setState)
		h := fnv.New64a()
		for _, m := range s.members {
			h.Write([]byte(m))
			h.Write([]byte{0})
		}
		h.Write([]byte(strconv.Itoa(s.pending)))
		return h.Sum64()
	},
	equal: func(a, b any) bool {
		x, y := a.(*setState), b.(*setState)
		return x.pending == y.pending && slices.Equal(x.members, y.members)
	},
	describeState: func(state any) string { return state.(*setState).String() },
	partitioned:   true,
}
