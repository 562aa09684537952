package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"sort"

	"github.com/cockroachdb/errors"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/udf"
)

// This file routes FUNCTION and FCALL/FCALL_RO (docs/functions.md) into
// the replica:
//
//   - FUNCTION LOAD/DELETE/FLUSH/RESTORE are logged as they are (the LOAD
//     payload carries the module) and applied, on the leader, in recovery
//     and on followers alike, by udf.Host.Function: the registry is a
//     function of the log. LIST/DUMP/STATS/KILL/HELP run locally.
//   - FCALL runs the guest once, on the leader, at its turn in the batch:
//     every earlier write of the batch is applied first (or, for earlier
//     calls of the batch, read through), so the call reads exactly the
//     state its effects will apply to. Only the effects (the SET/DEL
//     commands the call made) are logged, as one record of an entry of a
//     kind clients cannot send (entryVersionEffects; consecutive calls
//     share the entry), and applied together by udf.ApplyEffects. Recovery and followers never run guest code, so
//     fuel, memory limits or a wazero upgrade cannot make a replay diverge.
//   - Snapshots carry the registry (udf.Host.Dump) as one entry of the
//     reserved type disk.SnapTypeFunctions.
//   - Stopping a call that runs (FUNCTION KILL, a per-call deadline,
//     shutdown) is the runtime's: it puts a udf.Guard and a per-call
//     context (Config.WithGuard, WithCallContext) in Options.Functions,
//     and uses the Guard from its own goroutines while the executor is
//     inside the call. A stopped call fails like any other: its reply is
//     the error and nothing is logged. The replica itself never waits on a
//     clock; FUNCTION KILL reaching it finds nothing running (NOTBUSY).
//
// The effects entry is
//
//	u8      entryVersionEffects (2)
//	u64     proposal id
//	i64     now, Unix ms (the calls' time; PXAT deadlines in the effects
//	        are absolute already)
//	then per call, in order: uvarint length, the udf.EncodeEffects record
const entryVersionEffects = 2

const effectsHeaderBytes = 17

// functions is the replica's function host, created on first use: most
// replicas (and most simulated restarts) never load a library, and a
// wazero runtime is not free to start.
type functions struct {
	host *udf.Host
	rand *engine.SplitMix64 // when Options.Rand is nil: calls stay deterministic
	// pending is what the effects of calls not yet applied will write
	// (see submitCall); open is the effects entry being filled.
	pending pendingEffects
	open    *callEntry
	// Per-call scratch, reused so that a call allocates nothing here.
	store   udf.EngineStore
	overlay overlayStore
	rec     []byte
}

// fnHost returns the function host, starting it if needed.
func (r *Replica) fnHost() (*udf.Host, error) {
	if r.fn.host != nil {
		return r.fn.host, nil
	}
	cfg := udf.NewConfig()
	if r.opts.Functions != nil {
		cfg = *r.opts.Functions
	}
	h, err := udf.NewHost(context.Background(), cfg)
	if err != nil {
		return nil, errors.Wrap(err, "cluster: start function host")
	}
	r.fn.host = h
	return h, nil
}

// FunctionHost is the replica's function host (nil until a function
// command or a snapshot started it). Callers must hold the replica's owner.
func (r *Replica) FunctionHost() *udf.Host { return r.fn.host }

func (r *Replica) closeFunctions() {
	if r.fn.host != nil {
		_ = r.fn.host.Close(context.Background())
		r.fn.host = nil
	}
}

// Command kinds routed here rather than to the engine.
const (
	fnNone = iota
	fnFunction
	fnCall
)

// CallsFunction reports whether req calls a function (FCALL, FCALL_RO),
// alone or inside its transaction.
func CallsFunction(req *Request) bool {
	if req.Txn == nil {
		return functionKind(req.Argv) == fnCall
	}
	for _, argv := range req.Txn.Cmds {
		if functionKind(argv) == fnCall {
			return true
		}
	}
	return false
}

