package cluster

import (
	"bytes"
	"slices"

	"github.com/cockroachdb/errors"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/seam"
)

// Txn is a MULTI/EXEC block handed to Submit in Request.Txn (Request.Argv
// is then only the EXEC that carries it). Its reply is one array of every
// command's reply, or a null array when a watched key changed.
//
// Isolation: a transaction runs as one step of the replica — nothing else
// runs between its commands — and, if any of its commands writes, it is one
// log entry: after a crash either all of its writes are there or none.
//
// WATCH is decided before the entry is proposed, never at apply time: key
// versions are local to one DB instance (active expiry moves them) and are
// not reproduced by replay. Submit first applies every write queued ahead
// of the transaction in its batch, then compares the versions; if one
// differs, EXEC answers null and nothing reaches the log. A logged
// transaction entry is therefore unconditional, and replay re-runs it.
type Txn struct {
	Cmds    [][][]byte
	Watched []Watch
	// WatchedOn is the replica the versions were read from (KeyVersion):
	// on any other one (reopened after a disk failure) the watch is void
	// and EXEC answers null.
	WatchedOn *Replica
	// Side, when set, runs the block's commands that are not the
	// replica's (the server's PUBLISH) at their turn, inside the step; it
	// returns false for a command it does not know. Not logged effects:
	// replay skips them.
	Side func(argv [][]byte, w engine.Writer) bool

	aborted bool // set by Submit: a watched key changed
}

// deniedMarker starts a command of a transaction that the node refused
// when EXEC ran (its user lost the permission after the command was
// queued, as Redis checks again at EXEC): in its place the block holds
// the marker and the error, answered at the command's turn on the leader
// and skipped by every replica, replay included. Clients cannot send it:
// a command name starts with a letter.
var deniedMarker = []byte("\x00denied")

// DeniedCommand is what a node puts in a transaction in place of a
// command it refuses at EXEC: the command's reply is the error msg, and
// nothing runs.
func DeniedCommand(msg string) [][]byte { return [][]byte{deniedMarker, []byte(msg)} }

// deniedReply answers a denied command's place; false when argv is not one.
func deniedReply(argv [][]byte, w engine.Writer) bool {
	if len(argv) != 2 || !bytes.Equal(argv[0], deniedMarker) {
		return false
	}
	w.WriteError(string(argv[1]))
	return true
}

// Watch is one WATCHed key and its KeyVersion when it was watched.
type Watch struct {
	Key     []byte
	Version uint64
}

// entryTxn marks a log entry holding one transaction; the rest of its
// layout is entryVersion's (see codec.go), every command belonging to it.
const entryTxn = 3 // 2 is entryVersionEffects (functions.go)

// KeyVersion is the key's current version for WATCH (engine.DB.KeyVersion
// at now, Unix nanoseconds, never below the replica's clock). It changes
// nothing. Versions are only comparable within one Replica.
func (r *Replica) KeyVersion(now int64, key []byte) uint64 {
	return r.db.KeyVersion(max(seam.Millis(now), r.lastNowMillis), key)
}

// watchChanged reports whether a watched key changed since WATCH.
func (r *Replica) watchChanged(ms int64, t *Txn) bool {
	if t.aborted || len(t.Watched) > 0 && t.WatchedOn != r {
		return true
	}
	for _, w := range t.Watched {
		if r.db.KeyVersion(ms, w.Key) != w.Version {
			return true
		}
	}
	return false
}

// txnWrites reports whether any command of t goes through the log.
func txnWrites(t *Txn) bool {
	for _, argv := range t.Cmds {
		if isWrite(argv) {
			return true
		}
	}
	return false
}

// submitTxn places the transaction at position i of b. flush proposes
// the writes gathered so far in the batch, so entries stay in order.
func (r *Replica) submitTxn(b *batch, i int, flush func()) {
	t := b.reqs[i].Txn
	if len(t.Watched) > 0 {
		// Apply everything ahead of it, then decide the watch against
		// exactly the state the transaction would run on.
		flush()
		_ = r.drive()
		r.runUpTo(b, i)
		if r.watchChanged(b.nowMillis, t) {
			t.aborted = true
			return // stLocal: runLocal answers null
		}
	}
	if !txnWrites(t) {
		return // read-only: runs locally, in order
	}
	if msg := r.writeRefusal(); msg != "" {
		b.state[i], b.failMsg[i] = stWriteFailed, msg
		return
	}
	// A transaction sent after ASKING is logged with the marker as its
	// first command, so that every replica gates it alike.
	cmds := t.Cmds
	if r.Replicated() {
		cmds = make([][][]byte, len(t.Cmds))
		for j, argv := range t.Cmds {
			cmds[j] = absoluteExpiry(b.nowMillis, argv)
		}
	}
	if r.slots.on && b.reqs[i].Asking {
		cmds = append([][][]byte{{askingMarker}}, cmds...)
	}
	n := 0
	for _, argv := range cmds {
		n += encodedCommandBytes(argv)
	}
	if n > commandBytesMax {
		b.state[i], b.failMsg[i] = stWriteFailed, "ERR transaction too large for the log"
		return
	}
	flush()
	r.nextID++
	id := r.nextID
	data := encodeEntryHeader(make([]byte, 0, 32+n), id, b.nowMillis, len(cmds))
	data[0] = entryTxn
	for _, argv := range cmds {
		data = appendCommand(data, argv)
	}
	p := &proposal{b: b, positions: []int{i}}
	b.state[i] = stWritePending
	r.inflight[id] = p
	if err := r.rn.Propose(data); err != nil {
		delete(r.inflight, id)
		r.failProposal(p, "ERR write not accepted by the log: "+err.Error())
	}
}

