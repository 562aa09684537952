package node

import (
	"math"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/seam"
)

// maxmemory (issue 16; docs/engine.md, "Eviction"; docs/operations.md).
//
// The limit is on what this node's replicas hold: the sum of the engine's
// accounting (engine.DB.UsedBytes) over its groups, a figure every
// replica of a group reaches at the same applied index, unlike the Go
// heap. Before a batch that holds a command Redis flags denyoom (or an
// EXEC queuing one, or an FCALL) runs on a group this node leads, the
// node evicts as Redis's performEvictions does: the engine picks the
// keys under maxmemory-policy (engine.EvictionVictims), and the node
// logs their deletion as one engine.EvictionCommand placed ahead of the
// batch, so every replica, and every replay, deletes exactly those keys.
// A follower never evicts on its own: access metadata is each replica's
// own, so its choice would differ. Victims proposed but not yet applied
// are remembered (inflight) so that the next batch neither picks them
// again nor counts their bytes twice.
//
// The work per batch is bounded by keys, not time (the node reads no
// clock for it): maxmemory-eviction-tenacity scales it the way Redis's
// scales its time limit. If that is not enough, the batch runs anyway
// (Redis's EVICT_RUNNING) and ticks keep evicting (lowering maxmemory
// online is the same path). Only when nothing can be evicted and nothing
// is in flight (noeviction, or no key the policy may take) are the
// memory-needing commands refused with Redis's OOM error, and then
// nothing changes.

// Bounds of eviction.
const (
	// evictKeysPerBatchMax bounds the keys of one eviction entry (the
	// bound at maxmemory-eviction-tenacity 100, Redis's "unlimited").
	evictKeysPerBatchMax = 1024
	// evictKeysPerBatchMin is the fewest keys a batch may pick (Redis
	// checks its time limit every 16 keys, so it evicts at least that).
	evictKeysPerBatchMin = 16
	// evictMicrosPerKey converts Redis's time limit into keys: about
	// what picking and deleting one key costs (engine's
	// BenchmarkEvictOneKey: 2.9 to 6.5 µs with a SET of a new key, on a
	// shared 2-core machine).
	evictMicrosPerKey = 5
	// evictBatchKeyBytesMax bounds the key bytes of one eviction entry.
	evictBatchKeyBytesMax = 256 << 10
	// evictInflightBatchesMax bounds the eviction entries proposed and
	// not yet applied: past it the node waits for them (EVICT_RUNNING).
	evictInflightBatchesMax = 64
	// evictTickKeysMax bounds what one tick evicts when the group is over
	// the limit without a client asking (CONFIG SET maxmemory lowered):
	// a few milliseconds of the group's time per tick.
	evictTickKeysMax = 1024
)

// ErrMsgOOM is Redis's reply to a command refused above maxmemory.
const ErrMsgOOM = "OOM command not allowed when used memory > 'maxmemory'."

// errMsgExecOOM is EXEC's when the block holds a command refused by it.
const errMsgExecOOM = "EXECABORT Transaction discarded because of: " + ErrMsgOOM

// Redis's defaults.
const (
	MaxMemorySamplesDefault   = 5
	EvictionTenacityDefault   = 10
	maxMemorySamplesConfigMax = math.MaxInt32
)

// memConfig is the memory settings, swapped whole by CONFIG SET.
type memConfig struct {
	maxBytes  int64
	policy    engine.Policy
	samples   int
	tenacity  int
	logFactor int
	decayTime int
}

func (m *memConfig) access() engine.AccessConfig {
	return engine.AccessConfig{Policy: m.policy, LFULogFactor: m.logFactor, LFUDecayTime: m.decayTime, MaxMemory: m.maxBytes > 0}
}

// evictor is a group's eviction state on this node. used, evicted and
// oom are read by anyone; the rest only inside Exclusive for the group.
type evictor struct {
	used    atomic.Int64 // the replica's UsedBytes after the last call
	evicted atomic.Int64 // the replica's EvictedKeys after the last call
	// oom: the last check found the node over the limit and nothing to
	// evict (MULTI then refuses to queue, as Redis does).
	oom atomic.Bool

	acc     *memConfig       // the settings the replica's DB follows
	accRep  *cluster.Replica // ... on this replica (a reopen makes another)
	rnd     engine.SplitMix64
	seeded  bool
	batches []evictBatch      // proposed, not yet applied, oldest first
	keys    map[string]uint64 // their keys → batch id
	pending int64             // their estimated bytes
	nextID  uint64
	victims [][]byte
}

