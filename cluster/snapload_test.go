package cluster

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
)

// snapBlocks returns the file offset of every block of a snapshot file
// (after the 8-byte magic; each block is a u32 payload length, a u32
// checksum, a kind byte and the payload), the trailer last.
func snapBlocks(t *testing.T, b []byte) []int {
	t.Helper()
	var offs []int
	for off := 8; off < len(b); {
		offs = append(offs, off)
		off += 9 + int(binary.LittleEndian.Uint32(b[off:]))
	}
	return offs
}

// dbDump renders every key of db (expired or not) with its value and
// deadline, in key order.
func dbDump(db *engine.DB) string {
	var b strings.Builder
	v := db.View()
	defer v.Release()
	v.Ascend(func(e engine.Entry) bool {
		fmt.Fprintf(&b, "%d %s=%s @%d\n", e.Type, e.Key, e.Value, e.ExpireAt)
		return true
	})
	return b.String()
}

func dbDo(db *engine.DB, cmd string) string {
	w := &rec{}
	db.Exec(t0/1e6, argv(cmd), w)
	return w.String()
}

// A snapshot that fails its check part way through — after some of its
// entry blocks were already loaded — leaves the DB exactly empty and
// usable, whatever the damage: a flipped bit in a later block, a bad
// checksum or count in the trailer, a file cut short, bytes after the
// trailer. The intact file then loads in full into the same DB.
//
// (The bulk loader holds point-index entries back to insert them in
// sorted batches; loadSnapshot used to empty the DB on failure and then
// let its deferred Finish insert those entries, naming records of the
// blocks Reset had just dropped, into the fresh index: the next lookup
// that met one panicked with an index out of range — bit-rot seeds 20,
// 22, 82, 88, 130 and 167.)
func TestFailedSnapshotLeavesDBEmpty(t *testing.T) {
	fs := disk.OS()
	dir := t.TempDir()
	const saveMillis = t0 / 1e6
	const n = 4000 // about 700 KB: three entry blocks
	sw, err := disk.CreateSnapshot(fs, dir, disk.SnapshotMeta{Index: 77, Term: 3, Voters: []uint64{1}, SaveMillis: saveMillis, KeysHint: n})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var want strings.Builder
	for i := 0; i < n; i++ {
		e := disk.SnapEntry{Type: uint8(engine.TypeString), Key: []byte(fmt.Sprintf("key:%05d", i)),
			Value: []byte(strings.Repeat(string(rune('a'+i%26)), 100+rng.IntN(100)))}
		if i%5 == 0 {
			e.ExpireAt = saveMillis + 1000 + int64(i)
		}
		if err := sw.Add(e); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&want, "%d %s=%s @%d\n", e.Type, e.Key, e.Value, e.ExpireAt)
	}
	good, _, err := sw.Commit()
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	blocks := snapBlocks(t, orig)
	if len(blocks) < 5 { // header, at least three entry blocks, trailer
		t.Fatalf("snapshot has %d blocks, the test needs several entry blocks", len(blocks))
	}
	trailer, last := blocks[len(blocks)-1], blocks[len(blocks)-2]
	edit := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), orig...))
	}
	cases := []struct {
		name string
		file []byte
	}{
		{"bit flip in the second entry block", edit(func(b []byte) []byte { b[blocks[2]+1000] ^= 0x10; return b })},
		{"bit flip in the last entry block", edit(func(b []byte) []byte { b[trailer-7] ^= 0x01; return b })},
		{"bad trailer checksum", edit(func(b []byte) []byte { b[trailer+5] ^= 0x80; return b })},
		{"trailer counts one entry too many", edit(func(b []byte) []byte {
			// A count that disagrees, under a checksum that matches.
			p := b[trailer+9:]
			binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)+1)
			return fixCRC(b, trailer)
		})},
		{"cut before the trailer", edit(func(b []byte) []byte { return b[:trailer] })},
		{"cut in the trailer", edit(func(b []byte) []byte { return b[:len(b)-1] })},
		{"cut in the last entry block", edit(func(b []byte) []byte { return b[:last+5000] })},
		{"a byte after the trailer", edit(func(b []byte) []byte { return append(b, 0) })},
	}
	special := func(typ uint8, _ []byte) error { return fmt.Errorf("unexpected special entry %d", typ) }
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.snap")
			if err := os.WriteFile(bad, c.file, 0o600); err != nil {
				t.Fatal(err)
			}
			db := engine.New(engine.Options{Rand: rand.New(rand.NewPCG(1, 2))})
			fresh := engine.New(engine.Options{Rand: rand.New(rand.NewPCG(1, 2))})
			// Keys held before the load, which the load must drop too.
			for i := 0; i < 50; i++ {
				dbDo(db, fmt.Sprintf("SET old:%02d v PX 100000", i))
			}
			_, loaded, err := loadSnapshot(fs, bad, db, 0, special)
			if err == nil {
				t.Fatal("a damaged snapshot loaded")
			}
			if loaded != 0 {
				t.Fatalf("loaded %d keys from a failed snapshot", loaded)
			}
			if db.Len() != 0 || db.Expires() != 0 || db.UsedBytes() != fresh.UsedBytes() {
				t.Fatalf("after the failed load: Len %d Expires %d UsedBytes %d (empty: %d)",
					db.Len(), db.Expires(), db.UsedBytes(), fresh.UsedBytes())
			}
			if d := dbDump(db); d != "" {
				t.Fatalf("after the failed load the DB holds:\n%.300s", d)
			}
			// Every key of the snapshot (each one probes the point index)
			// and of the DB before is gone.
			for i := 0; i < n; i += 7 {
				if got := dbDo(db, fmt.Sprintf("GET key:%05d", i)); got != "$nil" {
					t.Fatalf("GET key:%05d after the failed load: %s", i, got)
				}
			}
			if got := dbDo(db, "EXISTS old:00 old:49"); got != ":0" {
				t.Fatalf("keys from before the load survived: %s", got)
			}
			if got := dbDo(db, "DBSIZE"); got != ":0" {
				t.Fatalf("DBSIZE %s", got)
			}
			// Usable: writes, reads, deletes.
			if got := dbDo(db, "SET key:00003 x"); got != "+OK" {
				t.Fatal(got)
			}
			if got := dbDo(db, "GET key:00003"); got != "$x" {
				t.Fatal(got)
			}
			if got := dbDo(db, "DEL key:00003"); got != ":1" {
				t.Fatal(got)
			}
			// Then the intact snapshot loads in full.
			meta, loaded, err := loadSnapshot(fs, good, db, 0, special)
			if err != nil {
				t.Fatalf("the intact snapshot after the damaged one: %v", err)
			}
			if meta.Index != 77 || loaded != n || db.Len() != n || db.Expires() != n/5 {
				t.Fatalf("intact load: index %d, loaded %d, Len %d, Expires %d", meta.Index, loaded, db.Len(), db.Expires())
			}
			if got := dbDump(db); got != want.String() {
				t.Fatalf("intact load: %s", diffLines(want.String(), got))
			}
			if got := dbDo(db, "GET key:00026"); got != "$"+strings.Repeat("a", len(got)-1) {
				t.Fatalf("GET key:00026 = %.20s…", got)
			}
		})
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fixCRC recomputes the checksum of the snapshot block at off after a
// test edited its payload.
func fixCRC(b []byte, off int) []byte {
	n := int(binary.LittleEndian.Uint32(b[off:]))
	crc := crc32.Update(0, castagnoli, b[off+8:off+9]) // the kind byte
	binary.LittleEndian.PutUint32(b[off+4:], crc32.Update(crc, castagnoli, b[off+9:off+9+n]))
	return b
}

