package sim

import (
	"slices"
	"strings"
	"time"

	"github.com/keel-db/keel/cluster"
)

// Moves (GroupConfig.Moves; docs/cluster.md, "Moves"): the placement
// changes online. The admin's CLUSTER ADDNODE/DELNODE change the meta
// record through group 1's leader (a -MOVED from any other node says
// where it is); the nodes then move replicas on their own. At the end the
// world waits for the moves to finish and checks the final record, then
// takes each group's expected nodes from it for the usual checks (every
// replica holds exactly its group's keys; no other node holds one).

// movesWithin bounds the wait for the moves left at the end: each takes a
// few seconds (a second per configuration change, the catch-up between).
const movesWithin = 60 * time.Second

// placedAdminReply takes the answer to the admin's meta change.
func (c *Client) placedAdminReply(r Reply) {
	a, g := c.route.admin, c.r.Group
	switch {
	case r.Kind == '+' || a.acl && r.Kind == ':' || addGroupDone(a.argv, r): // ACL DELUSER answers a count
		c.route.admin = nil
		if a.acl {
			c.r.W.Trace("admin", "done "+strings.Join(a.argv, " ")+" (group 1)")
			if a.done != nil {
				a.done()
			}
			return
		}
		if a.id != 0 {
			g.removed = slices.DeleteFunc(g.removed, func(id uint64) bool { return id == a.id })
			if !a.add {
				g.removed = append(g.removed, a.id)
			}
		}
		c.r.W.Trace("admin", "done "+strings.Join(a.argv, " ")+" (meta record)")
		if a.done != nil {
			a.done()
		}
		return
	case r.IsError() && strings.HasPrefix(r.Str, "MOVED "):
		f := strings.Fields(r.Str)
		a.at = g.nodeAt(f[len(f)-1])
		c.r.W.After(0, c.issue)
		return
	}
	a.at = nil
	c.r.W.After(adminRetry, c.issue)
}

// metaRecord is the record of group 1's leader (ok false: none).
func (g *Group) metaRecord() (cluster.MetaRecord, bool) {
	l := g.LeaderOf(1)
	if l == nil || l.nd == nil {
		return cluster.MetaRecord{}, false
	}
	return l.nd.MetaRecord(), true
}

// MetaRecord is the meta record of group 1's leader (ok false: no
// leader), for scenarios' own checks.
func (g *Group) MetaRecord() (cluster.MetaRecord, bool) { return g.metaRecord() }

// ACLUsers are the users of the table in force on node id (nil while it
// is down).
func (g *Group) ACLUsers(id uint64) []string {
	n := g.Node(id)
	if !n.up || n.nd == nil {
		return nil
	}
	return n.nd.ACLUsers()
}

// movesDone: the record needs no move, and every group's leader has the
// record's target as its voters and no learner.
func (g *Group) movesDone() bool {
	rec, ok := g.metaRecord()
	if !ok || !cluster.Balanced(rec) || len(rec.Targets) != g.groups {
		return false // a split has not added its group yet
	}
	for grp := uint64(1); grp <= uint64(g.groups); grp++ {
		l := g.LeaderOf(grp)
		if l == nil {
			return false
		}
		rep := l.replica(grp)
		want := slices.Clone(rec.Targets[grp-1])
		slices.Sort(want)
		if !slices.Equal(rep.Voters(), want) || len(rep.Learners()) > 0 {
			return false
		}
	}
	// Every node dropped what it no longer hosts.
	for _, n := range g.Nodes {
		if !n.up {
			continue
		}
		for grp := uint64(1); grp <= uint64(g.groups); grp++ {
			if (n.replica(grp) != nil) != slices.Contains(rec.Targets[grp-1], n.cfg.ID) {
				return false
			}
		}
	}
	return true
}

