package sim

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/cluster"
)

// The sharded world (GroupConfig.Groups > 1), the simulator's side of
// docs/cluster.md's "Sharding": every node hosts one real cluster.Replica
// of every replica group, each in its own directory (group-<g>) on the
// node's one simulated disk, so a crash or restart takes all of them
// down at once. Group g starts owning cluster.SplitSlots(G)[g-1]; its
// replicas gate keyed commands by slot (Options.Slots) and redirect with
// the node's slot table, as the server does:
//
//   - the node routes a keyed request to the group its slot table names
//     (after ASKING, to the group importing the slot, if it has one),
//     CLUSTER RESHARD <g> … to group g, and keyless requests to group 1;
//   - the slot table is built from every local replica's OnSlotsChanged:
//     a group that owns the slot and is not migrating it, else the
//     migrating owner, else what the table said before;
//   - peer messages carry their group in a first byte;
//   - MOVED names the leader (as this node sees it) of the group the
//     table names, ASK that of the importing group; "TRYAGAIN no leader …"
//     when it is not known;
//   - leadership is spread as the server spreads it: every
//     spreadCheckTicks ticks, a group's leader hands leadership to the
//     group's preferred node if it has heard from it recently.
//
// Clients keep a slot → node map learned from MOVED, follow ASK once with
// ASKING (not learned), and retry TRYAGAIN after a pause. A resharder
// (resharder.go) moves slot ranges between groups with cluster.Reshard.
// At the end, besides the checks of one group: the final leaders' slots
// cover every slot exactly once with no move left half done, ownership is
// what the finished moves say, and every replica of every group holds
// what the final reads saw (and no key outside its group's slots).

// sharded: the world has more than one replica group.
func (c *Client) sharded() bool { return c.r.Group != nil && c.r.Group.groups > 1 }

// opSlot is the slot of a command or of a transaction the workload
// spells as one operation (banktxn.go) (-1: no key, or keys in several
// slots).
func opSlot(words []string) int {
	bytes := func(ws []string) [][]byte {
		argv := make([][]byte, len(ws))
		for i, w := range ws {
			argv[i] = []byte(w)
		}
		return argv
	}
	if cmds, _, ok := txnParse(words); ok {
		all := make([][][]byte, len(cmds))
		for i, c := range cmds {
			all[i] = bytes(c)
		}
		slot, _ := cluster.TxnSlot(all)
		return slot
	}
	slot, _ := cluster.CommandSlot(bytes(words))
	return slot
}

// slotNode is where the current operation goes: the node learned for its
// slot, else a random one.
func (c *Client) slotNode() *Node {
	if n := c.route.slots[c.route.slot]; n != nil {
		return n
	}
	return c.randomNode()
}

// learnSlot records that slot (as a MOVED reply spelled it) is served by
// n, when it is the current operation's slot.
func (c *Client) learnSlot(slot string, n *Node) {
	s, err := strconv.Atoi(slot)
	if err != nil || s != c.route.slot || s < 0 {
		return
	}
	if c.route.slots == nil {
		c.route.slots = map[int]*Node{}
	}
	c.route.slots[s] = n
}

// redirectNode is the node a MOVED or ASK reply names ("ASK 42 n3"); nil
// (and a failure: the reply is malformed) when it names none.
func (c *Client) redirectNode(msg string) *Node {
	f := strings.Fields(msg)
	if len(f) == 3 {
		id, err := strconv.ParseUint(strings.TrimPrefix(f[2], "n"), 10, 64)
		if _, serr := strconv.Atoi(f[1]); err == nil && serr == nil && id >= 1 && id <= uint64(len(c.r.Group.Nodes)) {
			return c.r.Group.Node(id)
		}
	}
	c.r.Oracle.fail("a redirect names no node of the group: " + msg)
	return nil
}

// forgetRoute gives up the route of the current operation after a
// timeout or an error from the node it went to: one group, the next
// command goes to a random node; sharded, the operation's slot is
// forgotten.
func (c *Client) forgetRoute() {
	if c.route.admin && c.sharded() {
		delete(c.route.adminLeader, c.route.change.group)
		return
	}
	if c.sharded() {
		delete(c.route.slots, c.route.slot)
		return
	}
	c.route.target = c.randomNode()
}