func functionKind(argv [][]byte) int {
	if len(argv) == 0 || len(argv[0]) > len("function") {
		return fnNone
	}
	var buf [8]byte
	name := buf[:len(argv[0])]
	for i, c := range argv[0] {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		name[i] = c
	}
	switch string(name) {
	case "function":
		return fnFunction
	case "fcall", "fcall_ro":
		return fnCall
	}
	return fnNone
}

// isFunctionWrite reports a FUNCTION subcommand that goes through the log.
func isFunctionWrite(argv [][]byte) bool {
	return functionKind(argv) == fnFunction && udf.IsFunctionWrite(argv)
}

// execLogged applies one logged command: FUNCTION to the host, CLUSTER
// RESHARD to the slot state, anything else (past the slot gate, decided
// here so that every replica decides alike) to the engine, with seed (see
// commandSeed) for the command's random choices.
func (r *Replica) execLogged(ms int64, seed uint64, argv [][]byte, w engine.Writer) {
	asking := false
	if r.slots.on {
		argv, asking = splitAsking(argv)
	}
	if functionKind(argv) == fnFunction {
		r.runFunction(argv, w)
		return
	}
	if IsACLWrite(argv) {
		r.applyACL(argv, w)
		return
	}
	if r.slots.on {
		if reshardKind(argv) != rsNone {
			r.applyReshard(ms, argv, w)
			return
		}
		if msg := r.gateArgv(ms, nil, argv, asking); msg != "" {
			w.WriteError(msg)
			return
		}
		r.db.ExecSeeded(ms, seed, argv, w)
		return
	}
	r.db.ExecSeeded(ms, seed, argv, w)
}

// commandSeed is the seed of the random choices (SPOP's picks) of the
// command at position pos of the log entry at index: the same on every
// replica and on every replay, as the entry is, and different for every
// command of the log.
func commandSeed(index uint64, pos int) uint64 {
	var s engine.SplitMix64
	// Distinct (index, pos) give distinct states for any realistic log
	// (the index scaled by an odd 64-bit constant, plus the position).
	s.Seed(index*0x9e3779b97f4a7c15 + uint64(pos))
	return s.Uint64()
}

func (r *Replica) runFunction(argv [][]byte, w engine.Writer) {
	h, err := r.fnHost()
	if err != nil {
		w.WriteError("ERR " + err.Error())
		return
	}
	h.Function(context.Background(), argv, w)
}

// callFunction runs an FCALL/FCALL_RO against the applied keyspace at ms,
// seen through the pending effects of earlier calls.
func (r *Replica) callFunction(ms int64, argv [][]byte) (udf.Result, error) {
	h, err := r.fnHost()
	if err != nil {
		return udf.Result{}, err
	}
	rnd := r.opts.Rand
	if rnd == nil {
		if r.fn.rand == nil {
			r.fn.rand = &engine.SplitMix64{}
		}
		rnd = r.fn.rand
	}
	r.fn.store = udf.EngineStore{DB: r.db, NowMillis: ms, R: rnd}
	if len(r.fn.pending.keys) == 0 {
		return h.FCall(context.Background(), argv, &r.fn.store)
	}
	r.fn.overlay = overlayStore{EngineStore: &r.fn.store, p: &r.fn.pending}
	return h.FCall(context.Background(), argv, &r.fn.overlay)
}

// runLocalFunction answers a function command that does not go through
// the log: FUNCTION's read subcommands always, and everything when the
// replica has no log (appendonly off), where writes apply directly.
func (r *Replica) runLocalFunction(ms int64, req *Request) bool {
	switch functionKind(req.Argv) {
	case fnFunction:
		r.runFunction(req.Argv, req.W)
		return true
	case fnCall:
		res, err := r.callFunction(ms, req.Argv)
		if err != nil {
			req.W.WriteError(udf.Message(err))
			return true
		}
		if err := udf.ApplyEffects(r.db, ms, res.Effects); err != nil {
			req.W.WriteError("ERR internal: " + err.Error())
			return true
		}
		r.changes += int64(len(res.Effects))
		res.WriteReply(req.W)
		return true
	}
	return false
}

