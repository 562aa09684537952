package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/udf"
)

func loadArgv(t testing.TB, lib string) [][]byte {
	t.Helper()
	code, err := os.ReadFile(filepath.Join("..", "testdata", "functions", lib+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{[]byte("FUNCTION"), []byte("LOAD"), udf.FormatPayload(lib, code)}
}

// doReqs submits one batch of raw argvs.
func doReqs(r *Replica, now int64, cmds ...[][]byte) string {
	w := &rec{}
	reqs := make([]Request, len(cmds))
	for i, c := range cmds {
		reqs[i] = Request{Argv: c, W: w}
	}
	r.Submit(now, reqs)
	return w.String()
}

func TestFunctionsThroughTheLog(t *testing.T) {
	for _, persist := range []bool{true, false} {
		t.Run(map[bool]string{true: "appendonly", false: "memory"}[persist], func(t *testing.T) {
			dir := t.TempDir()
			r := openT(t, disk.OS(), dir, func(o *Options) { o.AppendOnly = persist })
			defer r.Close()
			if got := doReqs(r, t0, loadArgv(t, "counter"), loadArgv(t, "transfer")); got != "$counter $transfer" {
				t.Fatalf("load: %s", got)
			}
			// One batch: a write, a call that must see it, a read that must
			// see the call, a second call, a refused transfer, a read.
			got := do(r, t0+sec,
				"SET c 10", "FCALL incr_by 1 c 5", "GET c", "FCALL incr_by 1 c 1",
				"SET a 3", "FCALL transfer 2 a b 5", "FCALL transfer 2 a b 2", "MGET a b c",
				"FCALL_RO incr_by 1 c 1", "FCALL nope 0", "FCALL incr_by 1")
			want := "+OK :15 $15 :16 +OK -ERR insufficient funds :1 *3 $1 $2 $16 " +
				"-ERR Write commands are not allowed from read-only scripts. (keel.incrby in 'incr_by') -ERR Function not found " +
				"-ERR Number of keys can't be greater than number of args"
			if got != want {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
			for _, fn := range []string{"FCALL spin 0", "FCALL hog 0", "FCALL trap_after_write 1 c"} {
				if got := do(r, t0+2*sec, fn, "GET c"); got[:5] != "-ERR " || got[len(got)-4:] != " $16" {
					t.Fatalf("%s: %s", fn, got)
				}
			}
			if !persist {
				return
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			// Replay from the log: libraries and the calls' effects.
			r = openT(t, disk.OS(), dir)
			if got := do(r, t0+3*sec, "MGET a b c", "FCALL incr_by 1 c 4"); got != "*3 $1 $2 $16 :20" {
				t.Fatalf("after replay: %s", got)
			}
			// Through a snapshot: SAVE, then a change after it, then reopen.
			if got := do(r, t0+4*sec, "SAVE", "FUNCTION DELETE transfer", "FCALL incr_by 1 c 1"); got != "+OK +OK :21" {
				t.Fatalf("save: %s", got)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			r = openT(t, disk.OS(), dir)
			if r.Recovery().Snapshot == "" {
				t.Fatal("no snapshot loaded")
			}
			if got := do(r, t0+5*sec, "GET c", "FCALL incr_by 1 c 1", "FCALL transfer 2 a b 1", "FUNCTION LIST"); got != "$21 :22 -ERR Function not found *1 %3 $library_name $counter $engine $WASM $functions *1 %3 $name $incr_by $description $nil $flags ~0" {
				t.Fatalf("after snapshot: %s", got)
			}
		})
	}
}
