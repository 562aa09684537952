package sim

import (
	"strings"
	"testing"

	"github.com/keel-db/keel/cluster"
)

// The final slot map check fails a slot owned twice, a slot owned by
// no one, a move left half done, and ownership other than the finished
// moves leave.
func TestCheckSlotMap(t *testing.T) {
	g1 := cluster.SlotRange{First: 0, Last: 8191}
	g2 := cluster.SlotRange{First: 8192, Last: 16383}
	mv := cluster.SlotRange{First: 10, Last: 20}
	for _, tc := range []struct {
		name  string
		infos []cluster.SlotInfo
		moves []SlotMoveSpec
		want  string // "" passes
	}{
		{"split", []cluster.SlotInfo{{Group: 1, Owned: []cluster.SlotRange{g1}}, {Group: 2, Owned: []cluster.SlotRange{g2}}}, nil, ""},
		{"moved", []cluster.SlotInfo{{Group: 1, Owned: []cluster.SlotRange{{First: 0, Last: 9}, {First: 21, Last: 8191}}},
			{Group: 2, Owned: []cluster.SlotRange{mv, g2}}}, []SlotMoveSpec{{Range: mv, From: 1, To: 2}}, ""},
		{"twice", []cluster.SlotInfo{{Group: 1, Owned: []cluster.SlotRange{g1}}, {Group: 2, Owned: []cluster.SlotRange{mv, g2}}}, nil,
			"slot 10 is owned by groups 1 and 2"},
		{"no one", []cluster.SlotInfo{{Group: 1, Owned: []cluster.SlotRange{{First: 0, Last: 9}, {First: 21, Last: 8191}}},
			{Group: 2, Owned: []cluster.SlotRange{g2}}}, nil, "slot 10 is owned by no group"},
		{"half done", []cluster.SlotInfo{{Group: 1, Owned: []cluster.SlotRange{g1}, Migrating: []cluster.SlotMove{{SlotRange: mv, Group: 2}}},
			{Group: 2, Owned: []cluster.SlotRange{g2}, Importing: []cluster.SlotMove{{SlotRange: mv, Group: 1}}}}, nil, "move half done"},
		{"not as moved", []cluster.SlotInfo{{Group: 1, Owned: []cluster.SlotRange{g1}}, {Group: 2, Owned: []cluster.SlotRange{g2}}},
			[]SlotMoveSpec{{Range: mv, From: 1, To: 2}}, "slot 10 is owned by group 1, but the finished moves leave it to group 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Run{Oracle: newOracle(Durability{Kind: "always"}, false)}
			g := &Group{r: r, groups: 2, founding: 2}
			if tc.moves != nil {
				g.resharder = &Client{route: route{reshard: &reshardState{finished: tc.moves}}}
			}
			owner := g.checkSlotMap(tc.infos)
			got := r.Oracle.Failures
			if tc.want == "" {
				if len(got) > 0 || owner == nil || owner[15] != g.expectedOwners()[15] {
					t.Fatalf("failures %q, owner nil=%v", got, owner == nil)
				}
				return
			}
			if len(got) == 0 || !strings.Contains(got[0], tc.want) {
				t.Fatalf("failures %q, want one with %q", got, tc.want)
			}
		})
	}
}
