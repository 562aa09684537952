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
