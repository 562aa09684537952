package cluster

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/keel-db/keel/engine"
)

// This file describes the cluster to Redis Cluster clients: the replies
// of CLUSTER SLOTS, SHARDS, NODES and INFO, and the address in a -MOVED.
// Their shapes are Redis 7.0's, checked against redis-server 7.0.15, and
// CLUSTER SLOTS is what go-redis's ClusterClient loads its slot map from
// (redis-cli -c only follows -MOVED/-ASK). A Topology is a value the
// caller builds from its replica groups; nothing here does I/O.
//
// A keel shard is one replica group: its Raft leader plays Redis's
// master, its other members the replicas. While a group has no known
// leader (an election is running), SLOTS and SHARDS still list its
// members, the first member standing in as master: go-redis then sends
// that range's commands somewhere that answers -TRYAGAIN (which it
// retries) or -MOVED (which it follows and reloads the map on), instead
// of to a random node. NODES flags that stand-in "fail?" (Redis's PFAIL,
// "possibly failing"), and INFO counts its slots as pfail.

// TopoNode is one keel node as clients reach it. Port is the client port;
// the cluster bus port is Port+10000, as in Redis Cluster.
type TopoNode struct {
	ID   uint64
	Host string
	Port int
}

// busPortOffset is Redis Cluster's distance from client to bus port.
const busPortOffset = 10000

// Shard is a replica group and the slots it serves: Ranges, sorted and
// not overlapping (a group that has taken slots from others serves
// several runs; one that gave all of its slots away serves none). Leader
// is 0 while unknown; Members lists the group's voters, the leader among
// them. Group is the group's id (1-based); Migrating and Importing are
// its moves in progress, shown by CLUSTER GROUPS only (clients route by
// Ranges and follow -ASK during a move, as in Redis Cluster).
type Shard struct {
	Group     uint64
	Ranges    []SlotRange
	Leader    uint64
	Members   []uint64
	Migrating []SlotMove
	Importing []SlotMove
}

// first is the shard's lowest slot, or SlotCount when it serves none.
func (s *Shard) first() int {
	if len(s.Ranges) == 0 {
		return SlotCount
	}
	return s.Ranges[0].First
}

// slots is how many slots the shard serves.
func (s *Shard) slots() int {
	n := 0
	for _, r := range s.Ranges {
		n += r.Len()
	}
	return n
}

// Topology is one node's view of the cluster. Epoch plays Redis's config
// epoch: it grows whenever the slot map or a leader changes.
type Topology struct {
	MyID   uint64
	Nodes  []TopoNode
	Shards []Shard
	Epoch  uint64
	// Down are nodes known not to answer (the leader has not heard from
	// them within an election timeout): NODES flags them fail and
	// disconnected, SLOTS and SHARDS leave them out as replicas.
	Down []uint64
}

// nodeNameLen is the length of a Redis Cluster node id.
const nodeNameLen = 40

// NodeName is the 40-hex-digit Redis node id of keel node id: the id in
// lower-case hex, zero-padded, so "0000…0003" is node 3 and an operator
// can read one from the other.
func NodeName(id uint64) string {
	hex := strconv.FormatUint(id, 16)
	return strings.Repeat("0", nodeNameLen-len(hex)) + hex
}

// node finds a node by id.
func (t *Topology) node(id uint64) (TopoNode, bool) {
	for _, n := range t.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return TopoNode{}, false
}

// Addr is "host:port" of node id as a -MOVED carries it (Redis writes
// the host unbracketed, IPv6 included), or "" for an unknown node.
func (t *Topology) Addr(id uint64) string {
	n, ok := t.node(id)
	if !ok {
		return ""
	}
	return n.Host + ":" + strconv.Itoa(n.Port)
}

// ShardOf is the shard serving slot, or nil when no shard covers it.
func (t *Topology) ShardOf(slot int) *Shard {
	for i := range t.Shards {
		s := &t.Shards[i]
		for _, r := range s.Ranges {
			if r.Contains(slot) {
				return s
			}
		}
	}
	return nil
}

// master is who clients should treat as the shard's master: its leader,
// or while it has none its first member (stand-in reports true).
func (s *Shard) master() (id uint64, standIn bool) {
	if s.Leader != 0 {
		return s.Leader, false
	}
	if len(s.Members) > 0 {
		return s.Members[0], true
	}
	return 0, false
}

// servers lists the shard's known nodes, master first, then the other
// members in order. Members Nodes does not describe are left out: a
// client could not reach them.
func (t *Topology) servers(s *Shard) []TopoNode {
	out := make([]TopoNode, 0, len(s.Members)+1)
	m, _ := s.master()
	if n, ok := t.node(m); ok {
		out = append(out, n)
	}
	for _, id := range s.Members {
		if id == m || slices.Contains(t.Down, id) {
			continue
		}
		if n, ok := t.node(id); ok {
			out = append(out, n)
		}
	}
	return out
}

