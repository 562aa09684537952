package disk

import (
	"io"
	"math/rand/v2"
	"path"
	"strings"

	"github.com/cockroachdb/errors"
)

// ErrIO is the injected EIO: what a failed write or fsync returns
// (wrapped; test with errors.Is).
var ErrIO = errors.New("input/output error")

// CrashPoint is the panic value ErrorFS raises when its injector crashes
// an operation, after doing the part of it the fault says. Whoever drives
// the code under test recovers it and treats the machine as powered off:
// the disk stays exactly as the operation left it, and what survives is
// what MemFS.CrashClone keeps.
type CrashPoint struct{ Op string }

// FileKind groups files so that faults can target one kind.
type FileKind uint8

const (
	// KindWAL is a log segment.
	KindWAL FileKind = 1 << iota
	// KindSnapshot is a snapshot image (or its temporary file).
	KindSnapshot
	// KindOther is everything else (lock files, manifests).
	KindOther
	// KindAll targets every file.
	KindAll = KindWAL | KindSnapshot | KindOther
)

// ClassifyFile maps a file (or directory) name to its kind by pattern:
// names containing "snap" are snapshots; names containing "wal" or ending
// in ".log" or ".seg" are log segments.
func ClassifyFile(name string) FileKind {
	base := strings.ToLower(path.Base(name))
	switch {
	case strings.Contains(base, "snap"):
		return KindSnapshot
	case strings.Contains(base, "wal"), strings.HasSuffix(base, ".log"), strings.HasSuffix(base, ".seg"):
		return KindWAL
	}
	return KindOther
}

// OpKind is the kind of an FS operation: one per method of FS, and of
// File but Size and Close (which ErrorFS passes through).
type OpKind uint8

// The operations.
const (
	OpCreate OpKind = iota + 1
	OpOpen
	OpOpenAppend
	OpRemove
	OpRename
	OpMkdirAll
	OpList
	OpStat
	OpSyncDir
	OpLock
	OpWrite
	OpRead
	OpSync
	OpTruncate
)

// Mutates reports whether the operation changes the disk: create, remove,
// rename, syncdir, write, sync, truncate. MkdirAll and Lock do not count:
// a directory is durable at once and a lock file holds no data.
func (k OpKind) Mutates() bool {
	switch k {
	case OpCreate, OpRemove, OpRename, OpSyncDir, OpWrite, OpSync, OpTruncate:
		return true
	}
	return false
}

// Op is one operation, as an Injector sees it.
type Op struct {
	Kind OpKind
	// Path is the file, or the directory of OpMkdirAll, OpList and
	// OpSyncDir; for OpRename the old name.
	Path string
	// To is OpRename's new name.
	To string
	// File is ClassifyFile(Path).
	File FileKind
	// Off is where an OpRead read, and the file's size before an
	// OpTruncate.
	Off int64
	// Len is the bytes an OpWrite writes, the bytes an OpRead read (it is
	// asked after the read, so that a flip lands on what was returned),
	// and the size an OpTruncate cuts or grows the file to.
	Len int64
}

// FaultKind is what an injected fault does.
type FaultKind uint8

const (
	// FaultNone lets the operation run.
	FaultNone FaultKind = iota
	// FaultError fails the operation with Fault.Err (ErrIO when nil). A
	// failing write first lets its first Keep bytes reach the file (a
	// short, torn write); a failing sync first drops the file's unsynced
	// bytes when the FS below models them (MemFS): fsyncgate.
	FaultError
	// FaultFlip flips bit Bit of byte At of what a read returns; the
	// stored bytes stay right.
	FaultFlip
	// FaultCrash panics with CrashPoint after part of the operation: a
	// write's first Keep bytes reach the file, a sync writes back when
	// Keep > 0, anything else does nothing.
	FaultCrash
)

// Fault is an Injector's decision for one operation. The zero Fault
// injects nothing.
type Fault struct {
	Kind FaultKind
	Err  error
	Keep int64
	At   int64
	Bit  uint8
}

// Injector decides, operation by operation, what goes wrong. ErrorFS asks
// it before every operation (after it, for reads).
type Injector interface {
	Inject(op Op) Fault
}

// InjectorFunc is an Injector.
type InjectorFunc func(op Op) Fault

// Inject implements Injector.
func (f InjectorFunc) Inject(op Op) Fault { return f(op) }

// Any asks each injector in turn and returns the first fault; the ones
// after it are not asked (so they draw no randomness and count nothing).
func Any(injectors ...Injector) Injector {
	return InjectorFunc(func(op Op) Fault {
		for _, inj := range injectors {
			if f := inj.Inject(op); f.Kind != FaultNone {
				return f
			}
		}
		return Fault{}
	})
}

