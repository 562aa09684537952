package sim

import (
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/keel-db/keel/disk"
)

// peerContext reads a framed Raft message's type from its first bytes:
// the protobuf encoding puts Type (field 1) first.
func TestPeerContext(t *testing.T) {
	for typ, want := range map[pb.MessageType]string{pb.MsgVote: ctxVote, pb.MsgApp: ctxAppend, pb.MsgSnap: ctxSnapInstall,
		pb.MsgHeartbeat: ctxRaft, pb.MsgPreVote: ctxRaft, pb.MsgVoteResp: ctxRaft} {
		m := pb.Message{Type: typ, From: 2, To: 1, Term: 7, Entries: []pb.Entry{{Index: 3, Term: 7, Data: []byte("x")}}}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		frame := append([]byte{peerKindRaftChecked, 0, 0, 0, 0}, b...)
		if got := peerContext(frame); got != want {
			t.Errorf("%s: context %q, want %q", typ, got, want)
		}
	}
	if got := peerContext([]byte{peerKindSnapChunk, 1, 2}); got != ctxSnapInstall {
		t.Errorf("snapshot chunk: %q", got)
	}
	if got := peerContext(nil); got != ctxRaft {
		t.Errorf("empty: %q", got)
	}
}

func TestWindowOf(t *testing.T) {
	for _, c := range []struct {
		ctx  string
		op   disk.Op
		want string
	}{
		{ctxVote, disk.Op{Kind: disk.OpSync, Path: "data/wal/0000000000000001.wal"}, MarkVoteUnsynced},
		{ctxSubmit, disk.Op{Kind: disk.OpSync, Path: "data/wal/0000000000000001.wal"}, MarkAppendUnsynced},
		{ctxSubmit, disk.Op{Kind: disk.OpWrite, Path: "data/wal/0000000000000001.wal"}, ""},
		{ctxSnapDone, disk.Op{Kind: disk.OpRemove, Path: "data/wal/0000000000000001.wal"}, MarkCompaction},
		{ctxSnapJob, disk.Op{Kind: disk.OpWrite, Path: "data/snapshots/x.tmp"}, MarkSnapshotWrite},
		{ctxTick, disk.Op{Kind: disk.OpSync, Path: "data/wal/0000000000000001.wal"}, ""},
	} {
		if got := windowOf(c.ctx, c.op); got != c.want {
			t.Errorf("%s %v: %q, want %q", c.ctx, c.op, got, c.want)
		}
	}
}
