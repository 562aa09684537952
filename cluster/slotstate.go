package cluster

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/engine"
)

// A replica group's slots (docs/cluster.md, "Sharding"): which of the
// 16384 slots the group owns, which it is handing to another group
// (migrating) or taking from one (importing), and which keys of a
// migrating slot are on their way out (locked). The state is replicated:
// only CLUSTER RESHARD commands change it, as log entries applied
// identically on every replica (at the entry's time), it is saved in
// snapshots and rebuilt by replay. With Options.Slots nil it is off and
// the group serves every slot, as a group did before sharding.
//
// The gate (gate) decides, where a keyed command executes — at apply time
// for writes, so every replica decides alike, and at execution time for
// reads — whether this group serves it, redirects it (MOVED, ASK) or asks
// the client to retry (TRYAGAIN), with Redis Cluster's rules.

// slotState is the replicated slot state of a group.
type slotState struct {
	on    bool
	group uint64
	// Per slot: owned; the target group of a migration (0: none); the
	// source group of an import (0: none).
	owned     []bool
	migrating []uint64
	importing []uint64
	// locked are the keys MOVEKEYS handed out and DELKEYS has not deleted
	// yet: the gate refuses them (TRYAGAIN) so that they cannot change
	// between being copied to the target and being deleted here.
	locked map[string]struct{}
	// cursor is the last key MOVEKEYS locked: the next call looks after
	// it first, so that a move walks the keyspace about once rather than
	// once per batch. Only a hint (it is replicated so that every replica
	// locks the same keys): a call that finds nothing after it looks from
	// the start before answering that nothing is left.
	cursor string
	// piece is the collection moving in pieces (too large for one piece
	// of movePieceBytes), if any: it is locked, and each MOVEKEYS sends
	// its next piece alone until DELKEYS confirms the last.
	piece movePiece
}

// movePiece is the progress of a collection moving in pieces: done is the
// element index DELKEYS last confirmed (imported), sent where the piece
// the last MOVEKEYS sent ends. A resent MOVEKEYS sends the same piece
// again (from done), a resent DELKEYS confirms the same end.
type movePiece struct {
	key        string
	done, sent uint64
}

func (s *slotState) init(group uint64, ranges []SlotRange) {
	*s = slotState{on: true, group: group, owned: make([]bool, SlotCount),
		migrating: make([]uint64, SlotCount), importing: make([]uint64, SlotCount), locked: map[string]struct{}{}}
	for _, r := range ranges {
		for slot := r.First; slot <= r.Last; slot++ {
			s.owned[slot] = true
		}
	}
}

// info is the state as SlotInfo: runs of equal state as sorted ranges.
func (s *slotState) info() SlotInfo {
	si := SlotInfo{Group: s.group}
	runs := func(val func(slot int) uint64, add func(r SlotRange, v uint64)) {
		start := -1
		var cur uint64
		for slot := 0; slot <= SlotCount; slot++ {
			v := uint64(0)
			if slot < SlotCount {
				v = val(slot)
			}
			if start >= 0 && v != cur {
				add(SlotRange{First: start, Last: slot - 1}, cur)
				start = -1
			}
			if start < 0 && v != 0 {
				start, cur = slot, v
			}
		}
	}
	runs(func(slot int) uint64 {
		if s.owned[slot] {
			return 1
		}
		return 0
	}, func(r SlotRange, _ uint64) { si.Owned = append(si.Owned, r) })
	runs(func(slot int) uint64 { return s.migrating[slot] },
		func(r SlotRange, g uint64) { si.Migrating = append(si.Migrating, SlotMove{SlotRange: r, Group: g}) })
	runs(func(slot int) uint64 { return s.importing[slot] },
		func(r SlotRange, g uint64) { si.Importing = append(si.Importing, SlotMove{SlotRange: r, Group: g}) })
	return si
}

