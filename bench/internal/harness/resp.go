package harness

import (
	"bufio"
	"io"
	stdnet "net"
	"strconv"
	"time"

	"github.com/cockroachdb/errors"
)

// Conn is a minimal RESP2 client: enough to load keys with pipelined
// SETs, read INFO, loop SCAN and poll PING/DBSIZE. It is deliberately not a
// general client library — the measured traffic comes from redis-benchmark.
type Conn struct {
	c StreamConn
	r *bufio.Reader
	w *bufio.Writer
}

// StreamConn is the part of a connection Conn uses; tests substitute pipes.
type StreamConn interface {
	io.ReadWriter
	Close() error
	SetDeadline(t time.Time) error
}

// respBufferBytes sizes both directions: a pipelined batch of loadBatchKeys
// SETs with 200-byte values is about 250 KB, flushed in these chunks.
const respBufferBytes = 64 << 10

func Dial(addr string, timeout time.Duration) (*Conn, error) {
	c, err := stdnet.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, errors.Wrapf(err, "dial %s", addr)
	}
	return NewConn(c), nil
}

func NewConn(c StreamConn) *Conn {
	return &Conn{c: c, r: bufio.NewReaderSize(c, respBufferBytes), w: bufio.NewWriterSize(c, respBufferBytes)}
}

func (c *Conn) Close() error { return c.c.Close() }

// RespError is an error reply from the server (-ERR ..., -LOADING ...).
type RespError string

func (e RespError) Error() string { return string(e) }

// Reply is one decoded RESP2 value.
type Reply struct {
	Kind  byte // '+', ':', '$', '*' ('-' is returned as RespError)
	Str   string
	Num   int64
	Elems []Reply
	Null  bool
}

// Send buffers one command; Flush sends everything buffered.
func (c *Conn) Send(args ...[]byte) { WriteCommand(c.w, args...) }

// WriteCommand writes one command as a RESP array of bulk strings: what
// Send buffers, for a load generator that keeps its own writer.
func WriteCommand(w *bufio.Writer, args ...[]byte) {
	var num [20]byte
	w.WriteByte('*')
	w.Write(strconv.AppendInt(num[:0], int64(len(args)), 10))
	w.WriteString("\r\n")
	for _, a := range args {
		w.WriteByte('$')
		w.Write(strconv.AppendInt(num[:0], int64(len(a)), 10))
		w.WriteString("\r\n")
		w.Write(a)
		w.WriteString("\r\n")
	}
}

func (c *Conn) Flush() error { return errors.Wrap(c.w.Flush(), "flush") }

// Do sends one command and reads its reply.
func (c *Conn) Do(args ...string) (Reply, error) {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	c.Send(bs...)
	if err := c.Flush(); err != nil {
		return Reply{}, err
	}
	return c.Read()
}

// respLineBytesMax bounds a simple-string/error/length line.
const respLineBytesMax = 64 << 10

// respBulkBytesMax bounds one bulk reply (INFO is the largest we read).
const respBulkBytesMax = 64 << 20

// respArrayLenMax bounds one array reply (a SCAN page or MGET).
const respArrayLenMax = 10 << 20

func (c *Conn) readLine() (string, error) {
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

// read decodes one reply; an error reply comes back as a RespError.
func (c *Conn) Read() (Reply, error) {
	line, err := c.readLine()
	if err != nil {
		return Reply{}, err
	}
	kind, rest := line[0], line[1:]
	switch kind {
	case '+':
		return Reply{Kind: kind, Str: rest}, nil
	case '-':
		return Reply{}, RespError(rest)
	case ':':
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return Reply{}, errors.Wrapf(err, "resp: integer %q", rest)
		}
		return Reply{Kind: kind, Num: n}, nil
	case '$':
		n, err := strconv.Atoi(rest)
		if err != nil || n < -1 || n > respBulkBytesMax {
			return Reply{}, errors.Newf("resp: bulk length %q", rest)
		}
		if n == -1 {
			return Reply{Kind: kind, Null: true}, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return Reply{}, errors.Wrap(err, "resp: read bulk")
		}
		return Reply{Kind: kind, Str: string(buf[:n])}, nil
	case '*':
		n, err := strconv.Atoi(rest)
		if err != nil || n < -1 || n > respArrayLenMax {
			return Reply{}, errors.Newf("resp: array length %q", rest)
		}
		if n == -1 {
			return Reply{Kind: kind, Null: true}, nil
		}
		r := Reply{Kind: kind, Elems: make([]Reply, 0, n)}
		for i := 0; i < n; i++ {
			e, err := c.Read()
			if err != nil {
				if re, ok := err.(RespError); ok { // an error inside an array (EXEC) is a value
					r.Elems = append(r.Elems, Reply{Kind: '-', Str: string(re)})
					continue
				}
				return Reply{}, err
			}
			r.Elems = append(r.Elems, e)
		}
		return r, nil
	default:
		return Reply{}, errors.Newf("resp: unexpected reply type %q (RESP3 is not expected here)", kind)
	}
}

// SetDeadline sets the connection's read and write deadline.
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// pipelineBatch is how many commands Pipeline keeps in flight.
const pipelineBatch = 1000

// Pipeline sends n commands cmd(0..n-1) in batches and fails on the
// first error reply.
func (c *Conn) Pipeline(n int, cmd func(i int) [][]byte) error {
	for from := 0; from < n; from += pipelineBatch {
		to := min(from+pipelineBatch, n)
		for i := from; i < to; i++ {
			c.Send(cmd(i)...)
		}
		if err := c.Flush(); err != nil {
			return err
		}
		for i := from; i < to; i++ {
			if _, err := c.Read(); err != nil {
				return errors.Wrapf(err, "%s", cmd(i)[0])
			}
		}
	}
	return nil
}
