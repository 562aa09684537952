package node

import (
	"cmp"
	"encoding/binary"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
)

// A node hosts one replica of each of its replica groups (one group
// without --groups). The runtime serialises access to each replica
// (Runtime.Exclusive) and calls the operations below inside it; they run
// the replica and then the node's policy around it: the group's leader
// as last seen, leadership spreading, background jobs handed to the
// runtime, and the reaction to a fatal disk error (the replica is closed
// and opened again from disk, never fsynced again over the same pages).

const (
	// spreadCheckTicks is how often (in ticks) a group's leader checks
	// whether its preferred node should lead instead. Not a multiple of
	// the election timeout (10 ticks): Raft clears every peer's
	// RecentActive at that period, so a check locked to it would always
	// find the preferred node "down".
	spreadCheckTicks = 37
	// spreadUpChecks is how many checks in a row a group's preferred node
	// must be seen up before its leader hands leadership over.
	spreadUpChecks = 2
	// peerFrameGroupTag starts every framed peer message of a node with
	// several groups; a node started with another --groups sends
	// something else, which is refused.
	peerFrameGroupTag = 0xC7
)

// ErrMsgGroupDead answers every request of a group whose replica could
// not be reopened after a disk failure; the node is stopping.
const ErrMsgGroupDead = "ERR replica could not be reopened after a disk failure; server is stopping"

// group is one replica group on this node. replica, dead, ticks and
// spreadSeen are touched only inside the runtime's Exclusive for the
// group; the rest is shared and guarded as noted.
type group struct {
	id      uint64
	replica *cluster.Replica
	// opts are the options the replica was opened with (GroupOptions):
	// a fatal disk error reopens it with them. Zero: it cannot be
	// reopened (a replica adopted without GroupOptions).
	opts    cluster.Options
	hasOpts bool
	// dead, once set, answers every request with it: the replica failed
	// and could not be reopened.
	dead       string
	ticks      int
	spreadSeen int

	// hosted: this node holds a replica of the group (placement.go);
	// set at New, changed only inside the group's Exclusive when a move
	// opens or drops the replica (moves.go). A group not hosted has no
	// replica, and its leader, term and slots are its peers' reports
	// (remote, under Node.mu).
	hosted atomic.Bool
	remote remoteView
	// ownConf is the configuration this node's replica applied,
	// remoteConf the one with the highest applied index gossiped by a
	// node of the group (moves.go; both under Node.mu).
	ownConf, remoteConf groupConf
	// handoverWaits counts reconcile checks a leader leaving the group
	// waited for quiescence (moves.go; inside Exclusive).
	handoverWaits int

	leader  atomic.Uint64 // as last seen after a call, 0 unknown
	term    atomic.Uint64 // the replica's term after a call (gossip)
	applied atomic.Uint64 // the replica's applied index after a call (gossip)
	// leaderChanges counts changes of leader seen after calls (metrics).
	leaderChanges atomic.Int64
	// stepScratch is Step's reused list of messages (Step runs under
	// Exclusive for the group).
	stepScratch []cluster.PeerMsg
	// busy: a function call has held the group longer than
	// busy-reply-threshold (the runtime's SetGroupBusy, functions.go).
	busy atomic.Bool

	// members (under Node.mu) are the group's voters as this node's
	// replica applied them: the peers at start, then every applied
	// CLUSTER ADDNODE/DELNODE. slots (under Node.mu) is the group's
	// applied slot view.
	members map[uint64]bool
	slots   cluster.SlotInfo

	ev evictor // maxmemory (evict.go)
}

func (n *Node) group(g uint64) *group {
	if g < 1 || g > uint64(len(n.groups)) {
		panic(errors.AssertionFailedf("node: no group %d (this node hosts 1..%d)", g, len(n.groups)))
	}
	return n.groups[g-1]
}

// GroupDir is group g's data directory under a node's dir: dir itself
// with one group (the layout before sharding), dir/group-<g> otherwise.
func GroupDir(dir string, groups int, g uint64) string {
	if groups <= 1 {
		return dir
	}
	return dir + "/group-" + strconv.FormatUint(g, 10)
}

