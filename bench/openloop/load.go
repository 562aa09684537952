package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	stdnet "net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
)

// The open-loop load: requests are sent at a fixed rate whatever the
// server does, and each one's latency runs from the moment it was meant
// to be sent (its slot in the schedule), not from when the client got
// round to sending it. A closed-loop client (redis-benchmark, a probe
// that waits for each reply) sends less while the server stalls and so
// measures fewer, faster requests: coordinated omission. Here a stall of
// S shows as every request scheduled during it waiting up to S, as a
// user arriving at that rate would.
//
// Each connection gets rate/conns of the requests, evenly spaced, and two
// goroutines: a sender that writes each request at its slot (all the
// overdue ones at once when it fell behind) and a reader that takes the
// replies in order and records each one's latency from its slot in an
// HDR histogram per operation.

const (
	// histMaxMicros: latencies are recorded up to a minute (longer ones
	// count as a minute); three significant digits.
	histMaxMicros = int64(time.Minute / time.Microsecond)
	// inFlightMax bounds the requests one connection has sent and not
	// had answered; past it the sender waits (the slots keep their times,
	// so the wait still counts in the latencies).
	inFlightMax = 1 << 16
	// drainTimeout: after the last slot, replies still owed are waited
	// for this long, then counted as lost.
	drainTimeout    = 10 * time.Second
	connBufferBytes = 64 << 10
)

// op is one kind of request.
type op uint8

const (
	opGet op = iota
	opSet
	opCount
)

var opNames = [opCount]string{"GET", "SET"}

// load is one open-loop run's shape.
type load struct {
	addr     string
	rate     float64 // requests per second, all connections together
	duration time.Duration
	warmup   time.Duration // its requests are sent but not recorded
	conns    int
	getRatio float64
	keys     int
	value    []byte
	seed     uint64
	// pids are the server's processes (the one the load goes to first),
	// whose CPU over the measured window the result reports.
	pids []int
}

// result is what one run measured.
type result struct {
	hist     [opCount]*hdrhistogram.Histogram
	sent     int64 // requests sent in the measured window
	answered int64
	errors   int64 // error replies, in the measured window
	lost     int64 // sent and never answered within drainTimeout
	elapsed  time.Duration
	// lag: how late the client wrote each measured request after its
	// slot (µs). It is part of every latency (they run from the slot), and
	// it is the load generator's own: a client short of CPU sends late.
	lag *hdrhistogram.Histogram
	cpu cpuWindow
}

// cpuWindow is what the machine's CPU did over the measured window: each
// server process's and the load generator's CPU in cores (1 = one core
// busy all the window), and the share of all the machine's CPU time that
// was not idle (anyone's). ok is false when /proc could not be read.
type cpuWindow struct {
	server      []float64
	client      float64
	machineBusy float64
	ok          bool
}

// measureWindow reads the CPU counters at from and at end.
func measureWindow(ctx context.Context, pids []int, from, end time.Time) cpuWindow {
	read := func() (procs []time.Duration, busy, total int64, err error) {
		for _, pid := range append([]int{os.Getpid()}, pids...) {
			d, err := harness.ProcessCPU(pid)
			if err != nil {
				return nil, 0, 0, err
			}
			procs = append(procs, d)
		}
		busy, total, err = harness.MachineTicks()
		return procs, busy, total, err
	}
	sleepUntil := func(t time.Time) bool {
		timer := time.NewTimer(time.Until(t))
		defer timer.Stop()
		select {
		case <-timer.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !sleepUntil(from) {
		return cpuWindow{}
	}
	p0, b0, t0, err := read()
	if err != nil || !sleepUntil(end) {
		return cpuWindow{}
	}
	p1, b1, t1, err := read()
	wall := end.Sub(from)
	if err != nil || t1 <= t0 || wall <= 0 {
		return cpuWindow{}
	}
	w := cpuWindow{client: float64(p1[0]-p0[0]) / float64(wall), machineBusy: float64(b1-b0) / float64(t1-t0), ok: true}
	for i := 1; i < len(p0); i++ {
		w.server = append(w.server, float64(p1[i]-p0[i])/float64(wall))
	}
	return w
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMaxMicros, 3) }

// achieved is the answered requests per second of the measured window.
func (r *result) achieved() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.answered) / r.elapsed.Seconds()
}

// quantile in milliseconds (q in percent, 99 for p99).
func (r *result) quantile(o op, q float64) float64 {
	return float64(r.hist[o].ValueAtQuantile(q)) / 1000
}

func (r *result) maxMillis(o op) float64 { return float64(r.hist[o].Max()) / 1000 }

// lagQuantile is the client's send lag in milliseconds (q in percent).
func (r *result) lagQuantile(q float64) float64 {
	if r.lag == nil {
		return 0
	}
	return float64(r.lag.ValueAtQuantile(q)) / 1000
}

// busy is the machine's busy share as a percentage, "?" when unknown.
func (w cpuWindow) busy() string {
	if !w.ok {
		return "?"
	}
	return fmt.Sprintf("%.0f%%", 100*w.machineBusy)
}

// cores writes CPU in cores as a percentage of one core.
func cores(c float64) string { return fmt.Sprintf("%.0f%%", 100*c) }

// slot is one request's place in the schedule, as the reader needs it.
type slot struct {
	at       time.Time
	kind     op
	measured bool
}

