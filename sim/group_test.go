package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/checker"
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
