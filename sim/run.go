package sim

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime/debug"
	"sort"
	"strconv"
	"time"

	"github.com/keel-db/keel/checker"
)

// Config is everything one run is: the scenario's world, workload and
// fault schedule. With the seed it determines the run completely.
type Config struct {
	Scenario string
	Seed     uint64
	// Duration of the workload in virtual time. After it, FinalCrash (if
	// set) powers the node off and checks one more recovery.
	Duration   time.Duration
	Node       NodeConfig
	Net        NetConfig
	Workload   WorkloadConfig
	Durability Durability
	// TolerateWriteErrors: the scenario injects disk faults, so a write may
	// be refused with an error reply (and must then have no effect).
	TolerateWriteErrors bool
	FinalCrash          bool
	// Schedule arms the scenario's faults; it runs once before the
	// workload starts and typically calls r.At with fault actions.
	Schedule func(r *Run)
	// Trace, when set, receives every trace line.
	Trace io.Writer
	// Check, when set, runs after the workload and returns the scenario's
	// own failures (liveness, say: writes resumed after the disk freed).
	Check func(r *Run) []string
	// Group, when set, runs a replicated group of nodes instead of one
	// node (group.go); Node is then the template of every member.
	Group *GroupConfig
	// SwarmMix names the seed's swarm fault mix when a swarm schedule
	// replaced the scenario's (scenarios/swarm.go); the trace starts with
	// it.
	SwarmMix string
	// Aim crashes nodes at markers (aim.go): the probability that a node
	// crashes each time it passes one, from the start until AimUntil (0:
	// the workload's end). At MarkFsyncErrorInCompaction it fails the
	// write or fsync with EIO instead. Run.Aim changes it as the run goes.
	Aim      map[string]float64
	AimUntil time.Duration
	// Variant changes the run without changing its seed (variant.go):
	// faults and operations left out, a shorter workload, quiet fault
	// kinds. The zero Variant is the seed's own run.
	Variant Variant
}

// RefusedOp is a write the node refused with an error reply (virtual
// times).
type RefusedOp struct {
	Call, Return int64
	Reply        string
}

// Stats counts a run's client operations.
type Stats struct {
	Ops, Unknown int64
	// Refused: writes answered with an error (left out of the history).
	Refused int64
	// NotRun: operations whose outcome the client never learnt, and
	// whose requests no node ever read (left out of the history).
	NotRun int64
	// Snapshots: snapshot jobs run.
	Snapshots int64
	// Contention is how often requests met on a key (contention.go).
	Contention Contention
}

// Run is one simulation in progress.
type Run struct {
	cfg     Config
	W       *World
	Net     *Network
	Node    *Node
	Clients []*Client
	Oracle  *Oracle
	// Rand is the scenario's fault stream.
	Rand    *rand.Rand
	History []checker.Op
	// Refused are the writes answered with an error, left out of History.
	Refused []RefusedOp
	Stats   Stats
	faults  map[string]int64
	keys    []string
	bank    bankProgress
	// Group is the replicated group (nil in the single-node world); Node
	// is then nil too.
	Group *Group
	// nextConn numbers client connections.
	nextConn uint64
	// ttl holds the TTL keys' writes (ttlkeys.go).
	ttl ttlBook
	// raft checks Raft's safety properties as the run goes (raftcheck.go).
	raft *raftCheck
	// vs is the run's variant at work (variant.go).
	vs *variantState
	// aims counts markers and aims crashes at them (aim.go).
	aims *aimState
	// evict maps logged evictions to the history (evict.go).
	evict evictBook
	// rmw is the grammar workload's library state (grammar.go);
	// grammarAcks the call and return times of its acknowledged writes.
	rmw         int
	grammarAcks [][2]int64
}

