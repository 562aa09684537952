package node

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
	"sync"

	"github.com/keel-db/keel/cluster"
)

// The ACL table on a placed cluster (docs/security.md, "ACL"). The table
// is group 1's replica state (acl_table.go): ACL SETUSER, DELUSER and LOAD
// go through group 1's log (a node not hosting group 1 answers -MOVED to
// its leader, as for any keyless write of group 1), and only group 1's
// nodes apply them. The other nodes learn the table over the bus:
//
//   - group 1's leader sends every node outside group 1, with its pings,
//     a digest: the applied index it has, whether a table exists, and a
//     64-bit FNV-1a hash of it;
//   - a node whose cached table is older (a lower index) and differs (the
//     hash) asks that node for the table (a pull);
//   - the node asked sends it in its next tick of group 1: the index and
//     the table's bytes, read together inside group 1's Exclusive.
//
// Every replica of group 1 at applied index A has the same table, so the
// index orders tables whichever replica sent them: a node takes a table
// only of a higher index than the one it has, and a late or duplicated
// frame changes nothing. A frame from a node the record does not place
// on group 1 is ignored (the bus is authenticated; a peer outside group 1
// has no table to tell).
//
// Until a node outside group 1 has learnt the table once since it
// started, it cannot tell whether a user it would let in was deleted or
// changed while it was down: AUTH and HELLO AUTH answer -TRYAGAIN then
// (about one ping interval after the node hears group 1's leader).
// Connections that do not authenticate run as the default user of the
// table in force, the configured one until then.

const (
	// peerACLDigestTag: index uvarint, u8 has-table, u64 FNV-1a hash.
	peerACLDigestTag = 0xCD
	// peerACLPullTag: the tag alone, "send me the table".
	peerACLPullTag = 0xCE
	// peerACLTableTag: index uvarint, u8 has-table, the table's bytes.
	peerACLTableTag = 0xCF
	// aclPullersMax bounds the pulls a node keeps to answer (one per
	// member asking; a record lists at most this many).
	aclPullersMax = 4096
)

// aclBus is what a node knows of group 1's table from the bus.
type aclBus struct {
	mu sync.Mutex
	// index: group 1's applied index the table in force is as of (0:
	// none learnt from the bus); has and hash describe that table.
	index uint64
	has   bool
	hash  uint64
	// known: the node has learnt the cluster's table since it started,
	// from its own replica of group 1 or from the bus.
	known bool
	// pullers asked this node for the table since its last tick of
	// group 1, sorted.
	pullers []uint64
}

func aclHash(table []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(table)
	return h.Sum64()
}

// aclKnownNote records that the table in force is the cluster's (group
// 1's replica told it, or the bus did).
func (n *Node) aclKnownNote() {
	n.aclBus.mu.Lock()
	n.aclBus.known = true
	n.aclBus.mu.Unlock()
}

// aclUnknown is the error AUTH answers while a placed node outside group
// 1 has not learnt the table since it started ("" otherwise).
func (n *Node) aclUnknown() string {
	if !n.plc.on || n.hostsGroup(metaGroup) {
		return ""
	}
	n.aclBus.mu.Lock()
	known := n.aclBus.known
	n.aclBus.mu.Unlock()
	if known {
		return ""
	}
	return "TRYAGAIN this node has not learnt the cluster's ACL table from group 1 yet; retry"
}

// aclGossip runs in group 1's tick (inside its Exclusive): a leader sends
// the digest to every member outside group 1, and any replica answers the
// pulls it got since the last tick with its table.
func (n *Node) aclGossip(gr *group, digest bool) {
	r := gr.replica
	if r == nil || !n.plc.on {
		return
	}
	n.aclBus.mu.Lock()
	pullers := n.aclBus.pullers
	n.aclBus.pullers = nil
	n.aclBus.mu.Unlock()
	if !digest && len(pullers) == 0 {
		return
	}
	index, table := r.AppliedIndex(), r.ACLTable()
	has := byte(0)
	if table != nil {
		has = 1
	}
	if len(pullers) > 0 {
		f := binary.AppendUvarint([]byte{peerACLTableTag}, index)
		f = append(append(f, has), table...)
		for _, id := range pullers {
			n.rt.Send(id, f)
		}
	}
	if !digest || !r.IsLeader() {
		return
	}
	f := binary.AppendUvarint([]byte{peerACLDigestTag}, index)
	f = append(f, has)
	f = binary.LittleEndian.AppendUint64(f, aclHash(table))
	rec := n.MetaRecord()
	for _, m := range rec.Members {
		if m.ID != n.id && m.State != cluster.MemberDead && !rec.Placement().Hosts(metaGroup, m.ID) {
			n.rt.Send(m.ID, f)
		}
	}
}

