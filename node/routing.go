package node

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
)

// Routing in cluster mode (docs/cluster.md). Every reply a node gives a
// request it does not serve is composed here, in Redis Cluster's words:
//
//   - -MOVED <slot> <host:port>: this node is not the leader of the group
//     serving the slot (Options.Redirect), or the slot is owned by another
//     group (the gate's SlotRedirect): the address is that group's leader
//     as this node last saw it.
//   - -ASK <slot> <host:port>: the key is not here and the slot is being
//     moved to another group; the client retries once at that group's
//     leader after ASKING. A request sent after ASKING to a node that does
//     not lead the importing group is passed on with -ASK, not -MOVED (a
//     MOVED would make the client drop ASKING and bounce back).
//   - -TRYAGAIN: no leader is known yet, or this node's replicas have not
//     all applied a slot move (the table still points at the refusing
//     group), or a key is locked while it is copied.
//   - -READONLY: a write without keys (FLUSHALL, FUNCTION LOAD) sent to a
//     non-leader, as Redis's replicas refuse writes. An ACL change sent to
//     a node that does not lead group 1, the ACL's home, is the exception:
//     -MOVED to that leader with a slot group 1 serves, so that a cluster
//     client follows it there (the slot does live there).
//   - -CROSSSLOT: keys in several slots (decided before anything runs,
//     session.go and multi.go).
//
// The slot table maps every slot to the group this node sends its keys
// to, rebuilt from every local replica's OnSlotsChanged: a group owning
// the slot and not migrating it, else the migrating owner (which answers
// -ASK for keys already moved), else the importing group. The gate inside
// each replica has the last word; the table is only where a request is
// tried first.

// Redis Cluster's replies for requests a node does not serve.
const (
	errTryAgain = "TRYAGAIN no leader for this replica group yet (election in progress); retry"
	errReadOnly = "READONLY You can't write against a read only replica."
)

// slotTable is the group (1-based) each slot's keys go to (route) and
// the group importing it, where a request sent after ASKING goes
// (importing); 0: none.
type slotTable struct {
	route, importing [cluster.SlotCount]uint16
}

// groupOf is the group this node sends slot's keys to (1 when no local
// replica claims the slot yet: its gate then redirects).
func (n *Node) groupOf(slot int) uint64 {
	if t := n.table.Load(); t != nil && t.route[slot] != 0 {
		return uint64(t.route[slot])
	}
	return 1
}

// askingGroupOf is the group a request sent after ASKING goes to: the
// one importing slot (an -ASK names its leader), else as groupOf.
func (n *Node) askingGroupOf(slot int) uint64 {
	if t := n.table.Load(); t != nil && t.importing[slot] != 0 {
		return uint64(t.importing[slot])
	}
	return n.groupOf(slot)
}

