package server

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-db/keel/resp"

	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
)

// groupLeaders is each group's leader as node index, -1 when the running
// nodes do not agree on a running one.
func (tc *testCluster) groupLeaders() []int {
	out := make([]int, tc.groups)
	for g := range out {
		out[g] = -1
		agreed := true
		for _, cs := range tc.srvs {
			if cs == nil {
				continue
			}
			var l uint64
			cs.srv.onReplica(g, func(r *cluster.Replica) { l = r.Leader() })
			if l == 0 || tc.srvs[l-1] == nil || out[g] >= 0 && out[g] != int(l-1) {
				agreed = false
				break
			}
			out[g] = int(l - 1)
		}
		if !agreed {
			out[g] = -1
		}
	}
	return out
}

// waitGroupLeaders waits until every group has a leader all running nodes
// know (and, with spread, group g's is node (g-1) % n: leadership spread).
func (tc *testCluster) waitGroupLeaders(spread bool) []int {
	tc.t.Helper()
	var leaders []int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		leaders = tc.groupLeaders()
		ok := !slices.Contains(leaders, -1)
		for g, l := range leaders {
			if spread && l != g%len(tc.nodes) {
				ok = false
			}
			// The leaders the servers route by (noted at each tick) agree.
			for i, cs := range tc.srvs {
				if cs != nil && l >= 0 && (cs.srv.Node().LeaderOf(uint64(g+1)) == uint64(i+1)) != (l == i) {
					ok = false
				}
			}
		}
		if ok {
			return leaders
		}
	}
	tc.t.Fatalf("group leaders %v (spread %v) not reached", leaders, spread)
	return nil
}

// reshardDriver sends a cluster.Reshard's steps to the nodes, following
// -MOVED to a group's leader and pausing on -TRYAGAIN, as `keel cluster
// reshard` does.
type reshardDriver struct {
	t       *testing.T
	addrs   []string
	clients map[string]*redis.Client
	leader  map[uint64]string // group → address last redirected to
}

func newReshardDriver(tc *testCluster) *reshardDriver {
	d := &reshardDriver{t: tc.t, addrs: tc.addrs(), clients: map[string]*redis.Client{}, leader: map[uint64]string{}}
	tc.t.Cleanup(func() {
		for _, c := range d.clients {
			c.Close()
		}
	})
	return d
}

func (d *reshardDriver) client(addr string) *redis.Client {
	c := d.clients[addr]
	if c == nil {
		c = redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true,
			DialTimeout: time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
		d.clients[addr] = c
	}
	return c
}

func (d *reshardDriver) run(r cluster.SlotRange, from, to uint64, batch int) int {
	d.t.Helper()
	m := cluster.NewReshard(r, from, to, batch)
	next := 0
	for steps := 0; ; steps++ {
		if steps > 100000 {
			d.t.Fatal("reshard did not finish")
		}
		g, argv, done := m.Next()
		if done {
			break
		}
		addr := d.leader[g]
		if addr == "" {
			addr = d.addrs[next%len(d.addrs)]
		}
		args := make([]any, len(argv))
		for i, a := range argv {
			args[i] = string(a)
		}
		v, err := d.client(addr).Do(ctx(), args...).Result()
		switch {
		case err == nil:
			var arr [][]byte
			if a, ok := v.([]any); ok {
				arr = make([][]byte, len(a))
				for i, e := range a {
					arr[i] = []byte(fmt.Sprint(e))
				}
			}
			m.Reply("", arr)
		default:
			msg := err.Error()
			var rerr redis.Error
			if !errors.As(err, &rerr) {
				msg = "IOERR " + msg
				delete(d.leader, g)
				next++
			}
			if f := strings.Fields(msg); len(f) == 3 && (f[0] == "MOVED" || f[0] == "ASK") {
				d.leader[g] = f[2]
			} else if strings.HasPrefix(msg, "TRYAGAIN") || strings.HasPrefix(msg, "IOERR") {
				delete(d.leader, g)
				next++
				time.Sleep(50 * time.Millisecond)
			}
			m.Reply(msg, nil)
		}
	}
	if err := m.Err(); err != nil {
		d.t.Fatal(err)
	}
	return m.Moved()
}

