package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/node"
	"github.com/keel-db/keel/seam"
)

// Bounds on what one simulated node holds (TigerBeetle style: every queue
// is bounded).
const (
	// inputsMax: client data waiting for the node; more is dropped (the
	// client times out), as a server sheds load past its queue.
	inputsMax = 4096
	// batchMax: client inputs and resumed sessions handled in one drain
	// (their steps then go into one Submit per group: group commit).
	batchMax = 256
	// peerInboxMax: peer messages waiting for a busy node; more are
	// dropped (Raft retries).
	peerInboxMax = 4096
	// stepsPerEvent: peer messages handled in one event.
	stepsPerEvent = 64
	// restartAttemptsMax: restarts tried after transient I/O errors before
	// the node is declared unable to come back.
	restartAttemptsMax = 20
	// refusedStartsMax: starts retried after a refusal (corruption
	// detected). Transient read flips clear up on a retry; rot at rest
	// does not, and the node then stays down.
	refusedStartsMax = 5
	// nodePort is every simulated node's client port; its host is
	// "n<id>", so a redirect names it as "n3:6379".
	nodePort = 6379
)

// NodeConfig is one node.
type NodeConfig struct {
	ID         uint64
	Dir        string
	AppendOnly bool
	Fsync      cluster.FsyncPolicy
	FS         FSConfig
	Clock      ClockConfig
	// TickEvery is how often the runtime ticks every group (of the node's
	// own clock in a replicated world).
	TickEvery time.Duration
	// RequestCost is the CPU time charged per request.
	RequestCost time.Duration
	// RestartDelay is how long a restart takes before recovery starts.
	RestartDelay time.Duration
	// SnapshotLogBytes and SegmentBytes size the replica's snapshot
	// trigger and WAL segments (0: the replica's defaults); small values
	// make a short run exercise snapshots, compaction and segment rollover.
	SnapshotLogBytes int64
	SegmentBytes     int64
	// JobDelay is how long after a snapshot job is handed out it starts.
	JobDelay time.Duration
	// MessageBytesMax bounds the replicas' peer messages
	// (cluster.Options.MessageBytesMax; its default when 0). A world
	// whose snapshots are many times this exercises streamed snapshots.
	MessageBytesMax int
	// SnapshotSendBytesPerTick throttles the snapshots a leader streams
	// (cluster.Options.SnapshotSendBytesPerTick; its default when 0): a
	// slow stream gives crashes time to land in the middle of it.
	SnapshotSendBytesPerTick int64
	// Knobs plant deliberate bugs (tests that prove a sweep catches them)
	// in the replicas; NodeKnobs in the node around them (sessions,
	// transactions, pub/sub).
	Knobs     *cluster.TestingKnobs
	NodeKnobs *node.TestingKnobs
	// NotifyKeyspaceEvents is the node's notify-keyspace-events ("":
	// off, as keel server's default).
	NotifyKeyspaceEvents string
	// OpenWithNow passes the node's clock to cluster.Open (Options.NowNanos)
	// so keys already expired are skipped while loading a snapshot. Off by
	// default: the server does not set it (docs/simulation.md).
	OpenWithNow bool
	// MaxMemory and MaxMemoryPolicy are the node's maxmemory and
	// maxmemory-policy (0: no limit); the evictions its leaders log join
	// the history (evict.go).
	MaxMemory       int64
	MaxMemoryPolicy engine.Policy
}

// NodeAddr is node id's client address ("n3:6379"): what redirects name,
// and what CLUSTER ADDNODE is given.
func NodeAddr(id uint64) string { return "n" + itoa(int64(id)) + ":" + itoa(nodePort) }

// Node is one simulated machine running keel: the real node.Node (the
// same code the server runs) over the machine's simulated disk and clock,
// driven from the event loop. The simulator is its node.Runtime: client
// connections deliver bytes that the node's sessions parse with the real
// RESP reader; the steps the sessions return are gathered while the node
// is busy and submitted to each group at once (group commit); ticks,
// peer messages and background jobs run as events; disk latency and a
// per-request CPU cost keep the node busy, and what it produced leaves
// when it is free.
type Node struct {
	r    *Run
	cfg  NodeConfig
	name string
	// aimCtx is what the node is doing (aim.go: which window its disk
	// operations fall in).
	aimCtx string
	// crashCause names the fault behind the power loss to come (the
	// power-off, the crash point armed or aimed: its fault id), which
	// names its tears under Variant.StableTears.
	crashCause string
	FS         *FS
	Clock      *Clock
	// nd is the keel node of the current process (nil while down).
	nd *node.Node
	up bool
	// dead: refused to start for good, or gave up restarting.
	dead bool
	// stopped: Stop took the node out for good (a removed member).
	stopped bool
	// epoch counts processes: a crash or restart ends one, and every
	// event scheduled for an old one does nothing.
	epoch uint64
	busy  int64 // virtual time until which the node is occupied
	// stalls: the stretches it was occupied for longer than a tick
	// (setBusy).
	stalls []Stall
	tries  int
	// starts counts the processes started (Starts).
	starts int
	// downFor, when set, overrides RestartDelay once (a scenario keeps a
	// node down longer).
	downFor time.Duration
	// grp is set when the node is a member of a replicated world.
	grp *Group

	// Client work: conns with input or an answered step (ready, in
	// order), and the steps gathered per group for the next Submit.
	ready  []*conn
	steps  map[uint64][]stepItem
	drainQ bool
	tickQ  bool
	// peerMsgs wait for the node to be free.
	peerMsgs []peerMsg
	stepQ    bool
	// outbox holds what the node produced (replies, peer messages); it
	// leaves when the node is free.
	outbox []func()
	flushQ bool
	// conns are the node's open connections (node side), by id.
	conns map[uint64]*conn
	// jobs are the background snapshot jobs handed out, by group.
	jobs map[uint64]*simJob
	// ticks counts the process's ticks.
	ticks int
	// reopens is the node's count of replicas reopened after a disk
	// failure, as last seen (checkReopen).
	reopens int64
}

