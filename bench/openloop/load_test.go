package main

import (
	"bufio"
	"context"
	"math"
	stdnet "net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// stallServer answers every command +OK; the command numbered stallAt
// (counting from 1 over all connections) holds every connection for
// stall before it is answered.
type stallServer struct {
	ln      stdnet.Listener
	mu      sync.Mutex
	n       int
	stallAt int
	stall   time.Duration
}

func startStallServer(t *testing.T, stallAt int, stall time.Duration) *stallServer {
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stallServer{ln: ln, stallAt: stallAt, stall: stall}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *stallServer) serve(c stdnet.Conn) {
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil || len(line) < 3 || line[0] != '*' {
			return
		}
		n, _ := strconv.Atoi(line[1 : len(line)-2])
		for range n {
			hdr, err := r.ReadString('\n')
			if err != nil || len(hdr) < 3 {
				return
			}
			size, _ := strconv.Atoi(hdr[1 : len(hdr)-2])
			if _, err := r.Discard(size + 2); err != nil {
				return
			}
		}
		s.mu.Lock()
		s.n++
		if s.n == s.stallAt {
			time.Sleep(s.stall) // every connection waits on mu meanwhile
		}
		s.mu.Unlock()
		w.WriteString("+OK\r\n")
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// TestStallShowsInEveryScheduledRequest: the server stops answering for
// 300 ms in the middle of a 1.5 s run at 2,000 requests/s. Every request
// scheduled during the stall must count the wait from its slot, so about
// 600 requests (20 %) see up to 300 ms and the p95 lands well inside the
// stall; a closed-loop client would have sent only one request per
// connection during it (4 of 3,000) and its p95 would not move.
func TestStallShowsInEveryScheduledRequest(t *testing.T) {
	s := startStallServer(t, 1200, 300*time.Millisecond)
	l := load{addr: s.ln.Addr().String(), rate: 2000, duration: 1500 * time.Millisecond, conns: 4,
		getRatio: 0.5, keys: 100, value: []byte("v"), seed: 1}
	res, err := l.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.lost != 0 || res.errors != 0 {
		t.Fatalf("lost %d, errors %d; want none", res.lost, res.errors)
	}
	if res.sent < 2900 || res.sent > 3000 {
		t.Fatalf("sent %d requests in 1.5 s at 2000/s; want about 3000", res.sent)
	}
	for o := range opCount {
		p50, p95 := res.quantile(o, 50), res.quantile(o, 95)
		if p95 < 100 {
			t.Errorf("%s p95 %.2f ms: the 300 ms stall is hidden", opNames[o], p95)
		}
		if p50 > p95/4 {
			t.Errorf("%s p50 %.2f ms against p95 %.2f ms: requests outside the stall look slow too", opNames[o], p50, p95)
		}
	}
}

// TestNoStallNoTail is the control: the same load without the stall
// keeps its p95 far below the stall's.
func TestNoStallNoTail(t *testing.T) {
	s := startStallServer(t, -1, 0)
	// The server runs in this process: its CPU is the test's.
	l := load{addr: s.ln.Addr().String(), rate: 2000, duration: time.Second, conns: 4,
		getRatio: 0.5, keys: 100, value: []byte("v"), seed: 1, pids: []int{os.Getpid()}}
	res, err := l.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.answered != res.sent || res.sent < 1900 {
		t.Fatalf("answered %d of %d sent; want all of about 2000", res.answered, res.sent)
	}
	if p95 := res.quantile(opGet, 95); p95 > 50 {
		t.Errorf("GET p95 %.2f ms with no stall", p95)
	}
	// Every measured request's send lag is recorded, and a client this
	// idle sends on time.
	if n := res.lag.TotalCount(); n != res.sent {
		t.Errorf("%d send lags recorded for %d requests sent", n, res.sent)
	}
	if p50 := res.lagQuantile(50); p50 > 5 {
		t.Errorf("send lag p50 %.2f ms for a client at 2000 requests/s", p50)
	}
	w := res.cpu
	if !w.ok || len(w.server) != 1 || w.server[0] <= 0 || math.Abs(w.server[0]-w.client) > 0.05 ||
		w.machineBusy <= 0 || w.machineBusy > 1 {
		t.Errorf("CPU window %+v: want this process's CPU as both server and client, and the machine busy in (0, 1]", w)
	}
}