// slotTable is a node's view of which of its groups serves each slot.
type slotTable struct {
	infos []cluster.SlotInfo // per group as last told (Group 0: not yet)
	owner []uint8            // slot → group
	rank  []uint8            // scratch
}

func newSlotTable(groups int) *slotTable {
	t := &slotTable{
		infos: make([]cluster.SlotInfo, groups),
		owner: make([]uint8, cluster.SlotCount),
		rank:  make([]uint8, cluster.SlotCount),
	}
	for i, rs := range cluster.SplitSlots(groups) {
		for _, r := range rs {
			for s := r.First; s <= r.Last; s++ {
				t.owner[s] = uint8(i + 1)
			}
		}
	}
	return t
}

// update takes a group's new slot view and rebuilds the table: for each
// slot, the lowest group that owns it and is not migrating it, else the
// lowest that owns it, else the group the table named before.
func (t *slotTable) update(info cluster.SlotInfo) {
	t.infos[info.Group-1] = info
	clear(t.rank)
	for gi := range t.infos {
		in := &t.infos[gi]
		for _, r := range in.Owned {
			for s := r.First; s <= r.Last; s++ {
				rank := uint8(2)
				if migrating(in, s) {
					rank = 1
				}
				if rank > t.rank[s] {
					t.rank[s], t.owner[s] = rank, uint8(gi+1)
				}
			}
		}
	}
}

func migrating(in *cluster.SlotInfo, s int) bool {
	for _, m := range in.Migrating {
		if m.Contains(s) {
			return true
		}
	}
	return false
}

// slotInfoString renders a slot view for traces and failures.
func slotInfoString(in cluster.SlotInfo) string {
	var b strings.Builder
	b.WriteString("owned=")
	for i, r := range in.Owned {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.String())
	}
	moves := func(name string, ms []cluster.SlotMove) {
		if len(ms) == 0 {
			return
		}
		b.WriteString(" " + name + "=")
		for i, m := range ms {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(m.SlotRange.String() + ":g" + strconv.FormatUint(m.Group, 10))
		}
	}
	moves("migrating", in.Migrating)
	moves("importing", in.Importing)
	return b.String()
}

// spreadCheckTicks is how often (in ticks) a group's leader checks
// whether its preferred node should lead instead, as the server does
// (server/groups.go): not a multiple of the election timeout (10 ticks),
// when Raft clears every peer's RecentActive.
const spreadCheckTicks = 37

// spreadLeadership is the server's leader spreading: a leader of group g
// that is not g's preferred node (the ((g-1) mod n)-th of the sorted
// voters) hands leadership to it when the leader has heard from it
// recently.
func (n *Node) spreadLeadership(g uint64, rep *cluster.Replica) {
	if !rep.IsLeader() {
		return
	}
	voters := rep.Voters()
	if len(voters) == 0 {
		return
	}
	want := voters[(g-1)%uint64(len(voters))] // Voters is sorted
	if want == n.cfg.ID || slices.Contains(rep.DownPeers(), want) {
		return
	}
	n.trace("hand leadership of g" + itoa(int64(g)) + " to n" + itoa(int64(want)))
	rep.TransferLeadership(want)
}

// resetSlots starts the node's slot table afresh, as a server process
// does at start; the replicas' OnSlotsChanged fill it as they open.
func (n *Node) resetSlots() {
	if n.sharded() {
		n.slots = newSlotTable(n.grp.groups)
	}
}

