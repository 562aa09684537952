package checker

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/cockroachdb/errors"
)

// Model names, as given to Options.Model and `keel check --model`.
const (
	ModelKV   = "kv"
	ModelBank = "bank"
)

// DefaultTimeout bounds one history's check when Options.Timeout is zero.
// Histories from normal sweeps check in milliseconds; a search still running
// after this long is reported as Unknown rather than left to hang a sweep.
const DefaultTimeout = 10 * time.Second

// explainPrefixOpsMax bounds how much of the longest linearizable prefix an
// explanation quotes; the end of it is what leads to the conflict.
const explainPrefixOpsMax = 8

// Options configure Check.
type Options struct {
	Model   string        // ModelKV (the default when empty), ModelBank or ModelQueue
	Timeout time.Duration // DefaultTimeout when zero

	// unpruned: the check of a pruned queue history (queuePruned), which
	// is not pruned again.
	unpruned bool
}

// Verdict is a check's answer.
type Verdict string

// The verdicts. Unknown means the time bound ran out first; CI sweeps count
// it as a failure.
const (
	Ok      Verdict = "ok"
	Illegal Verdict = "illegal"
	Unknown Verdict = "unknown"
)

// Result is what Check found.
type Result struct {
	Verdict Verdict
	// Explanation is empty for Ok. For Illegal it names the key (kv) and the
	// operations that conflict; for Unknown it says what ran out.
	Explanation string
	// Key is the first key, in sorted order, whose operations are not
	// linearizable (kv model, Illegal only).
	Key string
	// IllegalKeys are all such keys, sorted (kv model).
	IllegalKeys []string
	Model       string
	Ops         int // operations checked (a kv MGET counts once per key)
	UnknownOps  int // of which the outcome was unknown (reads of unknown outcome are not checked at all)
	Partitions  int // independent groups checked (kv: keys)
	Elapsed     time.Duration

	model   porcupine.Model
	history []porcupine.Operation
	timeout time.Duration
	checked bool // model and history are filled: Visualize can draw them
}

// Passed says whether a sweep may count the history as good: only Ok.
func (r Result) Passed() bool { return r.Verdict == Ok }

// Summary is one line: the verdict and the size of what was checked.
func (r Result) Summary() string {
	if r.Model == ModelBank {
		return fmt.Sprintf("%s: %d operations (%d unknown outcomes) on one account map, bank model", r.Verdict, r.Ops, r.UnknownOps)
	}
	return fmt.Sprintf("%s: %d operations (%d unknown outcomes) on %d keys, %s model", r.Verdict, r.Ops, r.UnknownOps, r.Partitions, r.Model)
}

// Visualize writes porcupine's HTML visualization of the check: every
// operation per key on a timeline, with the linearization found or, for a
// violation, the longest partial linearizations. It runs porcupine's own
// search for the drawing, bounded by the check's timeout; where that search
// runs out of time the drawing shows the partial linearizations it found.
func (r Result) Visualize(w io.Writer) error {
	if !r.checked {
		return errors.New("checker: no check data to visualize")
	}
	_, info := porcupine.CheckOperationsVerbose(r.model, r.history, r.timeout)
	return errors.Wrap(porcupine.Visualize(r.model, info, w), "write visualization")
}

func specFor(name string) (*spec, error) {
	switch name {
	case ModelKV, "":
		return kvSpec, nil
	case ModelBank:
		return bankSpec, nil
	case ModelQueue:
		return queueSpec, nil
	case ModelZSet:
		return zsetSpec, nil
	case ModelSet:
		return setSpec, nil
	}
	return nil, errors.Newf("unknown model %q (want %s, %s, %s, %s or %s)", name, ModelKV, ModelBank, ModelQueue, ModelZSet, ModelSet)
}

