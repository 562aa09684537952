package checker

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"pgregory.net/rapid"
)

// fataler is what mustCheck needs of testing.TB and rapid.T alike.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func mustCheck(t fataler, ops []Op, model string) Result {
	t.Helper()
	res, err := Check(ops, Options{Model: model, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// porcupineAgrees cross-checks keel's search against porcupine's own
// checker on the same model and operations.
func porcupineAgrees(t fataler, ops []Op, model string, got Verdict) {
	t.Helper()
	sp, _ := specFor(model)
	res := porcupine.CheckOperationsTimeout(sp.porcupineModel(), sp.operations(ops, false), time.Minute)
	want := map[porcupine.CheckResult]Verdict{porcupine.Ok: Ok, porcupine.Illegal: Illegal, porcupine.Unknown: Unknown}[res]
	if want != got {
		t.Fatalf("keel's search says %s, porcupine says %s", got, want)
	}
}

func TestApplyKey(t *testing.T) {
	missing, seven, word := kvState{}, kvState{true, "7"}, kvState{true, "w"}
	for _, tc := range []struct {
		state kvState
		op    Op
		want  Value
		next  kvState
	}{
		{missing, Op{Kind: Set, Value: "a"}, Str("OK"), kvState{true, "a"}},
		{missing, Op{Kind: Set, Value: "a", XX: true}, Nil, missing},
		{seven, Op{Kind: Set, Value: "a", NX: true}, Nil, seven},
		{seven, Op{Kind: Set, Value: "a", NX: true, GetOld: true}, Str("7"), seven},
		{seven, Op{Kind: Set, Value: "a", GetOld: true}, Str("7"), kvState{true, "a"}},
		{missing, Op{Kind: Set, Value: "a", GetOld: true}, Nil, kvState{true, "a"}},
		{seven, Op{Kind: Get}, Str("7"), seven},
		{missing, Op{Kind: Get}, Nil, missing},
		{seven, Op{Kind: Del}, Int(1), missing},
		{missing, Op{Kind: Del}, Int(0), missing},
		{seven, Op{Kind: GetDel}, Str("7"), missing},
		{missing, Op{Kind: GetDel}, Nil, missing},
		{missing, Op{Kind: IncrBy, Delta: -2}, Int(-2), kvState{true, "-2"}},
		{seven, Op{Kind: IncrBy, Delta: 3}, Int(10), kvState{true, "10"}},
		{word, Op{Kind: IncrBy, Delta: 3}, Err(errNotInteger), word},
		{kvState{true, "9223372036854775807"}, Op{Kind: IncrBy, Delta: 1}, Err(errOverflow), kvState{true, "9223372036854775807"}},
		{kvState{true, "-9223372036854775808"}, Op{Kind: IncrBy, Delta: -1}, Err(errOverflow), kvState{true, "-9223372036854775808"}},
	} {
		got, next := applyKey(tc.state, &tc.op)
		if !got.equal(tc.want) || got.Kind != tc.want.Kind || next != tc.next {
			t.Errorf("%v on %v: got %v, %v; want %v, %v", describeCall(&tc.op), tc.state, got, next, tc.want, tc.next)
		}
	}
}

func TestParseRedisInt(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-1": true, "42": true, "9223372036854775807": true, "-9223372036854775808": true,
		"": false, "-": false, "+1": false, "01": false, "-0": false, " 1": false, "1 ": false,
		"9223372036854775808": false, "1.5": false, "0x10": false, "abc": false,
	} {
		if _, ok := parseRedisInt(s); ok != want {
			t.Errorf("parseRedisInt(%q) ok=%v, want %v", s, ok, want)
		}
	}
}

// TestUnknownOutcomeIsUnconstrained: an operation that never returned may
// have any output and may or may not have happened.
func TestUnknownOutcomeIsUnconstrained(t *testing.T) {
	base := []Op{{Client: 1, Kind: Set, Key: "x", Value: "a", Call: 0, Return: 10, Output: Str("OK")}}
	for _, tc := range []struct {
		name string
		op   Op
		read Value // what a later read sees
		want Verdict
	}{
		{"set happened", Op{Kind: Set, Key: "x", Value: "b"}, Str("b"), Ok},
		{"set did not happen", Op{Kind: Set, Key: "x", Value: "b"}, Str("a"), Ok},
		{"nx set cannot happen", Op{Kind: Set, Key: "x", Value: "b", NX: true}, Str("b"), Illegal},
		{"del happened", Op{Kind: Del, Key: "x"}, Nil, Ok},
		{"getdel did not happen", Op{Kind: GetDel, Key: "x"}, Str("a"), Ok},
		{"incrby on a string errs", Op{Kind: IncrBy, Key: "x", Delta: 1}, Str("a"), Ok},
		{"incrby on a string cannot write", Op{Kind: IncrBy, Key: "x", Delta: 1}, Str("1"), Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := tc.op
			op.Client, op.Call, op.Unknown = 2, 20, true
			ops := append(append([]Op{}, base...), op,
				Op{Client: 3, Kind: Get, Key: "x", Call: 100, Return: 110, Output: tc.read},
				Op{Client: 3, Kind: Get, Key: "x", Call: 200, Unknown: true})
			if res := mustCheck(t, ops, ModelKV); res.Verdict != tc.want {
				t.Fatalf("verdict %s, want %s\n%s", res.Verdict, tc.want, res.Explanation)
			}
		})
	}
}

