package sim

import (
	"strconv"
	"strings"

	"github.com/keel-db/keel/engine"
)

// Reply is one recorded reply value.
type Reply struct {
	Kind  byte // '+' simple, '-' error, ':' int, '$' bulk, '_' null, '*' array, ',' double
	Str   string
	Int   int64
	Elems []Reply
}

// String renders a reply compactly for traces and failure messages.
func (r Reply) String() string {
	var b strings.Builder
	r.render(&b)
	return b.String()
}

func (r Reply) render(b *strings.Builder) {
	switch r.Kind {
	case '+':
		b.WriteString(r.Str)
	case '-':
		b.WriteString("(error) ")
		b.WriteString(r.Str)
	case ':':
		b.WriteString("(integer) ")
		b.WriteString(strconv.FormatInt(r.Int, 10))
	case '$':
		b.WriteString(strconv.Quote(r.Str))
	case '_':
		b.WriteString("(nil)")
	case ',':
		b.WriteString(r.Str)
	case '*':
		b.WriteByte('[')
		for i, e := range r.Elems {
			if i > 0 {
				b.WriteByte(' ')
			}
			e.render(b)
		}
		b.WriteByte(']')
	default:
		b.WriteString("(none)")
	}
}

// IsError reports an error reply.
func (r Reply) IsError() bool { return r.Kind == '-' }

// recorder is an engine.Writer that builds one Reply tree. It counts
// top-level replies so that "exactly one reply per command" is checked.
type recorder struct {
	top   Reply
	n     int // top-level replies written
	stack []*Reply
	want  []int // elements still expected per open aggregate
}

var _ engine.Writer = (*recorder)(nil)

func (w *recorder) put(r Reply) {
	if len(w.stack) == 0 {
		w.n++
		if w.n == 1 {
			w.top = r
		}
		if r.Kind == '*' && len(r.Elems) < cap(r.Elems) {
			w.stack = append(w.stack, &w.top)
			w.want = append(w.want, cap(r.Elems))
		}
		return
	}
	p := w.stack[len(w.stack)-1]
	p.Elems = append(p.Elems, r)
	w.want[len(w.want)-1]--
	if r.Kind == '*' && cap(r.Elems) > 0 {
		w.stack = append(w.stack, &p.Elems[len(p.Elems)-1])
		w.want = append(w.want, cap(r.Elems))
	}
	for len(w.want) > 0 && w.want[len(w.want)-1] == 0 {
		w.stack = w.stack[:len(w.stack)-1]
		w.want = w.want[:len(w.want)-1]
	}
}

func (w *recorder) agg(n int) {
	if n < 0 {
		n = 0
	}
	w.put(Reply{Kind: '*', Elems: make([]Reply, 0, n)})
}

func (w *recorder) WriteSimple(s string)     { w.put(Reply{Kind: '+', Str: s}) }
func (w *recorder) WriteError(msg string)    { w.put(Reply{Kind: '-', Str: msg}) }
func (w *recorder) WriteInt(n int64)         { w.put(Reply{Kind: ':', Int: n}) }
func (w *recorder) WriteBulk(b []byte)       { w.put(Reply{Kind: '$', Str: string(b)}) }
func (w *recorder) WriteBulkString(s string) { w.put(Reply{Kind: '$', Str: s}) }
func (w *recorder) WriteNull()               { w.put(Reply{Kind: '_'}) }
func (w *recorder) WriteArray(n int)         { w.agg(n) }
func (w *recorder) WriteNullArray()          { w.put(Reply{Kind: '_'}) }
func (w *recorder) WriteDouble(f float64) {
	w.put(Reply{Kind: ',', Str: strconv.FormatFloat(f, 'g', -1, 64)})
}
func (w *recorder) WriteMap(n int) { w.agg(2 * n) }
func (w *recorder) WriteSet(n int) { w.agg(n) }
