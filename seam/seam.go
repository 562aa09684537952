package seam

import "time"

// Clock reads a node's notion of wall time. In simulation every node has its
// own clock with seeded skew and drift, so two nodes may disagree; code that
// compares times across nodes must say what drift it tolerates.
type Clock interface {
	// Now returns nanoseconds since the Unix epoch.
	Now() int64
}

// Timers schedules callbacks in the clock's time. Core packages are
// sans-I/O and take time as an input (Tick(now)); Timers is for runtimes
// that drive them.
type Timers interface {
	// AfterFunc runs f once, d after now. stop cancels it and reports whether
	// it was still pending.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// Rand is the only source of randomness the core may use. *math/rand/v2.Rand
// satisfies it.
type Rand interface {
	Uint64() uint64
}

// Millis converts a Clock reading to the Unix milliseconds the engine uses.
func Millis(nowNanos int64) int64 { return nowNanos / int64(time.Millisecond) }
