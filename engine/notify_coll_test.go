package engine

import (
	"fmt"
	"testing"
)

// TestCollectionEvents requires Redis's keyspace events, in Redis's order,
// for every collection command that writes (and the keymiss of reads).
func TestCollectionEvents(t *testing.T) {
	runCompareEvents(t, map[string]string{
		"hash": `
			HSET h a 1 b 2
			HSET h a 3
			HMSET h c 4
			HSETNX h c 5
			HSETNX h d 6
			HINCRBY h n 1
			HINCRBYFLOAT h f 1.5
			HDEL h nope
			HDEL h a b
			HGET h nope
			HGET nokey a
			HGETALL nokey
			HDEL h c d n f
			EXISTS h
		`,
		"list": `
			LPUSH l a b
			RPUSH l c
			LPUSHX nokey a
			RPUSHX l d
			LPOP l
			RPOP l 2
			LINSERT l BEFORE a x
			LINSERT l BEFORE nope x
			LSET l 0 y
			LREM l 0 y
			LTRIM l 0 0
			RPUSH l p q r
			LMOVE l l2 LEFT RIGHT
			RPOPLPUSH l l2
			LMPOP 2 nokey l RIGHT COUNT 5
			LRANGE nokey 0 -1
			LPOS nokey a
			LTRIM l2 5 10
			EXISTS l2
		`,
		"set": `
			SADD s a b c
			SADD s a
			SREM s nope
			SREM s a
			SPOP s 0
			SMOVE s t b
			SMOVE s t nope
			SADD u 1 2 3
			SINTERSTORE d u t
			SUNIONSTORE d u t
			SDIFFSTORE d u t
			SINTERSTORE d u nokey
			SUNIONSTORE d u
			SISMEMBER nokey a
			SMEMBERS nokey
			SPOP c
			SPOP s 10
			SUNION nokey u
		`,
		"zset": `
			ZADD z 1 a 2 b 3 c
			ZADD z NX 5 a
			ZADD z XX 5 a
			ZADD z INCR 1 a
			ZINCRBY z 1 b
			ZREM z nope
			ZREM z a
			ZADD z 4 d 5 e 6 f
			ZREMRANGEBYSCORE z 4 4
			ZREMRANGEBYRANK z 0 0
			ZADD z 0 aa 0 bb
			ZREMRANGEBYLEX z [aa [aa
			ZPOPMIN z
			ZPOPMAX z 2
			ZMPOP 1 z MIN
			ZADD y 1 x 2 w
			ZUNIONSTORE d 1 y
			ZINTERSTORE d 2 y nokey
			ZRANGESTORE d y 0 0
			ZDIFFSTORE d 1 y
			ZSCORE nokey a
			ZRANGE nokey 0 -1
			ZPOPMIN y 10
		`,
		"bitmap-keys": `
			SETBIT b 3 1
			SETBIT b 3 0
			BITFIELD bf SET u8 0 1
			BITFIELD bf GET u8 0
			BITOP OR d b bf
			BITOP AND d nokey
			GETBIT nokey 1
			HSET h f v
			RENAME h h2
			COPY h2 h3
			EXPIRE h3 100
			DEL h2 h3
			SADD s1 a
			UNLINK s1
			LCS nokey nokey2
		`,
	})
}

// TestReadyHook: Options.Ready reports keys that received elements: list
// pushes and moves, sorted-set adds and stores, renames and copies of
// lists and sorted sets.
func TestReadyHook(t *testing.T) {
	var got []string
	db := New(Options{Rand: &SplitMix64{}, Ready: func(key []byte) { got = append(got, string(key)) }})
	for _, cmd := range [][]string{
		{"LPUSH", "l", "a"}, {"RPUSH", "l", "b"}, {"LPUSHX", "nokey", "x"}, {"LINSERT", "l", "BEFORE", "a", "c"},
		{"LMOVE", "l", "l2", "LEFT", "RIGHT"}, {"ZADD", "z", "1", "a"}, {"ZADD", "z", "XX", "2", "a"},
		{"ZUNIONSTORE", "z2", "1", "z"}, {"RENAME", "l2", "l3"}, {"COPY", "z", "z3"},
		{"SADD", "s", "a"}, {"HSET", "h", "f", "v"}, {"SET", "k", "v"}, {"RENAME", "s", "s2"},
	} {
		exec(db, 1, cmd...)
	}
	want := "[l l l l2 z z2 l3 z3]"
	if fmt.Sprint(got) != want {
		t.Fatalf("ready keys %v, want %s", got, want)
	}
}
