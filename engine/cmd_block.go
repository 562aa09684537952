package engine

import (
	"math/big"
	"strconv"
)

// Blocking pops: BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP. The engine never waits: it runs each as the
// non-blocking pop it becomes when served (ParseBlocking's Pop: LMPOP,
// LMOVE, RPOPLPUSH, ZMPOP), its reply reshaped to the blocking command's,
// and answers null when every key is empty — what Redis does inside
// MULTI, a script or a function. Waiting belongs to the node layer
// (node/blocking.go): it parks the client and, when a write makes a key
// ready (Options.Ready), submits Pop through the log like any write, so
// what is logged is the pop the command became.

// BlockingPop is a blocking command parsed: the pop it becomes, the keys
// it waits on and how long.
type BlockingPop struct {
	// Pop is the non-blocking command that serves it. Its reply, written
	// through Reshape, is the blocking command's.
	Pop [][]byte
	// Keys are the keys a client waits on, in the command's order (the
	// source alone for BLMOVE and BRPOPLPUSH). Type is what they must
	// hold: TypeList or TypeZSet.
	Keys [][]byte
	Type ValueType
	// TimeoutMillis is how long the client may wait: 0 forever.
	TimeoutMillis int64
	// A timeout is answered with a null array, whatever the command
	// (Redis's replyToBlockedClientTimedOut); inside MULTI BLMOVE and
	// BRPOPLPUSH answer an empty source with a null bulk, as LMOVE does.

	shape blockShape
}

type blockShape uint8

const (
	shapeSame   blockShape = iota // LMOVE, RPOPLPUSH, LMPOP, ZMPOP: the reply as it is
	shapeListOf                   // BLPOP from LMPOP COUNT 1: [key, [elem]] -> [key, elem]
	shapeZsetOf                   // BZPOPMIN from ZMPOP COUNT 1: [key, [[m, s]]] -> [key, m, s]
)

const (
	errTimeoutFloat    = "ERR timeout is not a float or out of range"
	errTimeoutNegative = "ERR timeout is negative"
)

// IsBlocking reports whether argv names one of the blocking pops.
func IsBlocking(argv [][]byte) bool {
	c := Lookup(argv[0])
	return c != nil && c.Flags&Blocking != 0
}

// ParseBlocking reads a blocking pop of the right arity, checking what
// Redis checks before it looks at any key, in its order: the timeout (and
// BLMOVE's directions). errMsg is the error reply when it fails. The
// checks Pop makes itself (numkeys, COUNT, the keys' types) are left to
// it, so that they answer with Redis's words from one place.
func ParseBlocking(argv [][]byte) (bp BlockingPop, errMsg string) {
	c := Lookup(argv[0])
	if c == nil || c.Flags&Blocking == 0 || !c.ArityOK(len(argv)) {
		return bp, "ERR not a blocking command"
	}
	last := argv[len(argv)-1]
	var timeout []byte
	switch c.Name {
	case "blpop", "brpop", "bzpopmin", "bzpopmax":
		timeout = last
		keys := argv[1 : len(argv)-1]
		var where string
		bp.Type, bp.shape, where = TypeList, shapeListOf, "LEFT"
		switch c.Name {
		case "brpop":
			where = "RIGHT"
		case "bzpopmin":
			bp.Type, bp.shape, where = TypeZSet, shapeZsetOf, "MIN"
		case "bzpopmax":
			bp.Type, bp.shape, where = TypeZSet, shapeZsetOf, "MAX"
		}
		name := "LMPOP"
		if bp.Type == TypeZSet {
			name = "ZMPOP"
		}
		bp.Pop = make([][]byte, 0, len(keys)+3)
		bp.Pop = append(bp.Pop, []byte(name), []byte(strconv.Itoa(len(keys))))
		bp.Pop = append(bp.Pop, keys...)
		bp.Pop = append(bp.Pop, []byte(where))
		bp.Keys = keys
	case "brpoplpush":
		timeout = last
		bp.Type = TypeList
		bp.Pop = [][]byte{[]byte("RPOPLPUSH"), argv[1], argv[2]}
		bp.Keys = argv[1:2]
	case "blmove":
		// Redis reads both directions before the timeout.
		if !isWhere(argv[3]) || !isWhere(argv[4]) {
			return bp, errSyntax
		}
		timeout = last
		bp.Type = TypeList
		bp.Pop = [][]byte{[]byte("LMOVE"), argv[1], argv[2], argv[3], argv[4]}
		bp.Keys = argv[1:2]
	case "blmpop", "bzmpop":
		timeout = argv[1]
		bp.Type = TypeList
		name := "LMPOP"
		if c.Name == "bzmpop" {
			bp.Type, name = TypeZSet, "ZMPOP"
		}
		bp.Pop = append([][]byte{[]byte(name)}, argv[2:]...)
	}
	ms, ok := parseTimeoutMillis(timeout)
	if !ok {
		return bp, errTimeoutFloat
	}
	if ms < 0 {
		return bp, errTimeoutNegative
	}
	bp.TimeoutMillis = ms
	if bp.Keys == nil {
		// BLMPOP, BZMPOP: the rest is LMPOP's or ZMPOP's, checked here in
		// their order, so a client is never parked on a command that
		// could not run.
		keys, msg := mpopKeys(bp.Pop, bp.Type == TypeZSet)
		if msg != "" {
			return bp, msg
		}
		bp.Keys = keys
	}
	return bp, ""
}

