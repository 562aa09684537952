package cluster

import (
	"strconv"
	"strings"
	"testing"
)

// topoRecorder renders a reply as one line: :1 for integers, "s" for
// bulk strings, [a b] for arrays and {k v} for maps, so a test states the
// exact reply tree (arrays and maps stay distinct: RESP3 clients see it).
type topoRecorder struct {
	b       strings.Builder
	pending []int // elements each open aggregate still expects
	closers []byte
}

func (r *topoRecorder) sep() {
	if len(r.pending) > 0 {
		if s := r.b.String(); !strings.HasSuffix(s, "[") && !strings.HasSuffix(s, "{") {
			r.b.WriteByte(' ')
		}
	}
}

func (r *topoRecorder) elem(s string) {
	r.sep()
	r.b.WriteString(s)
	r.closeDone()
}

func (r *topoRecorder) closeDone() {
	for len(r.pending) > 0 {
		top := len(r.pending) - 1
		r.pending[top]--
		if r.pending[top] > 0 {
			return
		}
		r.b.WriteByte(r.closers[top])
		r.pending, r.closers = r.pending[:top], r.closers[:top]
	}
}

func (r *topoRecorder) open(n int, opener, closer byte) {
	r.sep()
	r.b.WriteByte(opener)
	if n == 0 {
		r.b.WriteByte(closer)
		r.closeDone()
		return
	}
	r.pending = append(r.pending, n)
	r.closers = append(r.closers, closer)
}

func (r *topoRecorder) WriteSimple(s string)     { r.elem("+" + s) }
func (r *topoRecorder) WriteError(msg string)    { r.elem("-" + msg) }
func (r *topoRecorder) WriteInt(n int64)         { r.elem(":" + strconv.FormatInt(n, 10)) }
func (r *topoRecorder) WriteBulk(b []byte)       { r.elem(strconv.Quote(string(b))) }
func (r *topoRecorder) WriteBulkString(s string) { r.elem(strconv.Quote(s)) }
func (r *topoRecorder) WriteNull()               { r.elem("(nil)") }
func (r *topoRecorder) WriteArray(n int)         { r.open(n, '[', ']') }
func (r *topoRecorder) WriteNullArray()          { r.elem("(nil-array)") }
func (r *topoRecorder) WriteDouble(f float64)    { r.elem("," + strconv.FormatFloat(f, 'g', -1, 64)) }
func (r *topoRecorder) WriteMap(n int)           { r.open(2*n, '{', '}') }
func (r *topoRecorder) WriteSet(n int)           { r.open(n, '~', '~') }

func (r *topoRecorder) done(t *testing.T) string {
	t.Helper()
	if len(r.pending) != 0 {
		t.Fatalf("incomplete reply %s: %v elements still expected", r.b.String(), r.pending)
	}
	return r.b.String()
}

func topoSlots(top *Topology, t *testing.T) string {
	var r topoRecorder
	top.WriteSlots(&r)
	return r.done(t)
}

func topoShards(top *Topology, t *testing.T) string {
	var r topoRecorder
	top.WriteShards(&r)
	return r.done(t)
}

var (
	n1 = NodeName(1)
	n2 = NodeName(2)
	n3 = NodeName(3)
)

// threeNodes is the README's local cluster: three nodes, one group.
func threeNodes(leader uint64) *Topology {
	return &Topology{
		MyID: 2,
		Nodes: []TopoNode{
			{ID: 1, Host: "127.0.0.1", Port: 7001},
			{ID: 2, Host: "127.0.0.1", Port: 7002},
			{ID: 3, Host: "127.0.0.1", Port: 7003},
		},
		Shards: []Shard{{Ranges: []SlotRange{{First: 0, Last: SlotCount - 1}}, Leader: leader, Members: []uint64{1, 2, 3}}},
		Epoch:  5,
	}
}

