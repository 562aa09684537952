package udf

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/keel-db/keel/engine"
)

// collWorld runs calls of the collections and jobqueue examples over a
// real engine.DB, applying each call's effects as the replica does, and
// keeps a second DB that receives only the effects records (encoded and
// decoded), as a follower or a recovery would.
type collWorld struct {
	t        *testing.T
	h        *Host
	db, fol  *engine.DB
	r        *rand.Rand
	now      int64
	records  int
	versions map[byte]int
}

func newCollWorld(t *testing.T) *collWorld {
	r := rand.New(rand.NewPCG(3, 4))
	return &collWorld{t: t, h: newHost(t, NewConfig(), "collections", "jobqueue", "counter"), r: r,
		db: engine.New(engine.Options{Rand: r}), fol: engine.New(engine.Options{Rand: rand.New(rand.NewPCG(5, 6))}),
		now: 1_700_000_000_000, versions: map[byte]int{}}
}

func (w *collWorld) exec(db *engine.DB, args ...string) string {
	var rec recorder
	db.Exec(w.now, bs(args...), &rec)
	return strings.TrimSpace(rec.String())
}

// fcall runs fn; the reply as Reply.String, or "-" + the error.
func (w *collWorld) fcall(fn string, keys []string, args ...string) string {
	w.t.Helper()
	return w.fcallRO(false, fn, keys, args...)
}

func (w *collWorld) fcallRO(ro bool, fn string, keys []string, args ...string) string {
	w.t.Helper()
	st := &EngineStore{DB: w.db, NowMillis: w.now, R: w.r}
	res, err := w.h.Call(context.Background(), fn, bs(keys...), bs(args...), st, ro)
	if err != nil {
		return "-" + Message(err)
	}
	if len(res.Effects) > 0 {
		rec := EncodeEffects(res.Effects)
		w.versions[rec[0]]++
		w.records++
		if err := ApplyEffects(w.db, w.now, res.Effects); err != nil {
			w.t.Fatal(err)
		}
		dec, err := DecodeEffects(rec)
		if err != nil {
			w.t.Fatal(err)
		}
		if err := ApplyEffects(w.fol, w.now, dec); err != nil {
			w.t.Fatal(err)
		}
	}
	return res.Reply.String()
}

// call is FCALL call: the command in args, on the declared keys.
func (w *collWorld) call(keys []string, argv ...string) string {
	w.t.Helper()
	return w.fcall("call", keys, argv...)
}

// same checks that the follower's keyspace equals the leader's.
func (w *collWorld) same() {
	w.t.Helper()
	if a, b := dumpDB(w.db, w.now), dumpDB(w.fol, w.now); a != b {
		w.t.Fatalf("follower differs:\nleader   %s\nfollower %s", a, b)
	}
}

// dumpDB renders every key, its type, value and deadline.
func dumpDB(db *engine.DB, now int64) string {
	var b strings.Builder
	db.AscendLive(now, nil, func([]byte) bool { return true }, func(e engine.Entry) bool {
		var val []byte
		for from := uint64(0); ; {
			var next uint64
			val, next = e.AppendPiece(val, from, 1<<20)
			if next >= e.Units() || next == from {
				break
			}
			from = next
		}
		b.WriteString(string(e.Key) + "/" + string(rune('0'+e.Type)) + "/" + string(val) + "/" + itoa(e.ExpireAt) + " ")
		return true
	})
	return b.String()
}

func itoa(n int64) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n)) }

func fmtInt(n int64) string {
	var w recorder
	w.WriteInt(n)
	return strings.TrimSuffix(strings.TrimPrefix(w.String(), ":"), " ")
}

func TestCallHashes(t *testing.T) {
	w := newCollWorld(t)
	steps := []struct {
		keys []string
		argv []string
		want string
	}{
		{[]string{"h"}, []string{"HSET", "h", "a", "1", "b", "2"}, "(integer) 2"},
		{[]string{"h"}, []string{"HGET", "h", "a"}, `"1"`},
		{[]string{"h"}, []string{"HINCRBY", "h", "a", "41"}, "(integer) 42"},
		{[]string{"h"}, []string{"HINCRBY", "h", "b", "x"}, "(error) ERR value is not an integer or out of range"},
		{[]string{"h"}, []string{"HLEN", "h"}, "(integer) 2"},
		{[]string{"h"}, []string{"HGETALL", "h"}, `["a" "42" "b" "2"]`},
		{[]string{"h"}, []string{"HDEL", "h", "b", "zz"}, "(integer) 1"},
		{[]string{"h"}, []string{"HGET", "h", "b"}, "(nil)"},
		{[]string{"h"}, []string{"TYPE", "h"}, "hash"},
		{[]string{"h"}, []string{"HSET", "h"}, "(error) ERR wrong number of arguments for 'hset' command"},
	}
	for _, s := range steps {
		if got := w.call(s.keys, s.argv...); got != s.want {
			t.Fatalf("%v: got %s, want %s", s.argv, got, s.want)
		}
	}
	w.same()
	if w.versions[effectsVersionCommand] == 0 {
		t.Fatal("no version-2 effects record")
	}
}

