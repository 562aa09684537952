package scenarios

import (
	"bytes"
	"strings"
	"testing"

	"github.com/keel-db/keel/sim"
)

// The workloads and schedules reach the rare states they were changed
// for: a WATCH meeting a write of its key in the same batch (bank-watch's
// aligned requests), a plain SET on a key with a TTL (clock-skew), an I/O
// error while a snapshot finishes (fsync-failure's aim), a leader elected
// while another still streams a snapshot (cluster-big-snapshots cutting
// the streaming leader off; seed 9 is one of the 13 % that do), a
// function reading and writing its keys twice (fcall-transfer's
// transfer_split); and the correct program passes them.
func TestWorkloadsReachRareStates(t *testing.T) {
	for _, tc := range []struct {
		scenario, marker string
		seed             uint64
	}{
		{"bank-watch", sim.MarkWatchMeetsWrite, 1},
		{"clock-skew", sim.MarkSetOnTTLKey, 1},
		{"fsync-failure", sim.MarkFsyncErrorInCompaction, 1},
		{"cluster-big-snapshots", sim.MarkLeaderChangeDuringSnapSend, 9},
	} {
		o := RunSeed(Lookup(tc.scenario), tc.seed)
		if !o.Passed() {
			t.Errorf("%s seed %d: %s", tc.scenario, tc.seed, o.Failures[0])
		}
		if o.Markers[tc.marker] == 0 {
			t.Errorf("%s seed %d never reached %s (markers %s)", tc.scenario, tc.seed, tc.marker, sim.MarkerCounts(o.Markers))
		}
		t.Logf("%s seed %d: %s", tc.scenario, tc.seed, sim.MarkerCounts(o.Markers))
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
