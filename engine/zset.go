package engine

import (
	"bytes"
	"encoding/binary"
	"math"
	"sort"
)

// A sorted set is a pack of (member, score) entries ordered by score,
// then member ([uvarint len][member][score], a score as packScoreBytes
// writes it), while it has at most
// zsetMaxListpackEntries members of at most zsetMaxListpackValue bytes
// (Redis's listpack); past that, two trees ("skiplist"): members to
// scores (tkZMember), and (score, member) keys in order (tkZScore), whose
// counts give ranks. As in Redis, a store (ZUNIONSTORE, ZRANGESTORE...)
// makes a pack when its result fits one; otherwise nothing goes back.

var emptyZSetPack = []byte{encListpackZSet, 0, 0}

// zsetRoots reads a skiplist header's two trees.
func zsetRoots(v []byte) (byMember, byScore troot) {
	count := binary.LittleEndian.Uint64(v[9:])
	byMember = troot{root: nid(binary.LittleEndian.Uint32(v[1:])), count: count}
	byScore = troot{root: nid(binary.LittleEndian.Uint32(v[5:])), count: count}
	return byMember, byScore
}

// zsetHeader builds a skiplist header in db.hdr.
func (db *DB) zsetHeader(byMember, byScore troot) []byte {
	h := db.hdr[:skipHdrBytes]
	h[0] = encSkiplist
	binary.LittleEndian.PutUint32(h[1:], uint32(byMember.root))
	binary.LittleEndian.PutUint32(h[5:], uint32(byScore.root))
	binary.LittleEndian.PutUint64(h[9:], byMember.count)
	return h
}

func scoreBits(f float64) [8]byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], math.Float64bits(f))
	return b
}

// packScore is a score as a pack keeps it: Redis's listpack stores -0 as
// the integer 0, so a small sorted set reads it back as 0 (a skiplist
// keeps -0).
func packScore(s float64) float64 {
	if s == 0 {
		return 0
	}
	return s
}

func scoreOf(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }

// cmpScoreMember orders (score, member) pairs as Redis does.
func cmpScoreMember(s1 float64, m1 []byte, s2 float64, m2 []byte) int {
	switch {
	case s1 < s2:
		return -1
	case s1 > s2:
		return 1
	}
	return bytes.Compare(m1, m2)
}

// A score in a pack is uvarint(zigzag(n)<<1) when it is an integer n
// within ±2^53 (exact in a float64), else the byte 1 and its 8 bytes:
// small integral scores, the common case, take a byte or two as in Redis's
// listpack rather than eight.
const packScoreIntMax = 1 << 53

func appendPackScore(dst []byte, s float64) []byte {
	s = packScore(s)
	if s == math.Trunc(s) && s >= -packScoreIntMax && s <= packScoreIntMax {
		n := int64(s)
		return binary.AppendUvarint(dst, uint64(n<<1^n>>63)<<1)
	}
	b := scoreBits(s)
	return append(append(dst, 1), b[:]...)
}

// readPackScore reads the score at v[o:] and returns the offset after it.
func readPackScore(v []byte, o int) (float64, int) {
	x, k := uvarint(v[o:])
	if x == 1 {
		return scoreOf(v[o+1:]), o + 9
	}
	z := x >> 1
	return float64(int64(z>>1) ^ -int64(z&1)), o + k
}

// skipPackScore returns the offset after the score at v[o:].
func skipPackScore(v []byte, o int) int {
	if v[o] == 1 {
		return o + 9
	}
	_, k := uvarint(v[o:])
	return o + k
}

// zpackEntry reads the pack entry at v[o:].
func zpackEntry(v []byte, o int) (m []byte, score float64, next int) {
	m, so := packField(v, o)
	score, next = readPackScore(v, so)
	return m, score, next
}

// zpackOffsets appends the offsets of pack v's entries to dst.
func zpackOffsets(v []byte, dst []int) []int {
	dst = dst[:0]
	for o := packHdrBytes; o < len(v); {
		dst = append(dst, o)
		n, k := uvarint(v[o:])
		o = skipPackScore(v, o+k+int(n))
	}
	return dst
}

// zsetLen is a sorted set value's length.
func zsetLen(v []byte) uint64 {
	if v[0] == encListpackZSet {
		return uint64(packCount(v))
	}
	return binary.LittleEndian.Uint64(v[9:])
}

