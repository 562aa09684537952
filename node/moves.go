package node

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
)

// Moves (docs/cluster.md, "Moves"): placement that changes online.
//
// The meta record (meta.go) says where each group's replicas should be.
// Three loops, each a few lines in some tick, make it so:
//
//   - The meta group's leader (decideMoves, group 1's tick) writes the
//     next move (cluster.NextMove) into the record once no group is still
//     moving (movesAtOnce groups may be), and drops the members that have
//     left (cluster.Settle). A move is decided once: the record's
//     compare-and-set version refuses a second writer.
//   - Each group's leader (reconcile, the group's tick) brings its Raft
//     configuration to the group's target, one change at a time, each
//     from the configuration as applied: a target node missing gets added
//     as a learner; a learner that has caught up (its Match within
//     catchUpSlack of the commit index) is promoted; then a voter no
//     longer in the target is removed — the leader itself last, after
//     handing leadership to a target voter. Every voter stays a voter
//     until its replacement is one, so a group never has fewer than its
//     replication factor of up-to-date voters.
//   - Every node (syncPlacement, node tick) opens a replica, in join
//     mode, of a group the record places on it, and drops its replica of
//     a group once the record no longer places it there AND the group's
//     configuration (its own applied one, or one a node of the group
//     gossiped with a higher applied index) no longer lists it: only a
//     committed removal lets a replica's data go. The runtime does the
//     opening and dropping (Runtime.OpenGroup/DropGroup) inside the
//     group's Exclusive.
//
// Which groups a node hosts survives restarts in <dir>/hosted-groups
// (written before a replica is opened or deleted): a node restarting
// opens those, and a group it opened at run time in join mode again, so
// that an emptied directory can never bootstrap a second configuration.

const (
	// reconcileTicks: how often (ticks) a group's leader compares its
	// configuration with its target, and a node its replicas with the
	// record. One second at 10 Hz.
	reconcileTicks = 10
	// metaTicks: how often group 1's leader considers the next move.
	metaTicks = 10
	// catchUpSlack: a learner within this many entries of the commit
	// index is promoted.
	catchUpSlack = 64
	// movesAtOnceDefault: groups that may be moving at the same time.
	movesAtOnceDefault = 1
	// HostedFileName keeps the hosted groups across restarts (in the
	// node's dir).
	HostedFileName = "hosted-groups"
	// gossipMembersMax bounds the voters and learners of a view.
	gossipMembersMax = 64
	// handoverWaitsMax: reconcile checks (seconds) a leader leaving its
	// group waits for a moment without a write in flight before it hands
	// leadership over anyway.
	handoverWaitsMax = 10
	// NodeDeadAfterDefault is --node-dead-after's default: long enough
	// that a restart or a reboot is not taken for a loss (re-creating a
	// node's replicas copies all of its data), as CockroachDB's 5 minutes.
	NodeDeadAfterDefault = 5 * time.Minute
)

// groupConf is a group's configuration as some replica applied it.
type groupConf struct {
	applied  uint64
	voters   []uint64 // sorted
	learners []uint64 // sorted
	known    bool
}

func (c groupConf) lists(id uint64) bool {
	return slices.Contains(c.voters, id) || slices.Contains(c.learners, id)
}

// movesState is the node's part in moves (under Node.mu unless noted).
type movesState struct {
	// requested: the runtime was asked to open (or drop) the group and
	// has not called back yet.
	requested []bool
	// joined: the groups opened at run time (join mode), as the hosted
	// file says. fileMu guards it and the file: two groups' replicas may
	// be opened or dropped at once, each in its own Exclusive.
	joined []bool
	fileMu sync.Mutex
	// founders: set while OpenGroup opens a group a split just added
	// (its target at the version that added it), which GroupOptions
	// bootstraps with those voters; nil otherwise (fileMu).
	founders [][]uint64
	// targets: per group a split added that this node hosts, its target
	// when the node opened it, kept in the hosted file (fileMu): a node
	// restarting before it hears the record again still opens it as a
	// replicated group (savedTarget).
	targets [][]uint64
	// metaPending: this node's METASET is in flight (group 1's Exclusive).
	metaPending bool
	// fsErr: the hosted file could not be written; logged once.
	fsErrLogged bool
}

