package cluster

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"strings"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/keel-db/keel/disk"
)

// The tests of this file stream snapshots many times larger than the
// message limit they set (64 KiB), through the in-memory bus of
// group_test.go, which fails the test on any message over that limit.

const streamLimit = 64 << 10

// newStreamGroup is a three-node group with a 64 KiB message limit and
// frequent compaction; extra options apply after.
func newStreamGroup(t *testing.T, extra func(*Options)) *testGroup {
	g := newTestGroup(t, 3, func(o *Options) {
		o.MessageBytesMax = streamLimit
		o.SnapshotLogBytes = 64 << 10
		if extra != nil {
			extra(o)
		}
	})
	g.msgMax = streamLimit
	return g
}

// fill writes keys k<from>..k<from+n-1>, each value valBytes long and
// unique, in batches small enough for one entry under the limit, running
// snapshot jobs as a runtime would.
func (g *testGroup) fill(l uint64, from, n, valBytes int) {
	g.t.Helper()
	pad := strings.Repeat("v", valBytes-8)
	const batch = 40
	for i := from; i < from+n; i += batch {
		var cmds []string
		for k := i; k < min(i+batch, from+n); k++ {
			cmds = append(cmds, fmt.Sprintf("SET k%d %s%08d", k, pad, k))
		}
		if got := g.submit(l, false, cmds...); strings.Contains(got, "-") {
			g.t.Fatalf("fill: %q", got[:min(len(got), 200)])
		}
		g.runJobs()
	}
}

func (g *testGroup) follower(l uint64) uint64 {
	for _, id := range g.ids {
		if id != l {
			return id
		}
	}
	return 0
}

// snapFileBytes is the size of the leader's newest snapshot.
func snapFileBytes(t *testing.T, r *Replica) int64 {
	t.Helper()
	n, err := r.opts.FS.Stat(path.Join(disk.SnapshotDir(r.opts.Dir), disk.SnapshotName(r.store.snapIndex)))
	if err != nil {
		t.Fatalf("leader's snapshot %d: %v", r.store.snapIndex, err)
	}
	return n
}

// caughtUp ticks until follower f holds the leader's state.
func (g *testGroup) caughtUp(l, f uint64, ticks int) {
	g.t.Helper()
	for i := 0; i < ticks; i++ {
		g.tick()
		g.runJobs()
		if g.reps[f] != nil && g.reps[l] != nil && g.reps[f].applied >= g.reps[l].applied && dump(g.reps[f], g.now) == dump(g.reps[l], g.now) {
			return
		}
	}
	var fs, ls SnapshotStreamStats
	if g.reps[f] != nil {
		fs = g.reps[f].SnapshotStreams()
	}
	if g.reps[l] != nil {
		ls = g.reps[l].SnapshotStreams()
	}
	g.t.Fatalf("n%d never caught up with n%d in %d ticks: leader %+v, follower %+v", f, l, ticks, ls, fs)
}

// chunkOf decodes a bus message as a snapshot chunk (ok false otherwise).
func chunkOf(m *groupMsg) (snapMsg, bool) {
	if len(m.data) == 0 || m.data[0] != peerKindSnapChunk {
		return snapMsg{}, false
	}
	c, err := decodeSnapMsg(m.data)
	return c, err == nil && c.flag&chunkProbe == 0
}

