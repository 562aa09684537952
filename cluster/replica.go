package cluster

import (
	"bytes"
	"io"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/cockroachdb/errors"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/seam"
	"github.com/keel-db/keel/udf"
)

// FsyncPolicy is appendfsync.
type FsyncPolicy int

const (
	// FsyncEverySec replies after write(2) and syncs at most a second later.
	FsyncEverySec FsyncPolicy = iota
	// FsyncAlways replies only after the batch is synced.
	FsyncAlways
	// FsyncNo leaves syncing to the OS.
	FsyncNo
)

func (p FsyncPolicy) String() string {
	switch p {
	case FsyncAlways:
		return "always"
	case FsyncNo:
		return "no"
	default:
		return "everysec"
	}
}

const (
	// SnapshotLogBytesDefault is how much log since the last snapshot
	// triggers the next one.
	SnapshotLogBytesDefault = 64 << 20
	// everysecSyncAfter is how long appended bytes may stay unsynced under
	// everysec. Half a second, not one, so that the tick period (~100 ms)
	// and a slow fsync still keep the loss window under the promised 1 s.
	everysecSyncAfter = 500 * time.Millisecond
	// nodeID is this node in its group until replication assigns ids.
	nodeID = 1
	// raft sizing: replay hands committed entries over in batches of up to
	// committedBytesPerReady.
	committedBytesPerReady = 64 << 20
	msgBytesMax            = 1 << 20
	inflightMsgsMax        = 256
	lockFileName           = "LOCK"
	// scratchBytesKept bounds the scratch buffers a replica keeps
	// between calls (recPayloads, cmdScratch); a larger one, left by an
	// unusually large batch, is dropped.
	scratchBytesKept = 4 << 20
)

// Replies for writes the replica refuses.
const (
	ErrMsgDiskFull  = "ERR disk full: write refused (ENOSPC)"
	ErrMsgDiskFatal = "ERR disk write failed; node restarting from disk"
)

// Options configure a Replica.
type Options struct {
	FS  disk.FS
	Dir string
	// AppendOnly turns persistence on. Off, writes apply straight to the
	// engine and nothing touches the disk.
	AppendOnly bool
	Fsync      FsyncPolicy
	Rand       seam.Rand
	// SnapshotLogBytes is the log size since the last snapshot that
	// triggers a new one (SnapshotLogBytesDefault when 0; negative: never).
	SnapshotLogBytes int64
	// SegmentBytes is the WAL segment size (disk.SegmentBytesDefault when 0).
	SegmentBytes int64
	// NowNanos, when set, is the wall time at Open: keys whose deadline has
	// passed are skipped while loading the snapshot. Unset, they are loaded
	// and expire lazily like any other.
	NowNanos int64
	// Knobs plant deliberate bugs for tests (nil in production).
	Knobs *TestingKnobs
	// Observer is told of every change to the Raft log, state and state
	// machine (observe.go; the simulator's invariant checks). Nil in
	// production.
	Observer Observer
	// Functions configures the WASM function host (udf.NewConfig() when
	// nil). Every replica of a group must use the same limits.
	Functions *udf.Config
	// RefuseTruncatedTail is the inverse of Redis's aof-load-truncated:
	// false (aof-load-truncated yes, the default) cuts a torn log tail —
	// what a crash leaves: a partial last record, or zeros where the file
	// grew — at recovery and reports it in RecoveryStats (TailCut gives
	// the line to log); true (aof-load-truncated no) makes Open refuse to
	// start instead, with an error (marked disk.ErrTornTail) naming the
	// file, the offset and the bytes that would be cut, leaving every
	// file as it was. Corruption in the middle of the log is refused
	// either way.
	RefuseTruncatedTail bool
	// BackgroundSync hands the everysec fsync to the runtime (PendingSync,
	// SyncDone) instead of running it inside Submit or Tick, so commands
	// do not wait for the disk. Unset (the simulator, tests that drive the
	// replica alone), Tick and Submit fsync inline.
	BackgroundSync bool

	// ID is this replica's Raft id (1 when 0). Peers are the group's
	// voters when it is first created, this one included; with more than
	// one the group is replicated (group.go) and needs AppendOnly, Send
	// and, for useful redirects, Redirect.
	ID    uint64
	Peers []uint64
	// Send hands a message for peer to to the network; it must not block
	// and may drop (Raft retries). No message is longer than
	// MessageBytesMax.
	Send func(to uint64, msg []byte)
	// MessageBytesMax bounds every message handed to Send
	// (MessageBytesMaxDefault when 0, which leaves room under the
	// transport's frame bound for a runtime's own framing; at least 4
	// KiB). Snapshots travel in chunks below it, Raft's appends are cut
	// below it, and a write command too large to be replicated in one
	// message is refused.
	MessageBytesMax int
	// SnapshotSendBytesPerTick is how many snapshot bytes a leader streams
	// per Tick, over all followers (SnapshotSendBytesPerTickDefault when
	// 0; negative: unthrottled).
	SnapshotSendBytesPerTick int64
	// Join starts a replica that is not a founding member: it bootstraps
	// nothing and waits for the leader (which added it with CLUSTER
	// ADDNODE) to send it the log or a snapshot.
	Join bool
	// OnConfChange, when set, is told of each applied membership change
	// (replay included): the node id, whether it was added, and the
	// address given to CLUSTER ADDNODE.
	OnConfChange func(id uint64, added bool, addr string)
	// Redirect is the error a non-leader answers a request with that only
	// the leader may serve (leader 0: unknown). Typically "MOVED slot
	// host:port" or "TRYAGAIN ...".
	Redirect func(req *Request, leader uint64) string

	// Sharding (slotstate.go, docs/cluster.md): Group is this replica's
	// group id (>= 1 when Slots is set). Slots are the ranges the group
	// owns when it is created; nil turns slot gating off (the group
	// serves every slot, as an unsharded node does).
	Group uint64
	Slots []SlotRange
	// SlotRedirect formats the gate's redirects and must be pure (it runs
	// inside the replica, at apply time too). ask false: this group does
	// not own slot; return "MOVED <slot> host:port" of its owner as the
	// node sees it (or a TRYAGAIN text). ask true: return "ASK <slot>
	// host:port" of group's leader (or TRYAGAIN when unknown).
	SlotRedirect func(req *Request, slot int, ask bool, group uint64) string
	// OnSlotsChanged is told the group's slot state after every applied
	// change (replay and snapshot install included), and once at Open
	// when Slots is set.
	OnSlotsChanged func(SlotInfo)

	// The ACL table (acl.go), kept by the group a node names for it. ACL
	// applies a logged ACL SETUSER/DELUSER/LOAD to table (nil: never
	// set), writes the reply to w and returns the new table, or nil when
	// it is unchanged. It must be pure: every replica applies the same
	// entries with it. Nil: the group keeps no table and answers an ACL
	// write with an error. OnACLChanged is told the table after every
	// change (replay and snapshot installs included) and once at Open.
	ACL          func(table []byte, argv [][]byte, w engine.Writer) []byte
	OnACLChanged func(table []byte)

	// OnMetaChanged, set on the group that keeps the meta record (meta.go),
	// is told the record after every applied change (replay and snapshot
	// installs included) and once at Open; nil when none was ever applied.
	// Nil: the group keeps no record and answers CLUSTER METASET with an
	// error.
	OnMetaChanged func(record []byte)
}