// GroupOptions makes o this node's replica of group g: in cluster mode
// its id, voters, peer messages, redirects and membership hooks, and with
// several groups the group's id, starting slots (cluster.SplitSlots),
// slot-gate redirects and slot table hook. The node keeps a copy to
// reopen the replica after a disk failure.
func (n *Node) GroupOptions(o *cluster.Options, g uint64) error {
	if g < 1 || g > uint64(len(n.groups)) {
		return errors.Newf("group %d: this node hosts groups 1..%d", g, len(n.groups))
	}
	if !n.hostsGroup(g) {
		return errors.Newf("group %d: not placed on this node (it hosts %v)", g, n.HostedGroups())
	}
	joined := n.plc.on && n.joinedGroup(g) // opened at run time (moves.go)
	if n.clustered {
		if !o.AppendOnly {
			return errors.New("cluster mode needs appendonly yes: a replica group keeps its Raft log on disk")
		}
		o.ID = n.id
		o.Peers = o.Peers[:0]
		for _, p := range n.cfg.Peers {
			if !n.plc.on || n.plc.place.Hosts(g, p.ID) {
				o.Peers = append(o.Peers, p.ID)
			}
		}
		founders := n.foundersOf(g) // moves.go
		switch {
		case founders != nil:
			// A group a split just added: its first nodes bootstrap it
			// with the target as its voters, alike on each of them.
			o.Peers = append(o.Peers[:0], founders...)
			joined = false
		case joined:
			// It learns its configuration from the leader; Peers only
			// say it is replicated. A group a split added may be missing
			// from the record of a node just restarted: the target the
			// hosted file kept then.
			t := n.targetOf(g)
			if len(t) == 0 {
				t = n.savedTarget(g)
			}
			if len(t) == 0 {
				// Never a replica on its own: it would take writes no
				// other node has.
				return errors.Newf("group %d: its nodes are unknown here (not in the meta record this node has, nor in %s)", g, HostedFileName)
			}
			o.Peers = append(o.Peers[:0], t...)
		}
		if (n.cfg.Join || joined) && !slices.Contains(o.Peers, n.id) {
			o.Peers = append(o.Peers, n.id)
		}
		o.Join = n.cfg.Join || joined
		o.Send = func(to uint64, msg []byte) { n.send(g, to, msg) }
		o.Redirect = func(req *cluster.Request, leader uint64) string { return n.groupRedirect(g, req, leader) }
		o.OnConfChange = func(id uint64, added bool, addr string) { n.confChanged(g, id, added, addr) }
		if len(n.groups) > 1 {
			o.Group = g
			o.Slots = []cluster.SlotRange{} // a group a split adds starts with none
			if g <= uint64(n.cfg.Groups) {
				o.Slots = cluster.SplitSlots(n.cfg.Groups)[g-1]
			}
			o.SlotRedirect = func(req *cluster.Request, slot int, ask bool, to uint64) string {
				return n.slotRedirect(g, slot, ask, to)
			}
			o.OnSlotsChanged = func(si cluster.SlotInfo) { n.slotsChanged(g, si) }
		}
	}
	if g == aclGroup {
		// Group 1 keeps the ACL table (acl_table.go).
		o.ACL, o.OnACLChanged = n.applyACLEntry, func(table []byte) {
			n.aclKnownNote() // acl_bus.go
			n.aclChanged(table)
		}
	}
	if g == metaGroup && n.plc.on {
		o.OnMetaChanged = n.metaApplied // meta.go
	}
	gr := n.group(g)
	gr.opts, gr.hasOpts = *o, true
	gr.opts.Peers = slices.Clone(o.Peers)
	return nil
}

