package sim

import (
	"strings"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/keel-db/keel/cluster"
)

func ent(index, term uint64, data string) pb.Entry {
	return pb.Entry{Index: index, Term: term, Type: pb.EntryNormal, Data: []byte(data)}
}

func newTestRaftCheck(forgive bool) (*raftCheck, *Run) {
	r := &Run{W: NewWorld(1, nil), Oracle: newOracle(Durability{Kind: "always"}, false)}
	c := newRaftCheck(r, forgive)
	return c, r
}

// failedWith reports whether the run failed, and with inv first.
func failedWith(t *testing.T, r *Run, inv string) {
	t.Helper()
	if len(r.Oracle.Failures) == 0 {
		t.Fatalf("no failure, want %s", inv)
	}
	if !strings.HasPrefix(r.Oracle.Failures[0], inv+":") {
		t.Fatalf("first failure %q, want %s", r.Oracle.Failures[0], inv)
	}
	t.Log(r.Oracle.Failures[0])
}

func passed(t *testing.T, r *Run) {
	t.Helper()
	if len(r.Oracle.Failures) > 0 {
		t.Fatalf("failures: %q", r.Oracle.Failures)
	}
}

// TestRaftCheckBites fails each invariant with the smallest story that
// breaks it, and lets a correct story (a stale suffix replaced after a
// leader change, a restart) through.
func TestRaftCheckBites(t *testing.T) {
	t.Run("correct", func(t *testing.T) {
		c, r := newTestRaftCheck(false)
		n1, n2, n3 := c.observer(1, 1), c.observer(2, 1), c.observer(3, 1)
		for _, o := range []cluster.Observer{n1, n2, n3} {
			o.LogLoaded(0, 0, nil)
		}
		// n1 leads term 1 and commits 1..2 with n2; 3 reaches only n1.
		n1.LogAppended(0, []pb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c")})
		n1.Ready(pb.HardState{Term: 1, Commit: 0}, true)
		n2.LogAppended(0, []pb.Entry{ent(1, 1, "a"), ent(2, 1, "b")})
		n1.Ready(pb.HardState{Term: 1, Commit: 2}, true)
		n1.Applied(ent(1, 1, "a"))
		n1.Applied(ent(2, 1, "b"))
		// n2 leads term 2 and replaces n1's entry 3.
		n2.Ready(pb.HardState{Term: 2, Commit: 2}, true)
		n2.LogAppended(1, []pb.Entry{ent(3, 2, "x")})
		n3.LogAppended(0, []pb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 2, "x")})
		n2.Ready(pb.HardState{Term: 2, Commit: 3}, true)
		n1.Ready(pb.HardState{Term: 2, Commit: 2}, false)
		n1.LogAppended(1, []pb.Entry{ent(3, 2, "x")})
		n1.Ready(pb.HardState{Term: 2, Commit: 3}, false)
		n1.Applied(ent(3, 2, "x"))
		n3.Ready(pb.HardState{Term: 2, Commit: 3}, false)
		n3.Applied(ent(1, 1, "a"))
		n3.Applied(ent(2, 1, "b"))
		n3.Applied(ent(3, 2, "x"))
		// n3 restarts from a snapshot at 2 and replays 3.
		n3.LogLoaded(2, 1, []pb.Entry{ent(3, 2, "x")})
		n3.Ready(pb.HardState{Term: 2, Commit: 3}, false)
		n3.Applied(ent(3, 2, "x"))
		passed(t, r)
		if c.Stats.Elections != 2 || c.Stats.Applies != 7 {
			t.Errorf("stats %+v", c.Stats)
		}
	})
	t.Run("election safety", func(t *testing.T) {
		c, r := newTestRaftCheck(false)
		c.observer(1, 1).Ready(pb.HardState{Term: 2}, true)
		c.observer(2, 1).Ready(pb.HardState{Term: 2}, true)
		failedWith(t, r, InvElectionSafety)
	})
	t.Run("log matching contents", func(t *testing.T) {
		c, r := newTestRaftCheck(false)
		c.observer(1, 1).LogAppended(0, []pb.Entry{ent(1, 1, "a")})
		c.observer(2, 1).LogAppended(0, []pb.Entry{ent(1, 1, "b")})
		failedWith(t, r, InvLogMatching)
	})
	t.Run("log matching prefix", func(t *testing.T) {
		c, r := newTestRaftCheck(false)
		c.observer(1, 1).LogAppended(0, []pb.Entry{ent(1, 1, "a"), ent(2, 2, "b")})
		c.observer(2, 1).LogAppended(0, []pb.Entry{ent(1, 2, "q"), ent(2, 2, "b")})
		failedWith(t, r, InvLogMatching)
	})
	t.Run("leader completeness", func(t *testing.T) {
		c, r := newTestRaftCheck(false)
		n1, n2 := c.observer(1, 1), c.observer(2, 1)
		n1.LogAppended(0, []pb.Entry{ent(1, 1, "a"), ent(2, 1, "b")})
		n1.Ready(pb.HardState{Term: 1, Commit: 2}, true)
		n2.LogAppended(0, []pb.Entry{ent(1, 1, "a")})
		n2.Ready(pb.HardState{Term: 2, Commit: 1}, true)
		failedWith(t, r, InvLeaderCompleteness)
	})
	t.Run("committed entry replaced", func(t *testing.T) {
		c, r := newTestRaftCheck(false)
		n1, n2 := c.observer(1, 1), c.observer(2, 1)
		n1.LogAppended(0, []pb.Entry{ent(1, 1, "a")})
		n1.Ready(pb.HardState{Term: 1, Commit: 1}, true)
		n2.LogAppended(0, []pb.Entry{ent(1, 2, "z")})
		failedWith(t, r, InvLeaderCompleteness)
	})
	t.Run("applied a different entry", func(t *testing.T) {
		c, r := newTestRaftCheck(false)
		n1, n2 := c.observer(1, 1), c.observer(2, 1)
		n1.LogAppended(0, []pb.Entry{ent(1, 1, "a")})
		n1.Ready(pb.HardState{Term: 1, Commit: 1}, true)
		n1.Applied(ent(1, 1, "a"))
		n2.LogAppended(0, []pb.Entry{ent(1, 1, "a")})
		n2.Ready(pb.HardState{Term: 1, Commit: 1}, false)
		n2.Applied(ent(1, 1, "b"))
		failedWith(t, r, InvStateMachine)
	})
	t.Run("applied twice", func(t *testing.T) {
		c, r := newTestRaftCheck(false)
		n1 := c.observer(1, 1)
		n1.LogLoaded(5, 1, nil)
		n1.Applied(ent(5, 1, "a"))
		failedWith(t, r, InvStateMachine)
	})
	t.Run("applied before commit", func(t *testing.T) {
		c, r := newTestRaftCheck(false)
		n1 := c.observer(1, 1)
		n1.LogAppended(0, []pb.Entry{ent(1, 1, "a")})
		n1.Ready(pb.HardState{Term: 1, Commit: 0}, true)
		n1.Applied(ent(1, 1, "a"))
		failedWith(t, r, InvStateMachine)
	})
	for _, forgive := range []bool{false, true} {
		name := "lost tail"
		if forgive {
			name += " forgiven"
		}
		t.Run(name, func(t *testing.T) {
			c, r := newTestRaftCheck(forgive)
			n1 := c.observer(1, 1)
			n1.LogLoaded(0, 0, nil)
			n1.LogAppended(0, []pb.Entry{ent(1, 1, "a"), ent(2, 1, "b")})
			n1.Ready(pb.HardState{Term: 1, Commit: 2}, true)
			n1.Applied(ent(1, 1, "a"))
			n1.Applied(ent(2, 1, "b"))
			// A power loss keeps entry 1 only; the node leads term 2.
			n1.LogLoaded(0, 0, []pb.Entry{ent(1, 1, "a")})
			n1.Ready(pb.HardState{Term: 1, Commit: 1}, false)
			n1.Applied(ent(1, 1, "a"))
			n1.Ready(pb.HardState{Term: 2, Commit: 1}, true)
			n1.LogAppended(1, []pb.Entry{ent(2, 2, "c")})
			n1.Ready(pb.HardState{Term: 2, Commit: 2}, true)
			n1.Applied(ent(2, 2, "c"))
			if forgive {
				passed(t, r)
			} else {
				failedWith(t, r, InvLeaderCompleteness)
			}
		})
	}
}
