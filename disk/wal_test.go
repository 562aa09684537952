package disk

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"
)

func mkRecs(from, n int) []Record {
	var out []Record
	for i := from; i < from+n; i++ {
		out = append(out, Record{Type: RecEntry, Index: uint64(i), Term: 1, Payload: []byte(fmt.Sprintf("payload-%d-%s", i, strings.Repeat("x", i%7)))})
	}
	return out
}

func openCollect(t *testing.T, fs FS, dir string, seg int64) (*WAL, []Record, ScanResult, error) {
	t.Helper()
	var got []Record
	w, res, err := OpenWAL(WALOptions{FS: fs, Dir: dir, SegmentBytes: seg}, func(r Record) error {
		got = append(got, r)
		return nil
	})
	return w, got, res, err
}

func sameRecs(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Type != w.Type || g.Index != w.Index || g.Term != w.Term || string(g.Payload) != string(w.Payload) {
			t.Fatalf("record %d: got %+v want %+v", i, g, w)
		}
	}
}

// The round trip runs on the real disk too: it is the WAL's test of
// osfs.go (append offsets, directory sync, listing, removal).
func TestWALRoundTripAndSegments(t *testing.T) {
	t.Run("os", func(t *testing.T) { testWALRoundTripAndSegments(t, OS(), t.TempDir()) })
	t.Run("mem", func(t *testing.T) { testWALRoundTripAndSegments(t, NewMemFS(), "d") })
}

