package engine

import (
	"encoding/binary"
	"math"
	"strconv"
)

// HSCAN, SSCAN and ZSCAN. A collection in a pack answers whole with
// cursor 0, whatever the cursor and COUNT, as Redis does for listpacks
// and intsets. A tree-backed one is walked in key order from the cursor,
// which means "resume after member K" exactly as SCAN's (scan.go): every
// element present for the whole scan comes back exactly once (but when a
// long-member cursor was forgotten, see SCAN).

type scanItem struct {
	a, b  []byte
	score float64 // a small sorted set's, whose pack holds it compactly
}

// scanColl is scanGenericCommand for collection key argv[1] of type typ.
func scanColl(db *DB, now int64, argv [][]byte, w Writer, typ ValueType) {
	cursor, ok := parseCursor(argv[2])
	if !ok {
		w.WriteError("ERR invalid cursor")
		return
	}
	r, ok := db.lookupType(now, argv[1], typ, w, true)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteArray(2)
		w.WriteBulkString("0")
		w.WriteArray(0)
		return
	}
	count := int64(10)
	var pattern []byte
	for i := 3; i < len(argv); {
		left := len(argv) - i
		switch {
		case equalFold(argv[i], "count") && left >= 2:
			n, ok := parseInt(argv[i+1])
			if !ok {
				w.WriteError(errNotInt)
				return
			}
			if n < 1 {
				w.WriteError(errSyntax)
				return
			}
			count = n
			i += 2
		case equalFold(argv[i], "match") && left >= 2:
			pattern = argv[i+1]
			if len(pattern) == 1 && pattern[0] == '*' {
				pattern = nil
			}
			i += 2
		default:
			w.WriteError(errSyntax)
			return
		}
	}
	count = min(count, scanCountMax)
	match := func(a []byte) bool { return pattern == nil || globMatch(pattern, a) }
	items := db.scanItems[:0]
	v := db.valOf(r)
	var kind treeKind
	var root troot
	switch v[0] {
	case encListpackHash:
		o := packHdrBytes
		for i, n := 0, packCount(v); i < n; i++ {
			f, vo := packField(v, o)
			val, e := packField(v, vo)
			if match(f) {
				items = append(items, scanItem{a: f, b: val})
			}
			o = e
		}
	case encListpackSet:
		o := packHdrBytes
		for i, n := 0, packCount(v); i < n; i++ {
			m, e := packField(v, o)
			if match(m) {
				items = append(items, scanItem{a: m})
			}
			o = e
		}
	case encIntset:
		// Members are numbers: formatted on writing (b holds the int).
		width := int(v[1])
		for i, n := 0, intsetLen(v); i < n; i++ {
			x := intsetAt(v, i)
			s := strconv.AppendInt(db.numBuf[:0], x, 10)
			if match(s) {
				items = append(items, scanItem{b: v[intsetHdrBytes+i*width : intsetHdrBytes+(i+1)*width]})
			}
		}
	case encListpackZSet:
		o := packHdrBytes
		for i, n := 0, packCount(v); i < n; i++ {
			m, score, next := zpackEntry(v, o)
			if match(m) {
				items = append(items, scanItem{a: m, score: score})
			}
			o = next
		}
	case encHashtable:
		kind, root = tkHash, treeRoot(v)
	case encHashtableSet:
		kind, root = tkSet, treeRoot(v)
	case encSkiplist:
		kind = tkZMember
		root, _ = zsetRoots(v)
	}
	next := uint64(0)
	if kind != 0 {
		from, after := db.scan.resume(cursor)
		it := db.iter(kind)
		it.seekKey(root.root, stringBytes(from))
		if after && it.Valid() {
			if a, _ := it.Entry(); string(a) == from {
				it.Next()
			}
		}
		var last []byte
		for visited := int64(0); it.Valid(); it.Next() {
			a, b := it.Entry()
			if visited == count {
				next = db.scan.cursorFor(last)
				break
			}
			visited++
			last = a
			if match(a) {
				items = append(items, scanItem{a: a, b: b})
			}
		}
		db.doneIter(&it)
	}
	per := 1
	if typ != TypeSet {
		per = 2
	}
	w.WriteArray(2)
	w.WriteBulk(strconv.AppendUint(db.numBuf[:0], next, 10))
	w.WriteArray(per * len(items))
	for _, e := range items {
		switch {
		case typ == TypeSet && e.a == nil:
			w.WriteBulk(strconv.AppendInt(db.numBuf[:0], intsetDecode(e.b), 10))
		case typ == TypeSet:
			w.WriteBulk(e.a)
		case typ == TypeZSet:
			score := e.score
			if e.b != nil {
				score = math.Float64frombits(binary.LittleEndian.Uint64(e.b))
			}
			w.WriteBulk(e.a)
			w.WriteBulk(formatScore(db.numBuf[:0], score))
		default:
			w.WriteBulk(e.a)
			w.WriteBulk(e.b)
		}
	}
	clear(items)
	if cap(items) <= scanOutKeep {
		db.scanItems = items[:0]
	} else {
		db.scanItems = nil
	}
}

// formatScore appends a score as keel writes doubles in strings (ZSCAN):
// the shortest form that reads back exactly, as Redis 7.2 does, with
// inf and -inf.
func formatScore(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// randDistinct returns k distinct positions of [0, n), 0 < k < n, in the
// order drawn (Floyd's algorithm: k draws, uniform over k-subsets). The
// map only answers membership; its order never reaches a reply.
func (db *DB) randDistinct(n, k uint64) []uint64 {
	out := make([]uint64, 0, k)
	seen := make(map[uint64]struct{}, k)
	for j := n - k; j < n; j++ {
		t := db.randN(j + 1)
		if _, dup := seen[t]; dup {
			t = j
		}
		seen[t] = struct{}{}
		out = append(out, t)
	}
	return out
}

// parseRandCount parses the count of SRANDMEMBER, HRANDFIELD and
// ZRANDMEMBER: Redis's range check, then keel's bound on the reply.
func parseRandCount(arg []byte, w Writer) (int64, bool) {
	n, ok := parseInt(arg)
	if !ok {
		w.WriteError(errNotInt)
		return 0, false
	}
	if n < -math.MaxInt64 {
		w.WriteError("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
		return 0, false
	}
	return n, true
}
