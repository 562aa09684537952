package sim

import (
	"strings"
	"testing"
)

func TestNotifyEventOf(t *testing.T) {
	for _, c := range []struct {
		argv []string
		r    Reply
		want string
	}{
		{[]string{"SET", "k", "v"}, okReply, "set"},
		{[]string{"SET", "k", "v", "NX"}, nullReply, ""},
		{[]string{"INCRBY", "k", "3"}, intReply(3), "incrby"},
		{[]string{"INCRBY", "k", "3"}, errReply("ERR value is not an integer or out of range"), ""},
		{[]string{"DEL", "k"}, intReply(1), "del"},
		{[]string{"DEL", "k"}, intReply(0), ""},
		{[]string{"GET", "k"}, bulkReply("v"), ""},
	} {
		if got := notifyEventOf(c.argv, c.r); got != c.want {
			t.Errorf("%v -> %s: got %q, want %q", c.argv, c.r.String(), got, c.want)
		}
	}
}

// TestSubscriberCheckBites: each clause of the subscriber check fails when
// it should, and passes a session that got exactly what it was owed.
func TestSubscriberCheckBites(t *testing.T) {
	ev := func(s string) notifyEvent {
		f := strings.Fields(s)
		return notifyEvent{event: f[0], key: f[1]}
	}
	evs := func(ss ...string) []notifyEvent {
		var out []notifyEvent
		for _, s := range ss {
			out = append(out, ev(s))
		}
		return out
	}
	executed := evs("set k0", "incrby k1", "del k0", "set k2", "set k1")
	for _, c := range []struct {
		name string
		from int
		got  []notifyEvent
		live bool
		want string // "" passes
	}{
		{"everything, connected", 1, evs("incrby k1", "del k0", "set k2", "set k1"), true, ""},
		{"a prefix, lost", 1, evs("incrby k1", "del k0"), false, ""},
		{"nothing, lost", 4, nil, false, ""},
		{"a prefix, connected", 1, evs("incrby k1", "del k0"), true, "want 4: missing from set k2"},
		{"a gap", 1, evs("incrby k1", "set k2", "set k1"), false, "notification #2 is set k2, want del k0"},
		{"a duplicate", 1, evs("incrby k1", "incrby k1", "del k0"), false, "notification #2 is incrby k1, want del k0"},
		{"out of order", 0, evs("set k0", "del k0", "incrby k1"), false, "notification #2 is del k0, want incrby k1"},
		{"one before it subscribed", 2, evs("incrby k1", "del k0"), false, "notification #1 is incrby k1, want del k0"},
		{"one never raised", 3, evs("set k2", "set k1", "set k9"), true, "only 2 writes raising one"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Run{Oracle: newOracle(Durability{Kind: "always"}, false)}
			r.Oracle.events = executed
			cn := &conn{broken: !c.live}
			cl := &Client{name: "s1", sub: &subscriberState{sessions: []*subSession{{n: 1, conn: cn, from: c.from, got: c.got}}}}
			r.Clients = []*Client{cl}
			r.checkSubscribers()
			switch {
			case c.want == "" && len(r.Oracle.Failures) > 0:
				t.Errorf("failed: %v", r.Oracle.Failures)
			case c.want != "" && (len(r.Oracle.Failures) == 0 || !strings.Contains(r.Oracle.Failures[0], c.want)):
				t.Errorf("failures %q, want one with %q", r.Oracle.Failures, c.want)
			}
		})
	}
}