// twoGroups has the shards listed out of slot order, a single-slot shard
// and a member (9) that Nodes does not describe.
func twoGroups() *Topology {
	return &Topology{
		MyID: 1,
		Nodes: []TopoNode{
			{ID: 1, Host: "10.0.0.1", Port: 6379},
			{ID: 2, Host: "10.0.0.2", Port: 6379},
			{ID: 3, Host: "10.0.0.3", Port: 6380},
		},
		Shards: []Shard{
			{Ranges: []SlotRange{{First: 8193, Last: SlotCount - 1}}, Leader: 3, Members: []uint64{3, 9}},
			{Ranges: []SlotRange{{First: 8192, Last: 8192}}, Leader: 0, Members: []uint64{2}},
			{Ranges: []SlotRange{{First: 0, Last: 8191}}, Leader: 2, Members: []uint64{1, 2}},
		},
		Epoch: 12,
	}
}

func TestTopoNodeName(t *testing.T) {
	for _, c := range []struct {
		id   uint64
		want string
	}{
		{1, "0000000000000000000000000000000000000001"},
		{0xabc, "0000000000000000000000000000000000000abc"},
		{^uint64(0), "000000000000000000000000ffffffffffffffff"},
	} {
		if got := NodeName(c.id); got != c.want {
			t.Errorf("NodeName(%d) = %s, want %s", c.id, got, c.want)
		}
	}
}

func TestTopoAddrAndShardOf(t *testing.T) {
	top := twoGroups()
	if got := top.Addr(3); got != "10.0.0.3:6380" {
		t.Errorf("Addr(3) = %q", got)
	}
	if got := top.Addr(9); got != "" {
		t.Errorf("Addr(unknown) = %q, want empty", got)
	}
	v6 := Topology{Nodes: []TopoNode{{ID: 1, Host: "::1", Port: 7000}}}
	if got := v6.Addr(1); got != "::1:7000" { // Redis's -MOVED does not bracket IPv6
		t.Errorf("Addr(v6) = %q", got)
	}
	for _, c := range []struct {
		slot int
		from int
	}{{0, 0}, {8191, 0}, {8192, 8192}, {8193, 8193}, {SlotCount - 1, 8193}} {
		s := top.ShardOf(c.slot)
		if s == nil || s.Ranges[0].First != c.from {
			t.Errorf("ShardOf(%d) = %+v, want the shard from %d", c.slot, s, c.from)
		}
	}
	if s := top.ShardOf(SlotCount); s != nil {
		t.Errorf("ShardOf(16384) = %+v, want nil", s)
	}
	if s := (&Topology{}).ShardOf(0); s != nil {
		t.Errorf("empty topology: ShardOf(0) = %+v", s)
	}
}

func TestTopoSlots(t *testing.T) {
	// The leader comes first whatever its place in Members.
	want := `[[:0 :16383 ["127.0.0.1" :7003 "` + n3 + `" {}] ["127.0.0.1" :7001 "` + n1 + `" {}] ["127.0.0.1" :7002 "` + n2 + `" {}]]]`
	if got := topoSlots(threeNodes(3), t); got != want {
		t.Errorf("CLUSTER SLOTS:\n got %s\nwant %s", got, want)
	}
	// No leader: members in order, the first standing in as master.
	want = `[[:0 :16383 ["127.0.0.1" :7001 "` + n1 + `" {}] ["127.0.0.1" :7002 "` + n2 + `" {}] ["127.0.0.1" :7003 "` + n3 + `" {}]]]`
	if got := topoSlots(threeNodes(0), t); got != want {
		t.Errorf("CLUSTER SLOTS without leader:\n got %s\nwant %s", got, want)
	}
	// Slot order; the unknown member 9 is left out.
	want = `[[:0 :8191 ["10.0.0.2" :6379 "` + n2 + `" {}] ["10.0.0.1" :6379 "` + n1 + `" {}]]` +
		` [:8192 :8192 ["10.0.0.2" :6379 "` + n2 + `" {}]]` +
		` [:8193 :16383 ["10.0.0.3" :6380 "` + n3 + `" {}]]]`
	if got := topoSlots(twoGroups(), t); got != want {
		t.Errorf("CLUSTER SLOTS two groups:\n got %s\nwant %s", got, want)
	}
	// A range nobody known serves is not listed; no shards, no ranges.
	lost := &Topology{Nodes: []TopoNode{{ID: 1, Host: "h", Port: 1}},
		Shards: []Shard{{Ranges: []SlotRange{{First: 0, Last: 10}}, Members: []uint64{7}}, {Ranges: []SlotRange{{First: 11, Last: 20}}}}}
	if got := topoSlots(lost, t); got != "[]" {
		t.Errorf("CLUSTER SLOTS with unknown members = %s, want []", got)
	}
}

