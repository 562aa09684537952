package cluster

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// TestGroupReplicasAgreeOnRelativeTTLs: a follower whose engine clock ran
// ahead of the leader's (its own ticks, here 5 s ahead) stores the same
// deadline for a relative TTL as the leader does: the leader logs the
// deadline, not the duration. Before, the follower computed it from its
// own clock (cluster-reshard-ttl, seed 89: a TTL 0.7 s later than any
// write set, served after a failover).
func TestGroupReplicasAgreeOnRelativeTTLs(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	f := g.follower(l)
	g.reps[f].Tick(g.now + 5*sec) // the follower's clock (and engine) runs ahead
	at := g.now / 1e6
	got := g.submit(l, false,
		"SET a 1 PX 100000", "SET b 1 EX 100 NX", "SETEX c 100 1", "PSETEX d 100000 1",
		"SET e 1", "EXPIRE e 100", "SET f 1", "PEXPIRE f 100000 NX", "GETEX e PX 200000",
		"SET g 1 PX 0", "EXPIRE nosuch 10", "SET h 1 KEEPTTL")
	want := "+OK +OK +OK +OK +OK :1 +OK :1 $1 -ERR invalid expire time in 'set' command :0 +OK"
	if got != want {
		t.Fatalf("replies %q, want %q", got, want)
	}
	for i := 0; i < 3; i++ {
		g.tick()
	}
	d := func(ms int64) string { return strconv.FormatInt(at+ms, 10) }
	wantKeys := "1 a=1 @" + d(100000) + "\n1 b=1 @" + d(100000) + "\n1 c=1 @" + d(100000) + "\n1 d=1 @" + d(100000) +
		"\n1 e=1 @" + d(200000) + "\n1 f=1 @" + d(100000) + "\n1 h=1 @0\n"
	for _, id := range g.ids {
		if got := dump(g.reps[id], g.now); got != wantKeys {
			t.Errorf("n%d (leader n%d, n%d ahead) holds\n%swant\n%s", id, l, f, got, wantKeys)
		}
	}
}

// TestFollowerAheadExpiresNothingTheLogHolds: a follower whose clock runs
// ahead of the leader's does not collect a key the log's time has not
// expired, so the next logged write of it does what it did on the leader.
// Before, the follower's tick expired the key by its own clock and the
// engine applied the next entry at that clock: an HSET the leader
// answered WRONGTYPE created a hash on the follower (cluster-grammar,
// seed 6: the hash outlived the string's TTL in a follower's snapshot).
func TestFollowerAheadExpiresNothingTheLogHolds(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	f := g.follower(l)
	at := g.now / 1e6
	if got := g.submit(l, false, "SET k v PX 2000"); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	g.tick()
	g.reps[f].Tick(g.now + 5*sec) // the follower's clock runs 5 s ahead
	if got := g.submit(l, false, "HSET k f v"); got != "-WRONGTYPE Operation against a key holding the wrong kind of value" {
		t.Fatalf("HSET on the leader: %q", got)
	}
	for i := 0; i < 3; i++ {
		g.tick()
	}
	want := "1 k=v @" + strconv.FormatInt(at+2000, 10) + "\n"
	for _, id := range g.ids {
		if got := dump(g.reps[id], at*1e6); got != want {
			t.Errorf("n%d (leader n%d, n%d ahead) holds\n%swant\n%s", id, l, f, got, want)
		}
	}
}