// initMoves reads the hosted file, when there is one, in place of the
// bootstrap placement's share.
func (n *Node) initMoves() error {
	n.mv.requested = make([]bool, len(n.groups))
	n.mv.joined = make([]bool, len(n.groups))
	n.mv.founders = make([][]uint64, len(n.groups))
	n.mv.targets = make([][]uint64, len(n.groups))
	if n.plc.on {
		// Silence counts from the node's start (markDead): a meta leader
		// elected long after it must not wait the full time again.
		n.live.since = n.clock.Now()
	}
	if !n.plc.on || n.cfg.FS == nil || n.cfg.Dir == "" {
		return nil
	}
	b, err := disk.ReadFile(n.cfg.FS, n.cfg.Dir+"/"+HostedFileName)
	if errors.Is(err, disk.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errors.Wrapf(err, "read %s", HostedFileName)
	}
	hosted, joined, targets, err := parseHosted(string(b), len(n.groups))
	if err != nil {
		return errors.Wrapf(err, "%s/%s", n.cfg.Dir, HostedFileName)
	}
	n.mv.targets = targets
	for i, gr := range n.groups {
		gr.hosted.Store(hosted[i])
		n.mv.joined[i] = joined[i]
	}
	return nil
}

// parseHosted reads "1 3 5j 7j@2,5,6": the hosted groups, j marking one
// joined at run time, @ the target it was opened with (a group a split
// added: a node restarting may not know it from its record).
func parseHosted(s string, groups int) (hosted, joined []bool, targets [][]uint64, err error) {
	hosted, joined, targets = make([]bool, groups), make([]bool, groups), make([][]uint64, groups)
	for _, f := range strings.Fields(s) {
		f, ids, _ := strings.Cut(f, "@")
		j := strings.HasSuffix(f, "j")
		g, perr := strconv.Atoi(strings.TrimSuffix(f, "j"))
		if perr != nil || g < 1 || g > groups {
			return nil, nil, nil, errors.Newf("bad group %q (the cluster has %d)", f, groups)
		}
		hosted[g-1], joined[g-1] = true, j
		for _, x := range strings.FieldsFunc(ids, func(r rune) bool { return r == ',' }) {
			id, perr := strconv.ParseUint(x, 10, 64)
			if perr != nil || id == 0 || len(targets[g-1]) >= gossipMembersMax {
				return nil, nil, nil, errors.Newf("bad target %q of group %d", ids, g)
			}
			targets[g-1] = append(targets[g-1], id)
		}
	}
	return hosted, joined, targets, nil
}

// writeHosted persists the hosted set with group g's entry changed
// (host: hosted after the change, joined at run time).
func (n *Node) writeHosted(g uint64, host bool) error {
	if n.cfg.FS == nil || n.cfg.Dir == "" {
		return nil
	}
	target := n.targetOf(g) // before fileMu: targetOf takes Node.mu
	n.mv.fileMu.Lock()
	defer n.mv.fileMu.Unlock()
	var parts []string
	for _, gr := range n.groups {
		h := gr.hosted.Load()
		j := n.mv.joined[gr.id-1]
		if gr.id == g {
			h, j = host, host
			n.mv.targets[g-1] = nil
			if host && g > uint64(n.cfg.Groups) {
				n.mv.targets[g-1] = target
			}
		}
		if !h {
			continue
		}
		p := strconv.FormatUint(gr.id, 10)
		if j {
			p += "j"
		}
		if t := n.mv.targets[gr.id-1]; len(t) > 0 {
			p += "@" + idsText(t)
		}
		parts = append(parts, p)
	}
	fs := n.cfg.FS
	if err := fs.MkdirAll(n.cfg.Dir); err != nil {
		return err
	}
	tmp := n.cfg.Dir + "/" + HostedFileName + ".tmp"
	if err := disk.WriteFile(fs, tmp, []byte(strings.Join(parts, " ")+"\n")); err != nil {
		return err
	}
	if err := fs.Rename(tmp, n.cfg.Dir+"/"+HostedFileName); err != nil {
		return err
	}
	return fs.SyncDir(n.cfg.Dir)
}

func (n *Node) setJoined(g uint64, j bool) {
	n.mv.fileMu.Lock()
	n.mv.joined[g-1] = j
	n.mv.fileMu.Unlock()
}

func (n *Node) joinedGroup(g uint64) bool {
	n.mv.fileMu.Lock()
	defer n.mv.fileMu.Unlock()
	return n.mv.joined[g-1]
}

