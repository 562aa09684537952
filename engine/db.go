package engine

import (
	"strings"
	"sync/atomic"

	"github.com/keel-db/keel/seam"
)

// Options configure a DB.
type Options struct {
	// Rand serves commands that pick at random (RANDOMKEY) and seeds the
	// SCAN cursor sequence. If nil, a fixed-seed sequence is used (fine for
	// tests; a node should pass its seeded seam.Rand).
	Rand seam.Rand
	// Notify, when set, is called for every keyspace event with Redis's
	// event names ("set", "del", "expire", "expired", "incrby",
	// "incrbyfloat", "append", "setrange", "rename_from", "rename_to",
	// "copy_to", "persist", "new" when a key is created, "keymiss" when a
	// reading command finds no key). key is only valid during the call. It runs
	// inside Exec and ActiveExpire and must not call back into the DB.
	Notify func(event string, key []byte)
	// Ready, when set, is called after a write gave elements to a list or
	// a sorted set at key (a push, an add, a store or rename onto it), so
	// the runtime can serve clients blocked on key (BLPOP and the like
	// live above the engine). Same rules as Notify.
	Ready func(key []byte)
	// ProtoMaxBulkLen caps the strings APPEND and SETRANGE may build
	// (Redis's proto-max-bulk-len). 0 means 512 MB; at most 4 GiB - 1 (a
	// value's length is 32 bits), and so is every argument of a command.
	ProtoMaxBulkLen int64
}

// argBytesMax bounds every argument of a command (maxValueBytes; a
// variable so a test can lower it).
var argBytesMax = maxValueBytes

// DefaultProtoMaxBulkLen is Redis's default proto-max-bulk-len.
const DefaultProtoMaxBulkLen = 512 << 20

// DB is one keyspace. It is not safe for concurrent use: one owner applies
// commands to it at a time (the shard's executor). Views taken with View
// may be read from other goroutines.
type DB struct {
	opts Options

	// s holds every key's record and cell; the point index and the
	// ordered index hold the same refs into it (see arena.go).
	s     slabs
	index pointIndex
	tree  *keyIndex
	wheel wheel

	// clock is the latest time given to Exec or ActiveExpire; time never
	// goes backwards inside a DB (see Exec).
	clock int64
	// warmSink keeps Warm's loads from being optimised away.
	warmSink uint64
	// localRead is set while ExecLocalRead runs: keys expired at its now
	// but not at clock are hidden, not collected (expireItem).
	localRead bool

	// viewVersion is modCount when the latest View was taken; views counts
	// Views not yet released. A key last changed before viewVersion may be
	// shared with a live View and is copied before it changes (writable).
	viewVersion uint64
	views       atomic.Int32

	// modCount orders every change, for WATCH (KeyVersion); tombstones
	// remember when keys hashing to a bucket were last deleted, and
	// flushVersion when the whole keyspace was.
	modCount     uint64
	tombstones   [tombstoneBuckets]uint64
	flushVersion uint64
	indexSeed    uint64

	// usedBytes is what the live keys' cells, records and ordered-index
	// entries cost (UsedBytes adds the point index).
	usedBytes int64
	// expiredKeys counts keys deleted by expiry (ExpiredKeys).
	expiredKeys int64
	scan        scanTable
	// expiredScratch collects keys found expired during an iteration, to be
	// deleted after it (the btree may not change while it is iterated).
	expiredScratch []ref
	// scanOut is SCAN's reusable result buffer.
	scanOut []ref
	// numBuf formats integers without allocating.
	numBuf [32]byte

	// Scratch of the collection trees (tree.go): the entries of a node
	// being split and their offsets, an encoded entry, a separator, node
	// offsets per recursion step and per repair, an iterator's leaf.
	tbuf       []byte
	toffs      []int
	tent, tsep []byte
	noffs      []int
	foffs      []int
	iterOffs   []int
	iterInner  []int
	itersLive  int
	listOffs   []int
	scanItems  []scanItem
	// leafGen counts changes to tree leaves; tail keeps the entry offsets
	// of the list leaf last popped at its tail while leafGen has not moved
	// since (tree.go, deleteRunIn).
	leafGen uint64
	tail    struct {
		nid  nid
		used int
		gen  uint64
		offs []int
	}
	// tbufElem holds an element moved between keys (LMOVE, SMOVE).
	tbufElem []byte
	// setTmp builds an intset or a pack for setAdd; setBufs hold the sets
	// a command changes (setLoad's buffers).
	setTmp  []byte
	setBufs [2][]byte
	// Sorted-set scratch: a (score, member) key, pack entry offsets, an
	// entry being inserted, the packs a command changes.
	zkey, zent []byte
	zoffs      []int
	zbufs      [2][]byte
	zscores    []float64
	// zprev receives the score a ZADD's put into the member tree replaced,
	// while zprevOn (tree.go, putIn).
	zprev   [8]byte
	zprevOn bool
	// hdr holds a collection header being built.
	hdr [32]byte
	// pack builds a pack (a small collection's value) being rewritten.
	pack []byte

	// restore is the large collection a restore is filling (dump.go).
	restore restoring

	// seeded says the running command draws its randomness from cmdRand
	// (ExecSeeded) rather than Options.Rand.
	seeded  bool
	cmdRand SplitMix64

	// Access metadata and eviction (access.go, evict.go): how keys record their
	// accesses, the LRU clock at the DB's time, the LFU counter's own
	// generator, the eviction pool and EvictionVictims' scratch, and the
	// keys Evict deleted.
	acc     accessTracking
	lruNow  uint32
	lfuRand SplitMix64
	pool    evictionPool
	picked  []ref
	sampled []ref
	evicted int64
}

