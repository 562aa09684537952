package engine

import (
	"math"
	"strconv"
)

func errArity(name string) string {
	return "ERR wrong number of arguments for '" + name + "' command"
}

// hashForWrite finds hash key for a write, creating it (an empty pack,
// raising "new") when absent; ok false after WRONGTYPE.
func (db *DB) hashForWrite(now int64, key []byte, w Writer) (ref, bool) {
	r, ok := db.lookupType(now, key, TypeHash, w, false)
	if !ok {
		return 0, false
	}
	if r == 0 {
		return db.newCollection(key, TypeHash, emptyHashPack), true
	}
	return db.change(r), true
}

// hashTryConversion is Redis's hashTypeTryConversion: any argument too
// long for a pack converts the hash before anything is set.
func (db *DB) hashTryConversion(r ref, args [][]byte) {
	if db.encOf(r) != encListpackHash {
		return
	}
	for _, a := range args {
		if len(a) > hashMaxListpackValue {
			db.hashConvert(r)
			return
		}
	}
}

func hsetGeneric(db *DB, now int64, argv [][]byte, w Writer, name string) {
	if len(argv)%2 == 1 {
		w.WriteError(errArity(name))
		return
	}
	r, ok := db.hashForWrite(now, argv[1], w)
	if !ok {
		return
	}
	db.hashTryConversion(r, argv[2:])
	created := int64(0)
	for i := 2; i < len(argv); i += 2 {
		if db.hashSet(r, argv[i], argv[i+1]) {
			created++
		}
	}
	if name == "hset" {
		w.WriteInt(created)
	} else {
		w.WriteSimple("OK")
	}
	db.notify("hset", argv[1])
}

func cmdHSet(db *DB, now int64, argv [][]byte, w Writer)  { hsetGeneric(db, now, argv, w, "hset") }
func cmdHMSet(db *DB, now int64, argv [][]byte, w Writer) { hsetGeneric(db, now, argv, w, "hmset") }

func cmdHSetNX(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeHash, w, false)
	if !ok {
		return
	}
	if r != 0 {
		if _, found := db.hashGet(r, argv[2]); found {
			w.WriteInt(0)
			return
		}
		r = db.change(r)
	} else {
		r = db.newCollection(argv[1], TypeHash, emptyHashPack)
	}
	db.hashTryConversion(r, argv[2:4])
	db.hashSet(r, argv[2], argv[3])
	w.WriteInt(1)
	db.notify("hset", argv[1])
}

func cmdHGet(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeHash, w, true)
	if !ok {
		return
	}
	if r != 0 {
		if v, found := db.hashGet(r, argv[2]); found {
			w.WriteBulk(v)
			return
		}
	}
	w.WriteNull()
}

func cmdHMGet(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeHash, w, true)
	if !ok {
		return
	}
	w.WriteArray(len(argv) - 2)
	for _, f := range argv[2:] {
		if r != 0 {
			if v, found := db.hashGet(r, f); found {
				w.WriteBulk(v)
				continue
			}
		}
		w.WriteNull()
	}
}

func cmdHDel(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeHash, w, false)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	deleted := int64(0)
	changed := false
	for _, f := range argv[2:] {
		if _, found := db.hashGet(r, f); !found {
			continue
		}
		if !changed {
			r, changed = db.change(r), true
		}
		db.hashDel(r, f)
		deleted++
		if db.collLen(r) == 0 {
			break
		}
	}
	w.WriteInt(deleted)
	if deleted > 0 {
		db.notify("hdel", argv[1])
		db.dropIfEmpty(r)
	}
}

func cmdHLen(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeHash, w, true)
	if !ok {
		return
	}
	if r == 0 {
		w.WriteInt(0)
		return
	}
	w.WriteInt(db.collLen(r))
}

func cmdHStrlen(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeHash, w, true)
	if !ok {
		return
	}
	n := 0
	if r != 0 {
		v, _ := db.hashGet(r, argv[2])
		n = len(v)
	}
	w.WriteInt(int64(n))
}

func cmdHExists(db *DB, now int64, argv [][]byte, w Writer) {
	r, ok := db.lookupType(now, argv[1], TypeHash, w, true)
	if !ok {
		return
	}
	if r != 0 {
		if _, found := db.hashGet(r, argv[2]); found {
			w.WriteInt(1)
			return
		}
	}
	w.WriteInt(0)
}

const (
	hashKeys = 1 << iota
	hashVals
)

func hashGetAll(db *DB, now int64, argv [][]byte, w Writer, what int) {
	r, ok := db.lookupType(now, argv[1], TypeHash, w, true)
	if !ok {
		return
	}
	n := 0
	if r != 0 {
		n = int(db.collLen(r))
	}
	if what == hashKeys|hashVals {
		w.WriteMap(n)
	} else {
		w.WriteArray(n)
	}
	if r == 0 {
		return
	}
	db.hashEach(r, func(f, v []byte) bool {
		if what&hashKeys != 0 {
			w.WriteBulk(f)
		}
		if what&hashVals != 0 {
			w.WriteBulk(v)
		}
		return true
	})
}

func cmdHGetAll(db *DB, now int64, argv [][]byte, w Writer) {
	hashGetAll(db, now, argv, w, hashKeys|hashVals)
}
func cmdHKeys(db *DB, now int64, argv [][]byte, w Writer) { hashGetAll(db, now, argv, w, hashKeys) }
func cmdHVals(db *DB, now int64, argv [][]byte, w Writer) { hashGetAll(db, now, argv, w, hashVals) }

