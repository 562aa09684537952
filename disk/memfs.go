package disk

import (
	"io"
	"math/rand/v2"
	"path"
	"sort"

	"github.com/cockroachdb/errors"
)

// MemFS is an FS held in memory, for tests and the simulator. Names are
// slash-separated paths, cleaned; "." and "/" always exist, and a
// directory exists once MkdirAll made it.
//
// A crashable MemFS (NewCrashableMemFS) models the page cache, so that a
// test can ask what a power loss at this moment would leave (CrashClone):
// each file has the bytes reads see and the bytes on the platter, and
// remembers which sectors differ. Sync writes a file's dirty sectors back;
// creations, renames and removals reach the durable namespace only with
// SyncDir of their directory (directories themselves are durable at once);
// Create over an existing file truncates the same inode, as O_TRUNC does.
// After a failed fsync (see ErrorFS) the dirty pages are dropped: reads see
// the old bytes again and a retried Sync "succeeds" with the data gone
// (fsyncgate).
//
// A plain MemFS (NewMemFS) keeps one copy: everything is durable at once
// and it cannot CrashClone. Prefer it when a test never crashes.
//
// A MemFS, like every FS, is not safe for concurrent use.
type MemFS struct {
	crashable  bool
	sectorSize int64
	dirs       map[string]bool
	live       map[string]*memInode // what the running process sees
	durable    map[string]*memInode // what survives a power loss (crashable only)
	locks      map[string]*memLock
}

var _ FS = (*MemFS)(nil)

// memInode is one file's contents: data is what reads see (the page
// cache), durable what is on the platter, dirty the sectors of data not
// yet written back. A plain MemFS uses data only.
type memInode struct {
	data    []byte
	durable []byte
	dirty   map[int64]struct{}
}

// NewMemFS returns an empty in-memory FS whose every write is durable at
// once. It cannot CrashClone.
func NewMemFS() *MemFS { return newMemFS(false, 0) }

// NewCrashableMemFS returns an empty in-memory FS that models the page
// cache at sectorSize granularity (0 means 4096): unsynced bytes and
// unsynced directory changes are what CrashClone may lose or tear.
func NewCrashableMemFS(sectorSize int) *MemFS { return newMemFS(true, sectorSize) }

func newMemFS(crashable bool, sectorSize int) *MemFS {
	if sectorSize <= 0 {
		sectorSize = 4096
	}
	return &MemFS{
		crashable:  crashable,
		sectorSize: int64(sectorSize),
		dirs:       map[string]bool{".": true, "/": true},
		live:       map[string]*memInode{},
		durable:    map[string]*memInode{},
		locks:      map[string]*memLock{},
	}
}

func (fs *MemFS) newInode() *memInode {
	if !fs.crashable {
		return &memInode{}
	}
	return &memInode{dirty: map[int64]struct{}{}}
}

func (fs *MemFS) parentExists(name string) error {
	if d := path.Dir(name); !fs.dirs[d] {
		return errors.Wrapf(ErrNotExist, "directory %s", d)
	}
	return nil
}

// IsDir reports whether dir is a directory.
func (fs *MemFS) IsDir(dir string) bool { return fs.dirs[path.Clean(dir)] }

// Used is the bytes the files of the live namespace hold.
func (fs *MemFS) Used() int64 {
	var n int64
	for _, ino := range fs.live {
		n += int64(len(ino.data))
	}
	return n
}

// Create implements FS. An existing file is truncated in place (the same
// inode, as O_TRUNC does), so its durable bytes survive a crash until the
// truncation is synced.
func (fs *MemFS) Create(name string) (File, error) {
	name = path.Clean(name)
	if err := fs.parentExists(name); err != nil {
		return nil, errors.Wrapf(err, "create %s", name)
	}
	ino := fs.live[name]
	if ino == nil {
		ino = fs.newInode()
		fs.live[name] = ino
	} else {
		fs.truncate(ino, 0)
	}
	return &memFile{fs: fs, ino: ino, name: name, writable: true}, nil
}

