package engine

import (
	"math"
	"sort"
)

const (
	errMinMaxFloat = "ERR min or max is not a float"
	errMinMaxLex   = "ERR min or max not valid string range item"
)

// zsetCommit writes z back as r's value after a change, recording the
// change (WATCH) and keeping the pack's buffer for later commands. Trees
// are changed in place before (their nodes are copied on write by their
// own versions); the key's record is made writable here.
func (db *DB) zsetCommit(r ref, z *zsetBuf, slot int) ref {
	r = db.change(r)
	db.setValue(r, db.zsetValueOf(z))
	if z.enc == encListpackZSet {
		db.zbufs[slot] = z.pack[:0]
	}
	return r
}

func zaddGeneric(db *DB, now int64, argv [][]byte, w Writer, flags int) {
	scoreIdx := 2
	ch := false
options:
	for scoreIdx < len(argv) {
		switch opt := argv[scoreIdx]; {
		case equalFold(opt, "nx"):
			flags |= zaddNX
		case equalFold(opt, "xx"):
			flags |= zaddXX
		case equalFold(opt, "ch"):
			ch = true
		case equalFold(opt, "incr"):
			flags |= zaddIncr
		case equalFold(opt, "gt"):
			flags |= zaddGT
		case equalFold(opt, "lt"):
			flags |= zaddLT
		default:
			break options
		}
		scoreIdx++
	}
	incr := flags&zaddIncr != 0
	nx, xx, gt, lt := flags&zaddNX != 0, flags&zaddXX != 0, flags&zaddGT != 0, flags&zaddLT != 0
	elements := len(argv) - scoreIdx
	if elements%2 != 0 || elements == 0 {
		w.WriteError(errSyntax)
		return
	}
	elements /= 2
	if nx && xx {
		w.WriteError("ERR XX and NX options at the same time are not compatible")
		return
	}
	if (gt && nx) || (lt && nx) || (gt && lt) {
		w.WriteError("ERR GT, LT, and/or NX options at the same time are not compatible")
		return
	}
	if incr && elements > 1 {
		w.WriteError("ERR INCR option supports a single increment-element pair")
		return
	}
	scores := db.zscores[:0]
	for j := 0; j < elements; j++ {
		s, ok := parseDouble(argv[scoreIdx+2*j])
		if !ok {
			w.WriteError(errNotFloat)
			return
		}
		scores = append(scores, s)
	}
	db.zscores = scores
	r, ok := db.lookupType(now, argv[1], TypeZSet, w, false)
	if !ok {
		return
	}
	db.reclaim()
	var z zsetBuf
	created := false
	if r == 0 {
		if xx {
			if incr {
				w.WriteNull()
			} else {
				w.WriteInt(0)
			}
			return
		}
		z = zsetEmpty(elements, len(argv[scoreIdx+1]), db.zbufs[0])
		r = db.newCollection(argv[1], TypeZSet, db.zsetValueOf(&z))
		created = true
	} else {
		z = db.zsetLoad(r, db.zbufs[0])
	}
	added, updated, processed := 0, 0, 0
	var score float64
	for j := 0; j < elements; j++ {
		res, s := db.zsetAdd(&z, scores[j], argv[scoreIdx+1+2*j], flags)
		if res&zaddNaN != 0 {
			if added+updated > 0 || created {
				db.zsetCommit(r, &z, 0)
			}
			w.WriteError("ERR resulting score is not a number (NaN)")
			return
		}
		if res&zaddAdded != 0 {
			added++
		}
		if res&zaddUpdated != 0 {
			updated++
		}
		if res&zaddNop == 0 {
			processed++
		}
		score = s
	}
	if added+updated > 0 || created {
		db.zsetCommit(r, &z, 0)
	}
	if incr {
		if processed > 0 {
			w.WriteDouble(score)
		} else {
			w.WriteNull()
		}
	} else if ch {
		w.WriteInt(int64(added + updated))
	} else {
		w.WriteInt(int64(added))
	}
	if added+updated > 0 {
		if incr {
			db.notify("zincr", argv[1])
		} else {
			db.notify("zadd", argv[1])
		}
	}
	if added > 0 {
		db.ready(argv[1])
	}
}

func cmdZAdd(db *DB, now int64, argv [][]byte, w Writer)    { zaddGeneric(db, now, argv, w, 0) }
func cmdZIncrBy(db *DB, now int64, argv [][]byte, w Writer) { zaddGeneric(db, now, argv, w, zaddIncr) }

func cmdZScore(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeZSet, w, true)
	if !ok {
		return
	}
	if r != 0 {
		if s, found := db.zsetScore(db.valOf(r), argv[2]); found {
			w.WriteDouble(s)
			return
		}
	}
	w.WriteNull()
}