// Request is one client command. Its reply is written to W when the
// command runs; commands submitted by one client run, and reply, in the
// order submitted.
type Request struct {
	Argv [][]byte
	W    engine.Writer
	// Txn, when set, makes this request a whole MULTI/EXEC (see txn.go).
	Txn *Txn
	// ReadOnly is set for a connection that sent READONLY: on a follower
	// of a replicated group its keyed reads are served locally, possibly
	// stale (group.go).
	ReadOnly bool
	// Asking is set when the connection sent ASKING just before this
	// command (one-shot): a group importing the command's slot serves it
	// although it does not own the slot yet (slotstate.go).
	Asking bool
}

// Replica is one replica group's member on this node.
type Replica struct {
	opts    Options
	db      *engine.DB
	persist bool

	lock  io.Closer
	wal   *disk.WAL
	store *logStore
	rn    *raft.RawNode
	conf  pb.ConfState

	lastNowMillis int64
	// logMillis is the latest time the log gave this replica (an applied
	// entry's, or a loaded snapshot's): what a replicated replica's local
	// expiry and snapshots go by, never its own clock, so that no replica
	// drops a key the log still holds (Tick, newJob).
	logMillis    int64
	lastNowNanos int64
	applied      uint64
	nextID       uint64
	inflight     map[uint64]*proposal
	recBuf       []disk.Record
	// recPayloads holds the payloads of recBuf's entry records while
	// persistReady writes them (the WAL copies what it writes), and
	// cmdScratch a replicated batch's commands while proposeFrom gathers
	// them (each proposal copies them): both are reused, so that neither
	// costs an allocation per entry. Each is dropped when it outgrows
	// scratchBytesKept.
	recPayloads []byte
	cmdScratch  []byte
	reader      entryReader
	// warmReader runs ahead of reader in applyCommands, and warmer
	// gathers the keys it and runUpTo warm (engine.Warmer).
	warmReader    entryReader
	warmer        engine.Warmer
	replayReplies engine.Discard // replies of replayed commands, read by no one

	// Fault state: fatal means the WAL can no longer be trusted and the
	// runtime must reopen the replica from disk; noSpace means the last
	// write hit ENOSPC and writes are refused until a probe succeeds.
	fatal   error
	noSpace error

	dirtySince int64 // nanos when the WAL became dirty

	// syncJob is the background everysec fsync (Options.BackgroundSync)
	// not yet reported done; syncHanded says PendingSync gave it out.
	syncJob      *disk.SyncJob
	syncHanded   bool
	syncJobNanos int64 // when syncJob was started

	job            *Job
	jobHanded      bool
	snapIndex      uint64
	prevSnapIndex  uint64
	walBytesAtSnap int64
	changes        int64 // write commands applied since open
	changesAtSave  int64
	lastSaveMillis int64
	lastBgsaveErr  error
	recovery       RecoveryStats

	fn functions // FUNCTION/FCALL (functions.go)

	g groupState // replicated groups only (group.go)

	slots slotState // sharding (slotstate.go); off when Options.Slots is nil

	// addrs are the member addresses CLUSTER ADDNODE gave, as applied
	// (members.go); kept in snapshots.
	addrs map[uint64]string

	// acl is the ACL table as applied (acl.go), nil until the first ACL
	// change; kept in snapshots. Replaced, never changed in place: a
	// snapshot job holds the bytes it was given.
	acl []byte
	// meta is the meta record as applied (meta.go), nil until the first
	// change; kept in snapshots, replaced, never changed in place.
	meta []byte
}

// RecoveryStats says what Open found on disk.
type RecoveryStats struct {
	Snapshot         string // path loaded, "" if none
	SnapshotIndex    uint64
	KeysLoaded       uint64
	EntriesReplayed  uint64
	CorruptSnapshots []string // set aside as <name>.corrupt
	// A torn log tail cut at recovery (TruncatedBytes > 0): the segment,
	// its length after the cut, and the bytes cut.
	TruncatedSegment string
	TruncatedAt      int64
	TruncatedBytes   int64
}

// TailCut is the line a runtime logs when recovery cut a torn log tail,
// or "" when it cut none.
func (s RecoveryStats) TailCut() string {
	if s.TruncatedBytes == 0 {
		return ""
	}
	return "cut a torn log tail: file " + s.TruncatedSegment + " at offset " + strconv.FormatInt(s.TruncatedAt, 10) +
		", " + strconv.FormatInt(s.TruncatedBytes, 10) + " bytes"
}

