package cluster

import (
	"encoding/binary"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
)

// A replicated group: this file holds what a replica does when its group
// has more than one voter (Options.Peers). The single-voter path in
// replica.go answers a batch before Submit returns; here a write is
// answered only once a majority holds it, so a batch can finish during a
// later call (SubmitAsync, Step or Tick) and its done callback says when.
//
// Consistency (docs/cluster.md):
//   - Writes are proposed only by the leader (proposal forwarding is off)
//     and answered after they commit and apply.
//   - A batch that reads anything waits for a ReadIndex round (Raft's
//     ReadOnlySafe: a heartbeat quorum confirms leadership, no clock
//     assumption) and for the applied index to reach it, before any of its
//     commands runs; its writes are proposed only then. Reads after a write
//     of the same batch run when that write applies.
//   - WATCHed transactions and FCALL decide against the applied state, so
//     they run only when nothing proposed is still unapplied (the group is
//     quiescent); batches queue behind them in order.
//   - A replica that loses leadership fails what it proposed with
//     ErrMsgLeaderLost (outcome unknown: the entry may still commit) and
//     what it had not proposed with a redirect (safe to retry).
//   - A follower answers a keyed read only on a READONLY connection and
//     only while it is fresh (followerStaleMax): possibly stale, bounded.

const (
	// ErrMsgLeaderLost answers a write that was proposed but whose leader
	// lost its leadership before it committed: it may or may not apply.
	ErrMsgLeaderLost = "ERR leadership changed before the write committed; it may or may not have been applied"
	// ErrMsgDiskUnknown answers a write a replicated leader proposed before
	// its disk failed: the entry may already be on a majority of the
	// others, which can commit it without this node.
	ErrMsgDiskUnknown = "ERR disk write failed on this node before the write committed; it may or may not have been applied"
	// electionTicks and heartbeatTicks are in Tick calls (the runtimes tick
	// every 100 ms): elections after 1–2 s of silence, heartbeats at 10 Hz.
	electionTicks  = 10
	heartbeatTicks = 1
	// followerStaleMax bounds how long a follower keeps serving READONLY
	// reads after it last heard from a leader.
	followerStaleMax = time.Second
)

// snapshotInstalled marks a RecSnapshot written when a follower installed
// its leader's snapshot: recovery drops any log entries before the marker
// that lie past the snapshot's index (they belonged to a stale log).
const snapshotInstalled = 'i'

// groupState is a replicated replica's bookkeeping.
type groupState struct {
	lead      uint64
	raftState raft.StateType
	queue     []*batch // leader: batches not yet fully proposed, in order
	active    []*batch // every batch not yet fully answered
	// ReadIndex rounds: at most one is in flight (readWait, by its
	// context); batches that arrive meanwhile wait in readNext and share
	// the next round, issued when the current one returns. A round must
	// start after its batches arrived, so none may join one in flight.
	readWait  map[uint64][]*batch
	readNext  []*batch
	nextRead  uint64
	leadHeard int64 // nanos: last message from the leader (followers)
	// What a follower knows of how far behind it is (fresh): Raft's
	// heartbeats carry the commit index capped at what the leader knows
	// the follower holds, so only an append tells it the leader's commit
	// index. leadCommit is the highest one a leader stated in an append,
	// leadCommitTerm the term of the last such append and appAt (nanos)
	// when it came; contactSince is when the follower last heard from a
	// leader after more than followerStaleMax of silence (or since it
	// started). snapBehind is the highest index of a snapshot a leader
	// streamed to it that it lacked. Each is a committed index.
	leadCommit, leadCommitTerm uint64
	appAt, contactSince        int64
	snapBehind                 uint64
	snapSent                   uint64
	snapRecvd                  uint64
	leaderLost                 uint64
	// snapForMember: a voter was added after the log was compacted; the
	// next snapshot must be taken after the change (appliedConfChange).
	snapForMember bool
	// snap: snapshots streamed to and from this replica (snapstream.go).
	snap snapStreams
}

// Replicated reports whether the group has more than one voter configured.
func (r *Replica) Replicated() bool { return len(r.opts.Peers) > 1 }

// ID is this replica's Raft id.
func (r *Replica) ID() uint64 {
	if r.opts.ID == 0 {
		return nodeID
	}
	return r.opts.ID
}

// Leader is the id of the group's leader as this replica knows it (0:
// unknown, an election is on).
func (r *Replica) Leader() uint64 {
	if !r.Replicated() {
		return r.ID()
	}
	return r.g.lead
}

// IsLeader reports whether this replica leads its group.
func (r *Replica) IsLeader() bool {
	if !r.Replicated() {
		return true
	}
	return r.g.raftState == raft.StateLeader
}

// Voters are the group's voters as of the applied configuration, sorted.
func (r *Replica) Voters() []uint64 {
	if !r.Replicated() || len(r.conf.Voters) == 0 {
		return []uint64{r.ID()}
	}
	out := append([]uint64(nil), r.conf.Voters...)
	slices.Sort(out)
	return out
}

