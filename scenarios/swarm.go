package scenarios

import (
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012): instead of
// every seed drawing every fault kind at the scenario's fixed rates, each
// seed picks which fault kinds are on (each with probability one half)
// and how dense each is (log-uniform over a wide range), so most seeds
// run a few kinds, densely. Runs with fewer, denser fault kinds reach
// states that runs with every fault at a low rate miss: a burst of
// crashes during recovery, an fsync failure while a snapshot job runs, a
// clock step in the middle of a partition.
//
// A swarm run keeps its scenario's world (nodes, workload, checks, any
// planted bug) and replaces its fault schedule with the mix; the mix is
// drawn from the seed's "swarm" stream and named in the trace's first
// lines, the sweep's failure lines and the case file (keel sim run
// --swarm, sim.Variant.Swarm). Scenarios whose schedules carry more than
// faults (membership changes, slot moves, snapshot-aimed crashes, bus
// attacks) have no swarm world and run as they are.

// Swarm worlds: which menu of fault kinds applies.
const (
	SwarmNode  = "node"  // one node (scenarios.go's base)
	SwarmGroup = "group" // a replicated group (clusterBase)
)

// swarmWorlds are the scenarios a swarm run can re-mix, by world. Kept
// here rather than in each registration so that new scenarios (and the
// files registering them) stay as they are; a scenario not listed runs
// its own schedule under --swarm.
var swarmWorlds = map[string]string{
	"baseline": SwarmNode, "crash-restart": SwarmNode, "torn-writes": SwarmNode, "fsync-failure": SwarmNode,
	"disk-full": SwarmNode, "bit-rot": SwarmNode, "clock-skew": SwarmNode, "partition": SwarmNode,
	"slow-disk": SwarmNode, "bank-crash": SwarmNode, "bank-watch": SwarmNode, "fcall-transfer": SwarmNode,
	"cluster-leader-crash": SwarmGroup, "cluster-follower-crash": SwarmGroup, "cluster-leader-partition": SwarmGroup,
	"cluster-one-way": SwarmGroup, "cluster-flapping": SwarmGroup, "cluster-clock-skew": SwarmGroup,
	"cluster-disk-faults": SwarmGroup, "cluster-rolling-restart": SwarmGroup, "cluster-fcall": SwarmGroup,
	"cluster-bank-watch": SwarmGroup,
}

// SwarmWorld is the swarm world of s ("": none); a planted bug's is its
// base scenario's.
func SwarmWorld(s *Scenario) string {
	name := s.Name
	if strings.HasPrefix(name, PlantedPrefix) {
		for _, p := range Planted {
			if PlantedPrefix+p.Name == name {
				name = p.Base
			}
		}
	}
	return swarmWorlds[name]
}

// swarmKind is one fault kind of a menu: how often it strikes (mean time
// between two, for a scheduled kind; 0 for an ambient one) and how hard
// (a probability, a size), each drawn log-uniformly between its bounds.
type swarmKind struct {
	name               string
	meanMin, meanMax   time.Duration
	levelMin, levelMax float64
}

// swarmOn is a kind a mix switched on, with its drawn rates.
type swarmOn struct {
	name  string
	mean  time.Duration
	level float64
}

// SwarmMix is a seed's fault mix.
type SwarmMix struct {
	World string
	on    []swarmOn // sorted by name
	// Gap is the mean calm between two faults of a group world.
	Gap time.Duration
}

var nodeMenu = []swarmKind{
	{name: "power-off", meanMin: 300 * time.Millisecond, meanMax: 5 * time.Second},
	{name: "crash-io", meanMin: 300 * time.Millisecond, meanMax: 5 * time.Second, levelMin: 1, levelMax: 40},
	{name: "restart", meanMin: 500 * time.Millisecond, meanMax: 5 * time.Second},
	{name: "disk-errors", meanMin: 500 * time.Millisecond, meanMax: 4 * time.Second, levelMin: 0.05, levelMax: 0.5},
	{name: "disk-full", meanMin: 500 * time.Millisecond, meanMax: 4 * time.Second},
	{name: "read-flips", meanMin: time.Second, meanMax: 4 * time.Second, levelMin: 0.01, levelMax: 0.1},
	{name: "rot"},
	{name: "clock-step", meanMin: 300 * time.Millisecond, meanMax: 3 * time.Second, levelMin: 0.1, levelMax: 3},
	{name: "pause", meanMin: 500 * time.Millisecond, meanMax: 4 * time.Second, levelMin: 0.05, levelMax: 1},
	{name: "partition", meanMin: 300 * time.Millisecond, meanMax: 3 * time.Second},
	{name: "torn", levelMin: 0.1, levelMax: 1},
	{name: "spikes", levelMin: 0.0005, levelMax: 0.01},
	{name: "skew"},
	// Crashes aimed at windows (sim/aim.go), level the chance per pass.
	{name: "aim-append", levelMin: 0.005, levelMax: 0.1},
	{name: "aim-snapshot-write", levelMin: 0.05, levelMax: 0.5},
	{name: "aim-compaction", levelMin: 0.1, levelMax: 1},
}

