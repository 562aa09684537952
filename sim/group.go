package sim

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/node"
)

// The replicated world: GroupConfig.Nodes voters, each the real
// cluster.Replica (one replica group owning every slot) on its own
// simulated disk and clock, wired by the simulated network. Raft messages
// are lossy datagrams; client connections are TCP-like streams. The
// single-node oracle does not apply (replies come from whichever node
// leads, in commit order); what the world checks instead:
//
//   - the client history is linearizable (kv model), including the final
//     reads on the leader after everyone restarted: no acknowledged write
//     lost;
//   - READONLY follower reads, outside the history, return only values
//     that were written, and none older than StaleBound;
//   - liveness: after the scenario's last fault heals, an acknowledged
//     write is issued and answered within LivenessWithin; the final reads
//     complete within FinalWithin;
//   - convergence: after the final reads, every replica holds what the
//     leader read.
//
// Membership (Joiners, Group.StartJoiner, Group.Admin): a node that is not
// a founding member starts with Options.Join and is added by an admin's
// CLUSTER ADDNODE; a member removed by CLUSTER DELNODE is stopped for
// good. The checks then apply to the members the admin's acknowledged
// changes say there are, and the final leader's voters must be exactly
// those.
//
// Sharding (GroupConfig.Groups > 1, shard.go): every node hosts a replica
// of every group, each owning a share of the slots; the resharder
// (resharder.go) moves slot ranges between groups, and the end checks
// every slot's single owner and each group's convergence. A joiner there
// opens every group's replica with Join, and the admin applies each
// membership change to every group in turn (each its own Raft conf
// change, sent to that group's leader); each group's final voters must
// be what the admin's acknowledged changes to it say.

// Bounds of the replicated world.
const (
	// convergeWithin: after the final reads, how long followers get to
	// apply everything before their state is compared with the leader's.
	convergeWithin = 5 * time.Second
)

// GroupConfig makes a run a replicated group (Config.Group).
type GroupConfig struct {
	// Nodes is the number of founding voters, ids 1..Nodes.
	Nodes int
	// Joiners are nodes that are not founding members, ids Nodes+1..
	// Nodes+Joiners: down until Group.StartJoiner starts one (with
	// Options.Join); CLUSTER ADDNODE (Group.Admin) makes it a voter.
	Joiners int
	// Clocks, when set, gives node i+1 its own clock (else Node.Clock).
	Clocks []ClockConfig
	// FollowerReadPct is the share (percent) of client operations that
	// are READONLY GETs sent to a random node, checked against StaleBound
	// outside the linearizability history.
	FollowerReadPct int
	// StaleBound: a follower read may miss writes acknowledged at most
	// this long (virtual time) before it was issued.
	StaleBound time.Duration
	// LivenessWithin: after the last fault heals (Group.HealAll, or the
	// last node coming back up, whichever is later), some write issued
	// then must be acknowledged within this long.
	LivenessWithin time.Duration
	// FinalWithin bounds the final phase: every node restarted, a leader
	// elected and every key read.
	FinalWithin time.Duration
	// FinalPowerLoss: the final restart of every node is a power loss
	// (sound under appendfsync always); else a process restart.
	FinalPowerLoss bool
	// Groups is the number of replica groups (0 or 1: one group owning
	// every slot, without slot gating). With more, every node hosts one
	// replica of every group, group g starting with cluster.SplitSlots's
	// g-th share of the slots (shard.go).
	Groups int
	// Replicas, when above 0 and below Nodes, places each group on that
	// many nodes (node/placement.go; Groups must be above 1): a node
	// hosts only its groups, pings its peers (the pings carry its view of
	// them), and the checks expect group g's voters to be
	// cluster.Place's g-th set, each key on exactly those nodes.
	Replicas int
	// Moves (with Replicas): the placement changes online (node/moves.go):
	// the admin's ADDNODE/DELNODE change the meta record, replicas move.
	// The end checks then take each group's expected nodes from the final
	// meta record, which must need no further move, give every group
	// Replicas distinct active nodes that are up, and list no node the
	// admin removed (sim/moves.go).
	Moves bool
	// NodeDeadAfter is the nodes' --node-dead-after (with Moves; 0: the
	// default, far beyond a run): a node stopped for good is marked dead
	// by the meta leader after it, and its replicas re-created.
	NodeDeadAfter time.Duration
	// MaxGroups (with Moves) is the nodes' --groups-max: splits (CLUSTER
	// ADDGROUP, a scenario's Group.Split) may grow the world from Groups
	// to it, and the end checks expect that many groups: the splits must
	// have happened (0: Groups, no split).
	MaxGroups int
}

