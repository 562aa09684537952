package transport

import (
	"bytes"
	"encoding/binary"
	"fmt"
	stdnet "net"
	"sync"
	"testing"
	"time"
)

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
		case <-time.After(20 * time.Second):
			t.Fatalf("got %d of %d messages", i, n)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.msgs...)
}

func TestPeerAddr(t *testing.T) {
	if a, err := PeerAddr("127.0.0.1:7001"); err != nil || a != "127.0.0.1:17001" {
		t.Fatalf("%q %v", a, err)
	}
	if _, err := PeerAddr("127.0.0.1:60000"); err == nil {
		t.Fatal("port over 65535 accepted")
	}
}

func TestTCPLoopback(t *testing.T) {
	in1, in2 := newInbox(), newInbox()
	n1, err := ListenTCP(TCPConfig{ID: 1, Listen: "127.0.0.1:0", Handler: in1.handle})
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Close()
	n2, err := ListenTCP(TCPConfig{ID: 2, Listen: "127.0.0.1:0", Handler: in2.handle, Peers: map[uint64]string{1: n1.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	n1.cfg.Peers = map[uint64]string{2: n2.Addr()}

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
	n1.Send(99, []byte("nobody")) // unknown peer: dropped, no panic
}

// A peer that restarts is reached again.
func TestTCPReconnect(t *testing.T) {
	in1 := newInbox()
	n1, err := ListenTCP(TCPConfig{ID: 1, Listen: "127.0.0.1:0", Handler: in1.handle})
	if err != nil {
		t.Fatal(err)
	}
	addr := n1.Addr()
	n2, err := ListenTCP(TCPConfig{ID: 2, Peers: map[uint64]string{1: addr}})
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
		n1b, err = ListenTCP(TCPConfig{ID: 1, Listen: addr, Handler: in1b.handle})
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
	deadline := time.Now().Add(20 * time.Second)
	for {
		n2.Send(1, []byte("after"))
		select {
		case <-in1b.got:
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("never reconnected")
		}
	}
}

// A frame longer than MessageBytesMax disconnects the sender; the
// transport keeps serving others.
func TestTCPOversizedFrame(t *testing.T) {
	in := newInbox()
	n1, err := ListenTCP(TCPConfig{ID: 1, Listen: "127.0.0.1:0", Handler: in.handle})
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Close()
	conn, err := stdnet.Dial("tcp", n1.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b bytes.Buffer
	b.WriteString(helloMagic)
	binary.Write(&b, binary.BigEndian, uint64(7))
	binary.Write(&b, binary.BigEndian, uint32(MessageBytesMax+1))
	conn.Write(b.Bytes())
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection not closed")
	}
	n3, err := ListenTCP(TCPConfig{ID: 3, Peers: map[uint64]string{1: n1.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer n3.Close()
	n3.Send(1, []byte("ok"))
	if got := in.wait(t, 1); got[0] != "3:ok" {
		t.Fatalf("got %q", got)
	}
}
