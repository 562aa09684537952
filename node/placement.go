package node

import (
	"encoding/binary"
	"slices"
	"strconv"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
)

// Placement (docs/cluster.md, "Placement"). With Config.Replicas below
// the number of founding nodes, each replica group lives on Replicas of
// them, chosen by cluster.Place from the founding nodes, --groups and
// --replicas: every node computes the same placement from its start
// flags, and a node opens, stores and ticks only the groups it hosts.
// Each hosted group's actual voters stay its own Raft configuration.
//
// A node learns what it needs of the groups it does not host (their
// leader, term and owned slots) from its peers: with placement each
// ping (liveness.go) carries the sender's view of every group it hosts,
// and a receiver keeps, per group it does not host, the view of the
// highest term for the leader and of the highest applied index for the
// slots, taken only from a node placed on that group. With that it
// answers CLUSTER SLOTS/SHARDS/NODES for the whole cluster and redirects
// a request for a group it does not host with -MOVED to its leader.

// placement is the node's placement state, fixed at New.
type placement struct {
	on     bool // some group is not on every node
	place  cluster.Placement
	first  uint64 // the lowest group this node hosts (0: none)
	hosted []uint64
}

// initPlacement computes the placement; New calls it once the groups
// exist. With placement off every group is hosted.
func (n *Node) initPlacement() error {
	cfg := n.cfg
	if cfg.Replicas < 0 {
		return errors.Newf("--replicas %d: must be 0 (every node) or more", cfg.Replicas)
	}
	var ids []uint64
	for _, p := range n.nodes {
		ids = append(ids, p.ID)
	}
	on := n.clustered && cfg.Replicas > 0 && cfg.Replicas < len(ids)
	if !on {
		for _, gr := range n.groups {
			gr.hosted = true
			n.plc.hosted = append(n.plc.hosted, gr.id)
		}
		n.plc.first = 1
		return nil
	}
	if cfg.Join {
		return errors.New("--join with --replicas below the number of nodes: adding a node to a cluster with placement is not supported yet")
	}
	if len(n.groups)*cfg.Replicas < len(ids) {
		return errors.Newf("--groups %d --replicas %d on %d nodes: some node would host no group; use at least %d groups",
			len(n.groups), cfg.Replicas, len(ids), (len(ids)+cfg.Replicas-1)/cfg.Replicas)
	}
	p, err := cluster.Place(ids, len(n.groups), cfg.Replicas)
	if err != nil {
		return err
	}
	if err := p.Check(ids, cfg.Replicas); err != nil {
		return err
	}
	cfg.Knobs.placeReplicaTwice(&p)
	if err := n.initMeta(p); err != nil { // meta.go
		return err
	}
	n.plc = placement{on: true, place: p, hosted: p.Hosted(n.id)}
	if len(n.plc.hosted) > 0 {
		n.plc.first = n.plc.hosted[0]
	}
	split := cluster.SplitSlots(len(n.groups))
	for _, gr := range n.groups {
		gr.hosted = p.Hosts(gr.id, n.id)
		clear(gr.members)
		for _, id := range p.Of(gr.id) {
			gr.members[id] = true
		}
		if !gr.hosted {
			// Until a peer reports it, a group's slots are its starting
			// ones (a hosted group's replica reports its own).
			n.slotsChanged(gr.id, cluster.SlotInfo{Group: gr.id, Owned: split[gr.id-1]})
		}
	}
	return nil
}

// Placed reports whether groups live on subsets of the nodes.
func (n *Node) Placed() bool { return n.plc.on }

// Hosts reports whether this node holds a replica of group g (every
// group without placement).
func (n *Node) Hosts(g uint64) bool { return n.hostsGroup(g) }

// HostedGroups are the groups this node holds a replica of, ascending.
func (n *Node) HostedGroups() []uint64 { return slices.Clone(n.plc.hosted) }

// Placement is the cluster's placement (every group on every node
// without placement).
func (n *Node) Placement() cluster.Placement {
	if n.plc.on {
		return n.plc.place
	}
	var ids []uint64
	for _, p := range n.Nodes() {
		ids = append(ids, p.ID)
	}
	if len(ids) == 0 {
		ids = []uint64{n.id}
	}
	p, _ := cluster.Place(ids, len(n.groups), 0)
	return p
}

// hostsGroup reports whether this node holds a replica of group g.
func (n *Node) hostsGroup(g uint64) bool {
	return g >= 1 && g <= uint64(len(n.groups)) && n.groups[g-1].hosted
}

// firstHosted is the lowest group this node hosts: where keyless
// requests go when it leads none, and whose tick sends the pings.
func (n *Node) firstHosted() uint64 {
	if n.plc.first == 0 {
		return 1
	}
	return n.plc.first
}

// placementRefuses is the error for what placement does not support yet
// (what: the command), "" without placement. ACL changes live in group
// 1's log, which only the nodes hosting it would apply; membership
// changes would move replicas, which needs the rebalancing this
// placement does not do.
func (n *Node) placementRefuses(what string) string {
	if !n.plc.on {
		return ""
	}
	return "ERR " + what + " is not supported yet on a cluster whose groups are placed on subsets of the nodes (--replicas below the number of nodes)"
}

