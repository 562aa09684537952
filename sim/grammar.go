package sim

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/cluster"
)

// GrammarConfig turns the workload into commands drawn from each
// command's grammar (issue 20): every option of the string, key-space,
// hash, list, set, sorted-set and bitmap commands, on keys of every type,
// with and without TTLs, now and then ill-formed. Nothing goes into the
// linearizability history: the single-node oracle checks every reply
// against the typed model (gmodel.go) in the order the node executed
// them, and every recovery against a prefix of the writes, reading each
// key back whole (GET, PTTL, HGETALL, LRANGE, SMEMBERS, ZRANGE).
type GrammarConfig struct {
	// Keys is the key space (k0..): every type lives in it, so a command
	// often meets a key of another type.
	Keys int
	// Zipf, when above 1, draws keys by a Zipf law of that exponent (k0
	// hottest) instead of uniformly: many clients on few keys.
	Zipf float64
	// IllFormedPct is the share (percent) of commands made ill-formed (an
	// argument dropped, a bogus option added, a number spelled wrong).
	IllFormedPct int
	// MultiPct is the share of operations that are a MULTI ... EXEC block
	// of 2–3 commands; WatchPct the share that WATCH a key (the hottest
	// under Zipf), read its type and then run a block on it under the
	// WATCH.
	MultiPct, WatchPct int
	// FcallPct is the share of FCALLs of the rmw library's function,
	// which reads and writes one key several times (testdata/functions/
	// rmw.c); Library is its FUNCTION LOAD payload, which the first
	// client loads before any call.
	FcallPct int
	Library  string
}

// grammarSpec is one command's grammar, in the compact syntax of Redis's
// documentation: UPPER words are sent as they are, lower words are
// argument kinds (grammarKinds), [a|b] is optional (one of), <a|b> is one
// of, and "..." after an element repeats it 0–2 more times.
type grammarSpec struct {
	name   string
	syntax string
	weight int
}