// mpopKeys checks LMPOP's or ZMPOP's arguments as cmdLMPop and cmdZMPop
// do and returns its keys, or the error they would answer before looking
// at a key.
func mpopKeys(pop [][]byte, zset bool) ([][]byte, string) {
	n, ok := parseInt(pop[1])
	if !ok || n < 1 {
		return nil, "ERR numkeys should be greater than 0"
	}
	if n > int64(len(pop)-3) {
		return nil, errSyntax
	}
	where := 2 + int(n)
	if zset && !equalFold(pop[where], "min") && !equalFold(pop[where], "max") || !zset && !isWhere(pop[where]) {
		return nil, errSyntax
	}
	count := false
	for j := where + 1; j < len(pop); j++ {
		if !count && equalFold(pop[j], "count") && j+1 < len(pop) {
			j++
			if v, ok := parseInt(pop[j]); !ok || v < 1 {
				return nil, "ERR count should be greater than 0"
			}
			count = true
			continue
		}
		return nil, errSyntax
	}
	return pop[2:where], ""
}

func isWhere(b []byte) bool { return equalFold(b, "left") || equalFold(b, "right") }

// parseTimeoutMillis is Redis 7.0's getTimeoutFromObjectOrReply in
// seconds: a long double (strtold's grammar), times 1000 in long double,
// truncated to a long long. A product that does not fit (1e16 seconds,
// inf) becomes LLONG_MIN as the x86 conversion makes it, so Redis calls it
// negative; -0.0001 truncates to 0, which waits forever.
func parseTimeoutMillis(b []byte) (int64, bool) {
	ld, ok := parseLongDouble(b)
	if !ok {
		return 0, false
	}
	if ld.f.IsInf() {
		return -1, true
	}
	f := newLongDouble().Mul(&ld.f, new(big.Float).SetInt64(1000))
	i, _ := f.Int(nil) // truncates toward zero
	if !i.IsInt64() {
		return -1, true
	}
	return i.Int64(), true
}

// Reshape returns a Writer that turns Pop's reply into the blocking
// command's on w.
func (bp *BlockingPop) Reshape(w Writer) Writer {
	if bp.shape == shapeSame {
		return w
	}
	return &reshaper{w: w, shape: bp.shape}
}

// reshaper drops the nesting LMPOP and ZMPOP add around their one
// element: BLPOP answers [key, elem], BZPOPMIN [key, member, score].
type reshaper struct {
	w      Writer
	shape  blockShape
	arrays int // WriteArray calls seen
}

