package engine

import (
	"encoding/binary"
	"strconv"
)

// Collections (lists, sets, hashes, sorted sets) keep their value in the
// key's own cell, like a string: the first byte names the encoding.
//
//   - Small collections are packed there whole ("packs", Redis's listpack
//     and intset): [enc][u16 count][entries], an entry being one field
//     [uvarint len][bytes] (list element, set member), two (hash field,
//     value), or a field and an 8-byte score (sorted set, ordered by score
//     then member). A list's pack also keeps the size Redis's listpack
//     would have ([enc][u16 count][u32 lpBytes]), which decides when it
//     becomes a quicklist as in Redis 7.2. An intset is
//     [enc][width][u16 count][ints, width bytes each, ascending].
//   - Past Redis's thresholds the cell holds a small header naming a
//     counted B+tree (tree.go): [enc][u32 root][u64 count] (a list adds
//     its listpack-size estimate; a sorted set has two trees, by member
//     and by score).
//
// Packs are rewritten whole on change, as Redis rewrites a listpack; they
// are at most a few kilobytes by the thresholds.
const (
	encListpackList byte = iota + 1
	encQuicklist
	encIntset
	encListpackSet
	encHashtableSet
	encListpackHash
	encHashtable
	encListpackZSet
	encSkiplist
)

// encodingName is what OBJECT ENCODING says (Redis 7.2's names).
func encodingName(enc byte) string {
	switch enc {
	case encListpackList, encListpackSet, encListpackHash, encListpackZSet:
		return "listpack"
	case encQuicklist:
		return "quicklist"
	case encIntset:
		return "intset"
	case encHashtableSet, encHashtable:
		return "hashtable"
	case encSkiplist:
		return "skiplist"
	}
	return "unknown"
}

// Redis 7's default thresholds (CONFIG GET on 7.0.15; the set listpack
// is 7.2's), fixed here: CONFIG SET of them is not supported.
const (
	hashMaxListpackEntries = 512
	hashMaxListpackValue   = 64
	setMaxIntsetEntries    = 512
	setMaxListpackEntries  = 128
	setMaxListpackValue    = 64
	zsetMaxListpackEntries = 128
	zsetMaxListpackValue   = 64
	// listMaxListpackBytes is list-max-listpack-size -2: a list's
	// listpack may grow to 8 KiB (Redis's size of it) before it becomes a
	// quicklist, and a quicklist returns to a listpack under half that.
	listMaxListpackBytes = 8192
	// listPackCountMax bounds a list pack's entries (its u16 count): a
	// push of many empty strings (which Redis's byte rule does not stop)
	// makes a quicklist past it.
	listPackCountMax = 1<<16 - 1
)

// Offsets in the headers.
const (
	packHdrBytes     = 3 // enc, u16 count
	listPackHdrBytes = 7 // enc, u16 count, u32 lpBytes
	intsetHdrBytes   = 4 // enc, width, u16 count
	treeHdrBytes     = 13
	quickHdrBytes    = 21 // enc, root, count, u64 lpBytes
	skipHdrBytes     = 17 // enc, root by member, root by score, count
)

func packCount(v []byte) int       { return int(binary.LittleEndian.Uint16(v[1:])) }
func setPackCount(v []byte, n int) { binary.LittleEndian.PutUint16(v[1:], uint16(n)) }

// packField reads the pack field at v[o:] and returns it and the offset
// after it.
func packField(v []byte, o int) ([]byte, int) {
	n, k := uvarint(v[o:])
	o += k
	return v[o : o+int(n) : o+int(n)], o + int(n)
}

func appendPackField(dst, f []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(f)))
	return append(dst, f...)
}

// treeRoot reads the root and count of a one-tree header.
func treeRoot(v []byte) troot {
	return troot{root: nid(binary.LittleEndian.Uint32(v[1:])), count: binary.LittleEndian.Uint64(v[5:])}
}

func putTreeRoot(v []byte, t troot) {
	binary.LittleEndian.PutUint32(v[1:], uint32(t.root))
	binary.LittleEndian.PutUint64(v[5:], t.count)
}

// newTreeHeader is a one-tree header of encoding enc in db.hdr.
func (db *DB) treeHeader(enc byte, t troot) []byte {
	h := db.hdr[:treeHdrBytes]
	h[0] = enc
	putTreeRoot(h, t)
	return h
}

// encOf is the encoding byte of collection r.
func (db *DB) encOf(r ref) byte { return db.valOf(r)[0] }

// lookupType returns the live key of type typ at now, 0 when there is
// none; when it holds another type it writes WRONGTYPE and returns false.
// read says the command reads the key: a miss raises "keymiss".
func (db *DB) lookupType(now int64, key []byte, typ ValueType, w Writer, read bool) (ref, bool) {
	r := db.lookup(now, key)
	if r == 0 {
		if read {
			db.notify("keymiss", key)
		}
		return 0, true
	}
	if db.typeOf(r) != typ {
		w.WriteError(errWrongType)
		return 0, false
	}
	return r, true
}

// change makes collection r writable and records the change (WATCH), and
// returns its (possibly copied) ref. Every change to a collection starts
// here: the bump also makes the nodes written next newer than any View
// (tree.go).
func (db *DB) change(r ref) ref {
	db.reclaim()
	r = db.writable(r)
	db.bump(r)
	return r
}

