package engine

import "math"

// Flags parsed by parseSetArgs, as Redis's OBJ_* flags.
const (
	setNX = 1 << iota
	setXX
	setGet
	setKeepTTL
	setPersist
	setEX
	setPX
	setEXAT
	setPXAT
)

const setExpireFlags = setEX | setPX | setEXAT | setPXAT

// parseSetArgs is Redis's parseExtendedStringArgumentsOrReply for SET
// (forSet) and GETEX (!forSet). It returns the expire argument, if any.
func parseSetArgs(argv [][]byte, start int, forSet bool) (flags int, expire []byte, ok bool) {
	for j := start; j < len(argv); j++ {
		opt := argv[j]
		hasNext := j+1 < len(argv)
		switch {
		case equalFold(opt, "nx") && flags&setXX == 0 && forSet:
			flags |= setNX
		case equalFold(opt, "xx") && flags&setNX == 0 && forSet:
			flags |= setXX
		case equalFold(opt, "get") && forSet:
			flags |= setGet
		case equalFold(opt, "keepttl") && flags&(setPersist|setExpireFlags) == 0 && forSet:
			flags |= setKeepTTL
		case equalFold(opt, "persist") && !forSet && flags&(setExpireFlags|setKeepTTL) == 0:
			flags |= setPersist
		case equalFold(opt, "ex") && flags&(setKeepTTL|setPersist|setEXAT|setPX|setPXAT) == 0 && hasNext:
			flags |= setEX
			expire = argv[j+1]
			j++
		case equalFold(opt, "px") && flags&(setKeepTTL|setPersist|setEX|setEXAT|setPXAT) == 0 && hasNext:
			flags |= setPX
			expire = argv[j+1]
			j++
		case equalFold(opt, "exat") && flags&(setKeepTTL|setPersist|setEX|setPX|setPXAT) == 0 && hasNext:
			flags |= setEXAT
			expire = argv[j+1]
			j++
		case equalFold(opt, "pxat") && flags&(setKeepTTL|setPersist|setEX|setEXAT|setPX) == 0 && hasNext:
			flags |= setPXAT
			expire = argv[j+1]
			j++
		default:
			return 0, nil, false
		}
	}
	return flags, expire, true
}

// expireMillis is Redis's getExpireMillisecondsOrReply: a positive
// duration or timestamp in the unit the flags say, made absolute.
func expireMillis(now int64, arg []byte, flags int, cmd string) (int64, string) {
	ms, ok := parseInt(arg)
	if !ok {
		return 0, errNotInt
	}
	seconds := flags&(setEX|setEXAT) != 0
	if ms <= 0 || (seconds && ms > math.MaxInt64/1000) {
		return 0, errExpireTime(cmd)
	}
	if seconds {
		ms *= 1000
	}
	if flags&(setEX|setPX) != 0 {
		ms += now // wraps on overflow, caught below as in Redis
	}
	if ms <= 0 {
		return 0, errExpireTime(cmd)
	}
	return ms, ""
}

// setString stores val at key as SET does without options: a new key, or
// the old one overwritten in place (dropping its TTL unless keepTTL).
func (db *DB) setString(now int64, key, val []byte, keepTTL bool) ref {
	return db.setStringAt(db.lookup(now, key), key, val, keepTTL)
}

// setStringAt is setString for a caller that already looked the key up
// (it is the live key or 0), sparing a second hash of the key.
func (db *DB) setStringAt(it ref, key, val []byte, keepTTL bool) ref {
	keepAccess := uint32(0)
	keepExpire := int64(0)
	if it != 0 && db.typeOf(it) != TypeString {
		// Redis overwrites the value of the same key (dbOverwrite), which
		// keeps an LFU counter: so does the replacing key here. It keeps
		// the key's TTL too under KEEPTTL, whatever the old type was.
		keepAccess = db.rec(it).access
		if keepTTL {
			keepExpire = db.expireAt(it)
		}
		db.remove(it)
		it = 0
	}
	if it == 0 {
		it = db.add(key, TypeString, val, keepExpire)
		if keepAccess != 0 && db.acc.lfu {
			db.rec(it).access = keepAccess
		}
	} else {
		it = db.writable(it)
		db.setValue(it, val)
		if !keepTTL && db.expireAt(it) != 0 {
			db.setExpire(it, 0)
		}
		db.rec(it).strEnc = strEncAuto
		db.bump(it)
	}
	db.notify("set", key)
	return it
}

