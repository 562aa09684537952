package transport

import (
	"bufio"
	"encoding/binary"
	"io"
	stdnet "net"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
)

// This file is the production Transport. It is the only file in the
// package that opens sockets, starts goroutines or sleeps.

const (
	// PeerPortOffset: node-to-node traffic uses the client port + 10000,
	// as Redis Cluster's bus does.
	PeerPortOffset = 10000
	// sendQueueMessagesMax bounds each peer's send queue; a message sent to
	// a full queue is dropped (Raft retransmits).
	sendQueueMessagesMax = 1024
	// reconnectBackoffMin and reconnectBackoffMax bound the pause between
	// dial attempts to an unreachable peer (doubling in between).
	reconnectBackoffMin = 50 * time.Millisecond
	reconnectBackoffMax = 2 * time.Second
	// dialTimeout bounds one connection attempt.
	dialTimeout = time.Second
	// frameHeaderBytes is a frame's length prefix.
	frameHeaderBytes = 4
	// helloMagic opens every connection, followed by the sender's node id.
	helloMagic = "KEEL1\x00\x00\x00"
)

// PeerAddr turns a node's client address (host:port) into its node-to-node
// address (host:port+10000).
func PeerAddr(clientAddr string) (string, error) {
	host, port, err := stdnet.SplitHostPort(clientAddr)
	if err != nil {
		return "", errors.Wrapf(err, "peer address %q", clientAddr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p+PeerPortOffset > 65535 {
		return "", errors.Newf("peer address %q: client port must be 1..%d", clientAddr, 65535-PeerPortOffset)
	}
	return stdnet.JoinHostPort(host, strconv.Itoa(p+PeerPortOffset)), nil
}

// TCPConfig configures a TCP transport.
type TCPConfig struct {
	// ID is this node's id, announced to peers on connect.
	ID uint64
	// Listen is the address to accept peers on (the client port + 10000;
	// see PeerAddr). Empty: do not listen.
	Listen string
	// Peers maps node ids to their node-to-node addresses.
	Peers map[uint64]string
	// Handler receives every incoming message, from one goroutine per
	// connected peer.
	Handler Handler
	// Logf reports connection trouble. Nil discards.
	Logf func(format string, args ...any)
}

// TCP is the production Transport: length-prefixed frames over one TCP
// connection per direction and peer, a bounded send queue per peer, and
// reconnection with exponential backoff.
type TCP struct {
	cfg TCPConfig
	ln  stdnet.Listener

	mu      sync.Mutex
	peers   map[uint64]*peerSender
	inbound map[stdnet.Conn]struct{}
	closed  bool

	done chan struct{}
	wg   sync.WaitGroup
}

var _ Transport = (*TCP)(nil)

type peerSender struct {
	id    uint64
	addr  string
	queue chan []byte
}

// ListenTCP starts the transport: it accepts peers on cfg.Listen and
// connects to each peer lazily, on the first Send.
func ListenTCP(cfg TCPConfig) (*TCP, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	t := &TCP{cfg: cfg, peers: map[uint64]*peerSender{}, inbound: map[stdnet.Conn]struct{}{}, done: make(chan struct{})}
	if cfg.Listen != "" {
		ln, err := stdnet.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, errors.Wrapf(err, "listen for peers on %s", cfg.Listen)
		}
		t.ln = ln
		t.wg.Add(1)
		go t.accept()
	}
	return t, nil
}

// Addr is the address peers connect to (useful with port 0).
func (t *TCP) Addr() string {
	if t.ln == nil {
		return ""
	}
	return t.ln.Addr().String()
}

// Send queues msg for peer to; it never blocks. msg must not be modified
// afterwards. Messages to unknown peers, oversized ones and those that find
// the queue full are dropped.
func (t *TCP) Send(to uint64, msg []byte) {
	if len(msg) > MessageBytesMax {
		t.cfg.Logf("dropping a %d-byte message to node %d: over MessageBytesMax", len(msg), to)
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	p := t.peers[to]
	if p == nil {
		addr, ok := t.cfg.Peers[to]
		if !ok {
			t.mu.Unlock()
			return
		}
		p = &peerSender{id: to, addr: addr, queue: make(chan []byte, sendQueueMessagesMax)}
		t.peers[to] = p
		t.wg.Add(1)
		go t.sendLoop(p)
	}
	t.mu.Unlock()
	select {
	case p.queue <- msg:
	default: // full: drop, as Raft tolerates loss
	}
}

// SetPeer sets peer id's node-to-node address after a membership change
// (addr "" forgets the peer). A peer already connected keeps its address.
func (t *TCP) SetPeer(id uint64, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	peers := make(map[uint64]string, len(t.cfg.Peers)+1)
	for k, v := range t.cfg.Peers {
		peers[k] = v
	}
	if addr == "" {
		delete(peers, id)
	} else {
		peers[id] = addr
	}
	t.cfg.Peers = peers
}

// Close stops every goroutine and closes every connection.
func (t *TCP) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	if t.ln != nil {
		t.ln.Close()
	}
	for c := range t.inbound {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// sleep waits d or until Close; it reports whether to go on.
func (t *TCP) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.done:
		return false
	case <-timer.C:
		return true
	}
}

func (t *TCP) sendLoop(p *peerSender) {
	defer t.wg.Done()
	backoff := time.Duration(0)
	for {
		if backoff > 0 && !t.sleep(backoff) {
			return
		}
		conn, err := (&stdnet.Dialer{Timeout: dialTimeout}).Dial("tcp", p.addr)
		if err != nil {
			backoff = min(max(2*backoff, reconnectBackoffMin), reconnectBackoffMax)
			select {
			case <-t.done:
				return
			default:
			}
			continue
		}
		backoff = 0
		err = t.writeFrames(conn, p)
		conn.Close()
		if err == nil {
			return // closed
		}
		t.cfg.Logf("connection to node %d at %s: %v; reconnecting", p.id, p.addr, err)
		backoff = reconnectBackoffMin
	}
}

// writeFrames sends the hello and then queued messages, flushing whenever
// the queue is momentarily empty so that a burst goes out in few writes.
// It returns nil only when the transport closes.
func (t *TCP) writeFrames(conn stdnet.Conn, p *peerSender) error {
	// A closed transport must unblock a write stuck on a dead peer.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-t.done:
			conn.Close()
		case <-stop:
		}
	}()
	bw := bufio.NewWriterSize(conn, 64<<10)
	var hello [len(helloMagic) + 8]byte
	copy(hello[:], helloMagic)
	binary.BigEndian.PutUint64(hello[len(helloMagic):], t.cfg.ID)
	if _, err := bw.Write(hello[:]); err != nil {
		return err
	}
	var hdr [frameHeaderBytes]byte
	for {
		var msg []byte
		select {
		case msg = <-p.queue:
		default:
			if err := bw.Flush(); err != nil {
				return err
			}
			select {
			case msg = <-p.queue:
			case <-t.done:
				return nil
			}
		}
		binary.BigEndian.PutUint32(hdr[:], uint32(len(msg)))
		if _, err := bw.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := bw.Write(msg); err != nil {
			return err
		}
	}
}

func (t *TCP) accept() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			t.cfg.Logf("accepting peers: %v", err)
			if !t.sleep(reconnectBackoffMin) {
				return
			}
			continue
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			conn.Close()
			return
		}
		t.inbound[conn] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.receive(conn)
	}
}

// receive reads frames from one peer until the connection fails, a frame
// breaks the bound, or the transport closes.
func (t *TCP) receive(conn stdnet.Conn) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.inbound, conn)
		t.mu.Unlock()
		conn.Close()
	}()
	br := bufio.NewReaderSize(conn, 64<<10)
	var hello [len(helloMagic) + 8]byte
	if _, err := io.ReadFull(br, hello[:]); err != nil || string(hello[:len(helloMagic)]) != helloMagic {
		t.cfg.Logf("peer %s: bad hello", conn.RemoteAddr())
		return
	}
	from := binary.BigEndian.Uint64(hello[len(helloMagic):])
	var hdr [frameHeaderBytes]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > MessageBytesMax {
			t.cfg.Logf("node %d announced a %d-byte frame, over MessageBytesMax: disconnecting", from, n)
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		t.cfg.Handler(from, msg)
	}
}