func TestCallListsSetsSortedSets(t *testing.T) {
	w := newCollWorld(t)
	steps := []struct {
		keys []string
		argv []string
		want string
	}{
		{[]string{"l"}, []string{"RPUSH", "l", "a", "b", "c"}, "(integer) 3"},
		{[]string{"l"}, []string{"LPUSH", "l", "z"}, "(integer) 4"},
		{[]string{"l"}, []string{"LRANGE", "l", "0", "-1"}, `["z" "a" "b" "c"]`},
		{[]string{"l"}, []string{"LPOP", "l"}, `"z"`},
		{[]string{"l"}, []string{"RPOP", "l"}, `"c"`},
		{[]string{"l"}, []string{"LLEN", "l"}, "(integer) 2"},
		{[]string{"s"}, []string{"SADD", "s", "x", "y", "x"}, "(integer) 2"},
		{[]string{"s"}, []string{"SISMEMBER", "s", "y"}, "(integer) 1"},
		{[]string{"s"}, []string{"SREM", "s", "y"}, "(integer) 1"},
		{[]string{"s"}, []string{"SMEMBERS", "s"}, `["x"]`},
		{[]string{"s"}, []string{"SCARD", "s"}, "(integer) 1"},
		{[]string{"s"}, []string{"SPOP", "s"}, "-ERR function 'call' called 'spop', which draws randomness: functions may not (use keel.random to choose, then a deterministic command)"},
		{[]string{"s"}, []string{"BLPOP", "s", "0"}, "-ERR function 'call' called 'blpop': functions cannot block"},
		{[]string{"s"}, []string{"FLUSHALL"}, "-ERR function 'call' called 'FLUSHALL', which keel.call does not run (docs/functions.md lists the commands it does)"},
		{[]string{"z"}, []string{"ZADD", "z", "1", "a", "2", "b"}, "(integer) 2"},
		{[]string{"z"}, []string{"ZINCRBY", "z", "2.5", "a"}, `"3.5"`},
		{[]string{"z"}, []string{"ZSCORE", "z", "a"}, `"3.5"`},
		{[]string{"z"}, []string{"ZRANK", "z", "a"}, "(integer) 1"},
		{[]string{"z"}, []string{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, `["b" "2" "a" "3.5"]`},
		{[]string{"z"}, []string{"ZREM", "z", "b"}, "(integer) 1"},
		{[]string{"z"}, []string{"ZCARD", "z"}, "(integer) 1"},
		// WRONGTYPE comes back as a value with Redis's text.
		{[]string{"z"}, []string{"LPUSH", "z", "q"}, "(error) WRONGTYPE Operation against a key holding the wrong kind of value"},
		{[]string{"z", "l"}, []string{"DEL", "z", "l"}, "(integer) 2"},
		{[]string{"z"}, []string{"EXISTS", "z"}, "(integer) 0"},
		// Undeclared keys fail the call.
		{[]string{"s"}, []string{"SADD", "other", "x"}, "-ERR function 'call' accessed key 'other' (keel.call) that was not declared in numkeys"},
	}
	for _, s := range steps {
		if got := w.call(s.keys, s.argv...); got != s.want {
			t.Fatalf("%v: got %s, want %s", s.argv, got, s.want)
		}
	}
	w.same()
	// EXPIRE is logged as the absolute PEXPIREAT it meant.
	w.call([]string{"s"}, "EXPIRE", "s", "100")
	if got := w.exec(w.db, "PEXPIRETIME", "s"); got != ":"+fmtInt(w.now+100_000) {
		t.Fatalf("PEXPIRETIME = %s", got)
	}
	w.same()
	// FCALL_RO refuses writes, allows reads.
	if got := w.fcallRO(true, "call", []string{"s"}, "SADD", "s", "q"); !strings.Contains(got, "Write commands are not allowed from read-only scripts") {
		t.Fatal(got)
	}
	if got := w.fcallRO(true, "call", []string{"s"}, "SCARD", "s"); got != "(integer) 1" {
		t.Fatal(got)
	}
}

// A call that aborts or traps after collection writes changes nothing;
// reads inside a call see its own earlier writes, string and collection.
func TestCallAtomicAndReadsOwnWrites(t *testing.T) {
	w := newCollWorld(t)
	w.call([]string{"q"}, "RPUSH", "q", "a")
	before := dumpDB(w.db, w.now)
	if got := w.fcall("call_abort", []string{"q"}, "RPUSH", "q", "b"); got != "-ERR aborted after the command" {
		t.Fatal(got)
	}
	if dumpDB(w.db, w.now) != before {
		t.Fatal("an aborted call changed the keyspace")
	}
	// The job queue: push, take (LMOVE + HGET in one call), done.
	keys3 := []string{"q:ready", "q:running", "q:jobs"}
	if got := w.fcall("job_push", []string{"q:ready", "q:jobs"}, "j1", "payload-1"); got != "(integer) 1" {
		t.Fatal(got)
	}
	if got := w.fcall("job_push", []string{"q:ready", "q:jobs"}, "j1", "again"); got != "-ERR job exists" {
		t.Fatal(got)
	}
	w.fcall("job_push", []string{"q:ready", "q:jobs"}, "j2", "payload-2")
	if got := w.fcall("job_take", keys3); got != `["j1" "payload-1"]` {
		t.Fatal(got)
	}
	if got := w.fcallRO(true, "job_count", keys3); got != "[(integer) 1 (integer) 1 (integer) 2]" {
		t.Fatal(got)
	}
	if got := w.fcall("job_done", []string{"q:running", "q:jobs"}, "j1"); got != "(integer) 1" {
		t.Fatal(got)
	}
	if got := w.fcall("job_done", []string{"q:running", "q:jobs"}, "j1"); got != "(integer) 0" {
		t.Fatal(got)
	}
	// The leaderboard: ZINCRBY then ZREVRANK of what it just wrote.
	w.fcall("lb_add", []string{"board"}, "ann", "5")
	if got := w.fcall("lb_add", []string{"board"}, "bob", "7"); got != `["7" (integer) 0]` {
		t.Fatal(got)
	}
	if got := w.fcall("lb_add", []string{"board"}, "ann", "4"); got != `["9" (integer) 0]` {
		t.Fatal(got)
	}
	if got := w.fcallRO(true, "lb_top", []string{"board"}, "2"); got != `["ann" "9" "bob" "7"]` {
		t.Fatal(got)
	}
	// A string write then a collection command on the same key in one call
	// (incr_by through keel.incrby is another library: use call twice).
	w.exec(w.db, "SET", "n", "1")
	w.exec(w.fol, "SET", "n", "1")
	if got := w.call([]string{"n"}, "INCRBY", "n", "2"); got != "(integer) 3" {
		t.Fatal(got)
	}
	w.same()
}

// The Go SDK's typed calls (sdk.ZIncrBy, sdk.ZRank) and its error values.
func TestGoGuestCollections(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go guest")
	}
	w := newCollWorld(t)
	w.h = newHost(t, NewConfig())
	if _, err := w.h.Load(context.Background(), "gocounter", buildGoGuest(t), false); err != nil {
		t.Fatal(err)
	}
	w.fcall("score", []string{"z"}, "ann", "5")
	if got := w.fcall("score", []string{"z"}, "bob", "3"); got != "[(integer) 3 (integer) 0]" {
		t.Fatal(got)
	}
	if got := w.fcall("score", []string{"z"}, "bob", "4"); got != "[(integer) 7 (integer) 1]" {
		t.Fatal(got)
	}
	w.exec(w.db, "SET", "s", "x")
	w.exec(w.fol, "SET", "s", "x")
	if got := w.fcall("score", []string{"s"}, "bob", "4"); got != "(error) WRONGTYPE Operation against a key holding the wrong kind of value" {
		t.Fatal(got)
	}
	w.same()
}

