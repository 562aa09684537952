package server

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/seam"
)

// syncFailFS is the OS file system with one switch: while armed, the next
// fsync of a WAL file fails, as a dying disk's would.
type syncFailFS struct {
	disk.FS
	armed atomic.Bool
}

func (fs *syncFailFS) Create(name string) (disk.File, error) {
	f, err := fs.FS.Create(name)
	return fs.wrap(f, name, err)
}

func (fs *syncFailFS) OpenAppend(name string) (disk.File, error) {
	f, err := fs.FS.OpenAppend(name)
	return fs.wrap(f, name, err)
}

func (fs *syncFailFS) wrap(f disk.File, name string, err error) (disk.File, error) {
	if err != nil || !strings.Contains(name, "/wal/") {
		return f, err
	}
	return &syncFailFile{File: f, fs: fs}, nil
}

type syncFailFile struct {
	disk.File
	fs *syncFailFS
}

func (f *syncFailFile) Sync() error {
	if f.fs.armed.CompareAndSwap(true, false) {
		return errors.New("injected fsync failure (EIO)")
	}
	return f.File.Sync()
}

func startDurableServer(t *testing.T, fs disk.FS, dir string) *testServer {
	t.Helper()
	opts := cluster.Options{FS: fs, Dir: dir, AppendOnly: true, Fsync: cluster.FsyncAlways, Rand: seam.NewRand()}
	return serveOpen(t, Config{AppendOnly: true, AppendFsync: "always", Dir: dir,
		ReplicaOptions: func(uint64) cluster.Options { return opts }})
}

// waitFor polls cond for up to 10 s of wall time; the server's ticker runs
// every 100 ms, so a healthy server answers within a few ticks.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestFsyncFailureReopensReplicaFromDisk(t *testing.T) {
	fs := &syncFailFS{FS: disk.OS()}
	ts := startDurableServer(t, fs, t.TempDir())
	c := ts.client(t, nil)
	ctx := context.Background()
	if err := c.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	fs.armed.Store(true)
	err := c.Set(ctx, "during", "2", 0).Err()
	if err == nil || !strings.Contains(err.Error(), "disk") {
		t.Fatalf("SET with a failing fsync: got %v, want a disk error", err)
	}
	waitFor(t, "replica_reopens:1 in INFO", func() bool {
		info, err := c.Info(ctx, "stats").Result()
		return err == nil && strings.Contains(info, "replica_reopens:1")
	})
	if err := c.Set(ctx, "after", "3", 0).Err(); err != nil {
		t.Fatalf("SET after the reopen: %v", err)
	}
	for k, want := range map[string]string{"before": "1", "after": "3"} {
		if got, err := c.Get(ctx, k).Result(); err != nil || got != want {
			t.Fatalf("GET %s = %q, %v; want %q", k, got, err, want)
		}
	}
}

func TestBgsaveRunsInTheBackgroundAndInstalls(t *testing.T) {
	dir := t.TempDir()
	ts := startDurableServer(t, disk.OS(), dir)
	c := ts.client(t, nil)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if err := c.Set(ctx, "k"+string(rune('a'+i%26))+strings.Repeat("x", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := c.BgSave(ctx).Result(); err != nil || got != "Background saving started" {
		t.Fatalf("BGSAVE = %q, %v", got, err)
	}
	waitFor(t, "a snapshot file and rdb_changes_since_last_save:0", func() bool {
		names, err := disk.OS().List(dir + "/snap")
		if err != nil || len(names) == 0 {
			return false
		}
		info, err := c.Info(ctx, "persistence").Result()
		return err == nil && strings.Contains(info, "rdb_changes_since_last_save:0")
	})
}
