package main

import (
	"testing"
)

// CLUSTER PLACEMENT's text is read into what keel cluster addnode and
// delnode wait on.
func TestReadPlacementText(t *testing.T) {
	text := "meta_version:7\r\nreplicas:3\r\nlast_move:group 2: 5 -> 7\r\ngroups_moving:1\r\ngroups_under_replicated:0\r\nbalanced:false\r\n" +
		"member:1 127.0.0.1:7001 active\r\nmember:7 127.0.0.1:7007 decommissioning\r\ngroup:1 target=1,2,3 voters=1,2,3 learners=\r\n"
	p := parsePlacement(text)
	if p.placementOff || p.version != 7 || p.moving != 1 || p.balanced || p.lastMove != "group 2: 5 -> 7" ||
		p.members[1] != "active" || p.members[7] != "decommissioning" || len(p.members) != 2 {
		t.Fatalf("parsed %+v", p)
	}
	if !parsePlacement("placement:off\r\n").placementOff {
		t.Fatal("placement:off not read")
	}
}
