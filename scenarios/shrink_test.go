package scenarios

import (
	"path/filepath"
	"testing"

	"github.com/keel-db/keel/sim"
)

// A planted bug's failing seed shrinks to a case of at most a tenth of its
// faults and operations (or at most two faults: the few a bug needs to
// show) that fails the same check, and the case file
// replays it exactly: one node and a replicated group.
func TestShrinkPlantedBugReplaysExactly(t *testing.T) {
	cases := []struct {
		name string
		seed uint64
	}{{"planted-incrby-lost-update", 2}, {"planted-vote-reject-lost", 4}}
	if !testing.Short() {
		// Through the second pass, in a world with its log scaled down
		// (some 1700 runs, half a minute).
		cases = append(cases, struct {
			name string
			seed uint64
		}{"planted-deleted-key-resurrected", 2})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := Lookup(tc.name)
			var steps []string
			res, err := Shrink(s, tc.seed, sim.Variant{}, ShrinkOptions{Log: func(l string) { steps = append(steps, l) }})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range steps {
				t.Log(l)
			}
			o, f := res.Original, res.Final
			t.Logf("%d runs: faults %d -> %d, ops %d -> %d; %s", res.Runs, o.Injected(), f.Injected(), len(o.SentOps), len(f.SentOps), f.Failures[0])
			if res.Check != sim.FailureCheck(o.Failures[0]) || !failsCheck(f, res.Check) {
				t.Fatalf("the shrunk run fails %v, not the seed's check %s", f.Failures, res.Check)
			}
			// (A bug that needs a crash to show keeps it: a tenth of a
			// seed's two faults is none.)
			if f.Injected() > max(o.Injected()/10, 2) || len(f.SentOps)*10 > len(o.SentOps) {
				t.Errorf("shrunk to faults %d of %d, ops %d of %d: more than a tenth", f.Injected(), o.Injected(), len(f.SentOps), len(o.SentOps))
			}
			path := filepath.Join(t.TempDir(), "x.case.json")
			if err := WriteCase(path, res.Case(s)); err != nil {
				t.Fatal(err)
			}
			c, cs, err := ReadCase(path)
			if err != nil || cs != s {
				t.Fatalf("read case: %v (scenario %v)", err, cs)
			}
			again := c.Run()
			if again.TraceHash != c.TraceHash || again.TraceHash != f.TraceHash {
				t.Fatalf("the case replays to trace-hash %s, recorded %s", again.TraceHash, c.TraceHash)
			}
			if !failsCheck(again, c.Check) || c.OriginalOps != len(o.SentOps) || c.Ops != len(f.SentOps) {
				t.Fatalf("the case's replay: %v; case %+v", again.Failures, c)
			}
		})
	}
}

// A passing seed has nothing to shrink; a case naming an unknown scenario
// is refused.
func TestShrinkRefuses(t *testing.T) {
	if _, err := Shrink(Lookup("baseline"), 1, sim.Variant{}, ShrinkOptions{}); err == nil {
		t.Fatal("shrinking a passing seed: no error")
	}
	path := filepath.Join(t.TempDir(), "bad.json")
	if err := WriteCase(path, Case{Scenario: "no-such-scenario", Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadCase(path); err == nil {
		t.Fatal("a case naming an unknown scenario was read")
	}
}
