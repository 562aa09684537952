package udf

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestCounter(t *testing.T) {
	h := newHost(t, NewConfig(), "counter")
	s := newFakeStore()
	if got := call(t, h, s, "incr_by", []string{"c"}, []string{"5"}); got != "(integer) 5" {
		t.Fatalf("first incr_by = %s", got)
	}
	if got := call(t, h, s, "incr_by", []string{"c"}, []string{"-7"}); got != "(integer) -2" {
		t.Fatalf("second incr_by = %s", got)
	}
	if got := s.snapshot(); got != "c=-2 " {
		t.Fatalf("state %q", got)
	}
	s.vals["c"] = []byte("nope")
	if got := call(t, h, s, "incr_by", []string{"c"}, []string{"1"}); got != "-ERR value is not an integer or out of range" {
		t.Fatalf("incr_by on a non-integer = %s", got)
	}
	if got := call(t, h, s, "incr_by", []string{"c"}, []string{"x"}); !strings.HasPrefix(got, "-ERR usage") {
		t.Fatalf("incr_by x = %s", got)
	}
}

func TestCounterEffectsKeepTTL(t *testing.T) {
	h := newHost(t, NewConfig(), "counter")
	s := newFakeStore()
	s.vals["c"] = []byte("10")
	s.pxat["c"] = s.now + 5000
	res, err := h.Call(context.Background(), "incr_by", bs("c"), bs("1"), s, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Effects) != 1 || strings.Join(strs(res.Effects[0]), " ") != "SET c 11 KEEPTTL" {
		t.Fatalf("effects %q", res.Effects)
	}
}

func strs(b [][]byte) []string {
	out := make([]string, len(b))
	for i := range b {
		out[i] = string(b[i])
	}
	return out
}

func TestTransfer(t *testing.T) {
	h := newHost(t, NewConfig(), "transfer")
	s := newFakeStore()
	s.vals["alice"] = []byte("100")
	if got := call(t, h, s, "transfer", []string{"alice", "bob"}, []string{"30"}); got != "(integer) 1" {
		t.Fatalf("transfer = %s", got)
	}
	if got := s.snapshot(); got != "alice=70 bob=30 " {
		t.Fatalf("after transfer: %q", got)
	}
	before := s.snapshot()
	res, err := h.Call(context.Background(), "transfer", bs("alice", "bob"), bs("71"), s, false)
	if err == nil || Message(err) != "ERR insufficient funds" || len(res.Effects) != 0 {
		t.Fatalf("overdraft: res=%v err=%v", res, err)
	}
	if got := s.snapshot(); got != before {
		t.Fatalf("overdraft changed state: %q", got)
	}
	if got := callRO(t, h, s, "balance", []string{"bob"}, nil, true); got != "(integer) 30" {
		t.Fatalf("balance = %s", got)
	}
}

func TestRatelimit(t *testing.T) {
	h := newHost(t, NewConfig(), "ratelimit")
	s := newFakeStore()
	rl := func() string { return call(t, h, s, "ratelimit", []string{"rl:u1"}, []string{"3", "2"}) }
	// Capacity 3, refill 2 per second.
	for i, want := range []string{"[(integer) 1 (integer) 2]", "[(integer) 1 (integer) 1]", "[(integer) 1 (integer) 0]", "[(integer) 0 (integer) 0]"} {
		if got := rl(); got != want {
			t.Fatalf("call %d at t0 = %s, want %s", i, got, want)
		}
	}
	s.now += 500 // one token back
	if got := rl(); got != "[(integer) 1 (integer) 0]" {
		t.Fatalf("after 500ms = %s", got)
	}
	if got := rl(); got != "[(integer) 0 (integer) 0]" {
		t.Fatalf("again = %s", got)
	}
	s.now += 60_000 // refilled, capped at capacity
	if got := rl(); got != "[(integer) 1 (integer) 2]" {
		t.Fatalf("after a minute = %s", got)
	}
	// The bucket expires once it would be full: (3000-2000)/2 + 1000 ms.
	if at := s.pxat["rl:u1"]; at != s.now+1500 {
		t.Fatalf("bucket expires at %d, want now+1500", at-s.now)
	}
}

