package engine

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// SCAN walks the ordered index in key order. A cursor stands for "resume
// strictly after key K", where K is the last key the previous call
// visited; since the order is total and does not depend on what else is in
// the index, a key present for the whole scan is returned exactly once: no
// misses, no duplicates, whatever is inserted or deleted in between.
//
// The cursor is an opaque uint64 (clients parse it as one), so K must be
// squeezed into 64 bits:
//
//	0                          start of the keyspace (and "scan finished")
//	0 | (len(K)+1)<<56 | K     K of at most 7 bytes, inline: exact, no state
//	1<<63 | seq<<40 | K[:5]    longer K, kept in a table of recent cursors
//
// The table (scanCursorsMax entries, a ring indexed by a 23-bit sequence
// number that starts at a random value per DB) maps seq to K. A cursor
// whose entry is still there (and whose 5-byte prefix agrees) resumes
// exactly. A cursor the table has forgotten — more than scanCursorsMax
// long-key cursors were issued in this DB since, or it came from another
// node or a restarted one — resumes at the first key >= its 5-byte prefix:
// still no misses, but keys sharing those 5 bytes that sort before K are
// returned again. That is the one case where a duplicate can appear. A
// cursor replayed 2^23 issues later can land on a reused sequence number
// whose key shares the prefix and resume at the wrong place; no client
// holds a cursor that long.
const (
	scanCursorsMax  = 1 << 14
	scanSeqBits     = 23
	scanPrefixBytes = 5
	scanInlineMax   = 7
	// scanOutKeep bounds the result buffer a DB keeps between SCANs.
	scanOutKeep = 4096
	// scanCountMax bounds the work one SCAN call does whatever COUNT says.
	scanCountMax = 1 << 20
)

type scanEntry struct {
	seq uint32
	key string
}

type scanTable struct {
	seq     uint32
	entries []scanEntry // allocated on first use
}

func (t *scanTable) init(seed uint64) {
	t.seq = uint32(seed) & (1<<scanSeqBits - 1)
}

// cursorFor encodes "resume after key".
func (t *scanTable) cursorFor(key []byte) uint64 {
	if len(key) <= scanInlineMax {
		var b [8]byte
		copy(b[1:], key)
		return uint64(len(key)+1)<<56 | binary.BigEndian.Uint64(b[:])
	}
	if t.entries == nil {
		t.entries = make([]scanEntry, scanCursorsMax)
	}
	t.seq = (t.seq + 1) & (1<<scanSeqBits - 1)
	// A copy: the table outlives the key's cell.
	t.entries[t.seq%scanCursorsMax] = scanEntry{seq: t.seq, key: string(key)}
	var b [8]byte
	copy(b[3:], key[:scanPrefixBytes])
	return 1<<63 | uint64(t.seq)<<40 | binary.BigEndian.Uint64(b[:])
}

// resume decodes a cursor into a seek position: scanning starts at the
// first key >= from, skipping from itself when after is set.
func (t *scanTable) resume(cursor uint64) (from string, after bool) {
	if cursor == 0 {
		return "", false
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], cursor)
	if cursor>>63 == 0 {
		n := int(cursor>>56) - 1
		if n < 0 || n > scanInlineMax {
			n = scanInlineMax // not a cursor keel issued: any position will do
		}
		return string(b[1 : 1+n]), true
	}
	seq := uint32(cursor>>40) & (1<<scanSeqBits - 1)
	prefix := b[3:]
	if t.entries != nil {
		if e := t.entries[seq%scanCursorsMax]; e.seq == seq && e.key != "" && e.key[:scanPrefixBytes] == string(prefix) {
			return e.key, true
		}
	}
	return string(prefix), false
}