// submitCall runs the FCALL at position i of b, called from Submit once
// everything before i has been proposed. Normally it drives the log so
// that every earlier write is applied and every earlier read answered,
// runs the guest, and either answers (failure, or nothing written) or
// adds its effects to an effects entry, whose apply writes the reply.
//
// Group commit for runs of calls: when everything between the first
// unanswered request and this one is an earlier call waiting for its
// effects to apply (and nothing else is in flight), the call reads through
// those effects (r.fn.pending) instead of driving the log, and its reply
// waits its turn. Consecutive calls share one effects entry (each call's
// effects are one record in it, applied together), so a batch of FCALLs
// costs one entry and one WAL write.
func (r *Replica) submitCall(b *batch, i int) {
	defer func() {
		if i+1 >= len(b.reqs) || functionKind(b.reqs[i+1].Argv) != fnCall {
			r.flushCalls()
		}
	}()
	if !r.canOverlay(b, i) {
		r.flushCalls()
		_ = r.drive()
		r.fn.pending.reset()
		r.runUpTo(b, i)
	}
	req := &b.reqs[i]
	fail := func(msg string) {
		if b.next == i {
			req.W.WriteError(msg)
			b.state[i] = stWriteDone
			b.next = i + 1
			return
		}
		b.state[i], b.failMsg[i] = stWriteFailed, msg // runUpTo answers it in turn
	}
	// The call runs here, on the leader, against the state its effects
	// apply to: so does its slot gate.
	if msg := r.gateArgv(b.nowMillis, req, req.Argv, req.Asking); msg != "" {
		fail(msg)
		return
	}
	overlaid := len(r.fn.pending.keys) > 0
	res, err := r.callFunction(b.nowMillis, req.Argv)
	switch {
	case err != nil:
		fail(udf.Message(err))
		return
	case len(res.Effects) == 0:
		if b.next < i {
			// Earlier calls' replies first.
			r.flushCalls()
			_ = r.drive()
			r.fn.pending.reset()
			r.runUpTo(b, i)
			if overlaid {
				// The call read writes of earlier calls that were not in
				// the log yet, and the log may just have refused them (a
				// full disk): its answer must come from the state they
				// really left. Run it again, now that nothing is pending
				// (the swarm sweep's fcall-transfer seed 4: an FCALL_RO
				// read a transfer that the disk then refused).
				r.submitCall(b, i)
				return
			}
		}
		res.WriteReply(req.W)
		b.state[i] = stWriteDone
		b.next = i + 1
		return
	}
	if msg := r.writeRefusal(); msg != "" {
		fail(msg)
		return
	}
	r.fn.rec = udf.AppendEffects(r.fn.rec[:0], res.Effects)
	rec := r.fn.rec
	if len(rec)+effectsHeaderBytes+binary.MaxVarintLen64 > commandBytesMax {
		fail("ERR function writes too large for the log")
		return
	}
	if len(r.fn.pending.keys) >= pendingKeysMax || r.fn.pending.bytes() >= pendingBytesMax {
		// Bound the overlay: apply what is pending first.
		r.flushCalls()
		_ = r.drive()
		r.fn.pending.reset()
	}
	if e := r.fn.open; e != nil && len(e.data)+binary.MaxVarintLen64+len(rec) > entryBytesTarget {
		r.flushCalls()
	}
	e := r.fn.open
	if e == nil {
		r.nextID++
		e = &callEntry{id: r.nextID, b: b}
		e.data = append(e.data, entryVersionEffects)
		e.data = binary.LittleEndian.AppendUint64(e.data, e.id)
		e.data = binary.LittleEndian.AppendUint64(e.data, uint64(b.nowMillis))
		r.fn.open = e
	}
	e.data = binary.AppendUvarint(e.data, uint64(len(rec)))
	e.data = append(e.data, rec...)
	e.positions = append(e.positions, i)
	e.replies = append(e.replies, res.Reply)
	b.state[i] = stWritePending
	r.fn.pending.add(r.db, b.nowMillis, res.Effects)
	// The reply is written when the entry applies (or by runUpTo if the
	// log fails under it); later requests wait behind it.
}