func cmdZMScore(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeZSet, w, true)
	if !ok {
		return
	}
	w.WriteArray(len(argv) - 2)
	for _, m := range argv[2:] {
		if r != 0 {
			if s, found := db.zsetScore(db.valOf(r), m); found {
				w.WriteDouble(s)
				continue
			}
		}
		w.WriteNull()
	}
}

func cmdZCard(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeZSet, w, true)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	w.WriteInt(db.collLen(r))
}

// parseScoreRange is Redis's zslParseRange.
func parseScoreRange(minArg, maxArg []byte) (scoreRange, bool) {
	var r scoreRange
	var ok bool
	one := func(b []byte) (float64, bool, bool) {
		if len(b) > 0 && b[0] == '(' {
			f, ok := parseStrtod(b[1:])
			return f, true, ok
		}
		f, ok := parseStrtod(b)
		return f, false, ok
	}
	if r.min, r.minex, ok = one(minArg); !ok {
		return r, false
	}
	if r.max, r.maxex, ok = one(maxArg); !ok {
		return r, false
	}
	return r, true
}

func parseLexRange(minArg, maxArg []byte) (lexRange, bool) {
	var r lexRange
	var ok bool
	if r.min, ok = parseLexBound(minArg); !ok {
		return r, false
	}
	if r.max, ok = parseLexBound(maxArg); !ok {
		return r, false
	}
	return r, true
}

func cmdZCount(db *DB, now int64, argv [][]byte, w Writer) {
	rg, ok := parseScoreRange(argv[2], argv[3])
	if !ok {
		w.WriteError(errMinMaxFloat)
		return
	}
	r, ok := db.lookupType(now, argv[1], TypeZSet, w, true)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	first, end := db.zsetScoreSpan(db.valOf(r), &rg)
	w.WriteInt(int64(end - first))
}

func cmdZLexCount(db *DB, now int64, argv [][]byte, w Writer) {
	rg, ok := parseLexRange(argv[2], argv[3])
	if !ok {
		w.WriteError(errMinMaxLex)
		return
	}
	r, ok := db.lookupType(now, argv[1], TypeZSet, w, true)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	first, end := db.zsetLexSpan(db.valOf(r), &rg)
	w.WriteInt(int64(end - first))
}

func zrankGeneric(db *DB, now int64, argv [][]byte, w Writer, reverse bool, name string) {
	if len(argv) > 4 {
		w.WriteError(errArity(name))
		return
	}
	withScore := false
	if len(argv) == 4 {
		if !equalFold(argv[3], "withscore") {
			w.WriteError(errSyntax)
			return
		}
		withScore = true
	}
	null := func() {
		if withScore {
			w.WriteNullArray()
		} else {
			w.WriteNull()
		}
	}
	r, ok := db.lookupType(now, argv[1], TypeZSet, w, true)
	if !ok {
		return
	}
	if r == 0 {
		null()
		return
	}
	v := db.valOf(r)
	rank, s, found := db.zsetRank(v, argv[2])
	if !found {
		null()
		return
	}
	if reverse {
		rank = zsetLen(v) - 1 - rank
	}
	if withScore {
		w.WriteArray(2)
	}
	w.WriteInt(int64(rank))
	if withScore {
		w.WriteDouble(s)
	}
}

func cmdZRank(db *DB, now int64, argv [][]byte, w Writer) {
	zrankGeneric(db, now, argv, w, false, "zrank")
}
func cmdZRevRank(db *DB, now int64, argv [][]byte, w Writer) {
	zrankGeneric(db, now, argv, w, true, "zrevrank")
}

// zrange kinds and directions (Redis's zrange_type, zrange_direction).
const (
	zrAuto = iota
	zrRank
	zrScore
	zrLex
)

// zrangeSpec is a ZRANGE-family request resolved to positions: count
// elements from index start, walking backwards when reverse.
type zrangeSpec struct {
	start   int64
	count   int64
	reverse bool
}

