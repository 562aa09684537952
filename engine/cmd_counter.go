package engine

import (
	"math"
	"strconv"
)

// incrBy adds incr to the integer at key, rewriting the decimal digits in
// the value's own buffer (no allocation once the key exists).
func (db *DB) incrBy(now int64, key []byte, incr int64, w Writer) {
	it, ok := db.lookupString(now, key, w)
	if !ok {
		return
	}
	var old int64
	if it != 0 {
		if old, ok = parseInt(db.valOf(it)); !ok {
			w.WriteError(errNotInt)
			return
		}
	}
	if (incr < 0 && old < 0 && incr < math.MinInt64-old) ||
		(incr > 0 && old > 0 && incr > math.MaxInt64-old) {
		w.WriteError(errOverflow)
		return
	}
	v := old + incr
	digits := strconv.AppendInt(db.numBuf[:0], v, 10)
	if it == 0 {
		it = db.add(key, TypeString, digits, 0)
	} else {
		it = db.writable(it)
		db.setValue(it, digits)
		db.rec(it).strEnc = strEncAuto
		db.bump(it)
	}
	db.notify("incrby", key)
	w.WriteInt(v)
}

func cmdIncr(db *DB, now int64, argv [][]byte, w Writer) { db.incrBy(now, argv[1], 1, w) }
func cmdDecr(db *DB, now int64, argv [][]byte, w Writer) { db.incrBy(now, argv[1], -1, w) }

func cmdIncrBy(db *DB, now int64, argv [][]byte, w Writer) {
	incr, ok := parseInt(argv[2])
	if !ok {
		w.WriteError(errNotInt)
		return
	}
	db.incrBy(now, argv[1], incr, w)
}

func cmdDecrBy(db *DB, now int64, argv [][]byte, w Writer) {
	incr, ok := parseInt(argv[2])
	if !ok {
		w.WriteError(errNotInt)
		return
	}
	if incr == math.MinInt64 {
		w.WriteError(errDecrOverflow)
		return
	}
	db.incrBy(now, argv[1], -incr, w)
}

func cmdIncrByFloat(db *DB, now int64, argv [][]byte, w Writer) {
	it, ok := db.lookupString(now, argv[1], w)
	if !ok {
		return
	}
	var cur longDouble
	if it != 0 {
		if cur, ok = parseLongDouble(db.valOf(it)); !ok {
			w.WriteError(errNotFloat)
			return
		}
	} else {
		cur = longDoubleZero()
	}
	incr, ok := parseLongDouble(argv[2])
	if !ok {
		w.WriteError(errNotFloat)
		return
	}
	sum, ok := cur.add(incr)
	if !ok {
		w.WriteError(errNaNInf)
		return
	}
	digits := sum.appendHuman(db.numBuf[:0])
	if it == 0 {
		it = db.add(argv[1], TypeString, digits, 0)
	} else {
		it = db.writable(it)
		db.setValue(it, digits)
		db.bump(it)
	}
	// Redis stores the result as a new string object: embstr when short,
	// even when it reads as an integer.
	if len(digits) <= 44 {
		db.rec(it).strEnc = strEncEmbstr
	} else {
		db.rec(it).strEnc = strEncRaw
	}
	db.notify("incrbyfloat", argv[1])
	w.WriteBulk(db.valOf(it))
}

func init() {
	ctr := func(name string, arity int, run func(*DB, int64, [][]byte, Writer)) {
		register(&Command{Name: name, Arity: arity, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"@write", "@string", "@fast"}, run: run})
	}
	ctr("incr", 2, cmdIncr)
	ctr("decr", 2, cmdDecr)
	ctr("incrby", 3, cmdIncrBy)
	ctr("decrby", 3, cmdDecrBy)
	ctr("incrbyfloat", 3, cmdIncrByFloat)
}
