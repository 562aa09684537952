package node

import (
	"encoding/binary"
	"testing"

	"github.com/keel-db/keel/cluster"
)

func heard(ids ...uint64) []byte {
	f := binary.AppendUvarint([]byte{peerHeardTag}, uint64(len(ids)))
	for _, id := range ids {
		f = binary.AppendUvarint(f, id)
	}
	return f
}

// The meta leader marks a member dead only when neither it nor any
// member reporting to it heard the member for node-dead-after: a leader
// cut off from one node that the others still hear keeps it; a node no
// one hears is marked once the last report naming it is that old. A
// malformed heard frame is refused and changes nothing; one from a
// stranger is ignored.
func TestDeadNeedsEveryReporterSilent(t *testing.T) {
	peers, err := ParsePeers("1@h1:7001,2@h2:7002,3@h3:7003,4@h4:7004,5@h5:7005,6@h6:7006")
	if err != nil {
		t.Fatal(err)
	}
	clk := &stepClock{now: 1e18}
	const after = 60e9
	n, err := New(Config{ID: 1, Peers: peers, Groups: 6, Replicas: 3, Clock: clk, Rand: new(counterRand),
		PeerPings: true, NodeDeadAfter: after}, &testRuntime{})
	if err != nil {
		t.Fatal(err)
	}
	rec := n.MetaRecord()
	if _, ok := n.markDead(rec); ok {
		t.Fatal("a member marked dead at the start")
	}
	// For two minutes node 1 hears 2, 3, 4 and 5 itself, never 6; node 2
	// reports hearing 6 until the first minute's end.
	for s := 0; s < 120; s++ {
		clk.now += 1e9
		for _, p := range []uint64{2, 3, 4, 5} {
			n.Route(p, pingFrame)
		}
		if s < 60 {
			n.Route(2, heard(1, 3, 6))
		}
	}
	// 6 last vouched for 60 s ago: not yet more than node-dead-after.
	if _, ok := n.markDead(rec); ok {
		t.Fatal("node 6 marked dead while node 2 heard it within node-dead-after")
	}
	bad := n.BadFrames()
	n.Route(3, heard(6)[:2]) // count 1, no id
	n.Route(3, append(heard(6), 0x01))
	if n.BadFrames() != bad+2 {
		t.Fatalf("malformed heard frames: %d refused, want 2", n.BadFrames()-bad)
	}
	clk.now += 1e9
	for _, p := range []uint64{2, 3, 4, 5} {
		n.Route(p, pingFrame)
	}
	n.Route(9, heard(6)) // a stranger vouches: ignored
	next, ok := n.markDead(rec)
	if !ok {
		t.Fatal("node 6, unheard by anyone for more than node-dead-after, is not marked dead")
	}
	m, _ := next.Member(6)
	if m.State != cluster.MemberDead || next.Version != rec.Version+1 {
		t.Fatalf("marked: %+v, version %d", m, next.Version)
	}
	for _, id := range []uint64{2, 3, 4, 5} {
		if m, _ := next.Member(id); m.State != cluster.MemberActive {
			t.Fatalf("node %d: %v", id, m.State)
		}
	}
}

// A node sends group 1's leader the peers it heard within peerSilentMax,
// sorted, in a frame the leader's receiveHeard takes.
func TestHeardFrameListsRecentPeers(t *testing.T) {
	peers, err := ParsePeers("1@h1:7001,2@h2:7002,3@h3:7003,4@h4:7004,5@h5:7005,6@h6:7006")
	if err != nil {
		t.Fatal(err)
	}
	clk := &stepClock{now: 1e18}
	n, err := New(Config{ID: 4, Peers: peers, Groups: 6, Replicas: 3, Clock: clk, Rand: new(counterRand), PeerPings: true}, &testRuntime{})
	if err != nil {
		t.Fatal(err)
	}
	n.Route(5, pingFrame)
	n.Route(2, pingFrame)
	clk.now += 3e9 // 5 and 2 now older than peerSilentMax
	n.Route(6, pingFrame)
	n.Route(3, pingFrame)
	if got, want := n.heardFrame(), heard(3, 6); string(got) != string(want) {
		t.Fatalf("heard frame %x, want %x", got, want)
	}
}