// grammarSpecs are the commands the grammar workload draws, by family.
// TestGrammarCoversWriteCommands holds it to the engine's command table.
var grammarSpecs = []grammarSpec{
	// strings
	{"set", "key value [NX|XX] [GET] [EX ttl|PX ttlms|EXAT unix|PXAT unixms|KEEPTTL]", 12},
	{"setnx", "key value", 1},
	{"setex", "key ttl value", 2},
	{"psetex", "key ttlms value", 1},
	{"getset", "key value", 1},
	{"getdel", "key", 1},
	{"getex", "key [EX ttl|PX ttlms|EXAT unix|PXAT unixms|PERSIST]", 3},
	{"append", "key value", 2},
	{"setrange", "key off value", 1},
	{"incr", "key", 1},
	{"decr", "key", 1},
	{"incrby", "key incr", 2},
	{"decrby", "key incr", 1},
	{"incrbyfloat", "key float", 2},
	{"mset", "key value [key value]...", 1},
	{"msetnx", "key value [key value]...", 1},
	{"get", "key", 4},
	{"mget", "key key...", 1},
	{"strlen", "key", 1},
	{"getrange", "key idx idx", 1},
	// key space
	{"del", "key key...", 2},
	{"unlink", "key", 1},
	{"exists", "key key...", 1},
	{"type", "key", 1},
	{"expire", "key ttl [NX|XX|GT|LT]", 3},
	{"pexpire", "key ttlms [NX|XX|GT|LT]", 2},
	{"expireat", "key unix [NX|XX|GT|LT]", 1},
	{"pexpireat", "key unixms [NX|XX|GT|LT]", 1},
	{"persist", "key", 2},
	{"ttl", "key", 1},
	{"pttl", "key", 2},
	{"expiretime", "key", 1},
	{"pexpiretime", "key", 1},
	{"copy", "key key [REPLACE]", 2},
	{"rename", "key key", 1},
	{"renamenx", "key key", 1},
	{"flushdb", "[ASYNC|SYNC]", 0}, // FlushPerMille draws it
	{"flushall", "[ASYNC|SYNC]", 0},
	// hashes
	{"hset", "key field value [field value]...", 5},
	{"hmset", "key field value", 1},
	{"hsetnx", "key field value", 1},
	{"hdel", "key field field...", 2},
	{"hincrby", "key field incr", 2},
	{"hincrbyfloat", "key field float", 1},
	{"hget", "key field", 2},
	{"hmget", "key field field...", 1},
	{"hgetall", "key", 2},
	{"hkeys", "key", 1},
	{"hlen", "key", 1},
	{"hexists", "key field", 1},
	{"hstrlen", "key field", 1},
	// lists
	{"lpush", "key elem elem...", 4},
	{"rpush", "key elem elem...", 3},
	{"lpushx", "key elem", 1},
	{"rpushx", "key elem", 1},
	{"lpop", "key [count]", 2},
	{"rpop", "key [count]", 2},
	{"lrange", "key idx idx", 2},
	{"llen", "key", 1},
	{"lindex", "key idx", 1},
	{"lset", "key idx elem", 1},
	{"linsert", "key <BEFORE|AFTER> elem elem", 1},
	{"lrem", "key idx elem", 1},
	{"ltrim", "key idx idx", 1},
	{"lmove", "key key <LEFT|RIGHT> <LEFT|RIGHT>", 2},
	{"rpoplpush", "key key", 1},
	{"lmpop", "nkeys <LEFT|RIGHT> [COUNT count]", 1},
	// sets
	{"sadd", "key member member...", 5},
	{"srem", "key member member...", 2},
	{"smove", "key key member", 1},
	{"scard", "key", 1},
	{"sismember", "key member", 1},
	{"smismember", "key member member...", 1},
	{"smembers", "key", 2},
	{"sinter", "key key...", 1},
	{"sunion", "key key...", 1},
	{"sdiff", "key key...", 1},
	{"sinterstore", "key key key...", 1},
	{"sunionstore", "key key key...", 1},
	{"sdiffstore", "key key key...", 1},
	// sorted sets
	{"zadd", "key [NX|XX] [GT|LT] [CH] [INCR] score member [score member]...", 6},
	{"zincrby", "key score member", 2},
	{"zrem", "key member member...", 2},
	{"zscore", "key member", 1},
	{"zcard", "key", 1},
	{"zrank", "key member", 1},
	{"zrevrank", "key member", 1},
	{"zrange", "key idx idx [REV] [WITHSCORES]", 2},
	{"zcount", "key bound bound", 1},
	{"zpopmin", "key [count]", 2},
	{"zpopmax", "key [count]", 1},
	{"zmpop", "nkeys <MIN|MAX> [COUNT count]", 1},
	{"zremrangebyrank", "key idx idx", 1},
	{"zremrangebyscore", "key bound bound", 1},
	{"zrangestore", "key key idx idx [REV]", 1},
	{"zunionstore", "key nkeys [WEIGHTS weights] [AGGREGATE <SUM|MIN|MAX>]", 1},
	{"zinterstore", "key nkeys [WEIGHTS weights] [AGGREGATE <SUM|MIN|MAX>]", 1},
	{"zdiffstore", "key nkeys", 1},
	// bitmaps
	{"setbit", "key bitoff bit", 3},
	{"getbit", "key bitoff", 1},
	{"bitcount", "key [idx idx]", 1},
	{"bitop", "<AND|OR|XOR|NOT> key key key...", 1},
}

// grammarExcluded are the write commands of the engine's table the
// grammar leaves out, and why (TestGrammarCoversWriteCommands).
var grammarExcluded = map[string]string{
	"spop":       "draws a random member: the model cannot know which (the set workload's model checks it)",
	"blpop":      "blocks: a blocked command's reply comes at wake-up, in a later batch (the queue workload covers it)",
	"brpop":      "blocks (see blpop)",
	"blmove":     "blocks (see blpop)",
	"blmpop":     "blocks (see blpop)",
	"brpoplpush": "blocks (see blpop)",
	"bzpopmin":   "blocks (see blpop)",
	"bzpopmax":   "blocks (see blpop)",
	"bzmpop":     "blocks (see blpop)",
	"bitfield":   "a grammar of its own (typed offsets, OVERFLOW modes) not modelled yet",
	"zremrangebylex": "defined only when every member has the same score; on the workload's mixed scores the result " +
		"is whichever walk Redis's listpack or skiplist makes, not a specification",
}