// Adopt hands the node its opened replicas, replicas[g-1] being group
// g's (opened with GroupOptions in cluster mode). The node owns them from
// now on; CloseGroup closes them.
func (n *Node) Adopt(replicas []*cluster.Replica) error {
	if len(replicas) != len(n.groups) {
		return errors.Newf("node: %d replicas for %d groups", len(replicas), len(n.groups))
	}
	for i, r := range replicas {
		if (r != nil) != n.groups[i].hosted.Load() {
			return errors.Newf("node: group %d: a replica must be given exactly for the groups this node hosts (%v)", i+1, n.HostedGroups())
		}
	}
	for i, r := range replicas {
		if r == nil {
			continue
		}
		n.groups[i].replica = r
		if i+1 == aclGroup && !n.groups[i].hasOpts {
			r.SetACL(n.applyACLEntry, n.aclChanged) // opened without GroupOptions
		}
		n.attach(n.groups[i])
		n.logRecovery(n.groups[i])
	}
	return nil
}

// OpenGroups opens every group's replica, in group order, with the
// options base gives (FS, Dir, fsync policy, randomness, ...) made the
// group's by GroupOptions, and adopts them. On an error the replicas
// already opened are closed.
func (n *Node) OpenGroups(base func(g uint64) cluster.Options) error {
	var reps []*cluster.Replica
	for g := uint64(1); g <= uint64(len(n.groups)); g++ {
		if !n.hostsGroup(g) {
			reps = append(reps, nil)
			continue
		}
		o := base(g)
		if n.plc.on && n.joinedGroup(g) {
			// A group a split added whose first opening here may not
			// have bootstrapped it before a crash: while the record (as
			// group 1's replica, opened first, replayed it) is still the
			// one that added it, open it as its first nodes do. On a
			// replica with files that is a plain reopen.
			n.setFounders(g, n.founding(g))
		}
		err := n.GroupOptions(&o, g)
		if n.plc.on {
			n.setFounders(g, nil)
		}
		var r *cluster.Replica
		if err == nil {
			r, err = cluster.Open(o)
		}
		if err != nil {
			for _, r := range reps {
				if r != nil {
					r.Close()
				}
			}
			return errors.Wrapf(err, "open the replica of group %d in %s", g, o.Dir)
		}
		reps = append(reps, r)
		// A later group's Open may consult the slot table, which this
		// one's OnSlotsChanged has filled.
		n.groups[g-1].replica = r
	}
	return n.Adopt(reps)
}

// Replica is group g's replica, for the runtime and tests; call it only
// inside Exclusive for g.
func (n *Node) Replica(g uint64) *cluster.Replica { return n.group(g).replica }

// Replicated reports whether group g is a replicated Raft group (its
// batches are answered when they commit, after Submit returned).
func (n *Node) Replicated(g uint64) bool {
	r := n.group(g).replica
	return r != nil && r.Replicated()
}

// Submit runs a batch of requests on group g at time now (nanoseconds).
// done is called once every reply is written: within Submit for a group
// of one voter, later (during some Submit, Step or Tick of the group)
// for a replicated one. Run it inside Exclusive(g).
func (n *Node) Submit(g uint64, now int64, reqs []cluster.Request, done func()) {
	gr := n.group(g)
	reqs = n.memoryGate(gr, now, reqs)
	switch {
	case !gr.hosted.Load():
		for i := range reqs {
			reqs[i].W.WriteError(n.notHostedRedirect(g, &reqs[i])) // placement.go
		}
		if done != nil {
			done()
		}
		return
	case gr.dead != "":
		for i := range reqs {
			reqs[i].W.WriteError(gr.dead)
		}
		if done != nil {
			done()
		}
		return
	case gr.replica.Replicated():
		gr.replica.SubmitAsync(now, reqs, done)
	default:
		gr.replica.Submit(now, reqs)
		if done != nil {
			done()
		}
	}
	n.afterCall(gr)
}