// fromMetaGroup reports whether a frame from peer from may speak for
// group 1's table: this node is placed and outside group 1, and the record
// places from on it.
func (n *Node) fromMetaGroup(from uint64) bool {
	return n.plc.on && !n.hostsGroup(metaGroup) && n.MetaRecord().Placement().Hosts(metaGroup, from)
}

// aclLockIfNewer reports whether a frame of group 1's table as of index,
// from peer from, is news to this node: from speaks for group 1 and the
// node has not learnt a table of that index or later. It returns with
// aclBus.mu held only when true.
func (n *Node) aclLockIfNewer(from, index uint64) bool {
	if !n.fromMetaGroup(from) {
		return false
	}
	a := &n.aclBus
	a.mu.Lock()
	if index <= a.index && a.known {
		a.mu.Unlock()
		return false
	}
	return true
}

// receiveACLDigest takes a digest from peer from: a newer, different
// table is pulled from it; a newer "no table" or the same table only
// moves the index on.
func (n *Node) receiveACLDigest(from uint64, body []byte) {
	index, k := binary.Uvarint(body)
	if k <= 0 || len(body) != k+9 || body[k] > 1 {
		n.badFrame(from, "a malformed ACL digest")
		return
	}
	has, hash := body[k] == 1, binary.LittleEndian.Uint64(body[k+1:])
	if !n.aclLockIfNewer(from, index) {
		return
	}
	a := &n.aclBus
	same := a.known && a.has == has && (!has || a.hash == hash || n.cfg.Knobs.aclDigestTrustsIndex())
	if same || !has {
		a.index, a.has, a.hash = index, has, hash // keep the hash: the next same digest must not pull again
		changed := !same
		a.known = true
		a.mu.Unlock()
		if changed {
			n.aclChanged(nil) // no table: the configured users
		}
		return
	}
	a.mu.Unlock()
	n.rt.Send(from, []byte{peerACLPullTag})
}

// receiveACLPull notes that peer from wants this node's table.
func (n *Node) receiveACLPull(from uint64, body []byte) {
	if len(body) != 0 {
		n.badFrame(from, "a malformed ACL pull")
		return
	}
	if !n.plc.on || !n.hostsGroup(metaGroup) {
		return
	}
	if _, ok := n.MetaRecord().Member(from); !ok {
		return
	}
	a := &n.aclBus
	a.mu.Lock()
	defer a.mu.Unlock()
	if i, found := slices.BinarySearch(a.pullers, from); !found && len(a.pullers) < aclPullersMax {
		a.pullers = slices.Insert(a.pullers, i, from)
	}
}

// receiveACLTable takes group 1's table from peer from, when newer than
// the one this node has.
func (n *Node) receiveACLTable(from uint64, body []byte) {
	index, k := binary.Uvarint(body)
	if k <= 0 || len(body) < k+1 || body[k] > 1 || body[k] == 0 && len(body) != k+1 {
		n.badFrame(from, "a malformed ACL table frame")
		return
	}
	has := body[k] == 1
	var table []byte
	if has {
		table = slices.Clone(body[k+1:])
		if len(table) > aclTableBytesMax {
			n.badFrame(from, "an ACL table over its bound")
			return
		}
	}
	if !n.aclLockIfNewer(from, index) {
		return
	}
	a := &n.aclBus
	a.index, a.has, a.hash, a.known = index, has, aclHash(table), true
	a.mu.Unlock()
	n.aclChanged(table) // a table that does not parse is logged, the one in force kept (rebuildACL)
}
