package node

import (
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"github.com/keel-db/keel/cluster"
)

// Peer liveness, so that every node's CLUSTER NODES, not only the
// leader's, flags a node that stopped answering. A follower hears only
// its leader (Raft's followers do not talk to each other), so with
// Config.PeerPings each node sends every peer in its address book a
// one-byte ping every pingEveryTicks of group 1, and counts any message
// from a peer, ping or Raft, as a sign of life. A peer silent for
// peerSilentMax is reported down (NODES: fail, disconnected; SLOTS and
// SHARDS leave it out as a replica), as the leader already reports the
// peers Raft has not heard from. The simulator leaves pings off: its
// checks do not read the flags, and its traces stay as they were.

const (
	// peerPingTag is a ping: one byte that is no replica's message kind
	// and no group frame.
	peerPingTag = 0xC9
	// pingEveryTicks: 500 ms at the runtime's 10 ticks a second.
	pingEveryTicks = 5
	// peerSilentMax: four pings missed. Redis's cluster-node-timeout is
	// 15 s; keel's leader reports a peer after an election timeout.
	peerSilentMax = 2 * time.Second
)

var pingFrame = []byte{peerPingTag}

// Second-hand liveness, with placement: who is dead is the meta leader's
// decision (moves.go, markDead), and its own silence alone would let a
// leader cut off from one node (but not from the rest of group 1)
// re-create the replicas of a node that every other node still hears.
// So with each ping every node sends each node of group 1 (any of them
// may be the next meta leader, which must not start from its own view
// alone) a heard frame: the members it heard from itself within
// peerSilentMax.
// The leader counts a member named in one as heard at that moment
// (vouched); a node is marked dead only when neither the leader nor any
// node the leader hears has heard it for node-dead-after. A report names
// only first-hand hearing, so a stale view does not travel further: a
// node that stopped is vouched for at most peerSilentMax after it did.
const (
	// peerHeardTag is a heard frame: the tag, then a uvarint count and
	// that many uvarint node ids.
	peerHeardTag = 0xCC
	// heardIDsMax bounds a heard frame's list (a record's members).
	heardIDsMax = 4096
)

type liveness struct {
	mu    sync.Mutex
	heard map[uint64]int64 // peer → last message, node clock (ns)
	// vouched: member → the last time a peer's heard frame named it.
	vouched map[uint64]int64
	since   int64 // when the node started counting
}

// notePeer records a message from peer from.
func (n *Node) notePeer(from uint64) {
	if !n.cfg.PeerPings || n.addrOfID(from) == "" {
		return // strangers are not remembered: the map stays bounded
	}
	now := n.clock.Now()
	n.live.mu.Lock()
	if n.live.heard == nil {
		n.live.heard = map[uint64]int64{}
	}
	n.live.heard[from] = now
	n.live.mu.Unlock()
}

// pingPeers sends every other node of the address book a ping.
func (n *Node) pingPeers() {
	frame := n.gossipFrame() // with placement, the sender's view of its groups (placement.go)
	meta := n.metaFrame()    // the meta record once it changed, from group 1's nodes (meta.go)
	for _, p := range n.Nodes() {
		if p.ID != n.id {
			n.rt.Send(p.ID, frame)
			if meta != nil {
				n.rt.Send(p.ID, meta)
			}
		}
	}
	if n.plc.on {
		heard := n.heardFrame()
		for _, id := range n.MetaRecord().Placement().Of(metaGroup) {
			if id != n.id {
				n.rt.Send(id, heard)
			}
		}
	}
}

// heardFrame lists the peers this node heard from within peerSilentMax,
// sorted.
func (n *Node) heardFrame() []byte {
	now := n.clock.Now()
	n.live.mu.Lock()
	ids := make([]uint64, 0, len(n.live.heard))
	for id, at := range n.live.heard {
		if now-at <= int64(peerSilentMax) {
			ids = append(ids, id)
		}
	}
	n.live.mu.Unlock()
	slices.Sort(ids) // map order must not reach a message
	ids = ids[:min(len(ids), heardIDsMax)]
	f := binary.AppendUvarint([]byte{peerHeardTag}, uint64(len(ids)))
	for _, id := range ids {
		f = binary.AppendUvarint(f, id)
	}
	return f
}

// receiveHeard takes a heard frame from peer from: each member it names
// (other than this node) counts as heard now, for markDead. A malformed
// frame is refused whole; one from a node that is not a member of the
// record is ignored.
func (n *Node) receiveHeard(from uint64, body []byte) {
	k, w := binary.Uvarint(body)
	if w <= 0 || k > heardIDsMax {
		n.badFrame(from, "a malformed heard frame")
		return
	}
	body = body[w:]
	ids := make([]uint64, 0, k)
	for range k {
		id, w := binary.Uvarint(body)
		if w <= 0 || id == 0 {
			n.badFrame(from, "a malformed heard frame")
			return
		}
		body = body[w:]
		ids = append(ids, id)
	}
	if len(body) != 0 {
		n.badFrame(from, "a malformed heard frame")
		return
	}
	if !n.plc.on {
		return
	}
	rec := n.MetaRecord()
	if m, ok := rec.Member(from); !ok || m.State == cluster.MemberDead {
		return
	}
	now := n.clock.Now()
	n.live.mu.Lock()
	defer n.live.mu.Unlock()
	if n.live.vouched == nil {
		n.live.vouched = map[uint64]int64{}
	}
	for _, id := range ids {
		if _, ok := rec.Member(id); ok && id != n.id && id != from {
			n.live.vouched[id] = now
		}
	}
}

// silentPeers are the peers of the address book not heard from within
// peerSilentMax (none without pings, or in the node's first
// peerSilentMax), sorted.
func (n *Node) silentPeers() []uint64 {
	if !n.cfg.PeerPings {
		return nil
	}
	now := n.clock.Now()
	n.live.mu.Lock()
	defer n.live.mu.Unlock()
	if n.live.since == 0 {
		n.live.since = now
	}
	var out []uint64
	for _, p := range n.Nodes() {
		if p.ID == n.id {
			continue
		}
		last := max(n.live.heard[p.ID], n.live.since)
		if now-last > int64(peerSilentMax) {
			out = append(out, p.ID)
		}
	}
	slices.Sort(out)
	return out
}
