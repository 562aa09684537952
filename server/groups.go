package server

import (
	"encoding/binary"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
)

// Sharding across replica groups (docs/cluster.md, "Sharding"). With
// --groups G > 1 every node hosts one replica of each of G groups, all
// with the same voters (every node of --peers) and Raft ids (the node
// ids); group g starts owning cluster.SplitSlots(G)[g-1] and slots move
// between groups through the groups' own logs (CLUSTER RESHARD, driven by
// `keel cluster reshard`). This file is the node's side of it:
//
//   - Peer messages carry their group: a frame tag and the group id as a
//     uvarint before the replica's bytes; receive hands each to its
//     group's inbox, and each group has its own stepPeers goroutine.
//   - The slot table maps every slot to the group this node sends its
//     keys to, rebuilt from every local replica's OnSlotsChanged: a group
//     owning the slot and not migrating it, else the migrating owner
//     (which answers -ASK for keys already moved), else the importing
//     group. The gate inside each replica has the last word; the table is
//     only where a request is tried first.
//   - Each group's leader, as last seen after a tick or a batch of peer
//     messages, formats redirects and picks the groups that node-wide
//     commands (DBSIZE, FLUSHALL, ...) run on: those this node leads, as
//     each Redis Cluster master answers for its own slots.
//   - Leader spreading: group g prefers node ids[(g-1) % n]; its leader
//     hands leadership over when that node is up (raft's TransferLeader
//     itself waits for it to catch up), so that every node leads some
//     groups and shares the write work.
//   - Membership (membership.go): --join opens every group's replica
//     joining; CLUSTER ADDNODE/DELNODE change the groups the receiving
//     node leads, and `keel cluster addnode/delnode` sends them to every
//     group's leader. The address book keeps a node while any group
//     lists it (confChanged).
//
// With one group (the default) none of this runs: messages are not
// framed, there is no slot gating and the node behaves as before.

const (
	// GroupsMax bounds --groups: each group is a Raft group on every node
	// (a ticker, a stepper, a log and its fsyncs), so more than a few
	// dozen only costs.
	GroupsMax = 64
	// peerFrameGroupTag starts every framed peer message; a node started
	// with another --groups sends something else, which is refused.
	peerFrameGroupTag = 0xC7
	// spreadCheckTicks is how often (in ticks) a group's leader checks
	// whether its preferred node should lead instead. Not a multiple of
	// the election timeout (10 ticks): Raft clears every peer's
	// RecentActive at that period, so a check locked to it would always
	// find the preferred node "down".
	spreadCheckTicks = 37
	// spreadUpChecks is how many checks in a row a group's preferred node
	// must be seen up before its leader hands leadership over.
	spreadUpChecks = 2
)

// groupsState is a node's view of its groups (ClusterNode.groups).
type groupsState struct {
	inboxes []chan peerMsg
	// members (under ClusterNode.mu) are each group's voters as this
	// node's replicas applied them: --peers at start, then every applied
	// CLUSTER ADDNODE/DELNODE (confChanged). The address book keeps a
	// node while any group lists it.
	members []map[uint64]bool
	leaders []atomic.Uint64 // each group's leader as last seen, 0 unknown
	// slots (under ClusterNode.mu) is each group's applied slot view,
	// from its replica's OnSlotsChanged; table is the slot → group map
	// built from them, swapped whole so readers need no lock.
	slots []cluster.SlotInfo
	table atomic.Pointer[slotTable]
	// badFrames counts refused peer messages; the first is logged.
	badFrames atomic.Int64
}

// slotTable is the group (1-based) each slot's keys go to (route) and
// the group importing it, where a request sent after ASKING goes
// (importing); 0: none.
type slotTable struct {
	route, importing [cluster.SlotCount]uint16
}