// OpenGroup opens this node's replica of group g at run time (the record
// placed g here), in join mode: it bootstraps nothing and learns the
// configuration and the data from the group's leader. base are the
// options the runtime gives every replica (as OpenGroups' base). Run it
// inside Exclusive(g).
func (n *Node) OpenGroup(g uint64, base cluster.Options) error {
	gr := n.group(g)
	n.mu.Lock()
	n.mv.requested[g-1] = false
	n.mu.Unlock()
	if gr.hosted.Load() || !n.placedHere(g) {
		return nil // already open, or moved on meanwhile
	}
	founders := n.founding(g)
	// Recorded as joined even when it bootstraps: a restart reopens it
	// from its files and must never bootstrap it a second time.
	if err := n.writeHosted(g, true); err != nil {
		return errors.Wrapf(err, "group %d: record the hosted groups", g)
	}
	n.setJoined(g, true)
	gr.hosted.Store(true)
	o := base
	n.setFounders(g, founders)
	err := n.GroupOptions(&o, g)
	n.setFounders(g, nil)
	if err != nil {
		gr.hosted.Store(false)
		return err
	}
	r, err := cluster.Open(o)
	if err != nil {
		gr.hosted.Store(false)
		return errors.Wrapf(err, "open the replica of group %d in %s", g, o.Dir)
	}
	gr.replica, gr.dead, gr.ticks = r, "", 0
	n.attach(gr)
	if founders != nil {
		n.logf("group %d: replica opened here, bootstrapping the group a split added with voters %v", g, founders)
	} else {
		n.logf("group %d: replica opened here (placement moved it to this node); catching up from the leader", g)
	}
	n.afterCall(gr)
	return nil
}

// founding is group g's target when the node's record is the one that
// added g (cluster.AddGroup) and places it here: this node is one of the
// group's first nodes and bootstraps it. nil otherwise: the group exists
// (or will, from its other first nodes) and this node joins it like any
// moved replica. The record cannot move past the addition before the
// group has formed (decideMoves and metaMembership wait for it), so at
// least the first of its nodes to open bootstraps it; one opening later
// joins as a voter its peers already count.
func (n *Node) founding(g uint64) []uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	rec := n.meta.rec
	if !rec.Move.AddedGroup() || rec.Move.Group != g || g > uint64(len(rec.Targets)) || !slices.Contains(rec.Targets[g-1], n.id) {
		return nil
	}
	return slices.Clone(rec.Targets[g-1])
}

func (n *Node) setFounders(g uint64, ids []uint64) {
	n.mv.fileMu.Lock()
	n.mv.founders[g-1] = ids
	n.mv.fileMu.Unlock()
}

// savedTarget is group g's target as the hosted file kept it (nil: none).
func (n *Node) savedTarget(g uint64) []uint64 {
	n.mv.fileMu.Lock()
	defer n.mv.fileMu.Unlock()
	return slices.Clone(n.mv.targets[g-1])
}

// foundersOf is what GroupOptions bootstraps group g with (nil: as usual).
func (n *Node) foundersOf(g uint64) []uint64 {
	if !n.plc.on {
		return nil
	}
	n.mv.fileMu.Lock()
	defer n.mv.fileMu.Unlock()
	return n.mv.founders[g-1]
}

// addedGroupForming is the group the record's last change added while
// no configuration of it is known yet (0: none): until one of its first
// nodes has bootstrapped it, the record must not move on, or a late
// first node would join a group nobody started.
func (n *Node) addedGroupForming(rec cluster.MetaRecord) uint64 {
	if !rec.Move.AddedGroup() {
		return 0
	}
	if c := n.confOf(rec.Move.Group); c.known && len(c.voters) > 0 {
		return 0
	}
	return rec.Move.Group
}

