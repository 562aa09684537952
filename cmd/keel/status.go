package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/redis/go-redis/v9"
)

const statusUsage = `usage: keel cluster status --node host:port [--password P] [--user U]

Asks the node for the cluster's nodes (CLUSTER NODES), then every node for
its view of each replica group (INFO groups), and prints one line per node
and group: state, role, the leader it knows, term, commit and applied index,
and lag (the group's highest commit index less this node's applied index).
Exit 0 when every node answered and every group has one leader all its nodes
agree on; 1 otherwise (the lines say what is wrong).
`

// statusTimeout bounds each node's answer: a node that does not answer in
// time is reported unreachable.
const statusTimeout = 2 * time.Second

func runClusterStatus(args []string, stdout, stderr io.Writer) int {
	if wantsHelp(args) {
		fmt.Fprint(stdout, statusUsage)
		return 0
	}
	fs := flag.NewFlagSet("keel cluster status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("node", "", "host:port of any node")
	password := fs.String("password", "", "password")
	user := fs.String("user", "", "ACL user")
	if err := fs.Parse(args); err != nil || *addr == "" || fs.NArg() > 0 {
		msg := missingFlags(map[string]string{"--node host:port": *addr}, fs.Args())
		if err != nil {
			msg = err.Error()
		}
		fmt.Fprintf(stderr, "keel cluster status: %s\n\n%s", msg, statusUsage)
		return 2
	}
	dial := func(a string) *redis.Client {
		return redis.NewClient(&redis.Options{Addr: a, Username: *user, Password: *password, Protocol: 2, DisableIdentity: true,
			MaxRetries: -1, DialTimeout: statusTimeout, ReadTimeout: statusTimeout, WriteTimeout: statusTimeout})
	}
	c := dial(*addr)
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	text, err := c.ClusterNodes(ctx).Result()
	cancel()
	c.Close()
	if err != nil {
		fmt.Fprintf(stderr, "keel cluster status: CLUSTER NODES from %s: %v\n", *addr, err)
		return 1
	}
	nodes, err := parseClusterNodes(text)
	if err != nil {
		fmt.Fprintf(stderr, "keel cluster status: %v\n", err)
		return 1
	}
	for i := range nodes {
		n := &nodes[i]
		c := dial(n.addr)
		ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
		info, err := c.Info(ctx, "groups").Result()
		cancel()
		c.Close()
		if err != nil {
			n.err = err
			continue
		}
		n.groups = parseInfoGroups(info)
	}
	lines, healthy := statusTable(nodes)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tSTATE\tGROUP\tROLE\tLEADER\tTERM\tCOMMIT\tAPPLIED\tLAG\tHEALTH")
	for _, l := range lines {
		fmt.Fprintln(tw, l)
	}
	tw.Flush()
	// A placed cluster: the moves (cmd/keel/moves.go, CLUSTER PLACEMENT).
	pc := dial(*addr)
	pctx, pcancel := context.WithTimeout(context.Background(), statusTimeout)
	if p, err := readPlacement(pctx, pc); err == nil && !p.placementOff {
		fmt.Fprintf(stdout, "placement: meta version %d, last move %s, groups moving %d, groups under-replicated %d, balanced %v\n",
			p.version, p.lastMove, p.moving, p.underRepl, p.balanced)
	}
	pcancel()
	pc.Close()
	if !healthy {
		return 1
	}
	return 0
}

type statusNode struct {
	id          uint64
	addr, state string // state: CLUSTER NODES's link state and fail flags, as the asked node sees it
	groups      []groupView
	err         error
}

type groupView struct {
	group, leader, term, commit, applied uint64
	hosted                               bool
	role                                 string
}

// parseClusterNodes reads CLUSTER NODES: node id (keel's are the number,
// zero-padded), address, flags, link state.
func parseClusterNodes(text string) ([]statusNode, error) {
	var out []statusNode
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimLeft(f[0], "0"), 10, 64)
		if err != nil {
			return nil, errors.Newf("CLUSTER NODES: node id %q is not keel's", f[0])
		}
		addr, _, _ := strings.Cut(f[1], "@")
		state := f[7]
		for _, flag := range strings.Split(f[2], ",") {
			if flag == "fail" || flag == "fail?" {
				state = flag
			}
		}
		out = append(out, statusNode{id: id, addr: addr, state: state})
	}
	if len(out) == 0 {
		return nil, errors.New("CLUSTER NODES lists no node (is it a cluster node?)")
	}
	slices.SortFunc(out, func(a, b statusNode) int { return int(a.id) - int(b.id) })
	return out, nil
}

// parseInfoGroups reads INFO groups' lines (node/ops.go).
func parseInfoGroups(info string) []groupView {
	var out []groupView
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		name, fields, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "group") {
			continue
		}
		var g groupView
		g.group, _ = strconv.ParseUint(strings.TrimPrefix(name, "group"), 10, 64)
		for _, kv := range strings.Split(fields, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "hosted":
				g.hosted = v == "1"
			case "role":
				g.role = v
			case "leader":
				g.leader = n
			case "term":
				g.term = n
			case "commit_index":
				g.commit = n
			case "applied_index":
				g.applied = n
			}
		}
		out = append(out, g)
	}
	return out
}

// statusTable is the table's lines and whether the cluster is healthy:
// every node answered and each group has one leader, known by all the
// nodes hosting it.
func statusTable(nodes []statusNode) ([]string, bool) {
	healthy := true
	maxCommit := map[uint64]uint64{}
	leaders := map[uint64]map[uint64]bool{}
	for _, n := range nodes {
		for _, g := range n.groups {
			if !g.hosted {
				continue
			}
			maxCommit[g.group] = max(maxCommit[g.group], g.commit)
			if leaders[g.group] == nil {
				leaders[g.group] = map[uint64]bool{}
			}
			leaders[g.group][g.leader] = true
		}
	}
	var lines []string
	for _, n := range nodes {
		if n.err != nil {
			healthy = false
			lines = append(lines, fmt.Sprintf("%d\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\tunreachable: %s", n.id, n.addr, n.state, oneLineErr(n.err)))
			continue
		}
		for _, g := range n.groups {
			if !g.hosted {
				continue
			}
			health := "ok"
			switch {
			case len(leaders[g.group]) > 1:
				health, healthy = "nodes disagree on the leader", false
			case g.leader == 0:
				health, healthy = "no leader", false
			}
			lag := maxCommit[g.group] - min(g.applied, maxCommit[g.group])
			lines = append(lines, fmt.Sprintf("%d\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s",
				n.id, n.addr, n.state, g.group, g.role, g.leader, g.term, g.commit, g.applied, lag, health))
		}
	}
	return lines, healthy
}

func oneLineErr(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }
