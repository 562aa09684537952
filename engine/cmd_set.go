package engine

// setSave writes s back as r's value (r writable) and keeps the grown
// buffer for the next command.
func (db *DB) setSave(r ref, s *setBuf, slot int) {
	db.setValue(r, db.setValueOf(s))
	if s.enc != encHashtableSet {
		db.setBufs[slot] = s.pack[:0]
	}
}

func cmdSAdd(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeSet, w, false)
	if !ok {
		return
	}
	var s setBuf
	if r == 0 {
		s = setEmpty(argv[2], len(argv)-2, db.setBufs[0])
		r = db.newCollection(argv[1], TypeSet, db.setValueOf(&s))
	} else if v := db.valOf(r); v[0] == encHashtableSet {
		// A tree reports what it added; its nodes are copied on write by
		// their own versions, and the key changes only if something was.
		s = setBuf{enc: encHashtableSet, tree: treeRoot(v)}
		db.reclaim()
		added := int64(0)
		for _, m := range argv[2:] {
			if db.tput(&s.tree, tkSet, m, nil) {
				added++
			}
		}
		if added > 0 {
			r = db.change(r)
			db.setSave(r, &s, 0)
			db.notify("sadd", argv[1])
		}
		w.WriteInt(added)
		return
	} else {
		// Nothing may change when every member is there already.
		if !db.setAnyMissing(v, argv[2:]) {
			w.WriteInt(0)
			return
		}
		r = db.change(r)
		s = db.setLoad(r, db.setBufs[0])
		db.setMaybeConvert(&s, len(argv)-2)
	}
	added := int64(0)
	for _, m := range argv[2:] {
		if db.setAdd(&s, m) {
			added++
		}
	}
	db.setSave(r, &s, 0)
	w.WriteInt(added)
	db.notify("sadd", argv[1])
}

// setAnyMissing reports whether some of ms is not in set value v.
func (db *DB) setAnyMissing(v []byte, ms [][]byte) bool {
	for _, m := range ms {
		if !db.setHas(v, m) {
			return true
		}
	}
	return false
}

func cmdSRem(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeSet, w, false)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	v := db.valOf(r)
	if v[0] == encHashtableSet {
		// As SADD's: the tree first, the key if anything went.
		t := treeRoot(v)
		db.reclaim()
		removed := int64(0)
		for _, m := range argv[2:] {
			if db.tdelete(&t, tkSet, m) {
				removed++
				if t.count == 0 {
					break
				}
			}
		}
		if removed > 0 {
			r = db.change(r)
			putTreeRoot(db.valOf(r), t)
			db.notify("srem", argv[1])
			db.dropIfEmpty(r)
		}
		w.WriteInt(removed)
		return
	}
	any := false
	for _, m := range argv[2:] {
		if db.setHas(v, m) {
			any = true
			break
		}
	}
	if !any {
		w.WriteInt(0)
		return
	}
	r = db.change(r)
	s := db.setLoad(r, db.setBufs[0])
	removed := int64(0)
	for _, m := range argv[2:] {
		if db.setRemove(&s, m) {
			removed++
			if s.len() == 0 {
				break
			}
		}
	}
	db.setSave(r, &s, 0)
	w.WriteInt(removed)
	db.notify("srem", argv[1])
	db.dropIfEmpty(r)
}

func cmdSMembers(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeSet, w, true)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteSet(0)
		return
	}
	v := db.valOf(r)
	w.WriteSet(int(setLen(v)))
	db.setEach(v, func(m []byte) bool { w.WriteBulk(m); return true })
}

func cmdSIsMember(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeSet, w, true)
	if !ok {
		return
	}
	if r != 0 && db.setHas(db.valOf(r), argv[2]) {
		w.WriteInt(1)
		return
	}
	w.WriteInt(0)
}

func cmdSMIsMember(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeSet, w, true)
	if !ok {
		return
	}
	w.WriteArray(len(argv) - 2)
	for _, m := range argv[2:] {
		if r != 0 && db.setHas(db.valOf(r), m) {
			w.WriteInt(1)
		} else {
			w.WriteInt(0)
		}
	}
}

func cmdSCard(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeSet, w, true)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	w.WriteInt(db.collLen(r))
}

func cmdSPop(db *DB, now int64, argv [][]byte, w Writer) {
	if len(argv) > 3 {
		w.WriteError(errSyntax)
		return
	}
	if len(argv) == 3 {
		spopCount(db, now, argv, w)
		return
	}
	r, ok := db.lookupType(now, argv[1], TypeSet, w, false)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteNull()
		return
	}
	r = db.change(r)
	v := db.valOf(r)
	m := append(db.tbufElem[:0], db.setAt(v, db.randN(setLen(v)))...)
	db.tbufElem = m
	s := db.setLoad(r, db.setBufs[0])
	db.setRemove(&s, m)
	db.setSave(r, &s, 0)
	db.notify("spop", argv[1])
	w.WriteBulk(m)
	db.dropIfEmpty(r)
}

