package sim

import (
	"io"
	"math/rand/v2"
	"path"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/disk"
)

// The world's disk is disk.MemFS (the page cache and what a power loss
// leaves) behind a disk.ErrorFS (what goes wrong). This file wires them to
// a node: its random stream, its trace, the time its I/O keeps it busy,
// the fault knobs scenarios turn, and the life of its process.

// ErrIO is the simulated EIO: what a failed write or fsync returns.
var ErrIO = disk.ErrIO

// ErrStaleHandle is returned by a file handle used after its process died
// (a crash or restart of the node that opened it).
var ErrStaleHandle = errors.New("stale file handle: the process that opened it is gone")

// CrashPoint is the panic value an FS raises when a scheduled crash point
// is reached in the middle of an operation: the node's runtime recovers it
// and powers the node off, leaving the disk exactly as the operation left it.
type CrashPoint = disk.CrashPoint

// FileKind groups files so faults can target one kind.
type FileKind = disk.FileKind

// File kinds (see disk.FileKind).
const (
	KindWAL      = disk.KindWAL
	KindSnapshot = disk.KindSnapshot
	KindOther    = disk.KindOther
	KindAll      = disk.KindAll
)

// ClassifyFile maps a file name to its kind (disk.ClassifyFile).
func ClassifyFile(name string) FileKind { return disk.ClassifyFile(name) }

// DiskFaults are per-operation fault probabilities, applied to the files
// of the kinds in Kinds (0 means all).
type DiskFaults struct {
	Kinds FileKind
	// ReadFlipProb: a read returns one flipped bit (the stored bytes are fine).
	ReadFlipProb float64
	// WriteErrProb: a write fails with EIO and writes nothing.
	WriteErrProb float64
	// SyncErrProb: fsync fails with EIO and the unsynced bytes of the file
	// are gone (marked clean without reaching the disk: fsyncgate).
	SyncErrProb float64
	// SpikeProb: an operation takes SpikeMax extra (uniform) time.
	SpikeProb float64
	SpikeMax  time.Duration
}

// FSConfig is one node's disk.
type FSConfig struct {
	// SectorSize is the unit a crash tears writes at: 512 or 4096.
	SectorSize int
	// Capacity in bytes (0: unlimited). Writes beyond it fail with
	// disk.ErrNoSpace.
	Capacity int64
	// TornProb is the chance that a crash keeps part of a file's unsynced
	// data (a random subset of its dirty sectors and a size anywhere
	// between the durable and the written size) instead of dropping it.
	TornProb float64
	// Latency of each operation, charged to the node as busy time.
	WriteLatency time.Duration
	WriteByteNs  int64
	SyncLatency  time.Duration
	ReadLatency  time.Duration
	Faults       DiskFaults
}

// FSStats counts what the disk did and which faults it injected.
type FSStats struct {
	Writes, Syncs, Reads      int64
	ReadFlips, WriteErrs      int64
	SyncErrs, NoSpace, Spikes int64
	Crashes, TornFiles, Rots  int64
}

// FS is the simulated disk.FS of one node: a crashable disk.MemFS seen
// through a disk.ErrorFS whose injector is the node's (inject). One rng
// stream drives every fault, tear and crash, in the order operations
// happen.
type FS struct {
	cfg    FSConfig
	rng    *rand.Rand
	trace  func(string)
	mem    *disk.MemFS
	efs    *disk.ErrorFS
	crash  disk.CrashAt
	faults disk.RandomFaults
	space  disk.SpaceLimit
	locks  []io.Closer // taken by the current process
	gen    uint64      // the process: handles of an older one are stale
	busy   time.Duration
	Stats  FSStats
	// gate admits a schedule's fault actions, opGate each fault injected
	// into an operation (variant.go; nil: all).
	gate   faultGate
	opGate func(kind string) bool
	// aim, when set, may crash a mutating operation first (aim.go);
	// onFault hears every fault injected, onTorn every file a power loss
	// tore (markers).
	aim     func(op disk.Op) (disk.Fault, bool)
	onFault func(op disk.Op, f disk.Fault)
	onTorn  func(name string)
	// tearRand, when set, gives each file a power loss may tear a stream
	// of its own (Variant.StableTears).
	tearRand func(name string) *rand.Rand
}

