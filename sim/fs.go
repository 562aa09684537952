package sim

import (
	"io"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/disk"
)

// ErrIO is the simulated EIO: what a failed write or fsync returns.
var ErrIO = errors.New("input/output error")

// ErrStaleHandle is returned by a file handle used after its process died
// (a crash or restart of the node that opened it).
var ErrStaleHandle = errors.New("stale file handle: the process that opened it is gone")

// CrashPoint is the panic value an FS raises when a scheduled crash point
// is reached in the middle of an operation: the node's runtime recovers it
// and powers the node off, leaving the disk exactly as the operation left it.
type CrashPoint struct{ Op string }

// FileKind groups files so faults can target one kind.
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

// ClassifyFile maps a file name to its kind by pattern: names containing
// "snap" are snapshots; names containing "wal" or ending in ".log" are log
// segments.
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

// inode is a file's contents: data is what reads see (the page cache),
// durable is what is on the platter. dirty marks the sectors of data not
// yet written back.
type inode struct {
	data    []byte
	durable []byte
	dirty   map[int64]struct{}
}

// FS is the simulated disk.FS of one node. Names are paths; directories
// exist once MkdirAll made them (directory creation is durable at once).
// The namespace has two views: live (what the running process sees) and
// durable (what survives a crash); SyncDir copies a directory's entries
// from live to durable.
type FS struct {
	cfg      FSConfig
	rng      *rand.Rand
	trace    func(string)
	dirs     map[string]bool
	live     map[string]*inode
	durable  map[string]*inode
	locks    map[string]bool
	gen      uint64
	ballast  int64
	busy     time.Duration
	crashIn  int64 // >0: crash at the crashIn-th mutating operation from now
	Stats    FSStats
	classify func(string) FileKind
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
	return &FS{
		cfg: cfg, rng: rng, trace: trace,
		dirs:     map[string]bool{".": true, "/": true},
		live:     map[string]*inode{},
		durable:  map[string]*inode{},
		locks:    map[string]bool{},
		classify: ClassifyFile,
	}
}

var _ disk.FS = (*FS)(nil)

// SetFaults replaces the fault probabilities (a scenario turns faults on
// and off over time).
func (fs *FS) SetFaults(f DiskFaults) { fs.cfg.Faults = f }

// SetBallast makes n bytes of the capacity used by someone else: a disk
// filling up (n large) or being cleaned (n small).
func (fs *FS) SetBallast(n int64) { fs.ballast = n }

// CrashAfter arms a crash point: the n-th mutating operation (write,
// truncate, sync, create, rename, remove, syncdir) from now panics with
// CrashPoint after doing a seeded part of its work. 0 disarms.
func (fs *FS) CrashAfter(n int64) { fs.crashIn = n }

// TakeBusy returns the I/O time accumulated since the last call.
func (fs *FS) TakeBusy() time.Duration {
	b := fs.busy
	fs.busy = 0
	return b
}

// Used is the bytes the live files and the ballast occupy.
func (fs *FS) Used() int64 {
	n := fs.ballast
	for _, ino := range fs.live {
		n += int64(len(ino.data))
	}
	return n
}

func (fs *FS) targeted(name string) bool {
	k := fs.cfg.Faults.Kinds
	return k == 0 || k&fs.classify(name) != 0
}

func (fs *FS) chance(name string, p float64) bool {
	return p > 0 && fs.targeted(name) && fs.rng.Float64() < p
}

func (fs *FS) charge(name string, d time.Duration) {
	fs.busy += d
	f := fs.cfg.Faults
	if fs.chance(name, f.SpikeProb) && f.SpikeMax > 0 {
		s := time.Duration(fs.rng.Int64N(int64(f.SpikeMax)) + 1)
		fs.busy += s
		fs.Stats.Spikes++
		fs.trace("disk latency-spike " + path.Base(name) + " " + s.String())
	}
}

// crashPoint counts a mutating operation and reports whether the armed
// crash point is here.
func (fs *FS) crashPoint() bool {
	if fs.crashIn <= 0 {
		return false
	}
	fs.crashIn--
	return fs.crashIn == 0
}