// callEntry is the effects entry a run of calls is filling.
type callEntry struct {
	id        uint64
	b         *batch
	data      []byte
	positions []int
	replies   []udf.Reply
}

// flushCalls proposes the open effects entry, if any.
func (r *Replica) flushCalls() {
	e := r.fn.open
	if e == nil {
		return
	}
	r.fn.open = nil
	p := &proposal{b: e.b, positions: e.positions, replies: e.replies}
	r.inflight[e.id] = p
	if err := r.rn.Propose(e.data); err != nil {
		delete(r.inflight, e.id)
		r.failProposal(p, "ERR write not accepted by the log: "+err.Error())
		// The overlay holds effects that will never apply: apply what
		// is in flight and start it again.
		_ = r.drive()
		r.fn.pending.reset()
	}
}

// canOverlay reports whether the call at position i may read through the
// pending effects rather than drive the log: every proposal in flight is
// an effects entry, and every request of b from the first unanswered one
// up to i is a call waiting for its effects to apply.
func (r *Replica) canOverlay(b *batch, i int) bool {
	if (len(r.inflight) == 0 && r.fn.open == nil) || b.next == i {
		return false
	}
	for _, p := range r.inflight {
		if p.replies == nil {
			return false
		}
	}
	for j := b.next; j < i; j++ {
		if b.state[j] != stWritePending {
			return false
		}
	}
	return true
}

// applyEffectsEntry applies an effects entry: each call's effects in
// order, each as one step, and on the leader each call's reply.
func (r *Replica) applyEffectsEntry(e pb.Entry) error {
	if len(e.Data) < effectsHeaderBytes {
		return errors.Wrapf(errBadEntry, "cluster: effects entry %d", e.Index)
	}
	id := binary.LittleEndian.Uint64(e.Data[1:])
	ms := int64(binary.LittleEndian.Uint64(e.Data[9:]))
	if ms > r.lastNowMillis {
		r.lastNowMillis = ms
	}
	r.logMillis = max(r.logMillis, ms)
	p := r.inflight[id]
	if p != nil {
		delete(r.inflight, id)
		if p.replies == nil {
			return errors.AssertionFailedf("cluster: effects entry %d matched a proposal of commands", e.Index)
		}
	}
	rest := e.Data[effectsHeaderBytes:]
	k := 0
	for ; len(rest) > 0; k++ {
		l, n := binary.Uvarint(rest)
		if n <= 0 || l > uint64(len(rest)-n) {
			return errors.Wrapf(errBadEntry, "cluster: effects entry %d record %d", e.Index, k)
		}
		effects, err := udf.DecodeEffects(rest[n : n+int(l)])
		if err != nil {
			return errors.Wrapf(err, "cluster: effects entry %d record %d", e.Index, k)
		}
		rest = rest[n+int(l):]
		if p == nil && r.opts.Knobs.followerPopsWrongEnd() {
			for _, e := range effects {
				if bytes.EqualFold(e[0], []byte("rpop")) {
					e[0] = []byte("LPOP")
				}
			}
		}
		if p != nil {
			if k >= len(p.positions) {
				return errors.AssertionFailedf("cluster: effects entry %d holds more calls than its proposal (%d)", e.Index, len(p.positions))
			}
			r.runUpTo(p.b, p.positions[k])
		}
		if err := udf.ApplyEffects(r.db, ms, effects); err != nil {
			return errors.Wrapf(err, "cluster: effects entry %d record %d", e.Index, k)
		}
		r.changes += int64(len(effects))
		if p != nil {
			pos := p.positions[k]
			p.replies[k].Write(p.b.reqs[pos].W)
			p.b.state[pos] = stWriteDone
			p.b.next = pos + 1
		}
	}
	if p != nil && k != len(p.positions) {
		return errors.AssertionFailedf("cluster: effects entry %d holds %d calls, its proposal %d", e.Index, k, len(p.positions))
	}
	return nil
}

