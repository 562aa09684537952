package checker

import (
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// bankState is the whole account map: account -> stored string (missing
// accounts are absent). Steps copy it; a state is never modified once made,
// as porcupine requires.
type bankState map[string]string

func (s bankState) with(k, v string, exists bool) bankState {
	next := make(bankState, len(s)+1)
	for key, val := range s {
		next[key] = val
	}
	if exists {
		next[k] = v
	} else {
		delete(next, k)
	}
	return next
}

func (s bankState) key(k string) kvState {
	v, ok := s[k]
	return kvState{exists: ok, value: v}
}

// balance reads an account as DECRBY/INCRBY would: missing is 0.
func (s bankState) balance(k string) (int64, bool) {
	v, ok := s[k]
	if !ok {
		return 0, true
	}
	return parseRedisInt(v)
}

var bankSpec = &spec{
	name: ModelBank,
	init: func() any { return bankState{} },
	apply: func(state any, in input) (output, any) {
		s := state.(bankState)
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
		want, next := applyKey(s.key(op.Key), op)
		if next == s.key(op.Key) {
			return output{v: want}, s
		}
		return output{v: want}, s.with(op.Key, next.value, next.exists)
	},
	hash: func(state any) uint64 {
		// XOR of per-account hashes: independent of map order.
		var sum uint64
		for k, v := range state.(bankState) {
			h := fnv.New64a()
			h.Write([]byte(k))
			h.Write([]byte{0})
			h.Write([]byte(v))
			sum ^= h.Sum64()
		}
		return sum
	},
	describeState: func(state any) string {
		s := state.(bankState)
		keys := make([]string, 0, len(s))
		for k := range s {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + s[k]
		}
		return "{" + strings.Join(parts, " ") + "}"
	},
	equal: bankEqual,
}

// bankEqual compares account maps; maps are not comparable with ==,
// porcupine's default.
func bankEqual(a, b any) bool {
	x, y := a.(bankState), b.(bankState)
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		if w, ok := y[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// applyTransfer is one EXEC moving Amount from From to To. Unless the
// operation allows an overdraft, a source holding less than the amount
// refuses it and nothing changes.
func applyTransfer(s bankState, op *Op) (output, any) {
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
	next[op.To] = strconv.FormatInt(to+op.Amount, 10) // next is still private here
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
