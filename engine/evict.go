package engine

import (
	"encoding/binary"

	"github.com/keel-db/keel/seam"
)

// Eviction (issue 16; docs/engine.md, "Eviction"): the engine keeps each
// key's access metadata and picks the keys a maxmemory policy would
// evict, exactly as Redis 7's evict.c does (its eviction pool, its
// sampling, its LRU clock and logarithmic LFU counter). It never decides
// to evict nor deletes on its own: the replica's leader asks
// EvictionVictims for keys, logs their deletion, and every replica (and
// every replay) applies it with Evict. Picking draws only from the
// randomness the caller passes in; the access metadata is each replica's
// own (reads are not logged), which is why the choice must be logged.

// Bounds of the picking (see EvictionVictims).
const (
	// EvictionPoolSize is Redis's EVPOOL_SIZE.
	EvictionPoolSize = 16
	// evictionPoolKeyBytes is the key length a pool entry's buffer keeps
	// for reuse (Redis's EVPOOL_CACHED_SDS_SIZE); longer keys allocate.
	evictionPoolKeyBytes = 255
	// EvictionSamplesMax caps maxmemory-samples (Redis accepts any
	// positive int and allocates the array on its stack): picking one key
	// reads at most ten times this many slots.
	EvictionSamplesMax = 1024
	// evictEmptyRoundsMax bounds the sampling rounds in a row that give
	// no candidate (every sampled key already picked or skipped) before
	// EvictionVictims gives up on finding more: the next call retries.
	evictEmptyRoundsMax = 8
	// evictRandomTriesMax bounds the draws of a random policy for one key.
	evictRandomTriesMax = 64
)

type poolEntry struct {
	idle uint64 // the score: higher is a better victim
	key  []byte // nil: empty
	buf  []byte // kept for reuse (cap evictionPoolKeyBytes)
}

// evictionPool is Redis's EvictionPoolLRU: the best candidates seen so
// far, in ascending score, kept across calls (so each call's sampling
// adds to what earlier ones found). Its entries name keys, checked again
// when picked: a key deleted since is a ghost and skipped. Empty entries
// are always a suffix.
type evictionPool struct {
	e      [EvictionPoolSize]poolEntry
	policy Policy
}

func (p *evictionPool) clear() {
	for i := range p.e {
		p.e[i].key, p.e[i].idle = nil, 0
	}
}

// insert is evictionPoolPopulate's insertion of one sampled key.
func (p *evictionPool) insert(idle uint64, key []byte) {
	k := 0
	for k < EvictionPoolSize && p.e[k].key != nil && p.e[k].idle < idle {
		k++
	}
	last := EvictionPoolSize - 1
	switch {
	case k == 0 && p.e[last].key != nil:
		return // worse than every candidate, and no room
	case k < EvictionPoolSize && p.e[k].key == nil:
		// An empty entry: nothing to move.
	case p.e[last].key == nil:
		// Room on the right: shift k.. right by one.
		buf := p.e[last].buf
		copy(p.e[k+1:], p.e[k:last])
		p.e[k] = poolEntry{buf: buf}
	default:
		// Full: drop the worst (leftmost) and insert just before k.
		k--
		buf := p.e[0].buf
		copy(p.e[:k], p.e[1:k+1])
		p.e[k] = poolEntry{buf: buf}
	}
	e := &p.e[k]
	if len(key) <= evictionPoolKeyBytes {
		if e.buf == nil {
			e.buf = make([]byte, 0, evictionPoolKeyBytes)
		}
		e.key = append(e.buf[:0], key...)
	} else {
		e.key = append([]byte(nil), key...)
	}
	e.idle = idle
}

// EvictionRequest asks EvictionVictims for keys to evict.
type EvictionRequest struct {
	Policy Policy
	// Samples is maxmemory-samples: keys sampled per round (at least 1,
	// at most EvictionSamplesMax).
	Samples int
	// Rand is the sampling's randomness; it must not be nil. The leader's
	// choice is logged, so any source will do for the replicas; a seeded
	// one keeps a simulation's run reproducible.
	Rand seam.Rand
	// Now (Unix ms) is when idle times and LFU decay are measured; the
	// DB's clock when it is later.
	Now int64
	// Bytes: stop once the victims' estimated cost reaches it. KeysMax:
	// never pick more than this many (at least 1).
	Bytes   int64
	KeysMax int
	// Skip, when set, rules out keys (those picked by an earlier call
	// whose deletion is not applied yet).
	Skip func(key []byte) bool
}

