package cluster

import (
	"encoding/binary"
	"slices"

	"github.com/cockroachdb/errors"
)

// Member addresses. A CLUSTER ADDNODE carries the new member's address
// (host:port of its client port) in its configuration change, and every
// replica tells its runtime through Options.OnConfChange when the change
// applies, so that the node can reach the new member. A snapshot
// compacts those entries away, so the replica keeps the addresses it has
// applied and writes them into every snapshot (a snapTypeMembers entry):
// a replica that starts from a snapshot, or installs one from its
// leader, tells the runtime of every member's address before it replays
// anything after the snapshot. Without it a node restarted after the
// snapshot forgot the address of every member added before it, could not
// send to them, and refused their messages.
//
// Format of the entry (key empty, before the keys):
//
//	u8      membersVersion (1)
//	uvarint count
//	count × (uvarint id, uvarint len, len bytes of address), by id

const (
	snapTypeMembers uint8 = 0xFD
	membersVersion        = 1
	// memberAddrBytesMax bounds one address in a snapshot entry.
	memberAddrBytesMax = 1024
	// membersMax bounds the members one entry may list.
	membersMax = 1 << 16
)

// noteMemberAddr follows an applied membership change.
func (r *Replica) noteMemberAddr(id uint64, added bool, addr string) {
	if !added {
		delete(r.addrs, id)
		return
	}
	if addr == "" {
		return
	}
	if r.addrs == nil {
		r.addrs = map[uint64]string{}
	}
	r.addrs[id] = addr
}

// membersDump is the snapshot entry's value, nil without addresses.
func (r *Replica) membersDump() []byte {
	if len(r.addrs) == 0 {
		return nil
	}
	ids := make([]uint64, 0, len(r.addrs))
	for id := range r.addrs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b := []byte{membersVersion}
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, id)
		b = binary.AppendUvarint(b, uint64(len(r.addrs[id])))
		b = append(b, r.addrs[id]...)
	}
	return b
}

// restoreMembers installs a snapshot's member addresses.
func (r *Replica) restoreMembers(b []byte) error {
	bad := func(what string) error {
		return errors.Newf("cluster: snapshot member addresses: %s", what)
	}
	if len(b) == 0 || b[0] != membersVersion {
		return bad("unknown version")
	}
	b = b[1:]
	count, k := binary.Uvarint(b)
	if k <= 0 || count > membersMax {
		return bad("bad count")
	}
	b = b[k:]
	addrs := make(map[uint64]string, count)
	for range count {
		id, k := binary.Uvarint(b)
		if k <= 0 || id == 0 {
			return bad("bad member id")
		}
		b = b[k:]
		n, k := binary.Uvarint(b)
		if k <= 0 || n > memberAddrBytesMax || uint64(len(b)-k) < n {
			return bad("bad address length")
		}
		b = b[k:]
		addrs[id] = string(b[:n])
		b = b[n:]
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	r.addrs = addrs
	return nil
}

// membersRestored tells the runtime the membership a snapshot left:
// every voter (with its address when the snapshot has it) is a member,
// and every founding member the voters no longer list was removed.
func (r *Replica) membersRestored(voters []uint64) {
	if r.opts.OnConfChange == nil || !r.Replicated() {
		return
	}
	for _, id := range voters {
		r.opts.OnConfChange(id, true, r.addrs[id])
	}
	for _, id := range r.opts.Peers {
		if !slices.Contains(voters, id) {
			r.opts.OnConfChange(id, false, "")
		}
	}
}