// FollowerRead is a READONLY GET answered by a node (possibly a follower),
// kept out of the linearizability history.
type FollowerRead struct {
	Client       int
	Node         uint64
	Key          string
	Call, Return int64
	Value        checker.Value
}

// Group is the replicated world of a run (Run.Group).
type Group struct {
	r     *Run
	cfg   GroupConfig
	Nodes []*Node
	// ids are every node's (founders, then joiners); founders bootstrap
	// the group; members are the voters as the admin's acknowledged
	// changes leave them (sorted).
	ids, founders, members []uint64
	// perGroup, in a sharded world, are each group's voters as the
	// admin's acknowledged changes leave them (sorted); members is then
	// their union.
	perGroup [][]uint64
	// admin runs CLUSTER ADDNODE/DELNODE (Admin); nil until the first.
	admin *Client
	// removed are the nodes the admin took out of the meta record
	// (GroupConfig.Moves, moves.go).
	removed []uint64
	// votersShort: a group's leader was seen with fewer voters than
	// Replicas (failed once per group, moves.go).
	votersShort []bool
	// healedAt: virtual time of the scenario's HealAll; lastUp: of the
	// last node start that completed during the workload.
	healedAt, lastUp int64
	// groups is the number of replica groups (at least 1) at the end;
	// founding of them at the start (fewer with GroupConfig.MaxGroups).
	groups, founding int
	// role is what was last traced per node and group (leader id, term).
	role          map[roleKey][2]uint64
	FollowerReads []FollowerRead
	final         *Client
	finalDone     bool
	// Checked counts the follower reads and final-state comparisons made.
	Checked int64
	// resharder drives slot moves (Group.Reshard, resharder.go); nil
	// until the first.
	resharder *Client
	// AdminStep, when set in a sharded world, is told each time the
	// admin starts making its change in a group (the group's id), so a
	// scenario can aim faults at it.
	AdminStep func(group uint64)
}

type roleKey struct{ node, group uint64 }

// Node returns the member with id (1-based).
func (g *Group) Node(id uint64) *Node { return g.Nodes[id-1] }

// IDs are every node's id, joiners included.
func (g *Group) IDs() []uint64 { return g.ids }

// Members are the voters as the acknowledged membership changes leave
// them (the founders until the first), sorted.
func (g *Group) Members() []uint64 { return g.members }

func (g *Group) isMember(id uint64) bool {
	for _, m := range g.members {
		if m == id {
			return true
		}
	}
	return false
}

// MembersOf are group grp's voters as the acknowledged membership changes
// leave them (Members in a world of one group), sorted.
func (g *Group) MembersOf(grp uint64) []uint64 {
	if g.groups == 1 {
		return g.members
	}
	return g.perGroup[grp-1]
}

// memberOf: id is a voter of group grp as the acknowledged changes say.
func (g *Group) memberOf(grp, id uint64) bool { return slices.Contains(g.MembersOf(grp), id) }

// memberNodes are the nodes of Members.
func (g *Group) memberNodes() []*Node {
	out := make([]*Node, 0, len(g.members))
	for _, id := range g.members {
		out = append(out, g.Node(id))
	}
	return out
}

// Leader is the node that leads group 1 with the highest term among the
// nodes that are up (nil: none does).
func (g *Group) Leader() *Node { return g.LeaderOf(1) }

