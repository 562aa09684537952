package scenarios

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// The sharded scenarios (docs/simulation.md, "Sharded worlds"): three
// nodes each hosting a replica of every group (sim/shard.go), the
// workload's keys spread over hash tags chosen to land in every group's
// slots and in the ranges the resharder moves, so clients meet MOVED,
// ASK and TRYAGAIN while slots change hands.
const (
	// shardKeysPerTag: plain keys per hash tag (an MGET reads keys of one
	// tag).
	shardKeysPerTag = 2
	// reshardMovesUntil: no move starts after this; faults end at
	// clusterFaultsUntil, so a move started before has several calm
	// seconds to finish before the workload ends.
	reshardMovesUntil = 11 * time.Second
)

// tagsIn picks hash tags whose slots lie in the given ranges, per[i] of
// them in ranges[i]: the first names "t0", "t1", ... that fit.
func tagsIn(ranges []cluster.SlotRange, per []int) []string {
	var tags []string
	for i, rg := range ranges {
		got := 0
		for n := 0; got < per[i]; n++ {
			tag := "t" + strconv.Itoa(n)
			if rg.Contains(cluster.KeySlot([]byte(tag))) && !contains(tags, tag) {
				tags = append(tags, tag)
				got++
			}
		}
	}
	return tags
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// shardBase is clusterBase with groups replica groups and keys tagged
// with tags.
func shardBase(name string, seed uint64, fsync cluster.FsyncPolicy, groups int, tags []string) sim.Config {
	cfg := clusterBase(name, seed, fsync)
	cfg.Group.Groups = groups
	cfg.Workload.KeyPrefix = ""
	cfg.Workload.KeyTags = tags
	cfg.Workload.PlainKeys = shardKeysPerTag * len(tags)
	return cfg
}

// leaderOfSome is the leader of a random group (nil: that group has none
// now).
func leaderOfSome(r *sim.Run) *sim.Node {
	return r.Group.LeaderOf(uint64(1 + r.Rand.IntN(r.Group.Groups())))
}

// shardFault starts one fault on a sharded world and returns how long it
// lasts: a power loss of some group's leader (or a crash mid-I/O), that
// leader cut off from the other nodes (clients still reach it), or with
// oneWay, a link that fails one way.
func shardFault(r *sim.Run, oneWay bool) time.Duration {
	kinds := 2
	if oneWay {
		kinds = 3
	}
	l := leaderOfSome(r)
	switch r.Rand.IntN(kinds) {
	case 0:
		return crashNode(r, l)
	case 1:
		if l != nil {
			r.Fault("partition")
			r.Net.Isolate(l.ID(), r.Group.IDs())
		}
		return 300*time.Millisecond + time.Duration(r.Rand.Int64N(int64(2500*time.Millisecond)))
	default:
		r.Fault("one-way")
		ids := r.Group.IDs()
		switch k := r.Rand.IntN(3); {
		case k == 0 && l != nil: // the leader's messages vanish
			for _, id := range ids {
				if id != l.ID() {
					r.Net.Block(l.ID(), id)
				}
			}
		case k == 1 && l != nil: // the leader hears no one
			for _, id := range ids {
				if id != l.ID() {
					r.Net.Block(id, l.ID())
				}
			}
		default:
			a, b := ids[r.Rand.IntN(len(ids))], ids[r.Rand.IntN(len(ids))]
			if a != b {
				r.Net.Block(a, b)
			}
		}
		return 300*time.Millisecond + time.Duration(r.Rand.Int64N(int64(2500*time.Millisecond)))
	}
}

// movesBackAndForth moves first from group a to group b, then back, then
// again, each after a pause of 0.2–1 s, starting none after
// reshardMovesUntil.
func movesBackAndForth(r *sim.Run, start time.Duration, spec sim.SlotMoveSpec) {
	var move func(from, to uint64)
	move = func(from, to uint64) {
		if time.Duration(r.Now()) >= reshardMovesUntil {
			return
		}
		m := spec
		m.From, m.To = from, to
		r.Group.Reshard(m, func() {
			pause := 200*time.Millisecond + time.Duration(r.Rand.Int64N(int64(800*time.Millisecond)))
			r.At(time.Duration(r.Now())+pause, func() { move(to, from) })
		})
	}
	r.At(start, func() { move(spec.From, spec.To) })
}

// aimedCrash crashes the leader a reshard step was sent to, a few
// milliseconds after one step in reshardAimOneIn, one at a time and
// before clusterFaultsUntil: the step's outcome is then unknown, and the
// resharder must resend it (every step is idempotent).
type aimedCrash struct {
	r      *sim.Run
	active bool
}

const reshardAimOneIn = 10

func (a *aimedCrash) step(group uint64, _ string) { a.aim(group, reshardAimOneIn) }

// aim crashes group's leader a few milliseconds from now, one time in
// oneIn, unless an aimed crash is already running or it is too late.
func (a *aimedCrash) aim(group uint64, oneIn int) {
	r := a.r
	if a.active || r.Rand.IntN(oneIn) != 0 || time.Duration(r.Now()) >= clusterFaultsUntil-clusterDownMax {
		return
	}
	a.active = true
	r.At(time.Duration(r.Now())+time.Duration(r.Rand.Int64N(int64(5*time.Millisecond))), func() {
		d := crashNode(r, r.Group.LeaderOf(group))
		r.At(time.Duration(r.Now())+d, func() { a.active = false })
	})
}

func init() {
	register(&Scenario{
		Name: "cluster-groups",
		Summary: "3 nodes, 3 replica groups (a replica of each on every node), keys spread over all groups' slots; the leader of some group " +
			"loses power or is cut off, again and again; a range moves from group 1 to group 3 and back; appendfsync always",
		Config: func(seed uint64) sim.Config {
			split := cluster.SplitSlots(3)
			g1 := split[0][0]
			moved := cluster.SlotRange{First: g1.First, Last: g1.First + g1.Len()/2 - 1}
			rest := cluster.SlotRange{First: moved.Last + 1, Last: g1.Last}
			tags := tagsIn([]cluster.SlotRange{moved, rest, split[1][0], split[2][0]}, []int{1, 1, 2, 2})
			cfg := shardBase("cluster-groups", seed, cluster.FsyncAlways, 3, tags)
			cfg.Node.FS.TornProb = 0.3
			rng := rand.New(rand.NewPCG(seed, 0x96a3))
			batch := 1 + rng.IntN(4)
			pause := time.Duration(rng.IntN(20)) * time.Millisecond
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, 1200*time.Millisecond, func() time.Duration { return shardFault(r, false) })
				start := 2*time.Second + time.Duration(r.Rand.Int64N(int64(2*time.Second)))
				movesBackAndForth(r, start, sim.SlotMoveSpec{Range: moved, From: 1, To: 3, Batch: batch, StepPause: pause})
			}
			return cfg
		},
	})
	register(&Scenario{
		Name: "cluster-reshard",
		Summary: "3 nodes, 2 replica groups: a slot range holding workload keys moves from group 1 to group 2 and back, again and again, " +
			"under load (MOVED, ASK, TRYAGAIN) while group leaders lose power, are cut off, or lose one direction of a link; appendfsync always",
		Config: func(seed uint64) sim.Config {
			rng := rand.New(rand.NewPCG(seed, 0x5a4d))
			split := cluster.SplitSlots(2)
			g1, g2 := split[0][0], split[1][0]
			// A range inside group 1's slots, of 1–4096 slots.
			width := 1 + rng.IntN(4096)
			first := g1.First + rng.IntN(g1.Len()-width)
			moved := cluster.SlotRange{First: first, Last: first + width - 1}
			var others []cluster.SlotRange
			if moved.First > g1.First {
				others = append(others, cluster.SlotRange{First: g1.First, Last: moved.First - 1})
			} else {
				others = append(others, cluster.SlotRange{First: moved.Last + 1, Last: g1.Last})
			}
			tags := tagsIn([]cluster.SlotRange{moved, others[0], g2}, []int{3, 1, 2})
			cfg := shardBase("cluster-reshard", seed, cluster.FsyncAlways, 2, tags)
			cfg.Node.FS.TornProb = 0.3
			batch := 1 + rng.IntN(4)
			// Half the seeds pace the moves (up to 50 ms a step), so more
			// traffic meets them.
			pause := time.Duration(0)
			if rng.IntN(2) == 0 {
				pause = time.Duration(1+rng.IntN(50)) * time.Millisecond
			}
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, time.Second, func() time.Duration { return shardFault(r, true) })
				start := 1500*time.Millisecond + time.Duration(r.Rand.Int64N(int64(1500*time.Millisecond)))
				aim := &aimedCrash{r: r}
				movesBackAndForth(r, start, sim.SlotMoveSpec{Range: moved, From: 1, To: 2, Batch: batch, StepPause: pause, OnStep: aim.step})
			}
			return cfg
		},
	})
}