type proposal struct {
	b         *batch
	positions []int
	replies   []udf.Reply // an effects entry: each call's reply, written as its effects apply
}

type reqState uint8

const (
	stLocal reqState = iota
	stWritePending
	stWriteDone
	stWriteFailed
)

// batch is one Submit call: its requests reply strictly in order.
type batch struct {
	reqs      []Request
	nowMillis int64
	state     []reqState
	failMsg   []string
	next      int
	// warmed: requests before it have had their keys warmed (runUpTo).
	warmed int

	// Replicated groups (group.go): requests before submitted have been
	// classified (and their writes proposed); readCtx is the batch's
	// pending ReadIndex, readIndex what it returned; done runs once
	// every request has its reply.
	submitted int
	readCtx   uint64
	readIndex uint64
	readReady bool
	done      func()
}

// Open recovers the replica from opts.Dir (or starts empty). The recovery
// procedure is described in docs/durability.md.
func Open(opts Options) (*Replica, error) {
	r := &Replica{opts: opts, db: engine.New(engine.Options{Rand: opts.Rand}), persist: opts.AppendOnly}
	if opts.Slots != nil {
		if opts.Group == 0 {
			return nil, errors.New("cluster: a sharded replica needs its group id (Options.Group >= 1)")
		}
		for _, rg := range opts.Slots {
			if err := rg.Check(); err != nil {
				return nil, errors.Wrap(err, "cluster: Options.Slots")
			}
		}
		r.initSlots()
	}
	if r.Replicated() && !r.persist {
		return nil, errors.New("cluster: a replicated group needs appendonly yes (Raft keeps its log on disk)")
	}
	if opts.MessageBytesMax != 0 && opts.MessageBytesMax < messageBytesMin {
		return nil, errors.Newf("cluster: Options.MessageBytesMax %d is below the %d bytes a Raft message may need", opts.MessageBytesMax, messageBytesMin)
	}
	if !r.persist {
		r.slotsChanged()
		r.aclChanged()
		r.metaChanged()
		return r, nil
	}
	r.g.readWait = map[uint64][]*batch{}
	if opts.FS == nil {
		return nil, errors.New("cluster: appendonly needs a file system")
	}
	if r.opts.SnapshotLogBytes == 0 {
		r.opts.SnapshotLogBytes = SnapshotLogBytesDefault
	}
	if opts.Rand != nil {
		r.nextID = opts.Rand.Uint64()
	}
	r.inflight = map[uint64]*proposal{}
	if err := opts.FS.MkdirAll(opts.Dir); err != nil {
		return nil, errors.Wrap(err, "cluster: data dir")
	}
	lock, err := opts.FS.Lock(path.Join(opts.Dir, lockFileName))
	if err != nil {
		return nil, err
	}
	r.lock = lock
	if err := r.recover(); err != nil {
		r.closeFiles()
		r.closeFunctions()
		return nil, err
	}
	r.slotsChanged()
	r.aclChanged()
	r.metaChanged()
	return r, nil
}

