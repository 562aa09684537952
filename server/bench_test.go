package server

import (
	"fmt"
	stdnet "net"
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/resp"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/seam"
)

// loopConn is a net.Conn that serves the same request bytes on every Read
// and discards writes: the server's per-batch path without the kernel.
type loopConn struct {
	req     []byte
	off     int
	written int
}

func (l *loopConn) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m := copy(p[n:], l.req[l.off:])
		n += m
		l.off = (l.off + m) % len(l.req)
	}
	return n, nil
}

func (l *loopConn) Write(p []byte) (int, error)      { l.written += len(p); return len(p), nil }
func (l *loopConn) Close() error                     { return nil }
func (l *loopConn) LocalAddr() stdnet.Addr           { return &stdnet.TCPAddr{} }
func (l *loopConn) RemoteAddr() stdnet.Addr          { return &stdnet.TCPAddr{} }
func (l *loopConn) SetDeadline(time.Time) error      { return nil }
func (l *loopConn) SetReadDeadline(time.Time) error  { return nil }
func (l *loopConn) SetWriteDeadline(time.Time) error { return nil }

func benchBatch(b *testing.B, cmd []string, pipeline int) {
	r, err := cluster.Open(cluster.Options{Rand: seam.NewRand()})
	if err != nil {
		b.Fatal(err)
	}
	srv := New(Config{}, r)
	defer srv.Close()
	w := resp.NewWriter()
	for i := 0; i < pipeline; i++ {
		w.WriteArray(len(cmd))
		for _, a := range cmd {
			w.WriteBulkString(a)
		}
	}
	conn := &loopConn{req: w.Bytes()}
	c := newConn(srv, conn)
	// One step runs batches until pipeline commands ran; a batch is what
	// the read buffer held, as on a real connection.
	pending := 0
	step := func() {
		for pending < pipeline {
			cmds, err := c.rd.ReadBatch()
			if err != nil {
				b.Fatal(err)
			}
			c.sess.Begin(cmds)
			if !c.run() || !c.flush() {
				b.Fatal("flush")
			}
			pending += len(cmds)
		}
		pending -= pipeline
	}
	for i := 0; i < 100; i++ { // warm up buffers and the key
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*pipeline)/b.Elapsed().Seconds(), "cmds/s")
}

// BenchmarkBatch measures the server's own per-command cost (parse, route,
// shard, engine, encode, one write per batch) without the network:
//
//	go test ./server -run XXX -bench Batch -benchmem
func BenchmarkBatch(b *testing.B) {
	val := strings.Repeat("v", 200)
	for _, p := range []int{1, 16} {
		for _, c := range []struct {
			name string
			cmd  []string
		}{
			{"SET", []string{"SET", "key:000042", val}},
			{"GET", []string{"GET", "key:000042"}},
			{"INCR", []string{"INCR", "counter"}},
			{"PING", []string{"PING"}},
			{"MGET10", []string{"MGET", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10"}},
		} {
			b.Run(fmt.Sprintf("%s/P%d", c.name, p), func(b *testing.B) { benchBatch(b, c.cmd, p) })
		}
	}
}
