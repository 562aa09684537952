package udf

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/engine"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// Bounds on one call.
const (
	// writeBytesMax bounds the keys and values a call buffers.
	writeBytesMax = 64 << 20
	// valueBytesMax is Redis's proto-max-bulk-len default.
	valueBytesMax = 512 << 20
	// scanLimitMax bounds the keys one keel.scan returns.
	scanLimitMax = 1024
	// logBytesMax truncates one log message; logCallsMax bounds how many a
	// call may emit (the rest are dropped).
	logBytesMax = 4096
	logCallsMax = 256
)

type ttlMode uint8

const (
	ttlNone ttlMode = iota // SET without expiry: clears any TTL
	ttlAt                  // SET ... PXAT at
	ttlKeep                // SET ... KEEPTTL
)

// write is the call's buffered state of one key.
type write struct {
	val     []byte
	deleted bool
	ttl     ttlMode
	at      int64
	// shadowed: the key moved into the call's scratch keyspace
	// (collections.go); this write is in cmds now.
	shadowed bool
}

// callState is one call's view: its inputs, its buffered writes and the
// reply under construction. Host functions reach it through the context.
type callState struct {
	h        *Host
	lib      *Library
	fn       string
	store    Store
	readOnly bool
	now      int64
	keys     [][]byte
	args     [][]byte
	prefixes [][]byte // scanned (declared) prefixes: keys under them are accessible
	// writes are the buffered writes in first-write order (the effects'
	// order); index finds them by key once there are more than
	// writesScannedMax (a call usually writes one or two keys: a map
	// would cost more than it saves).
	writes  []keyWrite
	index   map[string]int
	bytes   int
	reply   replyBuilder
	logs    int
	fuel    api.MutableGlobal // nil until the instance exists
	inst    *instance
	failure *Error
	// ctx is the call's context; ctxDone: it can end. id is the call's
	// number (interrupt.go); wrote: it has buffered a write.
	ctx     context.Context
	ctxDone bool
	id      uint64
	wrote   bool
	// keel.call (collections.go): the scratch keyspace and the keys in it
	// (shadowKeys in the order they came), the write commands run there
	// (effects after the string writes), the bytes copied into it, the
	// reply encoder and the last reply (for keel.call_reply).
	shadow     *engine.DB
	shadowSet  map[string]struct{} // once there are more than writesScannedMax
	shadowKeys [][]byte
	cmds       [][][]byte
	copied     int64
	enc        replyEncoder
	senc       replyEncoder // the string calls' commands in the scratch keyspace
	last       []byte
	argvBuf    [][]byte // keel.call's decoded arguments (they alias guest memory)
}

type keyWrite struct {
	key string
	w   write
}

const writesScannedMax = 8

// writesKeptMax bounds the write list a Host keeps between calls.
const writesKeptMax = 64

// clearReplies empties the reply nodes for reuse, as clearWrites does.
func clearReplies(rs []Reply) []Reply {
	if cap(rs) > writesKeptMax {
		return nil
	}
	clear(rs)
	return rs[:0]
}

// clearWrites empties a write list for reuse, dropping what its entries
// point to (values now owned by an earlier call's effects).
func clearWrites(ws []keyWrite) []keyWrite {
	if cap(ws) > writesKeptMax {
		return nil
	}
	clear(ws)
	return ws[:0]
}

// write returns the call's buffered write of key, or nil. The pointer
// is valid until the next put.
func (st *callState) write(key []byte) *write {
	if st.index != nil {
		if i, ok := st.index[string(key)]; ok && !st.writes[i].w.shadowed {
			return &st.writes[i].w
		}
		return nil
	}
	for i := range st.writes {
		if st.writes[i].key == string(key) {
			if st.writes[i].w.shadowed {
				return nil
			}
			return &st.writes[i].w
		}
	}
	return nil
}

// current is the call a host function serves.
func (h *Host) current() *callState {
	if h.cur == nil {
		// Only reachable if a guest ran outside Call, which Host never does.
		panic(errors.AssertionFailedf("udf: host function called outside a call"))
	}
	return h.cur
}