// shardOptions wires group grp's replica on a node of a sharded world.
func (n *Node) shardOptions(o *cluster.Options, grp uint64) {
	o.Group = grp
	o.Slots = cluster.SplitSlots(n.grp.groups)[grp-1]
	o.Send = func(to uint64, msg []byte) {
		b := make([]byte, 0, len(msg)+1)
		b = append(append(b, byte(grp)), msg...)
		from := n.cfg.ID
		n.outbox = append(n.outbox, func() { n.r.Net.sendDatagram(from, to, b) })
	}
	o.Redirect = func(req *cluster.Request, leader uint64) string {
		if leader == 0 || leader == n.cfg.ID {
			return "TRYAGAIN no leader for replica group " + itoa(int64(grp)) + " yet (election in progress)"
		}
		return "MOVED " + strconv.Itoa(redirectSlot(req)) + " n" + itoa(int64(leader))
	}
	o.SlotRedirect = func(req *cluster.Request, slot int, ask bool, to uint64) string {
		kind := "ASK "
		if !ask {
			kind, to = "MOVED ", uint64(n.slots.owner[slot])
		}
		var leader uint64
		if rep := n.replica(to); rep != nil {
			leader = rep.Leader()
		}
		if leader == 0 {
			return "TRYAGAIN no leader known for replica group " + itoa(int64(to)) + " (slot " + strconv.Itoa(slot) + ")"
		}
		return kind + strconv.Itoa(slot) + " n" + itoa(int64(leader))
	}
	o.OnSlotsChanged = func(info cluster.SlotInfo) {
		t := n.slots
		if info.Group != grp || t == nil {
			n.r.Oracle.fail("n" + itoa(int64(n.cfg.ID)) + " g" + itoa(int64(grp)) + ": OnSlotsChanged told of group " + itoa(int64(info.Group)))
			return
		}
		was := t.infos[grp-1]
		t.update(info)
		if now := slotInfoString(info); was.Group == 0 || now != slotInfoString(was) {
			n.trace("slots g" + itoa(int64(grp)) + " " + now)
		}
	}
}

// redirectSlot is the slot a redirect for req names (0 when it has none).
func redirectSlot(req *cluster.Request) int {
	var slot int
	switch {
	case cluster.IsReshardCommand(req.Argv):
		slot = cluster.ReshardSlot(req.Argv)
	case req.Txn != nil:
		slot, _ = cluster.TxnSlot(req.Txn.Cmds)
	default:
		slot, _ = cluster.CommandSlot(req.Argv)
	}
	return max(slot, 0)
}

// unframe splits a peer message into its group and the replica's bytes.
func unframe(data []byte) (uint64, []byte) {
	if len(data) == 0 {
		return 0, nil
	}
	return uint64(data[0]), data[1:]
}

// groupFor is the group a request goes to on this node.
func (n *Node) groupFor(req *cluster.Request) uint64 {
	if cluster.IsReshardCommand(req.Argv) {
		if g, ok := cluster.ReshardGroup(req.Argv); ok && g >= 1 && g <= uint64(n.grp.groups) {
			return g
		}
		return 1 // the replica answers the error
	}
	var slot int
	if req.Txn != nil {
		slot, _ = cluster.TxnSlot(req.Txn.Cmds)
	} else {
		slot, _ = cluster.CommandSlot(req.Argv)
	}
	if slot < 0 {
		return 1
	}
	if req.Asking {
		// After ASK: the group importing the slot, if this node has one.
		for gi := range n.slots.infos {
			for _, m := range n.slots.infos[gi].Importing {
				if m.Contains(slot) {
					return uint64(gi + 1)
				}
			}
		}
	}
	return uint64(n.slots.owner[slot])
}