func TestSnapshotStreamCatchesUpAFollowerTenTimesTheMessageLimit(t *testing.T) {
	g := newStreamGroup(t, nil)
	l := g.waitLeader()
	f := g.follower(l)
	g.stop(f)
	g.fill(l, 0, 4000, 200)
	size := snapFileBytes(t, g.reps[l])
	if size < 10*streamLimit {
		t.Fatalf("leader's snapshot is %d bytes, want at least 10× the %d-byte limit", size, streamLimit)
	}
	chunks := 0
	g.filter = func(m *groupMsg) bool {
		if _, ok := chunkOf(m); ok {
			chunks++
		}
		return true
	}
	g.start(f)
	g.caughtUp(l, f, 100)
	if got := g.submit(l, false, "DBSIZE"); got != ":4000" {
		t.Fatalf("leader DBSIZE %s", got)
	}
	for _, k := range []int{0, 1999, 3999} {
		if e, ok := g.reps[f].DB().LiveEntry(g.now/1e6, []byte(fmt.Sprintf("k%d", k))); !ok || !strings.HasSuffix(string(e.Value), fmt.Sprintf("%08d", k)) {
			t.Fatalf("follower's k%d = %q, %v", k, e.Value, ok)
		}
	}
	ls, fs := g.reps[l].GroupStats(), g.reps[f].GroupStats()
	if ls.SnapshotsSent != 1 || fs.SnapshotsReceived != 1 {
		t.Fatalf("snapshots sent %d, received %d: want 1 and 1", ls.SnapshotsSent, fs.SnapshotsReceived)
	}
	minChunks := int(size / streamLimit)
	if chunks < minChunks || ls.Snapshot.ChunksSent < uint64(minChunks) || fs.Snapshot.ChunksReceived < uint64(minChunks) {
		t.Fatalf("%d chunks on the bus, %d sent, %d received for a %d-byte snapshot: want at least %d", chunks, ls.Snapshot.ChunksSent, fs.Snapshot.ChunksReceived, size, minChunks)
	}
	if ls.Snapshot.ChunksRetried != 0 || fs.Snapshot.ChunksRefused != 0 || ls.Snapshot.StreamsAborted != 0 {
		t.Fatalf("a clean stream retried or refused: leader %+v follower %+v", ls.Snapshot, fs.Snapshot)
	}
	if ls.Snapshot.BytesSent != fs.Snapshot.BytesReceived || ls.Snapshot.BytesSent < uint64(size) {
		t.Fatalf("bytes sent %d, received %d, snapshot %d", ls.Snapshot.BytesSent, fs.Snapshot.BytesReceived, size)
	}
	// Raft learnt the outcome: the follower is replicated again.
	if st := g.reps[l].rn.Status().Progress[f].State; st != tracker.StateReplicate {
		t.Fatalf("leader's progress for n%d is %v after the install", f, st)
	}
	if g.maxSeen > streamLimit {
		t.Fatalf("longest message %d bytes", g.maxSeen)
	}
	// The follower's part file became its snapshot; it survives a restart.
	g.stop(f)
	g.start(f)
	if got, want := dump(g.reps[f], g.now), dump(g.reps[l], g.now); got != want {
		t.Fatal("follower lost the installed snapshot across a restart")
	}
	names, _ := disk.OS().List(disk.SnapshotDir(g.reps[f].opts.Dir))
	for _, n := range names {
		if strings.HasSuffix(n, ".part") {
			t.Fatalf("partial snapshot %s left after the install", n)
		}
	}
}