func cmdHIncrBy(db *DB, now int64, argv [][]byte, w Writer) {
	incr, ok := parseInt(argv[3])
	if !ok {
		w.WriteError(errNotInt)
		return
	}
	r, ok := db.lookupType(now, argv[1], TypeHash, w, false)
	if !ok {
		return
	}
	var old int64
	if r != 0 {
		if v, found := db.hashGet(r, argv[2]); found {
			if old, ok = parseInt(v); !ok {
				w.WriteError("ERR hash value is not an integer")
				return
			}
		}
	}
	if (incr < 0 && old < 0 && incr < math.MinInt64-old) || (incr > 0 && old > 0 && incr > math.MaxInt64-old) {
		w.WriteError(errOverflow)
		return
	}
	if r == 0 {
		r = db.newCollection(argv[1], TypeHash, emptyHashPack)
	} else {
		r = db.change(r)
	}
	n := old + incr
	db.hashSet(r, argv[2], strconv.AppendInt(db.numBuf[:0], n, 10))
	w.WriteInt(n)
	db.notify("hincrby", argv[1])
}

func cmdHIncrByFloat(db *DB, now int64, argv [][]byte, w Writer) {
	incr, ok := parseLongDouble(argv[3])
	if !ok {
		w.WriteError(errNotFloat)
		return
	}
	if incr.f.IsInf() {
		w.WriteError("ERR value is NaN or Infinity")
		return
	}
	r, ok := db.lookupType(now, argv[1], TypeHash, w, false)
	if !ok {
		return
	}
	cur := longDoubleZero()
	if r != 0 {
		if v, found := db.hashGet(r, argv[2]); found {
			if cur, ok = parseLongDouble(v); !ok {
				w.WriteError("ERR hash value is not a float")
				return
			}
		}
	}
	sum, ok := cur.add(incr)
	if !ok {
		w.WriteError(errNaNInf)
		return
	}
	if r == 0 {
		r = db.newCollection(argv[1], TypeHash, emptyHashPack)
	} else {
		r = db.change(r)
	}
	digits := sum.appendHuman(db.numBuf[:0])
	db.hashSet(r, argv[2], digits)
	w.WriteBulk(digits)
	db.notify("hincrbyfloat", argv[1])
}

func cmdHRandField(db *DB, now int64, argv [][]byte, w Writer) {
	if len(argv) == 2 {
		r, ok := db.lookupType(now, argv[1], TypeHash, w, true)
		if !ok {
			return
		}
		if r == 0 {
			w.WriteNull()
			return
		}
		f, _ := db.hashAt(r, db.randN(uint64(db.collLen(r))))
		w.WriteBulk(f)
		return
	}
	l, ok := parseRandCount(argv[2], w)
	if !ok {
		return
	}
	withValues := false
	if len(argv) > 4 || (len(argv) == 4 && !equalFold(argv[3], "withvalues")) {
		w.WriteError(errSyntax)
		return
	} else if len(argv) == 4 {
		withValues = true
		if l < -math.MaxInt64/2 || l > math.MaxInt64/2 {
			w.WriteError("ERR value is out of range")
			return
		}
	}
	r, ok := db.lookupType(now, argv[1], TypeHash, w, true)
	if !ok {
		return
	}
	if r == 0 || l == 0 {
		w.WriteArray(0)
		return
	}
	size := uint64(db.collLen(r))
	nested := withValues && resp3(w)
	writeOne := func(f, v []byte) {
		if nested {
			w.WriteArray(2)
		}
		w.WriteBulk(f)
		if withValues {
			w.WriteBulk(v)
		}
	}
	replyLen := func(n int) {
		if withValues && !nested {
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
			writeOne(db.hashAt(r, db.randN(size)))
		}
		return
	}
	count := uint64(l)
	if count >= size {
		replyLen(int(size))
		db.hashEach(r, func(f, v []byte) bool { writeOne(f, v); return true })
		return
	}
	replyLen(int(count))
	for _, i := range db.randDistinct(size, count) {
		writeOne(db.hashAt(r, i))
	}
}

func cmdHScan(db *DB, now int64, argv [][]byte, w Writer) { scanColl(db, now, argv, w, TypeHash) }

func init() {
	h := func(name string, arity int, flags Flags, run func(*DB, int64, [][]byte, Writer), cats ...string) {
		register(&Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: append([]string{"@hash"}, cats...), run: run})
	}
	h("hset", -4, Write|DenyOOM|Fast, cmdHSet, "@write", "@fast")
	h("hmset", -4, Write|DenyOOM|Fast, cmdHMSet, "@write", "@fast")
	h("hsetnx", 4, Write|DenyOOM|Fast, cmdHSetNX, "@write", "@fast")
	h("hget", 3, ReadOnly|Fast, cmdHGet, "@read", "@fast")
	h("hmget", -3, ReadOnly|Fast, cmdHMGet, "@read", "@fast")
	h("hdel", -3, Write|Fast, cmdHDel, "@write", "@fast")
	h("hlen", 2, ReadOnly|Fast, cmdHLen, "@read", "@fast")
	h("hstrlen", 3, ReadOnly|Fast, cmdHStrlen, "@read", "@fast")
	h("hexists", 3, ReadOnly|Fast, cmdHExists, "@read", "@fast")
	h("hgetall", 2, ReadOnly, cmdHGetAll, "@read", "@slow")
	h("hkeys", 2, ReadOnly, cmdHKeys, "@read", "@slow")
	h("hvals", 2, ReadOnly, cmdHVals, "@read", "@slow")
	h("hincrby", 4, Write|DenyOOM|Fast, cmdHIncrBy, "@write", "@fast")
	h("hincrbyfloat", 4, Write|DenyOOM|Fast, cmdHIncrByFloat, "@write", "@fast")
	h("hrandfield", -2, ReadOnly, cmdHRandField, "@read", "@slow")
	h("hscan", -3, ReadOnly, cmdHScan, "@read", "@slow")
}
