package sim

import (
	"strings"

	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/node"
)

// Evictions in the replicated worlds (NodeConfig.MaxMemory): a group's
// leader logs the keys it evicts (node/evict.go), and the history learns
// each eviction from the node when it is proposed, as a DEL of each key
// by a client of its own whose outcome is unknown: it may take effect
// when its entry commits, or never (the entry lost with its leader). Once
// the proposing node has applied it, it took effect by then (its
// Deadline). A key may therefore vanish from the kv model only through a
// logged eviction; one deleted any other way (a follower evicting on its
// own, a leader deleting without logging) shows as a lost write.

// evictClientBase numbers the history's eviction clients: node id's
// evictions are client evictClientBase+id, apart from the real clients
// (clientIDBase and up).
const evictClientBase = 500

type evictKey struct{ node, epoch, group, batch uint64 }

// evictBook maps each eviction entry proposed to its history operations.
type evictBook struct {
	ops      map[evictKey][]int
	proposed int64
}

// configureMemory gives the node its memory limit and the hook that
// feeds the history.
func (n *Node) configureMemory(cfg *node.Config) {
	if n.cfg.MaxMemory <= 0 {
		return
	}
	cfg.MaxMemory, cfg.MaxMemoryPolicy = n.cfg.MaxMemory, n.cfg.MaxMemoryPolicy
	id, epoch := n.cfg.ID, n.epoch
	cfg.OnEviction = func(g, batch uint64, keys [][]byte, stage node.EvictionStage) {
		n.r.noteEviction(evictKey{id, epoch, g, batch}, keys, stage)
	}
}

func (r *Run) noteEviction(k evictKey, keys [][]byte, stage node.EvictionStage) {
	if r.Group == nil {
		r.noteEvictionSingle(k, keys, stage)
	}
	b := &r.evict
	if b.ops == nil {
		b.ops = map[evictKey][]int{}
	}
	var names []string
	for _, key := range keys {
		names = append(names, string(key))
	}
	what := "n" + itoa(int64(k.node)) + " g" + itoa(int64(k.group)) + " #" + itoa(int64(k.batch)) + " " + strings.Join(names, ",")
	switch stage {
	case node.EvictionProposed:
		b.proposed++
		if r.Group != nil {
			r.W.Trace("evict", "propose "+what)
		}
		for _, key := range names {
			b.ops[k] = append(b.ops[k], len(r.History))
			r.History = append(r.History, checker.Op{Kind: checker.Del, Key: key, Client: evictClientBase + int(k.node),
				Call: r.W.now, Unknown: true})
		}
	case node.EvictionApplied:
		if r.Group != nil {
			r.W.Trace("evict", "applied "+what)
		}
		for _, i := range b.ops[k] {
			if r.History[i].Deadline == 0 {
				r.History[i].Deadline = r.W.now
			}
		}
		delete(b.ops, k)
	case node.EvictionFailed:
		if r.Group != nil {
			r.W.Trace("evict", "failed "+what)
		}
		delete(b.ops, k)
	}
}

// Evictions is how many eviction entries the run's leaders proposed.
func (r *Run) Evictions() int64 { return r.evict.proposed }

// evictedSince are the keys an eviction proposed at or after virtual
// time t may have deleted: the final reads may have seen them before.
func (r *Run) evictedSince(t int64) map[string]bool {
	out := map[string]bool{}
	for _, op := range r.History {
		if op.Client >= evictClientBase && op.Client < clientIDBase && op.Call >= t {
			out[op.Key] = true
		}
	}
	return out
}

// noteEvictionSingle feeds the single-node oracle. The node proposes an
// eviction just before the batch (or tick) it leads, and a single node
// applies it within that same call, first: the oracle applies it to its
// model then, as a write nobody acknowledged (a crash may lose it, as a
// suffix of the log). Eviction scenarios inject no disk faults, so a
// refused eviction entry is a failure.
func (r *Run) noteEvictionSingle(k evictKey, keys [][]byte, stage node.EvictionStage) {
	names := make([]string, len(keys))
	for i, key := range keys {
		names[i] = string(key)
	}
	what := "n" + itoa(int64(k.node)) + " #" + itoa(int64(k.batch)) + " " + strings.Join(names, ",")
	switch stage {
	case node.EvictionProposed:
		r.W.Trace("evict", "propose "+what)
		r.Oracle.Evicted(names, r.Node.nowMs())
	case node.EvictionApplied:
		r.W.Trace("evict", "applied "+what)
	case node.EvictionFailed:
		r.W.Trace("evict", "failed "+what)
		r.Oracle.fail("evict: the eviction entry " + what + " was refused by the log")
	}
}