// remoteView is what this node knows of a group it does not host, from
// its peers' pings (under Node.mu; the leader is also in group.leader).
type remoteView struct {
	term, applied uint64
}

// notHostedRedirect answers a request routed to group g, which this node
// does not host: -MOVED to its leader, or -TRYAGAIN while none is known.
func (n *Node) notHostedRedirect(g uint64, req *cluster.Request) string {
	slot, msg := requestSlot(req)
	if req.Txn == nil && cluster.IsReshardCommand(req.Argv) {
		slot, msg = cluster.ReshardSlot(req.Argv), "" // a slot of the move, as groupRedirect names
	}
	if msg != "" {
		return msg
	}
	if slot < 0 {
		slot = max(n.firstSlotOf(g), 0)
	}
	leader := n.leaderOf(g)
	addr := ""
	if leader != 0 && leader != n.id {
		addr = n.addrOfID(leader)
	}
	if addr == "" {
		return "TRYAGAIN no leader known for the replica group serving slot " + strconv.Itoa(slot) + " (this node does not host it); retry"
	}
	kind := "MOVED "
	if req.Asking {
		kind = "ASK "
	}
	return kind + strconv.Itoa(slot) + " " + addr
}

// Gossip: with placement, a ping is peerPingTag followed by a view of
// each group the sender hosts: the group, its leader, term and applied
// index as the sender's replica has them, and the ranges it owns, all
// uvarints. Bounded: at most GroupsMax views of at most
// gossipRangesMax ranges.
const gossipRangesMax = 1024

// gossipFrame is this node's ping: the bare tag without placement.
// Called from the first hosted group's tick: the other groups' views
// are read without their Exclusive, from what afterCall and
// OnSlotsChanged recorded.
func (n *Node) gossipFrame() []byte {
	if !n.plc.on {
		return pingFrame
	}
	f := []byte{peerPingTag}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, g := range n.plc.hosted {
		gr := n.group(g)
		f = binary.AppendUvarint(f, g)
		f = binary.AppendUvarint(f, gr.leader.Load())
		f = binary.AppendUvarint(f, gr.term.Load())
		f = binary.AppendUvarint(f, gr.applied.Load())
		owned := gr.slots.Owned
		if len(owned) > gossipRangesMax {
			owned = owned[:gossipRangesMax]
		}
		f = binary.AppendUvarint(f, uint64(len(owned)))
		for _, r := range owned {
			f = binary.AppendUvarint(f, uint64(r.First))
			f = binary.AppendUvarint(f, uint64(r.Last))
		}
	}
	return f
}

// receiveGossip takes the views of a ping from peer from: only those of
// groups this node does not host and from is placed on; a malformed
// frame is refused whole.
func (n *Node) receiveGossip(from uint64, body []byte) {
	type view struct {
		g, leader, term, applied uint64
		owned                    []cluster.SlotRange
	}
	var views []view
	for len(body) > 0 {
		var v view
		var nums [5]uint64
		for i := range nums {
			x, k := binary.Uvarint(body)
			if k <= 0 {
				n.badFrame(from, "a malformed ping")
				return
			}
			nums[i], body = x, body[k:]
		}
		v.g, v.leader, v.term, v.applied = nums[0], nums[1], nums[2], nums[3]
		if nums[4] > gossipRangesMax || len(views) >= len(n.groups) || v.g < 1 || v.g > uint64(len(n.groups)) {
			n.badFrame(from, "a malformed ping")
			return
		}
		for range nums[4] {
			a, k := binary.Uvarint(body)
			if k <= 0 {
				n.badFrame(from, "a malformed ping")
				return
			}
			b, k2 := binary.Uvarint(body[k:])
			if k2 <= 0 || a > b || b >= cluster.SlotCount {
				n.badFrame(from, "a malformed ping")
				return
			}
			body = body[k+k2:]
			v.owned = append(v.owned, cluster.SlotRange{First: int(a), Last: int(b)})
		}
		views = append(views, v)
	}
	if !n.plc.on {
		return
	}
	for _, v := range views {
		if n.hostsGroup(v.g) || !n.plc.place.Hosts(v.g, from) {
			continue // its own replica knows better; a stranger to g is not heard on it
		}
		if v.leader != 0 && !n.plc.place.Hosts(v.g, v.leader) {
			continue
		}
		gr := n.group(v.g)
		n.mu.Lock()
		if v.term > gr.remote.term || v.term == gr.remote.term && v.leader != 0 {
			gr.remote.term = v.term
			gr.leader.Store(v.leader)
			gr.term.Store(v.term)
		}
		newer := v.applied > gr.remote.applied
		if newer {
			gr.remote.applied = v.applied
			// Rebuild the slot table only for a change: the views
			// arrive twice a second from each of the group's nodes.
			newer = !slices.Equal(gr.slots.Owned, v.owned) || len(gr.slots.Migrating)+len(gr.slots.Importing) > 0
		}
		n.mu.Unlock()
		if newer {
			n.slotsChanged(v.g, cluster.SlotInfo{Group: v.g, Owned: v.owned})
		}
	}
}