// runTxnLocal answers a transaction that needs no log entry (read-only,
// aborted by WATCH, or any transaction when persistence is off).
func (r *Replica) runTxnLocal(ms int64, req *Request) {
	t := req.Txn
	if msg := r.gateTxn(ms, req, t.Cmds, req.Asking); msg != "" {
		req.W.WriteError(msg)
		return
	}
	if r.watchChanged(ms, t) {
		req.W.WriteNullArray()
		return
	}
	req.W.WriteArray(len(t.Cmds))
	for _, argv := range t.Cmds {
		if deniedReply(argv, req.W) || t.Side != nil && t.Side(argv, req.W) {
			continue
		}
		r.runCommand(ms, &Request{Argv: argv, W: req.W})
	}
}

// applyTxn applies a transaction entry: every command, in order, replying
// one array to the waiting EXEC (if it was proposed by this process).
func (r *Replica) applyTxn(e pb.Entry) error {
	er := &r.reader
	data := append([]byte{entryVersion}, e.Data[1:]...)
	if err := er.reset(data); err != nil {
		return errors.Wrapf(err, "cluster: transaction entry %d", e.Index)
	}
	if er.NowMillis > r.lastNowMillis {
		r.lastNowMillis = er.NowMillis
	}
	r.logMillis = max(r.logMillis, er.NowMillis)
	var w engine.Writer = &r.replayReplies
	var side func([][]byte, engine.Writer) bool
	p := r.inflight[er.ID]
	pos := -1
	if p != nil {
		delete(r.inflight, er.ID)
		if len(p.positions) != 1 {
			return errors.AssertionFailedf("cluster: transaction entry %d matched a proposal of %d requests", e.Index, len(p.positions))
		}
		pos = p.positions[0]
		r.runUpTo(p.b, pos)
		w = p.b.reqs[pos].W
		side = p.b.reqs[pos].Txn.Side
	}
	if r.slots.on {
		return r.applyTxnGated(e, er, w, side, p, pos)
	}
	w.WriteArray(er.Count)
	for i := 0; i < er.Count; i++ {
		argv, err := er.next()
		if err != nil {
			return errors.Wrapf(err, "cluster: transaction entry %d command %d", e.Index, i)
		}
		r.applyTxnCommand(er.NowMillis, commandSeed(e.Index, i), argv, w, side)
	}
	txnApplied(p, pos)
	return nil
}

// applyTxnCommand runs one command of an applied transaction: a write on
// the engine (with seed for its random choices, see commandSeed), a read
// through the request's side hook or runTxnRead.
func (r *Replica) applyTxnCommand(ms int64, seed uint64, argv [][]byte, w engine.Writer, side func([][]byte, engine.Writer) bool) {
	if deniedReply(argv, w) {
		return
	}
	if isWrite(argv) {
		r.changes++
		r.db.ExecSeeded(ms, seed, argv, w)
		return
	}
	if side != nil && side(argv, w) {
		return
	}
	r.runTxnRead(ms, argv, w)
}

// txnApplied marks the EXEC that proposed a transaction entry (p nil: the
// entry came from elsewhere or from replay) answered.
func txnApplied(p *proposal, pos int) {
	if p != nil {
		p.b.state[pos] = stWriteDone
		p.b.next = pos + 1
	}
}

// runTxnRead runs a read inside a logged transaction. Replica commands
// that would start disk work are refused by the server before queueing;
// LASTSAVE is the one that may appear.
func (r *Replica) runTxnRead(ms int64, argv [][]byte, w engine.Writer) {
	if len(argv) > 0 && bytes.EqualFold(argv[0], []byte("lastsave")) {
		r.runCommand(ms, &Request{Argv: argv, W: w})
		return
	}
	r.db.Exec(ms, argv, w)
}

// isTxnEntry reports whether entry data holds a transaction.
func isTxnEntry(data []byte) bool { return len(data) > 0 && data[0] == entryTxn }

// activeExpireBudget bounds the keys Tick's active expiry examines, so a
// mass expiry is spread over ticks instead of stalling one.
const activeExpireBudget = 1000

// SetNotify routes the engine's keyspace events (engine.Options.Notify) to
// fn, or nowhere when fn is nil (then writes pay nothing for them). Events
// are raised as commands apply and by Tick's active expiry; replay during
// Open raises none (fn is set after). fn runs inside Submit or Tick and
// must not call back into the replica. The caller owns the replica.
func (r *Replica) SetNotify(fn func(event string, key []byte)) { r.db.SetNotify(fn) }

// applyTxnGated is applyTxn's body when slot gating is on: the commands
// are read first, so that the gate (and the ASKING marker) decides the
// whole transaction before any of it runs.
func (r *Replica) applyTxnGated(e pb.Entry, er *entryReader, w engine.Writer, side func([][]byte, engine.Writer) bool, p *proposal, pos int) error {
	cmds := make([][][]byte, 0, er.Count)
	for i := 0; i < er.Count; i++ {
		argv, err := er.next()
		if err != nil {
			return errors.Wrapf(err, "cluster: transaction entry %d command %d", e.Index, i)
		}
		cmds = append(cmds, slices.Clone(argv)) // next reuses its slice
	}
	asking := false
	if len(cmds) > 0 && isAskingMarker(cmds[0]) {
		cmds, asking = cmds[1:], true
	}
	if msg := r.gateTxn(er.NowMillis, nil, cmds, asking); msg != "" {
		w.WriteError(msg)
	} else {
		w.WriteArray(len(cmds))
		for i, argv := range cmds {
			r.applyTxnCommand(er.NowMillis, commandSeed(e.Index, i), argv, w, side)
		}
	}
	txnApplied(p, pos)
	return nil
}
