package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/seam"
)

// ms is a node clock reading in Unix milliseconds, t seconds into a run.
func ms(t float64) int64 { return simEpoch/1e6 + int64(t*1000) }

var testKeys = []string{"a", "b"}

func probeOf(vals ...string) []probeKey {
	out := make([]probeKey, len(vals))
	for i, v := range vals {
		if v == "" {
			out[i] = probeKey{val: nullReply, pttl: intReply(-2), hasTTL: true}
		} else {
			out[i] = probeKey{val: bulkReply(v), pttl: intReply(-1), hasTTL: true}
		}
	}
	return out
}

func exec(o *Oracle, at float64, reply Reply, argv ...string) {
	o.Executed(argv, reply, ms(at), ms(at))
}

func TestOracleChecksReplies(t *testing.T) {
	o := newOracle(Durability{Kind: "always"}, false)
	exec(o, 0.1, okReply, "SET", "a", "1")
	exec(o, 0.2, intReply(6), "INCRBY", "a", "5")
	exec(o, 0.3, bulkReply("6"), "GET", "a")
	exec(o, 0.4, nullReply, "SET", "a", "x", "NX")
	exec(o, 0.5, Reply{Kind: '*', Elems: []Reply{bulkReply("6"), nullReply}}, "MGET", "a", "b")
	if len(o.Failures) != 0 {
		t.Fatalf("correct replies flagged: %v", o.Failures)
	}
	exec(o, 0.6, bulkReply("7"), "GET", "a")
	exec(o, 0.7, errReply("ERR disk full"), "SET", "b", "1") // not tolerated here
	if len(o.Failures) != 2 {
		t.Fatalf("want 2 failures (stale read, unexpected error), got %v", o.Failures)
	}
}

func TestOracleExpiry(t *testing.T) {
	o := newOracle(Durability{Kind: "always"}, false)
	exec(o, 1, okReply, "SET", "a", "v", "EX", "1")
	exec(o, 2.0, bulkReply("v"), "GET", "a") // now == when: still there (Redis: expired when now > when)
	exec(o, 2.001, nullReply, "GET", "a")
	exec(o, 2.002, intReply(0), "EXPIRE", "a", "5")
	if len(o.Failures) != 0 {
		t.Fatalf("%v", o.Failures)
	}
}

func TestOracleAlwaysNeedsEveryAckedWrite(t *testing.T) {
	o := newOracle(Durability{Kind: "always"}, false)
	exec(o, 0.1, okReply, "SET", "a", "1")
	exec(o, 0.2, okReply, "SET", "b", "2")
	o.Crashed(ms(0.3))
	o.Recovered(testKeys, probeOf("1", ""), ms(0.4))
	if len(o.Failures) != 1 || !strings.Contains(o.Failures[0], "acknowledged writes lost") {
		t.Fatalf("lost acknowledged write not flagged: %v", o.Failures)
	}
}

func TestOracleInFlightMayOrMayNotSurvive(t *testing.T) {
	for _, probe := range [][]probeKey{probeOf("1", ""), probeOf("1", "2")} {
		o := newOracle(Durability{Kind: "always"}, false)
		exec(o, 0.1, okReply, "SET", "a", "1")
		o.InFlight([]string{"SET", "b", "2"}, ms(0.2))
		o.Crashed(ms(0.2))
		o.Recovered(testKeys, probe, ms(0.3))
		if len(o.Failures) != 0 {
			t.Fatalf("in-flight write: %v", o.Failures)
		}
	}
}

func TestOracleEverysecWindowAndSuffix(t *testing.T) {
	dur := Durability{Kind: "window", WindowMs: 1000}
	// Losing writes acknowledged within the window is allowed...
	o := newOracle(dur, false)
	exec(o, 1.0, okReply, "SET", "a", "1")
	exec(o, 2.5, okReply, "SET", "b", "2")
	o.Crashed(ms(3.0))
	o.Recovered(testKeys, probeOf("1", ""), ms(3.1))
	if len(o.Failures) != 0 || o.Stats.LostWrites != 1 {
		t.Fatalf("loss inside the window: failures %v, lost %d", o.Failures, o.Stats.LostWrites)
	}
	// ...older ones are not...
	o = newOracle(dur, false)
	exec(o, 1.0, okReply, "SET", "a", "1")
	exec(o, 2.5, okReply, "SET", "b", "2")
	o.Crashed(ms(3.0))
	o.Recovered(testKeys, probeOf("", ""), ms(3.1))
	if len(o.Failures) != 1 {
		t.Fatalf("loss outside the window not flagged: %v", o.Failures)
	}
	// ...and losses must be a suffix: an earlier write lost while a later
	// one survives is a failure even inside the window.
	o = newOracle(dur, false)
	exec(o, 2.6, okReply, "SET", "a", "1")
	exec(o, 2.7, okReply, "SET", "b", "2")
	o.Crashed(ms(3.0))
	o.Recovered(testKeys, probeOf("", "2"), ms(3.1))
	if len(o.Failures) != 1 || !strings.Contains(o.Failures[0], "no prefix") {
		t.Fatalf("non-suffix loss not flagged: %v", o.Failures)
	}
}

