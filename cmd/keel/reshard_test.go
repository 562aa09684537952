package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-db/keel/cluster"
)

func TestParseReshardArgs(t *testing.T) {
	o, err := parseReshardArgs([]string{"--node", "127.0.0.1:7001", "--slots", "100-199", "--to", "2", "--batch", "7"})
	if err != nil || o.node != "127.0.0.1:7001" || o.slots != (cluster.SlotRange{First: 100, Last: 199}) || o.to != 2 || o.batch != 7 {
		t.Fatalf("parse = %+v, %v", o, err)
	}
	if o, err := parseReshardArgs([]string{"--node", "h:1", "--slots", "5", "--to", "1"}); err != nil || o.slots.Len() != 1 || o.batch != cluster.ReshardBatchDefault {
		t.Fatalf("one slot, default batch: %+v, %v", o, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--slots", "1-2", "--to", "2"}, "--node"},
		{[]string{"--node", "h:1", "--to", "2"}, "--slots"},
		{[]string{"--node", "h:1", "--slots", "9-3", "--to", "2"}, "--slots"},
		{[]string{"--node", "h:1", "--slots", "0-16384", "--to", "2"}, "--slots"},
		{[]string{"--node", "h:1", "--slots", "1-2"}, "--to"},
		{[]string{"--node", "h:1", "--slots", "1-2", "--to", "2", "--batch", "0"}, "--batch"},
		{[]string{"--node", "h:1", "--slots", "1-2", "--to", "2", "extra"}, "unexpected"},
	} {
		if _, err := parseReshardArgs(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parse %q: %v, want an error about %s", c.args, err, c.want)
		}
	}
}

// groupsReply is CLUSTER GROUPS as go-redis returns it over RESP2.
func groupsReply(groups ...[]any) any {
	out := make([]any, len(groups))
	for i, g := range groups {
		out[i] = g
	}
	return out
}

func group(id, leader int64, owned []any, migrating []any) []any {
	return []any{"group", id, "leader", leader, "members", []any{int64(1), int64(2), int64(3)},
		"owned", owned, "migrating", migrating, "importing", []any{}}
}

func TestMoveSource(t *testing.T) {
	start := groupsReply(group(1, 1, []any{"0-8191"}, []any{}), group(2, 2, []any{"8192-16383"}, []any{}))
	gs, err := parseGroups(start)
	if err != nil || len(gs) != 2 || gs[1].leader != 2 || gs[1].owned[0] != (cluster.SlotRange{First: 8192, Last: 16383}) {
		t.Fatalf("parseGroups = %+v, %v", gs, err)
	}
	r := cluster.SlotRange{First: 100, Last: 199}
	if from, done, err := moveSource(gs, r, 2); from != 1 || done || err != nil {
		t.Fatalf("fresh move: from %d done %v %v", from, done, err)
	}
	// Interrupted after NODE on the target: both own the range; the source
	// (still migrating) is where the move resumes.
	half := groupsReply(group(1, 1, []any{"0-8191"}, []any{"100-199 to 2"}), group(2, 2, []any{"100-199", "8192-16383"}, []any{}))
	gs, _ = parseGroups(half)
	if from, done, err := moveSource(gs, r, 2); from != 1 || done || err != nil || gs[0].migrating[r] != 2 {
		t.Fatalf("half-finished move: from %d done %v %v (%+v)", from, done, err, gs[0])
	}
	// Finished: only the target owns it.
	fin := groupsReply(group(1, 1, []any{"0-99", "200-8191"}, []any{}), group(2, 2, []any{"100-199", "8192-16383"}, []any{}))
	gs, _ = parseGroups(fin)
	if from, done, err := moveSource(gs, r, 2); from != 0 || !done || err != nil {
		t.Fatalf("finished move: from %d done %v %v", from, done, err)
	}
	for _, c := range []struct {
		r    cluster.SlotRange
		to   uint64
		want string
	}{
		{cluster.SlotRange{First: 8000, Last: 9000}, 2, "split between groups"},
		{r, 3, "no group 3"},
	} {
		gs, _ = parseGroups(start)
		if _, _, err := moveSource(gs, c.r, c.to); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("moveSource(%s to %d) = %v, want %q", c.r, c.to, err, c.want)
		}
	}
	if _, err := parseGroups("OK"); err == nil {
		t.Error("parseGroups accepted a status reply")
	}
	if _, err := parseGroups(groupsReply(group(1, 1, []any{"x-y"}, []any{}))); err == nil {
		t.Error("parseGroups accepted a bad range")
	}
}

