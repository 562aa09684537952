package cluster

import (
	"testing"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
)

func txnReq(r *Replica, w *rec, watched []Watch, cmds ...string) Request {
	t := &Txn{Watched: watched, WatchedOn: r}
	for _, c := range cmds {
		t.Cmds = append(t.Cmds, argv(c))
	}
	return Request{Argv: argv("EXEC"), W: w, Txn: t}
}

func TestTxnIsOneEntryAndSurvivesReopen(t *testing.T) {
	fs, dir := disk.NewMemFS(), "data"
	r := openT(t, fs, dir)
	w := &rec{}
	before := r.AppliedIndex()
	r.Submit(t0, []Request{
		{Argv: argv("SET a 1"), W: w},
		txnReq(r, w, nil, "INCRBY a 5", "SET b 2", "GET a", "INCR notanumber-x", "NOSUCHCMD x y"),
		{Argv: argv("GET a"), W: w},
	})
	want := "+OK *5 :6 +OK $6 :1 -ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' 'y'  $6"
	if got := w.String(); got != want {
		t.Fatalf("replies:\n got %s\nwant %s", got, want)
	}
	t.Logf("before %d after %d", before, r.AppliedIndex())
	if n := r.AppliedIndex() - before; n != 2 {
		t.Fatalf("applied %d entries, want 2 (the SET's and the transaction's)", n)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openT(t, fs, dir)
	defer r.Close()
	if got := do(r, t0+sec, "MGET a b notanumber-x"); got != "*3 $6 $2 $1" {
		t.Fatalf("after reopen: %s", got)
	}
}

func TestTxnWatch(t *testing.T) {
	for _, persist := range []bool{true, false} {
		r := openT(t, disk.NewMemFS(), "data", func(o *Options) { o.AppendOnly = persist })
		do(r, t0, "SET k 1", "SET v 1 PX 1000")
		vk := r.KeyVersion(t0, []byte("k"))
		vv := r.KeyVersion(t0, []byte("v"))
		vm := r.KeyVersion(t0, []byte("missing"))
		// Unchanged: runs.
		w := &rec{}
		r.Submit(t0, []Request{txnReq(r, w, []Watch{{[]byte("k"), vk}, {[]byte("missing"), vm}}, "INCR k")})
		if w.String() != "*1 :2" {
			t.Fatalf("persist=%v unchanged watch: %s", persist, w)
		}
		// A write earlier in the same batch invalidates the watch.
		vk = r.KeyVersion(t0, []byte("k"))
		w = &rec{}
		r.Submit(t0, []Request{{Argv: argv("SET k 9"), W: w}, txnReq(r, w, []Watch{{[]byte("k"), vk}}, "INCR k")})
		if w.String() != "+OK *nil" {
			t.Fatalf("persist=%v changed watch: %s", persist, w)
		}
		// Expiry invalidates it too, and nothing of the aborted block applies.
		w = &rec{}
		r.Submit(t0+2*sec, []Request{txnReq(r, w, []Watch{{[]byte("v"), vv}}, "SET k 100"), {Argv: argv("GET k"), W: w}})
		if w.String() != "*nil $9" {
			t.Fatalf("persist=%v expired watch: %s", persist, w)
		}
		r.Close()
	}
}

func TestTxnReadOnlySkipsTheLog(t *testing.T) {
	r := openT(t, disk.NewMemFS(), "data")
	defer r.Close()
	do(r, t0, "SET a 1", "SET b 2")
	before := r.AppliedIndex()
	w := &rec{}
	r.Submit(t0, []Request{
		{Argv: argv("SET a 10"), W: w},
		txnReq(r, w, nil, "GET a", "GET b", "MGET a b"),
		{Argv: argv("SET b 20"), W: w},
	})
	if got, want := w.String(), "+OK *3 $10 $2 *2 $10 $2 +OK"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if n := r.AppliedIndex() - before; n != 1 {
		t.Fatalf("%d entries for a batch whose only writes are two SETs, want 1", n)
	}
}

func TestTxnSideRunsAtItsTurnAndIsNotReplayed(t *testing.T) {
	fs, dir := disk.NewMemFS(), "data"
	r := openT(t, fs, dir)
	calls := 0
	w := &rec{}
	req := txnReq(r, w, nil, "SET a 1", "PUBLISH ch x", "GET a")
	req.Txn.Side = func(argv [][]byte, w engine.Writer) bool {
		if string(argv[0]) != "PUBLISH" {
			return false
		}
		calls++
		w.WriteInt(7)
		return true
	}
	r.Submit(t0, []Request{req})
	if got := w.String(); got != "*3 +OK :7 $1" || calls != 1 {
		t.Fatalf("replies %s, side calls %d", got, calls)
	}
	r.Close()
	r = openT(t, fs, dir) // replay: the entry holds PUBLISH; it must not fail recovery
	defer r.Close()
	if got := do(r, t0+sec, "GET a"); got != "$1" {
		t.Fatalf("after reopen: %s", got)
	}
}