// reshardRange draws a range of 1–4096 slots inside group 1's share of a
// two-group split, and a range of group 1's other slots beside it.
func reshardRange(rng *rand.Rand) (moved, other cluster.SlotRange) {
	g1 := cluster.SplitSlots(2)[0][0]
	width := 1 + rng.IntN(4096)
	first := g1.First + rng.IntN(g1.Len()-width)
	moved = cluster.SlotRange{First: first, Last: first + width - 1}
	other = cluster.SlotRange{First: moved.Last + 1, Last: g1.Last}
	if moved.First > g1.First {
		other = cluster.SlotRange{First: g1.First, Last: moved.First - 1}
	}
	return moved, other
}

// ttlKeysPerTag: TTL keys per hash tag in cluster-reshard-ttl.
const ttlKeysPerTag = 2

func init() {
	register(&Scenario{
		Name: "cluster-reshard-ttl",
		Summary: "3 nodes, 2 replica groups: keys always written with a TTL of hours (SET PX, EXPIRE) live in a slot range that moves from group 1 to group 2 " +
			"and back under load while group leaders lose power or are cut off; every PTTL and the final reads must find a TTL on every such key (never -1), " +
			"never later than the latest deadline a write could have set; values linearizable",
		Config: func(seed uint64) sim.Config {
			rng := rand.New(rand.NewPCG(seed, 0x771e))
			moved, other := reshardRange(rng)
			g2 := cluster.SplitSlots(2)[1][0]
			tags := tagsIn([]cluster.SlotRange{moved, other, g2}, []int{3, 1, 1})
			cfg := shardBase("cluster-reshard-ttl", seed, cluster.FsyncAlways, 2, tags)
			cfg.Node.FS.TornProb = 0.3
			cfg.Workload.TTLKeys = ttlKeysPerTag * len(tags)
			batch := 1 + rng.IntN(4)
			pause := time.Duration(rng.IntN(30)) * time.Millisecond
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, time.Second, func() time.Duration { return shardFault(r, false) })
				start := 1500*time.Millisecond + time.Duration(r.Rand.Int64N(int64(1500*time.Millisecond)))
				aim := &aimedCrash{r: r}
				movesBackAndForth(r, start, sim.SlotMoveSpec{Range: moved, From: 1, To: 2, Batch: batch, StepPause: pause, OnStep: aim.step})
			}
			return cfg
		},
	})
}

