package checker

import (
	"cmp"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ModelZSet checks sorted sets (issue 21), each key on its own, with
// integer scores: ZADD member score (1 added, 0 updated), ZINCRBY member
// delta (the new score), ZSCORE member, ZRANK member (its place in
// (score, member) order, from 0) and ZPOPMIN (the lowest member and its
// score, "member score", or null when empty). A wrong rank, a member
// popped twice or out of order, a lost increment have no linearization.
const ModelZSet = "zset"

// The sorted-set model's operations. Member is Op.Value; scores and
// deltas are Op.Delta.
const (
	ZAdd    Kind = "zadd"    // ZADD key score member
	ZIncrBy Kind = "zincrby" // ZINCRBY key delta member: the new score
	ZScore  Kind = "zscore"  // ZSCORE key member: the score, or null
	ZRank   Kind = "zrank"   // ZRANK key member: the rank, or null
	ZPopMin Kind = "zpopmin" // ZPOPMIN key: "member score", or null when empty
)

func (k Kind) zsetKind() bool {
	return k == ZAdd || k == ZIncrBy || k == ZScore || k == ZRank || k == ZPopMin
}

// zsetState is one key's sorted set in (score, member) order. Steps make
// new states; a state is never changed once made.
type zsetState struct{ elems []zelem }

type zelem struct {
	member string
	score  int64
}

func zcmp(a, b zelem) int {
	if c := cmp.Compare(a.score, b.score); c != 0 {
		return c
	}
	return strings.Compare(a.member, b.member)
}

func (s *zsetState) find(member string) int {
	return slices.IndexFunc(s.elems, func(e zelem) bool { return e.member == member })
}

// with returns s with member at score (added or moved).
func (s *zsetState) with(member string, score int64) *zsetState {
	next := &zsetState{elems: make([]zelem, 0, len(s.elems)+1)}
	for _, e := range s.elems {
		if e.member != member {
			next.elems = append(next.elems, e)
		}
	}
	e := zelem{member, score}
	i, _ := slices.BinarySearchFunc(next.elems, e, zcmp)
	next.elems = slices.Insert(next.elems, i, e)
	return next
}

// ZScoreString is how Redis writes an integer score (ZSCORE, ZINCRBY,
// ZPOPMIN's score): %.17g, which is the integer's digits below 2^53.
func ZScoreString(n int64) string { return strconv.FormatInt(n, 10) }

func (s *zsetState) String() string {
	parts := make([]string, len(s.elems))
	for i, e := range s.elems {
		parts[i] = strconv.Quote(e.member) + ":" + ZScoreString(e.score)
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// zscoreMax bounds the model's scores: within it every score and every
// sum of two is exact in a double, as Redis stores them.
const zscoreMax = 1 << 50

var zsetSpec = &spec{
	name: ModelZSet,
	init: func() any { return &zsetState{} },
	apply: func(state any, in input) (output, any) {
		s := state.(*zsetState)
		op := in.op
		i := s.find(op.Value)
		switch op.Kind {
		case ZAdd:
			if i >= 0 {
				if s.elems[i].score == op.Delta {
					return output{v: Int(0)}, s
				}
				return output{v: Int(0)}, s.with(op.Value, op.Delta)
			}
			return output{v: Int(1)}, s.with(op.Value, op.Delta)
		case ZIncrBy:
			score := op.Delta
			if i >= 0 {
				score += s.elems[i].score
			}
			if math.Abs(float64(score)) > zscoreMax {
				return output{v: Err("ERR score out of the model's range")}, s
			}
			return output{v: Str(ZScoreString(score))}, s.with(op.Value, score)
		case ZScore:
			if i < 0 {
				return output{v: Nil}, s
			}
			return output{v: Str(ZScoreString(s.elems[i].score))}, s
		case ZRank:
			if i < 0 {
				return output{v: Nil}, s
			}
			return output{v: Int(int64(i))}, s
		case ZPopMin:
			if len(s.elems) == 0 {
				return output{v: Nil}, s
			}
			e := s.elems[0]
			return output{v: Str(e.member + " " + ZScoreString(e.score))}, &zsetState{elems: s.elems[1:]}
		}
		// Check refuses every other kind before a search starts.
		panic("checker: " + string(op.Kind) + " is not a sorted-set operation")
	},
	hash: func(state any) uint64 {
		h := fnv.New64a()
		for _, e := range state.(*zsetState).elems {
			h.Write([]byte(e.member))
			h.Write([]byte{0})
			h.Write([]byte(strconv.FormatInt(e.score, 10)))
			h.Write([]byte{0})
		}
		return h.Sum64()
	},
	equal: func(a, b any) bool {
		return slices.Equal(a.(*zsetState).elems, b.(*zsetState).elems)
	},
	describeState: func(state any) string { return state.(*zsetState).String() },
	partitioned:   true,
}
