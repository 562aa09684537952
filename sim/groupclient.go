package sim

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/cluster"
)

// Clients of the replicated world route as go-redis's ClusterClient does:
// keyed commands go to the node believed to own the slot (at first a
// random one); "MOVED <slot> n<id>" re-sends to the named node at once;
// "TRYAGAIN" (election running) re-sends to a random node after a short
// backoff; both mean nothing was done. A request unanswered within the
// timeout, or answered cluster.ErrMsgLeaderLost, has an unknown outcome.
// A READONLY GET goes to a random node and is recorded outside the
// history (FollowerRead). "Random" is among the nodes the client knows:
// the members when it was created, plus those MOVED named since (a node
// that joined later); a removed node stays known, and times out once it
// is stopped.
//
// The admin (Group.Admin) is a client that sends only CLUSTER ADDNODE and
// DELNODE, routed the same way, each retried until it is known to have
// happened: +OK, or "already a member" / "is not a member" after an
// attempt whose outcome is unknown. In a sharded world a change is made
// in every group in turn, group 1 first, each its own Raft conf change:
// the admin's request names the group (a sim-internal choice, as CLUSTER
// RESHARD <g> names its group), goes to that group's leader as the admin
// last learned it (MOVED names it; at first, or after a failure, a random
// node), and is retried there until known to have happened.

// Bounds on one operation's routing.
const (
	// redirectsMax: MOVED/TRYAGAIN replies one operation follows before
	// the client gives up on it (it was never executed): with the
	// TRYAGAIN backoff, about 4 s, longer than an election.
	redirectsMax = 64
	// tryAgainBackoffMin and tryAgainBackoffJitter: the pause before
	// retrying after TRYAGAIN.
	tryAgainBackoffMin    = 20 * time.Millisecond
	tryAgainBackoffJitter = 80 * time.Millisecond
	// finalRetry: the final reader's pause before re-reading a key whose
	// read it had to abandon.
	finalRetry = 50 * time.Millisecond
	// adminRetry: the admin's pause before sending a membership change
	// again after an attempt that did not make it.
	adminRetry = 200 * time.Millisecond
)

// route is one client's routing state.
type route struct {
	// target is where keyed commands go: the slot owner as last learned.
	target *Node
	// node is where the current attempt went; attempt numbers attempts
	// so a timeout armed for an old one does nothing.
	node      *Node
	attempt   uint64
	inFlight  bool
	redirects int
	// script, for the final reader (final), is the operations left.
	script []opSpec
	final  bool
	// again is an operation to issue again before anything else: the
	// bank setup's FUNCTION LOAD until it is known to have happened.
	again *opSpec
	// known are the nodes random choices pick from.
	known []*Node
	// admin marks the admin client; change is its membership change in
	// progress (nil: idle).
	admin  bool
	change *adminChange
	// adminLeader, for the admin of a sharded world: each group's leader
	// as last learned.
	adminLeader map[uint64]*Node
	// In a sharded world (shard.go): slots maps a slot to the node the
	// client learned (MOVED) serves it; slot is the current operation's
	// (-1: keyless); asking makes the next attempt carry ASKING.
	slots  map[int]*Node
	slot   int
	asking bool
	// reshard marks the resharder (resharder.go) and holds its state.
	reshard *reshardState
}

// adminChange is one CLUSTER ADDNODE/DELNODE the admin retries until it
// is known to have happened.
type adminChange struct {
	argv []string
	// already is the refusal that means an earlier attempt made the
	// change; it is accepted only once some attempt's outcome is unknown.
	already string
	unknown bool
	last    string // the last reply, for a failure message
	done    func()
	// group, in a sharded world, is the group the change is being made
	// in now (1..Groups, in turn); unknown is about that group's attempts.
	group uint64
}

func (c *Client) randomNode() *Node {
	ns := c.route.known
	return ns[c.rng.IntN(len(ns))]
}

// learn adds a node a MOVED reply named to the nodes the client knows.
func (c *Client) learn(n *Node) {
	for _, k := range c.route.known {
		if k == n {
			return
		}
	}
	c.route.known = append(c.route.known, n)
	c.r.W.Trace(c.name, "learn n"+itoa(int64(n.cfg.ID))+" from MOVED")
}

