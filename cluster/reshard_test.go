package cluster

import (
	"strings"
	"testing"
)

// step renders what Next asks for as "g<group> STEP args...".
func nextStep(m *Reshard) string {
	g, argv, done := m.Next()
	if done {
		return "done"
	}
	var b strings.Builder
	b.WriteString("g")
	b.WriteString(string(rune('0' + g)))
	for _, a := range argv[3:] {
		b.WriteString(" ")
		b.WriteString(string(a))
	}
	return b.String()
}

func TestReshardDriverSteps(t *testing.T) {
	m := NewReshard(SlotRange{First: 10, Last: 20}, 1, 2, 2)
	expect := func(want string) {
		t.Helper()
		if got := nextStep(m); got != want {
			t.Fatalf("next = %q, want %q", got, want)
		}
	}
	// The argv names the group it is sent to.
	if g, argv, _ := m.Next(); g != 2 || string(argv[0]) != "CLUSTER" || string(argv[1]) != "RESHARD" || string(argv[2]) != "2" {
		t.Fatalf("first command: group %d argv %q", g, argv)
	}
	expect("g2 IMPORTING 10 20 1")
	m.Reply("TRYAGAIN no leader", nil) // retryable: same step again
	expect("g2 IMPORTING 10 20 1")
	m.Reply("", nil)
	expect("g1 MIGRATING 10 20 2")
	m.Reply("ERR leadership changed before the write committed; it may or may not have been applied", nil)
	expect("g1 MIGRATING 10 20 2")
	m.Reply("", nil)
	expect("g1 MOVEKEYS 10 20 2")
	m.Reply("", bs("a", "1", "0", "b", "2", "1767225600000"))
	expect("g2 IMPORTKEYS a 1 0 b 2 1767225600000")
	m.Reply("IOERR connection lost", nil)
	expect("g2 IMPORTKEYS a 1 0 b 2 1767225600000")
	m.Reply("", nil)
	expect("g1 DELKEYS a b")
	if m.Moved() != 0 {
		t.Fatalf("moved %d before DELKEYS", m.Moved())
	}
	m.Reply("", nil)
	if m.Moved() != 2 {
		t.Fatalf("moved %d after DELKEYS", m.Moved())
	}
	expect("g1 MOVEKEYS 10 20 2")
	m.Reply("", bs("c", "3", "0"))
	expect("g2 IMPORTKEYS c 3 0")
	m.Reply("", nil)
	expect("g1 DELKEYS c")
	m.Reply("MOVED 10 127.0.0.1:7001", nil)
	expect("g1 DELKEYS c")
	m.Reply("", nil)
	expect("g1 MOVEKEYS 10 20 2")
	m.Reply("", nil) // nothing left: IMPORTKEYS is skipped
	expect("g2 NODE 10 20 2")
	m.Reply("", nil)
	expect("g1 NODE 10 20 2")
	m.Reply("", nil)
	expect("done")
	if m.Err() != nil || m.Moved() != 3 {
		t.Fatalf("err %v moved %d", m.Err(), m.Moved())
	}
	m.Reply("ERR late", nil) // after the end: ignored
	if m.Err() != nil {
		t.Fatal("a reply after the end changed the outcome")
	}
}

func TestReshardDriverStopsOnErrors(t *testing.T) {
	m := NewReshard(SlotRange{First: 0, Last: 5}, 1, 2, 0)
	m.Reply("", nil)
	m.Reply("ERR slot 3 is not owned by this group", nil)
	if _, _, done := m.Next(); !done || m.Err() == nil || !strings.Contains(m.Err().Error(), "MIGRATING: ERR slot 3 is not owned") {
		t.Fatalf("done %v err %v", done, m.Err())
	}

	m = NewReshard(SlotRange{First: 0, Last: 5}, 1, 2, 0)
	m.Reply("", nil)
	m.Reply("", nil)
	if got := nextStep(m); got != "g1 MOVEKEYS 0 5 100" {
		t.Fatalf("default batch: %q", got)
	}
	m.Reply("", bs("a", "1")) // not triples
	if m.Err() == nil {
		t.Fatal("a malformed MOVEKEYS reply was accepted")
	}

	for _, bad := range []*Reshard{
		NewReshard(SlotRange{First: 5, Last: 4}, 1, 2, 10),
		NewReshard(SlotRange{First: 0, Last: SlotCount}, 1, 2, 10),
		NewReshard(SlotRange{First: 0, Last: 1}, 2, 2, 10),
		NewReshard(SlotRange{First: 0, Last: 1}, 0, 2, 10),
	} {
		if _, _, done := bad.Next(); !done || bad.Err() == nil {
			t.Fatalf("a bad move started: err %v", bad.Err())
		}
	}
}

func TestReshardRetryable(t *testing.T) {
	for msg, want := range map[string]bool{
		"TRYAGAIN Multiple keys request during rehashing of slot": true,
		"MOVED 3 127.0.0.1:7001":                                  true,
		"ASK 3 127.0.0.1:7001":                                    true,
		"IOERR read: connection reset":                            true,
		ErrMsgLeaderLost:                                          true,
		ErrMsgDiskUnknown:                                         true,
		ErrMsgDiskFull:                                            true,
		"ERR slot 3 still holds keys":                             false,
		"ERR wrong number of arguments":                           false,
	} {
		if Retryable(msg) != want {
			t.Errorf("Retryable(%q) = %v", msg, !want)
		}
	}
}

func bs(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, x := range s {
		out[i] = []byte(x)
	}
	return out
}
