package engine

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"testing"

	"pgregory.net/rapid"
)

// kiHarness is a keyIndex over keys kept in a slice (ref i+1 is keys[i]),
// with a sorted model of what the index should hold.
type kiHarness struct {
	t     *keyIndex
	keys  [][]byte
	model map[string]ref
	reads int // keyOf calls, for the "reads no stored key" test
}

func newKIHarness() *kiHarness {
	h := &kiHarness{model: map[string]ref{}}
	h.t = newKeyIndex(func(r ref) []byte { h.reads++; return h.keys[r-1] }, func([]ref) {})
	return h
}

func (h *kiHarness) newRef(key []byte) ref {
	h.keys = append(h.keys, append([]byte(nil), key...))
	return ref(len(h.keys))
}

// put inserts key (or appends it, when it is greater than every key) and
// records it in the model.
func (h *kiHarness) put(key []byte, appending bool) {
	r := h.newRef(key)
	if appending {
		h.t.append(r, key)
	} else {
		h.t.insert(r, key)
	}
	h.model[string(key)] = r
}

func (h *kiHarness) sorted() []string {
	out := make([]string, 0, len(h.model))
	for k := range h.model {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (h *kiHarness) contents(t *keyIndex) []string {
	var out []string
	t.ascendLeaves(func(refs []ref) bool {
		for _, r := range refs {
			out = append(out, string(h.keys[r-1]))
		}
		return true
	})
	return out
}

// kiKey draws keys that share long prefixes, end in zero bytes and differ
// in their last bytes: the cases tags and fences get wrong.
func kiKey() *rapid.Generator[[]byte] {
	return rapid.Custom(func(t *rapid.T) []byte {
		prefixes := []string{"", "a", "key:0000", "key:00001", "key:\x00", "user:42:", "zz"}
		p := rapid.SampledFrom(prefixes).Draw(t, "prefix")
		tail := rapid.SliceOfN(rapid.SampledFrom([]byte{0, 1, '0', '1', '9', 'a', 0xff}), 0, 6).Draw(t, "tail")
		return append([]byte(p), tail...)
	})
}

func TestKeyIndexModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		h := newKIHarness()
		var clones []*keyIndex
		var cloneWant [][]string
		steps := rapid.IntRange(1, 2000).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			switch op := rapid.IntRange(0, 9).Draw(rt, "op"); {
			case op < 5: // insert (or replace)
				h.put(kiKey().Draw(rt, "key"), false)
			case op < 8: // delete an existing key
				if len(h.model) == 0 {
					continue
				}
				ks := h.sorted()
				k := ks[rapid.IntRange(0, len(ks)-1).Draw(rt, "victim")]
				if !h.t.delete(h.model[k], []byte(k)) {
					rt.Fatalf("delete of present key %q failed", k)
				}
				delete(h.model, k)
			case op == 8: // delete a missing ref: refused, nothing changes
				k := kiKey().Draw(rt, "key")
				if h.t.delete(ref(1<<30), k) {
					rt.Fatalf("delete of an absent ref succeeded")
				}
			default: // clone
				clones = append(clones, h.t.clone())
				cloneWant = append(cloneWant, h.sorted())
			}
			if err := h.t.check(); err != nil {
				rt.Fatalf("after step %d: %v", i, err)
			}
		}
		want := h.sorted()
		if got := h.contents(h.t); !slices.Equal(got, want) {
			rt.Fatalf("contents %q, want %q", got, want)
		}
		for i := range want {
			if r := h.model[want[i]]; !bytes.Equal(h.keys[r-1], []byte(want[i])) {
				rt.Fatalf("model ref mismatch")
			}
		}
		if h.t.Len() != len(want) {
			rt.Fatalf("Len %d, want %d", h.t.Len(), len(want))
		}
		if r, ok := h.t.max(); ok != (len(want) > 0) || (ok && string(h.keys[r-1]) != want[len(want)-1]) {
			rt.Fatalf("max %v %v, want the last of %d keys", r, ok, len(want))
		}
		// Every seek starts at the first key >= the probe.
		for j := 0; j < 20; j++ {
			q := kiKey().Draw(rt, "probe")
			var got []string
			h.t.seek(q, func(r ref) bool {
				got = append(got, string(h.keys[r-1]))
				return len(got) < 3
			})
			at := sort.SearchStrings(want, string(q))
			exp := want[at:min(at+3, len(want))]
			if !slices.Equal(got, exp) {
				rt.Fatalf("seek %q: %q, want %q", q, got, exp)
			}
		}
		// Clones kept what they held.
		for i, c := range clones {
			if got := h.contents(c); !slices.Equal(got, cloneWant[i]) {
				rt.Fatalf("clone %d changed: %q, want %q", i, got, cloneWant[i])
			}
			if c.Len() != len(cloneWant[i]) {
				rt.Fatalf("clone %d Len %d, want %d", i, c.Len(), len(cloneWant[i]))
			}
		}
	})
}

