package checker

import (
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"

	"github.com/anishathalye/porcupine"
)

// input is what porcupine sees as an operation's input: the recorded
// operation plus, for the kv model's split MGET, which of its keys this
// per-key read is.
type input struct {
	op  *Op
	key string // kv model: the one key this operation touches
	sub int    // kv model, MGet: index into op.Keys; -1 otherwise
}

// output is what porcupine sees as an operation's output. unknown means the
// client never learned it: any output is acceptable.
type output struct {
	unknown bool
	v       Value   // one value, or
	vs      []Value // MGet read as one snapshot (bank model)
}

func (in input) output() output {
	if in.op.Unknown {
		return output{unknown: true}
	}
	if in.op.Kind == MGet {
		if in.sub >= 0 {
			return output{v: in.op.Outputs[in.sub]}
		}
		return output{vs: in.op.Outputs}
	}
	return output{v: in.op.Output}
}

// matches says whether got is a legal output when the model says want.
func (want output) matches(got output) bool {
	if got.unknown {
		return true
	}
	if want.vs != nil || got.vs != nil {
		if len(want.vs) != len(got.vs) {
			return false
		}
		for i := range want.vs {
			if !want.vs[i].equal(got.vs[i]) {
				return false
			}
		}
		return true
	}
	return want.v.equal(got.v)
}

func (want output) String() string {
	if want.vs == nil {
		return want.v.String()
	}
	s := "["
	for i, v := range want.vs {
		if i > 0 {
			s += " "
		}
		s += v.String()
	}
	return s + "]"
}

// spec is a sequential specification: a pure function from a state and an
// input to the output the system must give and the next state. Both of
// keel's models are specs; porcupineModel adapts one to porcupine, and the
// explanation of a violation replays the same apply.
type spec struct {
	name          string
	init          func() any
	apply         func(state any, in input) (want output, next any)
	hash          func(state any) uint64
	equal         func(a, b any) bool // nil: ==
	describeState func(state any) string
	// partitioned: check each key on its own (kv). Otherwise the whole
	// history is one partition (bank).
	partitioned bool
}

// optionalModel is porcupine's model of s in which an operation of unknown
// outcome may or may not have taken effect: the checker's state is the set
// of states the history can be in. With unknown operations returning at
// their deadline (or after everything, without one), porcupine's search
// over it decides what keel's search decides, but it never branches on
// whether an unknown operation happened, which a history with tens of
// them on one key needs (check.go, porcupineFirst).
func (s *spec) optionalModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []any { return []any{s.init()} },
		Step: func(state, in, out any) []any {
			want, next := s.apply(state, in.(input))
			if in.(input).op.Unknown {
				return []any{next, state}
			}
			if want.matches(out.(output)) {
				return []any{next}
			}
			return nil
		},
		Equal: s.equal,
		Hash:  s.hash,
	}
	return nm.ToModel()
}

func (s *spec) porcupineModel() porcupine.Model {
	m := porcupine.Model{
		Init: s.init,
		Step: func(state, in, out any) (bool, any) {
			want, next := s.apply(state, in.(input))
			if !want.matches(out.(output)) {
				return false, state
			}
			return true, next
		},
		Hash:  s.hash,
		Equal: s.equal,
		DescribeOperation: func(in, out any) string {
			return describeCall(in.(input).op)
		},
		DescribeState: s.describeState,
		DescribeOperationMetadata: func(meta any) string {
			op := meta.(*Op)
			if op.Meta == "" {
				return fmt.Sprintf("client %d", op.Client)
			}
			return fmt.Sprintf("client %d, %s", op.Client, op.Meta)
		},
	}
	if s.partitioned {
		m.Partition = func(history []porcupine.Operation) [][]porcupine.Operation {
			parts, _ := partitionByKey(history)
			return parts
		}
	}
	return m
}

// partitionByKey groups operations by key, keys in sorted order, each group
// in history order. Deterministic, so that partition i is keys[i] both here
// and inside porcupine.
func partitionByKey(history []porcupine.Operation) ([][]porcupine.Operation, []string) {
	byKey := map[string][]porcupine.Operation{}
	for _, o := range history {
		k := o.Input.(input).key
		byKey[k] = append(byKey[k], o)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([][]porcupine.Operation, len(keys))
	for i, k := range keys {
		parts[i] = byKey[k]
	}
	return parts, keys
}

// kvState is one key's state in the kv model. It is a comparable value, so
// porcupine's default == is the right equality.
type kvState struct {
	exists bool
	value  string
}

func (s kvState) String() string {
	if !s.exists {
		return "(missing)"
	}
	return strconv.Quote(s.value)
}

var kvSpec = &spec{
	name: ModelKV,
	init: func() any { return kvState{} },
	apply: func(state any, in input) (output, any) {
		want, next := applyKey(state.(kvState), in.op)
		return output{v: want}, next
	},
	hash: func(state any) uint64 {
		s := state.(kvState)
		h := fnv.New64a()
		if s.exists {
			h.Write([]byte{1})
			h.Write([]byte(s.value))
		}
		return h.Sum64()
	},
	describeState: func(state any) string { return state.(kvState).String() },
	partitioned:   true,
}

// Redis's replies to INCRBY on a value it cannot increment. The model
// requires an error, not these words.
const (
	errNotInteger = "ERR value is not an integer or out of range"
	errOverflow   = "ERR increment or decrement would overflow"
)

// applyKey is Redis's semantics of a single-key string command: the reply
// it must give in state s and the state after it. A per-key read of a split
// MGET behaves as GET.
func applyKey(s kvState, op *Op) (Value, kvState) {
	old := Nil
	if s.exists {
		old = Str(s.value)
	}
	switch op.Kind {
	case Set:
		if (op.NX && s.exists) || (op.XX && !s.exists) {
			if op.GetOld {
				return old, s
			}
			return Nil, s
		}
		next := kvState{exists: true, value: op.Value}
		if op.GetOld {
			return old, next
		}
		return Str("OK"), next
	case Get, MGet:
		return old, s
	case Del:
		if s.exists {
			return Int(1), kvState{}
		}
		return Int(0), s
	case GetDel:
		return old, kvState{}
	case IncrBy:
		n, ok := int64(0), true
		if s.exists {
			n, ok = parseRedisInt(s.value)
		}
		if !ok {
			return Err(errNotInteger), s
		}
		if (n > 0 && op.Delta > 0 && op.Delta > math.MaxInt64-n) || (n < 0 && op.Delta < 0 && op.Delta < math.MinInt64-n) {
			return Err(errOverflow), s
		}
		n += op.Delta
		return Int(n), kvState{exists: true, value: strconv.FormatInt(n, 10)}
	}
	// validate rejects every other kind before a check starts.
	panic(fmt.Sprintf("checker: %s is not a single-key operation", op.Kind))
}

// parseRedisInt parses s the way Redis's string2ll does: optional '-', no
// '+', no leading zeros, no spaces, at most 20 bytes, within int64. A value
// Go's strconv would accept ("+5", "007") is not an integer to Redis.
func parseRedisInt(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	if s == "0" {
		return 0, true
	}
	digits := s
	if s[0] == '-' {
		digits = s[1:]
	}
	if len(digits) == 0 || digits[0] < '1' || digits[0] > '9' {
		return 0, false
	}
	for i := 1; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
