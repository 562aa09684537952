package disk

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"
)

func writeSnap(t *testing.T, fs FS, dir string, index uint64, n int) (string, []SnapEntry) {
	t.Helper()
	sw, err := CreateSnapshot(fs, dir, SnapshotMeta{Index: index, Term: 2, Voters: []uint64{1}, SaveMillis: 1234, KeysHint: uint64(n)})
	if err != nil {
		t.Fatal(err)
	}
	var want []SnapEntry
	for i := 0; i < n; i++ {
		e := SnapEntry{Type: 1, Key: []byte(fmt.Sprintf("key:%06d", i)), Value: []byte(strings.Repeat("v", i%300)), ExpireAt: int64(i % 3)}
		want = append(want, e)
		if err := sw.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	name, meta, err := sw.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if meta.Entries != uint64(n) {
		t.Fatalf("meta entries %d", meta.Entries)
	}
	return name, want
}

// It runs on the real disk too, as the snapshot's test of osfs.go
// (create, rename into place, directory sync, listing).
func TestSnapshotRoundTripAndCorruption(t *testing.T) {
	t.Run("os", func(t *testing.T) { testSnapshotRoundTripAndCorruption(t, OS(), t.TempDir()) })
	t.Run("mem", func(t *testing.T) { testSnapshotRoundTripAndCorruption(t, NewMemFS(), "d") })
}

func testSnapshotRoundTripAndCorruption(t *testing.T, fs FS, dir string) {
	name, want := writeSnap(t, fs, dir, 42, 5000)
	var got []SnapEntry
	meta, err := ReadSnapshot(fs, name, nil, func(e SnapEntry) error {
		e.Key, e.Value = append([]byte(nil), e.Key...), append([]byte(nil), e.Value...)
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if meta.Index != 42 || meta.KeysHint != 5000 || meta.Term != 2 || meta.SaveMillis != 1234 || len(meta.Voters) != 1 || meta.Entries != 5000 {
		t.Fatalf("meta %+v", meta)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries", len(got))
	}
	for i := range got {
		if string(got[i].Key) != string(want[i].Key) || string(got[i].Value) != string(want[i].Value) || got[i].ExpireAt != want[i].ExpireAt {
			t.Fatalf("entry %d differs", i)
		}
	}
	snaps, temps, err := ListSnapshots(fs, dir)
	if err != nil || len(snaps) != 1 || len(temps) != 0 {
		t.Fatalf("list: %v %v %v", snaps, temps, err)
	}
	orig, err := ReadFile(fs, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{3, 20, len(orig) / 2, len(orig) - 5} {
		b := append([]byte(nil), orig...)
		b[off] ^= 0x40
		if err := WriteFile(fs, name, b); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadSnapshot(fs, name, nil, func(SnapEntry) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip at %d: want ErrCorrupt, got %v", off, err)
		}
	}
	for _, cut := range []int{0, 7, 30, len(orig) / 3, len(orig) - 1} {
		if err := WriteFile(fs, name, orig[:cut]); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadSnapshot(fs, name, nil, func(SnapEntry) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d: want ErrCorrupt, got %v", cut, err)
		}
	}
}

// A power loss at any point of writing a snapshot leaves either no
// snapshot or the whole of it (the temporary file is renamed into place
// only once synced, and the rename is synced), never a torn one.
func TestSnapshotCrashAtEveryMutation(t *testing.T) {
	const entries = 3000
	for k := int64(1); ; k++ {
		mem := NewCrashableMemFS(512)
		fs := NewErrorFS(mem, &CrashAt{N: k, Rand: rand.New(rand.NewPCG(uint64(k), 1))})
		crashed := func() (crashed bool) {
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(CrashPoint); !ok {
						panic(r)
					}
					crashed = true
				}
			}()
			writeSnap(t, fs, "d", 7, entries)
			return false
		}()
		c := mem.CrashClone(CrashCloneCfg{TornProb: 1, Rand: rand.New(rand.NewPCG(uint64(k), 2))})
		snaps, _, err := ListSnapshots(c, "d")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range snaps {
			n := 0
			if _, err := ReadSnapshot(c, name, nil, func(SnapEntry) error { n++; return nil }); err != nil || n != entries {
				t.Fatalf("crash at mutation %d: snapshot %s survived torn (%d entries, %v)", k, name, n, err)
			}
		}
		if !crashed {
			if len(snaps) != 1 {
				t.Fatalf("a snapshot written without a crash did not survive one: %v", snaps)
			}
			if k < 5 {
				t.Fatalf("writing the snapshot took only %d mutations: the test crashed nowhere interesting", k)
			}
			return
		}
	}
}

// A snapshot being received is resumed from the sound prefix ScanSnapshot
// reports: never past damage, and not far before it (one block at most).
func TestScanSnapshotFindsTheSoundPrefix(t *testing.T) {
	dir := t.TempDir()
	name, _ := writeSnap(t, OS(), dir, 7, 20000)
	orig, _ := os.ReadFile(name)
	size := int64(len(orig))
	valid, meta, err := ScanSnapshot(OS(), name)
	if err != nil || valid != size || meta.Index != 7 || meta.Entries != 20000 {
		t.Fatalf("whole file: valid %d of %d, meta %+v, err %v", valid, size, meta, err)
	}
	const blockMax = snapBlockBytesTarget + 1024
	check := func(what string, damage int64, b []byte) {
		t.Helper()
		_ = os.WriteFile(name, b, 0o644)
		valid, _, err := ScanSnapshot(OS(), name)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: want ErrCorrupt, got %v", what, err)
		}
		if valid > damage || valid < damage-blockMax && damage > blockMax {
			t.Fatalf("%s at %d: sound prefix %d", what, damage, valid)
		}
		// What a resumed receiver does: keep the prefix, receive the rest.
		_ = os.WriteFile(name, append(append([]byte(nil), b[:valid]...), orig[valid:]...), 0o644)
		if v, _, err := ScanSnapshot(OS(), name); err != nil || v != size {
			t.Fatalf("%s: resumed from %d: %d, %v", what, valid, v, err)
		}
	}
	for _, cut := range []int64{0, 5, 8, 20, size / 3, size / 2, size - 30, size - 1} {
		check("cut", cut, orig[:cut])
	}
	for _, off := range []int64{3, 12, 60, size / 4, size * 2 / 3, size - 10} {
		b := append([]byte(nil), orig...)
		b[off] ^= 0x10
		check("flip", off, b)
	}
	_ = os.WriteFile(name, append(append([]byte(nil), orig...), "junk"...), 0o644)
	if v, _, err := ScanSnapshot(OS(), name); !errors.Is(err, ErrCorrupt) || v != size {
		t.Fatalf("bytes after the trailer: valid %d, err %v", v, err)
	}
}

func TestSnapshotFingerprintAndReceivingName(t *testing.T) {
	fingerprint := func(name string) uint32 {
		t.Helper()
		f, err := OS().Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		size, _ := f.Size()
		fp, err := SnapshotFingerprint(f, size)
		if err != nil {
			t.Fatal(err)
		}
		return fp
	}
	a, _ := writeSnap(t, OS(), t.TempDir(), 9, 100)
	b, _ := writeSnap(t, OS(), t.TempDir(), 9, 100)
	if fingerprint(a) != fingerprint(b) {
		t.Fatal("the same snapshot written twice has two fingerprints")
	}
	c, _ := writeSnap(t, OS(), t.TempDir(), 9, 101)
	if fingerprint(a) == fingerprint(c) {
		t.Fatal("snapshots with different entries share a fingerprint")
	}
	n := ReceivingSnapshotName(0xabc, 0xdeadbeef)
	if idx, fp, ok := ParseReceivingSnapshotName(n); !ok || idx != 0xabc || fp != 0xdeadbeef {
		t.Fatalf("%s parsed as %x %x %v", n, idx, fp, ok)
	}
	for _, bad := range []string{SnapshotName(5), SnapshotName(5) + ".tmp", "0000000000000abc.snap.deadbeef.tmp", "000000000000zabc.snap.deadbeef.part"} {
		if _, _, ok := ParseReceivingSnapshotName(bad); ok {
			t.Fatalf("%s parsed as a receiving name", bad)
		}
	}
	// Recovery neither loads it nor deletes it.
	dir := t.TempDir()
	_ = OS().MkdirAll(SnapshotDir(dir))
	f, _ := OS().Create(SnapshotDir(dir) + "/" + n)
	f.Close()
	if snaps, temps, err := ListSnapshots(OS(), dir); err != nil || len(snaps)+len(temps) != 0 {
		t.Fatalf("list: %v %v %v", snaps, temps, err)
	}
}

// A snapshot taken while the group had learners keeps them in its header
// (format version 2), and one without learners is still written as
// version 1, byte for byte what an older keel wrote and reads.
func TestSnapshotHeaderKeepsLearners(t *testing.T) {
	fs := NewMemFS()
	write := func(dir string, meta SnapshotMeta) string {
		t.Helper()
		sw, err := CreateSnapshot(fs, dir, meta)
		if err != nil {
			t.Fatal(err)
		}
		if err := sw.Add(SnapEntry{Key: []byte("k"), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		name, _, err := sw.Commit()
		if err != nil {
			t.Fatal(err)
		}
		return name
	}
	with := write("a", SnapshotMeta{Index: 9, Term: 3, Voters: []uint64{1, 2, 3}, Learners: []uint64{7, 8}})
	meta, err := ReadSnapshot(fs, with, nil, func(SnapEntry) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(meta.Voters, meta.Learners) != "[1 2 3] [7 8]" || meta.Entries != 1 {
		t.Fatalf("meta %+v", meta)
	}
	b, err := ReadFile(fs, with)
	if err != nil {
		t.Fatal(err)
	}
	if v := binary.LittleEndian.Uint32(b[len(snapMagic)+blockPrefixBytes:]); v != snapVersionLearners {
		t.Fatalf("header version %d with learners", v)
	}
	without := write("b", SnapshotMeta{Index: 9, Term: 3, Voters: []uint64{1, 2, 3}})
	b, err = ReadFile(fs, without)
	if err != nil {
		t.Fatal(err)
	}
	if v := binary.LittleEndian.Uint32(b[len(snapMagic)+blockPrefixBytes:]); v != snapVersion {
		t.Fatalf("header version %d without learners", v)
	}
	meta, err = ReadSnapshot(fs, without, nil, func(SnapEntry) error { return nil })
	if err != nil || len(meta.Learners) != 0 || len(meta.Voters) != 3 {
		t.Fatalf("meta %+v, %v", meta, err)
	}
}
