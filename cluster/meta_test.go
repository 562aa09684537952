package cluster

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func metaPeers(n int) []TopoNode {
	var ps []TopoNode
	for i := 1; i <= n; i++ {
		ps = append(ps, TopoNode{ID: uint64(i), Host: "127.0.0.1", Port: 7000 + i})
	}
	return ps
}

// The bootstrap is Place's placement, every founder active.
func TestBootstrapMetaIsPlace(t *testing.T) {
	rec, err := BootstrapMeta(metaPeers(6), 6, 3)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := Place([]uint64{1, 2, 3, 4, 5, 6}, 6, 3)
	if rec.Version != 0 || rec.Replicas != 3 || len(rec.Members) != 6 {
		t.Fatalf("bootstrap: %+v", rec)
	}
	for g := range p.Replicas {
		if !slices.Equal(rec.Targets[g], p.Replicas[g]) {
			t.Fatalf("group %d: target %v, Place %v", g+1, rec.Targets[g], p.Replicas[g])
		}
	}
	if m, _ := rec.Member(4); m.Addr != "127.0.0.1:7004" || m.State != MemberActive {
		t.Fatalf("member 4: %+v", m)
	}
}

// Any valid record survives Encode/DecodeMeta; any truncation or bad
// byte is refused whole, never half read.
func TestMetaRecordRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 12).Draw(t, "nodes")
		groups := rapid.IntRange(1, 20).Draw(t, "groups")
		reps := rapid.IntRange(1, n).Draw(t, "replicas")
		rec, err := BootstrapMeta(metaPeers(n), groups, reps)
		if err != nil {
			t.Fatal(err)
		}
		rec.Version = rapid.Uint64().Draw(t, "version")
		for i := range rec.Members {
			rec.Members[i].State = MemberState(rapid.IntRange(0, 2).Draw(t, "state"))
		}
		if rapid.Bool().Draw(t, "move") {
			rec.Move = Move{Group: uint64(rapid.IntRange(1, groups).Draw(t, "mg")), From: 1, To: uint64(n)}
		}
		b := rec.Encode()
		got, err := DecodeMeta(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !slices.Equal(got.Encode(), b) {
			t.Fatalf("round trip changed the record: %+v vs %+v", got, rec)
		}
		cut := rapid.IntRange(0, len(b)-1).Draw(t, "cut")
		if _, err := DecodeMeta(b[:cut]); err == nil {
			t.Fatalf("a record cut at %d of %d bytes was accepted", cut, len(b))
		}
	})
	bad := func(m func(*MetaRecord)) error {
		rec, _ := BootstrapMeta(metaPeers(4), 4, 3)
		m(&rec)
		_, err := DecodeMeta(rec.Encode())
		return err
	}
	for name, m := range map[string]func(*MetaRecord){
		"twice":      func(r *MetaRecord) { r.Targets[0][1] = r.Targets[0][0] },
		"stranger":   func(r *MetaRecord) { r.Targets[1][0] = 9 },
		"too many":   func(r *MetaRecord) { r.Targets[2] = []uint64{1, 2, 3, 4} },
		"empty":      func(r *MetaRecord) { r.Targets[2] = nil },
		"unsorted":   func(r *MetaRecord) { r.Members[0], r.Members[1] = r.Members[1], r.Members[0] },
		"state":      func(r *MetaRecord) { r.Members[0].State = 7 },
		"move group": func(r *MetaRecord) { r.Move = Move{Group: 5, From: 1, To: 2} },
	} {
		if err := bad(m); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A change is applied on every replica of the group only when its
// version follows the applied one (compare-and-set, decided in the log);
// the record is carried by snapshots, so a restarted follower and a
// member added later hold it and tell their node.
func TestMetaRecordReplicatedCASAndInSnapshots(t *testing.T) {
	seen := map[uint64]string{}
	g := newTestGroup(t, 3, func(o *Options) {
		id := o.ID
		o.SnapshotLogBytes = 4 << 10
		o.OnMetaChanged = func(b []byte) { seen[id] = string(b) }
	})
	l := g.waitLeader()
	follower := uint64(1)
	if follower == l {
		follower = 2
	}
	rec, _ := BootstrapMeta(metaPeers(3), 3, 2)
	v1 := rec.Clone()
	v1.Version = 1
	v1.Targets[0] = []uint64{3, 1}
	v1.Move = Move{Group: 1, From: 2, To: 3}
	stale := rec.Clone()
	stale.Version = 1
	v3 := v1.Clone()
	v3.Version = 3
	got := g.submitArgv(l, MetaSetCommand(v1), MetaSetCommand(stale), MetaSetCommand(v3))
	if got != "+OK -ERR meta record: version 1 does not follow the applied 1 -ERR meta record: version 3 does not follow the applied 1" {
		t.Fatalf("METASET: %q", got)
	}
	g.tick()
	want := string(v1.Encode())
	for _, id := range g.ids {
		if string(g.reps[id].MetaRecordBytes()) != want || seen[id] != want {
			t.Fatalf("n%d: record %x, told %x", id, g.reps[id].MetaRecordBytes(), seen[id])
		}
	}
	val := strings.Repeat("v", 200)
	for i := 0; i < 100; i++ {
		g.submit(l, false, fmt.Sprintf("SET k%d %s", i, val))
		g.runJobs()
	}
	g.stop(follower)
	delete(seen, follower)
	g.start(follower)
	if rec := g.reps[follower].Recovery(); rec.Snapshot == "" || rec.EntriesReplayed > 10 {
		t.Fatalf("restart did not start from a snapshot taken after the change: %+v", rec)
	}
	if string(g.reps[follower].MetaRecordBytes()) != want || seen[follower] != want {
		t.Fatal("after a restart from a snapshot the record is lost")
	}
	g.ids = append(g.ids, 4)
	g.startWith(4, true)
	if got := g.submit(l, false, "CLUSTER ADDNODE 4 n4"); got != "+OK" {
		t.Fatalf("ADDNODE: %q", got)
	}
	for i := 0; i < 30; i++ {
		g.tick()
		g.runJobs()
	}
	if string(g.reps[4].MetaRecordBytes()) != want || seen[4] != want {
		t.Fatal("a new member did not get the record from the snapshot")
	}
}

// A group without the hook keeps no record, alike on every replica.
func TestMetaWithoutHook(t *testing.T) {
	r, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	mr, _ := BootstrapMeta(metaPeers(3), 3, 2)
	mr.Version = 1
	w := &rec{}
	r.Submit(t0, []Request{{Argv: MetaSetCommand(mr), W: w}})
	if w.String() != "-ERR this replica group does not keep the meta record" {
		t.Fatalf("no hook: %q", w.String())
	}
}

// A replica abandoned before it is closed answers what it still held: a
// leader's write that cannot commit (its followers are gone) gets the
// leader-lost answer (others may still commit it), and done runs.
func TestAbandonAnswersWaitingBatches(t *testing.T) {
	g := newTestGroup(t, 3, nil)
	l := g.waitLeader()
	for _, id := range g.ids {
		if id != l {
			g.stop(id)
		}
	}
	w := &rec{}
	done := false
	g.reps[l].SubmitAsync(g.now, []Request{{Argv: argv("SET k v"), W: w}}, func() { done = true })
	if done {
		t.Fatalf("a write without a quorum was answered: %q", w.String())
	}
	g.reps[l].Abandon()
	if !done || w.String() != "-"+ErrMsgLeaderLost {
		t.Fatalf("abandoned: done %v, reply %q", done, w.String())
	}
}
