package cluster

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/disk"
)

// faultFS wraps the OS FS for tests: it can run out of space, fail fsync,
// and remembers how much of each file was fsynced so that crashCopy can
// build the directory a power loss would leave (unsynced bytes gone).
type faultFS struct {
	disk.FS
	spaceLeft int64 // bytes writes may still add; <0 = unlimited
	failSync  bool
	synced    map[string]int64
}

func newFaultFS() *faultFS {
	return &faultFS{FS: disk.OS(), spaceLeft: -1, synced: map[string]int64{}}
}

type faultFile struct {
	disk.File
	fs   *faultFS
	name string
}

func (fs *faultFS) wrap(f disk.File, name string, err error) (disk.File, error) {
	if err != nil {
		return nil, err
	}
	return &faultFile{File: f, fs: fs, name: name}, nil
}

func (fs *faultFS) Create(name string) (disk.File, error) {
	f, err := fs.FS.Create(name)
	fs.synced[name] = 0
	return fs.wrap(f, name, err)
}

func (fs *faultFS) OpenAppend(name string) (disk.File, error) {
	f, err := fs.FS.OpenAppend(name)
	if _, ok := fs.synced[name]; !ok && err == nil {
		n, _ := f.Size()
		fs.synced[name] = n
	}
	return fs.wrap(f, name, err)
}

func (fs *faultFS) Rename(o, n string) error {
	if err := fs.FS.Rename(o, n); err != nil {
		return err
	}
	fs.synced[n] = fs.synced[o]
	delete(fs.synced, o)
	return nil
}

func (f *faultFile) Write(p []byte) (int, error) {
	if f.fs.spaceLeft >= 0 && int64(len(p)) > f.fs.spaceLeft {
		n, _ := f.File.Write(p[:f.fs.spaceLeft])
		f.fs.spaceLeft = 0
		return n, errors.Mark(errors.Wrap(syscall.ENOSPC, "write "+f.name), disk.ErrNoSpace)
	}
	if f.fs.spaceLeft >= 0 {
		f.fs.spaceLeft -= int64(len(p))
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	if f.fs.failSync {
		return errors.Newf("fsync %s: input/output error", f.name)
	}
	if err := f.File.Sync(); err != nil {
		return err
	}
	f.fs.synced[f.name], _ = f.File.Size()
	return nil
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.File.Truncate(size); err != nil {
		return err
	}
	if f.fs.synced[f.name] > size {
		f.fs.synced[f.name] = size
	}
	return nil
}

// crashCopy copies dir to a new directory as a power loss would leave it:
// each file cut to its fsynced length (files the wrapper never saw are
// copied whole). The lock file is left out.
func (fs *faultFS) crashCopy(t testing.TB, dir string) string {
	return fs.copyDir(t, dir, "crash", func(b []byte, synced int64) []byte { return b[:synced] })
}

// copyDir copies dir, lock file left out, passing the bytes of each file
// that has unsynced data (and its synced length) through unsynced.
func (fs *faultFS) copyDir(t testing.TB, dir, name string, unsynced func(b []byte, synced int64) []byte) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if fi.Name() == lockFileName {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if n, ok := fs.synced[p]; ok && n < int64(len(b)) {
			b = unsynced(b, n)
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