// DownPeers are the voters the leader has not heard from within the last
// election timeout (Raft's RecentActive, which CheckQuorum maintains),
// sorted. A follower does not know, and reports none.
func (r *Replica) DownPeers() []uint64 {
	if !r.Replicated() || r.rn == nil || r.g.raftState != raft.StateLeader {
		return nil
	}
	var down []uint64
	for id, pr := range r.rn.Status().Progress {
		if id != r.ID() && !pr.RecentActive {
			down = append(down, id)
		}
	}
	slices.Sort(down)
	return down
}

// Term is the current Raft term (0 before persistence starts Raft).
func (r *Replica) Term() uint64 {
	if r.rn == nil {
		return 0
	}
	// BasicStatus: Status copies every peer's progress too, and the
	// simulator asks for the term after every batch of every node (12%
	// of a cluster run's CPU).
	return r.rn.BasicStatus().Term
}

// GroupStats is what INFO and CLUSTER INFO report about replication.
type GroupStats struct {
	Term, Commit, Applied uint64
	Leader                uint64
	Role                  string
	// SnapshotsSent counts snapshots a follower confirmed installing;
	// SnapshotsReceived, snapshots this replica installed from a leader.
	SnapshotsSent     uint64
	SnapshotsReceived uint64
	LeadershipLost    uint64
	QueuedBatches     int
	// Snapshot streams (snapstream.go): chunks and bytes sent, sent again
	// after a go-back, received, and refused.
	Snapshot SnapshotStreamStats
}

// GroupStats reports the replica's replication state.
func (r *Replica) GroupStats() GroupStats {
	s := GroupStats{Applied: r.applied, Leader: r.Leader(), Role: "leader",
		SnapshotsSent: r.g.snapSent, SnapshotsReceived: r.g.snapRecvd, LeadershipLost: r.g.leaderLost, QueuedBatches: len(r.g.queue),
		Snapshot: r.SnapshotStreams()}
	if r.rn != nil {
		st := r.rn.Status()
		s.Term, s.Commit = st.Term, st.Commit
		if r.Replicated() {
			s.Role = stateName(st.RaftState)
		}
	}
	return s
}

func stateName(s raft.StateType) string {
	switch s {
	case raft.StateLeader:
		return "leader"
	case raft.StateCandidate, raft.StatePreCandidate:
		return "candidate"
	}
	return "follower"
}

// SubmitAsync is Submit for any group: done (if set) runs once every
// request of reqs has its reply, which on a replicated group can be during
// a later SubmitAsync, Step or Tick call. On a single-voter group it runs
// before SubmitAsync returns.
func (r *Replica) SubmitAsync(now int64, reqs []Request, done func()) {
	if !r.Replicated() || !r.persist {
		r.Submit(now, reqs)
		if done != nil {
			done()
		}
		return
	}
	ms := r.advanceNow(now)
	b := &batch{reqs: reqs, nowMillis: ms, state: make([]reqState, len(reqs)), failMsg: make([]string, len(reqs)), done: done}
	r.g.active = append(r.g.active, b)
	switch {
	case r.fatal != nil || r.noSpace != nil:
		r.answerAsFollower(b, r.writeRefusal())
	case r.g.raftState != raft.StateLeader:
		r.answerAsFollower(b, "")
	default:
		if needsReadIndex(reqs) {
			b.readCtx = 1 // waiting; the round's context is set when issued
			r.g.readNext = append(r.g.readNext, b)
			if len(r.g.readWait) == 0 {
				r.issueReadRound()
			}
		}
		r.g.queue = append(r.g.queue, b)
	}
	r.settle()
}

// needsReadIndex reports whether a batch reads anything: only a batch of
// plain writes can go to the log without confirming leadership first.
func needsReadIndex(reqs []Request) bool {
	for i := range reqs {
		if reqs[i].Txn != nil || functionKind(reqs[i].Argv) == fnCall || !isWrite(reqs[i].Argv) {
			return true
		}
	}
	return false
}

// answerAsFollower answers a batch this replica will not propose: reads it
// may serve run locally in order, everything else gets refusal (when set)
// or a redirect to the leader.
func (r *Replica) answerAsFollower(b *batch, refusal string) {
	fresh := r.fresh()
	for i := range b.reqs {
		req := &b.reqs[i]
		if r.followerServes(req, fresh) {
			continue // stLocal
		}
		msg := refusal
		if msg == "" || isReadOnly(req) {
			msg = r.redirect(req)
		}
		b.state[i], b.failMsg[i] = stWriteFailed, msg
	}
	b.submitted = len(b.reqs)
}

func isReadOnly(req *Request) bool {
	return req.Txn == nil && functionKind(req.Argv) != fnCall && !isWrite(req.Argv)
}

