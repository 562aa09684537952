package server

import (
	stdnet "net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/node"
	"github.com/keel-db/keel/transport"
)

// Cluster mode: node-to-node messages travel over the transport package's
// TCP implementation on each node's client port + 10000. The replicas'
// Send only queues (dropping when a peer's queue is full: Raft
// retransmits), so it never blocks a replica; on a plaintext bus it
// writes small messages itself when nothing is queued before them. A
// receiving goroutine per peer asks the node which group a message is for
// (node.Route, which refuses what no member sent) and steps it there
// itself if the group is idle, or hands it to that group's stepper, which
// steps it in batches inside the group's queue (stepper).

// listenPeers starts the transport on the peer bind address's client
// port + 10000.
func (s *Server) listenPeers() error {
	self := s.node.Self()
	bind := s.cfg.PeerBind
	if bind == "" {
		bind = self.Host
	}
	peers := map[uint64]string{}
	for _, p := range s.node.Nodes() {
		if p.ID == self.ID {
			continue
		}
		addr, err := transport.PeerAddr(stdnet.JoinHostPort(p.Host, strconv.Itoa(p.Port)))
		if err != nil {
			return err
		}
		peers[p.ID] = addr
	}
	listen := stdnet.JoinHostPort(bind, strconv.Itoa(self.Port+transport.PeerPortOffset))
	tr, err := transport.ListenTCP(transport.TCPConfig{ID: self.ID, Listen: listen, Peers: peers, Handler: s.receivePeer, Logf: s.cfg.Logf,
		TLS: s.cfg.BusTLS, Insecure: s.cfg.BusInsecure})
	if err != nil {
		return errors.Wrap(err, "listen for peers")
	}
	s.tr.Store(tr)
	return nil
}

// setPeer follows the node's address book (node.OnPeer): a node added by
// a membership change is dialled, a removed one forgotten.
func (s *Server) setPeer(id uint64, clientAddr string) {
	tr := s.tr.Load()
	if tr == nil {
		return
	}
	addr := ""
	if clientAddr != "" {
		var err error
		if addr, err = transport.PeerAddr(clientAddr); err != nil {
			s.cfg.Logf("node %d: %v", id, err)
			return
		}
	}
	tr.SetPeer(id, addr)
}

// stepper is how a group's peer messages reach the node. The receiving
// goroutine steps a message itself when the group is idle and nothing
// received before it is still waiting (stepDirect): one goroutine then
// reads, steps and — through the transport's direct writes — answers,
// with no hand-off, which on a busy machine was most of what a message
// cost. Otherwise the message waits in the group's inbox for its
// stepper goroutine (stepPeers), which steps what gathered there in
// batches, so that a busy group never holds up a receiving goroutine,
// whose connection carries every group's messages from its peer.
type stepper struct {
	// mu is held while stepping, by the stepper goroutine or a receiving
	// one; w, batch, msgs and stopped are under it.
	mu sync.Mutex
	w  *waiter // the group's queue place of whoever holds mu
	// inboxed counts the messages sent to the inbox and not yet stepped:
	// a message is stepped directly only when it is 0, so it never
	// overtakes one from the same peer.
	inboxed atomic.Int64
	batch   []peerMsg
	msgs    []node.PeerMessage
	step    func() // steps batch (built once)
	stopped bool   // the stepper goroutine returned: the server is stopping
}

func (s *Server) initStepper(g *group) {
	st := &g.steps
	st.w = g.queue.newWaiter()
	st.batch = make([]peerMsg, 0, stepBatchMessagesMax)
	st.msgs = make([]node.PeerMessage, 0, stepBatchMessagesMax)
	st.step = func() {
		st.msgs = st.msgs[:0]
		for _, m := range st.batch {
			st.msgs = append(st.msgs, node.PeerMessage{From: m.from, Data: m.data})
		}
		for i, err := range s.node.Step(g.id, s.clock.Now(), st.msgs) {
			if err != nil && !errors.Is(err, cluster.ErrNotMember) { // those the node counts and logs
				s.cfg.Logf("message from node %d: %v", st.batch[i].from, err)
			}
		}
		clear(st.msgs)
	}
}

// receivePeer is the transport's Handler (one goroutine per peer
// connection).
func (s *Server) receivePeer(from uint64, msg []byte) {
	gi, body, ok := s.node.Route(from, msg)
	if !ok || gi == 0 { // refused, or a ping the node took
		return
	}
	g := s.groups[gi-1]
	if g.inbox == nil { // not hosted here, nor ever: Route refuses those
		return
	}
	if s.stepDirect(g, peerMsg{from: from, data: body}) {
		return
	}
	g.steps.inboxed.Add(1)
	select {
	case g.inbox <- peerMsg{from: from, data: body}:
	case <-s.shutdown:
		g.steps.inboxed.Add(-1)
	}
}

// stepDirect steps m on the calling goroutine if the group is idle and
// its inbox empty; false, nothing done, otherwise.
func (s *Server) stepDirect(g *group, m peerMsg) bool {
	st := &g.steps
	if st.inboxed.Load() != 0 || !st.mu.TryLock() {
		return false
	}
	defer st.mu.Unlock()
	if st.stopped || st.inboxed.Load() != 0 {
		return false
	}
	st.batch = append(st.batch[:0], m)
	ran := g.queue.tryDo(st.w, st.step)
	clear(st.batch)
	return ran
}

// stepPeers steps group g's inbox until shutdown, as many messages as are
// waiting (up to stepBatchMessagesMax) per turn of the group's queue.
func (s *Server) stepPeers(g *group) {
	defer close(g.stepperDone)
	st := &g.steps
	for {
		var first peerMsg
		select {
		case <-s.shutdown:
			st.mu.Lock()
			st.stopped = true
			st.mu.Unlock()
			return
		case first = <-g.inbox:
		}
		st.mu.Lock()
		st.batch = append(st.batch[:0], first)
	more:
		for len(st.batch) < stepBatchMessagesMax {
			select {
			case m := <-g.inbox:
				st.batch = append(st.batch, m)
			default:
				break more
			}
		}
		g.queue.do(st.w, st.step)
		n := len(st.batch)
		clear(st.batch)
		st.mu.Unlock()
		st.inboxed.Add(int64(-n))
	}
}