// Check decides whether ops are linearizable under the chosen model. The
// error is for a history that cannot be checked at all (an operation that is
// malformed or foreign to the model); a violation is a Result, not an error.
func Check(ops []Op, opts Options) (Result, error) {
	sp, err := specFor(opts.Model)
	if err != nil {
		return Result{}, err
	}
	for i := range ops {
		if err := ops[i].validate(); err != nil {
			return Result{}, errors.Wrapf(err, "operation %d", i)
		}
		if sp == kvSpec && ops[i].Kind == Transfer {
			return Result{}, errors.Newf("operation %d: transfer needs the bank model", i)
		}
		if want := ops[i].Kind.collectionModel(); want != "" && want != sp.name {
			return Result{}, errors.Newf("operation %d: %s needs the %s model", i, ops[i].Kind, want)
		} else if want == "" && (sp == queueSpec || sp == zsetSpec || sp == setSpec) {
			return Result{}, errors.Newf("operation %d: the %s model does not take %s", i, sp.name, ops[i].Kind)
		}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if sp == queueSpec && !opts.unpruned {
		// A quarter of the time on each pruned history (without the
		// unknown pops too, then with them); an Ok there is an Ok for the
		// whole (queuePruned), anything else is decided on the whole
		// history with what time is left.
		start := time.Now()
		last := len(ops)
		for _, keepPops := range []bool{false, true} {
			pruned := queuePruned(ops, keepPops)
			if len(pruned) == last {
				continue
			}
			last = len(pruned)
			po := opts
			po.Timeout, po.unpruned = timeout/4, true
			if r, err := Check(pruned, po); err == nil && r.Verdict == Ok {
				r.Ops, r.UnknownOps = len(ops), 0
				for i := range ops {
					if ops[i].Unknown {
						r.UnknownOps++
					}
				}
				return r, nil
			}
		}
		timeout = max(timeout-time.Since(start), timeout/2)
	}
	history := sp.operations(ops, true)
	model := sp.porcupineModel()
	var parts [][]porcupine.Operation
	var keys []string
	if sp.partitioned {
		parts, keys = partitionByKey(history)
	} else if len(history) > 0 {
		parts = [][]porcupine.Operation{history}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	unknownOps := 0
	for _, o := range history {
		if o.Input.(input).op.Unknown {
			unknownOps++
		}
	}
	r := Result{
		Model:      sp.name,
		Ops:        len(history),
		UnknownOps: unknownOps,
		Partitions: len(parts),
		model:      model,
		history:    sp.operations(ops, false),
		timeout:    timeout,
		checked:    true,
	}
	// Small partitions first, so that one hard key cannot use up the time
	// bound before an easy violation elsewhere is found.
	order := make([]int, len(parts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return len(parts[order[i]]) < len(parts[order[j]]) })
	illegal := make([]bool, len(parts))
	longest := make([][]int, len(parts))
	var unfinished []string
	optional := sp.optionalModel()
	for _, p := range order {
		verdict := porcupineFirst(ctx, optional, parts[p])
		if verdict == porcupine.Ok {
			continue
		}
		ok, out, l := search(ctx, sp, parts[p])
		longest[p] = l
		switch {
		case out && verdict == porcupine.Illegal:
			illegal[p] = true // explained by the prefix keel's search reached
		case out:
			unfinished = append(unfinished, describePartition(parts[p], keys, p))
		case !ok:
			illegal[p] = true
		}
	}
	timedOut := len(unfinished) > 0
	r.Elapsed = time.Since(start)
	switch {
	case slices.Contains(illegal, true):
		r.Verdict = Illegal
		r.explainIllegal(sp, parts, keys, illegal, longest)
	case timedOut:
		r.Verdict = Unknown
		sort.Strings(unfinished)
		r.Explanation = fmt.Sprintf("the linearizability search did not finish within %s: the history may or may not be linearizable.\n"+
			"  unfinished: %s\n"+
			"  Rerun with a longer timeout, give unknown outcomes a deadline (docs/checker.md), or make histories smaller "+
			"(fewer operations per key, fewer unknown outcomes).", timeout, strings.Join(unfinished, "; "))
	default:
		r.Verdict = Ok
	}
	if sp == bankSpec && r.Verdict != Illegal {
		if accounts, total, after, ok := openingTotal(ops); ok {
			var reads []Op
			for _, op := range ops {
				if op.Call > after {
					reads = append(reads, op)
				}
			}
			if err := CheckTotal(reads, accounts, total); err != nil {
				r.Verdict = Illegal
				r.Explanation = "total not conserved: " + err.Error()
			}
		}
	}
	return r, nil
}

// porcupineFirst decides a partition with unknown outcomes by porcupine's
// search over sets of states (spec.optionalModel), within a quarter of
// the time left: keel's search branches on whether each unknown operation
// took effect, and a key with tens of them that took none can keep it busy
// past any bound although the history is linearizable (seen on
// cluster-rereplicate seed 71088: 18 unknown outcomes on one key, keel's
// search unfinished after 25 minutes, porcupine's done in 0.05 s). Ok is
// final; Illegal is explained by keel's search, which runs next; Unknown
// leaves the verdict to keel's search. A partition without unknown
// outcomes goes to keel's search alone (Unknown, at no cost).
func porcupineFirst(ctx context.Context, optional porcupine.Model, part []porcupine.Operation) porcupine.CheckResult {
	if !slices.ContainsFunc(part, func(o porcupine.Operation) bool { return o.Input.(input).op.Unknown }) {
		return porcupine.Unknown
	}
	deadline, _ := ctx.Deadline() // Check's context always has one
	left := time.Until(deadline)
	if left/4 <= 0 { // porcupine reads a zero timeout as none
		return porcupine.Unknown
	}
	return porcupine.CheckOperationsTimeout(optional, part, left/4)
}

// operations turns recorded operations into porcupine's. An operation of
// unknown outcome returns after everything else happened, which lets it
// take effect at any point after its call or, by going last, effectively
// never. With deadlines (keel's search, which knows an unknown operation
// is optional) it returns at its Deadline instead, when it has one;
// porcupine would read that as "certainly happened by then". A read of
// unknown outcome constrains nothing and is left out.
func (sp *spec) operations(ops []Op, deadlines bool) []porcupine.Operation {
	var end int64
	clients := map[int]int{}
	for i := range ops {
		end = max(end, ops[i].Call)
		if !ops[i].Unknown {
			end = max(end, ops[i].Return)
		}
		clients[ops[i].Client] = 0
	}
	// porcupine draws one row per client id, so ids must be dense.
	ids := make([]int, 0, len(clients))
	for c := range clients {
		ids = append(ids, c)
	}
	sort.Ints(ids)
	for row, c := range ids {
		clients[c] = row
	}
	var history []porcupine.Operation
	add := func(op *Op, in input) {
		ret := op.Return
		if op.Unknown {
			ret = end + 1
			if op.Deadline != 0 && deadlines {
				ret = op.Deadline
			}
		}
		history = append(history, porcupine.Operation{
			ClientId: clients[op.Client],
			Input:    in,
			Call:     op.Call,
			Output:   in.output(),
			Return:   ret,
			Metadata: op,
		})
	}
	for i := range ops {
		op := &ops[i]
		if op.Unknown && op.readOnly() {
			continue
		}
		if sp.partitioned && op.Kind == MGet {
			for k, key := range op.Keys {
				add(op, input{op: op, key: key, sub: k})
			}
			continue
		}
		add(op, input{op: op, key: op.Key, sub: -1})
	}
	return history
}

// explainIllegal names the first non-linearizable partition and, from the
// longest prefix of it that does linearize, the operations that cannot go
// next: together they are the conflict a person should look at first.
func (r *Result) explainIllegal(sp *spec, parts [][]porcupine.Operation, keys []string, illegal []bool, longest [][]int) {
	var texts []string
	for p, part := range parts {
		if !illegal[p] {
			continue
		}
		if keys != nil {
			r.IllegalKeys = append(r.IllegalKeys, keys[p])
		}
		if len(texts) == 0 {
			texts = append(texts, explainPartition(sp, part, longest[p], keys, p))
		}
	}
	if len(r.IllegalKeys) > 0 {
		r.Key = r.IllegalKeys[0]
		if len(r.IllegalKeys) > 1 {
			texts = append(texts, fmt.Sprintf("keys not linearizable: %s", strings.Join(quoteAll(r.IllegalKeys), ", ")))
		}
	}
	r.Explanation = strings.Join(texts, "\n")
}

func explainPartition(sp *spec, part []porcupine.Operation, prefix []int, keys []string, p int) string {
	var b strings.Builder
	if keys != nil {
		fmt.Fprintf(&b, "key %q is not linearizable: no order of its %d operations explains every output.\n", keys[p], len(part))
	} else {
		fmt.Fprintf(&b, "not linearizable: no order of the %d operations explains every output.\n", len(part))
	}
	state := sp.init()
	done := make([]bool, len(part))
	placed := 0
	for _, id := range prefix {
		if id >= 0 {
			placed++
		}
	}
	fmt.Fprintf(&b, "  longest linearizable prefix (%d of %d operations), state after each:\n", placed, len(part))
	if len(prefix) == 0 {
		b.WriteString("    (none: not even the first operation fits)\n")
	}
	skipped := len(prefix) - explainPrefixOpsMax
	if skipped > 0 {
		fmt.Fprintf(&b, "    ... %d earlier steps\n", skipped)
	}
	for j, id := range prefix {
		if id < 0 {
			id = -id - 1
			done[id] = true
			if j >= skipped {
				fmt.Fprintf(&b, "    %s   (left out: it never took effect by its deadline)\n", describeOp(part[id]))
			}
			continue
		}
		_, state = sp.apply(state, part[id].Input.(input))
		done[id] = true
		if j >= skipped {
			fmt.Fprintf(&b, "    %s   => %s\n", describeOp(part[id]), sp.describeState(state))
		}
	}
	// Whatever could be linearized next: every remaining operation called
	// before the earliest remaining return.
	var next []int
	minReturn := int64(1<<63 - 1)
	for id, o := range part {
		if !done[id] {
			minReturn = min(minReturn, o.Return)
		}
	}
	for id, o := range part {
		if !done[id] && o.Call <= minReturn {
			next = append(next, id)
		}
	}
	sort.SliceStable(next, func(i, j int) bool { return part[next[i]].Call < part[next[j]].Call })
	b.WriteString("  none of these can go next:\n")
	for _, id := range next {
		in := part[id].Input.(input)
		want, _ := sp.apply(state, in)
		if want.matches(part[id].Output.(output)) {
			fmt.Fprintf(&b, "    %s   (fits here, but every order taking it gets stuck later)\n", describeOp(part[id]))
		} else {
			fmt.Fprintf(&b, "    %s   (the state says %s)\n", describeOp(part[id]), want)
			if got := part[id].Output.(output); sp.partitioned && got.v.Kind == StrValue {
				b.WriteString(writersOf(part, got.v.Str))
			}
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// describePartition names a partition and what makes it hard to search.
func describePartition(part []porcupine.Operation, keys []string, p int) string {
	free, bounded := 0, 0
	for _, o := range part {
		if op := o.Input.(input).op; op.Unknown && op.Deadline == 0 {
			free++
		} else if op.Unknown {
			bounded++
		}
	}
	name := "all accounts"
	if keys != nil {
		name = fmt.Sprintf("key %q", keys[p])
	}
	return fmt.Sprintf("%s (%d operations, %d unknown outcomes without deadline, %d with)", name, len(part), free, bounded)
}

// writersOfMax bounds how many writers of a value an explanation lists.
const writersOfMax = 3

// writersOf says which operations of a key could have written the value a
// read saw: where a stale or lost value came from, or that nothing wrote it.
func writersOf(part []porcupine.Operation, v string) string {
	var ws []string
	for _, o := range part {
		op := o.Input.(input).op
		wrote := op.Kind == Set && op.Value == v
		if op.Kind == IncrBy && !op.Unknown && op.Output.Kind == IntValue {
			wrote = strconv.FormatInt(op.Output.Int, 10) == v
		}
		if wrote {
			ws = append(ws, describeOp(o))
		}
	}
	switch {
	case len(ws) == 0:
		return fmt.Sprintf("      no operation on this key wrote %q\n", v)
	case len(ws) > writersOfMax:
		ws = append(ws[:writersOfMax], fmt.Sprintf("... %d more", len(ws)-writersOfMax))
	}
	return fmt.Sprintf("      %q was written by: %s\n", v, strings.Join(ws, "; "))
}

// describeOp quotes an operation as the history has it; a per-key read of a
// split MGET says which key it stands for.
func describeOp(o porcupine.Operation) string {
	in := o.Input.(input)
	s := in.op.String()
	if in.sub >= 0 && in.op.Kind == MGet {
		s += fmt.Sprintf(" (reading %s)", in.key)
	}
	return s
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// queuePruned is ops without the queue operations whose outcome is unknown
// and whose effect nobody saw: every LPUSH of unknown outcome whose value
// no pop of known outcome returned, and (unless keepPops) every pop of
// unknown outcome. An
// operation of unknown outcome may never have taken effect, so a
// linearization of the pruned history, with those never taking effect, is
// one of the whole: an Ok on it is an Ok. (Not so the other way: a pruned
// history can fail where the whole is linearizable, when an unknown pop
// took an element, so only an Ok is taken from it.) Each such operation
// otherwise stays open to the end of the history, and a few dozen of them
// on one list make the search space explode (queue-crash-partition seed
// 480: 26–35 unknown outcomes on 8 lists).
func queuePruned(ops []Op, keepPops bool) []Op {
	seen := map[string]bool{}
	for i := range ops {
		if o := &ops[i]; !o.Unknown && o.Kind.Pops() && o.Output.Kind == StrValue {
			seen[o.Output.Str] = true
		}
	}
	out := make([]Op, 0, len(ops))
	for i := range ops {
		o := &ops[i]
		if o.Unknown && (o.Kind.Pops() && !keepPops || o.Kind == LPush && !seen[o.Value]) {
			continue
		}
		out = append(out, *o)
	}
	return out
}