// fresh reports whether a follower has heard from a leader recently and
// applied everything it knows to be committed: by its own log, by the
// leader's appends, by the snapshots a leader streamed to it. It must
// also have had an append of the current term since it (re)gained
// contact with a leader. Raft's heartbeats carry the commit index capped
// at what the leader knows the follower holds, so a follower far behind
// (waiting for a snapshot, cut off for a while, just restarted) would
// otherwise count itself fresh on the first heartbeat and serve reads of
// any age (cluster-big-snapshots found it). In a group with no writes, a
// follower that restarted redirects until the next write.
func (r *Replica) fresh() bool {
	if r.g.lead == 0 || r.lastNowNanos-r.g.leadHeard > int64(followerStaleMax) {
		return false
	}
	if r.g.leadCommitTerm != r.store.hs.Term || r.g.appAt < r.g.contactSince ||
		r.applied < r.g.leadCommit || r.applied < r.g.snapBehind {
		return false
	}
	return r.applied >= r.store.hs.Commit
}

// followerServes reports whether a non-leader answers req itself: reads
// without keys (DBSIZE, SCAN, INFO-like, FUNCTION LIST), node-local
// maintenance (SAVE, BGSAVE, LASTSAVE), and keyed reads on READONLY
// connections while fresh.
func (r *Replica) followerServes(req *Request, fresh bool) bool {
	if !isReadOnly(req) {
		return false
	}
	c := engine.Lookup(req.Argv[0])
	if c == nil || len(c.Keys(req.Argv)) == 0 {
		return true
	}
	return req.ReadOnly && fresh
}

func (r *Replica) redirect(req *Request) string {
	if r.opts.Redirect != nil {
		return r.opts.Redirect(req, r.g.lead)
	}
	if r.g.lead == 0 || r.g.lead == r.ID() {
		return "TRYAGAIN no leader for this replica group yet (election in progress)"
	}
	return "MOVED 0 node-" + strconv.FormatUint(r.g.lead, 10)
}

// TransferLeadership asks Raft to hand this group's leadership to voter
// to (Raft's TransferLeader: the leader brings it up to date, then tells
// it to campaign). A no-op unless this replica leads a replicated group.
// The messages it sends go out now, through Options.Send.
func (r *Replica) TransferLeadership(to uint64) {
	if !r.Replicated() || r.rn == nil || r.g.raftState != raft.StateLeader || to == r.ID() || r.fatal != nil {
		return
	}
	r.rn.TransferLeader(to)
	r.settle()
}

// Step hands the replica a message from a peer (its bytes as sent by
// Options.Send). A malformed message is an error and changes nothing.
func (r *Replica) Step(now int64, data []byte) error {
	if !r.Replicated() || r.rn == nil {
		return errors.New("cluster: not a replicated group")
	}
	r.advanceNow(now)
	if err := r.stepOne(PeerMsg{Data: data, Member: true}); err != nil {
		return err
	}
	r.settle()
	return nil
}

// PeerMsg is a peer message as the runtime received it: From is the
// sender the transport authenticated (0: unknown, not checked), Member
// whether this node counts it a member of the cluster (its address
// book). The replica refuses a message that claims another sender than
// From, and one from a non-member unless it is what a leader sends a
// follower (an append, a heartbeat, a snapshot): a follower that fell
// behind may not have applied yet the change that made its new leader a
// member, and must still hear from it (etcd refuses only removed
// members, for the same reason).
type PeerMsg struct {
	From   uint64
	Member bool
	Data   []byte
}

// ErrNotMember marks a message refused because its sender is not a
// member and it is not a leader's message to a follower.
var ErrNotMember = errors.New("cluster: a message from a node that is not a member")

// StepFrom is StepBatch for messages whose sender the runtime knows.
func (r *Replica) StepFrom(now int64, msgs []PeerMsg) (errs []error) {
	if !r.Replicated() || r.rn == nil {
		return []error{errors.New("cluster: not a replicated group")}
	}
	r.advanceNow(now)
	for i, m := range msgs {
		if err := r.stepOne(m); err != nil {
			if errs == nil {
				errs = make([]error, len(msgs))
			}
			errs[i] = err
		}
	}
	r.settle()
	return errs
}

// StepBatch is Step for several messages at once: each is stepped, then
// the replica settles once, so a burst costs one WAL write and one round
// of sends rather than one per message. errs is nil when every message
// was well-formed, else it holds each message's error (nil for good ones).
func (r *Replica) StepBatch(now int64, msgs [][]byte) (errs []error) {
	if !r.Replicated() || r.rn == nil {
		return []error{errors.New("cluster: not a replicated group")}
	}
	r.advanceNow(now)
	for i, data := range msgs {
		if err := r.stepOne(PeerMsg{Data: data, Member: true}); err != nil {
			if errs == nil {
				errs = make([]error, len(msgs))
			}
			errs[i] = err
		}
	}
	r.settle()
	return errs
}

