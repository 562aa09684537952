package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/keel-db/keel/cluster"
)

func TestParseSplitArgs(t *testing.T) {
	o, err := parseSplitArgs([]string{"--node", "127.0.0.1:7001", "--group", "2", "--slots", "100-199", "--batch", "7"})
	if err != nil || o.node != "127.0.0.1:7001" || o.group != 2 || !o.hasSlots || o.slots != (cluster.SlotRange{First: 100, Last: 199}) || o.batch != 7 {
		t.Fatalf("parse: %+v %v", o, err)
	}
	o, err = parseSplitArgs([]string{"--node", "h:1", "--group", "1"})
	if err != nil || o.hasSlots || o.batch != cluster.ReshardBatchDefault {
		t.Fatalf("defaults: %+v %v", o, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--group", "1"}, "--node"},
		{[]string{"--node", "h:1"}, "--group"},
		{[]string{"--node", "h:1", "--group", "1", "--slots", "9-2"}, "--slots"},
		{[]string{"--node", "h:1", "--group", "1", "--batch", "0"}, "--batch"},
		{[]string{"--node", "h:1", "--group", "1", "extra"}, "unexpected"},
	} {
		if _, err := parseSplitArgs(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseSplitArgs(%q) = %v, want an error naming %q", c.args, err, c.want)
		}
	}
}

// planSplit finds what is left of a split in every state a crash can
// leave it: nothing done, the group added, the move half done, done.
func TestPlanSplit(t *testing.T) {
	plan := func(reply any, g uint64, slots *cluster.SlotRange) (splitPlan, error) {
		gs, err := parseGroups(reply)
		if err != nil {
			t.Fatal(err)
		}
		return planSplit(gs, g, slots)
	}
	upper := cluster.SlotRange{First: 8192, Last: 12287}
	// Nothing done: the upper half of group 2, to a group to add.
	fresh := groupsReply(group(1, 1, []any{"0-8191"}, []any{}), group(2, 2, []any{"8192-16383"}, []any{}))
	if p, err := plan(fresh, 2, nil); err != nil || p.to != 0 || p.done || !slices.Equal(p.ranges, []cluster.SlotRange{{First: 12288, Last: 16383}}) {
		t.Fatalf("fresh: %+v %v", p, err)
	}
	// The group added (empty): the slots go to it.
	added := groupsReply(group(1, 1, []any{"0-8191"}, []any{}), group(2, 2, []any{"8192-16383"}, []any{}), group(3, 3, []any{}, []any{}))
	if p, err := plan(added, 2, &upper); err != nil || p.to != 3 || !slices.Equal(p.ranges, []cluster.SlotRange{upper}) {
		t.Fatalf("added: %+v %v", p, err)
	}
	// Half moved: finished to the group it was going to, whatever --slots.
	half := groupsReply(group(1, 1, []any{"0-8191"}, []any{}), group(2, 2, []any{"8192-16383"}, []any{"12288-16383 to 3"}),
		group(3, 3, []any{"12288-16383"}, []any{}))
	if p, err := plan(half, 2, nil); err != nil || p.to != 3 || !slices.Equal(p.ranges, []cluster.SlotRange{{First: 12288, Last: 16383}}) {
		t.Fatalf("half: %+v %v", p, err)
	}
	// Stopped between the two NODE steps, seen from a node that does not
	// host group 2 (no migrating state): both own the range.
	both := groupsReply(group(1, 1, []any{"0-8191"}, []any{}), group(2, 2, []any{"8192-16383"}, []any{}),
		group(3, 3, []any{"12288-16383"}, []any{}))
	if p, err := plan(both, 2, nil); err != nil || p.to != 3 || !slices.Equal(p.ranges, []cluster.SlotRange{{First: 12288, Last: 16383}}) {
		t.Fatalf("both own: %+v %v", p, err)
	}
	// Done, with --slots: nothing to do.
	done := groupsReply(group(1, 1, []any{"0-8191"}, []any{}), group(2, 2, []any{"12288-16383"}, []any{}), group(3, 3, []any{"8192-12287"}, []any{}))
	if p, err := plan(done, 2, &upper); err != nil || !p.done || p.to != 3 {
		t.Fatalf("done: %+v %v", p, err)
	}
	all := cluster.SlotRange{First: 8192, Last: 16383}
	straddle := cluster.SlotRange{First: 8000, Last: 8300}
	tiny := groupsReply(group(1, 1, []any{"0-16382"}, []any{}), group(2, 2, []any{"16383"}, []any{}))
	two := groupsReply(group(1, 1, []any{"0-99", "200-8191"}, []any{}), group(2, 2, []any{"100-199", "8192-16383"}, []any{}))
	for _, c := range []struct {
		reply any
		g     uint64
		slots *cluster.SlotRange
		want  string
	}{
		{fresh, 3, nil, "no group 3"},
		{fresh, 2, &all, "all of group 2's"},
		{fresh, 1, &straddle, "not all in group 1"},
		{tiny, 2, nil, "too few"},
		{two, 2, nil, "--slots"},
	} {
		if _, err := plan(c.reply, c.g, c.slots); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("planSplit(group %d, %v) = %v, want an error naming %q", c.g, c.slots, err, c.want)
		}
	}
}