// sortedShards is the shards in slot order (of their first range), as
// Redis 7 lists them; shards serving no slot come last.
func (t *Topology) sortedShards() []*Shard {
	out := make([]*Shard, len(t.Shards))
	for i := range t.Shards {
		out[i] = &t.Shards[i]
	}
	slices.SortStableFunc(out, func(a, b *Shard) int { return a.first() - b.first() })
	return out
}

// shardRange is one slot range and the shard serving it.
type shardRange struct {
	SlotRange
	shard *Shard
}

// sortedRanges is every shard's ranges in slot order.
func (t *Topology) sortedRanges() []shardRange {
	var out []shardRange
	for i := range t.Shards {
		s := &t.Shards[i]
		for _, r := range s.Ranges {
			out = append(out, shardRange{SlotRange: r, shard: s})
		}
	}
	slices.SortStableFunc(out, func(a, b shardRange) int { return a.First - b.First })
	return out
}

// WriteSlots writes the CLUSTER SLOTS reply: per slot range
// [from, to, master, replica...], each node [host, port, name, {}], in
// slot order (a shard with several ranges appears once per range, as a
// Redis master holding several runs does). The fourth element (extra
// networking metadata, empty here) is what Redis 7 sends; go-redis
// accepts 2 to 4. Ranges with no known node are left out; go-redis sends
// their keys to any node, which redirects.
func (t *Topology) WriteSlots(w engine.Writer) {
	ranges := t.sortedRanges()
	servers := make([][]TopoNode, len(ranges))
	n := 0
	for i, r := range ranges {
		servers[i] = t.servers(r.shard)
		if len(servers[i]) > 0 {
			n++
		}
	}
	w.WriteArray(n)
	for i, r := range ranges {
		if len(servers[i]) == 0 {
			continue
		}
		w.WriteArray(2 + len(servers[i]))
		w.WriteInt(int64(r.First))
		w.WriteInt(int64(r.Last))
		for _, node := range servers[i] {
			w.WriteArray(4)
			w.WriteBulkString(node.Host)
			w.WriteInt(int64(node.Port))
			w.WriteBulkString(NodeName(node.ID))
			w.WriteMap(0)
		}
	}
}

// WriteShards writes the CLUSTER SHARDS reply, one entry per shard in slot
// order: {slots: [from, to, from, to, ...] (each range's bounds, as
// Redis 7 lists a shard's runs), nodes: [{id, port, ip, endpoint, role,
// replication-offset, health}...]}, master first. The Topology knows
// neither replication offsets nor liveness, so every node reports offset
// 0 and health "online"; the caller leaves dead nodes out of Members.
func (t *Topology) WriteShards(w engine.Writer) {
	shards := t.sortedShards()
	w.WriteArray(len(shards))
	for _, s := range shards {
		servers := t.servers(s)
		w.WriteMap(2)
		w.WriteBulkString("slots")
		w.WriteArray(2 * len(s.Ranges))
		for _, r := range s.Ranges {
			w.WriteInt(int64(r.First))
			w.WriteInt(int64(r.Last))
		}
		w.WriteBulkString("nodes")
		w.WriteArray(len(servers))
		for i, node := range servers {
			role := "replica"
			if i == 0 {
				role = "master"
			}
			w.WriteMap(7)
			w.WriteBulkString("id")
			w.WriteBulkString(NodeName(node.ID))
			w.WriteBulkString("port")
			w.WriteInt(int64(node.Port))
			w.WriteBulkString("ip")
			w.WriteBulkString(node.Host)
			w.WriteBulkString("endpoint")
			w.WriteBulkString(node.Host)
			w.WriteBulkString("role")
			w.WriteBulkString(role)
			w.WriteBulkString("replication-offset")
			w.WriteInt(0)
			w.WriteBulkString("health")
			w.WriteBulkString("online")
		}
	}
}

