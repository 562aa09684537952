package server

import (
	"context"
	stdnet "net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/seam"
)

// Under everysec the fsync runs on a goroutine of its own
// (cluster.Options.BackgroundSync): writes are answered without waiting
// for it, and a failed background fsync still reopens the replica from
// disk, as an inline one does.
func TestBackgroundEverysecFsyncFailureReopens(t *testing.T) {
	fs := &syncFailFS{FS: disk.OS()}
	dir := t.TempDir()
	opts := cluster.Options{FS: fs, Dir: dir, AppendOnly: true, Fsync: cluster.FsyncEverySec, Rand: seam.NewRand(), BackgroundSync: true}
	ts := serveOpen(t, Config{AppendOnly: true, AppendFsync: "everysec", Dir: dir,
		ReplicaOptions: func(uint64) cluster.Options { return opts }})
	c := ts.client(t, nil)
	ctx := context.Background()
	fs.armed.Store(true)
	// The write is answered before any fsync: everysec.
	if err := c.Set(ctx, "k", "1", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	waitFor(t, "replica_reopens:1 in INFO", func() bool {
		info, err := c.Info(ctx, "stats").Result()
		return err == nil && strings.Contains(info, "replica_reopens:1")
	})
	if err := c.Set(ctx, "after", "3", 0).Err(); err != nil {
		t.Fatalf("SET after the reopen: %v", err)
	}
	if got, err := c.Get(ctx, "after").Result(); err != nil || got != "3" {
		t.Fatalf("GET after = %q, %v", got, err)
	}
}

// Writers keep appending while background fsyncs run (run with -race):
// every acknowledged write is in the log when the server closes.
func TestBackgroundEverysecUnderWrites(t *testing.T) {
	dir := t.TempDir()
	opts := cluster.Options{FS: disk.OS(), Dir: dir, AppendOnly: true, Fsync: cluster.FsyncEverySec, Rand: seam.NewRand(), BackgroundSync: true}
	r, err := cluster.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Config{AppendOnly: true, AppendFsync: "everysec", Dir: dir, Logf: t.Logf}, r)
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ln) }()
	ctx := context.Background()
	const writers = 4
	// Long enough (in wall time) for a few everysec fsyncs: the ticker
	// starts one 500 ms after the first unsynced write.
	deadline := time.Now().Add(1500 * time.Millisecond)
	counts := make([]int, writers)
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func(w int) {
			c := ts.client(t, nil)
			for time.Now().Before(deadline) {
				if err := c.Set(ctx, "w"+strconv.Itoa(w)+":"+strconv.Itoa(counts[w]), "v", 0).Err(); err != nil {
					errs <- err
					return
				}
				counts[w]++
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	srv.Shutdown()
	if err := <-ts.done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := cluster.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r2.Close() }()
	total := 0
	for _, n := range counts {
		total += n
	}
	if got := r2.DB().Len(); got != total {
		t.Fatalf("reopened with %d keys, %d writes acknowledged", got, total)
	}
}
