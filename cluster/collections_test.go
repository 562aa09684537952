package cluster

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keel-db/keel/disk"
)

// collectionWorkload writes every collection type, small and large, and
// pops at random: SPOP draws from the seed of its log entry.
func collectionWorkload(round int) []string {
	var cmds []string
	for i := 0; i < 300; i++ {
		e := fmt.Sprintf("r%d-e%d", round, i)
		cmds = append(cmds,
			"RPUSH list "+e, "SADD set "+e, "HSET hash "+e+" "+fmt.Sprint(i), fmt.Sprintf("ZADD zset %d %s", i%17, e),
			"SADD ints "+fmt.Sprint(i+round*1000))
	}
	cmds = append(cmds, "SPOP set 25", "SPOP set", "SPOP ints 3", "LPOP list 10", "ZPOPMIN zset 5",
		"SADD small a b c d", "SPOP small", "HSET h2 f v", "LPUSH l2 x y", "ZADD z2 1 m")
	return cmds
}

// TestCollectionsSurviveSnapshotAndReplay: collections (trees and packs)
// come back from a snapshot plus the log after it, SPOPs included, the
// same as they were.
func TestCollectionsSurviveSnapshotAndReplay(t *testing.T) {
	fs := disk.OS()
	dir := t.TempDir()
	r := openT(t, fs, dir)
	now := t0
	do(r, now, collectionWorkload(1)...)
	if got := do(r, now, "SAVE"); got != "+OK" {
		t.Fatalf("SAVE: %q", got)
	}
	now += sec
	do(r, now, collectionWorkload(2)...)
	want := dump(r, now)
	if !strings.Contains(want, "set=") || !strings.Contains(want, "zset=") {
		t.Fatalf("workload made no collections:\n%.500s", want)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openT(t, fs, dir)
	defer r.Close()
	if got := dump(r, now); got != want {
		t.Fatalf("recovered collections differ: %s", diffLines(want, got))
	}
	if rs := r.Recovery(); rs.Snapshot == "" || rs.EntriesReplayed == 0 {
		t.Fatalf("expected snapshot + replay, got %+v", rs)
	}
}

// TestGroupSPopIsTheSameOnEveryReplica: SPOP, alone and in a transaction,
// removes the same members on every replica, and a follower that catches
// up from a snapshot holding large collections ends up equal too.
func TestGroupSPopIsTheSameOnEveryReplica(t *testing.T) {
	g := newTestGroup(t, 3, func(o *Options) { o.SnapshotLogBytes = 64 << 10 })
	l := g.waitLeader()
	var f uint64
	for _, id := range g.ids {
		if id != l {
			f = id
		}
	}
	g.stop(f)
	for round := 0; round < 4; round++ {
		for _, c := range collectionWorkload(round) {
			g.submit(l, false, c)
		}
		for _, id := range g.ids {
			if r := g.reps[id]; r != nil {
				if j := r.PendingJob(); j != nil {
					r.JobDone(j, j.Run())
				}
			}
		}
	}
	got := g.run(l, []Request{{Argv: argv("SPOP set 3")}, txnReq(g.reps[l], nil, nil, "SPOP set 2", "SPOP ints", "SCARD set")})
	if !strings.HasSuffix(got, ":1091") { // 4×300 members, 4×26 popped by the workload, 5 here
		t.Fatalf("SPOPs: %q", got)
	}
	g.start(f)
	for i := 0; i < 30; i++ {
		g.tick()
	}
	if g.reps[f].GroupStats().SnapshotsReceived == 0 {
		t.Fatal("the lagging follower got no snapshot")
	}
	want := dump(g.reps[l], g.now)
	for _, id := range g.ids {
		if got := dump(g.reps[id], g.now); got != want {
			t.Fatalf("n%d differs from the leader: %s", id, diffLines(want, got))
		}
	}
}
