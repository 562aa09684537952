package udf

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"

	"github.com/keel-db/keel/engine"
)

// keel.call: engine commands on declared keys of any type (docs/functions.md,
// "Collections"). The guest names a command and its arguments; the host
// checks it against callCommands, checks its keys are declared, and runs it:
//
//   - a read whose keys the call has not touched runs straight on the
//     store (KeyStore.ExecRead): no copy, however large the value;
//   - anything else runs in the call's scratch keyspace (st.shadow, an
//     engine.DB of its own), into which each key is copied before its
//     first use there (KeyStore.CopyKey): before a write, before a read
//     of a key the call or the batch's pending calls wrote. Copies are
//     charged by their size and bounded (copyBytesMax).
//
// A write command that succeeded in the scratch keyspace becomes an effect
// as it was written (EXPIRE and its relatives rewritten to the absolute
// PEXPIREAT they meant), so followers and recovery run the same command on
// the same value at the same time and need no guest. The reply reaches the
// guest in the encoding of encodeReply; an error reply (WRONGTYPE, a
// syntax error, an overflow) is a value the guest sees, not a failure of
// the call, as redis.pcall gives it in Lua. Refusals of the host (a key not
// declared, a command not allowed, a write in FCALL_RO, a bound) fail the
// call as every host call does.

// callKind is how keel.call treats a command.
type callKind uint8

const (
	callRead   callKind = iota + 1 // runs on the store, or in the scratch keyspace
	callWrite                      // runs in the scratch keyspace, logged as an effect
	callRandom                     // refused: draws randomness the log would have to fix
	callBlock                      // refused: a function cannot wait
)

// callCommands is keel.call's allow-list. Writes are deterministic: the
// same command on the same value at the same time gives the same result
// on every replica. Commands not listed are refused by name.
var callCommands = map[string]callKind{
	// keys of any type
	"type": callRead, "exists": callRead, "ttl": callRead, "pttl": callRead,
	"expiretime": callRead, "pexpiretime": callRead,
	"del": callWrite, "unlink": callWrite, "expire": callWrite, "pexpire": callWrite,
	"expireat": callWrite, "pexpireat": callWrite, "persist": callWrite,
	// strings (keel.get/set/incrby are the cheaper way)
	"get": callRead, "mget": callRead, "strlen": callRead, "getrange": callRead,
	"incr": callWrite, "decr": callWrite, "incrby": callWrite, "decrby": callWrite, "append": callWrite,
	// hashes
	"hget": callRead, "hmget": callRead, "hgetall": callRead, "hkeys": callRead, "hvals": callRead,
	"hlen": callRead, "hexists": callRead, "hstrlen": callRead,
	"hset": callWrite, "hmset": callWrite, "hsetnx": callWrite, "hdel": callWrite,
	"hincrby": callWrite, "hincrbyfloat": callWrite,
	// lists
	"lrange": callRead, "llen": callRead, "lindex": callRead, "lpos": callRead,
	"lpush": callWrite, "rpush": callWrite, "lpushx": callWrite, "rpushx": callWrite,
	"lpop": callWrite, "rpop": callWrite, "lset": callWrite, "linsert": callWrite,
	"lrem": callWrite, "ltrim": callWrite, "lmove": callWrite, "rpoplpush": callWrite,
	// sets
	"smembers": callRead, "sismember": callRead, "smismember": callRead, "scard": callRead,
	"sinter": callRead, "sunion": callRead, "sdiff": callRead, "sintercard": callRead,
	"sadd": callWrite, "srem": callWrite, "smove": callWrite,
	// sorted sets
	"zscore": callRead, "zmscore": callRead, "zrank": callRead, "zrevrank": callRead,
	"zrange": callRead, "zrevrange": callRead, "zrangebyscore": callRead,
	"zrevrangebyscore": callRead, "zrangebylex": callRead, "zrevrangebylex": callRead,
	"zcard": callRead, "zcount": callRead, "zlexcount": callRead,
	"zadd": callWrite, "zincrby": callWrite, "zrem": callWrite, "zremrangebyscore": callWrite,
	"zremrangebyrank": callWrite, "zremrangebylex": callWrite, "zpopmin": callWrite, "zpopmax": callWrite,
	// refused
	"spop": callRandom, "srandmember": callRandom, "hrandfield": callRandom,
	"zrandmember": callRandom, "randomkey": callRandom,
	"blpop": callBlock, "brpop": callBlock, "brpoplpush": callBlock, "blmove": callBlock,
	"blmpop": callBlock, "bzpopmin": callBlock, "bzpopmax": callBlock, "bzmpop": callBlock,
}