// aimKinds are the menus' aimed-crash kinds and their markers.
var aimKinds = map[string]string{
	"aim-append": sim.MarkAppendUnsynced, "aim-snapshot-write": sim.MarkSnapshotWrite, "aim-compaction": sim.MarkCompaction,
	"aim-vote": sim.MarkVoteUnsynced, "aim-snapshot-install": sim.MarkSnapshotInstall,
}

// applyAims aims the mix's aimed-crash kinds.
func (m SwarmMix) applyAims(cfg *sim.Config) bool {
	any := false
	for _, k := range m.on {
		if marker, ok := aimKinds[k.name]; ok {
			if cfg.Aim == nil {
				cfg.Aim = map[string]float64{}
			}
			cfg.Aim[marker] = k.level
			any = true
		}
	}
	return any
}

var groupMenu = []swarmKind{
	{name: "leader-crash", levelMin: 1, levelMax: 1},
	{name: "follower-crash", levelMin: 1, levelMax: 1},
	{name: "leader-partition", levelMin: 1, levelMax: 1},
	{name: "one-way", levelMin: 1, levelMax: 1},
	{name: "flap", levelMin: 1, levelMax: 1},
	{name: "isolate", levelMin: 1, levelMax: 1},
	{name: "clock-step", levelMin: 0.1, levelMax: 3},
	{name: "pause", levelMin: 0.2, levelMax: 3.2},
	{name: "disk-errors", levelMin: 0.05, levelMax: 0.5},
	{name: "disk-full", levelMin: 1, levelMax: 1},
	{name: "restart", levelMin: 1, levelMax: 1},
	{name: "net-loss", levelMin: 0.005, levelMax: 0.1},
	{name: "net-dup", levelMin: 0.005, levelMax: 0.05},
	{name: "torn", levelMin: 0.1, levelMax: 1},
	{name: "skew"},
	{name: "aim-vote", levelMin: 0.2, levelMax: 1},
	{name: "aim-append", levelMin: 0.002, levelMax: 0.05},
	{name: "aim-snapshot-install", levelMin: 0.05, levelMax: 0.5},
	{name: "aim-compaction", levelMin: 0.1, levelMax: 1},
}

// groupScheduled are the group menu's kinds that are faults of the cycle
// (the others are ambient).
var groupScheduled = map[string]bool{
	"leader-crash": true, "follower-crash": true, "leader-partition": true, "one-way": true, "flap": true,
	"isolate": true, "clock-step": true, "pause": true, "disk-errors": true, "disk-full": true, "restart": true,
}

func logUniform(rng *rand.Rand, lo, hi float64) float64 {
	if lo <= 0 || hi <= lo {
		return lo
	}
	return math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo)))
}