// zrangeGeneric is Redis's zrangeGenericCommand for ZRANGE, ZRANGESTORE
// and the older forms: key at argv[at], the range in the two after,
// options after those. dst is ZRANGESTORE's destination (nil otherwise).
func zrangeGeneric(db *DB, now int64, argv [][]byte, w Writer, at int, dst []byte, kind int, reverse int) {
	store := dst != nil
	withScores := false
	offset, limit := int64(0), int64(-1)
	for j := at + 3; j < len(argv); j++ {
		left := len(argv) - j - 1
		switch {
		case !store && equalFold(argv[j], "withscores"):
			withScores = true
		case equalFold(argv[j], "limit") && left >= 2:
			o, ok1 := parseInt(argv[j+1])
			l, ok2 := parseInt(argv[j+2])
			if !ok1 || !ok2 {
				w.WriteError(errNotInt)
				return
			}
			offset, limit = o, l
			j += 2
		case reverse == zrAuto && equalFold(argv[j], "rev"):
			reverse = 1
		case kind == zrAuto && equalFold(argv[j], "bylex"):
			kind = zrLex
		case kind == zrAuto && equalFold(argv[j], "byscore"):
			kind = zrScore
		default:
			w.WriteError(errSyntax)
			return
		}
	}
	rev := reverse == 1
	if kind == zrAuto {
		kind = zrRank
	}
	if limit != -1 && kind == zrRank {
		w.WriteError("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
		return
	}
	if withScores && kind == zrLex {
		w.WriteError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
		return
	}
	minArg, maxArg := argv[at+1], argv[at+2]
	if rev && kind != zrRank {
		minArg, maxArg = maxArg, minArg
	}
	var start, end int64
	var sr scoreRange
	var lr lexRange
	switch kind {
	case zrRank:
		var ok1, ok2 bool
		start, ok1 = parseInt(minArg)
		end, ok2 = parseInt(maxArg)
		if !ok1 || !ok2 {
			w.WriteError(errNotInt)
			return
		}
	case zrScore:
		var ok bool
		if sr, ok = parseScoreRange(minArg, maxArg); !ok {
			w.WriteError(errMinMaxFloat)
			return
		}
	case zrLex:
		var ok bool
		if lr, ok = parseLexRange(minArg, maxArg); !ok {
			w.WriteError(errMinMaxLex)
			return
		}
	}
	r, ok := db.lookupType(now, argv[at], TypeZSet, w, true)
	if !ok {
		return
	}
	var spec zrangeSpec
	var v []byte
	if r != 0 {
		v = db.valOf(r)
		n := int64(zsetLen(v))
		switch kind {
		case zrRank:
			if s, e, empty := listRange(start, end, n); !empty {
				spec = zrangeSpec{start: s, count: e - s + 1, reverse: rev}
				if rev {
					spec.start = n - 1 - s
				}
			}
		default:
			var first, stop uint64
			if kind == zrScore {
				first, stop = db.zsetScoreSpan(v, &sr)
			} else {
				first, stop = db.zsetLexSpan(v, &lr)
			}
			span := int64(stop - first)
			if offset < 0 || (offset > 0 && offset >= n) || offset >= span {
				break
			}
			k := span - offset
			if limit >= 0 {
				k = min(k, limit)
			}
			spec = zrangeSpec{start: int64(first) + offset, count: k, reverse: rev}
			if rev {
				spec.start = int64(stop) - 1 - offset
			}
		}
	}
	if store {
		zrangeStore(db, now, dst, v, spec, w)
		return
	}
	nested := withScores && resp3(w)
	if withScores && !nested {
		w.WriteArray(int(2 * spec.count))
	} else {
		w.WriteArray(int(spec.count))
	}
	if spec.count == 0 {
		return
	}
	c := db.zcursorAt(v, spec.start)
	for k := spec.count; k > 0 && c.ok; k-- {
		m, s := c.Entry()
		if nested {
			w.WriteArray(2)
		}
		w.WriteBulk(m)
		if withScores {
			w.WriteDouble(s)
		}
		if spec.reverse {
			c.Prev()
		} else {
			c.Next()
		}
	}
	db.zcursorDone(&c)
}

// zrangeStore stores the selected elements of v at dst (ZRANGESTORE).
func zrangeStore(db *DB, now int64, dst []byte, v []byte, spec zrangeSpec, w Writer) {
	var members [][]byte
	var scores []float64
	var buf []byte
	if spec.count > 0 {
		c := db.zcursorAt(v, spec.start)
		var ends []int
		for k := spec.count; k > 0 && c.ok; k-- {
			m, s := c.Entry()
			buf = append(buf, m...)
			ends = append(ends, len(buf))
			scores = append(scores, s)
			if spec.reverse {
				c.Prev()
			} else {
				c.Next()
			}
		}
		db.zcursorDone(&c)
		start := 0
		for _, e := range ends {
			members = append(members, buf[start:e:e])
			start = e
		}
		if spec.reverse {
			for i, j := 0, len(members)-1; i < j; i, j = i+1, j-1 {
				members[i], members[j] = members[j], members[i]
				scores[i], scores[j] = scores[j], scores[i]
			}
		}
	}
	zstoreResult(db, now, dst, members, scores, "zrangestore", w)
}

// zstoreResult makes a sorted set of the given elements (in score order)
// the value of dst, or deletes dst when there are none, and replies the
// count.
func zstoreResult(db *DB, now int64, dst []byte, members [][]byte, scores []float64, event string, w Writer) {
	old := db.lookup(now, dst)
	if len(members) == 0 {
		w.WriteInt(0)
		if old != 0 {
			db.del(old, "del")
		}
		return
	}
	db.reclaim()
	z := db.zsetFromSorted(members, scores, db.zbufs[1])
	db.storeValue(dst, old, TypeZSet, db.zsetValueOf(&z))
	w.WriteInt(int64(len(members)))
	db.notify(event, dst)
	db.ready(dst)
}

func cmdZRange(db *DB, now int64, argv [][]byte, w Writer) {
	zrangeGeneric(db, now, argv, w, 1, nil, zrAuto, zrAuto)
}

func cmdZRangeStore(db *DB, now int64, argv [][]byte, w Writer) {
	zrangeGeneric(db, now, argv, w, 2, argv[1], zrAuto, zrAuto)
}

func cmdZRevRange(db *DB, now int64, argv [][]byte, w Writer) {
	zrangeGeneric(db, now, argv, w, 1, nil, zrRank, 1)
}
func cmdZRangeByScore(db *DB, now int64, argv [][]byte, w Writer) {
	zrangeGeneric(db, now, argv, w, 1, nil, zrScore, 0)
}
func cmdZRevRangeByScore(db *DB, now int64, argv [][]byte, w Writer) {
	zrangeGeneric(db, now, argv, w, 1, nil, zrScore, 1)
}
func cmdZRangeByLex(db *DB, now int64, argv [][]byte, w Writer) {
	zrangeGeneric(db, now, argv, w, 1, nil, zrLex, 0)
}
func cmdZRevRangeByLex(db *DB, now int64, argv [][]byte, w Writer) {
	zrangeGeneric(db, now, argv, w, 1, nil, zrLex, 1)
}

func cmdZRem(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeZSet, w, false)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	db.reclaim()
	z := db.zsetLoad(r, db.zbufs[0])
	deleted := int64(0)
	for _, m := range argv[2:] {
		// Look up in z: its trees may have changed already.
		s, found := db.zsetScore(db.zsetValueOf(&z), m)
		if !found {
			continue
		}
		db.zsetDelete(&z, m, s)
		deleted++
		if z.len() == 0 {
			break
		}
	}
	if deleted > 0 {
		r = db.zsetCommit(r, &z, 0)
		db.notify("zrem", argv[1])
		db.dropIfEmpty(r)
	}
	w.WriteInt(deleted)
}