// settleMoves waits (up to movesWithin) for the moves to finish, checks
// the final record and makes it the expectation of checkGroups.
func (g *Group) settleMoves() {
	r := g.r
	deadline := r.W.now + int64(movesWithin)
	for r.W.now < deadline && !g.movesDone() {
		r.W.RunUntil(r.W.now + int64(100*time.Millisecond))
	}
	rec, ok := g.metaRecord()
	if !ok {
		r.Oracle.fail("moves: no leader of group 1 (the meta group) at the end")
		return
	}
	r.W.Trace("sim", "final meta record version "+itoa(int64(rec.Version))+" last move "+rec.Move.String())
	if m := cluster.NextMove(rec); !m.None() {
		r.Oracle.fail("moves: the final meta record (version " + itoa(int64(rec.Version)) + ") still needs the move " + m.String())
	}
	var active []uint64
	for _, m := range rec.Members {
		if m.State == cluster.MemberActive {
			active = append(active, m.ID)
		}
		if slices.Contains(g.removed, m.ID) {
			r.Oracle.fail("moves: node " + itoa(int64(m.ID)) + " was removed but is still a member (" + m.State.String() + ")")
		}
	}
	if len(rec.Targets) != g.groups {
		r.Oracle.fail("moves: the final meta record has " + itoa(int64(len(rec.Targets))) + " groups, want " + itoa(int64(g.groups)) + " (a split did not add its group)")
		return
	}
	for grp, t := range rec.Targets {
		if len(t) != g.cfg.Replicas {
			r.Oracle.fail("moves: group " + itoa(int64(grp+1)) + " targets " + idList(t) + ", want " + itoa(int64(g.cfg.Replicas)) + " nodes")
		}
		for i, id := range t {
			if !slices.Contains(active, id) || slices.Contains(t[:i], id) {
				r.Oracle.fail("moves: group " + itoa(int64(grp+1)) + " targets " + idList(t) + ": node " + itoa(int64(id)) + " twice or not active")
			}
		}
		want := slices.Clone(t)
		slices.Sort(want)
		g.perGroup[grp] = want
	}
	g.members = active
	if !g.movesDone() {
		r.Oracle.fail("moves: not finished within " + movesWithin.String() + " of the final reads")
	}
}

// checkDrop: node n just deleted its replica of group grp; the group's
// leader (the one of the highest term) must no longer count it, as voter
// or learner. Deleting a replica the group still counts loses a copy of
// its data that a quorum may need.
func (g *Group) checkDrop(n *Node, grp uint64) {
	l := g.LeaderOf(grp)
	if l == nil {
		return
	}
	rep := l.replica(grp)
	if slices.Contains(rep.Voters(), n.cfg.ID) || slices.Contains(rep.Learners(), n.cfg.ID) {
		g.r.Oracle.fail("moves: n" + itoa(int64(n.cfg.ID)) + " deleted its replica of group " + itoa(int64(grp)) +
			" while the leader n" + itoa(int64(l.cfg.ID)) + " still counts it (voters " + idList(rep.Voters()) + ", learners " + idList(rep.Learners()) + ")")
	}
}

// checkVoterCount: a group n leads never has fewer voters than the
// replication factor (a move adds the new voter before it removes the
// old one; a dead node's replica counts until its replacement votes).
func (g *Group) checkVoterCount(n *Node) {
	if !n.up || n.nd == nil {
		return
	}
	for grp := uint64(1); grp <= uint64(g.groups); grp++ {
		rep := n.replica(grp)
		if rep == nil || !rep.IsLeader() {
			continue
		}
		if v := rep.Voters(); len(v) < g.cfg.Replicas && !g.votersShort[grp-1] {
			g.votersShort[grp-1] = true // once per group
			g.r.Oracle.fail("moves: the leader n" + itoa(int64(n.cfg.ID)) + " of group " + itoa(int64(grp)) + " has voters " + idList(v) +
				" (learners " + idList(rep.Learners()) + "), fewer than " + itoa(int64(g.cfg.Replicas)))
		}
	}
}
