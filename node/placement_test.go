package node

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/keel-db/keel/cluster"
)

func newPlacedNode(t *testing.T, id uint64) *Node {
	t.Helper()
	peers, err := ParsePeers("1@h1:7001,2@h2:7002,3@h3:7003,4@h4:7004,5@h5:7005,6@h6:7006")
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{ID: id, Peers: peers, Groups: 6, Replicas: 3, Clock: fixedClock(1e18), Rand: new(counterRand)}, &testRuntime{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// view is one group's view in a ping.
func view(g, leader, term, applied uint64, owned ...cluster.SlotRange) []byte {
	var b []byte
	for _, x := range []uint64{g, leader, term, applied, uint64(len(owned))} {
		b = binary.AppendUvarint(b, x)
	}
	for _, r := range owned {
		b = binary.AppendUvarint(b, uint64(r.First))
		b = binary.AppendUvarint(b, uint64(r.Last))
	}
	// The group's voters as placed (cluster.Place of six nodes), no
	// learner.
	p, _ := cluster.Place([]uint64{1, 2, 3, 4, 5, 6}, 6, 3)
	voters := p.Of(g)
	b = binary.AppendUvarint(b, uint64(len(voters)))
	for _, id := range voters {
		b = binary.AppendUvarint(b, id)
	}
	return binary.AppendUvarint(b, 0)
}

func ping(views ...[]byte) []byte { return append([]byte{peerPingTag}, slices.Concat(views...)...) }

// A node learns the leader and slots of the groups it does not host from
// the pings of the nodes placed on them: the highest term's leader, the
// highest applied index's slots; a node not placed on a group is not
// heard on it, a leader not placed on it is not believed, and a
// malformed ping changes nothing. A request for such a group is
// answered -MOVED to the leader so learnt.
func TestGossipViews(t *testing.T) {
	n := newPlacedNode(t, 1) // hosts 1, 3, 5; group 2 is on 2, 4, 5
	if got := n.HostedGroups(); !slices.Equal(got, []uint64{1, 3, 5}) {
		t.Fatalf("node 1 hosts %v", got)
	}
	if n.LeaderOf(2) != 0 || n.groupOf(3000) != 2 {
		t.Fatalf("before any ping: leader %d, slot 3000 → group %d", n.LeaderOf(2), n.groupOf(3000))
	}
	n.Route(4, ping(view(2, 4, 3, 10, cluster.SlotRange{First: 2731, Last: 5461})))
	if n.LeaderOf(2) != 4 {
		t.Fatalf("leader of group 2 = %d, want 4", n.LeaderOf(2))
	}
	n.Route(3, ping(view(2, 2, 9, 99)))                                       // node 3 is not placed on group 2
	n.Route(2, ping(view(2, 6, 9, 99)))                                       // node 6 is not placed on group 2
	n.Route(5, ping(view(2, 5, 2, 99, cluster.SlotRange{First: 0, Last: 0}))) // an older term: the leader stays
	// Slot 3000 is claimed by no group now: it keeps its last route
	// (routing.go), where its gate redirects or says TRYAGAIN.
	if n.LeaderOf(2) != 4 || n.groupOf(0) != 2 || n.groupOf(3000) != 2 {
		t.Fatalf("leader %d, slot 0 → %d, slot 3000 → %d; want 4, 2 (applied 99's slots), 2 (no one claims it: its last route)", n.LeaderOf(2), n.groupOf(0), n.groupOf(3000))
	}
	n.Route(5, ping(view(2, 5, 10, 100, cluster.SlotRange{First: 2731, Last: 5461})))
	if n.LeaderOf(2) != 5 || n.groupOf(3000) != 2 || n.groupOf(0) != 2 {
		t.Fatalf("after term 10: leader %d, slot 3000 → %d, slot 0 → %d (no one claims it: its last route)", n.LeaderOf(2), n.groupOf(3000), n.groupOf(0))
	}
	n.slotsChanged(1, cluster.SlotInfo{Group: 1, Owned: []cluster.SlotRange{{First: 0, Last: 2730}}}) // group 1's replica here
	if n.groupOf(0) != 1 {
		t.Fatalf("slot 0, claimed by group 1 again, routes to %d", n.groupOf(0))
	}
	bad := n.BadFrames()
	for _, f := range [][]byte{
		ping(view(2, 4, 11, 101)[:3]),
		ping(view(9, 4, 11, 101)),
		ping(view(2, 4, 11, 101, cluster.SlotRange{First: 5, Last: 4})),
		ping(view(2, 4, 11, 101, cluster.SlotRange{First: 0, Last: cluster.SlotCount})),
	} {
		n.Route(4, f)
	}
	if n.BadFrames() != bad+4 || n.LeaderOf(2) != 5 {
		t.Fatalf("malformed pings: %d refused, leader %d", n.BadFrames()-bad, n.LeaderOf(2))
	}
	// Own groups are their replica's business.
	n.Route(2, ping(view(1, 2, 50, 500)))
	if n.LeaderOf(1) != 0 {
		t.Fatalf("a ping set the leader of a hosted group: %d", n.LeaderOf(1))
	}

	var w recWriter
	req := cluster.Request{Argv: [][]byte{[]byte("GET"), []byte("{a}")}, W: &w}
	slot := cluster.KeySlot([]byte("{a}"))
	n.Route(4, ping(view(n.groupOf(slot), 4, 20, 200, cluster.SplitSlots(6)[n.groupOf(slot)-1]...)))
	n.Submit(n.groupOf(slot), 0, []cluster.Request{req}, nil)
	if n.hostsGroup(n.groupOf(slot)) {
		t.Skip("the test key's group is hosted here")
	}
	if want := "MOVED " + itoa(slot) + " h4:7004"; w.err != want {
		t.Fatalf("a request for a group not hosted: %q, want %q", w.err, want)
	}
}

// The ping a node sends carries its hosted groups, and another node reads
// it back.
func TestGossipFrameRoundTrip(t *testing.T) {
	a, b := newPlacedNode(t, 2), newPlacedNode(t, 1) // a hosts 1, 2, 5
	a.group(2).leader.Store(4)
	a.group(2).term.Store(7)
	a.group(2).applied.Store(70)
	a.slotsChanged(2, cluster.SlotInfo{Group: 2, Owned: []cluster.SlotRange{{First: 2731, Last: 5000}}})
	if _, _, ok := b.Route(2, a.gossipFrame()); !ok {
		t.Fatal("the ping was refused")
	}
	// Slot 5001 is no longer claimed: it keeps its last route (group 2's
	// starting range).
	if b.LeaderOf(2) != 4 || b.groupOf(5001) != 2 || b.groupOf(5000) != 2 {
		t.Fatalf("read back: leader %d, slot 5000 → %d, 5001 → %d", b.LeaderOf(2), b.groupOf(5000), b.groupOf(5001))
	}
}

type recWriter struct{ recorder }

func (w *recWriter) WriteError(msg string) { w.err = msg }
