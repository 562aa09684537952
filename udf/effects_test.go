package udf

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/keel-db/keel/engine"
)

func TestEffectsRecordRoundTrip(t *testing.T) {
	effects := [][][]byte{bs("SET", "k", "", "PXAT", "17"), bs("DEL", "x"), bs("SET", "bin", "\x00\xff\r\n")}
	rec := EncodeEffects(effects)
	got, err := DecodeEffects(rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || strings.Join(strs(got[0]), "|") != "SET|k||PXAT|17" || string(got[2][2]) != "\x00\xff\r\n" {
		t.Fatalf("round trip: %q", got)
	}
	if e, err := DecodeEffects(EncodeEffects(nil)); err != nil || len(e) != 0 {
		t.Fatalf("empty: %v %v", e, err)
	}
	// Every truncation and a flipped version are refused, never a panic.
	for i := 0; i < len(rec); i++ {
		if _, err := DecodeEffects(rec[:i]); err == nil {
			t.Fatalf("truncated at %d accepted", i)
		}
	}
	bad := append([]byte{9}, rec[1:]...)
	if _, err := DecodeEffects(bad); err == nil {
		t.Fatal("bad version accepted")
	}
	if _, err := DecodeEffects(append(rec, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

// A call's effects, through the record, applied to a real engine: what
// recovery and followers will do.
func TestApplyEffectsFromRecord(t *testing.T) {
	h := newHost(t, NewConfig(), "transfer")
	r := rand.New(rand.NewPCG(3, 4))
	db := engine.New(engine.Options{Rand: r})
	now := int64(1_700_000_000_000)
	if err := ApplyEffects(db, now, [][][]byte{bs("SET", "a", "10")}); err != nil {
		t.Fatal(err)
	}
	res, err := h.Call(context.Background(), "transfer", bs("a", "b"), bs("4"), &EngineStore{DB: db, NowMillis: now, R: r}, false)
	if err != nil {
		t.Fatal(err)
	}
	effects, err := DecodeEffects(EncodeEffects(res.Effects))
	if err != nil {
		t.Fatal(err)
	}
	replica := engine.New(engine.Options{Rand: r})
	for _, db := range []*engine.DB{db, replica} {
		if db == replica {
			if err := ApplyEffects(db, now, [][][]byte{bs("SET", "a", "10")}); err != nil {
				t.Fatal(err)
			}
		}
		if err := ApplyEffects(db, now, effects); err != nil {
			t.Fatal(err)
		}
		var w recorder
		db.Exec(now, bs("MGET", "a", "b"), &w)
		if got := strings.TrimSpace(w.String()); got != `*2 "6" "4"` {
			t.Fatalf("after effects: %s", got)
		}
	}
	if err := ApplyEffects(db, now, [][][]byte{bs("SET", "a", "1", "BOGUS")}); err == nil {
		t.Fatal("a failing effect was not reported")
	}
}

func TestAppendEffectsAppends(t *testing.T) {
	effects := [][][]byte{{[]byte("SET"), []byte("k"), []byte("v")}, {[]byte("DEL"), []byte("j")}}
	rec := EncodeEffects(effects)
	out := AppendEffects([]byte("head"), effects)
	if string(out[:4]) != "head" || string(out[4:]) != string(rec) {
		t.Fatalf("AppendEffects = %q, want head + %q", out, rec)
	}
	got, err := DecodeEffects(out[4:])
	if err != nil || len(got) != 2 || string(got[1][1]) != "j" {
		t.Fatalf("decode: %q %v", got, err)
	}
}