// DrawSwarmMix draws seed's mix for a world. bank: the workload is a bank
// (no kind that allows acknowledged writes to be lost).
func DrawSwarmMix(seed uint64, world string, bank bool) SwarmMix {
	rng := sim.SeedStream(seed, "swarm")
	menu := nodeMenu
	if world == SwarmGroup {
		menu = groupMenu
	}
	m := SwarmMix{World: world}
	scheduled := 0
	for _, k := range menu {
		on := rng.IntN(2) == 0
		mean := time.Duration(logUniform(rng, float64(k.meanMin), float64(k.meanMax)))
		level := logUniform(rng, k.levelMin, k.levelMax)
		if bank && (k.name == "rot" || k.name == "read-flips") {
			on = false
		}
		if !on {
			continue
		}
		m.on = append(m.on, swarmOn{name: k.name, mean: mean, level: level})
		if k.meanMin > 0 || groupScheduled[k.name] || k.name == "rot" {
			scheduled++
		}
	}
	m.Gap = time.Duration(logUniform(rng, float64(150*time.Millisecond), float64(2*time.Second)))
	if scheduled == 0 {
		// Every seed runs at least one scheduled fault kind: an all-off
		// mix is the baseline scenario, which the fixed sweeps cover.
		var pick []swarmKind
		for _, k := range menu {
			if (k.meanMin > 0 || groupScheduled[k.name]) && !(bank && k.name == "read-flips") {
				pick = append(pick, k)
			}
		}
		k := pick[rng.IntN(len(pick))]
		m.on = append(m.on, swarmOn{name: k.name, mean: time.Duration(logUniform(rng, float64(k.meanMin), float64(k.meanMax))),
			level: logUniform(rng, k.levelMin, k.levelMax)})
	}
	sort.Slice(m.on, func(i, j int) bool { return m.on[i].name < m.on[j].name })
	return m
}

// has reports whether kind is on, and its rates.
func (m SwarmMix) has(kind string) (swarmOn, bool) {
	for _, k := range m.on {
		if k.name == kind {
			return k, true
		}
	}
	return swarmOn{}, false
}

// Kinds are the names of the kinds on.
func (m SwarmMix) Kinds() []string {
	out := make([]string, len(m.on))
	for i, k := range m.on {
		out[i] = k.name
	}
	return out
}

// String names the mix: each kind on, with its mean interval and level
// where it has them ("crash-io/1.2s:12 torn:0.41"), and a group world's
// gap.
func (m SwarmMix) String() string {
	var b strings.Builder
	b.WriteString(m.World + ":")
	for _, k := range m.on {
		b.WriteString(" " + k.name)
		if k.mean > 0 && m.World == SwarmNode {
			b.WriteString("/" + k.mean.Round(10*time.Millisecond).String())
		}
		if k.level != 0 && !(m.World == SwarmGroup && k.level == 1) {
			b.WriteString(":" + strconv.FormatFloat(k.level, 'g', 2, 64))
		}
	}
	if m.World == SwarmGroup {
		b.WriteString(" gap/" + m.Gap.Round(10*time.Millisecond).String())
	}
	return b.String()
}

// applySwarm replaces cfg's fault schedule with seed's mix for world and
// returns the mix.
func applySwarm(cfg *sim.Config, seed uint64, world string) SwarmMix {
	m := DrawSwarmMix(seed, world, cfg.Workload.Bank != nil)
	cfg.SwarmMix = m.String()
	if world == SwarmGroup {
		m.applyGroup(cfg, seed)
	} else {
		m.applyNode(cfg)
	}
	return m
}

