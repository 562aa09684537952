package scenarios

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// The replicated-group scenarios: three voters of one Raft group (the
// real cluster.Replica on its own simulated disk and clock), ten clients
// routing like go-redis's ClusterClient (sim/groupclient.go). Faults run
// from clusterFaultsFrom to clusterFaultsUntil, then everything heals and
// writes must be acknowledged again within clusterLiveness; after the
// workload every node restarts and every key is read on the leader
// (sim/group.go). docs/simulation.md, "Replicated groups".
const (
	clusterNodes    = 3
	clusterDuration = 16 * time.Second
	// The first election takes 1–2 s; faults start after it.
	clusterFaultsFrom  = 1500 * time.Millisecond
	clusterFaultsUntil = 8 * time.Second
	clusterLiveness    = 5 * time.Second
	clusterTick        = 100 * time.Millisecond
	// clusterDownMax bounds how long a scenario keeps a node down, so
	// every node is back well before the liveness window must close.
	clusterDownMax = 2500 * time.Millisecond
	// followerStaleBound is the staleness rule for READONLY follower
	// reads: a follower serves only within 1 s of hearing from a leader
	// (cluster's followerStaleMax), a deposed leader may keep sending
	// heartbeats for up to two election timeouts (2 s) before CheckQuorum
	// retires it, plus slack for drifting clocks and delayed messages.
	followerStaleBound = 5 * time.Second
)

// clusterBase is the replicated world every cluster scenario starts from.
func clusterBase(name string, seed uint64, fsync cluster.FsyncPolicy) sim.Config {
	cfg := base(name, seed, fsync)
	cfg.Duration = clusterDuration
	cfg.FinalCrash = false // the group's final phase restarts every node itself
	cfg.Durability = sim.Durability{Kind: "always"}
	cfg.Node.TickEvery = clusterTick
	cfg.Net = sim.NetConfig{DelayMin: 100 * time.Microsecond, DelayJitter: 300 * time.Microsecond, LossProb: 0.01, DupProb: 0.01}
	cfg.Workload.VolatileKeys = 0 // the kv model has no clocks, and no oracle follows a group
	cfg.Workload.KeyPrefix = "{g}"
	cfg.Workload.Think = 20 * time.Millisecond
	cfg.Workload.Timeout = time.Second
	rng := rand.New(rand.NewPCG(seed, 0xc105))
	clocks := make([]sim.ClockConfig, clusterNodes)
	for i := range clocks {
		clocks[i] = sim.ClockConfig{Skew: time.Duration(rng.Int64N(int64(time.Second))), DriftPPM: rng.Int64N(201) - 100}
	}
	cfg.Group = &sim.GroupConfig{
		Nodes: clusterNodes, Clocks: clocks,
		FollowerReadPct: 5, StaleBound: followerStaleBound,
		LivenessWithin: clusterLiveness, FinalWithin: 20 * time.Second,
		FinalPowerLoss: fsync == cluster.FsyncAlways,
	}
	return cfg
}

// clusterPolicy: appendfsync always or everysec by seed, for scenarios
// without crashes (a minority's power loss could lose everysec writes the
// majority acknowledged; nothing here cuts power before the final
// restart, which is then a process restart).
func clusterPolicy(seed uint64) cluster.FsyncPolicy {
	if seed%2 == 0 {
		return cluster.FsyncEverySec
	}
	return cluster.FsyncAlways
}

// faultCycles runs fault after fault from clusterFaultsFrom: each call of
// f starts one and returns how long it lasts; then the network heals and
// disk faults clear, a pause of about gap follows, and the next one
// starts, until clusterFaultsUntil, when everything heals for good.
func faultCycles(r *sim.Run, gap time.Duration, f func() time.Duration) {
	var next func()
	next = func() {
		if time.Duration(r.Now()) >= clusterFaultsUntil {
			return
		}
		d := min(f(), clusterFaultsUntil-time.Duration(r.Now()))
		r.At(time.Duration(r.Now())+d, func() {
			r.Net.Heal()
			for _, n := range r.Group.Nodes {
				n.FS.SetFaults(sim.DiskFaults{})
				n.FS.SetBallast(0)
			}
			r.At(time.Duration(r.Now())+time.Duration(r.Rand.ExpFloat64()*float64(gap)), next)
		})
	}
	r.At(clusterFaultsFrom, next)
	r.At(clusterFaultsUntil, r.Group.HealAll)
}

