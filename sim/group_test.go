package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/cluster"
)

// The follower-read staleness rule flags what it states and nothing else.
func TestFollowerReadRule(t *testing.T) {
	sec := int64(time.Second)
	set := func(key, val string, call, ret int64, out checker.Value) checker.Op {
		return checker.Op{Kind: checker.Set, Key: key, Value: val, Call: call, Return: ret, Output: out}
	}
	hist := []checker.Op{
		set("k", "c1-1", 0, 1*sec, checker.Str("OK")),
		set("k", "c2-1", 2*sec, 3*sec, checker.Str("OK")), // overwrites c1-1, acked at 3 s
		set("k", "c3-1", 4*sec, 5*sec, checker.Nil),       // NX refused: never written
		{Kind: checker.Del, Key: "j", Call: 0, Return: sec, Output: checker.Int(0)},
		set("j", "c4-1", 20*sec, 21*sec, checker.Str("OK")),
	}
	read := func(key, val string, call int64) FollowerRead {
		return FollowerRead{Client: 1000, Node: 2, Key: key, Call: call, Return: call + sec/100, Value: checker.Str(val)}
	}
	cases := []struct {
		fr   FollowerRead
		want string // "" passes
	}{
		{read("k", "c1-1", 4*sec), ""},                       // 1 s after the overwrite was acknowledged
		{read("k", "c1-1", 7*sec+9*sec/10), ""},              // 4.9 s after: within the bound
		{read("k", "c1-1", 8*sec+sec/10), "staler than 5s"},  // 5.1 s after
		{read("k", "c2-1", 60*sec), ""},                      // the latest value, long after
		{read("k", "c3-1", 6*sec), "answered nil"},           // a value whose SET NX did nothing
		{read("k", "c9-9", 6*sec), "no recorded write"},      // invented
		{read("k", "c4-1", 22*sec), "written to j"},          // another key's value
		{read("j", "c4-1", 10*sec), "issued after the read"}, // from the future
	}
	for _, tc := range cases {
		r := &Run{History: hist, Oracle: newOracle(Durability{Kind: "always"}, false)}
		g := &Group{r: r, cfg: GroupConfig{StaleBound: 5 * time.Second}, FollowerReads: []FollowerRead{tc.fr}}
		g.checkFollowerReads()
		got := strings.Join(r.Oracle.Failures, "; ")
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("read %s=%s at %s: failures %q, want %q", tc.fr.Key, tc.fr.Value.Str, time.Duration(tc.fr.Call), got, tc.want)
		}
	}
}

// membershipWorld is a small replicated world with one joiner: three
// founders, n4 started at 1.5 s and added by the admin at 2 s, schedule
// adds more.
func membershipWorld(seed uint64, trace *strings.Builder, more func(r *Run)) Config {
	cfg := Config{
		Scenario: "membership-test", Seed: seed, Duration: 9 * time.Second,
		Node: NodeConfig{
			Dir: "data", AppendOnly: true, Fsync: cluster.FsyncAlways,
			FS:        FSConfig{SectorSize: 4096, SyncLatency: 200 * time.Microsecond},
			TickEvery: 100 * time.Millisecond, RequestCost: 2 * time.Microsecond, RestartDelay: 50 * time.Millisecond,
			SnapshotLogBytes: 16 << 10, SegmentBytes: 16 << 10, JobDelay: time.Millisecond,
		},
		Net:        NetConfig{DelayMin: 100 * time.Microsecond, DelayJitter: 300 * time.Microsecond},
		Workload:   WorkloadConfig{Clients: 3, PlainKeys: 5, Think: 20 * time.Millisecond, Timeout: time.Second, KeyPrefix: "{g}"},
		Durability: Durability{Kind: "always"},
		Group:      &GroupConfig{Nodes: 3, Joiners: 1, StaleBound: 5 * time.Second, LivenessWithin: 3 * time.Second, FinalWithin: 10 * time.Second},
		Schedule: func(r *Run) {
			r.At(1500*time.Millisecond, func() { r.Group.StartJoiner(4) })
			r.At(2*time.Second, r.Group.HealAll)
			r.At(2*time.Second, func() { r.Group.Admin([]string{"CLUSTER", "ADDNODE", "4", NodeAddr(4)}, nil) })
			if more != nil {
				more(r)
			}
		},
	}
	if trace != nil {
		cfg.Trace = trace
	}
	return cfg
}

// A joiner added by the admin becomes a voter everywhere; removing a
// founder and stopping it leaves the other three, which converge.
func TestGroupJoinAndRemove(t *testing.T) {
	var tr strings.Builder
	res := Execute(membershipWorld(1, &tr, func(r *Run) {
		r.At(3*time.Second, func() {
			r.Group.Admin([]string{"CLUSTER", "DELNODE", "2"}, func() { r.Group.Node(2).Stop() })
		})
	}))
	if !res.Passed() {
		t.Fatalf("failures: %q", res.Failures)
	}
	for _, want := range []string{"admin done CLUSTER ADDNODE 4 n4:6379 (members 1,2,3,4)", "n1 address book: n4 added n4:6379",
		"admin done CLUSTER DELNODE 2 (members 1,3,4)", "n4 address book: n2 removed", "n2 stop for good"} {
		if !strings.Contains(tr.String(), want) {
			t.Errorf("trace never shows %q", want)
		}
	}
	if strings.Contains(tr.String(), "n2 power-off (final check)") {
		t.Errorf("the stopped n2 was restarted for the final check")
	}
}

