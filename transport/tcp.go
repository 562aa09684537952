package transport

import (
	"bufio"
	"crypto/tls"
	"io"
	stdnet "net"
	"strconv"
	"sync"
	"sync/atomic"
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
	// handshakeTimeout bounds the TLS handshake and the hellos, on both
	// ends: a peer that connects and says nothing is dropped.
	handshakeTimeout = 10 * time.Second
	// handshakingConnsMax bounds the inbound connections not yet
	// authenticated; more are closed at once, so that strangers cannot
	// make the node hold unbounded goroutines and buffers.
	handshakingConnsMax = 64
	// inboundConnsMax bounds all inbound connections. With TLS a peer
	// holds one at a time (a new one from the same node replaces the old),
	// so this binds only plaintext mode, where ids are unproven.
	inboundConnsMax = 1024
	// peerTroubleLogInterval spaces the log lines about refused peers and
	// corrupt frames: whoever can reach the port can cause them.
	peerTroubleLogInterval = time.Second
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

// TCPConfig configures a TCP transport. Exactly one of TLS and Insecure
// must be set: a bus without TLS lets anyone who reaches the port speak as
// any node, so it is never the default.
type TCPConfig struct {
	// ID is this node's id, announced to peers on connect. With TLS it
	// must be the id the certificate names.
	ID uint64
	// Listen is the address to accept peers on (the client port + 10000;
	// see PeerAddr). Empty: do not listen.
	Listen string
	// Peers maps node ids to their node-to-node addresses.
	Peers map[uint64]string
	// Handler receives every incoming message, from one goroutine per
	// connected peer, with the sender's authenticated id: with TLS the id
	// its certificate names, in plaintext mode the id its hello claims.
	Handler Handler
	// Logf reports connection trouble. Nil discards.
	Logf func(format string, args ...any)
	// TLS runs the bus over mutual TLS 1.3 with the cluster CA (LoadTLS).
	TLS *TLS
	// Insecure runs the bus in plaintext, where a peer is whoever it
	// claims to be. It must be asked for by name (--cluster-insecure yes).
	Insecure bool
}

// TCPStats counts what the transport refused since it started.
type TCPStats struct {
	// PeersRefused: inbound connections closed before delivering anything
	// (failed TLS handshake, bad hello, an id that does not match the
	// certificate, too many connections at once).
	PeersRefused uint64
	// FramesCorrupt: frames dropped for a checksum mismatch (each also
	// closes its connection).
	FramesCorrupt uint64
}

// TCP is the production Transport: checksummed, length-prefixed frames over
// one connection per direction and peer (mutual TLS unless Insecure), a
// bounded send queue per peer, and reconnection with exponential backoff.
type TCP struct {
	cfg       TCPConfig
	ln        stdnet.Listener
	serverTLS *tls.Config

	mu          sync.Mutex
	peers       map[uint64]*peerSender
	inbound     map[stdnet.Conn]struct{}
	inboundByID map[uint64]stdnet.Conn
	handshaking int
	closed      bool

	peersRefused  atomic.Uint64
	framesCorrupt atomic.Uint64
	troubleLog    logLimiter

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
	switch {
	case cfg.TLS == nil && !cfg.Insecure:
		return nil, errors.New("cluster bus: no TLS configured; set TCPConfig.TLS (--tls-cluster yes with " +
			"--tls-cert-file, --tls-key-file, --tls-ca-cert-file) or ask for plaintext with TCPConfig.Insecure (--cluster-insecure yes)")
	case cfg.TLS != nil && cfg.Insecure:
		return nil, errors.New("cluster bus: both TLS and Insecure set; choose one")
	case cfg.TLS != nil && cfg.TLS.NodeID() != cfg.ID:
		return nil, errors.Newf("cluster bus: the certificate is node %d's, but this is node %d", cfg.TLS.NodeID(), cfg.ID)
	case cfg.Listen != "" && cfg.Handler == nil:
		return nil, errors.New("cluster bus: listening needs a Handler")
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	t := &TCP{cfg: cfg, peers: map[uint64]*peerSender{}, inbound: map[stdnet.Conn]struct{}{},
		inboundByID: map[uint64]stdnet.Conn{}, done: make(chan struct{})}
	if cfg.TLS != nil {
		t.serverTLS = cfg.TLS.serverConfig()
	}
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

// Stats returns the refusal counters.
func (t *TCP) Stats() TCPStats {
	return TCPStats{PeersRefused: t.peersRefused.Load(), FramesCorrupt: t.framesCorrupt.Load()}
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

func (t *TCP) isClosed() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
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
		raw, err := (&stdnet.Dialer{Timeout: dialTimeout}).Dial("tcp", p.addr)
		if err != nil {
			// A peer that is down is routine; say nothing.
			backoff = min(max(2*backoff, reconnectBackoffMin), reconnectBackoffMax)
			if t.isClosed() {
				return
			}
			continue
		}
		connected, err := t.session(raw, p)
		raw.Close()
		if t.isClosed() {
			return
		}
		if !connected {
			// Refused in the handshake: a configuration problem (another
			// CA, another node at that address) that retrying fast will
			// not fix, so back off as from a peer that is down.
			t.cfg.Logf("connection to node %d at %s refused: %v", p.id, p.addr, err)
			backoff = min(max(2*backoff, reconnectBackoffMin), reconnectBackoffMax)
			continue
		}
		t.cfg.Logf("connection to node %d at %s: %v; reconnecting", p.id, p.addr, err)
		backoff = reconnectBackoffMin
	}
}

// session runs one outgoing connection: the handshake, then frames until
// the connection fails or the transport closes. connected says whether
// the handshake succeeded.
func (t *TCP) session(raw stdnet.Conn, p *peerSender) (connected bool, err error) {
	// A closed transport must unblock a handshake or a write stuck on a
	// dead peer.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-t.done:
			raw.Close()
		case <-stop:
		}
	}()
	conn, err := t.dialHandshake(raw, p.id)
	if err != nil {
		return false, err
	}
	return true, t.writeFrames(conn, p)
}

