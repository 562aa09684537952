package engine

import (
	"strings"
	"testing"
)

func TestLiveAndAscendLive(t *testing.T) {
	db := newTestDB()
	var events []string
	db.SetNotify(func(ev string, key []byte) { events = append(events, ev+":"+string(key)) })
	now := int64(1000)
	exec(db, now, "SET", "a1", "x")
	exec(db, now, "SET", "a2", "y", "PXAT", "1500")
	exec(db, now, "SET", "a3", "z", "PXAT", "900000")
	exec(db, now, "SET", "b1", "w")
	exec(db, now, "SET", "a4", "gone", "PXAT", "1100")
	events = nil

	if !db.Live(now, []byte("a4")) || db.Live(1101, []byte("a4")) || db.Live(now, []byte("nope")) {
		t.Fatal("Live disagrees with the deadlines")
	}
	if e, ok := db.LiveEntry(now, []byte("a3")); !ok || string(e.Value) != "z" || e.ExpireAt != 900000 {
		t.Fatalf("LiveEntry a3: %+v %v", e, ok)
	}
	if _, ok := db.LiveEntry(1101, []byte("a4")); ok {
		t.Fatal("LiveEntry returned an expired key")
	}
	if db.Len() != 5 || len(events) != 0 {
		t.Fatalf("Live or LiveEntry changed the DB: %d keys, events %v", db.Len(), events)
	}

	// At 1200: a4 has expired (deleted, with its event), a2 is live; b1 is
	// filtered out; keys come in key order.
	onlyA := func(k []byte) bool { return strings.HasPrefix(string(k), "a") }
	var got []string
	db.AscendLive(1200, nil, onlyA, func(e Entry) bool {
		got = append(got, string(e.Key)+"="+string(e.Value))
		return true
	})
	if strings.Join(got, " ") != "a1=x a2=y a3=z" {
		t.Fatalf("AscendLive: %v", got)
	}
	if db.Len() != 4 || strings.Join(events, " ") != "expired:a4" {
		t.Fatalf("after AscendLive: %d keys, events %v", db.Len(), events)
	}
	// Resuming after a key, and stopping early.
	got = nil
	db.AscendLive(1200, []byte("a1"), onlyA, func(e Entry) bool {
		got = append(got, string(e.Key))
		return len(got) < 1
	})
	if strings.Join(got, " ") != "a2" {
		t.Fatalf("AscendLive after a1: %v", got)
	}
	// A view taken before still sees what it saw: AscendLive reads only.
	v := db.View()
	defer v.Release()
	exec(db, 1200, "SET", "a1", "changed")
	var seen []string
	v.Ascend(func(e Entry) bool { seen = append(seen, string(e.Key)+"="+string(e.Value)); return true })
	if strings.Join(seen, " ") != "a1=x a2=y a3=z b1=w" {
		t.Fatalf("view: %v", seen)
	}
}