// stepItem is one session's step waiting for its group's Submit.
type stepItem struct {
	c  *conn
	st node.Step
}

type peerMsg struct {
	from  uint64
	group uint64
	data  []byte
	// attack: a frame no honest node sent (busattack.go): an error
	// stepping it is a refusal, not a failure.
	attack bool
}

// simJob is a snapshot job handed out by a replica: it runs JobDelay
// later (or at once when the node must wait for it, WaitJob).
type simJob struct {
	g   uint64
	rep *cluster.Replica
	job *cluster.Job
	ran bool
	err error
}

func newNode(r *Run, cfg NodeConfig) *Node {
	name := "n" + itoa(int64(cfg.ID))
	n := &Node{r: r, cfg: cfg, name: name, Clock: newClock(r.W, cfg.Clock)}
	// A forward step skips a stretch of the node's clock in which no tick
	// ran, so no everysec fsync could: like a stall, it does not count
	// against the durability window (clock-skew seed 167169927: a step of
	// 2.35 s 0.15 ms before a power loss made a write acknowledged 0.15 s
	// earlier look 2.5 s old).
	n.Clock.onStep = func(fromNs, toNs int64) {
		if r.Oracle != nil {
			r.Oracle.Stalled(seam.Millis(fromNs), seam.Millis(toNs))
		}
	}
	n.FS = NewFS(cfg.FS, r.W.Stream("node/"+itoa(int64(cfg.ID))+"/disk"), func(s string) {
		r.W.Trace(name, s)
		r.fault(strings.Fields(s)[1])
	})
	n.FS.gate = r.scheduledFault
	n.FS.opGate = func(kind string) bool { return r.diskFault(cfg.ID, kind) }
	n.Clock.gate = r.scheduledFault
	n.FS.aim, n.FS.onFault, n.FS.onTorn = n.aimAt, n.diskFaultSeen, n.tornSeen
	if r.cfg.Variant.StableTears {
		n.FS.tearRand = n.tearStream
	}
	return n
}

// tearStream, under Variant.StableTears, is the stream that tears the
// file at place (its path with the digits dropped, and its rank among the
// files of that place, sim/fs.go) in a power loss now: named by the node,
// the deal (Variant.TearDeal), the power loss (the fault that caused it:
// the power-off, or the crash point armed or aimed, by its fault id;
// "final" for the final check's; else the moment) and the place. Which
// sectors a tear keeps then depends neither on the draws the disk made
// before it (every write, flip and crash point of every earlier life) nor
// on the other files the power loss found unsynced, nor on when a crash
// point armed so many operations ahead fires, nor on which segment
// number the active WAL segment has: a variant that leaves earlier
// writes out, or scales the segments, tears the same kind of file in the
// same power loss the same way, as long as the tail it finds has as many
// sectors.
func (n *Node) tearStream(place string) *rand.Rand {
	cause := n.crashCause
	if cause == "" {
		cause = "@" + itoa(n.r.W.now)
	}
	return n.r.W.Stream("node/" + itoa(int64(n.cfg.ID)) + "/tear/" + strconv.FormatUint(n.r.cfg.Variant.TearDeal, 10) + "/" +
		cause + "/" + place)
}

// Up reports whether the node is serving.
func (n *Node) Up() bool { return n.up }

// Starts counts the node's process starts (the first included), and
// Reopens the replicas it reopened after a disk failure: a node that
// stayed up throughout has 1 and 0.
func (n *Node) Starts() int { return n.starts }

// Reopens is the node's count of replicas reopened from disk after a
// fatal disk error (0 while down).
func (n *Node) Reopens() int64 {
	if n.nd == nil {
		return 0
	}
	return n.nd.ReplicaReopens()
}

// ID is the node's id on the network.
func (n *Node) ID() uint64 { return n.cfg.ID }

func (n *Node) trace(what string) { n.r.W.Trace(n.name, what) }

func (n *Node) nowMs() int64 { return seam.Millis(n.Clock.Now()) }

// groups is how many replica groups the node hosts.
func (n *Node) groups() int {
	if n.grp == nil {
		return 1
	}
	return n.grp.groups
}

// multiGroup: the node hosts more than one replica group.
func (n *Node) multiGroup() bool { return n.groups() > 1 }

// call runs f and reports whether it hit a disk crash point. Any other
// panic is a bug in the code under test and propagates to the run.
func (n *Node) call(f func()) (crashed bool, op string) {
	defer func() {
		if p := recover(); p != nil {
			cp, ok := p.(CrashPoint)
			if !ok {
				panic(p)
			}
			crashed, op = true, cp.Op
		}
	}()
	f()
	return false, ""
}