// setReply says how a SET-like command answers: SET says OK or nil,
// SETNX says 1 or 0.
type setReply bool

const (
	replyOK  setReply = false
	replyInt setReply = true
)

func (db *DB) setGeneric(now int64, w Writer, flags int, key, val, expire []byte, cmd string, reply setReply) {
	var ms int64
	if expire != nil {
		var msg string
		if ms, msg = expireMillis(now, expire, flags, cmd); msg != "" {
			w.WriteError(msg)
			return
		}
	}
	it := db.lookup(now, key)
	if flags&setGet != 0 {
		if it != 0 && db.typeOf(it) != TypeString {
			w.WriteError(errWrongType)
			return
		}
		// The old value goes out before it can be overwritten in place.
		if it == 0 {
			// SET ... GET reads the key first, so a miss is a keymiss.
			if db.opts.Notify != nil {
				db.opts.Notify("keymiss", key)
			}
			w.WriteNull()
		} else {
			w.WriteBulk(db.valOf(it))
		}
	}
	if (flags&setNX != 0 && it != 0) || (flags&setXX != 0 && it == 0) {
		if flags&setGet == 0 {
			if reply == replyInt {
				w.WriteInt(0)
			} else {
				w.WriteNull()
			}
		}
		return
	}
	it = db.setStringAt(it, key, val, flags&setKeepTTL != 0)
	if expire != nil {
		db.setExpire(it, ms)
		db.notify("expire", key)
	}
	if flags&setGet == 0 {
		if reply == replyInt {
			w.WriteInt(1)
		} else {
			w.WriteSimple("OK")
		}
	}
}

func cmdSet(db *DB, now int64, argv [][]byte, w Writer) {
	flags, expire, ok := parseSetArgs(argv, 3, true)
	if !ok {
		w.WriteError(errSyntax)
		return
	}
	db.setGeneric(now, w, flags, argv[1], argv[2], expire, "set", replyOK)
}

func cmdSetNX(db *DB, now int64, argv [][]byte, w Writer) {
	db.setGeneric(now, w, setNX, argv[1], argv[2], nil, "setnx", replyInt)
}

func cmdSetEX(db *DB, now int64, argv [][]byte, w Writer) {
	db.setGeneric(now, w, setEX, argv[1], argv[3], argv[2], "setex", replyOK)
}

func cmdPSetEX(db *DB, now int64, argv [][]byte, w Writer) {
	db.setGeneric(now, w, setPX, argv[1], argv[3], argv[2], "psetex", replyOK)
}

// lookupString finds a live string key; it writes WRONGTYPE and returns
// ok=false when the key holds another type.
func (db *DB) lookupString(now int64, key []byte, w Writer) (it ref, ok bool) {
	it = db.lookup(now, key)
	if it != 0 && db.typeOf(it) != TypeString {
		w.WriteError(errWrongType)
		return 0, false
	}
	return it, true
}

// lookupStringRead is lookupString for commands that read the key: a miss
// raises "keymiss" (see lookupRead).
func (db *DB) lookupStringRead(now int64, key []byte, w Writer) (it ref, ok bool) {
	it, ok = db.lookupString(now, key, w)
	if ok && it == 0 && db.opts.Notify != nil {
		db.opts.Notify("keymiss", key)
	}
	return it, ok
}

func cmdGet(db *DB, now int64, argv [][]byte, w Writer) {
	it, ok := db.lookupStringRead(now, argv[1], w)
	if !ok {
		return
	}
	if it == 0 {
		w.WriteNull()
		return
	}
	w.WriteBulk(db.valOf(it))
}

