package engine

import "math"

func cmdDel(db *DB, now int64, argv [][]byte, w Writer) {
	n := int64(0)
	for _, k := range argv[1:] {
		if it := db.lookup(now, k); it != nil {
			db.del(it, "del")
			n++
		}
	}
	w.WriteInt(n)
}

func cmdExists(db *DB, now int64, argv [][]byte, w Writer) {
	n := int64(0)
	for _, k := range argv[1:] {
		if db.lookupRead(now, k) != nil {
			n++
		}
	}
	w.WriteInt(n)
}

func cmdType(db *DB, now int64, argv [][]byte, w Writer) {
	it := db.lookupRead(now, argv[1])
	if it == nil {
		w.WriteSimple("none")
		return
	}
	w.WriteSimple(it.typ.String())
}

func renameGeneric(db *DB, now int64, argv [][]byte, w Writer, nx bool) {
	src, dst := argv[1], argv[2]
	it := db.lookup(now, src)
	if it == nil {
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
	if old := db.lookup(now, dst); old != nil {
		if nx {
			w.WriteInt(0)
			return
		}
		db.remove(old)
	}
	val := it.val
	if db.shared(it) {
		val = append([]byte(nil), val...)
	}
	expireAt := it.expireAt
	typ := it.typ
	db.remove(it)
	moved := &item{key: string(dst), val: val, typ: typ, slot: slotNone}
	db.insertItem(moved)
	if expireAt != 0 {
		db.setExpire(moved, expireAt)
	}
	// Redis's order: dbAdd(dst) raises "new", then rename_from, rename_to.
	db.notify("new", moved.key)
	db.notify("rename_from", it.key)
	db.notify("rename_to", moved.key)
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
	if it == nil {
		w.WriteInt(0)
		return
	}
	if old := db.lookup(now, dst); old != nil {
		if !replace {
			w.WriteInt(0)
			return
		}
		db.remove(old)
	}
	db.add(dst, it.typ, it.val, it.expireAt)
	db.notify("copy_to", string(dst))
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

func cmdRandomKey(db *DB, now int64, argv [][]byte, w Writer) {
	// Rejection sampling stays uniform over live keys; expired picks are
	// collected on the way.
	for tries := 0; len(db.dense) > 0; tries++ {
		if tries == randomKeyTriesMax {
			db.expireDue()
			continue
		}
		it := db.dense[db.opts.Rand.Uint64()%uint64(len(db.dense))]
		if expired(it, now) {
			db.expireItem(it)
			continue
		}
		w.WriteBulkString(it.key)
		return
	}
	w.WriteNull()
}

func cmdDBSize(db *DB, now int64, argv [][]byte, w Writer) {
	db.expireDue()
	w.WriteInt(int64(len(db.dense)))
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
	keys("touch", -2, ReadOnly|Fast, 1, -1, cmdExists, "@keyspace", "@read", "@fast")
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
