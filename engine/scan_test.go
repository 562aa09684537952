package engine

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// fillKeys loads n keys "key:%09d" plus the given extra keys, straight
// through the index (what SET would do, minus argument parsing).
func fillKeys(db *DB, n int, extra ...string) {
	db.Reserve(n + len(extra))
	buf := make([]byte, 0, 32)
	for i := 0; i < n; i++ {
		buf = append(buf[:0], "key:"...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		db.add(buf, TypeString, buf[4:], 0)
	}
	for _, k := range extra {
		db.add([]byte(k), TypeString, []byte("v"), 0)
	}
}

func scanCall(t interface{ Fatalf(string, ...any) }, db *DB, now int64, args ...string) (string, []string) {
	return parseScanReply(t, exec(db, now, append([]string{"SCAN"}, args...)...))
}

// TestPrefixScanMillion is the acceptance check: among 1,000,000
// keys, SCAN 0 MATCH user:42:* COUNT 1000 returns all 1,000 keys with that
// prefix in one call, and says the scan is finished. Loading a million
// keys takes a few CPU seconds, so -short uses 100,000 (the scan itself
// costs the same: it never looks outside the prefix).
func TestPrefixScanMillion(t *testing.T) {
	total := 1_000_000
	if testing.Short() {
		total = 100_000
	}
	db := newTestDB()
	var extra []string
	for i := 0; i < 1000; i++ {
		extra = append(extra, fmt.Sprintf("user:42:%d", i))
	}
	// Neighbours on both sides that must not leak into the result.
	for i := 0; i < 500; i++ {
		extra = append(extra, fmt.Sprintf("user:41:%d", i), fmt.Sprintf("user:43:%d", i), fmt.Sprintf("user:420:%d", i))
	}
	fillKeys(db, total-len(extra), extra...)
	if db.Len() != total {
		t.Fatalf("loaded %d keys", db.Len())
	}
	cursor, keys := scanCall(t, db, 1, "0", "MATCH", "user:42:*", "COUNT", "1000")
	if cursor != "0" {
		t.Errorf("cursor %s, want 0 (done)", cursor)
	}
	if len(keys) != 1000 {
		t.Fatalf("got %d keys, want 1000", len(keys))
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if !strings.HasPrefix(k, "user:42:") || seen[k] {
			t.Fatalf("bad or repeated key %q", k)
		}
		seen[k] = true
	}
	// A smaller COUNT pages through the same keys in order.
	var paged []string
	cursor = "0"
	for {
		var ks []string
		cursor, ks = scanCall(t, db, 1, cursor, "MATCH", "user:42:*", "COUNT", "7")
		paged = append(paged, ks...)
		if cursor == "0" {
			break
		}
	}
	if strings.Join(paged, ",") != strings.Join(keys, ",") {
		t.Fatalf("paged scan differs from one-call scan")
	}
}

// TestScanConcurrentChanges inserts and deletes keys between SCAN calls:
// every key present for the whole scan is returned exactly once, and no
// key is ever returned twice.
func TestScanConcurrentChanges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		db := newTestDB()
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 7))
		name := func() string {
			// Short keys exercise inline cursors, long ones the table.
			if rng.IntN(2) == 0 {
				return strconv.Itoa(rng.IntN(500))
			}
			return fmt.Sprintf("long:key:%04d:%s", rng.IntN(500), strings.Repeat("x", rng.IntN(5)))
		}
		stable := map[string]bool{}
		for i := 0; i < 300; i++ {
			k := name()
			exec(db, 1, "SET", k, "v")
			stable[k] = true
		}
		pattern := rapid.SampledFrom([]string{"*", "long:*", "1*", "long:key:00*"}).Draw(t, "pattern")
		count := strconv.Itoa(rapid.IntRange(1, 50).Draw(t, "count"))
		returned := map[string]bool{}
		cursor := "0"
		for calls := 0; ; calls++ {
			if calls > 10000 {
				t.Fatalf("scan does not end")
			}
			next, keys := scanCall(t, db, 1, cursor, "MATCH", pattern, "COUNT", count)
			for _, k := range keys {
				if returned[k] {
					t.Fatalf("key %q returned twice", k)
				}
				returned[k] = true
			}
			if next == "0" {
				break
			}
			cursor = next
			// Churn: new keys come and go; some stable keys are deleted
			// (and so stop being "present for the whole scan").
			for j := rng.IntN(20); j > 0; j-- {
				k := name()
				switch rng.IntN(3) {
				case 0:
					exec(db, 1, "DEL", k)
					delete(stable, k)
				default:
					if exec(db, 1, "SET", k, "v", "NX") == "+OK" {
						delete(stable, k) // not there at the start
					}
				}
			}
		}
		for k := range stable {
			if globMatch([]byte(pattern), []byte(k)) && !returned[k] {
				t.Fatalf("key %q present throughout was not returned", k)
			}
		}
	})
}

