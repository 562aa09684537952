package sim

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// A Variant changes a seed's run without changing its seed: which of its
// faults happen, which of its client operations are sent, how long its
// workload runs, which fault kinds are on. The zero Variant is the seed's
// own run, event for event. Shrinking (keel sim shrink) searches for the
// smallest variant that still fails the same check; exploration (keel sim
// explore) mutates the variants of runs that reached something new. A
// variant is data (a case file holds one), and a run with it is as
// deterministic as the seed's own: same seed, same variant, same binary,
// same trace.
//
// Faults are numbered as they come, each by its source, so that leaving
// one out moves as few of the others as possible:
//
//   - "s<k>": the k-th fault action a schedule took (a power loss, a crash
//     point armed, a pause, a clock step, a partition, disk faults or a
//     full disk switched on, bit rot, bus attacks switched on);
//   - "d<node>.<k>": the k-th fault node's disk injected into an
//     operation (an fsync or write error, a flipped read, a latency
//     spike);
//   - "a<k>": the k-th crash the run aimed at a marker (aim.go).
//
// Client operations are named by client and sequence number ("c1003#17").
// One left out is still drawn (the client's random stream stays where it
// was) but never sent, as if the client had skipped it.
type Variant struct {
	// LimitFaults: only the faults in KeepFaults happen; any other fault
	// action does nothing (traced as dropped).
	LimitFaults bool     `json:"limit_faults,omitempty"`
	KeepFaults  []string `json:"keep_faults,omitempty"`
	// LimitOps: only the operations in KeepOps are sent.
	LimitOps bool     `json:"limit_ops,omitempty"`
	KeepOps  []string `json:"keep_ops,omitempty"`
	// DropClients are workload clients (by index) that never start.
	DropClients []int `json:"drop_clients,omitempty"`
	// Until, when set and shorter, ends the workload early (faults a
	// schedule takes after it do nothing); the checks after the workload
	// run as always.
	Until time.Duration `json:"until_ns,omitempty"`
	// Quiet switches ambient fault kinds off: "net-loss", "net-dup"
	// (node-to-node messages), "torn" (a power loss keeps no unsynced
	// sector), "spikes" (disk latency spikes configured for the world).
	Quiet []string `json:"quiet,omitempty"`
	// LogScale, when in (0, 1), shrinks the world's log: the snapshot
	// trigger and the WAL segments are that share of the scenario's (at
	// least minLogBytes), so a failure that needs a snapshot or a
	// compaction needs fewer writes to get there (shrinking's one change
	// to the world rather than to what happens in it).
	LogScale float64 `json:"log_scale,omitempty"`
	// SegmentScale, when in (0, 1), shrinks the WAL segments alone (at
	// least minLogBytes), the snapshot trigger kept: a failure that needs
	// a segment the log has moved past (a torn record left behind in it)
	// needs a segment's worth of writes, fewer in smaller segments, while
	// snapshots, which would compact that segment away, come no sooner.
	SegmentScale float64 `json:"segment_scale,omitempty"`
	// Swarm replaces the scenario's fault schedule with a mix of fault
	// kinds and rates drawn from the seed (swarm.go); scenarios applies
	// it, since it knows each world.
	Swarm bool `json:"swarm,omitempty"`
	// Aim crashes nodes at markers with the given probabilities (aim.go).
	Aim map[string]float64 `json:"aim,omitempty"`
	// AimFrom, when set, holds the aims back until that moment of the
	// run: what came before is the run without them (aims draw from
	// their own stream), so exploration can keep a run up to a rare
	// state it reached and aim crashes at what follows.
	AimFrom time.Duration `json:"aim_from_ns,omitempty"`
	// Salt re-seeds the named random streams ("client/3",
	// "scenario/faults", "node/1/disk", ...): exploration's way to draw a
	// schedule or a workload anew while keeping the rest of the run.
	Salt map[string]uint64 `json:"salt,omitempty"`
	// SaltFrom, when set, salts the streams only from that moment of the
	// run: every draw before it is the unsalted one, so the run keeps its
	// prefix (the faults and operations up to a rare state it reached)
	// and varies what follows.
	SaltFrom time.Duration `json:"salt_from_ns,omitempty"`
	// StableDisk gives each node's disk a stream of its own from every
	// start and every power loss on (node.go): one process's disk faults
	// no longer move when an earlier life made fewer draws. A different
	// run from the seed's own; shrinking tries it when leaving faults out
	// re-deals the ones that matter.
	StableDisk bool `json:"stable_disk,omitempty"`
	// StableTears gives each file a power loss may tear a stream of its
	// own, named by the node, the file and the moment of the power loss
	// (node.go), and TearDeal picks one of those deals: whether the file
	// tears, where its size ends, which unsynced sectors survive no longer
	// move when a variant leaves earlier writes or faults out. A different
	// run from the seed's own (other tears); shrinking searches deals for
	// one that fails the same way when leaving writes out re-deals a tear
	// the failure needs.
	StableTears bool   `json:"stable_tears,omitempty"`
	TearDeal    uint64 `json:"tear_deal,omitempty"`
}

