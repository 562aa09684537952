package sim

import (
	"math/rand/v2"
	"time"

	"github.com/keel-db/keel/transport"
)

// NetConfig is the network's behaviour. Delays are DelayMin plus an
// exponential jitter of mean DelayJitter. Loss, duplication and reordering
// apply to node-to-node messages; client connections model TCP: no loss,
// no duplicates, in order, but they break under a partition.
type NetConfig struct {
	DelayMin    time.Duration
	DelayJitter time.Duration
	LossProb    float64
	DupProb     float64
	// MessageBytesMax is the largest node-to-node message the transport
	// carries (transport.MessageBytesMax when 0). A node that sends a
	// larger one fails the run: the real transport would drop it.
	MessageBytesMax int
}

// NetStats counts what the network did.
type NetStats struct {
	Sent, Delivered, Lost, Duplicated, Blocked int64
}

type link struct{ from, to uint64 }

// Network delivers messages between endpoints (nodes and clients, by id)
// through the event queue.
type Network struct {
	w       *World
	rng     *rand.Rand
	cfg     NetConfig
	blocked map[link]bool
	// lastAt keeps each client connection in order (TCP): a message is
	// never delivered before the one sent before it on the same link.
	lastAt   map[link]int64
	handlers map[uint64]transport.Handler
	Stats    NetStats
	// oversized is told of a message over the transport's limit.
	oversized func(from, to uint64, size, limit int)
	// attack holds the bus attacks (busattack.go; nil until a world
	// registers a target), attackRng their randomness; faultf counts
	// the attack frames among the run's faults.
	attack    *attacker
	attackRng *rand.Rand
	faultf    func(kind string)
	// gate admits a schedule's fault actions (variant.go; nil: all).
	gate faultGate
}

func newNetwork(w *World, cfg NetConfig) *Network {
	return &Network{
		w: w, rng: w.Stream("net"), cfg: cfg,
		blocked: map[link]bool{}, lastAt: map[link]int64{},
		handlers:  map[uint64]transport.Handler{},
		oversized: func(uint64, uint64, int, int) {},
		faultf:    func(string) {},
	}
}

func (n *Network) delay() int64 {
	d := int64(n.cfg.DelayMin)
	if n.cfg.DelayJitter > 0 {
		d += int64(n.rng.ExpFloat64() * float64(n.cfg.DelayJitter))
	}
	return d
}

// Reachable reports whether from can currently send to to.
func (n *Network) Reachable(from, to uint64) bool { return !n.blocked[link{from, to}] }

// sendStream delivers over a client connection: ordered, lossless, but
// dropped (the connection breaks) while the link is partitioned.
func (n *Network) sendStream(from, to uint64, deliver func()) {
	n.sendStreamOr(from, to, deliver, nil)
}

// sendStreamOr is sendStream telling dropped when a partition drops the
// message (the connection is then broken for good).
func (n *Network) sendStreamOr(from, to uint64, deliver, dropped func()) {
	n.Stats.Sent++
	l := link{from, to}
	if n.blocked[l] {
		n.Stats.Blocked++
		if dropped != nil {
			dropped()
		}
		return
	}
	at := n.w.now + n.delay()
	if last := n.lastAt[l]; at < last {
		at = last
	}
	n.lastAt[l] = at
	n.w.At(at, func() {
		if n.blocked[l] {
			n.Stats.Blocked++
			if dropped != nil {
				dropped()
			}
			return
		}
		n.Stats.Delivered++
		deliver()
	})
}

// sendDatagram delivers node-to-node: lossy, duplicating, reordering.
func (n *Network) sendDatagram(from, to uint64, msg []byte) {
	if limit := n.messageBytesMax(); len(msg) > limit {
		n.oversized(from, to, len(msg), limit)
		return
	}
	n.Stats.Sent++
	n.attackAlong(from, to, msg)
	l := link{from, to}
	if n.blocked[l] {
		n.Stats.Blocked++
		return
	}
	if n.cfg.LossProb > 0 && n.rng.Float64() < n.cfg.LossProb {
		n.Stats.Lost++
		return
	}
	copies := 1
	if n.cfg.DupProb > 0 && n.rng.Float64() < n.cfg.DupProb {
		copies = 2
		n.Stats.Duplicated++
	}
	for i := 0; i < copies; i++ {
		b := append([]byte(nil), msg...)
		n.w.At(n.w.now+n.delay(), func() {
			h := n.handlers[to]
			if n.blocked[l] || h == nil {
				n.Stats.Blocked++
				return
			}
			n.Stats.Delivered++
			h(from, b)
		})
	}
}

// Block cuts from→to (one way).
func (n *Network) Block(from, to uint64) {
	if !n.gate.allow("block", true) {
		return
	}
	n.blocked[link{from, to}] = true
	n.w.Trace("net", "block "+itoa(int64(from))+"->"+itoa(int64(to)))
}

// Partition cuts every link between the two groups, both ways.
func (n *Network) Partition(a, b []uint64) {
	if !n.gate.allow("partition", true) {
		return
	}
	n.partition(a, b)
}

func (n *Network) partition(a, b []uint64) {
	for _, x := range a {
		for _, y := range b {
			n.blocked[link{x, y}] = true
			n.blocked[link{y, x}] = true
		}
	}
	n.w.Trace("net", "partition "+idList(a)+" | "+idList(b))
}

// Isolate cuts id off from every other endpoint in all.
func (n *Network) Isolate(id uint64, all []uint64) {
	if !n.gate.allow("isolate", true) {
		return
	}
	var rest []uint64
	for _, x := range all {
		if x != id {
			rest = append(rest, x)
		}
	}
	n.partition([]uint64{id}, rest)
}

// Heal restores every link.
func (n *Network) Heal() {
	n.blocked = map[link]bool{}
	n.w.Trace("net", "heal")
}

func idList(ids []uint64) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ","
		}
		s += itoa(int64(id))
	}
	return s
}

// Transport is transport.Transport for one node over the simulated network.
type Transport struct {
	n  *Network
	id uint64
}

var _ transport.Transport = (*Transport)(nil)

// Transport returns node id's transport; h receives its messages.
func (n *Network) Transport(id uint64, h transport.Handler) *Transport {
	n.handlers[id] = h
	return &Transport{n: n, id: id}
}

// Send implements transport.Transport.
func (t *Transport) Send(to uint64, msg []byte) { t.n.sendDatagram(t.id, to, msg) }

func (n *Network) messageBytesMax() int {
	if n.cfg.MessageBytesMax > 0 {
		return n.cfg.MessageBytesMax
	}
	return transport.MessageBytesMax
}

// Close implements transport.Transport: the node receives nothing more.
func (t *Transport) Close() error {
	delete(t.n.handlers, t.id)
	return nil
}