// fail aborts the guest with a user-facing error; the call returns it and
// no effects.
func (st *callState) fail(err *Error) {
	st.failure = err
	panic(err)
}

// Call runs function fn with the declared keys and the args against store.
// On success the Result holds the reply and the effects to log and apply;
// on failure (unknown function, trap, fuel, memory, a refused host call)
// the error's Message is the client's reply and nothing was written.
// readOnly is FCALL_RO: any write fails the call.
func (h *Host) Call(ctx context.Context, fn string, keys, args [][]byte, store Store, readOnly bool) (Result, error) {
	lib := h.fns[fn]
	if lib == nil {
		return Result{}, userErrorf("ERR Function not found")
	}
	if h.cur != nil {
		return Result{}, errors.AssertionFailedf("udf: Call of %s inside a call of %s", fn, h.cur.fn)
	}
	// The state's storage is reused: nothing a Result holds points into
	// it (effects and the reply tree are built fresh), and only the
	// buffers of the write list and of the reply nodes are kept.
	st := &h.st
	enc, senc, argvBuf := st.enc, st.senc, st.argvBuf
	enc.reset()
	senc.reset()
	*st = callState{h: h, lib: lib, fn: fn, store: store, readOnly: readOnly, now: store.Now(), keys: keys, args: args,
		writes: clearWrites(st.writes), reply: replyBuilder{nodes: clearReplies(st.reply.nodes)}, enc: enc, senc: senc,
		argvBuf: clearArgv(argvBuf)}
	h.cur = st
	defer func() {
		st.dropShadow()
		st.last = nil
		h.cur = nil
	}()
	h.stats.Calls++
	res, err := st.run(ctx)
	if err != nil {
		h.stats.Failures++
	}
	return res, err
}

// run runs the call in the library's warm instance or a fresh one
// (warm.go), under the context the runtime supplies (Config.WithCallContext)
// and open to being stopped from outside (interrupt.go). Only a call that
// succeeded gives its instance back; any failure closes it.
func (st *callState) run(ctx context.Context) (Result, error) {
	h := st.h
	if newCtx := h.cfg.callContext; newCtx != nil {
		var cancel context.CancelFunc
		ctx, cancel = newCtx(ctx)
		defer cancel()
	}
	st.ctx, st.ctxDone = ctx, ctx.Done() != nil
	st.id = h.begin(st)
	if st.ctxDone {
		if ctx.Err() != nil {
			h.end()
			return Result{}, killedError(st.fn, context.Cause(ctx))
		}
		// The stop runs on whichever goroutine ends the context; a late
		// one finds the call over (the ID differs) and does nothing.
		id := st.id
		defer context.AfterFunc(ctx, func() { h.interrupt(id, context.Cause(ctx), false) })()
	}
	inst, err := h.instance(ctx, st.lib)
	if err != nil {
		return Result{}, st.verdict(ctx, nil, err, h.end())
	}
	st.fuel, st.inst = inst.fuel, inst
	h.attach(inst)
	f := inst.function(st.fn)
	if f == nil {
		h.end()
		h.discard(ctx, inst)
		return Result{}, errors.AssertionFailedf("udf: library %s lost export %s", st.lib.name, st.fn)
	}
	err = st.guest(ctx, inst, f)
	// A stop that comes after the guest returned changes nothing: the
	// call stands, and its instance, reset as usual (the stop global
	// included), serves the next.
	cause := h.end()
	if st.fuel != nil {
		// What the call used, failed calls included (one that ran out
		// used all of it).
		h.stats.FuelUsed += min(h.cfg.fuel-int64(st.fuel.Get()), h.cfg.fuel)
	}
	if err != nil {
		err = st.verdict(ctx, inst, err, cause)
		h.discard(ctx, inst)
		return Result{}, err
	}
	reply, err := st.reply.finish()
	if err != nil {
		st.h.discard(ctx, inst)
		return Result{}, err
	}
	st.h.release(ctx, st.lib, inst)
	return Result{Reply: reply, Effects: st.effects()}, nil
}

