package cluster

import (
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
	"testing"

	"github.com/keel-db/keel/disk"
)

// workload applies n seeded random writes (with TTLs, deletes, counters)
// in batches, ticking now forward.
func workload(t testing.TB, r *Replica, seed uint64, n int, now *int64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := 0; i < n; {
		batch := 1 + rng.IntN(8)
		var cmds []string
		for j := 0; j < batch && i < n; j, i = j+1, i+1 {
			k := fmt.Sprintf("k%03d", rng.IntN(300))
			switch rng.IntN(6) {
			case 0:
				cmds = append(cmds, "DEL "+k)
			case 1:
				cmds = append(cmds, fmt.Sprintf("SET %s v%d PX %d", k, i, 1+rng.IntN(4000)))
			case 2:
				cmds = append(cmds, "INCR c"+k)
			case 3:
				cmds = append(cmds, "GET "+k)
			default:
				cmds = append(cmds, fmt.Sprintf("SET %s %s", k, strings.Repeat("x", rng.IntN(50))))
			}
		}
		out := do(r, *now, cmds...)
		if strings.Contains(out, "-ERR disk") {
			t.Fatalf("write refused: %s", out)
		}
		*now += int64(rng.IntN(30)) * 1e6
		if rng.IntN(10) == 0 {
			r.Tick(*now)
		}
	}
}

// Snapshots (SAVE, BGSAVE through the job interface, and size-triggered)
// plus log replay rebuild exactly the state that was there.
func TestSnapshotAndReplayEqualOriginal(t *testing.T) {
	fs, dir := disk.NewMemFS(), "data"
	small := func(o *Options) { o.SnapshotLogBytes = 8 << 10; o.SegmentBytes = 2 << 10; o.Fsync = FsyncNo }
	r := openT(t, fs, dir, small)
	now := t0
	workload(t, r, 1, 500, &now)
	if got := do(r, now, "SAVE"); got != "+OK" {
		t.Fatalf("SAVE: %q", got)
	}
	if got := do(r, now, "LASTSAVE"); got != fmt.Sprintf(":%d", now/sec) {
		t.Fatalf("LASTSAVE %q", got)
	}
	workload(t, r, 2, 500, &now)
	if got := do(r, now, "BGSAVE", "BGSAVE"); got != "+Background saving started +Background saving started" {
		t.Fatalf("BGSAVE: %q", got)
	}
	j := r.PendingJob()
	if j == nil {
		t.Fatal("no pending job after BGSAVE")
	}
	if got := do(r, now, "BGSAVE"); got != "-ERR Background save already in progress" {
		t.Fatalf("second BGSAVE: %q", got)
	}
	workload(t, r, 3, 200, &now) // writes go on while the job runs
	r.JobDone(j, j.Run())
	jobs := 0
	for i := 0; i < 20; i++ {
		workload(t, r, 10+uint64(i), 300, &now)
		if j := r.PendingJob(); j != nil { // size-triggered
			r.JobDone(j, j.Run())
			jobs++
		}
	}
	if jobs == 0 {
		t.Fatal("the log size threshold never triggered a snapshot")
	}
	p := r.Persistence()
	if !p.LastBgsaveOK || p.SnapshotIndex == 0 || p.WALSegments > 20 {
		t.Fatalf("persistence stats %+v", p)
	}
	want := dump(r, now)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openT(t, fs, dir, small)
	defer r.Close()
	if got := dump(r, now); got != want {
		t.Fatalf("recovered state differs:\n%s", diffLines(want, got))
	}
	if rs := r.Recovery(); rs.Snapshot == "" || rs.EntriesReplayed == 0 {
		t.Fatalf("expected snapshot + replay, got %+v", rs)
	}
	snaps, _, _ := disk.ListSnapshots(fs, dir)
	if len(snaps) != 2 {
		t.Fatalf("kept %d snapshots, want 2 (newest and its fallback): %v", len(snaps), snaps)
	}
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d: want %q got %q", i, al[i], bl[i])
		}
	}
	return fmt.Sprintf("want %d lines, got %d", len(al), len(bl))
}