// zsetScore returns member's score in sorted set value v.
func (db *DB) zsetScore(v, member []byte) (float64, bool) {
	if v[0] == encListpackZSet {
		for o := packHdrBytes; o < len(v); {
			m, s, next := zpackEntry(v, o)
			if string(m) == string(member) {
				return s, true
			}
			o = next
		}
		return 0, false
	}
	byMember, _ := zsetRoots(v)
	t := tview{d: &db.s.slabDirs, kind: tkZMember}
	_, b, ok := t.get(byMember.root, member)
	if !ok {
		return 0, false
	}
	return scoreOf(b), true
}

// zsetRank returns member's index in score order and its score.
func (db *DB) zsetRank(v, member []byte) (uint64, float64, bool) {
	if v[0] == encListpackZSet {
		i := uint64(0)
		for o := packHdrBytes; o < len(v); i++ {
			m, s, next := zpackEntry(v, o)
			if string(m) == string(member) {
				return i, s, true
			}
			o = next
		}
		return 0, 0, false
	}
	s, ok := db.zsetScore(v, member)
	if !ok {
		return 0, 0, false
	}
	_, byScore := zsetRoots(v)
	it := db.iter(tkZScore)
	it.seekKey(byScore.root, db.scoreKey(s, member))
	pos := it.Pos()
	db.doneIter(&it)
	return pos, s, true
}

// scoreKey builds a (score, member) key in db.zkey.
func (db *DB) scoreKey(s float64, member []byte) []byte {
	b := scoreBits(s)
	db.zkey = append(append(db.zkey[:0], b[:]...), member...)
	return db.zkey
}

// zcursor walks a sorted set in score order from an index, either way.
type zcursor struct {
	pack []byte
	offs []int
	i    int
	it   titer
	tree bool
	ok   bool
}

// zcursorAt starts at index idx (invalid when out of range); release
// with zcursorDone.
func (db *DB) zcursorAt(v []byte, idx int64) zcursor {
	var c zcursor
	n := int64(zsetLen(v))
	if v[0] == encListpackZSet {
		c.pack = v
		c.offs = zpackOffsets(v, db.zoffs)
		c.i = int(idx)
		c.ok = idx >= 0 && idx < n
		return c
	}
	c.tree = true
	_, byScore := zsetRoots(v)
	c.it = db.iter(tkZScore)
	if idx >= 0 {
		c.it.seekIndex(byScore.root, byScore.count, uint64(idx))
	}
	c.ok = c.it.Valid()
	return c
}

func (db *DB) zcursorDone(c *zcursor) {
	if c.tree {
		db.doneIter(&c.it)
	} else {
		db.zoffs = c.offs[:0]
	}
}

// Entry is the current member and score.
func (c *zcursor) Entry() ([]byte, float64) {
	if c.tree {
		k, _ := c.it.Entry()
		return k[8:], scoreOf(k)
	}
	m, s, _ := zpackEntry(c.pack, c.offs[c.i])
	return m, s
}

func (c *zcursor) Next() {
	if c.tree {
		c.it.Next()
		c.ok = c.it.Valid()
		return
	}
	c.i++
	c.ok = c.i < len(c.offs)
}

func (c *zcursor) Prev() {
	if c.tree {
		c.it.Prev()
		c.ok = c.it.Valid()
		return
	}
	c.i--
	c.ok = c.i >= 0
}

// zsetAt returns the idx-th (member, score) in score order.
func (db *DB) zsetAt(v []byte, idx uint64) ([]byte, float64) {
	c := db.zcursorAt(v, int64(idx))
	m, s := c.Entry()
	db.zcursorDone(&c)
	return m, s
}

// scoreRange is a parsed score interval (zrangespec).
type scoreRange struct {
	min, max     float64
	minex, maxex bool
}

func (r *scoreRange) gteMin(s float64) bool {
	if r.minex {
		return s > r.min
	}
	return s >= r.min
}

func (r *scoreRange) lteMax(s float64) bool {
	if r.maxex {
		return s < r.max
	}
	return s <= r.max
}

// zsetFirstScore is the index of the first element with score >= x (or
// > x when excl).
func (db *DB) zsetFirstScore(v []byte, x float64, excl bool) uint64 {
	if v[0] == encListpackZSet {
		i := uint64(0)
		for o := packHdrBytes; o < len(v); i++ {
			_, s, next := zpackEntry(v, o)
			if s > x || (!excl && s >= x) {
				return i
			}
			o = next
		}
		return i
	}
	if excl {
		if x == math.Inf(1) {
			return zsetLen(v)
		}
		x = math.Nextafter(x, math.Inf(1))
	}
	_, byScore := zsetRoots(v)
	it := db.iter(tkZScore)
	it.seekKey(byScore.root, db.scoreKey(x, nil))
	pos := it.Pos()
	if !it.Valid() {
		pos = byScore.count
	}
	db.doneIter(&it)
	return pos
}

