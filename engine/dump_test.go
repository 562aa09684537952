package engine

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// dumpDB renders every key: type, encoding, TTL and whole content, read
// through commands (sorted where the order is the encoding's).
func dumpDB(db *DB, now int64) string {
	var b strings.Builder
	keysReply := exec(db, now, "KEYS", "*")
	keys := strings.Fields(strings.Trim(keysReply, "[]"))
	sort.Strings(keys)
	for _, qk := range keys {
		k := strings.Trim(qk, `"`)
		typ := exec(db, now, "TYPE", k)
		fmt.Fprintf(&b, "%s %s %s pttl=%s ", k, typ, exec(db, now, "OBJECT", "ENCODING", k), exec(db, now, "PTTL", k))
		switch typ {
		case "+string":
			b.WriteString(exec(db, now, "GET", k))
		case "+list":
			b.WriteString(exec(db, now, "LRANGE", k, "0", "-1"))
		case "+set":
			b.WriteString(exec(db, now, "SMEMBERS", k))
		case "+hash":
			b.WriteString(exec(db, now, "HGETALL", k))
		case "+zset":
			b.WriteString(exec(db, now, "ZRANGE", k, "0", "-1", "WITHSCORES"))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// fillAllTypes makes keys of every type and encoding, small and large,
// some with a TTL, some with elements too long for a node.
func fillAllTypes(db *DB, now int64, rng *rand.Rand, n int) {
	big := strings.Repeat("B", 700)
	for i := 0; i < n; i++ {
		exec(db, now, "SET", fmt.Sprintf("str:%d", i), fmt.Sprintf("v%d", i))
	}
	exec(db, now, "SET", "str:ttl", "x", "PX", "100000")
	exec(db, now, "RPUSH", "list:small", "a", "b", "c")
	exec(db, now, "SADD", "set:int", "3", "1", "2")
	exec(db, now, "SADD", "set:lp", "b", "a")
	exec(db, now, "HSET", "hash:small", "f", "v", "g", "w")
	exec(db, now, "ZADD", "zset:small", "1", "a", "2", "b")
	exec(db, now, "EXPIRE", "zset:small", "1000")
	for i := 0; i < n; i++ {
		e := fmt.Sprintf("e%d-%d", i, rng.IntN(1000))
		if i%97 == 0 {
			e = big + e
		}
		exec(db, now, "RPUSH", "list:big", e)
		exec(db, now, "SADD", "set:big", e)
		exec(db, now, "HSET", "hash:big", e, fmt.Sprint(i))
		exec(db, now, "ZADD", "zset:big", fmt.Sprint(rng.IntN(100)), e)
	}
	exec(db, now, "HSET", "hash:big", "longval", big+big)
	exec(db, now, "PEXPIRE", "set:big", "500000")
}

// TestSnapshotRoundTrip writes every type and encoding through a View in
// pieces (small ones, so a large collection spans many) and loads them
// with the Loader and with Restore: the same keyspace comes back, and the
// view still reads what it saw while the DB changes under it.
func TestSnapshotRoundTrip(t *testing.T) {
	const now = 1_000_000
	db := newTestDB()
	fillAllTypes(db, now, rand.New(rand.NewPCG(3, 4)), 3000)
	want := dumpDB(db, now)
	v := db.View()
	// Change everything after the view.
	exec(db, now, "DEL", "list:small")
	exec(db, now, "LPUSH", "list:big", "new")
	exec(db, now, "SPOP", "set:big", "100")
	exec(db, now, "HDEL", "hash:big", "longval")
	exec(db, now, "ZREMRANGEBYRANK", "zset:big", "0", "500")
	exec(db, now, "FLUSHALL")
	fillAllTypes(db, now, rand.New(rand.NewPCG(9, 9)), 500)

	type piece struct {
		e Entry
	}
	var pieces []Entry
	keys := 0
	v.Ascend(func(e Entry) bool {
		keys++
		for from, first := uint64(0), true; ; first = false {
			var p []byte
			p, from = e.AppendPiece(nil, from, 4096)
			pe := Entry{Type: e.Type, Key: append([]byte(nil), e.Key...), Value: p, ExpireAt: e.ExpireAt}
			if !first {
				pe.Type |= TypeContinued
			}
			pieces = append(pieces, pe)
			if from >= e.Units() {
				break
			}
		}
		return true
	})
	v.Release()
	if len(pieces) < keys+50 {
		t.Fatalf("%d pieces for %d keys: large collections should take many", len(pieces), keys)
	}
	loaded := newTestDB()
	ld := loaded.NewLoader(keys)
	for _, p := range pieces {
		if err := ld.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := ld.Finish(); err != nil {
		t.Fatal(err)
	}
	if got := dumpDB(loaded, now); got != want {
		t.Fatalf("loaded keyspace differs\n got %.2000s\nwant %.2000s", got, want)
	}
	restored := newTestDB()
	exec(restored, now, "SET", "list:big", "to be replaced")
	for _, p := range pieces {
		if err := restored.Restore(p); err != nil {
			t.Fatal(err)
		}
	}
	if got := dumpDB(restored, now); got != want {
		t.Fatalf("restored keyspace differs")
	}
	// A continuation out of place, or pieces missing, are refused.
	bad := newTestDB()
	for _, p := range pieces {
		if p.Type.Continued() {
			if err := bad.Restore(p); err == nil {
				t.Fatal("a continuation without its first piece was accepted")
			}
			break
		}
	}
	ld = newTestDB().NewLoader(0)
	for _, p := range pieces {
		if string(p.Key) == "list:big" && !p.Type.Continued() {
			if err := ld.Add(p); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if err := ld.Finish(); err == nil {
		t.Fatal("a value missing its pieces was accepted")
	}
	// Damaged packs are refused.
	for _, e := range []Entry{
		{Type: TypeHash, Key: []byte("h"), Value: []byte{encListpackHash, 1, 0, 5, 'a'}},
		{Type: TypeSet, Key: []byte("s"), Value: []byte{encIntset, 2, 2, 0, 5, 0, 1, 0}},
		{Type: TypeZSet, Key: []byte("z"), Value: []byte{encListpackList, 0, 0}},
		{Type: TypeList, Key: []byte("l"), Value: []byte{encSkiplist, 200}},
		{Type: 9, Key: []byte("x"), Value: []byte("v")},
	} {
		if err := newTestDB().Restore(e); err == nil {
			t.Errorf("damaged %v value %v accepted", e.Type, e.Value)
		}
	}
}

// TestImportPiece: pieces of a moved key are idempotent (a resent
// command), a list's included.
func TestImportPiece(t *testing.T) {
	const now = 1000
	src := newTestDB()
	fillAllTypes(src, now, rand.New(rand.NewPCG(1, 1)), 2000)
	dst := newTestDB()
	for _, key := range []string{"list:big", "set:big", "hash:big", "zset:big", "list:small", "str:7"} {
		e, ok := src.LiveEntry(now, []byte(key))
		if !ok {
			t.Fatal(key)
		}
		for from := uint64(0); from < e.Units(); {
			p, next := e.AppendPiece(nil, from, 1000)
			for rep := 0; rep < 2; rep++ { // each piece twice
				if err := dst.ImportPiece(now, []byte(key), e.Type, from, p, e.ExpireAt); err != nil {
					t.Fatal(err)
				}
			}
			from = next
		}
		a := strings.SplitN(dumpDB(src, now), "\n", -1)
		b := dumpDB(dst, now)
		found := false
		for _, line := range a {
			if strings.HasPrefix(line, key+" ") {
				found = true
				if !strings.Contains(b, line+"\n") {
					t.Fatalf("%s imported differs", key)
				}
			}
		}
		if !found {
			t.Fatal(key)
		}
	}
	if err := dst.ImportPiece(now, []byte("nokey"), TypeList, 5, []byte{1, 'x'}, 0); err == nil {
		t.Fatal("a later piece of an absent key was accepted")
	}
}

// TestViewConcurrentCollections reads a view's collections, pieces and
// all, on another goroutine while the DB changes, deletes and refills the
// same collections (run with -race): the view sees what it saw.
func TestViewConcurrentCollections(t *testing.T) {
	const now = 1000
	db := newTestDB()
	fillAllTypes(db, now, rand.New(rand.NewPCG(5, 6)), 2000)
	want := collState(db.View().Ascend) // a view of its own, left open
	v := db.View()
	done := make(chan string)
	go func() {
		var got string
		for i := 0; i < 3; i++ {
			got = collState(v.Ascend)
		}
		v.Release()
		done <- got
	}()
	for round := 0; round < 30; round++ {
		exec(db, now, "LPUSH", "list:big", "x", "y")
		exec(db, now, "RPOP", "list:big", "3")
		exec(db, now, "SPOP", "set:big", "20")
		exec(db, now, "SADD", "set:big", "n1", "n2", strings.Repeat("Q", 900))
		exec(db, now, "HSET", "hash:big", "f", strings.Repeat("V", 700))
		exec(db, now, "HDEL", "hash:big", "longval")
		exec(db, now, "ZADD", "zset:big", "5", "new", "7", "e1-1")
		exec(db, now, "ZREMRANGEBYRANK", "zset:big", "0", "10")
		if round == 15 {
			exec(db, now, "DEL", "list:big", "hash:big")
			fillAllTypes(db, now, rand.New(rand.NewPCG(7, 8)), 300)
		}
	}
	if got := <-done; got != want {
		t.Fatal("the view changed under concurrent writes")
	}
}
