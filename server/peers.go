package server

import (
	stdnet "net"
	"strconv"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/node"
	"github.com/keel-db/keel/transport"
)

// Cluster mode: node-to-node messages travel over the transport package's
// TCP implementation on each node's client port + 10000. The replicas'
// Send only queues (dropping when a peer's queue is full: Raft
// retransmits), so it never blocks a replica. A receiving goroutine per
// peer asks the node which group a message is for (node.Route, which
// refuses what no member sent) and hands it to that group's stepper,
// which steps it in batches inside the group's queue.

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

// receivePeer is the transport's Handler (one goroutine per peer
// connection).
func (s *Server) receivePeer(from uint64, msg []byte) {
	g, body, ok := s.node.Route(from, msg)
	if !ok || g == 0 { // refused, or a ping the node took
		return
	}
	select {
	case s.groups[g-1].inbox <- peerMsg{from: from, data: body}:
	case <-s.shutdown:
	}
}

// stepPeers delivers group g's peer messages to the node until shutdown,
// as many as are waiting (up to stepBatchMessagesMax) per turn of the
// group's queue.
func (s *Server) stepPeers(g *group) {
	defer close(g.stepperDone)
	w := g.queue.newWaiter()
	batch := make([]peerMsg, 0, stepBatchMessagesMax)
	msgs := make([]node.PeerMessage, 0, stepBatchMessagesMax)
	step := func() {
		msgs = msgs[:0]
		for _, m := range batch {
			msgs = append(msgs, node.PeerMessage{From: m.from, Data: m.data})
		}
		for i, err := range s.node.Step(g.id, s.clock.Now(), msgs) {
			if err != nil && !errors.Is(err, cluster.ErrNotMember) { // those the node counts and logs
				s.cfg.Logf("message from node %d: %v", batch[i].from, err)
			}
		}
	}
	for {
		select {
		case <-s.shutdown:
			return
		case m := <-g.inbox:
			batch = append(batch[:0], m)
		}
	more:
		for len(batch) < stepBatchMessagesMax {
			select {
			case m := <-g.inbox:
				batch = append(batch, m)
			default:
				break more
			}
		}
		g.queue.do(w, step)
		clear(batch)
		clear(msgs)
	}
}