// zsetScoreSpan returns the index range [first, end) of the elements in
// score range r.
func (db *DB) zsetScoreSpan(v []byte, r *scoreRange) (uint64, uint64) {
	first := db.zsetFirstScore(v, r.min, r.minex)
	end := db.zsetFirstScore(v, r.max, !r.maxex)
	if end < first {
		end = first
	}
	return first, end
}

// lexBound is one end of a lex range: a member, or -/+ (min/max string).
type lexBound struct {
	s        []byte
	inf      int // -1: "-", +1: "+"
	excluded bool
}

// cmpLex compares member m with bound b.
func cmpLex(m []byte, b *lexBound) int {
	if b.inf != 0 {
		return -b.inf
	}
	return bytes.Compare(m, b.s)
}

type lexRange struct{ min, max lexBound }

func (r *lexRange) gteMin(m []byte) bool {
	c := cmpLex(m, &r.min)
	if r.min.excluded && r.min.inf == 0 {
		return c > 0
	}
	return c >= 0
}

func (r *lexRange) lteMax(m []byte) bool {
	c := cmpLex(m, &r.max)
	if r.max.excluded && r.max.inf == 0 {
		return c < 0
	}
	return c <= 0
}

// parseLexBound is Redis's zslParseLexRangeItem.
func parseLexBound(b []byte) (lexBound, bool) {
	if len(b) == 0 {
		return lexBound{}, false
	}
	switch b[0] {
	case '+', '-':
		if len(b) > 1 && b[1] != 0 {
			return lexBound{}, false
		}
		if b[0] == '+' {
			return lexBound{inf: 1, excluded: true}, true
		}
		return lexBound{inf: -1, excluded: true}, true
	case '(':
		return lexBound{s: b[1:], excluded: true}, true
	case '[':
		return lexBound{s: b[1:]}, true
	}
	return lexBound{}, false
}

// zsetLexSpan returns the index range [first, end) of the elements in lex
// range r, assuming (as Redis) that members sort by bytes where scores
// tie: a pack is scanned from the start as Redis's listpack is; a tree is
// searched by halving.
func (db *DB) zsetLexSpan(v []byte, r *lexRange) (uint64, uint64) {
	n := zsetLen(v)
	if v[0] == encListpackZSet {
		i := uint64(0)
		o := packHdrBytes
		for ; o < len(v); i++ {
			m, _, next := zpackEntry(v, o)
			if r.gteMin(m) {
				break
			}
			o = next
		}
		first := i
		for ; o < len(v); i++ {
			m, _, next := zpackEntry(v, o)
			if !r.lteMax(m) {
				break
			}
			o = next
		}
		return first, i
	}
	first := uint64(sort.Search(int(n), func(i int) bool {
		m, _ := db.zsetAt(v, uint64(i))
		return r.gteMin(m)
	}))
	end := uint64(sort.Search(int(n), func(i int) bool {
		if uint64(i) < first {
			return false
		}
		m, _ := db.zsetAt(v, uint64(i))
		return !r.lteMax(m)
	}))
	return first, max(first, end)
}

// zsetBuf is a sorted set value being changed: a pack in a buffer of its
// own, or the two trees (see setBuf).
type zsetBuf struct {
	pack              []byte
	byMember, byScore troot
	enc               byte
}

func (z *zsetBuf) len() uint64 {
	if z.enc == encListpackZSet {
		return uint64(packCount(z.pack))
	}
	return z.byMember.count
}

func (db *DB) zsetLoad(r ref, buf []byte) zsetBuf {
	v := db.valOf(r)
	if v[0] == encSkiplist {
		m, s := zsetRoots(v)
		return zsetBuf{enc: encSkiplist, byMember: m, byScore: s}
	}
	return zsetBuf{enc: encListpackZSet, pack: append(buf[:0], v...)}
}

func (db *DB) zsetValueOf(z *zsetBuf) []byte {
	if z.enc == encSkiplist {
		return db.zsetHeader(z.byMember, z.byScore)
	}
	return z.pack
}