// lockedKeys are the locked keys, sorted (map order never reaches a reply).
func (s *slotState) lockedKeys() []string {
	out := make([]string, 0, len(s.locked))
	for k := range s.locked {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The slot state in a snapshot: one entry of the reserved type
// snapTypeSlots (never an engine value type, nor disk.SnapTypeFunctions),
// key empty, before the keys. Its value:
//
//	u8      slotStateVersion (1)
//	uvarint group
//	uvarint owned range count, then per range uvarint first, last
//	uvarint migrating range count, then per range first, last, target
//	uvarint importing range count, then per range first, last, source
//	uvarint locked key count, then per key (sorted) uvarint length, bytes
//	uvarint cursor length, cursor bytes
//	uvarint piece key length, piece key, uvarint done, uvarint sent
//	        (version 2 only: the collection moving in pieces)
//
// A state with no collection moving in pieces is written as version 1,
// the same bytes as before pieces existed; both versions load.
const (
	snapTypeSlots    uint8 = 0xFE
	slotStateVersion       = 2
)

func (s *slotState) encode() []byte {
	si := s.info()
	// Version 1 while no collection moves in pieces: the same bytes as
	// before pieces existed.
	version := byte(1)
	if s.piece.key != "" {
		version = slotStateVersion
	}
	b := []byte{version}
	b = binary.AppendUvarint(b, s.group)
	b = binary.AppendUvarint(b, uint64(len(si.Owned)))
	for _, r := range si.Owned {
		b = binary.AppendUvarint(binary.AppendUvarint(b, uint64(r.First)), uint64(r.Last))
	}
	for _, moves := range [][]SlotMove{si.Migrating, si.Importing} {
		b = binary.AppendUvarint(b, uint64(len(moves)))
		for _, m := range moves {
			b = binary.AppendUvarint(binary.AppendUvarint(b, uint64(m.First)), uint64(m.Last))
			b = binary.AppendUvarint(b, m.Group)
		}
	}
	keys := s.lockedKeys()
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.cursor)))
	b = append(b, s.cursor...)
	if version == 1 {
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(s.piece.key)))
	b = append(b, s.piece.key...)
	b = binary.AppendUvarint(b, s.piece.done)
	return binary.AppendUvarint(b, s.piece.sent)
}

var errBadSlotState = errors.New("malformed slot state")

// decode replaces s with the state in b, or fails and changes nothing.
func (s *slotState) decode(b []byte) error {
	if len(b) < 1 || (b[0] != 1 && b[0] != slotStateVersion) {
		return errors.Wrap(errBadSlotState, "unknown version")
	}
	version := b[0]
	b = b[1:]
	next := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errBadSlotState
		}
		b = b[n:]
		return v, nil
	}
	rng := func() (SlotRange, error) {
		a, err1 := next()
		z, err2 := next()
		if err1 != nil || err2 != nil {
			return SlotRange{}, errBadSlotState
		}
		if a >= SlotCount || z >= SlotCount || a > z {
			return SlotRange{}, errors.Wrapf(errBadSlotState, "range %d-%d", a, z)
		}
		return SlotRange{First: int(a), Last: int(z)}, nil
	}
	group, err := next()
	if err != nil {
		return err
	}
	var n2 slotState
	n2.init(group, nil)
	count, err := next()
	if err != nil || count > SlotCount {
		return errBadSlotState
	}
	for range count {
		r, err := rng()
		if err != nil {
			return err
		}
		for slot := r.First; slot <= r.Last; slot++ {
			n2.owned[slot] = true
		}
	}
	for _, dst := range [][]uint64{n2.migrating, n2.importing} {
		count, err := next()
		if err != nil || count > SlotCount {
			return errBadSlotState
		}
		for range count {
			r, err := rng()
			if err != nil {
				return err
			}
			g, err := next()
			if err != nil || g == 0 {
				return errBadSlotState
			}
			for slot := r.First; slot <= r.Last; slot++ {
				dst[slot] = g
			}
		}
	}
	count, err = next()
	if err != nil || count > uint64(len(b)) {
		return errBadSlotState
	}
	for range count {
		l, err := next()
		if err != nil || l > uint64(len(b)) {
			return errBadSlotState
		}
		n2.locked[string(b[:l])] = struct{}{}
		b = b[l:]
	}
	l, err := next()
	if err != nil || l > uint64(len(b)) {
		return errors.Wrap(errBadSlotState, "cursor")
	}
	n2.cursor = string(b[:l])
	b = b[l:]
	if version >= 2 {
		l, err := next()
		if err != nil || l > uint64(len(b)) {
			return errors.Wrap(errBadSlotState, "piece")
		}
		n2.piece.key = string(b[:l])
		b = b[l:]
		if n2.piece.done, err = next(); err != nil {
			return err
		}
		if n2.piece.sent, err = next(); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return errors.Wrap(errBadSlotState, "trailing bytes")
	}
	*s = n2
	return nil
}