// drainSharded is drainAsync on a sharded node: the batch is split by
// group, and each group's run goes to its replica's SubmitAsync, in
// group order (a client has one request outstanding, so no client's
// order depends on it).
func (n *Node) drainSharded() {
	k := min(len(n.inbox), batchMax)
	batch := n.inbox[:k:k]
	n.inbox = n.inbox[k:]
	recs := make([]recorder, k)
	reqs := make([]cluster.Request, k)
	byGroup := make([][]int, n.grp.groups)
	for i, q := range batch {
		reqs[i] = n.r.requestFor(q, &recs[i])
		reqs[i].ReadOnly = q.readOnly
		reqs[i].Asking = q.asking
		g := q.group
		if g == 0 {
			g = n.groupFor(&reqs[i])
		}
		byGroup[g-1] = append(byGroup[g-1], i)
	}
	now := n.Clock.Now()
	for gi, idx := range byGroup {
		if len(idx) == 0 {
			continue
		}
		var sb strings.Builder
		sb.WriteString("submit " + itoa(int64(len(idx))) + " g" + itoa(int64(gi+1)) + ":")
		sub := make([]cluster.Request, len(idx))
		for j, i := range idx {
			q := batch[i]
			sub[j] = reqs[i]
			sb.WriteString(" c" + itoa(int64(q.client)) + "#" + itoa(int64(q.seq)))
			if q.asking {
				sb.WriteString("(asking)")
			}
		}
		n.trace(sb.String())
		done := func() {
			for _, i := range idx {
				n.sendReply(batch[i], &recs[i])
			}
		}
		rep := n.reps[gi]
		crashed, op := n.call(func() { rep.SubmitAsync(now, sub, done) })
		if crashed {
			n.powerOff("crash point: " + op)
			return
		}
	}
	n.setBusy(n.r.W.now + int64(n.FS.TakeBusy()) + int64(n.cfg.RequestCost)*int64(k))
	n.flush()
	n.checkFatal()
	n.scheduleDrain()
}

// shardsConverged: every group has a leader, and every member has applied
// what its group's leader committed.
func (g *Group) shardsConverged() bool {
	for grp := uint64(1); grp <= uint64(g.groups); grp++ {
		l := g.LeaderOf(grp)
		if l == nil {
			return false
		}
		commit := l.replica(grp).GroupStats().Commit
		for _, n := range g.memberNodes() {
			if !g.memberOf(grp, n.cfg.ID) {
				continue
			}
			if !n.up || n.replica(grp).GroupStats().Applied < commit {
				return false
			}
		}
	}
	return true
}

// leadersCurrent: every group has a leader that answered a read (a
// ReadIndex): it has committed an entry of its term, so its commit index
// covers everything an earlier leader committed. Only the final reads'
// groups are known to be current otherwise; a group the final reads did
// not touch may have elected its leader a moment ago, its commit index
// still the one it recovered from disk.
func (g *Group) leadersCurrent() bool {
	for grp := uint64(1); grp <= uint64(g.groups); grp++ {
		l := g.LeaderOf(grp)
		if l == nil {
			return false
		}
		if v := l.localRead(grp, [][]byte{[]byte("DBSIZE")}); v.Kind != ':' {
			return false
		}
	}
	return true
}

