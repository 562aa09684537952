package cluster

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/keel-db/keel/engine"
)

// fakeACL is an Options.ACL with the shape of the node's: the table is
// sorted "user rules" lines; SETUSER sets a user's line, DELUSER drops
// users (the default user cannot go), LOAD replaces the table. The
// replica keeps whatever bytes it returns.
func fakeACL(table []byte, argv [][]byte, w engine.Writer) []byte {
	lines := map[string]string{}
	for _, l := range strings.Split(string(table), "\n") {
		if name, rules, ok := strings.Cut(l, " "); ok {
			lines[name] = rules
		}
	}
	switch strings.ToLower(string(argv[1])) {
	case "setuser":
		var rules []string
		for _, a := range argv[3:] {
			rules = append(rules, string(a))
		}
		lines[string(argv[2])] = strings.Join(rules, " ")
		w.WriteSimple("OK")
	case "deluser":
		n := 0
		for _, a := range argv[2:] {
			if string(a) == "default" {
				w.WriteError("ERR The 'default' user cannot be removed")
				return nil
			}
			if _, ok := lines[string(a)]; ok {
				delete(lines, string(a))
				n++
			}
		}
		w.WriteInt(int64(n))
		if n == 0 {
			return nil
		}
	case "load":
		w.WriteSimple("OK")
		return bytes.Clone(argv[3])
	}
	var out []string
	for name, rules := range lines {
		out = append(out, name+" "+rules)
	}
	slices.Sort(out)
	return []byte(strings.Join(out, "\n") + "\n")
}

// An ACL change is applied on every replica of the group; the table is
// carried by snapshots, so a replica restarted after its log was
// compacted, and a member added later, hold the same table, and each
// tells its node (OnACLChanged) before serving.
func TestACLTableReplicatedAndInSnapshots(t *testing.T) {
	seen := map[uint64]string{}
	var g *testGroup
	g = newTestGroup(t, 3, func(o *Options) {
		id := o.ID
		o.SnapshotLogBytes = 4 << 10
		o.ACL = fakeACL
		o.OnACLChanged = func(table []byte) { seen[id] = string(table) }
	})
	l := g.waitLeader()
	follower := uint64(1)
	if follower == l {
		follower = 2
	}
	if got := g.submit(follower, false, "ACL SETUSER alice on ~app:*"); !strings.HasPrefix(got, "-MOVED 0 n") {
		t.Fatalf("ACL SETUSER on a follower: %q, want a redirect to the leader", got)
	}
	if got := g.submit(l, false, "ACL SETUSER alice on ~app:*", "ACL SETUSER bob on", "ACL DELUSER bob nobody", "ACL DELUSER default"); got != "+OK +OK :1 -ERR The 'default' user cannot be removed" {
		t.Fatalf("ACL changes: %q", got)
	}
	g.tick()
	const want = "alice on ~app:*\n"
	for _, id := range g.ids {
		if got := string(g.reps[id].ACLTable()); got != want {
			t.Fatalf("n%d table %q, want %q", id, got, want)
		}
		if seen[id] != want {
			t.Fatalf("n%d told its node %q, want %q", id, seen[id], want)
		}
	}
	// Compact every log past the change, then restart a follower: its
	// table comes from its snapshot.
	val := strings.Repeat("v", 200)
	for i := 0; i < 100; i++ {
		g.submit(l, false, fmt.Sprintf("SET k%d %s", i, val))
		g.runJobs()
	}
	if g.reps[follower].store.snapIndex == 0 {
		t.Fatal("the follower never compacted its log")
	}
	g.stop(follower)
	delete(seen, follower)
	g.start(follower)
	if rec := g.reps[follower].Recovery(); rec.Snapshot == "" || rec.EntriesReplayed > 10 {
		t.Fatalf("restart did not start from a snapshot taken after the change: %+v", rec)
	}
	if got := string(g.reps[follower].ACLTable()); got != want || seen[follower] != want {
		t.Fatalf("after a restart from a snapshot: table %q, node told %q; want %q", got, seen[follower], want)
	}
	// A member added now catches up from a snapshot streamed to it.
	g.ids = append(g.ids, 4)
	g.startWith(4, true)
	if got := g.submit(l, false, "CLUSTER ADDNODE 4 n4"); got != "+OK" {
		t.Fatalf("ADDNODE: %q", got)
	}
	for i := 0; i < 30; i++ {
		g.tick()
		g.runJobs()
	}
	if got := string(g.reps[4].ACLTable()); got != want || seen[4] != want {
		t.Fatalf("new member: table %q, node told %q; want %q", got, seen[4], want)
	}
	// A later change reaches everyone, the restarted follower included.
	load := [][]byte{[]byte("ACL"), []byte("LOAD"), []byte("file"), []byte("user-x\n")}
	if got := g.submitArgv(l, load); got != "+OK" {
		t.Fatalf("ACL LOAD: %q", got)
	}
	g.tick()
	for _, id := range g.ids {
		if got := string(g.reps[id].ACLTable()); got != "user-x\n" {
			t.Fatalf("n%d after LOAD: %q", id, got)
		}
	}
}

// A group opened without the hook keeps no table and says so, alike on
// every replica; a replica without persistence applies ACL changes at
// once; SetACL installs the hook on a replica opened without it.
func TestACLWithoutHookAndWithoutLog(t *testing.T) {
	r, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := do(r, t0, "ACL SETUSER alice on"); got != "-ERR this replica group does not keep the ACL table" {
		t.Fatalf("no hook: %q", got)
	}
	var told []string
	r.SetACL(fakeACL, func(table []byte) { told = append(told, string(table)) })
	if got := do(r, t0, "ACL SETUSER alice on", "ACL GETUSER alice"); !strings.HasPrefix(got, "+OK ") {
		t.Fatalf("appendonly off: %q", got)
	}
	if want := []string{"", "alice on\n"}; !slices.Equal(told, want) {
		t.Fatalf("node told %q, want %q", told, want)
	}
	if err := r.restoreACL(nil); err == nil {
		t.Fatal("an empty snapshot ACL entry was accepted")
	}
}

// A command the node refused at EXEC (its user lost the permission) is
// answered with the node's error in its place, and nothing runs for it
// on any replica, replay included; the rest of the block runs.
func TestTxnDeniedCommand(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	txn := &Txn{Cmds: [][][]byte{argv("SET a 1"), DeniedCommand("NOPERM no"), argv("GET a")}}
	if got := g.run(l, []Request{{Argv: argv("EXEC"), Txn: txn}}); got != "*3 +OK -NOPERM no $1" {
		t.Fatalf("EXEC: %q", got)
	}
	g.tick()
	for _, id := range g.ids {
		if got := dump(g.reps[id], g.now); got != "1 a=1 @0\n" {
			t.Fatalf("n%d: %q", id, got)
		}
	}
	ro := &Txn{Cmds: [][][]byte{DeniedCommand("NOPERM ro"), argv("GET a")}}
	if got := g.run(l, []Request{{Argv: argv("EXEC"), Txn: ro}}); got != "*2 -NOPERM ro $1" {
		t.Fatalf("read-only EXEC: %q", got)
	}
}