func isEffectsEntry(data []byte) bool {
	return len(data) > 0 && data[0] == entryVersionEffects
}

// restoreFunctions installs a snapshot's registry (all or nothing).
func (r *Replica) restoreFunctions(dump []byte) error {
	h, err := r.fnHost()
	if err != nil {
		return err
	}
	if err := h.Restore(context.Background(), dump, udf.RestoreFlush); err != nil {
		return errors.Newf("snapshot function libraries: %s", udf.Message(err))
	}
	return nil
}

// resetSpecial empties what a snapshot holds besides keys (the function
// registry, the slot state, the member addresses, the ACL table) before
// one loads, so that a snapshot that fails half way leaves nothing behind.
func (r *Replica) resetSpecial() {
	r.resetFunctions()
	r.initSlots()
	r.addrs = nil
	r.acl = nil
}

// restoreSpecial installs a snapshot entry of a reserved type.
func (r *Replica) restoreSpecial(typ uint8, value []byte) error {
	switch typ {
	case snapTypeSlots:
		return r.restoreSlots(value)
	case snapTypeMembers:
		return r.restoreMembers(value)
	case snapTypeACL:
		return r.restoreACL(value)
	}
	return r.restoreFunctions(value)
}

// resetFunctions empties the registry before a snapshot loads, so that a
// snapshot that fails half way leaves nothing behind.
func (r *Replica) resetFunctions() {
	if r.fn.host != nil {
		r.fn.host.Flush(context.Background())
	}
}

// functionsDump is the registry to store in a snapshot (nil when empty).
func (r *Replica) functionsDump() []byte {
	if r.fn.host == nil || len(r.fn.host.Libraries()) == 0 {
		return nil
	}
	return r.fn.host.Dump()
}

// pendingKeysMax bounds the keys the pending-effects overlay holds before
// submitCall drives the log instead; pendingBytesMax bounds the
// collections it copies (engine bytes of its scratch keyspace).
const (
	pendingKeysMax  = 4096
	pendingBytesMax = 64 << 20
)

// pendingEffects is the keyspace change of effects entries proposed but
// not applied: per key, its value after them, or deleted. Valid only while
// every entry it was built from is still in flight and nothing else is;
// submitCall resets it whenever the log is driven.
//
// A string key that only SET and DEL touched is kept as its final value
// (the cheap common case). A key that any other command touched (keel.call
// on a hash, list, set or sorted set) is *opaque*: its value is what the
// pending commands make of it, and it lives in db, a scratch engine.DB of
// the overlay, copied from the applied keyspace, with the pending commands
// run there in order. db is built only when a call reads an opaque key
// (opaqueDB): a run of calls that never reads another's collections (a
// batch of one call, most of all) only queues the commands.
type pendingEffects struct {
	keys     map[string]pendingKey
	db       *engine.DB // opaque keys' values; nil until a read needs them
	cmds     [][][]byte // the commands on opaque keys, in order, while db is nil
	cmdBytes int64      // their arguments' bytes
	src      *engine.DB // the applied keyspace
	ms       int64      // the calls' time (one batch's)
}

type pendingKey struct {
	val     []byte
	deleted bool
	argv    [][]byte // the SET that gave val, TTL included
	opaque  bool     // the value is in db
}

func (p *pendingEffects) reset() {
	clear(p.keys)
	p.db = nil
	clear(p.cmds)
	p.cmds, p.cmdBytes = p.cmds[:0], 0
}

// bytes is what the overlay's scratch keyspace holds, or the commands
// queued for it.
func (p *pendingEffects) bytes() int64 {
	if p.db == nil {
		return p.cmdBytes
	}
	return p.db.UsedBytes()
}

