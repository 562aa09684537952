package engine

const (
	errNoSuchKeyList = "ERR no such key"
	errOutOfRange    = "ERR index out of range"
)

// listForPush finds list key for a push, creating it (raising "new")
// unless xx; ok false after WRONGTYPE or when xx found no key.
func (db *DB) listForPush(now int64, key []byte, xx bool, w Writer) (ref, bool) {
	r, ok := db.lookupType(now, key, TypeList, w, false)
	if !ok {
		return 0, false
	}
	if r == 0 {
		if xx {
			w.WriteInt(0)
			return 0, false
		}
		return db.newCollection(key, TypeList, emptyListPack), true
	}
	return db.change(r), true
}

func pushGeneric(db *DB, now int64, argv [][]byte, w Writer, head, xx bool) {
	r, ok := db.listForPush(now, argv[1], xx, w)
	if !ok {
		return
	}
	db.listPush(r, head, argv[2:])
	w.WriteInt(db.collLen(r))
	if head {
		db.notify("lpush", argv[1])
	} else {
		db.notify("rpush", argv[1])
	}
	db.ready(argv[1])
}

func cmdLPush(db *DB, now int64, argv [][]byte, w Writer) { pushGeneric(db, now, argv, w, true, false) }
func cmdRPush(db *DB, now int64, argv [][]byte, w Writer) {
	pushGeneric(db, now, argv, w, false, false)
}
func cmdLPushX(db *DB, now int64, argv [][]byte, w Writer) { pushGeneric(db, now, argv, w, true, true) }
func cmdRPushX(db *DB, now int64, argv [][]byte, w Writer) {
	pushGeneric(db, now, argv, w, false, true)
}

// listRemoved is Redis's listElementsRemoved: the pop event, then either
// the key's deletion ("del") or the shrinking conversion.
func (db *DB) listRemoved(r ref, key []byte, head bool) {
	if head {
		db.notify("lpop", key)
	} else {
		db.notify("rpop", key)
	}
	if !db.dropIfEmpty(r) {
		db.listTryShrink(r)
	}
}

// writeListRange replies elements [start, end] (valid indexes) of list
// r, tail first when reverse.
func (db *DB) writeListRange(r ref, start, end int64, reverse bool, w Writer) {
	w.WriteArray(int(end - start + 1))
	from := start
	if reverse {
		from = end
	}
	li := db.listIterAt(r, from)
	for n := end - start + 1; n > 0; n-- {
		w.WriteBulk(li.Elem())
		if reverse {
			li.Prev()
		} else {
			li.Next()
		}
	}
	db.listIterDone(&li)
}

func popGeneric(db *DB, now int64, argv [][]byte, w Writer, head bool) {
	name := "lpop"
	if !head {
		name = "rpop"
	}
	if len(argv) > 3 {
		w.WriteError(errArity(name))
		return
	}
	hasCount := len(argv) == 3
	var count int64
	if hasCount {
		var ok bool
		if count, ok = parseInt(argv[2]); !ok || count < 0 {
			w.WriteError("ERR value is out of range, must be positive")
			return
		}
	}
	r, ok := db.lookupType(now, argv[1], TypeList, w, false)
	if !ok {
		return
	}
	if r == 0 {
		if hasCount {
			w.WriteNullArray()
		} else {
			w.WriteNull()
		}
		return
	}
	if hasCount && count == 0 {
		w.WriteArray(0)
		return
	}
	r = db.change(r)
	n := db.collLen(r)
	if !hasCount {
		idx := int64(0)
		if !head {
			idx = n - 1
		}
		db.listDeleteVisit(r, uint64(idx), 1, func(e []byte) { w.WriteBulk(e) })
	} else {
		k := min(count, n)
		start, end := int64(0), k-1
		if !head {
			start, end = n-k, n-1
		}
		db.writeListRange(r, start, end, !head, w)
		db.listDelete(r, uint64(start), uint64(k))
	}
	db.listRemoved(r, argv[1], head)
}

