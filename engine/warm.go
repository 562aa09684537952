package engine

// WarmBatchKeys is how many keys one pass of Warm overlaps, and so how
// many a caller gathers for one Warm: enough misses in flight to fill the
// core's memory-level parallelism, few enough that what they load is
// still in L1/L2 when the commands run.
const WarmBatchKeys = 32

// Warm loads into the CPU's caches what looking up keys will read: the
// index slot, the record and the first line of the key's cell, in three
// passes over the keys so that the cache misses of one pass are
// independent of each other and overlap, where a lookup's misses are a
// dependent chain (slot, then record, then cell) paid one key at a time.
// With a keyspace larger than the caches, those misses are most of a
// point command's cost. It changes nothing: not even the keys' access
// metadata (LRU/LFU).
func (db *DB) Warm(keys [][]byte) {
	for len(keys) > 0 {
		k := min(len(keys), WarmBatchKeys)
		db.warm(keys[:k])
		keys = keys[k:]
	}
}

func (db *DB) warm(keys [][]byte) {
	x := &db.index
	n := len(x.slots)
	if n == 0 {
		return
	}
	var fps [WarmBatchKeys]uint32
	var at [WarmBatchKeys]int
	var acc uint64
	for i, key := range keys {
		fps[i] = x.fingerprint(key)
		at[i] = home(fps[i], n)
		acc += x.slots[at[i]]
	}
	// The slots are in the cache now: find each key's ref (a fingerprint
	// match; a rare false one only warms another key), then its record
	// and cell.
	var found [WarmBatchKeys]ref
	refs := found[:0]
	for i := range keys {
		for j := at[i]; ; j++ {
			if j == n {
				j = 0
			}
			s := x.slots[j]
			if s == 0 {
				break
			}
			if uint32(s>>32) == fps[i] {
				refs = append(refs, ref(s))
				break
			}
		}
	}
	db.warmSink = acc + db.s.slabDirs.warmRefs(refs)
}

// warmKeysPerCommandMax bounds the keys one command adds to a Warmer
// (MSET of hundreds of keys warms its first ones; the rest pay their
// misses as before).
const warmKeysPerCommandMax = 16

// Warmer gathers the keys of commands about to run, for one DB.Warm of
// all of them: a batch's commands are added, warmed, then executed. It
// keeps references to the argv slices until Warm.
type Warmer struct {
	keys [][]byte
}

// Add adds argv's keys: those at fixed positions (COMMAND INFO's first,
// last and step); a command whose keys move with its arguments, or an
// unknown one, adds none.
func (w *Warmer) Add(argv [][]byte) {
	if len(argv) < 2 {
		return
	}
	c := Lookup(argv[0])
	if c == nil || c.keys != nil || c.Step <= 0 {
		return
	}
	first, last := c.fixedKeyRange(len(argv))
	last = min(last, first+(warmKeysPerCommandMax-1)*c.Step)
	for i := first; i <= last; i += c.Step {
		w.keys = append(w.keys, argv[i])
	}
}

// Len is how many keys are gathered.
func (w *Warmer) Len() int { return len(w.keys) }

// Warm warms the gathered keys in db and forgets them.
func (w *Warmer) Warm(db *DB) {
	db.Warm(w.keys)
	clear(w.keys)
	w.keys = w.keys[:0]
}

// warmRefs loads the records of refs, then the first line of their
// cells, each pass's misses overlapping (DB.Warm, View.Ascend). It
// returns a value the caller keeps, so the loads are not optimised away.
func (d *slabDirs) warmRefs(refs []ref) uint64 {
	var acc uint64
	for _, r := range refs {
		acc += d.rec(r).cell
	}
	for _, r := range refs {
		rc := d.rec(r)
		if rc.class != classLarge {
			acc += uint64(d.pages[rc.cell>>pageShift][rc.cell&pageMask])
		}
	}
	return acc
}
