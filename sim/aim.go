package sim

import (
	"math/rand/v2"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
)

// Aimed crashes and "sometimes" markers.
//
// A crash at a random disk operation (CrashDuringIO) rarely lands in the
// windows where a storage or consensus bug hides: after a vote is written
// and before it is synced, after an append and before its fsync, in the
// middle of a snapshot install, while the log is compacted. A marker
// names such a window; the run knows which one a disk operation falls in
// from what the node is doing when it issues it (which peer message it
// steps, whether it runs a snapshot job, a submit, a background fsync)
// and which file it touches. Every time a run passes a marker it counts
// it (Result.Markers: a sweep shows which rare states it reached, and how
// often), and when the run aims at that marker (Config.Aim, Run.Aim,
// Variant.Aim) it crashes the node there with the aim's probability: the
// operation stops halfway (a sync does not reach the disk, a write keeps
// a seeded prefix), and the node loses power.
//
// Markers that are not crash windows are counted where the simulator sees
// them (a WATCH meeting a write in the same batch, a SET on a key with a
// TTL, a leader change while a snapshot is sent, ...): Markers lists
// them all, so a sweep can name those no run reached.

// Crash-window markers (Config.Aim keys).
const (
	// MarkVoteUnsynced: a WAL fsync while the node answers a vote
	// request (its vote and term are written, not yet durable).
	MarkVoteUnsynced = "vote-unsynced"
	// MarkAppendUnsynced: a WAL fsync after entries were appended: a
	// follower stepping its leader's append, a leader (or the one node)
	// logging a batch, a background everysec fsync.
	MarkAppendUnsynced = "append-unsynced"
	// MarkSnapshotInstall: a disk mutation while a follower installs its
	// leader's snapshot (chunks written, the file renamed into place).
	MarkSnapshotInstall = "snapshot-install"
	// MarkSnapshotWrite: a disk mutation of a background snapshot job.
	MarkSnapshotWrite = "snapshot-write"
	// MarkCompaction: a WAL segment removed, or its directory synced,
	// once a snapshot made it redundant (log compaction).
	MarkCompaction = "compaction"
)

// Coverage-only markers (MarkFsyncErrorInCompaction can be aimed at too:
// an I/O error instead of a crash).
const (
	// MarkFsyncErrorInCompaction: an fsync or write error injected while
	// a snapshot finished and the log was compacted.
	MarkFsyncErrorInCompaction = "fsync-error-in-compaction"
	// MarkTornWALTail: a power loss kept part of a WAL file's unsynced
	// tail (its last record torn).
	MarkTornWALTail = "torn-wal-tail"
	// MarkLeaderChangeDuringSnapSend: a new leader was elected while a
	// snapshot stream was being sent.
	MarkLeaderChangeDuringSnapSend = "leader-change-during-snapshot-send"
	// MarkWatchMeetsWrite: a transaction under WATCH and a write of a
	// key it watches were submitted in the same batch.
	MarkWatchMeetsWrite = "watch-meets-write-in-batch"
	// MarkSetOnTTLKey: a plain SET (no EX, PX, KEEPTTL) on a key that
	// had a TTL.
	MarkSetOnTTLKey = "set-on-ttl-key"
	// MarkCrashInMembershipChange, MarkLeaderChangeInMembershipChange: a
	// node went down, or a leader was elected, while the admin's
	// membership change was under way (Group.Admin).
	MarkCrashInMembershipChange        = "crash-during-membership-change"
	MarkLeaderChangeInMembershipChange = "leader-change-during-membership-change"
	// MarkCrashInSlotMove, MarkLeaderChangeInSlotMove: the same while a
	// slot range was being moved between groups (Group.Reshard).
	MarkCrashInSlotMove        = "crash-during-slot-move"
	MarkLeaderChangeInSlotMove = "leader-change-during-slot-move"
)

// crashIn prefixes a crash-window marker for a crash that struck inside
// the window (aimed or not): "crash-in-vote-unsynced".
const crashIn = CrashIn

// CrashIn prefixes a crash-window marker for a crash that struck inside it.
const CrashIn = "crash-in-"

// AimMarkers are the markers a run can aim crashes at.
var AimMarkers = []string{MarkVoteUnsynced, MarkAppendUnsynced, MarkSnapshotInstall, MarkSnapshotWrite, MarkCompaction}