// whenFree runs fn once the node is no longer busy, unless *queued says
// it is already due; a crash or restart in between (a new epoch) cancels
// it.
func (n *Node) whenFree(queued *bool, fn func()) {
	if *queued {
		return
	}
	*queued = true
	epoch := n.epoch
	n.r.W.At(max(n.r.W.now, n.busy), func() {
		if epoch != n.epoch {
			return
		}
		*queued = false
		fn()
	})
}

// setBusy occupies the node until the virtual time until. A stretch longer
// than a tick is a stall (a pause, a slow disk): the replica cannot run its
// everysec fsync during it, so the oracle does not count it against the
// durability window.
func (n *Node) setBusy(until int64) {
	now := n.r.W.now
	if from := max(n.busy, now); until-from > int64(n.cfg.TickEvery) {
		n.r.Oracle.Stalled(seam.Millis(n.Clock.at(from)), seam.Millis(n.Clock.at(until)))
		if k := len(n.stalls); k > 0 && from <= int64(n.stalls[k-1].To) {
			n.stalls[k-1].To = max(n.stalls[k-1].To, time.Duration(until))
		} else {
			n.stalls = append(n.stalls, Stall{From: time.Duration(from), To: time.Duration(until)})
		}
	}
	n.busy = until
}

// Stall is a stretch of the run's time the node could not run (a pause,
// a slow disk operation), longer than a tick.
type Stall struct{ From, To time.Duration }

// Stalls are the node's stalls so far, in order.
func (n *Node) Stalls() []Stall { return n.stalls }

// start runs a new process: it opens the node's replicas from the disk
// (recovery) and checks what it recovered.
func (n *Node) start() {
	n.epoch++
	n.starts++
	n.trace("start")
	n.stableDisk("start")
	n.steps = map[uint64][]stepItem{}
	n.conns = map[uint64]*conn{}
	n.jobs = map[uint64]*simJob{}
	n.ticks, n.reopens = 0, 0
	cfg := node.Config{
		AppendOnly: n.cfg.AppendOnly, AppendFsync: n.cfg.Fsync.String(), Dir: n.cfg.Dir, Port: nodePort,
		TickHz: int(time.Second / n.cfg.TickEvery),
		Clock:  n.Clock, Rand: n.r.W.Stream("node/" + itoa(int64(n.cfg.ID)) + "/node/" + itoa(int64(n.epoch))),
		RunID:                "sim-" + n.name + "-" + itoa(int64(n.epoch)),
		NotifyKeyspaceEvents: n.cfg.NotifyKeyspaceEvents, Knobs: n.cfg.NodeKnobs,
	}
	n.configureMemory(&cfg) // evict.go
	if g := n.grp; g != nil {
		cfg.ID, cfg.Groups = n.cfg.ID, g.founding
		if g.groups > g.founding {
			cfg.MaxGroups = g.groups // splits add the rest (GroupConfig.MaxGroups)
		}
		if g.placed() {
			// Pings carry the views a node needs of the groups it does
			// not host (node/placement.go).
			cfg.Replicas, cfg.PeerPings = g.cfg.Replicas, true
			cfg.FS = n.FS // the hosted groups survive restarts (node/moves.go)
			cfg.NodeDeadAfter = g.cfg.NodeDeadAfter
		}
		for _, id := range g.founders {
			cfg.Peers = append(cfg.Peers, cluster.TopoNode{ID: id, Host: "n" + itoa(int64(id)), Port: nodePort})
		}
		if n.cfg.ID > uint64(g.cfg.Nodes) {
			// A joiner lists the founders and itself, as `keel server
			// --join` does.
			cfg.Join = true
			cfg.Peers = append(cfg.Peers, cluster.TopoNode{ID: n.cfg.ID, Host: n.name, Port: nodePort})
		}
	}
	nd, err := node.New(cfg, simRuntime{n})
	if err != nil {
		panic(err) // the world's configuration is wrong
	}
	if g := n.grp; g != nil && g.cfg.Joiners > 0 {
		// Traced only in worlds with joiners.
		nd.OnPeer(func(id uint64, addr string) {
			what := "removed"
			if addr != "" {
				what = "added " + addr
			}
			n.trace("address book: n" + itoa(int64(id)) + " " + what)
		})
	}
	n.nd = nd
	var openErr error
	crashed, op := n.call(func() { openErr = nd.OpenGroups(n.replicaOptions) })
	n.setBusy(max(n.busy, n.r.W.now) + int64(n.FS.TakeBusy()))
	if crashed {
		n.nd = nil
		n.powerOff("crash point during recovery: " + op)
		return
	}
	if openErr != nil {
		n.nd = nil
		n.startFailed(openErr)
		return
	}
	n.tries = 0
	n.up = true
	if n.grp != nil {
		n.grp.nodeUp(n)
	} else if !n.probe() {
		return
	}
	n.trace("up")
	n.startTicks()
}

// replicaOptions are group g's replica options on this machine, as keel
// server gives them: the node adds membership and routing.
func (n *Node) replicaOptions(g uint64) cluster.Options {
	var openNow int64
	if n.cfg.OpenWithNow {
		openNow = n.Clock.Now()
	}
	stream := "node/" + itoa(int64(n.cfg.ID)) + "/replica/" + itoa(int64(n.epoch))
	if n.multiGroup() {
		stream += "/g" + itoa(int64(g))
	}
	return cluster.Options{
		FS: n.FS, Dir: node.GroupDir(n.cfg.Dir, n.groups(), g), AppendOnly: n.cfg.AppendOnly, Fsync: n.cfg.Fsync,
		SnapshotLogBytes: n.cfg.SnapshotLogBytes, SegmentBytes: n.cfg.SegmentBytes,
		NowNanos: openNow, Knobs: n.cfg.Knobs, MessageBytesMax: n.cfg.MessageBytesMax,
		SnapshotSendBytesPerTick: n.cfg.SnapshotSendBytesPerTick,
		Rand:                     n.r.W.Stream(stream),
		Observer:                 n.r.raft.observer(n.cfg.ID, g),
	}
}