// TestKeyIndexAppend checks the bulk-load path: ascending appends leave
// full leaves, and the index answers like one built by inserts.
func TestKeyIndexAppend(t *testing.T) {
	h := newKIHarness()
	const n = 100_000
	for i := 0; i < n; i++ {
		h.put([]byte(fmt.Sprintf("key:%012d", i*3)), true)
	}
	if err := h.t.check(); err != nil {
		t.Fatal(err)
	}
	if got := h.contents(h.t); !slices.Equal(got, h.sorted()) {
		t.Fatalf("appended index out of order")
	}
	leaves := 0
	h.t.ascendLeaves(func([]ref) bool { leaves++; return true })
	if want := (n + kiLeafMax - 1) / kiLeafMax; leaves != want {
		t.Fatalf("%d leaves after %d appends, want %d (full leaves)", leaves, n, want)
	}
	// Inserting between the appended keys works as on any index.
	for i := 0; i < n; i += 7 {
		h.put([]byte(fmt.Sprintf("key:%012d", i*3+1)), false)
	}
	if err := h.t.check(); err != nil {
		t.Fatal(err)
	}
	if got := h.contents(h.t); !slices.Equal(got, h.sorted()) {
		t.Fatalf("index out of order after inserts")
	}
}

// TestKeyIndexInsertReadsFewKeys is the point of the tags: in a large
// index of keys that share long prefixes, an insert that does not split a
// leaf reads no stored key, where a tree of bare refs reads one per
// comparison (~23 at 10M keys).
func TestKeyIndexInsertReadsFewKeys(t *testing.T) {
	h := newKIHarness()
	rng := uint64(1)
	next := func() uint64 {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return rng
	}
	// addNew inserts n keys the index does not hold yet.
	addNew := func(n int) {
		for added := 0; added < n; {
			k := []byte(fmt.Sprintf("key:%012d", next()%40_000_000))
			if _, ok := h.model[string(k)]; !ok {
				h.put(k, false)
				added++
			}
		}
	}
	addNew(200_000)
	h.reads = 0
	const inserts = 10_000
	addNew(inserts)
	// Splits read every key of the two halves (62) and the separator; the
	// root and the outer spines compare by key. Allow 8 reads per insert
	// on average; bare refs would need ~17 at this size.
	t.Logf("%.2f stored-key reads per insert", float64(h.reads)/float64(inserts))
	if per := float64(h.reads) / float64(inserts); per > 8 {
		t.Fatalf("%.1f stored-key reads per insert, want <= 8", per)
	}
	if err := h.t.check(); err != nil {
		t.Fatal(err)
	}
}

