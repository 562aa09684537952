package cluster

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/udf"
)

// collCommand draws one request over four keys shared by every type:
// keel.call on hashes, lists, sets and sorted sets (through the
// collections library's passthrough), the string calls of abi on the same
// keys (WRONGTYPE both ways), a call that aborts after a write, prefix
// scans, and plain engine commands between them.
func collCommand(rng *rand.Rand) string {
	key := func() string { return "c:" + strconv.Itoa(rng.IntN(4)) }
	n := func(k int) string { return strconv.Itoa(rng.IntN(k)) }
	call := func(format string) string {
		k := key()
		return "FCALL call 1 " + k + " " + strings.ReplaceAll(format, "K", k)
	}
	switch rng.IntN(28) {
	case 0:
		return call("HSET K f" + n(3) + " v" + n(100))
	case 1:
		return call("HINCRBY K f" + n(3) + " " + n(9))
	case 2:
		return call("HGETALL K")
	case 3:
		return call("HDEL K f" + n(3))
	case 4:
		return call("RPUSH K x" + n(100))
	case 5:
		return call("LPOP K")
	case 6:
		return call("LRANGE K 0 -1")
	case 7:
		return call("SADD K m" + n(4))
	case 8:
		return call("SREM K m" + n(4))
	case 9:
		return call("SMEMBERS K")
	case 10:
		return call("ZADD K " + n(10) + " m" + n(4))
	case 11:
		return call("ZINCRBY K " + n(5) + " m" + n(4))
	case 12:
		return call("ZRANGE K 0 -1 WITHSCORES")
	case 13:
		return call("TYPE K")
	case 14:
		return call("DEL K")
	case 15:
		return call("EXPIRE K 100")
	case 16:
		k1, k2 := key(), key()
		return "FCALL call 2 " + k1 + " " + k2 + " LMOVE " + k1 + " " + k2 + " LEFT RIGHT"
	case 17:
		k := key()
		return "FCALL call_abort 1 " + k + " RPUSH " + k + " aborted"
	case 18:
		return "FCALL setv 1 " + key() + " s" + n(10)
	case 19:
		return "FCALL getv 1 " + key()
	case 20:
		return "FCALL scanp 1 c:"
	case 21:
		return "HSET " + key() + " f0 plain"
	case 22:
		return "RPUSH " + key() + " plain"
	case 23:
		return "GET " + key()
	case 24:
		return "FCALL incrv 1 " + key() + " 1"
	case 25:
		k := key()
		return "FCALL script 1 " + k + " kset " + k + " s" + n(9) + " " + []string{"0", "-1", "90000"}[rng.IntN(3)] + " ; PTTL " + k + " ; RPUSH " + k + " z ; kexists " + k
	case 26:
		k := key()
		return "FCALL script 1 " + k + " kincr " + k + " 1 ; kget " + k + " ; HINCRBY " + k + " f 1 ; TYPE " + k
	}
	return "FCALL_RO call 1 c:0 ZCARD c:0"
}

// Calls on collections answer the same and leave the same keyspace in one
// batch (reading through the pending effects of the calls before them) as
// one by one; and a replay of the log (a crash and restart) rebuilds
// exactly that keyspace without running guest code.
func TestCollectionCallsBatchMatchOneByOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 21))
	rounds := 40
	if testing.Short() {
		rounds = 15
	}
	for round := 0; round < rounds; round++ {
		cmds := make([]string, 1+rng.IntN(40))
		for i := range cmds {
			cmds[i] = collCommand(rng)
		}
		fs := disk.NewMemFS()
		a := openT(t, fs, "data")
		b := openT(t, disk.NewMemFS(), "data")
		for _, r := range []*Replica{a, b} {
			doReqs(r, t0, loadArgv(t, "abi"), loadArgv(t, "collections"))
		}
		batched := do(a, t0+sec, cmds...)
		var single []string
		for _, c := range cmds {
			single = append(single, do(b, t0+sec, c))
		}
		if want := strings.Join(single, " "); batched != want {
			t.Fatalf("round %d: %q\nbatched    %s\none by one %s", round, cmds, batched, want)
		}
		da, db := dump(a, t0+sec), dump(b, t0+sec)
		if da != db {
			t.Fatalf("round %d: keyspaces differ:\n%s\n%s", round, da, db)
		}
		a.Close()
		b.Close()
		a = openT(t, fs, "data")
		if got := dump(a, t0+sec); got != da {
			t.Fatalf("round %d: after replay:\n%s\nwant\n%s", round, got, da)
		}
		a.Close()
	}
}