// EvictionVictims picks keys to evict as Redis's performEvictions would,
// without deleting them: for LRU, LFU and volatile-ttl each key is the
// best of the eviction pool after a round of sampling (Samples keys from
// consecutive slots of the point index, or of the TTL entries for the
// volatile policies), for the random policies a uniform draw. It stops
// when the victims' estimated cost (KeyCost) reaches req.Bytes, at
// req.KeysMax keys, or when no more keys can be found (none left, or
// every key sampled is ruled out). It appends copies of the keys to dst
// and returns them with their total estimated cost. The result depends
// only on the keyspace, its access metadata, the pool and req.Rand; it
// changes nothing but the pool.
func (db *DB) EvictionVictims(req EvictionRequest, dst [][]byte) ([][]byte, int64) {
	if req.Policy == NoEviction || req.Rand == nil {
		return dst, 0
	}
	now := max(req.Now, db.clock)
	samples := min(max(req.Samples, 1), EvictionSamplesMax)
	keysMax := max(req.KeysMax, 1)
	if db.pool.policy != req.Policy {
		// The scores of another policy mean nothing to this one.
		db.pool.clear()
		db.pool.policy = req.Policy
	}
	picked := db.picked[:0]
	var freed int64
	for len(picked) < keysMax && freed < req.Bytes {
		var r ref
		if req.Policy.random() {
			r = db.pickRandom(req)
		} else {
			r = db.pickFromPool(req, samples, now)
		}
		if r == 0 {
			break
		}
		rc := db.rec(r)
		rc.access |= accessPicked
		picked = append(picked, r)
		freed += db.KeyCost(r)
		dst = append(dst, append([]byte(nil), db.s.keyOf(rc)...))
	}
	for _, r := range picked {
		db.rec(r).access &^= accessPicked
	}
	db.picked = picked[:0]
	return dst, freed
}

// evictable reports whether r may be picked now: not picked in this call,
// not ruled out, and for a volatile policy still holding a TTL.
func (db *DB) evictable(req EvictionRequest, r ref) bool {
	rc := db.rec(r)
	if rc.access&accessPicked != 0 || !req.Policy.AllKeys() && rc.ttl == 0 {
		return false
	}
	return req.Skip == nil || !req.Skip(db.s.keyOf(rc))
}

// pickFromPool is one turn of performEvictions' pool loop: populate the
// pool, then take its best entry that is still a key.
func (db *DB) pickFromPool(req EvictionRequest, samples int, now int64) ref {
	for rounds := 0; rounds < evictEmptyRoundsMax; {
		if db.evictionDomain(req.Policy) == 0 {
			return 0
		}
		if !db.populatePool(req, samples, now) {
			rounds++
		}
		for k := EvictionPoolSize - 1; k >= 0; k-- {
			e := &db.pool.e[k]
			if e.key == nil {
				continue
			}
			key := e.key
			e.key, e.idle = nil, 0
			if r := db.find(key); r != 0 && db.evictable(req, r) {
				return r
			}
			// A ghost: deleted, lost its TTL, or already picked.
		}
	}
	return 0
}

// evictionDomain is how many keys the policy samples from.
func (db *DB) evictionDomain(p Policy) int {
	if p.AllKeys() {
		return db.index.n
	}
	return db.wheel.n
}

// populatePool is evictionPoolPopulate: sample, score, insert. It reports
// whether any sampled key was a candidate.
func (db *DB) populatePool(req EvictionRequest, samples int, now int64) bool {
	refs := db.sampleKeys(req, samples)
	any := false
	for _, r := range refs {
		if !db.evictable(req, r) {
			continue
		}
		any = true
		rc := db.rec(r)
		var idle uint64
		switch req.Policy {
		case AllKeysLRU, VolatileLRU:
			idle = idleMillis(rc.access, now)
		case AllKeysLFU, VolatileLFU:
			idle = 255 - uint64(db.lfuDecr(rc.access, now))
		case VolatileTTL:
			idle = ^uint64(0) - uint64(db.s.ttl(rc.ttl).expireAt)
		}
		db.pool.insert(idle, db.s.keyOf(rc))
	}
	db.sampled = refs[:0]
	return any
}

