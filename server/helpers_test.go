package server

import (
	"bufio"
	"context"
	"fmt"
	stdnet "net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/resp"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/seam"
	"github.com/redis/go-redis/v9"
)

// testServer is a keel server in this process on a random loopback port.
type testServer struct {
	srv  *Server
	addr string
	done chan error
}

func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	r, err := cluster.Open(cluster.Options{Rand: seam.NewRand()})
	if err != nil {
		t.Fatal(err)
	}
	return serveReplica(t, cfg, r)
}

// serveReplica serves r on a random loopback port until the test ends.
func serveReplica(t testing.TB, cfg Config, r *cluster.Replica) *testServer {
	t.Helper()
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	return serve(t, New(cfg, r))
}

// serveOpen opens the replicas cfg.ReplicaOptions describes (Open) and
// serves them until the test ends.
func serveOpen(t testing.TB, cfg Config) *testServer {
	t.Helper()
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	srv, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, srv)
}

func serve(t testing.TB, srv *Server) *testServer {
	t.Helper()
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Shutdown()
		if err := <-ts.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

func (ts *testServer) client(t testing.TB, opts *redis.Options) *redis.Client {
	t.Helper()
	if opts == nil {
		opts = &redis.Options{}
	}
	opts.Addr = ts.addr
	if opts.Protocol == 0 {
		opts.Protocol = 2
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn speaks RESP by hand, to check replies byte for byte.
type rawConn struct {
	t    testing.TB
	conn stdnet.Conn
	br   *bufio.Reader
}

func (ts *testServer) raw(t testing.TB) *rawConn {
	t.Helper()
	conn, err := stdnet.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawConn{t: t, conn: conn, br: bufio.NewReader(conn)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := rc.conn.Write([]byte(s)); err != nil {
		rc.t.Fatal(err)
	}
}

// do sends an inline command and returns the reply in a compact form:
// "+OK", "-ERR ...", ":1", "$hello" / "$nil", "*[a b]" (nested), "%[k v]".
func (rc *rawConn) do(args ...string) string {
	rc.t.Helper()
	w := resp.NewWriter()
	w.WriteArray(len(args))
	for _, a := range args {
		w.WriteBulkString(a)
	}
	rc.send(string(w.Bytes()))
	return rc.reply()
}

func (rc *rawConn) reply() string {
	rc.t.Helper()
	rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := readReply(rc.br)
	if err != nil {
		rc.t.Fatalf("reading reply: %v", err)
	}
	return s
}

// readReply parses one RESP2/RESP3 reply for tests.
func readReply(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(line, "\r\n") || len(line) < 3 {
		return "", fmt.Errorf("bad line %q", line)
	}
	line = line[:len(line)-2]
	switch line[0] {
	case '+', '-', ':', ',', '#', '_':
		return line, nil
	case '$', '=':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		if n < 0 {
			return "$nil", nil
		}
		b := make([]byte, n+2)
		if _, err := ioReadFull(br, b); err != nil {
			return "", err
		}
		return "$" + string(b[:n]), nil
	case '*', '%', '~', '>':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		if n < 0 {
			return "*nil", nil
		}
		if line[0] == '%' {
			n *= 2
		}
		parts := make([]string, n)
		for i := range parts {
			if parts[i], err = readReply(br); err != nil {
				return "", err
			}
		}
		return string(line[0]) + "[" + strings.Join(parts, " ") + "]", nil
	}
	return "", fmt.Errorf("bad reply type %q", line)
}

func ioReadFull(br *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := br.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// closed reports whether the server closed the connection (EOF on read).
func (rc *rawConn) closed() bool {
	rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := rc.br.ReadByte()
	return err != nil
}

func ctx() context.Context { return context.Background() }

type runtimeMem struct{ heap, stack uint64 }

func (m *runtimeMem) read() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heap, m.stack = ms.HeapInuse, ms.StackInuse
}

func (m *runtimeMem) total() uint64 { return m.heap + m.stack }

// onReplica runs fn on the replica of group gi+1, inside its queue.
func (s *Server) onReplica(gi int, fn func(r *cluster.Replica)) {
	g := uint64(gi + 1)
	s.do(g, func() { fn(s.node.Replica(g)) })
}
