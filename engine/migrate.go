package engine

// Helpers for moving keys between replica groups (cluster/slotstate.go):
// the source walks the keys of the slots it hands over in key order and
// reads each one's value and deadline; the target stores them with SET
// PXAT and the source deletes them with DEL, through Exec like any
// command, so copy-on-write views, WATCH versions and keyspace events stay
// right without anything here.

// Live reports whether key holds a value at now (the DB's clock if that
// is later, as Exec would use). It changes nothing: an expired key is
// reported absent but not collected, so the check can run before deciding
// whether a command runs at all.
func (db *DB) Live(now int64, key []byte) bool {
	r := db.find(key)
	return r != 0 && !db.expired(r, max(now, db.clock))
}

// AscendLive calls fn, in key order, for each live key at now (the DB's
// clock if later) that sorts after after (from the first key when after is
// nil) and for which match reports true, until fn returns false. Keys
// found expired on the way that match are deleted afterwards, raising
// "expired", as a read that met them would. The Entry's slices are valid
// only during the call, and fn must not change the DB.
func (db *DB) AscendLive(now int64, after []byte, match func(key []byte) bool, fn func(e Entry) bool) {
	db.observe(now)
	now = db.clock
	db.seek(bytesAsString(after), after != nil, nil, func(r ref) bool {
		rc := db.rec(r)
		key := db.s.keyOf(rc)
		if !match(key) {
			return true
		}
		if db.expired(r, now) {
			db.expiredScratch = append(db.expiredScratch, r)
			return true
		}
		return fn(Entry{Type: rc.typ, Key: key, Value: db.s.valOf(rc), ExpireAt: db.s.expireAtOf(rc), dirs: &db.s.slabDirs})
	})
	db.collectExpired()
}

// LiveEntry returns key's entry if it holds a value at now (the DB's
// clock if later). Like Live it changes nothing; the Entry's slices are
// valid until the DB next changes.
func (db *DB) LiveEntry(now int64, key []byte) (Entry, bool) {
	r := db.find(key)
	if r == 0 || db.expired(r, max(now, db.clock)) {
		return Entry{}, false
	}
	rc := db.rec(r)
	return Entry{Type: rc.typ, Key: db.s.keyOf(rc), Value: db.s.valOf(rc), ExpireAt: db.s.expireAtOf(rc), dirs: &db.s.slabDirs}, true
}