// sampleKeys is Redis's dictGetSomeKeys over the point index (all keys)
// or the TTL entries (keys with a TTL): up to samples keys from
// consecutive slots starting at a random one, jumping to another random
// slot after a run of empty ones, in at most ten steps per key wanted.
// Keys may repeat.
func (db *DB) sampleKeys(req EvictionRequest, samples int) []ref {
	out := db.sampled[:0]
	all := req.Policy.AllKeys()
	n := int(db.s.ttlCount)
	if all {
		n = db.index.positions()
		samples = min(samples, db.index.n)
	} else {
		samples = min(samples, db.wheel.n)
	}
	if n == 0 || samples == 0 {
		return out
	}
	i := int(req.Rand.Uint64() % uint64(n))
	empty := 0
	for steps := 10 * samples; len(out) < samples && steps > 0; steps-- {
		var r ref
		if all {
			r = db.index.entry(i)
		} else {
			r = db.liveTTLOwner(i)
		}
		if r != 0 {
			out = append(out, r)
			empty = 0
		} else if empty++; empty >= 5 && empty > samples {
			i = int(req.Rand.Uint64() % uint64(n))
			empty = 0
			continue
		}
		if i++; i == n {
			i = 0
		}
	}
	db.sampled = out
	return out
}

// liveTTLOwner is the key owning TTL entry i+1 when that entry is in the
// wheel (a key's current deadline), else 0: free entries and the entries
// of copies a View still reads are unlinked.
func (db *DB) liveTTLOwner(i int) ref {
	e := db.s.ttl(tref(i + 1))
	if e.slot == slotNone {
		return 0
	}
	return e.owner
}

// pickRandom is the random policies' choice: a uniform draw over all keys
// (as RANDOMKEY) or over the keys with a TTL, retried a bounded number of
// times while it lands on a key ruled out.
func (db *DB) pickRandom(req EvictionRequest) ref {
	for tries := 0; tries < evictRandomTriesMax; tries++ {
		var r ref
		if req.Policy == AllKeysRandom {
			if db.index.n == 0 {
				return 0
			}
			r = db.randomRefFrom(req.Rand)
		} else {
			if db.wheel.n == 0 {
				return 0
			}
			r = db.randomTTLOwner(req.Rand)
		}
		if db.evictable(req, r) {
			return r
		}
	}
	return 0
}

// randomTTLOwner draws a key with a TTL uniformly: TTL entries at random
// until a live one (about total/live draws), then, after randomDrawsMax,
// the next live entry. The wheel must not be empty.
func (db *DB) randomTTLOwner(rnd seam.Rand) ref {
	n := int(db.s.ttlCount)
	i := 0
	for d := 0; d < randomDrawsMax; d++ {
		i = int(rnd.Uint64() % uint64(n))
		if r := db.liveTTLOwner(i); r != 0 {
			return r
		}
	}
	for db.liveTTLOwner(i) == 0 {
		i = (i + 1) % n
	}
	return db.liveTTLOwner(i)
}

// KeyCost estimates what deleting the key r frees, as UsedBytes counts
// it: its cell, record, TTL entry and ordered-index share, and a large
// collection's nodes and overflow cells (walked: the deletion walks them
// anyway). The point index's slot is not counted: the table only shrinks
// by halves.
func (db *DB) KeyCost(r ref) int64 {
	rc := db.rec(r)
	n := db.keyBytes(rc)
	if rc.typ == TypeString {
		return n
	}
	v := db.s.valOf(rc)
	switch v[0] {
	case encQuicklist:
		n += db.treeBytes(treeRoot(v), tkList)
	case encHashtableSet:
		n += db.treeBytes(treeRoot(v), tkSet)
	case encHashtable:
		n += db.treeBytes(treeRoot(v), tkHash)
	case encSkiplist:
		byMember, byScore := zsetRoots(v)
		n += db.treeBytes(byMember, tkZMember) + db.treeBytes(byScore, tkZScore)
	}
	return n
}

