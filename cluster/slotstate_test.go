package cluster

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/keel-db/keel/disk"
)

// tagIn returns a hash tag whose slot lies in [lo, hi], and the slot.
func tagIn(lo, hi int, skip ...int) (string, int) {
outer:
	for i := 0; ; i++ {
		tag := "t" + strconv.Itoa(i)
		s := KeySlot([]byte(tag))
		if s < lo || s > hi {
			continue
		}
		for _, x := range skip {
			if s == x {
				continue outer
			}
		}
		return tag, s
	}
}

// testSlotRedirect formats redirects the tests can read.
func testSlotRedirect(req *Request, slot int, ask bool, group uint64) string {
	if ask {
		return fmt.Sprintf("ASK %d g%d", slot, group)
	}
	return fmt.Sprintf("MOVED %d other", slot)
}

// shardOpts makes a replica of group g owning slots, recording its
// OnSlotsChanged calls in seen.
func shardOpts(g uint64, slots []SlotRange, seen *[]SlotInfo) func(*Options) {
	return func(o *Options) {
		o.Group, o.Slots, o.SlotRedirect = g, slots, testSlotRedirect
		o.OnSlotsChanged = func(si SlotInfo) {
			if seen != nil {
				*seen = append(*seen, si)
			}
		}
	}
}

func rs(g uint64, args string) string { return fmt.Sprintf("CLUSTER RESHARD %d %s", g, args) }

func TestSlotStateEncodeRoundTrip(t *testing.T) {
	var s slotState
	s.init(3, []SlotRange{{First: 0, Last: 99}, {First: 200, Last: 200}})
	for slot := 50; slot <= 60; slot++ {
		s.migrating[slot] = 4
	}
	s.importing[300], s.importing[301] = 5, 6
	s.locked["b"], s.locked["a"] = struct{}{}, struct{}{}
	s.cursor = "b"
	s.piece = movePiece{key: "a", done: 1000, sent: 2500}
	enc := s.encode()
	var d slotState
	if err := d.decode(enc); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.info(), s.info()) || !reflect.DeepEqual(d.lockedKeys(), []string{"a", "b"}) || d.cursor != "b" || d.piece != s.piece {
		t.Fatalf("round trip: %+v locked %v cursor %q piece %+v", d.info(), d.lockedKeys(), d.cursor, d.piece)
	}
	// Without a piece the state is written as version 1, and loads.
	v1 := s
	v1.piece = movePiece{}
	old := v1.encode()
	if old[0] != 1 {
		t.Fatalf("a state without a piece encoded as version %d", old[0])
	}
	var d1 slotState
	if err := d1.decode(old); err != nil || d1.cursor != "b" || d1.piece != (movePiece{}) {
		t.Fatalf("version 1: %v cursor %q piece %+v", err, d1.cursor, d1.piece)
	}
	want := SlotInfo{Group: 3, Owned: []SlotRange{{0, 99}, {200, 200}},
		Migrating: []SlotMove{{SlotRange{50, 60}, 4}},
		Importing: []SlotMove{{SlotRange{300, 300}, 5}, {SlotRange{301, 301}, 6}}}
	if !reflect.DeepEqual(s.info(), want) {
		t.Fatalf("info = %+v", s.info())
	}
	// Every truncation and a few corruptions fail and leave d as it was.
	for i := 0; i < len(enc); i++ {
		if err := d.decode(enc[:i]); err == nil {
			t.Fatalf("decode of %d of %d bytes succeeded", i, len(enc))
		}
	}
	bad := append([]byte(nil), enc...)
	bad[0] = 9
	if d.decode(bad) == nil || d.decode(append(append([]byte(nil), enc...), 0)) == nil {
		t.Fatal("a bad version or trailing bytes decoded")
	}
	if !reflect.DeepEqual(d.info(), s.info()) {
		t.Fatal("a failed decode changed the state")
	}
}

func TestSlotGateAndSteps(t *testing.T) {
	var seen1, seen2 []SlotInfo
	r1 := openT(t, disk.NewMemFS(), "data", shardOpts(1, []SlotRange{{0, 8191}}, &seen1))
	defer r1.Close()
	r2 := openT(t, disk.NewMemFS(), "data", shardOpts(2, []SlotRange{{8192, 16383}}, &seen2))
	defer r2.Close()
	if len(seen1) != 1 || !reflect.DeepEqual(seen1[0].Owned, []SlotRange{{0, 8191}}) {
		t.Fatalf("OnSlotsChanged at Open: %+v", seen1)
	}
	tag, slot := tagIn(0, 8191)
	other, oslot := tagIn(0, 8191, slot)
	k := func(tag, name string) string { return "{" + tag + "}" + name }
	x, y, z := k(tag, "x"), k(tag, "y"), k(tag, "z")
	now := t0
	step := func(r *Replica, cmds ...string) string {
		now += sec
		return do(r, now, cmds...)
	}
	askReq := func(r *Replica, cmd string) string {
		now += sec
		w := &rec{}
		r.Submit(now, []Request{{Argv: argv(cmd), W: w, Asking: true}})
		return w.String()
	}
	if got := step(r1, "SET "+x+" 1", "SET "+y+" 2", "SET "+k(other, "o")+" 3"); got != "+OK +OK +OK" {
		t.Fatal(got)
	}
	// An unowned slot is MOVED, reads and writes alike; keyless commands run.
	hi, hiSlot := tagIn(8192, 16383)
	if got := step(r1, "GET {"+hi+"}a", "SET {"+hi+"}a 1", "DBSIZE"); got != fmt.Sprintf("-MOVED %d other -MOVED %d other :3", hiSlot, hiSlot) {
		t.Fatalf("unowned: %q", got)
	}
	if got := step(r1, "MSET "+x+" 1 {"+hi+"}a 2"); got != "-"+CrossSlotMsg {
		t.Fatalf("cross-slot: %q", got)
	}

	// Migrating: present keys are served, absent ones ASK, a mix TRYAGAIN.
	if got := step(r1, rs(1, fmt.Sprintf("MIGRATING %d %d 2", slot, slot)), rs(1, fmt.Sprintf("MIGRATING %d %d 2", slot, slot))); got != "+OK +OK" {
		t.Fatalf("migrating (twice): %q", got)
	}
	if got := step(r2, rs(2, fmt.Sprintf("IMPORTING %d %d 1", slot, slot)), rs(2, fmt.Sprintf("IMPORTING %d %d 1", slot, slot))); got != "+OK +OK" {
		t.Fatalf("importing (twice): %q", got)
	}
	if !reflect.DeepEqual(r1.Slots().Migrating, []SlotMove{{SlotRange{slot, slot}, 2}}) || !reflect.DeepEqual(r2.Slots().Importing, []SlotMove{{SlotRange{slot, slot}, 1}}) {
		t.Fatalf("slots: %+v / %+v", r1.Slots(), r2.Slots())
	}
	if got := seen1[len(seen1)-1]; !reflect.DeepEqual(got, r1.Slots()) {
		t.Fatalf("OnSlotsChanged saw %+v, Slots() is %+v", got, r1.Slots())
	}
	ask := fmt.Sprintf("-ASK %d g2", slot)
	if got := step(r1, "GET "+x, "INCR "+y, "GET "+z, "SET "+z+" 9", "MGET "+x+" "+z, "GET "+k(other, "o")); got != "$1 :3 "+ask+" "+ask+" -"+tryAgainMixedMsg+" $3" {
		t.Fatalf("migrating gate: %q", got)
	}
	// The importing side: MOVED unless the client sent ASKING.
	if got := step(r2, "GET "+z); got != fmt.Sprintf("-MOVED %d other", slot) {
		t.Fatalf("importing without ASKING: %q", got)
	}
	if got := askReq(r2, "SET "+z+" 9"); got != "+OK" {
		t.Fatalf("importing with ASKING: %q", got)
	}
	if got := askReq(r2, "GET "+z); got != "$9" {
		t.Fatalf("importing read with ASKING: %q", got)
	}
	if got := askReq(r1, "GET {"+hi+"}a"); got != fmt.Sprintf("-MOVED %d other", hiSlot) {
		t.Fatalf("ASKING on a slot not being imported: %q", got)
	}

	// MOVEKEYS locks: locked keys are TRYAGAIN; a retry returns them again.
	mk := rs(1, fmt.Sprintf("MOVEKEYS %d %d 1", slot, slot))
	if got := step(r1, mk); got != "*3 $"+x+" $1 $0" {
		t.Fatalf("movekeys: %q", got)
	}
	if got := step(r1, "GET "+x, "GET "+y); got != "-"+tryAgainLockedMsg+" $3" {
		t.Fatalf("locked: %q", got)
	}
	if got := step(r1, mk); got != "*6 $"+x+" $1 $0 $"+y+" $3 $0" {
		t.Fatalf("movekeys again: %q", got)
	}
	at := strconv.FormatInt(now/1e6+3600_000, 10)
	ik := rs(2, "IMPORTKEYS "+x+" 1 0 "+y+" 3 "+at+" "+z+" 7 "+strconv.FormatInt(now/1e6-1, 10))
	if got := step(r2, ik, ik); got != ":2 :2" {
		t.Fatalf("importkeys (twice): %q", got)
	}
	dk := rs(1, "DELKEYS "+x+" "+y)
	if got := step(r1, dk, dk); got != ":2 :0" {
		t.Fatalf("delkeys (twice): %q", got)
	}
	if got := step(r1, "GET "+x, mk); got != ask+" *0" {
		t.Fatalf("after the batch: %q", got)
	}
	if got := askReq(r2, "PEXPIRETIME "+y); got != ":"+at {
		t.Fatalf("moved TTL: %q", got)
	}
	// Ownership: the target takes it, then the source lets go.
	if got := step(r2, rs(2, fmt.Sprintf("NODE %d %d 2", slot, slot)), "GET "+x); got != "+OK $1" {
		t.Fatalf("target takes the slot: %q", got)
	}
	if got := step(r1, rs(1, fmt.Sprintf("NODE %d %d 2", slot, slot)), rs(1, fmt.Sprintf("NODE %d %d 2", slot, slot)), "GET "+x); got != fmt.Sprintf("+OK +OK -MOVED %d other", slot) {
		t.Fatalf("source lets go (twice): %q", got)
	}
	want1 := SlotInfo{Group: 1, Owned: []SlotRange{{0, slot - 1}, {slot + 1, 8191}}}
	if slot == 0 {
		want1.Owned = want1.Owned[1:]
	}
	if !reflect.DeepEqual(r1.Slots(), want1) {
		t.Fatalf("source slots: %+v", r1.Slots())
	}
	if got := r2.Slots(); len(got.Importing) != 0 || got.Owned[0] != (SlotRange{slot, slot}) {
		t.Fatalf("target slots: %+v", got)
	}
	_ = oslot
}