// Recovery when every snapshot fails its check at its very end (after all
// its entries were loaded) and the log reaches back to the first entry:
// the keyspace comes from the log alone and holds nothing of the failed
// snapshots' partial loads. With only the newest damaged, the older one
// and the log after it give the same state.
func TestDamagedSnapshotsFallBack(t *testing.T) {
	for _, both := range []bool{false, true} {
		t.Run(fmt.Sprintf("both=%v", both), func(t *testing.T) {
			fs := disk.OS()
			dir := t.TempDir()
			r := openT(t, fs, dir)
			now := t0
			workload(t, r, 1, 400, &now)
			if got := do(r, now, "SAVE"); got != "+OK" {
				t.Fatal(got)
			}
			workload(t, r, 2, 400, &now)
			if got := do(r, now, "SAVE"); got != "+OK" {
				t.Fatal(got)
			}
			workload(t, r, 3, 100, &now)
			want := dump(r, now)
			_ = r.Close()
			snaps, _, _ := disk.ListSnapshots(fs, dir)
			if len(snaps) != 2 {
				t.Fatalf("snapshots %v", snaps)
			}
			damage := snaps[:1]
			if both {
				damage = snaps
			}
			for _, s := range damage {
				b, err := os.ReadFile(s)
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)-20] ^= 0x04 // the trailer's checksum
				if err := os.WriteFile(s, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r = openT(t, fs, dir)
			defer r.Close()
			rs := r.Recovery()
			if len(rs.CorruptSnapshots) != len(damage) {
				t.Fatalf("recovery %+v", rs)
			}
			if both && (rs.Snapshot != "" || rs.KeysLoaded != 0) || !both && rs.Snapshot != snaps[1] {
				t.Fatalf("recovery %+v", rs)
			}
			if got := dump(r, now); got != want {
				t.Fatalf("recovered state differs: %s", diffLines(want, got))
			}
			// Every key answers (each probes the point index).
			for i := 0; i < 300; i++ {
				do(r, now, fmt.Sprintf("GET k%03d", i), fmt.Sprintf("EXISTS ck%03d", i))
			}
			if got := do(r, now, "SET after v", "GET after"); got != "+OK $v" {
				t.Fatal(got)
			}
		})
	}
}