func clean(name string) string { return path.Clean(name) }

func (fs *FS) parentExists(name string) error {
	if d := path.Dir(name); !fs.dirs[d] {
		return errors.Wrapf(disk.ErrNotExist, "directory %s", d)
	}
	return nil
}

// Create implements disk.FS. An existing file is truncated in place (the
// same inode, as O_TRUNC does), so its durable bytes survive a crash only
// until the truncation is synced.
func (fs *FS) Create(name string) (disk.File, error) {
	name = clean(name)
	if err := fs.parentExists(name); err != nil {
		return nil, errors.Wrapf(err, "create %s", name)
	}
	if fs.crashPoint() {
		panic(CrashPoint{Op: "create " + name})
	}
	ino := fs.live[name]
	if ino == nil {
		ino = &inode{dirty: map[int64]struct{}{}}
		fs.live[name] = ino
	} else {
		fs.truncate(ino, 0)
	}
	fs.charge(name, fs.cfg.WriteLatency)
	return &File{fs: fs, ino: ino, name: name, gen: fs.gen, writable: true}, nil
}

// Open implements disk.FS.
func (fs *FS) Open(name string) (disk.File, error) {
	name = clean(name)
	ino := fs.live[name]
	if ino == nil {
		return nil, errors.Wrapf(disk.ErrNotExist, "open %s", name)
	}
	return &File{fs: fs, ino: ino, name: name, gen: fs.gen}, nil
}

// OpenAppend implements disk.FS.
func (fs *FS) OpenAppend(name string) (disk.File, error) {
	name = clean(name)
	ino := fs.live[name]
	if ino == nil {
		return nil, errors.Wrapf(disk.ErrNotExist, "open %s", name)
	}
	return &File{fs: fs, ino: ino, name: name, gen: fs.gen, writable: true}, nil
}

// Remove implements disk.FS. Open handles keep working (unlink semantics).
func (fs *FS) Remove(name string) error {
	name = clean(name)
	if fs.live[name] == nil {
		return errors.Wrapf(disk.ErrNotExist, "remove %s", name)
	}
	if fs.crashPoint() {
		panic(CrashPoint{Op: "remove " + name})
	}
	delete(fs.live, name)
	fs.charge(name, fs.cfg.WriteLatency)
	return nil
}

// Rename implements disk.FS, replacing newname if it exists.
func (fs *FS) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	ino := fs.live[oldname]
	if ino == nil {
		return errors.Wrapf(disk.ErrNotExist, "rename %s", oldname)
	}
	if err := fs.parentExists(newname); err != nil {
		return errors.Wrapf(err, "rename %s to %s", oldname, newname)
	}
	if fs.crashPoint() {
		panic(CrashPoint{Op: "rename " + oldname})
	}
	delete(fs.live, oldname)
	fs.live[newname] = ino
	fs.charge(newname, fs.cfg.WriteLatency)
	return nil
}

// MkdirAll implements disk.FS. Directories are durable at once.
func (fs *FS) MkdirAll(dir string) error {
	dir = clean(dir)
	for d := dir; ; d = path.Dir(d) {
		fs.dirs[d] = true
		if d == "." || d == "/" {
			break
		}
	}
	return nil
}

