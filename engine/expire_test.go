package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"unsafe"
)

// TestActiveExpireWheel loads keys with deadlines spread from 1 ms to
// centuries ahead, then moves time in uneven jumps with small budgets:
// no key leaves before its deadline, every key leaves once the clock has
// passed it and enough budget was spent, and the wheel's invariants hold
// after every call.
func TestActiveExpireWheel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	db := newTestDB()
	start := int64(1_700_000_000_000)
	deadlines := map[string]int64{}
	for i := 0; i < 3000; i++ {
		var d int64
		switch i % 4 {
		case 0:
			d = 1 + rng.Int64N(100)
		case 1:
			d = rng.Int64N(100_000)
		case 2:
			d = rng.Int64N(10_000_000_000) // months
		default:
			d = rng.Int64N(math.MaxInt64 - start) // up to year 292 million
		}
		k := "k" + strconv.Itoa(i)
		exec(db, start, "SET", k, "v", "PXAT", strconv.FormatInt(start+d, 10))
		if exec(db, start, "EXISTS", k) == ":1" {
			deadlines[k] = start + d
		}
	}
	now := start
	for step := 0; step < 2000 && db.Len() > 0; step++ {
		switch {
		case step%500 == 499:
			now += rng.Int64N(math.MaxInt64/4 - now/4) // a huge jump
		default:
			now += rng.Int64N(50_000)
		}
		if now < 0 {
			now = math.MaxInt64 - 1
		}
		db.ActiveExpire(now, 1+rng.IntN(40))
		checkWheel(t, db)
		for k, d := range deadlines {
			it := db.find([]byte(k))
			if it == 0 && d >= now {
				t.Fatalf("key %s (deadline %d) removed at %d", k, d, now)
			}
			if it == 0 {
				delete(deadlines, k)
			}
		}
	}
	// With unlimited budget everything due goes at once.
	db.ActiveExpire(math.MaxInt64, math.MaxInt)
	checkWheel(t, db)
	if db.Len() != 0 || db.Expires() != 0 {
		t.Fatalf("%d keys (%d volatile) left after the end of time", db.Len(), db.Expires())
	}
}

// TestActiveExpireBudget shows the work bound: a million keys due in the
// same millisecond leave at most budget per call.
func TestActiveExpireBudget(t *testing.T) {
	db := newTestDB()
	for i := 0; i < 10_000; i++ {
		exec(db, 1000, "SET", strconv.Itoa(i), "v", "PXAT", "5000")
	}
	if n := db.ActiveExpire(5000, 100); n != 0 {
		t.Fatalf("expired %d keys at their deadline (Redis keeps them until now > deadline)", n)
	}
	total := 0
	for calls := 1; db.Len() > 0; calls++ {
		n := db.ActiveExpire(5001, 100)
		if n > 100 {
			t.Fatalf("call %d expired %d > budget", calls, n)
		}
		total += n
		if calls > 200 {
			t.Fatal("active expiry makes no progress")
		}
	}
	if total != 10_000 {
		t.Fatalf("expired %d", total)
	}
}