// startFailed reacts to a start whose recovery returned an error: a
// transient I/O error is retried, a refusal (corruption) is counted.
func (n *Node) startFailed(err error) {
	n.tries++
	msg := oneLine(err.Error())
	transient := errors.Is(err, ErrIO) || errors.Is(err, disk.ErrNoSpace)
	if transient {
		n.trace("start failed (transient): " + msg)
		n.r.fault("start-failed")
	} else {
		n.trace("start refused: " + msg)
		n.r.Oracle.StartRefused(msg)
	}
	n.FS.KillProcess()
	if n.tries >= restartAttemptsMax || (!transient && n.tries >= refusedStartsMax) {
		if transient {
			n.r.Oracle.fail("node could not restart after " + itoa(int64(n.tries)) + " attempts: " + msg)
		}
		n.dead = true
		n.trace("gave up restarting")
		return
	}
	n.scheduleRestart()
}

// replica is group g's replica (nil while down or out of range); only for
// the world's own inspection (checks, the final phase).
func (n *Node) replica(g uint64) *cluster.Replica {
	if n.nd == nil || g < 1 || g > uint64(n.groups()) {
		return nil
	}
	return n.nd.Replica(g)
}

// groupSuffix names group g in trace lines of a multi-group world.
func (n *Node) groupSuffix(g uint64) string {
	if !n.multiGroup() {
		return ""
	}
	return " g" + itoa(int64(g))
}

// probe reads every workload key (GET and PTTL) right after recovery and
// hands the result to the oracle's prefix check. It is the world looking
// at the node, not a client: it submits to the replica directly.
func (n *Node) probe() bool {
	keys := n.r.keys
	typed := n.r.cfg.Workload.Grammar != nil
	per := 2
	if typed {
		per += len(typedProbe)
	}
	recs := make([]recorder, per*len(keys))
	reqs := make([]cluster.Request, per*len(keys))
	for i, k := range keys {
		reqs[per*i] = cluster.Request{Argv: [][]byte{[]byte("GET"), []byte(k)}, W: &recs[per*i]}
		reqs[per*i+1] = cluster.Request{Argv: [][]byte{[]byte("PTTL"), []byte(k)}, W: &recs[per*i+1]}
		if typed {
			for j, argv := range typedProbeArgv(k) {
				q := cluster.Request{W: &recs[per*i+2+j]}
				for _, a := range argv {
					q.Argv = append(q.Argv, []byte(a))
				}
				reqs[per*i+2+j] = q
			}
		}
	}
	// The workloads' function libraries: the model holds each as a key
	// (libKeyPrefix) that reads "" when the library is loaded, and a
	// crash may lose a load as it may any write.
	libs := n.r.cfg.Workload.libraries()
	libRecs := make([]recorder, len(libs))
	for i, lib := range libs {
		reqs = append(reqs, cluster.Request{Argv: [][]byte{[]byte("FUNCTION"), []byte("LIST"), []byte("LIBRARYNAME"), []byte(lib)}, W: &libRecs[i]})
	}
	now := n.Clock.Now()
	crashed, op := n.callIn(ctxSubmit, func() { n.nd.Submit(1, now, reqs, nil) })
	if crashed {
		n.powerOff("crash point during probe: " + op)
		return false
	}
	n.setBusy(max(n.busy, n.r.W.now) + int64(n.FS.TakeBusy()))
	probe := make([]probeKey, len(keys), len(keys)+len(libs))
	for i := range keys {
		probe[i].val = recs[per*i].top
		probe[i].pttl = recs[per*i+1].top
		probe[i].hasTTL = recs[per*i+1].top.Kind == ':'
		if typed {
			for j := range typedProbe {
				probe[i].typed = append(probe[i].typed, recs[per*i+2+j].top)
			}
		}
	}
	keys = slices.Clip(keys) // the appends below copy, leaving the run's list alone
	for i, lib := range libs {
		p := probeKey{val: nullReply}
		if r := libRecs[i].top; r.Kind == '*' && len(r.Elems) > 0 {
			p.val = bulkReply("")
		}
		keys = append(keys, libKeyPrefix+lib)
		probe = append(probe, p)
	}
	n.r.Oracle.Recovered(keys, probe, seam.Millis(now))
	return true
}

func (n *Node) startTicks() {
	epoch := n.epoch
	var tick func()
	tick = func() {
		if epoch != n.epoch {
			return
		}
		n.r.W.After(n.tickEvery(), tick)
		n.whenFree(&n.tickQ, func() {
			now := n.Clock.Now()
			n.ticks++
			for g := uint64(1); g <= uint64(n.groups()); g++ {
				crashed, op := n.callIn(ctxTick, func() { n.nd.Tick(g, now) })
				if crashed {
					n.powerOff("crash point: " + op)
					return
				}
				if n.nd == nil {
					return // the node stopped (Runtime.Shutdown)
				}
			}
			n.setBusy(max(n.busy, n.r.W.now) + int64(n.FS.TakeBusy()))
			n.flush()
			n.checkReopen()
			if n.grp != nil && n.grp.cfg.Moves {
				n.grp.checkVoterCount(n) // moves.go
			}
		})
	}
	n.r.W.After(n.tickEvery(), tick)
}

