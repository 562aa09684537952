package engine

// A hash is a pack of field, value entries in insertion order (Redis's
// listpack) until it holds more than hashMaxListpackEntries fields or a
// field or value longer than hashMaxListpackValue bytes; then a tree of
// fields in byte order (encoding "hashtable"). It never goes back, as in
// Redis.

var emptyHashPack = []byte{encListpackHash, 0, 0}

// hashPackFind returns the offsets of field's entry in pack v: its start,
// its value's start and its end; start < 0 when absent.
func hashPackFind(v, field []byte) (start, val, end int) {
	o := packHdrBytes
	for i, n := 0, packCount(v); i < n; i++ {
		f, vo := packField(v, o)
		_, e := packField(v, vo)
		if string(f) == string(field) {
			return o, vo, e
		}
		o = e
	}
	return -1, 0, 0
}

// hashGet returns field's value in hash r.
func (db *DB) hashGet(r ref, field []byte) ([]byte, bool) {
	v := db.valOf(r)
	if v[0] == encListpackHash {
		_, vo, _ := hashPackFind(v, field)
		if vo == 0 {
			return nil, false
		}
		val, _ := packField(v, vo)
		return val, true
	}
	t := tview{d: &db.s.slabDirs, kind: tkHash}
	_, val, ok := t.get(treeRoot(v).root, field)
	return val, ok
}

// hashConvert turns pack hash r (writable) into a tree.
func (db *DB) hashConvert(r ref) {
	v := db.valOf(r)
	var t troot
	o := packHdrBytes
	for i, n := 0, packCount(v); i < n; i++ {
		f, vo := packField(v, o)
		val, e := packField(v, vo)
		db.tput(&t, tkHash, f, val)
		o = e
	}
	db.setValue(r, db.treeHeader(encHashtable, t))
}

// hashSet sets field to val in hash r (writable, via change) and reports
// whether the field is new. As Redis's hashTypeSet, a field or value too
// long for the pack converts it first, and a pack past
// hashMaxListpackEntries fields converts after the insert.
func (db *DB) hashSet(r ref, field, val []byte) bool {
	v := db.valOf(r)
	if v[0] == encListpackHash && (len(field) > hashMaxListpackValue || len(val) > hashMaxListpackValue) {
		db.hashConvert(r)
		v = db.valOf(r)
	}
	if v[0] == encListpackHash {
		start, vo, end := hashPackFind(v, field)
		if start >= 0 {
			p := append(db.pack[:0], v[:vo]...)
			p = appendPackField(p, val)
			p = append(p, v[end:]...)
			db.pack = p
			db.setValue(r, p)
			return false
		}
		e := appendPackField(appendPackField(db.pack[:0], field), val)
		db.pack = e
		n := len(v)
		nv := db.resizeValue(r, n+len(e))
		copy(nv[n:], e)
		count := packCount(nv) + 1
		setPackCount(nv, count)
		if count > hashMaxListpackEntries {
			db.hashConvert(r)
		}
		return true
	}
	t := treeRoot(v)
	added := db.tput(&t, tkHash, field, val)
	putTreeRoot(db.valOf(r), t)
	return added
}

// hashDel removes field from hash r (writable) and reports whether it was
// there.
func (db *DB) hashDel(r ref, field []byte) bool {
	v := db.valOf(r)
	if v[0] == encListpackHash {
		start, _, end := hashPackFind(v, field)
		if start < 0 {
			return false
		}
		p := append(db.pack[:0], v[:start]...)
		p = append(p, v[end:]...)
		setPackCount(p, packCount(p)-1)
		db.pack = p
		db.setValue(r, p)
		return true
	}
	t := treeRoot(v)
	ok := db.tdelete(&t, tkHash, field)
	putTreeRoot(db.valOf(r), t)
	return ok
}

// hashEach calls fn for each field and value of hash r in its order
// until fn returns false. fn must not change the DB.
func (db *DB) hashEach(r ref, fn func(f, v []byte) bool) {
	v := db.valOf(r)
	if v[0] == encListpackHash {
		o := packHdrBytes
		for i, n := 0, packCount(v); i < n; i++ {
			f, vo := packField(v, o)
			val, e := packField(v, vo)
			if !fn(f, val) {
				return
			}
			o = e
		}
		return
	}
	t := treeRoot(v)
	it := db.iter(tkHash)
	for it.seekIndex(t.root, t.count, 0); it.Valid(); it.Next() {
		if !fn(it.Entry()) {
			break
		}
	}
	db.doneIter(&it)
}

// hashAt returns the i-th field and value of hash r.
func (db *DB) hashAt(r ref, i uint64) (f, val []byte) {
	v := db.valOf(r)
	if v[0] == encListpackHash {
		o := packHdrBytes
		for j := uint64(0); ; j++ {
			f, vo := packField(v, o)
			val, e := packField(v, vo)
			if j == i {
				return f, val
			}
			o = e
		}
	}
	t := treeRoot(v)
	it := db.iter(tkHash)
	it.seekIndex(t.root, t.count, i)
	f, val = it.Entry()
	db.doneIter(&it)
	return f, val
}

// iter returns an iterator over trees of kind k using the DB's scratch
// (fresh buffers for an iterator opened while another is live); give it
// back with doneIter.
func (db *DB) iter(k treeKind) titer {
	db.itersLive++
	if db.itersLive > 1 {
		return titer{t: tview{d: &db.s.slabDirs, kind: k}}
	}
	return titer{t: tview{d: &db.s.slabDirs, kind: k, offs: db.iterInner[:0]}, offs: db.iterOffs[:0]}
}

func (db *DB) doneIter(it *titer) {
	db.itersLive--
	if db.itersLive == 0 {
		db.iterOffs, db.iterInner = it.offs[:0], it.t.offs[:0]
	}
}