// Bounds: reading a collection the call did not write copies nothing, so
// any size is fine; writing one copies it, charged by its size and
// refused past copyBytesMax before anything is copied; keel.call pays
// fuel for the command and for every byte it moves, and runs out of fuel
// at the same point every time.
func TestCallBounds(t *testing.T) {
	w := newCollWorld(t)
	args := []string{"ZADD", "big"}
	for i := 0; i < 2000; i++ {
		args = append(args, fmtInt(int64(i)), "member-"+fmtInt(int64(i)))
	}
	w.exec(w.db, args...)
	w.exec(w.fol, args...)
	old := copyBytesMax
	copyBytesMax = 16 << 10
	defer func() { copyBytesMax = old }()
	if got := w.call([]string{"big"}, "ZSCORE", "big", "member-7"); got != `"7"` {
		t.Fatal(got)
	}
	before := dumpDB(w.db, w.now)
	got := w.call([]string{"big"}, "ZADD", "big", "1", "x")
	if !strings.HasPrefix(got, "-ERR function 'call' would copy ") || !strings.Contains(got, "a call copies at most 16384") {
		t.Fatal(got)
	}
	if dumpDB(w.db, w.now) != before {
		t.Fatal("a refused copy changed the keyspace")
	}
	copyBytesMax = old

	// Fuel: an LRANGE of 2000 elements pays for its reply's bytes.
	fuel := func(fn string, keys []string, args ...string) int64 {
		f0 := w.h.Stats().FuelUsed
		w.fcall(fn, keys, args...)
		return w.h.Stats().FuelUsed - f0
	}
	small := fuel("call", []string{"big"}, "ZRANGE", "big", "0", "0")
	large := fuel("call", []string{"big"}, "ZRANGE", "big", "0", "-1")
	if large-small < 2000*10/4 || small < callFuel {
		t.Fatalf("fuel: one element %d, 2000 elements %d", small, large)
	}
	// A small fuel budget stops the call at the same point, every time.
	h := newHost(t, NewConfig().WithFuel(callFuel+2000), "collections")
	var msgs []string
	for i := 0; i < 3; i++ {
		st := &EngineStore{DB: w.db, NowMillis: w.now, R: w.r}
		_, err := h.Call(context.Background(), "call", bs("big"), bs("ZRANGE", "big", "0", "-1"), st, false)
		msgs = append(msgs, Message(err))
	}
	if !strings.Contains(msgs[0], "ran out of fuel") || msgs[1] != msgs[0] || msgs[2] != msgs[0] {
		t.Fatalf("%q", msgs)
	}
}

