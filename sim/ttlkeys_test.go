package sim

import (
	"strings"
	"testing"
	"time"
)

// TestTTLCheckBites: the TTL check fails a key without a TTL, a deadline
// later than any write could have set, and a TTL on a key no write gave
// one; it passes a deadline some write could have set.
func TestTTLCheckBites(t *testing.T) {
	w := NewWorld(1, nil)
	r := &Run{W: w, Oracle: newOracle(Durability{Kind: "always"}, false)}
	r.Node = &Node{Clock: newClock(w, ClockConfig{})}
	w.now = int64(time.Second)
	r.ttlIssued(&opSpec{argv: []string{"SET", "k", "v", "PX", "60000"}, ttlMs: 60000}, w.now).ret = w.now + int64(time.Millisecond)
	w.now = int64(2 * time.Second)
	// At 2 s the write (applied by 1.001 s) left at most 59001 ms.
	for _, c := range []struct {
		key  string
		rep  Reply
		want string
	}{
		{"k", intReply(59000), ""},
		{"k", intReply(59001), ""},
		{"k", intReply(-2), ""},
		{"k", intReply(-1), "without a TTL"},
		{"k", intReply(59100), "later than any write could have set"},
		{"other", intReply(5000), "no write that sets a TTL"},
	} {
		r.Oracle.Failures = nil
		r.checkTTLRead(c.key, w.now, c.rep, false)
		switch {
		case c.want == "" && len(r.Oracle.Failures) > 0:
			t.Errorf("PTTL %s -> %s failed: %v", c.key, c.rep.String(), r.Oracle.Failures)
		case c.want != "" && (len(r.Oracle.Failures) == 0 || !strings.Contains(r.Oracle.Failures[0], c.want)):
			t.Errorf("PTTL %s -> %s: failures %q, want one with %q", c.key, c.rep.String(), r.Oracle.Failures, c.want)
		}
	}
}