func TestTopoShards(t *testing.T) {
	node := func(name string, host string, port int, role string) string {
		return `{"id" "` + name + `" "port" :` + strconv.Itoa(port) + ` "ip" "` + host + `" "endpoint" "` + host +
			`" "role" "` + role + `" "replication-offset" :0 "health" "online"}`
	}
	want := `[{"slots" [:0 :16383] "nodes" [` +
		node(n2, "127.0.0.1", 7002, "master") + " " +
		node(n1, "127.0.0.1", 7001, "replica") + " " +
		node(n3, "127.0.0.1", 7003, "replica") + `]}]`
	if got := topoShards(threeNodes(2), t); got != want {
		t.Errorf("CLUSTER SHARDS:\n got %s\nwant %s", got, want)
	}
	want = `[{"slots" [:0 :8191] "nodes" [` +
		node(n2, "10.0.0.2", 6379, "master") + " " + node(n1, "10.0.0.1", 6379, "replica") + `]}` +
		` {"slots" [:8192 :8192] "nodes" [` + node(n2, "10.0.0.2", 6379, "master") + `]}` +
		` {"slots" [:8193 :16383] "nodes" [` + node(n3, "10.0.0.3", 6380, "master") + `]}]`
	if got := topoShards(twoGroups(), t); got != want {
		t.Errorf("CLUSTER SHARDS two groups:\n got %s\nwant %s", got, want)
	}
}

func TestTopoNodesText(t *testing.T) {
	want := n1 + " 127.0.0.1:7001@17001 slave " + n3 + " 0 0 5 connected\n" +
		n2 + " 127.0.0.1:7002@17002 myself,slave " + n3 + " 0 0 5 connected\n" +
		n3 + " 127.0.0.1:7003@17003 master - 0 0 5 connected 0-16383\n"
	if got := threeNodes(3).NodesText(); got != want {
		t.Errorf("CLUSTER NODES:\n got %q\nwant %q", got, want)
	}
	want = n1 + " 127.0.0.1:7001@17001 master,fail? - 0 0 5 connected 0-16383\n" +
		n2 + " 127.0.0.1:7002@17002 myself,slave " + n1 + " 0 0 5 connected\n" +
		n3 + " 127.0.0.1:7003@17003 slave " + n1 + " 0 0 5 connected\n"
	if got := threeNodes(0).NodesText(); got != want {
		t.Errorf("CLUSTER NODES without leader:\n got %q\nwant %q", got, want)
	}
	// Node 2 leads one shard and stands in for another; node 1 follows
	// the first shard it belongs to.
	want = n1 + " 10.0.0.1:6379@16379 myself,slave " + n2 + " 0 0 12 connected\n" +
		n2 + " 10.0.0.2:6379@16379 master,fail? - 0 0 12 connected 0-8191 8192\n" +
		n3 + " 10.0.0.3:6380@16380 master - 0 0 12 connected 8193-16383\n"
	if got := twoGroups().NodesText(); got != want {
		t.Errorf("CLUSTER NODES two groups:\n got %q\nwant %q", got, want)
	}
	// A node in no shard is a master without slots.
	lone := &Topology{MyID: 4, Nodes: []TopoNode{{ID: 4, Host: "h", Port: 1}}}
	if got, want := lone.NodesText(), NodeName(4)+" h:1@10001 myself,master - 0 0 0 connected\n"; got != want {
		t.Errorf("CLUSTER NODES lone node = %q, want %q", got, want)
	}
}