// CLUSTER RESHARD <g> <step> ...: the steps of a slot move (reshard.go
// drives them), logged like any write and applied by applyReshard.
const (
	rsNone = iota
	rsImporting
	rsMigrating
	rsMoveKeys
	rsImportKeys
	rsDelKeys
	rsNode
	rsStable
	rsUnknown // CLUSTER RESHARD with a step keel does not know: logged, and refused at apply
)

var reshardSteps = []string{rsImporting: "importing", rsMigrating: "migrating", rsMoveKeys: "movekeys",
	rsImportKeys: "importkeys", rsDelKeys: "delkeys", rsNode: "node", rsStable: "stable"}

func reshardKind(argv [][]byte) int {
	if len(argv) < 2 || !equalFold(argv[0], "cluster") || !equalFold(argv[1], "reshard") {
		return rsNone
	}
	if len(argv) < 4 {
		return rsUnknown
	}
	for k, name := range reshardSteps {
		if name != "" && equalFold(argv[3], name) {
			return k
		}
	}
	return rsUnknown
}

// IsReshardCommand reports whether argv is CLUSTER RESHARD ..., which a
// runtime must hand to the group it names (ReshardGroup) like a write.
func IsReshardCommand(argv [][]byte) bool { return reshardKind(argv) != rsNone }

// ReshardGroup is the group a CLUSTER RESHARD command is addressed to;
// false when argv is not one or names no valid group.
func ReshardGroup(argv [][]byte) (uint64, bool) {
	if reshardKind(argv) == rsNone || len(argv) < 3 {
		return 0, false
	}
	g, err := strconv.ParseUint(string(argv[2]), 10, 64)
	if err != nil || g == 0 {
		return 0, false
	}
	return g, true
}

// ReshardSlot is a slot a CLUSTER RESHARD command concerns (its first
// slot, or its first key's), for a MOVED redirect to the group's leader;
// 0 when it names none.
func ReshardSlot(argv [][]byte) int {
	switch reshardKind(argv) {
	case rsImporting, rsMigrating, rsMoveKeys, rsNode, rsStable:
		if len(argv) > 4 {
			if n, err := strconv.Atoi(string(argv[4])); err == nil && n >= 0 && n < SlotCount {
				return n
			}
		}
	case rsImportKeys, rsDelKeys:
		if len(argv) > 4 {
			return KeySlot(argv[4])
		}
	}
	return 0
}

// Bounds of one MOVEKEYS: the keys (locked earlier or now) and the bytes
// of keys and values one reply (and so the IMPORTKEYS built from it, one
// log command) holds. One key larger than commandBytesMax cannot move.
const (
	moveKeysCountMax = 10000
	moveKeysBytesMax = 64 << 20
	// movePieceBytes bounds what one MOVEKEYS reply carries of a
	// collection: a larger one (a set of a million members) moves in
	// pieces of this size, each its own MOVEKEYS/IMPORTKEYS/DELKEYS round,
	// so no log entry (and no apply on the target) grows with it.
	movePieceBytes = 1 << 20
)

// Slots is the group's slot state as this replica has applied it (Group
// and no ranges when slot gating is off).
func (r *Replica) Slots() SlotInfo {
	if !r.slots.on {
		return SlotInfo{Group: r.opts.Group}
	}
	return r.slots.info()
}

// initSlots sets the state a new group starts with (Options.Slots).
func (r *Replica) initSlots() {
	if r.opts.Slots != nil {
		r.slots.init(r.opts.Group, r.opts.Slots)
	}
}

func (r *Replica) slotsChanged() {
	if r.slots.on && r.opts.OnSlotsChanged != nil {
		r.opts.OnSlotsChanged(r.slots.info())
	}
}

// restoreSlots installs a snapshot's slot state. With gating off it is
// ignored: the node was restarted without groups, and serves every slot.
func (r *Replica) restoreSlots(b []byte) error {
	if !r.slots.on {
		return nil
	}
	var s slotState
	if err := s.decode(b); err != nil {
		return errors.Wrap(err, "snapshot slot state")
	}
	if s.group != r.opts.Group {
		return errors.Newf("snapshot slot state is group %d's, this replica is group %d's", s.group, r.opts.Group)
	}
	r.slots = s
	return nil
}

// slotsDump is the slot state for a snapshot (nil when off).
func (r *Replica) slotsDump() []byte {
	if !r.slots.on {
		return nil
	}
	return r.slots.encode()
}

