package scenarios

import (
	"bytes"
	crand "crypto/rand"
	"strings"
	"testing"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// The same seed replays to the same trace, byte for byte; different seeds
// give different traces.
func TestSameSeedSameTrace(t *testing.T) {
	names := []string{"crash-restart", "torn-writes", "slow-disk"}
	if testing.Short() {
		names = names[:1]
	}
	for _, name := range names {
		s := Lookup(name)
		var t1, t2 bytes.Buffer
		a := RunSeed(s, 11, func(c *sim.Config) { c.Trace = &t1 })
		b := RunSeed(s, 11, func(c *sim.Config) { c.Trace = &t2 })
		if a.TraceHash != b.TraceHash {
			t.Fatalf("%s seed 11: trace-hash %s then %s", name, a.TraceHash, b.TraceHash)
		}
		if !bytes.Equal(t1.Bytes(), t2.Bytes()) {
			t.Fatalf("%s seed 11: same hash, different trace bytes", name)
		}
		if t1.Len() == 0 || a.Events < 1000 {
			t.Fatalf("%s seed 11: trace too small (%d bytes, %d events)", name, t1.Len(), a.Events)
		}
		// A run without a trace writer hashes the same lines.
		if c := RunSeed(s, 11); c.TraceHash != a.TraceHash {
			t.Fatalf("%s: tracing to a writer changed the run: %s vs %s", name, c.TraceHash, a.TraceHash)
		}
		d := RunSeed(s, 12)
		if d.TraceHash == a.TraceHash {
			t.Fatalf("%s: seeds 11 and 12 gave the same trace-hash %s", name, a.TraceHash)
		}
	}
}

// Two worlds at once in one process would share crypto/rand.Reader: the
// second must refuse loudly rather than silently break replay.
func TestTwoWorldsAtOnceRefused(t *testing.T) {
	s := Lookup("baseline")
	cfg := s.Config(1)
	cfg.Duration = 10_000_000 // 10ms
	panicked := ""
	cfg.Schedule = func(r *sim.Run) {
		r.At(0, func() {
			defer func() {
				if p := recover(); p != nil {
					panicked = p.(string)
				}
			}()
			sim.Execute(s.Config(2))
		})
	}
	orig := crand.Reader
	sim.Execute(cfg)
	if !strings.Contains(panicked, "two simulated worlds") {
		t.Fatalf("nested world: panic %q, want a refusal", panicked)
	}
	if crand.Reader != orig {
		t.Fatal("crypto/rand.Reader not restored after the run")
	}
}

// A deliberately broken build, acknowledging writes before fsync under
// appendfsync always, is caught by a small sweep: the proof that a green
// sweep means something.
func TestSweepCatchesAckBeforeFsync(t *testing.T) {
	s := Lookup("crash-restart")
	caught, ran := 0, 0
	for seed := uint64(1); seed <= 6; seed++ {
		if policyFor(seed) != cluster.FsyncAlways {
			continue
		}
		ran++
		out := RunSeed(s, seed, func(c *sim.Config) {
			c.Node.Knobs = &cluster.TestingKnobs{AckBeforeFsync: true}
		})
		if !out.Passed() {
			caught++
			t.Logf("seed %d caught: %.200s", seed, out.Failures[0])
		}
	}
	if caught == 0 {
		t.Fatalf("no seed out of %d caught a build that acknowledges before fsync", ran)
	}
	// And the same seeds pass without the planted bug (so the failure is the bug's).
	for seed := uint64(1); seed <= 2; seed++ {
		if out := RunSeed(s, seed); !out.Passed() {
			t.Fatalf("seed %d fails without the planted bug: %s", seed, out.Failures[0])
		}
	}
}