// gnode is one element of a parsed grammar.
type gnode struct {
	word   string     // a literal (UPPER) or an argument kind
	alts   [][]*gnode // a group's alternatives
	opt    bool       // [ ... ]: may be left out
	repeat bool       // "...": 0–2 more times
}

func parseGrammar(syntax string) []*gnode {
	s := strings.NewReplacer("[", " [ ", "]", " ] ", "<", " < ", ">", " > ", "|", " | ", "...", " ... ").Replace(syntax)
	toks := strings.Fields(s)
	seq, rest := parseSeq(toks)
	if len(rest) != 0 {
		panic("grammar: unbalanced: " + syntax)
	}
	return seq
}

// parseSeq reads elements until a closing bracket or "|".
func parseSeq(toks []string) ([]*gnode, []string) {
	var seq []*gnode
	for len(toks) > 0 {
		t := toks[0]
		switch t {
		case "]", ">", "|":
			return seq, toks
		case "...":
			seq[len(seq)-1].repeat = true
			toks = toks[1:]
		case "[", "<":
			g := &gnode{opt: t == "["}
			toks = toks[1:]
			for {
				var alt []*gnode
				alt, toks = parseSeq(toks)
				g.alts = append(g.alts, alt)
				if toks[0] != "|" {
					break
				}
				toks = toks[1:]
			}
			toks = toks[1:] // the closing bracket
			seq = append(seq, g)
		default:
			seq = append(seq, &gnode{word: t})
			toks = toks[1:]
		}
	}
	return seq, toks
}

var grammarParsed = func() map[string][]*gnode {
	m := map[string][]*gnode{}
	for _, g := range grammarSpecs {
		m[g.name] = parseGrammar(g.syntax)
	}
	return m
}()

// gdraw draws one command from its grammar.
type gdraw struct {
	c     *Client
	rng   *rand.Rand
	argv  []string
	lastN int // the last nkeys drawn (WEIGHTS needs as many)
	key   string
}

func (d *gdraw) seq(nodes []*gnode) {
	for _, n := range nodes {
		times := 1
		if n.repeat {
			times += d.rng.IntN(3)
		}
		for i := 0; i < times; i++ {
			d.one(n)
		}
	}
}

func (d *gdraw) one(n *gnode) {
	if n.alts != nil {
		if n.opt && d.rng.IntN(2) == 0 {
			return
		}
		d.seq(n.alts[d.rng.IntN(len(n.alts))])
		return
	}
	if w := n.word; strings.ToUpper(w) == w {
		d.argv = append(d.argv, w)
		return
	}
	d.arg(n.word)
}

