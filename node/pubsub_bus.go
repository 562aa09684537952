package node

import (
	"encoding/binary"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/keel-db/keel/cluster"
)

// Pub/sub across the cluster, Redis Cluster's way. A PUBLISH is delivered
// to this node's subscribers, then forwarded over the cluster bus to
// every other node of the address book, which delivers it to its own;
// an SPUBLISH goes to the nodes hosting the replica group that serves
// the channel's slot. Neither goes through a Raft log: a message reaches
// the clients subscribed when it arrives, at most once, and a node that
// is down or cut off misses it, as in Redis. The reply counts this
// node's receivers only, as Redis Cluster's does.
//
// SSUBSCRIBE, SUNSUBSCRIBE and SPUBLISH are keyed by their channels:
// channels of several slots are refused with -CROSSSLOT, and a node that
// does not host the slot's group answers -MOVED to the group's leader,
// while every node hosting it (leader or follower) serves them, as Redis
// 7's replicas serve sharded pub/sub. Keyspace notifications stay on the
// node whose replica raised them (notify.go), as in Redis Cluster.
//
// The bus is mutually authenticated (the transport names the sender); a
// forwarded message is taken only from a node of the address book, is
// at most publishForwardBytesMax, and each sender has a byte budget
// (publishRecvBytesPerSec, a token bucket on the node's clock) past
// which its messages are dropped and counted: a runaway or hostile
// member cannot make this node buffer without bound.

const (
	// peerPublishTag starts a forwarded message: no replica's message
	// kind (0xB1-0xB3), no group frame (0xC7) and no ping (0xC9), nor
	// one bit away from any of them.
	peerPublishTag = 0xCA

	publishKindChannel = 0 // PUBLISH: channel and pattern subscribers
	publishKindShard   = 1 // SPUBLISH: shard channel subscribers

	// publishForwardBytesMax bounds a message forwarded over the bus
	// (channel and payload). A larger PUBLISH in cluster mode is refused
	// before anything is delivered: it could reach only some nodes.
	publishForwardBytesMax = 8 << 20
	// publishRecvBytesPerSec is each sender's budget of forwarded bytes,
	// refilled continuously; publishRecvBurstBytes its bucket's size.
	publishRecvBytesPerSec = 64 << 20
	publishRecvBurstBytes  = 2 * publishForwardBytesMax
)

// busPubsub is the node's share of cluster pub/sub: the senders' budgets
// and the counters INFO shows.
type busPubsub struct {
	mu      sync.Mutex
	budgets map[uint64]*byteBucket // by sender; only members get one

	sent     atomic.Int64 // messages handed to the bus (one per peer)
	received atomic.Int64 // messages delivered from the bus
	dropped  atomic.Int64 // over a sender's budget
	refused  atomic.Int64 // malformed, oversized, from a non-member or for a slot not hosted
}

// byteBucket is a token bucket of bytes.
type byteBucket struct {
	tokens int64
	last   int64 // clock ns of the last refill
}

// take refills the bucket to now and takes size bytes if it holds them.
func (b *byteBucket) take(now, size int64) bool {
	if elapsed := now - b.last; elapsed > 0 {
		// elapsed*rate overflows past ~2.2 min at 64 MiB/s: cap first.
		if elapsed > int64(1e9)*publishRecvBurstBytes/publishRecvBytesPerSec+1e9 {
			b.tokens = publishRecvBurstBytes
		} else {
			b.tokens = min(publishRecvBurstBytes, b.tokens+elapsed*publishRecvBytesPerSec/1e9)
		}
		b.last = now
	}
	if b.tokens < size {
		return false
	}
	b.tokens -= size
	return true
}

// publishFrame is a forwarded message: the tag, the kind, the channel's
// length as a uvarint, the channel, the payload.
func publishFrame(kind byte, channel, msg []byte) []byte {
	f := make([]byte, 0, 2+binary.MaxVarintLen64+len(channel)+len(msg))
	f = append(f, peerPublishTag, kind)
	f = binary.AppendUvarint(f, uint64(len(channel)))
	f = append(f, channel...)
	return append(f, msg...)
}

// publishTooLarge is the error a cluster node answers a publish too large
// to forward, "" when it may go.
func (n *Node) publishTooLarge(channel, msg []byte) string {
	if !n.clustered || len(channel)+len(msg) <= publishForwardBytesMax {
		return ""
	}
	return "ERR message too large to publish across the cluster (" + strconv.Itoa(len(channel)+len(msg)) +
		" bytes of channel and message, at most " + strconv.Itoa(publishForwardBytesMax) + ")"
}

// forwardPublish sends a published message to the other nodes that must
// deliver it: every node for PUBLISH, the nodes hosting group g for
// SPUBLISH. Send never blocks; a peer's full queue drops it.
func (n *Node) forwardPublish(kind byte, g uint64, channel, msg []byte) {
	if !n.clustered {
		return
	}
	var to []uint64
	if kind == publishKindShard {
		to = n.hostsOf(g)
	} else {
		for _, p := range n.Nodes() {
			to = append(to, p.ID)
		}
	}
	var frame []byte
	for _, id := range to {
		if id == n.id {
			continue
		}
		if frame == nil {
			frame = publishFrame(kind, channel, msg)
		}
		n.rt.Send(id, frame)
		n.bus.sent.Add(1)
	}
}

