package cluster

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// stepRec records a reply as rec does and keeps its error and bulk
// strings, for the driver.
type stepRec struct {
	rec
	err string
	arr [][]byte
}

func (w *stepRec) WriteError(s string)      { w.rec.WriteError(s); w.err = s }
func (w *stepRec) WriteBulkString(s string) { w.WriteBulk([]byte(s)) }
func (w *stepRec) WriteBulk(b []byte) {
	w.rec.WriteBulk(b)
	w.arr = append(w.arr, append([]byte(nil), b...))
}

// shardWorld is two replicated groups of three replicas, sharing a clock.
type shardWorld struct {
	t      *testing.T
	groups map[uint64]*testGroup
	seen   map[[2]uint64][]SlotInfo // group, replica → OnSlotsChanged calls
}

func newShardWorld(t *testing.T, snapBytes int64) *shardWorld {
	w := &shardWorld{t: t, groups: map[uint64]*testGroup{}, seen: map[[2]uint64][]SlotInfo{}}
	split := SplitSlots(2)
	for gid := uint64(1); gid <= 2; gid++ {
		w.groups[gid] = newTestGroup(t, 3, func(o *Options) {
			id := o.ID
			o.Group, o.Slots, o.SlotRedirect = gid, split[gid-1], testSlotRedirect
			o.OnSlotsChanged = func(si SlotInfo) { w.seen[[2]uint64{gid, id}] = append(w.seen[[2]uint64{gid, id}], si) }
			o.SnapshotLogBytes = snapBytes
		})
	}
	for _, g := range w.groups {
		g.waitLeader()
	}
	return w
}

// tick advances both groups by 100 ms and runs snapshot jobs inline, as a
// runtime would.
func (w *shardWorld) tick() {
	for gid := uint64(1); gid <= 2; gid++ {
		w.groups[gid].tick()
	}
	w.jobs()
}

// jobs runs pending snapshot jobs inline, as a runtime would.
func (w *shardWorld) jobs() {
	for gid := uint64(1); gid <= 2; gid++ {
		g := w.groups[gid]
		for _, id := range g.ids {
			if r := g.reps[id]; r != nil {
				if j := r.PendingJob(); j != nil {
					r.JobDone(j, j.Run())
				}
			}
		}
	}
}

// run sends req to group gid's leader and waits for its reply.
func (w *shardWorld) run(gid uint64, req Request) *stepRec {
	w.t.Helper()
	g := w.groups[gid]
	l := g.waitLeader()
	out := &stepRec{}
	req.W = out
	done := false
	g.reps[l].SubmitAsync(g.now, []Request{req}, func() { done = true })
	g.deliver()
	for i := 0; !done && i < 50; i++ {
		w.tick()
	}
	if !done {
		w.t.Fatalf("group %d never answered %q", gid, req.Argv)
	}
	w.jobs()
	return out
}

// client runs cmd the way a cluster client does: to the group it believes
// owns the slot, following MOVED and ASK (with ASKING), waiting on
// TRYAGAIN.
func (w *shardWorld) client(cmd string) string {
	w.t.Helper()
	gid := uint64(1)
	asking := false
	for range 100 {
		out := w.run(gid, Request{Argv: argv(cmd), Asking: asking})
		asking = false
		switch e := out.err; {
		case strings.HasPrefix(e, "MOVED"):
			gid = 3 - gid
		case strings.HasPrefix(e, "ASK"):
			f := strings.Fields(e)
			n, _ := strconv.ParseUint(strings.TrimPrefix(f[2], "g"), 10, 64)
			gid, asking = n, true
		case strings.HasPrefix(e, "TRYAGAIN"):
			w.tick()
		case strings.Contains(e, "may or may not"):
			w.t.Fatalf("%s: outcome unknown without faults: %s", cmd, e)
		default:
			return out.String()
		}
	}
	w.t.Fatalf("%s: no answer after 100 redirects", cmd)
	return ""
}

// dumpKeys parses dump's lines into key → "value @expireAt".
func dumpKeys(r *Replica, now int64) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(dump(r, now)), "\n") {
		if line == "" {
			continue
		}
		_, rest, _ := strings.Cut(line, " ")
		k, v, _ := strings.Cut(rest, "=")
		out[k] = v
	}
	return out
}

func TestReshardMovesARangeUnderWrites(t *testing.T) {
	w := newShardWorld(t, 4<<10)
	rng := rand.New(rand.NewPCG(9, 9))
	moving := SlotRange{First: 0, Last: 4095}
	pad := strings.Repeat("p", 100)
	farAt := t0/1e6 + 3600_000

	// The model: key → value and deadline (0: none); short-lived keys are
	// gone by the end.
	type want struct {
		val string
		at  int64
	}
	model := map[string]want{}
	short := map[string]bool{}
	var keys []string
	for i := range 300 {
		k := "k" + strconv.Itoa(i)
		v := "v" + strconv.Itoa(i) + pad
		switch {
		case i%7 == 0:
			if got := w.client("SET " + k + " " + v + " PX 1500"); got != "+OK" {
				t.Fatal(got)
			}
			short[k] = true
			continue
		case i%5 == 0:
			if got := w.client("SET " + k + " " + v + " PXAT " + strconv.FormatInt(farAt, 10)); got != "+OK" {
				t.Fatal(got)
			}
			model[k] = want{v, farAt}
		default:
			if got := w.client("SET " + k + " " + v); got != "+OK" {
				t.Fatal(got)
			}
			model[k] = want{v, 0}
		}
		keys = append(keys, k)
	}
	inMove := 0
	for k := range model {
		if moving.Contains(KeySlot([]byte(k))) {
			inMove++
		}
	}
	if inMove < 30 {
		t.Fatalf("only %d keys in the moving range", inMove)
	}

	// A follower of the source is down for the first half of the move and
	// catches up from a snapshot, slot state and locks included.
	g1 := w.groups[1]
	l1 := g1.waitLeader()
	var f1 uint64
	for _, id := range g1.ids {
		if id != l1 {
			f1 = id
		}
	}
	g1.stop(f1)

	m := NewReshard(moving, 1, 2, 7)
	steps, newKeys := 0, 0
	for ; steps < 5000; steps++ {
		gid, cmd, done := m.Next()
		if done {
			break
		}
		out := w.run(gid, Request{Argv: cmd})
		if steps%3 == 0 {
			// As if the reply were lost: every step is idempotent.
			out = w.run(gid, Request{Argv: cmd})
		}
		m.Reply(out.err, out.arr)
		if steps == 20 {
			g1.start(f1)
			for range 10 {
				w.tick()
			}
			l, f := g1.reps[g1.waitLeader()], g1.reps[f1]
			if f.GroupStats().SnapshotsReceived == 0 || !reflect.DeepEqual(f.Slots(), l.Slots()) ||
				!slices.Equal(f.slots.lockedKeys(), l.slots.lockedKeys()) || f.slots.cursor != l.slots.cursor {
				t.Fatalf("follower after catching up: snapshots %d, slots %+v locked %v, leader %+v locked %v",
					f.GroupStats().SnapshotsReceived, f.Slots(), f.slots.lockedKeys(), l.Slots(), l.slots.lockedKeys())
			}
		}
		switch steps {
		case 26:
			// The source's leader restarts (replay from its own disk);
			// another takes over and the move goes on.
			l := g1.waitLeader()
			g1.stop(l)
			w.tick()
			g1.start(l)
		case 30:
			g2 := w.groups[2]
			l := g2.waitLeader()
			g2.stop(l)
			w.tick()
			g2.start(l)
		}
		// Writes go on: appends keep the deadline, new keys land where
		// the move sends them.
		for range 2 {
			k := keys[rng.IntN(len(keys))]
			v := model[k]
			v.val += "x" + pad
			if got := w.client("APPEND " + k + " x" + pad); got != ":"+strconv.Itoa(len(v.val)) {
				t.Fatalf("APPEND %s: %q", k, got)
			}
			model[k] = v
		}
		if steps%4 == 0 {
			k := "n" + strconv.Itoa(newKeys)
			newKeys++
			if got := w.client("SET " + k + " new" + pad); got != "+OK" {
				t.Fatal(got)
			}
			model[k] = want{"new" + pad, 0}
			keys = append(keys, k)
		}
	}
	if _, _, done := m.Next(); !done || m.Err() != nil {
		t.Fatalf("move not finished after %d steps: %v", steps, m.Err())
	}
	t.Logf("%d steps, %d keys moved", steps, m.Moved())
	if m.Moved() < inMove/2 {
		t.Fatalf("moved %d keys, %d were in the range", m.Moved(), inMove)
	}
	for range 20 {
		w.tick()
	}
	if g1.reps[f1].GroupStats().SnapshotsReceived == 0 {
		t.Fatal("the source's follower caught up without a snapshot: the install path went untested")
	}

	// Every key reads back through the client, with its value, from the
	// group that now owns its slot, with its deadline.
	now := g1.now
	held := map[uint64]map[string]string{
		1: dumpKeys(g1.reps[g1.waitLeader()], now),
		2: dumpKeys(w.groups[2].reps[w.groups[2].waitLeader()], now),
	}
	for k, v := range model {
		if got := w.client("GET " + k); got != "$"+v.val {
			t.Fatalf("GET %s = %q, want %q", k, got, v.val)
		}
		owner := uint64(2)
		if s := KeySlot([]byte(k)); s >= 4096 && s < 8192 {
			owner = 1
		}
		if got, want := held[owner][k], v.val+" @"+strconv.FormatInt(v.at, 10); got != want {
			t.Fatalf("%s in group %d: %q, want %q", k, owner, got, want)
		}
		if _, ok := held[3-owner][k]; ok {
			t.Fatalf("%s is also in group %d", k, 3-owner)
		}
	}
	for k := range short {
		if got := w.client("GET " + k); got != "$nil" {
			t.Fatalf("short-lived %s: %q", k, got)
		}
	}
	// The slot maps: every slot owned by exactly one group, nothing moving,
	// on every replica, and what OnSlotsChanged last said.
	wantSlots := map[uint64]SlotInfo{
		1: {Group: 1, Owned: []SlotRange{{4096, 8191}}},
		2: {Group: 2, Owned: []SlotRange{{0, 4095}, {8192, 16383}}},
	}
	for gid, g := range w.groups {
		var ref string
		for _, id := range g.ids {
			r := g.reps[id]
			if got := r.Slots(); !reflect.DeepEqual(got, wantSlots[gid]) {
				t.Fatalf("group %d replica %d slots %+v", gid, id, got)
			}
			seen := w.seen[[2]uint64{gid, id}]
			if len(seen) == 0 || !reflect.DeepEqual(seen[len(seen)-1], wantSlots[gid]) {
				t.Fatalf("group %d replica %d was last told %+v", gid, id, seen)
			}
			if len(r.slots.locked) != 0 {
				t.Fatalf("group %d replica %d still locks %v", gid, id, r.slots.lockedKeys())
			}
			d := dump(r, now)
			if ref == "" {
				ref = d
			} else if d != ref {
				t.Fatalf("group %d replica %d diverged", gid, id)
			}
		}
	}
	// The source refuses the moved slots for good; moving back works.
	k := ""
	for kk := range model {
		if moving.Contains(KeySlot([]byte(kk))) {
			k = kk
			break
		}
	}
	if out := w.run(1, Request{Argv: argv("GET " + k)}); !strings.HasPrefix(out.err, "MOVED") {
		t.Fatalf("source after the move: %q", out.String())
	}
	back := NewReshard(SlotRange{First: 0, Last: 99}, 2, 1, 50)
	for range 1000 {
		gid, cmd, done := back.Next()
		if done {
			break
		}
		out := w.run(gid, Request{Argv: cmd})
		back.Reply(out.err, out.arr)
	}
	if _, _, done := back.Next(); !done || back.Err() != nil {
		t.Fatalf("move back: %v", back.Err())
	}
	if got := w.groups[1].reps[w.groups[1].waitLeader()].Slots().Owned; !slices.Equal(got, []SlotRange{{0, 99}, {4096, 8191}}) {
		t.Fatalf("after moving back: %v", got)
	}
	for k, v := range model {
		if got := w.client("GET " + k); got != "$"+v.val {
			t.Fatalf("after moving back, GET %s = %q", k, got)
		}
	}
	_ = fmt.Sprint
}

