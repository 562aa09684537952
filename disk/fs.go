package disk

import (
	"io"

	"github.com/cockroachdb/errors"
)

// File is an open file. Files opened for writing are written sequentially:
// Write appends at the current end. Nothing written is durable until Sync
// returns nil; after Sync fails the unsynced bytes must be assumed lost and
// the file must not be synced again in the hope of saving them (fsyncgate).
type File interface {
	io.Writer
	io.ReaderAt
	io.Closer
	// Sync makes every byte written so far durable.
	Sync() error
	// Truncate cuts the file to size bytes; following writes append there.
	Truncate(size int64) error
	// Size is the current length, durable or not.
	Size() (int64, error)
}

// FS is the file system seam. Names are slash-separated paths. Creating,
// renaming and removing a file are durable only after SyncDir of its
// directory.
type FS interface {
	// Create creates name, truncating it if it exists, open for writing.
	Create(name string) (File, error)
	// Open opens an existing file for reading.
	Open(name string) (File, error)
	// OpenAppend opens an existing file for reading and appending.
	OpenAppend(name string) (File, error)
	Remove(name string) error
	Rename(oldname, newname string) error
	MkdirAll(dir string) error
	// List returns the names (not paths) in dir, sorted.
	List(dir string) ([]string, error)
	// Stat returns the size of name, or an error satisfying
	// errors.Is(err, ErrNotExist).
	Stat(name string) (int64, error)
	// SyncDir makes creations, renames and removals in dir durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on name (creating it), so two processes
	// never share a data directory. Close releases it.
	Lock(name string) (io.Closer, error)
}

// ErrNoSpace is what an FS returns (wrapped, so test with errors.Is) when
// the disk is full. The OS implementation maps ENOSPC to it.
var ErrNoSpace = errors.New("no space left on device")

// ErrNotExist is returned (wrapped) for a missing file.
var ErrNotExist = errors.New("file does not exist")

// ReadFile returns the contents of name.
func ReadFile(fs FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	n, err := f.ReadAt(b, 0)
	if n == len(b) {
		return b, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return b[:n], nil // the file shrank under us; use what is there
	}
	return nil, errors.Wrapf(err, "read %s", name)
}

// WriteFile creates (or truncates) name, writes data and syncs it. Like
// any creation, the name itself is durable only after SyncDir.
func WriteFile(fs FS, name string, data []byte) error {
	f, err := fs.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// RemoveAll deletes dir and everything under it (nothing if it does
// not exist). Like any removal, it is durable only after SyncDir of dir's
// parent.
func RemoveAll(fs FS, dir string) error {
	names, err := fs.List(dir)
	if errors.Is(err, ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, name := range names {
		p := dir + "/" + name
		if err := fs.Remove(p); err != nil {
			if rerr := RemoveAll(fs, p); rerr != nil {
				return rerr
			}
		}
	}
	if err := fs.Remove(dir); err != nil && !errors.Is(err, ErrNotExist) {
		return err
	}
	return nil
}