// applyNode is a one-node world's mix: every scheduled kind strikes at
// its own seeded intervals, from faultsFrom (after a bank's setup) to the
// end of the workload.
func (m SwarmMix) applyNode(cfg *sim.Config) {
	from := time.Duration(0)
	if cfg.Workload.Bank != nil {
		from = bankFaultsFrom
	}
	cfg.Node.FS.TornProb, cfg.Node.FS.Faults = 0, sim.DiskFaults{}
	m.applyAims(cfg)
	if k, ok := m.has("torn"); ok {
		cfg.Node.FS.TornProb = k.level
	}
	if k, ok := m.has("spikes"); ok {
		cfg.Node.FS.Faults = sim.DiskFaults{SpikeProb: k.level, SpikeMax: 300 * time.Millisecond}
	}
	if _, ok := m.has("skew"); ok {
		cfg.Node.Clock = sim.ClockConfig{Skew: time.Duration(cfg.Seed%7200) * time.Second, DriftPPM: int64(cfg.Seed%100001) - 50000}
	}
	_, errs := m.has("disk-errors")
	_, full := m.has("disk-full")
	if errs || full {
		cfg.TolerateWriteErrors = true
	}
	if full {
		cfg.Node.FS.Capacity = 64 << 20
	}
	_, flips := m.has("read-flips")
	_, rot := m.has("rot")
	if flips || rot {
		// As in bit-rot: a rotten last record is indistinguishable from
		// a torn one, and a read flipped twice in a row makes recovery
		// refuse to start.
		cfg.Durability = sim.Durability{Kind: "any"}
	}
	var fills, freed []time.Duration
	if full && !errs {
		// disk-full's liveness check (writes resume once the disk is
		// freed) holds only when nothing else refuses writes: with disk
		// errors on, a write after the disk was freed may meet an fsync
		// error and be refused, rightly.
		check := cfg.Check
		cfg.Check = func(r *sim.Run) []string {
			var out []string
			if check != nil {
				out = check(r)
			}
			return append(out, writesResume(r, fills, freed)...)
		}
	}
	cfg.Schedule = func(r *sim.Run) {
		var dfs sim.DiskFaults // the disk-fault windows on now, combined
		window := func(set func(on bool), d time.Duration) {
			set(true)
			r.Node.FS.SetFaults(dfs)
			r.At(time.Duration(r.Now())+d, func() {
				set(false)
				r.Node.FS.SetFaults(dfs)
			})
		}
		r.At(from, func() {
			for _, k := range m.on {
				k := k
				switch k.name {
				case "power-off":
					every(r, k.mean, r.Node.PowerOff)
				case "crash-io":
					every(r, k.mean, func() { r.Node.CrashDuringIO(1 + r.Rand.Int64N(int64(k.level))) })
				case "restart":
					every(r, k.mean, r.Node.Restart)
				case "disk-errors":
					every(r, k.mean, func() {
						window(func(on bool) {
							dfs.Kinds = sim.KindWAL | sim.KindSnapshot
							dfs.SyncErrProb, dfs.WriteErrProb = 0, 0
							if on {
								dfs.SyncErrProb, dfs.WriteErrProb = k.level, k.level/10
							}
						}, time.Duration(100+r.Rand.IntN(400))*time.Millisecond)
					})
				case "read-flips":
					every(r, k.mean, func() {
						window(func(on bool) {
							dfs.Kinds = sim.KindWAL | sim.KindSnapshot
							dfs.ReadFlipProb = 0
							if on {
								dfs.ReadFlipProb = k.level
							}
						}, 200*time.Millisecond)
						r.Node.PowerOff()
					})
				case "disk-full":
					every(r, k.mean, func() {
						fills = append(fills, time.Duration(r.Now()))
						r.Node.FS.SetBallast(64<<20 - r.Node.FS.Used() + r.Rand.Int64N(2048))
						r.At(time.Duration(r.Now())+time.Duration(100+r.Rand.IntN(700))*time.Millisecond, func() {
							r.Node.FS.SetBallast(0)
							freed = append(freed, time.Duration(r.Now()))
						})
					})
				case "rot":
					at := 3*time.Second + time.Duration(r.Rand.Int64N(int64(6*time.Second)))
					r.At(max(at, time.Duration(r.Now())), func() {
						kinds := sim.KindWAL
						if r.Rand.IntN(3) == 0 {
							kinds = sim.KindSnapshot
						}
						if r.Node.FS.Rot(kinds) {
							r.Node.PowerOff()
						}
					})
				case "clock-step":
					every(r, k.mean, func() {
						d := time.Duration(r.Rand.Int64N(int64(k.level * float64(time.Second))))
						r.Node.Clock.Step(d)
					})
				case "pause":
					every(r, k.mean, func() { r.Node.Pause(time.Duration(r.Rand.Int64N(int64(k.level * float64(time.Second))))) })
				case "partition":
					every(r, k.mean, func() { clientPartition(r) })
				}
			}
		})
	}
}

// clientPartition cuts some client links of a one-node world (the cuts
// of partitionSome, without its fault line) and heals them after a while.
func clientPartition(r *sim.Run) {
	cutClients(r)
	r.At(time.Duration(r.Now())+time.Duration(50+r.Rand.IntN(600))*time.Millisecond, r.Net.Heal)
}

