package sim

import (
	"testing"
	"time"
)

func TestNetClientStreamInOrderAndPartitioned(t *testing.T) {
	w := NewWorld(1, nil)
	n := newNetwork(w, NetConfig{DelayMin: time.Millisecond, DelayJitter: 5 * time.Millisecond})
	var got []int
	for i := 0; i < 100; i++ {
		i := i
		n.sendStream(1000, 1, func() { got = append(got, i) })
	}
	w.RunUntil(int64(time.Second))
	if len(got) != 100 {
		t.Fatalf("delivered %d of 100", len(got))
	}
	for i := range got {
		if got[i] != i {
			t.Fatalf("client stream reordered: %v", got[:i+1])
		}
	}
	// A partition drops what is in flight and what is sent during it.
	got = nil
	n.sendStream(1000, 1, func() { got = append(got, 1) })
	n.Isolate(1, []uint64{1, 1000})
	n.sendStream(1000, 1, func() { got = append(got, 2) })
	n.sendStream(1, 1000, func() { got = append(got, 3) })
	w.RunUntil(w.now + int64(time.Second))
	if len(got) != 0 {
		t.Fatalf("delivered across a partition: %v", got)
	}
	n.Heal()
	n.sendStream(1000, 1, func() { got = append(got, 4) })
	w.RunUntil(w.now + int64(time.Second))
	if len(got) != 1 || got[0] != 4 {
		t.Fatalf("after heal: %v", got)
	}
}

func TestNetOneWayBlock(t *testing.T) {
	w := NewWorld(1, nil)
	n := newNetwork(w, NetConfig{DelayMin: time.Millisecond})
	var ab, ba int
	n.Block(1, 2)
	n.sendStream(1, 2, func() { ab++ })
	n.sendStream(2, 1, func() { ba++ })
	w.RunUntil(int64(time.Second))
	if ab != 0 || ba != 1 {
		t.Fatalf("one-way block 1->2: delivered 1->2 %d, 2->1 %d", ab, ba)
	}
}

func TestNetDatagramsLoseDuplicateReorder(t *testing.T) {
	w := NewWorld(3, nil)
	n := newNetwork(w, NetConfig{DelayMin: time.Millisecond, DelayJitter: 10 * time.Millisecond, LossProb: 0.1, DupProb: 0.1})
	var got []byte
	t2 := n.Transport(2, func(from uint64, msg []byte) {
		if from != 1 {
			t.Errorf("from %d", from)
		}
		got = append(got, msg[0])
	})
	t1 := n.Transport(1, func(uint64, []byte) {})
	for i := 0; i < 200; i++ {
		t1.Send(2, []byte{byte(i)})
	}
	w.RunUntil(int64(time.Second))
	seen := map[byte]int{}
	reordered := false
	for i, b := range got {
		seen[b]++
		if i > 0 && b < got[i-1] {
			reordered = true
		}
	}
	dups := 0
	for _, c := range seen {
		if c > 1 {
			dups++
		}
	}
	if n.Stats.Lost == 0 || len(seen) == 200 {
		t.Errorf("no loss: stats %+v", n.Stats)
	}
	if n.Stats.Duplicated == 0 || dups == 0 {
		t.Errorf("no duplicates: stats %+v", n.Stats)
	}
	if !reordered {
		t.Errorf("no reordering in %d deliveries", len(got))
	}
	// Split brain: two groups that cannot talk; then heal.
	n.Partition([]uint64{1}, []uint64{2})
	before := len(got)
	t1.Send(2, []byte{1})
	w.RunUntil(w.now + int64(time.Second))
	if len(got) != before {
		t.Errorf("datagram crossed a partition")
	}
	t2.Close()
	n.Heal()
	t1.Send(2, []byte{1})
	w.RunUntil(w.now + int64(time.Second))
	if len(got) != before {
		t.Errorf("datagram delivered to a closed transport")
	}
}

