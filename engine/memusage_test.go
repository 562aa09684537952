package engine

import (
	"strconv"
	"strings"
	"testing"
)

// MEMORY USAGE's figure is what the key adds to the engine's accounting
// (INFO used_memory_dataset), plus its slot of the point index, for
// strings and for collections large enough to live in trees.
func TestKeyBytesMatchesAccounting(t *testing.T) {
	db := newTestDB()
	if _, ok := db.KeyBytes(1000, []byte("nosuch")); ok {
		t.Fatal("KeyBytes found a missing key")
	}
	cases := []struct {
		key  string
		fill func()
	}{
		{"s", func() { exec(db, 1000, "SET", "s", strings.Repeat("x", 300)) }},
		{"h", func() {
			for i := range 2000 {
				exec(db, 1000, "HSET", "h", "f"+strconv.Itoa(i), strings.Repeat("v", i%100))
			}
		}},
		{"z", func() {
			for i := range 2000 {
				exec(db, 1000, "ZADD", "z", strconv.Itoa(i), "m"+strconv.Itoa(i))
			}
		}},
		{"l", func() {
			for i := range 2000 {
				exec(db, 1000, "RPUSH", "l", strings.Repeat("e", i%200))
			}
		}},
		{"set", func() {
			for i := range 2000 {
				exec(db, 1000, "SADD", "set", "member-"+strconv.Itoa(i))
			}
		}},
	}
	for _, c := range cases {
		before := db.usedBytes
		c.fill()
		got, ok := db.KeyBytes(1000, []byte(c.key))
		if !ok {
			t.Fatalf("%s: not found", c.key)
		}
		if want := db.usedBytes - before + indexBytesPerSlot; got != want {
			t.Errorf("%s: KeyBytes %d, the accounting grew by %d (+%d index)", c.key, got, db.usedBytes-before, indexBytesPerSlot)
		}
	}
	exec(db, 1000, "SET", "t", "v", "PX", "10")
	if _, ok := db.KeyBytes(2000, []byte("t")); ok {
		t.Error("KeyBytes found an expired key")
	}
	if db.ExpiredKeys() != 0 {
		t.Errorf("ExpiredKeys %d before any key was deleted", db.ExpiredKeys())
	}
	exec(db, 2000, "GET", "t")
	if db.ExpiredKeys() != 1 {
		t.Errorf("ExpiredKeys %d after a lazy expiry, want 1", db.ExpiredKeys())
	}
}
