package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// checkTree verifies a tree's invariants: uniform depth, counts that add
// up, keys in order within separator bounds, empty first separators, no
// empty node but an empty tree's. It returns the bytes the tree holds
// (nodes and overflow cells), for the accounting check.
func checkTree(t interface {
	Helper()
	Fatalf(string, ...any)
}, d *slabDirs, tr troot, k treeKind) int64 {
	t.Helper()
	if tr.root == 0 {
		if tr.count != 0 {
			t.Fatalf("no root but count %d", tr.count)
		}
		return 0
	}
	var held int64
	leafDepth := -1
	var prev []byte
	var walk func(n nid, depth int, lo []byte) uint64
	tv := tview{d: d, kind: k}
	walk = func(n nid, depth int, lo []byte) uint64 {
		p := d.node(n)
		held += nodeBytes
		offs := offsets(p, k, nil)
		if len(offs) != nodeCount(p) {
			t.Fatalf("node %d: %d entries by offsets, header says %d", n, len(offs), nodeCount(p))
		}
		if len(offs) == 0 {
			t.Fatalf("node %d is empty", n)
		}
		if tabbed(p, k) {
			for i, o := range offs {
				if tabGet(p, i) != o {
					t.Fatalf("leaf %d: table says entry %d at %d, it is at %d", n, i, tabGet(p, i), o)
				}
			}
			if nodeHdrBytes+nodeUsed(p)+2*len(offs) > nodeBytes {
				t.Fatalf("leaf %d: entries and table overlap", n)
			}
		}
		overflowBytes := func(o int) {
			h, kk := uvarint(p[o:])
			if h&1 == 1 {
				held += d.rawBytes(p[o+kk], binary.LittleEndian.Uint64(p[o+kk+1:]))
			}
		}
		if p[0] == nodeLeaf {
			if leafDepth < 0 {
				leafDepth = depth
			} else if leafDepth != depth {
				t.Fatalf("leaf %d at depth %d, others at %d", n, depth, leafDepth)
			}
			for _, o := range offs {
				overflowBytes(o)
				if k.hasVal() {
					overflowBytes(skipField(p, o))
				}
				if !k.keyed() {
					continue
				}
				a, _ := tv.entryAt(p, o)
				if lo != nil && k.cmp(a, lo) < 0 {
					t.Fatalf("key %q below its separator %q", a, lo)
				}
				if prev != nil && k.cmp(prev, a) >= 0 {
					t.Fatalf("keys out of order: %q then %q", prev, a)
				}
				prev = append(prev[:0], a...)
			}
			return uint64(len(offs))
		}
		var total uint64
		for i, o := range offs {
			var sep []byte
			if k.keyed() {
				overflowBytes(o + 12)
				sep, _ = d.field(p, o+12)
				if i == 0 && len(sep) != 0 {
					t.Fatalf("node %d: first separator %q not empty", n, sep)
				}
				if i > 0 {
					if prev != nil && k.cmp(prev, sep) >= 0 {
						t.Fatalf("separator %q not above the previous key %q", sep, prev)
					}
				} else {
					sep = lo
				}
			}
			c := walk(childAt(p, o), depth+1, sep)
			if c != countAt(p, o) {
				t.Fatalf("node %d child %d: count %d, holds %d", n, i, countAt(p, o), c)
			}
			total += c
		}
		return total
	}
	if got := walk(tr.root, 0, nil); got != tr.count {
		t.Fatalf("tree holds %d entries, count says %d", got, tr.count)
	}
	return held
}

// treeEntries lists a tree's entries by iterating forward.
func treeEntries(d *slabDirs, tr troot, k treeKind) [][2]string {
	var out [][2]string
	it := titer{t: tview{d: d, kind: k}}
	for it.seekIndex(tr.root, tr.count, 0); it.Valid(); it.Next() {
		a, b := it.Entry()
		out = append(out, [2]string{string(a), string(b)})
	}
	return out
}

func treeEntriesBackward(d *slabDirs, tr troot, k treeKind) [][2]string {
	var out [][2]string
	it := titer{t: tview{d: d, kind: k}}
	for it.seekIndex(tr.root, tr.count, tr.count-1); it.Valid(); it.Prev() {
		a, b := it.Entry()
		out = append(out, [2]string{string(a), string(b)})
	}
	slices.Reverse(out)
	return out
}