// IsZero reports whether v is the seed's own run.
func (v *Variant) IsZero() bool {
	return v == nil || (!v.LimitFaults && !v.LimitOps && len(v.DropClients) == 0 && v.Until == 0 &&
		len(v.Quiet) == 0 && !v.Swarm && len(v.Aim) == 0 && len(v.Salt) == 0 && v.LogScale == 0 && v.SegmentScale == 0 && v.AimFrom == 0 && v.SaltFrom == 0 && !v.StableDisk &&
		!v.StableTears)
}

// Clone returns a deep copy.
func (v Variant) Clone() Variant {
	c := v
	c.KeepFaults = append([]string(nil), v.KeepFaults...)
	c.KeepOps = append([]string(nil), v.KeepOps...)
	c.DropClients = append([]int(nil), v.DropClients...)
	c.Quiet = append([]string(nil), v.Quiet...)
	if v.Aim != nil {
		c.Aim = map[string]float64{}
		for k, p := range v.Aim {
			c.Aim[k] = p
		}
	}
	if v.Salt != nil {
		c.Salt = map[string]uint64{}
		for k, s := range v.Salt {
			c.Salt[k] = s
		}
	}
	return c
}

// String is a one-line description for reports.
func (v *Variant) String() string {
	if v.IsZero() {
		return "as the seed draws it"
	}
	var parts []string
	if v.Swarm {
		parts = append(parts, "swarm")
	}
	if v.StableDisk {
		parts = append(parts, "stable disk")
	}
	if v.StableTears {
		parts = append(parts, "stable tears (deal "+strconv.FormatUint(v.TearDeal, 10)+")")
	}
	if v.Until > 0 {
		parts = append(parts, "until "+v.Until.String())
	}
	if v.LogScale > 0 && v.LogScale < 1 {
		parts = append(parts, "log scaled "+strconv.FormatFloat(v.LogScale, 'g', 3, 64))
	}
	if v.SegmentScale > 0 && v.SegmentScale < 1 {
		parts = append(parts, "segments scaled "+strconv.FormatFloat(v.SegmentScale, 'g', 3, 64))
	}
	if len(v.DropClients) > 0 {
		parts = append(parts, strconv.Itoa(len(v.DropClients))+" clients dropped")
	}
	if v.LimitFaults {
		parts = append(parts, "faults kept "+strconv.Itoa(len(v.KeepFaults)))
	}
	if v.LimitOps {
		parts = append(parts, "ops kept "+strconv.Itoa(len(v.KeepOps)))
	}
	if len(v.Quiet) > 0 {
		parts = append(parts, "quiet "+strings.Join(v.Quiet, ","))
	}
	if len(v.Aim) > 0 {
		parts = append(parts, "aim "+aimString(v.Aim))
		if v.AimFrom > 0 {
			parts = append(parts, "aim from "+v.AimFrom.String())
		}
	}
	if len(v.Salt) > 0 {
		keys := make([]string, 0, len(v.Salt))
		for k := range v.Salt {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts = append(parts, "salted "+strings.Join(keys, ","))
		if v.SaltFrom > 0 {
			parts = append(parts, "salted from "+v.SaltFrom.String())
		}
	}
	return strings.Join(parts, "; ")
}

// aimString renders aim probabilities, sorted by marker.
func aimString(aim map[string]float64) string {
	keys := make([]string, 0, len(aim))
	for k := range aim {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.FormatFloat(aim[k], 'g', 3, 64)
	}
	return strings.Join(parts, ",")
}

func (v *Variant) quiet(kind string) bool {
	for _, q := range v.Quiet {
		if q == kind {
			return true
		}
	}
	return false
}

// FaultEvent is one fault of a run as its log records it.
type FaultEvent struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// At is the virtual time (ns).
	At int64 `json:"at"`
	// Dropped: the variant left it out.
	Dropped bool `json:"dropped,omitempty"`
}