// Bounds of keel.call.
const (
	// callReplyBytesMax bounds one encoded keel.call reply (an LRANGE of a
	// huge list): past it the encoder stops keeping bytes and the call fails.
	callReplyBytesMax = 64 << 20
	// shadowKeepBytes: a scratch keyspace that held more than this is
	// dropped after the call rather than kept for the next one.
	shadowKeepBytes = 1 << 20
)

// copyBytesMax bounds what one call copies into its scratch keyspace
// (engine bytes, KeyBytes): a call that would copy more fails before
// copying. Reads of keys the call has not written never copy. (A variable
// so that a test can lower it.)
var copyBytesMax int64 = 64 << 20

var cmdDel = []byte("DEL")

// callFuel is what keel.call costs on top of hostCallFuel, before it runs:
// an engine command on a small value takes a few hundred ns (price.go's
// 0.064 ns per unit); what it moves pays by the byte on top.
const callFuel = 4000

// callCommand runs keel.call for argv and returns the encoded reply.
func (st *callState) callCommand(argv [][]byte) []byte {
	st.charge(callFuel)
	if len(argv) == 0 {
		st.fail(userErrorf("ERR function '%s' called keel.call without a command", st.fn))
	}
	ks, ok := st.store.(KeyStore)
	if !ok {
		st.fail(userErrorf("ERR function '%s': keel.call is not available on this store", st.fn))
	}
	cmd := engine.Lookup(argv[0])
	var kind callKind
	if cmd != nil {
		kind = callCommands[cmd.Name]
	}
	switch kind {
	case 0:
		st.fail(userErrorf("ERR function '%s' called '%s', which keel.call does not run (docs/functions.md lists the commands it does)", st.fn, oneLine(argv[0])))
	case callRandom:
		st.fail(userErrorf("ERR function '%s' called '%s', which draws randomness: functions may not (use keel.random to choose, then a deterministic command)", st.fn, cmd.Name))
	case callBlock:
		st.fail(userErrorf("ERR function '%s' called '%s': functions cannot block", st.fn, cmd.Name))
	}
	st.enc.reset()
	if !cmd.ArityOK(len(argv)) {
		st.enc.WriteError("ERR wrong number of arguments for '" + cmd.Name + "' command")
		return st.enc.buf
	}
	if kind == callWrite {
		st.writable("call " + cmd.Name)
	}
	keys := cmd.Keys(argv)
	shadow := kind == callWrite
	for _, p := range keys {
		st.access(argv[p], "call")
		if !shadow && (st.isShadowed(argv[p]) || st.write(argv[p]) != nil || ks.Pending(argv[p])) {
			shadow = true
		}
	}
	n := 0
	for _, a := range argv {
		n += len(a)
	}
	st.chargeBytes(n)
	if !shadow {
		ks.ExecRead(argv, &st.enc)
	} else {
		for _, p := range keys {
			st.materialize(ks, argv[p])
		}
		sh := st.shadow
		sh.Exec(st.now, argv, &st.enc)
		if kind == callWrite && !st.enc.isError() {
			st.record(st.effectForm(cmd.Name, argv, sh.Clock()))
		}
	}
	if st.enc.over {
		st.fail(userErrorf("ERR function '%s': the reply of keel.call %s is larger than %d bytes", st.fn, cmd.Name, callReplyBytesMax))
	}
	st.chargeBytes(len(st.enc.buf))
	return st.enc.buf
}