// guest runs _initialize, if the library has one, then the function.
func (st *callState) guest(ctx context.Context, inst *instance, f api.Function) error {
	if inst.init != nil {
		if err := inst.init.CallWithStack(ctx, nil); err != nil {
			return err
		}
	}
	return f.CallWithStack(ctx, nil)
}

// verdict names why the guest stopped. The order matters: a host call that
// failed on purpose; then the metering globals that say exactly which
// check trapped (fuel below zero, call stack past its limit); then a stop
// from outside (cause, or the context's end: not deterministic, but only
// the leader runs guests and a stopped call logs nothing); then the
// memory flag, which only says that a grow failed at some point and so
// names a trap that follows it; then the raw trap.
func (st *callState) verdict(ctx context.Context, inst *instance, err error, cause error) error {
	if st.failure != nil {
		return st.failure
	}
	if inst != nil {
		if inst.fuel != nil && int64(inst.fuel.Get()) < 0 {
			return userErrorf("ERR function '%s' ran out of fuel (limit %d instructions)", st.fn, st.h.cfg.fuel)
		}
		if inst.depth != nil && int64(inst.depth.Get()) > callStackUnitsMax {
			return userErrorf("ERR function '%s' nested calls too deeply (call stack limit of %d units)", st.fn, callStackUnitsMax)
		}
	}
	if cause != nil {
		return killedError(st.fn, cause)
	}
	if ctx.Err() != nil {
		return killedError(st.fn, context.Cause(ctx))
	}
	if inst != nil && inst.oom != nil && inst.oom.Get() != 0 {
		return userErrorf("ERR function '%s' exceeded the memory limit of %d KiB", st.fn, st.h.cfg.memoryLimitPages*64)
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return userErrorf("ERR function '%s' exited with code %d", st.fn, exit.ExitCode())
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return userErrorf("ERR function '%s' trapped: %s", st.fn, msg)
}

// effects turns the buffered writes into engine commands, in first-write
// order, followed by the commands keel.call ran in the scratch keyspace
// (a key is in one or the other: materialize moves it). A delete of a key
// that did not exist before the call is dropped.
func (st *callState) effects() [][][]byte {
	out := make([][][]byte, 0, len(st.writes)+len(st.cmds))
	for i := range st.writes {
		if st.writes[i].w.shadowed {
			continue
		}
		if e := st.effectOf([]byte(st.writes[i].key), &st.writes[i].w); e != nil {
			out = append(out, e)
		}
	}
	return append(out, st.cmds...)
}

// effectOf is the engine command a buffered write becomes, nil for the
// delete of a key that did not exist before the call. It aliases key and
// w.val.
func (st *callState) effectOf(key []byte, w *write) [][]byte {
	switch {
	case w.deleted:
		if st.store.Exists(key) {
			return [][]byte{[]byte("DEL"), key}
		}
		return nil
	case w.ttl == ttlAt:
		return [][]byte{[]byte("SET"), key, w.val, []byte("PXAT"), strconv.AppendInt(nil, w.at, 10)}
	case w.ttl == ttlKeep:
		return [][]byte{[]byte("SET"), key, w.val, []byte("KEEPTTL")}
	default:
		return [][]byte{[]byte("SET"), key, w.val}
	}
}

// charge takes units of fuel for host work, so that the verdict stays a
// function of what the guest asked for, and ends a call that was stopped
// (interrupt.go) at its next host call.
func (st *callState) charge(units int64) {
	st.h.checkStopped(st)
	if st.fuel == nil {
		return
	}
	left := int64(st.fuel.Get()) - units
	st.fuel.Set(uint64(left))
	if left < 0 {
		st.fail(userErrorf("ERR function '%s' ran out of fuel (limit %d instructions)", st.fn, st.h.cfg.fuel))
	}
}

// chargeBytes charges for nbytes the host moves: one unit per
// 1<<hostCallByteShift bytes, rounded up (price.go).
func (st *callState) chargeBytes(nbytes int) {
	if nbytes > 0 {
		st.charge(int64((nbytes + 1<<hostCallByteShift - 1) >> hostCallByteShift))
	}
}

// access refuses keys the caller did not declare: the replica routes and
// logs by declared keys, so touching another would break both.
func (st *callState) access(key []byte, op string) {
	for _, k := range st.keys {
		if bytes.Equal(k, key) {
			return
		}
	}
	for _, p := range st.prefixes {
		if bytes.HasPrefix(key, p) {
			return
		}
	}
	st.fail(userErrorf("ERR function '%s' accessed key '%s' (keel.%s) that was not declared in numkeys", st.fn, key, op))
}

func (st *callState) writable(op string) {
	if st.readOnly {
		st.fail(userErrorf("ERR Write commands are not allowed from read-only scripts. (keel.%s in '%s')", op, st.fn))
	}
}

// lookup reads key through the call's writes.
func (st *callState) lookup(key []byte) ([]byte, bool) {
	if st.isShadowed(key) {
		r := st.shadowExec(false, []byte("GET"), key)
		if len(r.buf) >= 5 && r.buf[0] == '$' {
			return append([]byte(nil), r.buf[5:]...), true
		}
		return nil, false
	}
	if w := st.write(key); w != nil {
		return w.val, !w.deleted
	}
	v, ok, err := st.store.Get(key)
	if err != nil {
		st.fail(&Error{msg: err.Error()})
	}
	return v, ok
}

func (st *callState) exists(key []byte) bool {
	if st.isShadowed(key) {
		return st.shadow.Live(st.now, key)
	}
	if w := st.write(key); w != nil {
		return !w.deleted
	}
	return st.store.Exists(key)
}

// put buffers a write, keeping its first-write position.
func (st *callState) put(key []byte, w write) {
	st.noteWrite()
	st.bytes += len(key) + len(w.val)
	if st.bytes > writeBytesMax {
		st.fail(userErrorf("ERR function '%s' buffered more than %d bytes of writes", st.fn, writeBytesMax))
	}
	if old := st.write(key); old != nil {
		*old = w
		return
	}
	st.writes = append(st.writes, keyWrite{key: string(key), w: w})
	switch n := len(st.writes); {
	case n > writesScannedMax && st.index == nil:
		st.index = make(map[string]int, 2*n)
		for i := range st.writes {
			st.index[st.writes[i].key] = i
		}
	case st.index != nil:
		st.index[st.writes[n-1].key] = n - 1
	}
}

func (st *callState) set(key, val []byte, ttlMillis int64) {
	w := write{val: append([]byte(nil), val...)}
	switch {
	case ttlMillis == 0:
		w.ttl = ttlNone
	case ttlMillis == -1:
		// KEEPTTL keeps the TTL of the key as the call sees it: the
		// store's (KEEPTTL in the effect), the one this call gave it, or
		// none if this call deleted it (the DEL is folded into this SET, so
		// the effect must not say KEEPTTL then).
		w.ttl = ttlKeep
		if old := st.write(key); old != nil {
			w.ttl, w.at = old.ttl, old.at
			if old.deleted {
				w.ttl, w.at = ttlNone, 0
			}
		}
	case ttlMillis > 0 && ttlMillis <= math.MaxInt64-st.now:
		w.ttl, w.at = ttlAt, st.now+ttlMillis
	default:
		st.fail(userErrorf("ERR invalid expire time in 'keel.set' (%d) from '%s'", ttlMillis, st.fn))
	}
	if st.isShadowed(key) {
		st.shadowExec(true, st.effectOf(append([]byte(nil), key...), &w)...)
		return
	}
	st.put(key, w)
}

func (st *callState) del(key []byte) bool {
	if !st.exists(key) {
		return false
	}
	if st.isShadowed(key) {
		st.shadowExec(true, []byte("DEL"), append([]byte(nil), key...))
		return true
	}
	st.put(key, write{deleted: true})
	return true
}

func (st *callState) incrBy(key []byte, delta int64) int64 {
	if st.isShadowed(key) {
		r := st.shadowExec(true, []byte("INCRBY"), append([]byte(nil), key...), strconv.AppendInt(nil, delta, 10))
		return int64(binary.LittleEndian.Uint64(r.buf[1:]))
	}
	var cur int64
	w := write{ttl: ttlNone}
	if v, ok := st.lookup(key); ok {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || len(v) > 20 || strconv.FormatInt(n, 10) != string(v) {
			st.fail(userErrorf("ERR value is not an integer or out of range"))
		}
		cur = n
		w.ttl = ttlKeep
		if old := st.write(key); old != nil {
			w.ttl, w.at = old.ttl, old.at
		}
	}
	if (delta > 0 && cur > math.MaxInt64-delta) || (delta < 0 && cur < math.MinInt64-delta) {
		st.fail(userErrorf("ERR increment or decrement would overflow"))
	}
	cur += delta
	w.val = strconv.AppendInt(nil, cur, 10)
	st.put(key, w)
	return cur
}

// scan returns up to limit keys under prefix after `after`, as the call
// sees them: the store's keys, minus the ones the call deleted, plus the
// ones it created.
func (st *callState) scan(prefix, after []byte, limit int) [][]byte {
	declared := false
	for _, k := range st.keys {
		if bytes.Equal(k, prefix) {
			declared = true
			break
		}
	}
	if !declared {
		st.fail(userErrorf("ERR function '%s' scanned prefix '%s' that was not declared in numkeys", st.fn, prefix))
	}
	seen := false
	for _, p := range st.prefixes {
		if bytes.Equal(p, prefix) {
			seen = true
		}
	}
	if !seen {
		st.prefixes = append(st.prefixes, append([]byte(nil), prefix...))
	}
	if limit <= 0 || limit > scanLimitMax {
		limit = scanLimitMax
	}
	var out [][]byte
	// From the store: its first `limit` keys that the call did not delete.
	// Each round moves the cursor forward, so this ends.
	cursor := after
	for len(out) < limit {
		batch := st.store.Scan(prefix, cursor, limit)
		for _, k := range batch {
			if w := st.write(k); w != nil && w.deleted {
				continue
			}
			out = append(out, k)
		}
		if len(batch) < limit {
			break
		}
		cursor = batch[len(batch)-1]
	}
	for i := range st.writes {
		k, w := st.writes[i].key, &st.writes[i].w
		if !w.deleted && !w.shadowed && strings.HasPrefix(k, string(prefix)) && (after == nil || k > string(after)) {
			out = append(out, []byte(k))
		}
	}
	if len(st.shadowKeys) > 0 {
		// Keys in the scratch keyspace are there as the call left them.
		kept := out[:0]
		for _, k := range out {
			if !st.isShadowed(k) {
				kept = append(kept, k)
			}
		}
		out = kept
		for _, k := range st.shadowKeys {
			if bytes.HasPrefix(k, prefix) && (after == nil || bytes.Compare(k, after) > 0) && st.shadow.Live(st.now, k) {
				out = append(out, k)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i], out[j]) < 0 })
	dedup := out[:0]
	for i, k := range out {
		if i == 0 || !bytes.Equal(k, out[i-1]) {
			dedup = append(dedup, k)
		}
	}
	if len(dedup) > limit {
		dedup = dedup[:limit]
	}
	return dedup
}

// encodeKeys is keel.scan's output format: each key as a little-endian u32
// length and its bytes.
func encodeKeys(keys [][]byte) []byte {
	n := 0
	for _, k := range keys {
		n += 4 + len(k)
	}
	out := make([]byte, 0, n)
	for _, k := range keys {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(k)))
		out = append(out, k...)
	}
	return out
}

func (st *callState) log(level LogLevel, msg []byte) {
	if st.logs >= logCallsMax {
		return
	}
	st.logs++
	if len(msg) > logBytesMax {
		msg = msg[:logBytesMax]
	}
	st.h.cfg.logger.Log(st.lib.name, st.fn, level, string(msg))
}