// Open implements FS.
func (fs *MemFS) Open(name string) (File, error) { return fs.open(name, false) }

// OpenAppend implements FS.
func (fs *MemFS) OpenAppend(name string) (File, error) { return fs.open(name, true) }

func (fs *MemFS) open(name string, writable bool) (File, error) {
	name = path.Clean(name)
	ino := fs.live[name]
	if ino == nil {
		return nil, errors.Wrapf(ErrNotExist, "open %s", name)
	}
	return &memFile{fs: fs, ino: ino, name: name, writable: writable}, nil
}

// Remove implements FS. Open handles keep working (unlink semantics).
func (fs *MemFS) Remove(name string) error {
	name = path.Clean(name)
	if fs.live[name] == nil {
		return errors.Wrapf(ErrNotExist, "remove %s", name)
	}
	delete(fs.live, name)
	return nil
}

// Rename implements FS, replacing newname if it exists.
func (fs *MemFS) Rename(oldname, newname string) error {
	oldname, newname = path.Clean(oldname), path.Clean(newname)
	ino := fs.live[oldname]
	if ino == nil {
		return errors.Wrapf(ErrNotExist, "rename %s", oldname)
	}
	if err := fs.parentExists(newname); err != nil {
		return errors.Wrapf(err, "rename %s to %s", oldname, newname)
	}
	delete(fs.live, oldname)
	fs.live[newname] = ino
	return nil
}

// MkdirAll implements FS. Directories are durable at once.
func (fs *MemFS) MkdirAll(dir string) error {
	for d := path.Clean(dir); ; d = path.Dir(d) {
		fs.dirs[d] = true
		if d == "." || d == "/" {
			return nil
		}
	}
}