// treeBytes is what a tree's nodes and overflow cells cost.
func (db *DB) treeBytes(t troot, k treeKind) int64 {
	if t.root == 0 {
		return 0
	}
	return db.subtreeBytes(t.root, k)
}

func (db *DB) subtreeBytes(n nid, k treeKind) int64 {
	p := db.s.node(n)
	leaf := p[0] == nodeLeaf
	total := int64(nodeBytes)
	for _, o := range offsets(p, k, nil) {
		if !leaf {
			if k.keyed() {
				total += db.overflowBytes(p, o+12)
			}
			total += db.subtreeBytes(childAt(p, o), k)
			continue
		}
		total += db.overflowBytes(p, o)
		if k.hasVal() {
			total += db.overflowBytes(p, skipField(p, o))
		}
	}
	return total
}

// overflowBytes is the cost of the field at p[o:]'s overflow cell, 0 for
// an inline field.
func (db *DB) overflowBytes(p []byte, o int) int64 {
	h, k := uvarint(p[o:])
	if h&1 == 0 {
		return 0
	}
	return db.s.rawBytes(p[o+k], binary.LittleEndian.Uint64(p[o+k+1:]))
}

// Evict deletes key as an eviction decided elsewhere (a logged eviction
// entry, on every replica and in replay): it raises Redis's "evicted"
// event and counts in EvictedKeys. A key past its deadline at now is
// expired instead, as any access would, and a missing one is left alone;
// both report false. It does not touch the other keys' metadata.
func (db *DB) Evict(now int64, key []byte) bool {
	db.observe(now)
	r := db.peek(db.clock, key)
	if r == 0 {
		return false
	}
	db.del(r, "evicted")
	db.evicted++
	return true
}

// EvictedKeys counts the keys Evict deleted (INFO evicted_keys).
func (db *DB) EvictedKeys() int64 { return db.evicted }

// ResetEvictedKeys zeroes EvictedKeys (CONFIG RESETSTAT).
func (db *DB) ResetEvictedKeys() { db.evicted = 0 }

// DeferredBytes is what records, cells and nodes freed while a View was
// alive still hold until no View is left (a snapshot in flight):
// memory UsedBytes no longer counts.
func (db *DB) DeferredBytes() int64 {
	var n int64
	for _, r := range db.s.deferred {
		rc := db.rec(r)
		n += db.s.cellBytes(rc) + recordBytes
	}
	for _, c := range db.s.deferredCells {
		n += db.s.rawBytes(c.class, c.cell)
	}
	return n
}

// Logged evictions and refusals. A leader logs the keys it chose as one
// command that starts with evictionMarker; every replica applies it with
// Evict (Exec does), so replicas and replays delete exactly those keys.
// A node refusing a command in its place (the OOM error) hands the
// replica a refusalMarker command instead: it is not a write, and it
// answers the error at the command's turn, so replies keep their order.
// Clients cannot send either: a command name starts with a letter, and
// Lookup knows neither.
var (
	evictionMarker = []byte("\x00evict")
	refusalMarker  = []byte("\x00refuse")
)

// EvictionCommand is the logged form of evicting keys (at least one).
func EvictionCommand(keys [][]byte) [][]byte {
	argv := make([][]byte, 0, 1+len(keys))
	return append(append(argv, evictionMarker), keys...)
}

// IsEviction reports whether argv is an EvictionCommand: a write, which
// goes through the log.
func IsEviction(argv [][]byte) bool {
	return len(argv) > 1 && string(argv[0]) == string(evictionMarker)
}

// RefusedCommand stands for a command refused before it reached the
// replica: running it (Exec) answers the error msg and changes nothing.
func RefusedCommand(msg string) [][]byte {
	return [][]byte{refusalMarker, []byte(msg)}
}

// execMarker runs an EvictionCommand or a RefusedCommand; false when
// argv is neither.
func (db *DB) execMarker(now int64, argv [][]byte, w Writer) bool {
	switch {
	case IsEviction(argv):
		n := 0
		for _, k := range argv[1:] {
			if db.Evict(now, k) {
				n++
			}
		}
		w.WriteInt(int64(n))
		return true
	case len(argv) == 2 && string(argv[0]) == string(refusalMarker):
		w.WriteError(string(argv[1]))
		return true
	}
	return false
}
