package cluster

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"strconv"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/engine"
)

// The meta record (docs/cluster.md, "The meta record"): the cluster's
// placement kept in a Raft log, so that every change of it is decided
// once. It lists the member nodes (id, address, state) and, per group, the
// nodes its replicas should be on (its target, preferred leader first),
// under a version that every change raises by one.
//
// It lives in group 1's log, as the ACL table does: a change is the
// logged command CLUSTER METASET <record>, applied on every replica of
// group 1 (leader, followers and replay alike) to replica-side state, and
// group 1's snapshots carry the record as one entry of the reserved type
// snapTypeMeta. Group 1 is thus "the meta group", as CockroachDB's meta
// ranges are ordinary ranges: no second kind of group to bootstrap, place,
// tick and move, and the record moves with group 1's replicas like any of
// its data. The price is that the record shares group 1's log with user
// writes, which only matters for a record far larger than this one.
//
// A change applies only when its version is exactly one more than the
// applied record's (compare-and-set): a meta leader that built it from an
// older record, or a second proposal of the same change, is refused alike
// on every replica, so a decision is never applied twice. A replica that
// never applied a change has no record (nil): the cluster's record is then
// its bootstrap, BootstrapMeta of the founding nodes and the start flags,
// which every node computes alike (version 0).
//
// Format (every integer a uvarint unless noted):
//
//	u8      metaFormat (1)
//	version, replicas
//	count × (id, u8 state, len, len bytes of address), by id
//	groups × (k, k × node id)  (group g's target, preferred leader first)
//	move: group, from, to, lead (0 0 0 0: none)

const (
	// snapTypeMeta is the snapshot entry holding the meta record (0xFC-0xFF
	// are the ACL table, the member addresses, the slot state and the
	// function registry).
	snapTypeMeta uint8 = 0xFB
	metaFormat         = 1
	// MetaRecordBytesMax bounds an encoded record: a ping carries it.
	MetaRecordBytesMax = 1 << 20
	// metaMembersMax, metaGroupsMax and metaReplicasMax bound what a
	// record may list, so that a corrupt or hostile one cannot make a
	// decoder allocate absurdly.
	metaMembersMax  = 4096
	metaGroupsMax   = 4096
	metaReplicasMax = 16
)

// MemberState is a member node's state in the meta record.
type MemberState uint8

const (
	// MemberActive: the node hosts replicas and may be given more.
	MemberActive MemberState = iota
	// MemberDecommissioning: its replicas are moved away (CLUSTER
	// DELNODE); once it holds none it leaves the record.
	MemberDecommissioning
	// MemberDead: unheard longer than node-dead-after; its replicas are
	// re-created on other nodes.
	MemberDead
	memberStates
)

func (s MemberState) String() string {
	switch s {
	case MemberActive:
		return "active"
	case MemberDecommissioning:
		return "decommissioning"
	case MemberDead:
		return "dead"
	}
	return "state-" + strconv.Itoa(int(s))
}

// MetaMember is one member node of the record.
type MetaMember struct {
	ID    uint64
	Addr  string // host:port of its client port
	State MemberState
}

// Move is one replica of one group going from node From to node To (From
// 0: a replica added where one is missing; To 0: a surplus replica
// removed). With Lead, no replica moves: only the group's preferred
// leader changes from From to To, both already in its target.
type Move struct {
	Group, From, To uint64
	Lead            bool
}

// None reports the zero move.
func (m Move) None() bool { return m == Move{} }

func (m Move) String() string {
	if m.None() {
		return "none"
	}
	if m.AddedGroup() {
		return "group " + strconv.FormatUint(m.Group, 10) + " added"
	}
	s := "group " + strconv.FormatUint(m.Group, 10) + ": " + strconv.FormatUint(m.From, 10) + " -> " + strconv.FormatUint(m.To, 10)
	if m.Lead {
		s += " (leader)"
	}
	return s
}

// MetaRecord is the cluster's placement as decided.
type MetaRecord struct {
	Version  uint64
	Replicas int          // the replication factor
	Members  []MetaMember // sorted by id
	// Targets[g-1] are the nodes group g's replicas should be on, its
	// preferred leader first.
	Targets [][]uint64
	// Move is the move the targets were last changed for (the zero move:
	// none since the bootstrap); it is in progress while some group's
	// voters differ from its target.
	Move Move
}

// BootstrapMeta is a new cluster's record: the founding nodes, all
// active, and Place's placement of groups groups of replicas replicas.
func BootstrapMeta(peers []TopoNode, groups, replicas int) (MetaRecord, error) {
	ids := make([]uint64, 0, len(peers))
	for _, p := range peers {
		ids = append(ids, p.ID)
	}
	p, err := Place(ids, groups, replicas)
	if err != nil {
		return MetaRecord{}, err
	}
	rec := MetaRecord{Replicas: len(p.Replicas[0]), Targets: p.Replicas}
	for _, pe := range peers {
		rec.Members = append(rec.Members, MetaMember{ID: pe.ID, Addr: pe.Host + ":" + strconv.Itoa(pe.Port)})
	}
	slices.SortFunc(rec.Members, func(a, b MetaMember) int { return cmp.Compare(a.ID, b.ID) })
	return rec, rec.Check()
}

