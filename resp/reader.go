package resp

import (
	"bytes"
	"io"
	"sync/atomic"
)

// Limits bound what one client may make the reader buffer. The names and
// defaults follow redis.conf.
type Limits struct {
	// BulkBytesMax is proto-max-bulk-len: the largest bulk string accepted.
	BulkBytesMax int64
	// MultibulkLenMax is the largest number of elements in one command.
	MultibulkLenMax int64
	// InlineBytesMax bounds an inline command line and the header lines
	// ("*n", "$n") of a multibulk command.
	InlineBytesMax int
	// QueryBufferBytesMax is client-query-buffer-limit: one incomplete
	// command may not make the read buffer grow past it.
	QueryBufferBytesMax int
}

// What an unauthenticated client may send, as Redis 7 bounds it: a
// connection that has not passed AUTH cannot make the server hold more
// than a few small arguments.
const (
	UnauthMultibulkLenMax = 10
	UnauthBulkBytesMax    = 16 << 10
)

// Default limits, as Redis 7 ships them.
const (
	BulkBytesMaxDefault        = 512 << 20
	MultibulkLenMaxDefault     = 1024 * 1024
	InlineBytesMaxDefault      = 64 << 10
	QueryBufferBytesMaxDefault = 1 << 30
)

// DefaultLimits returns Redis's defaults.
func DefaultLimits() Limits {
	return Limits{
		BulkBytesMax:        BulkBytesMaxDefault,
		MultibulkLenMax:     MultibulkLenMaxDefault,
		InlineBytesMax:      InlineBytesMaxDefault,
		QueryBufferBytesMax: QueryBufferBytesMaxDefault,
	}
}

const (
	// readBufferBytesInitial is what an idle connection holds for reading:
	// small, because 10,000 idle clients must cost little.
	readBufferBytesInitial = 1 << 10
	// readBufferBytesBusy is what a connection reads into once a read has
	// filled its buffer: a 16-command pipeline of 200-byte SETs (about
	// 4 KiB) then arrives in one read and runs as one batch, one shard
	// acquisition and one reply write, instead of four. Redis reads 16 KiB.
	readBufferBytesBusy = 16 << 10
	// readsSmallBeforeShrink: after this many reads in a row that each
	// brought at most half the initial size, a busy buffer goes back to the
	// initial size, so a connection that pipelined once and then went quiet
	// does not keep 16 KiB.
	readsSmallBeforeShrink = 16
	// readBufferBytesShrink: a buffer grown past this (by a big argument or
	// a deep pipeline) goes back to the initial size once it is mostly empty.
	readBufferBytesShrink = 64 << 10
	// readBytesMin is the least free space offered to one read(2).
	readBytesMin = 512
	// BatchCommandsMax bounds one batch, so that one client's deep pipeline
	// does not hold the shard (and other clients) for too long.
	BatchCommandsMax = 1024
	// argsRetainedMax bounds the argument slices a connection keeps between
	// batches.
	argsRetainedMax = 4096
)

// ProtocolError is malformed input. The connection gets "-ERR Protocol
// error: <Msg>" and is closed.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

// ErrQueryBufferLimit closes the connection without a reply, as Redis does
// when client-query-buffer-limit is exceeded.
var ErrQueryBufferLimit = &ProtocolError{Msg: "query buffer limit exceeded"}

type span struct{ start, end int }

// Reader parses RESP2 multibulk and inline commands. ReadBatch returns every
// complete command that is buffered, reading from the connection only when
// none is. Arguments point into the read buffer (or into the reader's own
// scratch for unescaped inline arguments): they stay valid only until the
// next ReadBatch.
type Reader struct {
	src    io.Reader
	limits Limits

	buf []byte
	// buf[r:w] is unconsumed input. buf[r:] starts with the current
	// (incomplete) command, whose parse has reached pos.
	r, w, pos int
	// want is the number of arguments still expected by the multibulk
	// command being parsed, or -1 between commands.
	want int64

	spans   []span // arguments of the batch's commands, then the partial one
	cmdEnds []int  // cmdEnds[i] is the end in spans of command i
	partial int    // spans[partial:] belong to the incomplete command

	argv [][]byte   // materialised arguments, reused
	cmds [][][]byte // the batch, reused

	bytesRead atomic.Int64 // total, for INFO total_net_input_bytes (read by other goroutines)
	// shownBuffered and shownCap mirror Buffered and BufferCap for other
	// goroutines (CLIENT LIST's qbuf and qbuf-free): set after every read
	// and whenever a batch's commands are let go.
	shownBuffered, shownCap atomic.Int64

	pending error // a protocol error found after a complete command
	// needBytes is how long buf[r:] must be for the parse to progress
	// (relative to r);
	// it steers growth so a big bulk does not get read 512 bytes at a time.
	needBytes int

	// lastFull: the last read filled all the space offered, so the peer
	// probably had more to send; the next read gets a busy-sized buffer.
	lastFull bool
	// unauthenticated applies Redis's limits for a client that has not
	// passed AUTH (SetAuthenticated).
	unauthenticated bool
	// peak is the largest buffer ever held (PeakBufferCap).
	peak int
	// readsSmall counts consecutive reads of at most readBufferBytesInitial/2.
	readsSmall int
}

