package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/keel-db/keel/disk"
	pb "go.etcd.io/raft/v3/raftpb"
)

// testGroup is a replicated group wired by an in-memory message queue that
// the test drains explicitly: delivery order is deterministic.
type testGroup struct {
	t     *testing.T
	fs    disk.FS // one in-memory disk, a directory per node
	ids   []uint64
	reps  map[uint64]*Replica
	down  map[uint64]bool
	cut   map[[2]uint64]bool
	queue []groupMsg
	now   int64
	opts  func(*Options)

	changes []string

	// Bus checks and faults (snapstream_test.go): every message handed to
	// Send must fit msgMax (when set; maxSeen is the longest seen); filter
	// may drop (false) or alter a message as it is delivered; with
	// tolerate set, Step errors are collected in stepErrs instead of
	// failing the test.
	msgMax   int
	maxSeen  int
	filter   func(m *groupMsg) bool
	tolerate bool
	stepErrs []error
}

type groupMsg struct {
	from, to uint64
	data     []byte
}

func newTestGroup(t *testing.T, n int, opts ...func(*Options)) *testGroup {
	g := &testGroup{t: t, fs: disk.NewMemFS(), reps: map[uint64]*Replica{}, down: map[uint64]bool{}, cut: map[[2]uint64]bool{}, now: t0}
	for i := 1; i <= n; i++ {
		g.ids = append(g.ids, uint64(i))
	}
	if len(opts) > 0 {
		g.opts = opts[0]
	}
	for _, id := range g.ids {
		g.start(id)
	}
	return g
}

func (g *testGroup) start(id uint64) { g.startWith(id, false) }

func (g *testGroup) startWith(id uint64, join bool) {
	g.t.Helper()
	r := openT(g.t, g.fs, fmt.Sprint(id), func(o *Options) {
		o.ID, o.Peers, o.Join = id, g.ids, join
		o.OnConfChange = func(n uint64, added bool, addr string) {
			g.changes = append(g.changes, fmt.Sprintf("n%d: %d added=%v %s", id, n, added, addr))
		}
		o.Rand = rand.New(rand.NewPCG(id, 7))
		o.Send = func(to uint64, msg []byte) {
			if g.msgMax > 0 && len(msg) > g.msgMax {
				g.t.Errorf("n%d sent a %d-byte message to n%d, over the %d-byte limit", id, len(msg), to, g.msgMax)
			}
			g.maxSeen = max(g.maxSeen, len(msg))
			g.queue = append(g.queue, groupMsg{from: id, to: to, data: msg})
		}
		o.Redirect = func(req *Request, leader uint64) string {
			if leader == 0 {
				return "TRYAGAIN no leader"
			}
			return fmt.Sprintf("MOVED 0 n%d", leader)
		}
		if g.opts != nil {
			g.opts(o)
		}
	})
	g.reps[id] = r
	delete(g.down, id)
}

func (g *testGroup) stop(id uint64) {
	if err := g.reps[id].Close(); err != nil {
		g.t.Fatalf("close %d: %v", id, err)
	}
	g.down[id] = true
	delete(g.reps, id)
}

// deliver runs the message queue until it is empty.
func (g *testGroup) deliver() {
	for steps := 0; len(g.queue) > 0; steps++ {
		m := g.queue[0]
		if steps > 100000 {
			pm, _ := decodeRaftMsg(m.data, m.to)
			g.t.Fatalf("messages never settle: %d→%d %s idx=%d logterm=%d commit=%d reject=%v hint=%d", m.from, m.to, pm.Type, pm.Index, pm.LogTerm, pm.Commit, pm.Reject, pm.RejectHint)
		}
		g.queue = g.queue[1:]
		r := g.reps[m.to]
		if r == nil || g.down[m.from] || g.cut[[2]uint64{m.from, m.to}] {
			continue
		}
		if g.filter != nil && !g.filter(&m) {
			continue
		}
		if err := r.Step(g.now, m.data); err != nil {
			if !g.tolerate {
				g.t.Fatalf("step %d→%d: %v", m.from, m.to, err)
			}
			g.stepErrs = append(g.stepErrs, err)
		}
	}
}

