package cluster

import (
	"slices"

	"github.com/cockroachdb/errors"
)

// Placement is where each replica group lives: Replicas[g-1] are the
// nodes holding a replica of group g, its preferred leader first. It is
// a pure function of the founding nodes, the number of groups and the
// replication factor (Place), so every node computes the same one from
// its start flags, as every node computes the same starting slots
// (SplitSlots).
type Placement struct {
	Replicas [][]uint64
}

// Place puts groups groups of replicas replicas each on the nodes ids
// (any order; distinct). Group g's first node, its preferred leader, is
// the sorted ids[(g-1) mod n], so leaderships go round robin; each
// further replica goes to the node holding the fewest replicas so far,
// ties broken by the cyclic distance after the first node, so every node
// ends up with the same number of replicas give or take one. replicas 0,
// or at least len(ids), puts every group on every node.
func Place(ids []uint64, groups, replicas int) (Placement, error) {
	if len(ids) == 0 || groups < 1 {
		return Placement{}, errors.Newf("cluster: placement of %d groups on %d nodes", groups, len(ids))
	}
	if replicas < 0 {
		return Placement{}, errors.Newf("cluster: replication factor %d", replicas)
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if len(slices.Compact(slices.Clone(sorted))) != len(sorted) {
		return Placement{}, errors.Newf("cluster: node ids %v repeat", ids)
	}
	n := len(sorted)
	if replicas == 0 || replicas > n {
		replicas = n
	}
	// load is each node's replicas (by index in sorted), counting from the
	// start the groups it will be first of: a greedy choice blind to
	// them would leave the last firsts overloaded.
	load := make([]int, n)
	for g := range groups {
		load[g%n]++
	}
	p := Placement{Replicas: make([][]uint64, groups)}
	for g := range groups {
		first := g % n
		chosen := []int{first}
		for len(chosen) < replicas {
			best := -1
			for d := 1; d < n; d++ {
				i := (first + d) % n
				if slices.Contains(chosen, i) {
					continue
				}
				if best < 0 || load[i] < load[best] {
					best = i
				}
			}
			chosen = append(chosen, best)
		}
		for k, i := range chosen {
			if k > 0 {
				load[i]++
			}
			p.Replicas[g] = append(p.Replicas[g], sorted[i])
		}
	}
	return p, nil
}

// Hosts reports whether node id holds a replica of group g.
func (p Placement) Hosts(g, id uint64) bool {
	return g >= 1 && g <= uint64(len(p.Replicas)) && slices.Contains(p.Replicas[g-1], id)
}

// Of is group g's nodes, sorted by id.
func (p Placement) Of(g uint64) []uint64 {
	if g < 1 || g > uint64(len(p.Replicas)) {
		return nil
	}
	out := slices.Clone(p.Replicas[g-1])
	slices.Sort(out)
	return out
}

// Preferred is the node group g's leadership is spread to: its first.
func (p Placement) Preferred(g uint64) uint64 {
	if g < 1 || g > uint64(len(p.Replicas)) || len(p.Replicas[g-1]) == 0 {
		return 0
	}
	return p.Replicas[g-1][0]
}

// Hosted are the groups node id holds a replica of, ascending.
func (p Placement) Hosted(id uint64) []uint64 {
	var out []uint64
	for g := range p.Replicas {
		if slices.Contains(p.Replicas[g], id) {
			out = append(out, uint64(g+1))
		}
	}
	return out
}

// Check verifies what must hold of any placement: every group has
// replicas distinct nodes of ids. A placement that breaks it would
// store a group's keys on fewer nodes than promised.
func (p Placement) Check(ids []uint64, replicas int) error {
	for g, reps := range p.Replicas {
		if len(reps) != replicas {
			return errors.AssertionFailedf("placement: group %d has %d replicas, want %d", g+1, len(reps), replicas)
		}
		seen := map[uint64]bool{}
		for _, id := range reps {
			if seen[id] {
				return errors.AssertionFailedf("placement: group %d holds node %d twice", g+1, id)
			}
			if !slices.Contains(ids, id) {
				return errors.AssertionFailedf("placement: group %d on node %d, not a node of the cluster", g+1, id)
			}
			seen[id] = true
		}
	}
	return nil
}
