package main

import (
	"context"
	stdnet "net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/seam"
	"github.com/keel-db/keel/server"
)

// startDiskServer serves a single node with its data in dir until the
// test ends, and returns its address.
func startDiskServer(t *testing.T, dir string) string {
	t.Helper()
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.Open(server.Config{Dir: dir, AppendOnly: true, Logf: t.Logf,
		ReplicaOptions: func(uint64) cluster.Options {
			return cluster.Options{FS: disk.OS(), Dir: dir, AppendOnly: true, Rand: seam.NewRand(), BackgroundSync: true}
		}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Shutdown()
		<-done
	})
	return ln.Addr().String()
}

// A backup taken while a client writes restores to exactly the writes
// acknowledged before it: a contiguous prefix of the writer's keys, at
// least every one acknowledged before the backup began, with their
// values; a damaged backup is refused and restores nothing.
func TestBackupUnderLoadRestoresExactly(t *testing.T) {
	root := t.TempDir()
	addr := startDiskServer(t, filepath.Join(root, "src"))
	ctx := context.Background()
	writer := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer writer.Close()
	var acked atomic.Int64
	acked.Store(-1)
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				writerDone <- nil
				return
			default:
			}
			if err := writer.Set(ctx, "k"+strconv.Itoa(i), strconv.Itoa(i*7), 0).Err(); err != nil {
				writerDone <- err
				return
			}
			acked.Store(int64(i))
		}
	}()
	for acked.Load() < 500 {
		time.Sleep(5 * time.Millisecond)
	}
	before := acked.Load()
	out := filepath.Join(root, "b.keel")
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	summary, err := takeBackup(c, out)
	if err != nil {
		t.Fatal(err)
	}
	after := acked.Load()
	close(stop)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("the backup's temporary file is still there: %v", err)
	}
	t.Logf("backup: %s; writes acknowledged %d before it, %d after", summary, before+1, after+1)

	dst := filepath.Join(root, "dst")
	if _, err := restoreBackup(out, dst, false); err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: startDiskServer(t, dst), Protocol: 2, DisableIdentity: true})
	defer rc.Close()
	n, err := rc.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n < before+1 || n > after+2 {
		t.Fatalf("restored %d keys; acknowledged %d before the backup and %d by its end (+1 in flight)", n, before+1, after+1)
	}
	for i := int64(0); i < n; i++ {
		v, err := rc.Get(ctx, "k"+strconv.FormatInt(i, 10)).Result()
		if err != nil || v != strconv.FormatInt(i*7, 10) {
			t.Fatalf("k%d restored as %q (%v): the keys are not the writer's prefix", i, v, err)
		}
	}
	// The restored node takes writes and keeps them.
	if err := rc.Set(ctx, "after-restore", "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}

	// A damaged backup restores nothing.
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	bad := filepath.Join(root, "bad.keel")
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := restoreBackup(bad, filepath.Join(root, "dst2"), false); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("restore of a damaged backup: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "dst2")); !os.IsNotExist(err) {
		t.Errorf("a refused restore made its directory: %v", err)
	}
	// A cut one too.
	if err := os.WriteFile(bad, b[:len(b)-100], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := restoreBackup(bad, filepath.Join(root, "dst3"), false); err == nil {
		t.Error("a cut backup restored")
	}
	// And a non-empty directory is refused.
	if _, err := restoreBackup(out, dst, false); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore into a directory with data: %v", err)
	}
}