// One call that mixes the string calls and keel.call on the same keys
// answers and writes exactly what the same commands do run one by one on
// the engine (a call that fails writes nothing), and the effects records
// alone bring a follower to the same keyspace: reads see the call's own
// earlier writes whichever way they were made, and a key moves into the
// scratch keyspace with its buffered string write.
func TestCallMixedWithStringCallsMatchesEngine(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	rounds := 400
	if testing.Short() {
		rounds = 100
	}
	w := newCollWorld(t)
	model := engine.New(engine.Options{Rand: rand.New(rand.NewPCG(1, 1))})
	keys := []string{"m:a", "m:b", "m:c"}
	failed, moved := 0, 0
	defer func() {
		t.Logf("%d calls, %d failed as a whole, %d moved a string write into the scratch keyspace", rounds, failed, moved)
	}()
	for round := 0; round < rounds; round++ {
		var args []string
		var steps [][]string
		for n := 1 + rng.IntN(8); n > 0; n-- {
			k := keys[rng.IntN(len(keys))]
			v := "v" + fmtInt(int64(rng.IntN(50)))
			var s []string
			switch rng.IntN(16) {
			case 0:
				s = []string{"kget", k}
			case 1:
				s = []string{"kset", k, v, []string{"0", "-1", "5000"}[rng.IntN(3)]}
			case 2:
				s = []string{"kdel", k}
			case 3:
				s = []string{"kincr", k, fmtInt(int64(rng.IntN(5)))}
			case 4:
				s = []string{"kexists", k}
			case 5:
				s = []string{"HSET", k, "f" + fmtInt(int64(rng.IntN(2))), v}
			case 6:
				s = []string{"HGETALL", k}
			case 7:
				s = []string{"RPUSH", k, v}
			case 8:
				s = []string{"LPOP", k}
			case 9:
				s = []string{"ZINCRBY", k, "1.5", v[:2]}
			case 10:
				s = []string{"ZRANGE", k, "0", "-1", "WITHSCORES"}
			case 11:
				s = []string{"TYPE", k}
			case 12:
				s = []string{"PTTL", k}
			case 13:
				s = []string{"EXPIRE", k, "7"}
			case 14:
				s = []string{"INCRBY", k, "2"}
			default:
				k2 := keys[rng.IntN(len(keys))]
				s = []string{"LMOVE", k, k2, "LEFT", "RIGHT"}
			}
			if len(args) > 0 {
				args = append(args, ";")
			}
			args = append(args, s...)
			steps = append(steps, s)
		}
		got := w.fcall("script", keys, args...)
		want := modelScript(t, model, w.now, steps)
		if strings.HasPrefix(got, "-") {
			failed++
		}
		if w.h.st.cmds != nil && len(w.h.st.writes) > 0 {
			for i := range w.h.st.writes {
				if w.h.st.writes[i].w.shadowed {
					moved++
					break
				}
			}
		}
		if got != want {
			t.Fatalf("round %d: %q\ncall   %s\nengine %s", round, args, got, want)
		}
		if a, b := dumpDB(w.db, w.now), dumpDB(model, w.now); a != b {
			t.Fatalf("round %d: %q\ncall   %s\nengine %s", round, args, a, b)
		}
		w.same()
		w.now += 1000
	}
}

