package checker

import (
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

// ModelQueue checks lists used as queues (issue 21): LPUSH at the head,
// RPOP at the tail, BLPOP at the head, each key on its own. A BLPOP that
// timed out (null) is legal only where its list was empty at some point
// while it waited; one that was served took the head then. A lost pop (a
// client told "nothing" for an element that left the list) or a
// duplicated one (an element served twice) has no linearization.
const ModelQueue = "queue"

// The queue model's operations.
const (
	LPush Kind = "lpush" // LPUSH key value: the list's length after it
	RPop  Kind = "rpop"  // RPOP key: the tail element, or null
	BLPop Kind = "blpop" // BLPOP key timeout: the head element, or null once it timed out
)

func (k Kind) queueKind() bool { return k == LPush || k == RPop || k == BLPop }

// CollectionModel is the model that alone takes an operation of kind k
// (queue, zset), or "".
func CollectionModel(k Kind) string { return k.collectionModel() }

func (k Kind) collectionModel() string {
	switch {
	case k.queueKind():
		return ModelQueue
	case k.zsetKind():
		return ModelZSet
	case k.setKind():
		return ModelSet
	}
	return ""
}

// Pops reports whether k takes an element off a list (RPOP, BLPOP).
func (k Kind) Pops() bool { return k == RPop || k == BLPop }

// queueState is one key's list, head first. Steps make new states; a
// state is never changed once made.
type queueState struct{ elems []string }

func (s *queueState) String() string {
	parts := make([]string, len(s.elems))
	for i, e := range s.elems {
		parts[i] = strconv.Quote(e)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

var queueSpec = &spec{
	name: ModelQueue,
	init: func() any { return &queueState{} },
	apply: func(state any, in input) (output, any) {
		s := state.(*queueState)
		op := in.op
		switch op.Kind {
		case LPush:
			next := &queueState{elems: make([]string, 0, len(s.elems)+1)}
			next.elems = append(append(next.elems, op.Value), s.elems...)
			return output{v: Int(int64(len(next.elems)))}, next
		case RPop:
			if len(s.elems) == 0 {
				return output{v: Nil}, s
			}
			return output{v: Str(s.elems[len(s.elems)-1])}, &queueState{elems: s.elems[: len(s.elems)-1 : len(s.elems)-1]}
		case BLPop:
			if len(s.elems) == 0 {
				return output{v: Nil}, s
			}
			return output{v: Str(s.elems[0])}, &queueState{elems: s.elems[1:]}
		}
		// Check refuses every other kind before a search starts.
		panic("checker: " + string(op.Kind) + " is not a queue operation")
	},
	hash: func(state any) uint64 {
		h := fnv.New64a()
		for _, e := range state.(*queueState).elems {
			h.Write([]byte(strconv.Itoa(len(e))))
			h.Write([]byte{':'})
			h.Write([]byte(e))
		}
		return h.Sum64()
	},
	equal: func(a, b any) bool {
		return slices.Equal(a.(*queueState).elems, b.(*queueState).elems)
	},
	describeState: func(state any) string { return state.(*queueState).String() },
	partitioned:   true,
}