// parseCursor follows Redis's strtoul rules: optional sign (a negative
// value wraps), decimal digits, nothing else; the empty string is 0.
func parseCursor(b []byte) (uint64, bool) {
	if len(b) > 0 && isSpace(b[0]) {
		return 0, false
	}
	s := b
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
		if len(s) == 0 {
			return 0, false
		}
	}
	if len(s) == 0 {
		return 0, true
	}
	v, err := strconv.ParseUint(bytesAsString(s), 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// keyFilter is a compiled MATCH/TYPE filter plus the key range it implies.
type keyFilter struct {
	pattern []byte // nil: every key
	prefix  []byte // every match starts with this
	exact   bool   // every key with prefix matches (pattern is prefix + '*')
	typ     []byte // nil: every type
}

func newKeyFilter(pattern, typ []byte) keyFilter {
	f := keyFilter{typ: typ}
	if pattern != nil && !(len(pattern) == 1 && pattern[0] == '*') {
		f.pattern = pattern
		f.prefix, f.exact = globPrefix(pattern)
	}
	return f
}

func (f *keyFilter) match(db *DB, r ref) bool {
	if f.typ != nil && !strings.EqualFold(db.typeOf(r).String(), bytesAsString(f.typ)) {
		return false
	}
	if f.pattern == nil {
		return true
	}
	key := db.keyOf(r)
	if f.exact && len(key) > 0 {
		return true // in range means it has the prefix
	}
	return globMatch(f.pattern, key)
}

// seek iterates live and expired keys from the first key >= from (or >
// from) while they have f's prefix; fn returns false to stop.
func (db *DB) seek(from string, after bool, prefix []byte, fn func(r ref) bool) {
	if from < bytesAsString(prefix) {
		from, after = bytesAsString(prefix), false
	}
	db.tree.seek(stringBytes(from), func(r ref) bool {
		key := bytesAsString(db.keyOf(r))
		if after && key == from {
			return true
		}
		if !strings.HasPrefix(key, bytesAsString(prefix)) {
			return false
		}
		return fn(r)
	})
}

// collectExpired deletes the keys gathered in expiredScratch.
func (db *DB) collectExpired() {
	for i, r := range db.expiredScratch {
		db.expireItem(r)
		db.expiredScratch[i] = 0
	}
	db.expiredScratch = db.expiredScratch[:0]
}

func cmdScan(db *DB, now int64, argv [][]byte, w Writer) {
	cursor, ok := parseCursor(argv[1])
	if !ok {
		w.WriteError("ERR invalid cursor")
		return
	}
	count := int64(10)
	var pattern, typ []byte
	for i := 2; i < len(argv); {
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
			i += 2
		case equalFold(argv[i], "type") && left >= 2:
			typ = argv[i+1]
			i += 2
		default:
			w.WriteError(errSyntax)
			return
		}
	}
	count = min(count, scanCountMax)
	f := newKeyFilter(pattern, typ)
	from, after := db.scan.resume(cursor)

	out := db.scanOut[:0]
	var last ref
	visited := int64(0)
	more := false
	db.seek(from, after, f.prefix, func(r ref) bool {
		if visited == count {
			more = true // something is left in range: not finished
			return false
		}
		visited++
		last = r
		if db.expired(r, now) {
			db.expiredScratch = append(db.expiredScratch, r)
			return true
		}
		if f.match(db, r) {
			out = append(out, r)
		}
		return true
	})
	next := uint64(0)
	if more {
		next = db.scan.cursorFor(db.keyOf(last))
	}
	w.WriteArray(2)
	w.WriteBulk(strconv.AppendUint(db.numBuf[:0], next, 10))
	w.WriteArray(len(out))
	for _, r := range out {
		w.WriteBulk(db.keyOf(r))
	}
	// Keep the buffer for the next SCAN unless a huge COUNT grew it.
	clear(out)
	if cap(out) <= scanOutKeep {
		db.scanOut = out[:0]
	} else {
		db.scanOut = nil
	}
	db.collectExpired()
}

func cmdKeys(db *DB, now int64, argv [][]byte, w Writer) {
	f := newKeyFilter(argv[1], nil)
	var out []ref
	db.seek("", false, f.prefix, func(r ref) bool {
		if db.expired(r, now) {
			db.expiredScratch = append(db.expiredScratch, r)
		} else if f.match(db, r) {
			out = append(out, r)
		}
		return true
	})
	w.WriteArray(len(out))
	for _, r := range out {
		w.WriteBulk(db.keyOf(r))
	}
	db.collectExpired()
}

func equalFold(b []byte, lower string) bool {
	return len(b) == len(lower) && strings.EqualFold(bytesAsString(b), lower)
}