func cmdMGet(db *DB, now int64, argv [][]byte, w Writer) {
	w.WriteArray(len(argv) - 1)
	for _, k := range argv[1:] {
		it := db.lookupRead(now, k)
		if it == 0 || db.typeOf(it) != TypeString {
			w.WriteNull()
			continue
		}
		w.WriteBulk(db.valOf(it))
	}
}

func cmdMSet(db *DB, now int64, argv [][]byte, w Writer) {
	if len(argv)%2 == 0 {
		w.WriteError("ERR wrong number of arguments for 'mset' command")
		return
	}
	for i := 1; i < len(argv); i += 2 {
		db.setString(now, argv[i], argv[i+1], false)
	}
	w.WriteSimple("OK")
}

func cmdMSetNX(db *DB, now int64, argv [][]byte, w Writer) {
	if len(argv)%2 == 0 {
		w.WriteError("ERR wrong number of arguments for 'msetnx' command")
		return
	}
	for i := 1; i < len(argv); i += 2 {
		if db.lookup(now, argv[i]) != 0 {
			w.WriteInt(0)
			return
		}
	}
	for i := 1; i < len(argv); i += 2 {
		db.setString(now, argv[i], argv[i+1], false)
	}
	w.WriteInt(1)
}

func cmdGetSet(db *DB, now int64, argv [][]byte, w Writer) {
	it, ok := db.lookupStringRead(now, argv[1], w)
	if !ok {
		return
	}
	if it == 0 {
		w.WriteNull()
	} else {
		w.WriteBulk(db.valOf(it))
	}
	db.setStringAt(it, argv[1], argv[2], false)
}

func cmdGetDel(db *DB, now int64, argv [][]byte, w Writer) {
	it, ok := db.lookupStringRead(now, argv[1], w)
	if !ok {
		return
	}
	if it == 0 {
		w.WriteNull()
		return
	}
	w.WriteBulk(db.valOf(it))
	db.del(it, "del")
}

func cmdGetEx(db *DB, now int64, argv [][]byte, w Writer) {
	flags, expire, ok := parseSetArgs(argv, 2, false)
	if !ok {
		w.WriteError(errSyntax)
		return
	}
	it, ok := db.lookupStringRead(now, argv[1], w)
	if !ok {
		return
	}
	if it == 0 {
		w.WriteNull()
		return
	}
	var ms int64
	if expire != nil {
		var msg string
		if ms, msg = expireMillis(now, expire, flags, "getex"); msg != "" {
			w.WriteError(msg)
			return
		}
	}
	w.WriteBulk(db.valOf(it))
	switch {
	case flags&(setEXAT|setPXAT) != 0 && ms <= now:
		db.del(it, "del")
	case expire != nil:
		it = db.writable(it)
		db.setExpire(it, ms)
		db.bump(it)
		db.notify("expire", argv[1])
	case flags&setPersist != 0 && db.expireAt(it) != 0:
		it = db.writable(it)
		db.setExpire(it, 0)
		db.bump(it)
		db.notify("persist", argv[1])
	}
}

func cmdStrlen(db *DB, now int64, argv [][]byte, w Writer) {
	it, ok := db.lookupStringRead(now, argv[1], w)
	if !ok {
		return
	}
	if it == 0 {
		w.WriteInt(0)
		return
	}
	w.WriteInt(int64(db.rec(it).vlen))
}

func cmdAppend(db *DB, now int64, argv [][]byte, w Writer) {
	it, ok := db.lookupString(now, argv[1], w)
	if !ok {
		return
	}
	if it == 0 {
		it = db.add(argv[1], TypeString, argv[2], 0)
	} else {
		n := int64(db.rec(it).vlen)
		if n+int64(len(argv[2])) > db.opts.ProtoMaxBulkLen {
			w.WriteError(errTooBig)
			return
		}
		it = db.writable(it)
		copy(db.resizeValue(it, int(n)+len(argv[2]))[n:], argv[2])
		db.rec(it).strEnc = strEncRaw
		db.bump(it)
	}
	db.notify("append", argv[1])
	w.WriteInt(int64(db.rec(it).vlen))
}

