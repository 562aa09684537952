package sim

import (
	"strconv"

	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/resp"
)

// Reply is one reply value, as the clients parse it off the wire and the
// oracle's recorders build it (resp.Reply).
type Reply = resp.Reply

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

// teeWriter records a reply (for the oracle) while writing it on to the
// session's own writer, so the client still gets its bytes.
type teeWriter struct {
	rec recorder
	w   engine.Writer
}

var _ engine.Writer = (*teeWriter)(nil)

func (t *teeWriter) WriteSimple(s string)     { t.rec.WriteSimple(s); t.w.WriteSimple(s) }
func (t *teeWriter) WriteError(msg string)    { t.rec.WriteError(msg); t.w.WriteError(msg) }
func (t *teeWriter) WriteInt(n int64)         { t.rec.WriteInt(n); t.w.WriteInt(n) }
func (t *teeWriter) WriteBulk(b []byte)       { t.rec.WriteBulk(b); t.w.WriteBulk(b) }
func (t *teeWriter) WriteBulkString(s string) { t.rec.WriteBulkString(s); t.w.WriteBulkString(s) }
func (t *teeWriter) WriteNull()               { t.rec.WriteNull(); t.w.WriteNull() }
func (t *teeWriter) WriteArray(n int)         { t.rec.WriteArray(n); t.w.WriteArray(n) }
func (t *teeWriter) WriteNullArray()          { t.rec.WriteNullArray(); t.w.WriteNullArray() }
func (t *teeWriter) WriteDouble(f float64)    { t.rec.WriteDouble(f); t.w.WriteDouble(f) }
func (t *teeWriter) WriteMap(n int)           { t.rec.WriteMap(n); t.w.WriteMap(n) }
func (t *teeWriter) WriteSet(n int)           { t.rec.WriteSet(n); t.w.WriteSet(n) }
