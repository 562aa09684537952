package sim

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/cluster"
)

// Clients of the replicated world route as go-redis's ClusterClient does,
// on the replies the real node composes (node/routing.go): keyed commands
// go to the node believed to serve the slot (at first a random one);
// "MOVED <slot> <host:port>" re-sends to the named node at once and
// remembers it for the slot; "ASK <slot> <host:port>" re-sends once to the
// named node with ASKING first; "TRYAGAIN" (election running, slot moving,
// key locked) re-sends after a short backoff; "READONLY" (a keyless write
// at a follower) re-sends to another node; all of these mean nothing was
// done. A request unanswered within the timeout, or answered
// cluster.ErrMsgLeaderLost, has an unknown outcome. A READONLY GET goes to
// a random node on a connection that sent READONLY and is recorded outside
// the history (FollowerRead). "Random" is among the nodes the client
// knows: the members when it was created, plus those redirects named
// since (a node that joined later).
//
// The admin (Group.Admin) changes membership as `keel cluster addnode` and
// `delnode` do: it asks a node for CLUSTER GROUPS, sends CLUSTER ADDNODE
// (DELNODE) to a group's leader (which applies it in every group it
// leads), and asks again until every group's leader lists the change.

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
	// target is where keyed commands go in a one-group world: the
	// leader as last learned.
	target *Node
	// node is where the current attempt went.
	node      *Node
	redirects int
	// script, for the final reader (final), is the operations left.
	script []opSpec
	final  bool
	// again is an operation to issue again before anything else: the
	// bank setup's FUNCTION LOAD until it is known to have happened.
	again *opSpec
	// known are the nodes random choices pick from.
	known []*Node
	// admin holds the admin's membership change in progress (nil: not
	// the admin, or idle).
	admin *adminState
	// In a multi-group world (multigroup.go): slots maps a slot to the
	// node the client learned (MOVED) serves it; slot is the current
	// operation's (-1: keyless); asking makes the next attempt carry
	// ASKING.
	slots  map[int]*Node
	slot   int
	asking bool
	// reshard marks the resharder (resharder.go) and holds its state.
	reshard *reshardState
}

func (c *Client) randomNode() *Node {
	ns := c.route.known
	return ns[c.rng.IntN(len(ns))]
}

// learn adds a node a redirect named to the nodes the client knows.
func (c *Client) learn(n *Node) {
	for _, k := range c.route.known {
		if k == n {
			return
		}
	}
	c.route.known = append(c.route.known, n)
	c.r.W.Trace(c.name, "learn n"+itoa(int64(n.cfg.ID))+" from a redirect")
}

func (c *Client) issueGroup() {
	if c.stopped || (!c.route.final && c.r.W.now >= int64(c.r.cfg.Duration)) {
		return
	}
	var op opSpec
	workload := false
	switch {
	case c.route.reshard != nil:
		var ok bool
		if op, ok = c.reshardNext(); !ok {
			return
		}
	case c.route.admin != nil:
		var ok bool
		if op, ok = c.adminNext(); !ok {
			return
		}
	case c == c.r.Group.admin:
		return // idle until the next change
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
		workload = true
	default:
		op = c.gen()
		workload = true
	}
	c.seq++
	if workload && !c.r.sendOp(c, c.seq, op.argv) {
		c.skip(&op)
		return
	}
	c.cur, c.curSeq, c.curCall, c.curRead = &op, c.seq, c.r.W.now, false
	c.r.Stats.Ops++
	if op.ttlMs > 0 {
		op.ttlW = c.r.ttlIssued(&op, c.curCall)
	}
	suffix := ""
	if op.readOnly {
		suffix = " (READONLY)"
	}
	c.traceCall(&op, suffix)
	c.route.redirects = 0
	c.route.asking = false
	c.route.node = c.route.target
	switch {
	case c.route.reshard != nil:
		c.route.node = c.reshardNode()
	case c.route.admin != nil:
		c.route.node = c.adminNode()
	case c.multiGroup():
		c.route.slot = opSlot(op.argv)
		c.route.node = c.slotNode()
	}
	if op.readOnly {
		c.route.node = c.randomNode()
	}
	if op.at != nil {
		c.route.node = op.at
	}
	c.sendAttempt()
}

