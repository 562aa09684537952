package resp

import (
	"math"
	"slices"
	"strconv"
)

// Output buffer sizes. A buffer grown past writeBufferBytesShrink is
// kept for the next batch only while batches keep filling a quarter of it
// and it is at most writeBufferBytesKeepMax; otherwise it is dropped after
// it is written, so a connection that stops sending big pipelines, or
// sent one huge reply, goes back to a small buffer at its next batch.
// Dropping it after every big batch made a pipeline of LRANGEs regrow
// (allocate, copy, clear) a few hundred kilobytes per batch: a third of
// the server's CPU under redis-benchmark's LRANGE_100 at -P 16.
const (
	writeBufferBytesShrink  = 64 << 10
	writeBufferBytesKeepMax = 1 << 20
)

// Writer encodes replies as RESP2, or RESP3 after HELLO 3, appending to an
// in-memory buffer that the connection writes with one write(2) per batch.
// It implements engine.Writer.
type Writer struct {
	buf   []byte
	proto int // 2 or 3
	// errs counts the error replies ever written (Errors): a session
	// looks at the replies of a run of commands only when it moved, to
	// count failed calls and errors (INFO commandstats, errorstats).
	errs int
}

// NewWriter returns a RESP2 writer.
func NewWriter() *Writer { return &Writer{proto: 2} }

// Proto is the protocol version in use.
func (w *Writer) Proto() int { return w.proto }

// SetProto switches between RESP2 and RESP3.
func (w *Writer) SetProto(p int) { w.proto = p }

// Bytes is everything written since the last Reset.
func (w *Writer) Bytes() []byte { return w.buf }

// Errors is how many error replies were ever written; Reset keeps it.
func (w *Writer) Errors() int { return w.errs }

// Len is how many bytes are written since the last Reset.
func (w *Writer) Len() int { return len(w.buf) }

// Cap is the buffer's capacity (CLIENT LIST rbs).
func (w *Writer) Cap() int { return cap(w.buf) }

// Cut drops the bytes written at [from, to), which must be whole replies
// (CLIENT REPLY OFF and SKIP drop a command's reply).
func (w *Writer) Cut(from, to int) {
	if from < 0 || to > len(w.buf) || from >= to {
		return
	}
	w.buf = append(w.buf[:from], w.buf[to:]...)
}

// WriteRaw appends b, which must be whole encoded replies (a reply
// computed ahead and written at its turn).
func (w *Writer) WriteRaw(b []byte) { w.buf = append(w.buf, b...) }

// Reset empties the buffer, releasing it if a big reply grew it and the
// batch just written did not use a quarter of it (see
// writeBufferBytesShrink).
func (w *Writer) Reset() {
	if c := cap(w.buf); c > writeBufferBytesShrink && (c > writeBufferBytesKeepMax || len(w.buf) < c/4) {
		w.buf = nil
		return
	}
	w.buf = w.buf[:0]
}

func (w *Writer) header(c byte, n int64) {
	if n >= 0 && n < smallHeaderMax {
		l := w.reserve(smallHeaderBytes)
		k := putSmallHeader((*[smallHeaderBytes]byte)(w.buf[l:l+smallHeaderBytes]), c, int(n))
		w.buf = w.buf[:l+k]
		return
	}
	w.buf = append(w.buf, c)
	w.buf = strconv.AppendInt(w.buf, n, 10)
	w.buf = append(w.buf, '\r', '\n')
}

// A header whose number is under smallHeaderMax is at most
// smallHeaderBytes long: type byte, 4 digits, CRLF.
const (
	smallHeaderMax   = 10000
	smallHeaderBytes = 7
)

// reserve makes room for n more bytes and returns the current length;
// w.buf's capacity then holds them (its length is unchanged).
func (w *Writer) reserve(n int) int {
	l := len(w.buf)
	if cap(w.buf)-l < n {
		w.buf = slices.Grow(w.buf, n)
	}
	return l
}

// putSmallHeader writes c, n (0 <= n < smallHeaderMax) in decimal and
// CRLF at the start of b and returns how many bytes that took. The length
// of a bulk string or an array is almost always that small, and
// strconv's general path plus three appends were 15% of the server's CPU
// when it wrote LRANGE replies of 100 elements.
func putSmallHeader(b *[smallHeaderBytes]byte, c byte, n int) int {
	b[0] = c
	i := 1
	switch {
	case n >= 1000:
		b[i] = byte('0' + n/1000)
		i++
		fallthrough
	case n >= 100:
		b[i] = byte('0' + n/100%10)
		i++
		fallthrough
	case n >= 10:
		b[i] = byte('0' + n/10%10)
		i++
	}
	b[i] = byte('0' + n%10)
	b[i+1], b[i+2] = '\r', '\n'
	return i + 3
}