func spopCount(db *DB, now int64, argv [][]byte, w Writer) {
	count, ok := parseInt(argv[2])
	if !ok || count < 0 {
		w.WriteError("ERR value is out of range, must be positive")
		return
	}
	r, ok := db.lookupType(now, argv[1], TypeSet, w, false)
	if !ok {
		return
	}
	if r == 0 || count == 0 {
		w.WriteSet(0)
		return
	}
	r = db.change(r)
	v := db.valOf(r)
	size := setLen(v)
	db.notify("spop", argv[1])
	if uint64(count) >= size {
		w.WriteSet(int(size))
		db.setEach(v, func(m []byte) bool { w.WriteBulk(m); return true })
		db.del(r, "del")
		return
	}
	// Copy the chosen members out, then remove them.
	picked := db.copyMembers(v, db.randDistinct(size, uint64(count)))
	s := db.setLoad(r, db.setBufs[0])
	w.WriteSet(len(picked))
	for _, m := range picked {
		w.WriteBulk(m)
		db.setRemove(&s, m)
	}
	db.setSave(r, &s, 0)
}

// copyMembers copies the members at the given positions of set value v
// into one buffer and returns them.
func (db *DB) copyMembers(v []byte, pos []uint64) [][]byte {
	var buf []byte
	ends := make([]int, 0, len(pos))
	for _, i := range pos {
		buf = append(buf, db.setAt(v, i)...)
		ends = append(ends, len(buf))
	}
	out := make([][]byte, len(pos))
	start := 0
	for i, e := range ends {
		out[i] = buf[start:e:e]
		start = e
	}
	return out
}

func cmdSRandMember(db *DB, now int64, argv [][]byte, w Writer) {
	if len(argv) > 3 {
		w.WriteError(errSyntax)
		return
	}
	if len(argv) == 2 {
		r, ok := db.lookupType(now, argv[1], TypeSet, w, true)
		if !ok {
			return
		}
		if r == 0 {
			w.WriteNull()
			return
		}
		v := db.valOf(r)
		w.WriteBulk(db.setAt(v, db.randN(setLen(v))))
		return
	}
	l, ok := parseRandCount(argv[2], w)
	if !ok {
		return
	}
	r, ok := db.lookupType(now, argv[1], TypeSet, w, true)
	if !ok {
		return
	}
	if r == 0 || l == 0 {
		w.WriteArray(0)
		return
	}
	v := db.valOf(r)
	size := setLen(v)
	if l < 0 || l == 1 {
		count := uint64(l)
		if l < 0 {
			count = uint64(-l)
		}
		if count > randCountMax {
			w.WriteError(errRandCount)
			return
		}
		w.WriteArray(int(count))
		for i := uint64(0); i < count; i++ {
			w.WriteBulk(db.setAt(v, db.randN(size)))
		}
		return
	}
	if uint64(l) >= size {
		w.WriteArray(int(size))
		db.setEach(v, func(m []byte) bool { w.WriteBulk(m); return true })
		return
	}
	w.WriteArray(int(l))
	for _, i := range db.randDistinct(size, uint64(l)) {
		w.WriteBulk(db.setAt(v, i))
	}
}

func cmdSMove(db *DB, now int64, argv [][]byte, w Writer) {
	src := db.lookup(now, argv[1])
	dst := db.lookup(now, argv[2])
	if src == 0 {
		w.WriteInt(0)
		return
	}
	if db.typeOf(src) != TypeSet || (dst != 0 && db.typeOf(dst) != TypeSet) {
		w.WriteError(errWrongType)
		return
	}
	m := argv[3]
	if src == dst {
		if db.setHas(db.valOf(src), m) {
			w.WriteInt(1)
		} else {
			w.WriteInt(0)
		}
		return
	}
	if !db.setHas(db.valOf(src), m) {
		w.WriteInt(0)
		return
	}
	src = db.change(src)
	s := db.setLoad(src, db.setBufs[0])
	db.setRemove(&s, m)
	db.setSave(src, &s, 0)
	db.notify("srem", argv[1])
	db.dropIfEmpty(src)
	if dst == 0 {
		d := setEmpty(m, 1, db.setBufs[1])
		dst = db.newCollection(argv[2], TypeSet, db.setValueOf(&d))
	} else if db.setHas(db.valOf(dst), m) {
		w.WriteInt(1)
		return
	}
	dst = db.change(dst)
	d := db.setLoad(dst, db.setBufs[1])
	db.setAdd(&d, m)
	db.setSave(dst, &d, 1)
	db.notify("sadd", argv[2])
	w.WriteInt(1)
}