// slotRedirect formats a redirect (a default text when no SlotRedirect is
// configured). req nil: the command applies from the log, and the request
// handed to SlotRedirect is built from argv only now, so that applying a
// write allocates nothing for the gate.
func (r *Replica) slotRedirect(req *Request, argv [][]byte, asking bool, slot int, ask bool, group uint64) string {
	if req == nil {
		req = &Request{Argv: argv, Asking: asking}
	}
	if r.opts.SlotRedirect != nil {
		return r.opts.SlotRedirect(req, slot, ask, group)
	}
	if ask {
		return "ASK " + strconv.Itoa(slot) + " group-" + strconv.FormatUint(group, 10)
	}
	return "MOVED " + strconv.Itoa(slot) + " unknown"
}

const (
	tryAgainLockedMsg = "TRYAGAIN Key is being moved to another group (slot migrating), retry later"
	tryAgainMixedMsg  = "TRYAGAIN Multiple keys request during rehashing of slot"
)

// gateArgv is the gate for one command (plain or FCALL).
func (r *Replica) gateArgv(ms int64, req *Request, argv [][]byte, asking bool) string {
	if !r.slots.on {
		return ""
	}
	slot, msg := CommandSlot(argv)
	if msg != "" || slot < 0 {
		return msg
	}
	return r.gateSlot(ms, req, argv, slot, asking, func(visit func(key []byte) bool) { r.visitKeys(argv, visit) })
}

// gateTxn is the gate for a whole MULTI/EXEC: its keys share one slot.
func (r *Replica) gateTxn(ms int64, req *Request, cmds [][][]byte, asking bool) string {
	if !r.slots.on {
		return ""
	}
	slot, msg := TxnSlot(cmds)
	if msg != "" || slot < 0 {
		return msg
	}
	var first [][]byte
	if len(cmds) > 0 {
		first = cmds[0]
	}
	return r.gateSlot(ms, req, first, slot, asking, func(visit func(key []byte) bool) {
		for _, argv := range cmds {
			if !r.visitKeys(argv, visit) {
				return
			}
		}
	})
}

// visitKeys calls visit for each key of argv until it returns false.
func (r *Replica) visitKeys(argv [][]byte, visit func(key []byte) bool) bool {
	if functionKind(argv) == fnCall {
		if len(argv) < 3 || r.opts.Knobs.fcallKeysUngated() {
			return true
		}
		n, ok := parseNumKeys(argv[2], len(argv)-3)
		if !ok {
			return true
		}
		for _, k := range argv[3 : 3+n] {
			if !visit(k) {
				return false
			}
		}
		return true
	}
	c := engine.Lookup(argv[0])
	if c == nil || !c.ArityOK(len(argv)) {
		return true
	}
	for _, i := range c.Keys(argv) {
		if !visit(argv[i]) {
			return false
		}
	}
	return true
}

// gateSlot applies Redis Cluster's rules to a request whose keys (walked by
// keys) all hash to slot. "" means serve it here. req may be nil (see
// slotRedirect).
func (r *Replica) gateSlot(ms int64, req *Request, argv [][]byte, slot int, asking bool, keys func(func([]byte) bool)) string {
	s := &r.slots
	if !s.owned[slot] {
		if asking && s.importing[slot] != 0 {
			return ""
		}
		return r.slotRedirect(req, argv, asking, slot, false, 0)
	}
	to := s.migrating[slot]
	if to == 0 {
		return ""
	}
	locked, present, absent := false, 0, 0
	keys(func(k []byte) bool {
		if _, ok := s.locked[string(k)]; ok {
			locked = true
			return false
		}
		if r.db.Live(ms, k) {
			present++
		} else {
			absent++
		}
		return true
	})
	switch {
	case locked:
		return tryAgainLockedMsg
	case absent == 0:
		return ""
	case present == 0:
		return r.slotRedirect(req, argv, asking, slot, true, to)
	}
	return tryAgainMixedMsg
}

// askingMarker is a pseudo-command logged in front of a command (or as a
// transaction's first command) that the client sent after ASKING, so that
// every replica gates it alike at apply time. No client can send it: a
// command of that name is unknown, so never logged.
var askingMarker = []byte("\x00asking")

func isAskingMarker(argv [][]byte) bool {
	return len(argv) == 1 && bytes.Equal(argv[0], askingMarker)
}

