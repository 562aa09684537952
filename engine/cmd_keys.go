package engine

import (
	"math"

	"github.com/keel-db/keel/seam"
)

func cmdDel(db *DB, now int64, argv [][]byte, w Writer) {
	n := int64(0)
	for _, k := range argv[1:] {
		if it := db.lookup(now, k); it != 0 {
			db.del(it, "del")
			n++
		}
	}
	w.WriteInt(n)
}

func cmdExists(db *DB, now int64, argv [][]byte, w Writer) {
	n := int64(0)
	for _, k := range argv[1:] {
		if db.peekRead(now, k) != 0 { // EXISTS does not touch (LOOKUP_NOTOUCH)
			n++
		}
	}
	w.WriteInt(n)
}

// cmdTouch is EXISTS that records an access, as TOUCH is for: Redis's
// touchCommand looks each key up without LOOKUP_NOTOUCH.
func cmdTouch(db *DB, now int64, argv [][]byte, w Writer) {
	n := int64(0)
	for _, k := range argv[1:] {
		if db.lookupRead(now, k) != 0 {
			n++
		}
	}
	w.WriteInt(n)
}

func cmdType(db *DB, now int64, argv [][]byte, w Writer) {
	it := db.peekRead(now, argv[1]) // TYPE does not touch (LOOKUP_NOTOUCH)
	if it == 0 {
		w.WriteSimple("none")
		return
	}
	w.WriteSimple(db.typeOf(it).String())
}

func renameGeneric(db *DB, now int64, argv [][]byte, w Writer, nx bool) {
	src, dst := argv[1], argv[2]
	it := db.lookup(now, src)
	if it == 0 {
		w.WriteError(errNoSuchKey)
		return
	}
	if string(src) == string(dst) {
		if nx {
			w.WriteInt(0)
		} else {
			w.WriteSimple("OK")
		}
		return
	}
	if old := db.lookup(now, dst); old != 0 {
		if nx {
			w.WriteInt(0)
			return
		}
		db.remove(old)
	}
	// The value is copied into the new key's cell before the old key (and
	// its cell) is freed; a collection's trees move with it.
	rc := db.rec(it)
	expireAt, typ, strEnc, access := db.expireAt(it), rc.typ, rc.strEnc, rc.access
	nr := db.addSilent(dst, typ, db.valOf(it), expireAt)
	// Redis moves the object itself: its access metadata goes with it.
	db.rec(nr).strEnc, db.rec(nr).access = strEnc, access
	db.removeKey(it, false)
	// Redis's order: dbAdd(dst) raises "new", then rename_from, rename_to.
	db.notify("new", dst)
	db.notify("rename_from", src)
	db.notify("rename_to", dst)
	if typ == TypeList || typ == TypeZSet {
		db.ready(dst)
	}
	if nx {
		w.WriteInt(1)
	} else {
		w.WriteSimple("OK")
	}
}

func cmdRename(db *DB, now int64, argv [][]byte, w Writer)   { renameGeneric(db, now, argv, w, false) }
func cmdRenameNX(db *DB, now int64, argv [][]byte, w Writer) { renameGeneric(db, now, argv, w, true) }

func cmdCopy(db *DB, now int64, argv [][]byte, w Writer) {
	replace := false
	for j := 3; j < len(argv); j++ {
		switch {
		case equalFold(argv[j], "replace"):
			replace = true
		case equalFold(argv[j], "db") && j+1 < len(argv):
			id, ok := parseInt(argv[j+1])
			if !ok || id < math.MinInt32 || id > math.MaxInt32 {
				w.WriteError(errNotInt)
				return
			}
			if id != 0 {
				// keel has one database per node (databases 1).
				w.WriteError(errDBIndex)
				return
			}
			j++
		default:
			w.WriteError(errSyntax)
			return
		}
	}
	src, dst := argv[1], argv[2]
	if string(src) == string(dst) {
		w.WriteError(errSameObject)
		return
	}
	it := db.lookup(now, src)
	if it == 0 {
		w.WriteInt(0)
		return
	}
	if old := db.lookup(now, dst); old != 0 {
		if !replace {
			w.WriteInt(0)
			return
		}
		db.remove(old)
	}
	rc := db.rec(it)
	typ, strEnc := rc.typ, rc.strEnc
	nr := db.add(dst, typ, db.copyValue(it), db.expireAt(it))
	db.rec(nr).strEnc = copyStrEnc(strEnc)
	db.notify("copy_to", dst)
	if typ == TypeList || typ == TypeZSet {
		db.ready(dst)
	}
	w.WriteInt(1)
}