// The sharded membership scenario's timeline: n4 starts with --join (a
// replica of each group, with Join) between 2 and 3 s; the admin adds it
// to group 1 then group 2 0.2–1 s later, and 0.5–2 s after both were
// acknowledged removes a founding member from both (n3, or half the time
// the leader of some group), which is stopped 0–0.5 s after its removal
// from the last group was acknowledged. Half the times the admin starts
// on a group, that group's leader crashes a few milliseconds later, so
// the change's outcome is unknown and it is retried.
const groupsAdminAimOneIn = 2

func init() {
	register(&Scenario{
		Name: "cluster-groups-membership",
		Summary: "3 nodes + a joiner, 2 replica groups: n4 joins (a replica of each group with --join) and is added to both groups " +
			"(CLUSTER ADDNODE at each group's leader), then n3 or some group's leader is removed from both (CLUSTER DELNODE) and stopped, " +
			"while a slot range moves between the groups under load and group leaders lose power; each group's final voters must be the expected ones; appendfsync always",
		Config: func(seed uint64) sim.Config {
			rng := rand.New(rand.NewPCG(seed, 0x6d3b))
			split := cluster.SplitSlots(2)
			g1, g2 := split[0][0], split[1][0]
			width := 1 + rng.IntN(4096)
			first := g1.First + rng.IntN(g1.Len()-width)
			moved := cluster.SlotRange{First: first, Last: first + width - 1}
			other := cluster.SlotRange{First: moved.Last + 1, Last: g1.Last}
			if moved.First > g1.First {
				other = cluster.SlotRange{First: g1.First, Last: moved.First - 1}
			}
			tags := tagsIn([]cluster.SlotRange{moved, other, g2}, []int{2, 1, 2})
			cfg := shardBase("cluster-groups-membership", seed, cluster.FsyncAlways, 2, tags)
			cfg.Node.FS.TornProb = 0.3
			cfg.Group.Joiners = 1
			cfg.Group.Clocks = append(cfg.Group.Clocks, sim.ClockConfig{
				Skew: time.Duration(rng.Int64N(int64(time.Second))), DriftPPM: rng.Int64N(201) - 100,
			})
			batch := 1 + rng.IntN(4)
			pause := time.Duration(rng.IntN(30)) * time.Millisecond
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, 1500*time.Millisecond, func() time.Duration { return crashNode(r, leaderOfSome(r)) })
				aim := &aimedCrash{r: r}
				start := 1500*time.Millisecond + time.Duration(r.Rand.Int64N(int64(1500*time.Millisecond)))
				movesBackAndForth(r, start, sim.SlotMoveSpec{Range: moved, From: 1, To: 2, Batch: batch, StepPause: pause, OnStep: aim.step})
				groupsMembership(r, aim)
			}
			return cfg
		},
	})
}

