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

// placement is the node's placement state, fixed at New: whether it is
// on and the bootstrap placement (where the founding replicas are; the
// meta record, meta.go, says where they go next).
type placement struct {
	on    bool // some group is not on every node
	place cluster.Placement
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
			gr.hosted.Store(true)
		}
		return nil
	}
	if cfg.Join {
		// A node joining a placed cluster: the founders are the peers
		// it lists but itself; it hosts nothing until the meta record
		// places replicas on it (moves.go).
		ids = slices.DeleteFunc(ids, func(id uint64) bool { return id == n.id })
	}
	if cfg.Groups*cfg.Replicas < len(ids) {
		return errors.Newf("--groups %d --replicas %d on %d nodes: some node would host no group; use at least %d groups",
			cfg.Groups, cfg.Replicas, len(ids), (len(ids)+cfg.Replicas-1)/cfg.Replicas)
	}
	p, err := cluster.Place(ids, cfg.Groups, cfg.Replicas)
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
	n.plc = placement{on: true, place: p}
	split := cluster.SplitSlots(cfg.Groups)
	// The groups splits may add later (--groups-max) are nowhere yet:
	// no replica, no member, no slot.
	for _, gr := range n.groups[:cfg.Groups] {
		gr.hosted.Store(p.Hosts(gr.id, n.id))
		clear(gr.members)
		for _, id := range p.Of(gr.id) {
			gr.members[id] = true
		}
		if !gr.hosted.Load() {
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
func (n *Node) HostedGroups() []uint64 {
	var out []uint64
	for _, gr := range n.groups {
		if gr.hosted.Load() {
			out = append(out, gr.id)
		}
	}
	return out
}

// Placement is the cluster's placement (every group on every node
// without placement).
func (n *Node) Placement() cluster.Placement {
	if n.plc.on {
		return n.MetaRecord().Placement()
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
	return g >= 1 && g <= uint64(len(n.groups)) && n.groups[g-1].hosted.Load()
}

// firstHosted is the lowest group this node hosts: where keyless
// requests go when it leads none, and whose tick sends the pings (1 when
// it hosts none: placement left it without a replica).
func (n *Node) firstHosted() uint64 {
	for _, gr := range n.groups {
		if gr.hosted.Load() {
			return gr.id
		}
	}
	return 1
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
// index as the sender's replica has them, the ranges it owns, and its
// applied voters and learners (moves.go), all uvarints. Bounded: at most
// GroupsMax views of at most gossipRangesMax ranges and
// gossipMembersMax voters and learners each.
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
	hosted := n.HostedGroups()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, g := range hosted {
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
		for _, ids := range [][]uint64{gr.ownConf.voters, gr.ownConf.learners} {
			ids = ids[:min(len(ids), gossipMembersMax)]
			f = binary.AppendUvarint(f, uint64(len(ids)))
			for _, id := range ids {
				f = binary.AppendUvarint(f, id)
			}
		}
	}
	return f
}

// receiveGossip takes the views of a ping from peer from, a member of
// the meta record, of the groups it is a node of (in their target or
// their configuration as last known): for groups this node does not host, the leader (of
// the highest term, among the view's voters) and the slots (of the
// highest applied index); for every group, the configuration of the
// highest applied index (moves.go). A malformed frame is refused whole.
func (n *Node) receiveGossip(from uint64, body []byte) {
	type view struct {
		g, leader, term, applied uint64
		owned                    []cluster.SlotRange
		voters, learners         []uint64
	}
	var views []view
	bad := func() { n.badFrame(from, "a malformed ping") }
	next := func() (uint64, bool) {
		x, k := binary.Uvarint(body)
		if k <= 0 {
			return 0, false
		}
		body = body[k:]
		return x, true
	}
	for len(body) > 0 {
		var v view
		var nums [5]uint64
		for i := range nums {
			x, ok := next()
			if !ok {
				bad()
				return
			}
			nums[i] = x
		}
		v.g, v.leader, v.term, v.applied = nums[0], nums[1], nums[2], nums[3]
		if nums[4] > gossipRangesMax || len(views) >= len(n.groups) || v.g < 1 || v.g > uint64(len(n.groups)) {
			bad()
			return
		}
		for range nums[4] {
			a, ok1 := next()
			b, ok2 := next()
			if !ok1 || !ok2 || a > b || b >= cluster.SlotCount {
				bad()
				return
			}
			v.owned = append(v.owned, cluster.SlotRange{First: int(a), Last: int(b)})
		}
		for _, ids := range []*[]uint64{&v.voters, &v.learners} {
			k, ok := next()
			if !ok || k > gossipMembersMax {
				bad()
				return
			}
			for range k {
				id, ok := next()
				if !ok || id == 0 {
					bad()
					return
				}
				*ids = append(*ids, id)
			}
			slices.Sort(*ids)
		}
		views = append(views, v)
	}
	if !n.plc.on {
		return
	}
	if _, member := n.MetaRecord().Member(from); !member {
		return // a stranger to the cluster is not heard on its groups
	}
	for _, v := range views {
		gr := n.group(v.g)
		if c := n.confOf(v.g); !slices.Contains(n.targetOf(v.g), from) && !c.lists(from) {
			continue // not a node of the group, as far as this node knows
		}
		if len(v.voters) > 0 {
			n.mu.Lock()
			if !gr.remoteConf.known || v.applied > gr.remoteConf.applied {
				gr.remoteConf = groupConf{applied: v.applied, voters: v.voters, learners: v.learners, known: true}
			}
			n.mu.Unlock()
		}
		if n.hostsGroup(v.g) {
			continue // its own replica knows better
		}
		if v.leader != 0 && len(v.voters) > 0 && !slices.Contains(v.voters, v.leader) {
			continue
		}
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
			if len(v.voters) > 0 {
				clear(gr.members)
				for _, id := range v.voters {
					gr.members[id] = true
				}
			}
		}
		n.mu.Unlock()
		if newer {
			n.slotsChanged(v.g, cluster.SlotInfo{Group: v.g, Owned: v.owned})
		}
	}
}
