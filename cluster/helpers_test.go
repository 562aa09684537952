package cluster

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
)

// rec records replies as short strings: "+OK", "-ERR ...", ":1", "$v", "$nil".
type rec struct{ out []string }

func (w *rec) WriteSimple(s string)     { w.out = append(w.out, "+"+s) }
func (w *rec) WriteError(s string)      { w.out = append(w.out, "-"+s) }
func (w *rec) WriteInt(n int64)         { w.out = append(w.out, fmt.Sprintf(":%d", n)) }
func (w *rec) WriteBulk(b []byte)       { w.out = append(w.out, "$"+string(b)) }
func (w *rec) WriteBulkString(s string) { w.out = append(w.out, "$"+s) }
func (w *rec) WriteNull()               { w.out = append(w.out, "$nil") }
func (w *rec) WriteArray(n int)         { w.out = append(w.out, fmt.Sprintf("*%d", n)) }
func (w *rec) WriteNullArray()          { w.out = append(w.out, "*nil") }
func (w *rec) WriteDouble(f float64)    { w.out = append(w.out, fmt.Sprintf(",%g", f)) }
func (w *rec) WriteMap(n int)           { w.out = append(w.out, fmt.Sprintf("%%%d", n)) }
func (w *rec) WriteSet(n int)           { w.out = append(w.out, fmt.Sprintf("~%d", n)) }

func (w *rec) String() string { return strings.Join(w.out, " ") }

func argv(s string) [][]byte {
	var out [][]byte
	for _, f := range strings.Fields(s) {
		out = append(out, []byte(f))
	}
	return out
}

// do submits one batch of commands (one per string) and returns the replies.
func do(r *Replica, now int64, cmds ...string) string {
	w := &rec{}
	reqs := make([]Request, len(cmds))
	for i, c := range cmds {
		reqs[i] = Request{Argv: argv(c), W: w}
	}
	r.Submit(now, reqs)
	return w.String()
}

const sec = int64(1e9)

// t0 is a fixed wall time (2026-01-01) for tests.
const t0 = int64(1767225600) * sec

func openT(t testing.TB, fs disk.FS, dir string, opts ...func(*Options)) *Replica {
	t.Helper()
	o := Options{FS: fs, Dir: dir, AppendOnly: true, Fsync: FsyncAlways, Rand: rand.New(rand.NewPCG(1, 2))}
	for _, f := range opts {
		f(&o)
	}
	r, err := Open(o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return r
}

// dump lists every live key (not expired at now) of the replica's keyspace
// with value and deadline: the logical state, whatever expiry collected.
// A collection's value is written as its pieces (engine.Entry.AppendPiece),
// which do not depend on how its trees are laid out.
func dump(r *Replica, now int64) string {
	var b strings.Builder
	v := r.DB().View()
	defer v.Release()
	v.Ascend(func(e engine.Entry) bool {
		if e.ExpireAt != 0 && e.ExpireAt <= now/1e6 {
			return true
		}
		if e.Type == engine.TypeString {
			fmt.Fprintf(&b, "%d %s=%s @%d\n", e.Type, e.Key, e.Value, e.ExpireAt)
			return true
		}
		val, _ := e.AppendPiece(nil, 0, 1<<40)
		fmt.Fprintf(&b, "%d %s=%q @%d\n", e.Type, e.Key, val, e.ExpireAt)
		return true
	})
	return b.String()
}
