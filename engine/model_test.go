package engine

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// model is a deliberately plain keyspace: a map and deadlines, with Redis's
// rules written out directly. The property test requires the engine to
// answer every command exactly as the model does.
type model struct {
	m   map[string]modelEntry
	now int64
}

type modelEntry struct {
	val string
	exp int64 // 0 = none
}

func (m *model) live(k string) (modelEntry, bool) {
	e, ok := m.m[k]
	if ok && e.exp != 0 && m.now > e.exp {
		delete(m.m, k)
		return modelEntry{}, false
	}
	return e, ok
}

func (m *model) liveKeys() []string {
	var ks []string
	for k := range m.m {
		if _, ok := m.live(k); ok {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

func q(s string) string { return strconv.Quote(s) }

func canonicalInt(s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(v, 10) != s {
		return 0, false
	}
	return v, true
}

// apply returns the reply the model gives, rendered like recorder.
func (m *model) apply(args []string) string {
	name := strings.ToLower(args[0])
	switch name {
	case "get":
		if e, ok := m.live(args[1]); ok {
			return q(e.val)
		}
		return "(nil)"
	case "set":
		var exp int64
		nx, xx, get, keep := false, false, false, false
		for i := 3; i < len(args); i++ {
			switch args[i] {
			case "NX":
				nx = true
			case "XX":
				xx = true
			case "GET":
				get = true
			case "KEEPTTL":
				keep = true
			case "PX":
				n, _ := strconv.ParseInt(args[i+1], 10, 64)
				exp = m.now + n
				i++
			case "PXAT":
				n, _ := strconv.ParseInt(args[i+1], 10, 64)
				exp = n
				i++
			}
		}
		old, found := m.live(args[1])
		reply := "+OK"
		if get {
			reply = "(nil)"
			if found {
				reply = q(old.val)
			}
		}
		if (nx && found) || (xx && !found) {
			if get {
				return reply
			}
			return "(nil)"
		}
		e := modelEntry{val: args[2]}
		if keep && found {
			e.exp = old.exp
		}
		if exp != 0 {
			e.exp = exp
		}
		m.m[args[1]] = e
		return reply
	case "del":
		n := 0
		for _, k := range args[1:] {
			if _, ok := m.live(k); ok {
				delete(m.m, k)
				n++
			}
		}
		return ":" + strconv.Itoa(n)
	case "exists":
		n := 0
		for _, k := range args[1:] {
			if _, ok := m.live(k); ok {
				n++
			}
		}
		return ":" + strconv.Itoa(n)
	case "incrby":
		e, ok := m.live(args[1])
		cur := int64(0)
		if ok {
			v, ok := canonicalInt(e.val)
			if !ok {
				return "-" + errNotInt
			}
			cur = v
		}
		by, _ := strconv.ParseInt(args[2], 10, 64)
		if (by > 0 && cur > math.MaxInt64-by) || (by < 0 && cur < math.MinInt64-by) {
			return "-" + errOverflow
		}
		e.val = strconv.FormatInt(cur+by, 10)
		m.m[args[1]] = e
		return ":" + e.val
	case "append":
		e, _ := m.live(args[1])
		e.val += args[2]
		m.m[args[1]] = e
		return ":" + strconv.Itoa(len(e.val))
	case "strlen":
		e, _ := m.live(args[1])
		return ":" + strconv.Itoa(len(e.val))
	case "pexpire", "pexpireat":
		n, _ := strconv.ParseInt(args[2], 10, 64)
		when := n
		if name == "pexpire" {
			when += m.now
		}
		e, ok := m.live(args[1])
		if !ok {
			return ":0"
		}
		if len(args) > 3 {
			switch args[3] {
			case "NX":
				if e.exp != 0 {
					return ":0"
				}
			case "XX":
				if e.exp == 0 {
					return ":0"
				}
			case "GT":
				if e.exp == 0 || when <= e.exp {
					return ":0"
				}
			case "LT":
				if e.exp != 0 && when >= e.exp {
					return ":0"
				}
			}
		}
		if when <= m.now {
			delete(m.m, args[1])
			return ":1"
		}
		e.exp = when
		m.m[args[1]] = e
		return ":1"
	case "pttl":
		e, ok := m.live(args[1])
		switch {
		case !ok:
			return ":-2"
		case e.exp == 0:
			return ":-1"
		}
		return ":" + strconv.FormatInt(e.exp-m.now, 10)
	case "persist":
		e, ok := m.live(args[1])
		if !ok || e.exp == 0 {
			return ":0"
		}
		e.exp = 0
		m.m[args[1]] = e
		return ":1"
	case "getdel":
		e, ok := m.live(args[1])
		if !ok {
			return "(nil)"
		}
		delete(m.m, args[1])
		return q(e.val)
	case "setrange":
		off, _ := strconv.Atoi(args[2])
		e, ok := m.live(args[1])
		if args[3] == "" {
			return ":" + strconv.Itoa(len(e.val))
		}
		b := []byte(e.val)
		for len(b) < off+len(args[3]) {
			b = append(b, 0)
		}
		copy(b[off:], args[3])
		e.val = string(b)
		if !ok {
			e.exp = 0
		}
		m.m[args[1]] = e
		return ":" + strconv.Itoa(len(b))
	case "getrange":
		e, _ := m.live(args[1])
		start, _ := strconv.Atoi(args[2])
		end, _ := strconv.Atoi(args[3])
		n := len(e.val)
		if start < 0 && end < 0 && start > end {
			return `""`
		}
		if start < 0 {
			start = max(n+start, 0)
		}
		if end < 0 {
			end = max(n+end, 0)
		}
		end = min(end, n-1)
		if start > end || n == 0 {
			return `""`
		}
		return q(e.val[start : end+1])
	case "rename":
		e, ok := m.live(args[1])
		if !ok {
			return "-" + errNoSuchKey
		}
		delete(m.m, args[1])
		m.live(args[2])
		m.m[args[2]] = e
		return "+OK"
	case "copy":
		if args[1] == args[2] {
			return "-" + errSameObject
		}
		e, ok := m.live(args[1])
		if !ok {
			return ":0"
		}
		if _, ok := m.live(args[2]); ok && len(args) == 3 {
			return ":0"
		}
		m.m[args[2]] = e
		return ":1"
	case "dbsize":
		return ":" + strconv.Itoa(len(m.liveKeys()))
	case "keys":
		var out []string
		for _, k := range m.liveKeys() {
			if strings.HasPrefix(k, strings.TrimSuffix(args[1], "*")) {
				out = append(out, q(k))
			}
		}
		return "[" + strings.Join(out, " ") + "]"
	case "mget":
		var out []string
		for _, k := range args[1:] {
			if e, ok := m.live(k); ok {
				out = append(out, q(e.val))
			} else {
				out = append(out, "(nil)")
			}
		}
		return "[" + strings.Join(out, " ") + "]"
	}
	panic("model: no command " + name)
}

var (
	modelKeys   = []string{"a", "b", "c", "user:1", "user:2", "user:10", "longer-key-name-1", "longer-key-name-2"}
	modelValues = []string{"", "x", "hello", "1", "10", "-5", "007", "9223372036854775807", "abc"}
)

// genCommand draws one command the model understands.
func genCommand(t *rapid.T, now int64) []string {
	key := func() string { return rapid.SampledFrom(modelKeys).Draw(t, "key") }
	val := func() string { return rapid.SampledFrom(modelValues).Draw(t, "val") }
	ms := func() string { return strconv.Itoa(rapid.IntRange(-100, 5000).Draw(t, "ms")) }
	switch rapid.IntRange(0, 17).Draw(t, "cmd") {
	case 0:
		return []string{"GET", key()}
	case 1:
		args := []string{"SET", key(), val()}
		switch rapid.IntRange(0, 4).Draw(t, "ttl") {
		case 1:
			args = append(args, "PX", strconv.Itoa(rapid.IntRange(1, 5000).Draw(t, "px")))
		case 2:
			args = append(args, "PXAT", strconv.FormatInt(now+int64(rapid.IntRange(-100, 5000).Draw(t, "pxat")), 10))
		case 3:
			args = append(args, "KEEPTTL")
		}
		switch rapid.IntRange(0, 2).Draw(t, "cond") {
		case 1:
			args = append(args, "NX")
		case 2:
			args = append(args, "XX")
		}
		if rapid.Bool().Draw(t, "get") {
			args = append(args, "GET")
		}
		return args
	case 2:
		return []string{"DEL", key(), key()}
	case 3:
		return []string{"EXISTS", key(), key()}
	case 4:
		return []string{"INCRBY", key(), strconv.Itoa(rapid.IntRange(-3, 3).Draw(t, "by"))}
	case 5:
		return []string{"APPEND", key(), val()}
	case 6:
		args := []string{rapid.SampledFrom([]string{"PEXPIRE", "PEXPIREAT"}).Draw(t, "exp"), key(), ms()}
		if args[0] == "PEXPIREAT" {
			n, _ := strconv.Atoi(args[2])
			args[2] = strconv.FormatInt(now+int64(n), 10)
		}
		if opt := rapid.SampledFrom([]string{"", "NX", "XX", "GT", "LT"}).Draw(t, "opt"); opt != "" {
			args = append(args, opt)
		}
		return args
	case 7:
		return []string{"PTTL", key()}
	case 8:
		return []string{"PERSIST", key()}
	case 9:
		return []string{"GETDEL", key()}
	case 10:
		return []string{"SETRANGE", key(), strconv.Itoa(rapid.IntRange(0, 8).Draw(t, "off")), val()}
	case 11:
		return []string{"GETRANGE", key(), strconv.Itoa(rapid.IntRange(-6, 6).Draw(t, "s")), strconv.Itoa(rapid.IntRange(-6, 6).Draw(t, "e"))}
	case 12:
		return []string{"RENAME", key(), key()}
	case 13:
		args := []string{"COPY", key(), key()}
		if rapid.Bool().Draw(t, "replace") {
			args = append(args, "REPLACE")
		}
		return args
	case 14:
		return []string{"DBSIZE"}
	case 15:
		return []string{"KEYS", rapid.SampledFrom([]string{"*", "user:*", "longer*", "a*"}).Draw(t, "pat")}
	case 16:
		return []string{"MGET", key(), key(), key()}
	default:
		return []string{"STRLEN", key()}
	}
}

// TestModel drives random command sequences, clock jumps, active expiry
// and snapshots through the engine and the model. Replies must be equal;
// a View must keep showing the keyspace as it was when taken; SCAN over
// the whole keyspace must list exactly the model's keys.
func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		db := newTestDB()
		m := &model{m: map[string]modelEntry{}, now: 1_000_000}
		type held struct {
			v    *View
			want map[string]modelEntry
			at   int64
		}
		var views []held
		steps := rapid.IntRange(1, 200).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			switch rapid.IntRange(0, 9).Draw(t, "action") {
			case 0:
				m.now += int64(rapid.IntRange(0, 3000).Draw(t, "advance"))
			case 1:
				db.ActiveExpire(m.now, rapid.IntRange(1, 20).Draw(t, "budget"))
			case 2:
				want := map[string]modelEntry{}
				for _, k := range m.liveKeys() {
					want[k] = m.m[k]
				}
				views = append(views, held{db.View(), want, m.now})
			case 3:
				checkScan(t, db, m)
			default:
				args := genCommand(t, m.now)
				got := exec(db, m.now, args...)
				want := m.apply(args)
				if got != want {
					t.Fatalf("at %d: %q: engine %s, model %s", m.now, args, got, want)
				}
			}
		}
		for _, h := range views {
			got := map[string]modelEntry{}
			h.v.Ascend(func(e Entry) bool {
				if e.ExpireAt == 0 || e.ExpireAt >= h.at {
					got[string(e.Key)] = modelEntry{string(e.Value), e.ExpireAt}
				}
				return true
			})
			if fmt.Sprint(got) != fmt.Sprint(h.want) {
				t.Fatalf("view taken at %d changed:\n got %v\nwant %v", h.at, got, h.want)
			}
			h.v.Release()
		}
		checkWheel(t, db)
	})
}

