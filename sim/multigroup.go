package sim

import (
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/cluster"
)

// The multi-group world (GroupConfig.Groups > 1), the simulator's side of
// docs/cluster.md's "Sharding": every node hosts one replica of every
// replica group, each in its own directory (group-<g>) on the node's one
// simulated disk, so a crash or restart takes all of them down at once.
// Group g starts owning cluster.SplitSlots(G)[g-1]. Routing, redirects,
// the slot table and leadership spreading are the real node's
// (node/routing.go); what is here is the client's side and the end
// checks.
//
// Clients keep a slot → node map learned from MOVED, follow ASK once with
// ASKING (not learned), and retry TRYAGAIN after a pause. A resharder
// (resharder.go) moves slot ranges between groups with cluster.Reshard.
// At the end, besides the checks of one group: the final leaders' slots
// cover every slot exactly once with no move left half done, ownership is
// what the finished moves say, and every replica of every group holds
// what the final reads saw (and no key outside its group's slots).

// multiGroup: the world has more than one replica group.
func (c *Client) multiGroup() bool { return c.r.Group != nil && c.r.Group.groups > 1 }

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

// forgetRoute gives up the route of the current operation after a
// timeout or an error from the node it went to: one group, the next
// command goes to a random node; sharded, the operation's slot is
// forgotten.
func (c *Client) forgetRoute() {
	if c.multiGroup() {
		delete(c.route.slots, c.route.slot)
		return
	}
	c.route.target = c.randomNode()
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

// shardsConverged: every group has a leader, and every member has applied
// what its group's leader committed.
func (g *Group) groupsConverged() bool {
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
			if !n.up || n.replica(grp) == nil || n.replica(grp).GroupStats().Applied < commit {
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
func (g *Group) checkGroups() {
	r := g.r
	want := map[string]checker.Value{}
	for _, op := range r.History {
		if op.Client == int(g.final.id) && !op.Unknown {
			want[op.Key] = op.Output
		}
	}
	r.W.halted = false
	if g.cfg.Moves {
		g.settleMoves() // moves.go: the expected nodes come from the final meta record
	}
	deadline := r.W.now + int64(convergeWithin)
	for r.W.now < deadline && !(g.leadersCurrent() && g.groupsConverged()) {
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
	converged := g.groupsConverged()
	for _, n := range g.memberNodes() {
		if !n.up {
			r.Oracle.fail("convergence: n" + itoa(int64(n.cfg.ID)) + " is down at the end")
			continue
		}
		for grp := uint64(1); grp <= uint64(g.groups); grp++ {
			if !g.memberOf(grp, n.cfg.ID) {
				if g.placed() && n.replica(grp) != nil {
					// Placement: each key on exactly its group's nodes.
					r.Oracle.fail("placement: n" + itoa(int64(n.cfg.ID)) + " holds a replica of group " + itoa(int64(grp)) +
						", placed on " + idList(g.MembersOf(grp)) + " only")
				}
				continue // a member of the other groups only
			}
			wantVoters := idList(g.MembersOf(grp))
			rep := n.replica(grp)
			if rep == nil {
				r.Oracle.fail("placement: n" + itoa(int64(n.cfg.ID)) + " holds no replica of group " + itoa(int64(grp)) +
					", placed on " + wantVoters)
				continue
			}
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
