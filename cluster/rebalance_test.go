package cluster

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// drawRecord is a record of a cluster after some history: founders
// placed by Place, then nodes added, some dead or decommissioning, and a
// few targets scrambled.
func drawRecord(t *rapid.T) MetaRecord {
	n := rapid.IntRange(1, 8).Draw(t, "founders")
	groups := rapid.IntRange(1, 12).Draw(t, "groups")
	reps := rapid.IntRange(1, min(n, 3)).Draw(t, "replicas")
	rec, err := BootstrapMeta(metaPeers(n), groups, reps)
	if err != nil {
		t.Fatal(err)
	}
	added := rapid.IntRange(0, 3).Draw(t, "added")
	for i := 1; i <= added; i++ {
		rec.Members = append(rec.Members, MetaMember{ID: uint64(n + i), Addr: "x"})
	}
	for i := range rec.Members {
		rec.Members[i].State = MemberState(rapid.IntRange(0, 2).Draw(t, "state"))
	}
	if rapid.Bool().Draw(t, "scramble") {
		ids := make([]uint64, len(rec.Members))
		for i, m := range rec.Members {
			ids[i] = m.ID
		}
		g := rapid.IntRange(0, groups-1).Draw(t, "scrambled")
		perm := rapid.Permutation(ids).Draw(t, "perm")
		k := rapid.IntRange(1, min(reps, len(perm))).Draw(t, "k")
		rec.Targets[g] = perm[:k]
	}
	if err := rec.Check(); err != nil {
		t.Fatal(err)
	}
	return rec
}

func activeIDs(rec MetaRecord) []uint64 {
	var out []uint64
	for _, m := range rec.Members {
		if m.State == MemberActive {
			out = append(out, m.ID)
		}
	}
	return out
}

// run applies NextMove until there is none; each move is valid, changes
// one replica or one preference, and the moves stop.
func run(t *rapid.T, rec MetaRecord) (MetaRecord, int) {
	moves := 0
	for {
		m := NextMove(rec)
		if m.None() {
			return rec, moves
		}
		if again := NextMove(rec.Clone()); again != m {
			t.Fatalf("NextMove is not a function of the record: %s then %s", m, again)
		}
		next, err := ApplyMove(rec, m)
		if err != nil {
			t.Fatalf("move %d (%s) of %+v: %v", moves, m, rec, err)
		}
		if next.Version != rec.Version+1 || next.Move != m {
			t.Fatalf("ApplyMove: version %d → %d, move %s", rec.Version, next.Version, next.Move)
		}
		changed := 0
		for g := range rec.Targets {
			if !slices.Equal(rec.Targets[g], next.Targets[g]) {
				changed++
			}
		}
		if changed != 1 {
			t.Fatalf("move %s changed %d groups", m, changed)
		}
		rec = next
		if moves++; moves > 500 {
			t.Fatalf("no end to the moves: at %+v", rec)
		}
	}
}

// Once no move is left: every group has R distinct active nodes (when
// there are R active nodes), replica loads are within one, and no
// preferred leader leads two more than another node of its group.
func TestRebalanceConverges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rec := drawRecord(t)
		end, _ := run(t, rec)
		active := activeIDs(end)
		if len(active) >= end.Replicas {
			for g, tg := range end.Targets {
				if len(tg) != end.Replicas {
					t.Fatalf("group %d ends on %v, want %d nodes", g+1, tg, end.Replicas)
				}
				for _, id := range tg {
					if !slices.Contains(active, id) {
						t.Fatalf("group %d ends on %v, node %d is not active", g+1, tg, id)
					}
				}
			}
			l := loadsOf(end)
			lo, hi := len(end.Targets)*end.Replicas, 0
			for _, id := range active {
				lo, hi = min(lo, l.replicas[id]), max(hi, l.replicas[id])
			}
			if hi-lo > 1 {
				t.Fatalf("replica loads %v over %v: spread %d", l.replicas, active, hi-lo)
			}
			lo, hi = len(end.Targets), 0
			for _, id := range active {
				lo, hi = min(lo, l.leads[id]), max(hi, l.leads[id])
			}
			if hi-lo > 1 {
				t.Fatalf("leaderships %v over %v (targets %v): spread %d", l.leads, active, end.Targets, hi-lo)
			}
		}
		if !Balanced(end) || UnderReplicated(end) != 0 && len(active) >= end.Replicas {
			t.Fatalf("end not balanced: %+v", end)
		}
	})
}

// A new cluster's placement needs no move, and a balanced one gets none:
// a cluster starts (and restarts) without moving anything.
func TestRebalanceBootstrapIsBalanced(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 12).Draw(t, "nodes")
		groups := rapid.IntRange(1, 24).Draw(t, "groups")
		reps := rapid.IntRange(1, min(n, 5)).Draw(t, "replicas")
		rec, err := BootstrapMeta(metaPeers(n), groups, reps)
		if err != nil {
			t.Fatal(err)
		}
		if m := NextMove(rec); !m.None() {
			t.Fatalf("%d nodes, %d groups of %d: move %s of the bootstrap %v", n, groups, reps, m, rec.Targets)
		}
	})
}

// Growing 6 → 7 moves replicas onto the new node until it holds its
// share; decommissioning one moves its replicas away and it leaves; a
// dead node's groups return to 3 replicas.
func TestRebalanceGrowShrinkDead(t *testing.T) {
	rec, _ := BootstrapMeta(metaPeers(6), 6, 3)
	rec.Members = append(rec.Members, MetaMember{ID: 7, Addr: "h7"})
	grown, moves := runPlain(t, rec)
	if got := len(grown.Placement().Hosted(7)); got < 2 || moves < 2 {
		t.Fatalf("node 7 hosts %d groups after %d moves", got, moves)
	}
	for i := range grown.Members {
		if grown.Members[i].ID == 3 {
			grown.Members[i].State = MemberDecommissioning
		}
	}
	shrunk, _ := runPlain(t, grown)
	if len(shrunk.Placement().Hosted(3)) != 0 {
		t.Fatalf("node 3 still hosts %v", shrunk.Placement().Hosted(3))
	}
	settled, ok := Settle(shrunk)
	if _, still := settled.Member(3); !ok || still || settled.Version != shrunk.Version+1 {
		t.Fatalf("Settle: changed %v, node 3 still a member %v", ok, still)
	}
	for i := range settled.Members {
		if settled.Members[i].ID == 5 {
			settled.Members[i].State = MemberDead
		}
	}
	if UnderReplicated(settled) == 0 {
		t.Fatal("a dead node's groups are not under-replicated")
	}
	healed, _ := runPlain(t, settled)
	if UnderReplicated(healed) != 0 || len(healed.Placement().Hosted(5)) != 0 {
		t.Fatalf("after re-replication: %d under-replicated, node 5 hosts %v", UnderReplicated(healed), healed.Placement().Hosted(5))
	}
}

func runPlain(t *testing.T, rec MetaRecord) (MetaRecord, int) {
	t.Helper()
	moves := 0
	for m := NextMove(rec); !m.None(); m = NextMove(rec) {
		next, err := ApplyMove(rec, m)
		if err != nil {
			t.Fatal(err)
		}
		rec = next
		if moves++; moves > 100 {
			t.Fatal("no end to the moves")
		}
	}
	return rec, moves
}
