package scenarios

import (
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// Snapshots many times the transport's message limit (docs/cluster.md,
// "Snapshots to followers"): peer messages are bounded at 8 KiB on the
// node and on the network (a bigger one fails the run), a few dozen keys
// hold values of 1–3.5 KiB, so a snapshot is some 16 times the limit, and
// the leader streams at most 16 KiB a tick. A follower is kept down or cut
// off while the others compact their logs, so it can only catch up
// through a multi-chunk stream; while that stream runs, the follower or
// the leader crashes (power loss, a crash mid-I/O), or the leader is cut
// off until another is elected, under 2% message loss. At the end every
// replica must hold what the final reads saw.
const (
	bigSnapMessageBytes = 8 << 10
	bigSnapKeys         = 64
	bigSnapValueMin     = 1 << 10
	bigSnapValueMax     = 3500 // a command fits half a message (cluster's replicatedCommandBytesMax)
	bigSnapSendPerTick  = 16 << 10
	bigSnapLogBytes     = 48 << 10
)

func init() {
	register(&Scenario{
		Name: "cluster-big-snapshots",
		Summary: "3-node group with 8 KiB peer messages and values of 1–3.5 KiB on 64 keys (snapshots ~16 times the limit, streamed at 16 KiB a tick): " +
			"a follower kept down or cut off while the others compact catches up through a multi-chunk stream while it or the leader crashes, or the leader is cut off, mid-stream, " +
			"2% message loss; appendfsync always; every replica converges",
		Config: func(seed uint64) sim.Config {
			cfg := clusterBase("cluster-big-snapshots", seed, cluster.FsyncAlways)
			cfg.Node.FS.TornProb = 0.3
			cfg.Node.MessageBytesMax = bigSnapMessageBytes
			cfg.Node.SnapshotSendBytesPerTick = bigSnapSendPerTick
			cfg.Node.SnapshotLogBytes = bigSnapLogBytes
			cfg.Net.MessageBytesMax = bigSnapMessageBytes
			cfg.Net.LossProb = 0.02
			cfg.Workload.PlainKeys = bigSnapKeys
			cfg.Workload.ValueBytesMin, cfg.Workload.ValueBytesMax = bigSnapValueMin, bigSnapValueMax
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, 700*time.Millisecond, func() time.Duration {
					victim := randomFollower(r)
					d := 1500*time.Millisecond + time.Duration(r.Rand.Int64N(int64(2*time.Second)))
					// Everyone is back when the faults end.
					d = min(d, clusterFaultsUntil-time.Duration(r.Now()))
					if r.Rand.IntN(2) == 0 {
						victim.PowerOffFor(d)
					} else {
						r.Fault("partition")
						r.Net.Isolate(victim.ID(), r.Group.IDs())
					}
					if r.Rand.IntN(4) == 0 && time.Duration(r.Now())+d+cutOffCycle <= clusterFaultsUntil {
						// This cycle goes on past the victim's return: its
						// end heals the leader cut off mid-stream.
						r.At(time.Duration(r.Now())+d, func() {
							r.Net.Heal()
							cutOffMidStream(r, time.Duration(r.Now())+cutOffCycle)
						})
						return d + cutOffCycle
					}
					r.At(time.Duration(r.Now())+d, func() { crashMidStream(r, victim) })
					return d
				})
			}
			return cfg
		},
	})
}

// whenStreaming polls every 10 ms, until the run's time reaches until,
// for a leader streaming a snapshot, and calls fn with it once found.
func whenStreaming(r *sim.Run, until time.Duration, fn func(l *sim.Node)) {
	var poll func()
	poll = func() {
		now := time.Duration(r.Now())
		if now >= until {
			return
		}
		l := r.Group.Leader()
		if l == nil || l.SnapshotStreams().Streaming == 0 {
			r.At(now+10*time.Millisecond, poll)
			return
		}
		fn(l)
	}
	poll()
}

// crashMidStream waits (up to 3 s) for the leader to stream a snapshot and
// then, half the time, crashes the follower it catches up or the leader,
// 0–300 ms into the stream: a crash mid-I/O, or a power loss of up to a
// second (so every node is back long before the liveness window closes).
func crashMidStream(r *sim.Run, follower *sim.Node) {
	until := min(time.Duration(r.Now())+3*time.Second, clusterFaultsUntil-1500*time.Millisecond)
	whenStreaming(r, until, func(l *sim.Node) {
		if r.Rand.IntN(2) == 0 {
			return
		}
		victim := follower
		if r.Rand.IntN(2) == 0 {
			victim = l
		}
		r.At(time.Duration(r.Now())+time.Duration(r.Rand.Int64N(int64(300*time.Millisecond))), func() {
			r.Trace("crash n" + itoa(victim.ID()) + " mid-stream")
			if r.Rand.IntN(3) == 0 {
				victim.CrashDuringIO(1 + r.Rand.Int64N(20))
				return
			}
			victim.PowerOffFor(200*time.Millisecond + time.Duration(r.Rand.Int64N(int64(800*time.Millisecond))))
		})
	})
}

// cutOffCycle is how long a cycle that cuts the leader off mid-stream
// lasts after the victim's return: time for the stream to start, the
// others to elect a leader (1–2 s of silence) and the new one to begin.
const cutOffCycle = 3500 * time.Millisecond

// cutOffMidStream waits (up to 1 s) for the leader to stream a snapshot
// and then, 0–300 ms into the stream, cuts it off from the group until
// heal (the cycle's end). It goes on resending its window into the void
// until CheckQuorum makes it step down, 1–2 s in, while the others elect
// a leader after 1–2 s of silence: often the new leader comes while the
// old one still streams (sim.MarkLeaderChangeDuringSnapSend), and the
// follower, holding part of the old leader's file, is caught up by the
// new one, which may stream another snapshot or resume the same one from
// the follower's offset.
func cutOffMidStream(r *sim.Run, heal time.Duration) {
	whenStreaming(r, time.Duration(r.Now())+time.Second, func(l *sim.Node) {
		r.At(time.Duration(r.Now())+time.Duration(r.Rand.Int64N(int64(300*time.Millisecond))), func() {
			if time.Duration(r.Now()) >= heal {
				return
			}
			r.Trace("cut off n" + itoa(l.ID()) + " mid-stream")
			r.Fault("partition")
			r.Net.Isolate(l.ID(), r.Group.IDs())
		})
	})
}
