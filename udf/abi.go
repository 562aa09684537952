package udf

import (
	"github.com/tetratelabs/wazero/api"
)

// The keel host ABI, version 1. docs/functions.md is its specification;
// this table is its implementation, and Load checks every import against
// it (name and exact signature), so a guest built for another version is
// refused at load with a message that says so.
const (
	abiModule = "keel"
	// abiMarker is the export by which a guest declares the ABI version it
	// was built for. A future incompatible ABI gets a new marker, and the
	// host can serve both.
	abiMarker = "keel_abi_v1"
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// hostFunc is one imported function: its name, signature and body.
type hostFunc struct {
	name            string
	params, results []api.ValueType
	fn              func(st *callState, mod api.Module, stack []uint64)
}

func sig(params ...api.ValueType) []api.ValueType { return params }

// mem reads a guest buffer, failing the call if it is out of bounds. The
// slice aliases guest memory: copy before keeping it, and mark it with
// st.written before writing into it.
//
// i32 arguments arrive in uint64 stack slots whose upper bits are not
// defined: every pointer and length is truncated to 32 bits here.
func (st *callState) mem(mod api.Module, ptr64, n64 uint64, op string) []byte {
	ptr, n := uint32(ptr64), uint32(n64)
	if n == 0 {
		return nil
	}
	if n > valueBytesMax {
		st.fail(userErrorf("ERR function '%s' passed a %d-byte buffer to keel.%s, above the limit of %d", st.fn, n, op, valueBytesMax))
	}
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		st.fail(userErrorf("ERR function '%s' passed an out-of-bounds buffer to keel.%s", st.fn, op))
	}
	return b
}

// out copies data into the guest buffer (ptr, capacity) as far as it fits
// and returns len(data): the snprintf convention, so a guest whose buffer
// was too small can retry with one of the right size.
func (st *callState) out(mod api.Module, ptr, capacity uint64, data []byte, op string) uint64 {
	n := min(uint64(len(data)), uint64(uint32(capacity)))
	if n > 0 {
		st.written(uint32(ptr), uint32(n))
		if !mod.Memory().Write(uint32(ptr), data[:n]) {
			st.fail(userErrorf("ERR function '%s' passed an out-of-bounds buffer to keel.%s", st.fn, op))
		}
	}
	return uint64(uint32(len(data)))
}

func (st *callState) input(list [][]byte, i64 uint64, op string) []byte {
	i := uint64(uint32(i64))
	if i >= uint64(len(list)) {
		st.fail(userErrorf("ERR function '%s' asked keel.%s for index %d of %d", st.fn, op, int32(i), len(list)))
	}
	return list[i]
}

func (st *callState) addReply(r Reply) {
	if err := st.reply.add(r); err != nil {
		st.fail(err.(*Error))
	}
}

