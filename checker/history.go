package checker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// Kind names an operation, as spelled in the history's "op" field.
type Kind string

// The operations a history may hold. The kv model accepts all but Transfer;
// the bank model accepts all of them.
const (
	Set      Kind = "set"      // SET key value [NX|XX] [GET]
	Get      Kind = "get"      // GET key
	Del      Kind = "del"      // DEL key (one key)
	IncrBy   Kind = "incrby"   // INCRBY key delta
	GetDel   Kind = "getdel"   // GETDEL key
	MGet     Kind = "mget"     // MGET key... (kv: one read per key; bank: one snapshot)
	Transfer Kind = "transfer" // bank: move Amount from From to To in one EXEC
)

// InsufficientFunds is the output of a transfer that was refused because the
// source account held less than the amount.
const InsufficientFunds = "insufficient"

// ValueKind says which of Value's fields is meaningful.
type ValueKind uint8

// The kinds of output value.
const (
	NilValue ValueKind = iota // RESP null: a missing key, or SET refused by NX/XX
	StrValue                  // a bulk or simple string, e.g. "OK" or a stored value
	IntValue                  // an integer reply (DEL, INCRBY)
	ErrValue                  // an error reply ("ERR ..."); only INCRBY may return one
)

// Value is an operation's output (or one element of MGET's output).
type Value struct {
	Kind ValueKind
	Str  string // StrValue and ErrValue
	Int  int64  // IntValue
}

// Nil, Str, Int and Err build output values.
var Nil = Value{Kind: NilValue}

// Str is a string output.
func Str(s string) Value { return Value{Kind: StrValue, Str: s} }

// Int is an integer output.
func Int(n int64) Value { return Value{Kind: IntValue, Int: n} }

// Err is an error output; msg should start with "ERR".
func Err(msg string) Value { return Value{Kind: ErrValue, Str: msg} }

// equal compares outputs; two errors are equal whatever their messages say,
// because the model knows only that an error was due, not its wording.
func (v Value) equal(o Value) bool {
	if v.Kind != o.Kind {
		return false
	}
	switch v.Kind {
	case StrValue:
		return v.Str == o.Str
	case IntValue:
		return v.Int == o.Int
	}
	return true
}

func (v Value) String() string {
	switch v.Kind {
	case NilValue:
		return "nil"
	case StrValue:
		return strconv.Quote(v.Str)
	case IntValue:
		return strconv.FormatInt(v.Int, 10)
	default:
		return "(error) " + v.Str
	}
}

// Op is one client operation of a history. The simulator builds these
// directly; ReadHistory builds them from JSON Lines.
type Op struct {
	Client int  // who issued it; one client has at most one operation in flight
	Kind   Kind // which operation

	Key   string   // Set, Get, Del, IncrBy, GetDel
	Keys  []string // MGet
	Value string   // Set: the value written
	Delta int64    // IncrBy: the increment
	// Set's options.
	NX, XX bool
	GetOld bool // SET ... GET: the output is the old value

	// Transfer: move Amount from From to To. Unless Overdraft is set the
	// transfer is refused (output InsufficientFunds) when From holds less.
	From, To  string
	Amount    int64
	Overdraft bool

	Call   int64 // invocation time, nanoseconds
	Return int64 // response time, nanoseconds; ignored when Unknown
	// Unknown: the client never learned the outcome. The operation may have
	// taken effect at any point after Call, or never; Output is ignored.
	Unknown bool
	// Deadline, for an Unknown operation, bounds when it could take effect:
	// if it did at all, it did by this time (say, a single node's restart,
	// after which recovery has replayed everything it will ever replay).
	// 0: no bound. Bounds keep histories with many crashes cheap to check.
	Deadline int64

	Output  Value   // every kind but MGet
	Outputs []Value // MGet: one per key, in Keys order

	Meta string // free text shown in the visualization (node, attempt, ...)
}

// readOnly says whether the operation cannot change state. A read-only
// operation of unknown outcome constrains nothing and is left out of checks.
func (op *Op) readOnly() bool {
	switch op.Kind {
	case Get, MGet, ZScore, ZRank, SIsMember, SCard:
		return true
	}
	return false
}

