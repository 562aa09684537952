package engine

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

const (
	errLFUSelected    = "-ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
	errLFUNotSelected = "-ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
)

// TestIdleTimeFollowsAccesses: OBJECT IDLETIME counts whole seconds since
// the last access by the command clock; the commands Redis runs with
// LOOKUP_NOTOUCH (EXISTS, TYPE, TTL, OBJECT) do not reset it, reads,
// writes and TOUCH do, RENAME carries it, COPY reads its source and its
// new key starts fresh.
func TestIdleTimeFollowsAccesses(t *testing.T) {
	db := newTestDB()
	const t0 = 1_700_000_000_000
	for _, k := range []string{"exists", "type", "ttl", "object", "get", "touch", "set", "rename", "copy"} {
		exec(db, t0, "SET", k, "v")
	}
	at := int64(t0 + 5_000)
	exec(db, at, "EXISTS", "exists")
	exec(db, at, "TYPE", "type")
	exec(db, at, "TTL", "ttl")
	exec(db, at, "OBJECT", "ENCODING", "object")
	exec(db, at, "GET", "get")
	exec(db, at, "TOUCH", "touch")
	exec(db, at, "SET", "set", "w")
	exec(db, at, "RENAME", "rename", "renamed")
	exec(db, at, "COPY", "copy", "copied")
	at += 7_000
	want := map[string]string{"exists": ":12", "type": ":12", "ttl": ":12", "object": ":12", "get": ":7", "touch": ":7",
		"set": ":7", "renamed": ":7", "copy": ":7", "copied": ":7", "missing": "(nil)"}
	for k, w := range want {
		if got := exec(db, at, "OBJECT", "IDLETIME", k); got != w {
			t.Errorf("OBJECT IDLETIME %s = %s, want %s", k, got, w)
		}
	}
	if got := exec(db, at, "OBJECT", "FREQ", "get"); got != errLFUNotSelected {
		t.Errorf("OBJECT FREQ without an LFU policy: %s", got)
	}
}

// TestLFUCounter: under an LFU policy a new key's counter is 5, the first
// access makes it 6 (probability 1 below the initial value plus one), it
// then grows logarithmically, and it decays by one per lfu-decay-time
// minutes without access; OBJECT FREQ reads it decayed without touching
// it, and IDLETIME is refused.
func TestLFUCounter(t *testing.T) {
	db := newTestDB()
	db.SetAccessConfig(AccessConfig{Policy: AllKeysLFU, LFULogFactor: 10, LFUDecayTime: 1, MaxMemory: true})
	const t0 = 1_700_000_000_000
	exec(db, t0, "SET", "k", "v")
	if got := exec(db, t0, "OBJECT", "FREQ", "k"); got != ":5" {
		t.Fatalf("a new key's counter: %s", got)
	}
	exec(db, t0, "GET", "k")
	if got := exec(db, t0, "OBJECT", "FREQ", "k"); got != ":6" {
		t.Fatalf("after one GET: %s", got)
	}
	for range 2000 {
		exec(db, t0, "GET", "k")
	}
	freq, _ := strconv.Atoi(exec(db, t0, "OBJECT", "FREQ", "k")[1:])
	// With factor 10 the expected counter after 2,000 hits is about 24
	// (the increments' probabilities 1/(10i+1) sum to ~ln(i)/10 per hit).
	if freq < 15 || freq > 35 {
		t.Fatalf("after 2000 GETs the counter is %d, want about 24", freq)
	}
	// Three minutes later it has lost three, and reading it changed nothing.
	later := int64(t0 + 3*60_000)
	for range 2 {
		if got := exec(db, later, "OBJECT", "FREQ", "k"); got != ":"+strconv.Itoa(freq-3) {
			t.Fatalf("three minutes later: %s, want %d", got, freq-3)
		}
	}
	if got := exec(db, later, "OBJECT", "IDLETIME", "k"); got != errLFUSelected {
		t.Fatalf("OBJECT IDLETIME under LFU: %s", got)
	}
	// A SET over another type keeps the counter (Redis's dbSetValue).
	exec(db, later, "DEL", "k")
	exec(db, later, "RPUSH", "k", "a")
	for range 10 {
		exec(db, later, "LLEN", "k")
	}
	before := exec(db, later, "OBJECT", "FREQ", "k")
	exec(db, later, "SET", "k", "v")
	after := exec(db, later, "OBJECT", "FREQ", "k")
	if before == ":5" || after < before {
		t.Fatalf("SET over a list: counter %s before, %s after", before, after)
	}
	// Small integers are not shared with a limit and an LFU policy.
	exec(db, later, "SET", "n", "12")
	if got := exec(db, later, "OBJECT", "REFCOUNT", "n"); got != ":1" {
		t.Fatalf("OBJECT REFCOUNT of a small integer under LFU with a limit: %s", got)
	}
	db.SetAccessConfig(DefaultAccessConfig())
	if got := exec(db, later, "OBJECT", "REFCOUNT", "n"); got != ":2147483647" {
		t.Fatalf("OBJECT REFCOUNT of a small integer without a limit: %s", got)
	}
}

