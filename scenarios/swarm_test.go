package scenarios

import (
	"bytes"
	"strings"
	"testing"

	"github.com/keel-db/keel/sim"
)

// Each seed draws its own mix: the same every time, different across
// seeds, every kind on in some seeds and off in others, and at least one
// scheduled fault kind in each.
func TestSwarmMixesVaryBySeed(t *testing.T) {
	for _, world := range []string{SwarmNode, SwarmGroup} {
		seen := map[string]bool{}
		on := map[string]int{}
		const seeds = 60
		for seed := uint64(1); seed <= seeds; seed++ {
			m := DrawSwarmMix(seed, world, false)
			if again := DrawSwarmMix(seed, world, false); again.String() != m.String() {
				t.Fatalf("%s seed %d: mix %q then %q", world, seed, m, again)
			}
			seen[m.String()] = true
			scheduled := false
			for _, k := range m.Kinds() {
				on[k]++
				if k != "torn" && k != "spikes" && k != "skew" && k != "net-loss" && k != "net-dup" && !strings.HasPrefix(k, "aim-") {
					scheduled = true
				}
			}
			if !scheduled {
				t.Errorf("%s seed %d: mix %q has no scheduled fault kind", world, seed, m)
			}
		}
		if len(seen) < seeds {
			t.Errorf("%s: %d distinct mixes in %d seeds", world, len(seen), seeds)
		}
		for k, n := range on {
			if n < seeds/5 || n > seeds*4/5 {
				t.Errorf("%s: kind %s on in %d of %d seeds, want about half", world, k, n, seeds)
			}
		}
		t.Logf("%s: %v", world, on)
	}
	for seed := uint64(1); seed <= 60; seed++ {
		for _, k := range DrawSwarmMix(seed, SwarmNode, true).Kinds() {
			if k == "rot" || k == "read-flips" {
				t.Fatalf("seed %d: a bank mix has %s (it may lose acknowledged writes)", seed, k)
			}
		}
	}
}

// A swarm run replaces the schedule, names its mix in the trace and the
// result, and replays to the same trace; a scenario without a swarm world
// runs as it is.
func TestSwarmRunIsNamedAndDeterministic(t *testing.T) {
	s := Lookup("crash-restart")
	var tr bytes.Buffer
	a := RunVariant(s, 2, sim.Variant{Swarm: true}, func(c *sim.Config) { c.Trace = &tr })
	b := RunVariant(s, 2, sim.Variant{Swarm: true})
	plain := RunSeed(s, 2)
	if a.SwarmMix == "" || !strings.Contains(tr.String(), "swarm "+a.SwarmMix) {
		t.Fatalf("swarm mix %q not in the trace", a.SwarmMix)
	}
	if a.TraceHash != b.TraceHash {
		t.Fatalf("swarm seed 2: trace-hash %s then %s", a.TraceHash, b.TraceHash)
	}
	if a.TraceHash == plain.TraceHash || a.FaultSummary() == plain.FaultSummary() {
		t.Fatalf("swarm seed 2 ran the scenario's own schedule (faults %s)", a.FaultSummary())
	}
	if !a.Variant.Swarm {
		t.Fatal("the result does not record its swarm variant")
	}
	for _, name := range []string{"cluster-membership", "cluster-reshard", "cluster-bus-attack"} {
		if w := SwarmWorld(Lookup(name)); w != "" {
			t.Errorf("%s has swarm world %q: its schedule is more than faults", name, w)
		}
		if cfg := SeedConfig(Lookup(name), 1, sim.Variant{Swarm: true}); cfg.SwarmMix != "" {
			t.Errorf("%s: swarm mix %q applied", name, cfg.SwarmMix)
		}
	}
	if SwarmWorld(Lookup("planted-ack-before-fsync")) != SwarmNode {
		t.Error("a planted bug does not take its base scenario's swarm world")
	}
}

// Swarm seeds of the correct program pass (no false alarm from a mix of
// kinds no fixed scenario combines), and a planted bug fails in some.
func TestSwarmPassesAndCatches(t *testing.T) {
	last := uint64(12)
	if testing.Short() {
		last = 6
	}
	for _, name := range []string{"crash-restart", "bank-watch", "disk-full"} {
		for seed := uint64(1); seed <= last; seed++ {
			if o := RunVariant(Lookup(name), seed, sim.Variant{Swarm: true}); !o.Passed() {
				t.Errorf("%s swarm seed %d (%s): %s", name, seed, o.SwarmMix, o.Failures[0])
			}
		}
	}
	for seed := uint64(1); seed <= 3; seed++ {
		if o := RunVariant(Lookup("cluster-leader-crash"), seed, sim.Variant{Swarm: true}); !o.Passed() {
			t.Errorf("cluster-leader-crash swarm seed %d (%s): %s", seed, o.SwarmMix, o.Failures[0])
		}
	}
	if o := RunVariant(Lookup("planted-ack-before-fsync"), 2, sim.Variant{Swarm: true}); o.Passed() {
		t.Errorf("planted-ack-before-fsync swarm seed 2 (%s) passed", o.SwarmMix)
	}
}