// OpRef names a workload operation: its client's id and sequence number
// (its id, String), and what it sends (Argv, shared with the client: for
// shrinking's choices, OpKeys and OpReadOnly).
type OpRef struct {
	Client, Seq uint64
	Argv        []string `json:"-"`
}

func (o OpRef) String() string {
	return "c" + strconv.FormatUint(o.Client, 10) + "#" + strconv.FormatUint(o.Seq, 10)
}

// variantState is a run's side of its variant: the fault and operation
// counters, what to keep, and the logs.
type variantState struct {
	v          Variant
	keepFaults map[string]bool
	keepOps    map[string]bool
	dropClient map[int]bool
	sched      int
	disk       map[uint64]int
	aimed      int
	faults     []FaultEvent
	ops        []OpRef
}

func newVariantState(v Variant) *variantState {
	s := &variantState{v: v, disk: map[uint64]int{}}
	if v.LimitFaults {
		s.keepFaults = map[string]bool{}
		for _, id := range v.KeepFaults {
			s.keepFaults[id] = true
		}
	}
	if v.LimitOps {
		s.keepOps = map[string]bool{}
		for _, id := range v.KeepOps {
			s.keepOps[id] = true
		}
	}
	s.dropClient = map[int]bool{}
	for _, i := range v.DropClients {
		s.dropClient[i] = true
	}
	return s
}

// admit logs a fault with id and reports whether it happens.
func (r *Run) admit(id, kind string) bool {
	vs := r.vs
	ev := FaultEvent{ID: id, Kind: kind, At: r.W.now}
	if vs.keepFaults != nil && !vs.keepFaults[id] {
		ev.Dropped = true
	}
	if r.W.now > int64(r.cfg.Duration) && vs.v.Until > 0 {
		ev.Dropped = true // after the shortened workload
	}
	vs.faults = append(vs.faults, ev)
	if ev.Dropped {
		r.W.Trace("sim", "fault "+id+" "+kind+" left out (variant)")
		return false
	}
	return true
}

// scheduledFault is the gate of a schedule's fault actions: it numbers
// every call, and reports whether the action happens. applies is false
// for an action that would do nothing anyway (a power loss of a node that
// is down): it keeps its number but is not logged.
func (r *Run) scheduledFault(kind string, applies bool) bool {
	r.vs.sched++
	if !applies {
		return false
	}
	return r.admit("s"+strconv.Itoa(r.vs.sched), kind)
}

// schedID is the id of the schedule's last fault action ("s<k>").
func (r *Run) schedID() string { return "s" + strconv.Itoa(r.vs.sched) }

// faultGate is how the disk, the network and the clocks ask the run
// whether a schedule's fault action happens (nil: it does).
type faultGate func(kind string, applies bool) bool

func (g faultGate) allow(kind string, applies bool) bool {
	if g == nil {
		return applies
	}
	return g(kind, applies)
}

// diskFault is the gate of node's disk faults.
func (r *Run) diskFault(node uint64, kind string) bool {
	r.vs.disk[node]++
	return r.admit("d"+itoa(int64(node))+"."+strconv.Itoa(r.vs.disk[node]), kind)
}

