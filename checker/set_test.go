package checker

import (
	"bytes"
	"testing"
)

func sop(client int, call, ret int64, kind Kind, key, member string, out Value) Op {
	return Op{Client: client, Call: call, Return: ret, Kind: kind, Key: key, Value: member, Output: out}
}

func TestSetModel(t *testing.T) {
	good := []Op{
		sop(1, 0, 10, SAdd, "s", "a", Int(1)),
		sop(2, 0, 10, SAdd, "s", "a", Int(0)), // concurrent: one of the two added it
		sop(1, 11, 20, SAdd, "s", "b", Int(1)),
		sop(2, 11, 20, SCard, "s", "", Int(2)),
		sop(1, 21, 30, SPop, "s", "", Str("b")),
		sop(2, 21, 30, SIsMember, "s", "a", Int(1)),
		sop(1, 31, 40, SRem, "s", "a", Int(1)),
		sop(1, 41, 50, SPop, "s", "", Nil),
		sop(1, 51, 60, SAdd, "s", "c", Int(1)),
		sop(1, 51, 60, SAdd, "s", "d", Int(1)),
		{Client: 3, Call: 61, Kind: SPop, Key: "s", Unknown: true}, // took c or d, or nothing
		sop(1, 70, 80, SCard, "s", "", Int(1)),
		sop(1, 81, 90, SIsMember, "s", "d", Int(0)), // so it took d
		sop(1, 91, 99, SPop, "s", "", Str("c")),
	}
	if res := mustCheck(t, good, ModelSet); res.Verdict != Ok {
		t.Fatalf("a legal history: %s\n%s", res.Verdict, res.Explanation)
	}
	porcupineAgrees(t, good, ModelSet, Ok)
	for name, bad := range map[string][]Op{
		"a member added twice": {
			sop(1, 0, 10, SAdd, "s", "a", Int(1)),
			sop(1, 11, 20, SAdd, "s", "a", Int(1)),
		},
		"popped twice": {
			sop(1, 0, 10, SAdd, "s", "a", Int(1)),
			sop(2, 11, 20, SPop, "s", "", Str("a")),
			sop(3, 11, 20, SPop, "s", "", Str("a")),
		},
		"counted wrong": {
			sop(1, 0, 10, SAdd, "s", "a", Int(1)),
			sop(1, 11, 20, SAdd, "s", "b", Int(1)),
			sop(1, 21, 30, SCard, "s", "", Int(3)),
		},
		"an unknown pop took one member, not two": {
			sop(1, 0, 10, SAdd, "s", "a", Int(1)),
			sop(1, 11, 20, SAdd, "s", "b", Int(1)),
			{Client: 3, Call: 21, Kind: SPop, Key: "s", Unknown: true},
			sop(1, 30, 40, SIsMember, "s", "a", Int(0)),
			sop(1, 41, 50, SIsMember, "s", "b", Int(0)),
		},
	} {
		res := mustCheck(t, bad, ModelSet)
		if res.Verdict != Illegal {
			t.Errorf("%s: %s, want illegal", name, res.Verdict)
		}
		porcupineAgrees(t, bad, ModelSet, Illegal)
	}
	var buf bytes.Buffer
	if err := WriteHistory(&buf, good); err != nil {
		t.Fatal(err)
	}
	back, err := ReadHistory(&buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if res := mustCheck(t, back, ModelSet); res.Verdict != Ok || len(back) != len(good) {
		t.Fatalf("read back: %s, %d ops", res.Verdict, len(back))
	}
}