func zremRange(db *DB, now int64, argv [][]byte, w Writer, kind int) {
	var start, end int64
	var sr scoreRange
	var lr lexRange
	var event string
	switch kind {
	case zrRank:
		event = "zremrangebyrank"
		var ok1, ok2 bool
		start, ok1 = parseInt(argv[2])
		end, ok2 = parseInt(argv[3])
		if !ok1 || !ok2 {
			w.WriteError(errNotInt)
			return
		}
	case zrScore:
		event = "zremrangebyscore"
		var ok bool
		if sr, ok = parseScoreRange(argv[2], argv[3]); !ok {
			w.WriteError(errMinMaxFloat)
			return
		}
	case zrLex:
		event = "zremrangebylex"
		var ok bool
		if lr, ok = parseLexRange(argv[2], argv[3]); !ok {
			w.WriteError(errMinMaxLex)
			return
		}
	}
	r, ok := db.lookupType(now, argv[1], TypeZSet, w, false)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	v := db.valOf(r)
	var first, stop uint64
	switch kind {
	case zrRank:
		s, e, empty := listRange(start, end, int64(zsetLen(v)))
		if empty {
			w.WriteInt(0)
			return
		}
		first, stop = uint64(s), uint64(e+1)
	case zrScore:
		first, stop = db.zsetScoreSpan(v, &sr)
	case zrLex:
		first, stop = db.zsetLexSpan(v, &lr)
	}
	if stop > first {
		db.reclaim()
		z := db.zsetLoad(r, db.zbufs[0])
		db.zsetDeleteRange(&z, first, stop)
		r = db.zsetCommit(r, &z, 0)
		db.notify(event, argv[1])
		db.dropIfEmpty(r)
	}
	w.WriteInt(int64(stop - first))
}

func cmdZRemRangeByRank(db *DB, now int64, argv [][]byte, w Writer) {
	zremRange(db, now, argv, w, zrRank)
}
func cmdZRemRangeByScore(db *DB, now int64, argv [][]byte, w Writer) {
	zremRange(db, now, argv, w, zrScore)
}
func cmdZRemRangeByLex(db *DB, now int64, argv [][]byte, w Writer) {
	zremRange(db, now, argv, w, zrLex)
}

