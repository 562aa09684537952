package engine

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// recorder renders replies as one line of text: +OK, -ERR ..., :1,
// "bulk", (nil), [a b] for arrays. It copies everything it is given, as
// every Writer must.
type recorder struct {
	b strings.Builder
	// pending counts the elements each open aggregate still expects.
	pending []int
}

func (r *recorder) elem(s string) {
	if len(r.pending) > 0 && r.b.Len() > 0 && !strings.HasSuffix(r.b.String(), "[") {
		r.b.WriteByte(' ')
	}
	r.b.WriteString(s)
	r.closeDone()
}

func (r *recorder) closeDone() {
	for len(r.pending) > 0 {
		top := len(r.pending) - 1
		r.pending[top]--
		if r.pending[top] > 0 {
			return
		}
		r.pending = r.pending[:top]
		r.b.WriteByte(']')
	}
}

func (r *recorder) open(n int) {
	if len(r.pending) > 0 && !strings.HasSuffix(r.b.String(), "[") {
		r.b.WriteByte(' ')
	}
	if n == 0 {
		r.b.WriteString("[]")
		r.closeDone()
		return
	}
	r.b.WriteByte('[')
	r.pending = append(r.pending, n)
}

func (r *recorder) WriteSimple(s string)     { r.elem("+" + s) }
func (r *recorder) WriteError(msg string)    { r.elem("-" + msg) }
func (r *recorder) WriteInt(n int64)         { r.elem(":" + strconv.FormatInt(n, 10)) }
func (r *recorder) WriteBulk(b []byte)       { r.elem(strconv.Quote(string(b))) }
func (r *recorder) WriteBulkString(s string) { r.elem(strconv.Quote(s)) }
func (r *recorder) WriteNull()               { r.elem("(nil)") }
func (r *recorder) WriteArray(n int)         { r.open(n) }
func (r *recorder) WriteNullArray()          { r.elem("(nil-array)") }
func (r *recorder) WriteDouble(f float64) {
	r.elem("," + strconv.FormatFloat(f, 'g', -1, 64))
}
func (r *recorder) WriteMap(n int) { r.open(2 * n) }
func (r *recorder) WriteSet(n int) { r.open(n) }

func (r *recorder) String() string { return r.b.String() }

// exec runs one command given as arguments and returns the rendered reply.
func exec(db *DB, now int64, args ...string) string {
	argv := make([][]byte, len(args))
	for i, a := range args {
		argv[i] = []byte(a)
	}
	var r recorder
	db.Exec(now, argv, &r)
	if len(r.pending) != 0 {
		return r.String() + " <INCOMPLETE>"
	}
	return r.String()
}

func newTestDB() *DB {
	return New(Options{Rand: rand.New(rand.NewPCG(1, 2))})
}

func TestSmoke(t *testing.T) {
	db := newTestDB()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"SET", "k", "v"}, "+OK"},
		{[]string{"GET", "k"}, `"v"`},
		{[]string{"MGET", "k", "nope"}, `["v" (nil)]`},
		{[]string{"SCAN", "0"}, `["0" ["k"]]`},
	} {
		if got := exec(db, 1000, c.args...); got != c.want {
			t.Errorf("%v: got %s, want %s", c.args, got, c.want)
		}
	}
}