func cmdLPop(db *DB, now int64, argv [][]byte, w Writer) { popGeneric(db, now, argv, w, true) }
func cmdRPop(db *DB, now int64, argv [][]byte, w Writer) { popGeneric(db, now, argv, w, false) }

// listRange normalises Redis's start/end indexes of a list of n
// elements; empty reports an empty range.
func listRange(start, end, n int64) (int64, int64, bool) {
	if start < 0 {
		start = n + start
	}
	if end < 0 {
		end = n + end
	}
	if start < 0 {
		start = 0
	}
	if start > end || start >= n {
		return 0, 0, true
	}
	if end >= n {
		end = n - 1
	}
	return start, end, false
}

func cmdLRange(db *DB, now int64, argv [][]byte, w Writer) {
	start, ok1 := parseInt(argv[2])
	end, ok2 := parseInt(argv[3])
	if !ok1 || !ok2 {
		w.WriteError(errNotInt)
		return
	}
	r, ok := db.lookupType(now, argv[1], TypeList, w, true)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteArray(0)
		return
	}
	start, end, empty := listRange(start, end, db.collLen(r))
	if empty {
		w.WriteArray(0)
		return
	}
	db.writeListRange(r, start, end, false, w)
}

func cmdLIndex(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeList, w, true)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteNull()
		return
	}
	idx, ok := parseInt(argv[2])
	if !ok {
		w.WriteError(errNotInt)
		return
	}
	n := db.collLen(r)
	if idx < 0 {
		idx += n
	}
	if idx < 0 || idx >= n {
		w.WriteNull()
		return
	}
	w.WriteBulk(db.listAt(r, uint64(idx)))
}

func cmdLLen(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeList, w, true)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	w.WriteInt(db.collLen(r))
}

func cmdLSet(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeList, w, false)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteError(errNoSuchKeyList)
		return
	}
	idx, ok := parseInt(argv[2])
	if !ok {
		w.WriteError(errNotInt)
		return
	}
	r = db.change(r)
	db.listTryGrow(r, len(argv[3]), 1)
	n := db.collLen(r)
	if idx < 0 {
		idx += n
	}
	if idx < 0 || idx >= n {
		w.WriteError(errOutOfRange)
		return
	}
	db.listDelete(r, uint64(idx), 1)
	db.listInsert(r, uint64(idx), argv[3])
	w.WriteSimple("OK")
	db.notify("lset", argv[1])
	db.listTryShrink(r)
}

func cmdLInsert(db *DB, now int64, argv [][]byte, w Writer) {
	var after bool
	switch {
	case equalFold(argv[2], "after"):
		after = true
	case equalFold(argv[2], "before"):
	default:
		w.WriteError(errSyntax)
		return
	}
	r, ok := db.lookupType(now, argv[1], TypeList, w, false)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	// Redis converts before it looks for the pivot, whether or not it then
	// inserts.
	if db.encOf(r) == encListpackList && (db.listLPBytes(r)+uint64(len(argv[4])) > listMaxListpackBytes ||
		db.collLen(r)+1 > listPackCountMax) {
		r = db.change(r)
		db.listToTree(r)
	}
	pos := int64(-1)
	li := db.listIterAt(r, 0)
	for ; li.ok; li.Next() {
		if string(li.Elem()) == string(argv[3]) {
			pos = li.Index()
			break
		}
	}
	db.listIterDone(&li)
	if pos < 0 {
		w.WriteInt(-1)
		return
	}
	if after {
		pos++
	}
	r = db.change(r)
	db.listInsert(r, uint64(pos), argv[4])
	db.notify("linsert", argv[1])
	w.WriteInt(db.collLen(r))
	db.ready(argv[1])
}

