package scenarios

import (
	"math/rand/v2"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// Splitting a group (docs/cluster.md, "Splitting a group"): a placed
// world of six nodes and four groups of three replicas splits one group
// online, as `keel cluster split` does: CLUSTER ADDGROUP adds a fifth
// group to the meta record, its three nodes bootstrap it, and the upper
// half of the split group's slots moves to it with the slot move. Clients
// write keys in both halves of every group throughout; nodes lose power
// (the meta group's leader right after the ADDGROUP, a leader of the
// move's groups at one of its steps), are cut off, or the cluster splits
// in halves. At the end the world has five groups, the record balanced,
// every group on 3 distinct live nodes, every key on exactly its group's
// nodes (sim/split.go, sim/moves.go).

const (
	splitFounding = 4
	splitNodes    = 6
)

// splitBase is the world: placementBase's six nodes and faults with four
// founding groups (--groups-max 5), keys tagged into both halves of each.
func splitBase(name string, seed uint64) sim.Config {
	var ranges []cluster.SlotRange
	var per []int
	for _, rs := range cluster.SplitSlots(splitFounding) {
		upper := cluster.SplitRanges(rs)[0]
		ranges = append(ranges, cluster.SlotRange{First: rs[0].First, Last: upper.First - 1}, upper)
		per = append(per, 1, 1)
	}
	cfg := shardBase(name, seed, cluster.FsyncAlways, splitFounding, tagsIn(ranges, per))
	rng := rand.New(rand.NewPCG(seed, 0x5b11))
	cfg.Group.Nodes = splitNodes
	cfg.Group.Replicas = placementReplicas
	cfg.Group.MaxGroups = splitFounding + 1
	cfg.Group.Moves = true
	cfg.Group.Clocks = make([]sim.ClockConfig, splitNodes)
	for i := range cfg.Group.Clocks {
		cfg.Group.Clocks[i] = sim.ClockConfig{Skew: time.Duration(rng.Int64N(int64(time.Second))), DriftPPM: rng.Int64N(201) - 100}
	}
	cfg.Group.FollowerReadPct = 0 // as placementBase: a random node may not host the key's group
	cfg.Node.FS.TornProb = 0.3
	cfg.Duration = movesDuration
	cfg.Group.FinalWithin = 40 * time.Second
	return cfg
}

func init() {
	register(&Scenario{
		Name: "cluster-split",
		Summary: "6 nodes, 4 groups of 3 replicas (--groups-max 5); a group is split online: CLUSTER ADDGROUP adds group 5 on three nodes, " +
			"which bootstrap it, and the upper half of the group's slots moves to it while clients write both halves, the meta group's " +
			"leader loses power right after the ADDGROUP, a leader of the move's groups at one of its steps, and nodes lose power, are " +
			"cut off or the cluster splits; at the end there are 5 groups, the record balanced, every key on exactly its group's 3 " +
			"nodes; appendfsync always",
		Config: func(seed uint64) sim.Config {
			cfg := splitBase("cluster-split", seed)
			cfg.Schedule = func(r *sim.Run) {
				from := uint64(1 + r.Rand.IntN(splitFounding))
				aimed := &aimedCrash{r: r}
				spec := sim.SlotMoveSpec{Range: r.Group.SplitRange(from), From: from, Batch: 1 + r.Rand.IntN(4), OnStep: aimed.step}
				r.At(1500*time.Millisecond, func() { r.Group.Split(splitFounding+1, spec, nil) })
				// The meta group's leader loses power while the new group
				// forms (ADDGROUP applies within a few hundred ms; its
				// nodes open it at their next reconcile, within 1 s).
				r.At(1600*time.Millisecond+time.Duration(r.Rand.Int64N(int64(1500*time.Millisecond))), func() {
					if l := r.Group.LeaderOf(1); l != nil {
						r.Fault("meta-leader-crash")
						l.PowerOffFor(time.Second + time.Duration(r.Rand.Int64N(int64(2*time.Second))))
					}
				})
				movesFaults(r)
			}
			return cfg
		},
	})
}