func (c *Client) issueGroup() {
	if c.stopped || (!c.route.final && c.r.W.now >= int64(c.r.cfg.Duration)) {
		return
	}
	var op opSpec
	switch {
	case c.route.reshard != nil:
		var ok bool
		if op, ok = c.reshardNext(); !ok {
			return
		}
	case c.route.admin:
		if c.route.change == nil || c.cur != nil {
			return // idle, or an attempt is out (a second issue was queued)
		}
		op = opSpec{argv: c.route.change.argv}
	case c.route.again != nil:
		op, c.route.again = *c.route.again, nil
	case c.route.final:
		if len(c.route.script) == 0 {
			c.r.Group.finalReadsDone()
			return
		}
		op, c.route.script = c.route.script[0], c.route.script[1:]
	case c.bankWaiting():
		c.r.W.After(c.think()+time.Millisecond, c.issue)
		return
	case c.r.cfg.Workload.Bank == nil && c.rng.IntN(100) < c.r.Group.cfg.FollowerReadPct:
		op = opSpec{argv: []string{"GET", c.plainKey()}, readOnly: true}
	default:
		op = c.gen()
	}
	c.seq++
	c.cur, c.curSeq, c.curCall = &op, c.seq, c.r.W.now
	c.r.Stats.Ops++
	what := "call #" + itoa(int64(c.seq)) + " " + strings.Join(op.argv, " ")
	if op.readOnly {
		what += " (READONLY)"
	}
	c.r.W.Trace(c.name, what)
	c.route.redirects = 0
	c.route.node = c.route.target
	switch {
	case c.route.reshard != nil:
		c.route.node = c.reshardNode()
	case c.route.admin && c.sharded():
		c.route.slot = -1
		c.route.node = c.adminNode()
	case c.sharded():
		c.route.asking = false
		c.route.slot = opSlot(op.argv)
		c.route.node = c.slotNode()
	}
	if op.readOnly {
		c.route.node = c.randomNode()
	}
	c.sendAttempt()
}

// sendAttempt sends the current operation to route.node and arms its
// timeout.
func (c *Client) sendAttempt() {
	op := c.cur
	argv := make([][]byte, len(op.argv))
	for i, a := range op.argv {
		argv[i] = []byte(a)
	}
	c.route.attempt++
	c.route.inFlight = true
	seq, attempt, node := c.curSeq, c.route.attempt, c.route.node
	q := &request{client: c.id, seq: seq, argv: argv, words: op.argv, readOnly: op.readOnly, asking: c.route.asking}
	if c.route.admin && c.route.change != nil {
		q.group = c.route.change.group
	}
	c.route.asking = false
	c.r.Net.sendStream(c.id, node.cfg.ID, func() { node.receive(q) })
	c.r.W.After(c.r.cfg.Workload.Timeout, func() {
		if c.cur != nil && c.curSeq == seq && c.route.attempt == attempt && c.route.inFlight {
			c.r.W.Trace(c.name, "timeout #"+itoa(int64(seq))+" at n"+itoa(int64(node.cfg.ID)))
			// The connection is given up; the next command goes elsewhere.
			c.forgetRoute()
			c.endUnanswered("timeout")
		}
	})
}

// endUnanswered ends an operation whose last attempt got no reply: a
// write's outcome is unknown; a read (or SCAN) changed nothing and is
// dropped.
func (c *Client) endUnanswered(why string) {
	if c.route.reshard != nil {
		c.reshardUnanswered(why)
		return
	}
	op := c.cur
	c.loadAgain(op, nil)
	if c.route.admin && c.route.inFlight {
		c.route.change.unknown = true
	}
	if c.route.inFlight && op.hist != nil && !op.readOnly && op.hist.Kind != checker.Get && op.hist.Kind != checker.MGet {
		c.r.Stats.Unknown++
		c.finish(nil)
		return
	}
	c.abandon(why)
}