// A node refuses data written with another --groups.
func TestCheckGroupsLayout(t *testing.T) {
	dir := t.TempDir()
	mk := func(sub string) {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []int{1, 2, 3} {
		if err := checkGroupsLayout(dir, g, allGroups(g)); err != nil {
			t.Fatalf("empty dir, --groups %d: %v", g, err)
		}
	}
	if err := checkGroupsLayout(filepath.Join(dir, "absent"), 2, allGroups(2)); err != nil {
		t.Fatalf("absent dir: %v", err)
	}
	mk("group-1/wal")
	mk("group-2/wal")
	if err := checkGroupsLayout(dir, 2, allGroups(2)); err != nil {
		t.Fatalf("same --groups: %v", err)
	}
	for _, g := range []int{1, 3} {
		if err := checkGroupsLayout(dir, g, allGroups(g)); err == nil || !strings.Contains(err.Error(), "--groups") {
			t.Fatalf("two groups on disk, --groups %d: %v", g, err)
		}
	}
	// Placement: the directory holds the hosted groups only.
	if err := checkGroupsLayout(dir, 4, []uint64{1, 2}); err != nil {
		t.Fatalf("groups 1 and 2 of 4 on disk, hosting 1 and 2: %v", err)
	}
	if err := checkGroupsLayout(dir, 4, []uint64{2, 3}); err == nil || !strings.Contains(err.Error(), "--replicas") {
		t.Fatalf("groups 1 and 2 on disk, hosting 2 and 3: %v", err)
	}
	one := t.TempDir()
	if err := os.MkdirAll(filepath.Join(one, "wal"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkGroupsLayout(one, 1, allGroups(1)); err != nil {
		t.Fatalf("one group: %v", err)
	}
	if err := checkGroupsLayout(one, 2, allGroups(2)); err == nil || !strings.Contains(err.Error(), "without --groups") {
		t.Fatalf("one group on disk, --groups 2: %v", err)
	}
}

func allGroups(n int) []uint64 {
	var out []uint64
	for g := 1; g <= n; g++ {
		out = append(out, uint64(g))
	}
	return out
}

// keel cluster local places groups on --replicas nodes (3 by default)
// when it starts more nodes than that, and refuses a layout where a node
// would host nothing.
func TestClusterLocalReplicas(t *testing.T) {
	o, err := parseClusterLocalArgs([]string{"--nodes", "6", "--groups", "6", "--dir", "d"})
	if err != nil {
		t.Fatal(err)
	}
	n := &localNode{id: 1, port: 7001, dir: "d/node-1"}
	if args := strings.Join(n.serverArgs(o, "P"), " "); !strings.Contains(args, "--groups 6 --replicas 3") {
		t.Fatalf("six nodes: %s", args)
	}
	o, _ = parseClusterLocalArgs([]string{"--nodes", "3", "--groups", "3", "--dir", "d"})
	if args := strings.Join(n.serverArgs(o, "P"), " "); strings.Contains(args, "--replicas") {
		t.Fatalf("three nodes need no placement: %s", args)
	}
	if _, err := parseClusterLocalArgs([]string{"--nodes", "6", "--dir", "d"}); err == nil || !strings.Contains(err.Error(), "host no group") {
		t.Fatalf("six nodes, one group of three: %v", err)
	}
}