// Markers lists every marker: the crash windows, a crash in each, then
// the others.
var Markers = append(append(append([]string{}, AimMarkers...), crashInAll()...),
	MarkFsyncErrorInCompaction, MarkTornWALTail, MarkLeaderChangeDuringSnapSend, MarkWatchMeetsWrite,
	MarkSetOnTTLKey, MarkCrashInMembershipChange, MarkLeaderChangeInMembershipChange, MarkCrashInSlotMove,
	MarkLeaderChangeInSlotMove)

func crashInAll() []string {
	out := make([]string, len(AimMarkers))
	for i, m := range AimMarkers {
		out[i] = crashIn + m
	}
	return out
}

// aimHoldoff is the calm after an aimed crash before the next: enough for
// the node to come back and the group to elect a leader, so aims at a
// frequent marker do not keep a node down for good.
const aimHoldoff = 1500 * time.Millisecond

// node contexts: what a node is doing when it issues a disk operation.
const (
	ctxNone        = ""
	ctxSubmit      = "submit"
	ctxVote        = "vote"
	ctxAppend      = "append"
	ctxSnapInstall = "snapshot-install"
	ctxRaft        = "raft"
	ctxSnapJob     = "snapshot-job"
	ctxSnapDone    = "snapshot-done"
	ctxSync        = "background-sync"
	ctxTick        = "tick"
)

// Peer frame kinds and Raft message types the simulator peeks at to tell
// a node's context (cluster/snapstream.go, cluster/peerframe.go, raftpb):
// only the first bytes are read, nothing is decoded. If the frame format
// changes, the aims find no window, which TestAimedCrashesLand catches.
const (
	peerKindSnapChunk   = 0xB1
	peerKindRaftChecked = 0xB3
	raftFrameHeader     = 5
	pbTypeTag           = 0x08 // raftpb.Message field 1 (Type), a varint
)

// peerContext is the context of stepping a peer message.
func peerContext(data []byte) string {
	if len(data) == 0 {
		return ctxRaft
	}
	switch data[0] {
	case peerKindSnapChunk:
		return ctxSnapInstall
	case peerKindRaftChecked:
		if len(data) > raftFrameHeader+1 && data[raftFrameHeader] == pbTypeTag {
			switch pb.MessageType(data[raftFrameHeader+1]) {
			case pb.MsgVote:
				return ctxVote
			case pb.MsgApp:
				return ctxAppend
			case pb.MsgSnap:
				return ctxSnapInstall
			}
		}
	}
	return ctxRaft
}

// windowOf is the crash-window marker a mutating disk operation issued in
// ctx falls in ("" for none).
func windowOf(ctx string, op disk.Op) string {
	kind := ClassifyFile(op.Path)
	switch {
	case op.Kind == disk.OpSync && kind == KindWAL:
		switch ctx {
		case ctxVote:
			return MarkVoteUnsynced
		case ctxAppend, ctxSubmit, ctxSync:
			return MarkAppendUnsynced
		}
	case op.Kind == disk.OpRemove && kind == KindWAL && ctx == ctxSnapDone:
		return MarkCompaction
	case op.Kind == disk.OpSyncDir && ctx == ctxSnapDone && path.Base(op.Path) == "wal":
		return MarkCompaction
	}
	switch ctx {
	case ctxSnapInstall:
		return MarkSnapshotInstall
	case ctxSnapJob:
		return MarkSnapshotWrite
	}
	return ""
}

// aimState is a run's aims: markers reached, and where to crash.
type aimState struct {
	w       *World
	reached map[string]int64
	// first is when the run first passed each marker (Result.MarkerFirst).
	first map[string]int64
	// from: no aimed crash before then (Variant.AimFrom).
	from  int64
	aim   map[string]float64
	until int64 // no aimed crash from then on (0: the workload's end)
	rng   *rand.Rand
	last  int64 // when the last aimed crash struck (-1: none yet)
	// snapSentAt is when a node last sent a snapshot chunk (-1: never).
	snapSentAt int64
}

// groupAimCalm is how long before a group's liveness window aims stop:
// the restart, recovery and election after the last aimed crash.
const groupAimCalm = 3 * time.Second

// snapSendRecent is how recently a snapshot chunk must have been sent for
// a new leader to count as elected during the send.
const snapSendRecent = 300 * time.Millisecond

// sent notes a peer message a node sends.
func (a *aimState) sent(now int64, msg []byte) {
	if len(msg) > 0 && msg[0] == peerKindSnapChunk {
		a.snapSentAt = now
	}
}

