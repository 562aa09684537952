//go:build wasip1

package sdk

import (
	"encoding/binary"
	"strconv"
	"unsafe"
)

//go:wasmimport keel key_count
func keyCount() int32

//go:wasmimport keel arg_count
func argCount() int32

//go:wasmimport keel key
func keyRead(i int32, buf unsafe.Pointer, capacity int32) int32

//go:wasmimport keel arg
func argRead(i int32, buf unsafe.Pointer, capacity int32) int32

//go:wasmimport keel get
func get(key unsafe.Pointer, klen int32, buf unsafe.Pointer, capacity int32) int32

//go:wasmimport keel exists
func exists(key unsafe.Pointer, klen int32) int32

//go:wasmimport keel set
func set(key unsafe.Pointer, klen int32, val unsafe.Pointer, vlen int32, ttlMillis int64)

//go:wasmimport keel del
func del(key unsafe.Pointer, klen int32) int32

//go:wasmimport keel incrby
func incrby(key unsafe.Pointer, klen int32, delta int64) int64

//go:wasmimport keel scan
func scan(prefix unsafe.Pointer, plen int32, after unsafe.Pointer, alen int32, limit int32, buf unsafe.Pointer, capacity int32) int32

//go:wasmimport keel now
func now() int64

//go:wasmimport keel random
func random() int64

//go:wasmimport keel log
func logMsg(level int32, msg unsafe.Pointer, n int32)

//go:wasmimport keel reply_nil
func replyNil()

//go:wasmimport keel reply_int
func replyInt(v int64)

//go:wasmimport keel reply_bulk
func replyBulk(b unsafe.Pointer, n int32)

//go:wasmimport keel reply_simple
func replySimple(b unsafe.Pointer, n int32)

//go:wasmimport keel reply_error
func replyError(b unsafe.Pointer, n int32)

//go:wasmimport keel reply_array
func replyArray(n int32)

//go:wasmimport keel abort
func abort(msg unsafe.Pointer, n int32)

// abiV1 declares the ABI version this SDK speaks; keel refuses modules
// without it.
//
//go:wasmexport keel_abi_v1
func abiV1() {}

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func sptr(s string) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.StringData(s))
}

// KeyCount is the number of keys the caller declared (FCALL's numkeys).
func KeyCount() int { return int(keyCount()) }

// ArgCount is the number of arguments after the keys.
func ArgCount() int { return int(argCount()) }

// Key returns declared key i.
func Key(i int) []byte {
	n := keyRead(int32(i), nil, 0)
	b := make([]byte, n)
	keyRead(int32(i), ptr(b), n)
	return b
}

// Arg returns argument i.
func Arg(i int) []byte {
	n := argRead(int32(i), nil, 0)
	b := make([]byte, n)
	argRead(int32(i), ptr(b), n)
	return b
}

// ArgInt parses argument i as a decimal int64.
func ArgInt(i int) (int64, bool) {
	v, err := strconv.ParseInt(string(Arg(i)), 10, 64)
	return v, err == nil
}

// Get reads a key: its value as the call sees it (the keyspace before the
// call plus the call's own writes). Only declared keys, or keys under a
// scanned prefix, may be read.
func Get(key []byte) ([]byte, bool) {
	buf := make([]byte, 64)
	n := get(ptr(key), int32(len(key)), ptr(buf), int32(len(buf)))
	if n < 0 {
		return nil, false
	}
	if int(n) > len(buf) {
		buf = make([]byte, n)
		get(ptr(key), int32(len(key)), ptr(buf), n)
	}
	return buf[:n], true
}

// GetInt reads an integer value; a missing key reads as 0. A value that is
// not an integer aborts the call.
func GetInt(key []byte) int64 {
	v, ok := Get(key)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		Abort("ERR value is not an integer or out of range")
	}
	return n
}

// Exists reports whether key exists.
func Exists(key []byte) bool { return exists(ptr(key), int32(len(key))) == 1 }

// Set writes key with no expiry (clearing any TTL it had).
func Set(key, val []byte) { set(ptr(key), int32(len(key)), ptr(val), int32(len(val)), 0) }

// SetTTL writes key to expire ttlMillis after the call's time.
func SetTTL(key, val []byte, ttlMillis int64) {
	if ttlMillis <= 0 {
		Abort("ERR invalid expire time")
	}
	set(ptr(key), int32(len(key)), ptr(val), int32(len(val)), ttlMillis)
}

// SetKeepTTL writes key and keeps the TTL it had.
func SetKeepTTL(key, val []byte) { set(ptr(key), int32(len(key)), ptr(val), int32(len(val)), -1) }

// Del deletes key and reports whether it existed.
func Del(key []byte) bool { return del(ptr(key), int32(len(key))) == 1 }

// IncrBy adds delta to an integer key (0 if missing) and returns the new
// value, keeping its TTL.
func IncrBy(key []byte, delta int64) int64 { return incrby(ptr(key), int32(len(key)), delta) }

// Scan returns up to limit keys that start with prefix and sort after
// `after` (nil: from the start). prefix must be one of the declared keys;
// the keys it returns may then be read and written. Pass the last key
// returned as `after` to continue.
func Scan(prefix, after []byte, limit int) [][]byte {
	buf := make([]byte, 4096)
	n := scan(ptr(prefix), int32(len(prefix)), ptr(after), int32(len(after)), int32(limit), ptr(buf), int32(len(buf)))
	if int(n) > len(buf) {
		buf = make([]byte, n)
		n = scan(ptr(prefix), int32(len(prefix)), ptr(after), int32(len(after)), int32(limit), ptr(buf), n)
	}
	buf = buf[:n]
	var keys [][]byte
	for len(buf) >= 4 {
		l := binary.LittleEndian.Uint32(buf)
		keys = append(keys, buf[4:4+l])
		buf = buf[4+l:]
	}
	return keys
}

// Now is the call's time in Unix milliseconds (the log entry's time, so a
// replay sees the same clock). time.Now inside a guest reads the same.
func Now() int64 { return now() }

// Random returns 64 bits from keel's seeded source.
func Random() uint64 { return uint64(random()) }

// Log levels.
const (
	Debug int32 = iota
	Info
	Warn
	Error
)

// Log writes msg to the server's log at level.
func Log(level int32, msg string) { logMsg(level, sptr(msg), int32(len(msg))) }

// ReplyNil replies nil (also the reply of a function that sets none).
func ReplyNil() { replyNil() }

// ReplyInt replies an integer.
func ReplyInt(v int64) { replyInt(v) }

// ReplyBulk replies a bulk string.
func ReplyBulk(b []byte) { replyBulk(ptr(b), int32(len(b))) }

// ReplyString replies a simple string ("OK").
func ReplyString(s string) { replySimple(sptr(s), int32(len(s))) }

// ReplyError replies an error; the call's writes still apply (as in
// Redis). Use Abort to discard them.
func ReplyError(msg string) { replyError(sptr(msg), int32(len(msg))) }

// ReplyArray announces an array of n elements; reply them next.
func ReplyArray(n int) { replyArray(int32(n)) }

// Abort ends the call with an error reply and discards all its writes. It
// does not return.
func Abort(msg string) {
	abort(sptr(msg), int32(len(msg)))
	panic("unreachable: keel.abort returned")
}