// Set algebra.
const (
	setOpUnion = iota
	setOpDiff
	setOpInter
)

// setOperands looks up the sets of keys (missing: nil); ok false after
// WRONGTYPE.
func (db *DB) setOperands(now int64, keys [][]byte, w Writer) ([][]byte, bool) {
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		r, ok := db.lookupType(now, k, TypeSet, w, true)
		if !ok {
			return nil, false
		}
		if r != 0 {
			vals[i] = db.valOf(r)
		}
	}
	return vals, true
}

// setCompute builds op over the operand values into a new setBuf (an
// intset to start with, as Redis's temporary set). For an intersection
// it stops after limit members when limit > 0, and with count only it
// builds nothing and returns the cardinality.
func (db *DB) setCompute(op int, vals [][]byte, countOnly bool, limit uint64, buf []byte) (setBuf, uint64) {
	res := setBuf{enc: encIntset, pack: append(buf[:0], emptyIntset...)}
	switch op {
	case setOpUnion:
		for _, v := range vals {
			if v != nil {
				db.setEach(v, func(m []byte) bool { db.setAdd(&res, m); return true })
			}
		}
	case setOpDiff:
		if vals[0] == nil {
			break
		}
		for _, v := range vals[1:] {
			if v != nil && &v[0] == &vals[0][0] {
				return res, 0 // the first set minus itself
			}
		}
		db.setEach(vals[0], func(m []byte) bool {
			for _, v := range vals[1:] {
				if v != nil && db.setHas(v, m) {
					return true
				}
			}
			db.setAdd(&res, m)
			return true
		})
	case setOpInter:
		card := db.setInter(vals, limit, func(m []byte) {
			if !countOnly {
				db.setAdd(&res, m)
			}
		})
		return res, card
	}
	return res, res.len()
}

// setInter calls fn for each member of the intersection of vals (none
// when one is missing), in the order of the smallest set, up to limit
// members when limit > 0, and returns how many.
func (db *DB) setInter(vals [][]byte, limit uint64, fn func(m []byte)) uint64 {
	smallest := -1
	for i, v := range vals {
		if v == nil {
			return 0
		}
		if smallest < 0 || setLen(v) < setLen(vals[smallest]) {
			smallest = i
		}
	}
	first := vals[smallest]
	card := uint64(0)
	db.setEach(first, func(m []byte) bool {
		for _, v := range vals {
			if &v[0] != &first[0] && !db.setHas(v, m) {
				return true
			}
		}
		card++
		fn(m)
		return limit == 0 || card < limit
	})
	return card
}

// setFree releases a computed set that became no key's value.
func (db *DB) setFree(s *setBuf) {
	if s.enc == encHashtableSet {
		db.tfree(&s.tree, tkSet)
	}
}

func setAlgebra(db *DB, now int64, keys [][]byte, w Writer, op int) {
	vals, ok := db.setOperands(now, keys, w)
	if !ok {
		return
	}
	if op == setOpInter {
		// Redis replies an intersection in the order of the smallest set,
		// as it finds the members.
		var found []byte
		var ends []int
		db.setInter(vals, 0, func(m []byte) {
			found = append(found, m...)
			ends = append(ends, len(found))
		})
		w.WriteSet(len(ends))
		start := 0
		for _, e := range ends {
			w.WriteBulk(found[start:e])
			start = e
		}
		return
	}
	res, n := db.setCompute(op, vals, false, 0, db.setBufs[0])
	w.WriteSet(int(n))
	if n > 0 {
		db.setEach(db.setValueOf(&res), func(m []byte) bool { w.WriteBulk(m); return true })
	}
	db.setFree(&res)
}

func setAlgebraStore(db *DB, now int64, dst []byte, keys [][]byte, w Writer, op int, event string) {
	vals, ok := db.setOperands(now, keys, w)
	if !ok {
		return
	}
	res, n := db.setCompute(op, vals, false, 0, db.setBufs[0])
	old := db.lookup(now, dst)
	if n == 0 {
		db.setFree(&res)
		w.WriteInt(0)
		if old != 0 {
			db.del(old, "del")
		}
		return
	}
	db.storeValue(dst, old, TypeSet, db.setValueOf(&res))
	w.WriteInt(int64(n))
	db.notify(event, dst)
}

// storeValue makes v the value of key (a *STORE command's destination),
// replacing old (the key's live ref or 0) whatever its type, without a
// TTL; "new" is raised only for a key that did not exist, as Redis's
// setKey does.
func (db *DB) storeValue(key []byte, old ref, typ ValueType, v []byte) ref {
	var r ref
	if old != 0 {
		db.remove(old)
		r = db.addSilent(key, typ, v, 0)
	} else {
		r = db.add(key, typ, v, 0)
	}
	db.bump(r)
	return r
}

