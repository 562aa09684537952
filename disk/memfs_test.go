package disk

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/errors"
)

func newCrashable(t *testing.T, sectorSize int) *MemFS {
	t.Helper()
	fs := NewCrashableMemFS(sectorSize)
	if err := fs.MkdirAll("data"); err != nil {
		t.Fatal(err)
	}
	return fs
}

func mustRead(t *testing.T, fs FS, name string) []byte {
	t.Helper()
	b, err := ReadFile(fs, name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

func mustWrite(t *testing.T, f File, p []byte) {
	t.Helper()
	if _, err := f.Write(p); err != nil {
		t.Fatal(err)
	}
}

func mustCreate(t *testing.T, fs FS, name string) File {
	t.Helper()
	f, err := fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestMemFSCrashDropsUnsyncedBytes(t *testing.T) {
	fs := newCrashable(t, 512)
	f := mustCreate(t, fs, "data/wal-1")
	noErr(t, fs.SyncDir("data"))
	mustWrite(t, f, []byte("durable"))
	noErr(t, f.Sync())
	mustWrite(t, f, []byte("-volatile"))
	if got := mustRead(t, fs, "data/wal-1"); string(got) != "durable-volatile" {
		t.Fatalf("before crash reads see the page cache: got %q", got)
	}
	c := fs.CrashClone(CrashCloneCfg{})
	if got := mustRead(t, c, "data/wal-1"); string(got) != "durable" {
		t.Fatalf("after crash: got %q, want only the synced bytes", got)
	}
	if got := mustRead(t, fs, "data/wal-1"); string(got) != "durable-volatile" {
		t.Fatalf("CrashClone changed the original: %q", got)
	}
}

func TestMemFSCreateNotDurableWithoutSyncDir(t *testing.T) {
	fs := newCrashable(t, 0)
	f := mustCreate(t, fs, "data/snap-1")
	mustWrite(t, f, []byte("image"))
	noErr(t, f.Sync())
	if _, err := fs.CrashClone(CrashCloneCfg{}).Stat("data/snap-1"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("file created without SyncDir survived the crash (err %v)", err)
	}
	noErr(t, fs.SyncDir("data"))
	if got := mustRead(t, fs.CrashClone(CrashCloneCfg{}), "data/snap-1"); string(got) != "image" {
		t.Fatalf("synced file and dir: got %q", got)
	}
}

func TestMemFSRenameNotDurableWithoutSyncDir(t *testing.T) {
	fs := newCrashable(t, 0)
	f := mustCreate(t, fs, "data/snap.tmp")
	mustWrite(t, f, []byte("new"))
	noErr(t, f.Sync())
	noErr(t, fs.SyncDir("data"))
	noErr(t, fs.Rename("data/snap.tmp", "data/snap"))
	if _, err := fs.Stat("data/snap"); err != nil {
		t.Fatalf("live view must see the rename: %v", err)
	}
	c := fs.CrashClone(CrashCloneCfg{})
	if _, err := c.Stat("data/snap"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("rename survived a crash without SyncDir")
	}
	if got := mustRead(t, c, "data/snap.tmp"); string(got) != "new" {
		t.Fatalf("old name after crash: %q", got)
	}
	noErr(t, fs.SyncDir("data"))
	c = fs.CrashClone(CrashCloneCfg{})
	if _, err := c.Stat("data/snap.tmp"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("old name survived a synced rename")
	}
	if got := mustRead(t, c, "data/snap"); string(got) != "new" {
		t.Fatalf("new name after synced rename: %q", got)
	}
}

// A rename across directories with only the target's directory synced
// leaves both names on disk, one inode: they stay one file in the clone.
func TestMemFSCrossDirRenameSharesTheInode(t *testing.T) {
	fs := newCrashable(t, 0)
	noErr(t, fs.MkdirAll("other"))
	noErr(t, WriteFile(fs, "data/x", []byte("abc")))
	noErr(t, fs.SyncDir("data"))
	noErr(t, fs.Rename("data/x", "other/x"))
	noErr(t, fs.SyncDir("other"))
	c := fs.CrashClone(CrashCloneCfg{})
	f, err := c.OpenAppend("data/x")
	noErr(t, err)
	mustWrite(t, f, []byte("d"))
	if got := mustRead(t, c, "other/x"); string(got) != "abcd" {
		t.Fatalf("the two names of one inode diverged in the clone: %q", got)
	}
}

func TestMemFSRemoveNotDurableWithoutSyncDir(t *testing.T) {
	fs := newCrashable(t, 0)
	noErr(t, WriteFile(fs, "data/wal-1", []byte("x")))
	noErr(t, fs.SyncDir("data"))
	f, err := fs.Open("data/wal-1")
	noErr(t, err)
	noErr(t, fs.Remove("data/wal-1"))
	// Unlink semantics: the open handle still reads the file.
	b := make([]byte, 1)
	if n, _ := f.ReadAt(b, 0); n != 1 || b[0] != 'x' {
		t.Fatalf("open handle of a removed file reads %q", b[:n])
	}
	if got := mustRead(t, fs.CrashClone(CrashCloneCfg{}), "data/wal-1"); string(got) != "x" {
		t.Fatalf("unsynced remove: file should be back, got %q", got)
	}
	noErr(t, fs.SyncDir("data"))
	if _, err := fs.CrashClone(CrashCloneCfg{}).Stat("data/wal-1"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("synced remove did not stick")
	}
}

func TestMemFSCreateTruncatesSameInode(t *testing.T) {
	fs := newCrashable(t, 0)
	noErr(t, WriteFile(fs, "data/x", []byte("old contents")))
	noErr(t, fs.SyncDir("data"))
	f := mustCreate(t, fs, "data/x")
	mustWrite(t, f, []byte("new"))
	if got := mustRead(t, fs.CrashClone(CrashCloneCfg{}), "data/x"); string(got) != "old contents" {
		t.Fatalf("unsynced O_TRUNC rewrite must revert on crash, got %q", got)
	}
	noErr(t, f.Sync())
	if got := mustRead(t, fs.CrashClone(CrashCloneCfg{}), "data/x"); string(got) != "new" {
		t.Fatalf("synced rewrite: got %q", got)
	}
}

func TestMemFSTruncateDurableOnlyAfterSync(t *testing.T) {
	fs := newCrashable(t, 512)
	f := mustCreate(t, fs, "data/wal-1")
	noErr(t, fs.SyncDir("data"))
	mustWrite(t, f, bytes.Repeat([]byte{'a'}, 1000))
	noErr(t, f.Sync())
	noErr(t, f.Truncate(700))
	mustWrite(t, f, []byte("b"))
	if got := mustRead(t, fs, "data/wal-1"); len(got) != 701 || got[700] != 'b' {
		t.Fatalf("write after truncate does not append at the new end: %d bytes", len(got))
	}
	if got := mustRead(t, fs.CrashClone(CrashCloneCfg{}), "data/wal-1"); len(got) != 1000 {
		t.Fatalf("unsynced truncate survived a crash: %d bytes", len(got))
	}
	noErr(t, f.Sync())
	if got := mustRead(t, fs.CrashClone(CrashCloneCfg{}), "data/wal-1"); len(got) != 701 || got[700] != 'b' || got[699] != 'a' {
		t.Fatalf("synced truncate and append: %d bytes", len(got))
	}
}

// Torn tails: every kept sector is either fully the new bytes or the
// durable/zero bytes, the size is a sector boundary (or the written size)
// within the written range, and the synced prefix is intact.
func TestMemFSTornTailsAtSectorBoundaries(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		for seed := uint64(0); seed < 200; seed++ {
			fs := newCrashable(t, ss)
			f := mustCreate(t, fs, "data/wal-1")
			noErr(t, fs.SyncDir("data"))
			prefix := bytes.Repeat([]byte{'d'}, ss+100)
			mustWrite(t, f, prefix)
			noErr(t, f.Sync())
			tail := make([]byte, 5*ss)
			for i := range tail {
				tail[i] = byte('A' + i/ss)
			}
			mustWrite(t, f, tail)
			torn := 0
			c := fs.CrashClone(CrashCloneCfg{TornProb: 1, Rand: rand.New(rand.NewPCG(seed, 1)),
				OnTorn: func(string, int64, int, int) { torn++ }})
			if torn != 1 {
				t.Fatalf("ss=%d seed=%d: OnTorn called %d times, want once", ss, seed, torn)
			}
			got := mustRead(t, c, "data/wal-1")
			full := append(append([]byte(nil), prefix...), tail...)
			if len(got) < len(prefix) || len(got) > len(full) || !bytes.Equal(got[:len(prefix)], prefix) {
				t.Fatalf("ss=%d seed=%d: synced prefix damaged or size %d out of the written range", ss, seed, len(got))
			}
			if len(got) != len(full) && len(got) != len(prefix) && len(got)%ss != 0 {
				t.Fatalf("ss=%d seed=%d: torn size %d is not a sector boundary", ss, seed, len(got))
			}
			for s := 0; s*ss < len(got); s++ {
				a, b := s*ss, min((s+1)*ss, len(got))
				oldSec := make([]byte, b-a)
				for i := a; i < b; i++ {
					if i < len(prefix) {
						oldSec[i-a] = prefix[i]
					}
				}
				if !bytes.Equal(got[a:b], full[a:b]) && !bytes.Equal(got[a:b], oldSec) {
					t.Fatalf("ss=%d seed=%d: sector %d is a mix of old and new bytes", ss, seed, s)
				}
			}
		}
	}
}

func TestMemFSTornKeepsSectorsInAnyOrder(t *testing.T) {
	// Some seed must keep a later sector while dropping an earlier one.
	const ss = 512
	for seed := uint64(0); seed < 500; seed++ {
		fs := newCrashable(t, ss)
		f := mustCreate(t, fs, "data/wal-1")
		noErr(t, fs.SyncDir("data"))
		mustWrite(t, f, bytes.Repeat([]byte{'x'}, 4*ss))
		got := mustRead(t, fs.CrashClone(CrashCloneCfg{TornProb: 1, Rand: rand.New(rand.NewPCG(seed, 1))}), "data/wal-1")
		if len(got) >= 2*ss && got[0] == 0 && got[ss] == 'x' {
			return
		}
	}
	t.Fatal("no seed kept a later sector without an earlier one")
}

// A clone and its original share nothing: writes, syncs, renames and
// removals on one never show on the other, and clones of clones work.
func TestMemFSCrashCloneIsIndependent(t *testing.T) {
	fs := newCrashable(t, 0)
	noErr(t, WriteFile(fs, "data/a", []byte("aaa")))
	noErr(t, fs.SyncDir("data"))
	c := fs.CrashClone(CrashCloneCfg{})

	f, err := fs.OpenAppend("data/a")
	noErr(t, err)
	mustWrite(t, f, []byte("-orig"))
	noErr(t, f.Sync())
	noErr(t, WriteFile(fs, "data/b", []byte("b")))
	noErr(t, fs.SyncDir("data"))

	g, err := c.OpenAppend("data/a")
	noErr(t, err)
	mustWrite(t, g, []byte("-clone"))
	noErr(t, g.Sync())
	noErr(t, c.Rename("data/a", "data/z"))
	noErr(t, c.SyncDir("data"))

	if got := mustRead(t, fs, "data/a"); string(got) != "aaa-orig" {
		t.Fatalf("original: %q", got)
	}
	if names, _ := fs.List("data"); len(names) != 2 || names[0] != "a" || names[1] != "b" {
		t.Fatalf("original lists %v", names)
	}
	if names, _ := c.List("data"); len(names) != 1 || names[0] != "z" {
		t.Fatalf("clone lists %v", names)
	}
	if got := mustRead(t, c.CrashClone(CrashCloneCfg{}), "data/z"); string(got) != "aaa-clone" {
		t.Fatalf("clone of the clone: %q", got)
	}
}

func TestMemFSLocks(t *testing.T) {
	fs := newCrashable(t, 0)
	l, err := fs.Lock("data/LOCK")
	noErr(t, err)
	if _, err := fs.Lock("data/LOCK"); err == nil {
		t.Fatal("second lock succeeded")
	}
	noErr(t, fs.SyncDir("data"))
	c := fs.CrashClone(CrashCloneCfg{})
	if _, err := c.Lock("data/LOCK"); err != nil {
		t.Fatalf("a lock survived the crash: %v", err)
	}
	noErr(t, l.Close())
	l2, err := fs.Lock("data/LOCK")
	noErr(t, err)
	noErr(t, l.Close()) // an old holder's Close releases nothing
	if _, err := fs.Lock("data/LOCK"); err == nil {
		t.Fatal("a stale Close released the current holder's lock")
	}
	noErr(t, l2.Close())
	if _, err := fs.Lock("nodir/LOCK"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("lock in a missing directory: %v", err)
	}
}

func TestMemFSRot(t *testing.T) {
	fs := newCrashable(t, 0)
	noErr(t, WriteFile(fs, "data/wal-1", []byte("aaaa")))
	noErr(t, WriteFile(fs, "data/snap-1", []byte("ssss")))
	rng := rand.New(rand.NewPCG(1, 1))
	if _, _, ok := fs.Rot(rng, KindWAL); ok {
		t.Fatal("rotted a file whose name is not durable yet")
	}
	noErr(t, fs.SyncDir("data"))
	name, off, ok := fs.Rot(rng, KindWAL)
	if !ok || name != "data/wal-1" || off < 0 || off >= 4 {
		t.Fatalf("rot hit %s at %d (ok %v)", name, off, ok)
	}
	if got := mustRead(t, fs, "data/wal-1"); string(got) == "aaaa" {
		t.Fatal("reads do not see the rot")
	}
	if got := mustRead(t, fs.CrashClone(CrashCloneCfg{}), "data/wal-1"); string(got) == "aaaa" {
		t.Fatal("bit rot did not reach the durable bytes")
	}
	if got := mustRead(t, fs, "data/snap-1"); string(got) != "ssss" {
		t.Fatalf("an untargeted kind rotted: %q", got)
	}
}

// A plain MemFS is durable at once and refuses to crash.
func TestMemFSPlain(t *testing.T) {
	fs := NewMemFS()
	noErr(t, fs.MkdirAll("a/b"))
	f := mustCreate(t, fs, "a/b/x")
	mustWrite(t, f, []byte("hello"))
	noErr(t, f.Truncate(4))
	mustWrite(t, f, []byte("!"))
	noErr(t, f.Sync())
	noErr(t, f.Close())
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("write to a closed file succeeded")
	}
	if got := mustRead(t, fs, "a/b/x"); string(got) != "hell!" {
		t.Fatalf("got %q", got)
	}
	r, err := fs.Open("a/b/x")
	noErr(t, err)
	if _, err := r.Write([]byte("x")); err == nil {
		t.Fatal("write to a read-only file succeeded")
	}
	if names, err := fs.List("a"); err != nil || len(names) != 1 || names[0] != "b" {
		t.Fatalf("list: %v %v", names, err)
	}
	for _, err := range []error{
		fs.Remove("a/nope"), fs.Rename("a/nope", "a/x"), fs.SyncDir("nope"),
		func() error { _, err := fs.Open("a/nope"); return err }(),
		func() error { _, err := fs.Create("nope/x"); return err }(),
		func() error { _, err := fs.List("nope"); return err }(),
	} {
		if !errors.Is(err, ErrNotExist) {
			t.Fatalf("missing file or directory: err %v, want ErrNotExist", err)
		}
	}
	if name, _, ok := fs.Rot(rand.New(rand.NewPCG(1, 1)), 0); !ok || name != "a/b/x" {
		t.Fatalf("rot of a plain MemFS: %s %v", name, ok)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("CrashClone of a plain MemFS did not panic")
		}
	}()
	fs.CrashClone(CrashCloneCfg{})
}