// checkReopen follows the node's reaction to a fatal disk error: it
// reopened a replica from disk (node/group.go) while the process lives
// on. In the single-node world that is a recovery like a restart's: the
// oracle learns the moment of failure and checks what was recovered.
func (n *Node) checkReopen() {
	if n.nd == nil || n.nd.ReplicaReopens() == n.reopens {
		return
	}
	n.reopens = n.nd.ReplicaReopens()
	n.r.fault("reopen")
	if n.grp == nil {
		n.r.Oracle.Crashed(n.nowMs())
		n.probe()
	}
}

// tickEvery is the virtual time between ticks. A group member ticks every
// TickEvery of its own clock (a fast clock ticks more often, as a real
// timer does); the single node's ticks stay in virtual time.
func (n *Node) tickEvery() time.Duration {
	if n.grp != nil {
		return n.Clock.virtualFor(n.cfg.TickEvery)
	}
	return n.cfg.TickEvery
}

// down stops the process: its memory, queued work and connections are
// gone. power: the machine lost power (page cache dropped, torn writes),
// else only the process died.
func (n *Node) down(power bool) {
	if n.grp == nil {
		n.r.Oracle.Crashed(n.nowMs())
	}
	n.r.aims.nodeDown(n.r)
	n.up = false
	n.epoch++
	n.nd = nil
	n.ready, n.steps = nil, nil
	n.drainQ, n.tickQ, n.stepQ, n.flushQ = false, false, false, false
	n.peerMsgs, n.outbox = nil, nil
	for _, c := range n.conns {
		c.lost()
	}
	n.conns, n.jobs = nil, nil
	if power {
		n.stableDisk("power-loss")
		n.FS.Crash()
	} else {
		n.FS.KillProcess()
	}
	// A crash point armed for this process is gone with it.
	n.crashCause = ""
}

// powerOff is a crash with power loss; the node restarts after its delay.
func (n *Node) powerOff(reason string) {
	if reason == "final check" {
		n.crashCause = "final"
	}
	n.trace("power-off (" + reason + ")")
	n.r.fault("crash")
	n.down(true)
	n.scheduleRestart()
}

// stableDisk, under Variant.StableDisk, gives the node's disk a stream of
// its own for what follows event (a start, a power loss), named by the
// node and the moment: the draws of one process's life (its read flips,
// its crash points, its torn sectors) no longer depend on how many draws
// the lives before it made, so a variant that leaves an earlier fault out
// keeps the later ones where they were (what shrinking needs).
func (n *Node) stableDisk(event string) {
	if !n.r.cfg.Variant.StableDisk {
		return
	}
	n.FS.reseed(n.r.W.Stream("node/" + itoa(int64(n.cfg.ID)) + "/disk/" + event + "@" + itoa(n.r.W.now)))
}

// PowerOff crashes the node now (scenario fault).
func (n *Node) PowerOff() {
	if !n.r.scheduledFault("power-off", n.up) {
		return
	}
	n.crashCause = n.r.schedID()
	n.powerOff("scheduled")
}

// PowerOffFor cuts the node's power and keeps it down for d.
func (n *Node) PowerOffFor(d time.Duration) {
	if !n.r.scheduledFault("power-off", n.up) {
		return
	}
	n.crashCause = n.r.schedID()
	n.downFor = d
	n.powerOff("scheduled, down for " + d.String())
}

// Restart stops the node's process (the page cache survives) and starts
// it again after RestartDelay, as a rolling restart does.
func (n *Node) Restart() {
	if !n.r.scheduledFault("restart", n.up) {
		return
	}
	n.restart()
}

// restart is Restart, not a fault of the schedule (the final phase's).
func (n *Node) restart() {
	if !n.up {
		return
	}
	n.trace("restart (process)")
	n.r.fault("restart")
	n.down(false)
	n.scheduleRestart()
}

// CrashDuringIO arms a crash at the k-th disk mutation from now.
func (n *Node) CrashDuringIO(k int64) {
	if n.r.scheduledFault("crash-io", n.up) {
		n.crashCause = n.r.schedID()
		n.trace("arm crash point at disk operation +" + itoa(k))
		n.FS.CrashAfter(k)
	}
}

// Pause stalls the node (a GC pause): it processes nothing for d.
func (n *Node) Pause(d time.Duration) {
	if !n.r.scheduledFault("pause", n.up) {
		return
	}
	n.trace("pause " + d.String())
	n.r.fault("pause")
	n.setBusy(max(n.busy, n.r.W.now) + int64(d))
}

// Stop takes the node out for good, as an operator stops the process of
// a member the group removed: it is not restarted, it refuses
// connections, and the final phase leaves it alone.
func (n *Node) Stop() {
	n.trace("stop for good")
	n.dead, n.stopped = true, true
	n.downFor = 0
	if n.grp != nil {
		n.grp.forgetNode(n)
	}
	if n.up {
		n.down(false)
		return
	}
	n.epoch++ // a restart already scheduled does nothing
}

func (n *Node) scheduleRestart() {
	if n.dead {
		return
	}
	epoch := n.epoch
	d := n.cfg.RestartDelay
	if n.downFor > 0 {
		d, n.downFor = n.downFor, 0
	}
	n.r.W.After(d, func() {
		if epoch == n.epoch {
			n.start()
		}
	})
}

