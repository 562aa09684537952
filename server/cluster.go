package server

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	stdnet "net"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/transport"
)

// Cluster mode: this process is one voter of a replicated replica group
// (cluster/group.go) and speaks Redis Cluster to clients, so go-redis's
// ClusterClient and redis-cli -c work unmodified. Today a cluster is one
// group whose voters are every node of --peers, owning all 16384 slots;
// its Raft leader plays Redis's master and the others its replicas.
//
// The pieces, all driven through the shard like everything else that
// touches the replica:
//   - Node-to-node messages travel over the transport package's TCP implementation on
//     each node's client port + 10000. The replica's Send only queues
//     (dropping when a peer's queue is full: Raft retransmits), so it never
//     blocks the replica. A receiving goroutine per peer hands messages to
//     stepPeers, which steps them into the replica in batches.
//   - A non-leader answers what only the leader may serve with Redirect:
//     -MOVED <slot> <leader>, -TRYAGAIN while no leader is known, and
//     -READONLY for keyless writes.
//   - Requests whose keys span slots get -CROSSSLOT before they reach the
//     replica (client.go, multi.go); CLUSTER and READONLY/READWRITE/ASKING
//     are in cluster_cmd.go.

const (
	// peerInboxMessagesMax bounds the peer messages received but not yet
	// stepped; a receiving goroutine that finds it full waits (TCP then
	// pushes back on the sender, whose bounded queue drops).
	peerInboxMessagesMax = 4096
	// stepBatchMessagesMax bounds how many peer messages one turn of the
	// shard steps, so that client batches interleave with a burst.
	stepBatchMessagesMax = 256
)

// Redis Cluster's replies for requests a node does not serve.
const (
	errTryAgain = "TRYAGAIN no leader for this replica group yet (election in progress); retry"
	errReadOnly = "READONLY You can't write against a read only replica."
)

// ClusterNode is this process's membership in its replica group: who it
// is, where every node is, and the transport between them. Build one with
// NewClusterNode, let it fill the replica's options (ReplicaOptions),
// start its transport (Listen) and hand it to New through Config.Cluster;
// the server closes it.
type ClusterNode struct {
	id   uint64
	join bool // not a founding member: added by CLUSTER ADDNODE

	// nodes are the members' client addresses, sorted by id: --peers,
	// then every applied membership change (the replica's OnConfChange,
	// under the shard). mu guards it for readers outside the shard.
	mu    sync.Mutex
	nodes []cluster.TopoNode

	// Sharding (groups.go): the replica groups this node hosts, one
	// replica each, numbered 1..len(inboxes). With one group nothing of
	// the rest is used and the node behaves as before sharding.
	groups groupsState

	tr     atomic.Pointer[transport.TCP]
	inbox  chan peerMsg // group 1's; inboxes[0] is the same channel
	logf   func(string, ...any)
	closed chan struct{}
	once   sync.Once
}

type peerMsg struct {
	from uint64
	data []byte
}