// NewReader returns a reader over src.
func NewReader(src io.Reader, limits Limits) *Reader {
	return &Reader{src: src, limits: limits, buf: make([]byte, readBufferBytesInitial), want: -1}
}

// SetLimits changes the limits for the commands read from now on (CONFIG
// SET client-query-buffer-limit, proto-max-bulk-len).
func (rd *Reader) SetLimits(l Limits) { rd.limits = l }

// SetAuthenticated says whether the client has passed AUTH; until it has,
// a command may hold at most UnauthMultibulkLenMax arguments of at most
// UnauthBulkBytesMax bytes each, and more is a protocol error (the
// connection closes), as in Redis.
func (rd *Reader) SetAuthenticated(ok bool) { rd.unauthenticated = !ok }

// BytesRead is the total number of bytes read from the source.
func (rd *Reader) BytesRead() int64 { return rd.bytesRead.Load() }

// Buffered is the number of unconsumed bytes (CLIENT LIST qbuf).
func (rd *Reader) Buffered() int { return rd.w - rd.r }

// Shown is Buffered and BufferCap as of the last read or batch, safe to
// call from any goroutine.
func (rd *Reader) Shown() (buffered, capacity int) {
	return int(rd.shownBuffered.Load()), int(rd.shownCap.Load())
}

func (rd *Reader) show() {
	rd.shownBuffered.Store(int64(rd.w - rd.r))
	rd.shownCap.Store(int64(len(rd.buf)))
}

// PeakBufferCap is the largest read buffer the reader ever held.
func (rd *Reader) PeakBufferCap() int { return max(rd.peak, len(rd.buf)) }

// BufferCap is the read buffer's capacity (CLIENT LIST qbuf-free + qbuf).
func (rd *Reader) BufferCap() int { return len(rd.buf) }

// ReadBatch returns the next batch of commands: at least one, and every
// complete one already buffered (up to BatchCommandsMax). A ProtocolError
// comes after the commands that preceded the bad input have been returned.
func (rd *Reader) ReadBatch() ([][][]byte, error) {
	rd.startBatch()
	for {
		if rd.pending != nil {
			return nil, rd.pending
		}
		if err := rd.parse(); err != nil {
			if len(rd.cmdEnds) == 0 {
				return nil, err
			}
			rd.pending = err
		}
		if len(rd.cmdEnds) > 0 {
			return rd.materialise(), nil
		}
		if err := rd.fill(); err != nil {
			return nil, err
		}
	}
}

// startBatch forgets the previous batch (its arguments are dead now) and
// moves the incomplete command to the front of the buffer.
func (rd *Reader) startBatch() {
	n := copy(rd.spans, rd.spans[rd.partial:])
	rd.spans = rd.spans[:n]
	if cap(rd.argv) > argsRetainedMax {
		// A huge command grew these; an idle connection should not keep them.
		rd.argv = nil
		if n <= argsRetainedMax/2 {
			rd.spans = append([]span(nil), rd.spans...)
		}
	}
	rd.partial = 0
	rd.cmdEnds = rd.cmdEnds[:0]
	if rd.r == 0 {
		rd.show()
		return
	}
	unread := rd.w - rd.r
	quiet := len(rd.buf) > readBufferBytesInitial && rd.readsSmall >= readsSmallBeforeShrink
	if (len(rd.buf) > readBufferBytesShrink || quiet) && unread <= readBufferBytesInitial/2 {
		rd.readsSmall = 0
		nb := make([]byte, readBufferBytesInitial)
		copy(nb, rd.buf[rd.r:rd.w])
		rd.buf = nb
	} else {
		copy(rd.buf, rd.buf[rd.r:rd.w])
	}
	for i := range rd.spans {
		rd.spans[i].start -= rd.r
		rd.spans[i].end -= rd.r
	}
	rd.pos -= rd.r
	rd.r, rd.w = 0, unread
	rd.show()
}

