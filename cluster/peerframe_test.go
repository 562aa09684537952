package cluster

import (
	"math/rand/v2"
	"strings"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

// TestCorruptedRaftMessagesAreRefused: every Raft message of a group under
// writes reaches its receiver also with one bit flipped (a damage the
// transport's own CRC missed). Before Raft messages carried a checksum of
// their own, such a copy made go.etcd.io/raft panic ("message should not
// be self-addressed", "need non-empty snapshot": cluster-bus-attack seeds
// 1 and 2) or could apply a wrong entry. Now each is refused, none is
// stepped, and the replicas agree.
func TestCorruptedRaftMessagesAreRefused(t *testing.T) {
	g := newTestGroup(t, 3)
	g.tolerate = true
	rng := rand.New(rand.NewPCG(1, 2))
	copies := 0
	g.filter = func(m *groupMsg) bool {
		if m.from >= 1000 || m.data[0] != peerKindRaftChecked {
			return true
		}
		for range 3 {
			b := append([]byte(nil), m.data...)
			bit := rng.IntN(8 * len(b))
			b[bit/8] ^= 1 << (bit % 8)
			g.queue = append(g.queue, groupMsg{from: 1000 + m.from, to: m.to, data: b})
			copies++
		}
		return true
	}
	l := g.waitLeader()
	for i := 0; i < 20; i++ {
		if got := g.submit(l, false, "SET k"+string(rune('a'+i))+" v", "INCRBY n 1"); !strings.HasPrefix(got, "+OK :") {
			t.Fatalf("write %d: %s", i, got)
		}
	}
	for i := 0; i < 5; i++ {
		g.tick()
	}
	if copies == 0 || len(g.stepErrs) != copies {
		t.Fatalf("%d corrupted copies delivered, %d refused: every one must be", copies, len(g.stepErrs))
	}
	want := dump(g.reps[l], g.now)
	for _, id := range g.ids {
		if got := dump(g.reps[id], g.now); got != want {
			t.Errorf("n%d holds\n%s\nthe leader n%d\n%s", id, got, l, want)
		}
	}
}

// A message with a sound checksum is still refused when it is not
// addressed to the receiver, or claims to come from it.
func TestRaftMessagesMustBeAddressedToTheReceiver(t *testing.T) {
	for _, c := range []struct {
		m    pb.Message
		want string
	}{
		{pb.Message{Type: pb.MsgHeartbeat, From: 1, To: 3, Term: 2}, "for node 3 reached node 2"},
		{pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 2, Term: 2}, "claiming to come from node 2"},
		{pb.Message{Type: pb.MsgHeartbeat, From: 0, To: 2, Term: 2}, "claiming to come from node 0"},
	} {
		b, err := encodeRaftMsg(&c.m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeRaftMsg(b, 2); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.m, err, c.want)
		}
	}
	ok := pb.Message{Type: pb.MsgHeartbeat, From: 1, To: 2, Term: 2, Commit: 7}
	b, _ := encodeRaftMsg(&ok)
	if got, err := decodeRaftMsg(b, 2); err != nil || got.Commit != 7 {
		t.Errorf("a sound message: %+v, %v", got, err)
	}
	if _, err := decodeRaftMsg(b[:3], 2); err == nil {
		t.Error("a truncated frame was accepted")
	}
}

// The sender the runtime authenticated must be the one the message names;
// a node the receiver does not count a member may send only what a
// leader sends a follower (a follower that fell behind must hear from a
// leader whose joining it has not applied: cluster-membership seed 134
// stayed behind for good when it refused them); and a heartbeat never
// commits past the receiver's log (Raft would panic).
func TestStepFromChecksSenderAndMembership(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	if got := g.submit(l, false, "SET k v"); got != "+OK" {
		t.Fatalf("SET: %s", got)
	}
	f := g.follower(l)
	r := g.reps[f]
	term := r.rn.BasicStatus().Term
	frame := func(m pb.Message) []byte {
		b, err := encodeRaftMsg(&m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	last := r.store.lastIndex()
	for _, c := range []struct {
		name string
		pm   PeerMsg
		want string // "" accepted
	}{
		{"another member's heartbeat", PeerMsg{From: 99, Member: true,
			Data: frame(pb.Message{Type: pb.MsgHeartbeat, From: l, To: f, Term: term})}, "from node 99 claims to come from node"},
		{"a non-member's vote", PeerMsg{From: 9, Member: false,
			Data: frame(pb.Message{Type: pb.MsgVote, From: 9, To: f, Term: term + 5, LogTerm: term, Index: last + 10})}, "not a member"},
		{"a non-member's pre-vote", PeerMsg{From: 9, Member: false,
			Data: frame(pb.Message{Type: pb.MsgPreVote, From: 9, To: f, Term: term + 5})}, "not a member"},
		{"a heartbeat past the log", PeerMsg{From: l, Member: true,
			Data: frame(pb.Message{Type: pb.MsgHeartbeat, From: l, To: f, Term: term, Commit: 1 << 40})}, "beyond this log's last"},
		{"the leader's heartbeat", PeerMsg{From: l, Member: true,
			Data: frame(pb.Message{Type: pb.MsgHeartbeat, From: l, To: f, Term: term, Commit: last})}, ""},
	} {
		errs := r.StepFrom(g.now, []PeerMsg{c.pm})
		var err error
		if errs != nil {
			err = errs[0]
		}
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	if st := r.rn.BasicStatus(); st.Term != term || st.Lead != l {
		t.Errorf("after the refusals n%d is at term %d following n%d, want term %d following n%d", f, st.Term, st.Lead, term, l)
	}
	// A leader the follower does not know yet is heard.
	hb := frame(pb.Message{Type: pb.MsgHeartbeat, From: 7, To: f, Term: term + 1, Commit: last})
	if errs := r.StepFrom(g.now, []PeerMsg{{From: 7, Member: false, Data: hb}}); errs != nil && errs[0] != nil {
		t.Fatalf("a heartbeat from a leader not yet known to be a member: %v", errs[0])
	}
	if st := r.rn.BasicStatus(); st.Term != term+1 || st.Lead != 7 {
		t.Errorf("n%d follows n%d at term %d, want n7 at term %d", f, st.Lead, st.Term, term+1)
	}
}