func (r *Replica) recover() error {
	fs := r.opts.FS
	// Recovery reads and judges everything before it changes anything on
	// disk (removing leftover temp files, setting corrupt snapshots aside,
	// cutting a torn tail), so that a refusal to start — a torn tail under
	// RefuseTruncatedTail, corruption, a log that does not continue the
	// snapshot — leaves the directory as it found it for the operator to
	// inspect. (One refusal comes after the log is opened: no snapshot
	// loads and the log holds no entry at all.)
	snaps, temps, err := disk.ListSnapshots(fs, r.opts.Dir)
	if err != nil {
		return err
	}
	r.store = &logStore{knobs: r.opts.Knobs}
	if !r.Replicated() {
		r.store.cs = pb.ConfState{Voters: []uint64{r.ID()}}
	}
	var loadErrs []string
	var corrupt []string // snapshots that failed their check, set aside below
	loaded := -1
	for i, name := range snaps {
		r.resetReserved()
		meta, n, err := loadSnapshot(fs, name, r.db, seam.Millis(r.opts.NowNanos), r.restoreReserved)
		if err != nil {
			// A read can return flipped bits that are not on the disk:
			// read once more before calling the file corrupt.
			r.resetReserved()
			meta, n, err = loadSnapshot(fs, name, r.db, seam.Millis(r.opts.NowNanos), r.restoreReserved)
		}
		if err != nil {
			r.resetReserved()
		}
		if err != nil {
			loadErrs = append(loadErrs, err.Error())
			corrupt = append(corrupt, name)
			continue
		}
		loaded = i
		r.membersRestored(meta.Voters)
		r.store.snapIndex, r.store.snapTerm = meta.Index, meta.Term
		if len(meta.Voters) > 0 {
			r.store.cs = pb.ConfState{Voters: meta.Voters, Learners: meta.Learners}
		}
		r.snapIndex = meta.Index
		r.lastSaveMillis = meta.SaveMillis
		// The snapshot's time is a floor for new entries too: keys it
		// left out as expired must stay expired for every later write,
		// even when the log after it is empty and the clock went back.
		if meta.SaveMillis > r.lastNowMillis {
			r.lastNowMillis = meta.SaveMillis
		}
		r.logMillis = max(r.logMillis, meta.SaveMillis)
		r.recovery.Snapshot, r.recovery.SnapshotIndex, r.recovery.KeysLoaded = name, meta.Index, n
		if i+1 < len(snaps) {
			if idx, perr := strconv.ParseUint(path.Base(snaps[i+1])[:16], 16, 64); perr == nil {
				r.prevSnapIndex = idx
			}
		}
		break
	}
	r.opts.Knobs.recoverOlderSnapshotData(r, snaps, loaded)
	gapErr := func(idx uint64) error {
		msg := "cluster: the log does not continue the snapshot: expected entry " +
			strconv.FormatUint(r.store.lastIndex()+1, 10) + ", found " + strconv.FormatUint(idx, 10) +
			": refusing to start"
		if loaded < 0 && len(snaps) > 0 || len(loadErrs) > 0 {
			msg += " (snapshots that failed to load: " + joinErrs(loadErrs) + ")"
		}
		return errors.Mark(errors.New(msg), disk.ErrCorrupt)
	}
	var again disk.Record // ReplayFromSnapshotIndex only
	wal, res, err := disk.OpenWAL(disk.WALOptions{FS: fs, Dir: r.opts.Dir, SegmentBytes: r.opts.SegmentBytes,
		RefuseTornTail: r.opts.RefuseTruncatedTail, Planted: r.opts.Knobs.walPlanted()},
		func(rec disk.Record) error {
			switch rec.Type {
			case disk.RecEntry:
				if rec.Index <= r.store.snapIndex {
					if rec.Index == r.store.snapIndex && r.opts.Knobs.replayFromSnapshotIndex() {
						again = rec
					}
					return nil
				}
				if rec.Index > r.store.lastIndex()+1 {
					return gapErr(rec.Index)
				}
				e, err := recordEntry(rec)
				if err != nil {
					return err
				}
				return r.store.append([]pb.Entry{e})
			case disk.RecHardState:
				hs, err := recordHardState(rec)
				if err != nil {
					return err
				}
				r.store.hs = hs
			case disk.RecSnapshot:
				// A snapshot installed from the leader replaces whatever
				// log this follower had after it (group.go).
				if len(rec.Payload) > 0 && rec.Payload[0] == snapshotInstalled &&
					rec.Index >= r.store.snapIndex && rec.Index < r.store.lastIndex() {
					r.store.ents = r.store.ents[:rec.Index-r.store.snapIndex]
				}
			}
			return nil
		})
	if tt := (*disk.TornTailError)(nil); errors.As(err, &tt) {
		return errors.Mark(errors.Newf("cluster: refusing to start: the log ends in a torn tail: file %s at offset %d, %d bytes would be cut "+
			"(aof-load-truncated no; start with aof-load-truncated yes to cut them)", tt.Segment, tt.At, tt.Bytes), disk.ErrTornTail)
	}
	if err != nil {
		return err
	}
	r.wal = wal
	r.observeLoaded()
	if again.Type == disk.RecEntry && again.Index > 0 {
		if err := r.applyAgain(again); err != nil {
			return err
		}
	}
	r.recovery.TruncatedSegment, r.recovery.TruncatedAt, r.recovery.TruncatedBytes = res.TruncatedSegment, res.TruncatedAt, res.TruncatedBytes
	if r.store.lastIndex() == r.store.snapIndex && loaded < 0 && len(snaps) > 0 {
		return errors.Mark(errors.Newf("cluster: no snapshot could be loaded and the log does not reach back to the start: %s: refusing to start",
			joinErrs(loadErrs)), disk.ErrCorrupt)
	}
	for _, t := range temps {
		if err := fs.Remove(t); err != nil {
			return errors.Wrap(err, "cluster: remove leftover snapshot temp file")
		}
	}
	for _, name := range corrupt {
		// Set it aside so retention never counts it as the fallback.
		if err := fs.Rename(name, name+".corrupt"); err != nil {
			return errors.Wrapf(err, "cluster: set aside corrupt snapshot %s", name)
		}
		r.recovery.CorruptSnapshots = append(r.recovery.CorruptSnapshots, name)
	}
	if len(corrupt) > 0 {
		if err := fs.SyncDir(disk.SnapshotDir(r.opts.Dir)); err != nil {
			return errors.Wrap(err, "cluster: sync snapshot dir")
		}
	}
	r.walBytesAtSnap = 0
	r.applied = r.store.snapIndex
	r.conf = r.store.cs
	rn, err := raft.NewRawNode(r.raftConfig(r.applied))
	if err != nil {
		return errors.Wrap(err, "cluster: start raft")
	}
	r.rn = rn
	if r.bootstrapping() {
		// A new replicated group: the membership is the first log
		// entries, identical on every founding member, so a replica
		// added later learns it from the log like any other change.
		peers := make([]raft.Peer, 0, len(r.opts.Peers))
		for _, id := range r.bootstrapVoters() {
			peers = append(peers, raft.Peer{ID: id})
		}
		if err := r.rn.Bootstrap(peers); err != nil {
			return errors.Wrap(err, "cluster: bootstrap group")
		}
	}
	before := r.applied
	// Replay creates most keys of the keyspace: the engine carves them
	// from slabs instead of allocating three objects per key.
	r.db.BeginBulk()
	err = r.drive()
	r.db.EndBulk()
	if err != nil {
		return err
	}
	r.recovery.EntriesReplayed = r.applied - before
	if r.Replicated() {
		// Elections start from ticks; the Ready of the restart is written
		// before anything is acknowledged.
		if err := r.drive(); err != nil {
			return err
		}
		// A partial snapshot from a leader is kept to be resumed, unless
		// the log has caught up with it since.
		r.removeStaleReceiving()
		return r.wal.Sync()
	}
	if err := r.rn.Campaign(); err != nil {
		return errors.Wrap(err, "cluster: campaign")
	}
	if err := r.drive(); err != nil {
		if r.noSpace != nil {
			return nil // serve reads; Tick probes for space
		}
		return err
	}
	// Start clean: whatever recovery wrote is durable before the first
	// write is acknowledged, under every policy.
	return r.wal.Sync()
}

func joinErrs(errs []string) string {
	var b bytes.Buffer
	for i, e := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e)
	}
	return b.String()
}