func cmdLRem(db *DB, now int64, argv [][]byte, w Writer) {
	toRemove, ok := parseInt(argv[2])
	if !ok {
		w.WriteError(errNotInt)
		return
	}
	r, ok := db.lookupType(now, argv[1], TypeList, w, false)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	// Find the indexes to remove, then remove them from the last, so
	// earlier indexes stay valid.
	fromTail := toRemove < 0
	limit := toRemove
	if fromTail {
		limit = -toRemove
		if limit < 0 { // -MinInt64: no limit, as Redis's overflow gives
			limit = 0
		}
	}
	n := db.collLen(r)
	var hits []int64
	start := int64(0)
	if fromTail {
		start = n - 1
	}
	li := db.listIterAt(r, start)
	for ; li.ok; func() {
		if fromTail {
			li.Prev()
		} else {
			li.Next()
		}
	}() {
		if string(li.Elem()) == string(argv[3]) {
			hits = append(hits, li.Index())
			if limit != 0 && int64(len(hits)) == limit {
				break
			}
		}
	}
	db.listIterDone(&li)
	if len(hits) > 0 {
		r = db.change(r)
		if !fromTail {
			for i := len(hits) - 1; i >= 0; i-- {
				db.listDelete(r, uint64(hits[i]), 1)
			}
		} else {
			for _, i := range hits {
				db.listDelete(r, uint64(i), 1)
			}
		}
		db.notify("lrem", argv[1])
		if !db.dropIfEmpty(r) {
			db.listTryShrink(r)
		}
	}
	w.WriteInt(int64(len(hits)))
}

func cmdLTrim(db *DB, now int64, argv [][]byte, w Writer) {
	start, ok1 := parseInt(argv[2])
	end, ok2 := parseInt(argv[3])
	if !ok1 || !ok2 {
		w.WriteError(errNotInt)
		return
	}
	r, ok := db.lookupType(now, argv[1], TypeList, w, false)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteSimple("OK")
		return
	}
	n := db.collLen(r)
	var ltrim, rtrim int64
	if s, e, empty := listRange(start, end, n); empty {
		ltrim, rtrim = n, 0
	} else {
		ltrim, rtrim = s, n-e-1
	}
	r = db.change(r)
	db.listDelete(r, uint64(n-rtrim), uint64(rtrim))
	db.listDelete(r, 0, uint64(ltrim))
	db.notify("ltrim", argv[1])
	if !db.dropIfEmpty(r) {
		db.listTryShrink(r)
	}
	w.WriteSimple("OK")
}