// Tick advances group g's replica to now: elections and heartbeats,
// active expiry, the everysec fsync, size-triggered snapshots, and every
// spreadCheckTicks ticks the leadership spreading check. Run it inside
// Exclusive(g), TickHz times a second.
func (n *Node) Tick(g uint64, now int64) {
	gr := n.group(g)
	if g == 1 && n.plc.on {
		// The node's own tick (moves.go): every group is ticked,
		// hosted or not, and a node may host none.
		n.nodeTicks++
		if n.cfg.PeerPings && !n.group(n.firstHosted()).hosted.Load() && n.nodeTicks%pingEveryTicks == 0 {
			n.pingPeers() // no hosted group ticks them
		}
		if n.nodeTicks%reconcileTicks == 0 {
			n.syncPlacement()
		}
	}
	if gr.dead != "" || !gr.hosted.Load() {
		return
	}
	gr.ticks++
	if n.clustered && n.cfg.PeerPings && g == n.firstHosted() && gr.ticks%pingEveryTicks == 0 {
		n.pingPeers()
	}
	if n.clustered && gr.ticks%spreadCheckTicks == 0 {
		n.spreadLeadership(gr)
	}
	if n.plc.on && gr.ticks%reconcileTicks == 0 {
		n.reconcile(gr) // moves.go
		if g == metaGroup && gr.ticks%metaTicks == 0 {
			n.decideMoves(gr, now)
		}
	}
	if n.plc.on && g == metaGroup {
		n.aclGossip(gr, n.cfg.PeerPings && gr.ticks%pingEveryTicks == 0) // acl_bus.go
	}
	n.evictOnTick(gr, now)
	n.tickTimed(gr, now) // ops.go: the expire-cycle latency event
	n.expireWaiters(gr, now)
	n.afterCall(gr)
}

// Step hands group g's replica the peer messages routed to it (Route),
// in arrival order, and returns each one's error (nil: stepped). Run it
// inside Exclusive(g).
func (n *Node) Step(g uint64, now int64, msgs []PeerMessage) []error {
	gr := n.group(g)
	if gr.dead != "" || !gr.hosted.Load() {
		return nil
	}
	pms := gr.stepScratch[:0]
	for _, m := range msgs {
		pms = append(pms, cluster.PeerMsg{From: m.From, Member: n.addrOfID(m.From) != "", Data: m.Data})
	}
	errs := gr.replica.StepFrom(now, pms)
	clear(pms)
	gr.stepScratch = pms[:0]
	n.afterCall(gr)
	for i, err := range errs {
		if errors.Is(err, cluster.ErrNotMember) {
			// Counted, and logged once (a removed node that still runs
			// sends them every election timeout); the runtime need not
			// log them again.
			n.badFrame(msgs[i].From, err.Error())
		}
	}
	return errs
}

// PeerMessage is a message from peer From (the sender the transport
// authenticated), as Route returned its body.
type PeerMessage struct {
	From uint64
	Data []byte
}

// JobDone reports that a job StartJob handed out for replica r of group
// g has finished (err is Run's). Run it inside Exclusive(g).
func (n *Node) JobDone(g uint64, r *cluster.Replica, job *cluster.Job, err error) {
	gr := n.group(g)
	if gr.replica != r {
		return // reopened meanwhile: the new replica never handed it out
	}
	if err != nil {
		n.logf("background save failed: %v", err)
	}
	r.JobDone(job, err)
	n.afterCall(gr)
}

// SyncDone reports that a background fsync StartSync handed out for
// replica r of group g has finished. Run it inside Exclusive(g).
func (n *Node) SyncDone(g uint64, r *cluster.Replica, sj *cluster.SyncJob, err error) {
	gr := n.group(g)
	if gr.replica != r {
		return // reopened meanwhile (the failed one's file may be closed)
	}
	r.SyncDone(sj, err)
	n.afterCall(gr)
}

// CloseGroup runs a last tick at now and closes group g's replica
// (flushing its log). Run it inside Exclusive(g), once no job of the
// group runs.
func (n *Node) CloseGroup(g uint64, now int64) error {
	gr := n.group(g)
	if gr.replica == nil || gr.dead != "" {
		return nil
	}
	gr.replica.Tick(now)
	err := gr.replica.Close()
	return errors.Wrapf(err, "close the replica of group %d", g)
}