// TestScanForgottenCursor checks the documented fallback: a long-key
// cursor the table has forgotten resumes at its 5-byte prefix, so nothing
// is missed (keys sharing that prefix may come again).
func TestScanForgottenCursor(t *testing.T) {
	db := newTestDB()
	var all []string
	for i := 0; i < 100; i++ {
		k := fmt.Sprintf("prefix-%03d", i)
		all = append(all, k)
		exec(db, 1, "SET", k, "v")
		exec(db, 1, "SET", fmt.Sprintf("other-%03d", i), "v")
	}
	cursor, first := scanCall(t, db, 1, "0", "MATCH", "prefix-*", "COUNT", "10")
	// Issue enough other cursors to push this one out of the table.
	for i := 0; i <= scanCursorsMax; i++ {
		scanCall(t, db, 1, "0", "COUNT", "1")
	}
	got := append([]string(nil), first...)
	for cursor != "0" {
		var ks []string
		cursor, ks = scanCall(t, db, 1, cursor, "MATCH", "prefix-*", "COUNT", "10")
		got = append(got, ks...)
	}
	seen := map[string]int{}
	for _, k := range got {
		seen[k]++
	}
	for _, k := range all {
		if seen[k] == 0 {
			t.Fatalf("forgotten cursor missed %q", k)
		}
	}
	if seen["prefix-000"] != 2 {
		t.Fatalf("expected the documented duplicate of the first page after a forgotten cursor, got %v", seen["prefix-000"])
	}
}

func TestScanCursorRoundTrip(t *testing.T) {
	var tab scanTable
	tab.init(rand.New(rand.NewPCG(3, 4)).Uint64())
	for _, k := range []string{"", "a", "abcdefg", "abcdefgh", "\x00\x00", strings.Repeat("z", 300)} {
		c := tab.cursorFor([]byte(k))
		if c == 0 {
			t.Fatalf("cursor for %q is 0", k)
		}
		from, after := tab.resume(c)
		if from != k || !after {
			t.Fatalf("cursor for %q resumes at %q (after=%v)", k, from, after)
		}
	}
}

func TestParseCursor(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "": "0", "+5": "5", "-1": "18446744073709551615",
		"18446744073709551615": "18446744073709551615",
		"18446744073709551616": "bad", " 1": "bad", "1 ": "bad", "+": "bad", "x": "bad", "1.0": "bad",
	} {
		v, ok := parseCursor([]byte(in))
		got := strconv.FormatUint(v, 10)
		if !ok {
			got = "bad"
		}
		if got != want {
			t.Errorf("parseCursor(%q) = %s, want %s", in, got, want)
		}
	}
}

// redisMatch is a direct port of Redis 7's recursive stringmatchlen, the
// reference globMatch must agree with.
func redisMatch(p, s []byte) bool {
	for len(p) > 0 && len(s) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if redisMatch(p[1:], s) {
					return true
				}
				s = s[1:]
			}
			return false
		case '?':
			s = s[1:]
		case '[':
			p = p[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			match := false
			for {
				if len(p) >= 2 && p[0] == '\\' {
					p = p[1:]
					if p[0] == s[0] {
						match = true
					}
				} else if len(p) > 0 && p[0] == ']' {
					break
				} else if len(p) == 0 {
					// Back up so the shared advance below ends the pattern.
					p = []byte{0}
					break
				} else if len(p) >= 3 && p[1] == '-' {
					lo, hi := p[0], p[2]
					if lo > hi {
						lo, hi = hi, lo
					}
					p = p[2:]
					if s[0] >= lo && s[0] <= hi {
						match = true
					}
				} else if p[0] == s[0] {
					match = true
				}
				p = p[1:]
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			s = s[1:]
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			break
		}
	}
	return len(p) == 0 && len(s) == 0
}

func TestGlobMatchesRedis(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		alphabet := []byte("ab*?[]^-\\c")
		gen := func(label string, max int) []byte {
			n := rapid.IntRange(0, max).Draw(t, label+"len")
			b := make([]byte, n)
			for i := range b {
				b[i] = rapid.SampledFrom(alphabet).Draw(t, label)
			}
			return b
		}
		p, s := gen("p", 8), gen("s", 8)
		if got, want := globMatch(p, s), redisMatch(p, s); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, Redis says %v", p, s, got, want)
		}
	})
}

func TestGlobPathological(t *testing.T) {
	// Exponential for a naive recursive matcher; quadratic here.
	p := []byte(strings.Repeat("*a", 50) + "b")
	s := []byte(strings.Repeat("a", 5000))
	if globMatch(p, s) {
		t.Fatal("matched")
	}
}

func TestGlobPrefix(t *testing.T) {
	for _, c := range []struct {
		p, prefix string
		exact     bool
	}{
		{"user:42:*", "user:42:", true},
		{"user:42:**", "user:42:", true},
		{"user:*:x", "user:", false},
		{"a\\*b*", "a*b", true},
		{"a?b*", "a", false},
		{"[ab]*", "", false},
		{"exact", "exact", false},
		{"tail\\", "tail\\", false},
		{"*", "", true},
	} {
		prefix, exact := globPrefix([]byte(c.p))
		if string(prefix) != c.prefix || exact != c.exact {
			t.Errorf("globPrefix(%q) = %q, %v; want %q, %v", c.p, prefix, exact, c.prefix, c.exact)
		}
	}
}

func TestKeysSorted(t *testing.T) {
	db := newTestDB()
	for _, k := range []string{"b", "a", "c"} {
		exec(db, 1, "SET", k, "1")
	}
	got := exec(db, 1, "KEYS", "*")
	if got != `["a" "b" "c"]` {
		t.Fatalf("KEYS * = %s", got)
	}
	var ks []string
	db.View().Ascend(func(e Entry) bool { ks = append(ks, string(e.Key)); return true })
	if !sort.StringsAreSorted(ks) {
		t.Fatal("view not in key order")
	}
}