// A stream broken by lost messages, a follower restart and a leader
// restart still completes, resuming where the follower's file stood.
func TestSnapshotStreamSurvivesLossAndRestarts(t *testing.T) {
	// A small budget stretches the stream over many ticks.
	g := newStreamGroup(t, func(o *Options) { o.SnapshotSendBytesPerTick = 96 << 10 })
	l := g.waitLeader()
	f := g.follower(l)
	var other uint64
	for _, id := range g.ids {
		if id != l && id != f {
			other = id
		}
	}
	g.stop(f)
	g.fill(l, 0, 6000, 200)
	size := uint64(snapFileBytes(t, g.reps[l]))
	held := func() uint64 {
		if r := g.reps[f]; r != nil && r.g.snap.in != nil {
			return r.g.snap.in.held
		}
		return 0
	}
	tickUntil := func(what string, cond func() bool) {
		t.Helper()
		for i := 0; i < 200 && !cond(); i++ {
			g.tick()
		}
		if !cond() {
			t.Fatalf("never %s (follower holds %d of %d)", what, held(), size)
		}
	}
	g.start(f)

	// 1. Lost messages: every chunk dropped for 20 ticks, mid-stream.
	tickUntil("started", func() bool { return held() > size/8 })
	dropping := true
	dropped := 0
	g.filter = func(m *groupMsg) bool {
		if _, ok := chunkOf(m); ok && dropping {
			dropped++
			return false
		}
		return true
	}
	before := held()
	for i := 0; i < 20; i++ {
		g.tick()
	}
	dropping = false
	if dropped == 0 || held() != before {
		t.Fatalf("dropped %d chunks; follower went from %d to %d", dropped, before, held())
	}
	tickUntil("resumed after the loss", func() bool { return held() > before+size/8 })
	if g.reps[l].SnapshotStreams().ChunksRetried == 0 {
		t.Fatal("no chunk was sent again after the loss")
	}

	// 2. The follower restarts mid-stream: it keeps the sound prefix of
	// its partial file.
	before = held()
	g.stop(f)
	g.start(f)
	tickUntil("adopted the stream again", func() bool { return g.reps[f].g.snap.in != nil })
	if got := held(); got == 0 || got > before || before-got > 512<<10 {
		t.Fatalf("follower held %d before its restart, %d after: want most of it kept", before, got)
	}
	tickUntil("went on after the follower's restart", func() bool { return held() > before+size/16 })

	// 3. The leader restarts mid-stream and is elected again (the third
	// node is cut off meanwhile, so the leader streams the same file):
	// the follower keeps what it holds.
	before = held()
	cutOff := func(on bool) {
		for _, id := range g.ids {
			if id != other {
				g.cut[[2]uint64{other, id}], g.cut[[2]uint64{id, other}] = on, on
			}
		}
	}
	cutOff(true)
	g.stop(l)
	g.start(l)
	tickUntil("re-elected the leader", func() bool { return g.reps[l].IsLeader() })
	cutOff(false)
	if held() < before {
		t.Fatalf("follower held %d before the leader's restart, %d after", before, held())
	}
	if g.reps[f].SnapshotStreams().BytesReceived+before > size+512<<10 {
		t.Fatalf("after restarts the follower received %d bytes of a %d-byte snapshot holding %d", g.reps[f].SnapshotStreams().BytesReceived, size, before)
	}
	g.caughtUp(l, f, 300)
	if g.reps[f].GroupStats().SnapshotsReceived != 1 {
		t.Fatal("the follower did not install the snapshot")
	}
	if got := g.submit(l, false, "DBSIZE"); got != ":6000" {
		t.Fatalf("DBSIZE %s", got)
	}
}

// A new snapshot on the leader mid-stream does not end the stream under
// way: the follower installs it, then the next stream carries the new
// snapshot.
func TestSnapshotStreamFinishesThenTheNewerSnapshot(t *testing.T) {
	g := newStreamGroup(t, func(o *Options) { o.SnapshotSendBytesPerTick = 64 << 10 })
	l := g.waitLeader()
	f := g.follower(l)
	g.stop(f)
	g.fill(l, 0, 4000, 200)
	first := g.reps[l].store.snapIndex
	indexes := map[uint64]int{}
	g.filter = func(m *groupMsg) bool {
		if c, ok := chunkOf(m); ok {
			indexes[c.id.index]++
		}
		return true
	}
	g.start(f)
	for i := 0; i < 100 && indexes[first] < 4; i++ {
		g.tick()
	}
	if indexes[first] < 4 {
		t.Fatalf("stream of snapshot %d never started: %v", first, indexes)
	}
	// More writes and a snapshot at a newer index.
	g.fill(l, 4000, 400, 200)
	if got := g.submit(l, false, "SAVE"); got != "+OK" {
		t.Fatalf("SAVE: %s", got)
	}
	second := g.reps[l].store.snapIndex
	if second <= first {
		t.Fatalf("no newer snapshot: %d, then %d", first, second)
	}
	g.caughtUp(l, f, 300)
	if indexes[second] == 0 {
		t.Fatalf("no chunk of the newer snapshot %d was sent: %v", second, indexes)
	}
	if got := g.reps[f].Persistence().SnapshotIndex; got != second {
		t.Fatalf("follower installed snapshot %d, want the newer %d", got, second)
	}
	if ls := g.reps[l].SnapshotStreams(); ls.StreamsAborted != 0 || ls.StreamsStarted < 2 {
		t.Fatalf("leader %+v: want the first stream finished, then a second one", ls)
	}
}

