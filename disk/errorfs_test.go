package disk

import (
	"bytes"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"
)

// toggle is an injector a test switches: the fault it returns for ops of
// one kind while on.
type toggle struct {
	kind  OpKind
	fault Fault
	on    bool
	seen  int
}

func (tg *toggle) Inject(op Op) Fault {
	if op.Kind != tg.kind {
		return Fault{}
	}
	tg.seen++
	if !tg.on {
		return Fault{}
	}
	return tg.fault
}

// fsyncgate: a failed fsync drops the dirty pages, reads see the old bytes
// again, and a retried fsync succeeds with the data gone.
func TestErrorFSFsyncFailureLosesUnsyncedData(t *testing.T) {
	mem := newCrashable(t, 512)
	sync := &toggle{kind: OpSync, fault: Fault{Kind: FaultError, Err: ErrIO}}
	fs := NewErrorFS(mem, sync)
	f := mustCreate(t, fs, "data/wal-1")
	noErr(t, fs.SyncDir("data"))
	mustWrite(t, f, []byte("kept"))
	noErr(t, f.Sync())
	mustWrite(t, f, []byte("lost"))
	sync.on = true
	err := f.Sync()
	if !errors.Is(err, ErrIO) || !strings.Contains(err.Error(), "fsync data/wal-1") {
		t.Fatalf("sync: err %v, want EIO naming the file", err)
	}
	sync.on = false
	if got := mustRead(t, fs, "data/wal-1"); bytes.Contains(got, []byte("lost")) {
		t.Fatalf("reads still see the bytes of a failed fsync: %q", got)
	}
	noErr(t, f.Sync())
	got := mustRead(t, mem.CrashClone(CrashCloneCfg{}), "data/wal-1")
	if bytes.Contains(got, []byte("lost")) || !bytes.HasPrefix(got, []byte("kept")) {
		t.Fatalf("after a failed then a retried fsync and a crash: %q", got)
	}
}

func TestErrorFSWriteErrorAndTornWrite(t *testing.T) {
	mem := newCrashable(t, 0)
	w := &toggle{kind: OpWrite, on: true, fault: Fault{Kind: FaultError}}
	fs := NewErrorFS(mem, w)
	f := mustCreate(t, fs, "data/wal-1")
	if n, err := f.Write([]byte("abc")); n != 0 || !errors.Is(err, ErrIO) {
		t.Fatalf("write: n %d err %v, want 0 and EIO (the default error)", n, err)
	}
	w.fault = Fault{Kind: FaultError, Err: ErrNoSpace, Keep: 2}
	if n, err := f.Write([]byte("abc")); n != 2 || !errors.Is(err, ErrNoSpace) {
		t.Fatalf("torn write: n %d err %v, want 2 and ENOSPC", n, err)
	}
	if got := mustRead(t, fs, "data/wal-1"); string(got) != "ab" {
		t.Fatalf("torn write left %q, want its first 2 bytes", got)
	}
}

func TestErrorFSReadFlip(t *testing.T) {
	mem := newCrashable(t, 0)
	faults := &RandomFaults{Rand: rand.New(rand.NewPCG(1, 1)), ReadFlipProb: 1}
	fs := NewErrorFS(mem, faults)
	noErr(t, WriteFile(fs, "data/snap-1", []byte("abcdefgh")))
	for off := int64(0); off < 8; off++ {
		f, err := fs.Open("data/snap-1")
		noErr(t, err)
		got := make([]byte, 8)
		n, _ := f.ReadAt(got, off)
		diff := 0
		for i := 0; i < n; i++ {
			diff += bits.OnesCount8(got[i] ^ "abcdefgh"[off+int64(i)])
		}
		if n != 8-int(off) || diff != 1 {
			t.Fatalf("read at %d: %d bytes, %d bits differ, want %d bytes and 1 bit", off, n, diff, 8-off)
		}
	}
	// Past the end nothing is read and nothing flips (or panics).
	f, _ := fs.Open("data/snap-1")
	if n, _ := f.ReadAt(make([]byte, 1), 8); n != 0 {
		t.Fatalf("read past the end returned %d bytes", n)
	}
	if got := mustRead(t, mem, "data/snap-1"); string(got) != "abcdefgh" {
		t.Fatalf("stored bytes changed by a read flip: %q", got)
	}
}

func TestRandomFaultsTargetKinds(t *testing.T) {
	mem := newCrashable(t, 0)
	fs := NewErrorFS(mem, &RandomFaults{Rand: rand.New(rand.NewPCG(1, 1)), Kinds: KindWAL, WriteErrProb: 1, SyncErrProb: 1})
	f := mustCreate(t, fs, "data/0000000000000001.log")
	if _, err := f.Write([]byte("x")); !errors.Is(err, ErrIO) {
		t.Fatalf("targeted write: err %v", err)
	}
	if err := f.Sync(); !errors.Is(err, ErrIO) {
		t.Fatalf("targeted sync: err %v", err)
	}
	g := mustCreate(t, fs, "data/snap-1")
	mustWrite(t, g, []byte("x")) // not targeted
	noErr(t, g.Sync())
	for name, want := range map[string]FileKind{
		"d/wal/0000000000000003.log": KindWAL, "d/x.seg": KindWAL, "d/wal": KindWAL,
		"d/snap/00000002.snap": KindSnapshot, "d/snap.tmp": KindSnapshot, "d/LOCK": KindOther,
	} {
		if got := ClassifyFile(name); got != want {
			t.Fatalf("ClassifyFile(%s) = %d, want %d", name, got, want)
		}
	}
}

