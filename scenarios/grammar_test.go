package scenarios

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/keel-db/keel/node"
	"github.com/keel-db/keel/sim"
)

// TestRMWWasmMatchesExample keeps the embedded copy of the rmw library
// equal to testdata/functions/rmw.wasm.
func TestRMWWasmMatchesExample(t *testing.T) {
	want, err := os.ReadFile("../testdata/functions/rmw.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, rmwWasm) {
		t.Fatal("scenarios/testdata/rmw.wasm differs from testdata/functions/rmw.wasm: copy it again")
	}
}

// TestGrammarContention: the grammar scenario passes and its requests
// really meet: batches hold requests of several connections on one key,
// and watched EXECs are aborted by writes of their key; far more than
// bank-watch (figures in docs/simulation.md).
func TestGrammarContention(t *testing.T) {
	// For comparison: bank-watch with spread-out think times, as it was
	// before its ThinkAlign.
	spread := RunSeed(Lookup("bank-watch"), 1, func(c *sim.Config) { c.Workload.ThinkAlign = 0 })
	t.Logf("bank-watch seed 1 without ThinkAlign: %s", spread.Contention)
	// And the grammar's knobs off: uniform keys, spread-out think times.
	calm := RunSeed(Lookup("grammar"), 1, func(c *sim.Config) { c.Workload.ThinkAlign = 0; c.Workload.Grammar.Zipf = 0 })
	t.Logf("grammar seed 1 with uniform keys, no ThinkAlign: %s", calm.Contention)
	for _, name := range []string{"bank-watch", "grammar"} {
		out := RunSeed(Lookup(name), 1)
		if len(out.Failures) > 0 {
			t.Fatalf("%s seed 1: %s", name, strings.Join(out.Failures, "\n"))
		}
		c := out.Contention
		t.Logf("%s seed 1: %s; %d ops, %d replies checked", name, c, out.Ops, out.Oracle.Checked)
		if name != "grammar" {
			continue
		}
		if c.SameKeyBatches*20 < c.Batches || c.AbortedExecs*10 < c.WatchedExecs || c.WatchedExecs < 50 {
			t.Errorf("grammar seed 1 has little contention: %s", c)
		}
		if out.Oracle.Checked < 2000 || out.Oracle.Recoveries == 0 {
			t.Errorf("grammar seed 1 checked little: %d replies, %d recoveries", out.Oracle.Checked, out.Oracle.Recoveries)
		}
	}
}

// TestGrammarWatchCheckBites: with EXEC ignoring the connection's WATCH
// (the watch-ignored planted bug's knob), the grammar's one-sided WATCH
// check fails a seed; without it, the seed judges watched EXECs and
// passes.
func TestGrammarWatchCheckBites(t *testing.T) {
	s := Lookup("grammar")
	out := RunSeed(s, 1)
	if len(out.Failures) > 0 || out.Oracle.WatchChecked < 50 {
		t.Fatalf("grammar seed 1: %d watched EXECs judged, failures %v", out.Oracle.WatchChecked, out.Failures)
	}
	caught := false
	for seed := uint64(1); seed <= 3 && !caught; seed++ {
		out := RunSeed(s, seed, func(c *sim.Config) { c.Node.NodeKnobs = &node.TestingKnobs{IgnoreWatch: true} })
		for _, f := range out.Failures {
			if strings.Contains(f, "EXEC ran although its watched key") {
				caught = true
				t.Logf("seed %d: %.200s", seed, f)
				break
			}
		}
	}
	if !caught {
		t.Fatal("EXEC ignoring WATCH was not caught in seeds 1..3")
	}
}
