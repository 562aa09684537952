package disk

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// checkModes walks root and fails on any directory not 0700 or file not
// 0600; it returns how many of each it saw.
func checkModes(t *testing.T, root string) (dirs, files int) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = os.ModeDir | 0o700
			dirs++
		} else {
			files++
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs, files
}

// The OS file system creates what keel keeps — the data directory (and
// any missing parent), the WAL directory and segments, the snapshot
// directory, snapshots and their temp files, the LOCK file — readable by
// the owner only: directories 0700, files 0600.
func TestOSFSModes(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "parent", "data")
	osfs := OS()
	if err := osfs.MkdirAll(root); err != nil {
		t.Fatal(err)
	}
	lock, err := osfs.Lock(filepath.Join(root, "LOCK"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	w, _, err := OpenWAL(WALOptions{FS: osfs, Dir: root, SegmentBytes: 200}, func(Record) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ { // past SegmentBytes: more segments
		if err := w.Append(mkRecs(1+10*i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	sw, err := CreateSnapshot(osfs, root, SnapshotMeta{Index: 9, Term: 1, Voters: []uint64{1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Add(SnapEntry{Type: 1, Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	// The temp file, before it is renamed into place.
	if d, f := checkModes(t, root); f != len(w.Segments())+2 || d != 3 {
		t.Fatalf("saw %d dirs, %d files (want 3 dirs; %d segments, LOCK and the snapshot temp file)", d, f, len(w.Segments()))
	}
	if _, _, err := sw.Commit(); err != nil {
		t.Fatal(err)
	}
	// Reopening (OpenAppend on the active segment) and a file created
	// over an existing name keep the modes.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, _, err = OpenWAL(WALOptions{FS: osfs, Dir: root, SegmentBytes: 200}, func(Record) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Append(mkRecs(41, 1)); err != nil {
		t.Fatal(err)
	}
	f, err := osfs.Create(filepath.Join(root, "snap", "recv.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if d, f := checkModes(t, root); f < 5 || d != 3 {
		t.Fatalf("saw %d dirs, %d files", d, f)
	}
	fi, err := os.Stat(filepath.Join(base, "parent"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != os.ModeDir|0o700 {
		t.Errorf("a parent MkdirAll created: mode %v, want drwx------", fi.Mode())
	}
}