// abandon ends the operation without a history entry: it was never
// executed (only redirects came back) or it read nothing.
func (c *Client) abandon(why string) {
	op := c.cur
	c.r.W.Trace(c.name, "abandon #"+itoa(int64(c.curSeq))+" ("+why+")")
	c.cur = nil
	c.route.inFlight = false
	c.bankReplied(op, nil)
	c.loadAgain(op, nil)
	if c.r.cfg.Workload.Bank != nil && op.hist != nil && op.hist.Kind == checker.Set {
		// A bank account's opening SET that was never executed (only
		// redirects came back) is issued again before anything else: an
		// account left unopened while transfers touch it would break the
		// opening total the checker holds every read to.
		again := *op
		c.route.again = &again
	}
	if c.route.final {
		c.route.script = append([]opSpec{*op}, c.route.script...)
		c.r.W.After(finalRetry, c.issue)
		return
	}
	if c.route.admin {
		c.r.W.After(adminRetry, c.issue)
		return
	}
	c.r.W.After(c.think(), c.issue)
}

func (c *Client) onGroupReply(seq uint64, r Reply) {
	if c.cur == nil || c.curSeq != seq || !c.route.inFlight {
		c.r.W.Trace(c.name, "late reply #"+itoa(int64(seq))+" "+r.String())
		return
	}
	c.r.W.Trace(c.name, "return #"+itoa(int64(seq))+" "+r.String())
	c.route.inFlight = false
	op := c.cur
	if c.route.reshard != nil {
		c.reshardReply(r)
		return
	}
	switch {
	case r.IsError() && strings.HasPrefix(r.Str, "MOVED "):
		f := strings.Fields(r.Str)
		id, err := strconv.ParseUint(strings.TrimPrefix(f[len(f)-1], "n"), 10, 64)
		if len(f) != 3 || err != nil || id == 0 || id > uint64(len(c.r.Group.Nodes)) {
			c.r.Oracle.fail("a MOVED reply names no node of the group: " + r.Str)
			c.abandon("bad redirect")
			return
		}
		if c.route.redirects++; c.route.redirects > redirectsMax {
			c.abandon("too many redirects")
			return
		}
		c.route.node = c.r.Group.Node(id)
		c.route.target = c.route.node
		c.learn(c.route.node)
		if c.sharded() {
			c.learnSlot(f[1], c.route.node)
			if c.route.admin {
				c.route.adminLeader[c.route.change.group] = c.route.node
			}
		}
		c.sendAttempt()
	case r.IsError() && strings.HasPrefix(r.Str, "ASK "):
		n := c.redirectNode(r.Str)
		if n == nil {
			c.abandon("bad redirect")
			return
		}
		if c.route.redirects++; c.route.redirects > redirectsMax {
			c.abandon("too many redirects")
			return
		}
		// One attempt at the importing group's leader, with ASKING; the
		// slot's route is not changed.
		c.route.node = n
		c.route.asking = true
		c.sendAttempt()
	case r.IsError() && strings.HasPrefix(r.Str, "TRYAGAIN"):
		if c.route.redirects++; c.route.redirects > redirectsMax {
			c.abandon("too many redirects")
			return
		}
		seq := c.curSeq
		d := tryAgainBackoffMin + time.Duration(c.rng.Int64N(int64(tryAgainBackoffJitter)))
		noLeader := strings.Contains(r.Str, "no leader")
		c.r.W.After(d, func() {
			if c.cur != nil && c.curSeq == seq && !c.stopped {
				switch {
				case c.route.admin && c.sharded():
					if noLeader {
						delete(c.route.adminLeader, c.route.change.group)
					}
					c.route.node = c.adminNode()
				case c.sharded():
					// A slot being moved: the same node again; an
					// election: wherever the slot leads now.
					if noLeader {
						delete(c.route.slots, c.route.slot)
					}
					c.route.node = c.slotNode()
				default:
					c.route.node = c.randomNode()
				}
				c.sendAttempt()
			}
		})
	case r.IsError() && (r.Str == cluster.ErrMsgLeaderLost || r.Str == cluster.ErrMsgDiskUnknown):
		c.forgetRoute()
		c.route.inFlight = true // the write may still commit
		c.endUnanswered("leadership lost")
	case c.route.admin:
		c.adminReply(r)
	case op.readOnly:
		if r.Kind != '$' && r.Kind != '_' {
			c.abandon("error")
			return
		}
		v := checker.Nil
		if r.Kind == '$' {
			v = checker.Str(r.Str)
		}
		g := c.r.Group
		g.FollowerReads = append(g.FollowerReads, FollowerRead{
			Client: int(c.id), Node: c.route.node.cfg.ID, Key: op.argv[1],
			Call: c.curCall, Return: c.r.W.now, Value: v,
		})
		c.cur = nil
		c.r.W.After(c.think(), c.issue)
	case r.IsError() && (op.hist == nil || op.hist.Kind == checker.Get || op.hist.Kind == checker.MGet):
		// A read that failed (the node is restarting from a disk fault)
		// changed nothing.
		c.forgetRoute()
		c.abandon("error")
	default:
		c.loadAgain(op, &r)
		if r.IsError() && (r.Str == cluster.ErrMsgDiskFatal || r.Str == cluster.ErrMsgDiskFull) {
			c.forgetRoute()
		}
		c.finish(&r)
	}
}