// ParsePeers reads DESIGN.md's --peers syntax, "id@host:port,...", where
// each address is that node's client port. Ids are positive and distinct,
// as are addresses; the result is sorted by id.
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
		host, portText, err := stdnet.SplitHostPort(addr)
		if err != nil || host == "" {
			return nil, errors.Newf("peer %q: want id@host:port", part)
		}
		port, err := strconv.Atoi(portText)
		if err != nil || port < 1 || port+transport.PeerPortOffset > 65535 {
			return nil, errors.Newf("peer %q: client port must be 1..%d (node-to-node traffic uses port+%d)",
				part, 65535-transport.PeerPortOffset, transport.PeerPortOffset)
		}
		for _, n := range out {
			if n.ID == id {
				return nil, errors.Newf("peers: node id %d listed twice", id)
			}
			if n.Host == host && n.Port == port {
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

// NewClusterNode describes node id of the group nodes (as ParsePeers
// returns them); id must be one of them.
func NewClusterNode(id uint64, nodes []cluster.TopoNode) (*ClusterNode, error) {
	if !slices.ContainsFunc(nodes, func(n cluster.TopoNode) bool { return n.ID == id }) {
		return nil, errors.Newf("node id %d is not among the peers", id)
	}
	n := &ClusterNode{
		id:     id,
		nodes:  slices.Clone(nodes),
		logf:   func(string, ...any) {},
		closed: make(chan struct{}),
	}
	n.initGroups(1)
	return n, nil
}

// ID is this node's id.
func (n *ClusterNode) ID() uint64 { return n.id }

// Self is this node's entry of the peers.
func (n *ClusterNode) Self() cluster.TopoNode {
	for _, node := range n.Nodes() {
		if node.ID == n.id {
			return node
		}
	}
	panic("server: cluster node not among its peers")
}

// ReplicaOptions makes o a member of the group: its id, the voters, the
// transport and the redirects. A group keeps its Raft log on disk, so
// persistence must be on. With several groups (SetGroups) use
// GroupOptions instead.
func (n *ClusterNode) ReplicaOptions(o *cluster.Options) error {
	if n.Groups() > 1 {
		return errors.Newf("this node hosts %d replica groups: use GroupOptions for each", n.Groups())
	}
	return n.memberOptions(o)
}

// memberOptions fills what every group's replica shares: id, voters,
// transport, redirects, membership.
func (n *ClusterNode) memberOptions(o *cluster.Options) error {
	if !o.AppendOnly {
		return errors.New("cluster mode needs appendonly yes: a replica group keeps its Raft log on disk")
	}
	o.ID = n.id
	o.Peers = o.Peers[:0]
	for _, node := range n.nodes {
		o.Peers = append(o.Peers, node.ID)
	}
	o.Send = n.send
	o.Redirect = n.redirect
	o.Join = n.join
	o.OnConfChange = func(id uint64, added bool, addr string) { n.confChanged(1, id, added, addr) }
	return nil
}

// SetJoin marks this node as joining an existing cluster (--join): it
// bootstraps nothing and waits for the leader to add it. With several
// groups every group's replica opens with Options.Join and the same
// starting Options.Slots as every node (cluster.SplitSlots(G)[g-1]: the
// state the group's log replays from, so replaying the log or installing
// a snapshot brings the group's real slot state), and waits for that
// group's leader to add it (CLUSTER ADDNODE, sent to every group's
// leader; `keel cluster addnode` does so).
func (n *ClusterNode) SetJoin(join bool) { n.join = join }

// Nodes are the members as this node knows them, sorted by id.
func (n *ClusterNode) Nodes() []cluster.TopoNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.nodes)
}

// confChanged is group g's Options.OnConfChange: it follows an applied
// membership change (replay included). An added node's address (from
// CLUSTER ADDNODE) joins the address book and the transport as soon as
// one group adds it; with several groups a removed node leaves them only
// once no group of this node still lists it as a member (a DELNODE
// applies in each group at its own time, and until the last one the
// groups still counting it must reach it).
func (n *ClusterNode) confChanged(g, id uint64, added bool, addr string) {
	n.mu.Lock()
	if int(g) <= len(n.groups.members) && g >= 1 {
		if added {
			n.groups.members[g-1][id] = true
		} else {
			delete(n.groups.members[g-1], id)
		}
	}
	i := slices.IndexFunc(n.nodes, func(t cluster.TopoNode) bool { return t.ID == id })
	var peerAddr string
	if added {
		host, portText, err := stdnet.SplitHostPort(addr)
		port, perr := strconv.Atoi(portText)
		if err != nil || perr != nil || port < 1 || port+transport.PeerPortOffset > 65535 {
			n.mu.Unlock()
			return // ADDNODE checked it; a bad one only costs the address
		}
		node := cluster.TopoNode{ID: id, Host: host, Port: port}
		if i >= 0 {
			n.nodes[i] = node
		} else {
			n.nodes = append(n.nodes, node)
			slices.SortFunc(n.nodes, func(a, b cluster.TopoNode) int { return cmp.Compare(a.ID, b.ID) })
		}
		peerAddr, _ = transport.PeerAddr(n.addrOf(node))
	} else {
		for _, m := range n.groups.members {
			if m[id] {
				n.mu.Unlock()
				return // another group still has it as a voter
			}
		}
		if i >= 0 && id != n.id {
			n.nodes = slices.Delete(n.nodes, i, i+1)
		}
	}
	n.mu.Unlock()
	if id == n.id {
		return
	}
	if tr := n.tr.Load(); tr != nil {
		tr.SetPeer(id, peerAddr)
	}
}

