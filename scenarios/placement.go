package scenarios

import (
	"math/rand/v2"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// Placement (docs/cluster.md, "Placement"): six nodes, six groups of
// three replicas each (sim.GroupConfig.Replicas), so every node hosts
// three groups and answers -MOVED for the other three, learning their
// leaders from its peers' pings. Keys land in every group's slots;
// clients start on any node and follow the redirects.
const (
	placementNodes    = 6
	placementGroups   = 6
	placementReplicas = 3
)

// placementBase is the placed world: clusterBase with six nodes (each
// its own skewed, drifting clock), six groups of three, keys tagged into
// every group's slots.
func placementBase(name string, seed uint64) sim.Config {
	var ranges []cluster.SlotRange
	var per []int
	for _, rs := range cluster.SplitSlots(placementGroups) {
		ranges = append(ranges, rs[0])
		per = append(per, 1)
	}
	cfg := shardBase(name, seed, cluster.FsyncAlways, placementGroups, tagsIn(ranges, per))
	rng := rand.New(rand.NewPCG(seed, 0x91ac))
	cfg.Group.Nodes = placementNodes
	cfg.Group.Replicas = placementReplicas
	cfg.Group.Clocks = make([]sim.ClockConfig, placementNodes)
	for i := range cfg.Group.Clocks {
		cfg.Group.Clocks[i] = sim.ClockConfig{Skew: time.Duration(rng.Int64N(int64(time.Second))), DriftPPM: rng.Int64N(201) - 100}
	}
	// Follower reads go to a random node, which may not host the key's
	// group at all: they would measure redirects, not staleness.
	cfg.Group.FollowerReadPct = 0
	cfg.Node.FS.TornProb = 0.3
	return cfg
}

// placementFault starts one fault on a placed world and returns how long
// it lasts: a power loss of some group's leader or of any node (each of
// its three groups loses one replica of three), one node cut off, or the
// cluster split in two halves (every group keeps a majority on one side,
// which may not be its leader's).
func placementFault(r *sim.Run) time.Duration {
	ids := r.Group.IDs()
	switch r.Rand.IntN(4) {
	case 0:
		return crashNode(r, leaderOfSome(r))
	case 1:
		return crashNode(r, r.Group.Node(ids[r.Rand.IntN(len(ids))]))
	case 2:
		r.Fault("partition")
		r.Net.Isolate(ids[r.Rand.IntN(len(ids))], ids)
	default:
		r.Fault("partition")
		perm := r.Rand.Perm(len(ids))
		for _, i := range perm[:len(ids)/2] {
			for _, j := range perm[len(ids)/2:] {
				r.Net.Block(ids[i], ids[j])
				r.Net.Block(ids[j], ids[i])
			}
		}
	}
	return 300*time.Millisecond + time.Duration(r.Rand.Int64N(int64(2500*time.Millisecond)))
}

func init() {
	register(&Scenario{
		Name: "cluster-placement",
		Summary: "6 nodes, 6 replica groups of 3 replicas each (every node hosts 3 and redirects the rest), keys in every group's slots; " +
			"group leaders and other nodes lose power, a node is cut off, or the cluster splits in halves, again and again; at the end " +
			"every group's voters are its placed nodes and no other node holds a replica of it; appendfsync always",
		Config: func(seed uint64) sim.Config {
			cfg := placementBase("cluster-placement", seed)
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, time.Second, func() time.Duration { return placementFault(r) })
			}
			return cfg
		},
	})
}