// withAsking prefixes argv with the marker when the gate needs it: only
// when gating is on and the request came after ASKING.
func (r *Replica) withAsking(req *Request, argv [][]byte) [][]byte {
	if !r.slots.on || !req.Asking {
		return argv
	}
	return append([][]byte{askingMarker}, argv...)
}

// splitAsking undoes withAsking on a logged command.
func splitAsking(argv [][]byte) ([][]byte, bool) {
	if len(argv) > 1 && bytes.Equal(argv[0], askingMarker) {
		return argv[1:], true
	}
	return argv, false
}

// applyReshard applies one CLUSTER RESHARD step at ms, identically on
// every replica. A bad step answers an error and changes nothing.
func (r *Replica) applyReshard(ms int64, argv [][]byte, w engine.Writer) {
	if !r.slots.on {
		w.WriteError("ERR this node is not sharded: CLUSTER RESHARD needs --groups")
		return
	}
	kind := reshardKind(argv)
	if kind == rsUnknown {
		w.WriteError("ERR unknown CLUSTER RESHARD step: want IMPORTING, MIGRATING, MOVEKEYS, IMPORTKEYS, DELKEYS, NODE or STABLE")
		return
	}
	name := reshardSteps[kind]
	g, err := strconv.ParseUint(string(argv[2]), 10, 64)
	if err != nil || g == 0 {
		w.WriteError("ERR invalid group '" + string(argv[2]) + "': a positive integer")
		return
	}
	if g != r.slots.group {
		w.WriteError("ERR this is group " + strconv.FormatUint(r.slots.group, 10) + ", the command names group " + string(argv[2]))
		return
	}
	args := argv[4:]
	arity := func(n int) bool {
		if len(args) != n {
			w.WriteError("ERR wrong number of arguments for 'cluster|reshard|" + name + "' command")
			return false
		}
		return true
	}
	switch kind {
	case rsImporting, rsMigrating, rsNode:
		if !arity(3) {
			return
		}
		rg, ok := parseRange(args[0], args[1], w)
		if !ok {
			return
		}
		other, err := strconv.ParseUint(string(args[2]), 10, 64)
		if err != nil || other == 0 {
			w.WriteError("ERR invalid group '" + string(args[2]) + "': a positive integer")
			return
		}
		var msg string
		switch kind {
		case rsImporting:
			msg = r.reshardImporting(rg, other)
		case rsMigrating:
			msg = r.reshardMigrating(rg, other)
		default:
			msg = r.reshardNode(ms, rg, other)
		}
		if msg != "" {
			w.WriteError(msg)
			return
		}
		w.WriteSimple("OK")
		r.slotsChanged()
	case rsStable:
		if !arity(2) {
			return
		}
		rg, ok := parseRange(args[0], args[1], w)
		if !ok {
			return
		}
		if msg := r.reshardStable(ms, rg); msg != "" {
			w.WriteError(msg)
			return
		}
		w.WriteSimple("OK")
		r.slotsChanged()
	case rsMoveKeys:
		if !arity(3) {
			return
		}
		rg, ok := parseRange(args[0], args[1], w)
		if !ok {
			return
		}
		count, err := strconv.Atoi(string(args[2]))
		if err != nil || count < 1 || count > moveKeysCountMax {
			w.WriteError("ERR invalid count '" + string(args[2]) + "': 1 to " + strconv.Itoa(moveKeysCountMax))
			return
		}
		r.reshardMoveKeys(ms, rg, count, w)
	case rsImportKeys:
		if len(args) == 0 || len(args)%3 != 0 {
			w.WriteError("ERR wrong number of arguments for 'cluster|reshard|importkeys' command: want key value expireAt triples")
			return
		}
		r.reshardImportKeys(ms, args, w)
	case rsDelKeys:
		if len(args) == 0 {
			w.WriteError("ERR wrong number of arguments for 'cluster|reshard|delkeys' command")
			return
		}
		r.reshardDelKeys(ms, args, w)
	}
}

func parseRange(a, b []byte, w engine.Writer) (SlotRange, bool) {
	first, err1 := strconv.Atoi(string(a))
	last, err2 := strconv.Atoi(string(b))
	rg := SlotRange{First: first, Last: last}
	if err1 != nil || err2 != nil {
		w.WriteError("ERR invalid slot range '" + string(a) + " " + string(b) + "': integers")
		return rg, false
	}
	if err := rg.Check(); err != nil {
		w.WriteError("ERR " + err.Error())
		return rg, false
	}
	return rg, true
}

func slotErr(slot int, what string) string {
	return "ERR slot " + strconv.Itoa(slot) + " " + what
}