var keelFuncs = []hostFunc{
	{"key_count", nil, sig(i32), func(st *callState, _ api.Module, s []uint64) {
		s[0] = uint64(len(st.keys))
	}},
	{"arg_count", nil, sig(i32), func(st *callState, _ api.Module, s []uint64) {
		s[0] = uint64(len(st.args))
	}},
	// key(i, buf, cap) -> len
	{"key", sig(i32, i32, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		k := st.input(st.keys, s[0], "key")
		st.chargeBytes(len(k))
		s[0] = st.out(mod, s[1], s[2], k, "key")
	}},
	// arg(i, buf, cap) -> len
	{"arg", sig(i32, i32, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		a := st.input(st.args, s[0], "arg")
		st.chargeBytes(len(a))
		s[0] = st.out(mod, s[1], s[2], a, "arg")
	}},
	// get(key, klen, buf, cap) -> len, or -1 when the key does not exist
	{"get", sig(i32, i32, i32, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		k := st.mem(mod, s[0], s[1], "get")
		st.access(k, "get")
		v, ok := st.lookup(k)
		st.chargeBytes(len(v))
		if !ok {
			s[0] = uint64(0xffffffff)
			return
		}
		s[0] = st.out(mod, s[2], s[3], v, "get")
	}},
	// exists(key, klen) -> 0|1
	{"exists", sig(i32, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		k := st.mem(mod, s[0], s[1], "exists")
		st.access(k, "exists")
		s[0] = 0
		if st.exists(k) {
			s[0] = 1
		}
	}},
	// set(key, klen, val, vlen, ttl_ms): ttl 0 = no expiry, -1 = keep the
	// key's TTL, >0 = expire ttl_ms after the call's now.
	{"set", sig(i32, i32, i32, i32, i64), nil, func(st *callState, mod api.Module, s []uint64) {
		st.writable("set")
		k := st.mem(mod, s[0], s[1], "set")
		st.access(k, "set")
		v := st.mem(mod, s[2], s[3], "set")
		st.chargeBytes(len(k) + len(v))
		st.set(k, v, int64(s[4]))
	}},
	// del(key, klen) -> 1 if it existed
	{"del", sig(i32, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		st.writable("del")
		k := st.mem(mod, s[0], s[1], "del")
		st.access(k, "del")
		st.chargeBytes(len(k))
		s[0] = 0
		if st.del(k) {
			s[0] = 1
		}
	}},
	// incrby(key, klen, delta) -> new value
	{"incrby", sig(i32, i32, i64), sig(i64), func(st *callState, mod api.Module, s []uint64) {
		st.writable("incrby")
		k := st.mem(mod, s[0], s[1], "incrby")
		st.access(k, "incrby")
		st.chargeBytes(len(k))
		s[0] = uint64(st.incrBy(k, int64(s[2])))
	}},
	// scan(prefix, plen, after, alen, limit, buf, cap) -> len of the
	// encoded keys (u32le length + bytes each); the prefix must be a
	// declared key, and the keys it returns become accessible.
	{"scan", sig(i32, i32, i32, i32, i32, i32, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		prefix := st.mem(mod, s[0], s[1], "scan")
		var after []byte
		if uint32(s[3]) != 0 {
			after = append([]byte(nil), st.mem(mod, s[2], s[3], "scan")...)
		}
		keys := st.scan(prefix, after, int(int32(s[4])))
		enc := encodeKeys(keys)
		st.chargeBytes(len(enc) + 64*len(keys))
		s[0] = st.out(mod, s[5], s[6], enc, "scan")
	}},
	// call(argv, alen, buf, cap) -> len of the encoded reply: an engine
	// command on declared keys (collections.go); argv is each argument as
	// u32le length + bytes. The whole reply stays available to call_reply
	// until the next call.
	{"call", sig(i32, i32, i32, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		argv, ok := decodeArgv(st.argvBuf[:0], st.mem(mod, s[0], s[1], "call"))
		st.argvBuf = argv
		if !ok {
			st.fail(userErrorf("ERR function '%s' passed a malformed argument list to keel.call", st.fn))
		}
		st.last = st.callCommand(argv)
		s[0] = st.out(mod, s[2], s[3], st.last, "call")
	}},
	// call_reply(buf, cap) -> len: the last keel.call reply again, for a
	// guest whose buffer was too small (the command does not run twice).
	{"call_reply", sig(i32, i32), sig(i32), func(st *callState, mod api.Module, s []uint64) {
		st.chargeBytes(len(st.last))
		s[0] = st.out(mod, s[0], s[1], st.last, "call_reply")
	}},
	// now() -> Unix milliseconds of the call
	{"now", nil, sig(i64), func(st *callState, _ api.Module, s []uint64) {
		s[0] = uint64(st.now)
	}},
	// random() -> 64 random bits from keel's injected source
	{"random", nil, sig(i64), func(st *callState, _ api.Module, s []uint64) {
		s[0] = st.store.Rand()
	}},
	// log(level, msg, len)
	{"log", sig(i32, i32, i32), nil, func(st *callState, mod api.Module, s []uint64) {
		msg := st.mem(mod, s[1], s[2], "log")
		st.chargeBytes(len(msg))
		st.log(LogLevel(int32(s[0])), msg)
	}},
	{"reply_nil", nil, nil, func(st *callState, _ api.Module, _ []uint64) {
		st.addReply(Reply{Kind: ReplyNil})
	}},
	{"reply_int", sig(i64), nil, func(st *callState, _ api.Module, s []uint64) {
		st.addReply(Reply{Kind: ReplyInt, Int: int64(s[0])})
	}},
	{"reply_bulk", sig(i32, i32), nil, func(st *callState, mod api.Module, s []uint64) {
		b := st.mem(mod, s[0], s[1], "reply_bulk")
		st.chargeBytes(len(b))
		st.addReply(Reply{Kind: ReplyBulk, Bytes: append([]byte{}, b...)})
	}},
	{"reply_simple", sig(i32, i32), nil, func(st *callState, mod api.Module, s []uint64) {
		b := st.mem(mod, s[0], s[1], "reply_simple")
		st.chargeBytes(len(b))
		st.addReply(Reply{Kind: ReplySimple, Bytes: oneLine(b)})
	}},
	// reply_error(msg, len): an error reply. The call's writes still apply,
	// as in Redis; use abort to discard them.
	{"reply_error", sig(i32, i32), nil, func(st *callState, mod api.Module, s []uint64) {
		b := st.mem(mod, s[0], s[1], "reply_error")
		st.chargeBytes(len(b))
		st.addReply(Reply{Kind: ReplyError, Bytes: errorText(b)})
	}},
	{"reply_array", sig(i32), nil, func(st *callState, _ api.Module, s []uint64) {
		n := int32(s[0])
		if n < 0 || n > replyNodesMax {
			st.fail(userErrorf("ERR function '%s' announced an array of %d elements", st.fn, n))
		}
		st.addReply(Reply{Kind: ReplyArray, Int: int64(n)})
	}},
	// abort(msg, len): stop now, discard every write, reply with msg.
	{"abort", sig(i32, i32), nil, func(st *callState, mod api.Module, s []uint64) {
		b := st.mem(mod, s[0], s[1], "abort")
		st.fail(&Error{msg: string(errorText(b))})
	}},
}

// oneLine keeps a simple string or error on one RESP line.
func oneLine(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if c == '\r' || c == '\n' {
			c = ' '
		}
		out[i] = c
	}
	return out
}

// errorText gives a guest's error message Redis's shape: an upper-case
// code word first, "ERR" when the guest gave none.
func errorText(b []byte) []byte {
	b = oneLine(b)
	i := 0
	for i < len(b) && b[i] >= 'A' && b[i] <= 'Z' {
		i++
	}
	if i > 0 && (i == len(b) || b[i] == ' ') {
		return b
	}
	return append([]byte("ERR "), b...)
}