func (d *gdraw) arg(kind string) {
	r := d.rng
	add := func(s ...string) { d.argv = append(d.argv, s...) }
	num := func(lo, hi int) { add(strconv.Itoa(lo + r.IntN(hi-lo+1))) }
	nowMs := (simEpoch + d.c.r.W.now) / 1e6
	switch kind {
	case "key":
		k := d.c.grammarKey()
		if d.key != "" && r.IntN(3) == 0 {
			k = d.key // a second key the same as the first: RENAME k k, COPY k k
		}
		if d.key == "" {
			d.key = k
		}
		add(k)
	case "nkeys":
		n := 1 + r.IntN(3)
		d.lastN = n
		add(strconv.Itoa(n))
		for i := 0; i < n; i++ {
			add(d.c.grammarKey())
		}
	case "weights":
		for i := 0; i < max(d.lastN, 1); i++ {
			num(0, 3)
		}
	case "value":
		switch p := r.IntN(10); {
		case p < 3:
			num(-3, 20)
		case p < 4:
			add(fmtFloat(float64(r.IntN(13)-4) * 0.25))
		case p < 5 && r.IntN(2) == 0:
			add("")
		case p < 5:
			// A decimal that binary does not hold: INCRBYFLOAT's long
			// double digits.
			add(strconv.Itoa(r.IntN(21)-10) + "." + strconv.Itoa(1+r.IntN(999)))
		default:
			add("v" + itoa(int64(d.c.id)) + "-" + itoa(int64(d.c.seq+1)))
		}
	case "field":
		add("f" + strconv.Itoa(r.IntN(5)))
	case "member":
		add(string(rune('a' + r.IntN(6))))
	case "elem":
		add(string(rune('a' + r.IntN(5))))
	case "ttl":
		if r.IntN(20) == 0 {
			num(-1, 0) // refused by SET and GETEX, a delete for EXPIRE
			return
		}
		num(1, 3)
	case "ttlms":
		if r.IntN(20) == 0 {
			num(-1, 0)
			return
		}
		num(1, 3000)
	case "unix":
		add(strconv.FormatInt(nowMs/1000+int64(r.IntN(6)-1), 10))
	case "unixms":
		add(strconv.FormatInt(nowMs+int64(r.IntN(5000)-1000), 10))
	case "incr":
		num(-5, 10)
	case "float":
		if r.IntN(4) == 0 {
			add(strconv.Itoa(r.IntN(5)-2) + "." + strconv.Itoa(1+r.IntN(9)))
			return
		}
		add(fmtFloat(float64(r.IntN(21)-8) * 0.25))
	case "score":
		add(fmtFloat(float64(r.IntN(13)-4) * 0.5))
	case "bound":
		switch p := r.IntN(10); {
		case p == 0:
			add("-inf")
		case p == 1:
			add("+inf")
		case p < 4:
			add("(" + fmtFloat(float64(r.IntN(13)-4)*0.5))
		default:
			add(fmtFloat(float64(r.IntN(13)-4) * 0.5))
		}
	case "count":
		num(0, 4)
	case "idx":
		num(-4, 4)
	case "off":
		num(0, 8)
	case "bitoff":
		num(0, 31)
	case "bit":
		num(0, 1)
	default:
		panic("grammar: unknown argument kind " + kind)
	}
}

// illFormed spoils a well-formed command one of three ways.
func (d *gdraw) illFormed() {
	r := d.rng
	switch p := r.IntN(3); {
	case p == 0 && len(d.argv) > 1:
		d.argv = d.argv[:len(d.argv)-1]
	case p == 1:
		d.argv = append(d.argv, "BOGUS")
	default:
		for i := len(d.argv) - 1; i > 0; i-- {
			if _, err := strconv.ParseFloat(d.argv[i], 64); err == nil {
				d.argv[i] = "x" + d.argv[i]
				return
			}
		}
		d.argv = append(d.argv, "BOGUS")
	}
}

var grammarWeightTotal = func() int {
	t := 0
	for _, g := range grammarSpecs {
		t += g.weight
	}
	return t
}()

// grammarCommand draws one command (well-formed unless ill is set).
func (c *Client) grammarCommand(ill bool) []string {
	g := c.r.cfg.Workload.Grammar
	var spec grammarSpec
	if c.rng.IntN(1000) < flushPerMille {
		spec = grammarSpecs[indexSpec("flushdb")]
	} else {
		w := c.rng.IntN(grammarWeightTotal)
		for _, s := range grammarSpecs {
			if w < s.weight {
				spec = s
				break
			}
			w -= s.weight
		}
	}
	d := &gdraw{c: c, rng: c.rng, argv: []string{strings.ToUpper(spec.name)}}
	d.seq(grammarParsed[spec.name])
	if ill && g.IllFormedPct > 0 && c.rng.IntN(100) < g.IllFormedPct {
		d.illFormed()
	}
	return d.argv
}

// flushPerMille: FLUSHDB is drawn this rarely (it empties every key).
const flushPerMille = 2

func indexSpec(name string) int {
	for i, s := range grammarSpecs {
		if s.name == name {
			return i
		}
	}
	panic("grammar: no spec " + name)
}

// grammarKey draws a key: uniformly, or by the Zipf law.
func (c *Client) grammarKey() string {
	g := c.r.cfg.Workload.Grammar
	if g.Zipf > 1 {
		if c.zipf == nil {
			c.zipf = rand.NewZipf(c.rng, g.Zipf, 1, uint64(g.Keys-1))
		}
		return c.r.cfg.Workload.keyName(int(c.zipf.Uint64()))
	}
	return c.r.cfg.Workload.keyName(c.rng.IntN(g.Keys))
}