// dialHandshake authenticates the connection to node want: TLS (whose
// check includes want's id), our hello, and the peer's hello naming want,
// which is also its acceptance.
func (t *TCP) dialHandshake(raw stdnet.Conn, want uint64) (stdnet.Conn, error) {
	if err := raw.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return nil, err
	}
	conn := raw
	if t.cfg.TLS != nil {
		tc := tls.Client(raw, t.cfg.TLS.clientConfig(want))
		if err := tc.Handshake(); err != nil {
			return nil, errors.Wrap(err, "TLS handshake")
		}
		conn = tc
	}
	if _, err := conn.Write(appendHello(nil, t.cfg.ID)); err != nil {
		return nil, errors.Wrap(err, "send hello")
	}
	// With TLS 1.3 the peer checks our certificate after our handshake
	// returns; a refusal arrives here, as its alert.
	var reply [helloBytes]byte
	if _, err := io.ReadFull(conn, reply[:]); err != nil {
		return nil, errors.Wrap(err, "await the peer's hello")
	}
	got, ok := parseHello(reply[:])
	if !ok {
		return nil, errors.New("the peer's hello is malformed (not a keel node of this version?)")
	}
	if got != want {
		return nil, errors.Newf("reached node %d, not node %d", got, want)
	}
	return conn, raw.SetDeadline(time.Time{})
}

// writeFrames sends queued messages, flushing whenever the queue is
// momentarily empty so that a burst goes out in few writes. It returns nil
// only when the transport closes.
func (t *TCP) writeFrames(conn stdnet.Conn, p *peerSender) error {
	bw := bufio.NewWriterSize(conn, 64<<10)
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
		if err := writeFrame(bw, msg); err != nil {
			return err
		}
	}
}

func (t *TCP) accept() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			if t.isClosed() {
				return
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
		if t.handshaking >= handshakingConnsMax || len(t.inbound) >= inboundConnsMax {
			n, m := t.handshaking, len(t.inbound)
			t.mu.Unlock()
			t.refuse(conn, "%d connections in their handshake and %d in all, at the bounds %d and %d",
				n, m, handshakingConnsMax, inboundConnsMax)
			conn.Close()
			continue
		}
		t.inbound[conn] = struct{}{}
		t.handshaking++
		t.wg.Add(1)
		t.mu.Unlock()
		go t.receive(conn)
	}
}