// validate says what is wrong with op, in the words of the history format.
func (op *Op) validate() error {
	switch op.Kind {
	case Set, Get, Del, IncrBy, GetDel, LPush, RPop, BLPop, ZAdd, ZIncrBy, ZScore, ZRank, ZPopMin,
		SAdd, SRem, SIsMember, SCard, SPop:
	case MGet:
		if len(op.Keys) == 0 {
			return errors.New(`mget needs "keys": a non-empty list`)
		}
	case Transfer:
		if op.From == op.To {
			return errors.Newf(`transfer "from" and "to" are the same account %q`, op.From)
		}
		if op.Amount < 0 {
			return errors.Newf(`transfer "amount" must not be negative, got %d`, op.Amount)
		}
	case "":
		return errors.New(`missing field "op"`)
	default:
		return errors.Newf(`unknown op %q (want set, get, del, incrby, getdel, mget, transfer, lpush, rpop, blpop, zadd, zincrby, zscore, zrank, zpopmin, sadd, srem, sismember, scard or spop)`, string(op.Kind))
	}
	if op.Kind != Set && (op.NX || op.XX || op.GetOld) {
		return errors.Newf(`"nx", "xx" and "get" apply only to set, not %s`, op.Kind)
	}
	if op.NX && op.XX {
		return errors.New(`set cannot have both "nx" and "xx"`)
	}
	if op.Client < 0 {
		return errors.Newf(`"client" must not be negative, got %d`, op.Client)
	}
	if op.Deadline != 0 && (!op.Unknown || op.Deadline < op.Call) {
		return errors.Newf(`"deadline" %d needs "return": null and must not be before "call" %d`, op.Deadline, op.Call)
	}
	if op.Unknown {
		return nil
	}
	if op.Return < op.Call {
		return errors.Newf(`"return" %d is before "call" %d`, op.Return, op.Call)
	}
	out := op.Output
	switch op.Kind {
	case Set:
		if op.GetOld {
			if out.Kind != NilValue && out.Kind != StrValue {
				return errors.Newf(`set with "get" outputs the old value (a string or null), got %s`, out)
			}
		} else if out.Kind != NilValue && (out.Kind != StrValue || out.Str != "OK") {
			return errors.Newf(`set outputs "OK" or null, got %s`, out)
		}
	case Get, GetDel:
		if out.Kind != NilValue && out.Kind != StrValue {
			return errors.Newf(`%s outputs a string or null, got %s`, op.Kind, out)
		}
	case Del:
		if out.Kind != IntValue || (out.Int != 0 && out.Int != 1) {
			return errors.Newf(`del outputs 0 or 1, got %s`, out)
		}
	case IncrBy:
		if out.Kind != IntValue && out.Kind != ErrValue {
			return errors.Newf(`incrby outputs an integer or an error string starting with "ERR", got %s`, out)
		}
	case MGet:
		if len(op.Outputs) != len(op.Keys) {
			return errors.Newf(`mget has %d keys but %d outputs`, len(op.Keys), len(op.Outputs))
		}
		for i, v := range op.Outputs {
			if v.Kind != NilValue && v.Kind != StrValue {
				return errors.Newf(`mget output %d must be a string or null, got %s`, i, v)
			}
		}
	case Transfer:
		if out.Kind != StrValue || (out.Str != "OK" && out.Str != InsufficientFunds) {
			return errors.Newf(`transfer outputs "OK" or %q, got %s`, InsufficientFunds, out)
		}
	case LPush:
		if out.Kind != IntValue || out.Int < 1 {
			return errors.Newf(`lpush outputs the list's length, got %s`, out)
		}
	case RPop, BLPop, ZScore, ZPopMin, SPop:
		if out.Kind != NilValue && out.Kind != StrValue {
			return errors.Newf(`%s outputs a string or null, got %s`, op.Kind, out)
		}
	case ZAdd:
		if out.Kind != IntValue || (out.Int != 0 && out.Int != 1) {
			return errors.Newf(`zadd of one member outputs 0 or 1, got %s`, out)
		}
	case ZIncrBy:
		if out.Kind != StrValue && out.Kind != ErrValue {
			return errors.Newf(`zincrby outputs the new score or an error, got %s`, out)
		}
	case SAdd, SRem, SIsMember:
		if out.Kind != IntValue || (out.Int != 0 && out.Int != 1) {
			return errors.Newf(`%s of one member outputs 0 or 1, got %s`, op.Kind, out)
		}
	case SCard:
		if out.Kind != IntValue || out.Int < 0 {
			return errors.Newf(`scard outputs a count, got %s`, out)
		}
	case ZRank:
		if out.Kind != NilValue && out.Kind != IntValue {
			return errors.Newf(`zrank outputs an integer or null, got %s`, out)
		}
	}
	return nil
}

