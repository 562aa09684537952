package node

import (
	"slices"
	"testing"

	"github.com/keel-db/keel/cluster"
)

// A placed node starts with the bootstrap record (Place's placement); a
// node not hosting group 1 takes a newer record only from group 1's
// nodes, keeps the highest version, and refuses a malformed one; a node
// hosting group 1 sends the record with its pings only once it changed.
func TestMetaRecordCachedFromGroupOneNodes(t *testing.T) {
	n := newPlacedNode(t, 4) // group 1 is on 1, 2, 3
	rec := n.MetaRecord()
	if rec.Version != 0 || !slices.Equal(rec.Targets[0], []uint64{1, 2, 3}) || len(rec.Members) != 6 {
		t.Fatalf("bootstrap: %+v", rec)
	}
	if n.metaFrame() != nil {
		t.Fatal("a node not on group 1 sends the record")
	}
	v2 := rec.Clone()
	v2.Version = 2
	v2.Targets[0] = []uint64{1, 2, 4}
	v1 := rec.Clone()
	v1.Version = 1
	frame := func(r cluster.MetaRecord) []byte { return append([]byte{peerMetaTag}, r.Encode()...) }
	n.Route(5, frame(v2)) // node 5 is not on group 1
	if n.MetaRecord().Version != 0 {
		t.Fatal("took the record from a node not on group 1")
	}
	n.Route(2, frame(v2))
	n.Route(3, frame(v1)) // older: ignored
	if got := n.MetaRecord(); got.Version != 2 || !slices.Equal(got.Targets[0], []uint64{1, 2, 4}) {
		t.Fatalf("after v2 then v1: %+v", got)
	}
	bad := n.BadFrames()
	n.Route(2, frame(v2)[:5])
	if n.BadFrames() != bad+1 || n.MetaRecord().Version != 2 {
		t.Fatal("a malformed record was not refused")
	}
	// Node 1 is on group 1: heard.
	v3 := v2.Clone()
	v3.Version = 3
	n.Route(1, frame(v3))
	if n.MetaRecord().Version != 3 {
		t.Fatal("missed v3 from node 1")
	}

	h := newPlacedNode(t, 1) // hosts group 1: its replica's record is the one
	if h.metaFrame() != nil {
		t.Fatal("the bootstrap is sent")
	}
	h.metaApplied(v2.Encode())
	if f := h.metaFrame(); !slices.Equal(f, frame(v2)) {
		t.Fatalf("meta frame %x", f)
	}
	h.Route(2, frame(v3))
	if h.MetaRecord().Version != 2 {
		t.Fatal("a node on group 1 took a gossiped record over its replica's")
	}
}