// The job queue and the leaderboard through a replicated group: the
// followers apply the calls' collection effects without running them and
// end with the leader's keyspace.
func TestGroupCollectionCalls(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	if got := g.submitArgv(l, loadArgv(t, "jobqueue"), loadArgv(t, "collections")); got != "$jobqueue $collections" {
		t.Fatalf("load: %s", got)
	}
	got := g.submit(l, false,
		"FCALL job_push 2 {q}ready {q}jobs j1 p1", "FCALL job_push 2 {q}ready {q}jobs j2 p2",
		"FCALL job_push 2 {q}ready {q}jobs j1 again", "FCALL job_take 3 {q}ready {q}running {q}jobs",
		"FCALL job_done 2 {q}running {q}jobs j1", "FCALL_RO job_count 3 {q}ready {q}running {q}jobs",
		"FCALL lb_add 1 board ann 5", "FCALL lb_add 1 board bob 7", "FCALL lb_add 1 board ann 4",
		"FCALL_RO lb_top 1 board 2", "LRANGE {q}ready 0 -1", "HGETALL {q}jobs")
	want := ":1 :2 -ERR job exists *2 $j1 $p1 :1 *3 :1 :0 :1 *2 $5 :0 *2 $7 :0 *2 $9 :0 *4 $ann $9 $bob $7 *1 $j2 %1 $j2 $p2"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	for i := 0; i < 3; i++ {
		g.tick()
	}
	for _, id := range g.ids {
		if d := dump(g.reps[id], g.now); d != dump(g.reps[l], g.now) {
			t.Fatalf("n%d diverged:\n%s", id, d)
		}
	}
}

// The overlay's view of every key equals the keyspace the pending effects
// will make, whenever a read makes it build its scratch keyspace: effects
// of SET (with KEEPTTL and PXAT), DEL and collection commands over a few
// keys, in random order, with reads between them.
func TestPendingEffectsMatchApplied(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	const ms = t0 + sec
	keys := []string{"a", "b", "c"}
	for round := 0; round < 300; round++ {
		src := engine.New(engine.Options{})
		want := engine.New(engine.Options{})
		for _, db := range []*engine.DB{src, want} {
			var d engine.Discard
			db.Exec(ms, argv("SET a 1 PX 100000"), &d)
			db.Exec(ms, argv("RPUSH b x y"), &d)
		}
		var p pendingEffects
		st := &overlayStore{EngineStore: &udf.EngineStore{DB: src, NowMillis: ms}, p: &p}
		for step := 0; step < 12; step++ {
			k := keys[rng.IntN(len(keys))]
			var e string
			switch rng.IntN(6) {
			case 0:
				e = "SET " + k + " v" + strconv.Itoa(step)
				if rng.IntN(2) == 0 {
					e += " PXAT " + strconv.FormatInt(ms+50000, 10)
				}
			case 1:
				e = "SET " + k + " w KEEPTTL"
			case 2:
				e = "DEL " + k
			case 3:
				e = "RPUSH " + k + " e" + strconv.Itoa(step)
			case 4:
				e = "HSET " + k + " f " + strconv.Itoa(step)
			default:
				k2 := keys[rng.IntN(len(keys))]
				e = "LMOVE " + k + " " + k2 + " LEFT RIGHT"
			}
			// Effects are what succeeded: skip what the target refuses.
			var w rec
			want.Exec(ms, argv(e), &w)
			if strings.HasPrefix(w.String(), "-") {
				continue
			}
			p.add(src, ms, [][][]byte{argv(e)})
			if rng.IntN(3) == 0 {
				for _, k := range keys {
					if got, exp := st.Exists([]byte(k)), want.Live(ms, []byte(k)); got != exp {
						t.Fatalf("round %d after %q: Exists(%s) %v, want %v", round, e, k, got, exp)
					}
				}
			}
		}
		for _, k := range keys {
			dst := engine.New(engine.Options{})
			if err := st.CopyKey([]byte(k), dst); err != nil {
				t.Fatal(err)
			}
			got, exp := copyOf(t, dst, k), copyOf(t, want, k)
			if got != exp {
				t.Fatalf("round %d: key %s through the overlay %q, applied %q", round, k, got, exp)
			}
		}
	}
}

// copyOf renders key's type, value and deadline in db.
func copyOf(t *testing.T, db *engine.DB, key string) string {
	e, ok := db.LiveEntry(t0+sec, []byte(key))
	if !ok {
		return "none"
	}
	val, _ := e.AppendPiece(nil, 0, 1<<30)
	return strconv.Itoa(int(e.Type)) + " " + strconv.Quote(string(val)) + " @" + strconv.FormatInt(e.ExpireAt, 10)
}