// A leader that snapshots faster than it streams still catches a follower
// up: each stream under way finishes, so the follower installs snapshot
// after snapshot while the writes go on. (Ending a stream whenever a newer
// snapshot appeared left it behind for as long as the writes lasted.)
func TestSnapshotStreamCatchesUpWhileTheLeaderKeepsSnapshotting(t *testing.T) {
	g := newStreamGroup(t, func(o *Options) { o.SnapshotSendBytesPerTick = 64 << 10 })
	l := g.waitLeader()
	f := g.follower(l)
	g.stop(f)
	g.fill(l, 0, 4000, 200)
	g.start(f)
	installed := uint64(0)
	for i := 0; i < 40; i++ {
		g.fill(l, 4000+i*50, 50, 200)
		if got := g.submit(l, false, "SAVE"); got != "+OK" {
			t.Fatalf("SAVE: %s", got)
		}
		g.tick()
		installed = max(installed, g.reps[f].Persistence().SnapshotIndex)
	}
	if installed == 0 {
		t.Fatalf("the follower installed no snapshot while the leader took one every tick (leader %+v)", g.reps[l].SnapshotStreams())
	}
	g.caughtUp(l, f, 300)
}

// Chunks corrupted on the way are refused, counted, asked for again and
// never applied.
func TestSnapshotStreamResendsCorruptChunks(t *testing.T) {
	g := newStreamGroup(t, nil)
	l := g.waitLeader()
	f := g.follower(l)
	g.stop(f)
	g.fill(l, 0, 4000, 200)
	g.tolerate = true
	seen := 0
	corrupted := 0
	g.filter = func(m *groupMsg) bool {
		if _, ok := chunkOf(m); ok {
			seen++
			if seen == 3 || seen == 7 || seen == 8 {
				b := append([]byte(nil), m.data...)
				b[len(b)/2] ^= 0x20
				m.data = b
				corrupted++
			}
		}
		return true
	}
	g.start(f)
	g.caughtUp(l, f, 200)
	if corrupted != 3 || len(g.stepErrs) != 3 {
		t.Fatalf("corrupted %d chunks, %d step errors (%v)", corrupted, len(g.stepErrs), g.stepErrs)
	}
	for _, err := range g.stepErrs {
		if !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("step error %v", err)
		}
	}
	fs, ls := g.reps[f].SnapshotStreams(), g.reps[l].SnapshotStreams()
	if fs.ChunksRefused < 3 || ls.ChunksRetried == 0 || fs.VerifyFailures != 0 {
		t.Fatalf("follower %+v, leader %+v: want the corrupt chunks refused and sent again", fs, ls)
	}
	if g.reps[f].GroupStats().SnapshotsReceived != 1 {
		t.Fatal("no snapshot installed")
	}
}

// A file that arrives whole but fails verification (the bytes were
// damaged on the follower's disk after the chunk checks) is received again
// from its sound prefix.
func TestSnapshotStreamReceivesAgainAFileThatFailsVerification(t *testing.T) {
	g := newStreamGroup(t, nil)
	l := g.waitLeader()
	f := g.follower(l)
	g.stop(f)
	g.fill(l, 0, 4000, 200)
	size := uint64(snapFileBytes(t, g.reps[l]))
	damaged := false
	g.filter = func(m *groupMsg) bool {
		c, ok := chunkOf(m)
		if ok && !damaged && c.offset+uint64(len(c.data)) == size {
			// Just before the last chunk lands, damage the middle of
			// what the follower wrote.
			in := g.reps[f].g.snap.in
			b, err := g.readAll(in.name)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			if err := g.writeAll(in.name, b); err != nil {
				t.Fatal(err)
			}
			damaged = true
		}
		return true
	}
	g.start(f)
	g.caughtUp(l, f, 200)
	if !damaged {
		t.Fatal("the last chunk never came")
	}
	fs := g.reps[f].SnapshotStreams()
	if fs.VerifyFailures != 1 || fs.BytesReceived >= 2*size {
		t.Fatalf("follower %+v for a %d-byte snapshot: want one verify failure and only the damaged part again", fs, size)
	}
}

