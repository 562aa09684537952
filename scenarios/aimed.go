package scenarios

import (
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// Aimed crashes (sim/aim.go): the schedule aims, a while at a time, at one
// of the narrow windows a crash at a random disk operation rarely hits,
// with a probability that fits how often the run passes it, so that each
// seed crashes nodes exactly there a few times.

// aimChoice is a window and the chance to crash at each pass of it.
type aimChoice struct {
	marker string
	p      float64
}

// aimWindows switches aims on and off: about every mean, one choice for
// 300 ms to 1.2 s.
func aimWindows(r *sim.Run, mean time.Duration, choices []aimChoice) {
	every(r, mean, func() {
		c := choices[r.Rand.IntN(len(choices))]
		r.Aim(c.marker, c.p)
		r.At(time.Duration(r.Now())+300*time.Millisecond+time.Duration(r.Rand.Int64N(int64(900*time.Millisecond))), func() {
			r.Aim(c.marker, 0)
		})
	})
}

func init() {
	register(&Scenario{
		Name: "aimed-crash",
		Summary: "power loss aimed at the narrow windows: after a batch is appended and before its fsync, in the middle of a snapshot job, " +
			"while the log is compacted; always, everysec or no; torn writes",
		Config: func(seed uint64) sim.Config {
			cfg := base("aimed-crash", seed, policyFor(seed))
			cfg.Node.FS.TornProb = 0.5
			cfg.Schedule = func(r *sim.Run) {
				aimWindows(r, 1200*time.Millisecond, []aimChoice{
					{sim.MarkAppendUnsynced, 0.05}, {sim.MarkSnapshotWrite, 0.3}, {sim.MarkCompaction, 1},
				})
			}
			return cfg
		},
	})
	register(&Scenario{
		Name: "cluster-aimed-crash",
		Summary: "3-node group: leaders crash and followers are cut off long enough to need a snapshot, while crashes are aimed at a vote written " +
			"but not synced, an append before its fsync, a snapshot install, a snapshot job and log compaction; appendfsync always; torn writes",
		Config: func(seed uint64) sim.Config {
			cfg := clusterBase("cluster-aimed-crash", seed, cluster.FsyncAlways)
			cfg.Node.FS.TornProb = 0.3
			cfg.Schedule = func(r *sim.Run) {
				// Each fault is followed by the window it opens: an
				// election after the leader crashes, a snapshot install
				// when a follower cut off for long comes back.
				aimFor := func(m string, p float64, d time.Duration) {
					r.Aim(m, p)
					r.At(time.Duration(r.Now())+d, func() { r.Aim(m, 0) })
				}
				faultCycles(r, 800*time.Millisecond, func() time.Duration {
					switch r.Rand.IntN(3) {
					case 0:
						aimFor(sim.MarkVoteUnsynced, 1, 3*time.Second)
						return crashNode(r, r.Group.Leader())
					case 1:
						victim := randomFollower(r)
						r.Fault("partition")
						r.Net.Isolate(victim.ID(), r.Group.IDs())
						d := 1500*time.Millisecond + time.Duration(r.Rand.Int64N(int64(1500*time.Millisecond)))
						r.At(time.Duration(r.Now())+d, func() { aimFor(sim.MarkSnapshotInstall, 0.3, 3*time.Second) })
						return d
					}
					c := []aimChoice{{sim.MarkAppendUnsynced, 0.02}, {sim.MarkSnapshotWrite, 0.5}, {sim.MarkCompaction, 1}}[r.Rand.IntN(3)]
					aimFor(c.marker, c.p, time.Second)
					return time.Second
				})
			}
			return cfg
		},
	})
}