// New returns an empty keyspace.
func New(opts Options) *DB {
	if opts.Rand == nil {
		opts.Rand = &SplitMix64{}
	}
	if opts.ProtoMaxBulkLen == 0 {
		opts.ProtoMaxBulkLen = DefaultProtoMaxBulkLen
	}
	// APPEND and SETRANGE build values up to this; a record holds 32 bits.
	opts.ProtoMaxBulkLen = min(opts.ProtoMaxBulkLen, maxValueBytes)
	db := &DB{opts: opts}
	// The SCAN cursor sequence and the point index's hash are seeded
	// from the node's randomness (the simulator's seeded stream), each
	// with its own draw.
	db.scan.init(opts.Rand.Uint64())
	db.indexSeed = opts.Rand.Uint64()
	// The LFU counter's draws need no draw of their own from Rand (which
	// would shift what a seeded run draws everywhere else).
	db.lfuRand.Seed(db.indexSeed ^ 0x6c6675636f756e74)
	db.SetAccessConfig(DefaultAccessConfig())
	db.wheel.d = &db.s.slabDirs
	db.clear()
	return db
}

// Exec runs one command. now is Unix milliseconds; for a logged command it
// is the time recorded in the log entry, so replay reproduces it exactly.
// It checks the name and arity and writes exactly one reply to w.
//
// A DB's time never goes backwards: a now earlier than one already seen
// (a stepped-back clock) is treated as that latest time, so a key that has
// expired can never reappear. Clock reports the time actually used.
func (db *DB) Exec(now int64, argv [][]byte, w Writer) { db.exec(now, argv, w, false) }

// ExecLocalRead runs a read-only command for a replica of a replicated
// log (a follower's READONLY read, or any read a leader serves): at now,
// its own clock, so a key expired by it reads as gone, but without moving
// the DB's clock and without collecting a key the DB's clock (the log's
// time) has not expired. A follower's clock may run ahead of the
// leader's, and a leader's reads run ahead of the writes it still has in
// flight: had the read moved the clock or deleted the key, the next
// logged write of it would find nothing there and do something else
// than it did on the other replicas. The LRU clock (access.go) does move:
// it only orders keys for eviction, which the leader alone decides.
func (db *DB) ExecLocalRead(now int64, argv [][]byte, w Writer) {
	if l := lruClock(now); now > db.clock && l > db.lruNow {
		db.lruNow = l
	}
	db.localRead = true
	db.exec(now, argv, w, true)
	db.localRead = false
}

func (db *DB) exec(now int64, argv [][]byte, w Writer, local bool) {
	if len(argv) == 0 {
		w.WriteError("ERR empty command")
		return
	}
	c := Lookup(argv[0])
	if c == nil {
		if len(argv[0]) > 0 && argv[0][0] == 0 && db.execMarker(now, argv, w) {
			return
		}
		w.WriteError(UnknownCommandError(argv))
		return
	}
	if !c.ArityOK(len(argv)) {
		w.WriteError("ERR wrong number of arguments for '" + c.Name + "' command")
		return
	}
	for _, a := range argv {
		// A record holds a value's length in 32 bits; no argument (and so
		// no value or key a command builds from one) may be longer.
		if len(a) > argBytesMax {
			w.WriteError(errTooBig)
			return
		}
	}
	if local {
		c.run(db, max(now, db.clock), argv, w)
		return
	}
	db.observe(now)
	c.run(db, db.clock, argv, w)
}

