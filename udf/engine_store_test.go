package udf

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/keel-db/keel/engine"
)

// The whole path a replica will take: read through the engine, apply the
// effects with engine.Exec, and read the result back with GET.
func TestEngineStoreEndToEnd(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, NewConfig(), "transfer", "abi", "counter", "trap_after_write")
	r := rand.New(rand.NewPCG(1, 2))
	db := engine.New(engine.Options{Rand: r})
	now := int64(1_700_000_000_000)
	exec := func(args ...string) string {
		var w recorder
		db.Exec(now, bs(args...), &w)
		return strings.TrimSpace(w.String())
	}
	fcall := func(fn string, keys []string, args ...string) string {
		st := &EngineStore{DB: db, NowMillis: now, R: r}
		res, err := h.Call(ctx, fn, bs(keys...), bs(args...), st, false)
		if err != nil {
			return "-" + Message(err)
		}
		for _, e := range res.Effects {
			var w recorder
			db.Exec(now, e, &w)
			if strings.HasPrefix(w.String(), "-") {
				t.Fatalf("effect %q failed: %s", e, w.String())
			}
		}
		return res.Reply.String()
	}
	exec("SET", "acct:a", "100")
	exec("SET", "ttl", "5", "PX", "10000")
	if got := fcall("transfer", []string{"acct:a", "acct:b"}, "60"); got != "(integer) 1" {
		t.Fatal(got)
	}
	if got := fcall("transfer", []string{"acct:a", "acct:b"}, "60"); got != "-ERR insufficient funds" {
		t.Fatal(got)
	}
	if got := exec("GET", "acct:a") + " " + exec("GET", "acct:b"); got != `"40" "60"` {
		t.Fatalf("balances %s", got)
	}
	// INCRBY keeps the TTL (SET ... KEEPTTL), a TTL'd set is absolute.
	fcall("incr_by", []string{"ttl"}, "1")
	if got := exec("PTTL", "ttl"); got != ":10000" {
		t.Fatalf("PTTL after incr_by = %s", got)
	}
	fcall("setv", []string{"exp"}, "v", "2500")
	if got := exec("PTTL", "exp"); got != ":2500" {
		t.Fatalf("PTTL after setv = %s", got)
	}
	if got := fcall("movev", []string{"acct:b", "acct:c"}); got != "(integer) 1" {
		t.Fatal(got)
	}
	if got := exec("EXISTS", "acct:b") + " " + exec("GET", "acct:c"); got != `:0 "60"` {
		t.Fatalf("after move: %s", got)
	}
	if got := fcall("scanp", []string{"acct:"}); got != `["acct:a" "acct:c"]` {
		t.Fatalf("scan = %s", got)
	}
	if got := fcall("scanp", []string{"acct:"}, "acct:a"); got != `["acct:c"]` {
		t.Fatalf("scan after = %s", got)
	}
	if got := fcall("trap_after_write", []string{"acct:a"}); !strings.Contains(got, "trapped") {
		t.Fatal(got)
	}
	if got := exec("GET", "acct:a"); got != `"40"` {
		t.Fatalf("trap changed acct:a: %s", got)
	}
	// Many keys, a prefix with glob characters, and neighbours that must
	// not match.
	for i := 0; i < 700; i++ {
		exec("SET", "p*["+string(rune('a'+i%26))+strings.Repeat("x", i/26), "1")
	}
	exec("SET", "pz", "1")
	exec("SET", "p*", "1")
	st := &EngineStore{DB: db, NowMillis: now, R: r}
	keys := st.Scan([]byte("p*["), nil, 1000)
	if len(keys) != 700 {
		t.Fatalf("scan p*[ found %d keys, want 700", len(keys))
	}
	keys = st.Scan([]byte("p*["), []byte("p*[b"), 3)
	if strings.Join(strs(keys), ",") != "p*[bx,p*[bxx,p*[bxxx" {
		t.Fatalf("scan after p*[b = %q", keys)
	}
	// A key of another type fails the call with the engine's error. (Only
	// strings exist in the engine today; this guards the path.)
	if got := fcall("getv", []string{"missing"}); got != "(nil)" {
		t.Fatal(got)
	}
}