func (r *reshaper) WriteArray(n int) {
	r.arrays++
	switch {
	case r.arrays == 1 && r.shape == shapeZsetOf:
		r.w.WriteArray(3)
	case r.arrays == 1:
		r.w.WriteArray(n)
	case r.arrays == 2, r.arrays == 3 && r.shape == shapeZsetOf:
		// the list of popped elements (one), and ZMPOP's pair
	default:
		r.w.WriteArray(n)
	}
}

func (r *reshaper) WriteSimple(s string)     { r.w.WriteSimple(s) }
func (r *reshaper) WriteError(msg string)    { r.w.WriteError(msg) }
func (r *reshaper) WriteInt(n int64)         { r.w.WriteInt(n) }
func (r *reshaper) WriteBulk(b []byte)       { r.w.WriteBulk(b) }
func (r *reshaper) WriteBulkString(s string) { r.w.WriteBulkString(s) }
func (r *reshaper) WriteNull()               { r.w.WriteNull() }
func (r *reshaper) WriteNullArray()          { r.w.WriteNullArray() }
func (r *reshaper) WriteDouble(f float64)    { r.w.WriteDouble(f) }
func (r *reshaper) WriteMap(n int)           { r.w.WriteMap(n) }
func (r *reshaper) WriteSet(n int)           { r.w.WriteSet(n) }
func (r *reshaper) Proto() int               { return writerProto(r.w) }
func writerProto(w Writer) int {
	if p, ok := w.(interface{ Proto() int }); ok {
		return p.Proto()
	}
	return 2
}

// cmdBlocking runs a blocking pop without blocking (MULTI, functions):
// the pop it becomes, or null when every key is empty.
func cmdBlocking(db *DB, now int64, argv [][]byte, w Writer) {
	bp, msg := ParseBlocking(argv)
	if msg != "" {
		w.WriteError(msg)
		return
	}
	pop := Lookup(bp.Pop[0])
	if !pop.ArityOK(len(bp.Pop)) {
		w.WriteError(errSyntax) // BLMPOP's arity holds LMPOP's
		return
	}
	pop.run(db, now, bp.Pop, bp.Reshape(w))
}

// Holds reports the type of the live value at key (ok false: none),
// changing nothing: no clock move, no expiry, no notification, so the node
// may ask outside the log whether a client blocked on key can be served.
func (db *DB) Holds(now int64, key []byte) (typ ValueType, ok bool) {
	r := db.find(key)
	if r == 0 || db.expired(r, max(now, db.clock)) {
		return 0, false
	}
	return db.typeOf(r), true
}

func init() {
	b := func(name string, arity int, flags Flags, first, last int, cats ...string) {
		register(&Command{Name: name, Arity: arity, Flags: flags | Write | Blocking, FirstKey: first, LastKey: last, Step: 1,
			Categories: append(cats, "@write", "@blocking"), run: cmdBlocking})
	}
	b("blpop", -3, 0, 1, -2, "@list", "@slow")
	b("brpop", -3, 0, 1, -2, "@list", "@slow")
	b("brpoplpush", 4, DenyOOM, 1, 2, "@list", "@slow")
	b("blmove", 6, DenyOOM, 1, 2, "@list", "@slow")
	b("bzpopmin", -3, Fast, 1, -2, "@sortedset", "@fast")
	b("bzpopmax", -3, Fast, 1, -2, "@sortedset", "@fast")
	movable := func(name, group string) {
		register(&Command{Name: name, Arity: -5, Flags: Write | Blocking,
			Categories: []string{group, "@write", "@slow", "@blocking"}, run: cmdBlocking,
			keys: func(argv [][]byte) []int { return numKeysAt(argv, 0, 2) }})
	}
	movable("blmpop", "@list")
	movable("bzmpop", "@sortedset")
}
