package node

import (
	"strings"
	"testing"

	"github.com/keel-db/keel/cluster"
)

// testRuntime is a node.Runtime that runs everything at once and records
// what the node asked for.
type testRuntime struct {
	sent []string
	logs []string
	// disconnected are the ids of the sessions the node disconnected.
	disconnected []uint64
}

func (rt *testRuntime) Exclusive(_ *Session, _ uint64, fn func()) { fn() }
func (rt *testRuntime) Send(to uint64, msg []byte) {
	rt.sent = append(rt.sent, string(msg))
}
func (rt *testRuntime) Wake(*Session)                                        {}
func (rt *testRuntime) Unpark(*Session)                                      {}
func (rt *testRuntime) Disconnect(s *Session)                                { rt.disconnected = append(rt.disconnected, s.ID()) }
func (rt *testRuntime) StartJob(uint64, *cluster.Replica, *cluster.Job)      {}
func (rt *testRuntime) WaitJob(uint64)                                       {}
func (rt *testRuntime) StartSync(uint64, *cluster.Replica, *cluster.SyncJob) {}
func (rt *testRuntime) Shutdown()                                            {}
func (rt *testRuntime) OpenGroup(uint64)                                     {}
func (rt *testRuntime) DropGroup(uint64)                                     {}
func (rt *testRuntime) Host() HostInfo                                       { return HostInfo{} }
func (rt *testRuntime) Logf(format string, args ...any) {
	rt.logs = append(rt.logs, format)
}

type fixedClock int64

func (c fixedClock) Now() int64 { return int64(c) }

type counterRand uint64

func (r *counterRand) Uint64() uint64 { *r++; return uint64(*r) }

func newTestNode(t *testing.T, groups int) (*Node, *testRuntime) {
	t.Helper()
	peers, err := ParsePeers("1@h1:7001,2@h2:7002,3@h3:7003")
	if err != nil {
		t.Fatal(err)
	}
	rt := &testRuntime{}
	n, err := New(Config{ID: 1, Peers: peers, Groups: groups, Clock: fixedClock(1e18), Rand: new(counterRand)}, rt)
	if err != nil {
		t.Fatal(err)
	}
	return n, rt
}

// The slot table routes a slot to a group that owns it and is not
// migrating it, else to the migrating owner (which answers -ASK for keys
// already moved), else to the group importing it; a slot no local
// replica claims yet goes to group 1, whose gate redirects.
func TestSlotTable(t *testing.T) {
	n, _ := newTestNode(t, 2)
	split := cluster.SplitSlots(2)
	n.slotsChanged(1, cluster.SlotInfo{Group: 1, Owned: split[0]})
	n.slotsChanged(2, cluster.SlotInfo{Group: 2, Owned: split[1]})
	if n.groupOf(0) != 1 || n.groupOf(8191) != 1 || n.groupOf(8192) != 2 || n.groupOf(16383) != 2 {
		t.Fatalf("starting split: %d %d %d %d", n.groupOf(0), n.groupOf(8191), n.groupOf(8192), n.groupOf(16383))
	}
	mv := cluster.SlotRange{First: 100, Last: 200}
	n.slotsChanged(1, cluster.SlotInfo{Group: 1, Owned: split[0], Migrating: []cluster.SlotMove{{SlotRange: mv, Group: 2}}})
	n.slotsChanged(2, cluster.SlotInfo{Group: 2, Owned: split[1], Importing: []cluster.SlotMove{{SlotRange: mv, Group: 1}}})
	if n.groupOf(150) != 1 || n.groupOf(99) != 1 || n.askingGroupOf(150) != 2 || n.askingGroupOf(99) != 1 {
		t.Fatalf("migrating: slot 150 → %d (asking %d), 99 → %d (asking %d); want 1 (2), 1 (1)",
			n.groupOf(150), n.askingGroupOf(150), n.groupOf(99), n.askingGroupOf(99))
	}
	n.slotsChanged(2, cluster.SlotInfo{Group: 2, Owned: []cluster.SlotRange{mv, split[1][0]}})
	if n.groupOf(150) != 2 || n.groupOf(201) != 1 {
		t.Fatalf("target took the slots: slot 150 → %d, 201 → %d, want 2, 1", n.groupOf(150), n.groupOf(201))
	}
	n.slotsChanged(1, cluster.SlotInfo{Group: 1, Owned: []cluster.SlotRange{{First: 0, Last: 99}, {First: 201, Last: 8191}}})
	// Group 2's replica here lags: it has not applied taking them yet; the
	// importing group is where the keys are headed.
	n.slotsChanged(2, cluster.SlotInfo{Group: 2, Owned: split[1], Importing: []cluster.SlotMove{{SlotRange: mv, Group: 1}}})
	if n.groupOf(150) != 2 || n.groupOf(0) != 1 {
		t.Fatalf("no local owner: slot 150 → %d (want the importing group, 2), 0 → %d", n.groupOf(150), n.groupOf(0))
	}
}

