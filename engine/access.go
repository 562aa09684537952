package engine

import "strings"

// Access metadata: each key's record keeps, in record.access, what Redis
// keeps in the 24-bit lru field of an object, so that the approximated
// LRU and LFU eviction policies (evict.go) and OBJECT IDLETIME / FREQ
// behave as in Redis (object.c, evict.c):
//
//   - under an LRU policy, and under any policy that is not LFU, the LRU
//     clock of the key's last access: seconds modulo 2^24 (194 days);
//   - under an LFU policy, the minute of the counter's last decrement (16
//     bits, modulo 2^16) above an 8-bit logarithmic access counter: a new
//     key starts at 5 (LFU_INIT_VAL), an access increments it with
//     probability 1/((counter-5)·lfu-log-factor+1), and it loses one per
//     lfu-decay-time minutes without access.
//
// The field filled what was padding, so the metadata costs no memory: the
// record stays 32 bytes per key. Its top byte is free; bit 31 marks a key
// EvictionVictims has picked during the call that picks it.
//
// A lookup records an access as Redis's lookupKey does, for reads and
// writes alike, except where Redis passes LOOKUP_NOTOUCH: EXISTS, TYPE,
// the TTL family and OBJECT (peek). A new key starts as just accessed; an
// overwrite keeps the key's record and so its metadata, which the write's
// own lookup has just refreshed (a SET over another type keeps the LFU
// counter, as Redis's dbSetValue does); RENAME carries the metadata to the
// new name; COPY's new key starts fresh.
//
// The clock is the command's now (the DB's clock), never a wall clock, and
// the LFU counter's draws come from the DB's own seeded generator. Access
// metadata is nevertheless local to one replica: reads update it and are
// not logged. That is why evictions are decided by a group's leader and
// logged as the keys it chose (docs/engine.md, "Eviction").

// Policy is a maxmemory-policy.
type Policy uint8

// Redis's eight policies.
const (
	NoEviction Policy = iota
	AllKeysLRU
	AllKeysLFU
	AllKeysRandom
	VolatileLRU
	VolatileLFU
	VolatileRandom
	VolatileTTL
)

var policyNames = [...]string{"noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
	"volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"}

// PolicyNames lists the policies in the order Redis's CONFIG SET error
// names them.
const PolicyNames = "volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"

// String is the policy's redis.conf name.
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "noeviction"
}

// ParsePolicy reads a policy name, case-insensitively.
func ParsePolicy(s string) (Policy, bool) {
	for i, n := range policyNames {
		if strings.EqualFold(s, n) {
			return Policy(i), true
		}
	}
	return NoEviction, false
}

// LFU reports a policy that ranks keys by access frequency: the keys then
// keep Redis's LFU counter instead of the LRU clock.
func (p Policy) LFU() bool { return p == AllKeysLFU || p == VolatileLFU }

// LRU reports a policy that ranks keys by idle time.
func (p Policy) LRU() bool { return p == AllKeysLRU || p == VolatileLRU }

// AllKeys reports a policy that may evict any key, not only keys with a
// TTL.
func (p Policy) AllKeys() bool { return p == AllKeysLRU || p == AllKeysLFU || p == AllKeysRandom }

func (p Policy) random() bool { return p == AllKeysRandom || p == VolatileRandom }

// The layout of record.access (see above).
const (
	lruBits            = 24
	lruClockMax        = 1<<lruBits - 1
	lruClockResolution = 1000 // ms per LRU clock unit
	lfuInitVal         = 5    // a new key's counter, so it is not evicted at once
	lfuMinutesMask     = 1<<16 - 1
	accessPicked       = 1 << 31
)

// Redis's defaults for lfu-log-factor and lfu-decay-time.
const (
	LFULogFactorDefault = 10
	LFUDecayTimeDefault = 1
)

// AccessConfig is what the engine follows of the memory settings.
type AccessConfig struct {
	// Policy decides what accesses record: the LFU counter under an LFU
	// policy, the LRU clock under any other.
	Policy Policy
	// LFULogFactor and LFUDecayTime (minutes) are lfu-log-factor and
	// lfu-decay-time (negative values count as 0).
	LFULogFactor int
	LFUDecayTime int
	// MaxMemory says a limit is set: then, under an LRU or LFU policy,
	// Redis stops sharing small integer values (each key needs its own
	// metadata), which OBJECT REFCOUNT shows.
	MaxMemory bool
}

