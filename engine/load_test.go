package engine

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// The bulk loader gives the same keyspace as Restore: values, deadlines,
// ordering, and values that change in place afterwards stay private to
// their key even though keys and values share slabs.
func TestLoaderMatchesRestore(t *testing.T) {
	var entries []Entry
	for i := 0; i < 1000; i++ {
		e := Entry{Type: TypeString, Key: []byte(fmt.Sprintf("k%04d", i)), Value: []byte(fmt.Sprintf("v%d", i))}
		if i%7 == 0 {
			e.ExpireAt = 5000 + int64(i)
		}
		if i == 500 {
			e.Value = []byte(strings.Repeat("x", cellMaxBytes+1)) // a large cell
		}
		if i == 600 {
			e.Value = []byte{}
		}
		entries = append(entries, e)
	}
	// Out of order and repeated keys fall back to Restore (replace).
	entries = append(entries,
		Entry{Type: TypeString, Key: []byte("k0003"), Value: []byte("again")},
		Entry{Type: TypeString, Key: []byte("a-first"), Value: []byte("late")},
	)
	want, got := newTestDB(), newTestDB()
	for _, e := range entries {
		want.Restore(e)
	}
	ld := got.NewLoader(len(entries))
	for _, e := range entries {
		ld.Add(e)
	}
	ld.Finish()
	same := func(stage string) {
		t.Helper()
		if want.Len() != got.Len() || want.Expires() != got.Expires() {
			t.Fatalf("%s: Len %d/%d Expires %d/%d", stage, want.Len(), got.Len(), want.Expires(), got.Expires())
		}
		for _, q := range [][]string{
			{"SCAN", "0", "COUNT", "5000"}, {"MGET", "k0003", "a-first", "k0500", "k0600", "k0999", "k0001"},
			{"PEXPIRETIME", "k0007"}, {"PEXPIRETIME", "k0008"}, {"STRLEN", "k0500"},
		} {
			if w, g := exec(want, 1000, q...), exec(got, 1000, q...); w != g {
				t.Fatalf("%s: %v: want %s, got %s", stage, q, w, g)
			}
		}
	}
	same("loaded")
	for _, cmd := range [][]string{
		{"SETRANGE", "k0010", "0", "XY"}, {"APPEND", "k0011", "-appended-and-longer"},
		{"SET", "k0012", "v1"}, {"INCR", "k0013"}, {"DEL", "k0014"}, {"SET", "k0600", "filled"},
	} {
		exec(want, 1000, cmd...)
		exec(got, 1000, cmd...)
	}
	for _, k := range []string{"k0009", "k0010", "k0011", "k0012", "k0013", "k0014", "k0015", "k0600"} {
		if w, g := exec(want, 1000, "GET", k), exec(got, 1000, "GET", k); w != g {
			t.Fatalf("after writes: GET %s: want %s, got %s", k, w, g)
		}
	}
	same("after writes")
	// Past every deadline, expiry removes the same keys.
	if w, g := exec(want, 10000, "DBSIZE"), exec(got, 10000, "DBSIZE"); w != g {
		t.Fatalf("DBSIZE after expiry: %s vs %s", w, g)
	}
}

// TestLoaderBatches loads more keys than one batch of held-back
// point-index entries, with an out-of-order key in the middle (which
// flushes early), and checks that every key is found and the indexes agree.
func TestLoaderBatches(t *testing.T) {
	n := 3*loaderBatchMax + 123
	db := newTestDB()
	ld := db.NewLoader(0) // no hint: the index grows batch by batch
	for i := 0; i < n; i++ {
		ld.Add(Entry{Type: TypeString, Key: []byte(fmt.Sprintf("k%07d", i)), Value: []byte(fmt.Sprint(i))})
		if i == loaderBatchMax+7 {
			ld.Add(Entry{Type: TypeString, Key: []byte("k0000003"), Value: []byte("again")})
		}
	}
	ld.Finish()
	if db.Len() != n {
		t.Fatalf("Len %d, want %d", db.Len(), n)
	}
	checkIndexes(t, db)
	for i := 0; i < n; i += 997 {
		want := strconv.Quote(fmt.Sprint(i))
		if i == 3 {
			want = `"again"`
		}
		if got := exec(db, 1, "GET", fmt.Sprintf("k%07d", i)); got != want {
			t.Fatalf("GET k%07d = %s, want %s", i, got, want)
		}
	}
}

