package seam

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"time"
)

// Wall is the production Clock: the operating system's wall clock.
type Wall struct{}

// Now implements Clock.
func (Wall) Now() int64 { return time.Now().UnixNano() }

// RealTimers is the production Timers.
type RealTimers struct{}

// AfterFunc implements Timers.
func (RealTimers) AfterFunc(d time.Duration, f func()) func() bool {
	t := time.AfterFunc(d, f)
	return t.Stop
}

// NewRand returns a PRNG seeded from the OS entropy source. It is not safe
// for concurrent use; give each owner its own.
func NewRand() *rand.Rand {
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		panic("seam: OS entropy source failed: " + err.Error())
	}
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])))
}