// afterCall is the node's policy after every call into a replica: note
// the leader, hand background work to the runtime, and reopen a replica
// that hit a fatal disk error.
func (n *Node) afterCall(gr *group) {
	r := gr.replica
	if l := r.Leader(); gr.leader.Swap(l) != l {
		if l != 0 {
			gr.leaderChanges.Add(1)
		}
		n.blockingMoved() // blocked clients retry: served, redirected or parked again
	}
	gr.noteMemory()
	gr.term.Store(r.Term())
	gr.applied.Store(r.AppliedIndex())
	if n.plc.on {
		n.noteOwnConf(gr) // moves.go
	}
	n.serveReady(gr)
	if job := r.PendingJob(); job != nil {
		n.rt.StartJob(gr.id, r, job)
	}
	if sj := r.PendingSync(); sj != nil {
		n.rt.StartSync(gr.id, r, sj)
	}
	if err := r.Err(); err != nil {
		n.reopen(gr, err)
	}
}

// reopen replaces group gr's fatally failed replica with one recovered
// from disk (fsyncgate: the failed fsync's pages are never trusted or
// synced again; recovery replays only what is durable). If that fails the
// node stops rather than serve from a state it cannot vouch for. It runs
// inside Exclusive for the group, so no request sees the swap half done.
func (n *Node) reopen(gr *group, cause error) {
	if !gr.hasOpts {
		return // keeps refusing writes and serving reads until restarted by hand
	}
	n.logf("disk failure in group %d: %v; reopening the replica from disk", gr.id, cause)
	n.rt.WaitJob(gr.id)
	if err := gr.replica.Close(); err != nil {
		n.logf("closing the failed replica: %v", err)
	}
	nr, err := cluster.Open(gr.opts)
	if err != nil {
		n.logf("cannot reopen the replica from disk: %v; shutting down", err)
		gr.dead = ErrMsgGroupDead
		n.rt.Shutdown()
		return
	}
	gr.replica = nr
	n.attach(gr)
	n.stats.replicaReopens.Add(1)
	rec := nr.Recovery()
	n.logf("replica of group %d reopened from disk: snapshot index %d, %d entries replayed", gr.id, rec.SnapshotIndex, rec.EntriesReplayed)
	n.logRecovery(gr)
	n.afterCall(gr)
}

// logRecovery reports what recovery had to repair: a torn log tail cut
// (aof-load-truncated yes), snapshots set aside as corrupt.
func (n *Node) logRecovery(gr *group) {
	if gr.replica == nil {
		return
	}
	rec := gr.replica.Recovery()
	if cut := rec.TailCut(); cut != "" {
		n.logf("group %d: %s (writes after it were never acknowledged under appendfsync always; under everysec or no, up to the policy's window)", gr.id, cut)
	}
	for _, name := range rec.CorruptSnapshots {
		n.logf("group %d: snapshot %s failed its check and was set aside as %s.corrupt", gr.id, name, name)
	}
}

// Dead is the error group g answers everything with once its replica
// could not be reopened ("" while it is alive).
func (n *Node) Dead(g uint64) string { return n.group(g).dead }

// ReplicaReopens counts replicas reopened after a disk failure.
func (n *Node) ReplicaReopens() int64 { return n.stats.replicaReopens.Load() }

// Peer messages. With one group a replica's bytes travel as they are;
// with several each message names its group first (a tag and the group
// as a uvarint), and Route hands it to that group.

func (n *Node) send(g, to uint64, msg []byte) {
	if len(n.groups) == 1 {
		n.rt.Send(to, msg)
		return
	}
	framed := make([]byte, 0, len(msg)+1+binary.MaxVarintLen64)
	framed = append(framed, peerFrameGroupTag)
	framed = binary.AppendUvarint(framed, g)
	n.rt.Send(to, append(framed, msg...))
}