func (r *Replica) stepOne(pm PeerMsg) error {
	data := pm.Data
	if len(data) == 0 {
		return errors.New("cluster: empty peer message")
	}
	switch data[0] {
	case peerKindRaftChecked:
	case peerKindSnapChunk, peerKindSnapAck:
		if !pm.Member && data[0] == peerKindSnapAck {
			return errors.Wrapf(ErrNotMember, "node %d sent a snapshot acknowledgement", pm.From)
		}
		return r.stepSnap(data, pm.From)
	case peerKindRaft:
		return errors.New("cluster: a Raft message without a checksum (sent by an older keel?)")
	default:
		return errors.Newf("cluster: peer message of unknown kind 0x%02x", data[0])
	}
	m, err := decodeRaftMsg(data, r.ID())
	if err != nil {
		return err
	}
	if pm.From != 0 && m.From != pm.From {
		return errors.Newf("cluster: a Raft message from node %d claims to come from node %d", pm.From, m.From)
	}
	if !pm.Member && m.Type != pb.MsgApp && m.Type != pb.MsgHeartbeat && m.Type != pb.MsgSnap {
		return errors.Wrapf(ErrNotMember, "node %d sent %s", pm.From, m.Type)
	}
	if m.Type == pb.MsgHeartbeat && m.Commit > r.store.lastIndex() {
		// A leader sends a follower at most the index it knows the
		// follower holds (synced before it was acknowledged); Raft would
		// panic on more (issue 15: one heartbeat committing 2^40 took
		// every node down).
		return errors.Newf("cluster: a heartbeat from node %d commits index %d beyond this log's last, %d", m.From, m.Commit, r.store.lastIndex())
	}
	if r.fatal != nil {
		return nil // reopening; peers retry
	}
	if m.From != 0 && m.From == r.g.lead || m.Type == pb.MsgApp || m.Type == pb.MsgHeartbeat || m.Type == pb.MsgSnap {
		r.heardLeader()
	}
	if m.Type == pb.MsgSnap {
		if ok, err := r.admitSnap(&m); !ok {
			return err
		}
	}
	if err := r.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) && !errors.Is(err, raft.ErrStepLocalMsg) {
		return errors.Wrap(err, "cluster: step")
	}
	if m.Type == pb.MsgApp && m.Term >= r.g.leadCommitTerm {
		r.g.leadCommit = max(r.g.leadCommit, m.Commit)
		r.g.leadCommitTerm, r.g.appAt = m.Term, r.lastNowNanos
	}
	return nil
}

// heardLeader notes a message from a leader (fresh).
func (r *Replica) heardLeader() {
	if r.g.leadHeard == 0 || r.lastNowNanos-r.g.leadHeard > int64(followerStaleMax) {
		r.g.contactSince = r.lastNowNanos
	}
	r.g.leadHeard = r.lastNowNanos
}

// settle drives Raft and the batch queue until neither moves, then
// answers what can be answered.
func (r *Replica) settle() {
	for range 16 {
		if r.drive() != nil {
			break
		}
		if !r.pump() {
			break
		}
	}
	r.advanceAll()
	r.maybeSyncEverySec()
	if r.g.snapForMember && r.job == nil && r.fatal == nil {
		// A job already running may predate the change: wait for it.
		if j, err := r.newJob(r.lastNowMillis, true); err == nil {
			r.job = j
			r.g.snapForMember = false
		}
	}
	r.maybeTriggerSnapshot()
}

// quiescent: everything in the log is applied and no effects entry is
// being filled.
func (r *Replica) quiescent() bool {
	return r.applied >= r.store.lastIndex() && r.fn.open == nil && !r.rn.HasReady()
}

// pump proposes the queued batches in order, as far as their barriers
// allow. It reports whether it proposed anything.
func (r *Replica) pump() bool {
	moved := false
	for len(r.g.queue) > 0 && r.fatal == nil && r.g.raftState == raft.StateLeader {
		b := r.g.queue[0]
		if b.readCtx != 0 && (!b.readReady || r.applied < b.readIndex) {
			break
		}
		b.readCtx = 0
		start := b.submitted
		finished := r.proposeFrom(b)
		if b.submitted > start {
			moved = true
		}
		if !finished {
			break
		}
		r.g.queue[0] = nil
		r.g.queue = r.g.queue[1:]
	}
	return moved
}