// zsetEmpty is Redis's zsetTypeCreate for about size members, the first
// of len firstLen bytes.
func zsetEmpty(size, firstLen int, buf []byte) zsetBuf {
	if size <= zsetMaxListpackEntries && firstLen <= zsetMaxListpackValue {
		return zsetBuf{enc: encListpackZSet, pack: append(buf[:0], emptyZSetPack...)}
	}
	return zsetBuf{enc: encSkiplist}
}

// zsetToTrees turns a pack into trees.
func (db *DB) zsetToTrees(z *zsetBuf) {
	nz := zsetBuf{enc: encSkiplist}
	for o := packHdrBytes; o < len(z.pack); {
		m, s, next := zpackEntry(z.pack, o)
		db.zsetInsertTrees(&nz, m, s)
		o = next
	}
	*z = nz
}

func (db *DB) zsetInsertTrees(z *zsetBuf, m []byte, s float64) {
	b := scoreBits(s)
	db.tput(&z.byMember, tkZMember, m, b[:])
	db.tput(&z.byScore, tkZScore, db.scoreKey(s, m), nil)
}

// zsetInsert adds member m (absent) with score s, without conversions.
func (db *DB) zsetInsert(z *zsetBuf, m []byte, s float64) {
	if z.enc == encSkiplist {
		db.zsetInsertTrees(z, m, s)
		return
	}
	at := len(z.pack)
	for o := packHdrBytes; o < len(z.pack); {
		em, es, next := zpackEntry(z.pack, o)
		if cmpScoreMember(es, em, s, m) > 0 {
			at = o
			break
		}
		o = next
	}
	e := appendPackScore(appendPackField(db.zent[:0], m), s)
	db.zent = e
	z.pack = append(z.pack, e...) // grow
	copy(z.pack[at+len(e):], z.pack[at:len(z.pack)-len(e)])
	copy(z.pack[at:], e)
	setPackCount(z.pack, packCount(z.pack)+1)
}

// zsetDelete removes member m, whose score is s.
func (db *DB) zsetDelete(z *zsetBuf, m []byte, s float64) {
	if z.enc == encSkiplist {
		db.tdelete(&z.byMember, tkZMember, m)
		db.tdelete(&z.byScore, tkZScore, db.scoreKey(s, m))
		return
	}
	for o := packHdrBytes; o < len(z.pack); {
		em, _, next := zpackEntry(z.pack, o)
		if string(em) == string(m) {
			z.pack = append(z.pack[:o], z.pack[next:]...)
			setPackCount(z.pack, packCount(z.pack)-1)
			return
		}
		o = next
	}
}

// zsetDeleteRange removes the elements at indexes [from, to) in score
// order.
func (db *DB) zsetDeleteRange(z *zsetBuf, from, to uint64) {
	if from >= to {
		return
	}
	if z.enc == encListpackZSet {
		offs := zpackOffsets(z.pack, db.zoffs)
		db.zoffs = offs
		start := offs[from]
		end := len(z.pack)
		if to < uint64(len(offs)) {
			end = offs[to]
		}
		z.pack = append(z.pack[:start], z.pack[end:]...)
		setPackCount(z.pack, len(offs)-int(to-from))
		return
	}
	// The members leave the member tree one by one; the score tree loses
	// the run at once.
	it := db.iter(tkZScore)
	for it.seekIndex(z.byScore.root, z.byScore.count, from); it.Valid() && it.Pos() < to; it.Next() {
		k, _ := it.Entry()
		db.tdelete(&z.byMember, tkZMember, k[8:])
	}
	db.doneIter(&it)
	db.tdeleteRange(&z.byScore, tkZScore, from, to-from)
}

// zaddFlags are ZADD's options (Redis's ZADD_IN_*).
const (
	zaddNX = 1 << iota
	zaddXX
	zaddGT
	zaddLT
	zaddIncr
)

// zaddResult is what zsetAdd did (Redis's ZADD_OUT_*).
const (
	zaddNop = 1 << iota
	zaddAdded
	zaddUpdated
	zaddNaN
)