// Route says which group a peer message from node from belongs to and
// returns the replica's bytes. A message that names no group of this
// node is refused (false) and counted; the first refusal is logged. A
// ping (liveness.go) and a forwarded publish (pubsub_bus.go) are taken
// by the node itself: ok with group 0.
// Whether its sender is a member is the replica's to judge, in Step: a
// follower that fell behind must still hear from a leader whose joining
// it has not applied yet.
func (n *Node) Route(from uint64, msg []byte) (g uint64, body []byte, ok bool) {
	if from == 0 || from == n.id {
		n.badFrame(from, "a message claiming to come from node "+strconv.FormatUint(from, 10))
		return 0, nil, false
	}
	n.notePeer(from)
	if len(msg) > 0 && msg[0] == peerPingTag {
		if len(msg) > 1 {
			n.receiveGossip(from, msg[1:]) // placement.go
		}
		return 0, nil, true
	}
	if len(msg) > 0 && msg[0] == peerMetaTag {
		n.receiveMeta(from, msg[1:]) // meta.go
		return 0, nil, true
	}
	if len(msg) > 0 && msg[0] == peerPublishTag {
		n.receivePublish(from, msg) // pubsub_bus.go
		return 0, nil, true
	}
	if len(msg) > 0 && msg[0] == peerHeardTag {
		n.receiveHeard(from, msg[1:]) // liveness.go
		return 0, nil, true
	}
	if len(msg) > 0 && (msg[0] == peerACLDigestTag || msg[0] == peerACLPullTag || msg[0] == peerACLTableTag) {
		switch msg[0] { // acl_bus.go
		case peerACLDigestTag:
			n.receiveACLDigest(from, msg[1:])
		case peerACLPullTag:
			n.receiveACLPull(from, msg[1:])
		default:
			n.receiveACLTable(from, msg[1:])
		}
		return 0, nil, true
	}
	if len(n.groups) == 1 {
		return 1, msg, true
	}
	if len(msg) < 2 || msg[0] != peerFrameGroupTag {
		n.badFrame(from, "no valid group frame: is every node started with --groups "+strconv.Itoa(len(n.groups))+"?")
		return 0, nil, false
	}
	g, k := binary.Uvarint(msg[1:])
	if k <= 0 || !n.hostsGroup(g) {
		n.badFrame(from, "a group this node does not host")
		return 0, nil, false
	}
	return g, msg[1+k:], true
}

func (n *Node) badFrame(from uint64, why string) {
	if n.badFrames.Add(1) == 1 {
		n.logf("dropping a message from node %d: %s", from, why)
	}
}

// BadFrames counts the peer messages Route refused.
func (n *Node) BadFrames() int64 { return n.badFrames.Load() }

// The address book: the peers at start, then every applied membership
// change.

// Nodes are the members as this node knows them, sorted by id.
func (n *Node) Nodes() []cluster.TopoNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.nodes)
}

// Self is this node's entry of the address book.
func (n *Node) Self() cluster.TopoNode {
	for _, p := range n.Nodes() {
		if p.ID == n.id {
			return p
		}
	}
	return cluster.TopoNode{ID: n.id}
}

// OnPeer, when set, is told a node's peer address (host:port of its
// client port) as membership changes add it ("" when it is removed), so
// the runtime can dial it. Set it before the replicas open.
func (n *Node) OnPeer(fn func(id uint64, clientAddr string)) { n.onPeer = fn }

// addrOfID is "host:port" of node id, unbracketed as Redis writes it, or
// "" when unknown.
func (n *Node) addrOfID(id uint64) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.nodes {
		if p.ID == id {
			return p.Host + ":" + strconv.Itoa(p.Port)
		}
	}
	return ""
}