// proposeFrom classifies and proposes b's requests from b.submitted on.
// It stops (false) at a WATCHed transaction or a call that needs the
// group quiescent while it is not.
func (r *Replica) proposeFrom(b *batch) bool {
	cmds := r.cmdScratch[:0]
	r.cmdScratch = nil // a call below that proposes too (none does today) gets its own
	defer func() {
		if cap(cmds) <= scratchBytesKept {
			r.cmdScratch = cmds[:0]
		}
	}()
	var positions []int
	propose := func() {
		if len(positions) == 0 {
			return
		}
		r.nextID++
		id := r.nextID
		data := encodeEntryHeader(make([]byte, 0, 32+len(cmds)), id, b.nowMillis, len(positions))
		data = append(data, cmds...)
		p := &proposal{b: b, positions: positions}
		r.inflight[id] = p
		if err := r.rn.Propose(data); err != nil {
			delete(r.inflight, id)
			r.failProposal(p, r.redirectAll(b, positions))
		}
		cmds, positions = cmds[:0], nil
	}
	for i := b.submitted; i < len(b.reqs); i++ {
		req := &b.reqs[i]
		cc := membershipKind(req.Argv)
		gate := cc != ccNone || functionKind(req.Argv) == fnCall ||
			req.Txn != nil && len(req.Txn.Watched) > 0
		if gate {
			propose()
			r.flushCalls()
			if r.drive() != nil || !r.quiescent() {
				b.submitted = i
				return false
			}
			b.submitted = i + 1
			switch {
			case cc != ccNone:
				r.submitConfChange(b, i, cc)
			case req.Txn != nil:
				r.submitTxn(b, i, propose)
			default:
				r.submitCall(b, i)
			}
			continue
		}
		b.submitted = i + 1
		if req.Txn != nil {
			r.submitTxn(b, i, propose)
			continue
		}
		if msg := r.reshardRefusal(req.Argv); msg != "" {
			b.state[i], b.failMsg[i] = stWriteFailed, msg
			continue
		}
		if !isWrite(req.Argv) {
			continue
		}
		if msg := r.writeRefusal(); msg != "" {
			b.state[i], b.failMsg[i] = stWriteFailed, msg
			continue
		}
		argv := r.withAsking(req, absoluteExpiry(b.nowMillis, req.Argv))
		n := encodedCommandBytes(argv)
		if n > r.replicatedCommandBytesMax() {
			b.state[i], b.failMsg[i] = stWriteFailed, "ERR command too large to replicate ("+strconv.Itoa(n)+" bytes)"
			continue
		}
		if len(positions) > 0 && len(cmds)+n > r.entryBytesMax() {
			propose()
		}
		b.state[i] = stWritePending
		cmds = appendCommand(cmds, argv)
		positions = append(positions, i)
	}
	propose()
	r.flushCalls()
	return true
}

// redirectAll is the refusal for a proposal raft dropped (leadership just
// moved): nothing was proposed, so a redirect is safe to follow.
func (r *Replica) redirectAll(b *batch, positions []int) string {
	if len(positions) == 0 {
		return r.redirect(&Request{})
	}
	return r.redirect(&b.reqs[positions[0]])
}

// advanceAll answers, in each active batch, every request that no longer
// waits, and finishes the batches that are complete.
func (r *Replica) advanceAll() {
	n := 0
	for _, b := range r.g.active {
		r.advance(b)
		if b.next >= len(b.reqs) {
			if b.done != nil {
				b.done()
			}
			continue
		}
		r.g.active[n] = b
		n++
	}
	clear(r.g.active[n:])
	r.g.active = r.g.active[:n]
}

// finishEarly answers a replicated batch whose last write has just
// applied, in the middle of a Ready, rather than once every entry the
// Ready committed has applied (advanceAll): a leader that steps a burst
// of acknowledgements applies many batches' entries in one go, and each
// batch's connection can send its replies while the rest apply. The
// batch's reads after its last write run now, on the state its writes
// left, as they would at the end of a Ready that committed less.
func (r *Replica) finishEarly(b *batch) {
	if b.done == nil || b.submitted < len(b.reqs) {
		return
	}
	r.advance(b)
	if b.next >= len(b.reqs) {
		done := b.done
		b.done = nil // advanceAll drops it from the active batches
		done()
	}
}

// advance answers b's requests in order up to the first that still waits
// for the log (or has not been classified yet).
func (r *Replica) advance(b *batch) {
	for b.next < b.submitted && b.state[b.next] != stWritePending {
		if b.next >= b.warmed {
			r.warmBatchAhead(b, b.submitted)
		}
		req := &b.reqs[b.next]
		if b.state[b.next] == stWriteFailed {
			req.W.WriteError(b.failMsg[b.next])
		} else if b.state[b.next] == stLocal {
			r.runLocal(b.nowMillis, req)
		}
		b.next++
	}
}

// onSoftState follows leadership changes.
func (r *Replica) onSoftState(ss *raft.SoftState) {
	was := r.g.raftState
	r.g.lead, r.g.raftState = ss.Lead, ss.RaftState
	if ss.Lead != 0 && ss.Lead != r.ID() {
		r.heardLeader()
	}
	if was == raft.StateLeader && ss.RaftState != raft.StateLeader {
		r.g.leaderLost++
		r.loseLeadership()
		r.dropStreams()
	}
}

// loseLeadership fails every batch this replica was leading: proposed
// writes with ErrMsgLeaderLost, the rest with a redirect.
func (r *Replica) loseLeadership() {
	r.failActive(ErrMsgLeaderLost, r.redirect)
	clear(r.inflight)
	r.fn.open = nil
	r.fn.pending.reset()
}

