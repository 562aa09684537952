package cluster

import (
	"strings"
	"testing"
)

func TestSlotCRC16(t *testing.T) {
	// The check value of CRC-16/XMODEM, also in Redis's crc16.c.
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("crc16(123456789) = %#04x, want 0x31c3", got)
	}
	if got := crc16(nil); got != 0 {
		t.Fatalf("crc16(empty) = %#04x, want 0", got)
	}
}

// slotVectors were produced by redis-server 7.0.15 (cluster-enabled) with
// `redis-cli CLUSTER KEYSLOT <key>`.
var slotVectors = []struct {
	key  string
	slot int
}{
	{"", 0},
	{"a", 15495},
	{"foo", 12182},
	{"bar", 5061},
	{"hello", 866},
	{"123456789", 12739},
	{"{user1000}.following", 3443},
	{"{user1000}.followers", 3443},
	{"foo{}{bar}", 8363},
	{"foo{{bar}}zap", 4015},
	{"foo{bar}{zap}", 5061},
	{"{bar", 4015},
	{"{}", 15257},
	{"}{", 12793},
	{"{a}", 15495},
	{"key:000001", 5493},
	{"Ünïcode", 11467},
	{"somekey", 11058},
	{"{", 4092},
	{"}", 12090},
	{"a{b}c", 3300},
	{"{{}}", 4092},
	{"abc{", 3048},
	{"{}abc", 5980},
	{"\xff\xfe\x01", 12172},
	{"{\xc3\xa9}tail", 10180},
	{"\xc3\xa9", 10180},
	{strings.Repeat("x", 300), 11216},
}

func TestSlotKeySlotMatchesRedis(t *testing.T) {
	for _, v := range slotVectors {
		if got := KeySlot([]byte(v.key)); got != v.slot {
			t.Errorf("KeySlot(%q) = %d, want %d (redis-server 7.0.15)", v.key, got, v.slot)
		}
	}
}

func TestSlotHashTags(t *testing.T) {
	same := func(a, b string) {
		t.Helper()
		if KeySlot([]byte(a)) != KeySlot([]byte(b)) {
			t.Errorf("KeySlot(%q) = %d, KeySlot(%q) = %d: want equal", a, KeySlot([]byte(a)), b, KeySlot([]byte(b)))
		}
	}
	same("{user1000}.following", "{user1000}.followers")
	same("{user1000}.following", "user1000")
	if KeySlot([]byte("foo{}{bar}")) != int(crc16([]byte("foo{}{bar}"))&(SlotCount-1)) {
		t.Error("foo{}{bar}: an empty first tag must hash the whole key")
	}
	same("foo{{bar}}zap", "{bar")
	same("foo{bar}{zap}", "bar")
	for _, k := range []string{"", "x", "{", "}", "{}", "{a}", strings.Repeat("z", 1000)} {
		if s := KeySlot([]byte(k)); s < 0 || s >= SlotCount {
			t.Errorf("KeySlot(%q) = %d, out of range", k, s)
		}
	}
}

func slotArgv(args ...string) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = []byte(a)
	}
	return out
}

