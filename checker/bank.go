package checker

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// bankState is the whole account map: accounts sorted by name, each with
// its stored string (missing accounts are absent), and the hash of the lot.
// Steps make new states; a state is never modified once made, as the
// search requires. A few accounts in a slice copy far faster than a map.
type bankState struct {
	accts []acct
	hash  uint64 // XOR of acctHash over accts
}

type acct struct{ name, value string }

func acctHash(name, value string) uint64 {
	// FNV-1a over name, a separator and value, without allocating.
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * prime
	}
	h = (h ^ 0xff) * prime
	for i := 0; i < len(value); i++ {
		h = (h ^ uint64(value[i])) * prime
	}
	return h
}

func (s *bankState) find(k string) (int, bool) {
	i := sort.Search(len(s.accts), func(i int) bool { return s.accts[i].name >= k })
	return i, i < len(s.accts) && s.accts[i].name == k
}

// with returns s with account k set to v, or removed when !exists.
func (s *bankState) with(k, v string, exists bool) *bankState {
	i, found := s.find(k)
	next := &bankState{hash: s.hash}
	switch {
	case found && exists:
		next.accts = append([]acct(nil), s.accts...)
		next.hash ^= acctHash(k, s.accts[i].value) ^ acctHash(k, v)
		next.accts[i].value = v
	case found:
		next.accts = append(append(make([]acct, 0, len(s.accts)-1), s.accts[:i]...), s.accts[i+1:]...)
		next.hash ^= acctHash(k, s.accts[i].value)
	case exists:
		next.accts = make([]acct, 0, len(s.accts)+1)
		next.accts = append(append(append(next.accts, s.accts[:i]...), acct{k, v}), s.accts[i:]...)
		next.hash ^= acctHash(k, v)
	default:
		return s
	}
	return next
}

func (s *bankState) key(k string) kvState {
	i, ok := s.find(k)
	if !ok {
		return kvState{}
	}
	return kvState{exists: true, value: s.accts[i].value}
}

// balance reads an account as DECRBY/INCRBY would: missing is 0.
func (s *bankState) balance(k string) (int64, bool) {
	st := s.key(k)
	if !st.exists {
		return 0, true
	}
	return parseRedisInt(st.value)
}

var bankSpec = &spec{
	name: ModelBank,
	init: func() any { return &bankState{} },
	apply: func(state any, in input) (output, any) {
		s := state.(*bankState)
		op := in.op
		switch op.Kind {
		case MGet:
			vs := make([]Value, len(op.Keys))
			for i, k := range op.Keys {
				vs[i], _ = applyKey(s.key(k), op)
			}
			return output{vs: vs}, s
		case Transfer:
			return applyTransfer(s, op)
		}
		before := s.key(op.Key)
		want, next := applyKey(before, op)
		if next == before {
			return output{v: want}, s
		}
		return output{v: want}, s.with(op.Key, next.value, next.exists)
	},
	hash: func(state any) uint64 { return state.(*bankState).hash },
	describeState: func(state any) string {
		s := state.(*bankState)
		parts := make([]string, len(s.accts))
		for i, a := range s.accts {
			parts[i] = a.name + "=" + a.value
		}
		return "{" + strings.Join(parts, " ") + "}"
	},
	equal: bankEqual,
}

// bankEqual compares account maps; porcupine's default == would compare
// pointers.
func bankEqual(a, b any) bool {
	x, y := a.(*bankState), b.(*bankState)
	if x == y {
		return true
	}
	if x.hash != y.hash || len(x.accts) != len(y.accts) {
		return false
	}
	for i := range x.accts {
		if x.accts[i] != y.accts[i] {
			return false
		}
	}
	return true
}

// applyTransfer is one EXEC moving Amount from From to To. Unless the
// operation allows an overdraft, a source holding less than the amount
// refuses it and nothing changes.
func applyTransfer(s *bankState, op *Op) (output, any) {
	from, ok1 := s.balance(op.From)
	to, ok2 := s.balance(op.To)
	if !ok1 || !ok2 {
		return output{v: Err(errNotInteger)}, s
	}
	if !op.Overdraft && from < op.Amount {
		return output{v: Str(InsufficientFunds)}, s
	}
	if from < math.MinInt64+op.Amount || to > math.MaxInt64-op.Amount {
		return output{v: Err(errOverflow)}, s
	}
	next := s.with(op.From, strconv.FormatInt(from-op.Amount, 10), true)
	next = next.with(op.To, strconv.FormatInt(to+op.Amount, 10), true)
	return output{v: Str("OK")}, next
}

// CheckTotal checks the bank workload's invariant: every completed MGET that
// reads all of accounts sees balances summing to total (a missing account
// counts as 0). Reads of fewer accounts are not checked. It is cheap and
// independent of the linearizability search, so it still speaks when that
// search runs out of time.
func CheckTotal(ops []Op, accounts []string, total int64) error {
	for i := range ops {
		op := &ops[i]
		if op.Kind != MGet || op.Unknown || !covers(op.Keys, accounts) {
			continue
		}
		if err := readTotal(op, accounts, total); err != nil {
			return err
		}
	}
	return nil
}

func covers(keys, accounts []string) bool {
	have := make(map[string]bool, len(keys))
	for _, k := range keys {
		have[k] = true
	}
	for _, a := range accounts {
		if !have[a] {
			return false
		}
	}
	return true
}

func readTotal(op *Op, accounts []string, total int64) error {
	want := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		want[a] = true
	}
	seen := map[string]bool{}
	var sum int64
	for i, k := range op.Keys {
		if !want[k] || seen[k] {
			continue
		}
		seen[k] = true
		v := op.Outputs[i]
		if v.Kind == NilValue {
			continue
		}
		n, ok := parseRedisInt(v.Str)
		if !ok {
			return errors.Newf("%s: account %s holds %s, not an integer", op, k, v)
		}
		sum += n
	}
	if sum != total {
		return errors.Newf("%s: balances sum to %d, not the %d the accounts were opened with", op, sum, total)
	}
	return nil
}

// openingTotal infers the bank invariant from a history shaped like the
// transfer workload: accounts opened by SETs whose outcome is known, each
// account set once, and no other writes but transfers. It returns the
// accounts, their total and the time after which every read must see it.
func openingTotal(ops []Op) (accounts []string, total int64, after int64, ok bool) {
	opened := map[string]bool{}
	for i := range ops {
		op := &ops[i]
		switch op.Kind {
		case Get, MGet, Transfer:
			continue
		case Set:
			if op.Unknown || op.NX || op.XX || opened[op.Key] {
				return nil, 0, 0, false
			}
			n, isInt := parseRedisInt(op.Value)
			if !isInt {
				return nil, 0, 0, false
			}
			opened[op.Key] = true
			accounts = append(accounts, op.Key)
			total += n
			after = max(after, op.Return)
		default:
			return nil, 0, 0, false
		}
	}
	sort.Strings(accounts)
	return accounts, total, after, len(accounts) > 0
}