// checkShards is checkConverged for a sharded world: once every replica
// applied its leader's commit index, the final leaders' slots must cover
// every slot exactly once, with nothing migrating or importing, as the
// finished moves left them; every replica of a group must have its
// leader's voters and slots, hold what the final reads saw for the keys
// of the group's slots, and hold no other key (DBSIZE).
func (g *Group) checkShards() {
	r := g.r
	want := map[string]checker.Value{}
	for _, op := range r.History {
		if op.Client == int(g.final.id) && !op.Unknown {
			want[op.Key] = op.Output
		}
	}
	r.W.halted = false
	deadline := r.W.now + int64(convergeWithin)
	for r.W.now < deadline && !(g.leadersCurrent() && g.shardsConverged()) {
		r.W.RunUntil(r.W.now + int64(100*time.Millisecond))
	}
	infos := make([]cluster.SlotInfo, g.groups)
	for grp := uint64(1); grp <= uint64(g.groups); grp++ {
		l := g.LeaderOf(grp)
		if l == nil {
			r.Oracle.fail("convergence: group " + itoa(int64(grp)) + " has no leader at the end")
			return
		}
		infos[grp-1] = l.replica(grp).Slots()
		r.W.Trace("sim", "final slots g"+itoa(int64(grp))+" (leader n"+itoa(int64(l.cfg.ID))+"): "+slotInfoString(infos[grp-1]))
		if wantVoters := idList(g.MembersOf(grp)); idList(l.replica(grp).Voters()) != wantVoters {
			got := idList(l.replica(grp).Voters())
			r.Oracle.fail("membership: the leader n" + itoa(int64(l.cfg.ID)) + " of group " + itoa(int64(grp)) + " has voters " + got + ", want " + wantVoters)
		}
	}
	owner := g.checkSlotMap(infos)
	if owner == nil {
		return
	}
	// What each group must hold: the final reads of its keys.
	count := make([]int64, g.groups)
	for _, k := range r.keys {
		o := owner[cluster.KeySlot([]byte(k))]
		if w, ok := want[k]; ok && w.Kind != checker.NilValue {
			count[o-1]++
		}
	}
	converged := g.shardsConverged()
	for _, n := range g.memberNodes() {
		if !n.up {
			r.Oracle.fail("convergence: n" + itoa(int64(n.cfg.ID)) + " is down at the end")
			continue
		}
		for grp := uint64(1); grp <= uint64(g.groups); grp++ {
			if !g.memberOf(grp, n.cfg.ID) {
				continue // a member of the other groups only
			}
			wantVoters := idList(g.MembersOf(grp))
			rep := n.replica(grp)
			st := rep.GroupStats()
			where := "convergence: n" + itoa(int64(n.cfg.ID)) + " g" + itoa(int64(grp))
			lag := " (applied " + itoa(int64(st.Applied)) + ", commit " + itoa(int64(st.Commit)) + ")"
			if converged {
				if got := slotInfoString(rep.Slots()); got != slotInfoString(infos[grp-1]) {
					r.Oracle.fail(where + " has slots " + got + " but its leader " + slotInfoString(infos[grp-1]))
				}
				if got := idList(rep.Voters()); got != wantVoters {
					r.Oracle.fail(where + " has voters " + got + ", want " + wantVoters)
				}
			}
			for _, k := range r.keys {
				if owner[cluster.KeySlot([]byte(k))] != grp {
					continue
				}
				w, ok := want[k]
				if !ok {
					continue
				}
				got := n.localRead(grp, [][]byte{[]byte("GET"), []byte(k)})
				g.Checked++
				if !got.equalValue(w) {
					r.Oracle.fail(where + " holds " + k + "=" + got.String() + " but the final read saw " + w.String() + lag)
				}
			}
			size := n.localRead(grp, [][]byte{[]byte("DBSIZE")})
			g.Checked++
			if size.Kind != ':' || size.Int != count[grp-1] {
				r.Oracle.fail(where + " has DBSIZE " + size.String() + ", want " + strconv.FormatInt(count[grp-1], 10) +
					" (the keys of its slots the final reads found)" + lag)
			}
		}
	}
}

// checkSlotMap checks the final leaders' slot views: every slot owned by
// exactly one group, no move left half done, and ownership as the
// resharder's finished moves leave the starting split. It returns the
// slot → group map (nil when a slot has no single owner or a move is
// half done: the groups' contents are then not comparable key by key).
func (g *Group) checkSlotMap(infos []cluster.SlotInfo) []uint64 {
	r := g.r
	owner := make([]uint64, cluster.SlotCount)
	ok := true
	for gi, in := range infos {
		grp := uint64(gi + 1)
		if len(in.Migrating) > 0 || len(in.Importing) > 0 {
			r.Oracle.fail("slots: group " + itoa(int64(grp)) + " still has a move half done at the end: " + slotInfoString(in))
			ok = false
		}
		for _, rg := range in.Owned {
			for s := rg.First; s <= rg.Last; s++ {
				if owner[s] != 0 && ok {
					r.Oracle.fail("slots: slot " + strconv.Itoa(s) + " is owned by groups " + itoa(int64(owner[s])) + " and " + itoa(int64(grp)))
					ok = false
				}
				owner[s] = grp
			}
		}
	}
	for s, o := range owner {
		if o == 0 {
			r.Oracle.fail("slots: slot " + strconv.Itoa(s) + " is owned by no group at the end")
			return nil
		}
	}
	if !ok {
		return nil
	}
	expect := g.expectedOwners()
	for s := range owner {
		if owner[s] != expect[s] {
			r.Oracle.fail("slots: slot " + strconv.Itoa(s) + " is owned by group " + itoa(int64(owner[s])) +
				", but the finished moves leave it to group " + itoa(int64(expect[s])))
			break
		}
	}
	return owner
}