func (r *Replica) reshardImporting(rg SlotRange, src uint64) string {
	s := &r.slots
	if src == s.group {
		return "ERR a group cannot import from itself"
	}
	for slot := rg.First; slot <= rg.Last; slot++ {
		switch {
		case s.owned[slot]:
			return slotErr(slot, "is already owned by this group")
		case s.importing[slot] != 0 && s.importing[slot] != src:
			return slotErr(slot, "is being imported from group "+strconv.FormatUint(s.importing[slot], 10))
		}
	}
	for slot := rg.First; slot <= rg.Last; slot++ {
		s.importing[slot] = src
	}
	return ""
}

func (r *Replica) reshardMigrating(rg SlotRange, dst uint64) string {
	s := &r.slots
	if dst == s.group {
		return "ERR a group cannot migrate to itself"
	}
	for slot := rg.First; slot <= rg.Last; slot++ {
		switch {
		case !s.owned[slot]:
			return slotErr(slot, "is not owned by this group")
		case s.migrating[slot] != 0 && s.migrating[slot] != dst:
			return slotErr(slot, "is migrating to group "+strconv.FormatUint(s.migrating[slot], 10))
		}
	}
	for slot := rg.First; slot <= rg.Last; slot++ {
		s.migrating[slot] = dst
	}
	return ""
}

func (r *Replica) reshardNode(ms int64, rg SlotRange, owner uint64) string {
	s := &r.slots
	if owner == s.group {
		for slot := rg.First; slot <= rg.Last; slot++ {
			if !s.owned[slot] && s.importing[slot] == 0 {
				return slotErr(slot, "is neither owned nor being imported by this group")
			}
		}
		for slot := rg.First; slot <= rg.Last; slot++ {
			s.owned[slot], s.importing[slot] = true, 0
		}
		return ""
	}
	for slot := rg.First; slot <= rg.Last; slot++ {
		if s.owned[slot] && s.migrating[slot] != owner {
			return slotErr(slot, "is owned by this group and not migrating to group "+strconv.FormatUint(owner, 10))
		}
	}
	if n := r.lockedIn(ms, rg); n > 0 {
		return "ERR " + strconv.Itoa(n) + " keys of slots " + rg.String() + " are still being moved"
	}
	left := ""
	r.db.AscendLive(ms, nil, func(k []byte) bool {
		return rg.Contains(KeySlot(k)) && s.owned[KeySlot(k)]
	}, func(e engine.Entry) bool {
		left = string(e.Key)
		return false
	})
	if left != "" {
		return "ERR slot " + strconv.Itoa(KeySlot([]byte(left))) + " still holds keys (" + strconv.Quote(left) + "): move them first"
	}
	for slot := rg.First; slot <= rg.Last; slot++ {
		s.owned[slot], s.migrating[slot] = false, 0
	}
	return ""
}

func (r *Replica) reshardStable(ms int64, rg SlotRange) string {
	if n := r.lockedIn(ms, rg); n > 0 {
		return "ERR " + strconv.Itoa(n) + " keys of slots " + rg.String() + " are being moved: finish with DELKEYS first"
	}
	for slot := rg.First; slot <= rg.Last; slot++ {
		r.slots.migrating[slot], r.slots.importing[slot] = 0, 0
	}
	return ""
}

// lockedIn counts the locked keys of slots in rg that still hold a value
// at ms. Locked keys that expired are unlocked: an expired key is never
// moved, and a lock must not outlive its key (a replica whose clock ran
// ahead may have found a key expired that the leader locked; its lock
// goes here, or with the next MOVEKEYS, once the key has expired
// everywhere).
func (r *Replica) lockedIn(ms int64, rg SlotRange) int {
	n := 0
	var dead []string
	for k := range r.slots.locked {
		if !rg.Contains(KeySlot([]byte(k))) {
			continue
		}
		if r.db.Live(ms, []byte(k)) {
			n++
		} else {
			dead = append(dead, k)
		}
	}
	for _, k := range dead {
		delete(r.slots.locked, k)
		if r.slots.piece.key == k {
			r.slots.piece = movePiece{}
		}
	}
	return n
}