func TestNotify(t *testing.T) {
	var events []string
	db := New(Options{Rand: rand.New(rand.NewPCG(1, 1)), Notify: func(ev string, key []byte) {
		events = append(events, ev+":"+string(key))
	}})
	for _, cmd := range [][]string{
		{"SET", "a", "1", "PX", "100"},
		{"INCR", "a"},
		{"INCRBYFLOAT", "a", "0.5"},
		{"APPEND", "a", "0"},
		{"SETRANGE", "a", "0", "9"},
		{"PERSIST", "a"},
		{"EXPIRE", "a", "10"},
		{"RENAME", "a", "b"},
		{"COPY", "b", "c"},
		{"DEL", "b"},
		{"MSET", "x", "1", "y", "2"},
		{"GETDEL", "x"},
		{"PEXPIRE", "y", "5"},
	} {
		exec(db, 1000, cmd...)
	}
	exec(db, 1006, "GET", "y") // lazily expired, then a miss
	// "new" comes first when a key is created (Redis's dbAdd), and a read
	// that finds nothing raises "keymiss" (lookupKeyRead); the server
	// filters both by the 'n' and 'm' classes.
	want := "[new:a set:a expire:a incrby:a incrbyfloat:a append:a setrange:a persist:a expire:a " +
		"new:b rename_from:a rename_to:b new:c copy_to:c del:b new:x set:x new:y set:y del:x expire:y expired:y keymiss:y]"
	if got := fmt.Sprint(events); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}

	// Overwrites and write lookups are silent; every read command misses.
	events = nil
	exec(db, 2000, "SET", "c", "2")
	exec(db, 2000, "SETNX", "c", "3")
	for _, cmd := range [][]string{
		{"GET", "m"}, {"MGET", "c", "m"}, {"STRLEN", "m"}, {"GETRANGE", "m", "0", "1"},
		{"GETEX", "m"}, {"EXISTS", "m"}, {"TYPE", "m"}, {"TTL", "m"}, {"GETDEL", "m"},
		{"DEL", "m"}, {"EXPIRE", "m", "1"}, {"PERSIST", "m"},
	} {
		exec(db, 2000, cmd...)
	}
	want = "[set:c keymiss:m keymiss:m keymiss:m keymiss:m keymiss:m keymiss:m keymiss:m keymiss:m keymiss:m]"
	if got := fmt.Sprint(events); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}

	// Restoring a snapshot entry creates no "new" event: it is not a write.
	events = nil
	db.Restore(Entry{Key: []byte("restored"), Type: TypeString, Value: []byte("v")})
	if len(events) != 0 {
		t.Fatalf("Restore raised %v", events)
	}
}

func TestKeyVersion(t *testing.T) {
	db := newTestDB()
	v0 := db.KeyVersion(1000, []byte("k"))
	if db.KeyVersion(1000, []byte("k")) != v0 {
		t.Fatal("version of an untouched absent key changed")
	}
	exec(db, 1000, "SET", "other", "x")
	exec(db, 1000, "GET", "k")
	if db.KeyVersion(1000, []byte("k")) != v0 {
		t.Fatal("unrelated write or a read changed the version")
	}
	exec(db, 1000, "SET", "k", "1")
	v1 := db.KeyVersion(1000, []byte("k"))
	if v1 == v0 {
		t.Fatal("creation did not change the version")
	}
	for _, cmd := range [][]string{
		{"INCR", "k"}, {"APPEND", "k", "x"}, {"PEXPIRE", "k", "10"}, {"PERSIST", "k"},
		{"SET", "k", "same"}, {"SET", "k", "same"}, {"DEL", "k"}, {"SET", "k", "back"},
	} {
		before := db.KeyVersion(1000, []byte("k"))
		exec(db, 1000, cmd...)
		if db.KeyVersion(1000, []byte("k")) == before {
			t.Fatalf("%v did not change the version", cmd)
		}
	}
	exec(db, 1000, "PEXPIRE", "k", "10")
	before := db.KeyVersion(1000, []byte("k"))
	if db.KeyVersion(1011, []byte("k")) == before {
		t.Fatal("expiry did not change the version")
	}
	if db.find([]byte("k")) == 0 {
		t.Fatal("KeyVersion collected an expired key (it must change nothing)")
	}
	db.KeyVersion(99_999, []byte("k"))
	if db.Clock() != 1000 {
		t.Fatalf("KeyVersion moved the clock to %d", db.Clock())
	}
	before = db.KeyVersion(1011, []byte("other"))
	exec(db, 1011, "FLUSHALL")
	if db.KeyVersion(1011, []byte("other")) == before {
		t.Fatal("FLUSHALL did not change the version")
	}
}