func testWALRoundTripAndSegments(t *testing.T, fs FS, dir string) {
	w, got, _, err := openCollect(t, fs, dir, 300)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("fresh log has %d records", len(got))
	}
	var all []Record
	for b := 0; b < 10; b++ {
		recs := mkRecs(1+b*3, 3)
		recs = append(recs, Record{Type: RecHardState, Index: uint64(b * 3), Term: 1, Payload: []byte{1, 0, 0, 0, 0, 0, 0, 0}})
		if err := w.Append(recs); err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
		if b%2 == 0 {
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := len(w.Segments()); n < 3 {
		t.Fatalf("expected several segments past the 300-byte threshold, got %d", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, got, res, err := openCollect(t, fs, dir, 300)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sameRecs(t, got, all)
	if res.TruncatedBytes != 0 {
		t.Fatalf("clean log was truncated: %+v", res)
	}
	// Compaction removes whole old segments only, never the active one.
	segs := len(w.Segments())
	removed, err := w.Compact(9)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) == 0 || len(w.Segments()) != segs-len(removed) {
		t.Fatalf("compact removed %v", removed)
	}
}

// writeLog writes batches of records with a sync after each and returns
// the active segment's path and the end offset of each record in it.
func writeLog(t *testing.T, fs FS, dir string, batches [][]Record) (string, []int64) {
	t.Helper()
	w, _, _, err := openCollect(t, fs, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	for _, b := range batches {
		for _, r := range b {
			if err := w.Append([]Record{r}); err != nil {
				t.Fatal(err)
			}
			ends = append(ends, w.size)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path.Join(dir, "wal", SegmentName(1)), ends
}

// copyOf is a copy of a disk whose data is all synced.
func copyOf(fs *MemFS) *MemFS { return fs.CrashClone(CrashCloneCfg{}) }

// A crash in the middle of writing the last record leaves any prefix of
// it (or zeros) on disk: at every cut point the log opens, drops exactly
// the torn record, and keeps everything before it.
func TestWALTornTailEveryOffset(t *testing.T) {
	base, dir := NewCrashableMemFS(0), "d"
	recs := mkRecs(1, 4)
	seg, ends := writeLog(t, base, dir, [][]Record{recs[:3], recs[3:]})
	full, err := ReadFile(base, seg)
	if err != nil {
		t.Fatal(err)
	}
	lastStart := ends[2]
	for cut := lastStart; cut < int64(len(full)); cut++ {
		for _, zeros := range []bool{false, true} {
			fs := copyOf(base)
			b := append([]byte(nil), full[:cut]...)
			if zeros { // the file grew but the data never reached the disk
				b = append(b, make([]byte, int64(len(full))-cut)...)
			}
			if err := WriteFile(fs, seg, b); err != nil {
				t.Fatal(err)
			}
			w, got, res, err := openCollect(t, fs, dir, 0)
			if err != nil {
				t.Fatalf("cut %d zeros %v: %v", cut, zeros, err)
			}
			sameRecs(t, got, recs[:3])
			if res.TruncatedAt != lastStart && len(b) > int(lastStart) {
				t.Fatalf("cut %d: truncated at %d, want %d", cut, res.TruncatedAt, lastStart)
			}
			// The tail is really gone: appending continues after record 3.
			if err := w.Append(mkRecs(4, 1)); err != nil {
				t.Fatal(err)
			}
			_ = w.Close()
			_, got, _, err = openCollect(t, fs, dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			sameRecs(t, got, recs)
		}
	}
}

// A flipped bit in a record that later records prove was fsynced is
// corruption in the middle: refuse, naming file and offset.
func TestWALBitFlipInMiddleRefuses(t *testing.T) {
	base, dir := NewCrashableMemFS(0), "d"
	recs := mkRecs(1, 6)
	seg, ends := writeLog(t, base, dir, [][]Record{recs[:2], recs[2:4], recs[4:]})
	for _, victim := range []int{0, 1, 2, 3} {
		fs := copyOf(base)
		b, _ := ReadFile(fs, seg)
		start := int64(0)
		if victim > 0 {
			start = ends[victim-1]
		}
		b[start+RecordHeaderBytes+2] ^= 0x10
		if err := WriteFile(fs, seg, b); err != nil {
			t.Fatal(err)
		}
		_, _, _, err := openCollect(t, fs, dir, 0)
		if err == nil {
			t.Fatalf("victim %d: opened a log with a flipped bit in the middle", victim)
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), SegmentName(1)) ||
			!strings.Contains(err.Error(), fmt.Sprintf("offset %d", start)) {
			t.Fatalf("victim %d: error does not name the file and offset %d: %v", victim, start, err)
		}
	}
}

// Corruption in a sealed (non-last) segment always refuses.
func TestWALCorruptSealedSegmentRefuses(t *testing.T) {
	fs, dir := NewMemFS(), "d"
	w, _, _, err := openCollect(t, fs, dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 6; i++ {
		if err := w.Append(mkRecs(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	_ = w.Close()
	p := path.Join(dir, "wal", SegmentName(1))
	b, _ := ReadFile(fs, p)
	b[len(b)-1] ^= 1
	if err := WriteFile(fs, p, b); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := openCollect(t, fs, dir, 100); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("want corruption error, got %v", err)
	}
}

// A segment left behind by an interrupted compaction (older than a gap)
// is deleted, not reported as corruption.
func TestWALStaleSegmentBeforeGap(t *testing.T) {
	fs, dir := NewMemFS(), "d"
	w, _, _, err := openCollect(t, fs, dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 8; i++ {
		if err := w.Append(mkRecs(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	_ = w.Close()
	if err := fs.Remove(path.Join(dir, "wal", SegmentName(2))); err != nil {
		t.Fatal(err)
	}
	w, _, res, err := openCollect(t, fs, dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if len(res.StaleSegments) != 1 || res.StaleSegments[0] != SegmentName(1) {
		t.Fatalf("stale segments %v", res.StaleSegments)
	}
}

// readTree maps every file under root (relative path) to its bytes.
func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
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

func sameTree(t *testing.T, a, b map[string]string) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d files before, %d after", len(a), len(b))
	}
	for name, content := range a {
		got, ok := b[name]
		if !ok {
			t.Fatalf("%s is gone", name)
		}
		if got != content {
			t.Fatalf("%s changed: %d bytes, then %d", name, len(content), len(got))
		}
	}
}

// RefuseTornTail (aof-load-truncated no): a torn tail is refused with an
// error naming the segment, the offset and the bytes that would be cut,
// and nothing on disk changes — not the torn segment, not the stale
// segments of an interrupted compaction. Opening again without it cuts
// exactly that tail and reports the same figures.
func TestWALRefuseTornTail(t *testing.T) {
	dir := t.TempDir()
	w, _, _, err := openCollect(t, OS(), dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 8; i++ {
		if err := w.Append(mkRecs(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	_ = w.Close()
	segs, _ := os.ReadDir(filepath.Join(dir, "wal"))
	if len(segs) < 3 {
		t.Fatalf("%d segments, the test wants three or more", len(segs))
	}
	// A gap after the first segment (an interrupted compaction) and a
	// torn record, half written, at the end of the last.
	if err := os.Remove(filepath.Join(dir, "wal", SegmentName(2))); err != nil {
		t.Fatal(err)
	}
	lastName := segs[len(segs)-1].Name()
	last := filepath.Join(dir, "wal", lastName)
	b, _ := os.ReadFile(last)
	good := int64(len(b))
	torn := appendRecord(nil, mkRecs(9, 1)[0], good)
	b = append(b, torn[:len(torn)/2]...)
	if err := os.WriteFile(last, b, 0o600); err != nil {
		t.Fatal(err)
	}
	before := readTree(t, dir)
	var visited int
	_, _, err = OpenWAL(WALOptions{FS: OS(), Dir: dir, SegmentBytes: 100, RefuseTornTail: true}, func(Record) error {
		visited++
		return nil
	})
	var tt *TornTailError
	if !errors.Is(err, ErrTornTail) || !errors.As(err, &tt) {
		t.Fatalf("want a torn-tail refusal, got %v", err)
	}
	cut := int64(len(torn) / 2)
	if tt.Segment != filepath.Join(dir, "wal", lastName) || tt.At != good || tt.Bytes != cut {
		t.Fatalf("refusal %+v, want %s at %d, %d bytes", tt, last, good, cut)
	}
	want := fmt.Sprintf("wal: torn tail: file %s at offset %d, %d bytes would be cut", last, good, cut)
	if err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
	sameTree(t, before, readTree(t, dir))

	w, got, res, err := openCollect(t, OS(), dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if res.TruncatedSegment != last || res.TruncatedAt != good || res.TruncatedBytes != cut {
		t.Fatalf("cut %s at %d, %d bytes; want %s at %d, %d", res.TruncatedSegment, res.TruncatedAt, res.TruncatedBytes, last, good, cut)
	}
	if len(res.StaleSegments) != 1 || len(got) != visited {
		t.Fatalf("stale %v, %d records (refused scan saw %d)", res.StaleSegments, len(got), visited)
	}
	if n, _ := os.Stat(last); n.Size() != good {
		t.Fatalf("last segment %d bytes after the cut, want %d", n.Size(), good)
	}
}

// After a power loss the log recovers a prefix of what was appended that
// holds at least every record synced before it, however the unsynced tail
// tore (any subset of its sectors, any size in the written range).
func TestWALCrashRecoversASyncedPrefix(t *testing.T) {
	lost, keptUnsynced := 0, 0
	for seed := uint64(0); seed < 100; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		fs, dir := NewCrashableMemFS(512), "d"
		w, _, _, err := openCollect(t, fs, dir, 1<<10)
		if err != nil {
			t.Fatal(err)
		}
		var all []Record
		synced := 0
		for i := 1; i <= 60; {
			recs := mkRecs(i, 1+rng.IntN(3))
			i += len(recs)
			if err := w.Append(recs); err != nil {
				t.Fatal(err)
			}
			all = append(all, recs...)
			if rng.IntN(3) == 0 {
				if err := w.Sync(); err != nil {
					t.Fatal(err)
				}
				synced = len(all)
			}
		}
		if len(w.Segments()) < 2 {
			t.Fatal("the log never rotated")
		}
		_, got, _, err := openCollect(t, fs.CrashClone(CrashCloneCfg{TornProb: 0.8, Rand: rng}), dir, 1<<10)
		if err != nil {
			t.Fatalf("seed %d: refused to open after a crash: %v", seed, err)
		}
		if len(got) < synced || len(got) > len(all) {
			t.Fatalf("seed %d: recovered %d records, %d were synced of %d", seed, len(got), synced, len(all))
		}
		sameRecs(t, got, all[:len(got)])
		if len(got) < len(all) {
			lost++
		}
		if len(got) > synced {
			keptUnsynced++
		}
	}
	if lost == 0 || keptUnsynced == 0 {
		t.Fatalf("the crashes never lost a record (%d) or never kept an unsynced one (%d)", lost, keptUnsynced)
	}
}

// A failed fsync breaks the log for good (its unsynced records may be gone
// even if a retry succeeded), and a crash keeps only what was synced.
func TestWALFsyncFailureBreaksTheLog(t *testing.T) {
	mem, dir := NewCrashableMemFS(0), "d"
	sync := &toggle{kind: OpSync, fault: Fault{Kind: FaultError, Err: ErrIO}}
	fs := NewErrorFS(mem, sync)
	w, _, _, err := openCollect(t, fs, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	recs := mkRecs(1, 5)
	if err := w.Append(recs[:3]); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(recs[3:]); err != nil {
		t.Fatal(err)
	}
	sync.on = true
	if err := w.Sync(); !errors.Is(err, ErrIO) {
		t.Fatalf("sync: %v, want EIO", err)
	}
	sync.on = false
	if w.Broken() == nil {
		t.Fatal("a failed fsync did not break the log")
	}
	if err := w.Append(mkRecs(6, 1)); err == nil {
		t.Fatal("a broken log accepted an append")
	}
	_, got, _, err := openCollect(t, mem.CrashClone(CrashCloneCfg{}), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameRecs(t, got, recs[:3])
}