// zsetAdd is Redis's zsetAdd: it adds or updates member m with score s
// under flags, converting a pack that a new member would overfill, and
// returns what it did and the member's score after.
func (db *DB) zsetAdd(z *zsetBuf, s float64, m []byte, flags int) (int, float64) {
	if math.IsNaN(s) {
		return zaddNaN, 0
	}
	if z.enc == encSkiplist && flags == 0 && db.views.Load() == 0 {
		// Without a View no node is copied on write, so a put that
		// changes nothing leaves the roots where they were.
		return db.zsetSet(z, s, m)
	}
	var cur float64
	var found bool
	if z.enc == encListpackZSet {
		for o := packHdrBytes; o < len(z.pack); {
			em, es, next := zpackEntry(z.pack, o)
			if string(em) == string(m) {
				cur, found = es, true
				break
			}
			o = next
		}
	} else {
		t := tview{d: &db.s.slabDirs, kind: tkZMember}
		if _, b, ok := t.get(z.byMember.root, m); ok {
			cur, found = scoreOf(b), true
		}
	}
	if found {
		if flags&zaddNX != 0 {
			return zaddNop, cur
		}
		if flags&zaddIncr != 0 {
			s += cur
			if math.IsNaN(s) {
				return zaddNaN, 0
			}
		}
		if (flags&zaddLT != 0 && s >= cur) || (flags&zaddGT != 0 && s <= cur) {
			return zaddNop, cur
		}
		if s != cur {
			db.zsetDelete(z, m, cur)
			db.zsetInsert(z, m, s)
			return zaddUpdated, s
		}
		return 0, s
	}
	if flags&zaddXX != 0 {
		return zaddNop, 0
	}
	if z.enc == encListpackZSet && (packCount(z.pack)+1 > zsetMaxListpackEntries || len(m) > zsetMaxListpackValue) {
		db.zsetToTrees(z)
	}
	db.zsetInsert(z, m, s)
	return zaddAdded, s
}

// zsetSet is zsetAdd without options on the two trees: the member's
// entry is put (overwritten in place when there) in one descent that
// hands back the score it replaced, where a get and then a delete and a
// put of the member took three; the update then moves the score key. An
// update was five descents, 38% of keel's CPU under redis-benchmark ZADD.
func (db *DB) zsetSet(z *zsetBuf, s float64, m []byte) (int, float64) {
	b := scoreBits(s)
	db.zprevOn = true
	added := db.tput(&z.byMember, tkZMember, m, b[:])
	db.zprevOn = false
	if added {
		db.tput(&z.byScore, tkZScore, db.scoreKey(s, m), nil)
		return zaddAdded, s
	}
	prev := db.zprev
	if cur := scoreOf(prev[:]); s != cur {
		db.tdelete(&z.byScore, tkZScore, db.scoreKey(cur, m))
		db.tput(&z.byScore, tkZScore, db.scoreKey(s, m), nil)
		return zaddUpdated, s
	}
	if prev != b {
		// An equal score of other bits (0 and -0): the set keeps the
		// one it had, as zsetAdd does.
		db.tput(&z.byMember, tkZMember, m, prev[:])
	}
	return 0, s
}

// zsetFromSorted builds a sorted set from entries already in score order
// (a store's result), as a pack when it fits one (Redis's
// zsetConvertToListpackIfNeeded).
func (db *DB) zsetFromSorted(members [][]byte, scores []float64, buf []byte) zsetBuf {
	maxLen := 0
	for _, m := range members {
		maxLen = max(maxLen, len(m))
	}
	if len(members) <= zsetMaxListpackEntries && maxLen <= zsetMaxListpackValue {
		p := append(buf[:0], emptyZSetPack...)
		for i, m := range members {
			p = appendPackScore(appendPackField(p, m), scores[i])
		}
		setPackCount(p, len(members))
		return zsetBuf{enc: encListpackZSet, pack: p}
	}
	z := zsetBuf{enc: encSkiplist}
	for i, m := range members {
		db.zsetInsertTrees(&z, m, scores[i])
	}
	return z
}

// zsetFree releases a built sorted set that became no key's value.
func (db *DB) zsetFree(z *zsetBuf) {
	if z.enc == encSkiplist {
		db.tfree(&z.byMember, tkZMember)
		db.tfree(&z.byScore, tkZScore)
	}
}

// parseStrtod is C's strtod over the whole of b, as Redis's zslParseRange
// uses it: leading white space skipped, no range check (1e400 is inf),
// the empty string is 0; NaN and trailing bytes are rejected.
func parseStrtod(b []byte) (float64, bool) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i == len(b) {
		// No digits: strtod converts nothing and points at the start.
		return 0, len(b) == 0
	}
	f, ok := parseDoubleBody(b[i:], false)
	if !ok || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// parseDouble is Redis's string2d (getDoubleFromObject): the whole string
// a number, no leading space, no NaN, no overflow, no underflow to zero.
func parseDouble(b []byte) (float64, bool) {
	if len(b) == 0 || isSpace(b[0]) {
		return 0, false
	}
	f, ok := parseDoubleBody(b, true)
	if !ok || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}