// TestKeyIndexModelDeep drives trees three and four levels high through
// bursts of inserts and deletes (inner splits, merges of inner nodes, the
// root giving way), checking the invariants after each burst.
func TestKeyIndexModelDeep(t *testing.T) {
	heights := map[int]int{}
	rapid.Check(t, func(rt *rapid.T) {
		h := newKIHarness()
		rng := rapid.Uint64().Draw(rt, "seed") | 1
		next := func() uint64 {
			rng ^= rng << 13
			rng ^= rng >> 7
			rng ^= rng << 17
			return rng
		}
		formats := []string{"key:%012d", "k%d", "user:%d:x", "%x\x00"}
		var clone *keyIndex
		var cloneWant []string
		bursts := rapid.IntRange(1, 12).Draw(rt, "bursts")
		for b := 0; b < bursts; b++ {
			n := rapid.IntRange(1, 30_000).Draw(rt, "n")
			space := rapid.SampledFrom([]uint64{100, 10_000, 1_000_000}).Draw(rt, "space")
			switch rapid.IntRange(0, 3).Draw(rt, "kind") {
			case 0, 1: // insert
				f := rapid.SampledFrom(formats).Draw(rt, "format")
				for i := 0; i < n; i++ {
					h.put([]byte(fmt.Sprintf(f, next()%space)), false)
				}
			case 2: // delete a share of the keys, chosen at random
				keep := rapid.IntRange(0, 9).Draw(rt, "keep10ths")
				for _, k := range h.sorted() {
					if int(next()%10) >= keep {
						if !h.t.delete(h.model[k], []byte(k)) {
							rt.Fatalf("delete of present key %q failed", k)
						}
						delete(h.model, k)
					}
				}
			default: // delete a contiguous range
				ks := h.sorted()
				if len(ks) == 0 {
					continue
				}
				from := int(next() % uint64(len(ks)))
				for _, k := range ks[from:min(from+n, len(ks))] {
					if !h.t.delete(h.model[k], []byte(k)) {
						rt.Fatalf("delete of present key %q failed", k)
					}
					delete(h.model, k)
				}
			}
			if err := h.t.check(); err != nil {
				rt.Fatalf("after burst %d: %v", b, err)
			}
			if clone == nil && next()%3 == 0 {
				clone, cloneWant = h.t.clone(), h.sorted()
			}
		}
		if got := h.contents(h.t); !slices.Equal(got, h.sorted()) {
			rt.Fatalf("contents differ from the model (%d against %d keys)", len(got), len(h.model))
		}
		if clone != nil && !slices.Equal(h.contents(clone), cloneWant) {
			rt.Fatalf("clone changed")
		}
		heights[h.t.height]++
	})
	t.Logf("final heights reached: %v", heights)
	if len(heights) < 3 {
		t.Fatalf("the runs reached only heights %v; the test must reach inner splits and merges", heights)
	}
}

// TestKeyIndexBytesPerKey holds the per-key charge UsedBytes makes for
// the ordered index (treeBytesPerKey) to what its nodes take after random
// inserts (leaves about 70 % full), and checks a bulk load fills them.
func TestKeyIndexBytesPerKey(t *testing.T) {
	h := newKIHarness()
	rng := uint64(3)
	for len(h.model) < 200_000 {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		k := []byte(fmt.Sprintf("key:%012d", rng%40_000_000))
		if _, ok := h.model[string(k)]; !ok {
			h.put(k, false)
		}
	}
	random := float64(h.t.nodeBytes()) / float64(h.t.Len())
	if random > treeBytesPerKey {
		t.Fatalf("random inserts: %.1f B/key in the index, UsedBytes charges %d", random, treeBytesPerKey)
	}
	loaded := newKIHarness()
	for _, k := range h.sorted() {
		loaded.put([]byte(k), true)
	}
	full := float64(loaded.t.nodeBytes()) / float64(loaded.t.Len())
	if want := float64(kiLeafBytes)/kiLeafMax + 1; full > want {
		t.Fatalf("bulk load: %.1f B/key, want at most %.1f (full leaves)", full, want)
	}
	t.Logf("random inserts %.1f B/key, bulk load %.1f B/key", random, full)
}
