package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
)

// keel cluster reshard: moves a range of slots from the replica group that
// owns it to another, online, by driving cluster.Reshard over RESP (each
// step is a CLUSTER RESHARD command proposed through a group's log; see
// docs/cluster.md, "Sharding"). Every step is idempotent, so the command
// can be run again after it (or a node) died mid-move: it finds the move
// where the groups left it and finishes it.

const reshardUsage = `usage: keel cluster reshard --node host:port --slots A-B --to G [--batch N]

Moves slots A..B (or one slot A) to replica group G, keys included, while
clients keep reading and writing them. The slots must all be in one group
now. --node is any node of the cluster; each step goes to its group's leader
(following -MOVED, waiting out -TRYAGAIN and elections). Prints progress and
the keys moved. Rerun the same command if it was interrupted.

flags:
  --node host:port   a node of the cluster
  --slots A-B        the slot range to move (0..16383)
  --to G             the group to move it to (CLUSTER GROUPS lists them)
  --batch 100        keys per MOVEKEYS step
`

const (
	// reshardStallTimeout ends a move that made no step for this long
	// (no leader for a group, every node unreachable); rerun it later.
	reshardStallTimeout = 2 * time.Minute
	// reshardRetryPause is the wait after -TRYAGAIN or a lost connection.
	reshardRetryPause = 100 * time.Millisecond
	// reshardRedirectsMax bounds -MOVED hops in a row for one step before
	// pausing (a leader change in progress can bounce a few times).
	reshardRedirectsMax = 5
	// reshardDiscoverTimeout bounds the wait for --node to answer at the
	// start (it may be restarting).
	reshardDiscoverTimeout = 30 * time.Second
)

// quietRedisLogger drops go-redis's own log lines (a failed dial each);
// the command reports what it does itself.
type quietRedisLogger struct{}

func (quietRedisLogger) Printf(context.Context, string, ...any) {}

type reshardOptions struct {
	node  string
	slots cluster.SlotRange
	to    uint64
	batch int
}

func parseReshardArgs(args []string) (reshardOptions, error) {
	var o reshardOptions
	fs := clusterFlags("keel cluster reshard", &o.node)
	var slots string
	var to int
	fs.StringVar(&slots, "slots", "", "")
	fs.IntVar(&to, "to", 0, "")
	fs.IntVar(&o.batch, "batch", cluster.ReshardBatchDefault, "")
	if err := parseClusterFlags(fs, args, &o.node); err != nil {
		return o, err
	}
	if slots == "" {
		return o, errors.New("--slots A-B is required")
	}
	r, err := cluster.ParseSlotRange(slots)
	if err != nil {
		return o, errors.Wrap(err, "--slots")
	}
	o.slots = r
	if to < 1 {
		return o, errors.New("--to G is required: a group number (1 or more)")
	}
	o.to = uint64(to)
	if o.batch < 1 {
		return o, errors.Newf("--batch %d: must be at least 1", o.batch)
	}
	return o, nil
}

func runClusterReshard(args []string) int {
	o, err := parseReshardArgs(args)
	return runClusterAdmin("reshard", reshardUsage, o, err, reshard)
}

// clusterFlags is the flag set of a keel cluster subcommand that drives a
// running cluster through one node (--node host:port, into node); its
// errors are the caller's to print, with the usage.
func clusterFlags(name string, node *string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(node, "node", "", "")
	return fs
}

// parseClusterFlags parses args into fs, refusing arguments past the
// flags and a missing --node.
func parseClusterFlags(fs *flag.FlagSet, args []string, node *string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.Newf("unexpected arguments %q", fs.Args())
	}
	if *node == "" {
		return errors.New("--node host:port is required")
	}
	return nil
}