// DefaultAccessConfig is Redis's default: noeviction, LRU metadata.
func DefaultAccessConfig() AccessConfig {
	return AccessConfig{LFULogFactor: LFULogFactorDefault, LFUDecayTime: LFUDecayTimeDefault}
}

// accessTracking is how the keys' access metadata is kept.
type accessTracking struct {
	cfg          AccessConfig
	lfu          bool
	logFactor    int
	decayMinutes int
}

// SetAccessConfig chooses what reads and writes record in each key (the
// LFU counter or the LRU clock) and with which parameters. Keys keep what
// they hold; as in Redis, after a switch between LRU and LFU their
// metadata reads the new way until they are accessed again.
func (db *DB) SetAccessConfig(c AccessConfig) {
	db.acc = accessTracking{cfg: c, lfu: c.Policy.LFU(), logFactor: max(c.LFULogFactor, 0), decayMinutes: max(c.LFUDecayTime, 0)}
}

// AccessConfig is what SetAccessConfig set.
func (db *DB) AccessConfig() AccessConfig { return db.acc.cfg }

// sharedIntegers reports whether Redis would store a small integer value
// as its shared object (OBJECT REFCOUNT): not with a limit set under an
// LRU or LFU policy.
func (db *DB) sharedIntegers() bool {
	c := db.acc.cfg
	return !c.MaxMemory || !(c.Policy.LRU() || c.Policy.LFU())
}

// lruClock is Redis's LRU_CLOCK at ms.
func lruClock(ms int64) uint32 { return uint32(ms/lruClockResolution) & lruClockMax }

// lfuMinutes is Redis's LFUGetTimeInMinutes at ms.
func lfuMinutes(ms int64) uint32 { return uint32(ms/60000) & lfuMinutesMask }

// accessAt is the metadata of a key created at ms: the LRU clock, or the
// initial LFU counter (Redis's createObject).
func (db *DB) accessAt(ms int64) uint32 {
	if db.acc.lfu {
		return lfuMinutes(ms)<<8 | lfuInitVal
	}
	return lruClock(ms)
}

// newAccess is a new key's metadata at the DB's time.
func (db *DB) newAccess() uint32 {
	if db.acc.lfu {
		return lfuMinutes(db.clock)<<8 | lfuInitVal
	}
	return db.lruNow
}

// touch records an access of rc at the DB's time (Redis's lookupKey
// without LOOKUP_NOTOUCH).
func (db *DB) touch(rc *record) {
	if db.acc.lfu {
		c := db.lfuLogIncr(db.lfuDecr(rc.access, db.clock))
		rc.access = lfuMinutes(db.clock)<<8 | c
		return
	}
	rc.access = db.lruNow
}

// lfuDecr is Redis's LFUDecrAndReturn: the counter less one for every
// lfu-decay-time minutes since it was last decremented (the minutes wrap
// at 2^16, as Redis's do). It changes nothing.
func (db *DB) lfuDecr(access uint32, now int64) uint32 {
	ldt := access >> 8 & lfuMinutesMask
	counter := access & 255
	if db.acc.decayMinutes == 0 {
		return counter
	}
	t := lfuMinutes(now)
	elapsed := t - ldt
	if t < ldt {
		elapsed = lfuMinutesMask - ldt + t
	}
	periods := elapsed / uint32(db.acc.decayMinutes)
	if periods >= counter {
		return 0
	}
	return counter - periods
}

// lfuLogIncr is Redis's LFULogIncr: the counter grows by one with
// probability 1/((counter-5)·lfu-log-factor+1), so it reaches 255 after
// about a million accesses with the default factor. The draw comes from
// the DB's own generator: never the command's seed (a logged SPOP must
// draw the same members whatever the policy) nor Options.Rand.
func (db *DB) lfuLogIncr(counter uint32) uint32 {
	if counter == 255 {
		return 255
	}
	r := float64(db.lfuRand.Uint64()>>11) / (1 << 53)
	base := float64(counter) - lfuInitVal
	if base < 0 {
		base = 0
	}
	if r < 1/(base*float64(db.acc.logFactor)+1) {
		counter++
	}
	return counter
}

// idleMillis is Redis's estimateObjectIdleTime: the time since the key's
// LRU clock, in whole seconds as milliseconds, across the clock's wrap.
func idleMillis(access uint32, now int64) uint64 {
	t, lru := lruClock(now), access&lruClockMax
	if t >= lru {
		return uint64(t-lru) * lruClockResolution
	}
	return uint64(t+(lruClockMax-lru)) * lruClockResolution
}