// fill loads n string keys "k<i>" of size bytes at time now, every
// ttlEvery-th with a TTL (0: none).
func fill(db *DB, now int64, n, size, ttlEvery int) {
	v := string(make([]byte, size))
	for i := range n {
		k := "k" + strconv.Itoa(i)
		if ttlEvery > 0 && i%ttlEvery == 0 {
			exec(db, now, "SET", k, v, "PXAT", strconv.FormatInt(now+int64(1_000_000+i), 10))
		} else {
			exec(db, now, "SET", k, v)
		}
	}
}

func victims(db *DB, p Policy, seed uint64, keys int) []string {
	out, _ := db.EvictionVictims(EvictionRequest{Policy: p, Samples: 5, Rand: rand.New(rand.NewPCG(seed, 1)),
		Bytes: 1 << 40, KeysMax: keys}, nil)
	var s []string
	for _, k := range out {
		s = append(s, string(k))
	}
	return s
}

// TestEvictionVictimsPolicies: every policy picks distinct live keys, a
// volatile one only keys with a TTL (none when there are none), volatile-
// ttl the soonest deadlines, noeviction nothing; picking changes no key
// and the same state and randomness pick the same keys.
func TestEvictionVictimsPolicies(t *testing.T) {
	for p := Policy(0); p <= VolatileTTL; p++ {
		t.Run(p.String(), func(t *testing.T) {
			build := func(ttlEvery int) *DB {
				db := newTestDB()
				if p.LFU() {
					db.SetAccessConfig(AccessConfig{Policy: p, LFULogFactor: 10, LFUDecayTime: 1})
				}
				fill(db, 1000, 2000, 20, ttlEvery)
				return db
			}
			db := build(4)
			used := db.UsedBytes()
			got := victims(db, p, 7, 50)
			if p == NoEviction {
				if len(got) != 0 {
					t.Fatalf("noeviction picked %v", got)
				}
				return
			}
			if len(got) != 50 {
				t.Fatalf("picked %d keys, want 50", len(got))
			}
			seen := map[string]bool{}
			for _, k := range got {
				i, _ := strconv.Atoi(k[1:])
				if seen[k] {
					t.Fatalf("%s picked twice", k)
				}
				seen[k] = true
				if !p.AllKeys() && i%4 != 0 {
					t.Fatalf("%s has no TTL", k)
				}
			}
			if db.UsedBytes() != used || db.Len() != 2000 {
				t.Fatal("picking changed the keyspace")
			}
			if again := victims(build(4), p, 7, 50); !slices.Equal(again, got) {
				t.Fatalf("same state and seed, different victims:\n%v\n%v", got, again)
			}
			if p == VolatileTTL {
				// Deadlines grow with i: the pool holds the soonest of
				// what was sampled, so the picks are among the earliest.
				sum := 0
				for _, k := range got {
					i, _ := strconv.Atoi(k[1:])
					sum += i
				}
				if mean := sum / len(got); mean > 800 {
					t.Fatalf("volatile-ttl picked keys with a mean index %d (uniform would be ~1000)", mean)
				}
			}
			if !p.AllKeys() {
				if got := victims(build(0), p, 7, 50); len(got) != 0 {
					t.Fatalf("%s without keys with a TTL picked %v", p, got)
				}
			}
		})
	}
}