func TestClockSkewDriftAndTimers(t *testing.T) {
	w := NewWorld(1, nil)
	c := newClock(w, ClockConfig{Skew: time.Hour, DriftPPM: 100_000}) // 10% fast
	if got := c.Now() - simEpoch; got != int64(time.Hour) {
		t.Fatalf("at 0: %d", got)
	}
	w.RunUntil(int64(10 * time.Second))
	if got := time.Duration(c.Now() - simEpoch - int64(time.Hour)); got != 11*time.Second {
		t.Fatalf("after 10s virtual, a 10%% fast clock moved %s", got)
	}
	c.Step(-time.Second)
	c.Step(2 * time.Second)
	if got := time.Duration(c.Now() - simEpoch - int64(time.Hour)); got != 13*time.Second {
		t.Fatalf("steps: %s (backward steps must be refused)", got)
	}
	fired := int64(0)
	stop := Timers{c}.AfterFunc(1100*time.Millisecond, func() { fired = c.Now() })
	Timers{c}.AfterFunc(time.Second, func() { t.Error("stopped timer fired") })()
	w.RunUntil(w.now + int64(2*time.Second))
	if fired == 0 || stop() {
		t.Fatalf("timer did not fire once")
	}
}

func TestWorldOrdersTiesBySchedule(t *testing.T) {
	w := NewWorld(1, nil)
	var got []int
	for i := 0; i < 5; i++ {
		i := i
		w.At(100, func() { got = append(got, i) })
	}
	w.At(50, func() { got = append(got, -1) })
	w.RunUntil(200)
	want := []int{-1, 0, 1, 2, 3, 4}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

// TestBusAttackFrames: with attacks on, frames come along that no node
// sent (forged senders, single-bit flips, replays, foreign groups), and
// the honest traffic is delivered exactly as without them (the attacker
// draws from its own stream).
func TestBusAttackFrames(t *testing.T) {
	type got struct {
		at       int64
		from, to uint64
		data     string
	}
	run := func(attack bool) (honest, forged []got) {
		w := NewWorld(7, nil)
		n := newNetwork(w, NetConfig{DelayMin: time.Millisecond, DelayJitter: time.Millisecond, LossProb: 0.1, DupProb: 0.1})
		for id := uint64(1); id <= 2; id++ {
			id := id
			n.Transport(id, func(from uint64, b []byte) { honest = append(honest, got{w.now, from, id, string(b)}) })
			n.attackTarget(id, func(from uint64, b []byte) { forged = append(forged, got{w.now, from, id, string(b)}) })
		}
		if attack {
			n.SetAttack(BusAttack{ForgeProb: 0.3, ReplayProb: 0.3, CorruptProb: 0.3, ForeignGroupProb: 0.3})
		}
		for i := 0; i < 200; i++ {
			n.sendDatagram(1, 2, []byte{multiGroupFrameTag, 1, byte(i), 'x'})
		}
		w.RunUntil(int64(time.Second))
		return honest, forged
	}
	plain, none := run(false)
	honest, forged := run(true)
	if len(none) != 0 {
		t.Fatalf("attack frames without an attack: %d", len(none))
	}
	if len(plain) != len(honest) {
		t.Fatalf("the attack changed the honest traffic: %d messages, then %d", len(plain), len(honest))
	}
	for i := range plain {
		if plain[i] != honest[i] {
			t.Fatalf("honest message %d: %+v without the attack, %+v with it", i, plain[i], honest[i])
		}
	}
	var kinds [4]int // forged, flipped, foreign group, replay or other
	for _, f := range forged {
		b := []byte(f.data)
		switch {
		case f.from >= attackForgedIDBase:
			kinds[0]++
		case len(b) == 4 && b[0] == multiGroupFrameTag && b[1] == 1 && b[3] == 'x':
			kinds[3]++ // a replay (an honest frame again)
		case len(b) > 2 && b[0] == multiGroupFrameTag && b[1] >= 8:
			kinds[2]++
		default:
			kinds[1]++
		}
	}
	for i, k := range kinds {
		if k == 0 {
			t.Errorf("no attack frame of kind %d among %d: %v", i, len(forged), kinds)
		}
	}
}