func TestExplanationNamesKeyAndOps(t *testing.T) {
	ops := []Op{
		{Client: 1, Kind: Set, Key: "fine", Value: "1", Call: 0, Return: 10, Output: Str("OK")},
		{Client: 1, Kind: Set, Key: "x", Value: "1", Call: 0, Return: 10, Output: Str("OK")},
		{Client: 1, Kind: Set, Key: "x", Value: "2", Call: 20, Return: 30, Output: Str("OK")},
		{Client: 2, Kind: MGet, Keys: []string{"fine", "x"}, Call: 40, Return: 50, Outputs: []Value{Str("1"), Str("1")}},
		{Client: 2, Kind: Get, Key: "y", Call: 40, Return: 50, Output: Str("ghost")},
	}
	res := mustCheck(t, ops, ModelKV)
	ghost := mustCheck(t, ops[4:], ModelKV)
	if !strings.Contains(ghost.Explanation, `no operation on this key wrote "ghost"`) {
		t.Errorf("explanation of a read of a value never written:\n%s", ghost.Explanation)
	}
	if res.Verdict != Illegal || res.Key != "x" || strings.Join(res.IllegalKeys, ",") != "x,y" {
		t.Fatalf("got %s key %q illegal %v", res.Verdict, res.Key, res.IllegalKeys)
	}
	for _, want := range []string{
		`key "x" is not linearizable`,
		`client 1 [20,30] set x "2" -> "OK"   => "2"`,
		`client 2 [40,50] mget fine x -> ["1" "1"] (reading x)   (the state says "2")`,
		`keys not linearizable: "x", "y"`,
		`"1" was written by: client 1 [0,10] set x "1" -> "OK"`,
	} {
		if !strings.Contains(res.Explanation, want) {
			t.Errorf("explanation lacks %q:\n%s", want, res.Explanation)
		}
	}
}