// TestLoaderIntoNonEmptyDB loads ascending keys into a DB that already
// holds some: keys below its largest one are probed and replace what they
// repeat, and the ones above it take the append path; the result is the
// same keyspace as Restore gives, with consistent indexes.
func TestLoaderIntoNonEmptyDB(t *testing.T) {
	want, got := newTestDB(), newTestDB()
	for _, db := range []*DB{want, got} {
		for i := 0; i < 300; i += 3 {
			db.Restore(Entry{Type: TypeString, Key: []byte(fmt.Sprintf("k%04d", i)), Value: []byte("old")})
		}
	}
	ld := got.NewLoader(0)
	for i := 100; i < 2000; i += 2 { // repeats k0102, k0108, ...; passes k0297 at k0298
		e := Entry{Type: TypeString, Key: []byte(fmt.Sprintf("k%04d", i)), Value: []byte(fmt.Sprint(i))}
		want.Restore(e)
		ld.Add(e)
	}
	ld.Finish()
	checkIndexes(t, got)
	if want.Len() != got.Len() {
		t.Fatalf("Len %d, want %d", got.Len(), want.Len())
	}
	q := []string{"SCAN", "0", "COUNT", "5000"}
	if w, g := exec(want, 1, q...), exec(got, 1, q...); w != g {
		t.Fatalf("SCAN: want %s, got %s", w, g)
	}
	for _, k := range []string{"k0099", "k0102", "k0104", "k0297", "k0298", "k1998", "k0003"} {
		if w, g := exec(want, 1, "GET", k), exec(got, 1, "GET", k); w != g {
			t.Fatalf("GET %s: want %s, got %s", k, w, g)
		}
	}
	// The tree and the point index agree after writes and deletes too.
	for _, cmd := range [][]string{{"DEL", "k0102"}, {"SET", "k0300", "x"}, {"DEL", "k1998"}, {"SET", "k0001", "y"}} {
		exec(got, 1, cmd...)
	}
	checkIndexes(t, got)
}

// TestLoaderAbort: a load that fails part way — some keys held back in the
// loader, some already in the indexes, into a DB that held keys before —
// is aborted: the DB is then exactly as empty as a new one, usable, and a
// second loader fills it in full.
func TestLoaderAbort(t *testing.T) {
	for _, n := range []int{1, 1000, loaderBatchMax + 500} { // held back only; and with a batch inserted
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			db, fresh := newTestDB(), newTestDB()
			for i := 0; i < 40; i++ {
				exec(db, 1, "SET", fmt.Sprintf("old%02d", i), "v", "PX", "100000")
			}
			ld := db.NewLoader(n)
			for i := 0; i < n; i++ {
				ld.Add(Entry{Type: TypeString, Key: []byte(fmt.Sprintf("k%06d", i)), Value: []byte(fmt.Sprint(i)), ExpireAt: int64(i%3) * 9000})
			}
			ld.Abort()
			if db.Len() != 0 || db.Expires() != 0 || db.UsedBytes() != fresh.UsedBytes() {
				t.Fatalf("after Abort: Len %d Expires %d UsedBytes %d, a new DB %d", db.Len(), db.Expires(), db.UsedBytes(), fresh.UsedBytes())
			}
			checkIndexes(t, db)
			for _, q := range [][]string{{"SCAN", "0", "COUNT", "1000"}, {"DBSIZE"}, {"GET", "k000000"},
				{"GET", fmt.Sprintf("k%06d", n-1)}, {"EXISTS", "old00", "old39"}, {"RANDOMKEY"}} {
				if w, g := exec(fresh, 1, q...), exec(db, 1, q...); w != g {
					t.Fatalf("after Abort: %v: a new DB answers %s, this one %s", q, w, g)
				}
			}
			for _, q := range [][]string{{"SET", "k000000", "x"}, {"GET", "k000000"}, {"DEL", "k000000"}} {
				if w, g := exec(fresh, 1, q...), exec(db, 1, q...); w != g {
					t.Fatalf("after Abort: %v: a new DB answers %s, this one %s", q, w, g)
				}
			}
			ld = db.NewLoader(n)
			for i := 0; i < n; i++ {
				ld.Add(Entry{Type: TypeString, Key: []byte(fmt.Sprintf("k%06d", i)), Value: []byte(fmt.Sprint(i))})
			}
			ld.Finish()
			checkIndexes(t, db)
			if db.Len() != n {
				t.Fatalf("Len %d after the second load, want %d", db.Len(), n)
			}
			for i := 0; i < n; i += 1 + n/50 {
				if got, want := exec(db, 1, "GET", fmt.Sprintf("k%06d", i)), strconv.Quote(fmt.Sprint(i)); got != want {
					t.Fatalf("GET k%06d = %s, want %s", i, got, want)
				}
			}
		})
	}
}

// A loader whose DB was reset under it refuses to go on instead of
// inserting index entries that name dropped blocks (which surfaced only
// later, as an index out of range in some unrelated lookup).
func TestLoaderRefusesAfterReset(t *testing.T) {
	for _, end := range []string{"Finish", "Add", "Abort"} {
		t.Run(end, func(t *testing.T) {
			db := newTestDB()
			ld := db.NewLoader(0)
			ld.Add(Entry{Type: TypeString, Key: []byte("a"), Value: []byte("1")})
			db.Reset()
			defer func() {
				r := recover()
				if err, ok := r.(error); !ok || !strings.Contains(err.Error(), "Loader used after its DB was reset") {
					t.Fatalf("%s after Reset: recovered %v", end, r)
				}
				if db.Len() != 0 || exec(db, 1, "GET", "a") != "(nil)" {
					t.Fatalf("the reset DB changed: Len %d", db.Len())
				}
			}()
			switch end {
			case "Finish":
				ld.Finish()
			case "Add":
				ld.Add(Entry{Type: TypeString, Key: []byte("b"), Value: []byte("2")})
			case "Abort":
				ld.Abort()
			}
		})
	}
}