// tick advances time by 100 ms on every live replica and delivers.
func (g *testGroup) tick() {
	g.now += 100e6
	for _, id := range g.ids {
		if r := g.reps[id]; r != nil {
			r.Tick(g.now)
		}
	}
	g.deliver()
}

func (g *testGroup) leader() uint64 {
	for _, id := range g.ids {
		if r := g.reps[id]; r != nil && r.IsLeader() {
			return id
		}
	}
	return 0
}

func (g *testGroup) waitLeader() uint64 {
	g.t.Helper()
	for i := 0; i < 100; i++ {
		if l := g.leader(); l != 0 {
			return l
		}
		g.tick()
	}
	g.t.Fatal("no leader elected in 10 s")
	return 0
}

// submit sends one batch to node id and returns its replies once done
// (ticking as needed).
func (g *testGroup) submit(id uint64, readOnly bool, cmds ...string) string {
	g.t.Helper()
	reqs := make([]Request, len(cmds))
	for i, c := range cmds {
		reqs[i] = Request{Argv: argv(c), ReadOnly: readOnly}
	}
	return g.run(id, reqs)
}

// submitArgv is submit with raw argvs.
func (g *testGroup) submitArgv(id uint64, cmds ...[][]byte) string {
	g.t.Helper()
	reqs := make([]Request, len(cmds))
	for i, c := range cmds {
		reqs[i] = Request{Argv: c}
	}
	return g.run(id, reqs)
}

// run submits reqs (their writers set to one recorder) and waits for
// every reply.
func (g *testGroup) run(id uint64, reqs []Request) string {
	g.t.Helper()
	w := &rec{}
	for i := range reqs {
		reqs[i].W = w
	}
	done := false
	g.reps[id].SubmitAsync(g.now, reqs, func() { done = true })
	g.deliver()
	for i := 0; !done && i < 50; i++ {
		g.tick()
	}
	if !done {
		g.t.Fatalf("batch on n%d never finished (replies so far %q)", id, w.String())
	}
	if len(w.out) < len(reqs) {
		g.t.Fatalf("batch on n%d: %d replies for %d commands", id, len(w.out), len(reqs))
	}
	return w.String()
}

func TestGroupReplicatesAndRedirects(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	f := g.ids[0]
	if f == l {
		f = g.ids[1]
	}
	if got := g.submit(l, false, "SET a 1", "INCR a", "GET a", "SET b x"); got != "+OK :2 $2 +OK" {
		t.Fatalf("leader batch: %q", got)
	}
	// A follower redirects writes and keyed reads, serves keyless reads.
	if got := g.submit(f, false, "SET a 5"); got != fmt.Sprintf("-MOVED 0 n%d", l) {
		t.Fatalf("follower write: %q", got)
	}
	if got := g.submit(f, false, "GET a"); got != fmt.Sprintf("-MOVED 0 n%d", l) {
		t.Fatalf("follower read: %q", got)
	}
	g.tick() // heartbeat carries the commit index
	if got := g.submit(f, false, "DBSIZE"); got != ":2" {
		t.Fatalf("follower DBSIZE: %q", got)
	}
	// READONLY reads on a fresh follower see committed writes.
	if got := g.submit(f, true, "GET a", "GET b"); got != "$2 $x" {
		t.Fatalf("READONLY follower read: %q", got)
	}
	// Every replica applied the same state.
	want := dump(g.reps[l], g.now)
	for _, id := range g.ids {
		if got := dump(g.reps[id], g.now); got != want {
			t.Fatalf("n%d state %q, leader %q", id, got, want)
		}
	}
}