func TestCheckRejectsForeignOps(t *testing.T) {
	_, err := Check([]Op{{Client: 1, Kind: Transfer, From: "a", To: "b", Amount: 1, Call: 1, Unknown: true}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "bank model") {
		t.Fatalf("got %v", err)
	}
	if _, err := Check(nil, Options{Model: "graph"}); err == nil {
		t.Fatal("accepted an unknown model")
	}
	res, err := Check(nil, Options{})
	if err != nil || res.Verdict != Ok {
		t.Fatalf("empty history: %v %v", res.Verdict, err)
	}
}

// hardHistory is not linearizable, and proving it means trying every order
// of many concurrent writes: the check cannot finish in a short time bound.
func hardHistory(writes int) []Op {
	var ops []Op
	for i := range writes {
		ops = append(ops, Op{Client: i, Kind: IncrBy, Key: "n", Delta: int64(1) << i, Call: int64(i), Unknown: true})
	}
	ops = append(ops, Op{Client: writes, Kind: Get, Key: "n", Call: 0, Return: 1000, Output: Str("never")})
	return ops
}

func TestTimeoutGivesUnknown(t *testing.T) {
	res, err := Check(hardHistory(40), Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != Unknown || res.Passed() || !strings.Contains(res.Explanation, "did not finish within 50ms") ||
		!strings.Contains(res.Explanation, `unfinished: key "n" (41 operations, 40 unknown outcomes without deadline, 0 with)`) {
		t.Fatalf("got %s: %s", res.Verdict, res.Explanation)
	}
}

func TestCheckTotal(t *testing.T) {
	accounts := []string{"a", "b"}
	read := func(a, b Value) Op {
		return Op{Client: 1, Kind: MGet, Keys: []string{"b", "a", "c"}, Call: 1, Return: 2, Outputs: []Value{b, a, Str("junk")}}
	}
	if err := CheckTotal([]Op{read(Str("60"), Str("40")), read(Nil, Str("100"))}, accounts, 100); err != nil {
		t.Fatal(err)
	}
	err := CheckTotal([]Op{read(Str("60"), Str("40")), read(Str("60"), Str("0"))}, accounts, 100)
	if err == nil || !strings.Contains(err.Error(), "sum to 60, not the 100") {
		t.Fatalf("got %v", err)
	}
	partial := Op{Client: 1, Kind: MGet, Keys: []string{"a"}, Call: 1, Return: 2, Outputs: []Value{Str("5")}}
	if err := CheckTotal([]Op{partial}, accounts, 100); err != nil {
		t.Fatalf("a read of some accounts is not checked: %v", err)
	}
}

// TestBankConservationWhenSearchTimesOut: the invariant still speaks when
// the linearizability search runs out of time.
func TestBankConservationWhenSearchTimesOut(t *testing.T) {
	ops := []Op{
		{Client: 0, Kind: Set, Key: "a", Value: "100", Call: 0, Return: 1, Output: Str("OK")},
		{Client: 0, Kind: Set, Key: "b", Value: "0", Call: 2, Return: 3, Output: Str("OK")},
	}
	for i := range 30 {
		ops = append(ops, Op{Client: 1 + i, Kind: Transfer, From: "a", To: "b", Amount: int64(1) << i, Overdraft: true, Call: 10, Unknown: true})
	}
	ops = append(ops, Op{Client: 99, Kind: MGet, Keys: []string{"a", "b"}, Call: 10, Return: 20, Outputs: []Value{Str("1"), Str("2")}})
	res, err := Check(ops, Options{Model: ModelBank, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != Illegal || !strings.Contains(res.Explanation, "total not conserved") {
		t.Fatalf("got %s: %s", res.Verdict, res.Explanation)
	}
}

// genKV makes a linearizable history: every operation takes effect at a
// seeded point inside its interval (or, for some unknown outcomes, never),
// applied in that order to the sequential model.
func genKV(r *rand.Rand, clients, keys, n int, unknownPct int) []Op {
	type pending struct {
		op    Op
		point int64
		skip  bool
	}
	key := func() string { return "k" + strconv.Itoa(r.IntN(keys)) }
	free := make([]int64, clients)
	var ps []pending
	for i := range n {
		c := i % clients
		call := free[c] + r.Int64N(50)
		point := call + r.Int64N(100)
		ret := point + r.Int64N(100)
		free[c] = ret + 1
		op := Op{Client: c, Call: call, Return: ret}
		switch r.IntN(7) {
		case 0:
			op.Kind, op.Key, op.Value = Set, key(), strconv.Itoa(r.IntN(5))
			switch r.IntN(4) {
			case 0:
				op.NX = true
			case 1:
				op.XX = true
			}
			op.GetOld = r.IntN(3) == 0
			if r.IntN(10) == 0 {
				op.Value = "word"
			}
		case 1, 2:
			op.Kind, op.Key = Get, key()
		case 3:
			op.Kind, op.Key = Del, key()
		case 4:
			op.Kind, op.Key, op.Delta = IncrBy, key(), r.Int64N(7)-3
		case 5:
			op.Kind, op.Key = GetDel, key()
		case 6:
			op.Kind, op.Keys = MGet, []string{key(), key()}
		}
		p := pending{op: op, point: point}
		if r.IntN(100) < unknownPct {
			p.op.Unknown = true
			p.skip = r.IntN(2) == 0
		}
		ps = append(ps, p)
	}
	order := make([]int, len(ps))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return ps[order[i]].point < ps[order[j]].point })
	state := map[string]kvState{}
	for _, i := range order {
		p := &ps[i]
		if p.skip {
			continue
		}
		if p.op.Kind == MGet {
			p.op.Outputs = make([]Value, len(p.op.Keys))
			for k, key := range p.op.Keys {
				p.op.Outputs[k], _ = applyKey(state[key], &p.op)
			}
			continue
		}
		p.op.Output, state[p.op.Key] = applyKey(state[p.op.Key], &p.op)
	}
	ops := make([]Op, len(ps))
	for i := range ps {
		ops[i] = ps[i].op
		if ops[i].Unknown {
			ops[i].Return, ops[i].Output, ops[i].Outputs = 0, Value{}, nil
		}
	}
	return ops
}

func TestGeneratedKVHistories(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		seed := rapid.Uint64().Draw(t, "seed")
		r := rand.New(rand.NewPCG(seed, 1))
		ops := genKV(r, 1+r.IntN(6), 1+r.IntN(4), 1+r.IntN(80), r.IntN(15))
		res := mustCheck(t, ops, ModelKV)
		if res.Verdict != Ok {
			t.Fatalf("a linearizable history was judged %s:\n%s", res.Verdict, res.Explanation)
		}
		// Any history, linearizable or not: both checkers agree.
		mixed := append([]Op{}, ops...)
		for i := range mixed {
			if mixed[i].Kind == Get && !mixed[i].Unknown && r.IntN(4) == 0 {
				mixed[i].Output = Str(strconv.Itoa(r.IntN(4)))
			}
		}
		porcupineAgrees(t, mixed, ModelKV, mustCheck(t, mixed, ModelKV).Verdict)
		// Make one completed read see a value nobody wrote.
		for i := range ops {
			if ops[i].Kind == Get && !ops[i].Unknown {
				ops[i].Output = Str("never written")
				res := mustCheck(t, ops, ModelKV)
				if res.Verdict != Illegal || res.Key != ops[i].Key {
					t.Fatalf("read of a value never written: verdict %s key %q, want illegal on %q\n%s", res.Verdict, res.Key, ops[i].Key, res.Explanation)
				}
				break
			}
		}
	})
}

func mustInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// genBank is genKV for the transfer workload: accounts opened first, then
// atomic transfers and snapshot reads at seeded points.
func genBank(r *rand.Rand, clients, accounts, n int, unknownPct int) ([]Op, []string, int64) {
	var ops []Op
	var names []string
	state := &bankState{}
	var total int64
	for a := range accounts {
		name := fmt.Sprintf("acct:%d", a)
		bal := strconv.FormatInt(r.Int64N(100), 10)
		names = append(names, name)
		total += mustInt(bal)
		state = state.with(name, bal, true)
		ops = append(ops, Op{Client: 0, Kind: Set, Key: name, Value: bal, Call: int64(a) * 10, Return: int64(a)*10 + 5, Output: Str("OK")})
	}
	start := int64(accounts) * 10
	type pending struct {
		op    Op
		point int64
		skip  bool
	}
	free := make([]int64, clients)
	var ps []pending
	for i := range n {
		c := i % clients
		call := start + free[c] + r.Int64N(50)
		point := call + r.Int64N(100)
		ret := point + r.Int64N(100)
		free[c] = ret + 1 - start
		op := Op{Client: c + 1, Call: call, Return: ret}
		if r.IntN(3) == 0 {
			op.Kind, op.Keys = MGet, names
		} else {
			from := r.IntN(accounts)
			to := (from + 1 + r.IntN(accounts-1)) % accounts
			op.Kind, op.From, op.To, op.Amount = Transfer, names[from], names[to], r.Int64N(60)
		}
		p := pending{op: op, point: point}
		if r.IntN(100) < unknownPct {
			p.op.Unknown, p.skip = true, r.IntN(2) == 0
		}
		ps = append(ps, p)
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].point < ps[j].point })
	var cur any = state
	for i := range ps {
		if ps[i].skip {
			continue
		}
		var want output
		want, cur = bankSpec.apply(cur, input{op: &ps[i].op, sub: -1})
		ps[i].op.Output, ps[i].op.Outputs = want.v, want.vs
	}
	for _, p := range ps {
		if p.op.Unknown {
			p.op.Output, p.op.Outputs = Value{}, nil
		}
		ops = append(ops, p.op)
	}
	return ops, names, total
}