// historyLineBytesMax bounds one line of a history file; an MGET of many
// large values is the longest legitimate line.
const historyLineBytesMax = 64 << 20

// knownFields are the JSON fields an operation may have. Anything else is
// rejected, so that a misspelt "retrun" is an error rather than an unknown
// outcome.
var knownFields = map[string]bool{
	"client": true, "op": true, "key": true, "keys": true, "value": true,
	"nx": true, "xx": true, "get": true, "from": true, "to": true,
	"amount": true, "overdraft": true, "call": true, "return": true, "deadline": true,
	"output": true, "meta": true,
}

// LineError is ReadHistory's error for a line it cannot read.
type LineError struct {
	Line   int    // 1-based, counting blank and comment lines
	Reason string // what is wrong, in the words of the format
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// ReadHistory parses a JSON Lines history. Blank lines and lines starting
// with '#' are skipped. The error for a malformed line is a *LineError: its
// number and what is wrong ("line 3: bad JSON: ...").
func ReadHistory(r io.Reader) ([]Op, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), historyLineBytesMax)
	var ops []Op
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		op, err := parseOp(text)
		if err != nil {
			return nil, &LineError{Line: line, Reason: err.Error()}
		}
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		return nil, &LineError{Line: line + 1, Reason: err.Error()}
	}
	return ops, nil
}

func parseOp(text []byte) (Op, error) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(text, &f); err != nil {
		return Op{}, errors.Wrap(err, "bad JSON")
	}
	names := make([]string, 0, len(f))
	for name := range f {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !knownFields[name] {
			return Op{}, errors.Newf("unknown field %q", name)
		}
	}
	var op Op
	var kind string
	if err := field(f, "op", true, &kind); err != nil {
		return Op{}, err
	}
	op.Kind = Kind(kind)
	if err := field(f, "client", true, &op.Client); err != nil {
		return Op{}, err
	}
	needKey := op.Kind == Set || op.Kind == Get || op.Kind == Del || op.Kind == IncrBy || op.Kind == GetDel || op.Kind.queueKind() || op.Kind.zsetKind() || op.Kind.setKind()
	if err := field(f, "key", needKey, &op.Key); err != nil {
		return Op{}, err
	}
	if err := field(f, "keys", op.Kind == MGet, &op.Keys); err != nil {
		return Op{}, err
	}
	switch op.Kind {
	case Set, LPush:
		if err := field(f, "value", true, &op.Value); err != nil {
			return Op{}, errors.Wrapf(err, "%s needs a string value", op.Kind)
		}
	case IncrBy:
		if err := field(f, "value", true, &op.Delta); err != nil {
			return Op{}, errors.Wrap(err, "incrby needs an integer value (the delta)")
		}
	case SAdd, SRem, SIsMember:
		if err := field(f, "value", true, &op.Value); err != nil {
			return Op{}, errors.Wrapf(err, "%s needs a member as its string value", op.Kind)
		}
	case ZAdd, ZIncrBy, ZScore, ZRank:
		// The member is the value; ZADD's score and ZINCRBY's delta the
		// amount.
		if err := field(f, "value", true, &op.Value); err != nil {
			return Op{}, errors.Wrapf(err, "%s needs a member as its string value", op.Kind)
		}
		if err := field(f, "amount", op.Kind == ZAdd || op.Kind == ZIncrBy, &op.Delta); err != nil {
			return Op{}, err
		}
	case Transfer:
		for _, fl := range []struct {
			name string
			dst  any
		}{{"from", &op.From}, {"to", &op.To}, {"amount", &op.Amount}} {
			if err := field(f, fl.name, true, fl.dst); err != nil {
				return Op{}, err
			}
		}
		if err := field(f, "overdraft", false, &op.Overdraft); err != nil {
			return Op{}, err
		}
	}
	for _, fl := range []struct {
		name string
		dst  *bool
	}{{"nx", &op.NX}, {"xx", &op.XX}, {"get", &op.GetOld}} {
		if err := field(f, fl.name, false, fl.dst); err != nil {
			return Op{}, err
		}
	}
	if err := field(f, "meta", false, &op.Meta); err != nil {
		return Op{}, err
	}
	if err := field(f, "call", true, &op.Call); err != nil {
		return Op{}, err
	}
	if err := field(f, "deadline", false, &op.Deadline); err != nil {
		return Op{}, err
	}
	ret, ok := f["return"]
	if !ok {
		return Op{}, errors.New(`missing field "return" (null when the outcome is unknown)`)
	}
	out, hasOut := f["output"]
	if string(ret) == "null" {
		op.Unknown = true
		if hasOut && string(out) != "null" {
			return Op{}, errors.New(`"output" must be absent when "return" is null (the outcome is unknown)`)
		}
	} else {
		if err := json.Unmarshal(ret, &op.Return); err != nil {
			return Op{}, errors.Wrap(err, `field "return" must be an integer or null`)
		}
		if !hasOut {
			return Op{}, errors.New(`missing field "output" (use null for a nil reply)`)
		}
		var err error
		if op.Kind == MGet {
			op.Outputs, err = parseOutputs(out)
		} else {
			op.Output, err = parseOutput(out, op.Kind == IncrBy)
		}
		if err != nil {
			return Op{}, err
		}
	}
	if err := op.validate(); err != nil {
		return Op{}, err
	}
	return op, nil
}