// downFor draws how long a crashed node stays down.
func downFor(r *sim.Run) time.Duration {
	return 200*time.Millisecond + time.Duration(r.Rand.Int64N(int64(clusterDownMax-200*time.Millisecond)))
}

// crashNode cuts n's power for a while, or crashes it in the middle of one
// of its next 20 disk operations (it then restarts at once).
func crashNode(r *sim.Run, n *sim.Node) time.Duration {
	if n == nil {
		return 100 * time.Millisecond
	}
	if r.Rand.IntN(3) == 0 {
		n.CrashDuringIO(1 + r.Rand.Int64N(20))
		return 500 * time.Millisecond
	}
	d := downFor(r)
	n.PowerOffFor(d)
	return d
}

func randomFollower(r *sim.Run) *sim.Node {
	fs := r.Group.Followers()
	return fs[r.Rand.IntN(len(fs))]
}

func nodeIDs(ns []*sim.Node) []uint64 {
	out := make([]uint64, len(ns))
	for i, n := range ns {
		out[i] = n.ID()
	}
	return out
}

func init() {
	register(&Scenario{
		Name:    "cluster-leader-crash",
		Summary: "3-node group: the leader loses power (or crashes mid-I/O, torn) again and again; appendfsync always; failover, no acknowledged write lost, linearizable",
		Config: func(seed uint64) sim.Config {
			cfg := clusterBase("cluster-leader-crash", seed, cluster.FsyncAlways)
			cfg.Node.FS.TornProb = 0.3
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, 1500*time.Millisecond, func() time.Duration { return crashNode(r, r.Group.Leader()) })
			}
			return cfg
		},
	})
	register(&Scenario{
		Name:    "cluster-follower-crash",
		Summary: "3-node group: a follower loses power (or crashes mid-I/O, torn) again and again and catches up (log or snapshot); appendfsync always",
		Config: func(seed uint64) sim.Config {
			cfg := clusterBase("cluster-follower-crash", seed, cluster.FsyncAlways)
			cfg.Node.FS.TornProb = 0.3
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, time.Second, func() time.Duration { return crashNode(r, randomFollower(r)) })
			}
			return cfg
		},
	})
	register(&Scenario{
		Name:    "cluster-leader-partition",
		Summary: "3-node group: the leader is cut off from both followers (clients still reach it) and healed; it must step down, the majority elects, clients follow MOVED",
		Config: func(seed uint64) sim.Config {
			cfg := clusterBase("cluster-leader-partition", seed, clusterPolicy(seed))
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, time.Second, func() time.Duration {
					if l := r.Group.Leader(); l != nil {
						r.Fault("partition")
						r.Net.Partition([]uint64{l.ID()}, nodeIDs(r.Group.Followers()))
					}
					return 500*time.Millisecond + time.Duration(r.Rand.Int64N(int64(3*time.Second)))
				})
			}
			return cfg
		},
	})
	register(&Scenario{
		Name:    "cluster-one-way",
		Summary: "3-node group: one-way partitions (the leader cannot send, or cannot hear, or one link one way) and heals",
		Config: func(seed uint64) sim.Config {
			cfg := clusterBase("cluster-one-way", seed, clusterPolicy(seed))
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, time.Second, func() time.Duration {
					r.Fault("one-way")
					ids := r.Group.IDs()
					l := r.Group.Leader()
					switch k := r.Rand.IntN(3); {
					case k == 0 && l != nil: // the leader's messages vanish
						for _, f := range r.Group.Followers() {
							r.Net.Block(l.ID(), f.ID())
						}
					case k == 1 && l != nil: // the leader hears no one
						for _, f := range r.Group.Followers() {
							r.Net.Block(f.ID(), l.ID())
						}
					default:
						a := ids[r.Rand.IntN(len(ids))]
						b := ids[r.Rand.IntN(len(ids))]
						if a != b {
							r.Net.Block(a, b)
						}
					}
					return 300*time.Millisecond + time.Duration(r.Rand.Int64N(int64(3*time.Second)))
				})
			}
			return cfg
		},
	})
	register(&Scenario{
		Name:    "cluster-flapping",
		Summary: "3-node group: node-to-node links go down and up every few hundred ms (5% loss, duplicates); elections under churn",
		Config: func(seed uint64) sim.Config {
			cfg := clusterBase("cluster-flapping", seed, clusterPolicy(seed))
			cfg.Net.LossProb, cfg.Net.DupProb = 0.05, 0.03
			cfg.Net.DelayJitter = 2 * time.Millisecond
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, 200*time.Millisecond, func() time.Duration {
					r.Fault("flap")
					ids := r.Group.IDs()
					a := ids[r.Rand.IntN(len(ids))]
					for _, b := range ids {
						if b != a && r.Rand.IntN(2) == 0 {
							r.Net.Partition([]uint64{a}, []uint64{b})
						}
					}
					return time.Duration(50+r.Rand.IntN(500)) * time.Millisecond
				})
			}
			return cfg
		},
	})
	register(&Scenario{
		Name:    "cluster-clock-skew",
		Summary: "3-node group: clocks hours apart drifting ±5%, forward NTP steps, GC-like pauses of the leader longer than an election; ReadIndex reads stay linearizable",
		Config: func(seed uint64) sim.Config {
			cfg := clusterBase("cluster-clock-skew", seed, clusterPolicy(seed))
			rng := rand.New(rand.NewPCG(seed, 0x5ce7))
			for i := range cfg.Group.Clocks {
				cfg.Group.Clocks[i] = sim.ClockConfig{Skew: time.Duration(rng.Int64N(int64(4 * time.Hour))), DriftPPM: rng.Int64N(100_001) - 50_000}
			}
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, 700*time.Millisecond, func() time.Duration {
					if r.Rand.IntN(2) == 0 {
						n := r.Group.Nodes[r.Rand.IntN(len(r.Group.Nodes))]
						d := time.Duration(r.Rand.Int64N(int64(3 * time.Second)))
						r.Trace("clock step n" + itoa(n.ID()) + " +" + d.String())
						r.Fault("clock-step")
						n.Clock.Step(d)
						return 10 * time.Millisecond
					}
					l := r.Group.Leader()
					if l == nil {
						return 100 * time.Millisecond
					}
					d := 200*time.Millisecond + time.Duration(r.Rand.Int64N(int64(3*time.Second)))
					l.Pause(d)
					return d
				})
			}
			return cfg
		},
	})
	register(&Scenario{
		Name:    "cluster-disk-faults",
		Summary: "3-node group: one replica's disk at a time (the leader's or a fixed one's) fails fsyncs (fsyncgate) and writes, fills up (ENOSPC), tears unsynced sectors at power loss; the others carry on",
		Config: func(seed uint64) sim.Config {
			cfg := clusterBase("cluster-disk-faults", seed, cluster.FsyncAlways)
			cfg.Node.FS.TornProb = 0.5
			cfg.Node.FS.Capacity = 64 << 20
			cfg.Schedule = func(r *sim.Run) {
				fixed := r.Group.Nodes[r.Rand.IntN(len(r.Group.Nodes))]
				faultCycles(r, 700*time.Millisecond, func() time.Duration {
					// Half the time the leader's disk (so writes it
					// proposed meet the fault), else one fixed replica's.
					victim := fixed
					if l := r.Group.Leader(); l != nil && r.Rand.IntN(2) == 0 {
						victim = l
					}
					r.Trace("disk faults on n" + itoa(victim.ID()))
					d := time.Duration(100+r.Rand.IntN(700)) * time.Millisecond
					switch r.Rand.IntN(3) {
					case 0:
						r.Fault("disk-errors")
						victim.FS.SetFaults(sim.DiskFaults{Kinds: sim.KindWAL | sim.KindSnapshot, SyncErrProb: 0.2, WriteErrProb: 0.02})
					case 1:
						r.Fault("disk-full")
						victim.FS.SetBallast(64<<20 - victim.FS.Used() + r.Rand.Int64N(2048))
					default:
						return crashNode(r, victim)
					}
					return d
				})
			}
			return cfg
		},
	})
	register(&Scenario{
		Name:    "cluster-rolling-restart",
		Summary: "3-node group: every node restarted in turn (process restart or power loss), twice over, under load; appendfsync always",
		Config: func(seed uint64) sim.Config {
			cfg := clusterBase("cluster-rolling-restart", seed, cluster.FsyncAlways)
			cfg.Node.FS.TornProb = 0.3
			cfg.Schedule = func(r *sim.Run) {
				next := r.Rand.IntN(clusterNodes)
				faultCycles(r, 1200*time.Millisecond, func() time.Duration {
					n := r.Group.Nodes[next%clusterNodes]
					next++
					if r.Rand.IntN(2) == 0 {
						n.Restart()
					} else {
						n.PowerOffFor(time.Duration(50+r.Rand.IntN(500)) * time.Millisecond)
					}
					return 600 * time.Millisecond
				})
			}
			return cfg
		},
	})
}