// receive authenticates one inbound connection, then delivers its frames
// until the connection fails, a frame breaks the bound or its checksum,
// or the transport closes.
func (t *TCP) receive(raw stdnet.Conn) {
	defer t.wg.Done()
	handshaking := true
	var from uint64
	defer func() {
		t.mu.Lock()
		delete(t.inbound, raw)
		if handshaking {
			t.handshaking--
		} else if t.inboundByID[from] == raw {
			delete(t.inboundByID, from)
		}
		t.mu.Unlock()
		raw.Close()
	}()
	conn, from, err := t.acceptHandshake(raw)
	if err != nil {
		if !t.isClosed() {
			t.refuse(raw, "%v", err)
		}
		return
	}
	// One connection per peer: a newer one means the peer reconnected, and
	// the old one is dead or about to be.
	t.mu.Lock()
	t.handshaking--
	handshaking = false
	if old := t.inboundByID[from]; old != nil {
		old.Close()
	}
	t.inboundByID[from] = raw
	t.mu.Unlock()

	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		msg, err := readFrame(br)
		switch {
		case errors.Is(err, errFrameCorrupt):
			t.framesCorrupt.Add(1)
			t.troubleLog.logf(t.cfg.Logf, "node %d (%s): %v: dropped, disconnecting", from, raw.RemoteAddr(), err)
			return
		case errors.Is(err, errFrameTooLarge):
			t.troubleLog.logf(t.cfg.Logf, "node %d (%s): %v: disconnecting", from, raw.RemoteAddr(), err)
			return
		case err != nil:
			return
		}
		t.cfg.Handler(from, msg)
	}
}

// acceptHandshake authenticates an inbound connection: with TLS the peer
// is the node its verified certificate names, and its hello must claim
// that same node; in plaintext mode it is whatever its hello claims.
func (t *TCP) acceptHandshake(raw stdnet.Conn) (stdnet.Conn, uint64, error) {
	if err := raw.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return nil, 0, err
	}
	conn := raw
	var certID uint64
	if t.serverTLS != nil {
		tc := tls.Server(raw, t.serverTLS)
		if err := tc.Handshake(); err != nil {
			return nil, 0, errors.Wrap(err, "TLS handshake")
		}
		id, err := peerID(tc.ConnectionState())
		if err != nil {
			return nil, 0, err
		}
		conn, certID = tc, id
	}
	var hello [helloBytes]byte
	if _, err := io.ReadFull(conn, hello[:]); err != nil {
		return nil, 0, errors.Wrap(err, "bad hello")
	}
	claimed, ok := parseHello(hello[:])
	switch {
	case !ok:
		return nil, 0, errors.New("bad hello (not a keel node of this version?)")
	case t.serverTLS != nil && claimed != certID:
		return nil, 0, errors.Newf("hello claims node %d but the certificate is node %d's", claimed, certID)
	case claimed == 0:
		return nil, 0, errors.New("hello claims node 0")
	case claimed == t.cfg.ID:
		return nil, 0, errors.Newf("hello claims this node's own id %d", claimed)
	}
	if _, err := conn.Write(appendHello(nil, t.cfg.ID)); err != nil {
		return nil, 0, errors.Wrap(err, "answer hello")
	}
	return conn, claimed, raw.SetDeadline(time.Time{})
}

// refuse counts and logs an inbound connection closed before it could
// deliver anything.
func (t *TCP) refuse(conn stdnet.Conn, format string, args ...any) {
	t.peersRefused.Add(1)
	t.troubleLog.logf(t.cfg.Logf, "refused peer connection from %s: "+format, append([]any{conn.RemoteAddr()}, args...)...)
}

// logLimiter lets one line through per peerTroubleLogInterval and counts
// the rest into the next line.
type logLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *logLimiter) logf(logf func(string, ...any), format string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < peerTroubleLogInterval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	if n > 0 {
		format += " (%d similar lines suppressed)"
		args = append(args, n)
	}
	logf(format, args...)
}
