package cluster

import (
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

func TestLogStoreInitialState(t *testing.T) {
	s := &logStore{cs: pb.ConfState{Voters: []uint64{1}}, snapIndex: 10, snapTerm: 2}
	for i := uint64(11); i <= 14; i++ {
		if err := s.append([]pb.Entry{{Index: i, Term: 3}}); err != nil {
			t.Fatal(err)
		}
	}
	// The newest HardState record went with a compacted segment: the term
	// must still not go below the log's, and a one-voter group's commit is
	// its last index.
	hs, _, _ := s.InitialState()
	if hs.Term != 3 || hs.Commit != 14 {
		t.Fatalf("hs %+v", hs)
	}
	if err := s.append([]pb.Entry{{Index: 13, Term: 4}}); err != nil {
		t.Fatal(err)
	}
	if s.lastIndex() != 13 {
		t.Fatalf("conflicting append did not truncate: last %d", s.lastIndex())
	}
	if err := s.append([]pb.Entry{{Index: 15, Term: 4}}); err == nil {
		t.Fatal("a gap was accepted")
	}
	s.compact(12, 3)
	if fi, _ := s.FirstIndex(); fi != 13 {
		t.Fatalf("first index %d", fi)
	}
	if term, _ := s.Term(12); term != 3 {
		t.Fatalf("term of the snapshot index %d", term)
	}
	ents, err := s.Entries(13, 14, 1<<20)
	if err != nil || len(ents) != 1 || ents[0].Term != 4 {
		t.Fatalf("entries %v %v", ents, err)
	}
}
