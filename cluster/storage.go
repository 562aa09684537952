package cluster

import (
	"fmt"

	"github.com/cockroachdb/errors"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// logStore is raft.Storage over keel's WAL: the entries since the newest
// snapshot are kept in memory (the log is compacted at a size threshold, so
// this is bounded by it), and the WAL on disk is their durable copy. Only
// entries that have been appended to the WAL are ever added here.
type logStore struct {
	hs        pb.HardState
	cs        pb.ConfState
	snapIndex uint64
	snapTerm  uint64
	ents      []pb.Entry // ents[i].Index == snapIndex+1+i
	knobs     *TestingKnobs
}

var _ raft.Storage = (*logStore)(nil)

// InitialState implements raft.Storage. In a group where this node is the
// only voter every entry in its durable log is committed by definition (the
// quorum is itself), so the commit index is restored as the last index:
// recovery then replays the whole log before the node even campaigns.
func (s *logStore) InitialState() (pb.HardState, pb.ConfState, error) {
	hs := s.hs
	last := s.lastIndex()
	// The term never goes below what the log shows, even if the newest
	// HardState record was lost with a compacted segment.
	if hs.Term < s.snapTerm {
		hs.Term = s.snapTerm
	}
	if n := len(s.ents); n > 0 && hs.Term < s.ents[n-1].Term {
		hs.Term = s.ents[n-1].Term
	}
	if hs.Commit < s.snapIndex {
		hs.Commit = s.snapIndex
	}
	if len(s.cs.Voters) == 1 && len(s.cs.Learners) == 0 && len(s.cs.VotersOutgoing) == 0 {
		hs.Commit = last
	}
	if hs.Commit > last {
		hs.Commit = last
	}
	return hs, s.cs, nil
}

func (s *logStore) firstIndex() uint64 { return s.snapIndex + 1 }
func (s *logStore) lastIndex() uint64  { return s.snapIndex + uint64(len(s.ents)) }

// Entries implements raft.Storage.
func (s *logStore) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	if lo <= s.snapIndex {
		return nil, raft.ErrCompacted
	}
	if hi > s.lastIndex()+1 {
		return nil, errors.AssertionFailedf("entries [%d,%d) past last index %d", lo, hi, s.lastIndex())
	}
	ents := s.ents[lo-s.firstIndex() : hi-s.firstIndex()]
	if len(ents) == 0 {
		return nil, nil
	}
	size := uint64(ents[0].Size())
	n := 1
	for ; n < len(ents); n++ {
		size += uint64(ents[n].Size())
		if size > maxSize {
			break
		}
	}
	out := make([]pb.Entry, n)
	copy(out, ents[:n])
	return out, nil
}

// Term implements raft.Storage.
func (s *logStore) Term(i uint64) (uint64, error) {
	if i == s.snapIndex {
		return s.snapTerm, nil
	}
	if i < s.snapIndex {
		return 0, raft.ErrCompacted
	}
	if i > s.lastIndex() {
		return 0, raft.ErrUnavailable
	}
	return s.ents[i-s.firstIndex()].Term, nil
}

// LastIndex implements raft.Storage.
func (s *logStore) LastIndex() (uint64, error) { return s.lastIndex(), nil }

// FirstIndex implements raft.Storage.
func (s *logStore) FirstIndex() (uint64, error) { return s.firstIndex(), nil }

// Snapshot implements raft.Storage. A one-voter group never sends one; the
// replication issue streams the snapshot file itself.
func (s *logStore) Snapshot() (pb.Snapshot, error) {
	return pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: s.snapIndex, Term: s.snapTerm, ConfState: s.cs}}, nil
}

// append adds entries that are now in the WAL, replacing any conflicting
// suffix (Raft may overwrite uncommitted entries after a leader change).
func (s *logStore) append(ents []pb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].Index
	if first <= s.snapIndex {
		// Already covered by the snapshot; keep only the part after it.
		skip := s.snapIndex + 1 - first
		if skip >= uint64(len(ents)) {
			return nil
		}
		ents, first = ents[skip:], s.snapIndex+1
	}
	if first > s.lastIndex()+1 {
		return errors.Newf("log gap: entry %d follows last index %d", first, s.lastIndex())
	}
	if s.knobs.truncateOffByOne(s, ents) {
		return nil
	}
	s.ents = append(s.ents[:first-s.firstIndex()], ents...)
	return nil
}

// compact drops entries up to index, now covered by a durable snapshot.
func (s *logStore) compact(index, term uint64) {
	if index <= s.snapIndex {
		return
	}
	if index >= s.lastIndex() {
		s.ents = nil
	} else {
		n := index - s.snapIndex
		rest := make([]pb.Entry, uint64(len(s.ents))-n)
		copy(rest, s.ents[n:])
		s.ents = rest
	}
	s.snapIndex, s.snapTerm = index, term
}

// silentLogger keeps etcd/raft's chatter out of the output; panics and
// fatal errors still surface.
type silentLogger struct{}

func (silentLogger) Debug(...interface{})          {}
func (silentLogger) Debugf(string, ...interface{}) {}
func (silentLogger) Error(...interface{})          {}
func (silentLogger) Errorf(string, ...interface{}) {}
func (silentLogger) Info(...interface{})           {}
func (silentLogger) Infof(string, ...interface{})  {}
func (silentLogger) Warning(...interface{})        {}
func (silentLogger) Warningf(string, ...interface{}) {
}
func (silentLogger) Fatal(v ...interface{}) { panic(fmt.Sprint(v...)) }
func (silentLogger) Fatalf(format string, v ...interface{}) {
	panic(fmt.Sprintf(format, v...))
}
func (silentLogger) Panic(v ...interface{}) { panic(fmt.Sprint(v...)) }
func (silentLogger) Panicf(format string, v ...interface{}) {
	panic(fmt.Sprintf(format, v...))
}