// loadAgain makes a FUNCTION LOAD that is not known to have happened
// (no reply, or an error other than "already exists") the client's next
// operation: the workload needs the library.
func (c *Client) loadAgain(op *opSpec, r *Reply) {
	if len(op.argv) < 2 || !strings.EqualFold(op.argv[0], "FUNCTION") || !strings.EqualFold(op.argv[1], "LOAD") {
		return
	}
	if r != nil && (!r.IsError() || strings.Contains(r.Str, "already exists")) {
		return
	}
	again := *op
	c.route.again = &again
}

// checkFollowerReads holds READONLY reads to the stated staleness rule.
// For a value that only one write ever wrote (the workload's unique
// "c<client>-<n>" strings): that write was issued before the read
// returned and did not come back refusing (SET NX/XX answered nil), and
// no later mutation of the key — issued after that write returned — had
// already been acknowledged StaleBound before the read was issued.
func (g *Group) checkFollowerReads() {
	r := g.r
	byValue := map[string]int{} // unique value → index in History
	byKey := map[string][]int{} // key → acknowledged mutations
	for i, op := range r.History {
		switch op.Kind {
		case checker.Set:
			byValue[op.Value] = i
			if !op.Unknown && op.Output.Kind == checker.StrValue {
				byKey[op.Key] = append(byKey[op.Key], i)
			}
		case checker.Del:
			if !op.Unknown {
				byKey[op.Key] = append(byKey[op.Key], i)
			}
		case checker.IncrBy:
			if !op.Unknown && op.Output.Kind == checker.IntValue {
				byKey[op.Key] = append(byKey[op.Key], i)
			}
		}
	}
	for _, fr := range g.FollowerReads {
		if fr.Value.Kind != checker.StrValue || !uniqueValue(fr.Value.Str) {
			continue
		}
		g.Checked++
		where := "follower read by c" + itoa(int64(fr.Client)) + " on n" + itoa(int64(fr.Node)) + " at " +
			time.Duration(fr.Call).String() + ": GET " + fr.Key + " -> " + fr.Value.String()
		i, ok := byValue[fr.Value.Str]
		if !ok {
			// Refused writes (disk full) are not in the history: one that
			// took effect anyway is a bug too.
			r.Oracle.fail(where + ": no recorded write wrote that value")
			continue
		}
		w := r.History[i]
		if w.Key != fr.Key {
			r.Oracle.fail(where + ": that value was written to " + w.Key)
			continue
		}
		if w.Call > fr.Return {
			r.Oracle.fail(where + ": the write of that value was issued after the read returned")
			continue
		}
		if !w.Unknown && w.Output.Kind == checker.NilValue {
			r.Oracle.fail(where + ": the SET of that value answered nil (not written)")
			continue
		}
		if w.Unknown {
			continue // its end is unknown: nothing is provably after it
		}
		for _, j := range byKey[fr.Key] {
			m := r.History[j]
			if m.Call > w.Return && m.Return < fr.Call-int64(g.cfg.StaleBound) {
				r.Oracle.fail(where + ": staler than " + g.cfg.StaleBound.String() + ": overwritten by " + string(m.Kind) +
					" acknowledged at " + time.Duration(m.Return).String())
				break
			}
		}
	}
}