// clusterBank is a bank workload (sim/bank.go) on the replicated group,
// with a leader or a follower losing power again and again. (The MULTI
// variant is not registered: without deadlines for unknown outcomes its
// bank-model check needs 10–20 s per seed, beyond CheckTimeout.)
func clusterBank(name string, seed uint64, clients, accounts int, bank *sim.BankConfig) sim.Config {
	cfg := clusterBase(name, seed, cluster.FsyncAlways)
	cfg.Node.FS.TornProb = 0.3
	cfg.Workload.Clients = clients
	cfg.Workload.PlainKeys = accounts
	cfg.Workload.KeyPrefix = "{bank}" // one hash tag: a transfer touches two accounts, which a cluster serves only within one slot
	cfg.Workload.Bank = bank
	cfg.Group.FollowerReadPct = 0
	// The bank model's state is the whole account map: keep the history
	// small enough to check without deadlines (sim/group.go).
	cfg.Workload.Think = 100 * time.Millisecond
	cfg.Schedule = func(r *sim.Run) {
		faultCycles(r, 1500*time.Millisecond, func() time.Duration {
			if r.Rand.IntN(2) == 0 {
				return crashNode(r, r.Group.Leader())
			}
			return crashNode(r, randomFollower(r))
		})
	}
	return cfg
}