// failBatches fails every unanswered request of the replicated batches
// (the replica hit a disk error): what it proposed with ErrMsgDiskUnknown,
// since the others may commit it; what it had not, with msg.
func (r *Replica) failBatches(msg string) {
	r.failActive(ErrMsgDiskUnknown, func(*Request) string { return msg })
}

// failActive answers every unanswered request of the active batches: a
// write it proposed with proposed (its outcome is unknown: the others may
// commit it), a refusal already decided as it was, anything else with
// rest(req) (nothing was done). No batch waits for a read round or a turn
// any more.
func (r *Replica) failActive(proposed string, rest func(*Request) string) {
	for _, b := range r.g.active {
		for i := b.next; i < len(b.reqs); i++ {
			switch {
			case i < b.submitted && b.state[i] == stWritePending:
				b.state[i], b.failMsg[i] = stWriteFailed, proposed
			case i < b.submitted && b.state[i] == stWriteFailed:
			default:
				b.state[i], b.failMsg[i] = stWriteFailed, rest(&b.reqs[i])
			}
		}
		b.submitted = len(b.reqs)
	}
	clear(r.g.readWait)
	r.g.readNext = nil
	clear(r.g.queue)
	r.g.queue = r.g.queue[:0]
}

// onReadStates releases the batches whose ReadIndex came back.
func (r *Replica) onReadStates(rss []raft.ReadState) {
	for _, rs := range rss {
		if len(rs.RequestCtx) != 8 {
			continue
		}
		ctx := binary.LittleEndian.Uint64(rs.RequestCtx)
		for _, b := range r.g.readWait[ctx] {
			b.readReady, b.readIndex = true, rs.Index
		}
		delete(r.g.readWait, ctx)
	}
	if len(r.g.readWait) == 0 && len(r.g.readNext) > 0 {
		r.issueReadRound()
	}
}

// issueReadRound starts one ReadIndex round for every batch waiting for
// one.
func (r *Replica) issueReadRound() {
	r.g.nextRead++
	ctx := r.g.nextRead
	r.g.readWait[ctx] = r.g.readNext
	r.g.readNext = nil
	r.rn.ReadIndex(binary.LittleEndian.AppendUint64(nil, ctx))
}

// Which of a Ready's messages a call to send hands out: drive sends a
// Ready's messages in one go after persisting it, or in two parts around
// persisting it (sendsBeforeAppend).
const (
	sendAll = iota
	sendBeforeAppend
	sendAfterAppend
)

// afterAppend reports whether a message states what this replica has
// persisted (an acknowledgement of appended entries, a vote), so that it
// may leave only once the Ready it came with is on disk. Raft keeps these
// in the same list as the rest when storage writes are synchronous; the
// rest may be sent before the Ready's entries are written.
func afterAppend(t pb.MessageType) bool {
	return t == pb.MsgAppResp || t == pb.MsgVoteResp || t == pb.MsgPreVoteResp
}

// sendsBeforeAppend reports whether drive may send rd's messages other
// than the afterAppend ones before persisting rd: only when rd changes
// neither the term nor the vote (Raft's rule: nothing leaves before the
// latest HardState is on disk) and installs no snapshot. Then what goes
// early is a leader's appends and heartbeats (and a follower's heartbeat
// replies), which promise nothing about this replica's disk.
func (r *Replica) sendsBeforeAppend(rd *raft.Ready) bool {
	if len(rd.Messages) == 0 || !raft.IsEmptySnap(rd.Snapshot) {
		return false
	}
	hs := rd.HardState
	return raft.IsEmptyHardState(hs) || hs.Term == r.store.hs.Term && hs.Vote == r.store.hs.Vote
}

// send hands Raft's messages of one Ready (which: sendAll, or the part
// before or after persisting it) to the transport, leaving out those a
// later message of the same Ready supersedes (superseded). A MsgSnap is
// not sent as it is: the snapshot file is streamed to the follower in
// chunks first (snapstream.go), and the MsgSnap follows once the follower
// holds it.
func (r *Replica) send(msgs []pb.Message, which int) {
	skip := superseded(msgs)
	for i := range msgs {
		if skip != nil && skip[i] || which == sendBeforeAppend && afterAppend(msgs[i].Type) ||
			which == sendAfterAppend && !afterAppend(msgs[i].Type) {
			continue
		}
		m := msgs[i]
		r.opts.Knobs.voteRejectLost(&m)
		if m.Type == pb.MsgSnap {
			if !confLists(m.Snapshot.Metadata.ConfState, m.To) {
				// Raft would ignore it on arrival (a node added after the
				// snapshot): failing it here keeps the leader from
				// re-sending it in a loop; the snapshot the membership
				// change triggered (appliedConfChange) will list it.
				r.rn.ReportSnapshot(m.To, raft.SnapshotFailure)
				continue
			}
			r.startStream(m)
			continue
		}
		buf, err := encodeRaftMsg(&m)
		if err != nil {
			continue
		}
		if r.opts.Send != nil {
			r.opts.Send(m.To, buf)
		}
	}
}