func (n *ClusterNode) initGroups(groups int) {
	n.groups.inboxes = make([]chan peerMsg, groups)
	for i := range n.groups.inboxes {
		n.groups.inboxes[i] = make(chan peerMsg, peerInboxMessagesMax)
	}
	n.inbox = n.groups.inboxes[0]
	n.groups.leaders = make([]atomic.Uint64, groups)
	n.groups.slots = make([]cluster.SlotInfo, groups)
	n.groups.table.Store(nil)
	n.mu.Lock()
	n.groups.members = make([]map[uint64]bool, groups)
	for i := range n.groups.members {
		n.groups.members[i] = map[uint64]bool{}
		for _, node := range n.nodes {
			n.groups.members[i][node.ID] = true
		}
	}
	n.mu.Unlock()
}

// SetGroups makes this node host groups replica groups (--groups); call
// it before GroupOptions and Listen. Every node of the cluster must be
// started with the same count.
func (n *ClusterNode) SetGroups(groups int) error {
	if groups < 1 || groups > GroupsMax {
		return errors.Newf("--groups %d: must be between 1 and %d", groups, GroupsMax)
	}
	n.initGroups(groups)
	return nil
}

// Groups is how many replica groups this node hosts.
func (n *ClusterNode) Groups() int { return len(n.groups.inboxes) }

// GroupOptions makes o this node's replica of group g (1-based): its
// membership as ReplicaOptions, and with several groups the group's id,
// its starting slots (cluster.SplitSlots), the slot gate's redirects and
// group-framed peer messages. With one group it is ReplicaOptions.
func (n *ClusterNode) GroupOptions(o *cluster.Options, g uint64) error {
	groups := n.Groups()
	if g < 1 || g > uint64(groups) {
		return errors.Newf("group %d: this node hosts groups 1..%d", g, groups)
	}
	if err := n.memberOptions(o); err != nil {
		return err
	}
	if groups == 1 {
		return nil
	}
	o.Group = g
	o.Slots = cluster.SplitSlots(groups)[g-1]
	o.Send = func(to uint64, msg []byte) { n.sendGroup(g, to, msg) }
	o.Redirect = func(req *cluster.Request, leader uint64) string { return n.groupRedirect(g, req, leader) }
	o.SlotRedirect = func(req *cluster.Request, slot int, ask bool, to uint64) string {
		return n.slotRedirect(g, slot, ask, to)
	}
	o.OnSlotsChanged = func(si cluster.SlotInfo) { n.slotsChanged(g, si) }
	o.OnConfChange = func(id uint64, added bool, addr string) { n.confChanged(g, id, added, addr) }
	return nil
}

// GroupDir is group g's data directory under a node's dir: dir itself
// with one group (the layout before sharding), dir/group-<g> otherwise.
func GroupDir(dir string, groups int, g uint64) string {
	if groups <= 1 {
		return dir
	}
	return filepath.Join(dir, "group-"+strconv.FormatUint(g, 10))
}

// sendGroup is group g's Options.Send: the message framed with its group.
func (n *ClusterNode) sendGroup(g, to uint64, msg []byte) {
	tr := n.tr.Load()
	if tr == nil {
		return
	}
	framed := make([]byte, 0, len(msg)+1+binary.MaxVarintLen64)
	framed = append(framed, peerFrameGroupTag)
	framed = binary.AppendUvarint(framed, g)
	tr.Send(to, append(framed, msg...))
}

// unframeGroup splits a framed peer message into its group and body.
func unframeGroup(msg []byte) (g uint64, body []byte, ok bool) {
	if len(msg) < 2 || msg[0] != peerFrameGroupTag {
		return 0, nil, false
	}
	g, k := binary.Uvarint(msg[1:])
	if k <= 0 {
		return 0, nil, false
	}
	return g, msg[1+k:], true
}

func (n *ClusterNode) badFrame(from uint64) {
	if n.groups.badFrames.Add(1) == 1 {
		n.logf("dropping a message from node %d without a valid group frame: is every node started with --groups %d?",
			from, n.Groups())
	}
}

// noteLeader records group g's leader as its replica last reported it.
func (n *ClusterNode) noteLeader(g, leader uint64) {
	n.groups.leaders[g-1].Store(leader)
}

// leaderOf is group g's leader as last seen (0: unknown).
func (n *ClusterNode) leaderOf(g uint64) uint64 {
	if g < 1 || g > uint64(len(n.groups.leaders)) {
		return 0
	}
	return n.groups.leaders[g-1].Load()
}

