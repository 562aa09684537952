package cluster

import (
	"slices"

	"github.com/cockroachdb/errors"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Moves (docs/cluster.md, "Moves"). A replica moves from node A to node
// B by configuration changes of its group, which the group's leader
// proposes one at a time (the node decides which, node/moves.go): B is
// added as a learner (it receives the log or a snapshot but does not
// count in quorums), promoted to voter once it has caught up, and A is
// then removed. Each is a single-node change (no joint consensus), and
// Raft refuses a second while one is unapplied, so a group never has
// more than one pending.

// MembershipChange is a configuration change a node proposes.
type MembershipChange int

const (
	// AddLearner adds a non-voting member that receives the log.
	AddLearner MembershipChange = iota + 1
	// Promote makes a learner (or a new node) a voter.
	Promote
	// Remove takes a voter or learner out.
	Remove
)

// ProposeMembership proposes change for node id (addr: its client
// address, given to every replica's OnConfChange, for AddLearner and
// Promote). Only a leader proposes; a change refused by Raft (one still
// pending) or dropped by a lost leadership simply does not apply, and the
// node proposes again later from the applied configuration.
func (r *Replica) ProposeMembership(change MembershipChange, id uint64, addr string) error {
	if !r.Replicated() || r.rn == nil || r.g.raftState != raft.StateLeader {
		return errors.New("cluster: only a replicated group's leader changes its membership")
	}
	if r.fatal != nil {
		return r.fatal
	}
	if id == 0 {
		return errors.New("cluster: membership change of node 0")
	}
	cc := pb.ConfChange{NodeID: id, Context: confChangeContext(0, []byte(addr))}
	switch change {
	case AddLearner:
		cc.Type = pb.ConfChangeAddLearnerNode
	case Promote:
		cc.Type = pb.ConfChangeAddNode
	case Remove:
		if len(r.conf.Voters) == 1 && r.conf.Voters[0] == id {
			return errors.New("cluster: cannot remove the group's last voter")
		}
		cc.Type = pb.ConfChangeRemoveNode
	default:
		return errors.Newf("cluster: membership change %d", change)
	}
	if err := r.rn.ProposeConfChange(cc); err != nil {
		return errors.Wrap(err, "cluster: propose a membership change")
	}
	r.settle()
	return nil
}

// Quiescent reports whether everything in the log is applied and nothing
// waits to be proposed: a leadership handed over now leaves no write of
// this leader's in flight, so none gets the ambiguous ErrMsgLeaderLost
// (Raft drops the proposals that arrive during the handover, which are
// answered with a redirect: nothing was done).
func (r *Replica) Quiescent() bool {
	return r.rn != nil && r.quiescent() && len(r.g.queue) == 0
}

// Learners are the group's learners as of the applied configuration,
// sorted.
func (r *Replica) Learners() []uint64 {
	out := slices.Clone(r.conf.Learners)
	slices.Sort(out)
	return out
}

// CaughtUp reports whether this leader knows node id holds the log up to
// within slack entries of its commit index (Raft's Progress Match). A
// follower, or a node the leader does not track, is not caught up.
func (r *Replica) CaughtUp(id uint64, slack uint64) bool {
	if !r.Replicated() || r.rn == nil || r.g.raftState != raft.StateLeader {
		return false
	}
	st := r.rn.Status()
	pr, ok := st.Progress[id]
	return ok && pr.Match > 0 && pr.Match+slack >= st.Commit
}

// RecentlyActive reports whether this leader heard from node id within
// the last election timeout (false on a follower).
func (r *Replica) RecentlyActive(id uint64) bool {
	if !r.Replicated() || r.rn == nil || r.g.raftState != raft.StateLeader {
		return false
	}
	pr, ok := r.rn.Status().Progress[id]
	return ok && pr.RecentActive
}

// ErrMsgGroupMoved answers the requests a replica still held when its
// node dropped it (the group moved off the node): nothing was done, so a
// client retries, and the node then redirects it to the group's leader.
const ErrMsgGroupMoved = "TRYAGAIN the replica group moved off this node; retry"

// Abandon answers every request the replica still holds (batches waiting
// for a read round, a turn or a commit) before it is closed for good: a
// write it proposed with ErrMsgLeaderLost (others may commit it), the
// rest with ErrMsgGroupMoved. Close alone leaves them unanswered.
func (r *Replica) Abandon() {
	if !r.Replicated() || r.rn == nil {
		return
	}
	r.failActive(ErrMsgLeaderLost, func(*Request) string { return ErrMsgGroupMoved })
	clear(r.inflight)
	r.advanceAll()
}
