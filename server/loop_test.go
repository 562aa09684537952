//go:build linux

package server

import (
	"bufio"
	stdnet "net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-db/keel/resp"
)

// inLoops is how many connections the server's event loops serve now.
func (s *Server) inLoops() int {
	n := 0
	for _, l := range s.loops {
		l.mu.Lock()
		n += len(l.conns)
		l.mu.Unlock()
	}
	return n
}

// waitInLoops waits until the loops serve want connections (a
// connection leaves its loop on its own goroutine's schedule).
func waitInLoops(t *testing.T, s *Server, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.inLoops() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections in event loops, want %d", s.inLoops(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// A plain connection is served by a loop; one that blocks in the middle
// of a pipeline leaves it with the rest of its batch, and its replies come
// in order: nothing run twice, nothing dropped.
func TestLoopBlockingCommandMidPipelineLeavesTheLoop(t *testing.T) {
	ts := startServer(t, Config{})
	if len(ts.srv.loops) != 1 {
		t.Fatalf("%d event loops, want 1 by default", len(ts.srv.loops))
	}
	c := ts.raw(t)
	if got := c.do("SET", "x", "1"); got != "+OK" {
		t.Fatal(got)
	}
	waitInLoops(t, ts.srv, 1)
	c.send("*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n" +
		"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n")
	// The INCR before BLPOP ran; the connection waits in BLPOP off the loop.
	other := ts.raw(t)
	waitInLoops(t, ts.srv, 1) // only other
	if got := other.do("GET", "n"); got != "$1" {
		t.Fatalf("GET n while blocked = %q, want 1", got)
	}
	if got := other.do("RPUSH", "q", "v"); got != ":1" {
		t.Fatal(got)
	}
	for _, want := range []string{":1", "*[$q $v]", ":2", "$1"} {
		if got := c.reply(); got != want {
			t.Fatalf("reply %q, want %q", got, want)
		}
	}
	// It goes on as a goroutine connection.
	if got := c.do("GET", "n"); got != "$2" {
		t.Fatalf("GET n = %q", got)
	}
}

// A reply the socket does not take at once (the client is not reading)
// is finished by the connection's own goroutine, and the commands after
// it run in order.
func TestLoopPartialWriteLeavesTheLoop(t *testing.T) {
	ts := startServer(t, Config{})
	big := strings.Repeat("v", 8<<20) // far beyond a loopback socket's buffers
	c := ts.raw(t)
	if got := c.do("SET", "big", big); got != "+OK" {
		t.Fatal(got)
	}
	waitInLoops(t, ts.srv, 1)
	c.send("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n*3\r\n$3\r\nSET\r\n$1\r\ny\r\n$1\r\n2\r\n")
	waitInLoops(t, ts.srv, 0) // the write would have blocked: it left
	c.send("*2\r\n$3\r\nGET\r\n$1\r\ny\r\n")
	if got := c.reply(); got != "$"+big {
		t.Fatalf("GET big: %d bytes, want %d", len(got)-1, len(big))
	}
	for _, want := range []string{"+OK", "$2"} {
		if got := c.reply(); got != want {
			t.Fatalf("reply %q, want %q", got, want)
		}
	}
}

// A pipeline longer than one batch is served whole, in order, and a
// connection that subscribes in the middle of one gets the commands
// before and after in order, then its messages.
func TestLoopLongPipelineAndSubscribe(t *testing.T) {
	ts := startServer(t, Config{})
	c := ts.raw(t)
	var b strings.Builder
	const n = 5000 // resp.BatchCommandsMax is far less
	for range n {
		b.WriteString("*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n")
	}
	c.send(b.String())
	for i := 1; i <= n; i++ {
		if got, want := c.reply(), ":"+itoa(i); got != want {
			t.Fatalf("reply %d: %q, want %q", i, got, want)
		}
	}
	waitInLoops(t, ts.srv, 1)
	c.send("*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n*1\r\n$4\r\nPING\r\n")
	for _, want := range []string{":" + itoa(n+1), "*[$subscribe $ch :1]", "*[$pong $]"} {
		if got := c.reply(); got != want {
			t.Fatalf("reply %q, want %q", got, want)
		}
	}
	waitInLoops(t, ts.srv, 0)
	pub := ts.raw(t)
	if got := pub.do("PUBLISH", "ch", "hi"); got != ":1" {
		t.Fatal(got)
	}
	if got := c.reply(); got != "*[$message $ch $hi]" {
		t.Fatalf("subscriber got %q", got)
	}
}

// CLIENT KILL closes a connection its loop serves, and the server closes
// with connections in its loop.
func TestLoopClientKill(t *testing.T) {
	ts := startServer(t, Config{})
	victim := ts.raw(t)
	victim.do("CLIENT", "SETNAME", "victim")
	admin := ts.raw(t)
	waitInLoops(t, ts.srv, 2)
	if got := admin.do("CLIENT", "KILL", "SKIPME", "yes", "ID", strings.TrimPrefix(victim.do("CLIENT", "ID"), ":")); got != ":1" {
		t.Fatalf("CLIENT KILL = %q", got)
	}
	if !victim.closed() {
		t.Fatal("the killed connection is still open")
	}
	waitInLoops(t, ts.srv, 1)
	if got := admin.do("PING"); got != "+PONG" {
		t.Fatal(got)
	}
}

// With EventLoops negative every connection has its own goroutine.
func TestNoLoopsWhenAskedFor(t *testing.T) {
	ts := startServer(t, Config{EventLoops: -1})
	if len(ts.srv.loops) != 0 {
		t.Fatalf("%d loops", len(ts.srv.loops))
	}
	c := ts.raw(t)
	if got := c.do("SET", "a", "b"); got != "+OK" {
		t.Fatal(got)
	}
	if got := c.do("GET", "a"); got != "$b" {
		t.Fatal(got)
	}
}

// Connections that come and go while others run commands: a descriptor
// the loop closed is soon reused by the next accept, and no reply may
// reach the wrong client or be lost. Some clients hang up without QUIT,
// some are killed by CLIENT KILL from another connection.
func TestLoopConnectionChurn(t *testing.T) {
	ts := startServer(t, Config{})
	admin := ts.raw(t)
	var adminMu sync.Mutex
	const workers, rounds = 6, 60
	errs := make(chan string, workers)
	for w := range workers {
		go func() {
			for r := range rounds {
				conn, err := stdnet.Dial("tcp", ts.addr)
				if err != nil {
					errs <- err.Error()
					return
				}
				rc := quietConn{conn, bufio.NewReader(conn)}
				key, val := "churn:"+itoa(w), itoa(w)+":"+itoa(r)
				if got := rc.doErr("SET", key, val); got != "+OK" {
					errs <- "SET " + key + ": " + got
					conn.Close()
					return
				}
				if got := rc.doErr("GET", key); got != "$"+val {
					errs <- "GET " + key + ": " + got + ", want " + val
					conn.Close()
					return
				}
				switch r % 3 {
				case 0:
					rc.doErr("QUIT")
				case 1:
					id := strings.TrimPrefix(rc.doErr("CLIENT", "ID"), ":")
					adminMu.Lock()
					got := admin.do("CLIENT", "KILL", "ID", id)
					adminMu.Unlock()
					if got != ":1" {
						errs <- "CLIENT KILL ID " + id + ": " + got
						conn.Close()
						return
					}
				}
				conn.Close()
			}
			errs <- ""
		}()
	}
	for range workers {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
	waitInLoops(t, ts.srv, 1) // admin only: every other one was closed
	for w := range workers {
		if got := admin.do("GET", "churn:"+itoa(w)); got != "$"+itoa(w)+":"+itoa(rounds-1) {
			t.Fatalf("churn:%d = %q", w, got)
		}
	}
}

// quietConn is a raw connection for goroutines other than the test's: its
// errors come back as the reply.
type quietConn struct {
	conn stdnet.Conn
	br   *bufio.Reader
}

func (q quietConn) doErr(args ...string) string {
	w := resp.NewWriter()
	w.WriteArray(len(args))
	for _, a := range args {
		w.WriteBulkString(a)
	}
	if _, err := q.conn.Write(w.Bytes()); err != nil {
		return "write: " + err.Error()
	}
	q.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := readReply(q.br)
	if err != nil {
		return "read: " + err.Error()
	}
	return got
}