// modelScript runs steps on db as the script function means them. A step
// whose string call fails (WRONGTYPE, not an integer) fails the whole
// call: db is put back as it was.
func modelScript(t *testing.T, db *engine.DB, now int64, steps [][]string) string {
	keys := map[string]bool{}
	for _, s := range steps {
		for _, a := range s[1:] {
			if strings.HasPrefix(a, "m:") {
				keys[a] = true
			}
		}
	}
	saved := engine.New(engine.Options{})
	for k := range keys {
		if err := CopyKey(db, now, []byte(k), saved); err != nil {
			t.Fatal(err)
		}
	}
	restore := func(msg string) string {
		for k := range keys {
			var d engine.Discard
			db.Exec(now, bs("DEL", k), &d)
			if err := CopyKey(saved, now, []byte(k), db); err != nil {
				t.Fatal(err)
			}
		}
		return "-" + msg
	}
	var out []string
	var enc replyEncoder
	exec := func(argv ...string) ([]byte, bool) {
		enc.reset()
		db.Exec(now, bs(argv...), &enc)
		return enc.buf, enc.isError()
	}
	for _, s := range steps {
		switch s[0] {
		case "kget":
			r, isErr := exec("GET", s[1])
			if isErr {
				return restore(string(enc.errText()))
			}
			out = append(out, decodedString(t, r))
		case "kset":
			argv := []string{"SET", s[1], s[2]}
			switch s[3] {
			case "-1":
				argv = append(argv, "KEEPTTL")
			case "5000":
				argv = append(argv, "PX", "5000")
			}
			exec(argv...)
			out = append(out, "OK")
		case "kdel":
			r, _ := exec("DEL", s[1])
			out = append(out, decodedString(t, r))
		case "kincr":
			r, isErr := exec("INCRBY", s[1], s[2])
			if isErr {
				return restore(string(enc.errText()))
			}
			out = append(out, decodedString(t, r))
		case "kexists":
			r, _ := exec("EXISTS", s[1])
			out = append(out, decodedString(t, r))
		default:
			r, _ := exec(s...)
			out = append(out, decodedString(t, r))
		}
	}
	return "[" + strings.Join(out, " ") + "]"
}

// decodedString renders an encoded keel.call reply as Reply.String does.
func decodedString(t *testing.T, b []byte) string {
	r, rest := decodeReplyForTest(t, b)
	if len(rest) != 0 {
		t.Fatalf("trailing bytes in %q", b)
	}
	return r.String()
}

func decodeReplyForTest(t *testing.T, b []byte) (Reply, []byte) {
	u32 := func(p []byte) int { return int(p[0]) | int(p[1])<<8 | int(p[2])<<16 | int(p[3])<<24 }
	switch b[0] {
	case '_':
		return Reply{Kind: ReplyNil}, b[1:]
	case ':':
		var n uint64
		for i := 8; i >= 1; i-- {
			n = n<<8 | uint64(b[i])
		}
		return Reply{Kind: ReplyInt, Int: int64(n)}, b[9:]
	case '$', '+', '-':
		n := u32(b[1:])
		kind := map[byte]ReplyKind{'$': ReplyBulk, '+': ReplySimple, '-': ReplyError}[b[0]]
		return Reply{Kind: kind, Bytes: b[5 : 5+n]}, b[5+n:]
	case '*':
		n := u32(b[1:])
		r := Reply{Kind: ReplyArray}
		b = b[5:]
		for i := 0; i < n; i++ {
			var e Reply
			e, b = decodeReplyForTest(t, b)
			r.Elems = append(r.Elems, e)
		}
		return r, b
	}
	t.Fatalf("bad tag %q", b[0])
	return Reply{}, nil
}

// keel.call_reply returns the last keel.call's reply even after a string
// call that ran a command in the scratch keyspace in between.
func TestCallReplySurvivesStringCall(t *testing.T) {
	w := newCollWorld(t)
	w.h = newHost(t, NewConfig(), "abi")
	w.exec(w.db, "SET", "s", "ab")
	w.exec(w.fol, "SET", "s", "ab")
	if got := w.fcall("callreply", []string{"s"}, "APPEND", "s", "x"); got != `[(integer) 3 "abx"]` {
		t.Fatal(got)
	}
	w.same()
}
