package sim

import (
	"strings"
	"testing"
)

// An operation left out of the history as never read by a node must
// never be read later: the client hears of every request a session
// reads, and the run fails if one of those is read.
func TestNotRunRequestArrivingLaterFailsTheRun(t *testing.T) {
	r := &Run{Oracle: &Oracle{}}
	c := &Client{r: r, name: "c1000"}
	n := &Node{cfg: NodeConfig{ID: 1}}

	c.cur, c.curSeq = &opSpec{}, 7
	c.read(7, n)
	if !c.curRead || len(r.Oracle.Failures) != 0 {
		t.Fatalf("the current operation's request arriving: read %v, failures %q", c.curRead, r.Oracle.Failures)
	}

	c.cur, c.curSeq, c.curRead, c.notRun = &opSpec{}, 9, false, 8
	c.read(6, n) // an operation that finished with a reply: nothing to say
	if c.curRead || len(r.Oracle.Failures) != 0 {
		t.Fatalf("an old operation's request arriving: read %v, failures %q", c.curRead, r.Oracle.Failures)
	}
	c.read(8, n)
	if c.curRead || len(r.Oracle.Failures) != 1 || !strings.Contains(r.Oracle.Failures[0], "#8") {
		t.Fatalf("the left-out operation's request arriving: read %v, failures %q", c.curRead, r.Oracle.Failures)
	}
}
