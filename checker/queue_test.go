package checker

import (
	"strings"
	"testing"
)

// queueOps builds a history: each line "client call return op key [value] -> output".
func queueOp(client int, call, ret int64, kind Kind, key, value string, out Value) Op {
	return Op{Client: client, Call: call, Return: ret, Kind: kind, Key: key, Value: value, Output: out}
}

func TestQueueModel(t *testing.T) {
	// Two producers, a consumer popping the tail and a blocked consumer
	// served the head while a push overlaps it.
	good := []Op{
		queueOp(1, 0, 10, LPush, "q", "a", Int(1)),
		queueOp(2, 5, 15, LPush, "q", "b", Int(2)),
		queueOp(3, 20, 30, RPop, "q", "", Str("a")),
		queueOp(4, 1, 40, BLPop, "q", "", Str("b")), // blocked from 1, served at some point after b
		queueOp(3, 41, 50, RPop, "q", "", Nil),
		queueOp(4, 41, 60, BLPop, "q", "", Nil), // timed out on an empty list
		queueOp(1, 61, 70, LPush, "q", "c", Int(1)),
		queueOp(5, 0, 5, LPush, "other", "x", Int(1)),
	}
	if res := mustCheck(t, good, ModelQueue); res.Verdict != Ok {
		t.Fatalf("a legal queue history: %s\n%s", res.Verdict, res.Explanation)
	}
	porcupineAgrees(t, good, ModelQueue, Ok)

	for name, bad := range map[string][]Op{
		// An element popped but answered as a timeout: nobody ever gets it
		// and the next push counts it.
		"lost pop": {
			queueOp(1, 0, 10, LPush, "q", "a", Int(1)),
			queueOp(2, 11, 20, BLPop, "q", "", Nil),
			queueOp(1, 21, 30, LPush, "q", "b", Int(1)),
		},
		// One element served to two clients.
		"duplicated pop": {
			queueOp(1, 0, 10, LPush, "q", "a", Int(1)),
			queueOp(2, 11, 20, BLPop, "q", "", Str("a")),
			queueOp(3, 11, 20, RPop, "q", "", Str("a")),
		},
		// FIFO broken: the tail is the oldest element.
		"wrong end": {
			queueOp(1, 0, 10, LPush, "q", "a", Int(1)),
			queueOp(1, 11, 20, LPush, "q", "b", Int(2)),
			queueOp(2, 21, 30, RPop, "q", "", Str("b")),
		},
	} {
		res := mustCheck(t, bad, ModelQueue)
		if res.Verdict != Illegal || res.Key != "q" {
			t.Errorf("%s: %s (key %q), want illegal on q", name, res.Verdict, res.Key)
		}
		porcupineAgrees(t, bad, ModelQueue, Illegal)
	}

	// An unknown push may or may not have happened.
	unknown := []Op{
		{Client: 1, Call: 0, Kind: LPush, Key: "q", Value: "a", Unknown: true},
		queueOp(2, 5, 10, RPop, "q", "", Nil),
		queueOp(2, 11, 20, RPop, "q", "", Str("a")),
	}
	if res := mustCheck(t, unknown, ModelQueue); res.Verdict != Ok {
		t.Fatalf("an unknown push seen later: %s\n%s", res.Verdict, res.Explanation)
	}

	if _, err := Check([]Op{queueOp(1, 0, 1, Get, "q", "", Nil)}, Options{Model: ModelQueue}); err == nil || !strings.Contains(err.Error(), "queue model does not take") {
		t.Errorf("a GET under the queue model: %v", err)
	}
	if _, err := Check([]Op{queueOp(1, 0, 1, RPop, "q", "", Nil)}, Options{Model: ModelKV}); err == nil || !strings.Contains(err.Error(), "needs the queue model") {
		t.Errorf("an RPOP under the kv model: %v", err)
	}
}

func TestQueueHistoryJSON(t *testing.T) {
	in := `{"client":1,"op":"lpush","key":"q","value":"a","call":0,"return":5,"output":1}
{"client":2,"op":"blpop","key":"q","call":1,"return":9,"output":"a"}
{"client":2,"op":"rpop","key":"q","call":10,"return":11,"output":null}
`
	ops, err := ReadHistory(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if res := mustCheck(t, ops, ModelQueue); res.Verdict != Ok {
		t.Fatalf("%s: %s", res.Verdict, res.Explanation)
	}
}

// The pruned first pass (queuePruned) only ever answers Ok: an unknown pop
// that took an element fails the pruned history, and the whole history is
// then checked and found linearizable; an illegal history stays illegal
// with unknown operations around it.
func TestQueuePrunedFirstPass(t *testing.T) {
	unknown := func(o Op) Op { o.Unknown = true; return o }
	tookIt := []Op{
		queueOp(1, 0, 10, LPush, "q", "a", Int(1)),
		unknown(queueOp(2, 11, 0, RPop, "q", "", Nil)), // took a, the client never heard
		queueOp(3, 50, 60, RPop, "q", "", Nil),
		unknown(queueOp(4, 12, 0, LPush, "q", "z", Nil)), // never seen: dropped by the pruning
	}
	if p := queuePruned(tookIt, false); len(p) != 2 {
		t.Fatalf("pruned to %d operations, want the 2 of known outcome", len(p))
	}
	if res := mustCheck(t, tookIt, ModelQueue); res.Verdict != Ok || res.Ops != 4 || res.UnknownOps != 2 {
		t.Fatalf("an unknown pop that took the element: %s (%d ops, %d unknown)\n%s", res.Verdict, res.Ops, res.UnknownOps, res.Explanation)
	}
	bad := []Op{
		queueOp(1, 0, 10, LPush, "q", "a", Int(1)),
		unknown(queueOp(2, 11, 0, BLPop, "q", "", Nil)),
		unknown(queueOp(4, 12, 0, LPush, "q", "z", Nil)),
		queueOp(3, 50, 60, RPop, "q", "", Str("b")), // never pushed
	}
	if res := mustCheck(t, bad, ModelQueue); res.Verdict != Illegal {
		t.Fatalf("a pop of an element never pushed: %s", res.Verdict)
	}
}