// NewFS returns an empty disk. rng drives its faults and crashes; trace
// (optional) receives one line per injected fault.
func NewFS(cfg FSConfig, rng *rand.Rand, trace func(string)) *FS {
	if cfg.SectorSize <= 0 {
		cfg.SectorSize = 4096
	}
	if trace == nil {
		trace = func(string) {}
	}
	fs := &FS{cfg: cfg, rng: rng, trace: trace, crash: disk.CrashAt{Rand: rng}}
	fs.SetFaults(cfg.Faults)
	fs.setDisk(disk.NewCrashableMemFS(cfg.SectorSize))
	return fs
}

// setDisk puts mem (a new disk, or what a crash left of the old one)
// behind the node's faults.
func (fs *FS) setDisk(mem *disk.MemFS) {
	fs.mem = mem
	fs.space = disk.SpaceLimit{FS: mem, Capacity: fs.cfg.Capacity, Ballast: fs.space.Ballast}
	fs.efs = disk.NewErrorFS(mem, disk.InjectorFunc(fs.inject))
}

var _ disk.FS = (*FS)(nil)

// SetFaults replaces the fault probabilities (a scenario turns faults on
// and off over time).
func (fs *FS) SetFaults(f DiskFaults) {
	if f != (DiskFaults{}) && !fs.gate.allow("disk-faults", true) {
		return
	}
	fs.cfg.Faults = f
	fs.faults = disk.RandomFaults{Rand: fs.rng, Kinds: f.Kinds,
		ReadFlipProb: f.ReadFlipProb, WriteErrProb: f.WriteErrProb, SyncErrProb: f.SyncErrProb}
}

// SetBallast makes n bytes of the capacity used by someone else: a disk
// filling up (n large) or being cleaned (n small).
func (fs *FS) SetBallast(n int64) {
	if n > 0 && !fs.gate.allow("disk-full", true) {
		return
	}
	fs.space.Ballast = n
}

// reseed makes rng the stream of the disk's draws from now on
// (Variant.StableDisk).
func (fs *FS) reseed(rng *rand.Rand) {
	fs.rng = rng
	fs.crash.Rand = rng
	fs.faults.Rand = rng
}

// CrashAfter arms a crash point: the n-th mutating operation (write,
// truncate, sync, create, rename, remove, syncdir) from now panics with
// CrashPoint after doing a seeded part of its work. 0 disarms.
func (fs *FS) CrashAfter(n int64) { fs.crash.N = n }

// TakeBusy returns the I/O time accumulated since the last call.
func (fs *FS) TakeBusy() time.Duration {
	b := fs.busy
	fs.busy = 0
	return b
}

// Used is the bytes the live files and the ballast occupy.
func (fs *FS) Used() int64 { return fs.space.Used() }

// inject is the node's disk.Injector. The order of its draws from rng is
// part of every trace: crash point, then the latency (and its spike),
// then the random faults, then the capacity.
func (fs *FS) inject(op disk.Op) disk.Fault {
	switch op.Kind {
	case disk.OpWrite:
		fs.Stats.Writes++
	case disk.OpSync:
		fs.Stats.Syncs++
	case disk.OpRead:
		fs.Stats.Reads++
	}
	if fs.aim != nil {
		if f, ok := fs.aim(op); ok {
			return f
		}
	}
	if f := fs.crash.Inject(op); f.Kind != disk.FaultNone {
		if fs.onFault != nil {
			fs.onFault(op, f)
		}
		return f
	}
	fs.charge(op)
	f := fs.faults.Inject(op)
	if f.Kind != disk.FaultNone && fs.opGate != nil {
		kind := "read-flip"
		switch {
		case f.Kind == disk.FaultError && op.Kind == disk.OpSync:
			kind = "fsync-error"
		case f.Kind == disk.FaultError:
			kind = "write-error"
		}
		if !fs.opGate(kind) {
			f = disk.Fault{}
		}
	}
	switch {
	case f.Kind == disk.FaultError && op.Kind == disk.OpWrite:
		fs.Stats.WriteErrs++
		fs.trace("disk write-error " + path.Base(op.Path))
	case f.Kind == disk.FaultError && op.Kind == disk.OpSync:
		fs.Stats.SyncErrs++
		fs.trace("disk fsync-error " + path.Base(op.Path))
	case f.Kind == disk.FaultFlip:
		fs.Stats.ReadFlips++
		fs.trace("disk read-flip " + path.Base(op.Path) + " offset=" + itoa(op.Off+f.At))
	case f.Kind == disk.FaultNone:
		if f = fs.space.Inject(op); f.Kind != disk.FaultNone {
			fs.Stats.NoSpace++
			if op.Kind == disk.OpWrite {
				fs.trace("disk no-space " + path.Base(op.Path))
			}
		}
	}
	if f.Kind != disk.FaultNone && fs.onFault != nil {
		fs.onFault(op, f)
	}
	return f
}