func TestSlotCommandSlot(t *testing.T) {
	foo, bar := KeySlot([]byte("foo")), KeySlot([]byte("bar"))
	for _, c := range []struct {
		args []string
		slot int
		err  string
	}{
		{[]string{"GET", "foo"}, foo, ""},
		{[]string{"get", "foo"}, foo, ""},
		{[]string{"SET", "foo", "bar"}, foo, ""}, // the value is not a key
		{[]string{"SET", "foo", "v", "EX", "10"}, foo, ""},
		{[]string{"MGET", "{t}a", "{t}b", "t"}, KeySlot([]byte("t")), ""},
		{[]string{"MGET", "foo", "bar"}, -1, CrossSlotMsg},
		{[]string{"DEL", "foo", "foo"}, foo, ""},
		{[]string{"MSET", "{t}a", "foo", "{t}b", "bar"}, KeySlot([]byte("t")), ""}, // values skipped
		{[]string{"MSET", "foo", "1", "bar", "2"}, -1, CrossSlotMsg},
		{[]string{"RENAME", "foo", "bar"}, -1, CrossSlotMsg},
		{[]string{"RENAME", "{bar}x", "bar"}, bar, ""},
		{[]string{"DBSIZE"}, -1, ""},
		{[]string{"SCAN", "0"}, -1, ""},
		{[]string{"PING"}, -1, ""}, // not an engine command
		{[]string{"NOSUCHCMD", "k"}, -1, ""},
		{[]string{"GET"}, -1, ""},           // wrong arity: the engine answers
		{[]string{"GET", "a", "b"}, -1, ""}, // wrong arity
		{[]string{"MSET", "foo"}, -1, ""},   // wrong arity
		{nil, -1, ""},
		// FCALL name numkeys key... arg...
		{[]string{"FCALL", "f", "2", "{u}1", "{u}2", "foo", "bar"}, KeySlot([]byte("u")), ""},
		{[]string{"fcall_ro", "f", "1", "foo", "bar"}, foo, ""},
		{[]string{"FCALL", "f", "2", "foo", "bar"}, -1, CrossSlotMsg},
		{[]string{"FCALL", "f", "0", "foo", "bar"}, -1, ""},
		{[]string{"FCALL", "f", "+1", "foo"}, foo, ""},
		{[]string{"FCALL", "f", "-0", "foo"}, -1, ""},
		{[]string{"FCALL", "f", "-1", "foo"}, -1, ""},
		{[]string{"FCALL", "f", "3", "foo"}, -1, ""},
		{[]string{"FCALL", "f", "x", "foo"}, -1, ""},
		{[]string{"FCALL", "f", "", "foo"}, -1, ""},
		{[]string{"FCALL", "f", "99999999999999999999999", "foo"}, -1, ""},
		{[]string{"FCALL", "f"}, -1, ""},
		{[]string{"FUNCTION", "LIST"}, -1, ""},
		// numkeys commands: every key counts, values and options do not.
		{[]string{"ZUNIONSTORE", "{t}d", "2", "{t}a", "{t}b", "WEIGHTS", "1", "2"}, KeySlot([]byte("t")), ""},
		{[]string{"ZUNIONSTORE", "{t}d", "2", "{t}a", "foo"}, -1, CrossSlotMsg},
		{[]string{"ZUNION", "2", "foo", "bar"}, -1, CrossSlotMsg},
		{[]string{"ZINTERCARD", "1", "foo", "LIMIT", "1"}, foo, ""},
		{[]string{"LMPOP", "2", "{t}a", "{t}b", "LEFT"}, KeySlot([]byte("t")), ""},
		{[]string{"LMPOP", "2", "foo", "bar", "LEFT"}, -1, CrossSlotMsg},
		{[]string{"SINTERCARD", "1", "bar"}, bar, ""},
		{[]string{"ZMPOP", "1", "foo", "MIN"}, foo, ""},
		{[]string{"LMPOP", "5", "foo", "LEFT"}, -1, ""}, // a bad count: the engine answers
		{[]string{"SMOVE", "foo", "bar", "m"}, -1, CrossSlotMsg},
		{[]string{"BITOP", "AND", "{t}d", "{t}a", "foo"}, -1, CrossSlotMsg},
		{[]string{"LCS", "foo", "{foo}x"}, foo, ""},
	} {
		slot, msg := CommandSlot(slotArgv(c.args...))
		if slot != c.slot || msg != c.err {
			t.Errorf("CommandSlot(%q) = %d, %q; want %d, %q", c.args, slot, msg, c.slot, c.err)
		}
	}
}

func TestSlotTxnSlot(t *testing.T) {
	foo := KeySlot([]byte("foo"))
	for _, c := range []struct {
		name string
		cmds [][][]byte
		slot int
		err  string
	}{
		{"empty", nil, -1, ""},
		{"keyless", [][][]byte{slotArgv("DBSIZE"), slotArgv("PING")}, -1, ""},
		{"one slot", [][][]byte{slotArgv("SET", "foo", "1"), slotArgv("DBSIZE"), slotArgv("INCR", "{foo}n")}, foo, ""},
		{"two slots", [][][]byte{slotArgv("SET", "foo", "1"), slotArgv("GET", "bar")}, -1, CrossSlotMsg},
		{"crossslot inside", [][][]byte{slotArgv("MGET", "foo", "bar")}, -1, CrossSlotMsg},
		{"fcall joins", [][][]byte{slotArgv("GET", "foo"), slotArgv("FCALL", "f", "1", "{foo}x")}, foo, ""},
	} {
		slot, msg := TxnSlot(c.cmds)
		if slot != c.slot || msg != c.err {
			t.Errorf("%s: TxnSlot = %d, %q; want %d, %q", c.name, slot, msg, c.slot, c.err)
		}
	}
}

func TestSlotNoAllocs(t *testing.T) {
	get := slotArgv("GET", "user:1000")
	set := slotArgv("SET", "user:1000", "value")
	fcall := slotArgv("FCALL", "f", "1", "user:1000", "arg")
	txn := [][][]byte{set, get}
	for name, f := range map[string]func(){
		"GET":   func() { CommandSlot(get) },
		"SET":   func() { CommandSlot(set) },
		"FCALL": func() { CommandSlot(fcall) },
		"MULTI": func() { TxnSlot(txn) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per routing, want 0", name, n)
		}
	}
}

func BenchmarkSlotCommandSlotGet(b *testing.B) {
	get := slotArgv("GET", "user:1000")
	b.ReportAllocs()
	for b.Loop() {
		CommandSlot(get)
	}
}