func TestFallbackToOlderSnapshot(t *testing.T) {
	fs, dir := disk.NewMemFS(), "data"
	r := openT(t, fs, dir)
	now := t0
	workload(t, r, 1, 300, &now)
	do(r, now, "SAVE")
	workload(t, r, 2, 300, &now)
	do(r, now, "SAVE")
	workload(t, r, 3, 100, &now)
	want := dump(r, now)
	_ = r.Close()
	snaps, _, _ := disk.ListSnapshots(fs, dir)
	if len(snaps) != 2 {
		t.Fatalf("snapshots %v", snaps)
	}
	b := readFile(t, fs, snaps[0])
	b[len(b)/2] ^= 0xff
	writeFile(t, fs, snaps[0], b)
	r = openT(t, fs, dir)
	defer r.Close()
	rs := r.Recovery()
	if rs.Snapshot != snaps[1] || len(rs.CorruptSnapshots) != 1 {
		t.Fatalf("recovery %+v", rs)
	}
	if got := dump(r, now); got != want {
		t.Fatalf("state after fallback differs: %s", diffLines(want, got))
	}
	if _, err := fs.Stat(snaps[0] + ".corrupt"); err != nil {
		t.Fatalf("corrupt snapshot not set aside: %v", err)
	}
}

// Keys already expired when the snapshot was taken are skipped at load;
// keys whose deadline passed while the node was down are invisible from
// the first read and leave memory at the first active expiry — never
// skipped by the time of opening, which log replay would contradict.
func TestExpiredKeysDroppedAfterRecovery(t *testing.T) {
	fs, dir := disk.NewMemFS(), "data"
	r := openT(t, fs, dir)
	do(r, t0, "SET gone v PX 500", "SET short v PX 3000", "SET long v PX 100000", "SET forever v")
	do(r, t0+2*sec, "SAVE")
	_ = r.Close()
	r = openT(t, fs, dir, func(o *Options) { o.NowNanos = t0 + 10*sec })
	defer r.Close()
	if n := r.Recovery().KeysLoaded; n != 3 {
		t.Fatalf("loaded %d keys, want 3 (the one expired before SAVE skipped)", n)
	}
	if got := do(r, t0+10*sec, "GET gone", "GET short", "GET long", "GET forever"); got != "$nil $nil $v $v" {
		t.Fatal(got)
	}
	r.Tick(t0 + 10*sec)
	if n := r.DB().Len(); n != 2 {
		t.Fatalf("%d keys after active expiry, want 2", n)
	}
}

func TestCorruptLogMiddleRefusesToStart(t *testing.T) {
	fs, dir := disk.NewMemFS(), "data"
	r := openT(t, fs, dir)
	now := t0
	workload(t, r, 1, 200, &now)
	_ = r.Close()
	seg := path.Join(dir, "wal", disk.SegmentName(1))
	b := readFile(t, fs, seg)
	b[len(b)/3] ^= 0x01
	writeFile(t, fs, seg, b)
	_, err := Open(Options{FS: fs, Dir: dir, AppendOnly: true})
	if err == nil || !strings.Contains(err.Error(), disk.SegmentName(1)) || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("want a refusal naming the segment and offset, got %v", err)
	}
}

// A runtime that never collects jobs still gets its BGSAVE written: Tick
// runs the job inline once it has waited jobUncollectedMax.
func TestUncollectedJobRunsInline(t *testing.T) {
	fs, dir := disk.NewMemFS(), "data"
	r := openT(t, fs, dir)
	defer r.Close()
	do(r, t0, "SET a 1")
	if got := do(r, t0, "BGREWRITEAOF"); got != "+Background append only file rewriting started" {
		t.Fatal(got)
	}
	r.Tick(t0 + sec)
	if snaps, _, _ := disk.ListSnapshots(fs, dir); len(snaps) != 0 {
		t.Fatalf("job ran before its grace period: %v", snaps)
	}
	r.Tick(t0 + 6*sec)
	if snaps, _, _ := disk.ListSnapshots(fs, dir); len(snaps) != 1 {
		t.Fatalf("uncollected job never ran: %v", snaps)
	}
	if got := do(r, t0+6*sec, "LASTSAVE"); got != fmt.Sprintf(":%d", t0/sec) {
		t.Fatalf("LASTSAVE %s", got)
	}
	if p := r.Persistence(); p.ChangesSinceLastSave != 0 || !p.LastBgsaveOK {
		t.Fatalf("stats %+v", p)
	}
}