func (r *Replica) raftConfig(applied uint64) *raft.Config {
	c := &raft.Config{
		ID:                       r.ID(),
		ElectionTick:             electionTicks,
		HeartbeatTick:            heartbeatTicks,
		Storage:                  r.store,
		Applied:                  applied,
		MaxSizePerMsg:            r.appendBytesMax(),
		MaxCommittedSizePerReady: committedBytesPerReady,
		MaxInflightMsgs:          inflightMsgsMax,
		Logger:                   silentLogger{},
	}
	if r.Replicated() {
		// A leader cut off from its majority steps down after an election
		// timeout; a partitioned node cannot disrupt with term bumps;
		// reads confirm leadership by a heartbeat round; only the leader
		// proposes, so a proposal's fate is known to its proposer.
		c.CheckQuorum = true
		c.PreVote = true
		c.ReadOnlyOption = raft.ReadOnlySafe
		c.DisableProposalForwarding = true
		c.StepDownOnRemoval = true
	}
	return c
}

// bootstrapVoters is the configuration of a group with no snapshot yet.
func (r *Replica) bootstrapVoters() []uint64 {
	if !r.Replicated() {
		return []uint64{r.ID()}
	}
	v := append([]uint64(nil), r.opts.Peers...)
	slices.Sort(v)
	return v
}

// advanceNow keeps the replica's clock monotonic: a log entry never carries
// an earlier time than the one before it, whatever the wall clock did.
func (r *Replica) advanceNow(now int64) int64 {
	if now > r.lastNowNanos {
		r.lastNowNanos = now
	}
	ms := seam.Millis(now)
	if ms > r.lastNowMillis {
		r.lastNowMillis = ms
	}
	if r.lastSaveMillis == 0 {
		r.lastSaveMillis = r.lastNowMillis // as Redis: LASTSAVE starts at boot
	}
	return r.lastNowMillis
}

// Submit runs a batch of requests at time now (Unix nanoseconds). On a
// single node every reply has been written when Submit returns. The
// batch's write commands become one log entry (more if it is large), all
// written with one WAL write and, under appendfsync always, one fsync;
// reads run against applied state, each only after every earlier write of
// the batch has been applied, so replies come in submission order.
func (r *Replica) Submit(now int64, reqs []Request) {
	if r.Replicated() && r.persist {
		r.SubmitAsync(now, reqs, nil)
		return
	}
	ms := r.advanceNow(now)
	b := &batch{reqs: reqs, nowMillis: ms, state: make([]reqState, len(reqs)), failMsg: make([]string, len(reqs))}
	if !r.persist {
		r.runUpTo(b, len(reqs))
		return
	}
	var cmds []byte
	var positions []int
	propose := func() {
		if len(positions) == 0 {
			return
		}
		r.nextID++
		id := r.nextID
		data := encodeEntryHeader(make([]byte, 0, 32+len(cmds)), id, ms, len(positions))
		data = append(data, cmds...)
		p := &proposal{b: b, positions: positions}
		r.inflight[id] = p
		if err := r.rn.Propose(data); err != nil {
			delete(r.inflight, id)
			r.failProposal(p, "ERR write not accepted by the log: "+err.Error())
		}
		cmds, positions = cmds[:0], nil
	}
	for i := range reqs {
		if reqs[i].Txn != nil {
			r.submitTxn(b, i, propose)
			continue
		}
		argv := r.opts.Knobs.incrByFromBatchStart(r, ms, &reqs[i])
		if functionKind(argv) == fnCall {
			propose()
			r.submitCall(b, i)
			continue
		}
		if msg := r.reshardRefusal(argv); msg != "" {
			b.state[i], b.failMsg[i] = stWriteFailed, msg
			continue
		}
		if !isWrite(argv) || r.opts.Knobs.getExUnlogged(argv) {
			continue
		}
		if msg := r.writeRefusal(); msg != "" {
			b.state[i], b.failMsg[i] = stWriteFailed, msg
			continue
		}
		argv = r.withAsking(&reqs[i], argv)
		n := encodedCommandBytes(argv)
		if n > commandBytesMax {
			b.state[i], b.failMsg[i] = stWriteFailed, "ERR command too large for the log ("+strconv.Itoa(n)+" bytes)"
			continue
		}
		if len(positions) > 0 && len(cmds)+n > entryBytesTarget {
			propose()
		}
		b.state[i] = stWritePending
		cmds = appendCommand(cmds, argv)
		positions = append(positions, i)
	}
	propose()
	_ = r.drive()
	r.runUpTo(b, len(reqs))
	r.maybeSyncEverySec()
	r.maybeTriggerSnapshot()
}

// isWrite reports whether a command goes through the log: every engine
// command not flagged read-only (unknown flags err on the safe side).
// Unknown commands and wrong arity are answered locally by the engine.
func isWrite(argv [][]byte) bool {
	if len(argv) == 0 {
		return false
	}
	c := engine.Lookup(argv[0])
	if c == nil {
		// A leader's eviction (engine.EvictionCommand) is logged.
		return engine.IsEviction(argv) || isFunctionWrite(argv) || membershipKind(argv) != ccNone || reshardKind(argv) != rsNone || IsACLWrite(argv) || IsMetaWrite(argv)
	}
	return c.ArityOK(len(argv)) && c.Flags&engine.ReadOnly == 0
}

func (r *Replica) writeRefusal() string {
	switch {
	case r.fatal != nil:
		return ErrMsgDiskFatal
	case r.noSpace != nil:
		return ErrMsgDiskFull
	}
	return ""
}

func (r *Replica) failProposal(p *proposal, msg string) {
	for _, pos := range p.positions {
		if p.b.state[pos] == stWritePending {
			p.b.state[pos], p.b.failMsg[pos] = stWriteFailed, msg
		}
	}
}