func TestGroupFailoverKeepsAcknowledgedWrites(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	for i := 0; i < 20; i++ {
		if got := g.submit(l, false, fmt.Sprintf("SET k%d v%d", i, i)); got != "+OK" {
			t.Fatalf("set: %q", got)
		}
	}
	g.stop(l)
	l2 := g.waitLeader()
	if l2 == l {
		t.Fatalf("stopped node still leader")
	}
	for i := 0; i < 20; i++ {
		if got := g.submit(l2, false, fmt.Sprintf("GET k%d", i)); got != fmt.Sprintf("$v%d", i) {
			t.Fatalf("after failover GET k%d = %q", i, got)
		}
	}
	if got := g.submit(l2, false, "SET after failover"); got != "+OK" {
		t.Fatalf("write after failover: %q", got)
	}
	// The old leader comes back as a follower and catches up.
	g.start(l)
	for i := 0; i < 30; i++ {
		g.tick()
	}
	if g.reps[l].IsLeader() && g.leader() != l {
		t.Fatal("two leaders")
	}
	l3 := g.waitLeader()
	if got := g.submit(l3, false, "GET after"); got != "$failover" {
		t.Fatalf("GET after = %q", got)
	}
	for i := 0; i < 5; i++ {
		g.tick()
	}
	want := dump(g.reps[l3], g.now)
	if got := dump(g.reps[l], g.now); got != want {
		t.Fatalf("restarted n%d state\n%s\nleader\n%s", l, got, want)
	}
}

func TestGroupLeaderCutOffFailsItsWritesAndStepsDown(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	for _, id := range g.ids {
		if id != l {
			g.cut[[2]uint64{l, id}], g.cut[[2]uint64{id, l}] = true, true
		}
	}
	// A write is proposed at once and its outcome is unknown when the
	// leader steps down; a read waits for a ReadIndex that never comes
	// and, never having run, is redirected.
	w, wr := &rec{}, &rec{}
	done, doneR := false, false
	g.reps[l].SubmitAsync(g.now, []Request{{Argv: argv("SET x 1"), W: w}}, func() { done = true })
	g.reps[l].SubmitAsync(g.now, []Request{{Argv: argv("GET x"), W: wr}}, func() { doneR = true })
	for i := 0; i < 40 && !(done && doneR); i++ {
		g.tick()
	}
	if !done || !doneR {
		t.Fatal("isolated leader never answered")
	}
	if w.String() != "-"+ErrMsgLeaderLost {
		t.Fatalf("isolated leader's write: %q", w.out)
	}
	if wr.String() != "-TRYAGAIN no leader" {
		t.Fatalf("isolated leader's read: %q", wr.out)
	}
	if g.reps[l].IsLeader() {
		t.Fatal("isolated leader did not step down (CheckQuorum)")
	}
	// The majority elects a new leader (within an election timeout of the
	// cut: it may not have yet when the old leader stepped down, since
	// Raft randomises each follower's timeout); the cut-off write did not
	// commit there.
	var l2 uint64
	for i := 0; i < 40 && l2 == 0; i++ {
		for _, id := range g.ids {
			if id != l && g.reps[id].IsLeader() {
				l2 = id
			}
		}
		if l2 == 0 {
			g.tick()
		}
	}
	if l2 == 0 {
		t.Fatal("majority has no leader")
	}
	if got := g.submit(l2, false, "GET x"); got != "$nil" {
		t.Fatalf("GET x on new leader = %q", got)
	}
	clear(g.cut)
	for i := 0; i < 20; i++ {
		g.tick()
	}
	if got := g.submit(g.waitLeader(), false, "SET x 2", "GET x"); got != "+OK $2" {
		t.Fatalf("after heal: %q", got)
	}
}