// effectForm is the command to log for a write that succeeded: argv
// copied, with the relative and second-based expiries rewritten to the
// absolute PEXPIREAT they meant at now (the scratch keyspace's clock),
// as Redis replicates them.
func (st *callState) effectForm(name string, argv [][]byte, now int64) [][]byte {
	// One buffer for all the arguments: they live as long as the effects.
	n := 0
	for _, a := range argv {
		n += len(a)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(argv))
	for i, a := range argv {
		buf = append(buf, a...)
		out[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	var at int64
	switch name {
	case "expire", "pexpire", "expireat":
		// The command succeeded, so its number parsed and did not overflow
		// (the engine checks both the same way).
		n, err := strconv.ParseInt(string(argv[2]), 10, 64)
		if err != nil {
			return out
		}
		switch name {
		case "expire":
			at = now + n*1000
		case "pexpire":
			at = now + n
		default:
			at = n * 1000
		}
		out[0], out[2] = []byte("PEXPIREAT"), strconv.AppendInt(nil, at, 10)
	}
	return out
}

// record adds a write command that succeeded in the scratch keyspace to
// the call's effects.
func (st *callState) record(argv [][]byte) {
	st.noteWrite()
	for _, a := range argv {
		st.bytes += len(a)
	}
	if st.bytes > writeBytesMax {
		st.fail(userErrorf("ERR function '%s' buffered more than %d bytes of writes", st.fn, writeBytesMax))
	}
	st.cmds = append(st.cmds, argv)
}

// shadowDB returns the call's scratch keyspace, taking the host's (kept
// empty between calls) or making one. Its randomness is a fixed sequence
// of its own: it must not draw from the store's (engine.New draws).
func (st *callState) shadowDB() *engine.DB {
	if st.shadow != nil {
		return st.shadow
	}
	h := st.h
	if h.shadow == nil || h.shadow.Clock() > st.now {
		// A keyspace whose clock ran ahead of this call's time would
		// expire keys the call must still see.
		h.shadow = engine.New(engine.Options{Rand: &engine.SplitMix64{}})
	}
	st.shadow = h.shadow
	return st.shadow
}

func (st *callState) isShadowed(key []byte) bool {
	if st.shadowSet == nil {
		for _, k := range st.shadowKeys {
			if bytes.Equal(k, key) {
				return true
			}
		}
		return false
	}
	_, ok := st.shadowSet[string(key)]
	return ok
}

// addShadowed notes a key copied into the scratch keyspace. A call
// usually touches a few keys: a map costs more than it saves until there
// are more than writesScannedMax.
func (st *callState) addShadowed(key []byte) {
	st.shadowKeys = append(st.shadowKeys, append([]byte(nil), key...))
	switch n := len(st.shadowKeys); {
	case n > writesScannedMax && st.shadowSet == nil:
		st.shadowSet = make(map[string]struct{}, 2*n)
		for _, k := range st.shadowKeys {
			st.shadowSet[string(k)] = struct{}{}
		}
	case st.shadowSet != nil:
		st.shadowSet[string(key)] = struct{}{}
	}
}

// clearArgv empties keel.call's argument buffer for reuse.
func clearArgv(a [][]byte) [][]byte {
	if cap(a) > writesKeptMax {
		return nil
	}
	clear(a)
	return a[:0]
}

// materialize copies key into the scratch keyspace, once per call: the
// value the call sees, which is the store's (the applied keyspace and the
// batch's pending calls) with the call's own buffered string write on top.
// A buffered write moves into the scratch keyspace as the effect it would
// have been, recorded in its place in the effects.
func (st *callState) materialize(ks KeyStore, key []byte) {
	if st.isShadowed(key) {
		return
	}
	sh := st.shadowDB()
	w := st.write(key)
	// A buffered SET that replaces the value (no KEEPTTL) or a DEL needs
	// nothing of the old value.
	if w == nil || (!w.deleted && w.ttl == ttlKeep) {
		n := ks.KeyBytes(key)
		st.chargeBytes(int(min(n, math.MaxInt32)))
		if st.copied+n > copyBytesMax {
			st.fail(userErrorf("ERR function '%s' would copy %d bytes of key '%s' for keel.call; a call copies at most %d (reads of keys it did not write copy nothing)", st.fn, n, oneLine(key), copyBytesMax))
		}
		st.copied += n
		if err := ks.CopyKey(key, sh); err != nil {
			st.fail(userErrorf("ERR function '%s': copying key '%s' for keel.call: %v", st.fn, oneLine(key), err))
		}
	}
	st.addShadowed(key)
	if w != nil {
		eff := st.effectOf(append([]byte(nil), key...), w)
		w.shadowed = true
		if eff != nil {
			var d engine.Discard
			sh.Exec(st.now, eff, &d)
			if d.Err != "" {
				st.fail(userErrorf("ERR function '%s': internal: %s", st.fn, d.Err))
			}
			st.cmds = append(st.cmds, eff)
		}
	}
}

// shadowExec runs a command of the string calls on a key already in the
// scratch keyspace and returns its reply; write commands that succeed are
// recorded as effects. An error reply fails the call, as the string calls
// do.
//
// It has an encoder of its own: st.enc holds the last keel.call reply,
// which keel.call_reply may still be asked for.
func (st *callState) shadowExec(write bool, argv ...[]byte) *replyEncoder {
	e := &st.senc
	e.reset()
	st.shadow.Exec(st.now, argv, e)
	if e.isError() {
		st.fail(&Error{msg: string(e.errText())})
	}
	if write {
		st.record(argv)
	}
	return e
}

// dropShadow empties the scratch keyspace after a call: the keys it
// copied are deleted, or, when it held much, the whole keyspace is let go.
func (st *callState) dropShadow() {
	if st.shadow == nil {
		return
	}
	if st.copied+int64(st.bytes) > shadowKeepBytes || len(st.shadowKeys) > writesKeptMax {
		st.h.shadow = nil
	} else if len(st.shadowKeys) > 0 {
		argv := append(st.h.delArgv[:0], cmdDel)
		argv = append(argv, st.shadowKeys...)
		var d engine.Discard
		st.shadow.Exec(st.now, argv, &d)
		clear(argv)
		st.h.delArgv = argv[:0]
		if st.shadow.Len() != 0 {
			st.h.shadow = nil
		}
	}
	st.shadow = nil
}

// The encoding of a keel.call reply (docs/functions.md), RESP2's shapes in
// binary: a tag byte, then
//
//	'_'  nil (a missing value or a null array)
//	':'  i64le
//	'$'  u32le length + bytes (bulk strings; doubles as their text)
//	'+'  u32le length + bytes (status)
//	'-'  u32le length + bytes (an error, its code first: "WRONGTYPE ...")
//	'*'  u32le count, then that many replies (maps as 2n, sets as n)
type replyEncoder struct {
	buf  []byte
	over bool
}

func (e *replyEncoder) reset() {
	if cap(e.buf) > shadowKeepBytes {
		e.buf = nil
	}
	e.buf, e.over = e.buf[:0], false
}

func (e *replyEncoder) room(n int) bool {
	if e.over || len(e.buf)+n > callReplyBytesMax {
		e.over = true
		return false
	}
	return true
}

func (e *replyEncoder) bytes(tag byte, b []byte) {
	if e.room(5 + len(b)) {
		e.buf = append(e.buf, tag)
		e.buf = binary.LittleEndian.AppendUint32(e.buf, uint32(len(b)))
		e.buf = append(e.buf, b...)
	}
}

func (e *replyEncoder) header(tag byte, n int) {
	if e.room(5) {
		e.buf = append(e.buf, tag)
		e.buf = binary.LittleEndian.AppendUint32(e.buf, uint32(n))
	}
}

func (e *replyEncoder) isError() bool { return len(e.buf) > 0 && e.buf[0] == '-' }

func (e *replyEncoder) errText() []byte {
	if !e.isError() || len(e.buf) < 5 {
		return nil
	}
	return e.buf[5:]
}

func (e *replyEncoder) WriteSimple(s string)     { e.bytes('+', []byte(s)) }
func (e *replyEncoder) WriteError(msg string)    { e.bytes('-', []byte(msg)) }
func (e *replyEncoder) WriteBulk(b []byte)       { e.bytes('$', b) }
func (e *replyEncoder) WriteBulkString(s string) { e.bytes('$', []byte(s)) }
func (e *replyEncoder) WriteArray(n int)         { e.header('*', n) }
func (e *replyEncoder) WriteMap(n int)           { e.header('*', 2*n) }
func (e *replyEncoder) WriteSet(n int)           { e.header('*', n) }
func (e *replyEncoder) WriteNullArray()          { e.WriteNull() }
func (e *replyEncoder) WriteNull() {
	if e.room(1) {
		e.buf = append(e.buf, '_')
	}
}
func (e *replyEncoder) WriteInt(n int64) {
	if e.room(9) {
		e.buf = append(e.buf, ':')
		e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(n))
	}
}

// WriteDouble writes a double as RESP2 does: its shortest text.
func (e *replyEncoder) WriteDouble(f float64) {
	var tmp [32]byte
	var b []byte
	switch {
	case math.IsInf(f, 1):
		b = append(tmp[:0], "inf"...)
	case math.IsInf(f, -1):
		b = append(tmp[:0], "-inf"...)
	case math.IsNaN(f):
		b = append(tmp[:0], "nan"...)
	default:
		b = strconv.AppendFloat(tmp[:0], f, 'g', -1, 64)
	}
	e.bytes('$', b)
}

// decodeArgv reads keel.call's argument list, each argument as a u32le
// length and its bytes, appending to out. The arguments alias b.
func decodeArgv(out [][]byte, b []byte) ([][]byte, bool) {
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, false
		}
		n := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, false
		}
		out = append(out, b[:n:n])
		b = b[n:]
	}
	return out, true
}

var _ engine.Writer = (*replyEncoder)(nil)

// isSetOrDel reports whether an effect is in the vocabulary of effects
// records of version 1 (SET and DEL of one key).
func isSetOrDel(argv [][]byte) bool {
	return (len(argv) >= 3 && bytes.EqualFold(argv[0], []byte("set"))) ||
		(len(argv) == 2 && bytes.EqualFold(argv[0], []byte("del")))
}
