package sim

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/disk"
)

func newTestFS(t *testing.T, cfg FSConfig, seed uint64) *FS {
	t.Helper()
	fs := NewFS(cfg, rand.New(rand.NewPCG(seed, 1)), nil)
	if err := fs.MkdirAll("data"); err != nil {
		t.Fatal(err)
	}
	return fs
}

func readAll(t *testing.T, fs *FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	n, _ := f.Size()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, f disk.File, p []byte) {
	t.Helper()
	if _, err := f.Write(p); err != nil {
		t.Fatal(err)
	}
}

func TestFSCrashDropsUnsyncedBytes(t *testing.T) {
	fs := newTestFS(t, FSConfig{SectorSize: 512}, 1)
	f, _ := fs.Create("data/wal-1")
	fs.SyncDir("data")
	mustWrite(t, f, []byte("durable"))
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, []byte("-volatile"))
	if got := readAll(t, fs, "data/wal-1"); string(got) != "durable-volatile" {
		t.Fatalf("before crash reads see the page cache: got %q", got)
	}
	fs.Crash()
	if got := readAll(t, fs, "data/wal-1"); string(got) != "durable" {
		t.Fatalf("after crash: got %q, want only the synced bytes", got)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, ErrStaleHandle) {
		t.Fatalf("handle from before the crash: err %v, want ErrStaleHandle", err)
	}
}

// The page-cache model itself (SyncDir, O_TRUNC, torn tails) is tested
// in disk/memfs_test.go; these tests are of the node's wiring of it.

func TestFSFsyncFailureLosesUnsyncedData(t *testing.T) {
	fs := newTestFS(t, FSConfig{SectorSize: 512, Faults: DiskFaults{SyncErrProb: 1}}, 1)
	f, _ := fs.Create("data/wal-1")
	fs.SyncDir("data")
	mustWrite(t, f, []byte("lost"))
	if err := f.Sync(); !errors.Is(err, ErrIO) {
		t.Fatalf("sync: err %v, want EIO", err)
	}
	fs.SetFaults(DiskFaults{})
	// fsyncgate: retrying the fsync succeeds but does not bring the data back.
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	if got := readAll(t, fs, "data/wal-1"); bytes.Contains(got, []byte("lost")) {
		t.Fatalf("data from a failed fsync survived: %q", got)
	}
}

func TestFSNoSpace(t *testing.T) {
	fs := newTestFS(t, FSConfig{Capacity: 100}, 1)
	f, _ := fs.Create("data/wal-1")
	mustWrite(t, f, make([]byte, 60))
	if _, err := f.Write(make([]byte, 60)); !errors.Is(err, disk.ErrNoSpace) {
		t.Fatalf("write past capacity: err %v, want ErrNoSpace", err)
	}
	if n, _ := f.Size(); n != 60 {
		t.Fatalf("failed write changed the file: size %d", n)
	}
	fs.SetBallast(40)
	if _, err := f.Write(make([]byte, 1)); !errors.Is(err, disk.ErrNoSpace) {
		t.Fatalf("ballast must use capacity")
	}
	fs.SetBallast(0)
	fs.Remove("data/wal-1")
	g, _ := fs.Create("data/wal-2")
	mustWrite(t, g, make([]byte, 90))
}

func TestFSWriteErrorAndReadFlip(t *testing.T) {
	fs := newTestFS(t, FSConfig{Faults: DiskFaults{WriteErrProb: 1, Kinds: KindWAL}}, 1)
	f, _ := fs.Create("data/wal-1")
	if _, err := f.Write([]byte("x")); !errors.Is(err, ErrIO) {
		t.Fatalf("targeted write: err %v", err)
	}
	g, _ := fs.Create("data/snap-1")
	mustWrite(t, g, []byte("x")) // not targeted
	fs.SetFaults(DiskFaults{ReadFlipProb: 1})
	want := []byte("abcdefgh")
	mustWrite(t, g, want[1:])
	got := make([]byte, 8)
	g.ReadAt(got, 0)
	diff := 0
	for i := range got {
		for b := got[i] ^ "xbcdefgh"[i]; b != 0; b &= b - 1 {
			diff++
		}
	}
	if diff != 1 {
		t.Fatalf("read flip: %d bits differ, want 1", diff)
	}
	fs.SetFaults(DiskFaults{})
	g.ReadAt(got, 0)
	if string(got) != "xbcdefgh" {
		t.Fatalf("stored bytes changed by a read flip: %q", got)
	}
}

func TestFSCrashPointPanicsMidOperation(t *testing.T) {
	fs := newTestFS(t, FSConfig{}, 3)
	f, _ := fs.Create("data/wal-1")
	fs.CrashAfter(2)
	mustWrite(t, f, []byte("one"))
	func() {
		defer func() {
			if _, ok := recover().(CrashPoint); !ok {
				t.Fatal("second operation did not hit the crash point")
			}
		}()
		f.Sync()
	}()
}