// LeaderOf is Leader for replica group grp (1-based).
func (g *Group) LeaderOf(grp uint64) *Node {
	var best *Node
	for _, n := range g.Nodes {
		if !n.up {
			continue
		}
		if rep := n.replica(grp); rep != nil && rep.IsLeader() && (best == nil || rep.Term() > best.replica(grp).Term()) {
			best = n
		}
	}
	return best
}

// Groups is the number of replica groups.
func (g *Group) Groups() int { return g.groups }

// Followers are the nodes other than the leader (all of them when there
// is none).
func (g *Group) Followers() []*Node {
	l := g.Leader()
	var out []*Node
	for _, n := range g.Nodes {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

// HealAll ends every fault: the network heals, disk faults and ballast
// are cleared. The liveness window starts here (or at the last restart
// after it).
func (g *Group) HealAll() {
	g.r.Net.Heal()
	for _, n := range g.Nodes {
		n.FS.SetFaults(DiskFaults{})
		n.FS.SetBallast(0)
	}
	g.healedAt = g.r.W.now
	g.r.W.Trace("scenario", "heal all")
}

// runGroup is Execute for a replicated world.
func (r *Run) runGroup() {
	cfg := r.cfg
	g := &Group{r: r, cfg: *cfg.Group, role: map[roleKey][2]uint64{}, groups: max(cfg.Group.Groups, cfg.Group.MaxGroups, 1), founding: max(cfg.Group.Groups, 1)}
	r.Group = g
	r.keys = nil // Execute named them without the key prefix
	for i := 0; i < cfg.Workload.PlainKeys; i++ {
		r.keys = append(r.keys, cfg.Workload.keyName(i))
	}
	for i := 0; i < cfg.Workload.TTLKeys; i++ {
		r.keys = append(r.keys, cfg.Workload.ttlKeyName(i))
	}
	for i := 1; i <= g.cfg.Nodes+g.cfg.Joiners; i++ {
		g.ids = append(g.ids, uint64(i))
		if i <= g.cfg.Nodes {
			g.founders = append(g.founders, uint64(i))
		}
	}
	g.members = append([]uint64(nil), g.founders...)
	g.votersShort = make([]bool, g.groups)
	if g.groups > 1 {
		for range g.groups {
			g.perGroup = append(g.perGroup, append([]uint64(nil), g.founders...))
		}
	}
	if g.placed() {
		// The world's expectation, computed apart from the nodes: a
		// node that places a group elsewhere fails the voter checks.
		place, err := cluster.Place(g.founders, g.founding, g.cfg.Replicas)
		if err != nil {
			panic(err) // the world's configuration is wrong
		}
		for grp := range g.groups {
			// A group a split adds is nowhere until the record says
			// (settleMoves takes the final record's targets).
			g.perGroup[grp] = place.Of(uint64(grp + 1))
		}
	}
	for _, id := range g.ids {
		nc := cfg.Node
		nc.ID = id
		if int(id) <= len(g.cfg.Clocks) {
			nc.Clock = g.cfg.Clocks[id-1]
		}
		n := newNode(r, nc)
		n.grp = g
		for grp := uint64(1); grp <= uint64(g.groups); grp++ {
			if err := n.FS.MkdirAll(node.GroupDir(n.cfg.Dir, g.groups, grp)); err != nil {
				panic(err)
			}
		}
		r.Net.Transport(id, n.deliverPeer)
		r.Net.attackTarget(id, n.deliverAttackFrame)
		g.Nodes = append(g.Nodes, n)
	}
	for i := 0; i < cfg.Workload.Clients; i++ {
		g.addClient()
	}
	for _, n := range g.Nodes {
		if n.cfg.ID <= uint64(g.cfg.Nodes) {
			n.start()
		}
	}
	if cfg.Schedule != nil {
		cfg.Schedule(r)
	}
	for i, c := range r.Clients {
		if r.vs.dropClient[i] {
			c.stopped = true
			continue
		}
		c.start()
	}
	r.W.RunUntil(int64(cfg.Duration))
	for _, c := range r.Clients {
		c.stopped = true
		if c.cur != nil {
			c.endUnanswered("workload ended")
		}
	}
	g.checkAdmin()
	g.checkResharder()
	g.finalPhase()
	if cfg.Check != nil {
		for _, f := range cfg.Check(r) {
			r.Oracle.fail(f)
		}
	}
	g.checkLiveness()
	g.checkFollowerReads()
	for _, op := range r.History {
		if !op.Unknown {
			r.Oracle.Stats.Checked++
		}
	}
	r.Oracle.Stats.Checked += g.Checked + r.ttl.checked
	r.traceEnd()
}

func (g *Group) addClient() *Client {
	r := g.r
	i := len(r.Clients)
	id := uint64(clientIDBase + i)
	c := &Client{r: r, id: id, name: "c" + strconv.Itoa(int(id)), rng: r.W.Stream("client/" + strconv.Itoa(i))}
	// A client knows the members it was configured with; it learns
	// others from MOVED.
	c.route.known = g.memberNodes()
	c.route.target = c.route.known[c.rng.IntN(len(c.route.known))]
	r.Clients = append(r.Clients, c)
	return c
}

// finalPhase heals everything, restarts every node (power loss or process
// restart), and reads every key through a fresh client: those reads are
// part of the history, so the checker proves no acknowledged write was
// lost. Then every replica's state is compared with what the leader read.
func (g *Group) finalPhase() {
	r := g.r
	r.W.Trace("sim", "final: heal, restart every node, read every key on the leader")
	r.Net.Heal()
	for _, n := range g.Nodes {
		n.FS.SetFaults(DiskFaults{})
		n.FS.SetBallast(0)
		n.FS.CrashAfter(0)
		if !n.up {
			continue // restarting on its own (or dead: a failure already)
		}
		if g.cfg.FinalPowerLoss {
			n.powerOff("final check")
		} else {
			n.restart()
		}
	}
	c := g.addClient()
	c.route.final = true
	switch {
	case r.cfg.Workload.Queue != nil:
		c.route.script = r.queueDrain() // drain every list: RPOPs in the history
	case r.cfg.Workload.ZSet != nil:
		c.route.script = r.zsetDrain()
	case r.cfg.Workload.Set != nil:
		c.route.script = r.setDrain()
	case r.cfg.Workload.Grammar != nil:
		// A write through the log on the final leader (nothing else in
		// the history: the replicas are compared with each other).
		c.route.script = []opSpec{{argv: []string{"DEL", "final-barrier"}}}
	default:
		for _, k := range r.keys {
			c.route.script = append(c.route.script, opSpec{argv: []string{"GET", k}, hist: &checker.Op{Kind: checker.Get, Key: k}})
		}
	}
	for i := 0; i < r.cfg.Workload.TTLKeys; i++ {
		c.route.script = append(c.route.script, opSpec{argv: []string{"PTTL", r.cfg.Workload.ttlKeyName(i)}, ttlRead: true})
	}
	g.final = c
	start := r.W.now
	r.W.After(r.cfg.Node.RestartDelay, c.issue)
	r.W.RunUntil(start + int64(g.cfg.FinalWithin))
	if !g.finalDone {
		r.Oracle.fail("liveness: the final reads did not complete within " + g.cfg.FinalWithin.String() +
			" of healing and restarting every node (" + strconv.Itoa(len(c.route.script)) + " keys left)")
		return
	}
	g.checkConverged()
}

// finalRead records the outcome of the last final read; the phase ends.
func (g *Group) finalReadsDone() {
	g.finalDone = true
	g.r.W.Trace("sim", "final reads done")
	g.r.W.Halt()
}

// checkConverged waits for every node to apply what the leader committed
// and compares each node's keys with the final reads (read locally,
// without a ReadIndex: a follower answers from its own state).
func (g *Group) checkConverged() {
	if g.groups > 1 {
		g.checkGroups()
		return
	}
	if g.r.cfg.Workload.Grammar != nil {
		g.checkTypedConverged()
		return
	}
	r := g.r
	want := map[string]checker.Value{}
	finalFrom := r.W.now
	for _, op := range r.History {
		if op.Client == int(g.final.id) && !op.Unknown {
			want[op.Key] = op.Output
			finalFrom = min(finalFrom, op.Call)
		}
	}
	// A key evicted since the final reads began is compared replica
	// against replica instead (evict.go).
	late := r.evictedSince(finalFrom)
	var first map[string]localValue
	r.W.halted = false
	deadline := r.W.now + int64(convergeWithin)
	for r.W.now < deadline {
		if g.converged() {
			break
		}
		r.W.RunUntil(r.W.now + int64(100*time.Millisecond))
	}
	g.checkVoters()
	for _, n := range g.memberNodes() {
		if !n.up {
			r.Oracle.fail("convergence: n" + itoa(int64(n.cfg.ID)) + " is down at the end")
			continue
		}
		st := n.replica(1).GroupStats()
		if first == nil {
			first = map[string]localValue{}
		}
		for _, k := range r.keys {
			got := n.localGet(k)
			g.Checked++
			if late[k] {
				if f, ok := first[k]; !ok {
					first[k] = got
				} else if f.Reply.Kind != got.Reply.Kind || f.Reply.Str != got.Reply.Str {
					r.Oracle.fail("convergence: n" + itoa(int64(n.cfg.ID)) + " holds " + k + "=" + got.String() +
						" but another replica holds " + f.String() + " (applied " + itoa(int64(st.Applied)) + ")")
				}
				continue
			}
			w, ok := want[k]
			if !ok {
				continue
			}
			if !got.equalValue(w) {
				r.Oracle.fail("convergence: n" + itoa(int64(n.cfg.ID)) + " holds " + k + "=" + got.String() +
					" but the leader read " + w.String() + " (applied " + itoa(int64(st.Applied)) + ", commit " + itoa(int64(st.Commit)) + ")")
			}
		}
	}
}

// converged: every member is up and has applied the leader's commit
// index.
func (g *Group) converged() bool {
	l := g.Leader()
	if l == nil {
		return false
	}
	commit := l.replica(1).GroupStats().Commit
	for _, n := range g.memberNodes() {
		if !n.up || n.replica(1).GroupStats().Applied < commit {
			return false
		}
	}
	return true
}

// localValue is a GET reply as a checker value.
type localValue struct{ Reply }

func (v localValue) equalValue(w checker.Value) bool {
	switch v.Kind {
	case '$':
		return w.Kind == checker.StrValue && w.Str == v.Str
	case '_':
		return w.Kind == checker.NilValue
	}
	return false
}

// localGet reads key from the node's own state: a READONLY request, which
// a fresh follower (and the leader, after a ReadIndex) serves.
// A follower that is not fresh at the moment redirects; it is asked again.
func (n *Node) localGet(key string) localValue {
	return n.localRead(1, [][]byte{[]byte("GET"), []byte(key)})
}

// localRead runs a read on group grp's replica of the node, as localGet:
// the world looking at a replica, submitted to it directly.
func (n *Node) localRead(grp uint64, argv [][]byte) localValue {
	last := localValue{Reply{Kind: '-', Str: "no reply"}}
	for try := 0; try < 20 && n.up; try++ {
		var rec recorder
		reqs := []cluster.Request{{Argv: argv, W: &rec, ReadOnly: true}}
		done := false
		nd := n.nd
		nd.Submit(grp, n.Clock.Now(), reqs, func() { done = true })
		n.FS.TakeBusy()
		n.flush()
		for i := 0; !done && i < 50 && n.nd == nd; i++ {
			n.r.W.RunUntil(n.r.W.now + int64(10*time.Millisecond))
		}
		if done {
			last = localValue{rec.top}
			if !rec.top.IsError() {
				return last
			}
		}
		n.r.W.RunUntil(n.r.W.now + int64(100*time.Millisecond))
	}
	return last
}

// nodeAt is the node at a client address ("n3:6379"), nil when none.
func (g *Group) nodeAt(addr string) *Node {
	host, port, ok := strings.Cut(addr, ":")
	id, err := strconv.ParseUint(strings.TrimPrefix(host, "n"), 10, 64)
	if !ok || err != nil || port != itoa(nodePort) || !strings.HasPrefix(host, "n") || id < 1 || id > uint64(len(g.Nodes)) {
		return nil
	}
	return g.Node(id)
}

// checkLiveness: after the last fault healed, some write issued then was
// acknowledged within LivenessWithin.
func (g *Group) checkLiveness() {
	r := g.r
	from := max(g.healedAt, g.lastUp)
	until := from + int64(g.cfg.LivenessWithin)
	if until > int64(r.cfg.Duration) && r.cfg.Variant.Until > 0 {
		// A variant ended the workload early (shrinking): there is no
		// calm after the faults to judge, by construction.
		r.W.Trace("sim", "liveness not judged: the variant ended the workload at "+r.cfg.Duration.String())
		return
	}
	if until > int64(r.cfg.Duration) {
		r.Oracle.fail("liveness: the scenario healed at " + time.Duration(from).String() +
			", too late to observe " + g.cfg.LivenessWithin.String() + " of writes before the workload ends")
		return
	}
	for _, a := range r.grammarAcks {
		if a[0] >= from && a[1] <= until {
			return
		}
	}
	for _, op := range r.History {
		if op.Unknown || op.Call < from || op.Return > until {
			continue
		}
		switch op.Kind {
		case checker.Set, checker.Del, checker.IncrBy, checker.Transfer, checker.LPush, checker.ZAdd, checker.ZIncrBy, checker.SAdd, checker.SRem:
			return
		}
	}
	r.Oracle.fail("liveness: no write issued after the last fault healed (" + time.Duration(from).String() +
		") was acknowledged within " + g.cfg.LivenessWithin.String())
}

// nodeUp is called when a member finished starting.
func (g *Group) nodeUp(n *Node) {
	if g.r.W.now <= int64(g.r.cfg.Duration) {
		g.lastUp = g.r.W.now
	}
	g.r.Oracle.Stats.Recoveries++
	g.noteRole(n)
}

// noteRole traces a node's view of the leadership of each of its groups
// when it changed.
func (g *Group) noteRole(n *Node) {
	if n.nd == nil {
		return
	}
	for grp := uint64(1); grp <= uint64(g.groups); grp++ {
		rep := n.nd.Replica(grp)
		if rep == nil || n.nd.Dead(grp) != "" {
			continue
		}
		cur := [2]uint64{rep.Leader(), rep.Term()}
		k := roleKey{n.cfg.ID, grp}
		if g.role[k] == cur {
			continue
		}
		g.role[k] = cur
		role := "follower"
		if rep.IsLeader() {
			role = "leader"
		}
		n.trace("raft " + role + " term=" + itoa(int64(cur[1])) + " leader=n" + itoa(int64(cur[0])) + n.groupSuffix(grp))
	}
}

// IsLeader reports whether the node is up and leads group 1.
func (n *Node) IsLeader() bool { return n.IsLeaderOf(1) }

// IsLeaderOf reports whether the node is up and leads group grp.
func (n *Node) IsLeaderOf(grp uint64) bool {
	rep := n.replica(grp)
	return n.up && rep != nil && rep.IsLeader()
}

// SnapshotStreams is the member's snapshot streaming counters (zero while
// it is down).
func (n *Node) SnapshotStreams() cluster.SnapshotStreamStats {
	if !n.up {
		return cluster.SnapshotStreamStats{}
	}
	return n.replica(1).SnapshotStreams()
}

// GroupStats is the member's replication state (zero while it is down).
func (n *Node) GroupStats() cluster.GroupStats {
	if !n.up {
		return cluster.GroupStats{}
	}
	return n.replica(1).GroupStats()
}

// placed: groups live on subsets of the nodes (GroupConfig.Replicas).
func (g *Group) placed() bool {
	return g.groups > 1 && g.cfg.Replicas > 0 && g.cfg.Replicas < g.cfg.Nodes
}
