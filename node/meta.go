package node

import (
	"bytes"
	"cmp"
	"slices"
	"strconv"

	"github.com/keel-db/keel/cluster"
)

// The meta record (docs/cluster.md, "The meta record"; cluster/meta.go):
// the cluster's placement as decided in group 1's log, its members and
// each group's target replicas under a version. With placement, group 1
// (the meta group) keeps it: its replicas apply every CLUSTER METASET and
// tell the node (metaApplied). A new cluster's record is its bootstrap,
// cluster.BootstrapMeta of the founding nodes and the start flags, which
// every node computes alike (version 0), so a cluster starts placed as
// before without writing anything.
//
// A node that does not host group 1 caches the record from its peers:
// once the record has changed (version above 0), each node hosting group
// 1 sends it with every ping (a separate frame, peerMetaTag, so that
// pings of unchanged clusters stay what they were), and a receiver keeps
// the highest version, heard only from a node the record it has places on
// group 1.

const (
	// peerMetaTag starts a meta frame: the tag and an encoded record.
	peerMetaTag = 0xCB
	// metaGroup keeps the meta record: group 1, as it keeps the ACL table.
	metaGroup = 1
)

// metaState is the node's copy of the record (under Node.mu).
type metaState struct {
	rec     cluster.MetaRecord
	encoded []byte // rec's encoding, nil while it is the bootstrap
}

// initMeta sets the bootstrap record from the placement initPlacement
// computed (its replicas may carry a planted bug: knobs.go).
func (n *Node) initMeta(p cluster.Placement) error {
	// The founders: a joiner lists itself among its peers, but the
	// record it will learn was bootstrapped without it.
	founders := slices.DeleteFunc(slices.Clone(n.cfg.Peers), func(t cluster.TopoNode) bool { return n.cfg.Join && t.ID == n.id })
	rec, err := cluster.BootstrapMeta(founders, n.cfg.Groups, n.cfg.Replicas)
	if err != nil {
		return err
	}
	rec.Targets = p.Replicas
	n.meta = metaState{rec: rec}
	return nil
}

// MetaRecord is the node's record: the one its group 1 replica applied,
// or the highest version heard from group 1's nodes, or the bootstrap.
// The zero record without placement.
func (n *Node) MetaRecord() cluster.MetaRecord {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.meta.rec.Clone()
}

// metaApplied is group 1's Options.OnMetaChanged: the record as this
// node's replica applied it (nil: none yet, the bootstrap holds).
func (n *Node) metaApplied(b []byte) {
	if b == nil {
		return
	}
	rec, err := cluster.DecodeMeta(b)
	if err != nil {
		n.logf("the applied meta record does not decode: %v", err) // the replica checked it
		return
	}
	n.takeMeta(rec, b)
}

// takeMeta makes rec the node's record if it is newer than the one it has,
// and adds its new members to the address book.
func (n *Node) takeMeta(rec cluster.MetaRecord, b []byte) bool {
	if len(rec.Targets) > len(n.groups) {
		// Splits grew the cluster past this node's --groups-max: it
		// cannot route the new groups, so it keeps the record it has.
		n.logf("meta: version %d has %d groups, more than this node's --groups-max %d; restart it with --groups-max %d or more",
			rec.Version, len(rec.Targets), len(n.groups), len(rec.Targets))
		return false
	}
	n.mu.Lock()
	if n.meta.encoded != nil && rec.Version <= n.meta.rec.Version || rec.Version == 0 {
		n.mu.Unlock()
		return false
	}
	n.meta = metaState{rec: rec, encoded: bytes.Clone(b)}
	var added []cluster.TopoNode
	for _, m := range rec.Members {
		if m.State == cluster.MemberDead || slices.ContainsFunc(n.nodes, func(t cluster.TopoNode) bool { return t.ID == m.ID }) {
			continue
		}
		node, err := parseNodeAddr(m.ID, m.Addr)
		if err != nil {
			continue // the record's address was checked when it was written
		}
		n.nodes = append(n.nodes, node)
		added = append(added, node)
	}
	slices.SortFunc(n.nodes, func(a, b cluster.TopoNode) int { return cmp.Compare(a.ID, b.ID) })
	n.mu.Unlock()
	for _, node := range added {
		if node.ID != n.id && n.onPeer != nil {
			// A member this node shares no group with must still be
			// pinged and reachable (moves: it may host one soon).
			n.onPeer(node.ID, node.Host+":"+strconv.Itoa(node.Port))
		}
	}
	return true
}

// metaFrame is the meta frame this node sends with its pings: nil unless
// it hosts group 1 and the record has changed since the bootstrap.
func (n *Node) metaFrame() []byte {
	if !n.plc.on || !n.hostsGroup(metaGroup) {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.meta.encoded == nil {
		return nil
	}
	return append([]byte{peerMetaTag}, n.meta.encoded...)
}

// receiveMeta takes a meta frame from peer from: a record of a higher
// version than this node's, from a node its record places on group 1. A
// node hosting group 1 has its own replica's record and ignores them.
func (n *Node) receiveMeta(from uint64, body []byte) {
	if !n.plc.on || n.hostsGroup(metaGroup) {
		return
	}
	rec, err := cluster.DecodeMeta(body)
	if err != nil || len(rec.Targets) > len(n.groups) {
		n.badFrame(from, "a malformed meta record (or one with more groups than --groups-max)")
		return
	}
	if !n.MetaRecord().Placement().Hosts(metaGroup, from) {
		return // not (or no longer, as this node knows) a node of the meta group
	}
	n.takeMeta(rec, body)
}