type evictBatch struct {
	id    uint64
	keys  []string
	bytes int64
}

func (n *Node) initMemory() {
	c := n.cfg
	m := &memConfig{maxBytes: max(c.MaxMemory, 0), policy: c.MaxMemoryPolicy,
		samples: defaultInt(c.MaxMemorySamples, MaxMemorySamplesDefault), tenacity: defaultInt(c.MaxMemoryEvictionTenacity, EvictionTenacityDefault),
		logFactor: defaultInt(c.LFULogFactor, engine.LFULogFactorDefault), decayTime: defaultInt(c.LFUDecayTime, engine.LFUDecayTimeDefault)}
	n.mem.Store(m)
}

// defaultInt: d when v is 0, 0 when v is negative (a flag can still ask
// for zero), else v.
func defaultInt(v, d int) int {
	switch {
	case v == 0:
		return d
	case v < 0:
		return 0
	}
	return v
}

// MaxMemory is maxmemory as CONFIG SET last left it.
func (n *Node) MaxMemory() int64 { return n.mem.Load().maxBytes }

// usedForEviction is what maxmemory is compared with: the data of every
// group this node hosts, as each replica last accounted it.
func (n *Node) usedForEviction() int64 {
	var total int64
	for _, gr := range n.groups {
		total += gr.ev.used.Load()
	}
	return total
}

// evictedKeys is INFO's evicted_keys: keys this node's replicas evicted
// (applying logged evictions), since start or CONFIG RESETSTAT.
func (n *Node) evictedKeys() int64 {
	var total int64
	for _, gr := range n.groups {
		total += gr.ev.evicted.Load()
	}
	return total - n.evictedBase.Load()
}

// syncAccess makes the group's DB follow the memory settings m.
func (gr *group) syncAccess(m *memConfig) {
	ev := &gr.ev
	if ev.acc == m && ev.accRep == gr.replica {
		return
	}
	if ev.accRep != gr.replica {
		ev.dropInflight() // a reopened replica proposed none of them
	}
	gr.replica.DB().SetAccessConfig(m.access())
	ev.acc, ev.accRep = m, gr.replica
}

// noteMemory is afterCall's part: the figures others read, and the
// in-flight evictions forgotten once this node no longer leads.
func (gr *group) noteMemory() {
	r := gr.replica
	if r == nil {
		return
	}
	db := r.DB()
	gr.ev.used.Store(db.UsedBytes())
	gr.ev.evicted.Store(db.EvictedKeys())
	if len(gr.ev.batches) > 0 && (!r.IsLeader() || gr.ev.accRep != r) {
		// Their replies come as errors (the batch failed), or never
		// (reopened): either way nothing is pending here any more.
		gr.ev.dropInflight()
	}
}

func (ev *evictor) dropInflight() {
	clear(ev.batches)
	ev.batches = ev.batches[:0]
	clear(ev.keys)
	ev.pending = 0
}

// applied is the end of batch id: applied (or failed) on this replica.
func (ev *evictor) applied(id uint64) {
	for i, b := range ev.batches {
		if b.id != id {
			continue
		}
		for _, k := range b.keys {
			if ev.keys[k] == id {
				delete(ev.keys, k)
			}
		}
		ev.pending -= b.bytes
		ev.batches = append(ev.batches[:i], ev.batches[i+1:]...)
		return
	}
}

// EvictionStage is what Config.OnEviction hears of an eviction entry.
type EvictionStage uint8

const (
	// EvictionProposed: the leader picked the keys and proposed the
	// entry; it takes effect when it commits, if it does.
	EvictionProposed EvictionStage = iota
	// EvictionApplied: this replica applied it.
	EvictionApplied
	// EvictionFailed: this node will not see it applied (leadership
	// moved, the log refused it); it may still commit elsewhere.
	EvictionFailed
)

// evictReply receives an eviction entry's reply: the entry was applied
// (or will never be, here). It runs inside the group's Exclusive.
type evictReply struct {
	engine.Discard
	n    *Node
	g    uint64
	ev   *evictor
	id   uint64
	keys [][]byte
}

