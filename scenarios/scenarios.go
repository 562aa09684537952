package scenarios

import (
	"sort"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// Scenario is a named workload and fault schedule.
type Scenario struct {
	Name    string
	Summary string
	// Config builds the run for a seed. The seed reaches every random
	// choice through sim's streams; Config itself may draw from rng (the
	// "scenario/config" stream) to vary the world per seed.
	Config func(seed uint64) sim.Config
}

var registry = map[string]*Scenario{}

func register(s *Scenario) {
	if _, dup := registry[s.Name]; dup {
		panic("scenarios: registered twice: " + s.Name)
	}
	registry[s.Name] = s
}

// All returns every scenario, sorted by name.
func All() []*Scenario {
	out := make([]*Scenario, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup finds a scenario by name, planted-bug scenarios (planted.go)
// included.
func Lookup(name string) *Scenario {
	if s := registry[name]; s != nil {
		return s
	}
	return planted[name]
}

// Defaults shared by the scenarios: one node, ten clients, ten simulated
// seconds, a small key space.
const (
	runDuration = 10 * time.Second
	clients     = 10
	plainKeys   = 8
	// manyKeys is crash-many-keys' key space.
	manyKeys     = 1000
	volatileKeys = 4
	// everysecWindow is the loss window appendfsync everysec promises: one
	// second, plus one tick, since the fsync can only happen on a tick.
	everysecWindow = time.Second + tickEvery
	tickEvery      = 10 * time.Millisecond
)

// base is the baseline world every scenario starts from.
func base(name string, seed uint64, fsync cluster.FsyncPolicy) sim.Config {
	sector := 4096
	if seed%2 == 1 {
		sector = 512
	}
	cfg := sim.Config{
		Scenario: name,
		Seed:     seed,
		Duration: runDuration,
		Node: sim.NodeConfig{
			ID: 1, Dir: "data", AppendOnly: true, Fsync: fsync,
			FS: sim.FSConfig{
				SectorSize:   sector,
				WriteLatency: 5 * time.Microsecond, WriteByteNs: 1,
				SyncLatency: 200 * time.Microsecond, ReadLatency: 5 * time.Microsecond,
			},
			Clock:        sim.ClockConfig{Skew: time.Duration(seed%1000) * time.Millisecond, DriftPPM: int64(seed%201) - 100},
			TickEvery:    tickEvery,
			RequestCost:  2 * time.Microsecond,
			RestartDelay: 50 * time.Millisecond,
			// Small, so ten simulated seconds see snapshots, log
			// compaction and segment rollover.
			SnapshotLogBytes: 16<<10 + int64(seed%7)*8<<10,
			SegmentBytes:     16 << 10,
			JobDelay:         time.Duration(1+seed%20) * time.Millisecond,
		},
		Net: sim.NetConfig{DelayMin: 50 * time.Microsecond, DelayJitter: 100 * time.Microsecond},
		Workload: sim.WorkloadConfig{
			Clients: clients, PlainKeys: plainKeys, VolatileKeys: volatileKeys,
			Think: 15 * time.Millisecond, Timeout: 500 * time.Millisecond,
		},
		FinalCrash: true,
	}
	switch fsync {
	case cluster.FsyncAlways:
		cfg.Durability = sim.Durability{Kind: "always"}
	case cluster.FsyncEverySec:
		cfg.Durability = sim.Durability{Kind: "window", WindowMs: everysecWindow.Milliseconds()}
	default:
		cfg.Durability = sim.Durability{Kind: "any"}
	}
	return cfg
}

// policyFor varies the fsync policy by seed, so every fault scenario
// exercises appendfsync always, everysec and (every tenth seed) no.
func policyFor(seed uint64) cluster.FsyncPolicy {
	switch {
	case seed%10 == 5:
		return cluster.FsyncNo
	case seed%3 == 0:
		return cluster.FsyncEverySec
	}
	return cluster.FsyncAlways
}

// every schedules f at random times: the first after about mean, then
// every about mean, until the workload ends.
// crashEvery cuts the node's power, or crashes it in the middle of one of
// its next 20 disk operations, at seeded intervals averaging mean.
func crashEvery(r *sim.Run, mean time.Duration) {
	every(r, mean, func() {
		if r.Rand.IntN(2) == 0 {
			r.Node.PowerOff()
		} else {
			r.Node.CrashDuringIO(1 + r.Rand.Int64N(20))
		}
	})
}

func every(r *sim.Run, mean time.Duration, f func()) {
	var next func()
	next = func() {
		d := time.Duration(r.Rand.ExpFloat64() * float64(mean))
		if time.Duration(r.Now())+d >= r.Duration() {
			return
		}
		r.At(time.Duration(r.Now())+d, func() { f(); next() })
	}
	next()
}

func init() {
	register(&Scenario{
		Name:    "baseline",
		Summary: "no faults; appendfsync always; ends with a crash and a recovery check",
		Config: func(seed uint64) sim.Config {
			return base("baseline", seed, cluster.FsyncAlways)
		},
	})
	register(&Scenario{
		Name:    "crash-restart",
		Summary: "power loss at random times and at random disk operations (mid-write, mid-fsync, mid-rename); always or everysec",
		Config: func(seed uint64) sim.Config {
			cfg := base("crash-restart", seed, policyFor(seed))
			cfg.Node.FS.TornProb = 0.3
			cfg.Schedule = func(r *sim.Run) { crashEvery(r, 1500*time.Millisecond) }
			return cfg
		},
	})
	register(&Scenario{
		Name:    "crash-many-keys",
		Summary: "crash-restart over 1,000 keys: the ordered index splits, merges and is loaded from snapshots between power losses",
		Config: func(seed uint64) sim.Config {
			cfg := base("crash-many-keys", seed, policyFor(seed))
			// Enough keys that the ordered index has many leaves, which
			// the default 8 never fill: snapshots walk it and recovery
			// rebuilds it by appending, then writes split and DELs merge
			// its leaves (engine/keyindex.go).
			cfg.Workload.PlainKeys = manyKeys
			cfg.Node.FS.TornProb = 0.3
			cfg.Schedule = func(r *sim.Run) { crashEvery(r, 1500*time.Millisecond) }
			return cfg
		},
	})
	register(&Scenario{
		Name:    "torn-writes",
		Summary: "crashes in the middle of writes and fsyncs; unsynced sectors kept in any order at 512 B or 4 KiB",
		Config: func(seed uint64) sim.Config {
			cfg := base("torn-writes", seed, policyFor(seed))
			cfg.Node.FS.TornProb = 1
			cfg.Schedule = func(r *sim.Run) {
				every(r, time.Second, func() { r.Node.CrashDuringIO(1 + r.Rand.Int64N(8)) })
			}
			return cfg
		},
	})
	register(&Scenario{
		Name:    "fsync-failure",
		Summary: "fsync fails now and then (the unsynced pages are lost, fsyncgate); writes fail with EIO, aimed also at a snapshot's end; the node restarts from disk",
		Config: func(seed uint64) sim.Config {
			cfg := base("fsync-failure", seed, policyFor(seed))
			cfg.TolerateWriteErrors = true
			// A snapshot's end (its marker's append) is one write among
			// thousands: aimed at, it fails there a quarter of the time.
			cfg.Aim = map[string]float64{sim.MarkFsyncErrorInCompaction: 0.25}
			cfg.Node.FS.TornProb = 0.5
			cfg.Schedule = func(r *sim.Run) {
				every(r, 2*time.Second, func() {
					r.Trace("faults on")
					r.Node.FS.SetFaults(sim.DiskFaults{Kinds: sim.KindWAL | sim.KindSnapshot, SyncErrProb: 0.2, WriteErrProb: 0.02})
					r.At(time.Duration(r.Now())+300*time.Millisecond, func() {
						r.Trace("faults off")
						r.Node.FS.SetFaults(sim.DiskFaults{})
					})
				})
				every(r, 3*time.Second, r.Node.PowerOff)
			}
			return cfg
		},
	})
	register(&Scenario{
		Name:    "disk-full",
		Summary: "the disk fills (ENOSPC) and is freed again; writes get errors, reads keep being served",
		Config: func(seed uint64) sim.Config {
			cfg := base("disk-full", seed, policyFor(seed))
			cfg.TolerateWriteErrors = true
			cfg.Node.FS.Capacity = 64 << 20
			var fills, freed []time.Duration
			cfg.Schedule = func(r *sim.Run) {
				every(r, 2*time.Second, func() {
					used := r.Node.FS.Used()
					fills = append(fills, time.Duration(r.Now()))
					r.Trace("disk fills")
					r.Fault("disk-full")
					r.Node.FS.SetBallast(64<<20 - used + r.Rand.Int64N(2048))
					r.At(time.Duration(r.Now())+time.Duration(100+r.Rand.IntN(700))*time.Millisecond, func() {
						r.Trace("disk freed")
						r.Node.FS.SetBallast(0)
						freed = append(freed, time.Duration(r.Now()))
					})
				})
				every(r, 4*time.Second, r.Node.PowerOff)
			}
			cfg.Check = func(r *sim.Run) []string { return writesResume(r, fills, freed) }
			return cfg
		},
	})
	register(&Scenario{
		Name:    "bit-rot",
		Summary: "bits flip at rest in log and snapshot files, and on reads; recovery must detect it (refuse to start or lose only a suffix), never serve wrong data",
		Config: func(seed uint64) sim.Config {
			cfg := base("bit-rot", seed, policyFor(seed))
			cfg.Durability = sim.Durability{Kind: "any"}
			cfg.Schedule = func(r *sim.Run) {
				// One rot at rest, late in the run: a node that then
				// refuses to start stays down (nothing can repair it), so
				// an early rot would leave little to check.
				rotAt := 5*time.Second + time.Duration(r.Rand.Int64N(int64(4*time.Second)))
				r.At(rotAt, func() {
					kinds := sim.KindWAL
					if r.Rand.IntN(3) == 0 {
						kinds = sim.KindSnapshot
					}
					if r.Node.FS.Rot(kinds) {
						r.Node.PowerOff()
					}
				})
				// Transient flips on reads during recovery: a refusal to
				// start is fine, a retry later must succeed.
				every(r, 2*time.Second, func() {
					r.Trace("read flips on")
					r.Node.FS.SetFaults(sim.DiskFaults{Kinds: sim.KindWAL | sim.KindSnapshot, ReadFlipProb: 0.05})
					r.Node.PowerOff()
					r.At(time.Duration(r.Now())+200*time.Millisecond, func() {
						r.Trace("read flips off")
						r.Node.FS.SetFaults(sim.DiskFaults{})
					})
				})
			}
			return cfg
		},
	})
	register(&Scenario{
		Name:    "clock-skew",
		Summary: "node clock with large skew and drift and forward NTP steps, TTL-heavy workload, crashes",
		Config: func(seed uint64) sim.Config {
			cfg := base("clock-skew", seed, policyFor(seed))
			cfg.Node.Clock = sim.ClockConfig{Skew: time.Duration(seed%7200) * time.Second, DriftPPM: int64(seed%100001) - 50000}
			cfg.Workload.VolatileKeys = 8
			cfg.Workload.PlainSetTTLPct = 30 // SETs that must clear a TTL
			cfg.Schedule = func(r *sim.Run) {
				every(r, 1500*time.Millisecond, func() {
					d := time.Duration(r.Rand.Int64N(int64(3 * time.Second)))
					r.Trace("clock step +" + d.String())
					r.Fault("clock-step")
					r.Node.Clock.Step(d)
				})
				every(r, 3*time.Second, r.Node.PowerOff)
			}
			return cfg
		},
	})
	register(&Scenario{
		Name:    "partition",
		Summary: "client connections cut (both ways, one way, node isolated) and healed, slow links; requests and replies vanish, so clients see unknown outcomes of writes that happened",
		Config: func(seed uint64) sim.Config {
			cfg := base("partition", seed, policyFor(seed))
			cfg.Net.DelayJitter = 2 * time.Millisecond
			cfg.Schedule = func(r *sim.Run) {
				all := []uint64{r.Node.ID()}
				for _, c := range r.Clients {
					all = append(all, c.ID())
				}
				every(r, time.Second, func() {
					switch r.Rand.IntN(4) {
					case 0:
						r.Net.Isolate(r.Node.ID(), all)
					case 1: // some clients cut off both ways
						var cut []uint64
						for _, c := range r.Clients {
							if r.Rand.IntN(2) == 0 {
								cut = append(cut, c.ID())
							}
						}
						r.Net.Partition([]uint64{r.Node.ID()}, cut)
					case 2: // replies lost, requests still arrive
						for _, c := range r.Clients {
							if r.Rand.IntN(2) == 0 {
								r.Net.Block(r.Node.ID(), c.ID())
							}
						}
					case 3: // requests lost
						for _, c := range r.Clients {
							if r.Rand.IntN(2) == 0 {
								r.Net.Block(c.ID(), r.Node.ID())
							}
						}
					}
					r.Fault("partition")
					r.At(time.Duration(r.Now())+time.Duration(50+r.Rand.IntN(600))*time.Millisecond, r.Net.Heal)
				})
				every(r, 4*time.Second, r.Node.PowerOff)
			}
			return cfg
		},
	})
	register(&Scenario{
		Name:    "slow-disk",
		Summary: "latency spikes on writes and fsyncs and GC-like pauses; clients time out on writes that did happen",
		Config: func(seed uint64) sim.Config {
			cfg := base("slow-disk", seed, policyFor(seed))
			cfg.Node.FS.Faults = sim.DiskFaults{SpikeProb: 0.002, SpikeMax: 300 * time.Millisecond}
			cfg.Schedule = func(r *sim.Run) {
				every(r, 2*time.Second, func() { r.Node.Pause(time.Duration(r.Rand.Int64N(int64(time.Second)))) })
				every(r, 4*time.Second, r.Node.PowerOff)
			}
			return cfg
		},
	})
}

// writesResumeAfter is how soon after the disk frees up writes must be
// accepted again (the replica probes for space on Tick, every 10 ms).
const writesResumeAfter = 200 * time.Millisecond

// writesResume is disk-full's liveness check: a write issued
// writesResumeAfter or more after the disk was freed, and answered before
// it filled again, must not have been refused. A node that stalled (a
// pause, a slow disk) in that time could not probe for space: the window
// starts again when the stall ends (bank-crash swarm seed 103001 paused
// its node for 830 ms just after the disk was freed).
func writesResume(r *sim.Run, fills, freed []time.Duration) []string {
	var out []string
	for _, f := range freed {
		from := f
		for _, s := range r.Node.Stalls() {
			if s.From < from+writesResumeAfter && s.To > from {
				from = s.To
			}
		}
		end := r.Duration()
		for _, fl := range fills {
			if fl > f {
				end = min(end, fl)
				break
			}
		}
		for _, op := range r.Refused {
			if c := time.Duration(op.Call); c >= from+writesResumeAfter && time.Duration(op.Return) < end {
				out = append(out, "liveness: a write issued at "+c.String()+", "+(c-f).String()+
					" after the disk was freed, was refused: "+op.Reply)
				break
			}
		}
	}
	return out
}
