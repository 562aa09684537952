package node

import (
	"strconv"
	"strings"

	"github.com/keel-db/keel/cluster"
)

// Membership of a sharded node (--groups G > 1). Every group has every
// node as a voter, so adding or removing a node is one Raft configuration
// change in EACH group (cluster/group.go: a single voter in or out, at
// most one pending per group, answered when it applies). On a sharded
// node CLUSTER ADDNODE <id> <host:port> and CLUSTER DELNODE <id> are
// node-wide commands, like FUNCTION LOAD (fanout.go): they run on the
// groups THIS node leads, one after another, and the reply is
//   - +OK once every one of them has applied the change. A group that
//     answers that the node is already a member (ADDNODE) or not a member
//     (DELNODE) counts as done, so a retry after an unknown outcome, or a
//     resend to a node whose groups were partly done, is harmless: the
//     command is idempotent per group (so too is an ADDNODE of a member
//     under a new address: +OK, address unchanged; DELNODE it first);
//   - -TRYAGAIN naming the groups done and the first that is not, when a
//     group could not apply it for a passing reason (leadership moved
//     during the call, an election, an outcome unknown): send it again;
//   - -ERR naming the group, when a group refused it for good (removing
//     its last member); the groups listed as done keep the change;
//   - -ERR listing every group's leader, when this node leads no group.
// A node leading only some groups changes only those: the whole operation
// is to send the command to the leader of every group, which `keel
// cluster addnode` / `keel cluster delnode` do (reading CLUSTER GROUPS
// until each group's leader lists the change). In between the groups
// disagree about the node, which is safe: each group is a Raft group of
// its own, and the address book keeps a node while any group lists it
// (confChanged).

// membershipOnLedGroups runs CLUSTER ADDNODE/DELNODE (sub) on every group
// this node leads and answers as above.
func (c *Session) membershipOnLedGroups(sub string, argv [][]byte) {
	name := "CLUSTER " + strings.ToUpper(sub)
	if id, err := strconv.ParseUint(string(argv[2]), 10, 64); err != nil || id == 0 {
		c.Out.WriteError("ERR invalid node id '" + string(argv[2]) + "': a positive integer")
		return
	}
	n := c.n
	led := n.ledGroups()
	if len(led) == 0 {
		c.Out.WriteError("ERR this node leads no replica group: " + name + " changes the groups the receiving node leads; send it to every group's leader (" +
			n.leadersText() + "), or run `keel cluster " + sub + "`")
		return
	}
	argv = cloneArgv(argv)
	var done []uint64
	var step func(i int)
	step = func(i int) {
		if i == len(led) {
			c.Out.WriteSimple("OK")
			return
		}
		g := led[i]
		rec := &recorder{}
		c.runOn(g, argv, rec, func() {
			switch msg := rec.err; {
			case msg == "" || membershipAlreadyDone(msg):
				done = append(done, g)
				step(i + 1)
			case cluster.Retryable(msg) || strings.HasPrefix(msg, "READONLY"):
				// READONLY: leadership moved between ledGroups and the submit.
				c.Out.WriteError("TRYAGAIN " + name + " applied in groups " + groupsText(done) + " but not in group " +
					strconv.FormatUint(g, 10) + " (" + msg + "); send it again (each group's change is idempotent)")
			default:
				c.Out.WriteError("ERR " + name + " in group " + strconv.FormatUint(g, 10) + ": " + strings.TrimPrefix(msg, "ERR ") +
					" (applied in groups " + groupsText(done) + ")")
			}
		})
	}
	step(0)
}

// membershipAlreadyDone reports a group's refusal meaning the change is
// already in effect there (cluster/group.go's submitConfChange words).
func membershipAlreadyDone(msg string) bool {
	return strings.HasSuffix(msg, " is already a member") || strings.HasSuffix(msg, " is not a member")
}

func groupsText(gs []uint64) string {
	if len(gs) == 0 {
		return "none"
	}
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = strconv.FormatUint(g, 10)
	}
	return strings.Join(parts, ",")
}

// leadersText lists each group's leader as this node last saw it: "group
// 1: node 1 at 127.0.0.1:7001; group 2: unknown; ...".
func (n *Node) leadersText() string {
	parts := make([]string, n.groupCount())
	for i := range parts {
		g := uint64(i + 1)
		l := n.leaderOf(g)
		addr := ""
		if l != 0 {
			addr = n.addrOfID(l)
		}
		if addr == "" {
			parts[i] = "group " + strconv.FormatUint(g, 10) + ": leader unknown"
			continue
		}
		parts[i] = "group " + strconv.FormatUint(g, 10) + ": node " + strconv.FormatUint(l, 10) + " at " + addr
	}
	return strings.Join(parts, "; ")
}
