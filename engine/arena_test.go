package engine

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestPointIndexResizes grows the point index from 8 slots to tens of
// thousands and shrinks it back, checking after every few writes that
// every key is found (also while a resize is draining the old table),
// absent keys are not, and the indexes agree.
func TestPointIndexResizes(t *testing.T) {
	db := newTestDB()
	rng := rand.New(rand.NewPCG(1, 2))
	live := map[string]bool{}
	var order []string // live keys, for picking one to delete
	sawGrowDrain, sawShrinkDrain := false, false
	check := func() {
		checkIndexes(t, db)
		if db.Len() != len(live) {
			t.Fatalf("Len %d, want %d", db.Len(), len(live))
		}
		for k := range live {
			if db.find([]byte(k)) == 0 {
				t.Fatalf("key %q lost (slots %d, old %d, moved %d)", k, len(db.index.slots), len(db.index.old), db.index.oldNext)
			}
		}
		for i := 0; i < 20; i++ {
			k := "absent:" + strconv.Itoa(rng.IntN(1_000_000))
			if db.find([]byte(k)) != 0 {
				t.Fatalf("absent key %q found", k)
			}
		}
	}
	step := func(grow bool) {
		if len(order) == 0 || (grow && rng.IntN(5) > 0) || (!grow && rng.IntN(5) == 0) {
			k := "k:" + strconv.Itoa(rng.IntN(1_000_000))
			if !live[k] {
				live[k] = true
				order = append(order, k)
			}
			exec(db, 1, "SET", k, strings.Repeat("v", rng.IntN(40)))
			return
		}
		i := rng.IntN(len(order))
		k := order[i]
		order[i] = order[len(order)-1]
		order = order[:len(order)-1]
		delete(live, k)
		if got := exec(db, 1, "DEL", k); got != ":1" {
			t.Fatalf("DEL %s: %s", k, got)
		}
	}
	for i := 0; i < 30_000; i++ {
		step(true)
		if db.index.old != nil {
			sawGrowDrain = true
		}
		if i%997 == 0 {
			check()
		}
	}
	check()
	for len(order) > 0 {
		step(false)
		if db.index.old != nil && len(db.index.old) > len(db.index.slots) {
			sawShrinkDrain = true
		}
		if len(order)%991 == 0 {
			check()
		}
	}
	check()
	if !sawGrowDrain || !sawShrinkDrain {
		t.Fatalf("no incremental resize seen: grow %v shrink %v", sawGrowDrain, sawShrinkDrain)
	}
	if got := len(db.index.slots) + len(db.index.old); got > 64 {
		t.Fatalf("empty keyspace still holds %d index slots", got)
	}
}

// TestCellsAcrossClasses moves one value through every size class, into a
// large cell and back, with a View taken half way that must keep seeing
// the value it was taken with, and checks that the memory accounting
// returns to where it started and freed cells are reused.
func TestCellsAcrossClasses(t *testing.T) {
	db := newTestDB()
	exec(db, 1, "SET", "other", "x")
	base := db.UsedBytes()
	want := ""
	var v *View
	var viewWant string
	for len(want) < 3*cellMaxBytes {
		piece := strings.Repeat(string(rune('a'+len(want)%26)), 1+len(want)/5)
		want += piece
		if got := exec(db, 1, "APPEND", "k", piece); got != ":"+strconv.Itoa(len(want)) {
			t.Fatalf("APPEND: %s, want length %d", got, len(want))
		}
		if v == nil && len(want) > cellMaxBytes/2 {
			v, viewWant = db.View(), want
		}
	}
	if got := exec(db, 1, "GET", "k"); got != strconv.Quote(want) {
		t.Fatalf("GET after appends: %d bytes, want %d", len(got), len(want)+2)
	}
	// SETRANGE past the end zero-fills the gap, in a large cell.
	exec(db, 1, "SETRANGE", "k", strconv.Itoa(len(want)+10), "end")
	want += strings.Repeat("\x00", 10) + "end"
	if got := exec(db, 1, "GET", "k"); got != strconv.Quote(want) {
		t.Fatal("GET after SETRANGE past the end differs")
	}
	v.Ascend(func(e Entry) bool {
		if string(e.Key) == "k" && string(e.Value) != viewWant {
			t.Fatalf("view's value changed: %d bytes, want %d", len(e.Value), len(viewWant))
		}
		return true
	})
	v.Release()
	// Shrinking moves the value back into a small cell.
	exec(db, 1, "SET", "k", "small")
	if got := exec(db, 1, "GET", "k"); got != `"small"` {
		t.Fatalf("GET after shrink: %s", got)
	}
	exec(db, 1, "DEL", "k")
	if got := db.UsedBytes(); got != base {
		t.Fatalf("UsedBytes %d after deleting k, want %d", got, base)
	}
	// Cells, records and pages are reused: the same keys again take no
	// new page.
	for round := 0; round < 3; round++ {
		for i := 0; i < 2000; i++ {
			exec(db, 1, "SET", "r"+strconv.Itoa(i), strings.Repeat("y", 100))
		}
		held := db.HeldBytes()
		for i := 0; i < 2000; i++ {
			exec(db, 1, "DEL", "r"+strconv.Itoa(i))
		}
		if round > 0 && held != lastHeld {
			t.Fatalf("round %d holds %d bytes, round before %d: freed cells not reused", round, held, lastHeld)
		}
		lastHeld = held
	}
}

var lastHeld int64

// TestRandomKeySpread checks that RANDOMKEY, which samples the point
// index's slots, reaches keys evenly.
func TestRandomKeySpread(t *testing.T) {
	db := newTestDB()
	const keys, draws = 20, 20_000
	for i := 0; i < keys; i++ {
		exec(db, 1, "SET", "k"+strconv.Itoa(i), "v")
	}
	seen := map[string]int{}
	for i := 0; i < draws; i++ {
		seen[exec(db, 1, "RANDOMKEY")]++
	}
	for k, n := range seen {
		// Expected 1000 each; 4.5 standard deviations either side.
		if n < 860 || n > 1140 {
			t.Fatalf("RANDOMKEY returned %s %d times of %d, want about %d", k, n, draws, draws/keys)
		}
	}
	if len(seen) != keys {
		t.Fatalf("RANDOMKEY reached %d of %d keys", len(seen), keys)
	}
}

// TestArgumentTooLong: a record holds a value's length in 32 bits, so an
// argument longer than that is refused with Redis's error and changes
// nothing (the bound is lowered here; 4 GiB arguments do not fit a test).
func TestArgumentTooLong(t *testing.T) {
	saved := argBytesMax
	argBytesMax = 8
	defer func() { argBytesMax = saved }()
	db := newTestDB()
	exec(db, 1, "SET", "k", "12345678")
	for _, cmd := range [][]string{
		{"SET", "k", "123456789"}, {"SET", "longer-key", "v"}, {"MSET", "a", "1", "k", "123456789"},
	} {
		if got := exec(db, 1, cmd...); got != "-"+errTooBig {
			t.Fatalf("%v: %s", cmd, got)
		}
	}
	if got := exec(db, 1, "MGET", "k", "a"); got != `["12345678" (nil)]` {
		t.Fatalf("after refused commands: %s", got)
	}
}
