package cluster

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// AddGroup adds exactly one group on Replicas distinct active nodes, the
// least loaded ones, leaves every other target alone, and is a function
// of the record; it refuses, changing nothing, when it cannot.
func TestAddGroupPicksTheLeastLoaded(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rec := drawRecord(t)
		groupsMax := rapid.IntRange(1, 16).Draw(t, "groupsMax")
		before := rec.Clone()
		next, err := AddGroup(rec, groupsMax)
		active := activeIDs(rec)
		if len(active) < rec.Replicas || len(rec.Targets) >= groupsMax {
			if err == nil {
				t.Fatalf("added a group with %d active nodes of %d needed, %d groups of at most %d", len(active), rec.Replicas, len(rec.Targets), groupsMax)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Version != before.Version || len(rec.Targets) != len(before.Targets) {
			t.Fatal("AddGroup changed its argument")
		}
		again, _ := AddGroup(rec.Clone(), groupsMax)
		if !slices.Equal(again.Encode(), next.Encode()) {
			t.Fatal("AddGroup is not a function of the record")
		}
		g := len(rec.Targets) + 1
		if next.Version != rec.Version+1 || len(next.Targets) != g || next.Move != (Move{Group: uint64(g)}) || !next.Move.AddedGroup() {
			t.Fatalf("version %d → %d, %d groups, move %s", rec.Version, next.Version, len(next.Targets), next.Move)
		}
		if err := next.Check(); err != nil {
			t.Fatal(err)
		}
		for i := range rec.Targets {
			if !slices.Equal(rec.Targets[i], next.Targets[i]) {
				t.Fatalf("group %d's target changed: %v → %v", i+1, rec.Targets[i], next.Targets[i])
			}
		}
		tg := next.Targets[g-1]
		if len(tg) != rec.Replicas {
			t.Fatalf("new target %v, want %d nodes", tg, rec.Replicas)
		}
		l := loadsOf(rec)
		for _, id := range tg {
			if !slices.Contains(active, id) {
				t.Fatalf("new target %v holds node %d, not active", tg, id)
			}
			for _, other := range active {
				if !slices.Contains(tg, other) && l.replicas[other] < l.replicas[id] {
					t.Fatalf("new target %v takes node %d (%d replicas) over node %d (%d)", tg, id, l.replicas[id], other, l.replicas[other])
				}
			}
		}
		for _, id := range tg[1:] {
			if l.leads[id] < l.leads[tg[0]] {
				t.Fatalf("new target %v prefers node %d (leads %d) over node %d (leads %d)", tg, tg[0], l.leads[tg[0]], id, l.leads[id])
			}
		}
		if want := "group " + itoaU(uint64(g)) + " added"; next.Move.String() != want {
			t.Fatalf("move %q, want %q", next.Move, want)
		}
		dec, err := DecodeMeta(next.Encode())
		if err != nil || !dec.Move.AddedGroup() {
			t.Fatalf("round trip: %v %+v", err, dec.Move)
		}
	})
}

func itoaU(x uint64) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + x%10)}, b...)
		if x /= 10; x == 0 {
			return string(b)
		}
	}
}

// On a balanced cluster adding a group keeps replica loads within one of
// each other, and the rebalancer settles the rest: splits never leave a
// placement the moves cannot even out.
func TestAddGroupKeepsBalance(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rec := drawRecord(t)
		rec, _ = run(t, rec)
		active := activeIDs(rec)
		if len(active) < rec.Replicas {
			return
		}
		adds := rapid.IntRange(1, 4).Draw(t, "adds")
		for range adds {
			next, err := AddGroup(rec, metaGroupsMax)
			if err != nil {
				t.Fatal(err)
			}
			l := loadsOf(next)
			lo, hi := len(next.Targets)*next.Replicas, 0
			for _, id := range active {
				lo, hi = min(lo, l.replicas[id]), max(hi, l.replicas[id])
			}
			if hi-lo > 1 {
				t.Fatalf("after adding group %d: replica loads %v, spread %d", len(next.Targets), l.replicas, hi-lo)
			}
			rec, _ = run(t, next)
		}
	})
}

// SplitRanges is the upper half of the owned slots by count.
func TestSplitRanges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var owned []SlotRange
		at := rapid.IntRange(0, 100).Draw(t, "start")
		for range rapid.IntRange(0, 4).Draw(t, "ranges") {
			n := rapid.IntRange(1, 500).Draw(t, "len")
			if at+n > SlotCount {
				break
			}
			owned = append(owned, SlotRange{First: at, Last: at + n - 1})
			at += n + rapid.IntRange(1, 300).Draw(t, "gap")
		}
		var all []int
		for _, r := range owned {
			for s := r.First; s <= r.Last; s++ {
				all = append(all, s)
			}
		}
		perm := rapid.Permutation(owned).Draw(t, "order")
		var got []int
		for _, r := range SplitRanges(perm) {
			if r.Check() != nil {
				t.Fatalf("bad range %v", r)
			}
			for s := r.First; s <= r.Last; s++ {
				got = append(got, s)
			}
		}
		if want := all[len(all)-len(all)/2:]; !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("SplitRanges(%v) = %v, want the slots %v", perm, got, want)
		}
	})
	if got := SplitRanges([]SlotRange{{First: 0, Last: 5460}}); !slices.Equal(got, []SlotRange{{First: 2731, Last: 5460}}) {
		t.Fatalf("SplitRanges(0-5460) = %v", got)
	}
}

// A replicated group applies a METASET adding one group with its move,
// and refuses one adding a group without it or adding two.
func TestMetaSetAddsAGroup(t *testing.T) {
	g := newTestGroup(t, 3, func(o *Options) { o.OnMetaChanged = func([]byte) {} })
	l := g.waitLeader()
	rec, _ := BootstrapMeta(metaPeers(3), 3, 2)
	v1 := rec.Clone()
	v1.Version = 1
	v1.Move = Move{Group: 1, From: 0, To: 0, Lead: true} // no change, just a version
	v1.Targets[0][0], v1.Targets[0][1] = v1.Targets[0][1], v1.Targets[0][0]
	v2, err := AddGroup(v1, 8)
	if err != nil {
		t.Fatal(err)
	}
	noMove := v2.Clone()
	noMove.Move = Move{}
	two, _ := AddGroup(v2, 8)
	two.Version = 2
	got := g.submitArgv(l, MetaSetCommand(v1), MetaSetCommand(noMove), MetaSetCommand(two), MetaSetCommand(v2))
	if got != "+OK -ERR meta record: 4 groups, the cluster has 3 -ERR meta record: 5 groups, the cluster has 3 +OK" {
		t.Fatalf("METASET: %q", got)
	}
	g.tick()
	for _, id := range g.ids {
		rec, err := DecodeMeta(g.reps[id].MetaRecordBytes())
		if err != nil || len(rec.Targets) != 4 || rec.Version != 2 {
			t.Fatalf("n%d: %+v %v", id, rec, err)
		}
	}
}