// newLeader notes a leader elected in r.
func (a *aimState) newLeader(r *Run) {
	if a.snapSentAt >= 0 && r.W.now-a.snapSentAt < int64(snapSendRecent) {
		a.reach(MarkLeaderChangeDuringSnapSend)
	}
	membership, move := r.changesUnderWay()
	if membership {
		a.reach(MarkLeaderChangeInMembershipChange)
	}
	if move {
		a.reach(MarkLeaderChangeInSlotMove)
	}
}

// nodeDown notes a node going down (a power loss or a process crash).
func (a *aimState) nodeDown(r *Run) {
	membership, move := r.changesUnderWay()
	if membership {
		a.reach(MarkCrashInMembershipChange)
	}
	if move {
		a.reach(MarkCrashInSlotMove)
	}
}

// changesUnderWay reports whether a membership change and a slot move
// are in progress.
func (r *Run) changesUnderWay() (membership, move bool) {
	g := r.Group
	if g == nil {
		return false, false
	}
	membership = g.admin != nil && g.admin.route.admin != nil && !g.admin.route.admin.acl
	move = g.resharder != nil && g.resharder.route.reshard != nil && g.resharder.route.reshard.move != nil
	return membership, move
}

func newAimState(r *Run) *aimState {
	a := &aimState{w: r.W, reached: map[string]int64{}, first: map[string]int64{}, last: -1, snapSentAt: -1,
		until: int64(r.cfg.Duration), from: int64(r.cfg.Variant.AimFrom)}
	if g := r.cfg.Group; g != nil {
		// A group must heal, elect and serve writes for LivenessWithin
		// before the workload ends: aims stop in time for that.
		a.until = int64(r.cfg.Duration - g.LivenessWithin - groupAimCalm)
	}
	if r.cfg.AimUntil > 0 && r.cfg.AimUntil < r.cfg.Duration {
		a.until = int64(r.cfg.AimUntil)
	}
	for k, p := range r.cfg.Aim {
		a.set(r, k, p)
	}
	for k, p := range r.cfg.Variant.Aim {
		a.set(r, k, p)
	}
	return a
}

func (a *aimState) set(r *Run, marker string, p float64) {
	if p <= 0 {
		delete(a.aim, marker)
		return
	}
	if a.aim == nil {
		a.aim = map[string]float64{}
		// Its own stream: aiming draws nothing from the streams a run
		// without aims uses, so the rest of the run stays as it was.
		a.rng = r.W.Stream("aim")
	}
	a.aim[marker] = min(p, 1)
}

// Aim sets the probability that a node crashes when it passes marker (0:
// stop aiming there): a schedule's way to aim crashes at a window for a
// while.
func (r *Run) Aim(marker string, p float64) {
	r.W.Trace("sim", "aim "+marker+" "+strconv.FormatFloat(p, 'g', 3, 64))
	r.aims.set(r, marker, p)
}

// Reach counts one pass of marker (for markers a scenario sees).
func (r *Run) Reach(marker string) { r.aims.reach(marker) }

// firstTimes is when each marker was first passed.
func (a *aimState) firstTimes() map[string]time.Duration {
	out := make(map[string]time.Duration, len(a.first))
	for m, t := range a.first {
		out[m] = time.Duration(t)
	}
	return out
}

// reach counts one pass of marker and notes when it was first passed.
func (a *aimState) reach(marker string) {
	a.reached[marker]++
	if _, ok := a.first[marker]; !ok {
		a.first[marker] = a.w.now
	}
}

// aimAt is node n's disk hook: it counts the window op falls in and, when
// the run aims there, crashes the operation.
func (n *Node) aimAt(op disk.Op) (disk.Fault, bool) {
	if !op.Kind.Mutates() {
		return disk.Fault{}, false
	}
	if f, ok := n.aimErrorInCompaction(op); ok {
		return f, true
	}
	m := windowOf(n.aimCtx, op)
	if m == "" {
		return disk.Fault{}, false
	}
	a := n.r.aims
	a.reach(m)
	p := a.aim[m]
	now := n.r.W.now
	if p == 0 || now >= a.until || now < a.from || (a.last >= 0 && now-a.last < int64(aimHoldoff)) {
		return disk.Fault{}, false
	}
	if a.rng.Float64() >= p {
		return disk.Fault{}, false
	}
	if !n.r.aimedFault("aimed-crash") {
		return disk.Fault{}, false
	}
	n.crashCause = "a" + strconv.Itoa(n.r.vs.aimed)
	a.last = now
	a.reach(crashIn + m)
	n.r.fault("aimed-" + m)
	n.trace("aimed crash at " + m + ": " + opName(op))
	f := disk.Fault{Kind: disk.FaultCrash}
	if op.Kind == disk.OpWrite {
		f.Keep = a.rng.Int64N(op.Len + 1)
	}
	return f, true
}