func TestOracleResurrectionAndInvention(t *testing.T) {
	for name, probe := range map[string][]probeKey{
		// The delete is lost while the later write survives: not a prefix,
		// even when any suffix may be lost.
		"resurrected delete": probeOf("1", "2"),
		"invented value":     probeOf("", "zzz"),
	} {
		o := newOracle(Durability{Kind: "any"}, false)
		exec(o, 0.1, okReply, "SET", "a", "1")
		exec(o, 0.2, intReply(1), "DEL", "a")
		exec(o, 0.3, okReply, "SET", "b", "2")
		o.Crashed(ms(0.4))
		o.Recovered(testKeys, probe, ms(0.5))
		if len(o.Failures) != 1 || !strings.Contains(o.Failures[0], "no prefix") {
			t.Fatalf("%s not flagged: %v", name, o.Failures)
		}
	}
}

// A process restart recovers from the page cache; a later power loss may
// still take writes from before it. The oracle keeps them undoable.
func TestOracleUnsyncedWritesSurviveProcessRestartThenVanish(t *testing.T) {
	o := newOracle(Durability{Kind: "window", WindowMs: 1000}, false)
	exec(o, 1.0, okReply, "SET", "a", "1")
	o.Crashed(ms(1.1)) // process restart: page cache kept
	o.Recovered(testKeys, probeOf("1", ""), ms(1.2))
	exec(o, 1.3, okReply, "SET", "b", "2")
	o.Crashed(ms(1.5)) // power loss: both unsynced writes gone
	o.Recovered(testKeys, probeOf("", ""), ms(1.6))
	if len(o.Failures) != 0 {
		t.Fatalf("%v", o.Failures)
	}
}

func TestOracleToleratedWriteErrorMustNotApply(t *testing.T) {
	o := newOracle(Durability{Kind: "always"}, true)
	exec(o, 0.1, errReply("ERR disk full: write refused (ENOSPC)"), "SET", "a", "1")
	exec(o, 0.2, nullReply, "GET", "a")
	if len(o.Failures) != 0 || o.Stats.Refused != 1 {
		t.Fatalf("refused write: %v %+v", o.Failures, o.Stats)
	}
	exec(o, 0.3, errReply("ERR disk full"), "SET", "a", "1")
	exec(o, 0.4, bulkReply("1"), "GET", "a") // the refused write happened after all
	if len(o.Failures) != 1 {
		t.Fatalf("a refused write that took effect was not flagged: %v", o.Failures)
	}
}

func TestCheckScan(t *testing.T) {
	page := func(cursor string, keys ...string) Reply {
		r := Reply{Kind: '*', Elems: []Reply{bulkReply(cursor), {Kind: '*'}}}
		for _, k := range keys {
			r.Elems[1].Elems = append(r.Elems[1].Elems, bulkReply(k))
		}
		return r
	}
	alive := []string{"a", "b"}
	if msg := checkScan(alive, page("0", "b", "a")); msg != "" {
		t.Fatal(msg)
	}
	if msg := checkScan(alive, page("0", "a")); msg == "" {
		t.Fatal("an ended scan that missed a key passed")
	}
	if msg := checkScan(alive, page("17", "a")); msg != "" {
		t.Fatal(msg)
	}
	if msg := checkScan(alive, page("0", "a", "b", "c")); msg == "" {
		t.Fatal("a scan returning a dead key passed")
	}
}

// Time the node spent stalled (paused, waiting on a slow disk) does not
// count against the everysec window: no fsync could run then.
func TestOracleWindowDiscountsStalls(t *testing.T) {
	dur := Durability{Kind: "window", WindowMs: 1000}
	for _, stalled := range []bool{false, true} {
		o := newOracle(dur, false)
		exec(o, 1.0, okReply, "SET", "a", "1")
		if stalled {
			o.Stalled(ms(1.1), ms(2.0))
		}
		o.Crashed(ms(2.5))
		o.Recovered(testKeys, probeOf("", ""), ms(2.6))
		if flagged := len(o.Failures) > 0; flagged == stalled {
			t.Fatalf("stalled=%v: failures %v", stalled, o.Failures)
		}
	}
}

