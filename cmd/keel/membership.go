package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	stdnet "net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
)

// keel cluster addnode / delnode: add a node to, or remove it from, every
// replica group of a cluster. Each group is a Raft group with every node
// as a voter, so the change is one configuration change per group, made
// by that group's leader. A node answers CLUSTER ADDNODE/DELNODE for the
// groups it leads (server/membership.go), so the command:
//  1. reads CLUSTER NODES and CLUSTER GROUPS from every node it knows, and
//     takes each group's members from the node that says it leads it (the
//     applied configuration at the leader; a follower may lag);
//  2. sends the change once to the leader of every group not yet done;
//     "already a member" / "not a member" count as done, -TRYAGAIN,
//     -MOVED, -READONLY, "leads no replica group" (leadership moved) and
//     lost connections are retried; any other error ends it;
//  3. repeats until every group's leader shows the change, and reports
//     each group. Every step is idempotent, so the command can simply be
//     run again after it (or a node) died midway.
// It works on a one-group cluster too (one group, one leader).

const memberUsage = `usage: keel cluster addnode --node host:port --id N --addr host:port
       keel cluster delnode --node host:port --id N

addnode makes node N (started with --join yes, --groups as the others and
--peers listing the members and itself) a voter of every replica group;
delnode removes node N from every group (it may be stopped afterwards).
On a placed cluster (--replicas below the nodes) the node joins or leaves
the meta record instead, and the command waits while replicas move onto
it or away from it, printing progress, until the placement is balanced.
--node is any node of the cluster; the change goes to each group's leader,
and the command returns once every group has applied it (exit 0), retrying
through elections and lost connections. Rerun it if it was interrupted.

flags:
  --node host:port   a node of the cluster
  --id N             the node id to add or remove
  --addr host:port   (addnode) the new node's client address
`

const (
	// memberStallTimeout ends the command when no group made progress
	// for this long (no leader, a node unreachable); rerun it later.
	memberStallTimeout = 2 * time.Minute
	// memberRetryPause is the wait between rounds that left groups to do.
	memberRetryPause = 200 * time.Millisecond
)

type memberOptions struct {
	add  bool
	node string
	id   uint64
	addr string
}

func (o memberOptions) verb() string {
	if o.add {
		return "addnode"
	}
	return "delnode"
}

func parseMemberArgs(add bool, args []string) (memberOptions, error) {
	o := memberOptions{add: add}
	fs := clusterFlags("keel cluster "+o.verb(), &o.node)
	var id int64
	fs.Int64Var(&id, "id", 0, "")
	if add {
		fs.StringVar(&o.addr, "addr", "", "")
	}
	if err := parseClusterFlags(fs, args, &o.node); err != nil {
		return o, err
	}
	if id < 1 {
		return o, errors.New("--id N is required: the node id, a positive integer")
	}
	o.id = uint64(id)
	if add {
		host, port, err := stdnet.SplitHostPort(o.addr)
		if p, perr := strconv.Atoi(port); o.addr == "" || err != nil || host == "" || perr != nil || p < 1 || p+clusterBusPortOffset > 65535 {
			return o, errors.Newf("--addr %q: want host:port of the new node's client port (1..%d)", o.addr, 65535-clusterBusPortOffset)
		}
	}
	return o, nil
}

func runClusterMember(add bool, args []string) int {
	o, err := parseMemberArgs(add, args)
	return runClusterAdmin(o.verb(), memberUsage, o, err, changeMembership)
}

// memberConn talks to the nodes.
type memberConn struct {
	clients map[string]*redis.Client
	nodes   []string // every address seen in a CLUSTER NODES, first seen first
}

func (mc *memberConn) client(addr string) *redis.Client {
	c := mc.clients[addr]
	if c == nil {
		c = redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true,
			DialTimeout: time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 5 * time.Second, PoolSize: 1})
		mc.clients[addr] = c
	}
	return c
}

func (mc *memberConn) close() {
	for _, c := range mc.clients {
		c.Close()
	}
}

// memberView is one group as the survey found it.
type memberView struct {
	id      uint64
	leader  uint64 // 0: no node claims it
	addr    string // the leader's address
	members []uint64
	// claims: how many nodes said they lead it; done: how many of those
	// list the change as made.
	claims, done int
}

// survey asks every known node for CLUSTER NODES and CLUSTER GROUPS and
// returns each group (in group order) as its leader sees it. A group no
// node claims to lead keeps leader 0.
func (mc *memberConn) survey(ctx context.Context, o memberOptions) ([]memberView, error) {
	byGroup := map[uint64]*memberView{}
	var lastErr error
	answered := 0
	for i := 0; i < len(mc.nodes); i++ {
		addr := mc.nodes[i]
		c := mc.client(addr)
		text, err := c.ClusterNodes(ctx).Result()
		if err != nil {
			lastErr = errors.Wrapf(err, "CLUSTER NODES on %s", addr)
			continue
		}
		self := uint64(0)
		for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
			f := strings.Fields(line)
			if len(f) < 3 {
				continue
			}
			id, err := strconv.ParseUint(f[0], 16, 64)
			a, _, _ := strings.Cut(f[1], "@")
			if err != nil || a == "" {
				continue
			}
			if slices.Contains(strings.Split(f[2], ","), "myself") {
				self = id
			}
			if !slices.Contains(mc.nodes, a) {
				mc.nodes = append(mc.nodes, a)
			}
		}
		v, err := c.Do(ctx, "CLUSTER", "GROUPS").Result()
		if err != nil {
			lastErr = errors.Wrapf(err, "CLUSTER GROUPS on %s", addr)
			continue
		}
		groups, err := parseGroups(v)
		if err != nil {
			return nil, err
		}
		answered++
		for _, g := range groups {
			mv := byGroup[g.id]
			if mv == nil {
				mv = &memberView{id: g.id}
				byGroup[g.id] = mv
			}
			if g.leader == 0 || g.leader != self {
				continue
			}
			mv.claims++
			if slices.Contains(g.members, o.id) == o.add {
				mv.done++
			}
			mv.leader, mv.addr, mv.members = self, addr, g.members
		}
	}
	if answered == 0 {
		return nil, lastErr
	}
	var out []memberView
	for _, mv := range byGroup {
		out = append(out, *mv)
	}
	slices.SortFunc(out, func(a, b memberView) int { return cmp.Compare(a.id, b.id) })
	return out, nil
}