// RandomFaults fails operations on the files of Kinds (0: all) at random,
// each independently with its probability, drawing from Rand only when a
// probability is set and the file is targeted.
type RandomFaults struct {
	Rand  *rand.Rand
	Kinds FileKind
	// ReadFlipProb: a read returns one flipped bit.
	ReadFlipProb float64
	// WriteErrProb: a write fails with ErrIO and writes nothing.
	WriteErrProb float64
	// SyncErrProb: an fsync fails with ErrIO and the file's unsynced bytes
	// are gone (fsyncgate).
	SyncErrProb float64
}

func (r *RandomFaults) chance(op Op, p float64) bool {
	return p > 0 && (r.Kinds == 0 || r.Kinds&op.File != 0) && r.Rand.Float64() < p
}

// Inject implements Injector.
func (r *RandomFaults) Inject(op Op) Fault {
	switch op.Kind {
	case OpWrite:
		if r.chance(op, r.WriteErrProb) {
			return Fault{Kind: FaultError, Err: ErrIO}
		}
	case OpSync:
		if r.chance(op, r.SyncErrProb) {
			return Fault{Kind: FaultError, Err: ErrIO}
		}
	case OpRead:
		if op.Len > 0 && r.chance(op, r.ReadFlipProb) {
			at := r.Rand.IntN(int(op.Len))
			return Fault{Kind: FaultFlip, At: int64(at), Bit: uint8(r.Rand.IntN(8))}
		}
	}
	return Fault{}
}

// CrashAt crashes the N-th mutating operation (see OpKind.Mutates) it is
// asked about, counting down: N is how many remain, and 0 disarms. Rand
// decides how much of the crashing operation got done: a seeded prefix of
// a write, and whether a sync's write-back finished.
type CrashAt struct {
	N    int64
	Rand *rand.Rand
}

// Inject implements Injector.
func (c *CrashAt) Inject(op Op) Fault {
	if c.N <= 0 || !op.Kind.Mutates() {
		return Fault{}
	}
	c.N--
	if c.N > 0 {
		return Fault{}
	}
	f := Fault{Kind: FaultCrash}
	switch op.Kind {
	case OpWrite:
		f.Keep = int64(c.Rand.IntN(int(op.Len) + 1))
	case OpSync:
		if c.Rand.IntN(2) == 0 {
			f.Keep = 1
		}
	}
	return f
}

// SpaceLimit is a disk that fills: a write, or a truncation that grows a
// file, fails with ErrNoSpace (writing nothing) when FS's files plus
// Ballast would pass Capacity bytes. A Capacity of 0 is unlimited.
type SpaceLimit struct {
	FS       *MemFS
	Capacity int64
	// Ballast is bytes someone else holds: raise it to fill the disk,
	// lower it to free it.
	Ballast int64
}

// Used is the bytes in use, ballast included.
func (s *SpaceLimit) Used() int64 { return s.Ballast + s.FS.Used() }

// Inject implements Injector.
func (s *SpaceLimit) Inject(op Op) Fault {
	if s.Capacity <= 0 {
		return Fault{}
	}
	grow := int64(0)
	switch op.Kind {
	case OpWrite:
		grow = op.Len
	case OpTruncate:
		grow = op.Len - op.Off
	}
	if grow > 0 && s.Used()+grow > s.Capacity {
		return Fault{Kind: FaultError, Err: ErrNoSpace}
	}
	return Fault{}
}

// ErrorFS wraps an FS and lets an Injector fail, tear, flip or crash any
// of its operations. Over a crashable MemFS it is the whole simulated
// disk: the page cache, and everything that goes wrong with it.
type ErrorFS struct {
	fs  FS
	inj Injector
}

var _ FS = (*ErrorFS)(nil)

// NewErrorFS returns fs with inj's faults injected.
func NewErrorFS(fs FS, inj Injector) *ErrorFS { return &ErrorFS{fs: fs, inj: inj} }

// Unwrap returns the wrapped FS.
func (e *ErrorFS) Unwrap() FS { return e.fs }

func (e *ErrorFS) inject(op Op) Fault {
	op.File = ClassifyFile(op.Path)
	f := e.inj.Inject(op)
	if f.Kind == FaultError && f.Err == nil {
		f.Err = ErrIO
	}
	return f
}

// fail applies a fault to an operation that has no partial form.
func (e *ErrorFS) fail(op Op, verb string) error {
	switch f := e.inject(op); f.Kind {
	case FaultCrash:
		panic(CrashPoint{Op: verb + " " + op.Path})
	case FaultError:
		return errors.Wrapf(f.Err, "%s %s", verb, op.Path)
	}
	return nil
}

func (e *ErrorFS) wrap(name string, f File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &errorFile{e: e, f: f, name: name}, nil
}

// Create implements FS.
func (e *ErrorFS) Create(name string) (File, error) {
	if err := e.fail(Op{Kind: OpCreate, Path: name}, "create"); err != nil {
		return nil, err
	}
	f, err := e.fs.Create(name)
	return e.wrap(name, f, err)
}

