package cluster

import (
	"slices"

	"github.com/cockroachdb/errors"
)

// Rebalancing (docs/cluster.md, "Moves"). NextMove is a pure function of
// the meta record: the one move that brings the placement closest to
// what it should be, or none. The meta group's leader writes it into the
// record (ApplyMove) once the previous move has finished, and the moved
// group's leader carries it out with Raft configuration changes; one
// move at a time keeps every group's availability and the bytes in
// flight bounded. In order of priority:
//
//  1. Repair. A group whose target holds a node that is not active (dead,
//     or decommissioning) gets a replacement on an active node: a dead
//     node's replicas are re-created, a leaving node's moved away. Then a
//     group with fewer replicas than the replication factor gets one more
//     (a node added after a dead one left too few), and one with more
//     loses its most loaded one.
//  2. Replicas. While the most loaded active node holds two replicas more
//     than the least loaded, one of its replicas goes to it.
//  3. Leaders. While some group's preferred leader leads two groups more
//     than another node of the same group, the preference moves to that
//     node (no data moves: its leader hands leadership over); failing
//     that, the first swap of a chain of them (leaderChain).
//
// Every choice is by counts, then node id, then group order: the same
// record gives the same move on every node and in every run. Each move
// of 2 and 3 lowers the sum of squared loads, so moves stop.

// NextMove is the next move toward the balanced placement of rec, or the
// zero Move when there is none to make.
func NextMove(rec MetaRecord) Move {
	if m := repairMove(rec); !m.None() {
		return m
	}
	if m := replicaMove(rec); !m.None() {
		return m
	}
	return leaderMove(rec)
}

// loads counts each active node's replicas and preferred leaderships.
type loads struct {
	active   []uint64 // ascending
	replicas map[uint64]int
	leads    map[uint64]int
}

func loadsOf(rec MetaRecord) loads {
	l := loads{replicas: map[uint64]int{}, leads: map[uint64]int{}}
	for _, m := range rec.Members {
		if m.State == MemberActive {
			l.active = append(l.active, m.ID)
			l.replicas[m.ID], l.leads[m.ID] = 0, 0
		}
	}
	for _, t := range rec.Targets {
		for i, id := range t {
			if _, ok := l.replicas[id]; ok {
				l.replicas[id]++
				if i == 0 {
					l.leads[id]++
				}
			}
		}
	}
	return l
}

// receiver is the active node not in target to give a replica to: the
// fewest replicas, then the fewest leaderships, then the lowest id; 0
// when every active node is in target.
func (l loads) receiver(target []uint64) uint64 {
	best := uint64(0)
	for _, id := range l.active {
		if slices.Contains(target, id) {
			continue
		}
		if best == 0 || l.replicas[id] < l.replicas[best] ||
			l.replicas[id] == l.replicas[best] && l.leads[id] < l.leads[best] {
			best = id
		}
	}
	return best
}

func repairMove(rec MetaRecord) Move {
	l := loadsOf(rec)
	for g, t := range rec.Targets {
		for _, id := range t {
			if _, active := l.replicas[id]; active {
				continue
			}
			if to := l.receiver(t); to != 0 {
				return Move{Group: uint64(g + 1), From: id, To: to}
			}
			// No active node to take it: the group keeps it until one
			// joins (a dead node's replica still counts in its quorum
			// arithmetic, so dropping it would not help).
		}
	}
	for g, t := range rec.Targets {
		if len(t) < rec.Replicas {
			if to := l.receiver(t); to != 0 {
				return Move{Group: uint64(g + 1), To: to}
			}
		}
		if len(t) > rec.Replicas {
			from := t[len(t)-1]
			for _, id := range t[1:] {
				if l.replicas[id] > l.replicas[from] || l.replicas[id] == l.replicas[from] && id > from {
					from = id
				}
			}
			return Move{Group: uint64(g + 1), From: from}
		}
	}
	return Move{}
}

func replicaMove(rec MetaRecord) Move {
	l := loadsOf(rec)
	if len(l.active) < 2 {
		return Move{}
	}
	// The most loaded node (the highest id on ties) gives to the least
	// loaded (the lowest id on ties).
	from, to := l.active[0], l.active[0]
	for _, id := range l.active {
		if l.replicas[id] >= l.replicas[from] {
			from = id
		}
		if l.replicas[id] < l.replicas[to] {
			to = id
		}
	}
	if l.replicas[from]-l.replicas[to] < 2 {
		return Move{}
	}
	// A group of from's that to is not in exists (from holds more); one
	// that from does not lead is preferred, so leaderships stay put.
	pick := -1
	for g, t := range rec.Targets {
		if !slices.Contains(t, from) || slices.Contains(t, to) {
			continue
		}
		if pick < 0 || rec.Targets[pick][0] == from && t[0] != from {
			pick = g
		}
	}
	if pick < 0 {
		return Move{} // cannot happen: from holds more groups than to
	}
	return Move{Group: uint64(pick + 1), From: from, To: to}
}