func TestSlotGateTransactionsAndFunctions(t *testing.T) {
	r1 := openT(t, disk.NewMemFS(), "data", shardOpts(1, []SlotRange{{0, 8191}}, nil))
	defer r1.Close()
	tag, slot := tagIn(0, 8191)
	x, z := "{"+tag+"}x", "{"+tag+"}z"
	now := t0 + sec
	if got := doReqs(r1, now, loadArgv(t, "counter"), argv("SET "+x+" 1"), argv(rs(1, fmt.Sprintf("MIGRATING %d %d 2", slot, slot)))); got != "$counter +OK +OK" {
		t.Fatal(got)
	}
	txn := func(asking bool, cmds ...string) string {
		now += sec
		w := &rec{}
		t := &Txn{}
		for _, c := range cmds {
			t.Cmds = append(t.Cmds, argv(c))
		}
		r1.Submit(now, []Request{{Argv: argv("EXEC"), W: w, Txn: t, Asking: asking}})
		return w.String()
	}
	ask := fmt.Sprintf("-ASK %d g2", slot)
	if got := txn(false, "INCR "+x, "GET "+x); got != "*2 :2 $2" {
		t.Fatalf("txn on present key: %q", got)
	}
	if got := txn(false, "SET "+z+" 1", "GET "+z); got != ask {
		t.Fatalf("txn on absent key: %q", got)
	}
	if got := txn(false, "GET "+z); got != ask {
		t.Fatalf("read-only txn on absent key: %q", got)
	}
	if got := txn(false, "INCR "+x, "SET "+z+" 1"); got != "-"+tryAgainMixedMsg {
		t.Fatalf("txn on a mix: %q", got)
	}
	now += sec
	if got := do(r1, now, "FCALL incr_by 1 "+x+" 5", "FCALL incr_by 1 "+z+" 5", "GET "+x); got != ":7 "+ask+" $7" {
		t.Fatalf("fcall: %q", got)
	}
	if got := do(r1, now, rs(1, fmt.Sprintf("MOVEKEYS %d %d 10", slot, slot)), "FCALL incr_by 1 "+x+" 5", "EXISTS "+x); got != "*3 $"+x+" $7 $0 -"+tryAgainLockedMsg+" -"+tryAgainLockedMsg {
		t.Fatalf("fcall on a locked key: %q", got)
	}

	// The importing side serves a transaction sent after ASKING, and
	// replay decides it alike (the marker is in the log).
	fs, dir := disk.NewMemFS(), "data"
	r2 := openT(t, fs, dir, shardOpts(2, []SlotRange{{8192, 16383}}, nil))
	if got := do(r2, now, rs(2, fmt.Sprintf("IMPORTING %d %d 1", slot, slot))); got != "+OK" {
		t.Fatal(got)
	}
	w := &rec{}
	r2.Submit(now, []Request{
		{Argv: argv("EXEC"), W: w, Txn: &Txn{Cmds: [][][]byte{argv("SET " + z + " 1"), argv("INCR " + z)}}, Asking: true},
		{Argv: argv("EXEC"), W: w, Txn: &Txn{Cmds: [][][]byte{argv("SET " + z + " 100")}}},
		{Argv: argv("SET " + x + " 5"), W: w, Asking: true},
		{Argv: argv("SET " + x + " 6"), W: w},
	})
	if got := w.String(); got != fmt.Sprintf("*2 +OK :2 -MOVED %d other +OK -MOVED %d other", slot, slot) {
		t.Fatalf("importing side: %q", got)
	}
	before := dump(r2, now)
	r2.Close()
	r2 = openT(t, fs, dir, shardOpts(2, []SlotRange{{8192, 16383}}, nil))
	defer r2.Close()
	if got := dump(r2, now); got != before || !strings.Contains(got, z+"=2") || !strings.Contains(got, x+"=5") {
		t.Fatalf("replay: %q, before %q", got, before)
	}
}