func genField(t *rapid.T, label string) string {
	switch rapid.IntRange(0, 9).Draw(t, label+"-kind") {
	case 0:
		// Long enough to go to an overflow cell, sometimes past a page cell.
		n := rapid.SampledFrom([]int{513, 700, 5000}).Draw(t, label+"-len")
		return strings.Repeat(rapid.StringMatching(`[a-c]`).Draw(t, label+"-fill"), n)
	case 1:
		return strings.Repeat("p", rapid.IntRange(100, 500).Draw(t, label+"-plen")) + rapid.StringMatching(`[a-z]{0,3}`).Draw(t, label)
	default:
		return rapid.StringMatching(`[a-z]{0,6}`).Draw(t, label)
	}
}

func scoreKey(score float64, member string) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], math.Float64bits(score))
	return string(b[:]) + member
}

// TestTreeModel runs random operations on one tree of each kind against
// a plain model, with views taken and held across later writes (a view
// must keep reading what it saw), checking the invariants and the
// accounting after every step.
func TestTreeModel(t *testing.T) {
	for _, k := range []treeKind{tkList, tkSet, tkHash, tkZScore} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				db := newTestDB()
				base := db.usedBytes
				var tr troot
				var model [][2]string // in tree order
				type held struct {
					v     *View
					tr    troot
					model [][2]string
				}
				var views []held
				find := func(key string) (int, bool) {
					i := sort.Search(len(model), func(i int) bool { return k.cmp([]byte(model[i][0]), []byte(key)) >= 0 })
					return i, i < len(model) && model[i][0] == key
				}
				steps := rapid.IntRange(1, 300).Draw(t, "steps")
				for s := 0; s < steps; s++ {
					db.modCount++
					db.reclaim()
					switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
					case op <= 4 && !k.keyed():
						a := genField(t, "elem")
						idx := rapid.IntRange(0, len(model)).Draw(t, "idx")
						if rapid.Bool().Draw(t, "end") {
							idx = len(model)
						}
						db.tinsertAt(&tr, k, uint64(idx), []byte(a))
						model = slices.Insert(model, idx, [2]string{a, ""})
					case op <= 4:
						a := genField(t, "key")
						if k == tkZScore {
							a = scoreKey(float64(rapid.IntRange(-3, 3).Draw(t, "score")), a)
						}
						b := ""
						if k.hasVal() {
							b = genField(t, "val")
						}
						i, found := find(a)
						added := db.tput(&tr, k, []byte(a), []byte(b))
						if added == found {
							t.Fatalf("put %q: added %v, model had it %v", a, added, found)
						}
						if found {
							model[i][1] = b
						} else {
							model = slices.Insert(model, i, [2]string{a, b})
						}
					case op <= 6 && k.keyed() && len(model) > 0:
						i := rapid.IntRange(0, len(model)-1).Draw(t, "victim")
						key := model[i][0]
						if rapid.Bool().Draw(t, "absent") {
							key += "~"
						}
						j, found := find(key)
						if db.tdelete(&tr, k, []byte(key)) != found {
							t.Fatalf("delete %q: want %v", key, found)
						}
						if found {
							model = slices.Delete(model, j, j+1)
						}
					case op <= 7 && len(model) > 0:
						from := rapid.IntRange(0, len(model)-1).Draw(t, "from")
						n := rapid.IntRange(1, len(model)-from).Draw(t, "n")
						db.tdeleteRange(&tr, k, uint64(from), uint64(n))
						model = slices.Delete(model, from, from+n)
					case op == 8:
						views = append(views, held{v: db.View(), tr: tr, model: slices.Clone(model)})
					case op == 9 && len(views) > 0:
						i := rapid.IntRange(0, len(views)-1).Draw(t, "release")
						views[i].v.Release()
						views = slices.Delete(views, i, i+1)
					}
					checkTree(t, &db.s.slabDirs, tr, k)
					if got := treeEntries(&db.s.slabDirs, tr, k); !slices.Equal(got, model) {
						t.Fatalf("tree %q\nmodel %q", got, model)
					}
					for _, h := range views {
						if got := treeEntries(&h.v.dirs, h.tr, k); !slices.Equal(got, h.model) {
							t.Fatalf("view changed: %q\nwas %q", got, h.model)
						}
					}
				}
				if got := treeEntriesBackward(&db.s.slabDirs, tr, k); !slices.Equal(got, model) {
					t.Fatalf("backward %q\nmodel %q", got, model)
				}
				// Random access by index and by key.
				it := titer{t: tview{d: &db.s.slabDirs, kind: k}}
				for i := range model {
					it.seekIndex(tr.root, tr.count, uint64(i))
					if a, b := it.Entry(); string(a) != model[i][0] || string(b) != model[i][1] || it.Pos() != uint64(i) {
						t.Fatalf("index %d: %q %q at %d", i, a, b, it.Pos())
					}
					if k.keyed() {
						if !it.seekKey(tr.root, []byte(model[i][0])) || it.Pos() != uint64(i) {
							t.Fatalf("seek %q: pos %d want %d", model[i][0], it.Pos(), i)
						}
						tv := tview{d: &db.s.slabDirs, kind: k}
						if _, b, ok := tv.get(tr.root, []byte(model[i][0])); !ok || string(b) != model[i][1] {
							t.Fatalf("get %q", model[i][0])
						}
						// Just above the key: the next entry.
						found := it.seekKey(tr.root, []byte(model[i][0]+"\x00"))
						if found || it.Pos() != uint64(i+1) || it.Valid() != (i+1 < len(model)) {
							t.Fatalf("seek past %q: pos %d valid %v", model[i][0], it.Pos(), it.Valid())
						}
					}
				}
				heldBytes := checkTree(t, &db.s.slabDirs, tr, k)
				for _, h := range views {
					h.v.Release()
				}
				db.modCount++
				db.reclaim()
				if db.usedBytes-base != heldBytes {
					t.Fatalf("usedBytes counts %d for the tree, it holds %d", db.usedBytes-base, heldBytes)
				}
				// A clone is equal and independent.
				cl := db.tclone(tr, k)
				checkTree(t, &db.s.slabDirs, cl, k)
				if got := treeEntries(&db.s.slabDirs, cl, k); !slices.Equal(got, model) {
					t.Fatalf("clone %q\nmodel %q", got, model)
				}
				db.tfree(&tr, k)
				db.tfree(&cl, k)
				if db.usedBytes != base {
					t.Fatalf("usedBytes %d after freeing, started at %d", db.usedBytes, base)
				}
			})
		})
	}
}

