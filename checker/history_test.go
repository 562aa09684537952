package checker

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestHistoryRoundTrip(t *testing.T) {
	ops := []Op{
		{Client: 1, Kind: Set, Key: "x", Value: "7", Call: 1000, Return: 1800, Output: Str("OK")},
		{Client: 2, Kind: Set, Key: "", Value: "", NX: true, GetOld: true, Call: 1, Return: 2, Output: Nil},
		{Client: 2, Kind: Set, Key: "y", Value: "a\"b\n<tag>", XX: true, Call: 1, Return: 2, Output: Nil},
		{Client: 3, Kind: IncrBy, Key: "n", Delta: -9223372036854775808, Call: 900, Return: 2000, Output: Int(-9223372036854775808)},
		{Client: 3, Kind: IncrBy, Key: "s", Delta: 1, Call: 900, Return: 2000, Output: Err("ERR value is not an integer or out of range")},
		{Client: 4, Kind: Del, Key: "x", Call: 2100, Unknown: true},
		{Client: 5, Kind: Get, Key: "x", Call: 1, Return: 2, Output: Str("ERR not an error: a stored value")},
		{Client: 5, Kind: GetDel, Key: "x", Call: 1, Return: 2, Output: Nil, Meta: "node 2"},
		{Client: 6, Kind: MGet, Keys: []string{"a", "b"}, Call: 5, Return: 9, Outputs: []Value{Str("1"), Nil}},
		{Client: 7, Kind: Transfer, From: "a", To: "b", Amount: 5, Overdraft: true, Call: 5, Return: 9, Output: Str(InsufficientFunds)},
		{Client: 7, Kind: Transfer, From: "a", To: "b", Amount: 5, Call: 10, Unknown: true},
	}
	var buf bytes.Buffer
	if err := WriteHistory(&buf, ops); err != nil {
		t.Fatal(err)
	}
	got, err := ReadHistory(&buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(got, ops) {
		t.Fatalf("round trip changed the history:\n got %+v\nwant %+v", got, ops)
	}
}

func TestHistoryIssueExample(t *testing.T) {
	in := `{"client": 1, "op": "set", "key": "x", "value": "7", "call": 1000, "return": 1800, "output": "OK"}
{"client": 2, "op": "get", "key": "x", "call": 1200, "return": 1500, "output": "7"}
{"client": 3, "op": "incrby", "key": "n", "value": 5, "call": 900, "return": 2000, "output": 5}
{"client": 4, "op": "del", "key": "x", "call": 2100, "return": null}
`
	ops, err := ReadHistory(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Op{
		{Client: 1, Kind: Set, Key: "x", Value: "7", Call: 1000, Return: 1800, Output: Str("OK")},
		{Client: 2, Kind: Get, Key: "x", Call: 1200, Return: 1500, Output: Str("7")},
		{Client: 3, Kind: IncrBy, Key: "n", Delta: 5, Call: 900, Return: 2000, Output: Int(5)},
		{Client: 4, Kind: Del, Key: "x", Call: 2100, Unknown: true},
	}
	if !reflect.DeepEqual(ops, want) {
		t.Fatalf("got %+v\nwant %+v", ops, want)
	}
}

func TestReadHistoryErrors(t *testing.T) {
	ok := `{"client": 1, "op": "get", "key": "x", "call": 1, "return": 2, "output": null}`
	for _, tc := range []struct {
		name, line, want string
	}{
		{"bad json", `{"client": 1,`, "bad JSON"},
		{"not an object", `[1, 2]`, "bad JSON"},
		{"missing op", `{"client": 1, "key": "x", "call": 1, "return": 2, "output": null}`, `missing field "op"`},
		{"missing client", `{"op": "get", "key": "x", "call": 1, "return": 2, "output": null}`, `missing field "client"`},
		{"missing key", `{"client": 1, "op": "get", "call": 1, "return": 2, "output": null}`, `missing field "key"`},
		{"missing call", `{"client": 1, "op": "get", "key": "x", "return": 2, "output": null}`, `missing field "call"`},
		{"missing return", `{"client": 1, "op": "get", "key": "x", "call": 1, "output": null}`, `missing field "return"`},
		{"missing output", `{"client": 1, "op": "get", "key": "x", "call": 1, "return": 2}`, `missing field "output"`},
		{"output with unknown return", `{"client": 1, "op": "get", "key": "x", "call": 1, "return": null, "output": "a"}`, `must be absent`},
		{"unknown op", `{"client": 1, "op": "append", "key": "x", "call": 1, "return": 2, "output": 1}`, `unknown op "append"`},
		{"unknown field", `{"client": 1, "op": "get", "key": "x", "call": 1, "retrun": 2, "return": 2, "output": null}`, `unknown field "retrun"`},
		{"float time", `{"client": 1, "op": "get", "key": "x", "call": 1.5, "return": 2, "output": null}`, `field "call"`},
		{"return before call", `{"client": 1, "op": "get", "key": "x", "call": 3, "return": 2, "output": null}`, `before "call"`},
		{"set value not a string", `{"client": 1, "op": "set", "key": "x", "value": 7, "call": 1, "return": 2, "output": "OK"}`, "string value"},
		{"incrby value not an integer", `{"client": 1, "op": "incrby", "key": "x", "value": "7", "call": 1, "return": 2, "output": 7}`, "integer value"},
		{"nx and xx", `{"client": 1, "op": "set", "key": "x", "value": "a", "nx": true, "xx": true, "call": 1, "return": 2, "output": null}`, `both "nx" and "xx"`},
		{"nx on get", `{"client": 1, "op": "get", "key": "x", "nx": true, "call": 1, "return": 2, "output": null}`, `apply only to set`},
		{"set output not OK", `{"client": 1, "op": "set", "key": "x", "value": "a", "call": 1, "return": 2, "output": "a"}`, `"OK" or null`},
		{"del output 2", `{"client": 1, "op": "del", "key": "x", "call": 1, "return": 2, "output": 2}`, `0 or 1`},
		{"get output int", `{"client": 1, "op": "get", "key": "x", "call": 1, "return": 2, "output": 5}`, `string or null`},
		{"incrby output not ERR", `{"client": 1, "op": "incrby", "key": "x", "value": 1, "call": 1, "return": 2, "output": "WRONG"}`, `starting with "ERR"`},
		{"mget length", `{"client": 1, "op": "mget", "keys": ["a", "b"], "call": 1, "return": 2, "output": ["1"]}`, `2 keys but 1 outputs`},
		{"mget no keys", `{"client": 1, "op": "mget", "keys": [], "call": 1, "return": 2, "output": []}`, `non-empty`},
		{"transfer output", `{"client": 1, "op": "transfer", "from": "a", "to": "b", "amount": 1, "call": 1, "return": 2, "output": "nope"}`, `"OK" or "insufficient"`},
		{"transfer to itself", `{"client": 1, "op": "transfer", "from": "a", "to": "a", "amount": 1, "call": 1, "return": 2, "output": "OK"}`, `same account`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok + "\n\n# comment\n" + tc.line + "\n" + ok + "\n"
			_, err := ReadHistory(strings.NewReader(in))
			if err == nil {
				t.Fatalf("accepted %s", tc.line)
			}
			var le *LineError
			if !errors.As(err, &le) || le.Line != 4 || !strings.HasPrefix(err.Error(), "line 4: ") || !strings.Contains(le.Reason, tc.want) {
				t.Fatalf("error %q: want line 4 and %q", err, tc.want)
			}
		})
	}
}

func TestWriteHistoryRejectsInvalid(t *testing.T) {
	err := WriteHistory(&bytes.Buffer{}, []Op{{Client: 1, Kind: Del, Key: "x", Call: 1, Return: 2, Output: Str("OK")}})
	if err == nil || !strings.Contains(err.Error(), "operation 0") {
		t.Fatalf("got %v", err)
	}
}

func TestDeadlinesFromNextOp(t *testing.T) {
	ops := []Op{
		{Client: 1, Kind: Set, Key: "x", Value: "a", Call: 0, Unknown: true},
		{Client: 2, Kind: Get, Key: "x", Call: 5, Return: 50, Output: Nil},
		{Client: 1, Kind: Del, Key: "x", Call: 20, Unknown: true, Deadline: 25},
		{Client: 1, Kind: Get, Key: "x", Call: 30, Return: 40, Output: Nil},
		{Client: 1, Kind: Del, Key: "x", Call: 60, Unknown: true},
		{Client: 2, Kind: Del, Key: "x", Call: 55, Unknown: true},
	}
	DeadlinesFromNextOp(ops)
	got := []int64{ops[0].Deadline, ops[2].Deadline, ops[4].Deadline, ops[5].Deadline}
	if want := []int64{40, 25, 0, 0}; !reflect.DeepEqual(got, want) {
		t.Fatalf("deadlines %v, want %v", got, want)
	}
	for i := range ops {
		if err := ops[i].validate(); err != nil {
			t.Fatal(err)
		}
	}
}