// gwatch is a client's WATCH in progress: the block to run on its
// session once the watched read answered.
type gwatch struct {
	next *opSpec
}

// genGrammar draws the next operation of the grammar workload.
func (c *Client) genGrammar() opSpec {
	g := c.r.cfg.Workload.Grammar
	if c.gw != nil && c.gw.next != nil {
		op := *c.gw.next
		c.gw = nil
		return op
	}
	if g.FcallPct > 0 && c.r.rmw == rmwUnloaded && c.id == clientIDBase {
		c.r.rmw = rmwLoading
		return opSpec{argv: []string{"FUNCTION", "LOAD", g.Library}}
	}
	switch p := c.rng.IntN(100); {
	case p < g.WatchPct:
		k := c.r.cfg.Workload.keyName(0)
		if g.Zipf <= 1 {
			k = c.grammarKey()
		}
		block := c.grammarBlock(k)
		words := append([]string{"EXEC", txnWatched}, block...)
		c.gw = &gwatch{next: &opSpec{argv: words}}
		// TOUCH, which the grammar never draws: the oracle knows the
		// read that follows a WATCH by it (watchCheck).
		return opSpec{argv: []string{"EXEC", txnObserve, "TOUCH", k}, keepsSession: true}
	case p < g.WatchPct+g.MultiPct:
		return opSpec{argv: append([]string{"EXEC"}, c.grammarBlock("")...)}
	case p < g.WatchPct+g.MultiPct+g.FcallPct && c.r.rmw == rmwLoaded:
		return opSpec{argv: []string{"FCALL", "rmw", "1", c.grammarKey(), strconv.Itoa(c.rng.IntN(6))}}
	}
	return opSpec{argv: c.grammarCommand(true)}
}

// grammarBlock is 2–3 well-formed commands joined by txnSep; with key
// set, each command's first key is it.
func (c *Client) grammarBlock(key string) []string {
	var words []string
	n := 2 + c.rng.IntN(2)
	for i := 0; i < n; i++ {
		cmd := c.grammarCommand(false)
		for strings.EqualFold(cmd[0], "flushdb") || strings.EqualFold(cmd[0], "flushall") || len(cmd) < 2 ||
			strings.EqualFold(cmd[0], "lmpop") || strings.EqualFold(cmd[0], "zmpop") || strings.EqualFold(cmd[0], "bitop") {
			cmd = c.grammarCommand(false)
		}
		if key != "" {
			cmd[1] = key
		}
		if i > 0 {
			words = append(words, txnSep)
		}
		words = append(words, cmd...)
	}
	return words
}

// grammarReplied ends a WATCH flow whose observing read failed: the block
// is not sent (its WATCH may be gone).
func (c *Client) grammarReplied(op *opSpec, r *Reply) {
	if len(op.argv) > 1 && op.argv[0] == "FUNCTION" && c.r.rmw == rmwLoading {
		c.r.rmw = rmwUnloaded
		if r != nil && r.Kind == '$' {
			c.r.rmw = rmwLoaded
		}
		return
	}
	if r != nil && len(op.argv) > 1 && op.argv[0] == "FCALL" && r.IsError() && strings.Contains(r.Str, "not found") {
		c.r.rmw = rmwUnloaded // lost in a crash (appendfsync everysec or no): load it again
		return
	}
	if c.gw == nil || !op.keepsSession {
		return
	}
	if r == nil || r.IsError() {
		c.gw = nil
		return
	}
	c.gw.next.session = op.session
}

// The rmw library's state in a run: calls start once its load answered.
const (
	rmwUnloaded = iota
	rmwLoading
	rmwLoaded
)

