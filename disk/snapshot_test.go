package disk

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"
)

func writeSnap(t *testing.T, dir string, index uint64, n int) (string, []SnapEntry) {
	t.Helper()
	sw, err := CreateSnapshot(OS(), dir, SnapshotMeta{Index: index, Term: 2, Voters: []uint64{1}, SaveMillis: 1234, KeysHint: uint64(n)})
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

func TestSnapshotRoundTripAndCorruption(t *testing.T) {
	dir := t.TempDir()
	name, want := writeSnap(t, dir, 42, 5000)
	var got []SnapEntry
	meta, err := ReadSnapshot(OS(), name, nil, func(e SnapEntry) error {
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
	snaps, temps, err := ListSnapshots(OS(), dir)
	if err != nil || len(snaps) != 1 || len(temps) != 0 {
		t.Fatalf("list: %v %v %v", snaps, temps, err)
	}
	orig, _ := os.ReadFile(name)
	for _, off := range []int{3, 20, len(orig) / 2, len(orig) - 5} {
		b := append([]byte(nil), orig...)
		b[off] ^= 0x40
		_ = os.WriteFile(name, b, 0o644)
		if _, err := ReadSnapshot(OS(), name, nil, func(SnapEntry) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip at %d: want ErrCorrupt, got %v", off, err)
		}
	}
	for _, cut := range []int{0, 7, 30, len(orig) / 3, len(orig) - 1} {
		_ = os.WriteFile(name, orig[:cut], 0o644)
		if _, err := ReadSnapshot(OS(), name, nil, func(SnapEntry) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d: want ErrCorrupt, got %v", cut, err)
		}
	}
}