// run drives the load and returns its figures. The context ends it
// early (an interrupted harness).
func (l load) run(ctx context.Context) (*result, error) {
	res := &result{lag: newHist()}
	for o := range res.hist {
		res.hist[o] = newHist()
	}
	var mu sync.Mutex // guards res while connections merge into it
	start := time.Now().Add(50 * time.Millisecond)
	measureFrom := start.Add(l.warmup)
	end := measureFrom.Add(l.duration)
	interval := time.Duration(float64(time.Second) * float64(l.conns) / l.rate)
	if interval <= 0 {
		return nil, errors.Newf("rate %.0f/s over %d connections is too high", l.rate, l.conns)
	}
	errc := make(chan error, l.conns)
	window := make(chan cpuWindow, 1)
	go func() { window <- measureWindow(ctx, l.pids, measureFrom, end) }()
	var wg sync.WaitGroup
	for i := range l.conns {
		nc, err := stdnet.DialTimeout("tcp", l.addr, 5*time.Second)
		if err != nil {
			return nil, errors.Wrapf(err, "dial %s", l.addr)
		}
		wg.Add(1)
		// Connections start their schedules spread over one interval, so
		// that their requests interleave instead of arriving in bursts.
		offset := interval * time.Duration(i) / time.Duration(l.conns)
		go func() {
			defer wg.Done()
			defer nc.Close()
			c := &loadConn{l: l, nc: nc, rnd: rand.New(rand.NewPCG(l.seed, uint64(i)))}
			part, err := c.run(ctx, start.Add(offset), interval, measureFrom, end)
			mu.Lock()
			defer mu.Unlock()
			for o := range res.hist {
				res.hist[o].Merge(part.hist[o])
			}
			res.lag.Merge(part.lag)
			res.sent += part.sent
			res.answered += part.answered
			res.errors += part.errors
			res.lost += part.lost
			if err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	res.elapsed = end.Sub(measureFrom)
	res.cpu = <-window
	select {
	case err := <-errc:
		return res, err
	default:
	}
	return res, nil
}

type loadConn struct {
	l   load
	nc  stdnet.Conn
	rnd *rand.Rand
}

func (c *loadConn) run(ctx context.Context, first time.Time, interval time.Duration, measureFrom, end time.Time) (*result, error) {
	part := &result{lag: newHist()}
	for o := range part.hist {
		part.hist[o] = newHist()
	}
	slots := make(chan slot, inFlightMax)
	readErr := make(chan error, 1)
	go func() { readErr <- c.read(slots, part) }()

	w := bufio.NewWriterSize(c.nc, connBufferBytes)
	var key [32]byte
	sendErr := func() error {
		for i := 0; ; i++ {
			at := first.Add(time.Duration(i) * interval)
			if !at.Before(end) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if d := time.Until(at); d > 0 {
				// Flush what is due before sleeping to the next slot.
				if err := w.Flush(); err != nil {
					return errors.Wrap(err, "write")
				}
				time.Sleep(d)
			}
			k := append(key[:0], "key:"...)
			k = strconv.AppendInt(k, int64(c.rnd.IntN(c.l.keys)), 10)
			kind := opSet
			if c.rnd.Float64() < c.l.getRatio {
				kind = opGet
			}
			s := slot{at: at, kind: kind, measured: !at.Before(measureFrom)}
			if kind == opGet {
				harness.WriteCommand(w, []byte("GET"), k)
			} else {
				harness.WriteCommand(w, []byte("SET"), k, c.l.value)
			}
			if s.measured {
				part.sent++
				part.lag.RecordValue(min(max(time.Since(at).Microseconds(), 1), histMaxMicros))
			}
			slots <- s
		}
	}()
	flushErr := w.Flush()
	close(slots)
	// The reader finishes once every slot is answered; a server that
	// never answers is cut off after drainTimeout.
	c.nc.SetReadDeadline(time.Now().Add(drainTimeout))
	rerr := <-readErr
	part.lost = part.sent - part.answered
	if part.lost < 0 {
		part.lost = 0
	}
	switch {
	case sendErr != nil:
		return part, sendErr
	case flushErr != nil:
		return part, errors.Wrap(flushErr, "write")
	case rerr != nil && part.lost > 0:
		return part, rerr
	}
	return part, nil
}

// read takes replies in order, one per slot, recording each measured
// one's latency from its slot.
func (c *loadConn) read(slots <-chan slot, part *result) error {
	r := bufio.NewReaderSize(c.nc, connBufferBytes)
	for s := range slots {
		kind, err := skipReply(r)
		if err != nil {
			// Leave the remaining slots unread: they are lost.
			for range slots {
			}
			return err
		}
		if !s.measured {
			continue
		}
		lat := time.Since(s.at).Microseconds()
		part.hist[s.kind].RecordValue(min(max(lat, 1), histMaxMicros))
		part.answered++
		if kind == '-' {
			part.errors++
		}
	}
	return nil
}

// skipReply reads one reply (simple string, error, integer or bulk: what
// GET and SET answer) and returns its type byte.
func skipReply(r *bufio.Reader) (byte, error) {
	b, err := r.ReadSlice('\n')
	if err != nil {
		return 0, errors.Wrap(err, "read reply")
	}
	if len(b) < 3 || b[len(b)-2] != '\r' {
		return 0, errors.Newf("malformed reply line %q", b)
	}
	switch b[0] {
	case '+', '-', ':':
	case '$':
		n, err := strconv.Atoi(string(b[1 : len(b)-2]))
		if err != nil {
			return 0, errors.Newf("bulk length %q", b)
		}
		if n >= 0 {
			if _, err := r.Discard(n + 2); err != nil {
				return 0, errors.Wrap(err, "read bulk")
			}
		}
	default:
		return 0, errors.Newf("unexpected reply %q", b)
	}
	return b[0], nil
}