// List implements disk.FS: files and subdirectories directly in dir, sorted.
func (fs *FS) List(dir string) ([]string, error) {
	dir = clean(dir)
	if !fs.dirs[dir] {
		return nil, errors.Wrapf(disk.ErrNotExist, "list %s", dir)
	}
	var out []string
	for name := range fs.live {
		if path.Dir(name) == dir {
			out = append(out, path.Base(name))
		}
	}
	for d := range fs.dirs {
		if d != dir && path.Dir(d) == dir {
			out = append(out, path.Base(d))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Stat implements disk.FS.
func (fs *FS) Stat(name string) (int64, error) {
	name = clean(name)
	ino := fs.live[name]
	if ino == nil {
		return 0, errors.Wrapf(disk.ErrNotExist, "stat %s", name)
	}
	return int64(len(ino.data)), nil
}

// SyncDir implements disk.FS: the creations, renames and removals in dir
// become durable.
func (fs *FS) SyncDir(dir string) error {
	dir = clean(dir)
	if !fs.dirs[dir] {
		return errors.Wrapf(disk.ErrNotExist, "syncdir %s", dir)
	}
	if fs.crashPoint() {
		panic(CrashPoint{Op: "syncdir " + dir})
	}
	for name := range fs.durable {
		if path.Dir(name) == dir && fs.live[name] == nil {
			delete(fs.durable, name)
		}
	}
	for name, ino := range fs.live {
		if path.Dir(name) == dir {
			fs.durable[name] = ino
		}
	}
	fs.charge(dir, fs.cfg.SyncLatency)
	return nil
}

type lockHandle struct {
	fs   *FS
	name string
	gen  uint64
}

func (l *lockHandle) Close() error {
	if l.gen == l.fs.gen {
		delete(l.fs.locks, l.name)
	}
	return nil
}

// Lock implements disk.FS. Locks die with the process (crash or restart).
func (fs *FS) Lock(name string) (io.Closer, error) {
	name = clean(name)
	if fs.locks[name] {
		return nil, errors.Newf("lock %s: held by another process", name)
	}
	if err := fs.parentExists(name); err != nil {
		return nil, errors.Wrapf(err, "lock %s", name)
	}
	if fs.live[name] == nil {
		fs.live[name] = &inode{dirty: map[int64]struct{}{}}
	}
	fs.locks[name] = true
	return &lockHandle{fs: fs, name: name, gen: fs.gen}, nil
}

// KillProcess models the node's process dying while the machine stays up:
// handles and locks are gone, the page cache (unsynced bytes included)
// stays.
func (fs *FS) KillProcess() {
	fs.gen++
	fs.locks = map[string]bool{}
	fs.crashIn = 0
	fs.busy = 0
}

// Crash models power loss: the live namespace reverts to the durable one,
// and each file's unsynced bytes are dropped, or (with TornProb) partly
// kept: a random subset of dirty sectors, and a size anywhere between the
// durable and the written size at sector granularity, holes reading zero.
func (fs *FS) Crash() {
	fs.KillProcess()
	fs.Stats.Crashes++
	names := make([]string, 0, len(fs.durable))
	for name := range fs.durable {
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[*inode]bool{}
	for _, name := range names {
		ino := fs.durable[name]
		if seen[ino] {
			continue
		}
		seen[ino] = true
		if len(ino.dirty) == 0 && len(ino.data) == len(ino.durable) {
			continue
		}
		if fs.cfg.TornProb > 0 && fs.rng.Float64() < fs.cfg.TornProb {
			fs.tear(name, ino)
			continue
		}
		ino.data = append([]byte(nil), ino.durable...)
		ino.dirty = map[int64]struct{}{}
	}
	fs.live = make(map[string]*inode, len(fs.durable))
	for name, ino := range fs.durable {
		fs.live[name] = ino
	}
}

func (fs *FS) tear(name string, ino *inode) {
	ss := int64(fs.cfg.SectorSize)
	lo, hi := int64(len(ino.durable)), int64(len(ino.data))
	size := lo
	switch {
	case hi > lo:
		// The size metadata reached the disk up to some sector boundary
		// in (lo, hi), or all of hi, or none of it.
		first := (lo/ss + 1) * ss
		n := int64(1)
		if first < hi {
			n += (hi - first + ss - 1) / ss
		}
		switch i := fs.rng.Int64N(n + 1); {
		case i == n:
			size = lo
		default:
			size = first + i*ss
			if size > hi {
				size = hi
			}
		}
	case hi < lo && fs.rng.IntN(2) == 0:
		size = hi
	}
	out := make([]byte, size)
	copy(out, ino.durable)
	sectors := make([]int64, 0, len(ino.dirty))
	for s := range ino.dirty {
		sectors = append(sectors, s)
	}
	sort.Slice(sectors, func(i, j int) bool { return sectors[i] < sectors[j] })
	kept := 0
	for _, s := range sectors {
		if fs.rng.IntN(2) == 0 {
			continue
		}
		a, b := s*ss, (s+1)*ss
		if a >= size {
			continue
		}
		if b > size {
			b = size
		}
		// Bytes of the sector beyond what was written read as zero.
		for i := a; i < b; i++ {
			if i < int64(len(ino.data)) {
				out[i] = ino.data[i]
			} else {
				out[i] = 0
			}
		}
		kept++
	}
	ino.data = out
	ino.durable = append([]byte(nil), out...)
	ino.dirty = map[int64]struct{}{}
	fs.Stats.TornFiles++
	fs.trace("disk torn " + path.Base(name) + " size=" + itoa(size) + " sectors-kept=" + itoa(int64(kept)) + "/" + itoa(int64(len(sectors))))
}

// Rot flips one bit of a durable byte in a random file of the targeted
// kinds (bit rot at rest). It reports whether a file was hit.
func (fs *FS) Rot(kinds FileKind) bool {
	var names []string
	for name, ino := range fs.durable {
		if (kinds == 0 || kinds&fs.classify(name) != 0) && len(ino.durable) > 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return false
	}
	sort.Strings(names)
	name := names[fs.rng.IntN(len(names))]
	ino := fs.durable[name]
	off := fs.rng.IntN(len(ino.durable))
	bit := byte(1) << fs.rng.IntN(8)
	ino.durable[off] ^= bit
	if off < len(ino.data) {
		ino.data[off] ^= bit
	}
	fs.Stats.Rots++
	fs.trace("disk bit-rot " + path.Base(name) + " offset=" + itoa(int64(off)))
	return true
}

func (fs *FS) truncate(ino *inode, size int64) {
	ss := int64(fs.cfg.SectorSize)
	old := int64(len(ino.data))
	if size < old {
		ino.data = ino.data[:size]
		for s := range ino.dirty {
			if s*ss >= size {
				delete(ino.dirty, s)
			}
		}
		if size%ss != 0 {
			ino.dirty[size/ss] = struct{}{}
		}
	} else if size > old {
		ino.data = append(ino.data, make([]byte, size-old)...)
		for s := old / ss; s*ss < size; s++ {
			ino.dirty[s] = struct{}{}
		}
	}
}

func (fs *FS) sync(name string, ino *inode) error {
	fs.Stats.Syncs++
	if fs.crashPoint() {
		// Power fails during the fsync: a seeded part of it made it.
		if fs.rng.IntN(2) == 0 {
			fs.writeBack(ino)
		}
		panic(CrashPoint{Op: "sync " + name})
	}
	fs.charge(name, fs.cfg.SyncLatency)
	if fs.chance(name, fs.cfg.Faults.SyncErrProb) {
		// fsyncgate: the dirty pages are marked clean without reaching the
		// disk, and (as after eviction) reads see the old bytes again.
		ss := int64(fs.cfg.SectorSize)
		for s := range ino.dirty {
			for i := s * ss; i < (s+1)*ss && i < int64(len(ino.data)); i++ {
				if i < int64(len(ino.durable)) {
					ino.data[i] = ino.durable[i]
				} else {
					ino.data[i] = 0
				}
			}
		}
		ino.dirty = map[int64]struct{}{}
		fs.Stats.SyncErrs++
		fs.trace("disk fsync-error " + path.Base(name))
		return errors.Wrapf(ErrIO, "fsync %s", name)
	}
	fs.writeBack(ino)
	return nil
}

func (fs *FS) writeBack(ino *inode) {
	ss := int64(fs.cfg.SectorSize)
	size := int64(len(ino.data))
	if int64(len(ino.durable)) < size {
		ino.durable = append(ino.durable, make([]byte, size-int64(len(ino.durable)))...)
	} else {
		ino.durable = ino.durable[:size]
	}
	for s := range ino.dirty {
		a, b := s*ss, (s+1)*ss
		if b > size {
			b = size
		}
		if a < b {
			copy(ino.durable[a:b], ino.data[a:b])
		}
	}
	ino.dirty = map[int64]struct{}{}
}

// File is an open file of the simulated disk.
type File struct {
	fs       *FS
	ino      *inode
	name     string
	gen      uint64
	writable bool
	closed   bool
}

var _ disk.File = (*File)(nil)

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
	fs := f.fs
	fs.Stats.Writes++
	if fs.crashPoint() {
		// Power fails during the write: a seeded prefix reached the cache.
		n := fs.rng.IntN(len(p) + 1)
		fs.appendBytes(f.ino, p[:n])
		panic(CrashPoint{Op: "write " + f.name})
	}
	fs.charge(f.name, fs.cfg.WriteLatency+time.Duration(fs.cfg.WriteByteNs*int64(len(p))))
	if fs.chance(f.name, fs.cfg.Faults.WriteErrProb) {
		fs.Stats.WriteErrs++
		fs.trace("disk write-error " + path.Base(f.name))
		return 0, errors.Wrapf(ErrIO, "write %s", f.name)
	}
	if fs.cfg.Capacity > 0 && fs.Used()+int64(len(p)) > fs.cfg.Capacity {
		fs.Stats.NoSpace++
		fs.trace("disk no-space " + path.Base(f.name))
		return 0, errors.Wrapf(disk.ErrNoSpace, "write %s", f.name)
	}
	fs.appendBytes(f.ino, p)
	return len(p), nil
}

func (fs *FS) appendBytes(ino *inode, p []byte) {
	if len(p) == 0 {
		return
	}
	ss := int64(fs.cfg.SectorSize)
	off := int64(len(ino.data))
	ino.data = append(ino.data, p...)
	for s := off / ss; s*ss < off+int64(len(p)); s++ {
		ino.dirty[s] = struct{}{}
	}
}

// ReadAt implements disk.File. With ReadFlipProb the returned bytes carry
// one flipped bit.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check("read"); err != nil {
		return 0, err
	}
	fs := f.fs
	fs.Stats.Reads++
	fs.charge(f.name, fs.cfg.ReadLatency)
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n > 0 && fs.chance(f.name, fs.cfg.Faults.ReadFlipProb) {
		i := fs.rng.IntN(n)
		p[i] ^= byte(1) << fs.rng.IntN(8)
		fs.Stats.ReadFlips++
		fs.trace("disk read-flip " + path.Base(f.name) + " offset=" + itoa(off+int64(i)))
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Close implements disk.File.
func (f *File) Close() error {
	if f.closed {
		return errors.Newf("close %s: file already closed", f.name)
	}
	f.closed = true
	return nil
}

// Sync implements disk.File.
func (f *File) Sync() error {
	if err := f.check("sync"); err != nil {
		return err
	}
	return f.fs.sync(f.name, f.ino)
}

// Truncate implements disk.File.
func (f *File) Truncate(size int64) error {
	if err := f.check("truncate"); err != nil {
		return err
	}
	if size < 0 {
		return errors.Newf("truncate %s: negative size %d", f.name, size)
	}
	fs := f.fs
	if fs.crashPoint() {
		panic(CrashPoint{Op: "truncate " + f.name})
	}
	if fs.cfg.Capacity > 0 && size > int64(len(f.ino.data)) && fs.Used()+size-int64(len(f.ino.data)) > fs.cfg.Capacity {
		fs.Stats.NoSpace++
		return errors.Wrapf(disk.ErrNoSpace, "truncate %s", f.name)
	}
	fs.truncate(f.ino, size)
	fs.charge(f.name, fs.cfg.WriteLatency)
	return nil
}

// Size implements disk.File.
func (f *File) Size() (int64, error) {
	if err := f.check("size"); err != nil {
		return 0, err
	}
	return int64(len(f.ino.data)), nil
}