// field decodes f[name] into dst; an absent optional field leaves dst alone.
func field(f map[string]json.RawMessage, name string, required bool, dst any) error {
	raw, ok := f[name]
	if !ok || string(raw) == "null" {
		if required {
			return errors.Newf("missing field %q", name)
		}
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return errors.Wrapf(err, "field %q", name)
	}
	return nil
}

// parseOutput reads one output value. A string starting with "ERR" is an
// error reply only where an error is a legitimate output (INCRBY); elsewhere
// it is a stored value that happens to start that way.
func parseOutput(raw json.RawMessage, errAllowed bool) (Value, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case string(raw) == "null":
		return Nil, nil
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Value{}, errors.Wrap(err, `field "output"`)
		}
		if errAllowed && strings.HasPrefix(s, "ERR") {
			return Err(s), nil
		}
		return Str(s), nil
	default:
		var n int64
		if err := json.Unmarshal(raw, &n); err != nil {
			return Value{}, errors.Newf(`field "output" must be a string, an integer or null, got %s`, raw)
		}
		return Int(n), nil
	}
}

func parseOutputs(raw json.RawMessage) ([]Value, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, errors.New(`mget "output" must be a list of strings or nulls`)
	}
	vs := make([]Value, len(elems))
	for i, e := range elems {
		v, err := parseOutput(e, false)
		if err != nil {
			return nil, errors.Wrapf(err, "mget output %d", i)
		}
		vs[i] = v
	}
	return vs, nil
}