// NodesText is the CLUSTER NODES reply, one line per node in Nodes order:
//
//	<name> <host>:<port>@<bus> <flags> <master name|-> 0 0 <epoch> connected <slots>
//
// A node is a master when it leads a shard (or stands in for a leaderless
// one, flagged "fail?"), with those shards' ranges; otherwise it is a
// slave of the master of the first shard (by group id, then slot order)
// it belongs to.
// A node in no shard is a master without slots, as a fresh Redis node.
// Redis puts one node in one shard; a keel node in several groups shows
// as master if it leads any of them.
func (t *Topology) NodesText() string {
	shards := t.sortedShards()
	// The first shard by group id (slot order among equal ids): a node
	// leading no group is shown as a replica of group 1's leader.
	slices.SortStableFunc(shards, func(a, b *Shard) int { return cmp.Compare(a.Group, b.Group) })
	var b strings.Builder
	for _, n := range t.Nodes {
		var ranges []*Shard
		standIn := false
		var follows uint64
		for _, s := range shards {
			m, stand := s.master()
			if m == n.ID {
				ranges = append(ranges, s)
				standIn = standIn || stand
			} else if follows == 0 && m != 0 && slices.Contains(s.Members, n.ID) {
				follows = m
			}
		}
		b.WriteString(NodeName(n.ID))
		b.WriteByte(' ')
		b.WriteString(n.Host)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(n.Port))
		b.WriteByte('@')
		b.WriteString(strconv.Itoa(n.Port + busPortOffset))
		b.WriteByte(' ')
		if n.ID == t.MyID {
			b.WriteString("myself,")
		}
		down := slices.Contains(t.Down, n.ID)
		switch {
		case len(ranges) > 0 || follows == 0:
			b.WriteString("master")
			if standIn {
				b.WriteString(",fail?")
			}
			if down {
				b.WriteString(",fail")
			}
			b.WriteString(" -")
		default:
			b.WriteString("slave")
			if down {
				b.WriteString(",fail")
			}
			b.WriteByte(' ')
			b.WriteString(NodeName(follows))
		}
		b.WriteString(" 0 0 ")
		b.WriteString(strconv.FormatUint(t.Epoch, 10))
		if down {
			b.WriteString(" disconnected")
		} else {
			b.WriteString(" connected")
		}
		var runs []SlotRange
		for _, s := range ranges {
			runs = append(runs, s.Ranges...)
		}
		slices.SortFunc(runs, func(a, b SlotRange) int { return a.First - b.First })
		for _, r := range runs {
			b.WriteByte(' ')
			b.WriteString(r.String())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// InfoText is the CLUSTER INFO reply, "\r\n" after every line as Redis
// writes it. knownLeader says whether this node is in touch with a leader
// of its own group (false when cut off from its group's majority).
//
// cluster_state follows Redis's rules as far as they carry over. It is
// "fail" when a slot is unassigned (Redis's cluster-require-full-coverage
// default), when this node has no known leader (as a Redis node
// partitioned into a minority reports fail), or when no shard has a
// leader. A shard in an election does not fail the whole cluster: its
// slots count as cluster_slots_pfail, as a Redis master that is only
// suspected down, and its keys get -TRYAGAIN, which go-redis retries.
// Scripts that wait for cluster_state:ok before using a single-group
// cluster thus wait for its first leader.
func (t *Topology) InfoText(knownLeader bool) string {
	var assigned, ok, pfail int
	var masters []uint64
	for i := range t.Shards {
		s := &t.Shards[i]
		m, standIn := s.master()
		size := s.slots()
		if m == 0 || size == 0 {
			continue
		}
		assigned += size
		if standIn {
			pfail += size
		} else {
			ok += size
		}
		if !slices.Contains(masters, m) {
			masters = append(masters, m)
		}
	}
	state := "ok"
	if assigned < SlotCount || !knownLeader || ok == 0 {
		state = "fail"
	}
	var b strings.Builder
	line := func(name, value string) {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	epoch := strconv.FormatUint(t.Epoch, 10)
	line("cluster_state", state)
	line("cluster_slots_assigned", strconv.Itoa(assigned))
	line("cluster_slots_ok", strconv.Itoa(ok))
	line("cluster_slots_pfail", strconv.Itoa(pfail))
	line("cluster_slots_fail", "0")
	line("cluster_known_nodes", strconv.Itoa(len(t.Nodes)))
	line("cluster_size", strconv.Itoa(len(masters)))
	line("cluster_current_epoch", epoch)
	line("cluster_my_epoch", epoch)
	return b.String()
}

// WriteGroups writes keel's CLUSTER GROUPS reply: one map per shard in
// group order, {group: id, leader: node id (0 unknown), members: [node
// ids], owned: ["first-last", ...], migrating: ["first-last to g", ...],
// importing: ["first-last from g", ...]}. Owned lists the ranges the
// group serves as this node routes them; a slot on its way lists under
// its source's migrating and its target's importing until the move ends.
func (t *Topology) WriteGroups(w engine.Writer) {
	shards := make([]*Shard, len(t.Shards))
	for i := range t.Shards {
		shards[i] = &t.Shards[i]
	}
	slices.SortStableFunc(shards, func(a, b *Shard) int { return cmp.Compare(a.Group, b.Group) })
	w.WriteArray(len(shards))
	for _, s := range shards {
		w.WriteMap(6)
		w.WriteBulkString("group")
		w.WriteInt(int64(s.Group))
		w.WriteBulkString("leader")
		w.WriteInt(int64(s.Leader))
		w.WriteBulkString("members")
		w.WriteArray(len(s.Members))
		for _, id := range s.Members {
			w.WriteInt(int64(id))
		}
		w.WriteBulkString("owned")
		w.WriteArray(len(s.Ranges))
		for _, r := range s.Ranges {
			w.WriteBulkString(r.String())
		}
		w.WriteBulkString("migrating")
		w.WriteArray(len(s.Migrating))
		for _, m := range s.Migrating {
			w.WriteBulkString(m.SlotRange.String() + " to " + strconv.FormatUint(m.Group, 10))
		}
		w.WriteBulkString("importing")
		w.WriteArray(len(s.Importing))
		for _, m := range s.Importing {
			w.WriteBulkString(m.SlotRange.String() + " from " + strconv.FormatUint(m.Group, 10))
		}
	}
}
