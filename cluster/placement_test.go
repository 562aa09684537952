package cluster

import (
	"fmt"
	"testing"
)

// Six nodes, six groups, three replicas: every node holds three groups and
// is the preferred leader of one; each group's nodes are distinct.
func TestPlaceSpreads(t *testing.T) {
	ids := []uint64{6, 2, 4, 1, 3, 5}
	p, err := Place(ids, 6, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(p.Replicas); got != "[[1 2 3] [2 4 5] [3 6 1] [4 5 6] [5 1 2] [6 3 4]]" {
		t.Fatalf("placement %s", got)
	}
	if err := p.Check(ids, 3); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if h := p.Hosted(id); len(h) != 3 {
			t.Errorf("node %d hosts %v, want 3 groups", id, h)
		}
	}
	leads := map[uint64]int{}
	for g := uint64(1); g <= 6; g++ {
		leads[p.Preferred(g)]++
	}
	if len(leads) != 6 {
		t.Errorf("preferred leaders %v, want one group each", leads)
	}
	if !p.Hosts(5, 1) || p.Hosts(5, 3) || fmt.Sprint(p.Of(5)) != "[1 2 5]" {
		t.Errorf("group 5: hosts(1)=%v hosts(2)=%v of=%v", p.Hosts(5, 1), p.Hosts(5, 2), p.Of(5))
	}

	// Uneven: 7 groups on 5 nodes: replica counts differ by at most one.
	p, _ = Place([]uint64{1, 2, 3, 4, 5}, 7, 3)
	lo, hi := 99, 0
	for id := uint64(1); id <= 5; id++ {
		lo, hi = min(lo, len(p.Hosted(id))), max(hi, len(p.Hosted(id)))
	}
	if hi-lo > 1 {
		t.Errorf("7 groups on 5 nodes: %d to %d groups per node", lo, hi)
	}
	// Replicas beyond the nodes, or 0: every group on every node.
	p, _ = Place([]uint64{1, 2, 3}, 2, 0)
	if fmt.Sprint(p.Of(1), p.Of(2), p.Preferred(1), p.Preferred(2)) != "[1 2 3] [1 2 3] 1 2" {
		t.Errorf("full placement %v", p.Replicas)
	}
}

func TestPlaceRefusesAndCheckCatches(t *testing.T) {
	for _, c := range []struct {
		ids              []uint64
		groups, replicas int
	}{{nil, 1, 1}, {[]uint64{1}, 0, 1}, {[]uint64{1, 1}, 1, 1}, {[]uint64{1, 2}, 1, -1}} {
		if _, err := Place(c.ids, c.groups, c.replicas); err == nil {
			t.Errorf("Place(%v, %d, %d) accepted", c.ids, c.groups, c.replicas)
		}
	}
	ids := []uint64{1, 2, 3, 4}
	for _, bad := range []Placement{
		{Replicas: [][]uint64{{1, 2, 2}}}, // a replica counted twice
		{Replicas: [][]uint64{{1, 2}}},    // too few
		{Replicas: [][]uint64{{1, 2, 9}}}, // not a node
	} {
		if err := bad.Check(ids, 3); err == nil {
			t.Errorf("Check passed %v", bad.Replicas)
		}
	}
}