func cmdLPos(db *DB, now int64, argv [][]byte, w Writer) {
	rank, count, maxlen := int64(1), int64(-1), int64(0)
	for j := 3; j < len(argv); j++ {
		more := j+1 < len(argv)
		switch {
		case equalFold(argv[j], "rank") && more:
			j++
			v, ok := parseInt(argv[j])
			if !ok {
				w.WriteError(errNotInt)
				return
			}
			if v == 0 {
				w.WriteError("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
				return
			}
			rank = v
		case equalFold(argv[j], "count") && more:
			j++
			v, ok := parseInt(argv[j])
			if !ok || v < 0 {
				w.WriteError("ERR COUNT can't be negative")
				return
			}
			count = v
		case equalFold(argv[j], "maxlen") && more:
			j++
			v, ok := parseInt(argv[j])
			if !ok || v < 0 {
				w.WriteError("ERR MAXLEN can't be negative")
				return
			}
			maxlen = v
		default:
			w.WriteError(errSyntax)
			return
		}
	}
	fromTail := rank < 0
	if fromTail {
		rank = -rank // wraps for MinInt64 (then every match counts), as in Redis 7.0
	}
	r, ok := db.lookupType(now, argv[1], TypeList, w, true)
	if !ok {
		return
	}
	if r == 0 {
		if count != -1 {
			w.WriteArray(0)
		} else {
			w.WriteNull()
		}
		return
	}
	n := db.collLen(r)
	start := int64(0)
	if fromTail {
		start = n - 1
	}
	var found []int64
	matches := int64(0)
	li := db.listIterAt(r, start)
	for index := int64(0); li.ok && (maxlen == 0 || index < maxlen); index++ {
		if string(li.Elem()) == string(argv[2]) {
			matches++
			if matches >= rank {
				found = append(found, li.Index())
				if count == -1 || (count != 0 && matches-rank+1 >= count) {
					break
				}
			}
		}
		if fromTail {
			li.Prev()
		} else {
			li.Next()
		}
	}
	db.listIterDone(&li)
	if count != -1 {
		w.WriteArray(len(found))
		for _, i := range found {
			w.WriteInt(i)
		}
		return
	}
	if len(found) == 0 {
		w.WriteNull()
		return
	}
	w.WriteInt(found[0])
}

// parseWhere reads LEFT or RIGHT.
func parseWhere(b []byte, w Writer) (head bool, ok bool) {
	switch {
	case equalFold(b, "left"):
		return true, true
	case equalFold(b, "right"):
		return false, true
	}
	w.WriteError(errSyntax)
	return false, false
}

// lmove pops one element from src's fromHead end and pushes it onto dst's
// toHead end (LMOVE, RPOPLPUSH), in Redis's order of events.
func lmove(db *DB, now int64, src, dst []byte, fromHead, toHead bool, w Writer) {
	r, ok := db.lookupType(now, src, TypeList, w, false)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteNull()
		return
	}
	d := db.lookup(now, dst)
	if d != 0 && db.typeOf(d) != TypeList {
		w.WriteError(errWrongType)
		return
	}
	r = db.change(r)
	n := db.collLen(r)
	idx := uint64(0)
	if !fromHead {
		idx = uint64(n - 1)
	}
	// The element is copied out: the push may rewrite the cell it is in
	// (same list) before it is written.
	elem := append(db.tbufElem[:0], db.listAt(r, idx)...)
	db.tbufElem = elem
	db.listDelete(r, idx, 1)
	same := string(src) == string(dst)
	if same {
		d = r
	} else if d == 0 {
		d = db.newCollection(dst, TypeList, emptyListPack)
	} else {
		d = db.change(d)
	}
	db.listPush(d, toHead, [][]byte{elem})
	if toHead {
		db.notify("lpush", dst)
	} else {
		db.notify("rpush", dst)
	}
	db.ready(dst)
	w.WriteBulk(elem)
	db.listRemoved(r, src, fromHead)
}

func cmdLMove(db *DB, now int64, argv [][]byte, w Writer) {
	fromHead, ok := parseWhere(argv[3], w)
	if !ok {
		return
	}
	toHead, ok := parseWhere(argv[4], w)
	if !ok {
		return
	}
	lmove(db, now, argv[1], argv[2], fromHead, toHead, w)
}

func cmdRPopLPush(db *DB, now int64, argv [][]byte, w Writer) {
	lmove(db, now, argv[1], argv[2], false, true, w)
}

// parseNumKeys reads an *MPOP/*INTERCARD numkeys: at least 1, and no more
// keys than the arguments after it (rest) hold.
func parseNumKeys(arg []byte, w Writer) (int64, bool) {
	n, ok := parseInt(arg)
	if !ok || n < 1 {
		w.WriteError("ERR numkeys should be greater than 0")
		return 0, false
	}
	return n, true
}