// runClusterAdmin runs a keel cluster subcommand that drives a running
// cluster (reshard, split, addnode, delnode): the usage on -h (exit 0) or
// a bad flag (2), else do until it is done (0), fails (1) or SIGINT or
// SIGTERM cancels it.
func runClusterAdmin[O any](verb, usage string, o O, parseErr error, do func(context.Context, O, io.Writer) error) int {
	if errors.Is(parseErr, flag.ErrHelp) {
		fmt.Fprint(os.Stderr, usage)
		return 0
	}
	if parseErr != nil {
		fmt.Fprintf(os.Stderr, "keel cluster %s: %v\n\n%s", verb, parseErr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	redis.SetLogger(quietRedisLogger{})
	if err := do(ctx, o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stdout, "keel cluster %s: %v\n", verb, err)
		return 1
	}
	return 0
}

// groupState is one entry of CLUSTER GROUPS.
type groupState struct {
	id        uint64
	leader    uint64
	members   []uint64
	owned     []cluster.SlotRange
	migrating map[cluster.SlotRange]uint64 // range → target group
}

// parseGroups reads the CLUSTER GROUPS reply (RESP2: each group a flat
// array of name, value pairs).
func parseGroups(v any) ([]groupState, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, errors.Newf("CLUSTER GROUPS: unexpected reply %T", v)
	}
	var out []groupState
	for _, e := range list {
		kvs, ok := e.([]any)
		if !ok || len(kvs)%2 != 0 {
			return nil, errors.Newf("CLUSTER GROUPS: unexpected entry %v", e)
		}
		g := groupState{migrating: map[cluster.SlotRange]uint64{}}
		for i := 0; i < len(kvs); i += 2 {
			name, _ := kvs[i].(string)
			switch name {
			case "group":
				n, _ := kvs[i+1].(int64)
				g.id = uint64(n)
			case "leader":
				n, _ := kvs[i+1].(int64)
				g.leader = uint64(n)
			case "members":
				items, _ := kvs[i+1].([]any)
				for _, it := range items {
					n, _ := it.(int64)
					g.members = append(g.members, uint64(n))
				}
			case "owned":
				items, _ := kvs[i+1].([]any)
				for _, it := range items {
					r, err := cluster.ParseSlotRange(fmt.Sprint(it))
					if err != nil {
						return nil, errors.Wrap(err, "CLUSTER GROUPS")
					}
					g.owned = append(g.owned, r)
				}
			case "migrating":
				items, _ := kvs[i+1].([]any)
				for _, it := range items {
					// "first-last to g"
					f := strings.Fields(fmt.Sprint(it))
					if len(f) != 3 {
						return nil, errors.Newf("CLUSTER GROUPS: migrating entry %q", it)
					}
					r, err := cluster.ParseSlotRange(f[0])
					to, err2 := strconv.ParseUint(f[2], 10, 64)
					if err != nil || err2 != nil {
						return nil, errors.Newf("CLUSTER GROUPS: migrating entry %q", it)
					}
					g.migrating[r] = to
				}
			}
		}
		if g.id == 0 {
			return nil, errors.Newf("CLUSTER GROUPS: entry without a group id: %v", e)
		}
		out = append(out, g)
	}
	return out, nil
}

// covers reports whether every slot of r lies in ranges.
func covers(ranges []cluster.SlotRange, r cluster.SlotRange) bool {
	for s := r.First; s <= r.Last; {
		i := slices.IndexFunc(ranges, func(x cluster.SlotRange) bool { return x.Contains(s) })
		if i < 0 {
			return false
		}
		s = ranges[i].Last + 1
	}
	return true
}

// touches reports whether some slot of r lies in ranges.
func touches(ranges []cluster.SlotRange, r cluster.SlotRange) bool {
	return slices.ContainsFunc(ranges, func(x cluster.SlotRange) bool { return x.First <= r.Last && r.First <= x.Last })
}

// moveSource is the group slots move from, as the groups stand: the one
// group (other than to) owning all of them. A move that already finished
// gives 0 and done; one that stopped after the target took the slots but
// before the source let them go gives the source (the remaining steps are
// idempotent and finish it).
func moveSource(groups []groupState, r cluster.SlotRange, to uint64) (from uint64, done bool, err error) {
	if !slices.ContainsFunc(groups, func(g groupState) bool { return g.id == to }) {
		return 0, false, errors.Newf("no group %d in this cluster (CLUSTER GROUPS lists %d)", to, len(groups))
	}
	var owners []uint64
	toOwns := false
	for _, g := range groups {
		switch {
		case covers(g.owned, r) && g.id == to:
			toOwns = true
		case covers(g.owned, r):
			owners = append(owners, g.id)
		case touches(g.owned, r):
			return 0, false, errors.Newf("slots %s are split between groups (group %d holds part of them): move each group's part separately", r, g.id)
		}
	}
	switch {
	case len(owners) == 1:
		return owners[0], false, nil
	case len(owners) == 0 && toOwns:
		return 0, true, nil
	case len(owners) == 0:
		return 0, false, errors.Newf("slots %s are not all owned by one group", r)
	}
	return 0, false, errors.Newf("slots %s are owned by several groups %v", r, owners)
}

// reshardConn sends steps to the nodes: per group, the address it was last
// sent to (its leader's, from CLUSTER GROUPS or a -MOVED).
type reshardConn struct {
	nodes   []string          // every node's address, from CLUSTER NODES
	byID    map[uint64]string // node id → address
	clients map[string]*redis.Client
	leader  map[uint64]string // group → address
	next    int               // rotates through nodes after a failure
}

func (rc *reshardConn) client(addr string) *redis.Client {
	c := rc.clients[addr]
	if c == nil {
		c = redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true,
			DialTimeout: 2 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 10 * time.Second, PoolSize: 1})
		rc.clients[addr] = c
	}
	return c
}

func (rc *reshardConn) close() {
	for _, c := range rc.clients {
		c.Close()
	}
}

// addrFor is where group g's next step goes.
func (rc *reshardConn) addrFor(g uint64) string {
	if a := rc.leader[g]; a != "" {
		return a
	}
	a := rc.nodes[rc.next%len(rc.nodes)]
	rc.next++
	return a
}