// List implements FS: the files and subdirectories directly in dir, sorted.
func (fs *MemFS) List(dir string) ([]string, error) {
	dir = path.Clean(dir)
	if !fs.dirs[dir] {
		return nil, errors.Wrapf(ErrNotExist, "list %s", dir)
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

// Stat implements FS (files only).
func (fs *MemFS) Stat(name string) (int64, error) {
	name = path.Clean(name)
	ino := fs.live[name]
	if ino == nil {
		return 0, errors.Wrapf(ErrNotExist, "stat %s", name)
	}
	return int64(len(ino.data)), nil
}

// SyncDir implements FS: the creations, renames and removals in dir
// become durable.
func (fs *MemFS) SyncDir(dir string) error {
	dir = path.Clean(dir)
	if !fs.dirs[dir] {
		return errors.Wrapf(ErrNotExist, "syncdir %s", dir)
	}
	if !fs.crashable {
		return nil
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
	return nil
}

// memLock is one holder of a lock; closing a holder that has since lost
// the lock (a crash clone, or a second Close) releases nothing.
type memLock struct {
	fs   *MemFS
	name string
}

func (l *memLock) Close() error {
	if l.fs.locks[l.name] == l {
		delete(l.fs.locks, l.name)
	}
	return nil
}

// Lock implements FS. The lock file is created like any other (durable
// only after SyncDir); locks do not survive CrashClone.
func (fs *MemFS) Lock(name string) (io.Closer, error) {
	name = path.Clean(name)
	if fs.locks[name] != nil {
		return nil, errors.Newf("lock %s: held by another process", name)
	}
	if err := fs.parentExists(name); err != nil {
		return nil, errors.Wrapf(err, "lock %s", name)
	}
	if fs.live[name] == nil {
		fs.live[name] = fs.newInode()
	}
	l := &memLock{fs: fs, name: name}
	fs.locks[name] = l
	return l, nil
}

func (fs *MemFS) appendBytes(ino *memInode, p []byte) {
	if len(p) == 0 {
		return
	}
	off := int64(len(ino.data))
	ino.data = append(ino.data, p...)
	if !fs.crashable {
		return
	}
	ss := fs.sectorSize
	for s := off / ss; s*ss < off+int64(len(p)); s++ {
		ino.dirty[s] = struct{}{}
	}
}

func (fs *MemFS) truncate(ino *memInode, size int64) {
	old := int64(len(ino.data))
	if !fs.crashable {
		if size < old {
			ino.data = ino.data[:size]
		} else {
			ino.data = append(ino.data, make([]byte, size-old)...)
		}
		return
	}
	ss := fs.sectorSize
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

// writeBack makes a file's size and dirty sectors durable.
func (fs *MemFS) writeBack(ino *memInode) {
	if !fs.crashable {
		return
	}
	ss := fs.sectorSize
	size := int64(len(ino.data))
	if int64(len(ino.durable)) < size {
		ino.durable = append(ino.durable, make([]byte, size-int64(len(ino.durable)))...)
	} else {
		ino.durable = ino.durable[:size]
	}
	for s := range ino.dirty {
		a, b := s*ss, min((s+1)*ss, size)
		if a < b {
			copy(ino.durable[a:b], ino.data[a:b])
		}
	}
	ino.dirty = map[int64]struct{}{}
}

// dropDirty is what a failed fsync does to a file (fsyncgate): the dirty
// pages are marked clean without reaching the disk and, as after their
// eviction, reads see the old bytes (or zeros past the durable end) again.
func (fs *MemFS) dropDirty(ino *memInode) {
	if !fs.crashable {
		return
	}
	ss := fs.sectorSize
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
}

// CrashCloneCfg says how CrashClone treats unsynced data. The zero value
// keeps exactly what was synced.
type CrashCloneCfg struct {
	// TornProb is the chance that a file with unsynced data keeps part of
	// it instead of none: a random subset of its dirty sectors (in any
	// order, not only a prefix) and a size anywhere between the durable
	// and the written size at sector granularity, holes reading zero.
	TornProb float64
	// Rand drives the tearing; it must be set when TornProb > 0.
	Rand *rand.Rand
	// FileRand, when set, drives each file's tearing instead of Rand
	// (whether it tears, its size, which sectors survive): a stream per
	// file, so one file's draws do not depend on how many the files
	// before it in name order made.
	FileRand func(name string) *rand.Rand
	// OnTorn, if set, hears of each torn file, in name order: the size it
	// was left with and how many of its dirty sectors survived.
	OnTorn func(name string, size int64, sectorsKept, sectorsDirty int)
}

// CrashClone returns a new MemFS holding what a power loss at this moment
// would leave: the durable namespace, each file's synced bytes and, with
// cfg.TornProb, part of its unsynced ones. The clone shares nothing with
// fs, holds no locks, and fs is unchanged (open handles keep writing to
// fs, never to the clone). It panics on a MemFS made by NewMemFS.
func (fs *MemFS) CrashClone(cfg CrashCloneCfg) *MemFS {
	if !fs.crashable {
		panic(errors.AssertionFailedf("disk: CrashClone of a MemFS that is not crashable (use NewCrashableMemFS)"))
	}
	c := newMemFS(true, int(fs.sectorSize))
	for d := range fs.dirs {
		c.dirs[d] = true
	}
	names := make([]string, 0, len(fs.durable))
	for name := range fs.durable {
		names = append(names, name)
	}
	sort.Strings(names)
	// Two names may share an inode (a rename whose old name's removal is
	// not yet durable): they share it in the clone too.
	clones := map[*memInode]*memInode{}
	for _, name := range names {
		ino := fs.durable[name]
		n := clones[ino]
		if n == nil {
			kept := ino.durable
			if (len(ino.dirty) != 0 || len(ino.data) != len(ino.durable)) && cfg.TornProb > 0 {
				rng := cfg.Rand
				if cfg.FileRand != nil {
					rng = cfg.FileRand(name)
				}
				if rng.Float64() < cfg.TornProb {
					kept = fs.tear(name, ino, rng, cfg.OnTorn)
				}
			}
			n = &memInode{
				data:    append([]byte(nil), kept...),
				durable: append([]byte(nil), kept...),
				dirty:   map[int64]struct{}{},
			}
			clones[ino] = n
		}
		c.durable[name] = n
		c.live[name] = n
	}
	return c
}

// tear returns the bytes a torn file is left with.
func (fs *MemFS) tear(name string, ino *memInode, rng *rand.Rand, onTorn func(string, int64, int, int)) []byte {
	ss := fs.sectorSize
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
		if i := rng.Int64N(n + 1); i != n {
			size = min(first+i*ss, hi)
		}
	case hi < lo && rng.IntN(2) == 0:
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
		if rng.IntN(2) == 0 {
			continue
		}
		a, b := s*ss, min((s+1)*ss, size)
		if a >= size {
			continue
		}
		// Bytes of the sector beyond what was written read as zero.
		for i := a; i < b; i++ {
			if i < hi {
				out[i] = ino.data[i]
			} else {
				out[i] = 0
			}
		}
		kept++
	}
	if onTorn != nil {
		onTorn(name, size, kept, len(sectors))
	}
	return out
}

// Rot flips one bit of the bytes at rest of a random file of the given
// kinds (0: any), as bit rot on the platter does: reads see it, and so
// does a crash clone. It reports the file and offset, or ok false when no
// such file has a byte on disk.
func (fs *MemFS) Rot(rng *rand.Rand, kinds FileKind) (name string, offset int64, ok bool) {
	files := fs.durable
	if !fs.crashable {
		files = fs.live
	}
	var names []string
	for name, ino := range files {
		if (kinds == 0 || kinds&ClassifyFile(name) != 0) && len(ino.atRest(fs)) > 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "", 0, false
	}
	sort.Strings(names)
	name = names[rng.IntN(len(names))]
	ino := files[name]
	off := rng.IntN(len(ino.atRest(fs)))
	bit := byte(1) << rng.IntN(8)
	if fs.crashable {
		ino.durable[off] ^= bit
	}
	if off < len(ino.data) {
		ino.data[off] ^= bit
	}
	return name, int64(off), true
}

// atRest is what is on the platter.
func (ino *memInode) atRest(fs *MemFS) []byte {
	if fs.crashable {
		return ino.durable
	}
	return ino.data
}

// memFile is an open file of a MemFS.
type memFile struct {
	fs       *MemFS
	ino      *memInode
	name     string
	writable bool
	closed   bool
}

var _ File = (*memFile)(nil)

func (f *memFile) check(op string) error {
	if f.closed {
		return errors.Newf("%s %s: file already closed", op, f.name)
	}
	if op != "read" && op != "size" && !f.writable {
		return errors.Newf("%s %s: file opened read-only", op, f.name)
	}
	return nil
}

// Write implements File: it appends at the end of the file.
func (f *memFile) Write(p []byte) (int, error) {
	if err := f.check("write"); err != nil {
		return 0, err
	}
	f.fs.appendBytes(f.ino, p)
	return len(p), nil
}

// ReadAt implements File.
func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, errors.Newf("read %s: negative offset %d", f.name, off)
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Close implements File.
func (f *memFile) Close() error {
	if f.closed {
		return errors.Newf("close %s: file already closed", f.name)
	}
	f.closed = true
	return nil
}

// Sync implements File.
func (f *memFile) Sync() error {
	if err := f.check("sync"); err != nil {
		return err
	}
	f.fs.writeBack(f.ino)
	return nil
}

// dropDirty implements dirtyDropper for ErrorFS's failed fsync.
func (f *memFile) dropDirty() { f.fs.dropDirty(f.ino) }

// Truncate implements File.
func (f *memFile) Truncate(size int64) error {
	if err := f.check("truncate"); err != nil {
		return err
	}
	if size < 0 {
		return errors.Newf("truncate %s: negative size %d", f.name, size)
	}
	f.fs.truncate(f.ino, size)
	return nil
}

// Size implements File.
func (f *memFile) Size() (int64, error) {
	if err := f.check("size"); err != nil {
		return 0, err
	}
	return int64(len(f.ino.data)), nil
}