// flush sends what the node produced once it is free (after its disk
// time): nothing leaves a node that crashes first.
func (n *Node) flush() {
	if n.grp != nil {
		n.grp.noteRole(n)
	}
	if len(n.outbox) == 0 {
		return
	}
	out := n.outbox
	n.outbox = nil
	epoch := n.epoch
	n.r.W.At(max(n.r.W.now, n.busy), func() {
		if epoch != n.epoch {
			return // a crash loses what had not left yet
		}
		for _, f := range out {
			f()
		}
	})
}

// Client work. A connection's bytes (conn.go) or an answered step make
// its session ready; drain runs the ready sessions as far as they go,
// then submits the steps they returned, one Submit per group.

// ready queues c's session to run when the node is free.
func (n *Node) makeReady(c *conn) {
	if c.queued {
		return
	}
	if len(n.ready) >= inputsMax {
		n.trace("drop input of " + c.name() + " (queue full)")
		c.breakConn()
		return
	}
	c.queued = true
	n.ready = append(n.ready, c)
	n.scheduleDrain()
}

func (n *Node) scheduleDrain() {
	if len(n.ready) > 0 {
		n.whenFree(&n.drainQ, n.drain)
	}
}

func (n *Node) drain() {
	if !n.up || len(n.ready) == 0 {
		return
	}
	if n.r.W.now < n.busy {
		n.scheduleDrain()
		return
	}
	k := min(len(n.ready), batchMax)
	batch := n.ready[:k:k]
	n.ready = n.ready[k:]
	for _, c := range batch {
		c.queued = false
		c.advance()
		if n.nd == nil {
			return // the node went down (a crash point, Runtime.Shutdown)
		}
	}
	reqs := 0
	var checks []oracleCheck
	for g := uint64(1); g <= uint64(n.groups()); g++ {
		items := n.steps[g]
		if len(items) == 0 {
			continue
		}
		delete(n.steps, g)
		done, ok := n.submit(g, items, &checks)
		if !ok {
			return
		}
		reqs += done
	}
	n.setBusy(n.r.W.now + int64(n.FS.TakeBusy()) + int64(n.cfg.RequestCost)*int64(max(reqs, 1)))
	if len(checks) > 0 {
		ackMs := seam.Millis(n.Clock.at(n.busy))
		for _, ch := range checks {
			ch.report(n, ackMs)
		}
	}
	n.flush()
	n.checkReopen()
	n.scheduleDrain()
}

// submit hands the steps gathered for group g to the node as one batch
// (group commit). Their sessions go on once it answers them: at once for
// a single node, when the writes commit for a replicated group. It
// returns the number of requests, and false when the node crashed.
func (n *Node) submit(g uint64, items []stepItem, checks *[]oracleCheck) (int, bool) {
	var reqs []cluster.Request
	var sb strings.Builder
	sb.WriteString("submit ")
	count := 0
	for _, it := range items {
		count += len(it.st.Reqs)
	}
	sb.WriteString(itoa(int64(count)) + n.groupSuffix(g) + ":")
	watchOracle := n.grp == nil
	for _, it := range items {
		for _, q := range it.st.Reqs {
			if watchOracle {
				// The oracle checks every reply in execution order.
				t := &teeWriter{w: q.W}
				*checks = append(*checks, oracleCheck{tee: t, words: requestWords(q), nowMs: n.nowMs(), conn: it.c.id})
				q.W = t
			}
			reqs = append(reqs, q)
			sb.WriteString(" " + it.c.name())
			if q.Asking {
				sb.WriteString("(asking)")
			}
		}
	}
	n.trace(sb.String())
	n.r.Stats.Contention.batch(items)
	if watchMeetsWrite(reqs) {
		n.r.Reach(MarkWatchMeetsWrite)
	}
	done := func() {
		for _, it := range items {
			it.c.stepAnswered()
		}
	}
	now := n.Clock.Now()
	crashed, op := n.callIn(ctxSubmit, func() { n.nd.Submit(g, now, reqs, done) })
	if crashed {
		if watchOracle {
			for _, ch := range *checks {
				n.r.Oracle.InFlight(ch.words, ch.nowMs)
			}
		}
		n.powerOff("crash point: " + op)
		return 0, false
	}
	return count, n.nd != nil
}

// oracleCheck is one request of the single-node world whose reply the
// oracle checks once the batch is answered.
type oracleCheck struct {
	tee   *teeWriter
	words []string
	nowMs int64
	conn  uint64 // the connection it came on (the grammar's WATCH check)
}

func (ch oracleCheck) report(n *Node, ackMs int64) {
	rec := &ch.tee.rec
	if rec.n != 1 {
		n.r.Oracle.fail("t=" + fmtMs(ch.nowMs) + " " + strings.Join(ch.words, " ") + ": the replica wrote " + itoa(int64(rec.n)) + " replies, want exactly 1")
		return
	}
	if n.r.cfg.Workload.Grammar != nil {
		n.r.Oracle.watchCheck(ch.conn, ch.words, rec.top, ch.nowMs)
	}
	n.r.Oracle.Executed(ch.words, rec.top, ch.nowMs, ackMs)
}

