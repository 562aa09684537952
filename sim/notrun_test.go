package sim

import (
	"strings"
	"testing"
)

// An operation left out of the history as never having reached a running
// process must never reach one later: the client checks every request
// that enters a session, and the run fails if one does.
func TestNotRunRequestArrivingLaterFailsTheRun(t *testing.T) {
	r := &Run{Oracle: &Oracle{}}
	c := &Client{r: r, name: "c1000"}
	n := &Node{cfg: NodeConfig{ID: 1}}

	c.cur, c.curSeq = &opSpec{}, 7
	c.reached(7, n)
	if !c.curReached || len(r.Oracle.Failures) != 0 {
		t.Fatalf("the current operation's request arriving: reached %v, failures %q", c.curReached, r.Oracle.Failures)
	}

	c.cur, c.curSeq, c.curReached, c.notRun = &opSpec{}, 9, false, 8
	c.reached(6, n) // an operation that finished with a reply: nothing to say
	if c.curReached || len(r.Oracle.Failures) != 0 {
		t.Fatalf("an old operation's request arriving: reached %v, failures %q", c.curReached, r.Oracle.Failures)
	}
	c.reached(8, n)
	if c.curReached || len(r.Oracle.Failures) != 1 || !strings.Contains(r.Oracle.Failures[0], "#8") {
		t.Fatalf("the left-out operation's request arriving: reached %v, failures %q", c.curReached, r.Oracle.Failures)
	}
}