func groupsMembership(r *sim.Run, aim *aimedCrash) {
	g := r.Group
	g.AdminStep = func(group uint64) { aim.aim(group, groupsAdminAimOneIn) }
	joinAt := membershipJoinFrom + time.Duration(r.Rand.Int64N(int64(time.Second)))
	r.At(joinAt, func() {
		r.Trace("start n" + itoa(membershipJoiner) + " (join)")
		g.StartJoiner(membershipJoiner)
	})
	addAt := joinAt + 200*time.Millisecond + time.Duration(r.Rand.Int64N(int64(800*time.Millisecond)))
	r.At(addAt, func() {
		g.Admin([]string{"CLUSTER", "ADDNODE", itoa(membershipJoiner), sim.NodeAddr(membershipJoiner)}, func() {
			d := 500*time.Millisecond + time.Duration(r.Rand.Int64N(int64(1500*time.Millisecond)))
			r.At(time.Duration(r.Now())+d, func() {
				victim := uint64(clusterNodes)
				if l := leaderOfSome(r); l != nil && l.ID() <= clusterNodes && r.Rand.IntN(2) == 0 {
					victim = l.ID()
				}
				g.Admin([]string{"CLUSTER", "DELNODE", itoa(victim)}, func() {
					d := time.Duration(r.Rand.Int64N(int64(500 * time.Millisecond)))
					r.At(time.Duration(r.Now())+d, func() { g.Node(victim).Stop() })
				})
			})
		})
	})
}

// fcallGroupsAccountsPerTag: each hash tag is one bank of this many
// accounts (transfers stay within a tag: a call's keys share a slot).
const fcallGroupsAccountsPerTag = 3

func init() {
	register(&Scenario{
		Name: "cluster-fcall-groups",
		Summary: "3 nodes, 2 or 3 replica groups: WASM bank transfers (FCALL) in banks under several hash tags, so in several groups; the library is loaded " +
			"through every node and again wherever a call finds it missing; a bank's slot range moves between groups and back under load while group " +
			"leaders lose power; bank model over every account",
		Config: func(seed uint64) sim.Config {
			rng := rand.New(rand.NewPCG(seed, 0xfc9a))
			groups := 2 + rng.IntN(2)
			split := cluster.SplitSlots(groups)
			g1 := split[0][0]
			width := 1 + rng.IntN(2048)
			first := g1.First + rng.IntN(g1.Len()-width)
			moved := cluster.SlotRange{First: first, Last: first + width - 1}
			other := cluster.SlotRange{First: moved.Last + 1, Last: g1.Last}
			if moved.First > g1.First {
				other = cluster.SlotRange{First: g1.First, Last: moved.First - 1}
			}
			ranges := []cluster.SlotRange{moved, other}
			per := []int{1, 1}
			for g := 1; g < groups; g++ {
				ranges = append(ranges, split[g][0])
				per = append(per, 1)
			}
			tags := tagsIn(ranges, per)
			cfg := shardBase("cluster-fcall-groups", seed, cluster.FsyncAlways, groups, tags)
			cfg.Node.FS.TornProb = 0.3
			cfg.Workload.Clients = 4
			cfg.Workload.PlainKeys = fcallGroupsAccountsPerTag * len(tags)
			cfg.Workload.Bank = &sim.BankConfig{
				Library: "#!wasm name=bank\n" + string(transferWasm), Opening: fcallOpening, AmountMax: fcallAmountMax,
			}
			cfg.Group.FollowerReadPct = 0
			// The bank model's state is every account: keep the history
			// small enough to check without deadlines.
			cfg.Workload.Think = 100 * time.Millisecond
			batch := 1 + rng.IntN(3)
			pause := time.Duration(rng.IntN(30)) * time.Millisecond
			to := uint64(2 + rng.IntN(groups-1))
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, 1500*time.Millisecond, func() time.Duration { return crashNode(r, leaderOfSome(r)) })
				start := 2*time.Second + time.Duration(r.Rand.Int64N(int64(1500*time.Millisecond)))
				aim := &aimedCrash{r: r}
				movesBackAndForth(r, start, sim.SlotMoveSpec{Range: moved, From: 1, To: to, Batch: batch, StepPause: pause, OnStep: aim.step})
			}
			return cfg
		},
	})
}