// aimErrorInCompaction fails a write or fsync (EIO) issued while a
// snapshot finishes and the log is compacted, when the run aims at
// MarkFsyncErrorInCompaction: random disk faults almost never land there,
// as the marker's append is the one write of that moment.
func (n *Node) aimErrorInCompaction(op disk.Op) (disk.Fault, bool) {
	a := n.r.aims
	p := a.aim[MarkFsyncErrorInCompaction]
	now := n.r.W.now
	if p == 0 || n.aimCtx != ctxSnapDone || op.Kind != disk.OpWrite && op.Kind != disk.OpSync ||
		now >= a.until || now < a.from || a.rng.Float64() >= p {
		return disk.Fault{}, false
	}
	if !n.r.aimedFault("aimed-io-error") {
		return disk.Fault{}, false
	}
	a.reach(MarkFsyncErrorInCompaction)
	n.r.fault("aimed-" + MarkFsyncErrorInCompaction)
	n.trace("aimed I/O error at " + MarkFsyncErrorInCompaction + ": " + opName(op))
	return disk.Fault{Kind: disk.FaultError, Err: disk.ErrIO}, true
}

func opName(op disk.Op) string {
	names := map[disk.OpKind]string{disk.OpCreate: "create", disk.OpRemove: "remove", disk.OpRename: "rename",
		disk.OpSyncDir: "syncdir", disk.OpWrite: "write", disk.OpSync: "fsync", disk.OpTruncate: "truncate"}
	return names[op.Kind] + " " + path.Base(op.Path)
}

// diskFaultSeen is node n's note of a fault its disk injected.
func (n *Node) diskFaultSeen(op disk.Op, f disk.Fault) {
	if f.Kind == disk.FaultCrash {
		if m := windowOf(n.aimCtx, op); m != "" {
			n.r.aims.reach(crashIn + m)
		}
		return
	}
	if f.Kind == disk.FaultError && n.aimCtx == ctxSnapDone && (op.Kind == disk.OpSync || op.Kind == disk.OpWrite) {
		n.r.aims.reach(MarkFsyncErrorInCompaction)
	}
}

// tornSeen is node n's note of a file a power loss tore.
func (n *Node) tornSeen(name string) {
	if ClassifyFile(name) == KindWAL {
		n.r.aims.reach(MarkTornWALTail)
	}
}

// plainSetOnTTLKey reports whether argv is a SET without an expiry option
// on a key that has a TTL in s.
func plainSetOnTTLKey(s state, nowMs int64, argv []string) bool {
	if len(argv) < 3 || !strings.EqualFold(argv[0], "set") {
		return false
	}
	for _, a := range argv[3:] {
		switch strings.ToLower(a) {
		case "ex", "px", "exat", "pxat", "keepttl":
			return false
		}
	}
	v, ok := s.get(argv[1], nowMs)
	return ok && v.exp > 0
}

// writeCommands are the workload's commands that write their first key.
var writeCommands = map[string]bool{"set": true, "del": true, "incrby": true, "incr": true, "decrby": true,
	"expire": true, "pexpire": true, "getdel": true, "getset": true, "append": true, "persist": true}

// watchMeetsWrite reports whether a transaction under WATCH and another
// request writing a key it watches are in the batch reqs.
func watchMeetsWrite(reqs []cluster.Request) bool {
	for i, q := range reqs {
		if q.Txn == nil || len(q.Txn.Watched) == 0 {
			continue
		}
		for j, o := range reqs {
			if j == i {
				continue
			}
			cmds := [][][]byte{o.Argv}
			if o.Txn != nil {
				cmds = o.Txn.Cmds
			}
			for _, c := range cmds {
				if len(c) < 2 || !writeCommands[strings.ToLower(string(c[0]))] {
					continue
				}
				for _, w := range q.Txn.Watched {
					if string(w.Key) == string(c[1]) {
						return true
					}
				}
			}
		}
	}
	return false
}

// callIn is call with the node's context set to ctx for aims and markers.
func (n *Node) callIn(ctx string, f func()) (crashed bool, op string) {
	saved := n.aimCtx
	n.aimCtx = ctx
	defer func() { n.aimCtx = saved }()
	return n.call(f)
}

// MarkerCounts renders counts sorted by marker ("a=3 b=1"), "none" for
// none.
func MarkerCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += " "
		}
		s += k + "=" + strconv.FormatInt(m[k], 10)
	}
	if s == "" {
		return "none"
	}
	return s
}
