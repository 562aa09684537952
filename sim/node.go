package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/seam"
)

// Bounds on what one node holds (TigerBeetle style: every queue is bounded).
const (
	// inboxMax: requests waiting for the node; more are dropped (the
	// client times out), as a server sheds load past its queue.
	inboxMax = 4096
	// batchMax: requests in one Submit (one group commit).
	batchMax = 256
	// restartAttemptsMax: restarts tried after transient I/O errors before
	// the node is declared unable to come back.
	restartAttemptsMax = 20
	// refusedStartsMax: starts retried after a refusal (corruption
	// detected). Transient read flips clear up on a retry; rot at rest
	// does not, and the node then stays down.
	refusedStartsMax = 5
)

// NodeConfig is one node.
type NodeConfig struct {
	ID         uint64
	Dir        string
	AppendOnly bool
	Fsync      cluster.FsyncPolicy
	FS         FSConfig
	Clock      ClockConfig
	// TickEvery is how often the runtime calls Replica.Tick.
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
	// Knobs plant deliberate bugs (tests that prove a sweep catches them).
	Knobs *cluster.TestingKnobs
	// OpenWithNow passes the node's clock to cluster.Open (Options.NowNanos)
	// so keys already expired are skipped while loading a snapshot. Off by
	// default: the server does not set it, and as of this writing it
	// breaks replay (a key skipped at load is missing for log entries after
	// the snapshot that saw it alive; docs/simulation.md).
	OpenWithNow bool
}

// request is a client command in flight to a node.
type request struct {
	client uint64
	seq    uint64
	argv   [][]byte
	words  []string
	// readOnly: the client's connection sent READONLY (group.go).
	readOnly bool
	// asking: the client sent ASKING just before this command (one-shot,
	// shard.go).
	asking bool
	// group, when not 0, is the replica group a sharded node hands the
	// request to (the admin's membership change, applied to each group in
	// turn; groupclient.go), instead of the group its slot names.
	group uint64
}

// Node runs the real cluster.Replica on a simulated disk and clock, driven
// from the event loop: requests are batched into Submit calls while the
// node is busy (group commit), Tick runs periodically, and disk latency
// keeps the node busy.
type Node struct {
	r     *Run
	cfg   NodeConfig
	name  string
	FS    *FS
	Clock *Clock
	rep   *cluster.Replica
	// reps are the node's replicas, one per replica group (group g at
	// g-1); reps[0] is rep. One entry except in a sharded world
	// (GroupConfig.Groups > 1, shard.go).
	reps []*cluster.Replica
	up   bool
	dead bool // refused to start for good, or gave up restarting
	// stopped: Stop took the node out for good (a removed member).
	stopped bool
	epoch   uint64
	inbox   []*request
	drainQ  bool
	tickQ   bool
	busy    int64 // virtual time until which the node is occupied
	tries   int
	// grp is set when the node is one voter of a replicated group
	// (group.go); nil for the single-node world.
	grp *Group
	// peerMsgs wait for the node to be free (group.go).
	peerMsgs []peerMsg
	stepQ    bool
	// outbox holds what the last replica call produced (replies and
	// messages for peers); it leaves when the node is free (group.go).
	outbox []func()
	// downFor, when set, overrides RestartDelay once (a scenario keeps a
	// node down longer).
	downFor time.Duration
	// fatalEpoch is the epoch that ended in a fatal-error restart: the
	// process lives on, so what it had produced still leaves (group.go).
	fatalEpoch uint64
	// slots is the node's slot table in a sharded world (shard.go).
	slots *slotTable
}

func newNode(r *Run, cfg NodeConfig) *Node {
	name := "n" + itoa(int64(cfg.ID))
	n := &Node{r: r, cfg: cfg, name: name, Clock: newClock(r.W, cfg.Clock)}
	n.FS = NewFS(cfg.FS, r.W.Stream("node/"+itoa(int64(cfg.ID))+"/disk"), func(s string) {
		r.W.Trace(name, s)
		r.fault(strings.Fields(s)[1])
	})
	return n
}

// Up reports whether the node is serving.
func (n *Node) Up() bool { return n.up }

func (n *Node) trace(what string) { n.r.W.Trace(n.name, what) }

func (n *Node) nowMs() int64 { return seam.Millis(n.Clock.Now()) }

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