func TestFSLockAndRot(t *testing.T) {
	fs := newTestFS(t, FSConfig{}, 1)
	l, err := fs.Lock("data/LOCK")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Lock("data/LOCK"); err == nil {
		t.Fatal("second lock succeeded")
	}
	l.Close()
	l, _ = fs.Lock("data/LOCK")
	fs.KillProcess()
	if _, err := fs.Lock("data/LOCK"); err != nil {
		t.Fatalf("lock must die with the process: %v", err)
	}
	f, _ := fs.Create("data/wal-1")
	mustWrite(t, f, []byte("aaaa"))
	f.Sync()
	fs.SyncDir("data")
	if !fs.Rot(KindWAL) {
		t.Fatal("nothing rotted")
	}
	fs.Crash()
	if got := readAll(t, fs, "data/wal-1"); string(got) == "aaaa" {
		t.Fatal("bit rot did not reach the durable bytes")
	}
	names, _ := fs.List("data")
	if len(names) != 2 || names[0] != "LOCK" || names[1] != "wal-1" {
		t.Fatalf("list after crash: %v", names)
	}
}

// A process restart keeps the page cache (unsynced bytes included) but
// not the dead process's handles, locks or armed crash point.
func TestFSKillProcessKeepsThePageCache(t *testing.T) {
	fs := newTestFS(t, FSConfig{}, 1)
	l, err := fs.Lock("data/LOCK")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := fs.Create("data/wal-1")
	fs.SyncDir("data")
	mustWrite(t, f, []byte("unsynced"))
	fs.CrashAfter(1)
	fs.KillProcess()
	if _, err := f.Write([]byte("x")); !errors.Is(err, ErrStaleHandle) {
		t.Fatalf("handle of the dead process: err %v, want ErrStaleHandle", err)
	}
	l2, err := fs.Lock("data/LOCK")
	if err != nil {
		t.Fatalf("the dead process's lock is still held: %v", err)
	}
	l.Close() // the dead process's Close must not release the new holder's lock
	if _, err := fs.Lock("data/LOCK"); err == nil {
		t.Fatal("a stale lock handle released the current lock")
	}
	l2.Close()
	g, _ := fs.OpenAppend("data/wal-1") // the crash point died with the process too
	mustWrite(t, g, []byte("!"))
	if got := readAll(t, fs, "data/wal-1"); string(got) != "unsynced!" {
		t.Fatalf("after a process restart: %q", got)
	}
}

// Every fault the disk injects is one trace line, in the format traces
// (and their hashes) have always had, and latency is charged as busy time.
func TestFSTraceLinesAndBusyTime(t *testing.T) {
	var lines []string
	cfg := FSConfig{SectorSize: 512, Capacity: 1 << 20, TornProb: 1, WriteLatency: time.Millisecond, WriteByteNs: 10,
		SyncLatency: 5 * time.Millisecond, ReadLatency: 2 * time.Millisecond}
	fs := NewFS(cfg, rand.New(rand.NewPCG(7, 1)), func(s string) { lines = append(lines, s) })
	fs.MkdirAll("data")
	f, _ := fs.Create("data/wal-1") // 1 ms
	fs.SyncDir("data")              // 5 ms
	mustWrite(t, f, make([]byte, 100))
	if got, want := fs.TakeBusy(), 6*time.Millisecond+time.Millisecond+1000*time.Nanosecond; got != want {
		t.Fatalf("busy %v, want %v", got, want)
	}
	if fs.TakeBusy() != 0 {
		t.Fatal("TakeBusy did not reset")
	}
	fs.SetFaults(DiskFaults{Kinds: KindWAL, SpikeProb: 1, SpikeMax: time.Second, WriteErrProb: 1})
	if _, err := f.Write([]byte("x")); !errors.Is(err, ErrIO) {
		t.Fatal(err)
	}
	if b := fs.TakeBusy(); b <= time.Millisecond || b > time.Second+2*time.Millisecond {
		t.Fatalf("busy with a spike: %v", b)
	}
	fs.SetFaults(DiskFaults{SyncErrProb: 1})
	f.Sync()
	fs.SetFaults(DiskFaults{ReadFlipProb: 1})
	f.ReadAt(make([]byte, 10), 50)
	fs.SetFaults(DiskFaults{})
	fs.SetBallast(1 << 20)
	f.Write([]byte("x"))
	fs.SetBallast(0)
	f.Sync()
	mustWrite(t, f, make([]byte, 2000))
	fs.Rot(KindWAL)
	fs.Crash()
	want := []string{
		"disk latency-spike wal-1 ", "disk write-error wal-1", "disk fsync-error wal-1",
		"disk read-flip wal-1 offset=5", "disk no-space wal-1", "disk bit-rot wal-1 offset=", "disk torn wal-1 size=",
	}
	if len(lines) != len(want) {
		t.Fatalf("trace lines %q, want %d", lines, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Fatalf("trace line %d is %q, want it to start %q", i, lines[i], w)
		}
	}
	st := fs.Stats
	if st.Spikes != 1 || st.WriteErrs != 1 || st.SyncErrs != 1 || st.ReadFlips != 1 || st.NoSpace != 1 ||
		st.Rots != 1 || st.Crashes != 1 || st.TornFiles != 1 || st.Writes != 4 || st.Syncs != 2 || st.Reads != 1 {
		t.Fatalf("stats %+v", st)
	}
}