// ExecSeeded is Exec for a command whose random choices (SPOP picking
// members) must be the same wherever it runs: the log's replay, every
// replica. The choices draw from a generator seeded with seed alone, so
// the caller derives seed from what every replica shares (the log
// entry's index and the command's place in it), never from a local
// source. Everything else is Exec's.
func (db *DB) ExecSeeded(now int64, seed uint64, argv [][]byte, w Writer) {
	db.seeded, db.cmdRand = true, SplitMix64{state: seed}
	db.Exec(now, argv, w)
	db.seeded = false
}

// UnknownCommandError is Redis's reply to a command it does not know,
// quoting the first arguments (128 bytes of them at most, as Redis does).
func UnknownCommandError(argv [][]byte) string {
	const quoteMax = 128
	name := argv[0]
	if len(name) > quoteMax {
		name = name[:quoteMax]
	}
	var args []byte
	for _, a := range argv[1:] {
		if len(args) >= quoteMax {
			break
		}
		if room := quoteMax - len(args); len(a) > room {
			a = a[:room]
		}
		args = append(append(append(args, '\''), a...), "' "...)
	}
	msg := "ERR unknown command '" + string(name) + "', with args beginning with: " + string(args)
	// Redis never lets a newline reach an error line.
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, msg)
}

func (db *DB) observe(now int64) {
	if now > db.clock {
		db.clock = now
		db.lruNow = lruClock(now)
	}
}

// Clock is the DB's current time: the latest now it has been given.
func (db *DB) Clock() int64 { return db.clock }

// Len is the number of keys, expired-but-not-yet-collected ones included.
func (db *DB) Len() int { return db.index.n }

// Expires is the number of keys with a TTL (for INFO keyspace),
// expired-but-not-yet-collected ones included.
func (db *DB) Expires() int { return db.wheel.n }

// UsedBytes is the memory the keys hold, as Redis's used_memory counts
// allocations: each key's cell at its size class, its record and its
// share of the ordered index, plus the point index's table. Free cells and
// records kept for reuse are not counted (HeldBytes does).
func (db *DB) UsedBytes() int64 {
	return db.usedBytes + db.index.bytes()
}

// HeldBytes is the memory the keyspace's blocks occupy, free space
// included: pages, record chunks, large cells and the point index.
func (db *DB) HeldBytes() int64 {
	return db.s.heldBytes + db.index.bytes()
}

// Reserve prepares room for n more keys (recovery knows how many a
// snapshot holds), sparing the indexes their incremental growth.
func (db *DB) Reserve(n int) {
	if n <= 0 {
		return
	}
	db.index.reserve(db.index.n + n)
}

// Reset empties the keyspace (FLUSHALL, or before loading a snapshot).
// Views already taken are unaffected.
func (db *DB) Reset() {
	db.clear()
	db.modCount++
	db.flushVersion = db.modCount
	db.tombstones = [tombstoneBuckets]uint64{}
}

// clear starts empty blocks and indexes. Views keep the old ones: they
// hold their own directory headers and tree.
func (db *DB) clear() {
	db.s = slabs{}
	db.index.init(db.indexSeed)
	db.tree = db.newTree()
	db.wheel.reset()
	db.usedBytes = 0
	db.restore = restoring{}
	db.leafGen++ // new blocks: node ids mean other nodes now
}

// KeyVersion returns a number that changes whenever key is written,
// deleted or expires (for WATCH): record it, and later the key has changed
// if KeyVersion differs. A missed change is impossible; a spurious one
// (an EXEC aborted for nothing) happens when a deleted key shares its
// tombstone with another key deleted later (4096 buckets), or when a key
// that had already expired at WATCH time is collected before EXEC.
//
// It changes nothing: it neither moves the DB's clock nor collects an
// expired key, so calling it (from the connection layer, outside the log)
// cannot make replicas diverge. An expired key not yet collected reports
// its version with the top bit set, which differs from any live version.
// Versions are local to this DB instance (active expiry bumps them) and
// not comparable across nodes.
func (db *DB) KeyVersion(now int64, key []byte) uint64 {
	if r := db.find(key); r != 0 {
		if db.expired(r, max(now, db.clock)) {
			return db.rec(r).version | 1<<63
		}
		return db.rec(r).version
	}
	return max(db.tombstones[tombstoneIndex(key)], db.flushVersion)
}

// SplitMix64 is the fallback Rand (of the engine, and of function calls in
// cluster/): deterministic, tiny, good enough to pick a random key. The
// zero value is a fixed sequence.
type SplitMix64 struct{ state uint64 }

// Uint64 returns the next value of the sequence.
func (r *SplitMix64) Uint64() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Seed sets the sequence's state: two generators seeded alike draw alike.
func (r *SplitMix64) Seed(state uint64) { r.state = state }