func TestTopoInfoText(t *testing.T) {
	info := func(state string, assigned, ok, pfail, known, size int, epoch string) string {
		return "cluster_state:" + state + "\r\n" +
			"cluster_slots_assigned:" + strconv.Itoa(assigned) + "\r\n" +
			"cluster_slots_ok:" + strconv.Itoa(ok) + "\r\n" +
			"cluster_slots_pfail:" + strconv.Itoa(pfail) + "\r\n" +
			"cluster_slots_fail:0\r\n" +
			"cluster_known_nodes:" + strconv.Itoa(known) + "\r\n" +
			"cluster_size:" + strconv.Itoa(size) + "\r\n" +
			"cluster_current_epoch:" + epoch + "\r\n" +
			"cluster_my_epoch:" + epoch + "\r\n"
	}
	for _, c := range []struct {
		name        string
		top         *Topology
		knownLeader bool
		want        string
	}{
		{"healthy", threeNodes(1), true, info("ok", 16384, 16384, 0, 3, 1, "5")},
		{"cut off from the leader", threeNodes(1), false, info("fail", 16384, 16384, 0, 3, 1, "5")},
		{"election", threeNodes(0), true, info("fail", 16384, 0, 16384, 3, 1, "5")},
		// One shard electing does not fail the cluster: its slot is pfail.
		{"one shard electing", twoGroups(), true, info("ok", 16384, 16383, 1, 3, 2, "12")},
		{"uncovered slots", &Topology{
			Nodes:  []TopoNode{{ID: 1, Host: "h", Port: 1}},
			Shards: []Shard{{Ranges: []SlotRange{{First: 0, Last: 99}}, Leader: 1, Members: []uint64{1}}, {Ranges: []SlotRange{{First: 100, Last: 200}}}},
		}, true, info("fail", 100, 100, 0, 1, 1, "0")},
		{"empty", &Topology{}, true, info("fail", 0, 0, 0, 0, 0, "0")},
	} {
		if got := c.top.InfoText(c.knownLeader); got != c.want {
			t.Errorf("%s: CLUSTER INFO:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// A node the leader has not heard from is flagged in NODES and left out of
// SLOTS as a replica.
func TestTopologyDownNode(t *testing.T) {
	top := Topology{MyID: 1, Epoch: 4, Down: []uint64{3},
		Nodes:  []TopoNode{{ID: 1, Host: "127.0.0.1", Port: 7001}, {ID: 2, Host: "127.0.0.1", Port: 7002}, {ID: 3, Host: "127.0.0.1", Port: 7003}},
		Shards: []Shard{{Ranges: []SlotRange{{First: 0, Last: SlotCount - 1}}, Leader: 1, Members: []uint64{1, 2, 3}}}}
	want := NodeName(1) + " 127.0.0.1:7001@17001 myself,master - 0 0 4 connected 0-16383\n" +
		NodeName(2) + " 127.0.0.1:7002@17002 slave " + NodeName(1) + " 0 0 4 connected\n" +
		NodeName(3) + " 127.0.0.1:7003@17003 slave,fail " + NodeName(1) + " 0 0 4 disconnected\n"
	if got := top.NodesText(); got != want {
		t.Fatalf("NODES\n%s\nwant\n%s", got, want)
	}
	servers := top.servers(&top.Shards[0])
	if len(servers) != 2 || servers[0].ID != 1 || servers[1].ID != 2 {
		t.Fatalf("SLOTS servers %v, want nodes 1 and 2", servers)
	}
}

// movedRanges is three groups after slot moves: group 2 serves two runs
// (one taken from group 1), group 3 none (it gave its slots away), and a
// move of 100-199 from group 1 to group 2 is under way.
func movedRanges() *Topology {
	return &Topology{
		MyID: 3,
		Nodes: []TopoNode{
			{ID: 1, Host: "127.0.0.1", Port: 7001},
			{ID: 2, Host: "127.0.0.1", Port: 7002},
			{ID: 3, Host: "127.0.0.1", Port: 7003},
		},
		Shards: []Shard{
			{Group: 1, Ranges: []SlotRange{{First: 100, Last: 8191}}, Leader: 1, Members: []uint64{1, 2, 3},
				Migrating: []SlotMove{{SlotRange: SlotRange{First: 100, Last: 199}, Group: 2}}},
			{Group: 2, Ranges: []SlotRange{{First: 0, Last: 99}, {First: 8192, Last: SlotCount - 1}}, Leader: 2, Members: []uint64{1, 2, 3},
				Importing: []SlotMove{{SlotRange: SlotRange{First: 100, Last: 199}, Group: 1}}},
			{Group: 3, Leader: 2, Members: []uint64{1, 2, 3}},
		},
		Epoch: 7,
	}
}

// A shard with several ranges is listed once per range in CLUSTER SLOTS,
// with all of them in SHARDS and NODES; a shard without slots only shows
// in SHARDS; CLUSTER INFO counts every slot once.
func TestTopoMultiRange(t *testing.T) {
	top := movedRanges()
	node := func(name string, port int) string {
		return `["127.0.0.1" :` + strconv.Itoa(port) + ` "` + name + `" {}]`
	}
	want := `[[:0 :99 ` + node(n2, 7002) + ` ` + node(n1, 7001) + ` ` + node(n3, 7003) + `]` +
		` [:100 :8191 ` + node(n1, 7001) + ` ` + node(n2, 7002) + ` ` + node(n3, 7003) + `]` +
		` [:8192 :16383 ` + node(n2, 7002) + ` ` + node(n1, 7001) + ` ` + node(n3, 7003) + `]]`
	if got := topoSlots(top, t); got != want {
		t.Errorf("CLUSTER SLOTS:\n got %s\nwant %s", got, want)
	}
	shards := topoShards(top, t)
	if !strings.HasPrefix(shards, `[{"slots" [:0 :99 :8192 :16383] "nodes" [{"id" "`+n2) {
		t.Errorf("CLUSTER SHARDS should start with group 2's two runs: %s", shards)
	}
	if !strings.Contains(shards, `{"slots" [] "nodes"`) {
		t.Errorf("CLUSTER SHARDS should list group 3 without slots: %s", shards)
	}
	nodes := top.NodesText()
	for _, want := range []string{
		n1 + " 127.0.0.1:7001@17001 master - 0 0 7 connected 100-8191\n",
		n2 + " 127.0.0.1:7002@17002 master - 0 0 7 connected 0-99 8192-16383\n",
		n3 + " 127.0.0.1:7003@17003 myself,slave " + n1 + " 0 0 7 connected\n", // group 1's leader
	} {
		if !strings.Contains(nodes, want) {
			t.Errorf("CLUSTER NODES lacks %q:\n%s", want, nodes)
		}
	}
	info := top.InfoText(true)
	for _, want := range []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_slots_ok:16384", "cluster_size:2"} {
		if !strings.Contains(info, want+"\r\n") {
			t.Errorf("CLUSTER INFO lacks %s:\n%s", want, info)
		}
	}
}

func TestTopoGroups(t *testing.T) {
	var r topoRecorder
	movedRanges().WriteGroups(&r)
	want := `[{"group" :1 "leader" :1 "members" [:1 :2 :3] "owned" ["100-8191"] "migrating" ["100-199 to 2"] "importing" []}` +
		` {"group" :2 "leader" :2 "members" [:1 :2 :3] "owned" ["0-99" "8192-16383"] "migrating" [] "importing" ["100-199 from 1"]}` +
		` {"group" :3 "leader" :2 "members" [:1 :2 :3] "owned" [] "migrating" [] "importing" []}]`
	if got := r.done(t); got != want {
		t.Errorf("CLUSTER GROUPS:\n got %s\nwant %s", got, want)
	}
}