// checkScan walks the whole keyspace with a small COUNT and compares.
func checkScan(t *rapid.T, db *DB, m *model) {
	count := strconv.Itoa(rapid.IntRange(1, 4).Draw(t, "count"))
	cursor := "0"
	var got []string
	for {
		var r recorder
		db.Exec(m.now, [][]byte{[]byte("SCAN"), []byte(cursor), []byte("COUNT"), []byte(count)}, &r)
		var keys []string
		cur, keys := parseScanReply(t, r.String())
		got = append(got, keys...)
		if cur == "0" {
			break
		}
		cursor = cur
	}
	want := m.liveKeys()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("SCAN listed %q, want %q", got, want)
	}
}

func parseScanReply(t interface{ Fatalf(string, ...any) }, s string) (string, []string) {
	// ["cursor" ["k1" "k2"]]
	if !strings.HasPrefix(s, `["`) {
		t.Fatalf("bad SCAN reply %s", s)
	}
	rest := s[1:]
	cur, err := strconv.QuotedPrefix(rest)
	if err != nil {
		t.Fatalf("bad SCAN reply %s", s)
	}
	c, _ := strconv.Unquote(cur)
	rest = strings.TrimPrefix(rest[len(cur):], " [")
	var keys []string
	for strings.HasPrefix(rest, `"`) {
		k, err := strconv.QuotedPrefix(rest)
		if err != nil {
			t.Fatalf("bad SCAN reply %s", s)
		}
		u, _ := strconv.Unquote(k)
		keys = append(keys, u)
		rest = strings.TrimPrefix(rest[len(k):], " ")
	}
	return c, keys
}

