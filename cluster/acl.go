package cluster

import (
	"bytes"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/engine"
)

// The ACL table (docs/security.md, "ACL"). Users, their hashed passwords
// and their permissions are replica state, as the function registry is:
// ACL SETUSER, DELUSER and LOAD are logged as the node built them and
// applied on every replica — on the leader, in recovery and on followers
// alike — so that every node of a cluster agrees on the table. What they
// mean is the node's business: Options.ACL is the pure function that
// applies one to the table (the node's ACL model), and the replica keeps
// whatever bytes it returns. Options.OnACLChanged tells the node the
// table after every change, replay and snapshot installs included, and
// once at Open. Snapshots carry the table as one entry of the reserved
// type snapTypeACL, before the keys; a replica that never applied an ACL
// change has no table (nil) and its snapshots no such entry.

const (
	// snapTypeACL is the snapshot entry holding the ACL table (never an
	// engine value type; 0xFD-0xFF are taken by the member addresses,
	// the slot state and the function registry).
	snapTypeACL uint8 = 0xFC
	// aclTableBytesMax bounds the table a snapshot may hand over; Options.ACL
	// keeps the tables it builds far below it.
	aclTableBytesMax = 256 << 20
)

// IsACLWrite reports whether argv is an ACL command that changes the
// table (SETUSER, DELUSER, LOAD): it goes through the log of the group
// the node keeps the table in, like a write.
func IsACLWrite(argv [][]byte) bool {
	if len(argv) < 2 || !equalFold(argv[0], "acl") {
		return false
	}
	return equalFold(argv[1], "setuser") || equalFold(argv[1], "deluser") || equalFold(argv[1], "load")
}

// applyACL applies a logged ACL command to the table; the reply (on the
// leader, the client's) is Options.ACL's.
func (r *Replica) applyACL(argv [][]byte, w engine.Writer) {
	if r.opts.ACL == nil {
		// Decided alike on every replica: a group opened without the
		// hook keeps no table.
		w.WriteError("ERR this replica group does not keep the ACL table")
		return
	}
	if next := r.opts.ACL(r.acl, argv, w); next != nil && !bytes.Equal(next, r.acl) {
		r.acl = next
		r.aclChanged()
	}
}

// aclChanged tells the node the table as applied.
func (r *Replica) aclChanged() {
	if r.opts.OnACLChanged != nil {
		r.opts.OnACLChanged(r.acl)
	}
}

// ACLTable is the ACL table as this replica applied it (nil: no ACL change
// was ever applied). The bytes must not be changed. Callers must hold the
// replica's owner.
func (r *Replica) ACLTable() []byte { return r.acl }

// restoreACL installs a snapshot's ACL table.
func (r *Replica) restoreACL(b []byte) error {
	if len(b) == 0 || len(b) > aclTableBytesMax {
		return errors.Newf("snapshot ACL table: %d bytes", len(b))
	}
	r.acl = bytes.Clone(b)
	return nil
}

// SetACL installs Options.ACL and Options.OnACLChanged on a replica opened
// without them (one a runtime adopts as it is) and tells onChanged the
// table at once. ACL entries replayed at Open without the hook were
// answered with an error and left the table as it was, so a replica that
// may hold ACL changes in its log must be opened with the options set.
// Callers must hold the replica's owner.
func (r *Replica) SetACL(apply func(table []byte, argv [][]byte, w engine.Writer) []byte, onChanged func(table []byte)) {
	r.opts.ACL, r.opts.OnACLChanged = apply, onChanged
	r.aclChanged()
}