// expireDue removes every key already expired at the DB's clock, so that
// commands that count or sample the keyspace see only live keys. The work
// is what active expiry would have done anyway.
func (db *DB) expireDue() {
	db.ActiveExpire(db.clock, math.MaxInt)
}

// randomKeyTriesMax bounds how many expired keys RANDOMKEY collects by
// sampling before it collects every due key at once.
const randomKeyTriesMax = 16

// randomDrawsMax bounds the slot draws of one pick: the point index is
// about 1/24 full at least (a table shrinks under 1/16 full, and the old
// table of a shrink still draining is at most 4× the new one), so 1024
// draws all miss with probability under 1e-18.
const randomDrawsMax = 1024

// randomRef picks a key (the DB must not be empty). Drawing positions of
// the point index until one holds a key picks every key with the same
// probability; in the unlikely case every draw misses, the first key after
// the last draw is taken, which is no longer exactly uniform.
func (db *DB) randomRef() ref { return db.randomRefFrom(db.opts.Rand) }

// randomRefFrom is randomRef drawing from rnd.
func (db *DB) randomRefFrom(rnd seam.Rand) ref {
	n := db.index.positions()
	i := 0
	for d := 0; d < randomDrawsMax; d++ {
		i = int(rnd.Uint64() % uint64(n))
		if r := db.index.entry(i); r != 0 {
			return r
		}
	}
	for db.index.entry(i) == 0 {
		i = (i + 1) % n
	}
	return db.index.entry(i)
}

func cmdRandomKey(db *DB, now int64, argv [][]byte, w Writer) {
	// Rejection sampling stays uniform over live keys; expired picks are
	// collected on the way.
	for tries := 0; db.Len() > 0; tries++ {
		if tries > 2*randomKeyTriesMax && db.localRead {
			break // only keys a local read hides but may not collect are left
		}
		if tries == randomKeyTriesMax {
			db.expireDue()
			continue
		}
		it := db.randomRef()
		if db.expired(it, now) {
			db.expireItem(it)
			continue
		}
		w.WriteBulk(db.keyOf(it))
		return
	}
	w.WriteNull()
}

func cmdDBSize(db *DB, now int64, argv [][]byte, w Writer) {
	db.expireDue()
	w.WriteInt(int64(db.Len()))
}

func cmdFlush(db *DB, now int64, argv [][]byte, w Writer) {
	switch {
	case len(argv) == 1:
	case len(argv) == 2 && (equalFold(argv[1], "sync") || equalFold(argv[1], "async")):
	default:
		w.WriteError(errSyntax)
		return
	}
	db.Reset()
	w.WriteSimple("OK")
}

func init() {
	keys := func(name string, arity int, flags Flags, first, last int, run func(*DB, int64, [][]byte, Writer), cats ...string) {
		step := 0
		if first != 0 {
			step = 1
		}
		register(&Command{Name: name, Arity: arity, Flags: flags, FirstKey: first, LastKey: last, Step: step,
			Categories: cats, run: run})
	}
	keys("del", -2, Write, 1, -1, cmdDel, "@keyspace", "@write", "@slow")
	keys("unlink", -2, Write|Fast, 1, -1, cmdDel, "@keyspace", "@write", "@fast")
	keys("exists", -2, ReadOnly|Fast, 1, -1, cmdExists, "@keyspace", "@read", "@fast")
	keys("touch", -2, ReadOnly|Fast, 1, -1, cmdTouch, "@keyspace", "@read", "@fast")
	keys("type", 2, ReadOnly|Fast, 1, 1, cmdType, "@keyspace", "@read", "@fast")
	keys("rename", 3, Write, 1, 2, cmdRename, "@keyspace", "@write", "@slow")
	keys("renamenx", 3, Write|Fast, 1, 2, cmdRenameNX, "@keyspace", "@write", "@fast")
	keys("copy", -3, Write|DenyOOM, 1, 2, cmdCopy, "@keyspace", "@write", "@slow")
	keys("keys", 2, ReadOnly, 0, 0, cmdKeys, "@keyspace", "@read", "@slow", "@dangerous")
	keys("scan", -2, ReadOnly, 0, 0, cmdScan, "@keyspace", "@read", "@slow")
	keys("randomkey", 1, ReadOnly, 0, 0, cmdRandomKey, "@keyspace", "@read", "@slow")
	keys("dbsize", 1, ReadOnly|Fast, 0, 0, cmdDBSize, "@keyspace", "@read", "@fast")
	keys("flushall", -1, Write, 0, 0, cmdFlush, "@keyspace", "@write", "@slow", "@dangerous")
	keys("flushdb", -1, Write, 0, 0, cmdFlush, "@keyspace", "@write", "@slow", "@dangerous")
}
