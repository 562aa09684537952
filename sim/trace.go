package sim

import (
	"bufio"
	"encoding/hex"
	"hash"
	"hash/fnv"
	"io"
	"strconv"
)

// Trace hashes every event line (FNV-64a, incrementally) and optionally
// writes it. A line is "<seconds>.<nanoseconds> <who> <what>\n" in virtual
// time, so two runs agree byte for byte exactly when they agree on the
// hash.
type Trace struct {
	h     hash.Hash64
	out   *bufio.Writer
	buf   []byte
	lines int64
}

func newTrace(out io.Writer) *Trace {
	t := &Trace{h: fnv.New64a()}
	if out != nil {
		t.out = bufio.NewWriterSize(out, 1<<16)
	}
	return t
}

func (t *Trace) line(now int64, who, what string) {
	b := t.buf[:0]
	b = appendTime(b, now)
	b = append(b, ' ')
	b = append(b, who...)
	b = append(b, ' ')
	b = append(b, what...)
	b = append(b, '\n')
	t.h.Write(b)
	if t.out != nil {
		t.out.Write(b)
	}
	t.buf = b
	t.lines++
}

// appendTime formats virtual nanoseconds as zero-padded seconds.nanos, so
// a trace sorts and aligns by eye.
func appendTime(b []byte, ns int64) []byte {
	s := ns / 1e9
	frac := ns % 1e9
	var tmp [20]byte
	d := strconv.AppendInt(tmp[:0], s, 10)
	for i := len(d); i < 4; i++ {
		b = append(b, '0')
	}
	b = append(b, d...)
	b = append(b, '.')
	d = strconv.AppendInt(tmp[:0], frac, 10)
	for i := len(d); i < 9; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

func (t *Trace) sum() string { return hex.EncodeToString(t.h.Sum(nil)) }

func (t *Trace) flush() error {
	if t.out == nil {
		return nil
	}
	return t.out.Flush()
}