// reshardMoveKeys answers MOVEKEYS: the keys of rg locked by an earlier
// call first, then up to count more live keys of rg, in key order, locked
// now, as key, value, meta triples. Locked keys that expired since are
// dropped (and unlocked): expired keys are deleted, never moved.
//
// A string's meta is its deadline (Unix ms, 0 none) and its value the
// string. A collection's meta is "deadline:type:from:more" and its value a
// piece of its encoding (engine.Entry.AppendPiece) starting at element
// from; more is 1 when pieces follow. A collection larger than
// movePieceBytes is the only key of the replies that carry it, one piece
// each, until DELKEYS confirms its last piece (movePiece).
func (r *Replica) reshardMoveKeys(ms int64, rg SlotRange, count int, w engine.Writer) {
	s := &r.slots
	for slot := rg.First; slot <= rg.Last; slot++ {
		if !s.owned[slot] || s.migrating[slot] == 0 {
			w.WriteError(slotErr(slot, "is not migrating from this group"))
			return
		}
	}
	type kv struct {
		key, val []byte
		meta     string
	}
	var out []kv
	bytesOut := 0
	var gone [][]byte
	reply := func() {
		for _, k := range gone {
			delete(s.locked, string(k))
			r.db.Exec(ms, [][]byte{[]byte("DEL"), k}, &engine.Discard{}) // collect it if it only expired
		}
		w.WriteArray(3 * len(out))
		for _, e := range out {
			w.WriteBulk(e.key)
			w.WriteBulk(e.val)
			w.WriteBulkString(e.meta)
		}
	}
	if p := &s.piece; p.key != "" && rg.Contains(KeySlot([]byte(p.key))) {
		key := []byte(p.key)
		if e, found := r.db.LiveEntry(ms, key); found {
			val, next := e.AppendPiece(nil, p.done, movePieceBytes)
			p.sent = next
			out = append(out, kv{key: key, val: val, meta: pieceMeta(e, p.done, next)})
			reply()
			return
		}
		gone = append(gone, key)
		*p = movePiece{}
	}
	// value is what moves of e: the whole value, or (next short of
	// e.Units()) the first piece of a collection too large for one.
	value := func(e engine.Entry) (val []byte, meta string, next uint64) {
		if e.Type == engine.TypeString {
			return bytes.Clone(e.Value), strconv.FormatInt(e.ExpireAt, 10), 1
		}
		val, next = e.AppendPiece(nil, 0, movePieceBytes)
		return val, pieceMeta(e, 0, next), next
	}
	for _, k := range s.lockedKeys() {
		key := []byte(k)
		if !rg.Contains(KeySlot(key)) {
			continue
		}
		e, found := r.db.LiveEntry(ms, key)
		if !found {
			gone = append(gone, key)
			continue
		}
		val, meta, _ := value(e)
		out = append(out, kv{key: key, val: val, meta: meta})
		bytesOut += len(key) + len(val)
	}
	match := func(k []byte) bool {
		if !rg.Contains(KeySlot(k)) {
			return false
		}
		_, isLocked := s.locked[string(k)]
		return !isLocked
	}
	added := 0
	lock := func(e engine.Entry) bool {
		val, meta, next := value(e)
		whole := next >= e.Units()
		if !whole && len(out) > 0 {
			return false // a collection moving in pieces goes alone: the next call starts with it
		}
		if len(out) > 0 && bytesOut+len(e.Key)+len(val) > moveKeysBytesMax {
			return false
		}
		key := bytes.Clone(e.Key)
		s.locked[string(key)] = struct{}{}
		s.cursor = string(key)
		out = append(out, kv{key: key, val: val, meta: meta})
		bytesOut += len(e.Key) + len(val)
		added++
		if !whole {
			s.piece = movePiece{key: string(key), sent: next}
			return false
		}
		return added < count && len(out) < moveKeysCountMax
	}
	// The locks a driver has not released yet count against the bounds:
	// MOVEKEYS without DELKEYS cannot lock a whole slot range.
	if bytesOut < moveKeysBytesMax && len(out) < moveKeysCountMax {
		if s.cursor != "" {
			r.db.AscendLive(ms, []byte(s.cursor), match, lock)
		}
		if added == 0 {
			r.db.AscendLive(ms, nil, match, lock)
		}
	}
	reply()
}

// pieceMeta is the meta of a collection's piece: deadline, type, first
// element, and whether pieces follow.
func pieceMeta(e engine.Entry, from, next uint64) string {
	more := "0"
	if next < e.Units() {
		more = "1"
	}
	return strconv.FormatInt(e.ExpireAt, 10) + ":" + strconv.Itoa(int(e.Type)) + ":" +
		strconv.FormatUint(from, 10) + ":" + more
}