// A group's redirects name its leader's address, in Redis Cluster's
// words, and a slot whose table entry still points back at the refusing
// group is answered TRYAGAIN.
func TestRedirects(t *testing.T) {
	n, _ := newTestNode(t, 2)
	split := cluster.SplitSlots(2)
	n.slotsChanged(1, cluster.SlotInfo{Group: 1, Owned: split[0]})
	n.slotsChanged(2, cluster.SlotInfo{Group: 2, Owned: split[1]})
	set := func(key string) *cluster.Request {
		return &cluster.Request{Argv: [][]byte{[]byte("SET"), []byte(key), []byte("v")}}
	}
	slot := cluster.KeySlot([]byte("k"))
	for _, c := range []struct {
		leader uint64
		req    *cluster.Request
		want   string
	}{
		{0, set("k"), "TRYAGAIN no leader"},
		{1, set("k"), "TRYAGAIN no leader"},
		{2, set("k"), "MOVED " + itoa(slot) + " h2:7002"},
		{3, &cluster.Request{Argv: [][]byte{[]byte("FLUSHALL")}}, "READONLY You can't write against a read only replica."},
		// CLUSTER ADDNODE/DELNODE's meta write on a follower of group 1:
		// sent on to the leader (a READONLY stopped keel's CLI).
		{3, &cluster.Request{Argv: cluster.MetaSetCommand(cluster.MetaRecord{Version: 2})}, "MOVED 0 h3:7003"},
		{3, &cluster.Request{Argv: [][]byte{[]byte("MSET"), []byte("a"), []byte("1"), []byte("b"), []byte("2")}}, "CROSSSLOT"},
		{3, &cluster.Request{Argv: [][]byte{[]byte("GET"), []byte("k")}, Asking: true}, "ASK " + itoa(slot) + " h3:7003"},
		{9, set("k"), "TRYAGAIN no leader"},
	} {
		if got := n.groupRedirect(1, c.req, c.leader); !strings.HasPrefix(got, c.want) {
			t.Errorf("leader %d, %q: got %q, want %q...", c.leader, c.req.Argv[0], got, c.want)
		}
	}
	n.groups[1].leader.Store(3)
	if got := n.slotRedirect(1, 9000, false, 0); got != "MOVED 9000 h3:7003" {
		t.Errorf("MOVED to group 2's leader: %q", got)
	}
	if got := n.slotRedirect(1, 5, false, 0); !strings.HasPrefix(got, "TRYAGAIN slot 5 is being moved") {
		t.Errorf("the table points back at the refusing group: %q", got)
	}
	if got := n.slotRedirect(1, 5, true, 2); got != "ASK 5 h3:7003" {
		t.Errorf("ASK to the importing group's leader: %q", got)
	}
	n.groups[1].leader.Store(0)
	if got := n.slotRedirect(1, 9000, false, 0); !strings.HasPrefix(got, "TRYAGAIN no leader known") {
		t.Errorf("no leader known: %q", got)
	}
}

// Route hands a framed message to its group and refuses one claiming to
// come from no node or from this node, one naming a group the node does
// not host, and an unframed one; the first refusal is logged. (A sender
// outside the address book is the replica's to judge: Step.)
func TestRoutePeerMessages(t *testing.T) {
	n, rt := newTestNode(t, 2)
	framed := func(g byte, body string) []byte { return append([]byte{peerFrameGroupTag, g}, body...) }
	if g, body, ok := n.Route(2, framed(2, "raft")); !ok || g != 2 || string(body) != "raft" {
		t.Fatalf("framed message: %d %q %v", g, body, ok)
	}
	for _, c := range []struct {
		from uint64
		msg  []byte
	}{{0, framed(1, "x")}, {1, framed(1, "x")}, {2, framed(3, "x")}, {2, []byte("raft")}, {2, nil}} {
		if _, _, ok := n.Route(c.from, c.msg); ok {
			t.Errorf("from %d %q accepted", c.from, c.msg)
		}
	}
	if g, _, ok := n.Route(7, framed(1, "x")); !ok || g != 1 {
		t.Errorf("a message from a node outside the address book was not routed: %d %v", g, ok)
	}
	if n.BadFrames() != 5 || len(rt.logs) != 1 {
		t.Fatalf("bad frames %d, logs %d", n.BadFrames(), len(rt.logs))
	}
}