// TestEvictFreesWhatItCosts: Evict removes the key with the "evicted"
// event, counts it, and UsedBytes falls by what KeyCost said, for strings
// and for collections large enough to be trees (overflow cells included).
func TestEvictFreesWhatItCosts(t *testing.T) {
	var events []string
	db := New(Options{Rand: rand.New(rand.NewPCG(1, 2)), Notify: func(e string, k []byte) { events = append(events, e+" "+string(k)) }})
	exec(db, 1, "SET", "s", "value")
	exec(db, 1, "SET", "big", string(make([]byte, 100_000)))
	for i := range 3000 {
		exec(db, 1, "SADD", "set", "member"+strconv.Itoa(i))
		exec(db, 1, "HSET", "hash", "f"+strconv.Itoa(i), string(make([]byte, 600))) // overflow cells
		exec(db, 1, "ZADD", "zset", strconv.Itoa(i), "m"+strconv.Itoa(i))
		exec(db, 1, "RPUSH", "list", "element"+strconv.Itoa(i))
	}
	exec(db, 1, "SET", "gone", "v", "PXAT", "5")
	for _, k := range []string{"s", "big", "set", "hash", "zset", "list"} {
		r := db.find([]byte(k))
		cost := db.KeyCost(r)
		before := db.UsedBytes()
		events = events[:0]
		if !db.Evict(2, []byte(k)) {
			t.Fatalf("Evict %s: not evicted", k)
		}
		if freed := before - db.UsedBytes(); freed != cost {
			t.Errorf("evicting %s freed %d bytes, KeyCost said %d", k, freed, cost)
		}
		if len(events) != 1 || events[0] != "evicted "+k {
			t.Errorf("evicting %s raised %v", k, events)
		}
	}
	if db.EvictedKeys() != 6 {
		t.Fatalf("EvictedKeys %d, want 6", db.EvictedKeys())
	}
	events = events[:0]
	if db.Evict(10, []byte("gone")) || db.Evict(10, []byte("missing")) {
		t.Fatal("Evict of an expired or missing key reported an eviction")
	}
	if len(events) != 1 || events[0] != "expired gone" || db.EvictedKeys() != 6 {
		t.Fatalf("an expired key is expired, not evicted: %v, %d", events, db.EvictedKeys())
	}
}

// survivors evicts, one key at a time, from a keyspace of n keys until
// keep are left, while a workload reads hot keys between evictions, and
// returns how many of the hot keys survived.
func survivors(t *testing.T, p Policy, n, keep int, hot func(i int) bool, access func(db *DB, now int64)) int {
	db := newTestDB()
	db.SetAccessConfig(AccessConfig{Policy: p, LFULogFactor: 10, LFUDecayTime: 1})
	now := int64(1_700_000_000_000)
	fill(db, now, n, 16, 0)
	rnd := rand.New(rand.NewPCG(3, 4))
	for db.Len() > keep {
		now += 1000
		access(db, now)
		out, _ := db.EvictionVictims(EvictionRequest{Policy: p, Samples: 5, Rand: rnd, Now: now, Bytes: 1, KeysMax: 1}, nil)
		if len(out) != 1 {
			t.Fatalf("%s: no victim with %d keys left", p, db.Len())
		}
		db.Evict(now, out[0])
	}
	alive := 0
	for i := range n {
		if hot(i) && db.find([]byte("k"+strconv.Itoa(i))) != 0 {
			alive++
		}
	}
	return alive
}

// TestApproximatedLRUKeepsRecentKeys: a tenth of the keys are read every
// second; evicting down to a fifth of the keyspace, allkeys-lru keeps far
// more of them than allkeys-random does.
func TestApproximatedLRUKeepsRecentKeys(t *testing.T) {
	const n, keep = 3000, 600
	hot := func(i int) bool { return i%10 == 0 }
	step := 0
	access := func(db *DB, now int64) {
		// 30 hot keys per second, in turn: each is read every 10 s.
		for j := 0; j < 30; j++ {
			exec(db, now, "GET", "k"+strconv.Itoa((step%(n/10))*10))
			step++
		}
	}
	lru := survivors(t, AllKeysLRU, n, keep, hot, access)
	step = 0
	random := survivors(t, AllKeysRandom, n, keep, hot, access)
	t.Logf("hot keys kept of %d: allkeys-lru %d, allkeys-random %d", n/10, lru, random)
	if lru < 250 || lru < 3*random {
		t.Fatalf("allkeys-lru kept %d hot keys, allkeys-random %d: want LRU to keep most (>= 250 of 300) and 3x random", lru, random)
	}
}

