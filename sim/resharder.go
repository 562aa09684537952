package sim

import (
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/cluster"
)

// The resharder moves slot ranges between the groups of a sharded world
// (Group.Reshard), as `keel cluster reshard` does: it drives the pure
// cluster.Reshard state machine, sending each step (a CLUSTER RESHARD
// command) to the leader of the step's group as it last learned it (MOVED
// replies name it; at first, or after a failure, a random node), and
// feeding back every outcome: replies, redirects, refusals and unknown
// outcomes (a timeout is "IOERR no reply …"). Each step is idempotent, so
// the machine decides what is sent again. It is a client of the world
// (its commands are in the trace, not in the history: a move changes no
// value).

// Pauses of the resharder.
const (
	// reshardRetry: before sending a step again after a refusal or an
	// unknown outcome.
	reshardRetry = 100 * time.Millisecond
	// reshardRedirectsFast: MOVED replies followed at once since the last
	// step that got an answer; more are followed after a TRYAGAIN pause
	// (two nodes may briefly name each other as leader).
	reshardRedirectsFast = 8
)

// SlotMoveSpec is one move: Range from group From to group To.
type SlotMoveSpec struct {
	Range    cluster.SlotRange
	From, To uint64
	Batch    int
	// DropImports plants a bug (tests that prove the checks bite): the
	// resharder skips IMPORTKEYS as if it had succeeded, so the keys it
	// moves vanish.
	DropImports bool
	// OnStep, when set, is told each time a step is sent: its group and
	// its name (IMPORTING, MOVEKEYS, ...), so a scenario can aim faults
	// at the move.
	OnStep func(group uint64, step string)
	// StepPause is a pause between a step's answer and the next step
	// (an operator's tool that paces itself): the longer a move, the
	// more client traffic meets its locks and redirects.
	StepPause time.Duration
}

func (m SlotMoveSpec) String() string {
	return m.Range.String() + " g" + itoa(int64(m.From)) + "->g" + itoa(int64(m.To))
}

// reshardState is the resharder client's.
type reshardState struct {
	move *cluster.Reshard
	spec SlotMoveSpec
	done func()
	// group is the group of the step in flight; leader, per group, the
	// node last learned to lead it.
	group     uint64
	leader    map[uint64]*Node
	redirects int
	steps     int64
	// finished are the moves that ended (in order), failed those that
	// ended with an error.
	finished []SlotMoveSpec
	failed   bool
}

// Reshard starts moving m.Range from group m.From to m.To; done (if set)
// runs when the move finished. One move at a time. A move that ends with
// an error fails the run.
func (g *Group) Reshard(m SlotMoveSpec, done func()) {
	if g.groups < 2 {
		panic("sim: Group.Reshard in a world of one replica group")
	}
	if g.resharder == nil {
		c := g.addClient()
		c.name = "resharder"
		c.route.reshard = &reshardState{leader: map[uint64]*Node{}}
		g.resharder = c
	}
	c := g.resharder
	st := c.route.reshard
	if st.move != nil {
		panic("sim: Group.Reshard while " + st.spec.String() + " is in progress")
	}
	if st.failed {
		return // a move already failed; the run has failed
	}
	st.move = cluster.NewReshard(m.Range, m.From, m.To, m.Batch)
	st.spec, st.done = m, done
	g.r.W.Trace(c.name, "begin move "+m.String()+" batch="+strconv.Itoa(m.Batch))
	c.issue()
}

// Moves are the moves that finished, in order.
func (g *Group) Moves() []SlotMoveSpec {
	if g.resharder == nil {
		return nil
	}
	return g.resharder.route.reshard.finished
}

// reshardNext is the resharder's next command, or false when it is idle
// (no move, a step in flight, or the move just ended).
func (c *Client) reshardNext() (opSpec, bool) {
	st := c.route.reshard
	if st.move == nil || c.cur != nil {
		return opSpec{}, false
	}
	grp, argv, done := st.move.Next()
	for st.spec.DropImports && !done && len(argv) > 3 && string(argv[3]) == "IMPORTKEYS" {
		c.r.W.Trace(c.name, "planted bug: skip "+string(argv[3]))
		st.move.Reply("", nil)
		grp, argv, done = st.move.Next()
	}
	if done {
		c.reshardEnded()
		return opSpec{}, false
	}
	st.group = grp
	st.steps++
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = string(a)
	}
	if st.spec.OnStep != nil && len(words) > 3 {
		st.spec.OnStep(grp, words[3])
	}
	return opSpec{argv: words}, true
}