// runUpTo answers, in order, every request of b before position end that
// does not wait for the log: local commands run now; writes that failed
// get their error. A write still pending here was never applied (the log
// failed under it) and gets the current refusal.
func (r *Replica) runUpTo(b *batch, end int) {
	for ; b.next < end; b.next++ {
		if b.next >= b.warmed {
			r.warmBatchAhead(b, end)
		}
		req := &b.reqs[b.next]
		switch b.state[b.next] {
		case stLocal:
			r.runLocal(b.nowMillis, req)
		case stWriteFailed:
			req.W.WriteError(b.failMsg[b.next])
		case stWritePending:
			msg := r.writeRefusal()
			if msg == "" {
				msg = "ERR write was not applied"
			}
			req.W.WriteError(msg)
		}
	}
}

// warmBatchAhead warms the keys of the local requests from b.next on
// (engine.DB.Warm), a batch of them, before runUpTo runs them.
func (r *Replica) warmBatchAhead(b *batch, end int) {
	i := b.next
	for ; i < end && r.warmer.Len() < engine.WarmBatchKeys; i++ {
		if b.state[i] == stLocal && b.reqs[i].Txn == nil {
			r.warmer.Add(b.reqs[i].Argv)
		}
	}
	r.warmer.Warm(r.db)
	b.warmed = i
}

// localNameBytesMax is the longest command name runLocal checks for a
// replica-level command ("bgrewriteaof").
const localNameBytesMax = 12

func (r *Replica) runLocal(ms int64, req *Request) {
	if req.Txn != nil {
		r.runTxnLocal(ms, req)
		return
	}
	if IsACLWrite(req.Argv) {
		r.applyACL(req.Argv, req.W) // appendonly off: no log
		return
	}
	if IsMetaWrite(req.Argv) {
		r.applyMeta(req.Argv, req.W) // appendonly off: no log
		return
	}
	if r.slots.on {
		if reshardKind(req.Argv) != rsNone {
			r.applyReshard(ms, req.Argv, req.W) // appendonly off: no log
			return
		}
		if msg := r.gateArgv(ms, req, req.Argv, req.Asking); msg != "" {
			req.W.WriteError(msg)
			return
		}
	}
	r.runCommand(ms, req)
}

// runCommand is runLocal past the slot gate: one command of a
// transaction, or a request the gate let through.
func (r *Replica) runCommand(ms int64, req *Request) {
	if len(req.Argv) > 0 && len(req.Argv[0]) <= localNameBytesMax {
		// Lower-case into a stack buffer: bytes.ToLower would allocate on
		// every read, and switch on string(...) of a local array does not.
		var buf [localNameBytesMax]byte
		name := buf[:len(req.Argv[0])]
		for i, c := range req.Argv[0] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			name[i] = c
		}
		switch string(name) {
		case "save":
			r.cmdSave(ms, req)
			return
		case "bgsave":
			r.cmdBgsave(ms, req)
			return
		case "bgrewriteaof":
			r.cmdBgrewriteaof(ms, req)
			return
		case "lastsave":
			if len(req.Argv) != 1 {
				req.W.WriteError("ERR wrong number of arguments for 'lastsave' command")
				return
			}
			req.W.WriteInt(r.lastSaveMillis / 1000)
			return
		}
		if r.runLocalFunction(ms, req) {
			return
		}
	}
	if r.opts.Knobs.staleRead(r, req) {
		return
	}
	if r.Replicated() {
		// On the leader too: a read served while an earlier write is in
		// flight runs at a later time than that write's entry, and had it
		// moved the DB's clock the write would apply at that later time
		// here and at its own on the followers, so a key expiring in
		// between would end up different (TestLeaderReadDoesNotMoveTheLogClock;
		// cluster-grammar seed 742).
		r.db.ExecLocalRead(ms, req.Argv, req.W)
		return
	}
	r.db.Exec(ms, req.Argv, req.W)
}

// drive hands every Ready of the RawNode to the disk and the engine until
// there is none left: entries and HardState to the WAL (synced as the
// policy and Raft demand), committed entries to the engine.
func (r *Replica) drive() error {
	for r.fatal == nil && r.rn.HasReady() {
		rd := r.rn.Ready()
		if rd.SoftState != nil && r.Replicated() {
			r.onSoftState(rd.SoftState)
		}
		early := r.Replicated() && r.sendsBeforeAppend(&rd)
		if early {
			// The leader's appends go out while it writes its own copy
			// (Raft thesis §10.2.1): its entries count towards a commit
			// only once Advance reports them persisted, and a follower
			// majority may commit them without it.
			r.send(rd.Messages, sendBeforeAppend)
		}
		if err := r.persistReady(rd); err != nil {
			r.onWriteError(err)
			return err
		}
		r.observeReady(rd)
		if r.Replicated() {
			if early {
				r.send(rd.Messages, sendAfterAppend)
			} else {
				r.send(rd.Messages, sendAll)
			}
			r.onReadStates(rd.ReadStates)
		}
		if err := r.opts.Knobs.applyBeforeCommit(r, &rd); err != nil {
			r.fatal = err
			return err
		}
		for _, e := range rd.CommittedEntries {
			if r.opts.Knobs.appliedBeforeCommit(r, e) {
				continue
			}
			if err := r.apply(e); err != nil {
				r.fatal = err
				r.failInflight(ErrMsgDiskFatal)
				return err
			}
		}
		r.rn.Advance(rd)
	}
	return r.fatal
}