// TestViewConcurrent reads a View from another goroutine while the DB
// keeps overwriting, appending to, expiring and deleting the same keys,
// and inserting new ones between them, which splits the ordered index's
// leaves the view shares (run with -race to check the copy-on-write rule).
func TestViewConcurrent(t *testing.T) {
	db := newTestDB()
	for i := 0; i < 2000; i++ {
		exec(db, 1000, "SET", "k"+strconv.Itoa(i), "v"+strconv.Itoa(i), "PX", strconv.Itoa(1+i%50))
	}
	v := db.View()
	var wg sync.WaitGroup
	wg.Add(1)
	var got map[string]string
	var n int
	go func() {
		defer wg.Done()
		got = map[string]string{}
		v.Ascend(func(e Entry) bool {
			got[string(e.Key)] = string(e.Value)
			return true
		})
		n = v.Len()
		v.Release()
	}()
	for round := 0; round < 5; round++ {
		for i := 0; i < 2000; i++ {
			k := "k" + strconv.Itoa(i)
			switch i % 4 {
			case 0:
				exec(db, 1000, "SET", k, "changed")
			case 1:
				exec(db, 1000, "APPEND", k, "!")
			case 2:
				exec(db, 1000, "DEL", k)
			default:
				exec(db, 1000, "SETRANGE", k, "0", "zz")
			}
			exec(db, 1000, "SET", k+"/"+strconv.Itoa(round), "new")
		}
		db.ActiveExpire(1000+int64(round)*20, 500)
	}
	wg.Wait()
	if n != 2000 || len(got) != 2000 {
		t.Fatalf("view has %d/%d keys, want 2000", n, len(got))
	}
	for i := 0; i < 2000; i++ {
		if g := got["k"+strconv.Itoa(i)]; g != "v"+strconv.Itoa(i) {
			t.Fatalf("view saw k%d = %q", i, g)
		}
	}
}

func TestRestoreAndReset(t *testing.T) {
	src := newTestDB()
	exec(src, 1000, "SET", "a", "1")
	exec(src, 1000, "SET", "b", "2", "PXAT", "5000")
	v := src.View()
	dst := newTestDB()
	dst.Reserve(v.Len())
	v.Ascend(func(e Entry) bool { dst.Restore(e); return true })
	v.Release()
	if got := exec(dst, 1000, "MGET", "a", "b"); got != `["1" "2"]` {
		t.Fatalf("restored %s", got)
	}
	if got := exec(dst, 1000, "PEXPIRETIME", "b"); got != ":5000" {
		t.Fatalf("restored deadline %s", got)
	}
	if dst.Expires() != 1 || dst.UsedBytes() <= 0 {
		t.Fatalf("Expires %d UsedBytes %d", dst.Expires(), dst.UsedBytes())
	}
	dst.Restore(Entry{Type: TypeString, Key: []byte("a"), Value: []byte("replaced")})
	if got := exec(dst, 1000, "GET", "a"); got != `"replaced"` {
		t.Fatalf("restore over a key gave %s", got)
	}
	dst.Reset()
	if dst.Len() != 0 || dst.Expires() != 0 || dst.UsedBytes() != indexSlotsMin*indexBytesPerSlot {
		t.Fatalf("after Reset: Len %d Expires %d UsedBytes %d", dst.Len(), dst.Expires(), dst.UsedBytes())
	}
	if got := exec(dst, 6000, "DBSIZE"); got != ":0" {
		t.Fatalf("DBSIZE after reset %s", got)
	}
}

// TestUsedBytesTracks checks the accounting returns to zero after every
// way of growing and shrinking values.
func TestUsedBytesTracks(t *testing.T) {
	db := newTestDB()
	for _, cmd := range [][]string{
		{"SET", "a", "12345"}, {"APPEND", "a", "67890"}, {"SETRANGE", "a", "100", "x"},
		{"INCR", "n"}, {"INCRBYFLOAT", "f", "1.5"}, {"SET", "a", "tiny"}, {"RENAME", "a", "b"},
		{"COPY", "b", "c"}, {"GETSET", "c", "longer value here"},
	} {
		exec(db, 1, cmd...)
	}
	v := db.View()
	exec(db, 1, "APPEND", "b", "after the view")
	exec(db, 1, "SET", "n", "5")
	v.Release()
	if db.UsedBytes() <= 0 {
		t.Fatal("no bytes accounted")
	}
	exec(db, 1, "DEL", "b", "c", "n", "f")
	// Only the point index's (smallest) table remains.
	if db.Len() != 0 || db.UsedBytes() != indexSlotsMin*indexBytesPerSlot {
		t.Fatalf("Len %d UsedBytes %d after deleting everything", db.Len(), db.UsedBytes())
	}
	if db.HeldBytes() < pageBytes {
		t.Fatalf("HeldBytes %d: the pages stay for reuse", db.HeldBytes())
	}
}

