package engine

import "testing"

// TestKeyspaceCommandsOnCollections: the type-blind commands on every
// type, small and large, against Redis.
func TestKeyspaceCommandsOnCollections(t *testing.T) {
	runCompare(t, map[string]string{
		"generic": `
			RPUSH l a b c
			SADD s a b
			SADD i 1 2
			HSET h f v
			ZADD z 1 m
			SET str v
			TYPE l
			TYPE s
			TYPE i
			TYPE h
			TYPE z
			TYPE str
			TYPE nokey
			sort: SCAN 0 TYPE list
			sort: SCAN 0 TYPE set
			sort: SCAN 0 TYPE hash
			sort: SCAN 0 TYPE zset
			sort: SCAN 0 TYPE string COUNT 100
			sort: KEYS *
			EXISTS l s h z str nokey
			EXPIRE h 100
			TTL h
			PERSIST h
			TTL h
			PEXPIRE z 5000
			skip: PTTL z
			RENAME l l2
			LRANGE l2 0 -1
			EXISTS l
			RENAMENX s i
			RENAMENX s s2
			sort: SMEMBERS s2
			COPY h h2
			HGETALL h2
			COPY z h2
			COPY z h2 REPLACE
			TYPE h2
			ZRANGE h2 0 -1 WITHSCORES
			skip: PTTL h2
			COPY i i2
			OBJECT ENCODING i2
			SMEMBERS i2
			DEL l2 s2 h z
			UNLINK i i2 h2
			DBSIZE
			SET l2 x
			RPUSH l2 y
			RENAME str l2
			TYPE l2
		`,
		"large": `
			RPUSH bl` + manyArgs(2000, "element:%d") + `
			SADD bs` + manyArgs(600, "m%d") + `
			HSET bh` + manyArgs(600, "f%d v%d") + `
			ZADD bz` + manyArgs(300, "%d m%d") + `
			OBJECT ENCODING bl
			OBJECT ENCODING bs
			OBJECT ENCODING bh
			OBJECT ENCODING bz
			COPY bl bl2
			COPY bs bs2
			COPY bh bh2
			COPY bz bz2
			LPUSH bl changed
			SREM bs m0
			HDEL bh f0
			ZREM bz m0
			LLEN bl2
			SCARD bs2
			HLEN bh2
			ZCARD bz2
			LINDEX bl2 0
			SISMEMBER bs2 m0
			HEXISTS bh2 f0
			ZSCORE bz2 m0
			RENAME bl2 bl3
			LRANGE bl3 1990 -1
			RENAME bz2 bs
			TYPE bs
			ZCARD bs
			EXPIRE bh2 100
			TTL bh2
			DEL bl bl3 bh bh2 bz bs bs2
			DBSIZE
		`,
	})
}