func (r *Replica) persistReady(rd raft.Ready) error {
	hs := r.store.hs
	hsChanged := false
	if !raft.IsEmptyHardState(rd.HardState) {
		hsChanged = rd.HardState.Term != hs.Term || rd.HardState.Vote != hs.Vote
		hs = rd.HardState
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if !r.Replicated() {
			return errors.AssertionFailedf("cluster: raft delivered a snapshot to a one-voter group")
		}
		if err := r.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if len(rd.Entries) == 0 && !hsChanged {
		// A commit-index change alone needs no write: a one-voter group
		// recovers its commit index as its last index.
		r.store.hs.Commit = hs.Commit
		return nil
	}
	recs := r.recBuf[:0]
	payloads := r.recPayloads[:0]
	for _, e := range rd.Entries {
		// One buffer for every payload: a record's payload is its slice
		// of it, taken once the buffer stops growing.
		payloads = appendEntryPayload(payloads, e)
	}
	off := 0
	for _, e := range rd.Entries {
		n := 1 + len(e.Data)
		recs = append(recs, disk.Record{Type: disk.RecEntry, Index: e.Index, Term: e.Term, Payload: payloads[off : off+n : off+n]})
		off += n
	}
	if cap(payloads) <= scratchBytesKept {
		r.recPayloads = payloads[:0]
	} else {
		r.recPayloads = nil
	}
	recs = append(recs, hardStateRecord(hs))
	wasDirty := r.wal.Dirty()
	err := r.wal.Append(recs)
	for i := range recs {
		recs[i] = disk.Record{}
	}
	r.recBuf = recs[:0]
	if err != nil {
		return err
	}
	if err := r.store.append(rd.Entries); err != nil {
		return errors.NewAssertionErrorWithWrappedErrf(err, "cluster: log store")
	}
	r.store.hs = hs
	if !wasDirty {
		r.dirtySince = r.lastNowNanos
	}
	// HardState (term, vote) is synced before Raft acts on it, whatever
	// the policy; entries under always before anyone hears of them.
	if hsChanged || (r.opts.Fsync == FsyncAlways && len(rd.Entries) > 0 && !r.opts.Knobs.ackBeforeFsync()) {
		return r.wal.Sync()
	}
	return nil
}

// onWriteError decides between the two reactions to a failed WAL write.
// ENOSPC whose partial write was cleanly truncated: refuse writes, keep
// serving reads, rebuild Raft from the log as it is on disk (the refused
// entries are gone), and probe for space on Tick. Anything else (EIO, a
// failed fsync, a truncate that failed): the replica is fatal and the
// runtime reopens it from disk; fsync is never retried (fsyncgate).
func (r *Replica) onWriteError(err error) {
	if errors.Is(err, disk.ErrNoSpace) && r.wal.Broken() == nil {
		r.noSpace = err
		r.failInflight(ErrMsgDiskFull)
		if r.Replicated() {
			// The membership is in log entries below Applied, which a
			// new RawNode does not replay: hand it the applied one.
			r.store.cs = r.conf
		}
		rn, rerr := raft.NewRawNode(r.raftConfig(r.applied))
		if rerr != nil {
			r.fatal = errors.Wrap(rerr, "cluster: restart raft after ENOSPC")
			return
		}
		r.rn = rn
		if r.Replicated() {
			r.onSoftState(&raft.SoftState{RaftState: raft.StateFollower})
		}
		return
	}
	r.fatal = err
	r.failInflight(ErrMsgDiskFatal)
}

func (r *Replica) failInflight(msg string) {
	if r.Replicated() {
		// failBatches answers the proposals (outcome unknown): on a
		// group they may commit without this node.
		r.failBatches(msg)
		clear(r.inflight)
		return
	}
	for id, p := range r.inflight {
		r.failProposal(p, msg)
		delete(r.inflight, id)
	}
}

func (r *Replica) apply(e pb.Entry) error {
	switch e.Type {
	case pb.EntryNormal:
		if isEffectsEntry(e.Data) {
			if err := r.applyEffectsEntry(e); err != nil {
				return err
			}
		} else if isTxnEntry(e.Data) {
			if err := r.applyTxn(e); err != nil {
				return err
			}
		} else if len(e.Data) > 0 {
			if err := r.applyCommands(e); err != nil {
				return err
			}
		}
	case pb.EntryConfChange:
		var cc pb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return errors.Wrapf(err, "cluster: conf change at index %d", e.Index)
		}
		r.conf = *r.rn.ApplyConfChange(cc)
		r.appliedConfChange(e, cc)
	case pb.EntryConfChangeV2:
		var cc pb.ConfChangeV2
		if err := cc.Unmarshal(e.Data); err != nil {
			return errors.Wrapf(err, "cluster: conf change at index %d", e.Index)
		}
		r.conf = *r.rn.ApplyConfChange(cc)
	}
	r.applied = e.Index
	r.observeApplied(e)
	return nil
}

func (r *Replica) applyCommands(e pb.Entry) error {
	er := &r.reader
	if err := er.reset(e.Data); err != nil {
		return errors.Wrapf(err, "cluster: entry %d", e.Index)
	}
	// Time never runs backwards across entries, restarts included: a
	// replayed entry's time is a floor for the next one proposed.
	if er.NowMillis > r.lastNowMillis {
		r.lastNowMillis = er.NowMillis
	}
	r.logMillis = max(r.logMillis, er.NowMillis)
	p := r.inflight[er.ID]
	if p != nil {
		delete(r.inflight, er.ID)
		if len(p.positions) != er.Count {
			return errors.AssertionFailedf("cluster: entry %d holds %d commands, proposal had %d", e.Index, er.Count, len(p.positions))
		}
	}
	warmed := 0
	for i := 0; i < er.Count; i++ {
		if i == warmed {
			warmed = r.warmEntryAhead(e.Data, i, er.Count)
		}
		argv, err := er.next()
		if err != nil {
			return errors.Wrapf(err, "cluster: entry %d command %d", e.Index, i)
		}
		r.changes++
		seed := commandSeed(e.Index, i)
		if p == nil {
			r.execEntryCommand(er.NowMillis, seed, argv, &r.replayReplies)
			continue
		}
		pos := p.positions[i]
		r.runUpTo(p.b, pos)
		r.execEntryCommand(er.NowMillis, seed, argv, p.b.reqs[pos].W)
		p.b.state[pos] = stWriteDone
		p.b.next = pos + 1
	}
	if p != nil {
		r.finishEarly(p.b)
	}
	return nil
}