func TestGeneratedBankHistories(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		seed := rapid.Uint64().Draw(t, "seed")
		r := rand.New(rand.NewPCG(seed, 2))
		ops, names, total := genBank(r, 1+r.IntN(5), 2+r.IntN(3), 1+r.IntN(60), r.IntN(10))
		if err := CheckTotal(ops, names, total); err != nil {
			t.Fatal(err)
		}
		res := mustCheck(t, ops, ModelBank)
		if res.Verdict != Ok {
			t.Fatalf("a linearizable bank history was judged %s:\n%s", res.Verdict, res.Explanation)
		}
		mixed := append([]Op{}, ops...)
		for i := range mixed {
			if mixed[i].Kind == Transfer && !mixed[i].Unknown && r.IntN(4) == 0 {
				mixed[i].Output = Str(InsufficientFunds)
			}
		}
		porcupineAgrees(t, mixed, ModelBank, mustCheck(t, mixed, ModelBank).Verdict)
		// Tear one completed snapshot: it loses 1 from the first account.
		for i := range ops {
			op := &ops[i]
			if op.Kind == MGet && !op.Unknown {
				n, _ := parseRedisInt(op.Outputs[0].Str)
				op.Outputs[0] = Str(strconv.FormatInt(n-1, 10))
				if res := mustCheck(t, ops, ModelBank); res.Verdict != Illegal {
					t.Fatalf("a torn snapshot was judged %s", res.Verdict)
				}
				if err := CheckTotal(ops, names, total); err == nil {
					t.Fatal("CheckTotal missed a torn snapshot")
				}
				break
			}
		}
	})
}

// sweepSized is the shape of a normal simulation seed: 10 clients, a small
// contended key space, about 10 simulated seconds of operations, some of
// them cut off by crashes.
func sweepSized(seed uint64) []Op {
	return genKV(rand.New(rand.NewPCG(seed, 3)), 10, 8, 2000, 3)
}

