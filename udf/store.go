package udf

import "github.com/keel-db/keel/engine"

// Store is what a call reads through: the keyspace as it was before the
// call, plus the call's time and randomness. The replica implements it over
// the engine; tests use a map. A call never writes through Store: its
// writes are buffered in the call and come back as Result.Effects.
//
// Implementations must be deterministic given the keyspace (sort what they
// return) and must apply expiry as of Now, as every engine read does.
type Store interface {
	// Get returns a string key's value. A key that holds another type
	// returns the engine's WRONGTYPE error text as err; the call fails with
	// it. val may alias the store's memory: it is valid until the next call
	// into the Store, and the call copies what it keeps.
	Get(key []byte) (val []byte, ok bool, err error)
	// Exists reports whether key holds a value of any type.
	Exists(key []byte) bool
	// Scan returns up to limit keys that start with prefix and sort after
	// `after` (all of them when after is nil), in ascending byte order.
	Scan(prefix, after []byte, limit int) [][]byte
	// Now is the call's time in Unix milliseconds: the time recorded in the
	// log entry, so a replayed simulation sees the same clock.
	Now() int64
	// Rand is the call's randomness: keel's injected, seeded source.
	Rand() uint64
}

// KeyStore is the part of a Store that keel.call (engine commands on any
// type: hashes, lists, sets, sorted sets) needs. A Store without it serves
// the string calls only; keel.call then fails the call.
//
// The call runs read commands on keys it has not touched straight against
// the store (ExecRead: no copy, however large the value), and copies a key
// into a per-call scratch keyspace (CopyKey) before its first write, or
// before a read when the store says the key has writes not applied yet
// (Pending). Commands on copied keys run in the scratch keyspace; the
// write commands that succeeded there are the call's effects.
type KeyStore interface {
	Store
	// ExecRead runs a read-only engine command against the keyspace
	// before the call, at the call's time. The command's keys are never
	// Pending.
	ExecRead(argv [][]byte, w engine.Writer)
	// Pending reports whether key has writes the engine has not applied
	// yet (the replica's batch of calls): its value must be read through
	// CopyKey.
	Pending(key []byte) bool
	// KeyBytes is what copying key would cost (engine.DB.KeyBytes of the
	// value the call would see; 0 when the key does not exist).
	KeyBytes(key []byte) int64
	// CopyKey copies key's value, as the call sees it (its TTL included),
	// into dst, which does not hold key. A key without a value copies
	// nothing.
	CopyKey(key []byte, dst *engine.DB) error
}