// requestWords spells a replica request for the oracle: a command's
// arguments, or a transaction as txnWords (banktxn.go), marked when it
// runs under a WATCH (it may then answer null).
func requestWords(q cluster.Request) []string {
	if q.Txn == nil {
		words := make([]string, len(q.Argv))
		for i, a := range q.Argv {
			words[i] = string(a)
		}
		return words
	}
	cmds := make([][]string, len(q.Txn.Cmds))
	for i, c := range q.Txn.Cmds {
		cmds[i] = make([]string, len(c))
		for j, a := range c {
			cmds[i][j] = string(a)
		}
	}
	w := txnWords(cmds...)
	if len(q.Txn.Watched) > 0 {
		w = append([]string{w[0], txnWatched}, w[1:]...)
	}
	return w
}

// Peer messages.

// deliverPeer is a message arriving from the network.
func (n *Node) deliverPeer(from uint64, data []byte) {
	if !n.up {
		return
	}
	if len(n.peerMsgs) >= peerInboxMax {
		n.trace("drop message from n" + itoa(int64(from)) + " (inbox full)")
		return
	}
	g, body, ok := n.nd.Route(from, data)
	if !ok {
		n.trace("refuse message from n" + itoa(int64(from)))
		return
	}
	if g == 0 {
		return // taken by the node itself (a forwarded publish)
	}
	n.peerMsgs = append(n.peerMsgs, peerMsg{from: from, group: g, data: body})
	n.scheduleSteps()
}

// deliverAttackFrame is an attack frame arriving from the network
// (busattack.go): routed and stepped like any message, its refusals
// counted rather than failed.
func (n *Node) deliverAttackFrame(from uint64, data []byte) {
	if !n.up || len(n.peerMsgs) >= peerInboxMax {
		return
	}
	g, body, ok := n.nd.Route(from, data)
	if !ok {
		n.trace("refuse attack frame from n" + itoa(int64(from)))
		n.r.fault("bus-refused")
		return
	}
	if g == 0 {
		return
	}
	n.peerMsgs = append(n.peerMsgs, peerMsg{from: from, group: g, data: body, attack: true})
	n.scheduleSteps()
}

func (n *Node) scheduleSteps() {
	if len(n.peerMsgs) > 0 {
		n.whenFree(&n.stepQ, n.stepPeers)
	}
}

// stepPeers hands queued peer messages to their groups, in arrival order.
func (n *Node) stepPeers() {
	if !n.up || len(n.peerMsgs) == 0 {
		return
	}
	if n.r.W.now < n.busy {
		n.scheduleSteps()
		return
	}
	k := min(len(n.peerMsgs), stepsPerEvent)
	msgs := n.peerMsgs[:k:k]
	n.peerMsgs = n.peerMsgs[k:]
	now := n.Clock.Now()
	for _, m := range msgs {
		var errs []error
		crashed, op := n.callIn(peerContext(m.data), func() { errs = n.nd.Step(m.group, now, []node.PeerMessage{{From: m.from, Data: m.data}}) })
		if crashed {
			n.powerOff("crash point: " + op)
			return
		}
		if n.nd == nil {
			return
		}
		for _, err := range errs {
			if err != nil && m.attack {
				n.trace("attack frame from n" + itoa(int64(m.from)) + n.groupSuffix(m.group) + " refused: " + oneLine(err.Error()))
				n.r.fault("bus-refused")
				continue
			}
			if errors.Is(err, cluster.ErrNotMember) {
				// A removed node that still runs: refused, as it must be.
				n.trace("refuse message from n" + itoa(int64(m.from)) + n.groupSuffix(m.group) + ": not a member")
				continue
			}
			if err != nil {
				n.r.Oracle.fail("n" + itoa(int64(n.cfg.ID)) + " step of a message from n" + itoa(int64(m.from)) + n.groupSuffix(m.group) + ": " + oneLine(err.Error()))
			}
		}
	}
	n.setBusy(n.r.W.now + int64(n.FS.TakeBusy()) + int64(n.cfg.RequestCost)*int64(k))
	n.flush()
	n.checkReopen()
	n.scheduleSteps()
}

// Background jobs.