func TestRandomKey(t *testing.T) {
	db := newTestDB()
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		exec(db, 1000, "SET", "k"+strconv.Itoa(i), "v")
	}
	exec(db, 1000, "SET", "dying", "v", "PX", "1")
	for i := 0; i < 500; i++ {
		got := exec(db, 1002, "RANDOMKEY")
		if got == `"dying"` {
			t.Fatal("RANDOMKEY returned an expired key")
		}
		seen[got] = true
	}
	if len(seen) != 10 {
		t.Fatalf("RANDOMKEY reached %d of 10 keys", len(seen))
	}
	mostlyDead := newTestDB()
	for i := 0; i < 1000; i++ {
		exec(mostlyDead, 1000, "SET", "d"+strconv.Itoa(i), "v", "PX", "1")
	}
	exec(mostlyDead, 1000, "SET", "alive", "v")
	if got := exec(mostlyDead, 1002, "RANDOMKEY"); got != `"alive"` {
		t.Fatalf("RANDOMKEY among expired keys: %s", got)
	}
	if mostlyDead.Len() != 1 {
		t.Fatalf("%d keys left after RANDOMKEY collected the expired ones", mostlyDead.Len())
	}
	if got := exec(New(Options{}), 1, "RANDOMKEY"); got != "(nil)" {
		t.Fatalf("RANDOMKEY without Options.Rand on an empty DB: %s", got)
	}
	noRand := New(Options{})
	exec(noRand, 1, "SET", "k", "v")
	if got := exec(noRand, 1, "RANDOMKEY"); got != `"k"` {
		t.Fatalf("RANDOMKEY without Options.Rand: %s", got)
	}
	// Same seed, same history: same answers.
	a, b := newTestDB(), newTestDB()
	for i := 0; i < 50; i++ {
		exec(a, 1, "SET", strconv.Itoa(i), "v")
		exec(b, 1, "SET", strconv.Itoa(i), "v")
	}
	for i := 0; i < 20; i++ {
		if x, y := exec(a, 1, "RANDOMKEY"), exec(b, 1, "RANDOMKEY"); x != y {
			t.Fatalf("RANDOMKEY differs between identical DBs: %s %s", x, y)
		}
	}
}

func TestCommandTable(t *testing.T) {
	for _, c := range Commands() {
		if c.Flags&(Write|ReadOnly) == 0 || c.Flags&Write != 0 && c.Flags&ReadOnly != 0 {
			t.Errorf("%s: must be exactly one of Write or ReadOnly", c.Name)
		}
		if len(c.Categories) == 0 {
			t.Errorf("%s: no categories", c.Name)
		}
		if c.FirstKey != 0 && c.Step == 0 {
			t.Errorf("%s: keys without a step", c.Name)
		}
	}
	mset := Lookup([]byte("MSET"))
	if got := fmt.Sprint(mset.Keys([][]byte{[]byte("mset"), []byte("a"), []byte("1"), []byte("b"), []byte("2")})); got != "[1 3]" {
		t.Fatalf("MSET keys at %s", got)
	}
	if got := exec(newTestDB(), 1, "NOPE", "a", "b"); got != "-ERR unknown command 'NOPE', with args beginning with: 'a' 'b' " {
		t.Fatalf("unknown command: %s", got)
	}
}

// TestRecordSize keeps a record at recordBytes: every byte here is paid
// once per key, and UsedBytes charges recordBytes.
func TestRecordSize(t *testing.T) {
	if n := unsafe.Sizeof(record{}); n != recordBytes {
		t.Fatalf("record is %d bytes, want %d", n, recordBytes)
	}
	if n := unsafe.Sizeof(ttlEntry{}); n != ttlEntryBytes {
		t.Fatalf("TTL entry is %d bytes, want %d", n, ttlEntryBytes)
	}
}