// TestSnapshotOfAFollowerAheadKeepsWhatTheLogHolds: a follower whose clock
// runs ahead of the leader's takes a snapshot and restarts from it; the
// snapshot's time, below which loading drops keys as expired, is the
// log's, so a key the leader still holds is still there, and the next
// logged write of it does what it did on the leader. Before, the time was
// the follower's clock: the key was dropped, and a ZINCRBY the leader
// refused with WRONGTYPE created a sorted set there (cluster-grammar,
// seed 44).
func TestSnapshotOfAFollowerAheadKeepsWhatTheLogHolds(t *testing.T) {
	g := newTestGroup(t, 3, func(o *Options) { o.SnapshotLogBytes = 4 << 10 })
	l := g.waitLeader()
	f := g.follower(l)
	at := g.now / 1e6
	if got := g.submit(l, false, "RPUSH k a", "PEXPIRE k 60000"); got != ":1 :1" {
		t.Fatalf("RPUSH, PEXPIRE: %q", got)
	}
	g.tick()
	g.reps[f].Tick(g.now + 120*sec) // the follower's clock runs 2 minutes ahead
	snaps := g.reps[f].store.snapIndex
	val := strings.Repeat("v", 200)
	for i := 0; i < 60 && g.reps[f].store.snapIndex == snaps; i++ {
		g.submit(l, false, fmt.Sprintf("SET filler%d %s", i, val))
		g.runJobs()
	}
	if g.reps[f].store.snapIndex == snaps {
		t.Fatal("the follower took no snapshot")
	}
	g.stop(f)
	g.start(f)
	g.waitLeader()
	l = g.leader()
	if got := g.submit(l, false, "ZINCRBY k 1 m"); got != "-WRONGTYPE Operation against a key holding the wrong kind of value" {
		t.Fatalf("ZINCRBY on the leader: %q", got)
	}
	for i := 0; i < 5; i++ {
		g.tick()
	}
	want := dump(g.reps[l], at*1e6)
	if !strings.Contains(want, "k=") {
		t.Fatalf("the leader lost k:\n%s", want)
	}
	for _, id := range g.ids {
		if got := dump(g.reps[id], at*1e6); got != want {
			t.Errorf("n%d (leader n%d, n%d ahead) holds\n%swant\n%s", id, l, f, got, want)
		}
	}
}

// TestFollowerReadAheadChangesNothing: a READONLY read on a follower whose
// clock runs ahead of the leader's hides a key its clock has expired, but
// neither collects it nor moves the engine's clock, so the next logged
// write of the key does on the follower what it did on the leader. Before,
// the read deleted the key and the follower applied the leader's HSET,
// refused there with WRONGTYPE, as the creation of a hash.
func TestFollowerReadAheadChangesNothing(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	f := g.follower(l)
	if got := g.submit(l, false, "SET k v PX 150"); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	g.tick()
	w := &rec{}
	done := false
	g.reps[f].SubmitAsync(g.now+250e6, []Request{{Argv: argv("GET k"), ReadOnly: true, W: w}}, func() { done = true })
	g.deliver()
	if !done || w.String() != "$nil" {
		t.Fatalf("the follower 250 ms ahead read %q (done %v), want the key gone", w.String(), done)
	}
	if got := g.submit(l, false, "HSET k f v"); got != "-WRONGTYPE Operation against a key holding the wrong kind of value" {
		t.Fatalf("HSET on the leader: %q", got)
	}
	for i := 0; i < 3; i++ {
		g.tick()
	}
	want := dump(g.reps[l], g.now)
	for _, id := range g.ids {
		if got := dump(g.reps[id], g.now); got != want {
			t.Errorf("n%d (leader n%d, n%d read ahead) holds\n%swant\n%s", id, l, f, got, want)
		}
	}
}

func TestAbsoluteExpiryLeavesTheRestAlone(t *testing.T) {
	const ms = 1000
	for _, c := range []struct{ in, want string }{
		{"SET k v", "SET k v"},
		{"SET k v PX 5", "SET k v PXAT 1005"},
		{"set k v nx ex 2 get", "set k v nx PXAT 3000 get"},
		{"SET k v PXAT 5", "SET k v PXAT 5"},
		{"SET k v EX 1 PX 2", "SET k v EX 1 PX 2"},       // a syntax error: logged as sent
		{"SET k v KEEPTTL PX 2", "SET k v KEEPTTL PX 2"}, // ditto
		{"SET k v PX -1", "SET k v PX -1"},
		{"SET k v PX +1", "SET k v PX +1"},
		{"SET k v PX", "SET k v PX"},
		{"SETEX k 2 v", "SET k v PXAT 3000"},
		{"PSETEX k 0 v", "PSETEX k 0 v"},
		{"EXPIRE k 2 GT", "PEXPIREAT k 3000 GT"},
		{"EXPIRE k -2", "PEXPIREAT k -1000"},
		{"PEXPIRE k x", "PEXPIRE k x"},
		{"EXPIRE k 9223372036854775807", "EXPIRE k 9223372036854775807"},
		{"GETEX k EX 1", "GETEX k PXAT 2000"},
		{"GETEX k PERSIST", "GETEX k PERSIST"},
		{"INCRBY k 1", "INCRBY k 1"},
	} {
		var parts []string
		for _, a := range absoluteExpiry(ms, argv(c.in)) {
			parts = append(parts, string(a))
		}
		if got := joinWords(parts); got != c.want {
			t.Errorf("%s: got %q, want %q", c.in, got, c.want)
		}
	}
}

func joinWords(ws []string) string {
	s := ""
	for i, w := range ws {
		if i > 0 {
			s += " "
		}
		s += w
	}
	return s
}