func TestGroupSnapshotCatchesUpALaggingFollower(t *testing.T) {
	g := newTestGroup(t, 3, func(o *Options) { o.SnapshotLogBytes = 4 << 10 })
	l := g.waitLeader()
	var f uint64
	for _, id := range g.ids {
		if id != l {
			f = id
		}
	}
	g.stop(f)
	val := strings.Repeat("v", 200)
	for i := 0; i < 200; i++ {
		if got := g.submit(l, false, fmt.Sprintf("SET k%d %s", i, val)); got != "+OK" {
			t.Fatalf("set: %q", got)
		}
		// Run snapshot jobs inline, as a runtime would.
		for _, id := range g.ids {
			if r := g.reps[id]; r != nil {
				if j := r.PendingJob(); j != nil {
					r.JobDone(j, j.Run())
				}
			}
		}
	}
	if g.reps[l].store.snapIndex == 0 {
		t.Fatal("leader never compacted its log")
	}
	// The follower's log ends before the leader's first entry: it can only
	// catch up from a snapshot. (A node that lost its disk must not
	// rejoin under its old id at all: its vote and log are gone.)
	g.start(f)
	for i := 0; i < 30; i++ {
		g.tick()
	}
	if g.reps[f].GroupStats().SnapshotsReceived == 0 {
		t.Fatal("follower got no snapshot")
	}
	want := dump(g.reps[l], g.now)
	if got := dump(g.reps[f], g.now); got != want {
		t.Fatalf("follower after snapshot has %d bytes of state, leader %d", len(got), len(want))
	}
	// It survives its own restart from the installed snapshot.
	g.stop(f)
	g.start(f)
	if got := dump(g.reps[f], g.now); got != want {
		t.Fatal("follower lost the installed snapshot across a restart")
	}
}

func TestGroupWatchDecidesOnAppliedState(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	r := g.reps[l]
	if got := g.submit(l, false, "SET a 1"); got != "+OK" {
		t.Fatal(got)
	}
	exec := func(w *rec, version uint64) Request {
		return Request{Argv: argv("EXEC"), W: w, Txn: &Txn{
			Cmds:      [][][]byte{argv("INCR a")},
			Watched:   []Watch{{Key: []byte("a"), Version: version}},
			WatchedOn: r,
		}}
	}
	// Unchanged since WATCH: the transaction runs.
	w := &rec{}
	done := false
	r.SubmitAsync(g.now, []Request{exec(w, r.KeyVersion(g.now, []byte("a")))}, func() { done = true })
	for i := 0; i < 20 && !done; i++ {
		g.tick()
	}
	if w.String() != "*1 :2" {
		t.Fatalf("EXEC: %q", w.out)
	}
	// A write of another batch, proposed but not yet committed when EXEC
	// arrives, must abort it: EXEC waits until that write has applied.
	v := r.KeyVersion(g.now, []byte("a"))
	ws, wx := &rec{}, &rec{}
	n := 0
	r.SubmitAsync(g.now, []Request{{Argv: argv("SET a 100"), W: ws}}, func() { n++ })
	r.SubmitAsync(g.now, []Request{exec(wx, v)}, func() { n++ })
	if len(wx.out) != 0 {
		t.Fatalf("EXEC answered before the write ahead of it committed: %q", wx.out)
	}
	for i := 0; i < 20 && n < 2; i++ {
		g.tick()
	}
	if ws.String() != "+OK" || wx.String() != "*nil" {
		t.Fatalf("SET %q, EXEC %q", ws.out, wx.out)
	}
	if got := g.submit(l, false, "GET a"); got != "$100" {
		t.Fatalf("GET a = %q", got)
	}
}