func (w *evictReply) WriteInt(int64)    { w.end(EvictionApplied) }
func (w *evictReply) WriteError(string) { w.end(EvictionFailed) }

func (w *evictReply) end(stage EvictionStage) {
	w.ev.applied(w.id)
	if f := w.n.cfg.OnEviction; f != nil {
		f(w.g, w.id, w.keys, stage)
	}
}

// memoryGate runs before group gr's batch reqs (inside Exclusive): under
// the limit, or when this node does not decide evictions for the group,
// it returns reqs unchanged; else the batch with an eviction entry ahead
// of it, or, when nothing can be evicted, with its memory-needing
// commands replaced by their refusal.
func (n *Node) memoryGate(gr *group, now int64, reqs []cluster.Request) []cluster.Request {
	if gr.dead != "" || gr.replica == nil {
		return reqs
	}
	m := n.mem.Load()
	gr.syncAccess(m)
	if m.maxBytes == 0 || !gr.replica.IsLeader() {
		return reqs
	}
	if n.usedForEviction()-gr.ev.pending <= m.maxBytes {
		gr.ev.oom.Store(false)
		return reqs // under the limit: no command is looked at
	}
	first := -1
	for i := range reqs {
		if needsMemory(&reqs[i]) {
			first = i
			break
		}
	}
	if first < 0 {
		return reqs
	}
	ev, fail := n.performEvictions(gr, now, m, keysPerBatch(m.tenacity))
	if fail {
		out := make([]cluster.Request, len(reqs))
		copy(out, reqs)
		for i := first; i < len(out); i++ {
			if !needsMemory(&out[i]) {
				continue
			}
			msg := ErrMsgOOM
			if out[i].Txn != nil {
				msg = errMsgExecOOM
			}
			out[i].Argv, out[i].Txn = engine.RefusedCommand(msg), nil
		}
		return out
	}
	if ev == nil {
		return reqs
	}
	out := make([]cluster.Request, 0, len(reqs)+1)
	return append(append(out, *ev), reqs...)
}

// evictOnTick evicts towards the limit without a command asking (the
// limit was lowered, or the last batches could not free enough): one
// bounded entry per tick.
func (n *Node) evictOnTick(gr *group, now int64) {
	if gr.dead != "" || gr.replica == nil {
		return
	}
	m := n.mem.Load()
	gr.syncAccess(m)
	if m.maxBytes == 0 {
		return
	}
	if !gr.replica.IsLeader() {
		if n.cfg.Knobs.followerEvicts() {
			n.evictLocally(gr, now, m) // the planted bug
		}
		return
	}
	if n.usedForEviction()-gr.ev.pending <= m.maxBytes {
		gr.ev.oom.Store(false)
		return
	}
	ev, _ := n.performEvictions(gr, now, m, evictTickKeysMax)
	if ev == nil {
		return
	}
	reqs := []cluster.Request{*ev}
	if gr.replica.Replicated() {
		gr.replica.SubmitAsync(now, reqs, nil)
	} else {
		gr.replica.Submit(now, reqs)
	}
}