// receivePublish delivers a message another node forwarded. from is the
// sender the transport authenticated.
func (n *Node) receivePublish(from uint64, frame []byte) {
	if n.addrOfID(from) == "" {
		n.bus.refused.Add(1)
		n.badFrame(from, "a forwarded publish from a node that is not a member")
		return
	}
	if len(frame) < 3 || len(frame) > 2+binary.MaxVarintLen64+publishForwardBytesMax { // before parsing
		n.bus.refused.Add(1)
		n.badFrame(from, "a forwarded publish of "+strconv.Itoa(len(frame))+" bytes")
		return
	}
	kind := frame[1]
	size, k := binary.Uvarint(frame[2:])
	if k <= 0 || size > uint64(len(frame)-2-k) || len(frame)-2-k > publishForwardBytesMax ||
		kind != publishKindChannel && kind != publishKindShard {
		n.bus.refused.Add(1)
		n.badFrame(from, "a malformed forwarded publish")
		return
	}
	body := frame[2+k:]
	channel, msg := body[:size], body[size:]
	if !n.publishBudget(from, int64(len(frame))) {
		if n.bus.dropped.Add(1) == 1 {
			n.logf("dropping forwarded publishes from node %d: over its %d bytes/s budget", from, publishRecvBytesPerSec)
		}
		return
	}
	if kind == publishKindShard {
		// A slot that moved to a group this node does not host: its
		// subscribers here were told so (or will be); nothing to deliver.
		if _, redirect := n.shardGroup(cluster.KeySlot(channel)); redirect != "" {
			n.bus.refused.Add(1)
			return
		}
		n.pubsub.spublish(channel, msg)
	} else {
		n.pubsub.publish(channel, msg)
	}
	n.bus.received.Add(1)
}

// publishBudget takes size bytes from sender from's budget.
func (n *Node) publishBudget(from uint64, size int64) bool {
	now, members := n.clock.Now(), len(n.Nodes())
	n.bus.mu.Lock()
	defer n.bus.mu.Unlock()
	if n.bus.budgets == nil {
		n.bus.budgets = map[uint64]*byteBucket{}
	}
	b := n.bus.budgets[from]
	if b == nil {
		if len(n.bus.budgets) >= members {
			// Members only reach here, but the address book shrinks:
			// forget the budgets of nodes that left.
			clear(n.bus.budgets)
		}
		b = &byteBucket{tokens: publishRecvBurstBytes, last: now}
		n.bus.budgets[from] = b
	}
	return b.take(now, size)
}

// shardChannelsSlot is the slot of the shard channels of an SSUBSCRIBE,
// SUNSUBSCRIBE or SPUBLISH (-1 with none), or the error to answer:
// -CROSSSLOT for several slots, -MOVED (or -TRYAGAIN) when this node does
// not host the slot's group. A single node checks nothing, as Redis
// outside cluster mode does.
func (n *Node) shardChannelsSlot(channels [][]byte) (g uint64, errMsg string) {
	if !n.clustered || len(channels) == 0 {
		return 0, ""
	}
	slot := cluster.KeySlot(channels[0])
	for _, ch := range channels[1:] {
		if cluster.KeySlot(ch) != slot {
			return 0, cluster.CrossSlotMsg
		}
	}
	return n.shardGroup(slot)
}

// shardGroup is the group serving slot if this node hosts it, else the
// redirect to its leader.
func (n *Node) shardGroup(slot int) (g uint64, redirect string) {
	g = n.groupOf(slot)
	if n.hostsGroup(g) {
		return g, ""
	}
	if addr := n.addrOfID(n.leaderOf(g)); addr != "" {
		return 0, "MOVED " + strconv.Itoa(slot) + " " + addr
	}
	return 0, "TRYAGAIN no leader known for the replica group serving slot " + strconv.Itoa(slot) + " (election in progress); retry"
}

// hostsOf are the nodes holding a replica of group g as this node knows
// them (its replica's applied voters), sorted.
func (n *Node) hostsOf(g uint64) []uint64 {
	if !n.hostsGroup(g) {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]uint64, 0, len(n.group(g).members))
	for id := range n.group(g).members {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// BusPublishStats are the counters of cluster pub/sub: messages sent to
// peers, delivered from peers, dropped over a sender's budget, refused.
type BusPublishStats struct{ Sent, Received, Dropped, Refused int64 }

// BusPublishStats reads the counters.
func (n *Node) BusPublishStats() BusPublishStats {
	return BusPublishStats{n.bus.sent.Load(), n.bus.received.Load(), n.bus.dropped.Load(), n.bus.refused.Load()}
}