// slotMasters reads CLUSTER SLOTS from node i: each range's master port.
func (tc *testCluster) slotMasters(i int) map[cluster.SlotRange]string {
	tc.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: tc.srvs[i].addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	slots, err := c.ClusterSlots(ctx()).Result()
	if err != nil {
		tc.t.Fatal(err)
	}
	out := map[cluster.SlotRange]string{}
	for _, s := range slots {
		out[cluster.SlotRange{First: int(s.Start), Last: int(s.End)}] = s.Nodes[0].Addr
	}
	return out
}

// TestGroupsRouting: three nodes, three groups. Leadership spreads so that
// each node leads one group; CLUSTER SLOTS shows three masters with the
// starting split; go-redis's ClusterClient writes and reads keys of every
// slot; each key lives in exactly its slot's group.
func TestGroupsRouting(t *testing.T) {
	tc := newTestClusterGroups(t, 3, 3)
	start := time.Now()
	leaders := tc.waitGroupLeaders(true)
	t.Logf("leaders %v spread after %v", leaders, time.Since(start).Round(time.Millisecond))

	split := cluster.SplitSlots(3)
	for i := range tc.srvs {
		got := tc.slotMasters(i)
		want := map[cluster.SlotRange]string{}
		for g, rs := range split {
			want[rs[0]] = tc.addrs()[g]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("node %d: CLUSTER SLOTS masters %v, want %v", i+1, got, want)
		}
	}

	cc := tc.clusterClient()
	const keys = 3000
	for i := range keys {
		if err := cc.Set(ctx(), "k"+strconv.Itoa(i), strconv.Itoa(i), 0).Err(); err != nil {
			t.Fatalf("SET k%d: %v", i, err)
		}
	}
	for i := range keys {
		if v, err := cc.Get(ctx(), "k"+strconv.Itoa(i)).Result(); err != nil || v != strconv.Itoa(i) {
			t.Fatalf("GET k%d = %q, %v", i, v, err)
		}
	}
	// Each group holds exactly the keys of its slots, on every node.
	for i, cs := range tc.srvs {
		total := 0
		for g := range cs.srv.groups {
			var n int
			var stray string
			cs.srv.onReplica(g, func(r *cluster.Replica) {
				n = r.DB().Len()
				view := r.DB().View()
				defer view.Release()
				view.Ascend(func(e engine.Entry) bool {
					if !split[g][0].Contains(cluster.KeySlot(e.Key)) {
						stray = string(e.Key)
						return false
					}
					return true
				})
			})
			if stray != "" {
				t.Fatalf("node %d group %d holds %q of slot %d", i+1, g+1, stray, cluster.KeySlot([]byte(stray)))
			}
			total += n
		}
		// Followers may lag a little behind the leaders' last writes.
		if i == 0 && total > keys {
			t.Fatalf("node 1 holds %d keys, more than the %d written", total, keys)
		}
	}

	// A keyed request to a node that does not lead the key's group is
	// redirected to the leader that does.
	raw := tc.raw(0)
	key := "k0"
	for i := 0; cluster.KeySlot([]byte(key)) < split[0][0].Last+1; i++ {
		key = "k" + strconv.Itoa(i) // a key outside group 1 (led by node 1)
	}
	slot := cluster.KeySlot([]byte(key))
	g := slices.IndexFunc(split, func(rs []cluster.SlotRange) bool { return rs[0].Contains(slot) })
	if got, want := raw.do("GET", key), "-MOVED "+strconv.Itoa(slot)+" "+tc.addrs()[leaders[g]]; got != want {
		t.Fatalf("GET %s on node 1 = %q, want %q", key, got, want)
	}

	// CLUSTER GROUPS names each group's leader and slots.
	c := redis.NewClient(&redis.Options{Addr: tc.srvs[1].addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	v, err := c.Do(ctx(), "CLUSTER", "GROUPS").Slice()
	if err != nil || len(v) != 3 {
		t.Fatalf("CLUSTER GROUPS = %v, %v", v, err)
	}
	for g, e := range v {
		got := fmt.Sprint(e)
		want := fmt.Sprintf("[group %d leader %d members [1 2 3] owned [%s] migrating [] importing []]", g+1, leaders[g]+1, split[g][0])
		if got != want {
			t.Fatalf("CLUSTER GROUPS[%d] = %s, want %s", g, got, want)
		}
	}
}

// TestGroupsLeaderFailover: stopping the node that leads one group moves
// that group's leadership (and slots' service) elsewhere; the groups led
// by the other nodes keep their leaders, and every acknowledged write
// stays readable.
func TestGroupsLeaderFailover(t *testing.T) {
	tc := newTestClusterGroups(t, 3, 3)
	leaders := tc.waitGroupLeaders(true)
	cc := tc.clusterClient()

	var (
		mu    sync.Mutex
		acked = map[string]string{}
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		after atomic.Int64
		down  atomic.Bool
	)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k, v := fmt.Sprintf("w%d:%d", w, i), strconv.Itoa(i)
				if err := cc.Set(ctx(), k, v, 0).Err(); err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
				if down.Load() {
					after.Add(1)
				}
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes acknowledged", n)
		}
	}
	victim := leaders[1] // node leading group 2
	down.Store(true)
	stopped := time.Now()
	tc.stop(victim)
	for after.Load() < 300 {
		if time.Since(stopped) > 20*time.Second {
			t.Fatalf("only %d writes acknowledged in 20 s after node %d stopped", after.Load(), victim+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	now := tc.waitGroupLeaders(false)
	t.Logf("leaders before %v, after node %d stopped %v (writes resumed in %v)", leaders, victim+1, now,
		time.Since(stopped).Round(time.Millisecond))
	if now[1] == victim {
		t.Fatal("group 2 still led by the stopped node")
	}
	for g := range now {
		if g != 1 && now[g] != leaders[g] {
			t.Fatalf("group %d changed leader from node %d to %d though its leader kept running", g+1, leaders[g]+1, now[g]+1)
		}
	}
	// Writes to group 2's slots resumed, not only to the others'.
	split := cluster.SplitSlots(3)
	mu.Lock()
	defer mu.Unlock()
	inGroup2 := 0
	for k, v := range acked {
		got, err := cc.Get(ctx(), k).Result()
		if err != nil || got != v {
			t.Fatalf("acknowledged %s=%s, read %q (%v)", k, v, got, err)
		}
		if split[1][0].Contains(cluster.KeySlot([]byte(k))) {
			inGroup2++
		}
	}
	if inGroup2 == 0 {
		t.Fatal("no acknowledged write in group 2's slots")
	}
	t.Logf("%d acknowledged writes readable (%d in group 2's slots)", len(acked), inGroup2)
}

// TestGroupsReshard: a range of group 1's slots moves to group 2 while a
// ClusterClient writes and reads keys across all slots (following -ASK and
// -MOVED); afterwards every acknowledged write reads back and CLUSTER
// SLOTS on every node shows group 2's leader serving the range.
func TestGroupsReshard(t *testing.T) {
	tc := newTestClusterGroups(t, 3, 3)
	leaders := tc.waitGroupLeaders(true)
	cc := tc.clusterClient()
	moved := cluster.SlotRange{First: 0, Last: 1999}

	var (
		mu      sync.Mutex
		acked   = map[string]string{}
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		inRange atomic.Int64
		errs    atomic.Int64
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Overwrite keys now and then, so that moved keys are
				// written again on their new group.
				k := fmt.Sprintf("r%d:%d", w, i%1500)
				v := strconv.Itoa(i)
				if err := cc.Set(ctx(), k, v, 0).Err(); err != nil {
					if errs.Add(1) <= 5 {
						t.Logf("SET %s: %v", k, err)
					}
					time.Sleep(5 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
				if moved.Contains(cluster.KeySlot([]byte(k))) {
					inRange.Add(1)
				}
				if got, err := cc.Get(ctx(), k).Result(); err == nil && got != v {
					t.Errorf("GET %s right after SET %s = %q", k, v, got)
				}
			}
		}()
	}
	// Keys enough in the range that the move takes many batches.
	pre := map[string]string{}
	_, err := cc.Pipelined(ctx(), func(p redis.Pipeliner) error {
		for i := range 20000 {
			k := "p" + strconv.Itoa(i)
			pre[k] = strconv.Itoa(i)
			p.Set(ctx(), k, pre[k], 0)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for inRange.Load() < 200 {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	n := newReshardDriver(tc).run(moved, 1, 2, 50)
	t.Logf("moved %d keys of slots %s from group 1 to 2 in %v under load", n, moved, time.Since(start).Round(time.Millisecond))
	if n == 0 {
		t.Fatal("no key moved")
	}
	time.Sleep(300 * time.Millisecond) // writes after the move, on group 2
	close(stop)
	wg.Wait()
	t.Logf("%d client errors during the move (retried)", errs.Load())

	mu.Lock()
	defer mu.Unlock()
	for k, v := range pre {
		acked[k] = v
	}
	for k, v := range acked {
		got, err := cc.Get(ctx(), k).Result()
		if err != nil || got != v {
			t.Fatalf("acknowledged %s=%s, read %q (%v)", k, v, got, err)
		}
	}
	// Routing settles on every node once each applied the move.
	want := tc.addrs()[leaders[1]]
	for i := range tc.srvs {
		var got map[cluster.SlotRange]string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			got = tc.slotMasters(i)
			if got[moved] == want {
				break
			}
		}
		if got[moved] != want {
			t.Fatalf("node %d: CLUSTER SLOTS %v, want %s served by %s", i+1, got, moved, want)
		}
	}
	// Group 1 holds none of the range's keys any more, group 2 holds them.
	for g, wantAny := range []bool{false, true} {
		found := 0
		tc.srvs[0].srv.onReplica(g, func(r *cluster.Replica) {
			view := r.DB().View()
			defer view.Release()
			view.Ascend(func(e engine.Entry) bool {
				if moved.Contains(cluster.KeySlot(e.Key)) {
					found++
				}
				return true
			})
		})
		if (found > 0) != wantAny {
			t.Fatalf("group %d on node 1 holds %d keys of slots %s", g+1, found, moved)
		}
	}
	t.Logf("%d acknowledged writes readable after the move", len(acked))
	c := redis.NewClient(&redis.Options{Addr: tc.srvs[2].addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	groups, err := c.Do(ctx(), "CLUSTER", "GROUPS").Slice()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(groups[:2]), "[[group 1 leader 1 members [1 2 3] owned [2000-5461] migrating [] importing []] "+
		"[group 2 leader 2 members [1 2 3] owned [0-1999 5462-10922] migrating [] importing []]]"; got != want {
		t.Fatalf("CLUSTER GROUPS after the move:\n%s\nwant\n%s", got, want)
	}
}

// TestGroupsNodeWide: keyless node-wide commands answer for the groups the
// node leads: DBSIZE sums them, KEYS lists them, SCAN walks them,
// FLUSHALL empties them, FUNCTION LOAD loads into each; a node that
// leads no group answers from group 1 and refuses writes.
func TestGroupsNodeWide(t *testing.T) {
	tc := newTestClusterGroups(t, 3, 3)
	leaders := tc.waitGroupLeaders(true)
	cc := tc.clusterClient()
	const keys = 600
	for i := range keys {
		if err := cc.Set(ctx(), "n"+strconv.Itoa(i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Each master counts its own group; together they count every key
	// (DBSIZE is read on the leader: it has applied every write it acked).
	sum := int64(0)
	for i := range tc.srvs {
		n, err := strconv.ParseInt(strings.TrimPrefix(tc.raw(i).do("DBSIZE"), ":"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	if sum != keys {
		t.Fatalf("DBSIZE over the masters sums to %d, want %d", sum, keys)
	}
	if got, err := cc.DBSize(ctx()).Result(); err != nil || got != keys {
		t.Fatalf("ClusterClient DBSIZE = %d, %v; want %d", got, err, keys)
	}

	// Stop node 3: group 3 fails over to node 1 or 2, which then leads
	// two groups and answers for both.
	tc.stop(2)
	now := tc.waitGroupLeaders(false)
	two := now[2]
	led := 0
	for _, l := range now {
		if l == two {
			led++
		}
	}
	t.Logf("leaders %v after node 3 stopped (were %v); node %d leads %d groups", now, leaders, two+1, led)
	c := redis.NewClient(&redis.Options{Addr: tc.srvs[two].addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	want := 0
	for i := range keys {
		slot := cluster.KeySlot([]byte("n" + strconv.Itoa(i)))
		for g, rs := range cluster.SplitSlots(3) {
			if rs[0].Contains(slot) && now[g] == two {
				want++
			}
		}
	}
	if n, err := c.DBSize(ctx()).Result(); err != nil || n != int64(want) {
		t.Fatalf("DBSIZE on node %d = %d, %v; want %d (its %d groups)", two+1, n, err, want, led)
	}
	if ks, err := c.Keys(ctx(), "*").Result(); err != nil || len(ks) != want {
		t.Fatalf("KEYS * on node %d: %d keys, %v; want %d", two+1, len(ks), err, want)
	}
	var scanned []string
	for cur := uint64(0); ; {
		ks, next, err := c.Scan(ctx(), cur, "", 37).Result()
		if err != nil {
			t.Fatal(err)
		}
		scanned = append(scanned, ks...)
		if cur = next; cur == 0 {
			break
		}
	}
	slices.Sort(scanned)
	if len(slices.Compact(scanned)) != want {
		t.Fatalf("SCAN on node %d found %d distinct keys, want %d", two+1, len(scanned), want)
	}
	if k, err := c.RandomKey(ctx()).Result(); err != nil || !strings.HasPrefix(k, "n") {
		t.Fatalf("RANDOMKEY = %q, %v", k, err)
	}

	// One pipeline with keys of both groups the node leads, and a
	// node-wide command in between: cut into per-group runs, answered in
	// order.
	var ledGroups []int
	for g, l := range now {
		if l == two {
			ledGroups = append(ledGroups, g)
		}
	}
	keyIn := func(g int, prefix string) string {
		for i := 0; ; i++ {
			if k := prefix + strconv.Itoa(i); cluster.SplitSlots(3)[g][0].Contains(cluster.KeySlot([]byte(k))) {
				return k
			}
		}
	}
	ka, kb := keyIn(ledGroups[0], "pa"), keyIn(ledGroups[1], "pb")
	raw := tc.raw(two)
	var pipe []byte
	cmds := [][]string{{"SET", ka, "1"}, {"INCR", ka}, {"SET", kb, "x"}, {"GET", ka}, {"DBSIZE"}, {"APPEND", kb, "y"}, {"GET", kb}, {"DEL", ka, kb}}
	for _, cmd := range cmds {
		w := resp.NewWriter()
		w.WriteArray(len(cmd))
		for _, a := range cmd {
			w.WriteBulkString(a)
		}
		pipe = append(pipe, w.Bytes()...)
	}
	raw.send(string(pipe))
	var got []string
	for range cmds {
		got = append(got, raw.reply())
	}
	wantPipe := fmt.Sprint([]string{"+OK", ":2", "+OK", "$2", ":" + strconv.Itoa(want+2), ":2", "$xy", "-CROSSSLOT Keys in request don't hash to the same slot"})
	if fmt.Sprint(got) != wantPipe {
		t.Fatalf("pipeline across groups on node %d:\n got %v\nwant %s", two+1, got, wantPipe)
	}
	for _, k := range []string{ka, kb} {
		if r := raw.do("DEL", k); r != ":1" {
			t.Fatalf("DEL %s = %s", k, r)
		}
	}

	// FUNCTION LOAD goes to each group the node leads: FCALL then works
	// for keys of each of them.
	payload := functionPayload(t, "counter")
	if lib, err := c.Do(ctx(), "FUNCTION", "LOAD", payload).Text(); err != nil || lib != "counter" {
		t.Fatalf("FUNCTION LOAD = %q, %v", lib, err)
	}
	for g, l := range now {
		if l != two {
			continue
		}
		key := ""
		for i := 0; key == ""; i++ {
			if k := "f" + strconv.Itoa(i); cluster.SplitSlots(3)[g][0].Contains(cluster.KeySlot([]byte(k))) {
				key = k
			}
		}
		if _, err := c.Do(ctx(), "FCALL", "incr_by", 1, key, 1).Result(); err != nil {
			t.Fatalf("FCALL incr_by on %s (group %d): %v", key, g+1, err)
		}
	}

	// FLUSHALL empties the groups the node leads, and only those.
	if err := c.FlushAll(ctx()).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.DBSize(ctx()).Result(); err != nil || n != 0 {
		t.Fatalf("DBSIZE after FLUSHALL = %d, %v", n, err)
	}
	other := 1 - two // the other running node, leading the remaining group
	if n, _ := strconv.Atoi(strings.TrimPrefix(tc.raw(other).do("DBSIZE"), ":")); n == 0 {
		t.Fatal("FLUSHALL on one master emptied another master's group")
	}
}

// TestGroupsDiskFailureReopensOneGroup: a failed fsync in one node's
// replica of group 2 makes that replica fatal; the node reopens it from
// disk (and only it), group 1 keeps its leader, and every acknowledged
// write of both groups stays readable.
func TestGroupsDiskFailureReopensOneGroup(t *testing.T) {
	faulty := &syncFailFS{FS: disk.OS()}
	// appendfsync always: every write of the group syncs its WAL, so the
	// armed fault fires at the next one.
	tc := &testCluster{t: t, dir: t.TempDir(), groups: 2, fsync: cluster.FsyncAlways}
	tc.fs = func(i int, g uint64) disk.FS {
		if i == 1 && g == 2 { // node 2, which group 2 prefers as leader
			return faulty
		}
		return disk.OS()
	}
	tc.startAll(3)
	leaders := tc.waitGroupLeaders(true)
	cc := tc.clusterClient()
	split := cluster.SplitSlots(2)
	acked := map[string]string{}
	errsSeen := 0
	write := func(n int, prefix string) {
		for i := range n {
			k, v := prefix+strconv.Itoa(i), strconv.Itoa(i)
			if err := cc.Set(ctx(), k, v, 0).Err(); err == nil {
				acked[k] = v
			} else if errsSeen++; errsSeen <= 3 {
				t.Logf("SET %s: %v", k, err)
			}
		}
	}
	write(200, "before")
	faulty.armed.Store(true)
	// Write until group 2's WAL on node 2 syncs and fails; some writes
	// may fail while it reopens.
	for round := 0; faulty.armed.Load(); round++ {
		if round == 100 {
			t.Fatal("no WAL fsync of group 2 on node 2 happened")
		}
		write(20, "during"+strconv.Itoa(round)+":")
	}
	waitFor(t, "replica_reopens:1 on node 2", func() bool {
		return tc.srvs[1].srv.Node().ReplicaReopens() == 1
	})
	now := tc.waitGroupLeaders(false)
	if now[0] != leaders[0] {
		t.Fatalf("group 1 changed leader (%v → %v) though its replicas never failed", leaders, now)
	}
	write(200, "after")
	in2 := 0
	for k, v := range acked {
		if got, err := cc.Get(ctx(), k).Result(); err != nil || got != v {
			t.Fatalf("acknowledged %s=%s reads %q (%v)", k, v, got, err)
		}
		if split[1][0].Contains(cluster.KeySlot([]byte(k))) && strings.HasPrefix(k, "after") {
			in2++
		}
	}
	if in2 == 0 {
		t.Fatal("no write to group 2 acknowledged after the reopen")
	}
	if n := tc.srvs[0].srv.Node().ReplicaReopens() + tc.srvs[2].srv.Node().ReplicaReopens(); n != 0 {
		t.Fatalf("%d reopens on the nodes whose disks did not fail", n)
	}
	t.Logf("%d acknowledged writes readable; leaders %v → %v", len(acked), leaders, now)
}
