package node

import (
	"slices"
	"sync"
	"time"
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

type liveness struct {
	mu    sync.Mutex
	heard map[uint64]int64 // peer → last message, node clock (ns)
	since int64            // when the node started counting
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
