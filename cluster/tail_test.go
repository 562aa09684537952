package cluster

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/disk"
)

// readTree maps every file under root (relative path) to its bytes.
func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A torn log tail, with RefuseTruncatedTail (aof-load-truncated no) and
// without: refused with the file, offset and bytes, every file byte for
// byte as it was (the torn segment, a leftover snapshot temp file, a
// corrupt snapshot that is not set aside); then opened without it, the
// same tail is cut and reported, the rest of recovery happens, and the
// state is the one before the crash.
func TestRefuseTruncatedTail(t *testing.T) {
	for _, tear := range []string{"zeros", "cut"} {
		t.Run(tear, func(t *testing.T) {
			dir := t.TempDir()
			r := openT(t, disk.OS(), dir)
			now := t0
			workload(t, r, 1, 200, &now)
			do(r, now, "SAVE")
			workload(t, r, 2, 200, &now)
			do(r, now, "SAVE")
			workload(t, r, 3, 200, &now)
			want := dump(r, now)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			segs, _ := os.ReadDir(filepath.Join(dir, "wal"))
			seg := filepath.Join(dir, "wal", segs[len(segs)-1].Name())
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			var at, n int64
			switch tear {
			case "zeros": // the file grew but the data never reached the disk
				at, n = int64(len(b)), 300
				b = append(b, make([]byte, n)...)
			case "cut": // the last record (Close's HardState) written in part
				b = b[:len(b)-7]
			}
			if err := os.WriteFile(seg, b, 0o600); err != nil {
				t.Fatal(err)
			}
			snaps, _, _ := disk.ListSnapshots(disk.OS(), dir)
			if len(snaps) != 2 {
				t.Fatalf("snapshots %v", snaps)
			}
			sb, _ := os.ReadFile(snaps[0])
			sb[len(sb)/2] ^= 0x20
			if err := os.WriteFile(snaps[0], sb, 0o600); err != nil {
				t.Fatal(err)
			}
			tmp := filepath.Join(dir, "snap", "00000000000fffff.snap.tmp")
			if err := os.WriteFile(tmp, []byte("half a snapshot"), 0o600); err != nil {
				t.Fatal(err)
			}
			before := readTree(t, dir)

			_, err = Open(Options{FS: disk.OS(), Dir: dir, AppendOnly: true, RefuseTruncatedTail: true})
			if err == nil {
				t.Fatal("opened a log with a torn tail under RefuseTruncatedTail")
			}
			if !errors.Is(err, disk.ErrTornTail) {
				t.Fatalf("want an error marked disk.ErrTornTail, got %v", err)
			}
			if tear == "cut" {
				// The cut record started somewhere in the last bytes.
				var off, cut int64
				if _, serr := fmt.Sscanf(err.Error()[strings.Index(err.Error(), " at offset "):], " at offset %d, %d bytes", &off, &cut); serr != nil {
					t.Fatalf("%v: %v", serr, err)
				}
				if off+cut != int64(len(b)) || cut < 1 || cut > 100 {
					t.Fatalf("offset %d + %d bytes != file size %d", off, cut, len(b))
				}
				at, n = off, cut
			}
			wantMsg := fmt.Sprintf("cluster: refusing to start: the log ends in a torn tail: file %s at offset %d, %d bytes would be cut "+
				"(aof-load-truncated no; start with aof-load-truncated yes to cut them)", seg, at, n)
			if err.Error() != wantMsg {
				t.Fatalf("message\n%s\nwant\n%s", err, wantMsg)
			}
			after := readTree(t, dir)
			if len(after) != len(before) {
				t.Fatalf("%d files before the refusal, %d after", len(before), len(after))
			}
			for name, content := range before {
				if after[name] != content {
					t.Fatalf("%s changed by the refusal (%d bytes, then %d)", name, len(content), len(after[name]))
				}
			}

			r = openT(t, disk.OS(), dir)
			defer r.Close()
			rs := r.Recovery()
			if rs.TruncatedSegment != seg || rs.TruncatedAt != at || rs.TruncatedBytes != n {
				t.Fatalf("recovery cut %s at %d, %d bytes; want %s at %d, %d", rs.TruncatedSegment, rs.TruncatedAt, rs.TruncatedBytes, seg, at, n)
			}
			if got, want := rs.TailCut(), fmt.Sprintf("cut a torn log tail: file %s at offset %d, %d bytes", seg, at, n); got != want {
				t.Fatalf("TailCut %q, want %q", got, want)
			}
			if rs.Snapshot != snaps[1] || len(rs.CorruptSnapshots) != 1 {
				t.Fatalf("recovery %+v", rs)
			}
			if got := dump(r, now); got != want {
				t.Fatalf("recovered state differs: %s", diffLines(want, got))
			}
			if _, err := os.Stat(tmp); !os.IsNotExist(err) {
				t.Fatalf("leftover temp file: %v", err)
			}
			if _, err := os.Stat(snaps[0] + ".corrupt"); err != nil {
				t.Fatalf("corrupt snapshot not set aside: %v", err)
			}
			if fi, _ := os.Stat(seg); fi.Size() < at {
				t.Fatalf("segment %d bytes after the cut at %d", fi.Size(), at)
			}
		})
	}
}

// Without a torn tail RefuseTruncatedTail changes nothing, and a log
// that was cleanly closed reports no cut.
func TestRefuseTruncatedTailCleanLog(t *testing.T) {
	dir := t.TempDir()
	refuse := func(o *Options) { o.RefuseTruncatedTail = true }
	r := openT(t, disk.OS(), dir, refuse)
	now := t0
	workload(t, r, 1, 300, &now)
	want := dump(r, now)
	_ = r.Close()
	r = openT(t, disk.OS(), dir, refuse)
	defer r.Close()
	if rs := r.Recovery(); rs.TruncatedBytes != 0 || rs.TailCut() != "" {
		t.Fatalf("recovery %+v, TailCut %q", rs, rs.TailCut())
	}
	if got := dump(r, now); got != want {
		t.Fatalf("recovered state differs: %s", diffLines(want, got))
	}
}

// Everything Open, the log and snapshots create in a new data directory
// on the OS file system is the owner's alone: directories 0700, files
// 0600.
func TestDataDirModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keel-data")
	r := openT(t, disk.OS(), dir, func(o *Options) { o.SegmentBytes = 4 << 10 })
	now := t0
	workload(t, r, 1, 300, &now)
	if got := do(r, now, "SAVE"); got != "+OK" {
		t.Fatal(got)
	}
	do(r, now, "BGSAVE")
	if j := r.PendingJob(); j != nil {
		r.JobDone(j, j.Run())
	}
	_ = r.Close()
	r = openT(t, disk.OS(), dir)
	defer r.Close()
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
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
	if files < 4 { // LOCK, segments, snapshots
		t.Fatalf("only %d files in the data directory", files)
	}
}