// The membership checks bite: a voter set other than the acknowledged
// changes say fails; so does a change not known to have happened when
// the workload ends; so does a member that is down at the end.
func TestGroupMembershipChecksBite(t *testing.T) {
	for _, tc := range []struct {
		name string
		more func(r *Run)
		want string
	}{
		{"wrong-voters", func(r *Run) {
			r.At(5*time.Second, func() { r.Group.members = []uint64{1, 2, 3} })
		}, "voters 1,2,3,4, want 1,2,3"},
		{"unfinished", func(r *Run) {
			r.At(9*time.Second-time.Millisecond, func() { r.Group.Admin([]string{"CLUSTER", "DELNODE", "3"}, nil) })
		}, "CLUSTER DELNODE 3 was not known to have happened in group(s) 1"},
		{"stopped-member", func(r *Run) {
			r.At(4*time.Second, func() { r.Group.Node(3).Stop() })
		}, "convergence: n3 is down at the end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Execute(membershipWorld(2, nil, tc.more))
			got := strings.Join(res.Failures, "; ")
			if !strings.Contains(got, tc.want) {
				t.Fatalf("failures %q, want one containing %q", got, tc.want)
			}
		})
	}
}

// shardedMembershipWorld is membershipWorld with two replica groups: n4
// opens a replica of each with Join, and the admin adds it to each.
func shardedMembershipWorld(seed uint64, trace *strings.Builder, more func(r *Run)) Config {
	cfg := membershipWorld(seed, trace, more)
	cfg.Group.Groups = 2
	cfg.Workload.KeyPrefix = ""
	cfg.Workload.KeyTags = []string{"a", "b", "c"} // slots 15495, 3300, 7365: both groups
	return cfg
}

// In a sharded world the admin makes each change in every group in turn,
// each group's leader applying its own conf change; the joiner becomes a
// voter of both, the removed founder leaves both, and each group's voters
// check out.
func TestShardedJoinAndRemove(t *testing.T) {
	var tr strings.Builder
	res := Execute(shardedMembershipWorld(1, &tr, func(r *Run) {
		r.At(3*time.Second, func() {
			r.Group.Admin([]string{"CLUSTER", "DELNODE", "2"}, func() { r.Group.Node(2).Stop() })
		})
	}))
	if !res.Passed() {
		t.Fatalf("failures: %q", res.Failures)
	}
	for _, want := range []string{
		"admin done CLUSTER ADDNODE 4 n4:6379 in g1 (its members 1,2,3,4)", "admin done CLUSTER ADDNODE 4 n4:6379 in g2 (its members 1,2,3,4)",
		"admin done CLUSTER ADDNODE 4 n4:6379 in every group (members 1,2,3,4)", "n1 address book: n4 added n4:6379",
		"admin done CLUSTER DELNODE 2 in g1 (its members 1,3,4)", "admin done CLUSTER DELNODE 2 in g2 (its members 1,3,4)",
		"admin done CLUSTER DELNODE 2 in every group (members 1,3,4)", "n4 address book: n2 removed", "n2 stop for good",
	} {
		if !strings.Contains(tr.String(), want) {
			t.Errorf("trace never shows %q", want)
		}
	}
	// The admin had its change submitted to each group's replica, though
	// the command has no key: a node applies it in every group it leads.
	for _, grp := range []string{" g1:", " g2:"} {
		found := false
		for _, line := range strings.Split(tr.String(), "\n") {
			found = found || strings.Contains(line, " submit ") && strings.Contains(line, grp) && strings.Contains(line, " admin/")
		}
		if !found {
			t.Errorf("the admin's change was never submitted to%s", strings.TrimSuffix(grp, ":"))
		}
	}
}

// The per-group membership checks bite: one group's voters other than
// its acknowledged changes say fail, naming the group; a change made in
// one group but not yet the next when the workload ends fails too.
func TestShardedMembershipChecksBite(t *testing.T) {
	for _, tc := range []struct {
		name string
		more func(r *Run)
		want string
	}{
		{"wrong-voters", func(r *Run) {
			r.At(5*time.Second, func() { r.Group.perGroup[1] = []uint64{1, 2, 3} })
		}, "of group 2 has voters 1,2,3,4, want 1,2,3"},
		{"unfinished", func(r *Run) {
			r.At(9*time.Second-time.Millisecond, func() { r.Group.Admin([]string{"CLUSTER", "DELNODE", "3"}, nil) })
		}, "CLUSTER DELNODE 3 was not known to have happened in group(s) "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Execute(shardedMembershipWorld(2, nil, tc.more))
			got := strings.Join(res.Failures, "; ")
			if !strings.Contains(got, tc.want) {
				t.Fatalf("failures %q, want one containing %q", got, tc.want)
			}
		})
	}
}