func TestSpinStoppedByFuelDeterministically(t *testing.T) {
	h := newHost(t, NewConfig().WithFuel(2_000_000), "spin")
	var first string
	for i := 0; i < 3; i++ {
		s := newFakeStore()
		got := call(t, h, s, "spin", nil, nil)
		if !strings.Contains(got, "ran out of fuel") {
			t.Fatalf("spin = %s", got)
		}
		if i == 0 {
			first = got
		} else if got != first {
			t.Fatalf("verdict changed: %q then %q", first, got)
		}
	}
	if st := h.Stats(); st.Calls != 3 || st.Failures != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHogStoppedByMemoryCap(t *testing.T) {
	h := newHost(t, NewConfig().WithMemoryLimitPages(64), "hog")
	got := call(t, h, newFakeStore(), "hog", nil, nil)
	if got != "-ERR function 'hog' exceeded the memory limit of 4096 KiB" {
		t.Fatalf("hog = %s", got)
	}
	// The host still serves calls afterwards.
	if _, err := h.Load(context.Background(), "counter", example(t, "counter"), false); err != nil {
		t.Fatal(err)
	}
	if got := call(t, h, newFakeStore(), "incr_by", []string{"k"}, []string{"1"}); got != "(integer) 1" {
		t.Fatalf("after hog: %s", got)
	}
}

func TestTrapAfterWriteLeavesNoEffects(t *testing.T) {
	h := newHost(t, NewConfig(), "trap_after_write")
	s := newFakeStore()
	s.vals["k"] = []byte("before")
	got := call(t, h, s, "trap_after_write", []string{"k"}, nil)
	if !strings.HasPrefix(got, "-ERR function 'trap_after_write' trapped: wasm error: unreachable") {
		t.Fatalf("trap_after_write = %s", got)
	}
	if s.snapshot() != "k=before " {
		t.Fatalf("state %q", s.snapshot())
	}
}

func TestProcExitLeavesNoEffects(t *testing.T) {
	h := newHost(t, NewConfig(), "abi")
	s := newFakeStore()
	if got := call(t, h, s, "exit3", []string{"k"}, nil); got != "-ERR function 'exit3' exited with code 3" {
		t.Fatalf("exit3 = %s", got)
	}
	if s.snapshot() != "" {
		t.Fatalf("state %q", s.snapshot())
	}
}

func TestUndeclaredKeyRefused(t *testing.T) {
	h := newHost(t, NewConfig(), "abi")
	s := newFakeStore()
	got := call(t, h, s, "getarg", nil, []string{"secret"})
	if got != "-ERR function 'getarg' accessed key 'secret' (keel.exists) that was not declared in numkeys" {
		t.Fatalf("getarg = %s", got)
	}
	if got := call(t, h, s, "getarg", []string{"secret"}, []string{"secret"}); got != "(integer) 0" {
		t.Fatalf("declared getarg = %s", got)
	}
	if got := call(t, h, s, "scanp", []string{"p:"}, nil); got != "[]" {
		t.Fatalf("scan declared = %s", got)
	}
	if got := call(t, h, s, "getv", []string{"x"}, nil); got != "(nil)" {
		t.Fatalf("getv = %s", got)
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	h := newHost(t, NewConfig(), "counter", "abi")
	s := newFakeStore()
	got := callRO(t, h, s, "incr_by", []string{"c"}, []string{"1"}, true)
	if !strings.HasPrefix(got, "-ERR Write commands are not allowed from read-only scripts.") {
		t.Fatalf("FCALL_RO incr_by = %s", got)
	}
	s.vals["c"] = []byte("v")
	if got := callRO(t, h, s, "getv", []string{"c"}, nil, true); got != `"v"` {
		t.Fatalf("FCALL_RO getv = %s", got)
	}
	for _, fn := range []string{"delv", "setv"} {
		if got := callRO(t, h, s, fn, []string{"c"}, []string{"x"}, true); !strings.HasPrefix(got, "-ERR Write commands") {
			t.Fatalf("FCALL_RO %s = %s", fn, got)
		}
	}
}

func TestUnknownFunction(t *testing.T) {
	h := newHost(t, NewConfig())
	if got := call(t, h, newFakeStore(), "nope", nil, nil); got != "-ERR Function not found" {
		t.Fatal(got)
	}
}

// The second net: with WithCloseOnContextDone, wazero also watches the
// context; a call whose context expires stops even when its fuel would
// last (almost) forever, with the same error as without it.
func TestContextDoneSafetyNet(t *testing.T) {
	h := newHost(t, NewConfig().WithFuel(1<<60).WithCloseOnContextDone(true), "spin")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := h.Call(ctx, "spin", nil, nil, newFakeStore(), false)
	if err == nil || Message(err) != "ERR function 'spin' killed: context deadline exceeded" || !IsKilled(err) {
		t.Fatalf("spin with a deadline: %v", err)
	}
}
