//go:build wasip1

package sdk

import (
	"strconv"
	"unsafe"
)

//go:wasmimport keel call
func callRaw(argv unsafe.Pointer, alen int32, buf unsafe.Pointer, capacity int32) int32

//go:wasmimport keel call_reply
func callReply(buf unsafe.Pointer, capacity int32) int32

// Call runs an engine command on declared keys (HSET, LPUSH, ZADD, ...:
// docs/functions.md lists them) and returns its reply. An error reply
// (WRONGTYPE, a syntax error) is returned as a *CallError and changes
// nothing; the call's other writes stand unless the function aborts. A
// key that was not declared, a command keel.call does not run, or a write
// in FCALL_RO ends the call.
func Call(args ...[]byte) (Value, error) {
	enc := EncodeArgv(args...)
	buf := make([]byte, 256)
	n := callRaw(ptr(enc), int32(len(enc)), ptr(buf), int32(len(buf)))
	if int(n) > len(buf) {
		buf = make([]byte, n)
		callReply(ptr(buf), n)
	}
	v, err := DecodeReply(buf[:n])
	if err != nil {
		Abort("ERR " + err.Error())
	}
	if v.Kind == Err {
		return v, &CallError{Msg: string(v.Str)}
	}
	return v, nil
}

// CallString is Call with string arguments.
func CallString(args ...string) (Value, error) {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return Call(b...)
}

func i64(n int64) []byte { return strconv.AppendInt(nil, n, 10) }

func intReply(v Value, err error) (int64, error) { return v.Int, err }

func bulkReply(v Value, err error) ([]byte, bool, error) {
	return v.Str, v.Kind == Bulk, err
}

// Hashes.

func HSet(key, field, val []byte) (int64, error) {
	return intReply(Call([]byte("HSET"), key, field, val))
}
func HGet(key, field []byte) ([]byte, bool, error) {
	return bulkReply(Call([]byte("HGET"), key, field))
}
func HDel(key []byte, fields ...[]byte) (int64, error) {
	return intReply(Call(append([][]byte{[]byte("HDEL"), key}, fields...)...))
}
func HIncrBy(key, field []byte, delta int64) (int64, error) {
	return intReply(Call([]byte("HINCRBY"), key, field, i64(delta)))
}
func HLen(key []byte) (int64, error) { return intReply(Call([]byte("HLEN"), key)) }

// HGetAll returns field, value, field, value, ...
func HGetAll(key []byte) ([][]byte, error) {
	v, err := Call([]byte("HGETALL"), key)
	return v.Strings(), err
}

// Lists.

func LPush(key []byte, vals ...[]byte) (int64, error) {
	return intReply(Call(append([][]byte{[]byte("LPUSH"), key}, vals...)...))
}
func RPush(key []byte, vals ...[]byte) (int64, error) {
	return intReply(Call(append([][]byte{[]byte("RPUSH"), key}, vals...)...))
}
func LPop(key []byte) ([]byte, bool, error) { return bulkReply(Call([]byte("LPOP"), key)) }
func RPop(key []byte) ([]byte, bool, error) { return bulkReply(Call([]byte("RPOP"), key)) }
func LLen(key []byte) (int64, error)        { return intReply(Call([]byte("LLEN"), key)) }
func LRange(key []byte, start, stop int64) ([][]byte, error) {
	v, err := Call([]byte("LRANGE"), key, i64(start), i64(stop))
	return v.Strings(), err
}

// Sets.

func SAdd(key []byte, members ...[]byte) (int64, error) {
	return intReply(Call(append([][]byte{[]byte("SADD"), key}, members...)...))
}
func SRem(key []byte, members ...[]byte) (int64, error) {
	return intReply(Call(append([][]byte{[]byte("SREM"), key}, members...)...))
}
func SIsMember(key, member []byte) (bool, error) {
	n, err := intReply(Call([]byte("SISMEMBER"), key, member))
	return n == 1, err
}
func SMembers(key []byte) ([][]byte, error) {
	v, err := Call([]byte("SMEMBERS"), key)
	return v.Strings(), err
}
func SCard(key []byte) (int64, error) { return intReply(Call([]byte("SCARD"), key)) }

// Sorted sets. Scores travel as text, as Redis gives them.

func ZAdd(key []byte, score float64, member []byte) (int64, error) {
	return intReply(Call([]byte("ZADD"), key, strconv.AppendFloat(nil, score, 'g', -1, 64), member))
}
func ZIncrBy(key []byte, incr float64, member []byte) (float64, error) {
	v, err := Call([]byte("ZINCRBY"), key, strconv.AppendFloat(nil, incr, 'g', -1, 64), member)
	if err != nil {
		return 0, err
	}
	return v.Float()
}
func ZScore(key, member []byte) (float64, bool, error) {
	v, err := Call([]byte("ZSCORE"), key, member)
	if err != nil || v.Kind != Bulk {
		return 0, false, err
	}
	f, err := v.Float()
	return f, err == nil, err
}

// ZRank is the member's rank from the lowest score; false when absent.
func ZRank(key, member []byte) (int64, bool, error) {
	v, err := Call([]byte("ZRANK"), key, member)
	return v.Int, v.Kind == Int, err
}

// ZRange returns the members from start to stop by rank.
func ZRange(key []byte, start, stop int64) ([][]byte, error) {
	v, err := Call([]byte("ZRANGE"), key, i64(start), i64(stop))
	return v.Strings(), err
}
func ZRem(key []byte, members ...[]byte) (int64, error) {
	return intReply(Call(append([][]byte{[]byte("ZREM"), key}, members...)...))
}
func ZCard(key []byte) (int64, error) { return intReply(Call([]byte("ZCARD"), key)) }

// Keys of any type.

// Type is "none", "string", "list", "set", "zset" or "hash".
func Type(key []byte) (string, error) {
	v, err := Call([]byte("TYPE"), key)
	return string(v.Str), err
}

// Expire sets key to expire seconds after the call's time.
func Expire(key []byte, seconds int64) (bool, error) {
	n, err := intReply(Call([]byte("EXPIRE"), key, i64(seconds)))
	return n == 1, err
}