func TestSlotStepsRefuseBadInput(t *testing.T) {
	fs, dir := disk.NewMemFS(), "data"
	r := openT(t, fs, dir, shardOpts(1, []SlotRange{{0, 8191}}, nil))
	defer r.Close()
	tag, slot := tagIn(0, 8191)
	x := "{" + tag + "}x"
	s := strconv.Itoa(slot)
	now := t0 + sec
	if got := do(r, now, "SET "+x+" 1", rs(1, "MIGRATING "+s+" "+s+" 2"), rs(1, "MOVEKEYS "+s+" "+s+" 5")); got != "+OK +OK *3 $"+x+" $1 $0" {
		t.Fatal(got)
	}
	before, slotsBefore := dump(r, now), r.Slots()
	for _, c := range []struct{ cmd, want string }{
		{rs(2, "STABLE 0 1"), "ERR this is group 1"},
		{"CLUSTER RESHARD x STABLE 0 1", "ERR invalid group"},
		{"CLUSTER RESHARD 1", "ERR unknown CLUSTER RESHARD step"},
		{rs(1, "FROB 0 1"), "ERR unknown CLUSTER RESHARD step"},
		{rs(1, "IMPORTING 0 1"), "ERR wrong number of arguments"},
		{rs(1, "IMPORTING 5 4 2"), "ERR slot range 5-4"},
		{rs(1, "IMPORTING 0 16384 2"), "ERR slot range"},
		{rs(1, "IMPORTING a 1 2"), "ERR invalid slot range"},
		{rs(1, "IMPORTING 9000 9001 0"), "ERR invalid group"},
		{rs(1, "IMPORTING 9000 9001 1"), "ERR a group cannot import from itself"},
		{rs(1, "IMPORTING 8000 9000 2"), "ERR slot 8000 is already owned"},
		{rs(1, "MIGRATING 8000 9000 2"), "ERR slot 8192 is not owned"},
		{rs(1, "MIGRATING "+s+" "+s+" 3"), "ERR slot " + s + " is migrating to group 2"},
		{rs(1, "MIGRATING 0 1 1"), "ERR a group cannot migrate to itself"},
		{rs(1, "MOVEKEYS 9000 9000 1"), "ERR slot 9000 is not migrating"},
		{rs(1, "MOVEKEYS "+s+" "+s+" 0"), "ERR invalid count"},
		{rs(1, "IMPORTKEYS "+x+" 1"), "ERR wrong number of arguments"},
		{rs(1, "IMPORTKEYS "+x+" 1 0"), "ERR slot " + s + " is not being imported"},
		{rs(1, "DELKEYS"), "ERR wrong number of arguments"},
		{rs(1, "NODE "+s+" "+s+" 3"), "ERR slot " + s + " is owned by this group and not migrating to group 3"},
		{rs(1, "NODE "+s+" "+s+" 2"), "keys of slots " + s + " are still being moved"},
		{rs(1, "NODE 9000 9000 1"), "ERR slot 9000 is neither owned nor being imported"},
		{rs(1, "STABLE "+s+" "+s), "are being moved: finish with DELKEYS first"},
	} {
		if got := do(r, now, c.cmd); !strings.HasPrefix(got, "-") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want an error with %q", c.cmd, got, c.want)
		}
	}
	if got := dump(r, now); got != before || !reflect.DeepEqual(r.Slots(), slotsBefore) {
		t.Fatalf("bad commands changed state: %+v", r.Slots())
	}
	// A locked key still blocks: the lock survived every refusal.
	if got := do(r, now, "GET "+x); got != "-"+tryAgainLockedMsg {
		t.Fatalf("lock lost: %q", got)
	}
	// Keys left behind block the release, not only locked ones.
	y := "{" + tag + "}y"
	if got := do(r, now, rs(1, "DELKEYS "+x), rs(1, "STABLE "+s+" "+s), "SET "+y+" 1", rs(1, "MIGRATING "+s+" "+s+" 2"), rs(1, "NODE "+s+" "+s+" 2")); !strings.HasSuffix(got, "still holds keys (\""+y+"\"): move them first") {
		t.Fatalf("release with a key left: %q", got)
	}
}