// performEvictions is Redis's: over the limit, pick up to keysMax victims
// whose cost covers the excess and return the request logging their
// eviction (nil when none is needed or found). fail is Redis's
// EVICT_FAIL: over the limit with nothing to evict and nothing in flight.
func (n *Node) performEvictions(gr *group, now int64, m *memConfig, keysMax int) (req *cluster.Request, fail bool) {
	ev := &gr.ev
	over := n.usedForEviction() - ev.pending - m.maxBytes
	if over <= 0 {
		ev.oom.Store(false)
		return nil, false
	}
	if m.policy == engine.NoEviction {
		fail = len(ev.batches) == 0
		ev.oom.Store(fail)
		return nil, fail
	}
	if len(ev.batches) >= evictInflightBatchesMax {
		return nil, false // waiting for those: EVICT_RUNNING
	}
	if !ev.seeded {
		// Any seed will do (the choice is logged); one of the node's and
		// group's ids keeps a simulated run reproducible without a draw
		// from Config.Rand (which would shift every later draw).
		ev.rnd.Seed(n.id<<32 ^ gr.id ^ 0x657669637421)
		ev.seeded = true
	}
	if ev.keys == nil {
		ev.keys = map[string]uint64{}
	}
	db := gr.replica.DB()
	victims, freed := db.EvictionVictims(engine.EvictionRequest{
		Policy: m.policy, Samples: m.samples, Rand: &ev.rnd, Now: seam.Millis(now),
		Bytes: over, KeysMax: keysMax,
		Skip: func(key []byte) bool { _, ok := ev.keys[string(key)]; return ok },
	}, ev.victims[:0])
	// Keep the entry within its byte bound (a victim past it waits).
	size := 0
	for i, k := range victims {
		if size += len(k) + 16; size > evictBatchKeyBytesMax && i > 0 {
			victims = victims[:i]
			break
		}
	}
	ev.victims = victims[:0]
	if len(victims) == 0 {
		fail = len(ev.batches) == 0
		ev.oom.Store(fail)
		return nil, fail
	}
	ev.oom.Store(false)
	if n.cfg.Knobs.evictionUnlogged() {
		// The planted bug: the leader deletes its victims itself and
		// logs nothing.
		for _, k := range victims {
			db.Evict(seam.Millis(now), k)
		}
		return nil, false
	}
	ev.nextID++
	b := evictBatch{id: ev.nextID, bytes: freed, keys: make([]string, len(victims))}
	keys := make([][]byte, len(victims))
	for i, k := range victims {
		b.keys[i] = string(k)
		keys[i] = k
		ev.keys[b.keys[i]] = b.id
	}
	ev.batches = append(ev.batches, b)
	ev.pending += freed
	if f := n.cfg.OnEviction; f != nil {
		f(gr.id, b.id, keys, EvictionProposed)
	}
	return &cluster.Request{Argv: engine.EvictionCommand(keys), W: &evictReply{n: n, g: gr.id, ev: ev, id: b.id, keys: keys}}, false
}

// keysPerBatch converts maxmemory-eviction-tenacity into a bound on keys:
// Redis's time limit (evictionTimeLimitUs: 50 µs per step up to 10, then
// 15% more per step, unlimited at 100) at evictMicrosPerKey a key.
func keysPerBatch(tenacity int) int {
	if tenacity >= 100 {
		return evictKeysPerBatchMax
	}
	us := 50.0 * float64(tenacity)
	if tenacity > 10 {
		us = 500 * math.Pow(1.15, float64(tenacity-10))
	}
	return min(max(int(us/evictMicrosPerKey), evictKeysPerBatchMin), evictKeysPerBatchMax)
}

// needsMemory reports a request Redis refuses above maxmemory: a command
// flagged denyoom, an EXEC whose block holds one, an FCALL (keel's
// functions declare no flags; Redis refuses a function without
// no-writes alike).
func needsMemory(req *cluster.Request) bool {
	if req.Txn != nil {
		for _, argv := range req.Txn.Cmds {
			if denyOOM(argv) {
				return true
			}
		}
		return false
	}
	return denyOOM(req.Argv)
}

func denyOOM(argv [][]byte) bool {
	if len(argv) == 0 {
		return false
	}
	if c := engine.Lookup(argv[0]); c != nil {
		return c.Flags&engine.DenyOOM != 0
	}
	return eqFold(argv[0], "fcall")
}

// oomRefusesQueue is Redis's refusal of any command queued in MULTI while
// over the limit with nothing to evict.
func (n *Node) oomRefusesQueue() bool {
	m := n.mem.Load()
	if m.maxBytes == 0 || n.usedForEviction() <= m.maxBytes {
		return false
	}
	if m.policy == engine.NoEviction {
		return true
	}
	for _, gr := range n.groups {
		if gr.ev.oom.Load() {
			return true
		}
	}
	return false
}