// DropGroup closes and deletes this node's replica of group g (the group
// no longer counts this node). Run it inside Exclusive(g).
func (n *Node) DropGroup(g uint64, now int64) error {
	gr := n.group(g)
	n.mu.Lock()
	n.mv.requested[g-1] = false
	n.mu.Unlock()
	if !gr.hosted.Load() || !n.droppable(g) {
		return nil
	}
	if err := n.writeHosted(g, false); err != nil {
		return errors.Wrapf(err, "group %d: record the hosted groups", g)
	}
	n.rt.WaitJob(g)
	if gr.replica != nil {
		gr.replica.Abandon() // requests it still holds: answered, not left waiting
	}
	err := n.CloseGroup(g, now)
	gr.hosted.Store(false)
	gr.replica = nil
	n.setJoined(g, false)
	if err != nil {
		n.logf("group %d: closing the dropped replica: %v", g, err)
	}
	if n.cfg.FS != nil {
		if err := disk.RemoveAll(n.cfg.FS, GroupDir(n.cfg.Dir, n.cfg.Groups, g)); err != nil {
			n.logf("group %d: deleting the dropped replica's files: %v", g, err)
		}
	}
	n.logf("group %d: replica dropped (placement moved it away and the group no longer counts this node)", g)
	return nil
}

// placedHere reports whether the record places a replica of g here.
func (n *Node) placedHere(g uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.plc.on && g <= uint64(len(n.meta.rec.Targets)) && slices.Contains(n.meta.rec.Targets[g-1], n.id)
}

// droppable: the record no longer places g here and the group's latest
// known configuration no longer lists this node.
func (n *Node) droppable(g uint64) bool {
	if n.placedHere(g) {
		return false
	}
	if n.cfg.Knobs.dropBeforeRemoved() {
		return true // planted (knobs.go)
	}
	c := n.confOf(g)
	return c.known && !c.lists(n.id)
}

// confOf is group g's configuration with the highest applied index this
// node knows: its own replica's or one gossiped by a node of the group.
func (n *Node) confOf(g uint64) groupConf {
	gr := n.group(g)
	n.mu.Lock()
	defer n.mu.Unlock()
	c := gr.remoteConf
	if gr.ownConf.known && (!c.known || gr.ownConf.applied >= c.applied) {
		c = gr.ownConf
	}
	return c
}

// noteOwnConf records group gr's applied configuration after a call
// (afterCall, inside Exclusive), when placement is on.
func (n *Node) noteOwnConf(gr *group) {
	r := gr.replica
	if r == nil || !r.Replicated() {
		return
	}
	v, l := r.Voters(), r.Learners()
	n.mu.Lock()
	if !slices.Equal(gr.ownConf.voters, v) || !slices.Equal(gr.ownConf.learners, l) || !gr.ownConf.known {
		gr.ownConf.voters, gr.ownConf.learners, gr.ownConf.known = v, l, true
	}
	gr.ownConf.applied = r.AppliedIndex()
	n.mu.Unlock()
}

// syncPlacement asks the runtime to open the replicas the record places
// here and to drop those it no longer does (once droppable). Called from
// the node's tick.
func (n *Node) syncPlacement() {
	if !n.plc.on {
		return
	}
	for _, gr := range n.groups {
		g := gr.id
		n.mu.Lock()
		asked := n.mv.requested[g-1]
		n.mu.Unlock()
		if asked {
			continue
		}
		switch hosted := gr.hosted.Load(); {
		case !hosted && n.placedHere(g) && n.metaChanged():
			if t := n.targetOf(g); n.cfg.Knobs.skipFoundingOpen() && g > uint64(n.cfg.Groups) && len(t) > 0 && t[0] == n.id {
				continue // planted (knobs.go)
			}
			n.mu.Lock()
			n.mv.requested[g-1] = true
			n.mu.Unlock()
			n.rt.OpenGroup(g)
		case hosted && n.droppable(g):
			n.mu.Lock()
			n.mv.requested[g-1] = true
			n.mu.Unlock()
			n.rt.DropGroup(g)
		}
	}
}

// metaChanged: the node has a record past the bootstrap. Until then (a
// node just restarted, before its group 1 replica or a ping told it the
// record) it opens nothing: the bootstrap may place it on groups it left
// long ago.
func (n *Node) metaChanged() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.meta.encoded != nil
}

// targetOf is group g's target in the node's record.
func (n *Node) targetOf(g uint64) []uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if g > uint64(len(n.meta.rec.Targets)) {
		return nil
	}
	return slices.Clone(n.meta.rec.Targets[g-1])
}

// memberAddr is node id's address in the record ("" unknown).
func (n *Node) memberAddr(id uint64) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	m, _ := n.meta.rec.Member(id)
	return m.Addr
}