// Malformed, misaddressed, stale and out-of-order stream messages are
// refused and counted; none is written.
func TestSnapshotStreamRefusesBadMessages(t *testing.T) {
	g := newStreamGroup(t, nil)
	l := g.waitLeader()
	f := g.follower(l)
	r := g.reps[f]
	term := r.Term()
	id := streamID{term: term, seq: 1, index: 1 << 40, size: 1000, fp: 7}
	chunk := func(m snapMsg) []byte {
		m.kind = peerKindSnapChunk
		return encodeSnapMsg(make([]byte, snapMsgHeaderBytes+len(m.data)), &m)
	}
	good := chunk(snapMsg{from: l, to: f, id: id, epoch: 1, offset: 0, data: []byte("KEELSNP1")})
	corrupt := append([]byte(nil), good...)
	corrupt[20] ^= 1
	cases := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"unknown kind", []byte{0x42, 1, 2, 3}, "unknown kind"},
		{"short", good[:30], "shorter than"},
		{"corrupt", corrupt, "checksum"},
		{"misaddressed", chunk(snapMsg{from: l, to: 99, id: id, epoch: 1, data: []byte("x")}), "reached node"},
		{"past the end", chunk(snapMsg{from: l, to: f, id: id, epoch: 1, offset: 999, data: []byte("xy")}), "past the snapshot"},
		{"stale term", chunk(snapMsg{from: l, to: f, id: streamID{term: term - 1, seq: 9, index: 1 << 40, size: 1000, fp: 7}, epoch: 1, data: []byte("x")}), ""},
		{"out of order", chunk(snapMsg{from: l, to: f, id: id, epoch: 1, offset: 500, data: []byte("x")}), ""},
	}
	refused := r.SnapshotStreams().ChunksRefused
	for _, c := range cases {
		err := r.Step(g.now, c.data)
		switch {
		case c.wantErr == "" && err != nil, c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Fatalf("%s: error %v, want %q", c.name, err, c.wantErr)
		}
		if c.name != "unknown kind" { // not a stream message at all
			refused++
		}
		if got := r.SnapshotStreams().ChunksRefused; got != refused {
			t.Fatalf("%s: refused count %d, want %d", c.name, got, refused)
		}
		if in := r.g.snap.in; in != nil && in.held != 0 {
			t.Fatalf("%s: follower wrote %d bytes", c.name, in.held)
		}
	}
	// The stream the out-of-order chunk opened takes the chunk in order.
	if err := r.Step(g.now, good); err != nil || r.g.snap.in == nil || r.g.snap.in.held != 8 {
		t.Fatalf("in-order chunk: %v", err)
	}
	// A MsgSnap that carries a snapshot the old way, not a streamed one,
	// reaches no Raft.
	g.queue = nil
	if err := r.Step(g.now, legacyMsgSnap(t, l, f, term)); err == nil || !strings.Contains(err.Error(), "streamed snapshot") {
		t.Fatalf("MsgSnap with inline data: %v", err)
	}
	if r.applied >= 1<<40 {
		t.Fatal("applied a snapshot it never received")
	}
}

// legacyMsgSnap is a MsgSnap as leaders sent it before streaming: the
// whole file in Data.
func legacyMsgSnap(t *testing.T, from, to, term uint64) []byte {
	m := pb.Message{Type: pb.MsgSnap, From: from, To: to, Term: term, Snapshot: &pb.Snapshot{
		Data:     []byte("KEELSNP1 and the rest of a snapshot file"),
		Metadata: pb.SnapshotMetadata{Index: 1 << 40, Term: term, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}},
	}}
	b, err := encodeRaftMsg(&m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (g *testGroup) readAll(name string) ([]byte, error) { return disk.ReadFile(g.fs, name) }

// writeAll rewrites a file in place, as bit rot would: Create over an
// existing file truncates the same file, so the follower's open handle
// sees the new bytes.
func (g *testGroup) writeAll(name string, b []byte) error {
	f, err := g.fs.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Seeded faults on every message (loss, delay past later messages,
// duplication) and restarts of the follower mid-stream: the stream always
// completes, and nothing over the limit is ever sent.
func TestSnapshotStreamUnderRandomFaults(t *testing.T) {
	seeds := 8
	if testing.Short() {
		seeds = 3
	}
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			g := newStreamGroup(t, func(o *Options) { o.SnapshotSendBytesPerTick = 128 << 10 })
			l := g.waitLeader()
			f := g.follower(l)
			g.stop(f)
			g.fill(l, 0, 5000, 200)
			rng := rand.New(rand.NewPCG(uint64(seed), 99))
			var later []groupMsg
			g.filter = func(m *groupMsg) bool {
				switch x := rng.Float64(); {
				case x < 0.08:
					return false
				case x < 0.16:
					later = append(later, *m)
					return false
				case x < 0.20:
					g.queue = append(g.queue, *m)
				}
				return true
			}
			g.start(f)
			restarts := 0
			for i := 0; i < 1500; i++ {
				rng.Shuffle(len(later), func(a, b int) { later[a], later[b] = later[b], later[a] })
				g.queue = append(g.queue, later...)
				later = nil
				if in := g.reps[f].g.snap.in; in != nil && in.held > 0 && restarts < 3 && rng.IntN(20) == 0 {
					g.stop(f)
					g.start(f)
					restarts++
				}
				g.tick()
				g.runJobs()
				if g.reps[f].applied >= g.reps[l].applied && dump(g.reps[f], g.now) == dump(g.reps[l], g.now) {
					t.Logf("caught up after %d ticks, %d follower restarts; leader %+v", i, restarts, g.reps[l].SnapshotStreams())
					return
				}
			}
			t.Fatalf("never caught up (%d restarts): leader %+v follower %+v", restarts, g.reps[l].SnapshotStreams(), g.reps[f].SnapshotStreams())
		})
	}
}