// superseded marks the messages of one Ready that a later message of the
// same Ready to the same peer makes redundant (nil: none), so that a burst
// of steps costs each peer one message rather than one per step:
//   - an empty MsgApp (a leader tells a follower its new commit index
//     each time the index moves: after a batch of acknowledgements, once
//     per acknowledgement) when a later MsgApp of the same term follows,
//     which carries a commit index at least as high;
//   - an accepting MsgAppResp (a follower acknowledges every append it
//     stepped) when a later accepting one of the same term acknowledges
//     at least as high an index: the leader's progress only moves up to
//     the highest index acknowledged, and frees every in-flight append at
//     or below it.
//
// Leaving a message out is always safe, as for one the network lost; these
// leave nothing for Raft to retry, since the later message delivers all the
// peer would have learnt.
func superseded(msgs []pb.Message) []bool {
	if len(msgs) < 2 {
		return nil
	}
	// later[k] is what the messages after the current one hold for one
	// peer: whether a MsgApp follows, and the highest accepting
	// acknowledgement that follows (0: none), each of term term.
	type later struct {
		to, term uint64
		app      bool
		ack      uint64
	}
	var peers [8]later
	seen := peers[:0]
	var skip []bool
	for i := len(msgs) - 1; i >= 0; i-- {
		m := &msgs[i]
		if m.Type != pb.MsgApp && m.Type != pb.MsgAppResp {
			continue
		}
		k := slices.IndexFunc(seen, func(l later) bool { return l.to == m.To })
		if k < 0 {
			seen = append(seen, later{to: m.To, term: m.Term})
			k = len(seen) - 1
		}
		l := &seen[k]
		if l.term != m.Term {
			*l = later{to: m.To, term: m.Term} // what follows belongs to another term: keep this one
		}
		drop := false
		switch {
		case m.Type == pb.MsgApp:
			drop = l.app && len(m.Entries) == 0
			l.app = true
		case !m.Reject:
			drop = l.ack != 0 && l.ack >= m.Index
			l.ack = max(l.ack, m.Index)
		}
		if drop {
			if skip == nil {
				skip = make([]bool, len(msgs))
			}
			skip[i] = true
		}
	}
	return skip
}

// installSnapshot replaces this follower's state with a snapshot its
// leader streamed (snapstream.go): the file, already whole, synced and
// verified under its receiving name, is loaded (which verifies every
// checksum again), renamed to its index's name, and the log before it
// dropped.
func (r *Replica) installSnapshot(s pb.Snapshot) error {
	idx := s.Metadata.Index
	if idx <= r.applied {
		return nil
	}
	in, err := r.receivedSnapshot(s)
	if err != nil {
		return err
	}
	fs := r.opts.FS
	dir := disk.SnapshotDir(r.opts.Dir)
	final := path.Join(dir, disk.SnapshotName(idx))
	r.resetReserved()
	meta, _, err := loadSnapshot(fs, in.name, r.db, 0, r.restoreReserved)
	if err != nil {
		// A read can return flipped bits that are not on the disk.
		r.resetReserved()
		meta, _, err = loadSnapshot(fs, in.name, r.db, 0, r.restoreReserved)
	}
	if err != nil {
		r.abortIn()
		return errors.Wrap(err, "cluster: snapshot from leader")
	}
	if meta.Index != idx {
		r.abortIn()
		return errors.Newf("cluster: snapshot from leader holds index %d, message says %d", meta.Index, idx)
	}
	if err := fs.Rename(in.name, final); err != nil {
		return err
	}
	if err := fs.SyncDir(dir); err != nil {
		return errors.Mark(err, disk.ErrDirSync)
	}
	r.g.snapRecvd++
	r.slotsChanged()
	r.aclChanged()
	r.metaChanged()
	r.membersRestored(s.Metadata.ConfState.Voters)
	if meta.SaveMillis > r.lastNowMillis {
		r.lastNowMillis = meta.SaveMillis
	}
	r.logMillis = max(r.logMillis, meta.SaveMillis)
	r.store.ents = nil
	r.store.snapIndex, r.store.snapTerm = idx, s.Metadata.Term
	r.store.cs = s.Metadata.ConfState
	r.conf = s.Metadata.ConfState
	r.applied = idx
	r.prevSnapIndex, r.snapIndex = r.snapIndex, idx
	marker := disk.Record{Type: disk.RecSnapshot, Index: idx, Term: s.Metadata.Term, Payload: []byte{snapshotInstalled}}
	if err := r.wal.Append([]disk.Record{marker}); err != nil {
		return err
	}
	if err := r.wal.Sync(); err != nil {
		return err
	}
	r.observeLoaded()
	r.snapInstalled(in)
	return nil
}