func TestSpaceLimit(t *testing.T) {
	mem := newCrashable(t, 0)
	space := &SpaceLimit{FS: mem, Capacity: 100}
	fs := NewErrorFS(mem, space)
	f := mustCreate(t, fs, "data/wal-1")
	mustWrite(t, f, make([]byte, 60))
	if _, err := f.Write(make([]byte, 60)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write past capacity: err %v, want ErrNoSpace", err)
	}
	if n, _ := f.Size(); n != 60 {
		t.Fatalf("failed write changed the file: size %d", n)
	}
	if err := f.Truncate(200); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("growing truncate past capacity: err %v", err)
	}
	noErr(t, f.Truncate(10)) // shrinking always works
	space.Ballast = 90
	if _, err := f.Write(make([]byte, 1)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("ballast must use capacity")
	}
	if space.Used() != 100 {
		t.Fatalf("used %d, want 100", space.Used())
	}
	space.Ballast = 0
	noErr(t, fs.Remove("data/wal-1"))
	g := mustCreate(t, fs, "data/wal-2")
	mustWrite(t, g, make([]byte, 90))
}

// CrashAt crashes the n-th mutating operation, after a seeded part of it.
func TestCrashAt(t *testing.T) {
	sawPartial := false
	for seed := uint64(0); seed < 50; seed++ {
		mem := newCrashable(t, 0)
		crash := &CrashAt{N: 4, Rand: rand.New(rand.NewPCG(seed, 1))}
		fs := NewErrorFS(mem, crash)
		f := mustCreate(t, fs, "data/wal-1") // 1
		noErr(t, fs.SyncDir("data"))         // 2
		_, _ = fs.List("data")               // reads do not count
		noErr(t, fs.MkdirAll("data/sub"))    // nor does mkdir
		mustWrite(t, f, []byte("one"))       // 3
		cp := func() (cp any) {
			defer func() { cp = recover() }()
			_, _ = f.Write([]byte("twotwo")) // 4
			return nil
		}()
		if cp != (CrashPoint{Op: "write data/wal-1"}) {
			t.Fatalf("seed %d: recovered %v, want the crash point of the 4th mutation", seed, cp)
		}
		got := string(mustRead(t, mem, "data/wal-1"))
		if !strings.HasPrefix("onetwotwo", got) || len(got) < 3 {
			t.Fatalf("seed %d: a crashing write left %q, want a prefix of it after the earlier write", seed, got)
		}
		sawPartial = sawPartial || len(got) > 3 && len(got) < 9
		if _, err := f.Write([]byte("x")); err != nil || crash.N != 0 {
			t.Fatalf("a crash point fires once: err %v, N %d", err, crash.N)
		}
	}
	if !sawPartial {
		t.Fatal("no seed kept part of the crashing write")
	}
	// A crashing sync either finished its write-back or not.
	synced := map[bool]bool{}
	for seed := uint64(0); seed < 20; seed++ {
		mem := newCrashable(t, 0)
		f := mustCreate(t, mem, "data/wal-1")
		noErr(t, mem.SyncDir("data"))
		mustWrite(t, f, []byte("x"))
		g, err := NewErrorFS(mem, &CrashAt{N: 1, Rand: rand.New(rand.NewPCG(seed, 1))}).OpenAppend("data/wal-1")
		noErr(t, err)
		func() {
			defer func() {
				if cp := recover(); cp != (CrashPoint{Op: "sync data/wal-1"}) {
					t.Fatalf("recovered %v, want the sync's crash point", cp)
				}
			}()
			_ = g.Sync()
		}()
		synced[len(mustRead(t, mem.CrashClone(CrashCloneCfg{}), "data/wal-1")) == 1] = true
	}
	if !synced[true] || !synced[false] {
		t.Fatalf("a crashing sync always or never wrote back: %v", synced)
	}
}

// Any asks injectors in order and stops at the first fault.
func TestAnyStopsAtTheFirstFault(t *testing.T) {
	first := &toggle{kind: OpRemove, fault: Fault{Kind: FaultError, Err: ErrNoSpace}}
	second := &toggle{kind: OpRemove, on: true, fault: Fault{Kind: FaultError}}
	fs := NewErrorFS(newCrashable(t, 0), Any(first, second))
	if err := fs.Remove("data/x"); !errors.Is(err, ErrIO) || second.seen != 1 {
		t.Fatalf("err %v, second asked %d times", err, second.seen)
	}
	first.on = true
	if err := fs.Remove("data/x"); !errors.Is(err, ErrNoSpace) || second.seen != 1 {
		t.Fatalf("err %v, second asked %d times: it must not be asked after a fault", err, second.seen)
	}
}

// ErrorFS wraps any FS: here the OS's, whose files a fault never touches.
func TestErrorFSOverTheOSDisk(t *testing.T) {
	dir := t.TempDir()
	w := &toggle{kind: OpWrite, fault: Fault{Kind: FaultError, Keep: 3}}
	fs := NewErrorFS(OS(), w)
	name := filepath.Join(dir, "f")
	f := mustCreate(t, fs, name)
	mustWrite(t, f, []byte("abc"))
	w.on = true
	if n, err := f.Write([]byte("defgh")); n != 3 || !errors.Is(err, ErrIO) {
		t.Fatalf("torn write over the OS: n %d err %v", n, err)
	}
	noErr(t, f.Close())
	if got := mustRead(t, OS(), name); string(got) != "abcdef" {
		t.Fatalf("got %q", got)
	}
	if fs.Unwrap() != OS() {
		t.Fatal("Unwrap does not return the wrapped FS")
	}
}