// Clone is a deep copy.
func (m MetaRecord) Clone() MetaRecord {
	c := m
	c.Members = slices.Clone(m.Members)
	c.Targets = make([][]uint64, len(m.Targets))
	for i, t := range m.Targets {
		c.Targets[i] = slices.Clone(t)
	}
	return c
}

// Member is node id's entry (false: not a member).
func (m MetaRecord) Member(id uint64) (MetaMember, bool) {
	i, ok := slices.BinarySearchFunc(m.Members, id, func(x MetaMember, id uint64) int { return cmp.Compare(x.ID, id) })
	if !ok {
		return MetaMember{}, false
	}
	return m.Members[i], true
}

// Placement is the record's targets as a Placement.
func (m MetaRecord) Placement() Placement { return Placement{Replicas: m.Targets} }

// Check verifies what must hold of any record: members sorted, distinct,
// with known states; every target distinct members, at most Replicas of
// them (plus the one a move adds before it removes), none empty.
func (m MetaRecord) Check() error {
	if m.Replicas < 1 || m.Replicas > metaReplicasMax {
		return errors.Newf("meta record: replication factor %d", m.Replicas)
	}
	if len(m.Members) == 0 || len(m.Members) > metaMembersMax {
		return errors.Newf("meta record: %d members", len(m.Members))
	}
	for i, mb := range m.Members {
		if mb.ID == 0 || i > 0 && m.Members[i-1].ID >= mb.ID {
			return errors.Newf("meta record: member ids not ascending and positive at %d", mb.ID)
		}
		if mb.State >= memberStates {
			return errors.Newf("meta record: member %d in unknown state %d", mb.ID, mb.State)
		}
		if len(mb.Addr) > memberAddrBytesMax {
			return errors.Newf("meta record: member %d's address is %d bytes", mb.ID, len(mb.Addr))
		}
	}
	if len(m.Targets) == 0 || len(m.Targets) > metaGroupsMax {
		return errors.Newf("meta record: %d groups", len(m.Targets))
	}
	for g, t := range m.Targets {
		if len(t) == 0 || len(t) > m.Replicas {
			return errors.Newf("meta record: group %d targets %d nodes, replication factor %d", g+1, len(t), m.Replicas)
		}
		for i, id := range t {
			if slices.Contains(t[:i], id) {
				return errors.Newf("meta record: group %d targets node %d twice", g+1, id)
			}
			if _, ok := m.Member(id); !ok {
				return errors.Newf("meta record: group %d targets node %d, not a member", g+1, id)
			}
		}
	}
	if !m.Move.None() && (m.Move.Group < 1 || m.Move.Group > uint64(len(m.Targets))) {
		return errors.Newf("meta record: move of group %d", m.Move.Group)
	}
	return nil
}

// Encode is the record's bytes (the format above).
func (m MetaRecord) Encode() []byte {
	b := []byte{metaFormat}
	b = binary.AppendUvarint(b, m.Version)
	b = binary.AppendUvarint(b, uint64(m.Replicas))
	b = binary.AppendUvarint(b, uint64(len(m.Members)))
	for _, mb := range m.Members {
		b = binary.AppendUvarint(b, mb.ID)
		b = append(b, byte(mb.State))
		b = binary.AppendUvarint(b, uint64(len(mb.Addr)))
		b = append(b, mb.Addr...)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Targets)))
	for _, t := range m.Targets {
		b = binary.AppendUvarint(b, uint64(len(t)))
		for _, id := range t {
			b = binary.AppendUvarint(b, id)
		}
	}
	b = binary.AppendUvarint(b, m.Move.Group)
	b = binary.AppendUvarint(b, m.Move.From)
	b = binary.AppendUvarint(b, m.Move.To)
	lead := uint64(0)
	if m.Move.Lead {
		lead = 1
	}
	b = binary.AppendUvarint(b, lead)
	return b
}