// uniqueValue: the workload writes "c<client>-<seq>" strings once each.
func uniqueValue(s string) bool { return strings.HasPrefix(s, "c") && strings.Contains(s, "-") }

// Admin sends a membership change (CLUSTER ADDNODE <id> <addr> or CLUSTER
// DELNODE <id>) through the admin client, routed like a client's command
// and retried until it is known to have happened; then Members follows
// and done (if set) runs. One change at a time.
func (g *Group) Admin(argv []string, done func()) {
	r := g.r
	if g.admin == nil {
		g.admin = g.addClient()
		g.admin.route.admin = true
		g.admin.name = "admin"
	}
	c := g.admin
	if c.route.change != nil {
		panic("sim: Group.Admin while " + strings.Join(c.route.change.argv, " ") + " is in progress")
	}
	ch := &adminChange{argv: argv, done: done, already: "is not a member"}
	if g.groups > 1 {
		ch.group = 1
		if c.route.adminLeader == nil {
			c.route.adminLeader = map[uint64]*Node{}
		}
	}
	if len(argv) > 1 && strings.EqualFold(argv[1], "ADDNODE") {
		ch.already = "already a member"
	}
	c.route.change = ch
	r.W.Trace("admin", "begin "+strings.Join(argv, " "))
	if ch.group > 0 && g.AdminStep != nil {
		g.AdminStep(ch.group)
	}
	c.issue()
}

// adminReply ends an admin attempt that got an answer other than a
// redirect or an unknown outcome.
func (c *Client) adminReply(r Reply) {
	ch, g := c.route.change, c.r.Group
	c.cur = nil
	ch.last = r.String()
	what := strings.Join(ch.argv, " ")
	switch {
	case r.Kind == '+' && r.Str == "OK":
	case r.IsError() && strings.Contains(r.Str, ch.already):
		if !ch.unknown {
			c.r.Oracle.fail("membership: " + what + " answered " + r.Str + " though no earlier attempt could have made the change")
		}
	default:
		// Refused (a disk error, a leader stepping down): nothing was
		// done; try again elsewhere.
		if c.sharded() {
			delete(c.route.adminLeader, ch.group)
		} else {
			c.route.target = c.randomNode()
		}
		c.r.W.After(adminRetry, c.issue)
		return
	}
	id, _ := strconv.ParseUint(ch.argv[2], 10, 64)
	changed := func(was []uint64) []uint64 {
		var ms []uint64
		for _, m := range was {
			if m != id {
				ms = append(ms, m)
			}
		}
		if ch.already == "already a member" {
			ms = append(ms, id)
			slices.Sort(ms)
		}
		return ms
	}
	if c.sharded() {
		ms := changed(g.perGroup[ch.group-1])
		g.perGroup[ch.group-1] = ms
		c.r.W.Trace("admin", "done "+what+" in g"+itoa(int64(ch.group))+" (its members "+idList(ms)+")")
		var union []uint64
		for _, pg := range g.perGroup {
			for _, m := range pg {
				if !slices.Contains(union, m) {
					union = append(union, m)
				}
			}
		}
		slices.Sort(union)
		g.members = union
		if ch.group < uint64(g.groups) {
			ch.group++
			ch.unknown = false
			if g.AdminStep != nil {
				g.AdminStep(ch.group)
			}
			c.r.W.After(0, c.issue)
			return
		}
	}
	c.route.change = nil
	ms := g.members
	if !c.sharded() {
		ms = changed(g.members)
		g.members = ms
	}
	c.r.W.Trace("admin", "done "+what+" (members "+idList(ms)+")")
	if ch.done != nil {
		ch.done()
	}
}

// checkAdmin: every membership change the scenario asked for happened
// before the workload ended.
func (g *Group) checkAdmin() {
	if g.admin == nil || g.admin.route.change == nil {
		return
	}
	ch := g.admin.route.change
	where := ""
	if ch.group > 0 {
		where = " (in group " + itoa(int64(ch.group)) + " of " + itoa(int64(g.groups)) + ")"
	}
	g.r.Oracle.fail("membership: " + strings.Join(ch.argv, " ") + where + " was not known to have happened when the workload ended (last reply: " + ch.last + ")")
}