func TestGroupMembershipChangeUnderWrites(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	for i := 0; i < 10; i++ {
		g.submit(l, false, fmt.Sprintf("SET k%d %d", i, i))
	}
	// Node 4 joins: started empty with Join, then added by the leader.
	g.ids = append(g.ids, 4)
	g.startWith(4, true)
	if got := g.submit(l, false, "CLUSTER ADDNODE 4 127.0.0.1:7004", "SET after add"); got != "+OK +OK" {
		t.Fatalf("ADDNODE: %q", got)
	}
	if got := g.submit(l, false, "CLUSTER ADDNODE 4 127.0.0.1:7004"); !strings.Contains(got, "already a member") {
		t.Fatalf("second ADDNODE: %q", got)
	}
	for i := 0; i < 10; i++ {
		g.tick()
	}
	if v := g.reps[l].Voters(); fmt.Sprint(v) != "[1 2 3 4]" {
		t.Fatalf("voters %v", v)
	}
	if got := dump(g.reps[4], g.now); got != dump(g.reps[l], g.now) {
		t.Fatalf("new member state\n%s\nleader\n%s", got, dump(g.reps[l], g.now))
	}
	// Remove the leader itself: it steps down and the rest go on.
	if got := g.submit(l, false, fmt.Sprintf("CLUSTER DELNODE %d", l)); got != "+OK" {
		t.Fatalf("DELNODE: %q", got)
	}
	g.stop(l)
	rest := []uint64{}
	for _, id := range g.ids {
		if id != l {
			rest = append(rest, id)
		}
	}
	g.ids = rest
	l2 := g.waitLeader()
	if got := g.submit(l2, false, "SET after remove", "GET k3", "GET after"); got != "+OK $3 $remove" {
		t.Fatalf("after DELNODE: %q", got)
	}
	if v := fmt.Sprint(g.reps[l2].Voters()); strings.Contains(v, fmt.Sprint(l)) {
		t.Fatalf("voters %s still hold n%d", v, l)
	}
	found := false
	for _, c := range g.changes {
		found = found || strings.HasSuffix(c, "4 added=true 127.0.0.1:7004")
	}
	if !found {
		t.Fatalf("OnConfChange never reported node 4 with its address: %q", g.changes)
	}
	if got := g.submit(l2, false, "CLUSTER DELNODE 99"); !strings.Contains(got, "not a member") {
		t.Fatalf("DELNODE of a stranger: %q", got)
	}
}

func TestGroupFunctionsRunOnQuiescentState(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	if got := g.submitArgv(l, loadArgv(t, "counter"), loadArgv(t, "transfer")); got != "$counter $transfer" {
		t.Fatalf("load: %s", got)
	}
	// The single-node story of TestFunctionsThroughTheLog: every call sees
	// the writes and calls before it, in one pipelined batch.
	if got := g.submit(l, false, fcallStory...); got != fcallStoryWant {
		t.Fatalf("got  %q\nwant %q", got, fcallStoryWant)
	}
	// Two clients' calls interleaved: no lost update.
	w1, w2 := &rec{}, &rec{}
	n := 0
	for i := 0; i < 5; i++ {
		g.reps[l].SubmitAsync(g.now, []Request{{Argv: argv("FCALL incr_by 1 c 1"), W: w1}}, func() { n++ })
		g.reps[l].SubmitAsync(g.now, []Request{{Argv: argv("INCR c"), W: w2}}, func() { n++ })
	}
	for i := 0; i < 50 && n < 10; i++ {
		g.tick()
	}
	if got := g.submit(l, false, "GET c"); got != "$26" {
		t.Fatalf("c = %q after 5 FCALL incr_by and 5 INCR from 16 (replies %q / %q)", got, w1.out, w2.out)
	}
	// Followers applied the effects, and load the library from the log.
	for i := 0; i < 3; i++ {
		g.tick()
	}
	for _, id := range g.ids {
		if d := dump(g.reps[id], g.now); d != dump(g.reps[l], g.now) {
			t.Fatalf("n%d diverged:\n%s", id, d)
		}
	}
}

// runJobs runs every replica's pending snapshot job inline, as a runtime
// would on another goroutine.
func (g *testGroup) runJobs() {
	for _, id := range g.ids {
		if r := g.reps[id]; r != nil {
			if j := r.PendingJob(); j != nil {
				r.JobDone(j, j.Run())
			}
		}
	}
}

// A node added after the log was compacted can only start from a
// snapshot, and Raft ignores one that does not list it: the change itself
// must lead to a snapshot that does (cluster-membership seeds 41, 75).
func TestGroupMemberAddedAfterCompactionCatchesUp(t *testing.T) {
	g := newTestGroup(t, 3, func(o *Options) { o.SnapshotLogBytes = 4 << 10 })
	l := g.waitLeader()
	val := strings.Repeat("v", 200)
	for i := 0; i < 100; i++ {
		g.submit(l, false, fmt.Sprintf("SET k%d %s", i, val))
		g.runJobs()
	}
	if g.reps[l].store.snapIndex == 0 {
		t.Fatal("leader never compacted its log")
	}
	g.ids = append(g.ids, 4)
	g.startWith(4, true)
	if got := g.submit(l, false, "CLUSTER ADDNODE 4 n4"); got != "+OK" {
		t.Fatalf("ADDNODE: %q", got)
	}
	sent := g.reps[l].GroupStats().SnapshotsSent
	for i := 0; i < 30; i++ {
		g.tick()
		g.runJobs()
	}
	if got, want := dump(g.reps[4], g.now), dump(g.reps[l], g.now); got != want {
		t.Fatalf("n4 never caught up: %d bytes of state, leader %d", len(got), len(want))
	}
	if n := g.reps[l].GroupStats().SnapshotsSent - sent; n == 0 || n > 5 {
		t.Fatalf("leader sent %d snapshots to catch n4 up, want a few", n)
	}
}

