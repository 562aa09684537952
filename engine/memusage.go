package engine

// KeyBytes is what the key costs in the engine's own accounting
// (UsedBytes): KeyCost (its record and cell, its TTL entry, its share of
// the ordered index and, for a large collection, every node and overflow
// cell of its trees) and a slot of the point index (MEMORY USAGE). ok is
// false when the key does not exist at nowMillis. It changes nothing: an
// expired key is not deleted here, and no access is recorded.
func (db *DB) KeyBytes(nowMillis int64, key []byte) (bytes int64, ok bool) {
	r := db.find(key)
	if r == 0 || db.expired(r, nowMillis) {
		return 0, false
	}
	return db.KeyCost(r) + indexBytesPerSlot, true
}

// ExpiredKeys counts the keys this DB deleted because their time to live
// ran out (lazily or by active expiry), since it was made (INFO
// expired_keys).
func (db *DB) ExpiredKeys() int64 { return db.expiredKeys }