// zpop is Redis's genericZpopCommand: it pops up to count elements from
// the lowest (max false) or highest end of the first of keys that exists.
// emitKey (ZMPOP) and nested shape the reply; nullWhenEmpty answers a
// null array rather than an empty one when no key exists.
func zpop(db *DB, now int64, keys [][]byte, w Writer, max bool, emitKey bool, count int64, nested, nullWhenEmpty bool) {
	var r ref
	var key []byte
	for _, k := range keys {
		var ok bool
		r, ok = db.lookupType(now, k, TypeZSet, w, false)
		if !ok {
			return
		}
		if r != 0 {
			key = k
			break
		}
	}
	if r == 0 {
		if nullWhenEmpty {
			w.WriteNullArray()
		} else {
			w.WriteArray(0)
		}
		return
	}
	if count == 0 {
		w.WriteArray(0)
		return
	}
	if count == -1 {
		count = 1
	}
	v := db.valOf(r)
	n := int64(zsetLen(v))
	k := min(count, n)
	switch {
	case !nested && !emitKey:
		w.WriteArray(int(2 * k))
	case nested && !emitKey:
		w.WriteArray(int(k))
	default:
		w.WriteArray(2)
		w.WriteBulk(key)
		w.WriteArray(int(k))
	}
	first, at := int64(0), int64(0)
	if max {
		first, at = n-k, n-1
	}
	c := db.zcursorAt(v, at)
	for i := int64(0); i < k; i++ {
		m, s := c.Entry()
		if nested {
			w.WriteArray(2)
		}
		w.WriteBulk(m)
		w.WriteDouble(s)
		if max {
			c.Prev()
		} else {
			c.Next()
		}
	}
	db.zcursorDone(&c)
	db.reclaim()
	z := db.zsetLoad(r, db.zbufs[0])
	db.zsetDeleteRange(&z, uint64(first), uint64(first+k))
	r = db.zsetCommit(r, &z, 0)
	if max {
		db.notify("zpopmax", key)
	} else {
		db.notify("zpopmin", key)
	}
	db.dropIfEmpty(r)
}

func zpopMinMax(db *DB, now int64, argv [][]byte, w Writer, max bool) {
	if len(argv) > 3 {
		w.WriteError(errSyntax)
		return
	}
	count := int64(-1)
	if len(argv) == 3 {
		n, ok := parseInt(argv[2])
		if !ok || n < 0 {
			w.WriteError("ERR value is out of range, must be positive")
			return
		}
		count = n
	}
	zpop(db, now, argv[1:2], w, max, false, count, resp3(w) && count != -1, false)
}

func cmdZPopMin(db *DB, now int64, argv [][]byte, w Writer) { zpopMinMax(db, now, argv, w, false) }
func cmdZPopMax(db *DB, now int64, argv [][]byte, w Writer) { zpopMinMax(db, now, argv, w, true) }