// add records a call's effects, made at ms against src seen through the
// overlay. A PXAT deadline is after the call's time, which every call of
// the batch shares, so a SET key is alive for them all.
func (p *pendingEffects) add(src *engine.DB, ms int64, effects [][][]byte) {
	if p.keys == nil {
		p.keys = map[string]pendingKey{}
	}
	p.src, p.ms = src, ms
	for _, e := range effects {
		if isPlainSetOrDel(e) {
			if pk, ok := p.keys[string(e[1])]; !ok || !pk.opaque {
				if len(e) == 2 {
					p.keys[string(e[1])] = pendingKey{deleted: true}
				} else {
					p.keys[string(e[1])] = pendingKey{val: e[2], argv: composeSet(pk, ok, e)}
				}
				continue
			}
		}
		cmd := engine.Lookup(e[0])
		if cmd == nil || !cmd.ArityOK(len(e)) {
			panic(errors.AssertionFailedf("cluster: effect %q is not an engine command", e[0]))
		}
		for _, pos := range cmd.Keys(e) {
			p.markOpaque(e[pos])
		}
		if p.db == nil {
			p.queue(e)
			continue
		}
		p.run(cmd, e)
	}
}

// markOpaque makes key opaque. A string value pending for it becomes the
// first of its commands.
func (p *pendingEffects) markOpaque(key []byte) {
	pk, ok := p.keys[string(key)]
	if ok && pk.opaque {
		return
	}
	p.keys[string(key)] = pendingKey{opaque: true}
	if ok {
		argv := pk.argv
		if pk.deleted {
			argv = [][]byte{[]byte("DEL"), key}
		}
		if p.db == nil {
			p.queue(argv)
			return
		}
		p.copyFromSrc(key) // SET ... KEEPTTL keeps its TTL
		p.run(engine.Lookup(argv[0]), argv)
		return
	}
	if p.db != nil {
		p.copyFromSrc(key)
	}
}

// queue adds a command for opaqueDB to run.
func (p *pendingEffects) queue(e [][]byte) {
	p.cmds = append(p.cmds, e)
	for _, a := range e {
		p.cmdBytes += int64(len(a))
	}
}

// opaqueDB builds db, if it is not yet: every opaque key copied from the
// applied keyspace, then the queued commands run in order. Opaque keys
// first touched by a string SET or DEL are copied too (their first
// command replaces or deletes the copy), so the copies only cost.
func (p *pendingEffects) opaqueDB() *engine.DB {
	if p.db != nil {
		return p.db
	}
	// Its own fixed randomness: engine.New draws, and the replica's
	// stream must not move.
	p.db = engine.New(engine.Options{Rand: &engine.SplitMix64{}})
	copied := map[string]bool{}
	for _, e := range p.cmds {
		cmd := engine.Lookup(e[0])
		for _, pos := range cmd.Keys(e) {
			if k := string(e[pos]); !copied[k] {
				copied[k] = true
				p.copyFromSrc(e[pos])
			}
		}
		p.run(cmd, e)
	}
	clear(p.cmds)
	p.cmds, p.cmdBytes = p.cmds[:0], 0
	return p.db
}

func (p *pendingEffects) copyFromSrc(key []byte) {
	if err := udf.CopyKey(p.src, p.ms, key, p.db); err != nil {
		panic(errors.AssertionFailedf("cluster: copy pending key: %v", err))
	}
}

// run applies one pending command to db. It succeeded in the call on the
// same value at the same time, so it cannot fail here.
func (p *pendingEffects) run(cmd *engine.Command, e [][]byte) {
	var d engine.Discard
	p.db.Exec(p.ms, e, &d)
	if d.Err != "" {
		panic(errors.AssertionFailedf("cluster: pending effect %q failed: %s", cmd.Name, d.Err))
	}
}

// composeSet is the one SET that leaves a key as a pending SET or DEL
// (prev, when there is one) followed by e leave it: a KEEPTTL keeps the
// deadline the pending write gave, or none after a DEL.
func composeSet(prev pendingKey, ok bool, e [][]byte) [][]byte {
	if !ok || !hasKeepTTL(e) {
		return e
	}
	if prev.deleted {
		return e[:3:3]
	}
	return append(append([][]byte(nil), e[:3]...), prev.argv[3:]...)
}

func hasKeepTTL(e [][]byte) bool {
	return len(e) == 4 && bytes.EqualFold(e[3], []byte("keepttl"))
}