// newCollection adds key holding the value v (an empty pack) and raises
// "new".
func (db *DB) newCollection(key []byte, typ ValueType, v []byte) ref {
	r := db.add(key, typ, v, 0)
	db.bump(r)
	return r
}

// dropIfEmpty deletes collection r when it has no elements left, raising
// "del" as Redis does after the command's own event, and reports whether
// it did.
func (db *DB) dropIfEmpty(r ref) bool {
	if db.collLen(r) > 0 {
		return false
	}
	db.del(r, "del")
	return true
}

// collLen is a collection's element count.
func (db *DB) collLen(r ref) int64 {
	v := db.valOf(r)
	switch v[0] {
	case encListpackList, encListpackSet, encListpackHash, encListpackZSet:
		return int64(packCount(v))
	case encIntset:
		return int64(binary.LittleEndian.Uint16(v[2:]))
	case encQuicklist, encHashtableSet, encHashtable:
		return int64(treeRoot(v).count)
	case encSkiplist:
		return int64(binary.LittleEndian.Uint64(v[9:]))
	}
	return 0
}

// freeValue frees what a collection's value names outside its cell (its
// trees), when its key goes (remove). A string or a pack has nothing.
func (db *DB) freeValue(rc *record) {
	if rc.typ == TypeString {
		return
	}
	v := db.s.valOf(rc)
	switch v[0] {
	case encQuicklist:
		t := treeRoot(v)
		db.tfree(&t, tkList)
	case encHashtableSet:
		t := treeRoot(v)
		db.tfree(&t, tkSet)
	case encHashtable:
		t := treeRoot(v)
		db.tfree(&t, tkHash)
	case encSkiplist:
		byMember, byScore := zsetRoots(v)
		db.tfree(&byMember, tkZMember)
		db.tfree(&byScore, tkZScore)
	}
}

// resp3 reports whether w encodes RESP3 (a Writer says so with a Proto
// method; the server's does): some replies nest pairs there, as Redis's.
func resp3(w Writer) bool {
	p, ok := w.(interface{ Proto() int })
	return ok && p.Proto() >= 3
}

// rand is the randomness of the running command: the seed ExecSeeded was
// given (a logged write: every replica draws the same), else Options.Rand.
func (db *DB) rand() uint64 {
	if db.seeded {
		return db.cmdRand.Uint64()
	}
	return db.opts.Rand.Uint64()
}

// randN is a uniform number in [0, n).
func (db *DB) randN(n uint64) uint64 {
	if n&(n-1) == 0 {
		return db.rand() & (n - 1)
	}
	// Rejection keeps it uniform.
	limit := -n % n
	for {
		x := db.rand()
		if x >= limit {
			return x % n
		}
	}
}

// randCountMax bounds the elements a random read (SRANDMEMBER,
// HRANDFIELD, ZRANDMEMBER with a negative count) may reply: Redis sends
// as many as asked and keel would buffer them all.
const randCountMax = 1 << 24

const errRandCount = "ERR count is out of range (keel replies at most 16777216 random elements)"

// ready tells the Ready hook that key received elements (a list push, a
// sorted-set add), for clients blocked on it.
func (db *DB) ready(key []byte) {
	if db.opts.Ready != nil {
		db.opts.Ready(key)
	}
}

// formatInt formats n in db.numBuf.
func (db *DB) formatInt(n int64) []byte { return strconv.AppendInt(db.numBuf[:0], n, 10) }

// copyValue returns a copy of r's value for another key (COPY): a string
// or a pack as it is, a tree-backed collection with its trees cloned.
// The result is valid until the next change to the DB's scratch.
func (db *DB) copyValue(r ref) []byte {
	v := db.valOf(r)
	if db.typeOf(r) == TypeString {
		return v
	}
	switch v[0] {
	case encQuicklist:
		h := append(db.hdr[:0], v...)
		t := db.tclone(treeRoot(v), tkList)
		putTreeRoot(h, t)
		return h
	case encHashtableSet:
		return db.treeHeader(encHashtableSet, db.tclone(treeRoot(v), tkSet))
	case encHashtable:
		return db.treeHeader(encHashtable, db.tclone(treeRoot(v), tkHash))
	case encSkiplist:
		byMember, byScore := zsetRoots(v)
		return db.zsetHeader(db.tclone(byMember, tkZMember), db.tclone(byScore, tkZScore))
	}
	return v
}

// String encodings OBJECT ENCODING reports that a value's bytes do not
// tell (record.strEnc): Redis stores APPEND's, SETRANGE's and SETBIT's
// results "raw" whatever their length, and INCRBYFLOAT's "embstr" even
// when they read as integers.
const (
	strEncAuto uint8 = iota
	strEncRaw
	strEncEmbstr
)

// copyStrEnc is the encoding a COPY of a string keeps (Redis duplicates
// the object as it is).
func copyStrEnc(e uint8) uint8 { return e }

// stringEncoding is OBJECT ENCODING of a string: "int" for an integer
// Redis would store as a long, "embstr" up to 44 bytes, else "raw".
func stringEncoding(v []byte, strEnc uint8) string {
	switch strEnc {
	case strEncRaw:
		return "raw"
	case strEncEmbstr:
		return "embstr"
	}
	if len(v) <= 20 {
		if _, ok := parseInt(v); ok {
			return "int"
		}
	}
	if len(v) <= 44 {
		return "embstr"
	}
	return "raw"
}
