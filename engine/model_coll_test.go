package engine

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// The collection models: plain Go values with the encodings' orders and
// Redis's conversion rules written out again, independently of the
// engine's code. TestCollectionModel requires the engine to answer every
// command exactly as they do, while views taken at random keep reading
// what they saw and every tree keeps its invariants.

type hashModel struct {
	fields map[string]string
	order  []string // insertion order, while a listpack
	tree   bool
}

func (h *hashModel) set(f, v string) bool {
	if len(f) > hashMaxListpackValue || len(v) > hashMaxListpackValue {
		h.tree = true
	}
	_, ok := h.fields[f]
	h.fields[f] = v
	if !ok {
		h.order = append(h.order, f)
		if len(h.fields) > hashMaxListpackEntries {
			h.tree = true
		}
	}
	return !ok
}

func (h *hashModel) keys() []string {
	if !h.tree {
		return h.order
	}
	ks := make([]string, 0, len(h.fields))
	for k := range h.fields {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

type setModel struct {
	members map[string]bool
	order   []string // a listpack's insertion order
	enc     byte     // encIntset, encListpackSet, encHashtableSet
}

func isRedisInt(s string) bool { _, ok := parseInt([]byte(s)); return ok }

func (s *setModel) add(m string) bool {
	if s.members[m] {
		return false
	}
	switch s.enc {
	case encIntset:
		if isRedisInt(m) {
			if len(s.members)+1 > setMaxIntsetEntries {
				s.enc = encHashtableSet
			}
		} else if len(s.members) < setMaxListpackEntries && len(m) <= setMaxListpackValue {
			s.enc, s.order = encListpackSet, s.sorted() // the ints in order, then m
		} else {
			s.enc = encHashtableSet
		}
	case encListpackSet:
		if len(s.members) >= setMaxListpackEntries || len(m) > setMaxListpackValue {
			s.enc = encHashtableSet
		}
	}
	s.members[m] = true
	s.order = append(s.order, m)
	return true
}

func (s *setModel) rem(m string) bool {
	if !s.members[m] {
		return false
	}
	delete(s.members, m)
	s.order = slices.DeleteFunc(s.order, func(x string) bool { return x == m })
	return true
}

func (s *setModel) sorted() []string {
	var out []string
	for m := range s.members {
		out = append(out, m)
	}
	if s.enc == encIntset {
		sort.Slice(out, func(i, j int) bool {
			a, _ := strconv.ParseInt(out[i], 10, 64)
			b, _ := strconv.ParseInt(out[j], 10, 64)
			return a < b
		})
	} else {
		sort.Strings(out)
	}
	return out
}

func (s *setModel) list() []string {
	if s.enc == encListpackSet {
		return s.order
	}
	return s.sorted()
}

type zmodel map[string]float64

func (z zmodel) sorted() []string {
	var out []string
	for m := range z {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return cmpScoreMember(z[out[i]], []byte(out[i]), z[out[j]], []byte(out[j])) < 0 })
	return out
}

func qs(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func fmtScore(f float64) string { return "," + strconv.FormatFloat(f, 'g', -1, 64) }

// collState renders every key through the pieces of a view or the DB: the
// canonical content, for comparing a view with what it saw.
func collState(ascend func(func(Entry) bool)) string {
	var b strings.Builder
	ascend(func(e Entry) bool {
		var v []byte
		for from := uint64(0); from < e.Units(); {
			v, from = e.AppendPiece(v, from, 1<<20)
		}
		fmt.Fprintf(&b, "%d %q %q\n", e.Type, e.Key, v)
		return true
	})
	return b.String()
}

func TestCollectionModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		db := newTestDB()
		hashes := map[string]*hashModel{}
		lists := map[string][]string{}
		sets := map[string]*setModel{}
		zsets := map[string]zmodel{}
		type held struct {
			v    *View
			seen string
		}
		var views []held
		keyOf := func(kind string) string {
			return kind + strconv.Itoa(rapid.IntRange(0, 2).Draw(t, "key"))
		}
		elem := func(label string) string {
			switch rapid.IntRange(0, 9).Draw(t, label+"-kind") {
			case 0:
				return strings.Repeat("L", rapid.IntRange(60, 700).Draw(t, label+"-len"))
			case 1, 2:
				return strconv.Itoa(rapid.IntRange(-40, 40).Draw(t, label+"-int"))
			}
			return rapid.StringMatching(`[a-f]{0,4}`).Draw(t, label)
		}
		run := func(want string, args ...string) {
			if got := exec(db, 1, args...); got != want {
				t.Fatalf("%q: got %s, want %s", args, got, want)
			}
		}
		steps := rapid.IntRange(1, 120).Draw(t, "steps")
		for s := 0; s < steps; s++ {
			switch op := rapid.IntRange(0, 23).Draw(t, "op"); op {
			case 23: // fill a set or hash up to a conversion threshold, exactly
				switch rapid.IntRange(0, 2).Draw(t, "fill") {
				case 0, 1:
					k := keyOf("s")
					sm := sets[k]
					limit, ints := setMaxListpackEntries, false
					if sm == nil || sm.enc == encIntset {
						limit, ints = setMaxIntsetEntries, true
					}
					if sm != nil && sm.enc == encHashtableSet {
						continue
					}
					if sm == nil {
						sm = &setModel{members: map[string]bool{}, enc: encListpackSet}
						if ints {
							sm.enc = encIntset
						}
					}
					args := []string{"SADD", k}
					for i := 0; len(sm.members) < limit; i++ {
						m := "fill" + strconv.Itoa(i)
						if ints {
							m = strconv.Itoa(1000 + i)
						}
						if sm.add(m) {
							args = append(args, m)
						}
					}
					if len(args) == 2 {
						continue
					}
					sets[k] = sm
					run(":"+strconv.Itoa(len(args)-2), args...)
				case 2:
					k := keyOf("h")
					h := hashes[k]
					if h == nil {
						h = &hashModel{fields: map[string]string{}}
					}
					if h.tree {
						continue
					}
					args := []string{"HSET", k}
					for i := 0; len(h.fields) < hashMaxListpackEntries; i++ {
						f := "fill" + strconv.Itoa(i)
						if h.set(f, "v") {
							args = append(args, f, "v")
						}
					}
					if len(args) == 2 {
						continue
					}
					hashes[k] = h
					run(":"+strconv.Itoa((len(args)-2)/2), args...)
				}
			case 0: // HSET with many pairs
				k := keyOf("h")
				h := hashes[k]
				if h == nil {
					h = &hashModel{fields: map[string]string{}}
				}
				args := []string{"HSET", k}
				n := rapid.IntRange(1, 200).Draw(t, "pairs")
				for i := 0; i < n; i++ {
					args = append(args, elem("f")+strconv.Itoa(i%7), elem("v"))
				}
				// Redis converts before setting when any argument is long.
				for _, a := range args[2:] {
					if len(a) > hashMaxListpackValue {
						h.tree = true
					}
				}
				added := 0
				for i := 2; i < len(args); i += 2 {
					if h.set(args[i], args[i+1]) {
						added++
					}
				}
				hashes[k] = h
				run(":"+strconv.Itoa(added), args...)
			case 1:
				k := keyOf("h")
				f := elem("f")
				h := hashes[k]
				want := "(nil)"
				if h != nil {
					if v, ok := h.fields[f]; ok {
						want = strconv.Quote(v)
					}
				}
				run(want, "HGET", k, f)
			case 2:
				k := keyOf("h")
				h := hashes[k]
				if h == nil || len(h.fields) == 0 {
					continue
				}
				ks := h.keys()
				f := ks[rapid.IntRange(0, len(ks)-1).Draw(t, "victim")]
				delete(h.fields, f)
				h.order = slices.DeleteFunc(h.order, func(x string) bool { return x == f })
				if len(h.fields) == 0 {
					delete(hashes, k)
				}
				run(":1", "HDEL", k, f)
			case 3:
				k := keyOf("h")
				h := hashes[k]
				var parts []string
				if h != nil {
					for _, f := range h.keys() {
						parts = append(parts, f, h.fields[f])
					}
				}
				run(qs(parts), "HGETALL", k)
			case 4: // LPUSH / RPUSH
				k := keyOf("l")
				cmd := rapid.SampledFrom([]string{"LPUSH", "RPUSH"}).Draw(t, "push")
				n := rapid.IntRange(1, 300).Draw(t, "n")
				args := []string{cmd, k}
				for i := 0; i < n; i++ {
					e := elem("e")
					args = append(args, e)
					if cmd == "LPUSH" {
						lists[k] = append([]string{e}, lists[k]...)
					} else {
						lists[k] = append(lists[k], e)
					}
				}
				run(":"+strconv.Itoa(len(lists[k])), args...)
			case 5: // LPOP / RPOP count
				k := keyOf("l")
				l := lists[k]
				if len(l) == 0 {
					run("(nil)", "LPOP", k)
					continue
				}
				n := rapid.IntRange(1, len(l)+2).Draw(t, "count")
				c := min(n, len(l))
				var popped []string
				if rapid.Bool().Draw(t, "left") {
					popped = slices.Clone(l[:c])
					lists[k] = l[c:]
					run(qs(popped), "LPOP", k, strconv.Itoa(n))
				} else {
					for i := len(l) - 1; i >= len(l)-c; i-- {
						popped = append(popped, l[i])
					}
					lists[k] = l[:len(l)-c]
					run(qs(popped), "RPOP", k, strconv.Itoa(n))
				}
				if len(lists[k]) == 0 {
					delete(lists, k)
				}
			case 6: // LRANGE, LINDEX
				k := keyOf("l")
				l := lists[k]
				a, b := rapid.IntRange(-5, len(l)+2).Draw(t, "a"), rapid.IntRange(-5, len(l)+2).Draw(t, "b")
				s, e, empty := listRange(int64(a), int64(b), int64(len(l)))
				want := "[]"
				if !empty {
					want = qs(l[s : e+1])
				}
				run(want, "LRANGE", k, strconv.Itoa(a), strconv.Itoa(b))
				if len(l) > 0 {
					i := rapid.IntRange(0, len(l)-1).Draw(t, "i")
					run(strconv.Quote(l[i]), "LINDEX", k, strconv.Itoa(i))
				}
			case 7: // LSET, LINSERT
				k := keyOf("l")
				l := lists[k]
				if len(l) == 0 {
					continue
				}
				i := rapid.IntRange(0, len(l)-1).Draw(t, "i")
				e := elem("e")
				if rapid.Bool().Draw(t, "set") {
					l[i] = e
					run("+OK", "LSET", k, strconv.Itoa(i), e)
				} else {
					pivot := l[i]
					j := slices.Index(l, pivot)
					lists[k] = slices.Insert(l, j, e)
					run(":"+strconv.Itoa(len(lists[k])), "LINSERT", k, "BEFORE", pivot, e)
				}
			case 8: // LREM, LTRIM
				k := keyOf("l")
				l := lists[k]
				if len(l) == 0 {
					continue
				}
				if rapid.Bool().Draw(t, "rem") {
					e := l[rapid.IntRange(0, len(l)-1).Draw(t, "i")]
					n := 0
					lists[k] = slices.DeleteFunc(slices.Clone(l), func(x string) bool {
						if x == e {
							n++
							return true
						}
						return false
					})
					run(":"+strconv.Itoa(n), "LREM", k, "0", e)
				} else {
					a, b := rapid.IntRange(0, len(l)).Draw(t, "a"), rapid.IntRange(-3, len(l)).Draw(t, "b")
					s, e, empty := listRange(int64(a), int64(b), int64(len(l)))
					if empty {
						lists[k] = nil
					} else {
						lists[k] = slices.Clone(l[s : e+1])
					}
					run("+OK", "LTRIM", k, strconv.Itoa(a), strconv.Itoa(b))
				}
				if len(lists[k]) == 0 {
					delete(lists, k)
				}
			case 9: // SADD
				k := keyOf("s")
				sm := sets[k]
				n := rapid.IntRange(1, 250).Draw(t, "n")
				args := []string{"SADD", k}
				for i := 0; i < n; i++ {
					args = append(args, elem("m"))
				}
				if sm == nil {
					sm = &setModel{members: map[string]bool{}, enc: encHashtableSet}
					if isRedisInt(args[2]) && n <= setMaxIntsetEntries {
						sm.enc = encIntset
					} else if n <= setMaxListpackEntries {
						sm.enc = encListpackSet
					}
				} else if (sm.enc == encListpackSet && n > setMaxListpackEntries) || (sm.enc == encIntset && n > setMaxIntsetEntries) {
					missing := false
					for _, m := range args[2:] {
						missing = missing || !sm.members[m]
					}
					if missing {
						sm.enc = encHashtableSet
					}
				}
				added := 0
				for _, m := range args[2:] {
					if sm.add(m) {
						added++
					}
				}
				sets[k] = sm
				run(":"+strconv.Itoa(added), args...)
			case 10: // SREM, SISMEMBER
				k := keyOf("s")
				sm := sets[k]
				if sm == nil {
					run(":0", "SISMEMBER", k, "x")
					continue
				}
				ms := sm.list()
				m := ms[rapid.IntRange(0, len(ms)-1).Draw(t, "m")]
				run(":1", "SISMEMBER", k, m)
				sm.rem(m)
				if len(sm.members) == 0 {
					delete(sets, k)
				}
				run(":1", "SREM", k, m)
			case 11: // SMEMBERS in the encoding's order
				k := keyOf("s")
				var want []string
				if sm := sets[k]; sm != nil {
					want = sm.list()
				}
				run(qs(want), "SMEMBERS", k)
			case 12: // SPOP (seeded): members it names are gone
				k := keyOf("s")
				sm := sets[k]
				if sm == nil {
					continue
				}
				n := rapid.IntRange(1, len(sm.members)+1).Draw(t, "n")
				var r recorder
				db.ExecSeeded(1, uint64(s), [][]byte{[]byte("SPOP"), []byte(k), []byte(strconv.Itoa(n))}, &r)
				got := r.String()
				var popped []string
				for _, tok := range strings.Fields(strings.Trim(got, "[]")) {
					m, err := strconv.Unquote(tok)
					if err != nil || !sm.members[m] {
						t.Fatalf("SPOP %d: %s is not a member", n, tok)
					}
					popped = append(popped, m)
				}
				if len(popped) != min(n, len(sm.members)) {
					t.Fatalf("SPOP %d of %d members: %s", n, len(sm.members), got)
				}
				for _, m := range popped {
					if !sm.rem(m) {
						t.Fatalf("SPOP returned %q twice", m)
					}
				}
				if len(sm.members) == 0 {
					delete(sets, k)
				}
			case 13: // ZADD with options
				k := keyOf("z")
				z := zsets[k]
				if z == nil {
					z = zmodel{}
				}
				opts := rapid.SampledFrom([][]string{nil, {"NX"}, {"XX"}, {"GT"}, {"LT"}, {"CH"}, {"XX", "GT", "CH"}}).Draw(t, "opts")
				n := rapid.IntRange(1, 150).Draw(t, "n")
				args := append([]string{"ZADD", k}, opts...)
				type pair struct {
					s float64
					m string
				}
				var pairs []pair
				for i := 0; i < n; i++ {
					sc := float64(rapid.IntRange(-5, 5).Draw(t, "score")) / 2
					m := elem("m")
					pairs = append(pairs, pair{sc, m})
					args = append(args, strconv.FormatFloat(sc, 'g', -1, 64), m)
				}
				has := func(o string) bool { return slices.Contains(opts, o) }
				added, changed := 0, 0
				if len(z) > 0 || !has("XX") {
					for _, p := range pairs {
						cur, ok := z[p.m]
						switch {
						case ok && has("NX"), !ok && has("XX"):
						case ok && ((has("GT") && p.s <= cur) || (has("LT") && p.s >= cur)):
						case ok:
							if p.s != cur {
								changed++
							}
							z[p.m] = p.s
						default:
							if p.s == 0 {
								p.s = 0 // the pack's -0 reads back as 0; no -0 drawn here
							}
							z[p.m] = p.s
							added++
						}
					}
				}
				if len(z) > 0 {
					zsets[k] = z
				}
				want := added
				if has("CH") {
					want += changed
				}
				run(":"+strconv.Itoa(want), args...)
			case 14: // ZRANGE WITHSCORES, by index
				k := keyOf("z")
				z := zsets[k]
				order := z.sorted()
				a, b := rapid.IntRange(-3, len(order)+1).Draw(t, "a"), rapid.IntRange(-3, len(order)+1).Draw(t, "b")
				s, e, empty := listRange(int64(a), int64(b), int64(len(order)))
				var parts []string
				if !empty {
					for _, m := range order[s : e+1] {
						parts = append(parts, strconv.Quote(m), fmtScore(z[m]))
					}
				}
				run("["+strings.Join(parts, " ")+"]", "ZRANGE", k, strconv.Itoa(a), strconv.Itoa(b), "WITHSCORES")
			case 15: // ZRANGEBYSCORE, ZCOUNT
				k := keyOf("z")
				z := zsets[k]
				lo, hi := float64(rapid.IntRange(-6, 6).Draw(t, "lo"))/2, float64(rapid.IntRange(-6, 6).Draw(t, "hi"))/2
				exLo := rapid.Bool().Draw(t, "exlo")
				var in []string
				for _, m := range z.sorted() {
					sc := z[m]
					if (sc > lo || (!exLo && sc >= lo)) && sc <= hi {
						in = append(in, m)
					}
				}
				min := strconv.FormatFloat(lo, 'g', -1, 64)
				if exLo {
					min = "(" + min
				}
				run(qs(in), "ZRANGEBYSCORE", k, min, strconv.FormatFloat(hi, 'g', -1, 64))
				run(":"+strconv.Itoa(len(in)), "ZCOUNT", k, min, strconv.FormatFloat(hi, 'g', -1, 64))
			case 16: // ZRANK, ZSCORE, ZREM
				k := keyOf("z")
				z := zsets[k]
				if len(z) == 0 {
					continue
				}
				order := z.sorted()
				i := rapid.IntRange(0, len(order)-1).Draw(t, "i")
				m := order[i]
				run(":"+strconv.Itoa(i), "ZRANK", k, m)
				run(fmtScore(z[m]), "ZSCORE", k, m)
				if rapid.Bool().Draw(t, "rem") {
					delete(z, m)
					if len(z) == 0 {
						delete(zsets, k)
					}
					run(":1", "ZREM", k, m)
				}
			case 17: // ZPOPMIN / ZPOPMAX count
				k := keyOf("z")
				z := zsets[k]
				if len(z) == 0 {
					continue
				}
				order := z.sorted()
				n := rapid.IntRange(1, len(order)+1).Draw(t, "n")
				c := min(n, len(order))
				cmd := "ZPOPMIN"
				pick := order[:c]
				if rapid.Bool().Draw(t, "max") {
					cmd = "ZPOPMAX"
					pick = slices.Clone(order[len(order)-c:])
					slices.Reverse(pick)
				}
				var parts []string
				for _, m := range pick {
					parts = append(parts, strconv.Quote(m), fmtScore(z[m]))
					delete(z, m)
				}
				if len(z) == 0 {
					delete(zsets, k)
				}
				run("["+strings.Join(parts, " ")+"]", cmd, k, strconv.Itoa(n))
			case 18: // ZINCRBY
				k := keyOf("z")
				m := elem("m")
				z := zsets[k]
				if z == nil {
					z = zmodel{}
				}
				inc := float64(rapid.IntRange(-4, 4).Draw(t, "inc"))
				nv := z[m] + inc
				if nv == 0 {
					nv = 0
				}
				z[m] = nv
				zsets[k] = z
				run(fmtScore(nv), "ZINCRBY", k, strconv.FormatFloat(inc, 'g', -1, 64), m)
			case 19: // a view, held across later changes
				views = append(views, held{v: db.View(), seen: collState(db.View().Ascend)})
			case 20:
				if len(views) > 0 {
					i := rapid.IntRange(0, len(views)-1).Draw(t, "release")
					views[i].v.Release()
					views = slices.Delete(views, i, i+1)
				}
			case 21: // DEL or RENAME or COPY a collection
				kind := rapid.SampledFrom([]string{"h", "l", "s", "z"}).Draw(t, "kind")
				k, k2 := keyOf(kind), keyOf(kind)
				switch rapid.IntRange(0, 2).Draw(t, "which") {
				case 0:
					want := ":0"
					if _, ok := hashes[k]; ok || lists[k] != nil || sets[k] != nil || zsets[k] != nil {
						want = ":1"
					}
					delete(hashes, k)
					delete(lists, k)
					delete(sets, k)
					delete(zsets, k)
					run(want, "DEL", k)
				case 1, 2:
					exists := hashes[k] != nil || lists[k] != nil || sets[k] != nil || zsets[k] != nil
					if !exists || k == k2 {
						continue
					}
					cp := rapid.Bool().Draw(t, "copy")
					switch kind {
					case "h":
						h := *hashes[k]
						h.fields = mapsClone(h.fields)
						h.order = slices.Clone(h.order)
						hashes[k2] = &h
					case "l":
						lists[k2] = slices.Clone(lists[k])
					case "s":
						sm := *sets[k]
						sm.members = mapsClone(sm.members)
						sm.order = slices.Clone(sm.order)
						sets[k2] = &sm
					case "z":
						zsets[k2] = mapsClone(zsets[k])
					}
					if cp {
						run(":1", "COPY", k, k2, "REPLACE")
					} else {
						delete(hashes, k)
						delete(lists, k)
						delete(sets, k)
						delete(zsets, k)
						run("+OK", "RENAME", k, k2)
					}
				}
			case 22: // OBJECT ENCODING of hashes and sets follows the model
				k := keyOf("h")
				if h := hashes[k]; h != nil {
					want := `"listpack"`
					if h.tree {
						want = `"hashtable"`
					}
					run(want, "OBJECT", "ENCODING", k)
				}
				k = keyOf("s")
				if sm := sets[k]; sm != nil {
					run(strconv.Quote(encodingName(sm.enc)), "OBJECT", "ENCODING", k)
				}
			}
			// Every tree keeps its invariants; the views see what they saw.
			db.tree.ascend(func(r ref) bool {
				checkValueTrees(t, &db.s.slabDirs, db.rec(r))
				return true
			})
			for _, h := range views {
				if got := collState(h.v.Ascend); got != h.seen {
					t.Fatalf("a view changed under writes")
				}
			}
		}
		for _, h := range views {
			h.v.Release()
		}
		db.reclaim()
		_ = math.Inf
	})
}

func mapsClone[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// checkValueTrees runs checkTree on the trees a collection's value names.
func checkValueTrees(t interface {
	Helper()
	Fatalf(string, ...any)
}, d *slabDirs, rc *record) {
	if rc.typ == TypeString {
		return
	}
	v := d.valOf(rc)
	switch v[0] {
	case encQuicklist:
		checkTree(t, d, treeRoot(v), tkList)
	case encHashtableSet:
		checkTree(t, d, treeRoot(v), tkSet)
	case encHashtable:
		checkTree(t, d, treeRoot(v), tkHash)
	case encSkiplist:
		m, s := zsetRoots(v)
		checkTree(t, d, m, tkZMember)
		checkTree(t, d, s, tkZScore)
	}
}