// DecodeMeta reads a record Encode wrote and checks it; anything else is
// an error, never a partial record.
func DecodeMeta(b []byte) (MetaRecord, error) {
	bad := func(what string) (MetaRecord, error) {
		return MetaRecord{}, errors.Newf("meta record: %s", what)
	}
	if len(b) > MetaRecordBytesMax {
		return bad("too large")
	}
	if len(b) == 0 || b[0] != metaFormat {
		return bad("unknown format")
	}
	b = b[1:]
	next := func() (uint64, bool) {
		x, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, false
		}
		b = b[k:]
		return x, true
	}
	var m MetaRecord
	var ok bool
	var reps, count uint64
	if m.Version, ok = next(); !ok {
		return bad("bad version")
	}
	if reps, ok = next(); !ok || reps > metaReplicasMax {
		return bad("bad replication factor")
	}
	m.Replicas = int(reps)
	if count, ok = next(); !ok || count > metaMembersMax {
		return bad("bad member count")
	}
	for range count {
		var mb MetaMember
		if mb.ID, ok = next(); !ok || len(b) < 1 {
			return bad("bad member")
		}
		mb.State, b = MemberState(b[0]), b[1:]
		n, ok := next()
		if !ok || n > memberAddrBytesMax || uint64(len(b)) < n {
			return bad("bad member address")
		}
		mb.Addr, b = string(b[:n]), b[n:]
		m.Members = append(m.Members, mb)
	}
	if count, ok = next(); !ok || count > metaGroupsMax {
		return bad("bad group count")
	}
	for range count {
		k, ok := next()
		if !ok || k > metaReplicasMax {
			return bad("bad target")
		}
		t := make([]uint64, 0, k)
		for range k {
			id, ok := next()
			if !ok {
				return bad("bad target node")
			}
			t = append(t, id)
		}
		m.Targets = append(m.Targets, t)
	}
	var mv [4]uint64
	for i := range mv {
		if mv[i], ok = next(); !ok || i == 3 && mv[i] > 1 {
			return bad("bad move")
		}
	}
	m.Move = Move{Group: mv[0], From: mv[1], To: mv[2], Lead: mv[3] == 1}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	if err := m.Check(); err != nil {
		return MetaRecord{}, err
	}
	return m, nil
}

// IsMetaWrite reports whether argv is CLUSTER METASET <record>, the
// logged change of the meta record (node-internal: the node proposes it
// on the meta group's leader; a client's is refused before it is logged).
func IsMetaWrite(argv [][]byte) bool {
	return len(argv) == 3 && equalFold(argv[0], "cluster") && equalFold(argv[1], "metaset")
}

// MetaSetCommand is the command that changes the record to rec.
func MetaSetCommand(rec MetaRecord) [][]byte {
	return [][]byte{[]byte("CLUSTER"), []byte("METASET"), rec.Encode()}
}

// applyMeta applies a logged CLUSTER METASET: the record becomes the new
// one if its version is the applied one's plus one (the bootstrap's is
// 0) and it keeps the number of groups, or adds one with the move that
// says so (AddGroup); otherwise it is refused, alike on every replica.
func (r *Replica) applyMeta(argv [][]byte, w engine.Writer) {
	if r.opts.OnMetaChanged == nil {
		w.WriteError("ERR this replica group does not keep the meta record")
		return
	}
	next, err := DecodeMeta(argv[2])
	if err != nil {
		w.WriteError("ERR " + err.Error())
		return
	}
	var curVersion uint64
	if r.meta != nil {
		cur, err := DecodeMeta(r.meta)
		if err != nil {
			// Checked when it was applied or restored.
			panic(errors.AssertionFailedf("cluster: the applied meta record: %v", err))
		}
		curVersion = cur.Version
		// The groups stay, but for the one a split adds (AddGroup).
		added := len(next.Targets) == len(cur.Targets)+1 && next.Move.AddedGroup() && next.Move.Group == uint64(len(next.Targets))
		if len(cur.Targets) != len(next.Targets) && !added {
			w.WriteError("ERR meta record: " + strconv.Itoa(len(next.Targets)) + " groups, the cluster has " + strconv.Itoa(len(cur.Targets)))
			return
		}
	}
	if next.Version != curVersion+1 {
		w.WriteError("ERR meta record: version " + strconv.FormatUint(next.Version, 10) + " does not follow the applied " + strconv.FormatUint(curVersion, 10))
		return
	}
	r.meta = bytes.Clone(argv[2])
	w.WriteSimple("OK")
	r.metaChanged()
}

// metaChanged tells the node the record as applied (nil: none yet).
func (r *Replica) metaChanged() {
	if r.opts.OnMetaChanged != nil {
		r.opts.OnMetaChanged(r.meta)
	}
}

// MetaRecordBytes is the meta record as this replica applied it (nil:
// none, the bootstrap holds). The bytes must not be changed. Callers must
// hold the replica's owner.
func (r *Replica) MetaRecordBytes() []byte { return r.meta }

// restoreReserved installs a snapshot entry of a reserved type: the meta
// record here, the others where they are kept.
func (r *Replica) restoreReserved(typ uint8, value []byte) error {
	if typ == snapTypeMeta {
		if _, err := DecodeMeta(value); err != nil {
			return errors.Wrap(err, "snapshot")
		}
		r.meta = bytes.Clone(value)
		return nil
	}
	return r.restoreSpecial(typ, value)
}

// resetReserved empties what a snapshot holds besides keys before one
// loads.
func (r *Replica) resetReserved() {
	r.resetSpecial()
	r.meta = nil
}

// execEntryCommand applies one command of a logged entry: the meta record
// here, the rest where execLogged sends it.
func (r *Replica) execEntryCommand(ms int64, seed uint64, argv [][]byte, w engine.Writer) {
	if IsMetaWrite(argv) {
		r.applyMeta(argv, w)
		return
	}
	r.execLogged(ms, seed, argv, w)
}