// warmEntryAhead warms the keys of the entry's commands from command i
// on (engine.DB.Warm), a batch of them, and returns the command after the
// last one warmed. The warm reader starts over from the entry's first
// command only when i is 0; an entry that does not decode stops the
// warming (applyCommands reports it).
func (r *Replica) warmEntryAhead(data []byte, i, count int) int {
	wr := &r.warmReader
	if i == 0 && wr.reset(data) != nil {
		return count
	}
	for ; i < count && r.warmer.Len() < engine.WarmBatchKeys; i++ {
		argv, err := wr.next()
		if err != nil {
			r.warmer.Warm(r.db)
			return count
		}
		r.warmer.Add(argv)
	}
	r.warmer.Warm(r.db)
	return i
}

// SnapshotFile is the newest snapshot file on disk (backups read it
// outside the replica's calls: a snapshot file never changes once
// renamed into place, though a newer one may replace it). ok is false
// for an in-memory replica or one with no snapshot yet.
func (r *Replica) SnapshotFile() (fs disk.FS, name string, index uint64, ok bool) {
	if !r.persist || r.snapIndex == 0 {
		return nil, "", 0, false
	}
	return r.opts.FS, path.Join(disk.SnapshotDir(r.opts.Dir), disk.SnapshotName(r.snapIndex)), r.snapIndex, true
}

// SetFsync changes the fsync policy (CONFIG SET appendfsync), from the
// next batch on; call it where the replica's other calls run. Moving to
// always syncs what is pending with the next batch that appends.
func (r *Replica) SetFsync(p FsyncPolicy) { r.opts.Fsync = p }

// Tick advances time: the everysec fsync, the ENOSPC probe, the
// size-triggered snapshot.
func (r *Replica) Tick(now int64) {
	ms := r.advanceNow(now)
	// Active expiry is local and not logged (replay never needs it): it
	// only frees memory and raises "expired" events sooner. A follower
	// collects only what the log's own time has expired: the engine runs
	// each command at the latest time it was given, so a follower whose
	// clock runs ahead of the leader's would otherwise delete a key the
	// leader still holds and apply the next logged write of it to
	// nothing (an HSET the leader answered WRONGTYPE creates a hash on
	// the follower; found by the grammar workload, cluster-grammar). A
	// leader with writes in flight is held to the log's time as well:
	// they were proposed at earlier times and apply after this tick, and
	// a key expired now but alive at a write's time must still be there
	// when it applies, as it is on the followers
	// (TestLeaderReadDoesNotMoveTheLogClock).
	expireAt := ms
	if r.Replicated() && (!r.IsLeader() || !r.quiescent()) {
		expireAt = r.logMillis
	}
	r.db.ActiveExpire(expireAt, activeExpireBudget)
	if !r.persist {
		return
	}
	if r.fatal != nil {
		return
	}
	if r.noSpace != nil {
		// Probe: campaigning writes a HardState and an empty entry; if
		// that goes through, there is space again. A replicated group
		// probes with its next append instead.
		r.noSpace = nil
		if !r.Replicated() {
			if err := r.rn.Campaign(); err != nil {
				r.fatal = errors.Wrap(err, "cluster: campaign")
				return
			}
		}
	}
	r.rn.Tick()
	if r.Replicated() {
		if r.g.raftState == raft.StateLeader {
			r.tickStreams()
		}
		r.tickReceiving()
		r.settle()
	} else {
		_ = r.drive()
	}
	r.maybeSyncEverySec()
	r.runUncollectedJob()
	r.maybeTriggerSnapshot()
}

func (r *Replica) maybeSyncEverySec() {
	if r.fatal != nil || r.opts.Fsync != FsyncEverySec || !r.wal.Dirty() {
		return
	}
	if r.lastNowNanos-r.dirtySince < int64(everysecSyncAfter) {
		return
	}
	if r.opts.BackgroundSync {
		r.startBackgroundSync()
		return
	}
	if err := r.wal.Sync(); err != nil {
		r.fatal = err
	}
}

// DB exposes the applied keyspace to read-only introspection (INFO, DBSIZE
// in the server). Callers must hold the replica's owner.
func (r *Replica) DB() *engine.DB { return r.db }

// Err is non-nil once the replica is fatally broken by a disk error: it
// refuses writes, and its runtime should Close it and Open it again from
// disk.
func (r *Replica) Err() error { return r.fatal }

// AppliedIndex is the Raft index of the last applied entry.
func (r *Replica) AppliedIndex() uint64 { return r.applied }

// LastSaveMillis is when the newest snapshot was taken (Unix ms), or when
// the replica started if none was.
func (r *Replica) LastSaveMillis() int64 { return r.lastSaveMillis }

// Recovery reports what Open found on disk.
func (r *Replica) Recovery() RecoveryStats { return r.recovery }

// Close syncs and releases the replica's files. A Job handed out by
// PendingJob must have finished first.
func (r *Replica) Close() error {
	r.closeFunctions()
	if !r.persist {
		return nil
	}
	var err error
	if r.wal != nil && r.fatal == nil && r.noSpace == nil {
		// Record the final commit index; harmless if it fails.
		_ = r.wal.Append([]disk.Record{hardStateRecord(r.store.hs)})
	}
	if r.job != nil && !r.jobHanded {
		r.job.view.Release()
		r.job = nil
	}
	r.dropStreams()
	r.closeIn() // its file stays, to be resumed
	err = r.closeFiles()
	return err
}

func (r *Replica) closeFiles() error {
	var err error
	if r.wal != nil {
		err = r.wal.Close()
		r.wal = nil
	}
	if r.lock != nil {
		if lerr := r.lock.Close(); err == nil {
			err = lerr
		}
		r.lock = nil
	}
	return err
}