// Under FileRand a file's tear is drawn from its own stream: it is the
// same whether or not another file, earlier in name order, had unsynced
// bytes to tear (with one shared Rand it would move).
func TestMemFSCrashFileRandKeepsEachFilesTear(t *testing.T) {
	build := func(otherDirty bool) *MemFS {
		fs := newCrashable(t, 512)
		a, b := mustCreate(t, fs, "data/a"), mustCreate(t, fs, "data/b")
		noErr(t, fs.SyncDir("data"))
		if otherDirty {
			mustWrite(t, a, bytes.Repeat([]byte("a"), 3000))
		}
		mustWrite(t, b, bytes.Repeat([]byte("b"), 5000))
		return fs
	}
	tears := map[string]bool{}
	for seed := uint64(0); seed < 20; seed++ {
		fileRand := func(name string) *rand.Rand {
			return rand.New(rand.NewPCG(seed, uint64(len(name))+uint64(name[len(name)-1])))
		}
		var got [2][]byte
		for i, otherDirty := range []bool{false, true} {
			got[i] = mustRead(t, build(otherDirty).CrashClone(CrashCloneCfg{TornProb: 0.5, Rand: rand.New(rand.NewPCG(seed, 9)),
				FileRand: fileRand}), "data/b")
		}
		if !bytes.Equal(got[0], got[1]) {
			t.Fatalf("seed %d: b tore to %d bytes alone, %d beside a dirty a", seed, len(got[0]), len(got[1]))
		}
		tears[string(got[0])] = true
	}
	if len(tears) < 3 {
		t.Fatalf("20 seeds tore b only %d ways", len(tears))
	}
}