// reconcile runs in group gr's tick on its leader: one configuration
// change toward the target, as described above.
func (n *Node) reconcile(gr *group) {
	r := gr.replica
	if r == nil || !r.Replicated() || !r.IsLeader() {
		return
	}
	target := n.targetOf(gr.id)
	if len(target) == 0 {
		return
	}
	voters, learners := r.Voters(), r.Learners()
	propose := func(ch cluster.MembershipChange, id uint64, what string) {
		if err := r.ProposeMembership(ch, id, n.memberAddr(id)); err != nil {
			n.logf("group %d: %s node %d: %v", gr.id, what, id, err)
			return
		}
		n.logf("group %d: %s node %d", gr.id, what, id)
	}
	for _, id := range target {
		if !slices.Contains(voters, id) && !slices.Contains(learners, id) {
			propose(cluster.AddLearner, id, "adding as a learner")
			return
		}
	}
	for _, id := range target {
		if slices.Contains(learners, id) && !n.cfg.Knobs.removeBeforePromote() {
			if r.CaughtUp(id, catchUpSlack) {
				propose(cluster.Promote, id, "promoting")
			}
			return
		}
	}
	for _, id := range voters {
		if slices.Contains(target, id) {
			continue
		}
		if id == n.id {
			// Hand leadership to a target voter first: a leader removing
			// itself leaves the group leaderless for an election timeout.
			// Preferably when no write of its own is in flight, which
			// would be answered "may or may not have been applied";
			// under load that never pauses, after handoverWaitsMax tries.
			if !r.Quiescent() && gr.handoverWaits < handoverWaitsMax {
				gr.handoverWaits++
				return
			}
			gr.handoverWaits = 0
			for _, to := range target {
				if slices.Contains(voters, to) && r.RecentlyActive(to) {
					r.TransferLeadership(to)
					return
				}
			}
			return
		}
		propose(cluster.Remove, id, "removing")
		return
	}
	for _, id := range learners {
		if !slices.Contains(target, id) {
			propose(cluster.Remove, id, "removing the learner")
			return
		}
	}
	for _, id := range target {
		if slices.Contains(learners, id) && r.CaughtUp(id, catchUpSlack) {
			propose(cluster.Promote, id, "promoting") // planted RemoveBeforePromote: promoted last
			return
		}
	}
}

// settled reports whether group g's configuration is its target: the
// same voters, no learner.
func (n *Node) settled(g uint64, target []uint64) bool {
	c := n.confOf(g)
	if !c.known || len(c.learners) > 0 || len(c.voters) != len(target) {
		return false
	}
	for _, id := range target {
		if !slices.Contains(c.voters, id) {
			return false
		}
	}
	return true
}

// decideMoves runs in group 1's tick on its leader: once fewer than
// movesAtOnce groups are moving, the record gets the next change.
func (n *Node) decideMoves(gr *group, now int64) {
	r := gr.replica
	if r == nil || !r.IsLeader() {
		return
	}
	n.mu.Lock()
	pending := n.mv.metaPending
	n.mu.Unlock()
	if pending {
		return
	}
	rec := n.MetaRecord()
	if n.addedGroupForming(rec) != 0 {
		return // founding (OpenGroup); no other change until it has formed
	}
	if next, ok := n.markDead(rec); ok {
		n.proposeMeta(gr, now, next)
		return
	}
	moving := 0
	for g := range rec.Targets {
		if !n.settled(uint64(g+1), rec.Targets[g]) {
			moving++
		}
	}
	atOnce := n.cfg.MovesAtOnce
	if atOnce <= 0 {
		atOnce = movesAtOnceDefault
	}
	if moving >= atOnce {
		return
	}
	next, ok := cluster.Settle(rec)
	if !ok {
		m := cluster.NextMove(rec)
		if m.None() {
			return
		}
		var err error
		if next, err = cluster.ApplyMove(rec, m); err != nil {
			n.logf("meta: the move %s does not apply: %v", m, err)
			return
		}
		n.logf("meta: version %d: move %s", next.Version, m)
	} else {
		n.logf("meta: version %d: decommissioned nodes leave the record", next.Version)
	}
	n.proposeMeta(gr, now, next)
}