// jsonOp fixes the field order of a written history line.
type jsonOp struct {
	Client    int             `json:"client"`
	Op        Kind            `json:"op"`
	Key       *string         `json:"key,omitempty"`
	Keys      []string        `json:"keys,omitempty"`
	From      string          `json:"from,omitempty"`
	To        string          `json:"to,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	Amount    *int64          `json:"amount,omitempty"`
	Overdraft bool            `json:"overdraft,omitempty"`
	NX        bool            `json:"nx,omitempty"`
	XX        bool            `json:"xx,omitempty"`
	Get       bool            `json:"get,omitempty"`
	Call      int64           `json:"call"`
	Return    *int64          `json:"return"`
	Deadline  int64           `json:"deadline,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"`
	Meta      string          `json:"meta,omitempty"`
}

func marshalValue(v Value) json.RawMessage {
	var b []byte
	switch v.Kind {
	case NilValue:
		b = []byte("null")
	case IntValue:
		b = strconv.AppendInt(nil, v.Int, 10)
	default:
		b, _ = json.Marshal(v.Str) // a string always marshals
	}
	return b
}

// WriteHistory writes ops as JSON Lines that ReadHistory reads back.
func WriteHistory(w io.Writer, ops []Op) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range ops {
		op := &ops[i]
		if err := op.validate(); err != nil {
			return errors.Wrapf(err, "operation %d", i)
		}
		j := jsonOp{Client: op.Client, Op: op.Kind, Keys: op.Keys, NX: op.NX, XX: op.XX, Get: op.GetOld, Call: op.Call, Deadline: op.Deadline, Meta: op.Meta}
		switch op.Kind {
		case MGet:
		case Transfer:
			j.From, j.To, j.Amount, j.Overdraft = op.From, op.To, &op.Amount, op.Overdraft
		default:
			key := op.Key
			j.Key = &key
		}
		switch op.Kind {
		case Set, LPush:
			j.Value = marshalValue(Str(op.Value))
		case IncrBy:
			j.Value = marshalValue(Int(op.Delta))
		case ZAdd, ZIncrBy:
			j.Value, j.Amount = marshalValue(Str(op.Value)), &op.Delta
		case ZScore, ZRank, SAdd, SRem, SIsMember:
			j.Value = marshalValue(Str(op.Value))
		}
		if !op.Unknown {
			ret := op.Return
			j.Return = &ret
			if op.Kind == MGet {
				elems := make([]json.RawMessage, len(op.Outputs))
				for k, v := range op.Outputs {
					elems[k] = marshalValue(v)
				}
				b, err := json.Marshal(elems)
				if err != nil {
					return errors.Wrapf(err, "operation %d", i)
				}
				j.Output = b
			} else {
				j.Output = marshalValue(op.Output)
			}
		}
		if err := enc.Encode(&j); err != nil {
			return errors.Wrapf(err, "write operation %d", i)
		}
	}
	return errors.Wrap(bw.Flush(), "write history")
}

// String describes op in one line, as explanations quote it:
// `client 2 [1200,1500] get x -> "7"`.
func (op *Op) String() string {
	ret := "?"
	if op.Deadline != 0 {
		ret = "?<=" + strconv.FormatInt(op.Deadline, 10)
	}
	if !op.Unknown {
		ret = strconv.FormatInt(op.Return, 10)
	}
	return fmt.Sprintf("client %d [%d,%s] %s", op.Client, op.Call, ret, describeCall(op))
}

func describeCall(op *Op) string {
	var b strings.Builder
	switch op.Kind {
	case Set:
		fmt.Fprintf(&b, "set %s %q", op.Key, op.Value)
		if op.NX {
			b.WriteString(" nx")
		}
		if op.XX {
			b.WriteString(" xx")
		}
		if op.GetOld {
			b.WriteString(" get")
		}
	case IncrBy:
		fmt.Fprintf(&b, "incrby %s %d", op.Key, op.Delta)
	case MGet:
		fmt.Fprintf(&b, "mget %s", strings.Join(op.Keys, " "))
	case LPush:
		fmt.Fprintf(&b, "lpush %s %q", op.Key, op.Value)
	case ZAdd, ZIncrBy:
		fmt.Fprintf(&b, "%s %s %d %q", op.Kind, op.Key, op.Delta, op.Value)
	case ZScore, ZRank, SAdd, SRem, SIsMember:
		fmt.Fprintf(&b, "%s %s %q", op.Kind, op.Key, op.Value)
	case Transfer:
		fmt.Fprintf(&b, "transfer %s->%s %d", op.From, op.To, op.Amount)
		if op.Overdraft {
			b.WriteString(" overdraft")
		}
	default:
		fmt.Fprintf(&b, "%s %s", op.Kind, op.Key)
	}
	b.WriteString(" -> ")
	switch {
	case op.Unknown:
		b.WriteString("unknown")
	case op.Kind == MGet:
		parts := make([]string, len(op.Outputs))
		for i, v := range op.Outputs {
			parts[i] = v.String()
		}
		b.WriteString("[" + strings.Join(parts, " ") + "]")
	default:
		b.WriteString(op.Output.String())
	}
	return b.String()
}

// DeadlinesFromNextOp gives each unknown outcome without a deadline the
// return time of its client's next completed operation, in place. It is
// sound only for a recorder whose client ids each stand for one connection
// that executes in order and survives the lost reply: the server ran (or
// dropped) the unknown command before it answered the next one on that
// connection. keel's single-node simulator is such a recorder (a crash
// loses the connection, but recovery finishes before the client's next
// command is served). An unknown outcome with no later completed operation
// of its client keeps no deadline.
func DeadlinesFromNextOp(ops []Op) {
	byClient := map[int][]int{}
	for i := range ops {
		byClient[ops[i].Client] = append(byClient[ops[i].Client], i)
	}
	for _, idx := range byClient {
		sort.SliceStable(idx, func(a, b int) bool { return ops[idx[a]].Call < ops[idx[b]].Call })
		next := int64(0) // return of the next completed operation; 0: none
		for k := len(idx) - 1; k >= 0; k-- {
			op := &ops[idx[k]]
			switch {
			case !op.Unknown:
				next = op.Return
			case op.Deadline == 0 && next != 0:
				op.Deadline = next
			}
		}
	}
}
