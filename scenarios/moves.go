package scenarios

import (
	"slices"
	"strings"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// Moves (docs/cluster.md, "Moves"): placed worlds whose placement changes
// online. The admin changes the meta record (CLUSTER ADDNODE/DELNODE
// through group 1's leader) while clients write and faults fly; the
// nodes move replicas on their own, one group at a time (add a learner,
// promote it once caught up, remove the old replica). At the end the
// moves must be finished, the final record balanced with every group on
// 3 distinct active nodes, every group's voters its target, no other
// node holding a replica, and every replica holding exactly its group's
// keys (sim/moves.go).

const (
	movesDuration    = 30 * time.Second
	movesFaultsUntil = 14 * time.Second
)

// movesBase is the placed world with joiners and moves on.
func movesBase(name string, seed uint64, joiners int) sim.Config {
	cfg := placementBase(name, seed)
	cfg.Group.Joiners = joiners
	cfg.Group.Moves = true
	cfg.Duration = movesDuration
	cfg.Group.FinalWithin = 40 * time.Second
	return cfg
}

// movesFaults runs placementFault cycles from 2 s until movesFaultsUntil.
func movesFaults(r *sim.Run) {
	var next func()
	next = func() {
		if time.Duration(r.Now()) >= movesFaultsUntil {
			return
		}
		d := min(placementFault(r), movesFaultsUntil-time.Duration(r.Now()))
		r.At(time.Duration(r.Now())+d, func() {
			r.Group.HealAll()
			r.At(time.Duration(r.Now())+time.Second, next)
		})
	}
	r.At(2*time.Second, next)
}

func init() {
	register(&Scenario{
		Name: "cluster-grow",
		Summary: "6 nodes, 6 groups of 3 replicas; a 7th node joins (CLUSTER ADDNODE changes the meta record) and replicas move onto it one " +
			"group at a time while clients write, nodes lose power, are cut off or the cluster splits, and the meta group's leader loses " +
			"power in the middle of the first move; at the end the moves are done, " +
			"the record balanced, every group on 3 distinct live nodes and no node holds a dropped replica; appendfsync always",
		Config: func(seed uint64) sim.Config {
			cfg := movesBase("cluster-grow", seed, 1)
			cfg.Schedule = func(r *sim.Run) {
				r.At(time.Second, func() { r.Group.StartJoiner(7) })
				r.At(1500*time.Millisecond, func() { r.Group.Admin([]string{"CLUSTER", "ADDNODE", "7", sim.NodeAddr(7)}, nil) })
				// The meta group's leader loses power while the first
				// move is under way (it is decided about 1 s after the
				// ADDNODE applies, a configuration change a second).
				r.At(3500*time.Millisecond+time.Duration(r.Rand.Int64N(int64(1500*time.Millisecond))), func() {
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

// movesBaseNodes is movesBase on nodes founding nodes (each its own
// skewed, drifting clock, as placementBase gives six).
func movesBaseNodes(name string, seed uint64, nodes int) sim.Config {
	cfg := movesBase(name, seed, 0)
	for len(cfg.Group.Clocks) < nodes {
		cfg.Group.Clocks = append(cfg.Group.Clocks, cfg.Group.Clocks[len(cfg.Group.Clocks)%placementNodes])
	}
	cfg.Group.Nodes = nodes
	return cfg
}

func init() {
	register(&Scenario{
		Name: "cluster-decommission",
		Summary: "7 nodes, 6 groups of 3 replicas; a node is decommissioned (CLUSTER DELNODE): its replicas move away one group at a time " +
			"under load, power losses, cut-offs and splits, then it leaves the meta record; at the end it holds no replica, the record is " +
			"balanced, every group on 3 distinct live nodes; appendfsync always",
		Config: func(seed uint64) sim.Config {
			cfg := movesBaseNodes("cluster-decommission", seed, 7)
			cfg.Schedule = func(r *sim.Run) {
				victim := uint64(1 + r.Rand.IntN(7))
				r.At(1500*time.Millisecond, func() {
					r.Group.Admin([]string{"CLUSTER", "DELNODE", itoa(victim)}, nil)
				})
				movesFaults(r)
			}
			return cfg
		},
	})
	register(&Scenario{
		Name: "cluster-rereplicate",
		Summary: "7 nodes, 6 groups of 3 replicas; a node stops for good; once unheard for --node-dead-after (8 s here) the meta leader marks " +
			"it dead and its groups get a new third replica each, one at a time, under load and faults; at the end every group is back " +
			"on 3 distinct live nodes, the record balanced; appendfsync always",
		Config: func(seed uint64) sim.Config {
			cfg := movesBaseNodes("cluster-rereplicate", seed, 7)
			cfg.Group.NodeDeadAfter = 8 * time.Second
			cfg.Schedule = func(r *sim.Run) {
				victim := uint64(1 + r.Rand.IntN(7))
				r.At(1500*time.Millisecond, func() { r.Group.Node(victim).Stop() })
				movesFaults(r)
			}
			return cfg
		},
	})
}

// deadViewCutUntil: how long the meta group's nodes stay cut off from
// one node in cluster-dead-view, well past its node-dead-after.
const deadViewCutUntil = 18 * time.Second

func init() {
	register(&Scenario{
		Name: "cluster-dead-view",
		Summary: "7 nodes, 6 groups of 3 replicas, --node-dead-after 8 s; one node outside the meta group is cut off from every node of " +
			"group 1 (so from any meta leader) for 16 s while the other nodes still hear it, under load and power losses of other " +
			"nodes; the meta leader must not mark it dead: at the end every member is active and the record unchanged; meanwhile ACL " +
			"SETUSER alice, SETUSER bob and DELUSER alice through group 1, and before the end every node's users are the table's; appendfsync always",
		Config: func(seed uint64) sim.Config {
			cfg := movesBaseNodes("cluster-dead-view", seed, 7)
			cfg.Group.NodeDeadAfter = 8 * time.Second
			// Twice the keys of the other placed worlds: writes to a group
			// whose leader is the cut-off node time out for 16 s, and a
			// replicated write that timed out has no deadline, so one key
			// could gather 17 such unknown outcomes among ~800 operations,
			// beyond what the checker proves in CheckTimeoutLong
			// (seed 9265). Spreading them over twice the keys keeps the
			// check exhaustive and within its time.
			cfg.Workload.PlainKeys *= 2
			var cutOff uint64
			var aclDone bool
			var aclWrong []string
			cfg.Schedule = func(r *sim.Run) {
				// Group 1's nodes as the bootstrap record places them.
				p, err := cluster.Place(r.Group.IDs(), cfg.Group.Groups, cfg.Group.Replicas)
				if err != nil {
					panic(err)
				}
				meta := p.Of(1)
				var others []uint64
				for _, id := range r.Group.IDs() {
					if !slices.Contains(meta, id) {
						others = append(others, id)
					}
				}
				cutOff = others[r.Rand.IntN(len(others))]
				r.At(1500*time.Millisecond, func() {
					r.Fault("partition")
					for _, m := range meta {
						r.Net.Block(cutOff, m)
						r.Net.Block(m, cutOff)
					}
				})
				r.At(deadViewCutUntil, func() { r.Group.HealAll() })
				// ACL changes go through group 1's log; the nodes outside
				// it learn the table over the bus (node/acl_bus.go), the
				// cut-off one only after the heal.
				r.At(2500*time.Millisecond, func() {
					r.Group.Admin([]string{"ACL", "SETUSER", "alice", "on", "nopass", "~*", "+@all"}, func() {
						r.At(max(time.Duration(r.Now()), deadViewCutUntil+2*time.Second), func() {
							r.Group.Admin([]string{"ACL", "SETUSER", "bob", "on", "nopass", "~b*", "+get"}, func() {
								r.Group.Admin([]string{"ACL", "DELUSER", "alice"}, func() { aclDone = true })
							})
						})
					})
				})
				// Read before the world's final restarts, which make every
				// node learn the table afresh.
				r.At(movesDuration-time.Second, func() {
					if !aclDone {
						return // the admin's own check reports it
					}
					for _, id := range r.Group.IDs() {
						if users := r.Group.ACLUsers(id); users != nil && strings.Join(users, ",") != "bob,default" {
							aclWrong = append(aclWrong, "node "+itoa(id)+"'s ACL users are "+strings.Join(users, ",")+
								" at the end of the workload, want bob,default (ACL SETUSER alice, SETUSER bob, DELUSER alice, each acknowledged)")
						}
					}
				})
				// Power losses of nodes other than the cut-off one (a
				// meta leader among them) keep the meta leadership and
				// the reporters changing, each back within seconds.
				var next func()
				next = func() {
					if time.Duration(r.Now()) >= movesFaultsUntil {
						return
					}
					ids := slices.DeleteFunc(slices.Clone(r.Group.IDs()), func(id uint64) bool { return id == cutOff })
					d := crashNode(r, r.Group.Node(ids[r.Rand.IntN(len(ids))]))
					r.At(time.Duration(r.Now())+d+time.Second, next)
				}
				r.At(2*time.Second, next)
			}
			cfg.Check = func(r *sim.Run) []string {
				rec, ok := r.Group.MetaRecord()
				if !ok {
					return []string{"no meta leader at the end"}
				}
				out := aclWrong
				for _, m := range rec.Members {
					if m.State != cluster.MemberActive {
						out = append(out, "node "+itoa(m.ID)+" is "+m.State.String()+" in the final meta record (version "+
							itoa(rec.Version)+"); node "+itoa(cutOff)+" was cut off from group 1's nodes only, heard by the others")
					}
				}
				return out
			}
			return cfg
		},
	})
}