// slotsChanged is group g's OnSlotsChanged: the node's table follows. It
// runs inside the group's Exclusive.
func (n *Node) slotsChanged(g uint64, si cluster.SlotInfo) {
	si.Owned = slices.Clone(si.Owned)
	si.Migrating = slices.Clone(si.Migrating)
	si.Importing = slices.Clone(si.Importing)
	defer n.blockingMoved() // after n.mu is released: clients blocked on a moved slot retry
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group(g).slots = si
	t := new(slotTable)
	// rank of t[s]: 4 owned by a group this node hosts, 3 owned as a
	// peer reported it, 2 owned but migrating, 1 importing. Between the
	// two NODE steps of a move both groups own the slots; the source's
	// migrating state is not gossiped, so a node hosting only the target
	// must trust its own replica (the target owns them from then on), or
	// it would send clients to the source, which sends them back.
	var rank [cluster.SlotCount]uint8
	var migrating [cluster.SlotCount]bool
	for _, gr := range n.groups {
		info := gr.slots
		id := uint16(gr.id)
		own := uint8(3)
		if gr.hosted.Load() {
			own = 4
		}
		claim := func(r cluster.SlotRange, owned bool) {
			for s := max(r.First, 0); s <= r.Last && s < cluster.SlotCount; s++ {
				k := uint8(1)
				if owned {
					k = own
					if migrating[s] {
						k = 2
					}
				}
				if k > rank[s] {
					rank[s], t.route[s] = k, id
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
				t.importing[s] = id
			}
		}
	}
	// A slot no group claims keeps its last route. After a move's last
	// step the source has released the slots, and a node that hosts it
	// may not have heard yet (a ping, up to half a second) that the
	// target owns them: routed to group 1 by default, its clients went to
	// group 1's leader, which still sent them back here as the source's
	// (TestSplitOnline gave up on hundreds of writes after 8 -MOVEDs).
	// Kept on the source, they get -TRYAGAIN from its gate until the
	// target's ownership arrives.
	if old := n.table.Load(); old != nil {
		for s := range t.route {
			if t.route[s] == 0 {
				t.route[s] = old.route[s]
			}
		}
	}
	n.table.Store(t)
}

// slotRedirect is group g's Options.SlotRedirect: -ASK to the leader of
// the group importing slot, or -MOVED to the leader of the group this
// node routes slot to. While that leader is unknown, or the table still
// points back at g itself (this node's replicas have not all applied the
// move yet), the client is told to retry.
func (n *Node) slotRedirect(g uint64, slot int, ask bool, to uint64) string {
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

// groupRedirect is group g's Options.Redirect: a non-leader refusing
// what only the leader serves. CLUSTER RESHARD steps get a -MOVED naming
// a slot of the move; a request sent after ASKING is sent on with -ASK.
func (n *Node) groupRedirect(g uint64, req *cluster.Request, leader uint64) string {
	if leader == 0 || leader == n.id {
		return errTryAgain
	}
	if req.Txn == nil && cluster.IsReshardCommand(req.Argv) {
		addr := n.addrOfID(leader)
		if addr == "" {
			return errTryAgain
		}
		return "MOVED " + strconv.Itoa(cluster.ReshardSlot(req.Argv)) + " " + addr
	}
	if cluster.IsACLWrite(req.Argv) || cluster.IsMetaWrite(req.Argv) {
		// Keyless writes of group 1's own state (the ACL table, the meta
		// record behind CLUSTER ADDNODE/DELNODE on a placed cluster): a
		// follower names the leader, so a client or keel's CLI can follow.
		if addr, slot := n.addrOfID(leader), n.firstSlotOf(g); addr != "" && slot >= 0 {
			return "MOVED " + strconv.Itoa(slot) + " " + addr
		}
	}
	slot, msg := requestSlot(req)
	if msg != "" {
		return msg
	}
	if slot < 0 {
		// No key to route by (FLUSHALL, FUNCTION LOAD): Redis's replicas
		// refuse writes this way.
		return errReadOnly
	}
	addr := n.addrOfID(leader)
	if addr == "" {
		return errTryAgain
	}
	if req.Asking && len(n.groups) > 1 {
		return "ASK " + strconv.Itoa(slot) + " " + addr
	}
	return "MOVED " + strconv.Itoa(slot) + " " + addr
}

// firstSlotOf is the first slot this node routes to group g, -1 if none.
func (n *Node) firstSlotOf(g uint64) int {
	if len(n.groups) == 1 {
		return 0
	}
	if t := n.table.Load(); t != nil {
		for s := range cluster.SlotCount {
			if uint64(t.route[s]) == g {
				return s
			}
		}
	}
	return -1
}

// requestSlot is the slot a request's keys hash to (a transaction's, for
// EXEC), -1 without keys, or the CROSSSLOT error.
func requestSlot(req *cluster.Request) (slot int, errMsg string) {
	if req.Txn != nil {
		return cluster.TxnSlot(req.Txn.Cmds)
	}
	return cluster.CommandSlot(req.Argv)
}

// groupView is what the CLUSTER replies need from a replica.
type groupView struct {
	leader uint64
	voters []uint64
	term   uint64
	down   []uint64
}

// views are every group's views, in group order, each read inside the
// group's Exclusive.
func (c *Session) views() []groupView {
	// The groups there are now: with --groups-max, those a split may
	// still add are nowhere yet.
	groups := c.n.groups[:c.n.groupCount()]
	views := make([]groupView, len(groups))
	for i, gr := range groups {
		v := &views[i]
		if !gr.hosted.Load() {
			// Placement: the peers' reports (placement.go).
			v.leader, v.term, v.voters = gr.leader.Load(), gr.term.Load(), c.n.remoteVoters(gr.id)
			continue
		}
		c.n.rt.Exclusive(c, gr.id, func() {
			if r := gr.replica; r != nil && gr.dead == "" {
				v.leader, v.voters, v.term, v.down = r.Leader(), r.Voters(), r.Term(), r.DownPeers()
			}
		})
	}
	return views
}

// topology is the cluster as this node sees it: a shard per group
// serving the ranges the slot table routes to it (all slots with one
// group).
func (c *Session) topology() cluster.Topology {
	return c.n.topologyOf(c.views())
}

func (n *Node) topologyOf(views []groupView) cluster.Topology {
	t := cluster.Topology{MyID: n.id, Nodes: n.Nodes()}
	table := n.table.Load()
	n.mu.Lock()
	infos := make([]cluster.SlotInfo, len(n.groups))
	for i, gr := range n.groups {
		infos[i] = gr.slots
	}
	n.mu.Unlock()
	for i, v := range views {
		g := uint64(i + 1)
		sh := cluster.Shard{Group: g, Leader: v.leader, Members: v.voters,
			Migrating: infos[i].Migrating, Importing: infos[i].Importing}
		switch {
		case len(n.groups) == 1:
			sh.Ranges = []cluster.SlotRange{{First: 0, Last: cluster.SlotCount - 1}}
		case table != nil:
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
		// Redis's config epoch grows when a slot's master changes; a Raft
		// term grows with every election, so it serves.
		t.Epoch = max(t.Epoch, v.term)
		for _, d := range v.down {
			if !slices.Contains(t.Down, d) {
				t.Down = append(t.Down, d)
			}
		}
	}
	for _, d := range n.silentPeers() {
		if !slices.Contains(t.Down, d) {
			t.Down = append(t.Down, d)
		}
	}
	slices.Sort(t.Down)
	return t
}

// ParsePeers reads the --peers syntax, "id@host:port,...", where each
// address is that node's client port. Ids are positive and distinct, as
// are addresses; the result is sorted by id.
func ParsePeers(spec string) ([]cluster.TopoNode, error) {
	var out []cluster.TopoNode
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idText, addr, ok := strings.Cut(part, "@")
		if !ok {
			return nil, errors.Newf("peer %q: want id@host:port", part)
		}
		id, err := strconv.ParseUint(idText, 10, 64)
		if err != nil || id == 0 {
			return nil, errors.Newf("peer %q: node id must be a positive integer", part)
		}
		host, portText, ok := splitHostPort(addr)
		if !ok || host == "" {
			return nil, errors.Newf("peer %q: want id@host:port", part)
		}
		port, err := strconv.Atoi(portText)
		if err != nil || port < 1 || port+peerPortOffset > 65535 {
			return nil, errors.Newf("peer %q: client port must be 1..%d (node-to-node traffic uses port+%d)",
				part, 65535-peerPortOffset, peerPortOffset)
		}
		for _, p := range out {
			if p.ID == id {
				return nil, errors.Newf("peers: node id %d listed twice", id)
			}
			if p.Host == host && p.Port == port {
				return nil, errors.Newf("peers: address %s listed twice", addr)
			}
		}
		out = append(out, cluster.TopoNode{ID: id, Host: host, Port: port})
	}
	if len(out) == 0 {
		return nil, errors.New("peers: no node listed")
	}
	slices.SortFunc(out, func(a, b cluster.TopoNode) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// peerPortOffset: node-to-node traffic uses the client port + 10000, as
// Redis Cluster's bus does (transport.PeerPortOffset; the node imports no
// network code).
const peerPortOffset = 10000

// splitHostPort is net.SplitHostPort for "host:port" and "[v6]:port".
func splitHostPort(addr string) (host, port string, ok bool) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", false
	}
	host, port = addr[:i], addr[i+1:]
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return "", "", false
		}
		host = host[1 : len(host)-1]
	} else if strings.ContainsAny(host, "[]:") {
		return "", "", false
	}
	return host, port, port != ""
}