// ledGroups are the groups (ascending) whose leader this node last saw
// itself to be.
func (n *ClusterNode) ledGroups() []uint64 {
	var out []uint64
	for i := range n.groups.leaders {
		if n.groups.leaders[i].Load() == n.id {
			out = append(out, uint64(i+1))
		}
	}
	return out
}

// addrOfID is "host:port" of node id, unbracketed as Redis writes it, or
// "" when unknown.
func (n *ClusterNode) addrOfID(id uint64) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, node := range n.nodes {
		if node.ID == id {
			return node.Host + ":" + strconv.Itoa(node.Port)
		}
	}
	return ""
}

// groupOf is the group this node sends slot's keys to (1 when no local
// replica claims the slot yet: its gate then redirects).
func (n *ClusterNode) groupOf(slot int) uint64 {
	if t := n.groups.table.Load(); t != nil && t.route[slot] != 0 {
		return uint64(t.route[slot])
	}
	return 1
}

// askingGroupOf is the group a request sent after ASKING goes to: the
// one importing slot (an -ASK names its leader), else as groupOf.
func (n *ClusterNode) askingGroupOf(slot int) uint64 {
	if t := n.groups.table.Load(); t != nil && t.importing[slot] != 0 {
		return uint64(t.importing[slot])
	}
	return n.groupOf(slot)
}

// slotsChanged is group g's OnSlotsChanged: the node's table follows. It
// runs under g's shard.
func (n *ClusterNode) slotsChanged(g uint64, si cluster.SlotInfo) {
	si.Owned = slices.Clone(si.Owned)
	si.Migrating = slices.Clone(si.Migrating)
	si.Importing = slices.Clone(si.Importing)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups.slots[g-1] = si
	t := new(slotTable)
	var rank [cluster.SlotCount]uint8 // of t[s]: 3 owned, 2 owned but migrating, 1 importing
	var migrating [cluster.SlotCount]bool
	for i, info := range n.groups.slots {
		group := uint16(i + 1)
		claim := func(r cluster.SlotRange, owned bool) {
			for s := max(r.First, 0); s <= r.Last && s < cluster.SlotCount; s++ {
				k := uint8(1)
				if owned {
					k = 3
					if migrating[s] {
						k = 2
					}
				}
				if k > rank[s] {
					rank[s], t.route[s] = k, group
				}
			}
		}
		clear(migrating[:])
		for _, m := range info.Migrating {
			for s := max(m.First, 0); s <= m.Last && s < cluster.SlotCount; s++ {
				migrating[s] = true
			}
		}
		for _, r := range info.Owned {
			claim(r, true)
		}
		for _, m := range info.Importing {
			claim(m.SlotRange, false)
			for s := max(m.First, 0); s <= m.Last && s < cluster.SlotCount; s++ {
				t.importing[s] = group
			}
		}
	}
	n.groups.table.Store(t)
}

// slotRedirect is group g's Options.SlotRedirect: -ASK to the leader of
// the group importing slot, or -MOVED to the leader of the group this
// node routes slot to. While that leader is unknown, or the table still
// points back at g itself (this node's replicas have not all applied the
// move yet), the client is told to retry.
func (n *ClusterNode) slotRedirect(g uint64, slot int, ask bool, to uint64) string {
	kind, target := "MOVED ", n.groupOf(slot)
	if ask {
		kind, target = "ASK ", to
	}
	if target == g && !ask {
		return "TRYAGAIN slot " + strconv.Itoa(slot) + " is being moved between replica groups; retry"
	}
	leader := n.leaderOf(target)
	addr := ""
	if leader != 0 {
		addr = n.addrOfID(leader)
	}
	if addr == "" {
		return "TRYAGAIN no leader known for the replica group serving slot " + strconv.Itoa(slot) + " (election in progress); retry"
	}
	return kind + strconv.Itoa(slot) + " " + addr
}

