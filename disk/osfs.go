package disk

import (
	"io"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/cockroachdb/errors"
)

// This is the only file in disk/ that may touch package os or syscall: it
// is the production implementation of FS. Everything else writes through
// the FS seam so that the simulator can substitute a disk that lies.

// OS returns the FS backed by the operating system's file system. Names are
// used as given (relative to the working directory unless absolute).
func OS() FS { return osFS{} }

type osFS struct{}

// The modes of what keel creates: the data is the users' keyspace, so only
// the owner (the user keel runs as) may read it, as PostgreSQL and etcd
// do with their data directories. The umask can only narrow these. A
// directory or file that already exists keeps its mode: that is the
// operator's choice.
const (
	dirMode  os.FileMode = 0o700
	fileMode os.FileMode = 0o600
)

// mapErr translates OS errors into the seam's sentinel errors, keeping the
// original for the message: ENOSPC (and EDQUOT, which looks the same to a
// user) becomes ErrNoSpace, a missing file ErrNotExist.
func mapErr(err error, op, name string) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return errors.Wrapf(errors.Mark(err, ErrNoSpace), "%s %s", op, name)
	case errors.Is(err, os.ErrNotExist):
		return errors.Wrapf(errors.Mark(err, ErrNotExist), "%s %s", op, name)
	}
	return errors.Wrapf(err, "%s %s", op, name)
}

type osFile struct {
	f    *os.File
	name string
}

func (f *osFile) Write(p []byte) (int, error) {
	n, err := f.f.Write(p)
	return n, mapErr(err, "write", f.name)
}

func (f *osFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	if err == io.EOF {
		return n, err // callers test for io.EOF by identity
	}
	return n, mapErr(err, "read", f.name)
}

func (f *osFile) Close() error { return mapErr(f.f.Close(), "close", f.name) }

// Sync is fdatasync's stronger sibling fsync: size changes must be durable
// too, since the WAL grows its files.
func (f *osFile) Sync() error { return mapErr(f.f.Sync(), "fsync", f.name) }

func (f *osFile) Truncate(size int64) error {
	if err := f.f.Truncate(size); err != nil {
		return mapErr(err, "truncate", f.name)
	}
	// Writes go through O_APPEND or the file offset; keep the offset at
	// the new end so the next Write appends there.
	_, err := f.f.Seek(size, io.SeekStart)
	return mapErr(err, "seek", f.name)
}

func (f *osFile) Size() (int64, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return 0, mapErr(err, "stat", f.name)
	}
	return fi.Size(), nil
}

func (osFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return nil, mapErr(err, "create", name)
	}
	return &osFile{f: f, name: name}, nil
}

func (osFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, mapErr(err, "open", name)
	}
	return &osFile{f: f, name: name}, nil
}

func (osFS) OpenAppend(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, mapErr(err, "open", name)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		_ = f.Close()
		return nil, mapErr(err, "seek", name)
	}
	return &osFile{f: f, name: name}, nil
}

func (osFS) Remove(name string) error { return mapErr(os.Remove(name), "remove", name) }

func (osFS) Rename(oldname, newname string) error {
	return mapErr(os.Rename(oldname, newname), "rename", oldname+" -> "+newname)
}

func (osFS) MkdirAll(dir string) error { return mapErr(os.MkdirAll(dir, dirMode), "mkdir", dir) }

func (osFS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, mapErr(err, "list", dir)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) Stat(name string) (int64, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return 0, mapErr(err, "stat", name)
	}
	return fi.Size(), nil
}

func (osFS) SyncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return mapErr(err, "open dir", dir)
	}
	err = d.Sync()
	cerr := d.Close()
	if err != nil {
		return mapErr(err, "fsync dir", dir)
	}
	return mapErr(cerr, "close dir", dir)
}

type flockCloser struct{ f *os.File }

func (l flockCloser) Close() error {
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	return l.f.Close()
}

func (osFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, mapErr(err, "open lock", name)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, errors.Wrapf(err, "lock %s: is another keel process using this directory?", name)
	}
	return flockCloser{f: f}, nil
}