// Result is what a run found.
type Result struct {
	Scenario string
	Seed     uint64
	// Failures: empty means every invariant held.
	Failures      []string
	FailuresTotal int
	Ops, Unknown  int64
	// NotRun: operations left out of History as never read by a node
	// (Stats.NotRun).
	NotRun    int64
	Snapshots int64
	Oracle    OracleStats
	// Faults counts injected faults by kind.
	Faults    map[string]int64
	SimTime   time.Duration
	Events    int64
	TraceHash string
	History   []checker.Op
	// LinearizabilityApplies: the history must be linearizable (no
	// acknowledged write was allowed to be lost).
	LinearizabilityApplies bool
	// FirstFailAt is the virtual time of the first failure found while
	// the run went (-1: none; a check after the run may still fail it).
	FirstFailAt time.Duration
	// FaultLog is every fault of the run (variant.go), SentOps every
	// workload operation sent, in order.
	FaultLog []FaultEvent
	SentOps  []OpRef
	// Raft counts what the Raft invariant checks looked at.
	Raft RaftCheckStats
	// SwarmMix names the swarm fault mix ("": the scenario's own).
	SwarmMix string
	// Variant is the variant the run ran under (the zero one: the seed's
	// own run).
	Variant Variant
	// Markers counts the markers the run passed (aim.go).
	Markers map[string]int64
	// Contention is how often requests met on a key (contention.go).
	Contention Contention
	// MarkerFirst is when the run first passed each marker.
	MarkerFirst map[string]time.Duration
}

// Injected counts the faults that happened.
func (r *Result) Injected() int { return InjectedFaults(r.FaultLog) }

// Passed reports whether every invariant held.
func (r *Result) Passed() bool { return len(r.Failures) == 0 }

// FaultSummary renders the fault counts sorted by name.
func (r *Result) FaultSummary() string {
	names := make([]string, 0, len(r.Faults))
	for k := range r.Faults {
		names = append(names, k)
	}
	sort.Strings(names)
	s := ""
	for i, k := range names {
		if i > 0 {
			s += " "
		}
		s += k + "=" + strconv.FormatInt(r.Faults[k], 10)
	}
	if s == "" {
		return "none"
	}
	return s
}

func (r *Run) fault(kind string) { r.faults[kind]++ }

// Fault counts one injected fault of kind (for scenario actions).
func (r *Run) Fault(kind string) { r.fault(kind) }

// Now is virtual time.
func (r *Run) Now() int64 { return r.W.now }

// At schedules a scenario action at virtual offset t.
func (r *Run) At(t time.Duration, f func()) { r.W.At(int64(t), f) }

// Duration is the workload's length.
func (r *Run) Duration() time.Duration { return r.cfg.Duration }

// Trace records a scenario-level event.
func (r *Run) Trace(what string) { r.W.Trace("scenario", what) }

func (r *Run) clientByID(id uint64) *Client { return r.Clients[id-clientIDBase] }

// clientIDBase keeps client ids apart from node ids on the network.
const clientIDBase = 1000