// receive is a request arriving from the network.
func (n *Node) receive(q *request) {
	if !n.up {
		if n.stopped && n.sharded() {
			// A process stopped for good on a machine that is up refuses
			// the connection at once (groupclient.go); one-group worlds
			// keep their timeouts (their traces predate this).
			n.trace("refuse c" + itoa(int64(q.client)) + "#" + itoa(int64(q.seq)) + " (stopped)")
			n.r.Net.sendStream(n.cfg.ID, q.client, func() { n.r.clientByID(q.client).onRefused(q.seq, n) })
			return
		}
		n.trace("drop c" + itoa(int64(q.client)) + "#" + itoa(int64(q.seq)) + " (down)")
		return
	}
	if len(n.inbox) >= inboxMax {
		n.trace("drop c" + itoa(int64(q.client)) + "#" + itoa(int64(q.seq)) + " (inbox full)")
		return
	}
	n.inbox = append(n.inbox, q)
	n.scheduleDrain()
}

func (n *Node) scheduleDrain() {
	if len(n.inbox) > 0 {
		n.whenFree(&n.drainQ, n.drain)
	}
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

func (n *Node) drain() {
	if !n.up || len(n.inbox) == 0 {
		return
	}
	if n.r.W.now < n.busy {
		n.scheduleDrain()
		return
	}
	if n.grp != nil {
		n.drainAsync()
		return
	}
	k := min(len(n.inbox), batchMax)
	batch := n.inbox[:k:k]
	n.inbox = n.inbox[k:]
	recs := make([]recorder, k)
	reqs := make([]cluster.Request, k)
	for i, q := range batch {
		reqs[i] = n.r.requestFor(q, &recs[i])
	}
	now := n.Clock.Now()
	var sb strings.Builder
	sb.WriteString("submit " + itoa(int64(k)) + ":")
	for _, q := range batch {
		sb.WriteString(" c" + itoa(int64(q.client)) + "#" + itoa(int64(q.seq)))
	}
	n.trace(sb.String())
	crashed, op := n.call(func() { n.rep.Submit(now, reqs) })
	nowMs := seam.Millis(now)
	if crashed {
		for _, q := range batch {
			n.r.Oracle.InFlight(q.words, nowMs)
		}
		n.powerOff("crash point: " + op)
		return
	}
	n.setBusy(n.r.W.now + int64(n.FS.TakeBusy()) + int64(n.cfg.RequestCost)*int64(k))
	ackMs := seam.Millis(n.Clock.at(n.busy))
	epoch := n.epoch
	for i, q := range batch {
		rec := &recs[i]
		if rec.n != 1 {
			n.r.Oracle.fail(fmt.Sprintf("t=%s %s: the replica wrote %d replies, want exactly 1", fmtMs(nowMs), strings.Join(q.words, " "), rec.n))
		}
		n.r.Oracle.Executed(q.words, rec.top, nowMs, ackMs)
		reply := rec.top
		q := q
		n.r.W.At(n.busy, func() {
			if epoch != n.epoch {
				return
			}
			n.r.Net.sendStream(n.cfg.ID, q.client, func() { n.r.clientByID(q.client).onReply(q.seq, reply) })
		})
	}
	n.checkFatal()
	n.scheduleDrain()
}

// checkFatal restarts the node from disk when the replica reports a fatal
// disk fault, as the production runtime does.
func (n *Node) checkFatal() {
	if n.rep == nil {
		return
	}
	n.startJob()
	for g, rep := range n.reps {
		err := rep.Err()
		if err == nil {
			continue
		}
		n.trace("fatal " + oneLine(err.Error()) + n.groupSuffix(uint64(g+1)))
		n.r.fault("fatal-restart")
		n.fatalEpoch = n.epoch
		n.down(false)
		n.scheduleRestart()
		return
	}
}

// startJob runs a snapshot job the replica handed out, as the production
// runtime does on another goroutine: here an event JobDelay later whose
// disk time does not keep the node busy; JobDone follows when its I/O
// would have finished. A crash in between abandons it.
func (n *Node) startJob() {
	for g, rep := range n.reps {
		n.startJobOf(uint64(g+1), rep)
	}
}

func (n *Node) startJobOf(g uint64, rep *cluster.Replica) {
	j := rep.PendingJob()
	if j == nil {
		return
	}
	epoch := n.epoch
	n.trace("snapshot job handed out index=" + itoa(int64(j.Index())) + n.groupSuffix(g))
	n.r.W.After(n.cfg.JobDelay, func() {
		if epoch != n.epoch {
			return
		}
		saved := n.FS.TakeBusy()
		var err error
		crashed, op := n.call(func() { err = j.Run() })
		took := n.FS.TakeBusy()
		n.FS.busy = saved
		if crashed {
			n.powerOff("crash point during snapshot: " + op)
			return
		}
		n.r.Stats.Snapshots++
		n.r.W.After(took, func() {
			if epoch != n.epoch || rep != n.replica(g) {
				return
			}
			msg := "ok"
			if err != nil {
				msg = oneLine(err.Error())
			}
			n.trace("snapshot job done index=" + itoa(int64(j.Index())) + n.groupSuffix(g) + ": " + msg)
			crashed, op := n.call(func() { rep.JobDone(j, err) })
			if crashed {
				n.powerOff("crash point installing snapshot: " + op)
				return
			}
			n.flush()
			n.checkFatal()
		})
	})
}

func (n *Node) startTicks() {
	epoch := n.epoch
	ticks := 0
	var tick func()
	tick = func() {
		if epoch != n.epoch {
			return
		}
		n.r.W.After(n.tickEvery(), tick)
		n.whenFree(&n.tickQ, func() {
			now := n.Clock.Now()
			ticks++
			for i, rep := range n.reps {
				crashed, op := n.call(func() {
					rep.Tick(now)
					if n.sharded() && ticks%spreadCheckTicks == 0 {
						n.spreadLeadership(uint64(i+1), rep)
					}
				})
				if crashed {
					n.powerOff("crash point: " + op)
					return
				}
			}
			n.setBusy(max(n.busy, n.r.W.now) + int64(n.FS.TakeBusy()))
			n.flush()
			n.checkFatal()
		})
	}
	n.r.W.After(n.tickEvery(), tick)
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

// down stops the node: volatile state and queued requests are gone.
// power: the machine lost power (page cache dropped, torn writes), else
// only the process died.
func (n *Node) down(power bool) {
	if n.grp == nil {
		n.Crashed()
	}
	n.up = false
	n.epoch++
	n.inbox = nil
	n.drainQ, n.tickQ = false, false
	n.peerMsgs, n.stepQ, n.outbox = nil, false, nil
	n.rep, n.reps = nil, nil
	if power {
		n.FS.Crash()
	} else {
		n.FS.KillProcess()
	}
}

// Crashed tells the oracle when the node went down.
func (n *Node) Crashed() { n.r.Oracle.Crashed(n.nowMs()) }

// powerOff is a crash with power loss; the node restarts after its delay.
func (n *Node) powerOff(reason string) {
	n.trace("power-off (" + reason + ")")
	n.r.fault("crash")
	n.down(true)
	n.scheduleRestart()
}

// PowerOff crashes the node now (scenario fault).
func (n *Node) PowerOff() {
	if !n.up {
		return
	}
	n.powerOff("scheduled")
}

// CrashDuringIO arms a crash at the k-th disk mutation from now.
func (n *Node) CrashDuringIO(k int64) {
	if n.up {
		n.trace("arm crash point at disk operation +" + itoa(k))
		n.FS.CrashAfter(k)
	}
}

// Pause stalls the node (a GC pause): it processes nothing for d.
func (n *Node) Pause(d time.Duration) {
	if !n.up {
		return
	}
	n.trace("pause " + d.String())
	n.r.fault("pause")
	n.setBusy(max(n.busy, n.r.W.now) + int64(d))
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

// start opens the replica from the node's disk (recovery) and checks what
// it recovered. A sharded node opens one replica per group, in group
// order, each in its own directory; if any fails, the start fails.
func (n *Node) start() {
	n.epoch++
	n.trace("start")
	groups := 1
	if n.grp != nil {
		groups = n.grp.groups
		n.resetSlots()
	}
	// Filled as the replicas open: one opening may ask the slot table
	// about the others (SlotRedirect during replay).
	n.reps = make([]*cluster.Replica, groups)
	for g := uint64(1); g <= uint64(groups); g++ {
		rep, ok := n.open(g)
		if !ok {
			n.reps = nil
			return
		}
		n.reps[g-1] = rep
	}
	n.tries = 0
	n.rep = n.reps[0]
	n.up = true
	if n.grp != nil {
		n.grp.nodeUp(n)
	} else if !n.probe() {
		return
	}
	n.trace("up")
	n.startTicks()
	n.scheduleDrain()
}

// open opens group g's replica; false when the start failed (the node
// was powered off at a crash point, or the open failed and a restart is
// scheduled or given up).
func (n *Node) open(g uint64) (*cluster.Replica, bool) {
	var rep *cluster.Replica
	var err error
	var openNow int64
	if n.cfg.OpenWithNow {
		openNow = n.Clock.Now()
	}
	stream := "node/" + itoa(int64(n.cfg.ID)) + "/replica/" + itoa(int64(n.epoch))
	if n.sharded() {
		stream += "/g" + itoa(int64(g))
	}
	opts := cluster.Options{
		FS: n.FS, Dir: n.groupDir(g), AppendOnly: n.cfg.AppendOnly, Fsync: n.cfg.Fsync,
		SnapshotLogBytes: n.cfg.SnapshotLogBytes, SegmentBytes: n.cfg.SegmentBytes,
		NowNanos: openNow, Knobs: n.cfg.Knobs,
		Rand: n.r.W.Stream(stream),
	}
	if n.grp != nil {
		n.groupOptions(&opts, g)
	}
	crashed, op := n.call(func() { rep, err = cluster.Open(opts) })
	n.setBusy(max(n.busy, n.r.W.now) + int64(n.FS.TakeBusy()))
	if crashed {
		n.powerOff("crash point during recovery: " + op)
		return nil, false
	}
	if err != nil {
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
			return nil, false
		}
		n.scheduleRestart()
		return nil, false
	}
	return rep, true
}

// groupDir is where group g's replica keeps its files: the node's
// directory, or group-<g> under it in a sharded world (as the server's
// --groups does).
func (n *Node) groupDir(g uint64) string {
	if !n.sharded() {
		return n.cfg.Dir
	}
	return n.cfg.Dir + "/group-" + itoa(int64(g))
}

// replica is group g's replica (nil while down or out of range).
func (n *Node) replica(g uint64) *cluster.Replica {
	if g < 1 || g > uint64(len(n.reps)) {
		return nil
	}
	return n.reps[g-1]
}

// sharded: the node hosts more than one replica group.
func (n *Node) sharded() bool { return n.grp != nil && n.grp.groups > 1 }

// groupSuffix names group g in trace lines of a sharded world ("" in the
// others, whose traces stay as they were).
func (n *Node) groupSuffix(g uint64) string {
	if !n.sharded() {
		return ""
	}
	return " g" + itoa(int64(g))
}

// probe reads every workload key (GET and PTTL) through Submit right after
// recovery and hands the result to the oracle's prefix check.
func (n *Node) probe() bool {
	keys := n.r.keys
	recs := make([]recorder, 2*len(keys))
	reqs := make([]cluster.Request, 2*len(keys))
	for i, k := range keys {
		reqs[2*i] = cluster.Request{Argv: [][]byte{[]byte("GET"), []byte(k)}, W: &recs[2*i]}
		reqs[2*i+1] = cluster.Request{Argv: [][]byte{[]byte("PTTL"), []byte(k)}, W: &recs[2*i+1]}
	}
	now := n.Clock.Now()
	crashed, op := n.call(func() { n.rep.Submit(now, reqs) })
	if crashed {
		n.powerOff("crash point during probe: " + op)
		return false
	}
	n.setBusy(max(n.busy, n.r.W.now) + int64(n.FS.TakeBusy()))
	probe := make([]probeKey, len(keys))
	for i := range keys {
		probe[i].val = recs[2*i].top
		probe[i].pttl = recs[2*i+1].top
		probe[i].hasTTL = recs[2*i+1].top.Kind == ':'
	}
	n.r.Oracle.Recovered(keys, probe, seam.Millis(now))
	return true
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// setBusy occupies the node until the virtual time until. A stretch longer
// than a tick is a stall (a pause, a slow disk): the replica cannot run its
// everysec fsync during it, so the oracle does not count it against the
// durability window.
func (n *Node) setBusy(until int64) {
	now := n.r.W.now
	if until-max(n.busy, now) > int64(n.cfg.TickEvery) {
		n.r.Oracle.Stalled(seam.Millis(n.Clock.at(max(n.busy, now))), seam.Millis(n.Clock.at(until)))
	}
	n.busy = until
}

// ID is the node's id on the network.
func (n *Node) ID() uint64 { return n.cfg.ID }