// confChanged is group g's Options.OnConfChange: it follows an applied
// membership change (replay included). An added node's address (from
// CLUSTER ADDNODE) joins the address book as soon as one group adds it;
// with several groups a removed node leaves it only once no group of
// this node still lists it as a member (a DELNODE applies in each group
// at its own time, and until the last one the groups still counting it
// must reach it).
func (n *Node) confChanged(g, id uint64, added bool, addr string) {
	n.mu.Lock()
	gr := n.group(g)
	if added {
		gr.members[id] = true
	} else {
		delete(gr.members, id)
	}
	i := slices.IndexFunc(n.nodes, func(t cluster.TopoNode) bool { return t.ID == id })
	peerAddr := ""
	if added {
		node, err := parseNodeAddr(id, addr)
		if err != nil {
			n.mu.Unlock()
			return // ADDNODE checked it; a bad one only costs the address
		}
		if i >= 0 {
			n.nodes[i] = node
		} else {
			n.nodes = append(n.nodes, node)
			slices.SortFunc(n.nodes, func(a, b cluster.TopoNode) int { return cmp.Compare(a.ID, b.ID) })
		}
		peerAddr = addr
	} else {
		for _, o := range n.groups {
			if o.members[id] {
				n.mu.Unlock()
				return // another group still has it as a voter
			}
		}
		if i >= 0 && id != n.id {
			n.nodes = slices.Delete(n.nodes, i, i+1)
		}
	}
	n.mu.Unlock()
	if id != n.id && n.onPeer != nil {
		n.onPeer(id, peerAddr)
	}
}

// parseNodeAddr reads a node's client address "host:port".
func parseNodeAddr(id uint64, addr string) (cluster.TopoNode, error) {
	peers, err := ParsePeers(strconv.FormatUint(id, 10) + "@" + addr)
	if err != nil {
		return cluster.TopoNode{}, err
	}
	return peers[0], nil
}

// Leadership.

// LeaderOf is group g's leader as this node last saw it (0: unknown).
func (n *Node) LeaderOf(g uint64) uint64 { return n.leaderOf(g) }

func (n *Node) leaderOf(g uint64) uint64 {
	if g < 1 || g > uint64(len(n.groups)) {
		return 0
	}
	return n.groups[g-1].leader.Load()
}

// ledGroups are the groups (ascending) whose leader this node last saw
// itself to be.
func (n *Node) ledGroups() []uint64 {
	var out []uint64
	for _, gr := range n.groups {
		if gr.hosted.Load() && gr.leader.Load() == n.id && n.id != 0 {
			out = append(out, gr.id)
		}
	}
	return out
}

// preferredLeader is the node group g's leadership is spread to:
// ids[(g-1) % len(ids)] of the group's sorted voters as its replica last
// applied them. Membership changes (CLUSTER ADDNODE/DELNODE, made group
// by group) change n and so the preference: a node added to every group
// takes its share of leaderships, a removed one is never preferred again,
// and while the groups disagree about a node each follows its own voters.
func preferredLeader(g uint64, voters []uint64) uint64 {
	if len(voters) == 0 {
		return 0
	}
	ids := slices.Clone(voters)
	slices.Sort(ids)
	return ids[(g-1)%uint64(len(ids))]
}

// spreadLeadership runs in group gr's tick, every spreadCheckTicks: a
// leader that is not the group's preferred node hands leadership to it
// once that node has been seen up (heard from within an election timeout)
// at spreadUpChecks checks in a row. Raft's transfer itself waits for the
// node to catch up, but drops proposals meanwhile (for up to an election
// timeout, answered -TRYAGAIN), so a node just restarted is given a few
// seconds to catch up first. One group needs no spreading.
func (n *Node) spreadLeadership(gr *group) {
	r := gr.replica
	if len(n.groups) == 1 || !r.IsLeader() {
		gr.spreadSeen = 0
		return
	}
	want := preferredLeader(gr.id, r.Voters())
	if t := n.targetOf(gr.id); n.plc.on && len(t) > 0 && slices.Contains(r.Voters(), t[0]) {
		want = t[0] // placement.go: the meta record spreads leaders
	}
	if want == 0 || want == n.id || slices.Contains(r.DownPeers(), want) {
		gr.spreadSeen = 0
		return
	}
	if gr.spreadSeen++; gr.spreadSeen < spreadUpChecks {
		return
	}
	gr.spreadSeen = 0
	n.logf("group %d: handing leadership to node %d", gr.id, want)
	r.TransferLeadership(want)
}
