package cluster

import (
	"slices"

	"github.com/cockroachdb/errors"
)

// Splitting a group (docs/cluster.md, "Splitting a group") starts with a
// new, empty group: AddGroup is the meta record with one more group, its
// target chosen as the rebalancer would fill it, and the move "group G+1
// added". The nodes of that target open a replica of it and bootstrap it
// with the target as its voters; the slots come next, with the ordinary
// slot move (Reshard) from the group being split.
//
// The target is Replicas active nodes: the fewest replicas first, then
// the fewest preferred leaderships, then the lowest id; its preferred
// leader (first) is the one of them leading the fewest groups (then
// holding the fewest replicas, then the lowest id). Adding the group thus
// never widens the gap between the most and the least loaded node by more
// than it must, and the rebalancer's next moves (NextMove) start from a
// placement as even as one group more allows.

// AddedGroup reports whether m is the move that added its group (no node
// leaves or joins an existing target).
func (m Move) AddedGroup() bool { return m.Group != 0 && m.From == 0 && m.To == 0 && !m.Lead }

// AddGroup is rec with one more group (the next version, the move "group
// len(Targets)+1 added"), placed on rec.Replicas active nodes as described
// above. It is an error, and rec is unchanged, when fewer than Replicas
// nodes are active or the record already has groupsMax groups.
func AddGroup(rec MetaRecord, groupsMax int) (MetaRecord, error) {
	g := len(rec.Targets) + 1
	if g > groupsMax || g > metaGroupsMax {
		return rec, errors.Newf("add group %d: the cluster may have at most %d groups (--groups-max)", g, min(groupsMax, metaGroupsMax))
	}
	l := loadsOf(rec)
	if len(l.active) < rec.Replicas {
		return rec, errors.Newf("add group %d: %d active nodes for a replication factor of %d", g, len(l.active), rec.Replicas)
	}
	pick := slices.Clone(l.active)
	slices.SortStableFunc(pick, func(a, b uint64) int {
		if d := l.replicas[a] - l.replicas[b]; d != 0 {
			return d
		}
		return l.leads[a] - l.leads[b] // then the lower id: active is ascending
	})
	target := pick[:rec.Replicas]
	lead := 0
	for i, id := range target {
		best := target[lead]
		if l.leads[id] < l.leads[best] || l.leads[id] == l.leads[best] &&
			(l.replicas[id] < l.replicas[best] || l.replicas[id] == l.replicas[best] && id < best) {
			lead = i
		}
	}
	target[0], target[lead] = target[lead], target[0]
	out := rec.Clone()
	out.Targets = append(out.Targets, slices.Clone(target))
	out.Version++
	out.Move = Move{Group: uint64(g)}
	if err := out.Check(); err != nil {
		return rec, errors.Wrapf(err, "add group %d", g)
	}
	return out, nil
}

// SplitRanges are the upper half of owned (by slot count; the lower half
// gets the odd slot), as ranges ascending: what `keel cluster split` moves
// to the new group unless told which slots. Empty when owned holds fewer
// than two slots.
func SplitRanges(owned []SlotRange) []SlotRange {
	rs := slices.Clone(owned)
	slices.SortFunc(rs, func(a, b SlotRange) int { return a.First - b.First })
	total := 0
	for _, r := range rs {
		total += r.Last - r.First + 1
	}
	skip := total - total/2 // the slots that stay
	var out []SlotRange
	for _, r := range rs {
		n := r.Last - r.First + 1
		if skip >= n {
			skip -= n
			continue
		}
		out = append(out, SlotRange{First: r.First + skip, Last: r.Last})
		skip = 0
	}
	return out
}
