package udf

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