// WriteSimple writes a status reply (+OK). s must not hold CR or LF.
func (w *Writer) WriteSimple(s string) {
	w.buf = append(w.buf, '+')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// WriteError writes msg, code included, as an error reply. Newlines would
// break the framing, so they become spaces, as in Redis.
func (w *Writer) WriteError(msg string) {
	w.errs++
	w.buf = append(w.buf, '-')
	start := len(w.buf)
	w.buf = append(w.buf, msg...)
	for i := start; i < len(w.buf); i++ {
		if w.buf[i] == '\r' || w.buf[i] == '\n' {
			w.buf[i] = ' '
		}
	}
	w.buf = append(w.buf, '\r', '\n')
}

// WriteInt writes an integer reply.
func (w *Writer) WriteInt(n int64) { w.header(':', n) }

// WriteBulk writes a bulk string: header, bytes and CRLF after one
// capacity check (replies of many elements write one per element).
func (w *Writer) WriteBulk(b []byte) {
	n := len(b)
	if n >= smallHeaderMax {
		w.header('$', int64(n))
		w.buf = append(w.buf, b...)
		w.buf = append(w.buf, '\r', '\n')
		return
	}
	l := w.reserve(smallHeaderBytes + n + 2)
	buf := w.buf[:l+smallHeaderBytes+n+2]
	k := l + putSmallHeader((*[smallHeaderBytes]byte)(buf[l:l+smallHeaderBytes]), '$', n)
	k += copy(buf[k:], b)
	buf[k], buf[k+1] = '\r', '\n'
	w.buf = buf[:k+2]
}

// WriteBulkString writes a bulk string.
func (w *Writer) WriteBulkString(s string) {
	w.header('$', int64(len(s)))
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// WriteNull writes a missing value: $-1 in RESP2, _ in RESP3.
func (w *Writer) WriteNull() {
	if w.proto >= 3 {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "$-1\r\n"...)
}

// WriteArray announces n elements.
func (w *Writer) WriteArray(n int) { w.header('*', int64(n)) }

// WriteNullArray writes *-1 in RESP2 and _ in RESP3.
func (w *Writer) WriteNullArray() {
	if w.proto >= 3 {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "*-1\r\n"...)
}

// appendDouble formats f as Redis 7.2 does: the shortest representation
// that reads back exactly, and inf, -inf, nan.
func appendDouble(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	case math.IsNaN(f):
		return append(b, "nan"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// WriteDouble writes a bulk string in RESP2 and a ',' double in RESP3.
func (w *Writer) WriteDouble(f float64) {
	if w.proto >= 3 {
		w.buf = append(w.buf, ',')
		w.buf = appendDouble(w.buf, f)
		w.buf = append(w.buf, '\r', '\n')
		return
	}
	var tmp [32]byte
	w.WriteBulk(appendDouble(tmp[:0], f))
}

// WriteMap announces n key/value pairs: RESP3 '%', RESP2 an array of 2n.
func (w *Writer) WriteMap(n int) {
	if w.proto >= 3 {
		w.header('%', int64(n))
		return
	}
	w.header('*', 2*int64(n))
}

// WriteSet announces n elements: RESP3 '~', RESP2 an array.
func (w *Writer) WriteSet(n int) {
	if w.proto >= 3 {
		w.header('~', int64(n))
		return
	}
	w.header('*', int64(n))
}

// WritePush announces an out-of-band message of n elements (pub/sub):
// RESP3 '>', RESP2 an array.
func (w *Writer) WritePush(n int) {
	if w.proto >= 3 {
		w.header('>', int64(n))
		return
	}
	w.header('*', int64(n))
}

// WriteBool writes RESP3 #t/#f, or :1/:0 in RESP2.
func (w *Writer) WriteBool(v bool) {
	if w.proto >= 3 {
		if v {
			w.buf = append(w.buf, "#t\r\n"...)
		} else {
			w.buf = append(w.buf, "#f\r\n"...)
		}
		return
	}
	if v {
		w.WriteInt(1)
	} else {
		w.WriteInt(0)
	}
}

// WriteVerbatim writes text as a RESP3 verbatim string of the given
// three-letter format ("txt"), or a bulk string in RESP2, as Redis does for
// INFO and CLIENT LIST.
func (w *Writer) WriteVerbatim(s, format string) {
	if w.proto < 3 {
		w.WriteBulkString(s)
		return
	}
	w.header('=', int64(len(s)+4))
	w.buf = append(w.buf, format...)
	w.buf = append(w.buf, ':')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}
