package scenarios

import (
	"bytes"
	"strings"
	"testing"

	"github.com/keel-db/keel/sim"
)

// The workloads reach the rare states they were changed for: a WATCH
// meeting a write of its key in the same batch (bank-watch's aligned
// requests), a plain SET on a key with a TTL (clock-skew), a function
// reading and writing its keys twice (fcall-transfer's transfer_split);
// and the correct program passes them.
func TestWorkloadsReachRareStates(t *testing.T) {
	for _, tc := range []struct{ scenario, marker string }{
		{"bank-watch", sim.MarkWatchMeetsWrite},
		{"clock-skew", sim.MarkSetOnTTLKey},
	} {
		o := RunSeed(Lookup(tc.scenario), 1)
		if !o.Passed() {
			t.Errorf("%s seed 1: %s", tc.scenario, o.Failures[0])
		}
		if o.Markers[tc.marker] == 0 {
			t.Errorf("%s seed 1 never reached %s (markers %s)", tc.scenario, tc.marker, sim.MarkerCounts(o.Markers))
		}
		t.Logf("%s seed 1: %s", tc.scenario, sim.MarkerCounts(o.Markers))
	}
	var tr bytes.Buffer
	o := RunSeed(Lookup("fcall-transfer"), 1, func(c *sim.Config) { c.Trace = &tr })
	if !o.Passed() {
		t.Errorf("fcall-transfer seed 1: %s", o.Failures[0])
	}
	calls := 0
	for _, l := range strings.Split(tr.String(), "\n") {
		if strings.Contains(l, " call ") && strings.Contains(l, "FCALL transfer_split") {
			calls++
		}
	}
	if calls < 100 { // each answered as the model predicts, or the seed failed
		t.Errorf("fcall-transfer seed 1 sent %d transfer_split calls", calls)
	}
	t.Logf("fcall-transfer seed 1: %d transfer_split calls", calls)
}
