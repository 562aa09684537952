package node

import (
	"encoding/binary"
	"slices"
	"testing"
)

func aclDigest(index uint64, table []byte) []byte {
	f := binary.AppendUvarint([]byte{peerACLDigestTag}, index)
	if table == nil {
		return binary.LittleEndian.AppendUint64(append(f, 0), aclHash(nil))
	}
	return binary.LittleEndian.AppendUint64(append(f, 1), aclHash(table))
}

func aclTableFrame(index uint64, table []byte) []byte {
	f := binary.AppendUvarint([]byte{peerACLTableTag}, index)
	if table == nil {
		return append(f, 0)
	}
	return append(append(f, 1), table...)
}

// A placed node outside group 1 learns the ACL table from group 1's
// nodes: it refuses AUTH until it has heard a digest; it pulls a newer,
// different table from the node whose digest named it and puts it in
// force; an older table, a frame from a node outside group 1 and a
// malformed frame change nothing.
func TestACLTableLearntOverTheBus(t *testing.T) {
	peers, err := ParsePeers("1@h1:7001,2@h2:7002,3@h3:7003,4@h4:7004,5@h5:7005,6@h6:7006")
	if err != nil {
		t.Fatal(err)
	}
	rt := &testRuntime{}
	n, err := New(Config{ID: 4, Peers: peers, Groups: 6, Replicas: 3, Clock: fixedClock(1e18), Rand: new(counterRand), PeerPings: true}, rt)
	if err != nil {
		t.Fatal(err)
	}
	// Group 1 is on nodes 1, 2 and 3 (cluster.Place of six nodes).
	if n.hostsGroup(metaGroup) || n.aclUnknown() == "" {
		t.Fatalf("node 4: hosts group 1 %v, AUTH refused %q", n.hostsGroup(metaGroup), n.aclUnknown())
	}
	table := []byte("user alice on nopass ~* &* +@all\nuser default on nopass ~* &* +@all\n")
	n.Route(5, aclDigest(10, nil)) // node 5 is not on group 1
	if n.aclUnknown() == "" {
		t.Fatal("a digest from a node outside group 1 was taken")
	}
	n.Route(2, aclDigest(10, nil))
	if msg := n.aclUnknown(); msg != "" || n.aclUserRef([]byte("alice")) != nil {
		t.Fatalf("after a no-table digest: %q, alice %v", msg, n.aclUserRef([]byte("alice")) != nil)
	}
	rt.sent = nil
	n.Route(2, aclDigest(20, table))
	if !slices.Equal(rt.sent, []string{string([]byte{peerACLPullTag})}) || n.aclUserRef([]byte("alice")) != nil {
		t.Fatalf("a newer table's digest: sent %q", rt.sent)
	}
	n.Route(2, aclTableFrame(20, table))
	if n.aclUserRef([]byte("alice")) == nil {
		t.Fatal("the pulled table is not in force")
	}
	rt.sent = nil
	n.Route(3, aclDigest(25, table)) // the same table at a later index: no pull
	n.Route(1, aclTableFrame(15, nil))
	n.Route(5, aclTableFrame(30, nil))
	if len(rt.sent) != 0 || n.aclUserRef([]byte("alice")) == nil {
		t.Fatalf("sent %q; alice kept: %v", rt.sent, n.aclUserRef([]byte("alice")) != nil)
	}
	bad := n.BadFrames()
	n.Route(2, aclDigest(40, nil)[:3])
	n.Route(2, []byte{peerACLTableTag, 40, 2})
	n.Route(2, append(aclTableFrame(40, nil), 'x'))
	if n.BadFrames() != bad+3 || n.aclUserRef([]byte("alice")) == nil {
		t.Fatalf("malformed frames: %d refused, want 3", n.BadFrames()-bad)
	}
	// Group 1 deletes alice: the next table drops her.
	n.Route(1, aclDigest(50, nil))
	if n.aclUserRef([]byte("alice")) != nil {
		t.Fatal("alice outlived the table that deleted her")
	}
}