// charge adds an operation's latency, and maybe a spike, to busy time.
func (fs *FS) charge(op disk.Op) {
	name, d := op.Path, time.Duration(0)
	switch op.Kind {
	case disk.OpCreate, disk.OpRemove, disk.OpTruncate:
		d = fs.cfg.WriteLatency
	case disk.OpRename:
		name, d = op.To, fs.cfg.WriteLatency
	case disk.OpSyncDir, disk.OpSync:
		d = fs.cfg.SyncLatency
	case disk.OpWrite:
		d = fs.cfg.WriteLatency + time.Duration(fs.cfg.WriteByteNs*op.Len)
	case disk.OpRead:
		d = fs.cfg.ReadLatency
	default:
		return // opens, listings, stats, mkdir and locks cost nothing
	}
	fs.busy += d
	f := fs.cfg.Faults
	if f.SpikeProb > 0 && (f.Kinds == 0 || f.Kinds&ClassifyFile(name) != 0) && fs.rng.Float64() < f.SpikeProb && f.SpikeMax > 0 {
		s := time.Duration(fs.rng.Int64N(int64(f.SpikeMax)) + 1)
		if fs.opGate != nil && !fs.opGate("spike") {
			return
		}
		fs.busy += s
		fs.Stats.Spikes++
		fs.trace("disk latency-spike " + path.Base(name) + " " + s.String())
	}
}

// Create implements disk.FS.
func (fs *FS) Create(name string) (disk.File, error) { return fs.open(name, fs.efs.Create, true) }

// Open implements disk.FS.
func (fs *FS) Open(name string) (disk.File, error) { return fs.open(name, fs.efs.Open, false) }

// OpenAppend implements disk.FS.
func (fs *FS) OpenAppend(name string) (disk.File, error) {
	return fs.open(name, fs.efs.OpenAppend, true)
}

func (fs *FS) open(name string, open func(string) (disk.File, error), writable bool) (disk.File, error) {
	name = path.Clean(name)
	f, err := open(name)
	if err != nil {
		return nil, err
	}
	return &File{fs: fs, f: f, name: name, gen: fs.gen, writable: writable}, nil
}

// Remove implements disk.FS. Open handles keep working (unlink semantics).
func (fs *FS) Remove(name string) error { return fs.efs.Remove(path.Clean(name)) }

// Rename implements disk.FS, replacing newname if it exists.
func (fs *FS) Rename(oldname, newname string) error {
	return fs.efs.Rename(path.Clean(oldname), path.Clean(newname))
}

// MkdirAll implements disk.FS. Directories are durable at once.
func (fs *FS) MkdirAll(dir string) error { return fs.efs.MkdirAll(path.Clean(dir)) }

// List implements disk.FS: files and subdirectories directly in dir, sorted.
func (fs *FS) List(dir string) ([]string, error) { return fs.efs.List(path.Clean(dir)) }

// Stat implements disk.FS.
func (fs *FS) Stat(name string) (int64, error) { return fs.efs.Stat(path.Clean(name)) }

// SyncDir implements disk.FS: the creations, renames and removals in dir
// become durable.
func (fs *FS) SyncDir(dir string) error { return fs.efs.SyncDir(path.Clean(dir)) }

type lockHandle struct {
	fs  *FS
	l   io.Closer
	gen uint64
}

func (l *lockHandle) Close() error {
	if l.gen == l.fs.gen {
		return l.l.Close()
	}
	return nil
}

// Lock implements disk.FS. Locks die with the process (crash or restart).
func (fs *FS) Lock(name string) (io.Closer, error) {
	l, err := fs.efs.Lock(path.Clean(name))
	if err != nil {
		return nil, err
	}
	fs.locks = append(fs.locks, l)
	return &lockHandle{fs: fs, l: l, gen: fs.gen}, nil
}