// checkVoters: the leader of the final configuration has exactly the
// voters the acknowledged changes say, and so does every member (they
// applied everything it committed).
func (g *Group) checkVoters() {
	l := g.Leader()
	if l == nil {
		g.r.Oracle.fail("membership: no leader at the end to ask for its voters")
		return
	}
	want := idList(g.members)
	if got := idList(l.rep.Voters()); got != want {
		g.r.Oracle.fail("membership: the leader n" + itoa(int64(l.cfg.ID)) + " has voters " + got + ", want " + want)
	}
	for _, n := range g.memberNodes() {
		if n.up && n != l && g.converged() {
			if got := idList(n.rep.Voters()); got != want {
				g.r.Oracle.fail("convergence: n" + itoa(int64(n.cfg.ID)) + " has voters " + got + ", want " + want)
			}
		}
	}
}

// adminNode is where the admin's change goes in a sharded world: its
// group's leader as last learned, else a random node.
func (c *Client) adminNode() *Node {
	if n := c.route.adminLeader[c.route.change.group]; n != nil {
		return n
	}
	return c.randomNode()
}

// StartJoiner starts a node that is not a founding member (GroupConfig.
// Joiners): empty disk, Options.Join. It takes part once Admin added it.
func (g *Group) StartJoiner(id uint64) {
	if id <= uint64(g.cfg.Nodes) || id > uint64(len(g.Nodes)) {
		panic("sim: StartJoiner(" + itoa(int64(id)) + "): not a joiner of this group")
	}
	n := g.Node(id)
	if n.up || n.epoch > 0 {
		return
	}
	n.start()
}

// Stop takes the node out for good, as an operator stops the process of
// a member the group removed: it is not restarted, and the final phase
// leaves it alone.
func (n *Node) Stop() {
	n.trace("stop for good")
	n.dead, n.stopped = true, true
	n.downFor = 0
	if n.sharded() {
		n.grp.forgetNode(n)
	}
	if n.up {
		n.down(false)
		return
	}
	n.epoch++ // a restart already scheduled does nothing
}

// forgetNode drops a node stopped for good from every client's routes in
// a sharded world, as a cluster client's topology refresh does (CLUSTER
// SLOTS and NODES no longer list it): without it, the resharder and the
// clients keep picking the dead node at random and each pick costs a
// whole timeout. Clients of a one-group world keep it and time out there
// (their traces predate this).
func (g *Group) forgetNode(n *Node) {
	for _, c := range g.r.Clients {
		var known []*Node
		for _, k := range c.route.known {
			if k != n {
				known = append(known, k)
			}
		}
		if len(known) > 0 {
			c.route.known = known
		}
		forget := func(m map[uint64]*Node) {
			for k, v := range m {
				if v == n {
					delete(m, k)
				}
			}
		}
		forget(c.route.adminLeader)
		if c.route.reshard != nil {
			forget(c.route.reshard.leader)
		}
		for s, v := range c.route.slots {
			if v == n {
				delete(c.route.slots, s)
			}
		}
	}
}

// onRefused: the node the current attempt went to was stopped for good
// and refused the connection (sharded worlds). Nothing was sent, so
// nothing was done: the route to it is dropped and the operation given
// up (the resharder, the admin and the final reader send it again).
func (c *Client) onRefused(seq uint64, n *Node) {
	if c.cur == nil || c.curSeq != seq || !c.route.inFlight {
		return
	}
	c.r.W.Trace(c.name, "refused #"+itoa(int64(seq))+" by n"+itoa(int64(n.cfg.ID)))
	c.route.inFlight = false
	if st := c.route.reshard; st != nil {
		c.cur = nil
		if st.move != nil {
			st.move.Reply("IOERR connection refused by n"+itoa(int64(n.cfg.ID)), nil)
			delete(st.leader, st.group)
			c.r.W.After(reshardRetry, c.issue)
		}
		return
	}
	c.forgetRoute()
	c.abandon("connection refused")
}