// TestWrongType plants a key of a type strings do not handle (lists and
// hashes will be real ones) and checks every string command's answer.
func TestWrongType(t *testing.T) {
	const otherType ValueType = 200
	db := newTestDB()
	plant := func() {
		if it := db.find([]byte("o")); it != 0 {
			db.remove(it)
		}
		db.add([]byte("o"), otherType, []byte("opaque"), 0)
	}
	plant()
	for _, cmd := range [][]string{
		{"GET", "o"}, {"GETSET", "o", "x"}, {"GETDEL", "o"}, {"GETEX", "o", "PERSIST"},
		{"SET", "o", "x", "GET"}, {"APPEND", "o", "x"}, {"STRLEN", "o"},
		{"GETRANGE", "o", "0", "1"}, {"SETRANGE", "o", "0", "x"}, {"INCR", "o"},
		{"DECRBY", "o", "2"}, {"INCRBYFLOAT", "o", "1.5"},
	} {
		if got := exec(db, 1, cmd...); got != "-"+errWrongType {
			t.Errorf("%v: %s", cmd, got)
		}
	}
	for _, c := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"MGET", "o"}, "[(nil)]"},
		{[]string{"EXISTS", "o"}, ":1"},
		{[]string{"SCAN", "0", "TYPE", "string"}, `["0" []]`},
		{[]string{"PEXPIRE", "o", "100"}, ":1"},
		{[]string{"RENAME", "o", "p"}, "+OK"},
		{[]string{"COPY", "p", "o"}, ":1"},
		{[]string{"DEL", "p"}, ":1"},
		{[]string{"SET", "o", "now a string"}, "+OK"},
		{[]string{"GET", "o"}, `"now a string"`},
		{[]string{"PTTL", "o"}, ":-1"},
	} {
		if got := exec(db, 1, c.cmd...); got != c.want {
			t.Errorf("%v: %s, want %s", c.cmd, got, c.want)
		}
	}
	plant()
	if got := exec(db, 1, "MSET", "o", "s"); got != "+OK" || exec(db, 1, "GET", "o") != `"s"` {
		t.Errorf("MSET over another type: %s", got)
	}
}

// TestSetKeepTTLOverOtherType: SET ... KEEPTTL over a key of another type
// keeps the key's TTL, as Redis 7 does (found by the simulator's grammar
// workload: the TTL was dropped when the old value was a list or hash).
func TestSetKeepTTLOverOtherType(t *testing.T) {
	db := newTestDB()
	for _, c := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"RPUSH", "l", "a"}, ":1"},
		{[]string{"PEXPIRE", "l", "5000"}, ":1"},
		{[]string{"SET", "l", "x", "KEEPTTL"}, "+OK"},
		{[]string{"PTTL", "l"}, ":5000"},
		{[]string{"GET", "l"}, `"x"`},
		{[]string{"HSET", "h", "f", "v"}, ":1"},
		{[]string{"PEXPIRE", "h", "7000"}, ":1"},
		{[]string{"SET", "h", "", "XX", "KEEPTTL", "GET"}, "-" + errWrongType},
		{[]string{"SET", "h", "", "XX", "KEEPTTL"}, "+OK"},
		{[]string{"PTTL", "h"}, ":7000"},
		{[]string{"SADD", "s", "m"}, ":1"},
		{[]string{"PEXPIRE", "s", "9000"}, ":1"},
		{[]string{"SET", "s", "y"}, "+OK"},
		{[]string{"PTTL", "s"}, ":-1"},
	} {
		if got := exec(db, 1, c.cmd...); got != c.want {
			t.Errorf("%v: %s, want %s", c.cmd, got, c.want)
		}
	}
}

// TestExecLocalReadHidesButKeeps: a local read at a later now hides a key
// that now has expired, but keeps it and leaves the DB's clock alone, so
// a command at the log's time still finds it; RANDOMKEY gives up rather
// than spin on keys it may not collect.
func TestExecLocalReadHidesButKeeps(t *testing.T) {
	db := newTestDB()
	exec(db, 1, "SET", "a", "v", "PXAT", "1000")
	local := func(now int64, cmd ...string) string {
		w := &recorder{}
		args := make([][]byte, len(cmd))
		for i, a := range cmd {
			args[i] = []byte(a)
		}
		db.ExecLocalRead(now, args, w)
		return w.String()
	}
	for _, c := range []struct {
		got, want string
	}{
		{local(2000, "GET", "a"), "(nil)"},
		{local(2000, "EXISTS", "a"), ":0"},
		{local(2000, "RANDOMKEY"), "(nil)"},
		{local(2000, "SCAN", "0"), `["0" []]`},
		{local(500, "GET", "a"), `"v"`},
		{exec(db, 500, "TYPE", "a"), "+string"},
		{exec(db, 2000, "GET", "a"), "(nil)"},
		{exec(db, 2000, "EXISTS", "a"), ":0"},
	} {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
	if db.Len() != 0 {
		t.Errorf("%d keys left after a read at the DB's own clock passed the deadline", db.Len())
	}
}