// fill reads more input, growing the buffer when it is full.
func (rd *Reader) fill() error {
	if len(rd.buf)-rd.w < readBytesMin {
		if rd.r > 0 {
			// Only reached when the batch holds no complete command, so no
			// argument of a returned command points into buf[:r].
			rd.startBatch()
		}
		if len(rd.buf)-rd.w < readBytesMin {
			size := 2 * len(rd.buf)
			if rd.needBytes > size {
				// Grow at most by doubling: a peer announcing a huge bulk
				// must send the bytes before we hold memory for them.
				size = min(rd.needBytes, 2*size)
			}
			if rd.w >= rd.limits.QueryBufferBytesMax {
				return ErrQueryBufferLimit
			}
			size = min(size, rd.limits.QueryBufferBytesMax+readBytesMin)
			nb := make([]byte, size)
			copy(nb, rd.buf[:rd.w])
			rd.buf = nb
			rd.peak = max(rd.peak, size)
		}
	}
	if rd.lastFull && len(rd.buf) < readBufferBytesBusy {
		nb := make([]byte, readBufferBytesBusy)
		copy(nb, rd.buf[:rd.w])
		rd.buf = nb
	}
	free := len(rd.buf) - rd.w
	n, err := rd.src.Read(rd.buf[rd.w:])
	rd.w += n
	rd.bytesRead.Add(int64(n))
	rd.show()
	rd.lastFull = n == free
	if n <= readBufferBytesInitial/2 {
		rd.readsSmall++
	} else {
		rd.readsSmall = 0
	}
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (rd *Reader) materialise() [][][]byte {
	rd.argv = rd.argv[:0]
	for _, s := range rd.spans[:rd.partial] {
		rd.argv = append(rd.argv, rd.buf[s.start:s.end:s.end])
	}
	rd.cmds = rd.cmds[:0]
	start := 0
	for _, end := range rd.cmdEnds {
		rd.cmds = append(rd.cmds, rd.argv[start:end:end])
		start = end
	}
	return rd.cmds
}

// parse consumes complete commands from buf[pos:w]. It returns nil when it
// needs more input (or the batch is full).
func (rd *Reader) parse() error {
	for len(rd.cmdEnds) < BatchCommandsMax {
		var done bool
		var err error
		if rd.want < 0 && rd.pos < rd.w && rd.buf[rd.pos] != '*' {
			done, err = rd.parseInline()
		} else {
			done, err = rd.parseMultibulk()
		}
		if err != nil || !done {
			return err
		}
	}
	return nil
}

// commandDone closes the command whose arguments are spans[partial:].
func (rd *Reader) commandDone() {
	rd.r = rd.pos
	rd.needBytes = 0
	if len(rd.spans) == rd.partial {
		return // empty command ("*0", blank line): no reply, as Redis
	}
	rd.cmdEnds = append(rd.cmdEnds, len(rd.spans))
	rd.partial = len(rd.spans)
}

// line finds the '\r' ending the header line at buf[from:], as Redis does,
// and requires the '\n' after it. It returns -1 when the line is not fully
// buffered yet.
func (rd *Reader) line(from int) int {
	i := bytes.IndexByte(rd.buf[from:rd.w], '\r')
	if i < 0 || from+i+1 >= rd.w {
		return -1
	}
	return from + i
}

func (rd *Reader) parseMultibulk() (bool, error) {
	if rd.want < 0 {
		if rd.pos >= rd.w {
			return false, nil
		}
		eol := rd.line(rd.pos)
		if eol < 0 {
			if rd.w-rd.pos > rd.limits.InlineBytesMax {
				return false, &ProtocolError{Msg: "too big mbulk count string"}
			}
			return false, nil
		}
		n, ok := ParseInt(rd.buf[rd.pos+1 : eol])
		if ok && rd.unauthenticated && n > UnauthMultibulkLenMax {
			return false, &ProtocolError{Msg: "unauthenticated multibulk length"}
		}
		if !ok || n > rd.limits.MultibulkLenMax {
			return false, &ProtocolError{Msg: "invalid multibulk length"}
		}
		rd.pos = eol + 2
		if n <= 0 {
			rd.commandDone()
			return true, nil
		}
		rd.want = n
	}
	for rd.want > 0 {
		if rd.pos >= rd.w {
			return false, nil
		}
		if c := rd.buf[rd.pos]; c != '$' {
			return false, &ProtocolError{Msg: "expected '$', got '" + string([]byte{c}) + "'"}
		}
		eol := rd.line(rd.pos)
		if eol < 0 {
			if rd.w-rd.pos > rd.limits.InlineBytesMax {
				return false, &ProtocolError{Msg: "too big bulk count string"}
			}
			return false, nil
		}
		n, ok := ParseInt(rd.buf[rd.pos+1 : eol])
		if ok && rd.unauthenticated && n > UnauthBulkBytesMax {
			return false, &ProtocolError{Msg: "unauthenticated bulk length"}
		}
		if !ok || n < 0 || n > rd.limits.BulkBytesMax {
			return false, &ProtocolError{Msg: "invalid bulk length"}
		}
		start := eol + 2
		end := start + int(n)
		if end+2 > rd.w {
			rd.needBytes = end + 2 - rd.r
			return false, nil
		}
		// Like Redis, the two bytes after the payload are skipped unread.
		rd.spans = append(rd.spans, span{start, end})
		rd.pos = end + 2
		rd.want--
	}
	rd.want = -1
	rd.commandDone()
	return true, nil
}

func (rd *Reader) parseInline() (bool, error) {
	i := bytes.IndexByte(rd.buf[rd.pos:rd.w], '\n')
	if i < 0 {
		if rd.w-rd.pos > rd.limits.InlineBytesMax {
			return false, &ProtocolError{Msg: "too big inline request"}
		}
		return false, nil
	}
	end := rd.pos + i
	next := end + 1
	if end > rd.pos && rd.buf[end-1] == '\r' {
		end--
	}
	if err := rd.splitArgs(rd.pos, end); err != nil {
		return false, err
	}
	rd.pos = next
	rd.commandDone()
	return true, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// splitArgs splits buf[p:end] like Redis's sdssplitargs: spaces separate
// arguments; "double quotes" understand \n \r \t \b \a \\ \" and \xHH;
// 'single quotes' only \'. A closing quote must be followed by a space or
// the end. Unescaped bytes are written back in place: an argument is never
// longer than its quoted source, so it cannot overrun unread input.
func (rd *Reader) splitArgs(p, end int) error {
	b := rd.buf
	for {
		for p < end && isSpace(b[p]) {
			p++
		}
		if p >= end {
			return nil
		}
		start := p
		out := p
		inq, insq := false, false
		for {
			if inq {
				if p >= end {
					return &ProtocolError{Msg: "unbalanced quotes in request"}
				}
				if b[p] == '\\' && p+3 < end && b[p+1] == 'x' {
					h, ok1 := hexVal(b[p+2])
					l, ok2 := hexVal(b[p+3])
					if ok1 && ok2 {
						b[out] = h<<4 | l
						out++
						p += 4
						continue
					}
				}
				if b[p] == '\\' && p+1 < end {
					p++
					c := b[p]
					switch c {
					case 'n':
						c = '\n'
					case 'r':
						c = '\r'
					case 't':
						c = '\t'
					case 'b':
						c = '\b'
					case 'a':
						c = '\a'
					}
					b[out] = c
					out++
					p++
					continue
				}
				if b[p] == '"' {
					if p+1 < end && !isSpace(b[p+1]) {
						return &ProtocolError{Msg: "unbalanced quotes in request"}
					}
					p++
					break
				}
				b[out] = b[p]
				out++
				p++
				continue
			}
			if insq {
				if p >= end {
					return &ProtocolError{Msg: "unbalanced quotes in request"}
				}
				if b[p] == '\\' && p+1 < end && b[p+1] == '\'' {
					b[out] = '\''
					out++
					p += 2
					continue
				}
				if b[p] == '\'' {
					if p+1 < end && !isSpace(b[p+1]) {
						return &ProtocolError{Msg: "unbalanced quotes in request"}
					}
					p++
					break
				}
				b[out] = b[p]
				out++
				p++
				continue
			}
			if p >= end || isSpace(b[p]) {
				break
			}
			switch b[p] {
			case '"':
				inq = true
				p++
				continue
			case '\'':
				insq = true
				p++
				continue
			}
			b[out] = b[p]
			out++
			p++
		}
		rd.spans = append(rd.spans, span{start, out})
		if p < end {
			p++ // the separating space
		}
	}
}

// parseInt is Redis's string2ll: an optional '-', digits, no leading zeros
// or '+', no overflow.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := false
	if b[0] == '-' {
		neg = true
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (1<<63)/10 {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}
