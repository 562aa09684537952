package scenarios

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/keel-db/keel/sim"
)

func TestTransferWasmMatchesExample(t *testing.T) {
	want, err := os.ReadFile("../testdata/functions/transfer.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(transferWasm, want) {
		t.Fatal("scenarios/testdata/transfer.wasm differs from testdata/functions/transfer.wasm: copy it again")
	}
}

// TestFCallTransfer runs the transfer workload through FCALL under crashes
// and checks that it did what it claims: transfers succeeded and were
// refused, reads covered every account, the node crashed and recovered,
// and every invariant (oracle, conservation, linearizability) held.
func TestFCallTransfer(t *testing.T) {
	seeds := uint64(4)
	if testing.Short() {
		seeds = 2
	}
	s := Lookup("fcall-transfer")
	for seed := uint64(1); seed <= seeds; seed++ {
		out := RunSeed(s, seed)
		var ok, refused, reads int
		for _, op := range out.History {
			switch {
			case op.Kind == "transfer" && !op.Unknown && op.Output.Str == "OK":
				ok++
			case op.Kind == "transfer" && !op.Unknown:
				refused++
			case op.Kind == "mget" && !op.Unknown:
				reads++
			}
		}
		t.Logf("seed %d: ops=%d transfers ok=%d refused=%d full reads=%d recoveries=%d faults=[%s] lin=%s",
			seed, out.Ops, ok, refused, reads, out.Oracle.Recoveries, out.FaultSummary(), out.Linearizability)
		for _, f := range out.Failures {
			t.Errorf("seed %d: %s", seed, f)
		}
		if ok == 0 || refused == 0 || reads == 0 || out.Oracle.Recoveries < 2 {
			t.Errorf("seed %d did not exercise the workload: ok=%d refused=%d reads=%d recoveries=%d", seed, ok, refused, reads, out.Oracle.Recoveries)
		}
		if out.Linearizability != "ok" {
			t.Errorf("seed %d: linearizability %s", seed, out.Linearizability)
		}
	}
}

// TestFCallTransferReplaysExactly: guest code runs inside the world (fuel,
// keel's clock and randomness), so a seed still replays to the same trace.
func TestFCallTransferReplaysExactly(t *testing.T) {
	s := Lookup("fcall-transfer")
	a, b := RunSeed(s, 11), RunSeed(s, 11)
	if a.TraceHash != b.TraceHash || a.Events < 1000 {
		t.Fatalf("seed 11: trace-hash %s then %s (%d events)", a.TraceHash, b.TraceHash, a.Events)
	}
	if c := RunSeed(s, 12); c.TraceHash == a.TraceHash {
		t.Fatalf("seeds 11 and 12 gave the same trace-hash %s", a.TraceHash)
	}
}

// A FUNCTION LOAD that a crash loses before it is durable leaves the
// setup client with no reply: fcall-transfer swarm seed 99040 crashes the
// node at the load's fsync. The setup loads the library again, and the
// recovery probe asks the node which libraries it holds, so the model
// forgets the lost load instead of expecting "already exists". Before,
// every call after it failed with "Function not found".
func TestFCallTransferReloadsALostLibrary(t *testing.T) {
	var tr strings.Builder
	out := RunVariant(Lookup("fcall-transfer"), 99040, sim.Variant{Swarm: true}, func(c *sim.Config) { c.Trace = &tr })
	if len(out.Failures) > 0 {
		t.Fatalf("%d failures, first: %s", out.FailuresTotal, out.Failures[0])
	}
	if !strings.Contains(tr.String(), "setup: the library may not be loaded; loading it again") {
		t.Fatal("the seed no longer loses its first FUNCTION LOAD to a crash")
	}
	if out.Linearizability != "ok" {
		t.Fatalf("linearizability %s", out.Linearizability)
	}
}
