package sim

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

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

func TestFSCreateNotDurableWithoutSyncDir(t *testing.T) {
	fs := newTestFS(t, FSConfig{}, 1)
	f, _ := fs.Create("data/snap-1")
	mustWrite(t, f, []byte("image"))
	f.Sync()
	fs.Crash()
	if _, err := fs.Stat("data/snap-1"); !errors.Is(err, disk.ErrNotExist) {
		t.Fatalf("file created without SyncDir survived the crash (err %v)", err)
	}
	f, _ = fs.Create("data/snap-1")
	mustWrite(t, f, []byte("image"))
	f.Sync()
	fs.SyncDir("data")
	fs.Crash()
	if got := readAll(t, fs, "data/snap-1"); string(got) != "image" {
		t.Fatalf("synced file and dir: got %q", got)
	}
}

func TestFSRenameNotDurableWithoutSyncDir(t *testing.T) {
	fs := newTestFS(t, FSConfig{}, 1)
	f, _ := fs.Create("data/snap.tmp")
	mustWrite(t, f, []byte("new"))
	f.Sync()
	fs.SyncDir("data")
	if err := fs.Rename("data/snap.tmp", "data/snap"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat("data/snap"); err != nil {
		t.Fatalf("live view must see the rename: %v", err)
	}
	fs.Crash()
	if _, err := fs.Stat("data/snap"); !errors.Is(err, disk.ErrNotExist) {
		t.Fatalf("rename survived a crash without SyncDir")
	}
	if got := readAll(t, fs, "data/snap.tmp"); string(got) != "new" {
		t.Fatalf("old name after crash: %q", got)
	}
	fs.Rename("data/snap.tmp", "data/snap")
	fs.SyncDir("data")
	fs.Crash()
	if _, err := fs.Stat("data/snap.tmp"); !errors.Is(err, disk.ErrNotExist) {
		t.Fatalf("old name survived a synced rename")
	}
	if got := readAll(t, fs, "data/snap"); string(got) != "new" {
		t.Fatalf("new name after synced rename: %q", got)
	}
}

func TestFSRemoveNotDurableWithoutSyncDir(t *testing.T) {
	fs := newTestFS(t, FSConfig{}, 1)
	f, _ := fs.Create("data/wal-1")
	mustWrite(t, f, []byte("x"))
	f.Sync()
	fs.SyncDir("data")
	fs.Remove("data/wal-1")
	fs.Crash()
	if got := readAll(t, fs, "data/wal-1"); string(got) != "x" {
		t.Fatalf("unsynced remove: file should be back, got %q", got)
	}
	fs.Remove("data/wal-1")
	fs.SyncDir("data")
	fs.Crash()
	if _, err := fs.Stat("data/wal-1"); !errors.Is(err, disk.ErrNotExist) {
		t.Fatalf("synced remove did not stick")
	}
}

func TestFSCreateTruncatesSameInode(t *testing.T) {
	fs := newTestFS(t, FSConfig{}, 1)
	f, _ := fs.Create("data/x")
	mustWrite(t, f, []byte("old contents"))
	f.Sync()
	fs.SyncDir("data")
	f, _ = fs.Create("data/x")
	mustWrite(t, f, []byte("new"))
	fs.Crash()
	if got := readAll(t, fs, "data/x"); string(got) != "old contents" {
		t.Fatalf("unsynced O_TRUNC rewrite must revert on crash, got %q", got)
	}
}

// Torn tails: every kept sector is either fully the new bytes or the
// durable/zero bytes, the size is a sector boundary (or the written size),
// and the synced prefix is intact.
func TestFSTornTailsAtSectorBoundaries(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		for seed := uint64(0); seed < 200; seed++ {
			fs := newTestFS(t, FSConfig{SectorSize: ss, TornProb: 1}, seed)
			f, _ := fs.Create("data/wal-1")
			fs.SyncDir("data")
			prefix := bytes.Repeat([]byte{'d'}, ss+100)
			mustWrite(t, f, prefix)
			f.Sync()
			tail := make([]byte, 5*ss)
			for i := range tail {
				tail[i] = byte('A' + i/ss)
			}
			mustWrite(t, f, tail)
			fs.Crash()
			got := readAll(t, fs, "data/wal-1")
			if !bytes.Equal(got[:min(len(got), len(prefix))], prefix[:min(len(got), len(prefix))]) || len(got) < len(prefix) {
				t.Fatalf("ss=%d seed=%d: synced prefix damaged", ss, seed)
			}
			full := append(append([]byte(nil), prefix...), tail...)
			if len(got) != len(full) && len(got) != len(prefix) && len(got)%ss != 0 {
				t.Fatalf("ss=%d seed=%d: torn size %d is not a sector boundary", ss, seed, len(got))
			}
			for s := 0; s*ss < len(got); s++ {
				a, b := s*ss, min((s+1)*ss, len(got))
				sec := got[a:b]
				newSec := full[a:b]
				oldSec := make([]byte, b-a)
				for i := a; i < b; i++ {
					if i < len(prefix) {
						oldSec[i-a] = prefix[i]
					}
				}
				if !bytes.Equal(sec, newSec) && !bytes.Equal(sec, oldSec) {
					t.Fatalf("ss=%d seed=%d: sector %d is a mix of old and new bytes", ss, seed, s)
				}
			}
		}
	}
}

func TestFSTornKeepsSectorsInAnyOrder(t *testing.T) {
	// Some seed must keep a later sector while dropping an earlier one.
	const ss = 512
	for seed := uint64(0); seed < 500; seed++ {
		fs := newTestFS(t, FSConfig{SectorSize: ss, TornProb: 1}, seed)
		f, _ := fs.Create("data/wal-1")
		fs.SyncDir("data")
		mustWrite(t, f, bytes.Repeat([]byte{'x'}, 4*ss))
		fs.Crash()
		got := readAll(t, fs, "data/wal-1")
		if len(got) >= 2*ss && got[0] == 0 && got[ss] == 'x' {
			return
		}
	}
	t.Fatal("no seed kept a later sector without an earlier one")
}

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