// TestApproximatedLFUKeepsHotKeys: a few keys read often survive
// allkeys-lfu far more often than allkeys-random lets them.
func TestApproximatedLFUKeepsHotKeys(t *testing.T) {
	const n, keep = 3000, 600
	hot := func(i int) bool { return i%30 == 0 }
	rng := rand.New(rand.NewPCG(5, 6))
	access := func(db *DB, now int64) {
		// Mostly hot keys, a few cold ones: hot keys get ~20x the reads.
		for j := 0; j < 20; j++ {
			i := rng.IntN(n/30) * 30
			if j%4 == 0 {
				i = rng.IntN(n)
			}
			exec(db, now, "GET", "k"+strconv.Itoa(i))
		}
	}
	lfu := survivors(t, AllKeysLFU, n, keep, hot, access)
	random := survivors(t, AllKeysRandom, n, keep, hot, access)
	t.Logf("hot keys kept of %d: allkeys-lfu %d, allkeys-random %d", n/30, lfu, random)
	if lfu < 85 || lfu < 3*random {
		t.Fatalf("allkeys-lfu kept %d hot keys, allkeys-random %d: want LFU to keep most (>= 85 of 100) and 3x random", lfu, random)
	}
}

// TestEvictionVictimsSkipAndBytes: Skip rules keys out, the byte target
// stops the picking, and KeysMax bounds it.
func TestEvictionVictimsSkipAndBytes(t *testing.T) {
	db := newTestDB()
	fill(db, 1000, 200, 100, 0)
	rnd := rand.New(rand.NewPCG(9, 9))
	const target = 1000
	out, freed := db.EvictionVictims(EvictionRequest{Policy: AllKeysLRU, Samples: 5, Rand: rnd, Bytes: target, KeysMax: 100}, nil)
	sum, last := int64(0), int64(0)
	for _, k := range out {
		last = db.KeyCost(db.find(k))
		sum += last
	}
	if sum != freed || freed < target || freed-last >= target {
		t.Fatalf("byte target %d: picked %d keys, %d bytes (their costs add up to %d, the last %d)", target, len(out), freed, sum, last)
	}
	skipped := map[string]bool{}
	for i := range 199 {
		skipped["k"+strconv.Itoa(i)] = true
	}
	out, _ = db.EvictionVictims(EvictionRequest{Policy: AllKeysRandom, Samples: 5, Rand: rnd, Bytes: 1 << 30, KeysMax: 10,
		Skip: func(k []byte) bool { return skipped[string(k)] }}, nil)
	if len(out) > 1 || len(out) == 1 && string(out[0]) != "k199" {
		t.Fatalf("with all but k199 skipped: %q", out)
	}
	out, _ = db.EvictionVictims(EvictionRequest{Policy: AllKeysLFU, Samples: 5, Rand: rnd, Bytes: 1 << 30, KeysMax: 10}, nil)
	if len(out) != 10 {
		t.Fatalf("KeysMax 10: %d keys", len(out))
	}
	for r := ref(1); r <= ref(db.s.recCount); r++ {
		if db.rec(r).access&accessPicked != 0 {
			t.Fatal("a picked mark outlived the call")
		}
	}
}

// BenchmarkEvictOneKey is the cost the node's eviction bound assumes per
// key (node/evict.go, evictMicrosPerKey): picking one victim under
// allkeys-lru with 5 samples from 100,000 keys, evicting it, and writing a
// new key in its place so the keyspace keeps its size.
func BenchmarkEvictOneKey(b *testing.B) {
	db := New(Options{Rand: rand.New(rand.NewPCG(1, 2))})
	var w Discard
	val := []byte("0123456789012345678901234567890123456789")
	const keys = 100_000
	for i := range keys {
		db.Exec(int64(1+i), [][]byte{[]byte("set"), []byte("key:" + strconv.Itoa(i)), val}, &w)
	}
	r := rand.New(rand.NewPCG(3, 4))
	var victims [][]byte
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now := int64(keys + 1 + i)
		victims, _ = db.EvictionVictims(EvictionRequest{Policy: AllKeysLRU, Samples: 5, Rand: r, Now: now, Bytes: 1, KeysMax: 1}, victims[:0])
		for _, k := range victims {
			db.Evict(now, k)
		}
		db.Exec(now, [][]byte{[]byte("set"), []byte("new:" + strconv.Itoa(i)), val}, &w)
	}
}
