package server

import (
	"math"
	"runtime/debug"
	"testing"
	"time"
)

// TestRuntimeMemoryLimitFollowsMaxMemory: a server that owns its process
// sets the Go runtime's memory limit from maxmemory, follows CONFIG SET
// maxmemory, and lifts the limit at maxmemory 0; one that does not own
// the process leaves it alone.
func TestRuntimeMemoryLimitFollowsMaxMemory(t *testing.T) {
	if operatorMemLimit() {
		t.Skip("GOMEMLIMIT is set: the limit is the operator's")
	}
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	waitLimit := func(want int64, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for debug.SetMemoryLimit(-1) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: runtime memory limit %d, want %d", what, debug.SetMemoryLimit(-1), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	debug.SetMemoryLimit(math.MaxInt64)
	other := startServer(t, Config{MaxMemory: 1 << 20})
	time.Sleep(3 * tickInterval)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("a server that does not own the process set the limit to %d", got)
	}
	other.srv.Shutdown()

	ts := startServer(t, Config{MaxMemory: 100 << 20, OwnsProcess: true})
	base := ts.srv.baseMemory
	if base <= 0 {
		t.Fatalf("the runtime's memory at start reads %d", base)
	}
	waitLimit(base+100<<20+10<<20, "maxmemory 100mb")
	c := ts.client(t, nil)
	if err := c.ConfigSet(ctx(), "maxmemory", "50mb").Err(); err != nil {
		t.Fatal(err)
	}
	waitLimit(base+50<<20+5<<20, "CONFIG SET maxmemory 50mb")
	if err := c.ConfigSet(ctx(), "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	waitLimit(math.MaxInt64, "CONFIG SET maxmemory 0")
}
