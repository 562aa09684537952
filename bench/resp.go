package main

import (
	"bufio"
	"fmt"
	"io"
	stdnet "net"
	"strconv"
	"time"

	"github.com/cockroachdb/errors"
)

// respConn is a minimal RESP2 client: enough to load keys with pipelined
// SETs, read INFO, loop SCAN and poll PING/DBSIZE. It is deliberately not a
// general client library — the measured traffic comes from redis-benchmark.
type respConn struct {
	c streamConn
	r *bufio.Reader
	w *bufio.Writer
}

// streamConn is the part of a connection respConn uses; tests substitute pipes.
type streamConn interface {
	io.ReadWriter
	Close() error
	SetDeadline(t time.Time) error
}

// respBufferBytes sizes both directions: a pipelined batch of loadBatchKeys
// SETs with 200-byte values is about 250 KB, flushed in these chunks.
const respBufferBytes = 64 << 10

func dialRESP(addr string, timeout time.Duration) (*respConn, error) {
	c, err := stdnet.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, errors.Wrapf(err, "dial %s", addr)
	}
	return newRESPConn(c), nil
}

func newRESPConn(c streamConn) *respConn {
	return &respConn{c: c, r: bufio.NewReaderSize(c, respBufferBytes), w: bufio.NewWriterSize(c, respBufferBytes)}
}

func (c *respConn) Close() error { return c.c.Close() }

// respError is an error reply from the server (-ERR ..., -LOADING ...).
type respError string

func (e respError) Error() string { return string(e) }

// reply is one decoded RESP2 value.
type reply struct {
	kind  byte // '+', ':', '$', '*' ('-' is returned as respError)
	str   string
	num   int64
	elems []reply
	null  bool
}

// send buffers one command; flush sends everything buffered.
func (c *respConn) send(args ...[]byte) {
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

func (c *respConn) flush() error { return errors.Wrap(c.w.Flush(), "flush") }

// do sends one command and reads its reply.
func (c *respConn) do(args ...string) (reply, error) {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	c.send(bs...)
	if err := c.flush(); err != nil {
		return reply{}, err
	}
	return c.read()
}

// respLineBytesMax bounds a simple-string/error/length line.
const respLineBytesMax = 64 << 10

// respBulkBytesMax bounds one bulk reply (INFO is the largest we read).
const respBulkBytesMax = 64 << 20

// respArrayLenMax bounds one array reply (a SCAN page or MGET).
const respArrayLenMax = 10 << 20

func (c *respConn) readLine() (string, error) {
	line, err := c.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > respLineBytesMax {
		return "", errors.New("resp: line too long")
	}
	if err != nil {
		return "", errors.Wrap(err, "resp: read")
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return "", errors.Newf("resp: malformed line %q", line)
	}
	return string(line[:len(line)-2]), nil
}

// read decodes one reply; an error reply comes back as a respError.
func (c *respConn) read() (reply, error) {
	line, err := c.readLine()
	if err != nil {
		return reply{}, err
	}
	kind, rest := line[0], line[1:]
	switch kind {
	case '+':
		return reply{kind: kind, str: rest}, nil
	case '-':
		return reply{}, respError(rest)
	case ':':
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return reply{}, errors.Wrapf(err, "resp: integer %q", rest)
		}
		return reply{kind: kind, num: n}, nil
	case '$':
		n, err := strconv.Atoi(rest)
		if err != nil || n < -1 || n > respBulkBytesMax {
			return reply{}, errors.Newf("resp: bulk length %q", rest)
		}
		if n == -1 {
			return reply{kind: kind, null: true}, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return reply{}, errors.Wrap(err, "resp: read bulk")
		}
		return reply{kind: kind, str: string(buf[:n])}, nil
	case '*':
		n, err := strconv.Atoi(rest)
		if err != nil || n < -1 || n > respArrayLenMax {
			return reply{}, errors.Newf("resp: array length %q", rest)
		}
		if n == -1 {
			return reply{kind: kind, null: true}, nil
		}
		r := reply{kind: kind, elems: make([]reply, 0, n)}
		for i := 0; i < n; i++ {
			e, err := c.read()
			if err != nil {
				if re, ok := err.(respError); ok { // an error inside an array (EXEC) is a value
					r.elems = append(r.elems, reply{kind: '-', str: string(re)})
					continue
				}
				return reply{}, err
			}
			r.elems = append(r.elems, e)
		}
		return r, nil
	default:
		return reply{}, errors.Newf("resp: unexpected reply type %q (RESP3 is not expected here)", kind)
	}
}

// loadBatchKeys is how many SETs are in flight per round trip when loading.
const loadBatchKeys = 1000

// loadKeys writes n keys named fmt.Sprintf(pattern, i), each with its own
// valueBytes-byte value (valueFor), in pipelined batches, and checks every
// reply.
func (c *respConn) loadKeys(pattern string, first, n, valueBytes int) error {
	set := []byte("SET")
	value := make([]byte, valueBytes)
	for start := first; start < first+n; start += loadBatchKeys {
		end := min(start+loadBatchKeys, first+n)
		for i := start; i < end; i++ {
			valueFor(uint64(i), value)
			c.send(set, []byte(fmt.Sprintf(pattern, i)), value)
		}
		if err := c.flush(); err != nil {
			return err
		}
		for i := start; i < end; i++ {
			r, err := c.read()
			if err != nil {
				return errors.Wrapf(err, "SET key %d", i)
			}
			if r.str != "OK" {
				return errors.Newf("SET key %d: unexpected reply %+v", i, r)
			}
		}
	}
	return nil
}

// valueFor fills buf with printable pseudo-random bytes derived from seed
// (splitmix64). Values differ per key and do not compress, so neither
// system gains from LZF in RDB files or from sharing equal values.
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