func cmdGetRange(db *DB, now int64, argv [][]byte, w Writer) {
	start, ok1 := parseInt(argv[2])
	end, ok2 := parseInt(argv[3])
	if !ok1 || !ok2 {
		w.WriteError(errNotInt)
		return
	}
	it, ok := db.lookupStringRead(now, argv[1], w)
	if !ok {
		return
	}
	if it == 0 {
		w.WriteBulk(nil)
		return
	}
	val := db.valOf(it)
	n := int64(len(val))
	if start < 0 && end < 0 && start > end {
		w.WriteBulk(nil)
		return
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start = max(start, 0)
	end = max(end, 0)
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		w.WriteBulk(nil)
		return
	}
	w.WriteBulk(val[start : end+1])
}

func cmdSetRange(db *DB, now int64, argv [][]byte, w Writer) {
	offset, ok := parseInt(argv[2])
	if !ok {
		w.WriteError(errNotInt)
		return
	}
	if offset < 0 {
		w.WriteError(errOffset)
		return
	}
	val := argv[3]
	it, ok := db.lookupString(now, argv[1], w)
	if !ok {
		return
	}
	if len(val) == 0 {
		if it == 0 {
			w.WriteInt(0)
		} else {
			w.WriteInt(int64(db.rec(it).vlen))
		}
		return
	}
	if offset > db.opts.ProtoMaxBulkLen-int64(len(val)) {
		w.WriteError(errTooBig)
		return
	}
	end := int(offset) + len(val)
	if it == 0 {
		it = db.add(argv[1], TypeString, nil, 0)
	} else {
		it = db.writable(it)
	}
	n := int(db.rec(it).vlen)
	var v []byte
	if end > n {
		v = db.resizeValue(it, end)
		clear(v[n:])
	} else {
		v = db.valOf(it)
	}
	copy(v[offset:], val)
	db.rec(it).strEnc = strEncRaw
	db.bump(it)
	db.notify("setrange", argv[1])
	w.WriteInt(int64(db.rec(it).vlen))
}

func init() {
	str := func(name string, arity int, flags Flags, run func(*DB, int64, [][]byte, Writer), cats ...string) {
		register(&Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: cats, run: run})
	}
	str("get", 2, ReadOnly|Fast, cmdGet, "@read", "@string", "@fast")
	str("set", -3, Write|DenyOOM, cmdSet, "@write", "@string", "@slow")
	str("setnx", 3, Write|DenyOOM|Fast, cmdSetNX, "@write", "@string", "@fast")
	str("setex", 4, Write|DenyOOM, cmdSetEX, "@write", "@string", "@slow")
	str("psetex", 4, Write|DenyOOM, cmdPSetEX, "@write", "@string", "@slow")
	str("getset", 3, Write|DenyOOM|Fast, cmdGetSet, "@write", "@string", "@fast")
	str("getdel", 2, Write|Fast, cmdGetDel, "@write", "@string", "@fast")
	str("getex", -2, Write|Fast, cmdGetEx, "@write", "@string", "@fast")
	str("strlen", 2, ReadOnly|Fast, cmdStrlen, "@read", "@string", "@fast")
	str("append", 3, Write|DenyOOM|Fast, cmdAppend, "@write", "@string", "@fast")
	str("getrange", 4, ReadOnly, cmdGetRange, "@read", "@string", "@slow")
	str("substr", 4, ReadOnly, cmdGetRange, "@read", "@string", "@slow")
	str("setrange", 4, Write|DenyOOM, cmdSetRange, "@write", "@string", "@slow")
	register(&Command{Name: "mget", Arity: -2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: -1, Step: 1,
		Categories: []string{"@read", "@string", "@fast"}, run: cmdMGet})
	register(&Command{Name: "mset", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: -1, Step: 2,
		Categories: []string{"@write", "@string", "@slow"}, run: cmdMSet})
	register(&Command{Name: "msetnx", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: -1, Step: 2,
		Categories: []string{"@write", "@string", "@slow"}, run: cmdMSetNX})
}