// TestTreeFill: entries arriving in order at either end fill nodes (the
// edge splits), so a pushed list costs little more than its bytes.
func TestTreeFill(t *testing.T) {
	db := newTestDB()
	var tr troot
	const n = 100000
	elem := []byte("value:123456")
	for i := 0; i < n; i++ {
		db.modCount++
		if i%2 == 0 {
			db.tinsertAt(&tr, tkList, tr.count, elem)
		} else {
			db.tinsertAt(&tr, tkList, 0, elem)
		}
	}
	held := checkTree(t, &db.s.slabDirs, tr, tkList)
	perElem := float64(held) / n
	// 13 bytes per entry; nodes full but for one at each end.
	if perElem > 13.5 {
		t.Fatalf("%.2f bytes per element", perElem)
	}
	var set troot
	key := make([]byte, 0, 16)
	for i := 0; i < n; i++ {
		db.modCount++
		key = fmt.Appendf(key[:0], "member:%08d", i)
		db.tput(&set, tkSet, key, nil)
	}
	held = checkTree(t, &db.s.slabDirs, set, tkSet)
	// 15 bytes per entry and 2 for its offset in the leaf's table.
	if perElem := float64(held) / n; perElem > 18.5 {
		t.Fatalf("set loaded in order: %.2f bytes per element", perElem)
	}
	it := titer{t: tview{d: &db.s.slabDirs, kind: tkSet}}
	if !it.seekKey(set.root, []byte("member:00050000")) || it.Pos() != 50000 {
		t.Fatalf("rank of member 50000: %d", it.Pos())
	}
	_ = bytes.Compare
}
