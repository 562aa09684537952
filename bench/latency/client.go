package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	stdnet "net"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
)

// conn is the smallest RESP2 client the run needs: pipelined SETs for the
// load and one GET at a time for the probe. Replies are parsed only as far
// as needed to skip them and to catch errors.
type conn struct {
	c stdnet.Conn
	r *bufio.Reader
	w *bufio.Writer
}

const connBufferBytes = 64 << 10

func dial(addr string) (*conn, error) {
	c, err := stdnet.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, errors.Wrapf(err, "dial %s", addr)
	}
	return &conn{c: c, r: bufio.NewReaderSize(c, connBufferBytes), w: bufio.NewWriterSize(c, connBufferBytes)}, nil
}

func (c *conn) Close() error { return c.c.Close() }

// send buffers one command.
func (c *conn) send(args ...[]byte) {
	var num [20]byte
	c.w.WriteByte('*')
	c.w.Write(strconv.AppendInt(num[:0], int64(len(args)), 10))
	c.w.WriteString("\r\n")
	for _, a := range args {
		c.w.WriteByte('$')
		c.w.Write(strconv.AppendInt(num[:0], int64(len(a)), 10))
		c.w.WriteString("\r\n")
		c.w.Write(a)
		c.w.WriteString("\r\n")
	}
}

// readReply reads one reply and returns its first line's payload (for a
// bulk string, its length as text) and, for an integer, its value. Bulk
// bodies are skipped; arrays are not expected here.
func (c *conn) readReply() (kind byte, line string, err error) {
	b, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, "", errors.Wrap(err, "resp: read")
	}
	if len(b) < 3 || b[len(b)-2] != '\r' {
		return 0, "", errors.Newf("resp: malformed line %q", b)
	}
	kind, line = b[0], string(b[1:len(b)-2])
	switch kind {
	case '-':
		return kind, line, errors.Newf("server error: %s", line)
	case '$':
		n, err := strconv.Atoi(line)
		if err != nil {
			return kind, line, errors.Newf("resp: bulk length %q", line)
		}
		if n >= 0 {
			if _, err := c.r.Discard(n + 2); err != nil {
				return kind, line, errors.Wrap(err, "resp: read bulk")
			}
		}
	case '+', ':':
	default:
		return kind, line, errors.Newf("resp: unexpected reply type %q", kind)
	}
	return kind, line, nil
}

// do sends one command and reads its reply line.
func (c *conn) do(args ...string) (string, error) {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	c.send(bs...)
	if err := c.w.Flush(); err != nil {
		return "", errors.Wrap(err, "flush")
	}
	_, line, err := c.readReply()
	return line, err
}

// keyName is the name redis-benchmark gives key i with "-r" and the
// default key:__rand_int__ placeholder (12 digits, zero-padded), so the
// write load and the probe hit the keys the load created.
func keyName(buf []byte, i int) []byte {
	buf = append(buf[:0], "key:"...)
	var digits [12]byte
	for j := len(digits) - 1; j >= 0; j-- {
		digits[j] = byte('0' + i%10)
		i /= 10
	}
	return append(buf, digits[:]...)
}

// loadBatch is how many SETs one loader connection has in flight.
const loadBatch = 1000

// load writes keys [0, n) with valueBytes-byte values over loaders
// connections, each taking an interleaved share of batches, and checks
// every reply. Values differ per key (valueFor).
func load(ctx context.Context, addr string, n, valueBytes, loaders int) error {
	var wg sync.WaitGroup
	errs := make([]error, loaders)
	for l := 0; l < loaders; l++ {
		wg.Add(1)
		go func(l int) {
			defer wg.Done()
			c, err := dial(addr)
			if err != nil {
				errs[l] = err
				return
			}
			defer c.Close()
			set := []byte("SET")
			key := make([]byte, 0, 16)
			value := make([]byte, valueBytes)
			for start := l * loadBatch; start < n; start += loaders * loadBatch {
				if ctx.Err() != nil {
					errs[l] = ctx.Err()
					return
				}
				end := min(start+loadBatch, n)
				for i := start; i < end; i++ {
					valueFor(uint64(i), value)
					key = keyName(key, i)
					c.send(set, key, value)
				}
				if err := c.w.Flush(); err != nil {
					errs[l] = errors.Wrap(err, "flush")
					return
				}
				for i := start; i < end; i++ {
					if _, line, err := c.readReply(); err != nil || line != "OK" {
						errs[l] = errors.Newf("SET key %d: %q %v", i, line, err)
						return
					}
				}
			}
		}(l)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// valueFor fills buf with printable pseudo-random bytes derived from seed
// (splitmix64), as the main harness does.
func valueFor(seed uint64, buf []byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	x := seed
	for i := range buf {
		if i%8 == 0 {
			x += 0x9e3779b97f4a7c15
			z := x
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
			z = (z ^ (z >> 27)) * 0x94d049bb133111eb
			x = z ^ (z >> 31)
		}
		buf[i] = alphabet[(x>>(6*(i%8)))&63]
	}
}

// sample is one GET: when it was sent (since the probe started) and how
// long its reply took.
type sample struct {
	at, latency time.Duration
}

// probeBufferSamples presizes each probe connection's record so that
// appending during the run does not allocate (a 20 s phase at ~20k GETs/s
// per connection stays below it; past it the slice grows as usual).
const probeBufferSamples = 1 << 19

// probe runs clients closed-loop connections, each sending GET of a random
// key in [0, keys) and waiting for the reply, until stop is closed. It
// returns every sample; a missing key or an error reply is an error (the
// probe must measure hits of loaded keys).
func probe(addr string, clients, keys int, seed uint64, stop <-chan struct{}) ([]sample, error) {
	conns := make([]*conn, clients)
	for i := range conns {
		c, err := dial(addr)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return nil, err
		}
		conns[i] = c
	}
	start := time.Now()
	var wg sync.WaitGroup
	out := make([][]sample, clients)
	errs := make([]error, clients)
	for i, c := range conns {
		wg.Add(1)
		go func(i int, c *conn) {
			defer wg.Done()
			defer c.Close()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			get := []byte("GET")
			key := make([]byte, 0, 16)
			s := make([]sample, 0, probeBufferSamples)
			for {
				select {
				case <-stop:
					out[i] = s
					return
				default:
				}
				key = keyName(key, rng.IntN(keys))
				c.send(get, key)
				t0 := time.Now()
				if err := c.w.Flush(); err != nil {
					errs[i] = errors.Wrap(err, "flush")
					out[i] = s
					return
				}
				kind, line, err := c.readReply()
				lat := time.Since(t0)
				if err == nil && (kind != '$' || line == "-1") {
					err = errors.Newf("GET %s: reply %c%s, want the loaded value", key, kind, line)
				}
				if err != nil {
					errs[i] = err
					out[i] = s
					return
				}
				s = append(s, sample{at: t0.Sub(start), latency: lat})
			}
		}(i, c)
	}
	wg.Wait()
	var all []sample
	for _, s := range out {
		all = append(all, s...)
	}
	return all, errors.Join(errs...)
}

func (s sample) String() string {
	return fmt.Sprintf("@%.3fs %.3fms", s.at.Seconds(), float64(s.latency)/1e6)
}
