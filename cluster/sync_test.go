package cluster

import (
	"strings"
	"testing"
)

// With BackgroundSync the everysec fsync is a job for the runtime: one at
// a time, writes go on while it is out, its bytes are durable after it,
// and a failed one is fatal (fsyncgate).
func TestBackgroundSync(t *testing.T) {
	fs, dir := newTestDisk(), "data"
	r := openT(t, fs, dir, func(o *Options) { o.Fsync = FsyncEverySec; o.BackgroundSync = true })
	defer func() { _ = r.Close() }()
	const ms = int64(1e6)
	if got := do(r, t0, "SET a 1"); got != "+OK" {
		t.Fatal(got)
	}
	if j := r.PendingSync(); j != nil {
		t.Fatal("sync job before everysec is due")
	}
	r.Tick(t0 + 600*ms)
	j1 := r.PendingSync()
	if j1 == nil {
		t.Fatal("no sync job after 600 ms dirty")
	}
	if r.PendingSync() != nil {
		t.Fatal("the same job handed out twice")
	}
	if got := do(r, t0+700*ms, "SET b 2"); got != "+OK" {
		t.Fatal(got)
	}
	r.Tick(t0 + 1400*ms)
	if r.PendingSync() != nil {
		t.Fatal("a second job while one is out")
	}
	r.SyncDone(j1, j1.Run())
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	crashed := openT(t, fs.crashClone(), dir)
	if got := dump(crashed, t0+2000*ms); !strings.Contains(got, "a=1") {
		t.Fatalf("after the job, a power loss lost a: %s", got)
	}
	_ = crashed.Close()
	if got := do(r, t0+1500*ms, "SET c 3"); got != "+OK" {
		t.Fatal(got)
	}
	r.Tick(t0 + 2100*ms)
	j2 := r.PendingSync()
	if j2 == nil {
		t.Fatal("no job for the bytes written during the first")
	}
	fs.failSync = true
	r.SyncDone(j2, j2.Run())
	if r.Err() == nil {
		t.Fatal("a failed background fsync is not fatal")
	}
}

// A sync job out while the segment rotates: the old file stays open for
// it, and rotation has synced it in full anyway.
func TestBackgroundSyncAcrossRotation(t *testing.T) {
	fs, dir := newTestDisk(), "data"
	r := openT(t, fs, dir, func(o *Options) {
		o.Fsync, o.BackgroundSync, o.SegmentBytes = FsyncEverySec, true, 64<<10
	})
	const ms = int64(1e6)
	val := strings.Repeat("v", 1000)
	do(r, t0, "SET k0 "+val)
	r.Tick(t0 + 600*ms)
	j := r.PendingSync()
	if j == nil {
		t.Fatal("no sync job")
	}
	segs := len(r.wal.Segments())
	for i := 1; i <= 200; i++ {
		do(r, t0+600*ms, "SET k"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+" "+val)
	}
	if len(r.wal.Segments()) == segs {
		t.Fatal("the log did not rotate")
	}
	r.SyncDone(j, j.Run())
	if r.Err() != nil {
		t.Fatalf("sync of the rotated segment: %v", r.Err())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	crashed := openT(t, fs.crashClone(), dir)
	defer func() { _ = crashed.Close() }()
	if got := dump(crashed, t0+2000*ms); !strings.Contains(got, "k0=") {
		t.Fatalf("k0 lost: %.200s", got)
	}
}
