package sim

import (
	"encoding/binary"
	"strconv"
)

// Attacks on the cluster bus (issue 15, item 8): seeded frames that no
// honest node sent, mixed into the node-to-node traffic of a replicated
// world while a scenario has them on (Network.SetAttack). Each delivered
// node-to-node message may bring, besides itself:
//
//   - a forged frame: a copy of it claiming to come from a node id that
//     is not a member of the cluster (the transport's authenticated
//     sender; node.Route must refuse it from the address book);
//   - a replay: a frame sent earlier on any link, delivered again to its
//     receiver, from its sender (Raft and the snapshot stream must be
//     immune to stale and duplicated messages);
//   - a corrupted copy: the same frame with one bit flipped, from its
//     sender (the production transport checks a CRC; one that passes
//     anyway must be refused or ignored, never crash a node or change
//     its state);
//   - a frame for a group the receiver does not host (a multi-group
//     frame whose group id is rewritten past the node's groups).
//
// The receiving node takes an attack frame like any other (node.Route,
// then Step), but an error it returns for one is a refusal, counted and
// traced, not a failure; a panic is a failure like any other. What the
// world then checks is the scenario's: every node stays up, histories stay
// linearizable, replicas converge, no key appears that no client wrote.

// BusAttack is how often each kind of attack frame comes along with a
// delivered node-to-node message (probabilities, 0 off).
type BusAttack struct {
	ForgeProb, ReplayProb, CorruptProb, ForeignGroupProb float64
}

// Bounds of the attacker.
const (
	// attackReplayFrames: past frames kept for replays (the oldest
	// are overwritten).
	attackReplayFrames = 512
	// attackForgedIDBase: forged senders are ids from here on, never a
	// node of a simulated cluster.
	attackForgedIDBase = 90
	// multiGroupFrameTag mirrors node's peerFrameGroupTag: a multi-group
	// frame starts with it, then the group as a uvarint.
	multiGroupFrameTag = 0xC7
)

// AttackStats counts the attack frames sent, by kind.
type AttackStats struct {
	Forged, Replayed, Corrupted, ForeignGroup int64
}

type pastFrame struct {
	from, to uint64
	data     []byte
}

// attacker is the network's attack state.
type attacker struct {
	cfg    BusAttack
	past   []pastFrame
	next   int
	stats  AttackStats
	target map[uint64]func(from uint64, data []byte)
}

// SetAttack turns bus attacks on (or off, with the zero BusAttack). Their
// randomness is the network's "net/attack" stream: turning them on
// reshuffles nothing else.
func (n *Network) SetAttack(a BusAttack) {
	if a != (BusAttack{}) && !n.gate.allow("bus-attack", true) {
		return
	}
	if n.attack == nil {
		n.attack = &attacker{target: map[uint64]func(uint64, []byte){}}
		n.attackRng = n.w.Stream("net/attack")
	}
	n.attack.cfg = a
	n.w.Trace("net", "bus attack "+strconv.FormatFloat(a.ForgeProb, 'g', -1, 64)+"/"+strconv.FormatFloat(a.ReplayProb, 'g', -1, 64)+"/"+
		strconv.FormatFloat(a.CorruptProb, 'g', -1, 64)+"/"+strconv.FormatFloat(a.ForeignGroupProb, 'g', -1, 64)+" (forge/replay/corrupt/foreign group)")
}

// AttackStats reports the attack frames sent so far.
func (n *Network) AttackStats() AttackStats {
	if n.attack == nil {
		return AttackStats{}
	}
	return n.attack.stats
}

// attackTarget registers how node id takes attack frames.
func (n *Network) attackTarget(id uint64, h func(from uint64, data []byte)) {
	if n.attack == nil {
		n.attack = &attacker{target: map[uint64]func(uint64, []byte){}}
		n.attackRng = n.w.Stream("net/attack")
	}
	n.attack.target[id] = h
}

// attackAlong adds the attack frames that come along with msg, sent
// from→to (called for each node-to-node message the network carries).
func (n *Network) attackAlong(from, to uint64, msg []byte) {
	a := n.attack
	if a == nil || a.cfg == (BusAttack{}) || a.target[to] == nil {
		return
	}
	rng := n.attackRng
	if len(a.past) < attackReplayFrames {
		a.past = append(a.past, pastFrame{from, to, append([]byte(nil), msg...)})
	} else {
		a.past[a.next] = pastFrame{from, to, append([]byte(nil), msg...)}
		a.next = (a.next + 1) % attackReplayFrames
	}
	if rng.Float64() < a.cfg.ForgeProb {
		a.stats.Forged++
		n.faultf("bus-forged")
		n.deliverAttack(attackForgedIDBase+uint64(rng.IntN(10)), to, append([]byte(nil), msg...))
	}
	if rng.Float64() < a.cfg.ReplayProb {
		p := a.past[rng.IntN(len(a.past))]
		a.stats.Replayed++
		n.faultf("bus-replayed")
		n.deliverAttack(p.from, p.to, append([]byte(nil), p.data...))
	}
	if rng.Float64() < a.cfg.CorruptProb && len(msg) > 0 {
		b := append([]byte(nil), msg...)
		bit := rng.IntN(8 * len(b))
		b[bit/8] ^= 1 << (bit % 8)
		a.stats.Corrupted++
		n.faultf("bus-corrupted")
		n.deliverAttack(from, to, b)
	}
	if rng.Float64() < a.cfg.ForeignGroupProb && len(msg) > 1 && msg[0] == multiGroupFrameTag {
		if _, k := binary.Uvarint(msg[1:]); k > 0 {
			b := append([]byte{multiGroupFrameTag}, binary.AppendUvarint(nil, uint64(8+rng.IntN(1000)))...)
			b = append(b, msg[1+k:]...)
			a.stats.ForeignGroup++
			n.faultf("bus-foreign-group")
			n.deliverAttack(from, to, b)
		}
	}
}

// deliverAttack delivers an attack frame after a delay drawn like the
// network's (from the attack stream), unless the link is cut.
func (n *Network) deliverAttack(from, to uint64, b []byte) {
	l := link{from, to}
	d := int64(n.cfg.DelayMin)
	if n.cfg.DelayJitter > 0 {
		d += int64(n.attackRng.ExpFloat64() * float64(n.cfg.DelayJitter))
	}
	n.w.At(n.w.now+d, func() {
		h := n.attack.target[to]
		if n.blocked[l] || h == nil {
			return
		}
		h(from, b)
	})
}