func cmdZMPop(db *DB, now int64, argv [][]byte, w Writer) {
	numKeys, ok := parseNumKeys(argv[1], w)
	if !ok {
		return
	}
	if numKeys > int64(len(argv)-3) {
		w.WriteError(errSyntax)
		return
	}
	whereIdx := 2 + int(numKeys)
	var max bool
	switch {
	case equalFold(argv[whereIdx], "min"):
	case equalFold(argv[whereIdx], "max"):
		max = true
	default:
		w.WriteError(errSyntax)
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
	zpop(db, now, argv[2:whereIdx], w, max, true, count, true, true)
}

func cmdZRandMember(db *DB, now int64, argv [][]byte, w Writer) {
	if len(argv) == 2 {
		r, ok := db.lookupType(now, argv[1], TypeZSet, w, true)
		if !ok {
			return
		}
		if r == 0 {
			w.WriteNull()
			return
		}
		v := db.valOf(r)
		m, _ := db.zsetAt(v, db.randN(zsetLen(v)))
		w.WriteBulk(m)
		return
	}
	l, ok := parseRandCount(argv[2], w)
	if !ok {
		return
	}
	withScores := false
	if len(argv) > 4 || (len(argv) == 4 && !equalFold(argv[3], "withscores")) {
		w.WriteError(errSyntax)
		return
	} else if len(argv) == 4 {
		withScores = true
		if l < -math.MaxInt64/2 || l > math.MaxInt64/2 {
			w.WriteError("ERR value is out of range")
			return
		}
	}
	r, ok := db.lookupType(now, argv[1], TypeZSet, w, true)
	if !ok {
		return
	}
	if r == 0 || l == 0 {
		w.WriteArray(0)
		return
	}
	v := db.valOf(r)
	size := zsetLen(v)
	nested := withScores && resp3(w)
	one := func(i uint64) {
		m, s := db.zsetAt(v, i)
		if nested {
			w.WriteArray(2)
		}
		w.WriteBulk(m)
		if withScores {
			w.WriteDouble(s)
		}
	}
	replyLen := func(n int) {
		if withScores && !nested {
			w.WriteArray(2 * n)
		} else {
			w.WriteArray(n)
		}
	}
	if l < 0 || l == 1 {
		count := uint64(l)
		if l < 0 {
			count = uint64(-l)
		}
		if count > randCountMax {
			w.WriteError(errRandCount)
			return
		}
		replyLen(int(count))
		for i := uint64(0); i < count; i++ {
			one(db.randN(size))
		}
		return
	}
	if uint64(l) >= size {
		// Redis answers the whole set highest score first here.
		replyLen(int(size))
		for i := size; i > 0; i-- {
			one(i - 1)
		}
		return
	}
	replyLen(int(l))
	for _, i := range db.randDistinct(size, uint64(l)) {
		one(i)
	}
}

func cmdZScan(db *DB, now int64, argv [][]byte, w Writer) { scanColl(db, now, argv, w, TypeZSet) }

// ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD.

// zsrc is one input of a sorted-set operation: a sorted set or a set
// (every member scoring 1), nil when the key is missing.
type zsrc struct {
	v      []byte
	isSet  bool
	weight float64
}

func (s *zsrc) len() uint64 {
	switch {
	case s.v == nil:
		return 0
	case s.isSet:
		return setLen(s.v)
	}
	return zsetLen(s.v)
}

// each calls fn for each (member, score) of s until fn returns false.
func (db *DB) zsrcEach(s *zsrc, fn func(m []byte, score float64) bool) {
	if s.v == nil {
		return
	}
	if s.isSet {
		db.setEach(s.v, func(m []byte) bool { return fn(m, 1) })
		return
	}
	c := db.zcursorAt(s.v, 0)
	for ; c.ok; c.Next() {
		if !fn(c.Entry()) {
			break
		}
	}
	db.zcursorDone(&c)
}

func (db *DB) zsrcFind(s *zsrc, m []byte) (float64, bool) {
	if s.v == nil {
		return 0, false
	}
	if s.isSet {
		return 1, db.setHas(s.v, m)
	}
	return db.zsetScore(s.v, m)
}

const (
	aggrSum = iota
	aggrMin
	aggrMax
)

func aggregate(target *float64, val float64, how int) {
	switch how {
	case aggrSum:
		*target += val
		if math.IsNaN(*target) {
			*target = 0
		}
	case aggrMin:
		if val < *target {
			*target = val
		}
	case aggrMax:
		if val > *target {
			*target = val
		}
	}
}

// zsetOp is Redis's zunionInterDiffGenericCommand. numIdx is the numkeys
// argument; dst the store destination (nil otherwise); cardOnly is
// ZINTERCARD.
func zsetOp(db *DB, now int64, argv [][]byte, w Writer, name string, numIdx int, dst []byte, op int, cardOnly bool) {
	setnum, ok := parseInt(argv[numIdx])
	if !ok {
		w.WriteError(errNotInt)
		return
	}
	if setnum < 1 {
		w.WriteError("ERR at least 1 input key is needed for '" + name + "' command")
		return
	}
	if setnum > int64(len(argv)-(numIdx+1)) {
		w.WriteError(errSyntax)
		return
	}
	srcs := make([]zsrc, setnum)
	j := numIdx + 1
	for i := range srcs {
		r := db.lookupRead(now, argv[j])
		srcs[i].weight = 1
		if r != 0 {
			switch db.typeOf(r) {
			case TypeZSet:
				srcs[i].v = db.valOf(r)
			case TypeSet:
				srcs[i].v, srcs[i].isSet = db.valOf(r), true
			default:
				w.WriteError(errWrongType)
				return
			}
		}
		j++
	}
	how := aggrSum
	withScores := false
	limit := int64(0)
	for remaining := len(argv) - j; remaining > 0; remaining = len(argv) - j {
		a := argv[j]
		switch {
		case op != setOpDiff && !cardOnly && remaining >= int(setnum)+1 && equalFold(a, "weights"):
			j++
			for i := range srcs {
				wt, ok := parseDouble(argv[j])
				if !ok {
					w.WriteError("ERR weight value is not a float")
					return
				}
				srcs[i].weight = wt
				j++
			}
		case op != setOpDiff && !cardOnly && remaining >= 2 && equalFold(a, "aggregate"):
			switch b := argv[j+1]; {
			case equalFold(b, "sum"):
				how = aggrSum
			case equalFold(b, "min"):
				how = aggrMin
			case equalFold(b, "max"):
				how = aggrMax
			default:
				w.WriteError(errSyntax)
				return
			}
			j += 2
		case dst == nil && !cardOnly && equalFold(a, "withscores"):
			withScores = true
			j++
		case cardOnly && remaining >= 2 && equalFold(a, "limit"):
			v, ok := parseInt(argv[j+1])
			if !ok || v < 0 {
				w.WriteError("ERR LIMIT can't be negative")
				return
			}
			limit = v
			j += 2
		default:
			w.WriteError(errSyntax)
			return
		}
	}
	if op != setOpDiff {
		// Redis sorts the inputs by size (glibc's qsort: stable here),
		// which also fixes the order in which scores are summed.
		sort.SliceStable(srcs, func(a, b int) bool { return srcs[a].len() < srcs[b].len() })
	}
	type elem struct {
		m []byte
		s float64
	}
	var out []elem
	var card uint64
	switch op {
	case setOpInter:
		if srcs[0].len() == 0 {
			break
		}
		db.zsrcEach(&srcs[0], func(m []byte, s0 float64) bool {
			score := srcs[0].weight * s0
			if math.IsNaN(score) {
				score = 0
			}
			for k := 1; k < len(srcs); k++ {
				var val float64
				if srcs[k].v != nil && &srcs[k].v[0] == &srcs[0].v[0] {
					val = s0 * srcs[k].weight
				} else if found, ok := db.zsrcFind(&srcs[k], m); ok {
					val = found * srcs[k].weight
				} else {
					return true
				}
				aggregate(&score, val, how)
			}
			card++
			if cardOnly {
				return limit == 0 || card < uint64(limit)
			}
			out = append(out, elem{append([]byte(nil), m...), score})
			return true
		})
	case setOpUnion:
		index := map[string]int{}
		for k := range srcs {
			db.zsrcEach(&srcs[k], func(m []byte, s float64) bool {
				score := srcs[k].weight * s
				if math.IsNaN(score) {
					score = 0
				}
				if i, ok := index[string(m)]; ok {
					aggregate(&out[i].s, score, how)
				} else {
					index[string(m)] = len(out)
					out = append(out, elem{append([]byte(nil), m...), score})
				}
				return true
			})
		}
	case setOpDiff:
		db.zsrcEach(&srcs[0], func(m []byte, s float64) bool {
			for k := 1; k < len(srcs); k++ {
				if _, ok := db.zsrcFind(&srcs[k], m); ok {
					return true
				}
			}
			out = append(out, elem{append([]byte(nil), m...), s})
			return true
		})
	}
	if cardOnly {
		w.WriteInt(int64(card))
		return
	}
	sort.Slice(out, func(a, b int) bool { return cmpScoreMember(out[a].s, out[a].m, out[b].s, out[b].m) < 0 })
	if dst != nil {
		members := make([][]byte, len(out))
		scores := make([]float64, len(out))
		for i, e := range out {
			members[i], scores[i] = e.m, e.s
		}
		event := map[int]string{setOpUnion: "zunionstore", setOpInter: "zinterstore", setOpDiff: "zdiffstore"}[op]
		zstoreResult(db, now, dst, members, scores, event, w)
		return
	}
	nested := withScores && resp3(w)
	if withScores && !nested {
		w.WriteArray(2 * len(out))
	} else {
		w.WriteArray(len(out))
	}
	for _, e := range out {
		if nested {
			w.WriteArray(2)
		}
		w.WriteBulk(e.m)
		if withScores {
			w.WriteDouble(e.s)
		}
	}
}

func cmdZUnion(db *DB, now int64, argv [][]byte, w Writer) {
	zsetOp(db, now, argv, w, "zunion", 1, nil, setOpUnion, false)
}
func cmdZInter(db *DB, now int64, argv [][]byte, w Writer) {
	zsetOp(db, now, argv, w, "zinter", 1, nil, setOpInter, false)
}
func cmdZDiff(db *DB, now int64, argv [][]byte, w Writer) {
	zsetOp(db, now, argv, w, "zdiff", 1, nil, setOpDiff, false)
}
func cmdZUnionStore(db *DB, now int64, argv [][]byte, w Writer) {
	zsetOp(db, now, argv, w, "zunionstore", 2, argv[1], setOpUnion, false)
}
func cmdZInterStore(db *DB, now int64, argv [][]byte, w Writer) {
	zsetOp(db, now, argv, w, "zinterstore", 2, argv[1], setOpInter, false)
}
func cmdZDiffStore(db *DB, now int64, argv [][]byte, w Writer) {
	zsetOp(db, now, argv, w, "zdiffstore", 2, argv[1], setOpDiff, false)
}
func cmdZInterCard(db *DB, now int64, argv [][]byte, w Writer) {
	zsetOp(db, now, argv, w, "zintercard", 1, nil, setOpInter, true)
}

func init() {
	z := func(name string, arity int, flags Flags, first, last int, run func(*DB, int64, [][]byte, Writer), cats ...string) {
		register(&Command{Name: name, Arity: arity, Flags: flags, FirstKey: first, LastKey: last, Step: 1,
			Categories: append([]string{"@sortedset"}, cats...), run: run})
	}
	z("zadd", -4, Write|DenyOOM|Fast, 1, 1, cmdZAdd, "@write", "@fast")
	z("zincrby", 4, Write|DenyOOM|Fast, 1, 1, cmdZIncrBy, "@write", "@fast")
	z("zscore", 3, ReadOnly|Fast, 1, 1, cmdZScore, "@read", "@fast")
	z("zmscore", -3, ReadOnly|Fast, 1, 1, cmdZMScore, "@read", "@fast")
	z("zcard", 2, ReadOnly|Fast, 1, 1, cmdZCard, "@read", "@fast")
	z("zcount", 4, ReadOnly|Fast, 1, 1, cmdZCount, "@read", "@fast")
	z("zlexcount", 4, ReadOnly|Fast, 1, 1, cmdZLexCount, "@read", "@fast")
	z("zrank", -3, ReadOnly|Fast, 1, 1, cmdZRank, "@read", "@fast")
	z("zrevrank", -3, ReadOnly|Fast, 1, 1, cmdZRevRank, "@read", "@fast")
	z("zrange", -4, ReadOnly, 1, 1, cmdZRange, "@read", "@slow")
	z("zrangestore", -5, Write|DenyOOM, 1, 2, cmdZRangeStore, "@write", "@slow")
	z("zrevrange", -4, ReadOnly, 1, 1, cmdZRevRange, "@read", "@slow")
	z("zrangebyscore", -4, ReadOnly, 1, 1, cmdZRangeByScore, "@read", "@slow")
	z("zrevrangebyscore", -4, ReadOnly, 1, 1, cmdZRevRangeByScore, "@read", "@slow")
	z("zrangebylex", -4, ReadOnly, 1, 1, cmdZRangeByLex, "@read", "@slow")
	z("zrevrangebylex", -4, ReadOnly, 1, 1, cmdZRevRangeByLex, "@read", "@slow")
	z("zrem", -3, Write|Fast, 1, 1, cmdZRem, "@write", "@fast")
	z("zremrangebyscore", 4, Write, 1, 1, cmdZRemRangeByScore, "@write", "@slow")
	z("zremrangebyrank", 4, Write, 1, 1, cmdZRemRangeByRank, "@write", "@slow")
	z("zremrangebylex", 4, Write, 1, 1, cmdZRemRangeByLex, "@write", "@slow")
	z("zpopmin", -2, Write|Fast, 1, 1, cmdZPopMin, "@write", "@fast")
	z("zpopmax", -2, Write|Fast, 1, 1, cmdZPopMax, "@write", "@fast")
	z("zrandmember", -2, ReadOnly, 1, 1, cmdZRandMember, "@read", "@slow")
	z("zscan", -3, ReadOnly, 1, 1, cmdZScan, "@read", "@slow")
	movable := func(name string, arity int, flags Flags, first, last int, run func(*DB, int64, [][]byte, Writer), fixed, at int, cats ...string) {
		step := 0
		if first != 0 {
			step = 1
		}
		register(&Command{Name: name, Arity: arity, Flags: flags, FirstKey: first, LastKey: last, Step: step,
			Categories: append([]string{"@sortedset"}, cats...), run: run,
			keys: func(argv [][]byte) []int { return numKeysAt(argv, fixed, at) }})
	}
	movable("zunion", -3, ReadOnly, 0, 0, cmdZUnion, 0, 1, "@read", "@slow")
	movable("zinter", -3, ReadOnly, 0, 0, cmdZInter, 0, 1, "@read", "@slow")
	movable("zdiff", -3, ReadOnly, 0, 0, cmdZDiff, 0, 1, "@read", "@slow")
	movable("zintercard", -3, ReadOnly, 0, 0, cmdZInterCard, 0, 1, "@read", "@slow")
	movable("zunionstore", -4, Write|DenyOOM, 1, 1, cmdZUnionStore, 1, 2, "@write", "@slow")
	movable("zinterstore", -4, Write|DenyOOM, 1, 1, cmdZInterStore, 1, 2, "@write", "@slow")
	movable("zdiffstore", -4, Write|DenyOOM, 1, 1, cmdZDiffStore, 1, 2, "@write", "@slow")
	movable("zmpop", -4, Write, 0, 0, cmdZMPop, 0, 1, "@write", "@slow")
}
