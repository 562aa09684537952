package cluster

import (
	"fmt"
	"slices"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

// superseded leaves out, per peer, an empty append followed by another
// append of the same term, and an accepting acknowledgement followed by
// one of the same term at least as high; nothing else.
func TestSupersededMessages(t *testing.T) {
	app := func(to, term uint64, ents int, commit uint64) pb.Message {
		return pb.Message{Type: pb.MsgApp, To: to, Term: term, Entries: make([]pb.Entry, ents), Commit: commit}
	}
	ack := func(to, term, index uint64, reject bool) pb.Message {
		return pb.Message{Type: pb.MsgAppResp, To: to, Term: term, Index: index, Reject: reject}
	}
	for _, c := range []struct {
		name string
		msgs []pb.Message
		skip []int
	}{
		{"commit bumps before an append", []pb.Message{app(2, 5, 0, 10), app(3, 5, 0, 10), app(2, 5, 0, 11), app(3, 5, 0, 11), app(2, 5, 1, 12)},
			[]int{0, 1, 2}},
		{"appends with entries are all kept", []pb.Message{app(2, 5, 1, 10), app(2, 5, 1, 10), app(2, 5, 0, 11)},
			nil},
		{"another term keeps the earlier", []pb.Message{app(2, 4, 0, 10), app(2, 5, 0, 11)},
			nil},
		{"acknowledgements: the last, highest wins", []pb.Message{ack(1, 5, 10, false), ack(1, 5, 11, false), ack(2, 5, 3, false), ack(1, 5, 12, false)},
			[]int{0, 1}},
		{"a lower one after a higher is kept", []pb.Message{ack(1, 5, 12, false), ack(1, 5, 11, false)},
			nil},
		{"rejections are kept, and do not supersede", []pb.Message{ack(1, 5, 10, false), ack(1, 5, 12, true), ack(1, 5, 9, true)},
			nil},
		{"heartbeats and votes are kept", []pb.Message{{Type: pb.MsgHeartbeat, To: 2, Term: 5}, {Type: pb.MsgHeartbeat, To: 2, Term: 5},
			{Type: pb.MsgVoteResp, To: 2, Term: 5}, {Type: pb.MsgVoteResp, To: 2, Term: 5}},
			nil},
		{"one message", []pb.Message{app(2, 5, 0, 1)}, nil},
	} {
		skip := superseded(c.msgs)
		var got []int
		for i, s := range skip {
			if s {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, c.skip) {
			t.Errorf("%s: left out %v, want %v", c.name, got, c.skip)
		}
	}
}

// raftMsgs decodes the Raft messages of q sent by from (snapshot chunks
// and acknowledgements skipped).
func raftMsgs(t *testing.T, q []groupMsg, from uint64) []pb.Message {
	t.Helper()
	var out []pb.Message
	for _, m := range q {
		if m.from != from || m.data[0] != peerKindRaftChecked {
			continue
		}
		pm, err := decodeRaftMsg(m.data, m.to)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pm)
	}
	return out
}

// A follower that steps a burst of appends in one call acknowledges them
// with one message, and the leader that steps a burst of acknowledgements
// tells each follower its new commit index once.
func TestBurstsAreAcknowledgedOnce(t *testing.T) {
	g := newTestGroup(t, 3)
	l := g.waitLeader()
	f := g.follower(l)
	const batches = 8
	done := 0
	for i := range batches {
		reqs := []Request{{Argv: argv(fmt.Sprintf("SET k%d v", i)), W: &rec{}}}
		g.reps[l].SubmitAsync(g.now, reqs, func() { done++ })
	}
	var apps [][]byte
	for _, m := range g.queue {
		if m.from == l && m.to == f {
			apps = append(apps, m.data)
		}
	}
	if len(apps) < batches {
		t.Fatalf("the leader sent n%d %d messages for %d batches", f, len(apps), batches)
	}
	g.queue = g.queue[:0]
	if errs := g.reps[f].StepBatch(g.now, apps); errs != nil {
		t.Fatal(errs)
	}
	acks := raftMsgs(t, g.queue, f)
	if len(acks) != 1 || acks[0].Type != pb.MsgAppResp || acks[0].Index != g.reps[f].store.lastIndex() {
		t.Fatalf("n%d answered a burst of %d appends with %v, want one acknowledgement of index %d", f, len(apps), acks, g.reps[f].store.lastIndex())
	}
	// Step the same burst of acknowledgements, one per append, at the leader:
	// the commit index moves with each, and each follower hears of it once.
	q := append([]groupMsg(nil), g.queue...)
	g.queue = g.queue[:0]
	var burst [][]byte
	for i := range apps {
		pm, err := decodeRaftMsg(apps[i], f)
		if err != nil {
			t.Fatal(err)
		}
		last := pm.Index + uint64(len(pm.Entries))
		b, err := encodeRaftMsg(&pb.Message{Type: pb.MsgAppResp, From: f, To: l, Term: pm.Term, Index: last})
		if err != nil {
			t.Fatal(err)
		}
		burst = append(burst, b)
	}
	if errs := g.reps[l].StepBatch(g.now, burst); errs != nil {
		t.Fatal(errs)
	}
	if done != batches {
		t.Fatalf("%d of %d batches answered once a follower acknowledged them", done, batches)
	}
	perPeer := map[uint64]int{}
	for _, m := range raftMsgs(t, g.queue, l) {
		if m.Type == pb.MsgApp {
			perPeer[m.To]++
		}
	}
	for _, id := range g.ids {
		if id != l && perPeer[id] != 1 {
			t.Errorf("the leader sent n%d %d appends after a burst of %d acknowledgements, want 1", id, perPeer[id], len(burst))
		}
	}
	g.queue = append(q, g.queue...)
	g.deliver()
	want := dump(g.reps[l], g.now)
	for _, id := range g.ids {
		if got := dump(g.reps[id], g.now); got != want {
			t.Errorf("n%d holds\n%s\nthe leader n%d\n%s", id, got, l, want)
		}
	}
	// The follower wrote the burst's entries as one Ready, their WAL
	// payloads cut from one reused buffer: replayed from disk, they hold
	// the same writes.
	g.stop(f)
	g.start(f)
	if got := dump(g.reps[f], g.now); got != want {
		t.Errorf("n%d recovered from its log holds\n%s\nthe leader n%d\n%s", f, got, l, want)
	}
}

// The leader hands its appends to the network before writing the entries
// to its own log (Raft thesis §10.2.1); a follower acknowledges only
// entries already in its log, and a candidate asks for votes only once its
// term and vote are on disk.
func TestSendOrderAroundTheLogAppend(t *testing.T) {
	var g *testGroup
	early, appends := 0, 0
	g = newTestGroup(t, 3, func(o *Options) {
		id, send := o.ID, o.Send
		o.Send = func(to uint64, msg []byte) {
			var r *Replica
			if g != nil {
				r = g.reps[id]
			}
			if r != nil && msg[0] == peerKindRaftChecked {
				m, err := decodeRaftMsg(msg, to)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case m.Type == pb.MsgApp && len(m.Entries) > 0:
					appends++
					if m.Entries[len(m.Entries)-1].Index > r.store.lastIndex() {
						early++
					}
				case m.Type == pb.MsgAppResp && !m.Reject && m.Index > r.store.lastIndex():
					t.Errorf("n%d acknowledged index %d holding only %d", id, m.Index, r.store.lastIndex())
				case (m.Type == pb.MsgVote || m.Type == pb.MsgPreVote || m.Type == pb.MsgVoteResp) && m.Term > r.store.hs.Term && m.Type != pb.MsgPreVote:
					t.Errorf("n%d sent %s of term %d with term %d on disk", id, m.Type, m.Term, r.store.hs.Term)
				}
			}
			send(to, msg)
		}
	})
	l := g.waitLeader()
	for i := range 10 {
		if got := g.submit(l, false, fmt.Sprintf("SET k%d v", i)); got != "+OK" {
			t.Fatalf("write %d: %s", i, got)
		}
	}
	if appends == 0 || early == 0 {
		t.Fatalf("%d appends with entries sent, %d of them before the leader's own append: want some", appends, early)
	}
}