func TestSlotStateSurvivesRestart(t *testing.T) {
	fs, dir := disk.NewMemFS(), "data"
	var seen []SlotInfo
	open := func() *Replica { return openT(t, fs, dir, shardOpts(1, []SlotRange{{0, 8191}}, &seen)) }
	r := open()
	tag, slot := tagIn(0, 8191)
	s := strconv.Itoa(slot)
	now := t0 + sec
	var keys []string
	for i := range 5 {
		keys = append(keys, "SET {"+tag+"}k"+strconv.Itoa(i)+" "+strconv.Itoa(i))
	}
	do(r, now, keys...)
	if got := do(r, now, rs(1, "MIGRATING "+s+" "+s+" 2"), rs(1, "IMPORTING 9000 9010 3"), rs(1, "MOVEKEYS "+s+" "+s+" 2")); !strings.HasPrefix(got, "+OK +OK *6") {
		t.Fatal(got)
	}
	wantSlots := r.Slots()
	wantMove := do(r, now, rs(1, "MOVEKEYS "+s+" "+s+" 1")) // the 2 locked, then 1 more
	check := func(how string) {
		t.Helper()
		if !reflect.DeepEqual(r.Slots(), wantSlots) || !reflect.DeepEqual(seen[len(seen)-1], wantSlots) {
			t.Fatalf("%s: slots %+v, told %+v, want %+v", how, r.Slots(), seen[len(seen)-1], wantSlots)
		}
		if got := r.slots.lockedKeys(); len(got) != 3 {
			t.Fatalf("%s: locked %v", how, got)
		}
		if got := do(r, now, rs(1, "MOVEKEYS "+s+" "+s+" 1")); !strings.HasPrefix(got, "*12") || !strings.HasPrefix(got, wantMove[len("*9"):]) && !strings.Contains(got, wantMove[len("*9 "):]) {
			t.Fatalf("%s: movekeys %q after %q", how, got, wantMove)
		}
	}
	// Replay rebuilds it.
	r.Close()
	seen = nil
	r = open()
	check("replay")
	// So does a snapshot (with nothing left to replay).
	if got := do(r, now, "SAVE"); got != "+OK" {
		t.Fatal(got)
	}
	r.Close()
	r = open()
	if r.Recovery().Snapshot == "" || r.Recovery().EntriesReplayed != 0 {
		t.Fatalf("recovery: %+v", r.Recovery())
	}
	if !reflect.DeepEqual(r.Slots(), wantSlots) || len(r.slots.lockedKeys()) != 4 {
		t.Fatalf("snapshot: slots %+v locked %v", r.Slots(), r.slots.lockedKeys())
	}
	r.Close()
}

