package cluster

import (
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Observer is told what a replica's Raft log, Raft state and state machine
// hold as they change, so that the simulator can check Raft's safety
// properties across every replica at every step (sim/raftcheck.go):
// election safety, log matching, leader completeness, state-machine
// safety. Options.Observer is nil in production; each call site costs one
// nil check. An observer must not call back into the replica.
type Observer interface {
	// LogLoaded: the replica (re)started from disk, or installed its
	// leader's snapshot: its log is now the snapshot at (snapIndex,
	// snapTerm) followed by ents, and its state machine holds exactly
	// the snapshot (it applies snapIndex+1 next).
	LogLoaded(snapIndex, snapTerm uint64, ents []pb.Entry)
	// LogAppended: entries entered the log (its WAL copy): from
	// ents[0].Index on, the log now holds ents, following the entry at
	// ents[0].Index-1 whose term is prevTerm (its snapshot's term when
	// that is the snapshot index). Whatever followed before is gone.
	LogAppended(prevTerm uint64, ents []pb.Entry)
	// Ready: the replica persisted a Ready: hs is its Raft HardState
	// (term, vote, commit) after it, leader whether it now leads (in
	// term hs.Term).
	Ready(hs pb.HardState, leader bool)
	// Applied: the state machine applied e.
	Applied(e pb.Entry)
}

// observeLoaded reports the recovered (or installed) log.
func (r *Replica) observeLoaded() {
	if o := r.opts.Observer; o != nil {
		o.LogLoaded(r.store.snapIndex, r.store.snapTerm, r.store.ents)
	}
}

// observeReady reports what persisting rd changed: the log as the store
// now holds it from rd's first entry on (so that an entry the store kept
// by mistake shows), then the HardState and role.
func (r *Replica) observeReady(rd raft.Ready) {
	o := r.opts.Observer
	if o == nil {
		return
	}
	if len(rd.Entries) > 0 {
		first := max(rd.Entries[0].Index, r.store.firstIndex())
		if first <= r.store.lastIndex() {
			prev, _ := r.store.Term(first - 1)
			o.LogAppended(prev, r.store.ents[first-r.store.firstIndex():])
		}
	}
	st := r.rn.BasicStatus()
	o.Ready(st.HardState, st.RaftState == raft.StateLeader)
}

// observeApplied reports an applied entry.
func (r *Replica) observeApplied(e pb.Entry) {
	if o := r.opts.Observer; o != nil {
		o.Applied(e)
	}
}