// runJob runs a handed-out job's Run (its disk time does not keep the
// node busy); false when it hit a crash point (the node is then off).
func (n *Node) runJob(j *simJob) bool {
	saved := n.FS.TakeBusy()
	crashed, op := n.callIn(ctxSnapJob, func() { j.err = j.job.Run() })
	took := n.FS.TakeBusy()
	n.FS.busy = saved
	j.ran = true
	if crashed {
		n.powerOff("crash point during snapshot: " + op)
		return false
	}
	n.r.Stats.Snapshots++
	epoch := n.epoch
	n.r.W.After(took, func() {
		if epoch != n.epoch || n.nd == nil {
			return
		}
		msg := "ok"
		if j.err != nil {
			msg = oneLine(j.err.Error())
		}
		n.trace("snapshot job done index=" + itoa(int64(j.job.Index())) + n.groupSuffix(j.g) + ": " + msg)
		crashed, op := n.callIn(ctxSnapDone, func() { n.nd.JobDone(j.g, j.rep, j.job, j.err) })
		if crashed {
			n.powerOff("crash point installing snapshot: " + op)
			return
		}
		n.flush()
		n.checkReopen()
	})
	return true
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// simRuntime is the simulator's node.Runtime for one node.
type simRuntime struct{ n *Node }

var _ node.Runtime = simRuntime{}

// Exclusive runs fn at once: a run is one goroutine, so nothing else
// touches the replica meanwhile.
func (rt simRuntime) Exclusive(_ *node.Session, _ uint64, fn func()) { fn() }

func (rt simRuntime) Send(to uint64, msg []byte) {
	n := rt.n
	b := append([]byte(nil), msg...)
	from := n.cfg.ID
	n.r.aims.sent(n.r.W.now, b)
	n.outbox = append(n.outbox, func() { n.r.Net.sendDatagram(from, to, b) })
}

func (rt simRuntime) Wake(s *node.Session) {
	if c, ok := s.Conn().(*conn); ok {
		c.pushed()
	}
}

// Unpark: the session, parked in a blocking command, runs again when the
// node is free.
func (rt simRuntime) Unpark(s *node.Session) {
	if c, ok := s.Conn().(*conn); ok && !c.broken && c.sess == s {
		c.n.makeReady(c)
	}
}

func (rt simRuntime) Disconnect(s *node.Session) {
	if c, ok := s.Conn().(*conn); ok {
		c.n.trace("disconnect " + c.name())
		c.closeFromNode()
	}
}

func (rt simRuntime) StartJob(g uint64, r *cluster.Replica, job *cluster.Job) {
	n := rt.n
	j := &simJob{g: g, rep: r, job: job}
	n.jobs[g] = j
	epoch := n.epoch
	n.trace("snapshot job handed out index=" + itoa(int64(job.Index())) + n.groupSuffix(g))
	n.r.W.After(n.cfg.JobDelay, func() {
		if epoch != n.epoch || j.ran {
			return
		}
		n.runJob(j)
	})
}

// WaitJob runs group g's handed-out job now if it has not run yet, as the
// server waits for its goroutine.
func (rt simRuntime) WaitJob(g uint64) {
	n := rt.n
	if j := n.jobs[g]; j != nil && !j.ran {
		n.trace("wait for the snapshot job index=" + itoa(int64(j.job.Index())) + n.groupSuffix(g))
		saved, ctx := n.FS.TakeBusy(), n.aimCtx
		n.aimCtx = ctxSnapJob
		j.err = j.job.Run() // a crash point propagates to the caller's call
		n.aimCtx = ctx
		j.ran = true
		n.FS.busy += saved
	}
}

func (rt simRuntime) StartSync(g uint64, r *cluster.Replica, sj *cluster.SyncJob) {
	n := rt.n
	epoch := n.epoch
	n.r.W.After(n.cfg.JobDelay, func() {
		if epoch != n.epoch || n.nd == nil {
			return
		}
		var err error
		crashed, op := n.callIn(ctxSync, func() { err = sj.Run() })
		if !crashed {
			crashed, op = n.callIn(ctxSync, func() { n.nd.SyncDone(g, r, sj, err) })
		}
		if crashed {
			n.powerOff("crash point during a background fsync: " + op)
			return
		}
		n.flush()
		n.checkReopen()
	})
}

// OpenGroup opens the node's replica of group g at run time (a move
// placed it here), as an event of its own: the node's tick asked.
func (rt simRuntime) OpenGroup(g uint64) {
	n := rt.n
	epoch := n.epoch
	n.r.W.After(0, func() {
		if epoch != n.epoch || n.nd == nil {
			return
		}
		n.trace("open replica" + n.groupSuffix(g))
		var err error
		crashed, op := n.call(func() { err = n.nd.OpenGroup(g, n.replicaOptions(g)) })
		n.setBusy(max(n.busy, n.r.W.now) + int64(n.FS.TakeBusy()))
		if crashed {
			n.powerOff("crash point opening a moved replica: " + op)
			return
		}
		if err != nil {
			n.trace("open replica" + n.groupSuffix(g) + " failed: " + oneLine(err.Error()))
		}
		n.flush()
	})
}

// DropGroup closes and deletes the node's replica of group g, as an
// event of its own.
func (rt simRuntime) DropGroup(g uint64) {
	n := rt.n
	epoch := n.epoch
	n.r.W.After(0, func() {
		if epoch != n.epoch || n.nd == nil {
			return
		}
		n.trace("drop replica" + n.groupSuffix(g))
		var err error
		crashed, op := n.call(func() { err = n.nd.DropGroup(g, n.Clock.Now()) })
		n.setBusy(max(n.busy, n.r.W.now) + int64(n.FS.TakeBusy()))
		if crashed {
			n.powerOff("crash point dropping a moved replica: " + op)
			return
		}
		if err != nil {
			n.trace("drop replica" + n.groupSuffix(g) + " failed: " + oneLine(err.Error()))
		}
		if n.replica(g) == nil {
			n.grp.checkDrop(n, g) // moves.go
		}
		n.flush()
	})
}

// Shutdown: the process stops (a replica could not be reopened, or a
// client sent SHUTDOWN); a supervisor starts it again.
func (rt simRuntime) Shutdown() {
	n := rt.n
	if !n.up {
		return
	}
	epoch := n.epoch
	n.trace("shutdown requested")
	n.r.W.After(0, func() {
		if epoch == n.epoch && n.up {
			n.r.fault("shutdown")
			n.down(false)
			n.scheduleRestart()
		}
	})
}

func (rt simRuntime) Host() node.HostInfo {
	return node.HostInfo{ProcessID: int(rt.n.cfg.ID), Executable: "keel", MultiplexAPI: "sim", OS: "sim", GoVersion: "sim"}
}

func (rt simRuntime) Logf(format string, args ...any) {
	rt.n.trace("log " + oneLine(fmt.Sprintf(format, args...)))
}