func TestSweepSizedHistoriesCheck(t *testing.T) {
	seeds := uint64(5)
	if testing.Short() {
		seeds = 2
	}
	for seed := range seeds {
		res, err := Check(sweepSized(seed), Options{Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != Ok {
			t.Fatalf("seed %d: %s\n%s", seed, res.Verdict, res.Explanation)
		}
	}
}

// BenchmarkCheckSweepHistory reports how long one sweep-sized history takes
// to check (go test -bench CheckSweep ./checker).
func BenchmarkCheckSweepHistory(b *testing.B) {
	ops := sweepSized(1)
	b.ResetTimer()
	for range b.N {
		if res := mustCheck(b, ops, ModelKV); res.Verdict != Ok {
			b.Fatal(res.Verdict)
		}
	}
}

func BenchmarkCheckBankHistory(b *testing.B) {
	ops, _, _ := genBank(rand.New(rand.NewPCG(1, 4)), 10, 5, 1000, 3)
	b.ResetTimer()
	for range b.N {
		if res := mustCheck(b, ops, ModelBank); res.Verdict != Ok {
			b.Fatal(res.Verdict)
		}
	}
}

func TestDeadlineBoundsUnknownOutcome(t *testing.T) {
	ops := []Op{
		{Client: 1, Kind: Set, Key: "x", Value: "a", Call: 0, Return: 10, Output: Str("OK")},
		{Client: 2, Kind: Set, Key: "x", Value: "b", Call: 100, Unknown: true},
		{Client: 3, Kind: Get, Key: "x", Call: 300, Return: 310, Output: Str("a")},
		{Client: 3, Kind: Get, Key: "x", Call: 400, Return: 410, Output: Str("b")},
	}
	if res := mustCheck(t, ops, ModelKV); res.Verdict != Ok {
		t.Fatalf("without a deadline the set may land late: %s\n%s", res.Verdict, res.Explanation)
	}
	ops[1].Deadline = 200
	res := mustCheck(t, ops, ModelKV)
	if res.Verdict != Illegal || !strings.Contains(res.Explanation, `client 2 [100,?<=200] set x "b"`) {
		t.Fatalf("with deadline 200 the set cannot land after the read at 300: %s\n%s", res.Verdict, res.Explanation)
	}
	ops[3].Output = Str("a")
	if res := mustCheck(t, ops, ModelKV); res.Verdict != Ok {
		t.Fatalf("a set that never happened: %s\n%s", res.Verdict, res.Explanation)
	}
	ops[2].Output, ops[3].Output = Str("b"), Str("b")
	if res := mustCheck(t, ops, ModelKV); res.Verdict != Ok {
		t.Fatalf("a set that happened before its deadline: %s\n%s", res.Verdict, res.Explanation)
	}
}

// optionalModel is porcupine's checker over spec.optionalModel, the model
// porcupineFirst decides with: an unknown operation returning at its
// deadline either took effect or left the state alone. Its verdicts
// cross-check keel's search, a different algorithm over the same meaning.
func optionalModel() porcupine.Model {
	m := kvSpec.optionalModel()
	m.Partition = func(h []porcupine.Operation) [][]porcupine.Operation {
		parts, _ := partitionByKey(h)
		return parts
	}
	return m
}

func TestGeneratedHistoriesWithDeadlines(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		seed := rapid.Uint64().Draw(t, "seed")
		r := rand.New(rand.NewPCG(seed, 5))
		ops := genKV(r, 1+r.IntN(6), 1+r.IntN(3), 1+r.IntN(60), 5+r.IntN(30))
		for i := range ops {
			if ops[i].Unknown && r.IntN(3) > 0 {
				// Late enough for any point genKV may have chosen.
				ops[i].Deadline = ops[i].Call + 100 + r.Int64N(100)
			}
		}
		if res := mustCheck(t, ops, ModelKV); res.Verdict != Ok {
			t.Fatalf("a linearizable history was judged %s:\n%s", res.Verdict, res.Explanation)
		}
		for i := range ops {
			if ops[i].Kind == Get && !ops[i].Unknown && r.IntN(3) == 0 {
				ops[i].Output = Str(strconv.Itoa(r.IntN(4)))
			}
		}
		got := mustCheck(t, ops, ModelKV).Verdict
		res := porcupine.CheckOperationsTimeout(optionalModel(), kvSpec.operations(ops, true), time.Minute)
		if want := map[porcupine.CheckResult]Verdict{porcupine.Ok: Ok, porcupine.Illegal: Illegal}[res]; want != got {
			t.Fatalf("keel's search says %s, porcupine with optional operations says %s", got, want)
		}
	})
}

// crashHeavy is a sweep-sized history where a fifth of the operations were
// cut off by crashes, each bounded by a deadline (the restart), as the
// simulator records them; broken makes its last completed read impossible.
func crashHeavy(broken bool) []Op {
	ops := genKV(rand.New(rand.NewPCG(7, 3)), 10, 3, 2000, 20)
	for i := range ops {
		if ops[i].Unknown {
			ops[i].Deadline = ops[i].Call + 300
		}
	}
	for i := len(ops) - 1; broken && i >= 0; i-- {
		if ops[i].Kind == Get && !ops[i].Unknown {
			ops[i].Output = Str("never written")
			break
		}
	}
	return ops
}

// TestCrashHeavyHistories: with deadlines the search decides both the good
// and the broken history (without them, proving the broken one illegal means
// trying subsets of a few hundred unknown operations).
func TestCrashHeavyHistories(t *testing.T) {
	if res := mustCheck(t, crashHeavy(false), ModelKV); res.Verdict != Ok {
		t.Fatalf("%s\n%s", res.Verdict, res.Explanation)
	}
	if res := mustCheck(t, crashHeavy(true), ModelKV); res.Verdict != Illegal {
		t.Fatalf("%s\n%s", res.Verdict, res.Explanation)
	}
}

func BenchmarkCheckCrashHeavyIllegal(b *testing.B) {
	ops := crashHeavy(true)
	b.ResetTimer()
	for range b.N {
		if res := mustCheck(b, ops, ModelKV); res.Verdict != Illegal {
			b.Fatal(res.Verdict)
		}
	}
}
