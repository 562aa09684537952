package engine

import "math"

const (
	expireNX = 1 << iota
	expireXX
	expireGT
	expireLT
)

// expireGeneric is Redis 7's expireGenericCommand: when is relative to
// base (now, or 0 for the *AT forms) in unit milliseconds (1000 for
// seconds). A deadline not after now deletes the key.
func expireGeneric(db *DB, now int64, argv [][]byte, w Writer, base int64, unit int64, cmd string) {
	flags := 0
	for _, opt := range argv[3:] {
		switch {
		case equalFold(opt, "nx"):
			flags |= expireNX
		case equalFold(opt, "xx"):
			flags |= expireXX
		case equalFold(opt, "gt"):
			flags |= expireGT
		case equalFold(opt, "lt"):
			flags |= expireLT
		default:
			w.WriteError("ERR Unsupported option " + string(opt))
			return
		}
	}
	if flags&expireNX != 0 && flags&(expireXX|expireGT|expireLT) != 0 {
		w.WriteError("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if flags&expireGT != 0 && flags&expireLT != 0 {
		w.WriteError("ERR GT and LT options at the same time are not compatible")
		return
	}
	when, ok := parseInt(argv[2])
	if !ok {
		w.WriteError(errNotInt)
		return
	}
	if unit == 1000 {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			w.WriteError(errExpireTime(cmd))
			return
		}
		when *= 1000
	}
	if when > math.MaxInt64-base {
		w.WriteError(errExpireTime(cmd))
		return
	}
	when += base
	it := db.lookup(now, argv[1])
	if it == 0 {
		w.WriteInt(0)
		return
	}
	// A key without a TTL counts as having an infinite one for GT and LT.
	cur := db.expireAt(it)
	switch {
	case flags&expireNX != 0 && cur != 0,
		flags&expireXX != 0 && cur == 0,
		flags&expireGT != 0 && (cur == 0 || when <= cur),
		flags&expireLT != 0 && cur != 0 && when >= cur:
		w.WriteInt(0)
		return
	}
	if when <= now {
		db.del(it, "del")
		w.WriteInt(1)
		return
	}
	it = db.writable(it)
	db.setExpire(it, when)
	db.bump(it)
	db.notify("expire", argv[1])
	w.WriteInt(1)
}

func cmdExpire(db *DB, now int64, argv [][]byte, w Writer) {
	expireGeneric(db, now, argv, w, now, 1000, "expire")
}

func cmdPExpire(db *DB, now int64, argv [][]byte, w Writer) {
	expireGeneric(db, now, argv, w, now, 1, "pexpire")
}

func cmdExpireAt(db *DB, now int64, argv [][]byte, w Writer) {
	expireGeneric(db, now, argv, w, 0, 1000, "expireat")
}

func cmdPExpireAt(db *DB, now int64, argv [][]byte, w Writer) {
	expireGeneric(db, now, argv, w, 0, 1, "pexpireat")
}

// ttlGeneric answers TTL, PTTL, EXPIRETIME and PEXPIRETIME: -2 for no key,
// -1 for no TTL; seconds are rounded to nearest as Redis does.
func ttlGeneric(db *DB, now int64, key []byte, w Writer, ms, abs bool) {
	it := db.peekRead(now, key) // no touch (LOOKUP_NOTOUCH), as in Redis
	if it == 0 {
		w.WriteInt(-2)
		return
	}
	at := db.expireAt(it)
	if at == 0 {
		w.WriteInt(-1)
		return
	}
	ttl := at
	if !abs {
		ttl = max(at-now, 0)
	}
	if !ms {
		ttl = (ttl + 500) / 1000
	}
	w.WriteInt(ttl)
}

func cmdTTL(db *DB, now int64, argv [][]byte, w Writer) {
	ttlGeneric(db, now, argv[1], w, false, false)
}
func cmdPTTL(db *DB, now int64, argv [][]byte, w Writer) {
	ttlGeneric(db, now, argv[1], w, true, false)
}
func cmdExpireTime(db *DB, now int64, argv [][]byte, w Writer) {
	ttlGeneric(db, now, argv[1], w, false, true)
}
func cmdPExpireTime(db *DB, now int64, argv [][]byte, w Writer) {
	ttlGeneric(db, now, argv[1], w, true, true)
}

func cmdPersist(db *DB, now int64, argv [][]byte, w Writer) {
	it := db.lookup(now, argv[1])
	if it == 0 || db.expireAt(it) == 0 {
		w.WriteInt(0)
		return
	}
	it = db.writable(it)
	db.setExpire(it, 0)
	db.bump(it)
	db.notify("persist", argv[1])
	w.WriteInt(1)
}

func init() {
	ttl := func(name string, arity int, flags Flags, run func(*DB, int64, [][]byte, Writer), cats ...string) {
		register(&Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: cats, run: run})
	}
	ttl("expire", -3, Write|Fast, cmdExpire, "@keyspace", "@write", "@fast")
	ttl("pexpire", -3, Write|Fast, cmdPExpire, "@keyspace", "@write", "@fast")
	ttl("expireat", -3, Write|Fast, cmdExpireAt, "@keyspace", "@write", "@fast")
	ttl("pexpireat", -3, Write|Fast, cmdPExpireAt, "@keyspace", "@write", "@fast")
	ttl("ttl", 2, ReadOnly|Fast, cmdTTL, "@keyspace", "@read", "@fast")
	ttl("pttl", 2, ReadOnly|Fast, cmdPTTL, "@keyspace", "@read", "@fast")
	ttl("expiretime", 2, ReadOnly|Fast, cmdExpireTime, "@keyspace", "@read", "@fast")
	ttl("pexpiretime", 2, ReadOnly|Fast, cmdPExpireTime, "@keyspace", "@read", "@fast")
	ttl("persist", 2, Write|Fast, cmdPersist, "@keyspace", "@write", "@fast")
}