// Listen starts the node-to-node transport on bind's client port + 10000
// (bind empty: the host this node's peer entry names).
func (n *ClusterNode) Listen(bind string, logf func(string, ...any)) error {
	self := n.Self()
	if bind == "" {
		bind = self.Host
	}
	peers := map[uint64]string{}
	for _, node := range n.nodes {
		if node.ID == n.id {
			continue
		}
		addr, err := transport.PeerAddr(n.addrOf(node))
		if err != nil {
			return err
		}
		peers[node.ID] = addr
	}
	listen := stdnet.JoinHostPort(bind, strconv.Itoa(self.Port+transport.PeerPortOffset))
	if logf != nil {
		n.logf = logf
	}
	tr, err := transport.ListenTCP(transport.TCPConfig{ID: n.id, Listen: listen, Peers: peers, Handler: n.receive, Logf: logf})
	if err != nil {
		return err
	}
	n.tr.Store(tr)
	return nil
}

// Close stops the transport and every goroutine waiting to deliver.
func (n *ClusterNode) Close() error {
	var err error
	n.once.Do(func() {
		close(n.closed)
		if tr := n.tr.Load(); tr != nil {
			err = tr.Close()
		}
	})
	return err
}

func (n *ClusterNode) addrOf(node cluster.TopoNode) string {
	return stdnet.JoinHostPort(node.Host, strconv.Itoa(node.Port))
}

// send is the replica's Options.Send: it queues and never blocks.
func (n *ClusterNode) send(to uint64, msg []byte) {
	if tr := n.tr.Load(); tr != nil {
		tr.Send(to, msg)
	}
}

// receive is the transport's Handler (one goroutine per peer connection).
// With several groups a message names its group first (groups.go).
func (n *ClusterNode) receive(from uint64, msg []byte) {
	inbox := n.inbox
	if len(n.groups.inboxes) > 1 {
		g, body, ok := unframeGroup(msg)
		if !ok || g < 1 || g > uint64(len(n.groups.inboxes)) {
			n.badFrame(from)
			return
		}
		inbox, msg = n.groups.inboxes[g-1], body
	}
	select {
	case inbox <- peerMsg{from: from, data: msg}:
	case <-n.closed:
	}
}

// redirect is the replica's Options.Redirect, in Redis Cluster's words.
// It runs under the shard and must stay pure.
func (n *ClusterNode) redirect(req *cluster.Request, leader uint64) string {
	if leader == 0 || leader == n.id {
		return errTryAgain
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
	if addr := n.addrOfID(leader); addr != "" {
		return "MOVED " + strconv.Itoa(slot) + " " + addr
	}
	return errTryAgain
}

// requestSlot is the slot a request's keys hash to (a transaction's, for
// EXEC), -1 without keys, or the CROSSSLOT error.
func requestSlot(req *cluster.Request) (slot int, errMsg string) {
	if req.Txn != nil {
		return cluster.TxnSlot(req.Txn.Cmds)
	}
	return cluster.CommandSlot(req.Argv)
}

// topology is the cluster as this node sees it: one group, all slots.
func (n *ClusterNode) topology(leader uint64, voters []uint64, term uint64) cluster.Topology {
	return cluster.Topology{
		MyID:   n.id,
		Nodes:  n.Nodes(),
		Shards: []cluster.Shard{{Group: 1, Ranges: []cluster.SlotRange{{First: 0, Last: cluster.SlotCount - 1}}, Leader: leader, Members: voters}},
		// Redis's config epoch grows when a slot's master changes; a
		// Raft term grows with every election, so it serves.
		Epoch: term,
	}
}

// stepPeers delivers group g's peer messages to its replica until
// shutdown, as many as are waiting (up to stepBatchMessagesMax) per turn
// of the shard.
func (s *Server) stepPeers(g *group) {
	defer close(g.stepperDone)
	n := s.node
	inbox := n.groups.inboxes[g.id-1]
	w := g.shard.newWaiter()
	batch := make([]peerMsg, 0, stepBatchMessagesMax)
	msgs := make([][]byte, 0, stepBatchMessagesMax)
	step := func(r *cluster.Replica) {
		msgs = msgs[:0]
		for _, m := range batch {
			msgs = append(msgs, m.data)
		}
		for i, err := range r.StepBatch(s.clock.Now(), msgs) {
			if err != nil {
				s.cfg.Logf("message from node %d: %v", batch[i].from, err)
			}
		}
		n.noteLeader(g.id, r.Leader())
	}
	for {
		select {
		case <-s.shutdown:
			return
		case m := <-inbox:
			batch = append(batch[:0], m)
		}
	more:
		for len(batch) < stepBatchMessagesMax {
			select {
			case m := <-inbox:
				batch = append(batch, m)
			default:
				break more
			}
		}
		g.shard.do(w, step)
		clear(batch)
	}
}