// KillProcess models the node's process dying while the machine stays up:
// handles and locks are gone, the page cache (unsynced bytes included)
// stays.
func (fs *FS) KillProcess() {
	fs.gen++
	for _, l := range fs.locks {
		_ = l.Close()
	}
	fs.locks = nil
	fs.crash.N = 0
	fs.busy = 0
}

// Crash models power loss: the disk becomes what disk.MemFS.CrashClone
// keeps: the durable namespace, each file's synced bytes and, with
// TornProb, part of its unsynced ones (a random subset of dirty sectors,
// and a size anywhere between the durable and the written size at sector
// granularity, holes reading zero).
func (fs *FS) Crash() {
	fs.KillProcess()
	fs.Stats.Crashes++
	var fileRand func(string) *rand.Rand
	if fs.tearRand != nil {
		// A file's place is its path without digits (a WAL segment's
		// number depends on how much was written before), told apart
		// from others of the same place by its rank in name order.
		rank := map[string]int{}
		fileRand = func(name string) *rand.Rand {
			place := strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' {
					return -1
				}
				return r
			}, name)
			rank[place]++
			return fs.tearRand(place + "#" + itoa(int64(rank[place])))
		}
	}
	fs.setDisk(fs.mem.CrashClone(disk.CrashCloneCfg{
		TornProb: fs.cfg.TornProb,
		Rand:     fs.rng,
		FileRand: fileRand,
		OnTorn: func(name string, size int64, kept, dirty int) {
			fs.Stats.TornFiles++
			if fs.onTorn != nil {
				fs.onTorn(name)
			}
			fs.trace("disk torn " + path.Base(name) + " size=" + itoa(size) + " sectors-kept=" + itoa(int64(kept)) + "/" + itoa(int64(dirty)))
		},
	}))
}

// Rot flips one bit of a durable byte in a random file of the targeted
// kinds (bit rot at rest). It reports whether a file was hit.
func (fs *FS) Rot(kinds FileKind) bool {
	if !fs.gate.allow("rot", true) {
		return false
	}
	name, off, ok := fs.mem.Rot(fs.rng, kinds)
	if ok {
		fs.Stats.Rots++
		fs.trace("disk bit-rot " + path.Base(name) + " offset=" + itoa(off))
	}
	return ok
}

// File is an open file of the simulated disk: a handle of one process.
type File struct {
	fs       *FS
	f        disk.File
	name     string
	gen      uint64
	writable bool
	closed   bool
}

var _ disk.File = (*File)(nil)

// check refuses a handle that is closed, stale or read-only before the
// disk sees the operation (so it draws nothing and counts nothing).
func (f *File) check(op string) error {
	if f.closed {
		return errors.Newf("%s %s: file already closed", op, f.name)
	}
	if f.gen != f.fs.gen {
		return errors.Wrapf(ErrStaleHandle, "%s %s", op, f.name)
	}
	if op != "read" && op != "size" && !f.writable {
		return errors.Newf("%s %s: file opened read-only", op, f.name)
	}
	return nil
}

// Write implements disk.File: it appends at the end of the file.
func (f *File) Write(p []byte) (int, error) {
	if err := f.check("write"); err != nil {
		return 0, err
	}
	return f.f.Write(p)
}

// ReadAt implements disk.File. With ReadFlipProb the returned bytes carry
// one flipped bit.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check("read"); err != nil {
		return 0, err
	}
	return f.f.ReadAt(p, off)
}

// Close implements disk.File.
func (f *File) Close() error {
	if f.closed {
		return errors.Newf("close %s: file already closed", f.name)
	}
	f.closed = true
	return f.f.Close()
}

// Sync implements disk.File.
func (f *File) Sync() error {
	if err := f.check("sync"); err != nil {
		return err
	}
	return f.f.Sync()
}

// Truncate implements disk.File.
func (f *File) Truncate(size int64) error {
	if err := f.check("truncate"); err != nil {
		return err
	}
	if size < 0 {
		return errors.Newf("truncate %s: negative size %d", f.name, size)
	}
	return f.f.Truncate(size)
}

// Size implements disk.File.
func (f *File) Size() (int64, error) {
	if err := f.check("size"); err != nil {
		return 0, err
	}
	return f.f.Size()
}