// Hundreds of MB through the bus, with the default message limit.
func TestSnapshotStreamHundredsOfMB(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 256 MB")
	}
	g := newTestGroup(t, 3, func(o *Options) { o.Fsync = FsyncNo })
	g.msgMax = MessageBytesMaxDefault
	l := g.waitLeader()
	f := g.follower(l)
	g.stop(f)
	const keys, valBytes = 2560, 100 << 10
	pad := strings.Repeat("v", valBytes-8)
	for i := 0; i < keys; i += 32 {
		var cmds []string
		for k := i; k < i+32; k++ {
			cmds = append(cmds, fmt.Sprintf("SET k%d %s%08d", k, pad, k))
		}
		g.submit(l, false, cmds...)
		g.runJobs()
	}
	g.submit(l, false, "SAVE")
	size := uint64(snapFileBytes(t, g.reps[l]))
	if size < 250<<20 {
		t.Fatalf("snapshot of %d bytes", size)
	}
	g.start(f)
	for i := 0; i < 400 && g.reps[f].applied < g.reps[l].applied; i++ {
		g.tick()
	}
	if g.reps[f].applied < g.reps[l].applied {
		t.Fatalf("follower at %d, leader at %d: %+v", g.reps[f].applied, g.reps[l].applied, g.reps[l].SnapshotStreams())
	}
	if n := g.reps[f].DB().Len(); n != keys {
		t.Fatalf("follower holds %d keys", n)
	}
	for _, k := range []int{0, keys / 2, keys - 1} {
		if e, ok := g.reps[f].DB().LiveEntry(g.now/1e6, []byte(fmt.Sprintf("k%d", k))); !ok || len(e.Value) != valBytes || !strings.HasSuffix(string(e.Value), fmt.Sprintf("%08d", k)) {
			t.Fatalf("follower's k%d: %d bytes, %v", k, len(e.Value), ok)
		}
	}
	ls := g.reps[l].SnapshotStreams()
	if ls.BytesSent < size || ls.BytesSent > size+size/16 || ls.ChunksSent < size/snapChunkBytesMax {
		t.Fatalf("leader %+v for a %d-byte snapshot", ls, size)
	}
	t.Logf("%d MB in %d chunks; longest message %d bytes", size>>20, ls.ChunksSent, g.maxSeen)
}

// BenchmarkSnapshotChunk is what a leader does per chunk it streams: read
// 1 MiB of the snapshot file (from the page cache) into a new message and
// checksum it. Its MB/s bounds what the throttle's budget costs a tick.
func BenchmarkSnapshotChunk(b *testing.B) {
	name := path.Join(b.TempDir(), "snap")
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := disk.OS().Open(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const n = snapChunkBytesMax
	b.SetBytes(n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf := make([]byte, snapMsgHeaderBytes+n)
		off := int64(i%64) * n
		if _, err := f.ReadAt(buf[snapMsgHeaderBytes:], off); err != nil {
			b.Fatal(err)
		}
		m := snapMsg{kind: peerKindSnapChunk, to: 2, id: streamID{size: 64 << 20}, offset: uint64(off), data: buf[snapMsgHeaderBytes:]}
		encodeSnapMsg(buf, &m)
	}
}