// The memory parameters of CONFIG GET/SET.
func init() {
	setMem := func(n *Node, f func(m *memConfig)) {
		m := *n.mem.Load()
		f(&m)
		n.mem.Store(&m)
		for _, gr := range n.groups {
			n.rt.Exclusive(nil, gr.id, func() {
				if gr.replica != nil && gr.dead == "" {
					gr.syncAccess(&m)
				}
			})
		}
	}
	intParam := func(lo int64, get func(m *memConfig) int, set func(m *memConfig, v int)) configParam {
		return configParam{
			get: func(n *Node) string { return strconv.Itoa(get(n.mem.Load())) },
			check: func(v string) bool {
				x, err := strconv.ParseInt(v, 10, 64)
				return err == nil && x >= lo && x <= maxMemorySamplesConfigMax
			},
			set: func(n *Node, v string) {
				x, _ := strconv.Atoi(v)
				setMem(n, func(m *memConfig) { set(m, x) })
			},
			bad: "argument must be between " + strconv.FormatInt(lo, 10) + " and 2147483647 inclusive",
		}
	}
	extraConfig["maxmemory"] = configParam{
		get: func(n *Node) string { return strconv.FormatInt(n.mem.Load().maxBytes, 10) },
		check: func(v string) bool {
			_, ok := parseMemory(strings.ToLower(v))
			return ok
		},
		set: func(n *Node, v string) {
			x, _ := parseMemory(strings.ToLower(v))
			setMem(n, func(m *memConfig) { m.maxBytes = x })
		},
		bad: "argument must be a memory value",
	}
	extraConfig["maxmemory-policy"] = configParam{
		get: func(n *Node) string { return n.mem.Load().policy.String() },
		check: func(v string) bool {
			_, ok := engine.ParsePolicy(v)
			return ok
		},
		set: func(n *Node, v string) {
			p, _ := engine.ParsePolicy(v)
			setMem(n, func(m *memConfig) { m.policy = p })
		},
		bad: "argument(s) must be one of the following: " + engine.PolicyNames,
	}
	extraConfig["maxmemory-samples"] = intParam(1, func(m *memConfig) int { return m.samples }, func(m *memConfig, v int) { m.samples = v })
	tenacity := intParam(0, func(m *memConfig) int { return m.tenacity }, func(m *memConfig, v int) { m.tenacity = v })
	tenacity.check = func(v string) bool {
		x, err := strconv.ParseInt(v, 10, 64)
		return err == nil && x >= 0 && x <= 100
	}
	tenacity.bad = "argument must be between 0 and 100 inclusive"
	extraConfig["maxmemory-eviction-tenacity"] = tenacity
	extraConfig["lfu-log-factor"] = intParam(0, func(m *memConfig) int { return m.logFactor }, func(m *memConfig, v int) { m.logFactor = v })
	extraConfig["lfu-decay-time"] = intParam(0, func(m *memConfig) int { return m.decayTime }, func(m *memConfig, v int) { m.decayTime = v })
}

// ValidMaxMemoryPolicy reports a maxmemory-policy Redis accepts (for the
// server's flags and config file).
func ValidMaxMemoryPolicy(v string) (engine.Policy, bool) { return engine.ParsePolicy(v) }

// evictLocally is what TestingKnobs.FollowerEvicts plants: a follower
// over the limit deletes keys of its own choosing, unlogged.
func (n *Node) evictLocally(gr *group, now int64, m *memConfig) {
	over := n.usedForEviction() - m.maxBytes
	if over <= 0 || m.policy == engine.NoEviction {
		return
	}
	if !gr.ev.seeded {
		gr.ev.rnd.Seed(n.id<<32 ^ gr.id ^ 0x657669637421)
		gr.ev.seeded = true
	}
	db := gr.replica.DB()
	victims, _ := db.EvictionVictims(engine.EvictionRequest{Policy: m.policy, Samples: m.samples, Rand: &gr.ev.rnd,
		Now: seam.Millis(now), Bytes: over, KeysMax: evictTickKeysMax}, nil)
	for _, k := range victims {
		db.Evict(seam.Millis(now), k)
	}
}

// infoMaxMemory is INFO memory's maxmemory lines. heap is used_memory:
// what it counts beyond the data maxmemory is compared with (client
// buffers, the log, snapshots in flight, Go's own) is
// mem_not_counted_for_evict.
func (n *Node) infoMaxMemory(b *strings.Builder, heap uint64) {
	m := n.mem.Load()
	counted := n.usedForEviction()
	kv(b, "used_memory_evict", counted)
	kv(b, "maxmemory", m.maxBytes)
	kv(b, "maxmemory_human", human(uint64(m.maxBytes)))
	kv(b, "maxmemory_policy", m.policy.String())
	kv(b, "maxmemory_samples", m.samples)
	kv(b, "maxmemory_eviction_tenacity", m.tenacity)
	kv(b, "mem_not_counted_for_evict", max(int64(heap)-counted, 0))
}
