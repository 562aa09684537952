package scenarios

import (
	"bytes"
	"os"
	"strings"
	"testing"

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
