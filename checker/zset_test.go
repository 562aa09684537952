package checker

import (
	"bytes"
	"testing"
)

func zop(client int, call, ret int64, kind Kind, key, member string, n int64, out Value) Op {
	return Op{Client: client, Call: call, Return: ret, Kind: kind, Key: key, Value: member, Delta: n, Output: out}
}

func TestZSetModel(t *testing.T) {
	good := []Op{
		zop(1, 0, 10, ZAdd, "z", "b", 5, Int(1)),
		zop(2, 0, 10, ZAdd, "z", "a", 5, Int(1)),
		zop(1, 11, 20, ZRank, "z", "b", 0, Int(1)), // ties ranked by member
		zop(2, 11, 20, ZIncrBy, "z", "a", 3, Str("8")),
		zop(1, 21, 30, ZRank, "z", "b", 0, Int(0)),
		zop(1, 31, 40, ZScore, "z", "a", 0, Str("8")),
		zop(2, 31, 45, ZAdd, "z", "c", -1, Int(1)),
		zop(3, 32, 50, ZPopMin, "z", "", 0, Str("c -1")), // overlaps the add
		zop(1, 51, 60, ZRank, "z", "c", 0, Nil),
		zop(1, 61, 70, ZAdd, "z", "a", 1, Int(0)),
		zop(1, 71, 80, ZPopMin, "z", "", 0, Str("a 1")),
		zop(1, 81, 90, ZPopMin, "z", "", 0, Str("b 5")),
		zop(1, 91, 99, ZPopMin, "z", "", 0, Nil),
	}
	if res := mustCheck(t, good, ModelZSet); res.Verdict != Ok {
		t.Fatalf("a legal history: %s\n%s", res.Verdict, res.Explanation)
	}
	porcupineAgrees(t, good, ModelZSet, Ok)
	for name, bad := range map[string][]Op{
		"wrong rank": {
			zop(1, 0, 10, ZAdd, "z", "b", 5, Int(1)),
			zop(1, 11, 20, ZAdd, "z", "a", 5, Int(1)),
			zop(1, 21, 30, ZRank, "z", "b", 0, Int(0)),
		},
		"popped twice": {
			zop(1, 0, 10, ZAdd, "z", "a", 1, Int(1)),
			zop(2, 11, 20, ZPopMin, "z", "", 0, Str("a 1")),
			zop(3, 11, 20, ZPopMin, "z", "", 0, Str("a 1")),
		},
		"lost increment": {
			zop(1, 0, 10, ZIncrBy, "z", "a", 2, Str("2")),
			zop(2, 0, 10, ZIncrBy, "z", "a", 2, Str("2")),
		},
	} {
		res := mustCheck(t, bad, ModelZSet)
		if res.Verdict != Illegal {
			t.Errorf("%s: %s, want illegal", name, res.Verdict)
		}
		porcupineAgrees(t, bad, ModelZSet, Illegal)
	}
	var buf bytes.Buffer
	if err := WriteHistory(&buf, good); err != nil {
		t.Fatal(err)
	}
	back, err := ReadHistory(&buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if res := mustCheck(t, back, ModelZSet); res.Verdict != Ok || len(back) != len(good) || back[0].Delta != 5 || back[0].Value != "b" {
		t.Fatalf("read back: %s, %+v", res.Verdict, back[0])
	}
}
