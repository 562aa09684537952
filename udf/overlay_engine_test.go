package udf

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/keel-db/keel/engine"
	"pgregory.net/rapid"
)

// TestEffectsOnEngineMatchFake runs the same random call twice, once over
// the fake store and once over a real engine (EngineStore, effects applied
// with ApplyEffects), and checks both keyspaces end the same: the effects
// mean to the engine what the call meant.
func TestEffectsOnEngineMatchFake(t *testing.T) {
	keys := []string{"p:a", "p:b", "p:c", "q"}
	rapid.Check(t, func(rt *rapid.T) {
		fake := newFakeStore()
		r := rand.New(rand.NewPCG(7, 8))
		db := engine.New(engine.Options{Rand: r})
		now := fake.now
		for _, k := range keys {
			if !rapid.Bool().Draw(rt, "present "+k) {
				continue
			}
			v := strconv.Itoa(rapid.IntRange(0, 9).Draw(rt, "val "+k))
			fake.vals[k] = []byte(v)
			argv := bs("SET", k, v)
			if rapid.Bool().Draw(rt, "ttl "+k) {
				at := now + int64(rapid.IntRange(-2000, 5000).Draw(rt, "at "+k))
				fake.pxat[k] = at
				argv = append(argv, []byte("PXAT"), []byte(strconv.FormatInt(at, 10)))
			}
			// Load the engine at an earlier time so that past deadlines are
			// accepted, then act at now.
			if err := ApplyEffects(db, now-10_000, [][][]byte{argv}); err != nil {
				rt.Fatal(err)
			}
		}
		calls := []*callState{
			{store: fake, now: now, keys: bs(append([]string{"p:"}, keys...)...), fn: "fake"},
			{store: &EngineStore{DB: db, NowMillis: now, R: r}, now: now, keys: bs(append([]string{"p:"}, keys...)...), fn: "engine"},
		}
		n := rapid.IntRange(0, 12).Draw(rt, "ops")
		for i := 0; i < n; i++ {
			k := []byte(rapid.SampledFrom(keys).Draw(rt, "k"))
			op := rapid.IntRange(0, 3).Draw(rt, "op")
			ttl := rapid.SampledFrom([]int64{0, -1, 1000}).Draw(rt, "ttl")
			var got [2]string
			for j, st := range calls {
				switch op {
				case 0:
					st.set(k, []byte("5"), ttl)
				case 1:
					got[j] = strconv.FormatBool(st.del(k))
				case 2:
					got[j] = strconv.FormatInt(st.incrBy(k, 1), 10)
				case 3:
					got[j] = strings.Join(strs(st.scan([]byte("p:"), nil, 10)), ",")
				}
			}
			if got[0] != got[1] {
				rt.Fatalf("op %d on %s: fake %q, engine %q", op, k, got[0], got[1])
			}
		}
		fake.apply(rt, calls[0].effects())
		if err := ApplyEffects(db, now, calls[1].effects()); err != nil {
			rt.Fatal(err)
		}
		for _, k := range keys {
			var w recorder
			db.Exec(now, bs("GET", k), &w)
			db.Exec(now, bs("PTTL", k), &w)
			want := "nil :-2"
			if fake.live(k) {
				want = strconv.Quote(string(fake.vals[k])) + " :-1"
				if at := fake.pxat[k]; at != 0 {
					want = strconv.Quote(string(fake.vals[k])) + " :" + strconv.FormatInt(at-now, 10)
				}
			}
			if got := strings.TrimSpace(w.String()); got != want {
				rt.Fatalf("%s: engine %s, fake %s", k, got, want)
			}
		}
	})
}
