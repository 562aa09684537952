package udf

import (
	"sort"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestOverlayMatchesModel drives a call's buffered state (what the host
// functions do underneath) with random get/exists/set/del/incrby/scan
// against a plain map model, then applies the effects to the store and
// checks the store ends exactly where the model did: values and TTLs.
func TestOverlayMatchesModel(t *testing.T) {
	keys := []string{"p:a", "p:b", "p:c", "p:d", "q", "n"}
	rapid.Check(t, func(rt *rapid.T) {
		type entry struct {
			val  string
			pxat int64
		}
		s := newFakeStore()
		model := map[string]entry{}
		for _, k := range keys {
			if rapid.Bool().Draw(rt, "present "+k) {
				v := strconv.Itoa(rapid.IntRange(-5, 5).Draw(rt, "val "+k))
				if rapid.IntRange(0, 3).Draw(rt, "word "+k) == 0 {
					v = "w" + v
				}
				var at int64
				if rapid.Bool().Draw(rt, "ttl "+k) {
					// Some deadlines have passed: the key is there but
					// expired, which every read must treat as absent.
					at = s.now + int64(rapid.IntRange(-2000, 5000).Draw(rt, "at "+k))
				}
				s.vals[k] = []byte(v)
				if at != 0 {
					s.pxat[k] = at
				}
				if at == 0 || at >= s.now {
					model[k] = entry{v, at}
				}
			}
		}
		st := &callState{store: s, now: s.now, keys: bs(append([]string{"p:"}, keys...)...), fn: "model"}
		keyGen := rapid.SampledFrom(keys)
		rt.Repeat(map[string]func(*rapid.T){
			"get": func(rt *rapid.T) {
				k := keyGen.Draw(rt, "k")
				v, ok := st.lookup([]byte(k))
				e, want := model[k]
				if ok != want || (ok && string(v) != e.val) {
					rt.Fatalf("get %s = %q %v, model %q %v", k, v, ok, e.val, want)
				}
			},
			"exists": func(rt *rapid.T) {
				k := keyGen.Draw(rt, "k")
				if _, want := model[k]; st.exists([]byte(k)) != want {
					rt.Fatalf("exists %s != %v", k, want)
				}
			},
			"set": func(rt *rapid.T) {
				k := keyGen.Draw(rt, "k")
				v := "s" + strconv.Itoa(rapid.IntRange(0, 9).Draw(rt, "v"))
				ttl := rapid.SampledFrom([]int64{0, -1, 1000}).Draw(rt, "ttl")
				st.set([]byte(k), []byte(v), ttl)
				e := entry{val: v}
				switch ttl {
				case -1:
					e.pxat = model[k].pxat
				case 1000:
					e.pxat = s.now + 1000
				}
				model[k] = e
			},
			"del": func(rt *rapid.T) {
				k := keyGen.Draw(rt, "k")
				_, want := model[k]
				if st.del([]byte(k)) != want {
					rt.Fatalf("del %s != %v", k, want)
				}
				delete(model, k)
			},
			"incrby": func(rt *rapid.T) {
				k := keyGen.Draw(rt, "k")
				e, ok := model[k]
				cur, err := strconv.ParseInt(e.val, 10, 64)
				if ok && err != nil {
					rt.Skip("not an integer: the call would fail")
				}
				d := int64(rapid.IntRange(-3, 3).Draw(rt, "d"))
				if got := st.incrBy([]byte(k), d); got != cur+d {
					rt.Fatalf("incrby %s %d = %d, want %d", k, d, got, cur+d)
				}
				model[k] = entry{val: strconv.FormatInt(cur+d, 10), pxat: e.pxat}
			},
			"scan": func(rt *rapid.T) {
				after := rapid.SampledFrom([]string{"", "p:a", "p:b", "p:c"}).Draw(rt, "after")
				limit := rapid.IntRange(1, 5).Draw(rt, "limit")
				var want []string
				for k := range model {
					if strings.HasPrefix(k, "p:") && k > after {
						want = append(want, k)
					}
				}
				sort.Strings(want)
				if len(want) > limit {
					want = want[:limit]
				}
				var a []byte
				if after != "" {
					a = []byte(after)
				}
				got := strs(st.scan([]byte("p:"), a, limit))
				if strings.Join(got, ",") != strings.Join(want, ",") {
					rt.Fatalf("scan after %q limit %d = %v, want %v", after, limit, got, want)
				}
			},
		})
		s.apply(rt, st.effects())
		live := 0
		for k := range s.vals {
			if s.live(k) {
				live++
			}
		}
		if live != len(model) {
			rt.Fatalf("store has %d live keys, model %d: %s", live, len(model), s.snapshot())
		}
		for k, e := range model {
			if string(s.vals[k]) != e.val || s.pxat[k] != e.pxat {
				rt.Fatalf("%s: store %q@%d, model %q@%d", k, s.vals[k], s.pxat[k], e.val, e.pxat)
			}
		}
	})
}