// Membership changes: CLUSTER ADDNODE <id> <host:port> and CLUSTER DELNODE
// <id>, keel's own commands (Redis Cluster's MEET and FORGET carry no
// stable id). Each is one Raft configuration change (a single voter added
// or removed, which needs no joint consensus), proposed only when the
// group is quiescent, so at most one is ever pending; the reply comes when
// it applies.
const (
	ccNone = iota
	ccAdd
	ccRemove
)

func membershipKind(argv [][]byte) int {
	if len(argv) < 2 || !equalFold(argv[0], "cluster") {
		return ccNone
	}
	switch {
	case equalFold(argv[1], "addnode"):
		return ccAdd
	case equalFold(argv[1], "delnode"):
		return ccRemove
	}
	return ccNone
}

// IsMembershipCommand reports whether argv is CLUSTER ADDNODE or DELNODE,
// which a runtime must hand to SubmitAsync like a write.
func IsMembershipCommand(argv [][]byte) bool { return membershipKind(argv) != ccNone }

// confChangeContext carries the proposal id (so the proposer can answer
// when it applies) and the new member's address.
func confChangeContext(id uint64, addr []byte) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, id), addr...)
}

func (r *Replica) submitConfChange(b *batch, i int, kind int) {
	argv := b.reqs[i].Argv
	fail := func(msg string) { b.state[i], b.failMsg[i] = stWriteFailed, msg }
	if kind == ccAdd && len(argv) != 4 || kind == ccRemove && len(argv) != 3 {
		fail("ERR wrong number of arguments for 'cluster|" + strings.ToLower(string(argv[1])) + "' command")
		return
	}
	id, err := strconv.ParseUint(string(argv[2]), 10, 64)
	if err != nil || id == 0 {
		fail("ERR invalid node id '" + string(argv[2]) + "': a positive integer")
		return
	}
	member := false
	for _, v := range r.conf.Voters {
		member = member || v == id
	}
	cc := pb.ConfChange{NodeID: id}
	switch kind {
	case ccAdd:
		if member {
			fail("ERR node " + strconv.FormatUint(id, 10) + " is already a member")
			return
		}
		cc.Type = pb.ConfChangeAddNode
	case ccRemove:
		if !member {
			fail("ERR node " + strconv.FormatUint(id, 10) + " is not a member")
			return
		}
		if len(r.conf.Voters) == 1 {
			fail("ERR cannot remove the group's last member")
			return
		}
		cc.Type = pb.ConfChangeRemoveNode
	}
	if msg := r.writeRefusal(); msg != "" {
		fail(msg)
		return
	}
	r.nextID++
	pid := r.nextID
	var addr []byte
	if kind == ccAdd {
		addr = argv[3]
	}
	cc.Context = confChangeContext(pid, addr)
	p := &proposal{b: b, positions: []int{i}}
	b.state[i] = stWritePending
	r.inflight[pid] = p
	if err := r.rn.ProposeConfChange(cc); err != nil {
		delete(r.inflight, pid)
		r.failProposal(p, r.redirect(&b.reqs[i]))
	}
}

// appliedConfChange answers the proposer and tells the runtime.
func (r *Replica) appliedConfChange(e pb.Entry, cc pb.ConfChange) {
	var addr string
	if len(cc.Context) >= 8 {
		pid := binary.LittleEndian.Uint64(cc.Context)
		addr = string(cc.Context[8:])
		if p := r.inflight[pid]; p != nil && len(p.positions) == 1 {
			delete(r.inflight, pid)
			pos := p.positions[0]
			r.runUpTo(p.b, pos)
			p.b.reqs[pos].W.WriteSimple("OK")
			p.b.state[pos] = stWriteDone
			p.b.next = pos + 1
		}
	}
	added := cc.Type == pb.ConfChangeAddNode || cc.Type == pb.ConfChangeAddLearnerNode
	if added && r.store.snapIndex > 0 {
		// The log before the snapshot is gone, so the new member can only
		// start from a snapshot, and Raft ignores one that does not list
		// it: settle takes one that will, once this entry counts as
		// applied.
		r.g.snapForMember = true
	}
	if cc.NodeID != 0 {
		r.noteMemberAddr(cc.NodeID, added, addr)
	}
	if r.opts.OnConfChange != nil && cc.NodeID != 0 {
		// A learner is a member too (moves.go): it must be reachable.
		r.opts.OnConfChange(cc.NodeID, added, addr)
	}
}

// confLists reports whether cs names id as a voter or learner.
func confLists(cs pb.ConfState, id uint64) bool {
	for _, set := range [][]uint64{cs.Voters, cs.Learners, cs.VotersOutgoing, cs.LearnersNext} {
		for _, v := range set {
			if v == id {
				return true
			}
		}
	}
	return false
}

// bootstrapping reports a founding member starting on an empty disk.
func (r *Replica) bootstrapping() bool {
	return r.Replicated() && !r.opts.Join && r.store.lastIndex() == 0 && r.store.snapIndex == 0
}