// isPlainSetOrDel reports SET k v [...] and DEL k, the effects strings
// make.
func isPlainSetOrDel(e [][]byte) bool {
	return (len(e) >= 3 && bytes.EqualFold(e[0], []byte("set"))) ||
		(len(e) == 2 && bytes.EqualFold(e[0], []byte("del")))
}

// overlayStore reads the applied keyspace through pending effects.
type overlayStore struct {
	*udf.EngineStore
	p *pendingEffects
}

// opaque is a store over the overlay's scratch keyspace.
func (s *overlayStore) opaque() *udf.EngineStore {
	return &udf.EngineStore{DB: s.p.opaqueDB(), NowMillis: s.NowMillis, R: s.R}
}

func (s *overlayStore) Get(key []byte) ([]byte, bool, error) {
	if k, ok := s.p.keys[string(key)]; ok {
		if k.opaque {
			return s.opaque().Get(key)
		}
		if k.deleted {
			return nil, false, nil
		}
		return k.val, true, nil
	}
	return s.EngineStore.Get(key)
}

func (s *overlayStore) Exists(key []byte) bool {
	if k, ok := s.p.keys[string(key)]; ok {
		if k.opaque {
			return s.p.opaqueDB().Live(s.NowMillis, key)
		}
		return !k.deleted
	}
	return s.EngineStore.Exists(key)
}

// gone reports a pending key that holds no value after the pending effects.
func (s *overlayStore) gone(k string, pk pendingKey) bool {
	if pk.opaque {
		return !s.p.opaqueDB().Live(s.NowMillis, []byte(k))
	}
	return pk.deleted
}

// Pending implements udf.KeyStore.
func (s *overlayStore) Pending(key []byte) bool {
	_, ok := s.p.keys[string(key)]
	return ok
}

// KeyBytes implements udf.KeyStore.
func (s *overlayStore) KeyBytes(key []byte) int64 {
	if k, ok := s.p.keys[string(key)]; ok {
		if k.opaque {
			return s.opaque().KeyBytes(key)
		}
		return int64(len(k.val))
	}
	return s.EngineStore.KeyBytes(key)
}

// CopyKey implements udf.KeyStore.
func (s *overlayStore) CopyKey(key []byte, dst *engine.DB) error {
	if k, ok := s.p.keys[string(key)]; ok {
		switch {
		case k.opaque:
			return udf.CopyKey(s.p.opaqueDB(), s.NowMillis, key, dst)
		case k.deleted:
			return nil
		}
		if hasKeepTTL(k.argv) {
			// The deadline is the applied key's.
			if err := s.EngineStore.CopyKey(key, dst); err != nil {
				return err
			}
		}
		var d engine.Discard
		dst.Exec(s.NowMillis, k.argv, &d)
		if d.Err != "" {
			return errors.Newf("%s", d.Err)
		}
		return nil
	}
	return s.EngineStore.CopyKey(key, dst)
}

// Scan merges the applied keys with the pending ones. Asking the engine
// for limit+len(pending) keys is enough: at most len(pending) of them are
// deleted here, so what is left still holds the first limit keys of the
// merged view whenever there are that many.
func (s *overlayStore) Scan(prefix, after []byte, limit int) [][]byte {
	n := limit
	if n > 0 {
		n += len(s.p.keys)
	}
	under := s.EngineStore.Scan(prefix, after, n)
	out := under[:0:0]
	for _, k := range under {
		if pk, ok := s.p.keys[string(k)]; ok && s.gone(string(k), pk) {
			continue
		}
		out = append(out, k)
	}
	seen := make(map[string]bool, len(out))
	for _, k := range out {
		seen[string(k)] = true
	}
	for k, pk := range s.p.keys {
		if seen[k] || !bytes.HasPrefix([]byte(k), prefix) || (after != nil && k <= string(after)) || s.gone(k, pk) {
			continue
		}
		out = append(out, []byte(k))
	}
	// Sorted before anything reaches the guest: map order never does.
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i], out[j]) < 0 })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

var _ udf.KeyStore = (*overlayStore)(nil)