// reshardNode is where the step goes: the leader of its group as last
// learned, else a random node.
func (c *Client) reshardNode() *Node {
	st := c.route.reshard
	if n := st.leader[st.group]; n != nil {
		return n
	}
	return c.randomNode()
}

func (c *Client) reshardEnded() {
	st := c.route.reshard
	m := st.move
	st.move = nil
	if err := m.Err(); err != nil {
		st.failed = true
		c.r.Oracle.fail("reshard: move " + st.spec.String() + " failed after " + itoa(int64(m.Moved())) + " keys: " + oneLine(err.Error()))
		return
	}
	st.finished = append(st.finished, st.spec)
	c.r.W.Trace(c.name, "done move "+st.spec.String()+" ("+itoa(int64(m.Moved()))+" keys moved)")
	if st.done != nil {
		st.done()
	}
}

// reshardReply feeds a step's answer to the machine and sends the next
// step (or the same one again) when it is due.
func (c *Client) reshardReply(r Reply) {
	st := c.route.reshard
	c.cur = nil
	next := time.Duration(0)
	switch {
	case r.Kind == '*':
		arr := make([][]byte, len(r.Elems))
		for i, e := range r.Elems {
			if e.Kind == ':' {
				arr[i] = []byte(strconv.FormatInt(e.Int, 10))
			} else {
				arr[i] = []byte(e.Str)
			}
		}
		st.move.Reply("", arr)
		st.redirects = 0
		next = st.spec.StepPause
	case !r.IsError():
		st.move.Reply("", nil)
		st.redirects = 0
		next = st.spec.StepPause
	default:
		st.move.Reply(r.Str, nil)
		switch {
		case strings.HasPrefix(r.Str, "MOVED "):
			if n := c.redirectNode(r.Str); n != nil {
				st.leader[st.group] = n
				c.learn(n)
			}
			if st.redirects++; st.redirects > reshardRedirectsFast {
				next = tryAgainBackoffMin
			}
		case strings.HasPrefix(r.Str, "TRYAGAIN"):
			if strings.Contains(r.Str, "no leader") {
				delete(st.leader, st.group)
			}
			next = tryAgainBackoffMin + time.Duration(c.rng.Int64N(int64(tryAgainBackoffJitter)))
		default:
			// A refusal (disk) or an unknown outcome (leadership lost):
			// the leader may be gone; find it again. Any other error
			// ended the move (the next issue reports it).
			delete(st.leader, st.group)
			next = reshardRetry
		}
	}
	c.r.W.After(next, c.issue)
}

// reshardUnanswered: the step got no answer (timeout, or the workload
// ended): its outcome is unknown.
func (c *Client) reshardUnanswered(why string) {
	st := c.route.reshard
	c.r.W.Trace(c.name, "no answer #"+itoa(int64(c.curSeq))+" ("+why+")")
	c.cur = nil
	c.att.inFlight = false
	if st.move == nil {
		return
	}
	st.move.Reply("IOERR no reply ("+why+"): the step may or may not have been applied", nil)
	delete(st.leader, st.group)
	c.r.W.After(reshardRetry, c.issue)
}

// checkResharder: every move the scenario started had finished when the
// workload ended.
func (g *Group) checkResharder() {
	if g.resharder == nil {
		return
	}
	st := g.resharder.route.reshard
	if st.move != nil {
		g.r.Oracle.fail("reshard: move " + st.spec.String() + " had not finished when the workload ended (" +
			itoa(int64(st.move.Moved())) + " keys moved, " + itoa(st.steps) + " steps sent)")
	}
}

// expectedOwners is the slot → group map the starting split and the
// finished moves, in order, leave.
func (g *Group) expectedOwners() []uint64 {
	owner := make([]uint64, cluster.SlotCount)
	for i, rs := range cluster.SplitSlots(g.founding) {
		for _, r := range rs {
			for s := r.First; s <= r.Last; s++ {
				owner[s] = uint64(i + 1)
			}
		}
	}
	for _, m := range g.Moves() {
		for s := m.Range.First; s <= m.Range.Last; s++ {
			owner[s] = m.To
		}
	}
	return owner
}