// do sends argv to addr; errMsg is "" on success, the server's error, or
// "IOERR ..." when the connection failed (outcome unknown).
func (rc *reshardConn) do(ctx context.Context, addr string, argv [][]byte) (arr [][]byte, errMsg string) {
	args := make([]any, len(argv))
	for i, a := range argv {
		args[i] = string(a)
	}
	v, err := rc.client(addr).Do(ctx, args...).Result()
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) {
			return nil, err.Error()
		}
		return nil, "IOERR " + err.Error()
	}
	if a, ok := v.([]any); ok {
		arr = make([][]byte, len(a))
		for i, e := range a {
			s, ok := e.(string)
			if !ok {
				s = fmt.Sprint(e)
			}
			arr[i] = []byte(s)
		}
	}
	return arr, ""
}

// discover reads the nodes and the groups from node.
func (rc *reshardConn) discover(ctx context.Context, node string) ([]groupState, error) {
	c := rc.client(node)
	text, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, errors.Wrapf(err, "CLUSTER NODES on %s", node)
	}
	rc.byID = map[uint64]string{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		id, err := strconv.ParseUint(f[0], 16, 64)
		addr, _, _ := strings.Cut(f[1], "@")
		if err != nil || addr == "" {
			continue
		}
		rc.byID[id] = addr
		rc.nodes = append(rc.nodes, addr)
	}
	if len(rc.nodes) == 0 {
		rc.nodes = []string{node}
	}
	v, err := c.Do(ctx, "CLUSTER", "GROUPS").Result()
	if err != nil {
		return nil, errors.Wrapf(err, "CLUSTER GROUPS on %s (is it a keel node started with --groups?)", node)
	}
	groups, err := parseGroups(v)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if a := rc.byID[g.leader]; a != "" {
			rc.leader[g.id] = a
		}
	}
	return groups, nil
}

// reshard moves o.slots to group o.to, printing progress to out.
func reshard(ctx context.Context, o reshardOptions, out io.Writer) error {
	rc := &reshardConn{clients: map[string]*redis.Client{}, leader: map[uint64]string{}}
	defer rc.close()
	var groups []groupState
	var err error
	// The node may be restarting: retry discovery for a while.
	for try, deadline := 0, time.Now().Add(reshardDiscoverTimeout); ; try++ {
		groups, err = rc.discover(ctx, o.node)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		var rerr redis.Error
		if errors.As(err, &rerr) && !strings.HasPrefix(rerr.Error(), "LOADING") {
			break // the node answered: retrying will not help
		}
		if try == 0 {
			fmt.Fprintf(out, "%v; retrying for up to %s\n", err, reshardDiscoverTimeout)
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		return err
	}
	from, done, err := moveSource(groups, o.slots, o.to)
	if err != nil {
		return err
	}
	if done {
		fmt.Fprintf(out, "slots %s are already in group %d: nothing to move\n", o.slots, o.to)
		return nil
	}
	fmt.Fprintf(out, "moving slots %s from group %d to group %d (batch %d)\n", o.slots, from, o.to, o.batch)
	m := cluster.NewReshard(o.slots, from, o.to, o.batch)
	start, lastStep := time.Now(), time.Now()
	redirects := 0
	for {
		if ctx.Err() != nil {
			return errors.Newf("interrupted after moving %d keys; rerun the same command to finish the move", m.Moved())
		}
		g, argv, fin := m.Next()
		if fin {
			break
		}
		if time.Since(lastStep) > reshardStallTimeout {
			return errors.Newf("no step succeeded for %s (group %d unreachable or without a leader) after moving %d keys; rerun the same command to finish the move",
				reshardStallTimeout, g, m.Moved())
		}
		addr := rc.addrFor(g)
		arr, msg := rc.do(ctx, addr, argv)
		step := string(argv[3])
		switch f := strings.Fields(msg); {
		case msg == "":
			lastStep, redirects = time.Now(), 0
			rc.leader[g] = addr
			switch step {
			case "MOVEKEYS", "IMPORTKEYS", "DELKEYS":
			default:
				words := make([]string, 0, len(argv)-3)
				for _, a := range argv[3:] {
					words = append(words, string(a))
				}
				fmt.Fprintf(out, "group %d (%s): %s ok\n", g, addr, strings.Join(words, " "))
			}
		case len(f) == 3 && (f[0] == "MOVED" || f[0] == "ASK"):
			rc.leader[g] = f[2]
			if redirects++; redirects > reshardRedirectsMax {
				redirects = 0
				time.Sleep(reshardRetryPause)
			}
		case strings.HasPrefix(msg, "IOERR"):
			fmt.Fprintf(out, "group %d: %s to %s: %s; retrying\n", g, step, addr, msg)
			delete(rc.leader, g)
			time.Sleep(reshardRetryPause)
		case cluster.Retryable(msg):
			delete(rc.leader, g)
			time.Sleep(reshardRetryPause)
		}
		before := m.Moved()
		m.Reply(msg, arr)
		if m.Moved() != before {
			fmt.Fprintf(out, "moved %d keys\n", m.Moved())
		}
	}
	if err := m.Err(); err != nil {
		return errors.Wrapf(err, "after moving %d keys", m.Moved())
	}
	fmt.Fprintf(out, "done: moved %d keys of slots %s from group %d to group %d in %s\n",
		m.Moved(), o.slots, from, o.to, time.Since(start).Round(time.Millisecond))
	return nil
}
