package scenarios

import (
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// Attacks on the cluster bus (sim/busattack.go): from clusterFaultsFrom to
// clusterFaultsUntil, node-to-node traffic carries forged frames from ids
// that are not members, replays of old frames, copies with a bit flipped
// and frames for groups the receiver does not host, besides the usual
// loss and duplicates and some one-way partitions. Every node must stay
// up (no crash, no reopened replica, no refusal to start), the history
// must stay linearizable and the replicas converge with no key that no
// client wrote (the sharded world's DBSIZE check).
var busAttack = sim.BusAttack{ForgeProb: 0.03, ReplayProb: 0.05, CorruptProb: 0.05, ForeignGroupProb: 0.03}

func init() {
	register(&Scenario{
		Name: "cluster-bus-attack",
		Summary: "3 nodes, 2 replica groups: the bus carries forged frames from non-members, replayed old frames, frames with a bit flipped and frames " +
			"for groups a node does not host, with one-way partitions; every node stays up, linearizable, replicas converge, no foreign key",
		Config: func(seed uint64) sim.Config {
			split := cluster.SplitSlots(2)
			tags := tagsIn([]cluster.SlotRange{split[0][0], split[1][0]}, []int{2, 2})
			cfg := shardBase("cluster-bus-attack", seed, clusterPolicy(seed), 2, tags)
			var stayedUp []string
			cfg.Schedule = func(r *sim.Run) {
				r.At(clusterFaultsFrom, func() { r.Net.SetAttack(busAttack) })
				faultCycles(r, time.Second, func() time.Duration {
					ids := r.Group.IDs()
					a, b := ids[r.Rand.IntN(len(ids))], ids[r.Rand.IntN(len(ids))]
					if a != b {
						r.Fault("one-way")
						r.Net.Block(a, b)
					}
					return 300*time.Millisecond + time.Duration(r.Rand.Int64N(int64(2*time.Second)))
				})
				r.At(clusterFaultsUntil, func() { r.Net.SetAttack(sim.BusAttack{}) })
				// Before the final phase restarts every node on purpose.
				r.At(r.Duration()-time.Millisecond, func() { stayedUp = nodesStayedUp(r) })
			}
			cfg.Check = func(r *sim.Run) []string {
				out := stayedUp
				if st := r.Net.AttackStats(); st.Forged == 0 || st.Replayed == 0 || st.Corrupted == 0 || st.ForeignGroup == 0 {
					out = append(out, "bus attack: some kind of attack frame was never sent: "+attackStatsString(st))
				}
				return out
			}
			return cfg
		},
	})
}

// nodesStayedUp reports every node that went down, restarted or reopened
// a replica.
func nodesStayedUp(r *sim.Run) []string {
	var out []string
	for _, n := range r.Group.Nodes {
		if !n.Up() || n.Starts() != 1 || n.Reopens() != 0 {
			out = append(out, "bus attack: n"+itoa(n.ID())+" did not stay up (up "+boolString(n.Up())+", "+
				itoa(uint64(n.Starts()))+" starts, "+itoa(uint64(n.Reopens()))+" replicas reopened)")
		}
	}
	return out
}

func attackStatsString(st sim.AttackStats) string {
	return "forged " + itoa(uint64(st.Forged)) + ", replayed " + itoa(uint64(st.Replayed)) + ", corrupted " + itoa(uint64(st.Corrupted)) +
		", foreign group " + itoa(uint64(st.ForeignGroup))
}

func boolString(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