// Execute runs one seed of a scenario to the end and checks it. It must
// not run concurrently with another Execute in the same process (it owns
// crypto/rand.Reader for its duration) and panics if it does.
func Execute(cfg Config) (res *Result) {
	cfg = cfg.varied()
	w := NewWorld(cfg.Seed, cfg.Trace)
	w.salt, w.saltFrom = cfg.Variant.Salt, int64(cfg.Variant.SaltFrom)
	restore := w.installCrypto()
	defer restore()
	r := &Run{cfg: cfg, W: w, faults: map[string]int64{}, vs: newVariantState(cfg.Variant)}
	r.aims = newAimState(r)
	r.Rand = w.Stream("scenario/faults")
	r.Net = newNetwork(w, cfg.Net)
	r.Net.faultf = r.fault
	r.Net.gate = r.scheduledFault
	r.Net.oversized = func(from, to uint64, size, limit int) {
		r.Oracle.fail("n" + itoa(int64(from)) + " sent a " + itoa(int64(size)) + "-byte message to n" + itoa(int64(to)) +
			", over the transport's " + itoa(int64(limit)) + "-byte limit (the real transport drops it)")
	}
	r.Oracle = newOracle(cfg.Durability, cfg.TolerateWriteErrors)
	r.Oracle.now = w.Now
	r.Oracle.reach = r.Reach
	r.raft = newRaftCheck(r, cfg.Group == nil && cfg.Durability.Kind != "always")
	for i := 0; i < cfg.Workload.PlainKeys; i++ {
		r.keys = append(r.keys, "k"+strconv.Itoa(i))
	}
	for i := 0; i < cfg.Workload.VolatileKeys; i++ {
		r.keys = append(r.keys, "t"+strconv.Itoa(i))
	}
	defer func() {
		if p := recover(); p != nil {
			r.Oracle.fail(fmt.Sprintf("panic at t=%s: %v\n%s", time.Duration(w.now), p, debug.Stack()))
			res = r.result()
		}
		w.FlushTrace()
	}()
	w.Trace("sim", "start scenario="+cfg.Scenario+" seed="+strconv.FormatUint(cfg.Seed, 10))
	if cfg.SwarmMix != "" {
		w.Trace("sim", "swarm "+cfg.SwarmMix)
	}
	// The variant is not traced: one keeping every fault and operation is
	// the seed's run, trace for trace (what it leaves out is traced where
	// it happens).
	if cfg.Group != nil {
		r.runGroup()
		return r.result()
	}
	r.Node = newNode(r, cfg.Node)
	if err := r.Node.FS.MkdirAll(cfg.Node.Dir); err != nil {
		panic(err)
	}
	for i := 0; i < cfg.Workload.Clients; i++ {
		id := uint64(clientIDBase + i)
		r.Clients = append(r.Clients, &Client{r: r, id: id, name: "c" + strconv.Itoa(int(id)), rng: w.Stream("client/" + strconv.Itoa(i)), node: r.Node})
	}
	r.addSubscribers(r.Node)
	r.Oracle.notify = cfg.Workload.Subscribers > 0
	r.Node.start()
	if cfg.Schedule != nil {
		cfg.Schedule(r)
	}
	for i, c := range r.Clients {
		if r.vs.dropClient[i] {
			c.stopped = true
			continue
		}
		c.start()
	}
	w.RunUntil(int64(cfg.Duration))
	for _, c := range r.Clients {
		c.stopped = true
		if c.cur != nil {
			c.r.Stats.Unknown++
			c.finish(nil)
			c.att.inFlight = false // a reply arriving later is a late one
		}
	}
	if cfg.Workload.Subscribers > 0 {
		// The subscribers listen on while the last writes' events arrive.
		w.RunUntil(int64(cfg.Duration + subscriberSettle))
		r.checkSubscribers()
	}
	if cfg.FinalCrash && cfg.Node.AppendOnly && r.Node.up {
		r.Node.powerOff("final check")
		// Let the node come back and be probed; nothing else runs.
		w.RunUntil(w.now + int64(cfg.Node.RestartDelay) + int64(time.Second))
	}
	if cfg.Check != nil {
		for _, f := range cfg.Check(r) {
			r.Oracle.fail(f)
		}
	}
	r.traceEnd()
	return r.result()
}

func (r *Run) result() *Result {
	faults := make(map[string]int64, len(r.faults))
	for k, v := range r.faults {
		faults[k] = v
	}
	lin := r.cfg.Durability.Kind == "always" || r.Oracle.Stats.LostWrites == 0
	firstFail := time.Duration(-1)
	if r.Oracle.FailuresTotal > 0 {
		firstFail = time.Duration(r.Oracle.firstFailAt)
	}
	return &Result{
		FirstFailAt: firstFail, FaultLog: r.vs.faults, SentOps: r.vs.ops, Raft: r.raft.Stats, SwarmMix: r.cfg.SwarmMix, Variant: r.cfg.Variant, Markers: r.aims.reached, MarkerFirst: r.aims.firstTimes(),
		Scenario: r.cfg.Scenario, Seed: r.cfg.Seed,
		Failures: r.Oracle.Failures, FailuresTotal: r.Oracle.FailuresTotal,
		Ops: r.Stats.Ops, Unknown: r.Stats.Unknown, NotRun: r.Stats.NotRun, Snapshots: r.Stats.Snapshots, Oracle: r.Oracle.Stats,
		Contention: r.Stats.Contention,
		Faults:     faults, SimTime: time.Duration(r.W.now), Events: r.W.events,
		TraceHash: r.W.TraceHash(), History: r.History,
		LinearizabilityApplies: lin,
	}
}

// traceEnd traces the run's last line: its operations, unknown outcomes
// and (when any) operations left out as never run.
func (r *Run) traceEnd() {
	end := "end ops=" + strconv.FormatInt(r.Stats.Ops, 10) + " unknown=" + strconv.FormatInt(r.Stats.Unknown, 10)
	if r.Stats.NotRun > 0 {
		end += " not-run=" + strconv.FormatInt(r.Stats.NotRun, 10)
	}
	r.W.Trace("sim", end)
}