func TestReshardCommandWithoutSlotsChangesNothing(t *testing.T) {
	r := openT(t, disk.NewMemFS(), "data")
	defer r.Close()
	do(r, t0, "SET a 1")
	idx := r.AppliedIndex()
	if got := do(r, t0, rs(1, "IMPORTING 0 1 2")); !strings.HasPrefix(got, "-ERR this node is not sharded") {
		t.Fatalf("reply: %q", got)
	}
	if r.AppliedIndex() != idx {
		t.Fatal("a refused RESHARD reached the log")
	}
	if si := r.Slots(); si.Owned != nil || si.Migrating != nil {
		t.Fatalf("slots: %+v", si)
	}
	// Asking changes nothing either: no gate, no marker.
	w := &rec{}
	r.Submit(t0, []Request{{Argv: argv("SET b 2"), W: w, Asking: true}, {Argv: argv("GET b"), W: w, Asking: true}})
	if w.String() != "+OK $2" {
		t.Fatalf("asking without slots: %q", w.String())
	}
}

// A keyless write sent after ASKING (the flag is one-shot, but a client may
// send any command next) still runs: the marker is stripped before routing.
func TestAskingKeylessWrites(t *testing.T) {
	fs, dir := disk.NewMemFS(), "data"
	r := openT(t, fs, dir, shardOpts(1, []SlotRange{{0, 8191}}, nil))
	w := &rec{}
	r.Submit(t0, []Request{{Argv: loadArgv(t, "counter"), W: w, Asking: true}, {Argv: argv("FLUSHALL"), W: w, Asking: true}})
	if w.String() != "$counter +OK" {
		t.Fatalf("keyless writes after ASKING: %q", w.String())
	}
	r.Close()
	r = openT(t, fs, dir, shardOpts(1, []SlotRange{{0, 8191}}, nil))
	defer r.Close()
	if got := do(r, t0, "FUNCTION LIST"); !strings.Contains(got, "counter") {
		t.Fatalf("replayed FUNCTION LOAD: %q", got)
	}
}