// groupDone: the group's leader (every node claiming to lead it, should
// a deposed one not know yet) shows the change.
func (v memberView) groupDone() bool { return v.claims > 0 && v.done == v.claims }

// changeMembership adds or removes o.id in every group, printing progress
// and a line per group to out.
func changeMembership(ctx context.Context, o memberOptions, out io.Writer) error {
	mc := &memberConn{clients: map[string]*redis.Client{}, nodes: []string{o.node}}
	defer mc.close()
	if placed, err := placedCluster(ctx, mc, o.node); err == nil && placed {
		return changePlacedMembership(ctx, mc, o, out) // moves.go
	}
	argv := []any{"CLUSTER", strings.ToUpper(o.verb()), strconv.FormatUint(o.id, 10)}
	what := fmt.Sprintf("remove node %d from", o.id)
	if o.add {
		argv = append(argv, o.addr)
		what = fmt.Sprintf("add node %d (%s) to", o.id, o.addr)
	}
	start, progress := time.Now(), time.Now()
	header, complained := false, false
	doneBefore := -1
	var views []memberView
	for {
		if ctx.Err() != nil {
			return errors.New("interrupted; rerun the same command to finish (each group's change is idempotent)")
		}
		var err error
		views, err = mc.survey(ctx, o)
		if err != nil {
			// No node answered: --node may be restarting.
			limit := memberStallTimeout
			if !header {
				limit = reshardDiscoverTimeout
			}
			if time.Since(progress) > limit {
				return err
			}
			if !complained {
				fmt.Fprintf(out, "%v; retrying for up to %s\n", err, limit)
				complained = true
			}
			time.Sleep(time.Second)
			continue
		}
		if !header {
			plural := "s"
			if len(views) == 1 {
				plural = ""
			}
			fmt.Fprintf(out, "%s %d replica group%s\n", strings.ToUpper(what[:1])+what[1:], len(views), plural)
			header = true
		}
		done := 0
		sendTo := map[string][]uint64{} // leader address → its pending groups
		var order []string
		for _, v := range views {
			switch {
			case v.groupDone():
				done++
			case v.addr != "":
				if sendTo[v.addr] == nil {
					order = append(order, v.addr)
				}
				sendTo[v.addr] = append(sendTo[v.addr], v.id)
			}
		}
		if done != doneBefore {
			progress, doneBefore = time.Now(), done
		}
		if done == len(views) {
			break
		}
		if time.Since(progress) > memberStallTimeout {
			reportMembers(out, o, views)
			return errors.Newf("no progress for %s (%d of %d groups done; a group without a leader or a node unreachable); rerun the same command to finish",
				memberStallTimeout, done, len(views))
		}
		for _, addr := range order {
			msg := ""
			if err := mc.client(addr).Do(ctx, argv...).Err(); err != nil {
				var rerr redis.Error
				if errors.As(err, &rerr) {
					msg = err.Error()
				} else {
					msg = "IOERR " + err.Error()
				}
			}
			gs := "group " + groupList(sendTo[addr])
			if len(sendTo[addr]) > 1 {
				gs = "groups " + groupList(sendTo[addr])
			}
			switch {
			case msg == "":
				fmt.Fprintf(out, "%s: %s at leader %s: OK\n", gs, argv[1], addr)
			case memberAlreadyDone(msg):
				fmt.Fprintf(out, "%s: %s at leader %s: already done (%s)\n", gs, argv[1], addr, msg)
			case cluster.Retryable(msg) || strings.HasPrefix(msg, "READONLY") || strings.Contains(msg, "leads no replica group"):
				fmt.Fprintf(out, "%s: %s at %s: %s; retrying\n", gs, argv[1], addr, msg)
			default:
				reportMembers(out, o, views)
				return errors.Newf("%s: %s at leader %s: %s", gs, argv[1], addr, msg)
			}
		}
		time.Sleep(memberRetryPause)
	}
	reportMembers(out, o, views)
	fmt.Fprintf(out, "done: %s every replica group in %s\n", what, time.Since(start).Round(time.Millisecond))
	return nil
}

// memberAlreadyDone: a group refused the change as already in effect (a
// one-group node answers so; a sharded node counts it as done itself).
func memberAlreadyDone(msg string) bool {
	return strings.HasSuffix(msg, " is already a member") || strings.HasSuffix(msg, " is not a member")
}

func groupList(gs []uint64) string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = strconv.FormatUint(g, 10)
	}
	return strings.Join(parts, ",")
}

// reportMembers prints each group's state: done or not, its leader and
// members.
func reportMembers(out io.Writer, o memberOptions, views []memberView) {
	for _, v := range views {
		state := "not yet"
		if v.groupDone() {
			state = "done"
		}
		leader := "no leader known"
		if v.leader != 0 {
			leader = fmt.Sprintf("leader %d, members %s", v.leader, groupList(v.members))
		}
		fmt.Fprintf(out, "group %d: %s %s (%s)\n", v.id, o.verb(), state, leader)
	}
}
