package sim

import (
	"strings"

	"github.com/keel-db/keel/cluster"
)

// Splits (GroupConfig.MaxGroups; docs/cluster.md, "Splitting a group"):
// a placed world's group is split online as `keel cluster split` does it.
// The admin sends CLUSTER ADDGROUP (a write of the meta record through
// group 1's leader, -MOVED from any other node); the nodes of the new
// group's target bootstrap it; then the resharder moves a slot range of
// the split group to it. The end checks (checkGroups, settleMoves) expect
// the world's MaxGroups groups, every key on its group's nodes only.

// addGroupDone: the admin's ADDGROUP is done. Besides +OK, the refusal of
// a group past --groups-max says an earlier attempt, whose answer was
// lost, added it (a world splits up to MaxGroups exactly once per group).
func addGroupDone(argv []string, r Reply) bool {
	return len(argv) == 2 && strings.EqualFold(argv[1], "ADDGROUP") && r.IsError() && strings.Contains(r.Str, "may have at most")
}

// Split adds group to (the next group number: CLUSTER ADDGROUP) and moves
// spec.Range from spec.From to it (spec.To is set to it); done runs when
// the move finished. Steps sent before the new group formed are answered
// -TRYAGAIN and sent again, as the resharder does with any.
func (g *Group) Split(to uint64, spec SlotMoveSpec, done func()) {
	if to <= uint64(g.founding) || to > uint64(g.groups) {
		panic("sim: Group.Split: group " + itoa(int64(to)) + " is not one a split adds (GroupConfig.MaxGroups)")
	}
	spec.To = to
	g.r.W.Trace("admin", "split g"+itoa(int64(spec.From))+": "+spec.Range.String()+" to the new g"+itoa(int64(to)))
	g.Admin([]string{"CLUSTER", "ADDGROUP"}, func() { g.Reshard(spec, done) })
}

// SplitRange is the upper half of group grp's starting slots: what a
// split of it moves by default.
func (g *Group) SplitRange(grp uint64) cluster.SlotRange {
	rs := cluster.SplitRanges(cluster.SplitSlots(g.founding)[grp-1])
	return rs[0]
}