// A member's address survives the compaction of the ADDNODE that gave it:
// a replica restarted from a snapshot taken after it, and a new member
// that installs a snapshot from its leader, tell the runtime every
// member's address before anything else (members.go). Without it a
// restarted node could neither reach the member nor accept its messages.
func TestMemberAddressesSurviveSnapshots(t *testing.T) {
	g := newTestGroup(t, 3, func(o *Options) { o.SnapshotLogBytes = 4 << 10 })
	l := g.waitLeader()
	g.ids = append(g.ids, 4)
	g.startWith(4, true)
	if got := g.submit(l, false, "CLUSTER ADDNODE 4 127.0.0.1:7004"); got != "+OK" {
		t.Fatalf("ADDNODE: %q", got)
	}
	val := strings.Repeat("v", 200)
	for i := 0; i < 100; i++ {
		g.submit(l, false, fmt.Sprintf("SET k%d %s", i, val))
		g.runJobs()
	}
	follower := uint64(1)
	if follower == l {
		follower = 2
	}
	if g.reps[follower].store.snapIndex == 0 {
		t.Fatal("the follower never compacted its log")
	}
	g.stop(follower)
	g.changes = nil
	g.start(follower)
	want := fmt.Sprintf("n%d: 4 added=true 127.0.0.1:7004", follower)
	if !slices.Contains(g.changes, want) {
		t.Fatalf("restart from a snapshot reported %q, want %q among them", g.changes, want)
	}
	// A fifth member catches up from a snapshot and learns node 4's
	// address from it.
	g.ids = append(g.ids, 5)
	g.startWith(5, true)
	if got := g.submit(l, false, "CLUSTER ADDNODE 5 127.0.0.1:7005"); got != "+OK" {
		t.Fatalf("ADDNODE 5: %q", got)
	}
	for i := 0; i < 30; i++ {
		g.tick()
		g.runJobs()
	}
	if !slices.Contains(g.changes, "n5: 4 added=true 127.0.0.1:7004") {
		t.Fatalf("the new member never learned node 4's address: %q", g.changes)
	}
	// A snapshot entry that lies is refused, not half applied.
	r := g.reps[l]
	good := r.membersDump()
	for _, bad := range [][]byte{nil, {2}, append(slices.Clone(good), 0), good[:len(good)-1]} {
		if err := r.restoreMembers(bad); err == nil {
			t.Errorf("restoreMembers(%q) accepted", bad)
		}
	}
}

// TestFollowerBehindIsNotFresh: a follower that restarted behind the
// group, and hears the leader's heartbeats but none of its appends,
// redirects READONLY reads instead of answering from its old state.
// Raft's heartbeats carry the commit index capped at what the leader
// knows the follower holds, so they alone made it count itself fresh and
// serve reads of any age (cluster-big-snapshots, seed 3: 5.4 s stale).
func TestFollowerBehindIsNotFresh(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	f := g.follower(l)
	g.submit(l, false, "SET k old")
	for i := 0; i < 3; i++ {
		g.tick()
	}
	if got := g.submit(f, true, "GET k"); got != "$old" {
		t.Fatalf("a caught-up follower answers %q, want $old", got)
	}
	g.stop(f)
	g.submit(l, false, "SET k new")
	g.start(f)
	g.filter = func(m *groupMsg) bool {
		pm, err := decodeRaftMsg(m.data, m.to)
		return m.to != f || err != nil || pm.Type != pb.MsgApp
	}
	for i := 0; i < 5; i++ {
		g.tick() // heartbeats reach f, appends do not
	}
	if got := g.submit(f, true, "GET k"); got == "$old" {
		t.Fatalf("a follower behind the group served a stale read: %q", got)
	}
	g.filter = nil
	for i := 0; i < 5; i++ {
		g.tick()
	}
	if got := g.submit(f, true, "GET k"); got != "$new" {
		t.Fatalf("the follower, caught up, answers %q, want $new", got)
	}
}

