package node

import (
	"strings"
	"testing"

	"github.com/keel-db/keel/cluster"
)

type stepClock struct{ now int64 }

func (c *stepClock) Now() int64 { return c.now }

// newBusNode is node 1 of a three-node cluster whose replicas are not
// opened: pub/sub needs none.
func newBusNode(t *testing.T) (*aclNode, *stepClock) {
	t.Helper()
	peers, err := ParsePeers("1@h1:7001,2@h2:7002,3@h3:7003")
	if err != nil {
		t.Fatal(err)
	}
	clk := &stepClock{now: 1e18}
	rt := &testRuntime{}
	n, err := New(Config{ID: 1, Peers: peers, Clock: clk, Rand: new(counterRand)}, rt)
	if err != nil {
		t.Fatal(err)
	}
	return &aclNode{t: t, n: n, rt: rt}, clk
}

// pushed is what a subscriber received outside its own batches.
func pushed(t *testing.T, s *Session) string {
	t.Helper()
	out, _ := s.TakePushed()
	return strings.ReplaceAll(string(out), "\r\n", " ")
}

// A PUBLISH goes to every other node and an SPUBLISH to the nodes hosting
// its slot's group, as one frame each; a frame from a member is delivered
// to this node's subscribers, one from a node outside the address book,
// malformed or oversized is refused and changes nothing, and a sender
// over its byte budget is dropped until the budget refills.
func TestBusPublish(t *testing.T) {
	h, clk := newBusNode(t)
	n, rt := h.n, h.rt
	pub, sub := n.NewSession(nil), n.NewSession(nil)

	h.expect(pub, "(integer) 0", "PUBLISH", "news", "hi")
	h.expect(pub, "(integer) 0", "SPUBLISH", "news", "hi")
	want := string(publishFrame(publishKindChannel, []byte("news"), []byte("hi")))
	wantShard := string(publishFrame(publishKindShard, []byte("news"), []byte("hi")))
	if len(rt.sent) != 4 || rt.sent[0] != want || rt.sent[1] != want || rt.sent[2] != wantShard || rt.sent[3] != wantShard {
		t.Fatalf("sent %q, want the PUBLISH frame to nodes 2 and 3, then the SPUBLISH frame to both", rt.sent)
	}
	if st := n.BusPublishStats(); st.Sent != 4 {
		t.Fatalf("stats %+v", st)
	}

	h.run(sub, []string{"SUBSCRIBE", "news"})
	h.run(sub, []string{"SSUBSCRIBE", "news"})
	pushed(t, sub)
	if g, _, ok := n.Route(2, []byte(want)); !ok || g != 0 {
		t.Fatalf("Route of a forwarded publish: group %d ok %v, want taken by the node", g, ok)
	}
	n.Route(3, []byte(wantShard))
	if got := pushed(t, sub); got != "*3 $7 message $4 news $2 hi *3 $8 smessage $4 news $2 hi " {
		t.Fatalf("subscriber got %q", got)
	}

	bad := [][]byte{
		{peerPublishTag},
		{peerPublishTag, publishKindChannel},
		{peerPublishTag, 7, 1, 'a'},                  // unknown kind
		{peerPublishTag, publishKindChannel, 9, 'a'}, // channel longer than the frame
		append([]byte{peerPublishTag, publishKindChannel, 1, 'a'}, make([]byte, publishForwardBytesMax+1)...),
	}
	for _, f := range bad {
		n.Route(2, f)
	}
	n.Route(90, []byte(want)) // not a member: forged, or a node that left
	n.Route(1, []byte(want))  // claims to be this node
	if got := pushed(t, sub); got != "" {
		t.Fatalf("refused frames delivered %q", got)
	}
	if st := n.BusPublishStats(); st.Received != 2 || st.Refused != int64(len(bad))+1 {
		t.Fatalf("stats %+v, want 2 received and %d refused", st, len(bad)+1)
	}

	// Budget: a burst of publishRecvBurstBytes, then publishRecvBytesPerSec.
	big := publishFrame(publishKindChannel, []byte("none"), make([]byte, 1<<20))
	sent := 0
	for i := 0; i < 2*publishRecvBurstBytes/len(big); i++ {
		n.Route(2, big)
		sent++
	}
	st := n.BusPublishStats()
	if st.Dropped == 0 || st.Received-2 > int64(publishRecvBurstBytes/len(big))+1 {
		t.Fatalf("after %d frames of %d bytes: %+v, want drops past the %d-byte burst", sent, len(big), st, publishRecvBurstBytes)
	}
	dropped := st.Dropped
	n.Route(3, big) // another sender has its own budget
	if st := n.BusPublishStats(); st.Dropped != dropped {
		t.Fatalf("node 3 was charged for node 2's burst: %+v", st)
	}
	clk.now += 1e9 // a second refills 64 MiB
	n.Route(2, big)
	if st := n.BusPublishStats(); st.Dropped != dropped {
		t.Fatalf("the budget did not refill: %+v", st)
	}

	// Too large to forward: refused before anything is delivered.
	h.run(sub, []string{"SUBSCRIBE", "huge"})
	pushed(t, sub)
	sentBefore := len(rt.sent)
	if got := h.do(pub, "PUBLISH", "huge", strings.Repeat("x", publishForwardBytesMax)); !strings.HasPrefix(got, "(error) ERR message too large") {
		t.Fatalf("oversized PUBLISH: %s", got)
	}
	if len(rt.sent) != sentBefore || pushed(t, sub) != "" {
		t.Fatal("an oversized PUBLISH was delivered or forwarded")
	}
}

// Shard channels are keys: SSUBSCRIBE, SUNSUBSCRIBE and SPUBLISH refuse
// channels of several slots with -CROSSSLOT, in cluster mode only.
func TestShardChannelsCrossSlot(t *testing.T) {
	h, _ := newBusNode(t)
	s := h.n.NewSession(nil)
	cross := "(error) " + cluster.CrossSlotMsg
	h.expect(s, cross, "SSUBSCRIBE", "a", "b")
	h.expect(s, cross, "SUNSUBSCRIBE", "a", "b")
	if got := h.run(s, []string{"SSUBSCRIBE", "a", "{a}x"}); len(got) != 2 {
		t.Fatalf("same slot: %q", got)
	}
	single, _ := newACLNodeless(t)
	s1 := single.n.NewSession(nil)
	if got := single.run(s1, []string{"SSUBSCRIBE", "a", "b"}); len(got) != 2 {
		t.Fatalf("a single node checks no slots: %q", got)
	}
}

// newACLNodeless is a single node without replicas.
func newACLNodeless(t *testing.T) (*aclNode, *testRuntime) {
	rt := &testRuntime{}
	n, err := New(Config{Clock: fixedClock(1e18), Rand: new(counterRand)}, rt)
	if err != nil {
		t.Fatal(err)
	}
	return &aclNode{t: t, n: n, rt: rt}, rt
}