// groupRedirect is group g's Options.Redirect (a non-leader refusing what
// only the leader serves): as redirect, and for CLUSTER RESHARD steps a
// -MOVED naming a slot of the move, to g's leader. A request sent after
// ASKING (a client following -ASK to a node that does not lead the
// importing group) is sent on with -ASK, not -MOVED: a -MOVED would make
// the client drop ASKING and go back to the source, which asks again.
func (n *ClusterNode) groupRedirect(g uint64, req *cluster.Request, leader uint64) string {
	reshard := req.Txn == nil && cluster.IsReshardCommand(req.Argv)
	if !reshard && !req.Asking {
		return n.redirect(req, leader)
	}
	if leader == 0 || leader == n.id {
		return errTryAgain
	}
	addr := n.addrOfID(leader)
	if addr == "" {
		return errTryAgain
	}
	if reshard {
		return "MOVED " + strconv.Itoa(cluster.ReshardSlot(req.Argv)) + " " + addr
	}
	slot, msg := requestSlot(req)
	if msg != "" || slot < 0 {
		return n.redirect(req, leader)
	}
	return "ASK " + strconv.Itoa(slot) + " " + addr
}

// preferredLeader is the node group g's leadership is spread to:
// ids[(g-1) % len(ids)] of the group's sorted voters as its replica last
// applied them. Membership changes (CLUSTER ADDNODE/DELNODE, made group
// by group) change n and so the preference: a node added to every group
// takes its share of leaderships, a removed one is never preferred again,
// and while the groups disagree about a node each follows its own voters.
func preferredLeader(g uint64, voters []uint64) uint64 {
	if len(voters) == 0 {
		return 0
	}
	ids := slices.Clone(voters)
	slices.Sort(ids)
	return ids[(g-1)%uint64(len(ids))]
}

// spreadLeadership runs in group g's tick, every spreadCheckTicks, under
// its shard: a leader that is not g's preferred node hands leadership to
// it once that node has been seen up (heard from within an election
// timeout) at spreadUpChecks checks in a row. Raft's transfer itself
// waits for the node to catch up, but drops proposals meanwhile (for up
// to an election timeout, answered -TRYAGAIN), so a node just restarted
// is given a few seconds to catch up first. seen counts the checks.
func (n *ClusterNode) spreadLeadership(g uint64, r *cluster.Replica, seen *int) {
	if n.Groups() == 1 || !r.IsLeader() {
		*seen = 0
		return
	}
	want := preferredLeader(g, r.Voters())
	if want == 0 || want == n.id || slices.Contains(r.DownPeers(), want) {
		*seen = 0
		return
	}
	if *seen++; *seen < spreadUpChecks {
		return
	}
	*seen = 0
	n.logf("group %d: handing leadership to node %d", g, want)
	r.TransferLeadership(want)
}

// groupsTopology is the cluster as this node sees it with several groups:
// a shard per group serving the ranges the slot table routes to it.
func (n *ClusterNode) groupsTopology(views []groupView) cluster.Topology {
	t := cluster.Topology{MyID: n.id, Nodes: n.Nodes()}
	table := n.groups.table.Load()
	n.mu.Lock()
	infos := slices.Clone(n.groups.slots)
	n.mu.Unlock()
	for i, v := range views {
		g := uint64(i + 1)
		sh := cluster.Shard{Group: g, Leader: v.leader, Members: v.voters,
			Migrating: infos[i].Migrating, Importing: infos[i].Importing}
		if table != nil {
			for s := 0; s < cluster.SlotCount; s++ {
				if uint64(table.route[s]) != g {
					continue
				}
				if k := len(sh.Ranges); k > 0 && sh.Ranges[k-1].Last == s-1 {
					sh.Ranges[k-1].Last = s
				} else {
					sh.Ranges = append(sh.Ranges, cluster.SlotRange{First: s, Last: s})
				}
			}
		}
		t.Shards = append(t.Shards, sh)
		t.Epoch = max(t.Epoch, v.term)
		for _, d := range v.down {
			if !slices.Contains(t.Down, d) {
				t.Down = append(t.Down, d)
			}
		}
	}
	slices.Sort(t.Down)
	return t
}