// An EXEC under WATCH in flight at a crash may have aborted (a write of
// its key came first): a recovery holding a later in-flight write but not
// it is a prefix with it skipped, not a lost write followed by a kept one.
// A plain in-flight write cannot be skipped that way.
func TestOracleInFlightWatchedExecMayAbort(t *testing.T) {
	watched := func(from, to, amt string) []string {
		return []string{"EXEC", txnWatched, "INCRBY", from, "-" + amt, txnSep, "INCRBY", to, amt}
	}
	o := newOracle(Durability{Kind: "always"}, false)
	exec(o, 0.1, okReply, "SET", "a", "10")
	exec(o, 0.2, okReply, "SET", "b", "10")
	o.InFlight(watched("a", "b", "3"), ms(0.3)) // aborted at the node
	o.InFlight(watched("b", "a", "1"), ms(0.3)) // applied, logged, recovered
	o.Crashed(ms(0.3))
	o.Recovered(testKeys, probeOf("11", "9"), ms(0.5))
	if len(o.Failures) != 0 {
		t.Fatalf("an aborted in-flight watched EXEC flagged: %v", o.Failures)
	}
	exec(o, 0.6, bulkReply("11"), "GET", "a") // the model follows what recovered

	p := newOracle(Durability{Kind: "always"}, false)
	exec(p, 0.1, okReply, "SET", "a", "10")
	exec(p, 0.2, okReply, "SET", "b", "10")
	p.InFlight([]string{"INCRBY", "a", "-3"}, ms(0.3))
	p.InFlight([]string{"INCRBY", "b", "-1"}, ms(0.3))
	p.Crashed(ms(0.3))
	p.Recovered(testKeys, probeOf("10", "9"), ms(0.5))
	if len(p.Failures) != 1 {
		t.Fatalf("a lost in-flight write followed by a kept one: failures %v", p.Failures)
	}
	if len(o.Failures) != 0 {
		t.Fatalf("after recovery: %v", o.Failures)
	}
}

func TestFailureSignature(t *testing.T) {
	for msg, want := range map[string]string{
		"t=8.810s FCALL_RO balance 1 k0: want (integer) 148, got (integer) 156":                "reply FCALL_RO got integer",
		"t=5.569s FCALL_RO balance 1 k2: want (integer) 0, got (error) ERR Function not found": "reply FCALL_RO got error",
		"t=2.658s GET k2: want \"c1009-180\", got (nil)":                                       "reply GET got nil",
		"raft election safety: t=6.7s term 5 has two leaders: n2 and n3":                       InvElectionSafety,
		"linearizability: illegal: ...":                                                        "linearizability",
	} {
		if got := FailureSignature(msg); got != want {
			t.Errorf("%q: %q, want %q", msg, got, want)
		}
	}
}

// A forward clock step skips a stretch of the node's clock in which no
// tick, and so no everysec fsync, ran: the node reports it to the oracle
// as a stall, and a write acknowledged just before the step may still be
// lost by a crash right after it (clock-skew seed 167169927 failed on it).
func TestOracleWindowDiscountsClockSteps(t *testing.T) {
	w := NewWorld(1, nil)
	c := newClock(w, ClockConfig{})
	o := newOracle(Durability{Kind: "window", WindowMs: 1000}, false)
	c.onStep = func(fromNs, toNs int64) { o.Stalled(seam.Millis(fromNs), seam.Millis(toNs)) }
	w.RunUntil(int64(time.Second))
	exec(o, 1.0, okReply, "SET", "a", "1") // the clock reads ms(1.0) now
	w.RunUntil(int64(1100 * time.Millisecond))
	c.Step(2 * time.Second)
	o.Crashed(seam.Millis(c.Now())) // 2.1 s after the write by the clock, 0.1 s in fact
	o.Recovered(testKeys, probeOf("", ""), seam.Millis(c.Now())+1)
	if len(o.Failures) > 0 {
		t.Fatalf("a write lost 0.1 s after its acknowledgement, across a clock step, was flagged: %v", o.Failures)
	}
	// Without the step the same 2.1 s is a real second and more: flagged.
	o = newOracle(Durability{Kind: "window", WindowMs: 1000}, false)
	exec(o, 1.0, okReply, "SET", "a", "1")
	o.Crashed(ms(3.1))
	o.Recovered(testKeys, probeOf("", ""), ms(3.2))
	if len(o.Failures) == 0 {
		t.Fatal("a write acknowledged 2.1 s before the crash and lost passed")
	}
}