func TestSlotGateOnFollowerReads(t *testing.T) {
	w := newShardWorld(t, 0)
	lo, loSlot := tagIn(0, 8191)
	hi, hiSlot := tagIn(8192, 16383)
	if got := w.client("SET {" + lo + "}a 1"); got != "+OK" {
		t.Fatal(got)
	}
	w.tick() // the commit index reaches the followers
	g := w.groups[1]
	l := g.waitLeader()
	for _, id := range g.ids {
		if id == l {
			continue
		}
		got := g.submit(id, true, "GET {"+lo+"}a", "GET {"+hi+"}a")
		if want := fmt.Sprintf("$1 -MOVED %d other", hiSlot); got != want {
			t.Fatalf("READONLY follower %d: %q, want %q", id, got, want)
		}
	}
	// A follower decides migrating slots on its applied state too.
	if out := w.run(1, Request{Argv: argv(rs(1, fmt.Sprintf("MIGRATING %d %d 2", loSlot, loSlot)))}); out.err != "" {
		t.Fatal(out.err)
	}
	w.tick()
	for _, id := range g.ids {
		if id == l {
			continue
		}
		if got := g.submit(id, true, "GET {"+lo+"}a", "GET {"+lo+"}b"); got != fmt.Sprintf("$1 -ASK %d g2", loSlot) {
			t.Fatalf("READONLY follower %d on a migrating slot: %q", id, got)
		}
	}
}

func TestTransferLeadership(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	to := g.ids[0]
	if to == l {
		to = g.ids[1]
	}
	g.reps[to].TransferLeadership(l) // a follower: no-op
	g.reps[l].TransferLeadership(l)  // itself: no-op
	if g.leader() != l {
		t.Fatal("a no-op transfer moved leadership")
	}
	g.reps[l].TransferLeadership(to)
	g.deliver()
	for i := 0; i < 20 && g.leader() != to; i++ {
		g.tick()
	}
	if g.leader() != to {
		t.Fatalf("leader is %d, transferred to %d", g.leader(), to)
	}
	if got := g.submit(to, false, "SET a 1", "GET a"); got != "+OK $1" {
		t.Fatalf("new leader: %q", got)
	}
}