func leaderMove(rec MetaRecord) Move {
	l := loadsOf(rec)
	best, gain := Move{}, 1
	for g, t := range rec.Targets {
		lead := t[0]
		if _, ok := l.leads[lead]; !ok {
			continue
		}
		for _, id := range t[1:] {
			n, ok := l.leads[id]
			if !ok {
				continue
			}
			// The largest gain; on ties the first group, then the lowest id.
			if d := l.leads[lead] - n; d > gain || d == gain && gain > 1 && best.Group == uint64(g+1) && id < best.To {
				best, gain = Move{Group: uint64(g + 1), From: lead, To: id, Lead: true}, d
			}
		}
	}
	if !best.None() {
		return best
	}
	return l.leaderChain(rec)
}

// leaderChain finds, when no single swap helps, the shortest chain of
// swaps from a node leading the most groups to one leading two fewer:
// A leads a group holding B, B (one fewer than A) leads a group holding
// C, ..., down to a node leading two fewer than A. It returns the chain's
// first swap; the next call finds the rest of it, one shorter, so the
// chains end and then a single swap lowers the sum of squared loads.
func (l loads) leaderChain(rec MetaRecord) Move {
	hi := 0
	for _, id := range l.active {
		hi = max(hi, l.leads[id])
	}
	type edge struct{ g, from uint64 }
	parent := map[uint64]edge{}
	var queue []uint64
	for _, id := range l.active {
		if l.leads[id] == hi {
			parent[id] = edge{}
			queue = append(queue, id)
		}
	}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for g, t := range rec.Targets {
			if t[0] != u {
				continue
			}
			others := slices.Clone(t[1:])
			slices.Sort(others)
			for _, v := range others {
				if _, active := l.leads[v]; !active {
					continue
				}
				if _, seen := parent[v]; seen {
					continue
				}
				parent[v] = edge{g: uint64(g + 1), from: u}
				if l.leads[v] <= hi-2 {
					for parent[u].g != 0 { // walk back to the chain's start
						v, u = u, parent[u].from
					}
					return Move{Group: parent[v].g, From: u, To: v, Lead: true}
				}
				queue = append(queue, v)
			}
		}
	}
	return Move{}
}

// ApplyMove is rec with move m made in its targets, the next version, and
// m as its move. m must be one NextMove gave for rec (or one of its
// kind): anything else is an error and rec is unchanged.
func ApplyMove(rec MetaRecord, m Move) (MetaRecord, error) {
	if m.Group < 1 || m.Group > uint64(len(rec.Targets)) || m.From == 0 && m.To == 0 {
		return rec, errors.Newf("move %s: no such group or no node", m)
	}
	out := rec.Clone()
	t := out.Targets[m.Group-1]
	i := slices.Index(t, m.From)
	switch {
	case m.Lead:
		j := slices.Index(t, m.To)
		if i != 0 || j < 1 {
			return rec, errors.Newf("move %s: target %v", m, t)
		}
		t[0], t[j] = t[j], t[0]
	case m.From == 0:
		if slices.Contains(t, m.To) {
			return rec, errors.Newf("move %s: target %v already holds it", m, t)
		}
		t = append(t, m.To)
	case i < 0:
		return rec, errors.Newf("move %s: target %v does not hold node %d", m, t, m.From)
	case m.To == 0:
		t = slices.Delete(t, i, i+1)
	default:
		if slices.Contains(t, m.To) {
			return rec, errors.Newf("move %s: target %v already holds it", m, t)
		}
		t[i] = m.To // in place: a moved preferred leader's place goes with it
	}
	out.Targets[m.Group-1] = t
	out.Version++
	out.Move = m
	if err := out.Check(); err != nil {
		return rec, errors.Wrapf(err, "move %s", m)
	}
	return out, nil
}

// Settle is rec without its decommissioning members that no target
// lists any more (they have left; the next version), and whether it
// changed.
func Settle(rec MetaRecord) (MetaRecord, bool) {
	var keep []MetaMember
	changed := false
	for _, m := range rec.Members {
		if m.State == MemberDecommissioning && len(rec.Placement().Hosted(m.ID)) == 0 {
			changed = true
			continue
		}
		keep = append(keep, m)
	}
	if !changed || len(keep) == 0 {
		return rec, false
	}
	out := rec.Clone()
	out.Members = keep
	out.Version++
	out.Move = Move{}
	return out, true
}

// Balanced reports whether rec needs no move: NextMove gives none.
func Balanced(rec MetaRecord) bool { return NextMove(rec).None() }

// UnderReplicated counts the groups whose target has fewer active nodes
// than the replication factor.
func UnderReplicated(rec MetaRecord) int {
	n := 0
	for _, t := range rec.Targets {
		active := 0
		for _, id := range t {
			if m, ok := rec.Member(id); ok && m.State == MemberActive {
				active++
			}
		}
		if active < rec.Replicas {
			n++
		}
	}
	return n
}