// importMeta is a parsed MOVEKEYS meta.
type importMeta struct {
	at   int64
	typ  engine.ValueType // 0: a string stored with SET
	from uint64
	more bool
}

func parseImportMeta(b []byte) (importMeta, bool) {
	f := strings.Split(string(b), ":")
	var m importMeta
	var err error
	if m.at, err = strconv.ParseInt(f[0], 10, 64); err != nil || m.at < 0 {
		return m, false
	}
	if len(f) == 1 {
		return m, true
	}
	if len(f) != 4 {
		return m, false
	}
	t, err1 := strconv.ParseUint(f[1], 10, 8)
	from, err2 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || (f[3] != "0" && f[3] != "1") {
		return m, false
	}
	m.typ, m.from, m.more = engine.ValueType(t), from, f[3] == "1"
	if !m.typ.Known() || m.typ.Continued() || m.typ == engine.TypeString {
		return m, false
	}
	return m, true
}

// reshardImportKeys stores moved keys with their absolute deadlines:
// strings with SET ... PXAT, collections' pieces with engine.ImportPiece
// (through the engine like any write); keys already expired at ms are
// skipped. Every key must belong to a slot being imported. It replies how
// many keys (or pieces) it stored.
func (r *Replica) reshardImportKeys(ms int64, args [][]byte, w engine.Writer) {
	s := &r.slots
	metas := make([]importMeta, 0, len(args)/3)
	for i := 0; i < len(args); i += 3 {
		slot := KeySlot(args[i])
		if s.importing[slot] == 0 {
			w.WriteError(slotErr(slot, "is not being imported by this group"))
			return
		}
		m, ok := parseImportMeta(args[i+2])
		if !ok {
			w.WriteError("ERR invalid expireAt '" + string(args[i+2]) + "' for key " + strconv.Quote(string(args[i])))
			return
		}
		metas = append(metas, m)
	}
	now := max(ms, r.db.Clock())
	var d engine.Discard
	stored := int64(0)
	for i := 0; i < len(args); i += 3 {
		m := metas[i/3]
		if m.at != 0 && now > m.at {
			continue
		}
		if m.typ != 0 {
			// Deterministic on every replica: a refused piece (malformed,
			// or a later piece without its first) is refused everywhere.
			if err := r.db.ImportPiece(ms, args[i], m.typ, m.from, args[i+1], m.at); err != nil {
				w.WriteError("ERR IMPORTKEYS: " + err.Error())
				return
			}
			stored++
			continue
		}
		cmd := [][]byte{[]byte("SET"), args[i], args[i+1]}
		if m.at != 0 && !r.opts.Knobs.movedKeysLoseTTL() {
			cmd = append(cmd, []byte("PXAT"), []byte(strconv.FormatInt(m.at, 10)))
		}
		d.Err = ""
		r.db.Exec(ms, cmd, &d)
		if d.Err != "" {
			// Cannot happen for a key MOVEKEYS read; never half-apply silently.
			panic(errors.AssertionFailedf("cluster: IMPORTKEYS store of %q: %s", args[i], d.Err))
		}
		stored++
	}
	w.WriteInt(stored)
}

// reshardDelKeys deletes the given keys that are locked, and unlocks them.
// For the collection moving in pieces it confirms the piece last sent
// instead, until that piece was its last.
func (r *Replica) reshardDelKeys(ms int64, keys [][]byte, w engine.Writer) {
	var d engine.Discard
	n := int64(0)
	for _, k := range keys {
		if p := &r.slots.piece; p.key == string(k) {
			if e, found := r.db.LiveEntry(ms, k); found && p.sent < e.Units() {
				p.done = p.sent
				continue
			}
			*p = movePiece{}
		}
		if _, ok := r.slots.locked[string(k)]; !ok {
			continue
		}
		delete(r.slots.locked, string(k))
		r.db.Exec(ms, [][]byte{[]byte("DEL"), k}, &d)
		n++
	}
	w.WriteInt(n)
}

// reshardRefusal answers a RESHARD command on a group without slot state
// before it reaches the log: nothing changes for unsharded nodes.
func (r *Replica) reshardRefusal(argv [][]byte) string {
	if reshardKind(argv) == rsNone || r.slots.on {
		return ""
	}
	return "ERR this node is not sharded: CLUSTER " + strings.ToUpper(string(argv[1])) + " needs --groups"
}