// sendAttempt sends the current operation to route.node.
func (c *Client) sendAttempt() {
	asking := c.route.asking
	c.route.asking = false
	c.send(c.route.node, asking)
}

// endUnanswered ends an operation whose last attempt got no reply: a
// write's outcome is unknown; a read (or SCAN) changed nothing and is
// dropped.
func (c *Client) endUnanswered(why string) {
	if c.route.reshard != nil {
		c.reshardUnanswered(why)
		return
	}
	if c.route.admin != nil {
		c.adminUnanswered(why)
		return
	}
	if why == "timeout" && !c.curRead {
		// No node read any attempt (timedOut), and the timeout broke
		// the connection: it was never executed.
		c.neverRead()
		c.abandon("timeout, no node read it")
		return
	}
	op := c.cur
	c.loadAgain(op, nil)
	if op.hist != nil && !op.readOnly && op.hist.Kind != checker.Get && op.hist.Kind != checker.MGet {
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
	c.att.inFlight = false
	c.bankReplied(op, nil)
	c.grammarReplied(op, nil)
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
	c.r.W.After(c.think(), c.issue)
}

// redirectNode is the node a MOVED or ASK reply names ("ASK 42 n3:6379");
// nil (and a failure: the reply is malformed) when it names none of the
// world's nodes.
func (c *Client) redirectNode(msg string) *Node {
	f := strings.Fields(msg)
	if len(f) == 3 {
		if _, err := strconv.Atoi(f[1]); err == nil {
			if n := c.r.Group.nodeAt(f[2]); n != nil {
				return n
			}
		}
	}
	c.r.Oracle.fail("a redirect names no node of the cluster: " + msg)
	return nil
}

func (c *Client) onGroupReply(r Reply) {
	op := c.cur
	if c.route.reshard != nil {
		c.reshardReply(r)
		return
	}
	if c.route.admin != nil {
		c.adminReply(r)
		return
	}
	if r.IsError() && strings.Contains(r.Str, "Function not found") {
		c.reloadAt(c.route.node)
	}
	if op.session != nil && r.IsError() && (strings.HasPrefix(r.Str, "MOVED ") || strings.HasPrefix(r.Str, "ASK ") || strings.HasPrefix(r.Str, "TRYAGAIN")) {
		// A watched EXEC redirected: its WATCH is on this connection only,
		// so the transfer starts over where the keys are served.
		if strings.HasPrefix(r.Str, "MOVED ") {
			if n := c.redirectNode(r.Str); n != nil {
				c.learn(n)
				if c.multiGroup() {
					c.learnSlot(strings.Fields(r.Str)[1], n)
				} else {
					// One group: the next operation goes to the leader
					// the MOVED named (else the transfer starts over at
					// the same follower, again and again).
					c.route.target = n
				}
			}
		}
		c.sessionLost()
		return
	}
	switch {
	case r.IsError() && strings.HasPrefix(r.Str, "MOVED "):
		n := c.redirectNode(r.Str)
		if n == nil {
			c.abandon("bad redirect")
			return
		}
		if c.route.redirects++; c.route.redirects > redirectsMax {
			c.abandon("too many redirects")
			return
		}
		c.route.node = n
		c.route.target = n
		c.learn(n)
		if c.multiGroup() {
			c.learnSlot(strings.Fields(r.Str)[1], n)
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
		c.learn(n)
		c.route.asking = true
		c.sendAttempt()
	case r.IsError() && (strings.HasPrefix(r.Str, "TRYAGAIN") || strings.HasPrefix(r.Str, "READONLY")):
		if c.route.redirects++; c.route.redirects > redirectsMax {
			c.abandon("too many redirects")
			return
		}
		seq := c.curSeq
		d := tryAgainBackoffMin + time.Duration(c.rng.Int64N(int64(tryAgainBackoffJitter)))
		elsewhere := strings.Contains(r.Str, "no leader") || strings.HasPrefix(r.Str, "READONLY")
		c.r.W.After(d, func() {
			if c.cur != nil && c.curSeq == seq && !c.stopped && !c.att.inFlight {
				switch {
				case c.multiGroup():
					// A slot being moved or a key locked: the same node
					// again; an election: wherever the slot leads now.
					if elsewhere {
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
		c.loadAgain(op, nil)
		if op.hist != nil && !op.readOnly && op.hist.Kind != checker.Get && op.hist.Kind != checker.MGet {
			c.r.Stats.Unknown++
			c.finish(nil) // the write may still commit
			return
		}
		c.abandon("leadership lost")
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
	case r.IsError() && isFunctionLoad(op.argv):
		// Loaded already (an earlier attempt whose answer was lost, or
		// another client's), or refused: again unless it is there.
		c.loadAgain(op, &r)
		c.r.W.Trace(c.name, "function load answered "+r.String())
		c.cur = nil
		c.r.W.After(c.think(), c.issue)
	case r.IsError() && (op.hist == nil || op.hist.Kind == checker.Get || op.hist.Kind == checker.MGet):
		// A read that failed (the node is reopening a replica after a
		// disk fault) changed nothing.
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
	if !isFunctionLoad(op.argv) {
		return
	}
	if r != nil && (!r.IsError() || strings.Contains(r.Str, "already exists")) {
		return
	}
	again := *op
	again.at = nil // the node it was aimed at may not lead any more
	c.route.again = &again
}

func isFunctionLoad(argv []string) bool {
	return len(argv) >= 2 && strings.EqualFold(argv[0], "FUNCTION") && strings.EqualFold(argv[1], "LOAD")
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

// adminState is the admin's membership change in progress, made as `keel
// cluster addnode` / `delnode` make it: survey CLUSTER GROUPS, send the
// change to a group's leader, survey again, until every group's leader
// lists it.
type adminState struct {
	argv []string // CLUSTER ADDNODE <id> <addr> or CLUSTER DELNODE <id>
	id   uint64
	add  bool
	done func()
	// survey: the next operation is CLUSTER GROUPS at at (nil: a random
	// member); else the change goes to at, the leader of a pending group.
	survey bool
	at     *Node
	// leaders are each group's leader as last surveyed; applied, per
	// group, that its leader listed the change (the change is then
	// acknowledged in that group).
	leaders map[uint64]*Node
	applied []bool
	last    string // the last reply, for a failure message
	// started is whether the scenario's AdminStep has been told of a
	// group, per group.
	started []bool
	// placed: a change of the meta record (GroupConfig.Moves), sent to
	// at (a random node at first), following -MOVED to group 1's leader,
	// until +OK.
	placed bool
	// acl: an ACL change (ACL SETUSER/DELUSER) on a placed cluster, sent
	// like a meta change; no node joins or leaves.
	acl bool
}

// Admin makes a membership change (CLUSTER ADDNODE <id> <addr> or CLUSTER
// DELNODE <id>) through the admin client, in every replica group, as
// `keel cluster addnode` does; then Members and MembersOf follow and done
// (if set) runs. One change at a time.
func (g *Group) Admin(argv []string, done func()) {
	r := g.r
	if g.admin == nil {
		g.admin = g.addClient()
		g.admin.name = "admin"
	}
	c := g.admin
	if c.route.admin != nil {
		panic("sim: Group.Admin while " + strings.Join(c.route.admin.argv, " ") + " is in progress")
	}
	acl := strings.EqualFold(argv[0], "ACL")
	if acl && !g.cfg.Moves {
		panic("sim: Group.Admin: an ACL change is sent this way only on a placed cluster with moves")
	}
	var id uint64
	if !acl && !strings.EqualFold(argv[1], "ADDGROUP") { // ACL and ADDGROUP (split.go) name no node
		var err error
		if id, err = strconv.ParseUint(argv[2], 10, 64); err != nil {
			panic("sim: Group.Admin: bad node id in " + strings.Join(argv, " "))
		}
	}
	c.route.admin = &adminState{argv: argv, id: id, add: strings.EqualFold(argv[1], "ADDNODE"), done: done, survey: true,
		leaders: map[uint64]*Node{}, applied: make([]bool, g.groups), started: make([]bool, g.groups), placed: g.cfg.Moves, acl: acl}
	r.W.Trace("admin", "begin "+strings.Join(argv, " "))
	c.issue()
}

// adminNext is the admin's next command: a survey, or the change sent to
// the leader of the first group that has not applied it.
func (c *Client) adminNext() (opSpec, bool) {
	a := c.route.admin
	if c.cur != nil {
		return opSpec{}, false // an attempt is out (a second issue was queued)
	}
	if a.placed {
		return opSpec{argv: a.argv}, true
	}
	if !a.survey {
		for gi, ok := range a.applied {
			grp := uint64(gi + 1)
			if ok || a.leaders[grp] == nil {
				continue
			}
			a.at = a.leaders[grp]
			if !a.started[gi] {
				a.started[gi] = true
				if g := c.r.Group; g.AdminStep != nil && g.groups > 1 {
					g.AdminStep(grp)
				}
			}
			return opSpec{argv: a.argv}, true
		}
		a.survey, a.at = true, nil // no leader known for a pending group
	}
	return opSpec{argv: []string{"CLUSTER", "GROUPS"}}, true
}

// adminNode is where the admin's command goes.
func (c *Client) adminNode() *Node {
	if a := c.route.admin; a.at != nil {
		return a.at
	}
	return c.randomNode()
}

// adminReply takes the answer to a survey or to the change itself.
func (c *Client) adminReply(r Reply) {
	a, g := c.route.admin, c.r.Group
	c.cur = nil
	a.last = r.String()
	if a.placed {
		c.placedAdminReply(r)
		return
	}
	if !a.survey {
		// Whatever the change's answer (+OK, already done, a redirect or
		// a refusal), the survey of the node it went to says which
		// groups applied it.
		a.survey = true
		pause := time.Duration(0)
		if r.IsError() {
			pause = adminRetry
		}
		c.r.W.After(pause, c.issue)
		return
	}
	self := c.route.node
	views, ok := parseGroups(r)
	if !ok {
		a.at = nil // a node that could not answer: ask another
		c.r.W.After(adminRetry, c.issue)
		return
	}
	for _, v := range views {
		if v.id < 1 || v.id > uint64(len(a.applied)) {
			c.r.Oracle.fail("membership: CLUSTER GROUPS on n" + itoa(int64(self.cfg.ID)) + " lists group " + itoa(int64(v.id)))
			continue
		}
		if v.leader == 0 || v.leader > uint64(len(g.Nodes)) {
			if a.leaders[v.id] == self {
				delete(a.leaders, v.id) // it no longer leads: find who does
			}
			continue
		}
		leader := g.Node(v.leader)
		a.leaders[v.id] = leader
		if leader != self || a.applied[v.id-1] {
			continue // only a group's leader vouches for what it applied
		}
		if slices.Contains(v.members, a.id) == a.add {
			a.applied[v.id-1] = true
			g.changed(c, v.id, a)
		}
	}
	if !slices.Contains(a.applied, false) {
		c.adminDone()
		return
	}
	a.survey = false
	c.r.W.After(0, c.issue)
}

// adminUnanswered: the survey or the change got no answer (or the
// connection was refused): survey another node after a pause.
func (c *Client) adminUnanswered(why string) {
	a := c.route.admin
	c.r.W.Trace(c.name, "no answer #"+itoa(int64(c.curSeq))+" ("+why+")")
	c.cur = nil
	c.att.inFlight = false
	a.survey, a.at = true, nil
	c.r.W.After(adminRetry, c.issue)
}

// changed records that group grp's leader applied the admin's change.
func (g *Group) changed(c *Client, grp uint64, a *adminState) {
	apply := func(was []uint64) []uint64 {
		var ms []uint64
		for _, m := range was {
			if m != a.id {
				ms = append(ms, m)
			}
		}
		if a.add {
			ms = append(ms, a.id)
			slices.Sort(ms)
		}
		return ms
	}
	what := strings.Join(a.argv, " ")
	if g.groups == 1 {
		g.members = apply(g.members)
		c.r.W.Trace("admin", "done "+what+" (members "+idList(g.members)+")")
		return
	}
	ms := apply(g.perGroup[grp-1])
	g.perGroup[grp-1] = ms
	c.r.W.Trace("admin", "done "+what+" in g"+itoa(int64(grp))+" (its members "+idList(ms)+")")
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
}

func (c *Client) adminDone() {
	a := c.route.admin
	c.route.admin = nil
	c.r.W.Trace("admin", "done "+strings.Join(a.argv, " ")+" in every group (members "+idList(c.r.Group.members)+")")
	if a.done != nil {
		a.done()
	}
	// Idle until the next change (Admin issues it).
}

// groupView is one group as CLUSTER GROUPS describes it.
type groupView struct {
	id, leader uint64
	members    []uint64
}

// parseGroups reads a CLUSTER GROUPS reply (RESP2: each group a flat
// array of name, value pairs).
func parseGroups(r Reply) ([]groupView, bool) {
	if r.Kind != '*' {
		return nil, false
	}
	var out []groupView
	for _, e := range r.Elems {
		if (e.Kind != '*' && e.Kind != '%') || len(e.Elems)%2 != 0 {
			return nil, false
		}
		var v groupView
		for i := 0; i < len(e.Elems); i += 2 {
			val := e.Elems[i+1]
			switch e.Elems[i].Str {
			case "group":
				v.id = uint64(val.Int)
			case "leader":
				v.leader = uint64(val.Int)
			case "members":
				for _, m := range val.Elems {
					v.members = append(v.members, uint64(m.Int))
				}
			}
		}
		out = append(out, v)
	}
	return out, true
}

// checkAdmin: every membership change the scenario asked for happened
// before the workload ended.
func (g *Group) checkAdmin() {
	if g.admin == nil || g.admin.route.admin == nil {
		return
	}
	a := g.admin.route.admin
	var pending []string
	for gi, ok := range a.applied {
		if !ok {
			pending = append(pending, itoa(int64(gi+1)))
		}
	}
	g.r.Oracle.fail("membership: " + strings.Join(a.argv, " ") + " was not known to have happened in group(s) " + strings.Join(pending, ",") +
		" when the workload ended (last reply: " + a.last + ")")
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
	if got := idList(l.replica(1).Voters()); got != want {
		g.r.Oracle.fail("membership: the leader n" + itoa(int64(l.cfg.ID)) + " has voters " + got + ", want " + want)
	}
	for _, n := range g.memberNodes() {
		if n.up && n != l && g.converged() {
			if got := idList(n.replica(1).Voters()); got != want {
				g.r.Oracle.fail("convergence: n" + itoa(int64(n.cfg.ID)) + " has voters " + got + ", want " + want)
			}
		}
	}
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

// forgetNode drops a node stopped for good from every client's routes in
// the world, as a cluster client's topology refresh does (CLUSTER
// SLOTS and NODES no longer list it): without it, the resharder and the
// clients keep picking the dead node at random and each pick costs a
// whole timeout.
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
		if a := c.route.admin; a != nil {
			forget(a.leaders)
			if a.at == n {
				a.at = nil
			}
		}
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
// and refused the connection. Nothing was sent, so nothing was done: the
// route to it is dropped and the operation given up (the resharder, the
// admin and the final reader send it again).
func (c *Client) onRefused(n *Node) {
	c.r.W.Trace(c.name, "refused #"+itoa(int64(c.curSeq))+" by n"+itoa(int64(n.cfg.ID)))
	if st := c.route.reshard; st != nil {
		c.cur = nil
		if st.move != nil {
			st.move.Reply("IOERR connection refused by n"+itoa(int64(n.cfg.ID)), nil)
			delete(st.leader, st.group)
			c.r.W.After(reshardRetry, c.issue)
		}
		return
	}
	if c.route.admin != nil {
		c.adminUnanswered("connection refused")
		return
	}
	c.forgetRoute()
	c.abandon("connection refused")
}
