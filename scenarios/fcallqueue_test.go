package scenarios

import (
	"bytes"
	"os"
	"testing"

	"github.com/keel-db/keel/sim"
)

func TestCollectionsWasmMatchesExample(t *testing.T) {
	want, err := os.ReadFile("../testdata/functions/collections.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(collectionsWasm, want) {
		t.Fatal("scenarios/testdata/collections.wasm differs from testdata/functions/collections.wasm: copy it again")
	}
}

// TestFCallQueue runs the queue workload through functions under leader
// crashes and partitions and checks that it did what it claims: pushes and
// pops through FCALL were acknowledged, BLPOP waiters got elements, the
// group failed over, and the queue model found the history linearizable.
func TestFCallQueue(t *testing.T) {
	seeds := uint64(3)
	if testing.Short() {
		seeds = 1
	}
	s := Lookup("fcall-queue-crash-partition")
	for seed := uint64(1); seed <= seeds; seed++ {
		var trace bytes.Buffer
		out := RunSeed(s, seed, func(c *sim.Config) { c.Trace = &trace })
		var pushes, pops, blpops int
		for _, op := range out.History {
			switch {
			case op.Unknown:
			case op.Kind == "lpush":
				pushes++
			case op.Kind == "rpop" && op.Output.Str != "":
				pops++
			case op.Kind == "blpop" && op.Output.Str != "":
				blpops++
			}
		}
		calls := bytes.Count(trace.Bytes(), []byte(" FCALL call 1 "))
		t.Logf("seed %d: ops=%d FCALLs=%d pushes=%d pops=%d blpops=%d recoveries=%d faults=[%s] lin=%s",
			seed, out.Ops, calls, pushes, pops, blpops, out.Oracle.Recoveries, out.FaultSummary(), out.Linearizability)
		for _, f := range out.Failures {
			t.Errorf("seed %d: %s", seed, f)
		}
		if pushes < 100 || pops < 50 || blpops == 0 || calls < pushes || out.Oracle.Recoveries < 2 {
			t.Errorf("seed %d did not exercise the workload", seed)
		}
		if out.Linearizability != "ok" {
			t.Errorf("seed %d: linearizability %s", seed, out.Linearizability)
		}
	}
}
