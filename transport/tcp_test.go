package transport

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	stdnet "net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/transport/pki"
)

// waitTimeout bounds every wait for something that must happen; tests
// never assert how fast it happens.
const waitTimeout = 20 * time.Second

type inbox struct {
	mu   sync.Mutex
	msgs []string
	got  chan struct{}
}

func newInbox() *inbox { return &inbox{got: make(chan struct{}, 1<<16)} }

func (b *inbox) handle(from uint64, msg []byte) {
	b.mu.Lock()
	b.msgs = append(b.msgs, fmt.Sprintf("%d:%s", from, msg))
	b.mu.Unlock()
	b.got <- struct{}{}
}

func (b *inbox) wait(t *testing.T, n int) []string {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-b.got:
		case <-time.After(waitTimeout):
			t.Fatalf("got %d of %d messages", i, n)
		}
	}
	return b.all()
}

func (b *inbox) all() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.msgs...)
}

// logbook collects a transport's log lines.
type logbook struct {
	mu    sync.Mutex
	lines []string
}

func (l *logbook) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logbook) find(sub string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return s
		}
	}
	return ""
}

func (l *logbook) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testCA is a cluster CA for one test.
type testCA struct {
	ca *pki.Authority
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca, _, err := pki.NewAuthority(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{ca: ca}
}

func (c *testCA) pem(t *testing.T, id uint64) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := c.ca.Issue(id, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// node is node id's bus identity under this CA.
func (c *testCA) node(t *testing.T, id uint64) *TLS {
	t.Helper()
	certPEM, keyPEM := c.pem(t, id)
	n, err := NewTLS(certPEM, keyPEM, c.ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// pair is node id's certificate as a raw TLS client would present it.
func (c *testCA) pair(t *testing.T, id uint64) tls.Certificate {
	t.Helper()
	certPEM, keyPEM := c.pem(t, id)
	p, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func listen(t *testing.T, cfg TCPConfig) *TCP {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	tr, err := ListenTCP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// frame is one well-formed frame.
func frame(msg string) []byte {
	hdr := frameHeader([]byte(msg))
	return append(hdr[:], msg...)
}

// closedByPeer reports whether the peer closed conn (a read fails) before
// waitTimeout.
func closedByPeer(conn stdnet.Conn) bool {
	conn.SetReadDeadline(time.Now().Add(waitTimeout))
	_, err := io.ReadAll(conn)
	var ne stdnet.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true
}

func TestPeerAddr(t *testing.T) {
	if a, err := PeerAddr("127.0.0.1:7001"); err != nil || a != "127.0.0.1:17001" {
		t.Fatalf("%q %v", a, err)
	}
	if _, err := PeerAddr("127.0.0.1:60000"); err == nil {
		t.Fatal("port over 65535 accepted")
	}
}

func TestListenTCPNeedsTLSOrInsecureByName(t *testing.T) {
	ca := newTestCA(t)
	h := func(uint64, []byte) {}
	for _, tc := range []struct {
		cfg  TCPConfig
		want string
	}{
		{TCPConfig{ID: 1, Handler: h}, "no TLS configured"},
		{TCPConfig{ID: 1, Handler: h, TLS: ca.node(t, 1), Insecure: true}, "both TLS and Insecure"},
		{TCPConfig{ID: 1, Handler: h, TLS: ca.node(t, 2)}, "the certificate is node 2's, but this is node 1"},
		{TCPConfig{ID: 1, Listen: "127.0.0.1:0", Insecure: true}, "needs a Handler"},
	} {
		tr, err := ListenTCP(tc.cfg)
		if err == nil {
			tr.Close()
			t.Fatalf("%+v: started", tc.cfg)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("error %q, want %q", err, tc.want)
		}
	}
}

func TestLoadTLS(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.Ensure(dir, []uint64{1, 2}, []string{"127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	c, err := LoadTLS(pki.NodeCertFile(dir, 2), pki.NodeKeyFile(dir, 2), pki.CACertFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID() != 2 {
		t.Fatalf("node id %d", c.NodeID())
	}
	if _, err := LoadTLS(pki.NodeCertFile(dir, 2), pki.NodeKeyFile(dir, 1), pki.CACertFile(dir)); err == nil {
		t.Fatal("node 1's key accepted for node 2's certificate")
	}
	other := t.TempDir()
	if _, err := pki.Ensure(other, nil, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err = LoadTLS(pki.NodeCertFile(dir, 2), pki.NodeKeyFile(dir, 2), pki.CACertFile(other))
	if err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("certificate from another CA: %v", err)
	}
	_, err = LoadTLS(pki.NodeCertFile(dir, 3), pki.NodeKeyFile(dir, 3), pki.CACertFile(dir))
	if err == nil || !strings.Contains(err.Error(), "node-3.crt") {
		t.Fatalf("missing file: %v", err)
	}
	// The CA's own certificate names no node.
	_, err = LoadTLS(pki.CACertFile(dir), pki.CAKeyFile(dir), pki.CACertFile(dir))
	if err == nil || !strings.Contains(err.Error(), "names no keel node") {
		t.Fatalf("CA certificate as a node's: %v", err)
	}
	if err := os.WriteFile(pki.CACertFile(other), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTLS(pki.NodeCertFile(dir, 2), pki.NodeKeyFile(dir, 2), pki.CACertFile(other)); err == nil {
		t.Fatal("CA file without a certificate accepted")
	}
}

// Two nodes with certificates from one CA talk, and each sees the other
// as the id its certificate names.
func TestTCPLoopback(t *testing.T) {
	ca := newTestCA(t)
	in1, in2 := newInbox(), newInbox()
	n1 := listen(t, TCPConfig{ID: 1, Handler: in1.handle, TLS: ca.node(t, 1)})
	n2 := listen(t, TCPConfig{ID: 2, Handler: in2.handle, TLS: ca.node(t, 2), Peers: map[uint64]string{1: n1.Addr()}})
	n1.SetPeer(2, n2.Addr())

	for i := 0; i < 100; i++ {
		n2.Send(1, []byte(fmt.Sprintf("m%d", i)))
	}
	got := in1.wait(t, 100)
	for i, m := range got {
		if m != fmt.Sprintf("2:m%d", i) {
			t.Fatalf("message %d is %q: order or sender lost", i, m)
		}
	}
	n1.Send(2, []byte("back"))
	if got := in2.wait(t, 1); got[0] != "1:back" {
		t.Fatalf("got %q", got)
	}
	// A message over 1 MiB takes the growing-buffer path.
	big := bytes.Repeat([]byte("x"), 3<<20)
	n2.Send(1, big)
	if got := in1.wait(t, 1); got[100] != "2:"+string(big) {
		t.Fatalf("big message lost or changed (%d bytes)", len(got[100]))
	}
	n1.Send(99, []byte("nobody")) // unknown peer: dropped, no panic
	if s := n1.Stats(); s != (TCPStats{}) {
		t.Fatalf("stats %+v after a clean exchange", s)
	}
}

func TestTCPInsecureLoopback(t *testing.T) {
	in1, in2 := newInbox(), newInbox()
	n1 := listen(t, TCPConfig{ID: 1, Handler: in1.handle, Insecure: true})
	n2 := listen(t, TCPConfig{ID: 2, Handler: in2.handle, Insecure: true, Peers: map[uint64]string{1: n1.Addr()}})
	n1.SetPeer(2, n2.Addr())
	n2.Send(1, []byte("hi"))
	if got := in1.wait(t, 1); got[0] != "2:hi" {
		t.Fatalf("got %q", got)
	}
	n1.Send(2, []byte("back"))
	if got := in2.wait(t, 1); got[0] != "1:back" {
		t.Fatalf("got %q", got)
	}
}

// attacker opens a connection to addr its way and returns it.
type attacker struct {
	name    string
	dial    func(t *testing.T, addr string) stdnet.Conn
	claimed uint64 // the id its hello claims
	log     string // what the node's refusal log line says
}

func tlsDial(cfg *tls.Config) func(t *testing.T, addr string) stdnet.Conn {
	return func(t *testing.T, addr string) stdnet.Conn {
		t.Helper()
		raw, err := stdnet.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c := tls.Client(raw, cfg)
		c.SetDeadline(time.Now().Add(waitTimeout))
		// With TLS 1.3 the client's handshake may finish before the server
		// has judged its certificate; the refusal shows on later reads.
		_ = c.Handshake()
		c.SetDeadline(time.Time{})
		return c
	}
}

// presenting sends cert whatever CAs the server asks for (a Go client
// otherwise sends no certificate the server's CA did not sign).
func presenting(cert tls.Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
}

// Nobody without a certificate from the cluster CA, naming the node it
// claims to be, gets a frame to the handler: the bug of issue 15, where one
// forged heartbeat from anywhere could crash every node's Raft.
func TestTCPRefusesForgedPeers(t *testing.T) {
	ca, otherCA := newTestCA(t), newTestCA(t)
	plain := func(t *testing.T, addr string) stdnet.Conn {
		c, err := stdnet.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, a := range []attacker{
		{name: "plaintext", dial: plain, claimed: 1, log: "does not look like a TLS handshake"},
		{name: "no certificate", claimed: 1, log: "didn't provide a certificate",
			dial: tlsDial(&tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true})},
		{name: "another CA's certificate for node 1", claimed: 1, log: "unknown authority",
			dial: tlsDial(&tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, GetClientCertificate: presenting(otherCA.pair(t, 1))})},
		{name: "node 2's certificate, claiming node 1", claimed: 1, log: "hello claims node 1 but the certificate is node 2's",
			dial: tlsDial(&tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{ca.pair(t, 2)}})},
		{name: "TLS 1.2", claimed: 2, log: "unsupported versions",
			dial: tlsDial(&tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true, Certificates: []tls.Certificate{ca.pair(t, 2)}})},
	} {
		t.Run(a.name, func(t *testing.T) {
			in, logs := newInbox(), &logbook{}
			n3 := listen(t, TCPConfig{ID: 3, Handler: in.handle, TLS: ca.node(t, 3), Logf: logs.logf})
			conn := a.dial(t, n3.Addr())
			defer conn.Close()
			// A hello and a well-formed frame: what a real node sends.
			conn.SetWriteDeadline(time.Now().Add(waitTimeout))
			conn.Write(append(appendHello(nil, a.claimed), frame("forged heartbeat, commit 2^40")...))
			if !closedByPeer(conn) {
				t.Fatal("connection not closed")
			}
			waitFor(t, "the refusal is counted", func() bool { return n3.Stats().PeersRefused == 1 })
			if line := logs.find("refused peer connection"); !strings.Contains(line, a.log) {
				t.Fatalf("refusal logged as %q, want it to say %q; log:\n%s", line, a.log, logs)
			}
			// The node still serves its real peers, and the forged frame
			// never reached the handler.
			n2 := listen(t, TCPConfig{ID: 2, TLS: ca.node(t, 2), Handler: func(uint64, []byte) {}, Peers: map[uint64]string{3: n3.Addr()}})
			n2.Send(3, []byte("real"))
			if got := in.wait(t, 1); len(got) != 1 || got[0] != "2:real" {
				t.Fatalf("handler got %q", got)
			}
		})
	}
}

// The dialer checks that the node it reached is the one it meant: a peer
// list pointing node 1's address at node 3 delivers nothing to node 3.
func TestTCPDialerChecksPeerID(t *testing.T) {
	t.Run("tls", func(t *testing.T) {
		ca := newTestCA(t)
		in3, logs := newInbox(), &logbook{}
		n3 := listen(t, TCPConfig{ID: 3, Handler: in3.handle, TLS: ca.node(t, 3)})
		n2 := listen(t, TCPConfig{ID: 2, Handler: func(uint64, []byte) {}, TLS: ca.node(t, 2), Logf: logs.logf,
			Peers: map[uint64]string{1: n3.Addr()}})
		n2.Send(1, []byte("for node 1"))
		waitFor(t, "the dialer refuses node 3", func() bool { return logs.find("node 3's, not node 1's") != "" })
		waitFor(t, "node 3 counts the aborted handshake", func() bool { return n3.Stats().PeersRefused >= 1 })
		if got := in3.all(); len(got) != 0 {
			t.Fatalf("node 3 got %q", got)
		}
	})
	t.Run("insecure", func(t *testing.T) {
		in3, logs := newInbox(), &logbook{}
		n3 := listen(t, TCPConfig{ID: 3, Handler: in3.handle, Insecure: true})
		n2 := listen(t, TCPConfig{ID: 2, Handler: func(uint64, []byte) {}, Insecure: true, Logf: logs.logf,
			Peers: map[uint64]string{1: n3.Addr()}})
		n2.Send(1, []byte("for node 1"))
		waitFor(t, "the dialer refuses node 3", func() bool { return logs.find("reached node 3, not node 1") != "" })
		if got := in3.all(); len(got) != 0 {
			t.Fatalf("node 3 got %q", got)
		}
	})
}

// authedConn is a hand-driven connection from node 2, authenticated.
func authedConn(t *testing.T, ca *testCA, addr string) stdnet.Conn {
	t.Helper()
	c := tlsDial(&tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{ca.pair(t, 2)}})(t, addr)
	c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := c.Write(appendHello(nil, 2)); err != nil {
		t.Fatal(err)
	}
	var reply [helloBytes]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		t.Fatalf("no hello back: %v", err)
	}
	if id, ok := parseHello(reply[:]); !ok || id != 3 {
		t.Fatalf("hello back %q", reply)
	}
	c.SetDeadline(time.Time{})
	return c
}

// A frame whose bytes changed after the sender checksummed them (here:
// inside the TLS stream of an authenticated peer) is dropped, counted and
// logged, and its connection closed; frames before it were delivered.
func TestTCPCorruptFrameDropped(t *testing.T) {
	ca := newTestCA(t)
	in, logs := newInbox(), &logbook{}
	n3 := listen(t, TCPConfig{ID: 3, Handler: in.handle, TLS: ca.node(t, 3), Logf: logs.logf})
	conn := authedConn(t, ca, n3.Addr())
	defer conn.Close()
	bad := frame("b-frame")
	bad[frameHeaderBytes+2] ^= 0x01
	var b []byte
	b = append(b, frame("a-frame")...)
	b = append(b, bad...)
	b = append(b, frame("c-frame")...)
	conn.Write(b)
	if !closedByPeer(conn) {
		t.Fatal("connection not closed after a corrupt frame")
	}
	waitFor(t, "the corrupt frame is counted", func() bool { return n3.Stats().FramesCorrupt == 1 })
	if got := in.all(); len(got) != 1 || got[0] != "2:a-frame" {
		t.Fatalf("handler got %q, want only the frame before the corrupt one", got)
	}
	if logs.find("checksum mismatch") == "" {
		t.Fatalf("corrupt frame not logged:\n%s", logs)
	}
	// Node 2 reconnects and is heard again.
	n2 := listen(t, TCPConfig{ID: 2, TLS: ca.node(t, 2), Handler: func(uint64, []byte) {}, Peers: map[uint64]string{3: n3.Addr()}})
	n2.Send(3, []byte("d-frame"))
	if got := in.wait(t, 2); got[1] != "2:d-frame" {
		t.Fatalf("got %q", got)
	}
	if s := n3.Stats(); s.PeersRefused != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Every single-bit change to a frame, header or payload, is caught.
func TestReadFrameCatchesEveryBitFlip(t *testing.T) {
	good := frame("a raft heartbeat, say")
	if msg, err := readFrame(bytes.NewReader(good)); err != nil || string(msg) != "a raft heartbeat, say" {
		t.Fatalf("%q %v", msg, err)
	}
	for i := range good {
		for bit := 0; bit < 8; bit++ {
			b := bytes.Clone(good)
			b[i] ^= 1 << bit
			// More bytes behind it, as on a live connection.
			b = append(b, frame("next")...)
			b = append(b, bytes.Repeat([]byte{0}, 64)...)
			msg, err := readFrame(bufio.NewReader(bytes.NewReader(b)))
			if err == nil {
				t.Fatalf("byte %d bit %d flipped: delivered %q", i, bit, msg)
			}
		}
	}
	// An announced length over the bound is refused before any payload.
	hdr := frameHeader(nil)
	hdr[0] = 0xff
	if _, err := readFrame(bytes.NewReader(hdr[:])); err == nil || !strings.Contains(err.Error(), "over MessageBytesMax") {
		t.Fatalf("oversized: %v", err)
	}
	// A stream cut inside a frame is an unexpected EOF, not a clean close.
	if _, err := readFrame(bytes.NewReader(good[:len(good)-1])); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut frame: %v", err)
	}
	if _, err := readFrame(bytes.NewReader(nil)); err != io.EOF {
		t.Fatalf("clean close: %v", err)
	}
}

// A frame longer than MessageBytesMax disconnects the sender; the
// transport keeps serving others.
func TestTCPOversizedFrame(t *testing.T) {
	ca := newTestCA(t)
	in, logs := newInbox(), &logbook{}
	n3 := listen(t, TCPConfig{ID: 3, Handler: in.handle, TLS: ca.node(t, 3), Logf: logs.logf})
	conn := authedConn(t, ca, n3.Addr())
	defer conn.Close()
	hdr := frameHeader(nil)
	hdr[0], hdr[1], hdr[2], hdr[3] = 0x04, 0x00, 0x00, 0x01 // MessageBytesMax+1
	conn.Write(hdr[:])
	if !closedByPeer(conn) {
		t.Fatal("connection not closed")
	}
	if logs.find("over MessageBytesMax") == "" {
		t.Fatalf("not logged:\n%s", logs)
	}
	n2 := listen(t, TCPConfig{ID: 2, TLS: ca.node(t, 2), Handler: func(uint64, []byte) {}, Peers: map[uint64]string{3: n3.Addr()}})
	n2.Send(3, []byte("ok"))
	if got := in.wait(t, 1); got[0] != "2:ok" {
		t.Fatalf("got %q", got)
	}
}

// A peer's new connection replaces its old one, so that a peer holds one
// inbound connection however often it reconnects.
func TestTCPNewConnectionReplacesOld(t *testing.T) {
	ca := newTestCA(t)
	in := newInbox()
	n3 := listen(t, TCPConfig{ID: 3, Handler: in.handle, TLS: ca.node(t, 3)})
	old := authedConn(t, ca, n3.Addr())
	defer old.Close()
	fresh := authedConn(t, ca, n3.Addr())
	defer fresh.Close()
	if !closedByPeer(old) {
		t.Fatal("old connection kept")
	}
	fresh.Write(frame("via the new one"))
	if got := in.wait(t, 1); got[0] != "2:via the new one" {
		t.Fatalf("got %q", got)
	}
}

// Connections that never finish their handshake are bounded: past
// handshakingConnsMax, new ones are closed at once.
func TestTCPBoundsHandshakingConnections(t *testing.T) {
	ca := newTestCA(t)
	logs := &logbook{}
	n3 := listen(t, TCPConfig{ID: 3, Handler: func(uint64, []byte) {}, TLS: ca.node(t, 3), Logf: logs.logf})
	var idle []stdnet.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < handshakingConnsMax; i++ {
		c, err := stdnet.Dial("tcp", n3.Addr())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	extra, err := stdnet.Dial("tcp", n3.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if !closedByPeer(extra) {
		t.Fatal("connection over the bound kept")
	}
	if line := logs.find("refused"); !strings.Contains(line, "at the bounds") {
		t.Fatalf("refusal logged as %q", line)
	}
}

// A peer that restarts is reached again.
func TestTCPReconnect(t *testing.T) {
	ca := newTestCA(t)
	id1 := ca.node(t, 1)
	in1 := newInbox()
	n1, err := ListenTCP(TCPConfig{ID: 1, Listen: "127.0.0.1:0", Handler: in1.handle, TLS: id1})
	if err != nil {
		t.Fatal(err)
	}
	addr := n1.Addr()
	n2, err := ListenTCP(TCPConfig{ID: 2, TLS: ca.node(t, 2), Peers: map[uint64]string{1: addr}}) // sends only
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	n2.Send(1, []byte("before"))
	in1.wait(t, 1)
	n1.Close()

	in1b := newInbox()
	var n1b *TCP
	for i := 0; ; i++ { // the port may take a moment to be reusable
		n1b, err = ListenTCP(TCPConfig{ID: 1, Listen: addr, Handler: in1b.handle, TLS: id1})
		if err == nil {
			break
		}
		if i > 100 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer n1b.Close()
	// Messages sent while the old connection is being found dead may be
	// lost; keep sending until one arrives.
	deadline := time.Now().Add(waitTimeout)
	for {
		n2.Send(1, []byte("after"))
		select {
		case <-in1b.got:
			if got := in1b.all(); got[0] != "2:after" {
				t.Fatalf("got %q", got)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("never reconnected")
		}
	}
}

// BenchmarkTCPSend measures one peer's message throughput over the bus,
// with TLS and in plaintext, in windows that never overflow the send
// queue (a dropped message would stall the count).
func BenchmarkTCPSend(b *testing.B) {
	const window = sendQueueMessagesMax / 2
	for _, size := range []int{128, 4 << 10, 64 << 10} {
		for _, secure := range []bool{true, false} {
			name := fmt.Sprintf("bytes=%d/tls=%v", size, secure)
			b.Run(name, func(b *testing.B) {
				got := make(chan struct{}, window)
				cfg1 := TCPConfig{ID: 1, Listen: "127.0.0.1:0", Handler: func(uint64, []byte) { got <- struct{}{} }}
				cfg2 := TCPConfig{ID: 2}
				if secure {
					ca, _, err := pki.NewAuthority(time.Now())
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range []*TCPConfig{&cfg1, &cfg2} {
						certPEM, keyPEM, err := ca.Issue(c.ID, nil, time.Now())
						if err != nil {
							b.Fatal(err)
						}
						if c.TLS, err = NewTLS(certPEM, keyPEM, ca.CertPEM); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					cfg1.Insecure, cfg2.Insecure = true, true
				}
				n1, err := ListenTCP(cfg1)
				if err != nil {
					b.Fatal(err)
				}
				defer n1.Close()
				cfg2.Peers = map[uint64]string{1: n1.Addr()}
				n2, err := ListenTCP(cfg2)
				if err != nil {
					b.Fatal(err)
				}
				defer n2.Close()
				msg := bytes.Repeat([]byte("k"), size)
				n2.Send(1, msg) // connect outside the timing
				<-got
				b.SetBytes(int64(size))
				b.ResetTimer()
				for sent := 0; sent < b.N; {
					n := min(window, b.N-sent)
					for i := 0; i < n; i++ {
						n2.Send(1, msg)
					}
					for i := 0; i < n; i++ {
						<-got
					}
					sent += n
				}
			})
		}
	}
}