// checkWheel verifies the timing wheel's invariants against the indexes.
func checkWheel(t interface{ Fatalf(string, ...any) }, db *DB) {
	w := &db.wheel
	n := 0
	for idx, head := range w.heads {
		if head != 0 && int(db.s.ttl(head).slot) != idx {
			t.Fatalf("head of list %d says slot %d", idx, db.s.ttl(head).slot)
		}
		var prev tref
		for tr := head; tr != 0; tr = db.s.ttl(tr).next {
			e := db.s.ttl(tr)
			key := db.keyOf(e.owner)
			n++
			if e.prev != prev {
				t.Fatalf("broken prev link in list %d", idx)
			}
			if e.slot == slotNone || e.expireAt == 0 {
				t.Fatalf("key %q linked in list %d without a TTL", key, idx)
			}
			if db.find(key) != e.owner || db.rec(e.owner).ttl != tr {
				t.Fatalf("key %q in wheel but not the index", key)
			}
			if idx != slotPending {
				level, slot := idx/wheelSlots, idx%wheelSlots
				c := uint64(w.cursor)
				d := int(c>>(uint(level)*wheelBits)) & (wheelSlots - 1)
				if slot <= d || e.expireAt <= w.cursor {
					t.Fatalf("key %q (t=%d) at level %d slot %d, cursor %d", key, e.expireAt, level, slot, w.cursor)
				}
				if w.occupied[level]&(1<<uint(slot)) == 0 {
					t.Fatalf("occupied bit clear for non-empty slot %d/%d", level, slot)
				}
			}
			prev = tr
		}
	}
	checkIndexes(t, db)
	volatile := 0
	db.tree.ascend(func(r ref) bool {
		if db.rec(r).ttl != 0 {
			volatile++
		}
		return true
	})
	if n != w.n || n != volatile {
		t.Fatalf("wheel holds %d (counts %d), %d keys have a TTL", n, w.n, volatile)
	}
}