func init() {
	register(&Scenario{
		Name:    "cluster-fcall",
		Summary: "3-node group: bank transfers as WASM functions (FCALL, run only when the group is quiescent) while the leader or a follower loses power",
		Config: func(seed uint64) sim.Config {
			return clusterBank("cluster-fcall", seed, 4, fcallAccounts, &sim.BankConfig{
				Library:   "#!wasm name=bank\n" + string(transferWasm),
				Opening:   fcallOpening,
				AmountMax: fcallAmountMax,
			})
		},
	})
}

func init() {
	register(&Scenario{
		Name: "cluster-bank-watch",
		Summary: "3-node group: bank transfers as WATCH-retry loops through real sessions (WATCH the payer and read it, MULTI INCRBY INCRBY EXEC on the same connection, " +
			"start over on a null EXEC or a lost connection; no overdraft) while the leader or a follower loses power; bank model",
		Config: func(seed uint64) sim.Config {
			return clusterBank("cluster-bank-watch", seed, 4, bankAccounts, &sim.BankConfig{
				Multi: true, Watch: true, Opening: bankOpening, AmountMax: bankAmountMax,
			})
		},
	})
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// The membership scenario's timeline (issue 9): n4 starts with --join
// between 2 and 3 s, the admin adds it 0.2–1 s later, and 0.5–2 s after
// that removes a founding member (half the time the leader), which is
// stopped 0–0.5 s after its removal was acknowledged. Faults, when the
// seed has them, hit one node at a time between the join and
// clusterFaultsUntil.
const (
	membershipJoinFrom   = 2 * time.Second
	membershipJoiner     = clusterNodes + 1
	membershipFaultsSpan = 4 * time.Second
)

func init() {
	register(&Scenario{
		Name: "cluster-membership",
		Summary: "3-node group under load: n4 joins (--join, CLUSTER ADDNODE at the leader), then a founding member (sometimes the leader) is removed " +
			"(CLUSTER DELNODE) and stopped; some seeds crash or partition one node during the change; final voters must be exactly the expected ones",
		Config: func(seed uint64) sim.Config {
			rng := rand.New(rand.NewPCG(seed, 0x3e3b))
			fault := rng.IntN(3) // 0 none, 1 crashes, 2 partitions
			fsync := clusterPolicy(seed)
			if fault == 1 {
				fsync = cluster.FsyncAlways // a power loss must not lose acknowledged writes
			}
			cfg := clusterBase("cluster-membership", seed, fsync)
			cfg.Node.FS.TornProb = 0.3
			cfg.Group.Joiners = 1
			cfg.Group.Clocks = append(cfg.Group.Clocks, sim.ClockConfig{
				Skew: time.Duration(rng.Int64N(int64(time.Second))), DriftPPM: rng.Int64N(201) - 100,
			})
			cfg.Schedule = func(r *sim.Run) { membershipSchedule(r, fault) }
			return cfg
		},
	})
}

func membershipSchedule(r *sim.Run, fault int) {
	g := r.Group
	f := &oneFault{r: r, kind: fault}
	joinAt := membershipJoinFrom + time.Duration(r.Rand.Int64N(int64(time.Second)))
	r.At(joinAt, func() {
		r.Trace("start n" + itoa(membershipJoiner) + " (join)")
		g.StartJoiner(membershipJoiner)
	})
	addAt := joinAt + 200*time.Millisecond + time.Duration(r.Rand.Int64N(int64(800*time.Millisecond)))
	r.At(addAt, func() {
		g.Admin([]string{"CLUSTER", "ADDNODE", itoa(membershipJoiner), sim.NodeAddr(membershipJoiner)}, func() {
			d := 500*time.Millisecond + time.Duration(r.Rand.Int64N(int64(1500*time.Millisecond)))
			r.At(time.Duration(r.Now())+d, func() { removeFounder(r, f) })
		})
		f.aimAtChange()
	})
	if fault != 0 {
		// Faults at random moments from the join on, one at a time.
		var next func()
		next = func() {
			if !f.active {
				f.hit(nil)
			}
			r.At(time.Duration(r.Now())+300*time.Millisecond+time.Duration(r.Rand.Int64N(int64(1500*time.Millisecond))), next)
		}
		r.At(joinAt+time.Duration(r.Rand.Int64N(int64(membershipFaultsSpan/4))), next)
	}
	r.At(clusterFaultsUntil, g.HealAll)
}

// oneFault injects the membership scenario's faults, one at a time, so a
// majority of every configuration stays up: kind 1 crashes a node (power
// loss or a crash mid-I/O), kind 2 cuts one node off from the others
// (clients still reach it); 0 injects nothing.
type oneFault struct {
	r      *sim.Run
	kind   int
	active bool
}

// aimAtChange, half the time, hits the leader (or a random node) a few
// milliseconds after a membership change was sent: its outcome may then
// be unknown, and the admin must retry and accept "already a member" /
// "is not a member".
func (f *oneFault) aimAtChange() {
	if f.kind == 0 || f.r.Rand.IntN(2) == 0 {
		return
	}
	f.r.At(time.Duration(f.r.Now())+time.Duration(f.r.Rand.Int64N(int64(5*time.Millisecond))), func() {
		if !f.active {
			f.hit(f.r.Group.Leader())
		}
	})
}

// hit faults victim (nil: a random node that is up, a third of the time
// the leader) until a heal 0.3–2.5 s later; nothing after
// clusterFaultsUntil-300ms.
func (f *oneFault) hit(victim *sim.Node) {
	r, g := f.r, f.r.Group
	if f.kind == 0 || time.Duration(r.Now()) >= clusterFaultsUntil-300*time.Millisecond {
		return
	}
	if victim == nil {
		var live []*sim.Node
		for _, n := range g.Nodes {
			if n.Up() {
				live = append(live, n)
			}
		}
		if len(live) == 0 {
			return
		}
		victim = live[r.Rand.IntN(len(live))]
		if l := g.Leader(); l != nil && r.Rand.IntN(3) == 0 {
			victim = l
		}
	}
	if !victim.Up() {
		return
	}
	var d time.Duration
	if f.kind == 1 {
		d = crashNode(r, victim)
	} else {
		r.Fault("partition")
		r.Net.Isolate(victim.ID(), g.IDs())
		d = 300*time.Millisecond + time.Duration(r.Rand.Int64N(int64(2200*time.Millisecond)))
	}
	d = min(d, clusterFaultsUntil-time.Duration(r.Now()))
	f.active = true
	r.At(time.Duration(r.Now())+d, func() {
		// A crash point the victim did not reach (it wrote nothing) is
		// disarmed: it must not fire long after, outside the fault window.
		victim.FS.CrashAfter(0)
		r.Net.Heal()
		f.active = false
	})
}

// removeFounder removes a founding member, half the time the leader, and
// stops it once the removal is acknowledged.
func removeFounder(r *sim.Run, f *oneFault) {
	g := r.Group
	var founders []uint64
	for _, id := range g.Members() {
		if id <= clusterNodes {
			founders = append(founders, id)
		}
	}
	victim := founders[r.Rand.IntN(len(founders))]
	if l := g.Leader(); l != nil && l.ID() <= clusterNodes && r.Rand.IntN(2) == 0 {
		victim = l.ID()
	}
	g.Admin([]string{"CLUSTER", "DELNODE", itoa(victim)}, func() {
		d := time.Duration(r.Rand.Int64N(int64(500 * time.Millisecond)))
		r.At(time.Duration(r.Now())+d, func() { g.Node(victim).Stop() })
	})
	f.aimAtChange()
}