// predictRMW is the model of FCALL rmw 1 key n (testdata/functions/rmw.c).
func predictRMW(s state, nowMs int64, argv []string) expectation {
	if _, ok := s[libKeyPrefix+"rmw"]; !ok {
		return expectation{reply: errReply("ERR Function not found")}
	}
	if len(argv) != 5 || argv[2] != "1" {
		return expectation{reply: errReply("ERR usage: FCALL rmw 1 key n")}
	}
	n, ok := parseInt(argv[4])
	if !ok || n < 0 || n > 8 {
		return expectation{reply: errReply("ERR n must be an integer from 0 to 8")}
	}
	v, found, wt := lookupT(s, argv[3], nowMs, tString)
	switch {
	case wt:
		return expectation{reply: wrongType}
	case n == 0 && !found:
		return expectation{reply: nullReply}
	case n == 0:
		return expectation{reply: bulkReply(v.val)}
	}
	v.val += strings.Repeat("+", int(n))
	if n >= 3 {
		v.exp = 0
	}
	return expectation{reply: bulkReply(v.val), write: true, muts: []mutation{put(argv[3], v)}}
}

// checkTypedConverged is the grammar workload's end check in a replicated
// group: once every member applied the leader's commit index, each
// replica holds the same keys, of the same types, with the same contents
// and the same absolute deadlines (PEXPIRETIME: every replica applies a
// write with the time logged with it). A key whose deadline lies within
// the members' clock skew of now may read as expired on one replica and
// not yet on another: it is compared by deadline only.
func (g *Group) checkTypedConverged() {
	r := g.r
	deadline := r.W.now + int64(convergeWithin)
	r.W.halted = false
	for r.W.now < deadline && !g.converged() {
		r.W.RunUntil(r.W.now + int64(100*time.Millisecond))
	}
	g.checkVoters()
	reads := func(k string) [][]string {
		return append([][]string{{"PEXPIRETIME", k}, {"GET", k}}, typedProbeArgv(k)...)
	}
	type ref struct {
		node    uint64
		replies []Reply
	}
	first := map[string]ref{}
	for _, n := range g.memberNodes() {
		if !n.up {
			r.Oracle.fail("convergence: n" + itoa(int64(n.cfg.ID)) + " is down at the end")
			continue
		}
		applied := n.replica(1).GroupStats().Applied
		for _, k := range r.keys {
			var got []Reply
			for _, argv := range reads(k) {
				words := make([][]byte, len(argv))
				for i, a := range argv {
					words[i] = []byte(a)
				}
				got = append(got, n.localReadTyped(words))
			}
			g.Checked++
			f, ok := first[k]
			if !ok {
				first[k] = ref{n.cfg.ID, got}
				continue
			}
			nowMs := (simEpoch + r.W.now) / 1e6
			near := func(x Reply) bool { return x.Kind == ':' && x.Int > 0 && absInt(x.Int-nowMs) < 2000 }
			if near(got[0]) || near(f.replies[0]) {
				continue
			}
			for i, argv := range reads(k) {
				same := sameReply(f.replies[i], got[i])
				if !same && (argv[0] == "HGETALL" || argv[0] == "SMEMBERS") {
					same = sameUnordered(f.replies[i], got[i], map[string]int{"HGETALL": 2, "SMEMBERS": 1}[argv[0]])
				}
				if !same {
					r.Oracle.fail("convergence: n" + itoa(int64(n.cfg.ID)) + " answers " + strings.Join(argv, " ") + " with " + got[i].String() +
						" but n" + itoa(int64(f.node)) + " with " + f.replies[i].String() + " (applied " + itoa(int64(applied)) + ")")
					break
				}
			}
		}
	}
}

func absInt(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// localReadTyped is localRead for a read whose answer may be WRONGTYPE,
// which is an answer, not a reason to ask again.
func (n *Node) localReadTyped(argv [][]byte) Reply {
	last := Reply{Kind: '-', Str: "no reply"}
	for try := 0; try < 20 && n.up; try++ {
		var rec recorder
		reqs := []cluster.Request{{Argv: argv, W: &rec, ReadOnly: true}}
		done := false
		nd := n.nd
		nd.Submit(1, n.Clock.Now(), reqs, func() { done = true })
		n.FS.TakeBusy()
		n.flush()
		for i := 0; !done && i < 50 && n.nd == nd; i++ {
			n.r.W.RunUntil(n.r.W.now + int64(10*time.Millisecond))
		}
		if done {
			last = rec.top
			if !rec.top.IsError() || strings.HasPrefix(rec.top.Str, "WRONGTYPE") {
				return last
			}
		}
		n.r.W.RunUntil(n.r.W.now + int64(100*time.Millisecond))
	}
	return last
}