// checkIndexes verifies that the point index, the ordered index and the
// record free list agree: every key in the tree is found by the point
// index under its own ref, in key order, the point index holds nothing
// else, and no free or deferred record is reachable.
func checkIndexes(t interface{ Fatalf(string, ...any) }, db *DB) {
	if db.tree.Len() != db.index.n {
		t.Fatalf("index sizes differ: tree %d point index %d", db.tree.Len(), db.index.n)
	}
	if err := db.tree.check(); err != nil {
		t.Fatalf("ordered index: %v", err)
	}
	occupied := 0
	for i := 0; i < db.index.positions(); i++ {
		if db.index.entry(i) != 0 {
			occupied++
		}
	}
	if occupied != db.index.n {
		t.Fatalf("point index counts %d, holds %d", db.index.n, occupied)
	}
	live := map[ref]bool{}
	liveTTL := map[tref]bool{}
	var prev []byte
	db.tree.ascend(func(r ref) bool {
		key := db.keyOf(r)
		if prev != nil && string(prev) >= string(key) {
			t.Fatalf("tree out of order: %q then %q", prev, key)
		}
		prev = key
		if got := db.find(key); got != r {
			t.Fatalf("key %q: point index gives ref %d, tree %d", key, got, r)
		}
		live[r] = true
		if tr := db.rec(r).ttl; tr != 0 {
			if db.s.ttl(tr).owner != r {
				t.Fatalf("key %q: its TTL entry belongs to ref %d", key, db.s.ttl(tr).owner)
			}
			liveTTL[tr] = true
		}
		return true
	})
	for tr := db.s.ttlFree; tr != 0; tr = db.s.ttl(tr).next {
		if liveTTL[tr] {
			t.Fatalf("TTL entry %d is both live and free", tr)
		}
	}
	for r := db.s.recFree; r != 0; r = ref(db.rec(r).cell) {
		if live[r] {
			t.Fatalf("ref %d is both live and free", r)
		}
	}
	for _, r := range db.s.deferred {
		if live[r] {
			t.Fatalf("ref %d is both live and deferred", r)
		}
	}
}