// aimedFault is the gate of crashes aimed at markers.
func (r *Run) aimedFault(kind string) bool {
	r.vs.aimed++
	return r.admit("a"+strconv.Itoa(r.vs.aimed), kind)
}

// sendOp reports whether client c's operation seq is sent, and logs it.
func (r *Run) sendOp(c *Client, seq uint64, argv []string) bool {
	ref := OpRef{Client: c.id, Seq: seq, Argv: argv}
	if r.vs.keepOps != nil && !r.vs.keepOps[ref.String()] {
		return false
	}
	r.vs.ops = append(r.vs.ops, ref)
	return true
}

// FaultLog is every fault of the run so far, dropped ones included.
func (r *Run) FaultLog() []FaultEvent { return r.vs.faults }

// InjectedFaults counts the faults that happened (not left out).
func InjectedFaults(log []FaultEvent) int {
	n := 0
	for _, e := range log {
		if !e.Dropped {
			n++
		}
	}
	return n
}

// varied is cfg with its variant's changes to the world applied: a
// shorter workload and ambient fault kinds switched off.
func (cfg Config) varied() Config {
	v := &cfg.Variant
	if v.Until > 0 && v.Until < cfg.Duration {
		cfg.Duration = v.Until
	}
	if v.quiet("net-loss") {
		cfg.Net.LossProb = 0
	}
	if v.quiet("net-dup") {
		cfg.Net.DupProb = 0
	}
	if v.quiet("torn") {
		cfg.Node.FS.TornProb = 0
	}
	if v.quiet("spikes") {
		cfg.Node.FS.Faults.SpikeProb = 0
	}
	if v.LogScale > 0 && v.LogScale < 1 {
		scale := func(n int64) int64 {
			if n <= 0 {
				return n // the replica's default
			}
			return max(int64(float64(n)*v.LogScale), minLogBytes)
		}
		cfg.Node.SnapshotLogBytes, cfg.Node.SegmentBytes = scale(cfg.Node.SnapshotLogBytes), scale(cfg.Node.SegmentBytes)
	}
	if v.SegmentScale > 0 && v.SegmentScale < 1 && cfg.Node.SegmentBytes > 0 {
		cfg.Node.SegmentBytes = max(int64(float64(cfg.Node.SegmentBytes)*v.SegmentScale), minLogBytes)
	}
	return cfg
}

// minLogBytes is the smallest snapshot trigger and segment LogScale
// gives: a few records.
const minLogBytes = 1 << 10

// readCommands are the workload's commands that write nothing.
var readCommands = map[string]bool{"get": true, "mget": true, "scan": true, "pttl": true, "ttl": true,
	"exists": true, "fcall_ro": true, "watch": true}

// OpKeys are the keys a workload operation names (none for SCAN and
// FUNCTION LOAD).
func OpKeys(argv []string) []string {
	cmds, _, ok := txnParse(argv)
	if !ok {
		cmds = [][]string{argv}
	}
	var keys []string
	for _, c := range cmds {
		if len(c) < 2 {
			continue
		}
		switch strings.ToLower(c[0]) {
		case "scan", "function":
		case "mget", "del", "exists":
			keys = append(keys, c[1:]...)
		case "fcall", "fcall_ro":
			if len(c) > 2 {
				n, err := strconv.Atoi(c[2])
				if err == nil && n >= 0 && 3+n <= len(c) {
					keys = append(keys, c[3:3+n]...)
				}
			}
		default:
			keys = append(keys, c[1])
		}
	}
	return keys
}

// OpReadOnly reports whether a workload operation writes nothing.
func OpReadOnly(argv []string) bool {
	cmds, marker, ok := txnParse(argv)
	if !ok {
		cmds = [][]string{argv}
	}
	if marker == txnObserve {
		return true
	}
	for _, c := range cmds {
		if len(c) == 0 || !readCommands[strings.ToLower(c[0])] {
			return false
		}
	}
	return true
}