func cmdSInter(db *DB, now int64, argv [][]byte, w Writer) {
	setAlgebra(db, now, argv[1:], w, setOpInter)
}
func cmdSUnion(db *DB, now int64, argv [][]byte, w Writer) {
	setAlgebra(db, now, argv[1:], w, setOpUnion)
}
func cmdSDiff(db *DB, now int64, argv [][]byte, w Writer) {
	setAlgebra(db, now, argv[1:], w, setOpDiff)
}
func cmdSInterStore(db *DB, now int64, argv [][]byte, w Writer) {
	setAlgebraStore(db, now, argv[1], argv[2:], w, setOpInter, "sinterstore")
}
func cmdSUnionStore(db *DB, now int64, argv [][]byte, w Writer) {
	setAlgebraStore(db, now, argv[1], argv[2:], w, setOpUnion, "sunionstore")
}
func cmdSDiffStore(db *DB, now int64, argv [][]byte, w Writer) {
	setAlgebraStore(db, now, argv[1], argv[2:], w, setOpDiff, "sdiffstore")
}

func cmdSInterCard(db *DB, now int64, argv [][]byte, w Writer) {
	numKeys, ok := parseNumKeys(argv[1], w)
	if !ok {
		return
	}
	if numKeys > int64(len(argv)-2) {
		w.WriteError("ERR Number of keys can't be greater than number of args")
		return
	}
	limit := int64(0)
	for j := 2 + int(numKeys); j < len(argv); j++ {
		if equalFold(argv[j], "limit") && j+1 < len(argv) {
			j++
			v, ok := parseInt(argv[j])
			if !ok || v < 0 {
				w.WriteError("ERR LIMIT can't be negative")
				return
			}
			limit = v
			continue
		}
		w.WriteError(errSyntax)
		return
	}
	vals, ok := db.setOperands(now, argv[2:2+numKeys], w)
	if !ok {
		return
	}
	_, n := db.setCompute(setOpInter, vals, true, uint64(limit), db.setBufs[0])
	w.WriteInt(int64(n))
}

func cmdSScan(db *DB, now int64, argv [][]byte, w Writer) { scanColl(db, now, argv, w, TypeSet) }

func init() {
	s := func(name string, arity int, flags Flags, first, last int, run func(*DB, int64, [][]byte, Writer), cats ...string) {
		register(&Command{Name: name, Arity: arity, Flags: flags, FirstKey: first, LastKey: last, Step: 1,
			Categories: append([]string{"@set"}, cats...), run: run})
	}
	s("sadd", -3, Write|DenyOOM|Fast, 1, 1, cmdSAdd, "@write", "@fast")
	s("srem", -3, Write|Fast, 1, 1, cmdSRem, "@write", "@fast")
	s("smembers", 2, ReadOnly, 1, 1, cmdSMembers, "@read", "@slow")
	s("sismember", 3, ReadOnly|Fast, 1, 1, cmdSIsMember, "@read", "@fast")
	s("smismember", -3, ReadOnly|Fast, 1, 1, cmdSMIsMember, "@read", "@fast")
	s("scard", 2, ReadOnly|Fast, 1, 1, cmdSCard, "@read", "@fast")
	s("spop", -2, Write|Fast, 1, 1, cmdSPop, "@write", "@fast")
	s("srandmember", -2, ReadOnly, 1, 1, cmdSRandMember, "@read", "@slow")
	s("smove", 4, Write|Fast, 1, 2, cmdSMove, "@write", "@fast")
	s("sinter", -2, ReadOnly, 1, -1, cmdSInter, "@read", "@slow")
	s("sunion", -2, ReadOnly, 1, -1, cmdSUnion, "@read", "@slow")
	s("sdiff", -2, ReadOnly, 1, -1, cmdSDiff, "@read", "@slow")
	s("sinterstore", -3, Write|DenyOOM, 1, -1, cmdSInterStore, "@write", "@slow")
	s("sunionstore", -3, Write|DenyOOM, 1, -1, cmdSUnionStore, "@write", "@slow")
	s("sdiffstore", -3, Write|DenyOOM, 1, -1, cmdSDiffStore, "@write", "@slow")
	s("sscan", -3, ReadOnly, 1, 1, cmdSScan, "@read", "@slow")
	register(&Command{Name: "sintercard", Arity: -3, Flags: ReadOnly,
		Categories: []string{"@set", "@read", "@slow"}, run: cmdSInterCard,
		keys: func(argv [][]byte) []int { return numKeysAt(argv, 0, 1) }})
}