func cmdLMPop(db *DB, now int64, argv [][]byte, w Writer) {
	numKeys, ok := parseNumKeys(argv[1], w)
	if !ok {
		return
	}
	if numKeys > int64(len(argv)-3) {
		w.WriteError(errSyntax)
		return
	}
	whereIdx := 2 + int(numKeys)
	head, ok := parseWhere(argv[whereIdx], w)
	if !ok {
		return
	}
	count := int64(-1)
	for j := whereIdx + 1; j < len(argv); j++ {
		if count == -1 && equalFold(argv[j], "count") && j+1 < len(argv) {
			j++
			v, ok := parseInt(argv[j])
			if !ok || v < 1 {
				w.WriteError("ERR count should be greater than 0")
				return
			}
			count = v
			continue
		}
		w.WriteError(errSyntax)
		return
	}
	if count == -1 {
		count = 1
	}
	for _, key := range argv[2:whereIdx] {
		r, ok := db.lookupType(now, key, TypeList, w, false)
		if !ok {
			return
		}
		if r == 0 {
			continue
		}
		r = db.change(r)
		n := db.collLen(r)
		k := min(count, n)
		start, end := int64(0), k-1
		if !head {
			start, end = n-k, n-1
		}
		w.WriteArray(2)
		w.WriteBulk(key)
		db.writeListRange(r, start, end, !head, w)
		db.listDelete(r, uint64(start), uint64(k))
		db.listRemoved(r, key, head)
		return
	}
	w.WriteNullArray()
}

// numKeysAt returns the key positions of a command whose keys follow a
// numkeys argument at position at (LMPOP, ZUNION, SINTERCARD, ...), and
// the fixed keys before it (first..at-1): the positions Redis's getkeys
// procedures report. Malformed counts give no keys beyond the fixed ones.
func numKeysAt(argv [][]byte, first, at int) []int {
	var out []int
	for i := first; i < at && first > 0; i++ {
		out = append(out, i)
	}
	if at >= len(argv) {
		return out
	}
	n, ok := parseInt(argv[at])
	if !ok || n < 1 || n > int64(len(argv)-at-1) {
		return out
	}
	for i := 0; i < int(n); i++ {
		out = append(out, at+1+i)
	}
	return out
}

func init() {
	l := func(name string, arity int, flags Flags, first, last int, run func(*DB, int64, [][]byte, Writer), cats ...string) {
		register(&Command{Name: name, Arity: arity, Flags: flags, FirstKey: first, LastKey: last, Step: 1,
			Categories: append([]string{"@list"}, cats...), run: run})
	}
	l("lpush", -3, Write|DenyOOM|Fast, 1, 1, cmdLPush, "@write", "@fast")
	l("rpush", -3, Write|DenyOOM|Fast, 1, 1, cmdRPush, "@write", "@fast")
	l("lpushx", -3, Write|DenyOOM|Fast, 1, 1, cmdLPushX, "@write", "@fast")
	l("rpushx", -3, Write|DenyOOM|Fast, 1, 1, cmdRPushX, "@write", "@fast")
	l("lpop", -2, Write|Fast, 1, 1, cmdLPop, "@write", "@fast")
	l("rpop", -2, Write|Fast, 1, 1, cmdRPop, "@write", "@fast")
	l("lrange", 4, ReadOnly, 1, 1, cmdLRange, "@read", "@slow")
	l("lindex", 3, ReadOnly, 1, 1, cmdLIndex, "@read", "@slow")
	l("llen", 2, ReadOnly|Fast, 1, 1, cmdLLen, "@read", "@fast")
	l("lset", 4, Write|DenyOOM, 1, 1, cmdLSet, "@write", "@slow")
	l("linsert", 5, Write|DenyOOM, 1, 1, cmdLInsert, "@write", "@slow")
	l("lrem", 4, Write, 1, 1, cmdLRem, "@write", "@slow")
	l("ltrim", 4, Write, 1, 1, cmdLTrim, "@write", "@slow")
	l("lpos", -3, ReadOnly, 1, 1, cmdLPos, "@read", "@slow")
	l("lmove", 5, Write|DenyOOM, 1, 2, cmdLMove, "@write", "@slow")
	l("rpoplpush", 3, Write|DenyOOM, 1, 2, cmdRPopLPush, "@write", "@slow")
	register(&Command{Name: "lmpop", Arity: -4, Flags: Write,
		Categories: []string{"@list", "@write", "@slow"}, run: cmdLMPop,
		keys: func(argv [][]byte) []int { return numKeysAt(argv, 0, 1) }})
}
