package sim

import (
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// The typed reference model for the grammar workload (grammar.go): the
// commands of the string, key-space, hash, list, set, sorted-set and
// bitmap families as Redis 7 defines them, written plainly over Go maps
// and slices, with nothing taken from keel's engine. The oracle runs it in
// the order the node executed the commands, so every reply is determined
// however many clients share a key.
//
// Values are immutable: a command that changes a collection builds a new
// one, so state.clone (a shallow copy of the key map) is a true copy.

// vtype is a model value's type; the zero value is a string.
type vtype uint8

const (
	tString vtype = iota
	tHash
	tList
	tSet
	tZSet
)

var typeNames = [...]string{"string", "hash", "list", "set", "zset"}

var (
	wrongType   = errReply("WRONGTYPE Operation against a key holding the wrong kind of value")
	syntaxErr   = errReply("ERR syntax error")
	notIntErr   = errReply("ERR value is not an integer or out of range")
	notFloatErr = errReply("ERR value is not a valid float")
	noKeyErr    = errReply("ERR no such key")
	emptyArray  = Reply{Kind: '*'}
)

func arityErr(name string) Reply {
	return errReply("ERR wrong number of arguments for '" + name + "' command")
}

func arr(elems ...Reply) Reply { return Reply{Kind: '*', Elems: elems} }

func bulks(ss []string) Reply {
	r := Reply{Kind: '*', Elems: make([]Reply, 0, len(ss))}
	for _, s := range ss {
		r.Elems = append(r.Elems, bulkReply(s))
	}
	return r
}

// fmtFloat spells a double as Redis 7 replies it (the shortest form that
// reads back the same; the workload keeps to values exact in binary).
func fmtFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// ldAdd adds two decimal numbers as Redis's INCRBYFLOAT does: in C long
// double (a 64-bit mantissa on x86-64), printed with "%.17Lf" less its
// trailing zeros; false when the sum is not finite.
func ldAdd(a, b float64, as, bs string) (string, bool) {
	parse := func(s string, f float64) *big.Float {
		x, _, err := big.ParseFloat(s, 10, 64, big.ToNearestEven)
		if err != nil {
			x = new(big.Float).SetPrec(64).SetFloat64(f)
		}
		return x
	}
	x, y := parse(as, a), parse(bs, b)
	if x.IsInf() || y.IsInf() {
		return "", false
	}
	z := new(big.Float).SetPrec(64).SetMode(big.ToNearestEven).Add(x, y)
	if z.IsInf() {
		return "", false
	}
	t := z.Text('f', 17)
	if strings.Contains(t, ".") {
		t = strings.TrimRight(strings.TrimRight(t, "0"), ".")
	}
	if t == "-0" {
		t = "0"
	}
	return t, true
}

func dblReply(f float64) Reply { return Reply{Kind: ',', Str: fmtFloat(f)} }

// parseFloatArg reads a float argument as Redis does (inf allowed, NaN
// not).
func parseFloatArg(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || strings.ContainsAny(s, " \t_xXpP") {
		return 0, false
	}
	return f, true
}

func parseInt(s string) (int64, bool) { return isCanonicalInt(s) }

// muts helpers.
func put(k string, v kv) mutation { return mutation{key: k, v: v} }
func del(k string) mutation       { return mutation{key: k, del: true} }

// lookupT finds k alive with type t: (value, found, wrong type).
func lookupT(s state, k string, nowMs int64, t vtype) (kv, bool, bool) {
	v, ok := s.get(k, nowMs)
	if !ok {
		return kv{}, false, false
	}
	return v, true, v.typ != t
}

// stringsModel lists the commands predictG models (grammar_test.go holds
// the grammar to it).
func modelled(name string) bool {
	_, ok := gmodel[name]
	return ok
}

type gfunc func(s state, nowMs int64, a []string) expectation

var gmodel map[string]gfunc

// predictG predicts a command of the typed model; ok false when it is not
// one.
func predictG(s state, nowMs int64, argv []string) (expectation, bool) {
	f := gmodel[strings.ToLower(argv[0])]
	if f == nil {
		return expectation{}, false
	}
	return f(s, nowMs, argv), true
}

// arity is the check every command starts with (Redis's arity rule).
func arityOK(a []string, n int) bool {
	if n >= 0 {
		return len(a) == n
	}
	return len(a) >= -n
}

func init() {
	gmodel = map[string]gfunc{}
	reg := func(name string, arity int, write bool, f gfunc) {
		gmodel[name] = func(s state, nowMs int64, a []string) expectation {
			if !arityOK(a, arity) {
				return expectation{reply: arityErr(name)}
			}
			e := f(s, nowMs, a)
			if write {
				e.write = true
			}
			return e
		}
	}
	regStrings(reg)
	regKeys(reg)
	regHash(reg)
	regList(reg)
	regSet(reg)
	regZSet(reg)
	regBits(reg)
}

type regFn func(name string, arity int, write bool, f gfunc)

// --- strings ---------------------------------------------------------------

// expiryArg parses an expiry option's value into an absolute time (ms);
// "" when fine, else the error.
func expiryAt(opt, arg string, nowMs int64, cmd string) (int64, Reply, bool) {
	n, ok := parseInt(arg)
	if !ok {
		return 0, notIntErr, false
	}
	bad := errReply("ERR invalid expire time in '" + cmd + "' command")
	if n <= 0 {
		return 0, bad, false
	}
	switch opt {
	case "ex":
		if n > math.MaxInt64/1000 {
			return 0, bad, false
		}
		return nowMs + n*1000, Reply{}, true
	case "px":
		return nowMs + n, Reply{}, true
	case "exat":
		if n > math.MaxInt64/1000 {
			return 0, bad, false
		}
		return n * 1000, Reply{}, true
	}
	return n, Reply{}, true // pxat
}

func regStrings(reg regFn) {
	reg("get", 2, false, func(s state, now int64, a []string) expectation {
		v, ok, wt := lookupT(s, a[1], now, tString)
		switch {
		case wt:
			return expectation{reply: wrongType}
		case !ok:
			return expectation{reply: nullReply}
		}
		return expectation{reply: bulkReply(v.val)}
	})
	reg("mget", -2, false, func(s state, now int64, a []string) expectation {
		r := Reply{Kind: '*'}
		for _, k := range a[1:] {
			if v, ok, wt := lookupT(s, k, now, tString); ok && !wt {
				r.Elems = append(r.Elems, bulkReply(v.val))
			} else {
				r.Elems = append(r.Elems, nullReply)
			}
		}
		return expectation{reply: r}
	})
	reg("set", -3, true, func(s state, now int64, a []string) expectation {
		var nx, xx, get, keep bool
		var exp int64
		expOpt := ""
		for i := 3; i < len(a); i++ {
			o := strings.ToLower(a[i])
			switch {
			case o == "nx" && !xx:
				nx = true
			case o == "xx" && !nx:
				xx = true
			case o == "get":
				get = true
			case o == "keepttl" && expOpt == "":
				keep = true
			case (o == "ex" || o == "px" || o == "exat" || o == "pxat") && expOpt == "" && !keep && i+1 < len(a):
				expOpt = o
				i++
			default:
				return expectation{reply: syntaxErr}
			}
		}
		if expOpt != "" {
			at, er, ok := expiryAt(expOpt, a[indexOf(a, expOpt)+1], now, "set")
			if !ok {
				return expectation{reply: er}
			}
			exp = at
		}
		old, exists := s.get(a[1], now)
		if get && exists && old.typ != tString {
			return expectation{reply: wrongType}
		}
		ok := !(nx && exists) && !(xx && !exists)
		var e expectation
		switch {
		case get && exists:
			e.reply = bulkReply(old.val)
		case get:
			e.reply = nullReply
		case ok:
			e.reply = okReply
		default:
			e.reply = nullReply
		}
		if ok {
			if keep && exists {
				exp = old.exp
			}
			e.muts = []mutation{put(a[1], kv{val: a[2], exp: exp})}
		}
		return e
	})
	reg("setnx", 3, true, func(s state, now int64, a []string) expectation {
		if _, ok := s.get(a[1], now); ok {
			return expectation{reply: intReply(0)}
		}
		return expectation{reply: intReply(1), muts: []mutation{put(a[1], kv{val: a[2]})}}
	})
	setex := func(name, unit string) gfunc {
		return func(s state, now int64, a []string) expectation {
			at, er, ok := expiryAt(unit, a[2], now, name)
			if !ok {
				return expectation{reply: er}
			}
			return expectation{reply: okReply, muts: []mutation{put(a[1], kv{val: a[3], exp: at})}}
		}
	}
	reg("setex", 4, true, setex("setex", "ex"))
	reg("psetex", 4, true, setex("psetex", "px"))
	reg("getset", 3, true, func(s state, now int64, a []string) expectation {
		v, ok, wt := lookupT(s, a[1], now, tString)
		if wt {
			return expectation{reply: wrongType}
		}
		r := nullReply
		if ok {
			r = bulkReply(v.val)
		}
		return expectation{reply: r, muts: []mutation{put(a[1], kv{val: a[2]})}}
	})
	reg("getdel", 2, true, func(s state, now int64, a []string) expectation {
		v, ok, wt := lookupT(s, a[1], now, tString)
		switch {
		case wt:
			return expectation{reply: wrongType}
		case !ok:
			return expectation{reply: nullReply}
		}
		return expectation{reply: bulkReply(v.val), muts: []mutation{del(a[1])}}
	})
	reg("getex", -2, true, func(s state, now int64, a []string) expectation {
		// Redis reads the options' syntax, then the key (and its type),
		// and only then the expiry's value.
		expOpt, expArg, persist := "", "", false
		for i := 2; i < len(a); i++ {
			o := strings.ToLower(a[i])
			switch {
			case o == "persist" && expOpt == "" && !persist:
				persist = true
			case (o == "ex" || o == "px" || o == "exat" || o == "pxat") && expOpt == "" && !persist && i+1 < len(a):
				expOpt, expArg = o, a[i+1]
				i++
			default:
				return expectation{reply: syntaxErr}
			}
		}
		v, ok, wt := lookupT(s, a[1], now, tString)
		switch {
		case wt:
			return expectation{reply: wrongType}
		case !ok:
			return expectation{reply: nullReply}
		}
		var at int64
		if expOpt != "" {
			t, er, ok := expiryAt(expOpt, expArg, now, "getex")
			if !ok {
				return expectation{reply: er}
			}
			at = t
		}
		e := expectation{reply: bulkReply(v.val)}
		switch {
		case expOpt != "" && at <= now:
			e.muts = []mutation{del(a[1])}
		case expOpt != "":
			v.exp = at
			e.muts = []mutation{put(a[1], v)}
		case persist && v.exp != 0:
			v.exp = 0
			e.muts = []mutation{put(a[1], v)}
		}
		return e
	})
	reg("append", 3, true, func(s state, now int64, a []string) expectation {
		v, _, wt := lookupT(s, a[1], now, tString)
		if wt {
			return expectation{reply: wrongType}
		}
		v.val += a[2]
		return expectation{reply: intReply(int64(len(v.val))), muts: []mutation{put(a[1], v)}}
	})
	reg("strlen", 2, false, func(s state, now int64, a []string) expectation {
		v, _, wt := lookupT(s, a[1], now, tString)
		if wt {
			return expectation{reply: wrongType}
		}
		return expectation{reply: intReply(int64(len(v.val)))}
	})
	reg("getrange", 4, false, func(s state, now int64, a []string) expectation {
		st, ok1 := parseInt(a[2])
		en, ok2 := parseInt(a[3])
		if !ok1 || !ok2 {
			return expectation{reply: notIntErr}
		}
		v, _, wt := lookupT(s, a[1], now, tString)
		if wt {
			return expectation{reply: wrongType}
		}
		n := int64(len(v.val))
		if st < 0 && en < 0 && st > en {
			return expectation{reply: bulkReply("")}
		}
		if st < 0 {
			st = max(n+st, 0)
		}
		if en < 0 {
			en = max(n+en, 0)
		}
		en = min(en, n-1)
		if n == 0 || st > en {
			return expectation{reply: bulkReply("")}
		}
		return expectation{reply: bulkReply(v.val[st : en+1])}
	})
	reg("setrange", 4, true, func(s state, now int64, a []string) expectation {
		off, ok := parseInt(a[2])
		if !ok {
			return expectation{reply: notIntErr}
		}
		if off < 0 {
			return expectation{reply: errReply("ERR offset is out of range")}
		}
		v, exists, wt := lookupT(s, a[1], now, tString)
		if wt {
			return expectation{reply: wrongType}
		}
		if a[3] == "" {
			return expectation{reply: intReply(int64(len(v.val)))}
		}
		b := []byte(v.val)
		if need := int(off) + len(a[3]); need > len(b) {
			b = append(b, make([]byte, need-len(b))...)
		}
		copy(b[off:], a[3])
		if !exists {
			v = kv{}
		}
		v.val = string(b)
		return expectation{reply: intReply(int64(len(b))), muts: []mutation{put(a[1], v)}}
	})
	incr := func(s state, now int64, k string, d int64) expectation {
		v, exists, wt := lookupT(s, k, now, tString)
		if wt {
			return expectation{reply: wrongType}
		}
		var cur int64
		if exists {
			n, ok := parseInt(v.val)
			if !ok {
				return expectation{reply: notIntErr}
			}
			cur = n
		}
		if (d > 0 && cur > math.MaxInt64-d) || (d < 0 && cur < math.MinInt64-d) {
			return expectation{reply: errReply("ERR increment or decrement would overflow")}
		}
		v.val = strconv.FormatInt(cur+d, 10)
		return expectation{reply: intReply(cur + d), muts: []mutation{put(k, v)}}
	}
	reg("incr", 2, true, func(s state, now int64, a []string) expectation { return incr(s, now, a[1], 1) })
	reg("decr", 2, true, func(s state, now int64, a []string) expectation { return incr(s, now, a[1], -1) })
	reg("incrby", 3, true, func(s state, now int64, a []string) expectation {
		d, ok := parseInt(a[2])
		if !ok {
			return expectation{reply: notIntErr}
		}
		return incr(s, now, a[1], d)
	})
	reg("decrby", 3, true, func(s state, now int64, a []string) expectation {
		d, ok := parseInt(a[2])
		if !ok {
			return expectation{reply: notIntErr}
		}
		if d == math.MinInt64 {
			return expectation{reply: errReply("ERR decrement would overflow")}
		}
		return incr(s, now, a[1], -d)
	})
	reg("incrbyfloat", 3, true, func(s state, now int64, a []string) expectation {
		// Redis checks the type, then the value, then the increment.
		v, exists, wt := lookupT(s, a[1], now, tString)
		if wt {
			return expectation{reply: wrongType}
		}
		var cur float64
		if exists {
			f, ok := parseFloatArg(v.val)
			if !ok || math.IsInf(f, 0) {
				return expectation{reply: notFloatErr}
			}
			cur = f
		}
		d, ok := parseFloatArg(a[2])
		if !ok {
			return expectation{reply: notFloatErr}
		}
		curS := "0"
		if exists {
			curS = v.val
		}
		n, ok := ldAdd(cur, d, curS, a[2])
		if !ok {
			return expectation{reply: errReply("ERR increment would produce NaN or Infinity")}
		}
		v.val = n
		return expectation{reply: bulkReply(v.val), muts: []mutation{put(a[1], v)}}
	})
	reg("mset", -3, true, func(s state, now int64, a []string) expectation {
		if len(a)%2 != 1 {
			return expectation{reply: arityErr("mset")}
		}
		e := expectation{reply: okReply}
		for i := 1; i < len(a); i += 2 {
			e.muts = append(e.muts, put(a[i], kv{val: a[i+1]}))
		}
		return e
	})
	reg("msetnx", -3, true, func(s state, now int64, a []string) expectation {
		if len(a)%2 != 1 {
			return expectation{reply: arityErr("msetnx")}
		}
		for i := 1; i < len(a); i += 2 {
			if _, ok := s.get(a[i], now); ok {
				return expectation{reply: intReply(0)}
			}
		}
		e := expectation{reply: intReply(1)}
		for i := 1; i < len(a); i += 2 {
			e.muts = append(e.muts, put(a[i], kv{val: a[i+1]}))
		}
		return e
	})
}

func indexOf(a []string, lower string) int {
	for i, w := range a {
		if strings.ToLower(w) == lower {
			return i
		}
	}
	return -1
}

// --- key space ---------------------------------------------------------------

func regKeys(reg regFn) {
	delf := func(s state, now int64, a []string) expectation {
		e := expectation{}
		var n int64
		seen := map[string]bool{}
		for _, k := range a[1:] {
			if _, ok := s.get(k, now); ok && !seen[k] {
				n++
			}
			seen[k] = true
			e.muts = append(e.muts, del(k))
		}
		e.reply = intReply(n)
		return e
	}
	reg("del", -2, true, delf)
	reg("unlink", -2, true, delf)
	reg("exists", -2, false, func(s state, now int64, a []string) expectation {
		var n int64
		for _, k := range a[1:] {
			if _, ok := s.get(k, now); ok {
				n++
			}
		}
		return expectation{reply: intReply(n)}
	})
	reg("touch", -2, false, func(s state, now int64, a []string) expectation {
		var n int64
		for _, k := range a[1:] {
			if _, ok := s.get(k, now); ok {
				n++
			}
		}
		return expectation{reply: intReply(n)}
	})
	reg("type", 2, false, func(s state, now int64, a []string) expectation {
		v, ok := s.get(a[1], now)
		if !ok {
			return expectation{reply: Reply{Kind: '+', Str: "none"}}
		}
		return expectation{reply: Reply{Kind: '+', Str: typeNames[v.typ]}}
	})
	expire := func(name string, unitMs int64, abs bool) gfunc {
		return func(s state, now int64, a []string) expectation {
			n, ok := parseInt(a[2])
			if !ok {
				return expectation{reply: notIntErr}
			}
			var nx, xx, gt, lt bool
			for _, o := range a[3:] {
				switch strings.ToLower(o) {
				case "nx":
					nx = true
				case "xx":
					xx = true
				case "gt":
					gt = true
				case "lt":
					lt = true
				default:
					return expectation{reply: errReply("ERR Unsupported option " + o)}
				}
			}
			if nx && (xx || gt || lt) {
				return expectation{reply: errReply("ERR NX and XX, GT or LT options at the same time are not compatible")}
			}
			if gt && lt {
				return expectation{reply: errReply("ERR GT and LT options at the same time are not compatible")}
			}
			when := n * unitMs
			if !abs {
				when += now
			}
			v, exists := s.get(a[1], now)
			if !exists {
				return expectation{reply: intReply(0)}
			}
			switch {
			case nx && v.exp != 0, xx && v.exp == 0, gt && (v.exp == 0 || when <= v.exp), lt && v.exp != 0 && when >= v.exp:
				return expectation{reply: intReply(0)}
			}
			if when <= now {
				return expectation{reply: intReply(1), muts: []mutation{del(a[1])}}
			}
			v.exp = when
			return expectation{reply: intReply(1), muts: []mutation{put(a[1], v)}}
		}
	}
	reg("expire", -3, true, expire("expire", 1000, false))
	reg("pexpire", -3, true, expire("pexpire", 1, false))
	reg("expireat", -3, true, expire("expireat", 1000, true))
	reg("pexpireat", -3, true, expire("pexpireat", 1, true))
	reg("persist", 2, true, func(s state, now int64, a []string) expectation {
		v, ok := s.get(a[1], now)
		if !ok || v.exp == 0 {
			return expectation{reply: intReply(0)}
		}
		v.exp = 0
		return expectation{reply: intReply(1), muts: []mutation{put(a[1], v)}}
	})
	ttl := func(ms, abs bool) gfunc {
		return func(s state, now int64, a []string) expectation {
			v, ok := s.get(a[1], now)
			switch {
			case !ok:
				return expectation{reply: intReply(-2)}
			case v.exp == 0:
				return expectation{reply: intReply(-1)}
			}
			t := v.exp
			if !abs {
				t = max(v.exp-now, 0)
			}
			if !ms {
				t = (t + 500) / 1000
			}
			return expectation{reply: intReply(t)}
		}
	}
	reg("ttl", 2, false, ttl(false, false))
	reg("pttl", 2, false, ttl(true, false))
	reg("expiretime", 2, false, ttl(false, true))
	reg("pexpiretime", 2, false, ttl(true, true))
	reg("copy", -3, true, func(s state, now int64, a []string) expectation {
		replace := false
		for _, o := range a[3:] {
			if strings.ToLower(o) != "replace" {
				return expectation{reply: syntaxErr}
			}
			replace = true
		}
		if a[1] == a[2] {
			return expectation{reply: errReply("ERR source and destination objects are the same")}
		}
		v, ok := s.get(a[1], now)
		if !ok {
			return expectation{reply: intReply(0)}
		}
		if _, exists := s.get(a[2], now); exists && !replace {
			return expectation{reply: intReply(0)}
		}
		return expectation{reply: intReply(1), muts: []mutation{put(a[2], v)}}
	})
	rename := func(nx bool) gfunc {
		return func(s state, now int64, a []string) expectation {
			v, ok := s.get(a[1], now)
			if !ok {
				return expectation{reply: noKeyErr}
			}
			if a[1] == a[2] {
				if nx {
					return expectation{reply: intReply(0)}
				}
				return expectation{reply: okReply}
			}
			if _, exists := s.get(a[2], now); exists && nx {
				return expectation{reply: intReply(0)}
			}
			r := okReply
			if nx {
				r = intReply(1)
			}
			return expectation{reply: r, muts: []mutation{del(a[1]), put(a[2], v)}}
		}
	}
	reg("rename", 3, true, rename(false))
	reg("renamenx", 3, true, rename(true))
	flush := func(s state, now int64, a []string) expectation {
		for _, o := range a[1:] {
			if o := strings.ToLower(o); o != "sync" && o != "async" {
				return expectation{reply: syntaxErr}
			}
		}
		e := expectation{reply: okReply}
		keys := make([]string, 0, len(s))
		for k := range s {
			if !strings.HasPrefix(k, libKeyPrefix) { // FLUSHALL keeps functions
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			e.muts = append(e.muts, del(k))
		}
		return e
	}
	reg("flushall", -1, true, flush)
	reg("flushdb", -1, true, flush)
}

// --- hashes -------------------------------------------------------------------

func cloneHash(h map[string]string) map[string]string {
	c := make(map[string]string, len(h)+1)
	for k, v := range h {
		c[k] = v
	}
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func regHash(reg regFn) {
	hset := func(name string, ok Reply) gfunc {
		return func(s state, now int64, a []string) expectation {
			if len(a)%2 != 0 {
				return expectation{reply: arityErr(name)}
			}
			v, _, wt := lookupT(s, a[1], now, tHash)
			if wt {
				return expectation{reply: wrongType}
			}
			h := cloneHash(v.h)
			var added int64
			for i := 2; i < len(a); i += 2 {
				if _, had := h[a[i]]; !had {
					added++
				}
				h[a[i]] = a[i+1]
			}
			v.typ, v.h = tHash, h
			r := ok
			if ok.Kind == 0 {
				r = intReply(added)
			}
			return expectation{reply: r, muts: []mutation{put(a[1], v)}}
		}
	}
	reg("hset", -4, true, hset("hset", Reply{}))
	reg("hmset", -4, true, hset("hmset", okReply))
	reg("hsetnx", 4, true, func(s state, now int64, a []string) expectation {
		v, _, wt := lookupT(s, a[1], now, tHash)
		if wt {
			return expectation{reply: wrongType}
		}
		if _, had := v.h[a[2]]; had {
			return expectation{reply: intReply(0)}
		}
		h := cloneHash(v.h)
		h[a[2]] = a[3]
		v.typ, v.h = tHash, h
		return expectation{reply: intReply(1), muts: []mutation{put(a[1], v)}}
	})
	reg("hdel", -3, true, func(s state, now int64, a []string) expectation {
		v, ok, wt := lookupT(s, a[1], now, tHash)
		switch {
		case wt:
			return expectation{reply: wrongType}
		case !ok:
			return expectation{reply: intReply(0)}
		}
		h := cloneHash(v.h)
		n := deleteMembers(h, a[2:])
		if n == 0 {
			return expectation{reply: intReply(0)}
		}
		if len(h) == 0 {
			return expectation{reply: intReply(n), muts: []mutation{del(a[1])}}
		}
		v.h = h
		return expectation{reply: intReply(n), muts: []mutation{put(a[1], v)}}
	})
	reg("hincrby", 4, true, func(s state, now int64, a []string) expectation {
		d, ok := parseInt(a[3])
		if !ok {
			return expectation{reply: notIntErr}
		}
		v, _, wt := lookupT(s, a[1], now, tHash)
		if wt {
			return expectation{reply: wrongType}
		}
		var cur int64
		if old, had := v.h[a[2]]; had {
			n, ok := parseInt(old)
			if !ok {
				return expectation{reply: errReply("ERR hash value is not an integer")}
			}
			cur = n
		}
		if (d > 0 && cur > math.MaxInt64-d) || (d < 0 && cur < math.MinInt64-d) {
			return expectation{reply: errReply("ERR increment or decrement would overflow")}
		}
		h := cloneHash(v.h)
		h[a[2]] = strconv.FormatInt(cur+d, 10)
		v.typ, v.h = tHash, h
		return expectation{reply: intReply(cur + d), muts: []mutation{put(a[1], v)}}
	})
	reg("hincrbyfloat", 4, true, func(s state, now int64, a []string) expectation {
		d, ok := parseFloatArg(a[3])
		if !ok {
			return expectation{reply: notFloatErr}
		}
		v, _, wt := lookupT(s, a[1], now, tHash)
		if wt {
			return expectation{reply: wrongType}
		}
		var cur float64
		curS := "0"
		if old, had := v.h[a[2]]; had {
			f, ok := parseFloatArg(old)
			if !ok || math.IsInf(f, 0) {
				return expectation{reply: errReply("ERR hash value is not a float")}
			}
			cur, curS = f, old
		}
		n, ok := ldAdd(cur, d, curS, a[3])
		if !ok {
			return expectation{reply: errReply("ERR increment would produce NaN or Infinity")}
		}
		h := cloneHash(v.h)
		h[a[2]] = n
		v.typ, v.h = tHash, h
		return expectation{reply: bulkReply(h[a[2]]), muts: []mutation{put(a[1], v)}}
	})
	hread := func(arity int, name string, f func(h map[string]string, a []string) expectation, missing Reply) {
		reg(name, arity, false, func(s state, now int64, a []string) expectation {
			v, ok, wt := lookupT(s, a[1], now, tHash)
			switch {
			case wt:
				return expectation{reply: wrongType}
			case !ok && missing.Kind != 0:
				return expectation{reply: missing}
			}
			return f(v.h, a)
		})
	}
	hread(3, "hget", func(h map[string]string, a []string) expectation {
		if x, ok := h[a[2]]; ok {
			return expectation{reply: bulkReply(x)}
		}
		return expectation{reply: nullReply}
	}, Reply{})
	hread(-3, "hmget", func(h map[string]string, a []string) expectation {
		r := Reply{Kind: '*'}
		for _, f := range a[2:] {
			if x, ok := h[f]; ok {
				r.Elems = append(r.Elems, bulkReply(x))
			} else {
				r.Elems = append(r.Elems, nullReply)
			}
		}
		return expectation{reply: r}
	}, Reply{})
	hread(2, "hgetall", func(h map[string]string, a []string) expectation {
		r := Reply{Kind: '*'}
		for _, k := range sortedKeys(h) {
			r.Elems = append(r.Elems, bulkReply(k), bulkReply(h[k]))
		}
		return expectation{reply: r, unordered: 2}
	}, Reply{})
	hread(2, "hkeys", func(h map[string]string, a []string) expectation {
		return expectation{reply: bulks(sortedKeys(h)), unordered: 1}
	}, Reply{})
	hread(2, "hlen", func(h map[string]string, a []string) expectation {
		return expectation{reply: intReply(int64(len(h)))}
	}, Reply{})
	hread(3, "hexists", func(h map[string]string, a []string) expectation {
		if _, ok := h[a[2]]; ok {
			return expectation{reply: intReply(1)}
		}
		return expectation{reply: intReply(0)}
	}, Reply{})
	hread(3, "hstrlen", func(h map[string]string, a []string) expectation {
		return expectation{reply: intReply(int64(len(h[a[2]])))}
	}, Reply{})
}

// --- lists ---------------------------------------------------------------------

func cloneList(l []string) []string { return append([]string(nil), l...) }

// listIndex normalises a list index (negative from the end).
func listIndex(i int64, n int) int64 {
	if i < 0 {
		i += int64(n)
	}
	return i
}

func listPut(k string, v kv, l []string) mutation {
	if len(l) == 0 {
		return del(k)
	}
	v.typ, v.l = tList, l
	return put(k, v)
}

func regList(reg regFn) {
	push := func(left, onlyExisting bool) gfunc {
		return func(s state, now int64, a []string) expectation {
			v, ok, wt := lookupT(s, a[1], now, tList)
			switch {
			case wt:
				return expectation{reply: wrongType}
			case !ok && onlyExisting:
				return expectation{reply: intReply(0)}
			}
			l := cloneList(v.l)
			for _, x := range a[2:] {
				if left {
					l = append([]string{x}, l...)
				} else {
					l = append(l, x)
				}
			}
			return expectation{reply: intReply(int64(len(l))), muts: []mutation{listPut(a[1], v, l)}}
		}
	}
	reg("lpush", -3, true, push(true, false))
	reg("rpush", -3, true, push(false, false))
	reg("lpushx", -3, true, push(true, true))
	reg("rpushx", -3, true, push(false, true))
	pop := func(left bool) gfunc {
		return func(s state, now int64, a []string) expectation {
			if len(a) > 3 {
				return expectation{reply: syntaxErr}
			}
			count, hasCount := int64(1), len(a) == 3
			if hasCount {
				n, ok := parseInt(a[2])
				if !ok || n < 0 {
					return expectation{reply: errReply("ERR value is out of range, must be positive")}
				}
				count = n
			}
			v, ok, wt := lookupT(s, a[1], now, tList)
			switch {
			case wt:
				return expectation{reply: wrongType}
			case !ok && hasCount:
				return expectation{reply: nullReply}
			case !ok:
				return expectation{reply: nullReply}
			case hasCount && count == 0:
				return expectation{reply: emptyArray}
			}
			l := cloneList(v.l)
			n := min(int(count), len(l))
			var got []string
			if left {
				got, l = l[:n], l[n:]
			} else {
				for i := 0; i < n; i++ {
					got = append(got, l[len(l)-1-i])
				}
				l = l[:len(l)-n]
			}
			e := expectation{muts: []mutation{listPut(a[1], v, cloneList(l))}}
			if hasCount {
				e.reply = bulks(got)
			} else {
				e.reply = bulkReply(got[0])
			}
			return e
		}
	}
	reg("lpop", -2, true, pop(true))
	reg("rpop", -2, true, pop(false))
	lread := func(name string, arity int, f func(l []string, a []string) expectation, missing Reply) {
		reg(name, arity, false, func(s state, now int64, a []string) expectation {
			v, ok, wt := lookupT(s, a[1], now, tList)
			switch {
			case wt:
				return expectation{reply: wrongType}
			case !ok && missing.Kind != 0:
				return expectation{reply: missing}
			}
			return f(v.l, a)
		})
	}
	reg("lrange", 4, false, func(s state, now int64, a []string) expectation {
		st, ok1 := parseInt(a[2])
		en, ok2 := parseInt(a[3])
		if !ok1 || !ok2 {
			return expectation{reply: notIntErr}
		}
		v, _, wt := lookupT(s, a[1], now, tList)
		if wt {
			return expectation{reply: wrongType}
		}
		return expectation{reply: bulks(rangeOf(v.l, st, en))}
	})
	lread("llen", 2, func(l []string, a []string) expectation { return expectation{reply: intReply(int64(len(l)))} }, Reply{})
	reg("lindex", 3, false, func(s state, now int64, a []string) expectation {
		// Redis looks the key up before it reads the index.
		v, found, wt := lookupT(s, a[1], now, tList)
		switch {
		case !found:
			return expectation{reply: nullReply}
		case wt:
			return expectation{reply: wrongType}
		}
		i, ok := parseInt(a[2])
		if !ok {
			return expectation{reply: notIntErr}
		}
		i = listIndex(i, len(v.l))
		if i < 0 || i >= int64(len(v.l)) {
			return expectation{reply: nullReply}
		}
		return expectation{reply: bulkReply(v.l[i])}
	})
	reg("lset", 4, true, func(s state, now int64, a []string) expectation {
		// Redis looks the key up before it reads the index.
		v, found, wt := lookupT(s, a[1], now, tList)
		switch {
		case !found:
			return expectation{reply: noKeyErr}
		case wt:
			return expectation{reply: wrongType}
		}
		i, ok := parseInt(a[2])
		if !ok {
			return expectation{reply: notIntErr}
		}
		i = listIndex(i, len(v.l))
		if i < 0 || i >= int64(len(v.l)) {
			return expectation{reply: errReply("ERR index out of range")}
		}
		l := cloneList(v.l)
		l[i] = a[3]
		return expectation{reply: okReply, muts: []mutation{listPut(a[1], v, l)}}
	})
	reg("linsert", 5, true, func(s state, now int64, a []string) expectation {
		where := strings.ToLower(a[2])
		if where != "before" && where != "after" {
			return expectation{reply: syntaxErr}
		}
		v, found, wt := lookupT(s, a[1], now, tList)
		switch {
		case wt:
			return expectation{reply: wrongType}
		case !found:
			return expectation{reply: intReply(0)}
		}
		for i, x := range v.l {
			if x != a[3] {
				continue
			}
			if where == "after" {
				i++
			}
			l := append(append(append([]string(nil), v.l[:i]...), a[4]), v.l[i:]...)
			return expectation{reply: intReply(int64(len(l))), muts: []mutation{listPut(a[1], v, l)}}
		}
		return expectation{reply: intReply(-1)}
	})
	reg("lrem", 4, true, func(s state, now int64, a []string) expectation {
		n, ok := parseInt(a[2])
		if !ok {
			return expectation{reply: notIntErr}
		}
		v, found, wt := lookupT(s, a[1], now, tList)
		switch {
		case wt:
			return expectation{reply: wrongType}
		case !found:
			return expectation{reply: intReply(0)}
		}
		l := cloneList(v.l)
		var removed int64
		limit := n
		if limit < 0 {
			limit = -limit
		}
		if n >= 0 {
			out := l[:0:0]
			for _, x := range l {
				if x == a[3] && (limit == 0 || removed < limit) {
					removed++
					continue
				}
				out = append(out, x)
			}
			l = out
		} else {
			var out []string
			for i := len(l) - 1; i >= 0; i-- {
				if l[i] == a[3] && removed < limit {
					removed++
					continue
				}
				out = append([]string{l[i]}, out...)
			}
			l = out
		}
		if removed == 0 {
			return expectation{reply: intReply(0)}
		}
		return expectation{reply: intReply(removed), muts: []mutation{listPut(a[1], v, l)}}
	})
	reg("ltrim", 4, true, func(s state, now int64, a []string) expectation {
		st, ok1 := parseInt(a[2])
		en, ok2 := parseInt(a[3])
		if !ok1 || !ok2 {
			return expectation{reply: notIntErr}
		}
		v, found, wt := lookupT(s, a[1], now, tList)
		switch {
		case wt:
			return expectation{reply: wrongType}
		case !found:
			return expectation{reply: okReply}
		}
		l := rangeOf(v.l, st, en)
		if len(l) == len(v.l) {
			return expectation{reply: okReply}
		}
		return expectation{reply: okReply, muts: []mutation{listPut(a[1], v, l)}}
	})
	move := func(s state, now int64, src, dst string, fromLeft, toLeft bool) expectation {
		sv, found, wt := lookupT(s, src, now, tList)
		if wt {
			return expectation{reply: wrongType}
		}
		if !found {
			return expectation{reply: nullReply}
		}
		dv, _, dwt := lookupT(s, dst, now, tList)
		if dwt {
			return expectation{reply: wrongType}
		}
		l := cloneList(sv.l)
		var x string
		if fromLeft {
			x, l = l[0], l[1:]
		} else {
			x, l = l[len(l)-1], l[:len(l)-1]
		}
		muts := []mutation{listPut(src, sv, cloneList(l))}
		var d []string
		if src == dst {
			d, dv = cloneList(l), sv
		} else {
			d = cloneList(dv.l)
		}
		if toLeft {
			d = append([]string{x}, d...)
		} else {
			d = append(d, x)
		}
		muts = append(muts, listPut(dst, dv, d))
		return expectation{reply: bulkReply(x), muts: muts}
	}
	side := func(w string) (bool, bool) {
		switch strings.ToLower(w) {
		case "left":
			return true, true
		case "right":
			return false, true
		}
		return false, false
	}
	reg("lmove", 5, true, func(s state, now int64, a []string) expectation {
		fl, ok1 := side(a[3])
		tl, ok2 := side(a[4])
		if !ok1 || !ok2 {
			return expectation{reply: syntaxErr}
		}
		return move(s, now, a[1], a[2], fl, tl)
	})
	reg("rpoplpush", 3, true, func(s state, now int64, a []string) expectation {
		return move(s, now, a[1], a[2], false, true)
	})
	reg("lmpop", -4, true, func(s state, now int64, a []string) expectation {
		n, ok := parseInt(a[1])
		if !ok || n <= 0 {
			return expectation{reply: errReply("ERR numkeys should be greater than 0")}
		}
		if int64(len(a)) < 3+n {
			return expectation{reply: syntaxErr}
		}
		keys := a[2 : 2+n]
		rest := a[2+n:]
		left, ok := side(rest[0])
		if !ok {
			return expectation{reply: syntaxErr}
		}
		count := int64(1)
		rest = rest[1:]
		if len(rest) > 0 {
			if len(rest) != 2 || strings.ToLower(rest[0]) != "count" {
				return expectation{reply: syntaxErr}
			}
			c, ok := parseInt(rest[1])
			if !ok || c <= 0 {
				return expectation{reply: errReply("ERR count should be greater than 0")}
			}
			count = c
		}
		for _, k := range keys {
			v, found, wt := lookupT(s, k, now, tList)
			if wt {
				return expectation{reply: wrongType}
			}
			if !found {
				continue
			}
			l := cloneList(v.l)
			m := min(int(count), len(l))
			var got []string
			if left {
				got, l = l[:m], l[m:]
			} else {
				for i := 0; i < m; i++ {
					got = append(got, l[len(l)-1-i])
				}
				l = l[:len(l)-m]
			}
			return expectation{reply: arr(bulkReply(k), bulks(got)), muts: []mutation{listPut(k, v, cloneList(l))}}
		}
		return expectation{reply: nullReply}
	})
}

// rangeOf is LRANGE's slice of l (Redis's clamping of start and stop).
func rangeOf(l []string, st, en int64) []string {
	n := int64(len(l))
	if st < 0 {
		st = max(n+st, 0)
	}
	if en < 0 {
		en = n + en
	}
	en = min(en, n-1)
	if st > en || st >= n {
		return []string{}
	}
	return cloneList(l[st : en+1])
}

// --- sets --------------------------------------------------------------------------

func cloneSet(m map[string]struct{}) map[string]struct{} {
	c := make(map[string]struct{}, len(m)+1)
	for k := range m {
		c[k] = struct{}{}
	}
	return c
}

func setPut(k string, v kv, m map[string]struct{}) mutation {
	if len(m) == 0 {
		return del(k)
	}
	v.typ, v.s = tSet, m
	return put(k, v)
}

func regSet(reg regFn) {
	reg("sadd", -3, true, func(s state, now int64, a []string) expectation {
		v, _, wt := lookupT(s, a[1], now, tSet)
		if wt {
			return expectation{reply: wrongType}
		}
		m := cloneSet(v.s)
		var n int64
		for _, x := range a[2:] {
			if _, had := m[x]; !had {
				m[x] = struct{}{}
				n++
			}
		}
		if n == 0 {
			return expectation{reply: intReply(0)}
		}
		return expectation{reply: intReply(n), muts: []mutation{setPut(a[1], v, m)}}
	})
	reg("srem", -3, true, func(s state, now int64, a []string) expectation {
		v, found, wt := lookupT(s, a[1], now, tSet)
		switch {
		case wt:
			return expectation{reply: wrongType}
		case !found:
			return expectation{reply: intReply(0)}
		}
		m := cloneSet(v.s)
		n := deleteMembers(m, a[2:])
		if n == 0 {
			return expectation{reply: intReply(0)}
		}
		return expectation{reply: intReply(n), muts: []mutation{setPut(a[1], v, m)}}
	})
	reg("smove", 4, true, func(s state, now int64, a []string) expectation {
		sv, found, wt := lookupT(s, a[1], now, tSet)
		dv, _, dwt := lookupT(s, a[2], now, tSet)
		if !found {
			return expectation{reply: intReply(0)}
		}
		if wt || dwt {
			return expectation{reply: wrongType}
		}
		if _, had := sv.s[a[3]]; !had {
			return expectation{reply: intReply(0)}
		}
		if a[1] == a[2] {
			return expectation{reply: intReply(1)}
		}
		sm := cloneSet(sv.s)
		delete(sm, a[3])
		dm := cloneSet(dv.s)
		dm[a[3]] = struct{}{}
		return expectation{reply: intReply(1), muts: []mutation{setPut(a[1], sv, sm), setPut(a[2], dv, dm)}}
	})
	sread := func(name string, arity int, f func(m map[string]struct{}, a []string) expectation) {
		reg(name, arity, false, func(s state, now int64, a []string) expectation {
			v, _, wt := lookupT(s, a[1], now, tSet)
			if wt {
				return expectation{reply: wrongType}
			}
			return f(v.s, a)
		})
	}
	sread("scard", 2, func(m map[string]struct{}, a []string) expectation {
		return expectation{reply: intReply(int64(len(m)))}
	})
	sread("sismember", 3, func(m map[string]struct{}, a []string) expectation {
		if _, ok := m[a[2]]; ok {
			return expectation{reply: intReply(1)}
		}
		return expectation{reply: intReply(0)}
	})
	sread("smismember", -3, func(m map[string]struct{}, a []string) expectation {
		r := Reply{Kind: '*'}
		for _, x := range a[2:] {
			if _, ok := m[x]; ok {
				r.Elems = append(r.Elems, intReply(1))
			} else {
				r.Elems = append(r.Elems, intReply(0))
			}
		}
		return expectation{reply: r}
	})
	sread("smembers", 2, func(m map[string]struct{}, a []string) expectation {
		return expectation{reply: bulks(sortedKeys(m)), unordered: 1}
	})
	// algebra computes SINTER/SUNION/SDIFF over keys; wrong type of any
	// key is an error (a missing key is empty).
	algebra := func(s state, now int64, op string, keys []string) (map[string]struct{}, bool) {
		var acc map[string]struct{}
		for i, k := range keys {
			v, _, wt := lookupT(s, k, now, tSet)
			if wt {
				return nil, false
			}
			switch {
			case i == 0:
				acc = cloneSet(v.s)
			case op == "union":
				for x := range v.s {
					acc[x] = struct{}{}
				}
			case op == "inter":
				for x := range acc {
					if _, ok := v.s[x]; !ok {
						delete(acc, x)
					}
				}
			case op == "diff":
				for x := range v.s {
					delete(acc, x)
				}
			}
		}
		return acc, true
	}
	for _, op := range []string{"inter", "union", "diff"} {
		op := op
		reg("s"+op, -2, false, func(s state, now int64, a []string) expectation {
			m, ok := algebra(s, now, op, a[1:])
			if !ok {
				return expectation{reply: wrongType}
			}
			return expectation{reply: bulks(sortedKeys(m)), unordered: 1}
		})
		reg("s"+op+"store", -3, true, func(s state, now int64, a []string) expectation {
			m, ok := algebra(s, now, op, a[2:])
			if !ok {
				return expectation{reply: wrongType}
			}
			return expectation{reply: intReply(int64(len(m))), muts: []mutation{setPut(a[1], kv{}, m)}}
		})
	}
}

// --- sorted sets --------------------------------------------------------------------

type zpair struct {
	m string
	s float64
}

func cloneZ(z map[string]float64) map[string]float64 {
	c := make(map[string]float64, len(z)+1)
	for k, v := range z {
		c[k] = v
	}
	return c
}

// zsorted is the set in Redis's order: score, then member bytes.
func zsorted(z map[string]float64) []zpair {
	out := make([]zpair, 0, len(z))
	for m, s := range z {
		out = append(out, zpair{m, s})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].s != out[j].s {
			return out[i].s < out[j].s
		}
		return out[i].m < out[j].m
	})
	return out
}

func zPut(k string, v kv, z map[string]float64) mutation {
	if len(z) == 0 {
		return del(k)
	}
	v.typ, v.z = tZSet, z
	return put(k, v)
}

// zpairsReply is a flat member, score, ... array (or members only).
func zpairsReply(ps []zpair, withScores bool) Reply {
	r := Reply{Kind: '*', Elems: []Reply{}}
	for _, p := range ps {
		r.Elems = append(r.Elems, bulkReply(p.m))
		if withScores {
			r.Elems = append(r.Elems, dblReply(p.s))
		}
	}
	return r
}

func regZSet(reg regFn) {
	zadd := func(name string, incrCmd bool) gfunc {
		return func(s state, now int64, a []string) expectation {
			var nx, xx, gt, lt, ch, incr bool
			i := 2
			if incrCmd {
				incr = true
			} else {
			opts:
				for ; i < len(a); i++ {
					switch strings.ToLower(a[i]) {
					case "nx":
						nx = true
					case "xx":
						xx = true
					case "gt":
						gt = true
					case "lt":
						lt = true
					case "ch":
						ch = true
					case "incr":
						incr = true
					default:
						break opts
					}
				}
			}
			rest := a[i:]
			if len(rest) == 0 || len(rest)%2 != 0 {
				return expectation{reply: syntaxErr}
			}
			if nx && xx {
				return expectation{reply: errReply("ERR XX and NX options at the same time are not compatible")}
			}
			if (gt && nx) || (lt && nx) || (gt && lt) {
				return expectation{reply: errReply("ERR GT, LT, and/or NX options at the same time are not compatible")}
			}
			if incr && len(rest) > 2 {
				return expectation{reply: errReply("ERR INCR option supports a single increment-element pair")}
			}
			scores := make([]float64, 0, len(rest)/2)
			for j := 0; j < len(rest); j += 2 {
				f, ok := parseFloatArg(rest[j])
				if !ok {
					return expectation{reply: notFloatErr}
				}
				scores = append(scores, f)
			}
			v, _, wt := lookupT(s, a[1], now, tZSet)
			if wt {
				return expectation{reply: wrongType}
			}
			z := cloneZ(v.z)
			var added, updated int64
			var last float64
			processed := false
			for j := 0; j < len(rest); j += 2 {
				m, sc := rest[j+1], scores[j/2]
				cur, had := z[m]
				if had {
					if nx {
						continue
					}
					if incr {
						sc += cur
						if math.IsNaN(sc) {
							return expectation{reply: errReply("ERR resulting score is not a number (NaN)")}
						}
					}
					if (gt && sc <= cur) || (lt && sc >= cur) {
						continue
					}
					processed, last = true, sc
					if sc != cur {
						z[m] = sc
						updated++
					}
					continue
				}
				if xx {
					continue
				}
				z[m] = sc
				added++
				processed, last = true, sc
			}
			e := expectation{}
			if added+updated > 0 {
				e.muts = []mutation{zPut(a[1], v, z)}
			}
			switch {
			case incr && processed:
				e.reply = dblReply(last)
			case incr:
				e.reply = nullReply
			case ch:
				e.reply = intReply(added + updated)
			default:
				e.reply = intReply(added)
			}
			return e
		}
	}
	reg("zadd", -4, true, zadd("zadd", false))
	reg("zincrby", 4, true, zadd("zincrby", true))
	reg("zrem", -3, true, func(s state, now int64, a []string) expectation {
		v, found, wt := lookupT(s, a[1], now, tZSet)
		switch {
		case wt:
			return expectation{reply: wrongType}
		case !found:
			return expectation{reply: intReply(0)}
		}
		z := cloneZ(v.z)
		n := deleteMembers(z, a[2:])
		if n == 0 {
			return expectation{reply: intReply(0)}
		}
		return expectation{reply: intReply(n), muts: []mutation{zPut(a[1], v, z)}}
	})
	zread := func(name string, arity int, f func(z map[string]float64, a []string) expectation) {
		reg(name, arity, false, func(s state, now int64, a []string) expectation {
			v, _, wt := lookupT(s, a[1], now, tZSet)
			if wt {
				return expectation{reply: wrongType}
			}
			return f(v.z, a)
		})
	}
	zread("zscore", 3, func(z map[string]float64, a []string) expectation {
		if sc, ok := z[a[2]]; ok {
			return expectation{reply: dblReply(sc)}
		}
		return expectation{reply: nullReply}
	})
	zread("zcard", 2, func(z map[string]float64, a []string) expectation { return expectation{reply: intReply(int64(len(z)))} })
	zrank := func(rev bool) func(z map[string]float64, a []string) expectation {
		return func(z map[string]float64, a []string) expectation {
			if len(a) > 3 {
				return expectation{reply: syntaxErr}
			}
			ps := zsorted(z)
			for i, p := range ps {
				if p.m == a[2] {
					if rev {
						i = len(ps) - 1 - i
					}
					return expectation{reply: intReply(int64(i))}
				}
			}
			return expectation{reply: nullReply}
		}
	}
	zread("zrank", 3, zrank(false))
	zread("zrevrank", 3, zrank(true))
	reg("zrange", -4, false, func(s state, now int64, a []string) expectation {
		st, ok1 := parseInt(a[2])
		en, ok2 := parseInt(a[3])
		var with, rev bool
		for _, o := range a[4:] {
			switch strings.ToLower(o) {
			case "withscores":
				with = true
			case "rev":
				rev = true
			default:
				return expectation{reply: syntaxErr}
			}
		}
		if !ok1 || !ok2 {
			return expectation{reply: notIntErr}
		}
		v, _, wt := lookupT(s, a[1], now, tZSet)
		if wt {
			return expectation{reply: wrongType}
		}
		return expectation{reply: zpairsReply(zrangeOf(v.z, st, en, rev), with)}
	})
	pop := func(max bool) gfunc {
		return func(s state, now int64, a []string) expectation {
			if len(a) > 3 {
				return expectation{reply: syntaxErr}
			}
			count := int64(1)
			if len(a) == 3 {
				n, ok := parseInt(a[2])
				if !ok {
					return expectation{reply: notIntErr}
				}
				if n < 0 {
					return expectation{reply: errReply("ERR value is out of range, must be positive")}
				}
				count = n
			}
			v, found, wt := lookupT(s, a[1], now, tZSet)
			if wt {
				return expectation{reply: wrongType}
			}
			if !found || count == 0 {
				return expectation{reply: emptyArray}
			}
			ps := zsorted(v.z)
			if max {
				for i, j := 0, len(ps)-1; i < j; i, j = i+1, j-1 {
					ps[i], ps[j] = ps[j], ps[i]
				}
			}
			ps = ps[:min(int(count), len(ps))]
			z := cloneZ(v.z)
			for _, p := range ps {
				delete(z, p.m)
			}
			return expectation{reply: zpairsReply(ps, true), muts: []mutation{zPut(a[1], v, z)}}
		}
	}
	reg("zpopmin", -2, true, pop(false))
	reg("zpopmax", -2, true, pop(true))
	reg("zremrangebyrank", 4, true, func(s state, now int64, a []string) expectation {
		st, ok1 := parseInt(a[2])
		en, ok2 := parseInt(a[3])
		if !ok1 || !ok2 {
			return expectation{reply: notIntErr}
		}
		v, found, wt := lookupT(s, a[1], now, tZSet)
		switch {
		case wt:
			return expectation{reply: wrongType}
		case !found:
			return expectation{reply: intReply(0)}
		}
		ps := zrangeOf(v.z, st, en, false)
		if len(ps) == 0 {
			return expectation{reply: intReply(0)}
		}
		z := cloneZ(v.z)
		for _, p := range ps {
			delete(z, p.m)
		}
		return expectation{reply: intReply(int64(len(ps))), muts: []mutation{zPut(a[1], v, z)}}
	})
	reg("zremrangebyscore", 4, true, func(s state, now int64, a []string) expectation {
		lo, loEx, ok1 := parseScoreBound(a[2])
		hi, hiEx, ok2 := parseScoreBound(a[3])
		if !ok1 || !ok2 {
			return expectation{reply: errReply("ERR min or max is not a float")}
		}
		v, found, wt := lookupT(s, a[1], now, tZSet)
		switch {
		case wt:
			return expectation{reply: wrongType}
		case !found:
			return expectation{reply: intReply(0)}
		}
		z := cloneZ(v.z)
		var n int64
		for _, m := range sortedKeys(v.z) {
			sc := v.z[m]
			if (sc > lo || (!loEx && sc == lo)) && (sc < hi || (!hiEx && sc == hi)) {
				delete(z, m)
				n++
			}
		}
		if n == 0 {
			return expectation{reply: intReply(0)}
		}
		return expectation{reply: intReply(n), muts: []mutation{zPut(a[1], v, z)}}
	})
	reg("zcount", 4, false, func(s state, now int64, a []string) expectation {
		lo, loEx, ok1 := parseScoreBound(a[2])
		hi, hiEx, ok2 := parseScoreBound(a[3])
		if !ok1 || !ok2 {
			return expectation{reply: errReply("ERR min or max is not a float")}
		}
		v, _, wt := lookupT(s, a[1], now, tZSet)
		if wt {
			return expectation{reply: wrongType}
		}
		var n int64
		for _, sc := range v.z {
			if (sc > lo || (!loEx && sc == lo)) && (sc < hi || (!hiEx && sc == hi)) {
				n++
			}
		}
		return expectation{reply: intReply(n)}
	})
	reg("zmpop", -4, true, func(s state, now int64, a []string) expectation {
		n, ok := parseInt(a[1])
		if !ok || n <= 0 {
			return expectation{reply: errReply("ERR numkeys should be greater than 0")}
		}
		if int64(len(a)) < 3+n {
			return expectation{reply: syntaxErr}
		}
		keys, rest := a[2:2+n], a[2+n:]
		var max bool
		switch strings.ToLower(rest[0]) {
		case "min":
		case "max":
			max = true
		default:
			return expectation{reply: syntaxErr}
		}
		count := int64(1)
		if rest = rest[1:]; len(rest) > 0 {
			if len(rest) != 2 || strings.ToLower(rest[0]) != "count" {
				return expectation{reply: syntaxErr}
			}
			c, ok := parseInt(rest[1])
			if !ok || c <= 0 {
				return expectation{reply: errReply("ERR count should be greater than 0")}
			}
			count = c
		}
		for _, k := range keys {
			v, found, wt := lookupT(s, k, now, tZSet)
			if wt {
				return expectation{reply: wrongType}
			}
			if !found {
				continue
			}
			ps := zsorted(v.z)
			if max {
				for i, j := 0, len(ps)-1; i < j; i, j = i+1, j-1 {
					ps[i], ps[j] = ps[j], ps[i]
				}
			}
			ps = ps[:min(int(count), len(ps))]
			z := cloneZ(v.z)
			pairs := Reply{Kind: '*'}
			for _, p := range ps {
				delete(z, p.m)
				pairs.Elems = append(pairs.Elems, arr(bulkReply(p.m), dblReply(p.s)))
			}
			return expectation{reply: arr(bulkReply(k), pairs), muts: []mutation{zPut(k, v, z)}}
		}
		return expectation{reply: nullReply}
	})
	reg("zrangestore", -5, true, func(s state, now int64, a []string) expectation {
		st, ok1 := parseInt(a[3])
		en, ok2 := parseInt(a[4])
		rev := false
		for _, o := range a[5:] {
			if strings.ToLower(o) != "rev" {
				return expectation{reply: syntaxErr}
			}
			rev = true
		}
		if !ok1 || !ok2 {
			return expectation{reply: notIntErr}
		}
		v, _, wt := lookupT(s, a[2], now, tZSet)
		if wt {
			return expectation{reply: wrongType}
		}
		ps := zrangeOf(v.z, st, en, rev)
		z := map[string]float64{}
		for _, p := range ps {
			z[p.m] = p.s
		}
		return expectation{reply: intReply(int64(len(ps))), muts: []mutation{zPut(a[1], kv{}, z)}}
	})
	zstore := func(op string) gfunc {
		return func(s state, now int64, a []string) expectation {
			n, ok := parseInt(a[2])
			if !ok {
				return expectation{reply: notIntErr}
			}
			if n <= 0 {
				return expectation{reply: errReply("ERR at least 1 input key is needed for '" + "z" + op + "store' command")}
			}
			if int64(len(a)) < 3+n {
				return expectation{reply: syntaxErr}
			}
			keys, rest := a[3:3+n], a[3+n:]
			// Redis checks the keys' types before it reads the options.
			for _, k := range keys {
				if v, found := s.get(k, now); found && v.typ != tZSet && v.typ != tSet {
					return expectation{reply: wrongType}
				}
			}
			weights := make([]float64, n)
			for i := range weights {
				weights[i] = 1
			}
			agg := "sum"
			for i := 0; i < len(rest); i++ {
				switch o := strings.ToLower(rest[i]); {
				case o == "weights" && op != "diff" && i+int(n) < len(rest):
					for j := range weights {
						f, ok := parseFloatArg(rest[i+1+j])
						if !ok {
							return expectation{reply: errReply("ERR weight value is not a float")}
						}
						weights[j] = f
					}
					i += int(n)
				case o == "aggregate" && op != "diff" && i+1 < len(rest):
					agg = strings.ToLower(rest[i+1])
					if agg != "sum" && agg != "min" && agg != "max" {
						return expectation{reply: syntaxErr}
					}
					i++
				default:
					return expectation{reply: syntaxErr}
				}
			}
			var acc map[string]float64
			for i, k := range keys {
				v, found, wt := lookupT(s, k, now, tZSet)
				if found && wt && v.typ == tSet {
					// Sets take part with score 1, as in Redis.
					wt = false
					v.z = map[string]float64{}
					for m := range v.s {
						v.z[m] = 1
					}
				}
				if wt {
					return expectation{reply: wrongType}
				}
				cur := map[string]float64{}
				for m, sc := range v.z {
					x := sc * weights[i]
					if math.IsNaN(x) {
						x = 0
					}
					cur[m] = x
				}
				if i == 0 {
					acc = cur
					continue
				}
				switch op {
				case "diff":
					for m := range cur {
						delete(acc, m)
					}
				case "inter":
					for m, x := range acc {
						y, ok := cur[m]
						if !ok {
							delete(acc, m)
							continue
						}
						acc[m] = zagg(agg, x, y)
					}
				case "union":
					for m, y := range cur {
						if x, ok := acc[m]; ok {
							acc[m] = zagg(agg, x, y)
						} else {
							acc[m] = y
						}
					}
				}
			}
			return expectation{reply: intReply(int64(len(acc))), muts: []mutation{zPut(a[1], kv{}, acc)}}
		}
	}
	reg("zunionstore", -4, true, zstore("union"))
	reg("zinterstore", -4, true, zstore("inter"))
	reg("zdiffstore", -4, true, zstore("diff"))
}

func zagg(agg string, x, y float64) float64 {
	switch agg {
	case "min":
		return math.Min(x, y)
	case "max":
		return math.Max(x, y)
	}
	r := x + y
	if math.IsNaN(r) {
		return 0
	}
	return r
}

// parseScoreBound reads a ZRANGEBYSCORE bound ("(1.5", "-inf").
func parseScoreBound(b string) (float64, bool, bool) {
	ex := strings.HasPrefix(b, "(")
	if ex {
		b = b[1:]
	}
	f, ok := parseFloatArg(b)
	return f, ex, ok
}

func zrangeOf(z map[string]float64, st, en int64, rev bool) []zpair {
	ps := zsorted(z)
	if rev {
		for i, j := 0, len(ps)-1; i < j; i, j = i+1, j-1 {
			ps[i], ps[j] = ps[j], ps[i]
		}
	}
	n := int64(len(ps))
	if st < 0 {
		st = max(n+st, 0)
	}
	if en < 0 {
		en = n + en
	}
	en = min(en, n-1)
	if st > en || st >= n {
		return nil
	}
	return ps[st : en+1]
}

// --- bitmaps -----------------------------------------------------------------------

func regBits(reg regFn) {
	reg("setbit", 4, true, func(s state, now int64, a []string) expectation {
		off, ok := parseInt(a[2])
		if !ok || off < 0 || off >= 4<<30*8 {
			return expectation{reply: errReply("ERR bit offset is not an integer or out of range")}
		}
		if a[3] != "0" && a[3] != "1" {
			return expectation{reply: errReply("ERR bit is not an integer or out of range")}
		}
		v, _, wt := lookupT(s, a[1], now, tString)
		if wt {
			return expectation{reply: wrongType}
		}
		b := []byte(v.val)
		byteI := int(off / 8)
		if byteI >= len(b) {
			b = append(b, make([]byte, byteI+1-len(b))...)
		}
		mask := byte(1) << (7 - uint(off%8))
		old := int64(0)
		if b[byteI]&mask != 0 {
			old = 1
		}
		if a[3] == "1" {
			b[byteI] |= mask
		} else {
			b[byteI] &^= mask
		}
		v.val = string(b)
		return expectation{reply: intReply(old), muts: []mutation{put(a[1], v)}}
	})
	reg("getbit", 3, false, func(s state, now int64, a []string) expectation {
		off, ok := parseInt(a[2])
		if !ok || off < 0 {
			return expectation{reply: errReply("ERR bit offset is not an integer or out of range")}
		}
		v, _, wt := lookupT(s, a[1], now, tString)
		if wt {
			return expectation{reply: wrongType}
		}
		if int(off/8) >= len(v.val) {
			return expectation{reply: intReply(0)}
		}
		return expectation{reply: intReply(int64(v.val[off/8]>>(7-uint(off%8))) & 1)}
	})
	reg("bitcount", -2, false, func(s state, now int64, a []string) expectation {
		// Redis 7.0 looks the key up before it reads the range.
		v, found, wt := lookupT(s, a[1], now, tString)
		switch {
		case !found:
			return expectation{reply: intReply(0)}
		case wt:
			return expectation{reply: wrongType}
		}
		var st, en int64
		ranged := false
		switch len(a) {
		case 2:
		case 4:
			var ok1, ok2 bool
			st, ok1 = parseInt(a[2])
			en, ok2 = parseInt(a[3])
			if !ok1 || !ok2 {
				return expectation{reply: notIntErr}
			}
			ranged = true
		default:
			return expectation{reply: syntaxErr}
		}
		b := v.val
		if ranged && st < 0 && en < 0 && st > en {
			return expectation{reply: intReply(0)}
		}
		if ranged {
			n := int64(len(b))
			if st < 0 {
				st = max(n+st, 0)
			}
			if en < 0 {
				en = max(n+en, 0)
			}
			en = min(en, n-1)
			if st > en || n == 0 {
				b = ""
			} else {
				b = b[st : en+1]
			}
		}
		var c int64
		for i := 0; i < len(b); i++ {
			for x := b[i]; x != 0; x &= x - 1 {
				c++
			}
		}
		return expectation{reply: intReply(c)}
	})
	reg("bitop", -4, true, func(s state, now int64, a []string) expectation {
		op := strings.ToLower(a[1])
		if op != "and" && op != "or" && op != "xor" && op != "not" {
			return expectation{reply: syntaxErr}
		}
		keys := a[3:]
		if op == "not" && len(keys) != 1 {
			return expectation{reply: errReply("ERR BITOP NOT must be called with a single source key.")}
		}
		var srcs []string
		maxLen := 0
		for _, k := range keys {
			v, _, wt := lookupT(s, k, now, tString)
			if wt {
				return expectation{reply: wrongType}
			}
			srcs = append(srcs, v.val)
			maxLen = max(maxLen, len(v.val))
		}
		out := make([]byte, maxLen)
		for i := range out {
			at := func(j int) byte {
				if i < len(srcs[j]) {
					return srcs[j][i]
				}
				return 0
			}
			x := at(0)
			for j := 1; j < len(srcs); j++ {
				switch op {
				case "and":
					x &= at(j)
				case "or":
					x |= at(j)
				case "xor":
					x ^= at(j)
				}
			}
			if op == "not" {
				x = ^x
			}
			out[i] = x
		}
		if maxLen == 0 {
			return expectation{reply: intReply(0), muts: []mutation{del(a[2])}}
		}
		return expectation{reply: intReply(int64(maxLen)), muts: []mutation{put(a[2], kv{val: string(out)})}}
	})
}

// deleteMembers removes each of names from m and counts those it held
// (HDEL, SREM, ZREM).
func deleteMembers[V any](m map[string]V, names []string) int64 {
	var n int64
	for _, x := range names {
		if _, had := m[x]; had {
			delete(m, x)
			n++
		}
	}
	return n
}