// A learner survives the compaction of the change that added it: every
// replica restarted from a snapshot taken while the learner was still
// catching up keeps it in its configuration (the snapshot file's header
// lists learners as well as voters), so a leader restarted then does not
// forget it and need to add it again.
func TestLearnerSurvivesRestartFromSnapshot(t *testing.T) {
	g := newTestGroup(t, 3, func(o *Options) { o.SnapshotLogBytes = 4 << 10 })
	l := g.waitLeader()
	if err := g.reps[l].ProposeMembership(AddLearner, 4, "n4"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		g.tick()
	}
	val := strings.Repeat("v", 200)
	for i := 0; i < 100; i++ {
		g.submit(l, false, fmt.Sprintf("SET k%d %s", i, val))
		g.runJobs()
	}
	for _, id := range []uint64{1, 2, 3} {
		if g.reps[id].store.snapIndex == 0 {
			t.Fatalf("n%d never compacted its log", id)
		}
		if got := fmt.Sprint(g.reps[id].Learners()); got != "[4]" {
			t.Fatalf("n%d's learners before the restart: %s", id, got)
		}
	}
	for _, id := range []uint64{1, 2, 3} {
		g.stop(id)
		g.start(id)
		if got := fmt.Sprint(g.reps[id].Learners()); got != "[4]" {
			t.Fatalf("n%d restarted from its snapshot has learners %s, want [4]", id, got)
		}
	}
	l = g.waitLeader()
	if got := fmt.Sprint(g.reps[l].Voters(), g.reps[l].Learners()); got != "[1 2 3] [4]" {
		t.Fatalf("leader n%d after the restarts: voters and learners %s", l, got)
	}
}

// A read the leader serves while an earlier write is still in flight runs
// at a later time than that write's entry. It must not move the leader's
// log clock: the write would then apply at a later time on the leader
// than on the followers, and a key expiring in between would leave them
// holding different values (cluster-grammar seed 742 found it, with
// batches answered in the middle of a Ready).
func TestLeaderReadDoesNotMoveTheLogClock(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	if got := g.submit(l, false, "SET k 5 PX 1000"); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	// The INCR is proposed now (the key alive) but cannot commit: the
	// appends are held back, heartbeats (and so read rounds) are not.
	g.filter = func(m *groupMsg) bool {
		pm, err := decodeRaftMsg(m.data, m.to)
		return err != nil || pm.Type != pb.MsgApp
	}
	w := &rec{}
	incrDone := false
	g.reps[l].SubmitAsync(g.now, []Request{{Argv: argv("INCR k"), W: w}}, func() { incrDone = true })
	g.deliver()
	g.now += 2e9 // past the key's expiry
	if got := g.run(l, []Request{{Argv: argv("GET k"), ReadOnly: true}}); got != "$nil" {
		t.Fatalf("GET after the expiry, the INCR in flight: %q", got)
	}
	if incrDone {
		t.Fatal("the INCR committed with its appends held back")
	}
	g.filter = nil
	for i := 0; !incrDone && i < 50; i++ {
		g.tick()
	}
	if !incrDone || w.String() != ":6" {
		t.Fatalf("INCR (proposed while the key lived): done %v, reply %q, want :6", incrDone, w.String())
	}
	for i := 0; i < 5; i++ {
		g.tick()
	}
	want := dump(g.reps[l], g.now)
	for _, id := range g.ids {
		if got := dump(g.reps[id], g.now); got != want {
			t.Fatalf("n%d holds %q, the leader n%d %q", id, got, l, want)
		}
	}
}