// markDead is rec with the first member that neither this node (the meta
// leader) nor any peer reporting to it (liveness.go, heard frames) has
// heard from for NodeDeadAfter marked dead (a replacement of its
// replicas follows, cluster.NextMove), and whether there was one. The
// silence counts from this node's start at the earliest (initMoves), so
// a leader just restarted waits the full time, one elected later does not.
func (n *Node) markDead(rec cluster.MetaRecord) (cluster.MetaRecord, bool) {
	after := n.cfg.NodeDeadAfter
	if after == 0 {
		after = NodeDeadAfterDefault
	}
	if after < 0 || !n.cfg.PeerPings {
		return rec, false
	}
	now := n.clock.Now()
	n.live.mu.Lock()
	if n.live.since == 0 {
		n.live.since = now
	}
	var dead uint64
	for _, m := range rec.Members {
		if m.ID == n.id || m.State == cluster.MemberDead {
			continue
		}
		vouched := n.live.vouched[m.ID]
		if n.cfg.Knobs.deadOnOwnView() {
			vouched = 0
		}
		if now-max(n.live.heard[m.ID], vouched, n.live.since) > int64(after) {
			dead = m.ID
			break
		}
	}
	n.live.mu.Unlock()
	if dead == 0 {
		return rec, false
	}
	next := rec.Clone()
	for i := range next.Members {
		if next.Members[i].ID == dead {
			next.Members[i].State = cluster.MemberDead
		}
	}
	next.Version++
	next.Move = cluster.Move{}
	n.logf("meta: version %d: node %d unheard for more than %v: dead; its replicas will be re-created", next.Version, dead, after)
	return next, true
}

// proposeMeta submits CLUSTER METASET next on group 1 (inside its
// Exclusive); metaPending holds further proposals until it is answered.
func (n *Node) proposeMeta(gr *group, now int64, next cluster.MetaRecord) {
	n.mu.Lock()
	n.mv.metaPending = true
	n.mu.Unlock()
	w := &recorder{}
	done := func() {
		n.mu.Lock()
		n.mv.metaPending = false
		n.mu.Unlock()
		if w.err != "" {
			n.logf("meta: version %d not written: %s", next.Version, w.err)
		}
	}
	gr.replica.SubmitAsync(now, []cluster.Request{{Argv: cluster.MetaSetCommand(next), W: w}}, done)
}

// metaMembership runs CLUSTER ADDNODE <id> <host:port> / DELNODE <id> on
// a placed cluster: the member joins the meta record as active (the
// rebalancer then moves replicas onto it), or turns decommissioning (its
// replicas move away; it leaves the record once it holds none). The
// change goes through group 1's log as CLUSTER METASET, so the reply is
// +OK once applied, -MOVED to group 1's leader from another node, or an
// error naming the version it raced with (send it again). A change
// already in effect answers +OK at once.
func (c *Session) metaMembership(sub string, argv [][]byte) {
	id, err := strconv.ParseUint(string(argv[2]), 10, 64)
	if err != nil || id == 0 {
		c.Out.WriteError("ERR invalid node id '" + string(argv[2]) + "': a positive integer")
		return
	}
	rec := c.n.MetaRecord()
	if g := c.n.addedGroupForming(rec); g != 0 {
		c.Out.WriteError("TRYAGAIN group " + strconv.FormatUint(g, 10) + ", just added by a split, has not formed yet; retry")
		return
	}
	next := rec.Clone()
	m, member := rec.Member(id)
	if sub == "addnode" {
		addr := string(argv[3])
		if _, err := ParsePeers("1@" + addr); err != nil {
			c.Out.WriteError("ERR invalid node address '" + addr + "': want host:port of its client port")
			return
		}
		switch {
		case member && m.State == cluster.MemberActive && m.Addr == addr:
			c.Out.WriteSimple("OK")
			return
		case member && m.State == cluster.MemberDead:
			// Back from the dead: its replicas are gone; it takes new
			// ones like a node added now.
			for i := range next.Members {
				if next.Members[i].ID == id {
					next.Members[i] = cluster.MetaMember{ID: id, Addr: addr}
				}
			}
		case member:
			c.Out.WriteError("ERR node " + strconv.FormatUint(id, 10) + " is already a member (" + m.State.String() + " at " + m.Addr + ")")
			return
		default:
			next.Members = append(next.Members, cluster.MetaMember{ID: id, Addr: addr})
			slices.SortFunc(next.Members, func(a, b cluster.MetaMember) int { return cmp.Compare(a.ID, b.ID) })
		}
	} else {
		if !member || m.State == cluster.MemberDecommissioning {
			c.Out.WriteSimple("OK") // gone, or going
			return
		}
		active := 0
		for _, o := range rec.Members {
			if o.State == cluster.MemberActive && o.ID != id {
				active++
			}
		}
		if active < rec.Replicas {
			c.Out.WriteError("ERR removing node " + strconv.FormatUint(id, 10) + " would leave " + strconv.Itoa(active) +
				" active nodes for a replication factor of " + strconv.Itoa(rec.Replicas))
			return
		}
		for i := range next.Members {
			if next.Members[i].ID == id {
				next.Members[i].State = cluster.MemberDecommissioning
			}
		}
	}
	next.Version++
	next.Move = cluster.Move{}
	if err := next.Check(); err != nil {
		c.Out.WriteError("ERR " + err.Error())
		return
	}
	c.submitThen(metaGroup, []cluster.Request{{Argv: cluster.MetaSetCommand(next), W: c.Out}}, nil)
}