// Open implements FS.
func (e *ErrorFS) Open(name string) (File, error) {
	if err := e.fail(Op{Kind: OpOpen, Path: name}, "open"); err != nil {
		return nil, err
	}
	f, err := e.fs.Open(name)
	return e.wrap(name, f, err)
}

// OpenAppend implements FS.
func (e *ErrorFS) OpenAppend(name string) (File, error) {
	if err := e.fail(Op{Kind: OpOpenAppend, Path: name}, "open"); err != nil {
		return nil, err
	}
	f, err := e.fs.OpenAppend(name)
	return e.wrap(name, f, err)
}

// Remove implements FS.
func (e *ErrorFS) Remove(name string) error {
	if err := e.fail(Op{Kind: OpRemove, Path: name}, "remove"); err != nil {
		return err
	}
	return e.fs.Remove(name)
}

// Rename implements FS.
func (e *ErrorFS) Rename(oldname, newname string) error {
	if err := e.fail(Op{Kind: OpRename, Path: oldname, To: newname}, "rename"); err != nil {
		return err
	}
	return e.fs.Rename(oldname, newname)
}

// MkdirAll implements FS.
func (e *ErrorFS) MkdirAll(dir string) error {
	if err := e.fail(Op{Kind: OpMkdirAll, Path: dir}, "mkdir"); err != nil {
		return err
	}
	return e.fs.MkdirAll(dir)
}

// List implements FS.
func (e *ErrorFS) List(dir string) ([]string, error) {
	if err := e.fail(Op{Kind: OpList, Path: dir}, "list"); err != nil {
		return nil, err
	}
	return e.fs.List(dir)
}

// Stat implements FS.
func (e *ErrorFS) Stat(name string) (int64, error) {
	if err := e.fail(Op{Kind: OpStat, Path: name}, "stat"); err != nil {
		return 0, err
	}
	return e.fs.Stat(name)
}

// SyncDir implements FS.
func (e *ErrorFS) SyncDir(dir string) error {
	if err := e.fail(Op{Kind: OpSyncDir, Path: dir}, "syncdir"); err != nil {
		return err
	}
	return e.fs.SyncDir(dir)
}

// Lock implements FS.
func (e *ErrorFS) Lock(name string) (io.Closer, error) {
	if err := e.fail(Op{Kind: OpLock, Path: name}, "lock"); err != nil {
		return nil, err
	}
	return e.fs.Lock(name)
}

// dirtyDropper is a file whose unsynced bytes can be dropped, as a failed
// fsync does to the page cache.
type dirtyDropper interface{ dropDirty() }

type errorFile struct {
	e    *ErrorFS
	f    File
	name string
}

var _ File = (*errorFile)(nil)

func (f *errorFile) dropDirty() {
	if d, ok := f.f.(dirtyDropper); ok {
		d.dropDirty()
	}
}

func (f *errorFile) Write(p []byte) (int, error) {
	flt := f.e.inject(Op{Kind: OpWrite, Path: f.name, Len: int64(len(p))})
	keep := min(max(flt.Keep, 0), int64(len(p)))
	switch flt.Kind {
	case FaultCrash:
		_, _ = f.f.Write(p[:keep])
		panic(CrashPoint{Op: "write " + f.name})
	case FaultError:
		n := 0
		if keep > 0 {
			n, _ = f.f.Write(p[:keep])
		}
		return n, errors.Wrapf(flt.Err, "write %s", f.name)
	}
	return f.f.Write(p)
}

func (f *errorFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return n, err
	}
	switch flt := f.e.inject(Op{Kind: OpRead, Path: f.name, Off: off, Len: int64(n)}); flt.Kind {
	case FaultCrash:
		panic(CrashPoint{Op: "read " + f.name})
	case FaultError:
		return 0, errors.Wrapf(flt.Err, "read %s", f.name)
	case FaultFlip:
		if flt.At >= 0 && flt.At < int64(n) {
			p[flt.At] ^= 1 << (flt.Bit & 7)
		}
	}
	return n, err
}

func (f *errorFile) Sync() error {
	switch flt := f.e.inject(Op{Kind: OpSync, Path: f.name}); flt.Kind {
	case FaultCrash:
		if flt.Keep > 0 {
			_ = f.f.Sync()
		}
		panic(CrashPoint{Op: "sync " + f.name})
	case FaultError:
		f.dropDirty()
		return errors.Wrapf(flt.Err, "fsync %s", f.name)
	}
	return f.f.Sync()
}

func (f *errorFile) Truncate(size int64) error {
	old, err := f.f.Size()
	if err != nil {
		return err
	}
	if err := f.e.fail(Op{Kind: OpTruncate, Path: f.name, Off: old, Len: size}, "truncate"); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *errorFile) Size() (int64, error) { return f.f.Size() }

func (f *errorFile) Close() error { return f.f.Close() }