// applyGroup is a replicated world's mix: one fault at a time, as in
// every cluster scenario (faultCycles), each drawn among the kinds on,
// with the mix's mean calm between two; plus the ambient kinds.
func (m SwarmMix) applyGroup(cfg *sim.Config, seed uint64) {
	durable := m.applyAims(cfg)
	for _, k := range []string{"leader-crash", "follower-crash", "disk-errors", "disk-full", "restart"} {
		if _, ok := m.has(k); ok {
			durable = true
		}
	}
	if durable {
		// A power loss under everysec may lose what a majority
		// acknowledged: crash worlds promise always.
		cfg.Node.Fsync = cluster.FsyncAlways
		cfg.Group.FinalPowerLoss = true
	}
	cfg.Net.LossProb, cfg.Net.DupProb, cfg.Node.FS.TornProb = 0, 0, 0
	if k, ok := m.has("net-loss"); ok {
		cfg.Net.LossProb = k.level
	}
	if k, ok := m.has("net-dup"); ok {
		cfg.Net.DupProb = k.level
	}
	if k, ok := m.has("torn"); ok {
		cfg.Node.FS.TornProb = k.level
	}
	if _, ok := m.has("skew"); ok {
		rng := rand.New(rand.NewPCG(seed, 0x5ce7))
		for i := range cfg.Group.Clocks {
			cfg.Group.Clocks[i] = sim.ClockConfig{Skew: time.Duration(rng.Int64N(int64(4 * time.Hour))), DriftPPM: rng.Int64N(100_001) - 50_000}
		}
	}
	if _, ok := m.has("disk-full"); ok {
		cfg.Node.FS.Capacity = 64 << 20
	}
	var kinds []swarmOn
	for _, k := range m.on {
		if groupScheduled[k.name] {
			kinds = append(kinds, k)
		}
	}
	cfg.Schedule = func(r *sim.Run) {
		faultCycles(r, m.Gap, func() time.Duration {
			k := kinds[r.Rand.IntN(len(kinds))]
			return groupFault(r, k)
		})
	}
}

// groupFault starts one fault of kind k on a replicated world and returns
// how long it lasts (faultCycles heals the network and disks after it).
func groupFault(r *sim.Run, k swarmOn) time.Duration {
	g := r.Group
	l := g.Leader()
	ids := g.IDs()
	switch k.name {
	case "leader-crash":
		return crashNode(r, l)
	case "follower-crash":
		return crashNode(r, randomFollower(r))
	case "leader-partition":
		if l != nil {
			r.Net.Partition([]uint64{l.ID()}, nodeIDs(g.Followers()))
		}
		return 500*time.Millisecond + time.Duration(r.Rand.Int64N(int64(3*time.Second)))
	case "one-way":
		a, b := ids[r.Rand.IntN(len(ids))], ids[r.Rand.IntN(len(ids))]
		if l != nil && r.Rand.IntN(2) == 0 {
			a = l.ID()
		}
		if a != b {
			r.Net.Block(a, b)
		}
		return 300*time.Millisecond + time.Duration(r.Rand.Int64N(int64(3*time.Second)))
	case "flap":
		a := ids[r.Rand.IntN(len(ids))]
		for _, b := range ids {
			if b != a && r.Rand.IntN(2) == 0 {
				r.Net.Partition([]uint64{a}, []uint64{b})
			}
		}
		return time.Duration(50+r.Rand.IntN(500)) * time.Millisecond
	case "isolate":
		r.Net.Isolate(ids[r.Rand.IntN(len(ids))], ids)
		return 300*time.Millisecond + time.Duration(r.Rand.Int64N(int64(2200*time.Millisecond)))
	case "clock-step":
		n := g.Nodes[r.Rand.IntN(len(g.Nodes))]
		n.Clock.Step(time.Duration(r.Rand.Int64N(int64(k.level * float64(time.Second)))))
		return 10 * time.Millisecond
	case "pause":
		if l == nil {
			return 100 * time.Millisecond
		}
		d := time.Duration(r.Rand.Int64N(int64(k.level * float64(time.Second))))
		l.Pause(d)
		return d
	case "disk-errors":
		victim := g.Nodes[r.Rand.IntN(len(g.Nodes))]
		if l != nil && r.Rand.IntN(2) == 0 {
			victim = l
		}
		victim.FS.SetFaults(sim.DiskFaults{Kinds: sim.KindWAL | sim.KindSnapshot, SyncErrProb: k.level, WriteErrProb: k.level / 10})
		return time.Duration(100+r.Rand.IntN(700)) * time.Millisecond
	case "disk-full":
		victim := g.Nodes[r.Rand.IntN(len(g.Nodes))]
		victim.FS.SetBallast(64<<20 - victim.FS.Used() + r.Rand.Int64N(2048))
		return time.Duration(100+r.Rand.IntN(700)) * time.Millisecond
	case "restart":
		g.Nodes[r.Rand.IntN(len(g.Nodes))].Restart()
		return 600 * time.Millisecond
	}
	return 100 * time.Millisecond
}