// metaAddGroup runs CLUSTER ADDGROUP on a placed cluster: the meta
// record gets one more group, empty, on the least loaded nodes
// (cluster.AddGroup), through group 1's log as CLUSTER METASET: +OK once
// applied, -MOVED to group 1's leader from another node, an error naming
// the version it raced with (send it again), or -TRYAGAIN while the
// group added last has not formed. The nodes of its target open and
// bootstrap it (OpenGroup); `keel cluster split` then moves slots to it.
func (c *Session) metaAddGroup() {
	if !c.n.plc.on {
		c.Out.WriteError("ERR CLUSTER ADDGROUP needs a placed cluster (--replicas below the number of nodes, --groups-max above --groups)")
		return
	}
	rec := c.n.MetaRecord()
	if g := c.n.addedGroupForming(rec); g != 0 {
		c.Out.WriteError("TRYAGAIN group " + strconv.FormatUint(g, 10) + ", just added, has not formed yet; retry")
		return
	}
	next, err := cluster.AddGroup(rec, len(c.n.groups))
	if err != nil {
		c.Out.WriteError("ERR " + err.Error())
		return
	}
	c.submitThen(metaGroup, []cluster.Request{{Argv: cluster.MetaSetCommand(next), W: c.Out}}, nil)
}

// placementText is CLUSTER PLACEMENT: the record as this node has it and
// each group's configuration as it knows it.
func (n *Node) placementText() string {
	var b strings.Builder
	if !n.plc.on {
		b.WriteString("placement:off\r\n")
		return b.String()
	}
	rec := n.MetaRecord()
	moving := n.movesPending(rec)
	b.WriteString("meta_version:" + strconv.FormatUint(rec.Version, 10) + "\r\n")
	b.WriteString("replicas:" + strconv.Itoa(rec.Replicas) + "\r\n")
	b.WriteString("last_move:" + rec.Move.String() + "\r\n")
	b.WriteString("groups_moving:" + strconv.Itoa(moving) + "\r\n")
	b.WriteString("groups_under_replicated:" + strconv.Itoa(cluster.UnderReplicated(rec)) + "\r\n")
	b.WriteString("balanced:" + strconv.FormatBool(cluster.Balanced(rec) && moving == 0) + "\r\n")
	for _, m := range rec.Members {
		b.WriteString("member:" + strconv.FormatUint(m.ID, 10) + " " + m.Addr + " " + m.State.String() + "\r\n")
	}
	for g, t := range rec.Targets {
		c := n.confOf(uint64(g + 1))
		b.WriteString("group:" + strconv.Itoa(g+1) + " target=" + idsText(t) + " voters=" + idsText(c.voters) + " learners=" + idsText(c.learners) + "\r\n")
	}
	return b.String()
}

// movesPending counts the groups whose configuration is not their target.
func (n *Node) movesPending(rec cluster.MetaRecord) int {
	moving := 0
	for g, t := range rec.Targets {
		if !n.settled(uint64(g+1), t) {
			moving++
		}
	}
	return moving
}

func idsText(ids []uint64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(parts, ",")
}

// PlacementText is CLUSTER PLACEMENT's text (tests, the CLI).
func (n *Node) PlacementText() string { return n.placementText() }

// remoteVoters are the voters of group g, which this node does not host,
// as gossiped (moves.go), else its target in the record (sorted).
func (n *Node) remoteVoters(g uint64) []uint64 {
	if c := n.confOf(g); c.known && len(c.voters) > 0 {
		return slices.Clone(c.voters)
	}
	t := n.targetOf(g)
	slices.Sort(t)
	return t
}
