package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
	"github.com/redis/go-redis/v9"
)

// proc is one server process owned by the harness.
type proc struct{ *harness.Proc }

func startProc(name, bin string, args []string, port int, dir string) (*proc, error) {
	p, err := harness.Start(name, bin, args, nil, dir, port)
	if err != nil {
		return nil, err
	}
	return &proc{p}, nil
}

func (p *proc) client() *redis.Client { return p.Client() }

func (p *proc) waitUntil(what string, cond func(*redis.Client) bool) error {
	return p.WaitUntil(what, cond)
}

var pong = harness.Pong

const startTimeout = harness.StartTimeout

// system is one side of the comparison.
type system struct {
	procs []*proc
	// target is the port redis-benchmark drives now (the cluster's current
	// leader; the primary; any node of a sharded cluster, once every node
	// is a master).
	target func() (int, error)
	// layout, when set, describes who serves which slots (a sharded
	// cluster's masters and their slots); a run during which it changed is
	// missing. Unset, the target port stands for it.
	layout func() (string, error)
	// down says why the system stopped being measured (a process exited);
	// empty while it runs.
	down string
}

func (s *system) stop() {
	var wg sync.WaitGroup
	for _, p := range s.procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop() }()
	}
	wg.Wait()
}

func (s *system) exited() *proc {
	for _, p := range s.procs {
		if p.Exited() {
			return p
		}
	}
	return nil
}

// keelFlags are the persistence flags every keel process gets.
func keelFlags(port int, dir string) []string {
	return []string{"server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "everysec"}
}

func startKeelCluster(bin, tmp, name string, size int) (*system, error) {
	procs, err := harness.StartKeelGroup(bin, tmp, name, size, keelFlags)
	if err != nil {
		return nil, err
	}
	s := &system{}
	for _, p := range procs {
		s.procs = append(s.procs, &proc{p})
	}
	s.target = func() (int, error) {
		for _, p := range s.procs {
			if !p.Exited() && p.Leads() {
				return p.Port, nil
			}
		}
		return 0, errors.New("no keel node says it leads")
	}
	if _, err := s.target(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func startKeelSingle(bin, tmp string) (*system, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	p, err := startProc("keel single", bin, keelFlags(port, filepath.Join(tmp, "single")), port, filepath.Join(tmp, "single"))
	if err != nil {
		return nil, err
	}
	s := &system{procs: []*proc{p}, target: func() (int, error) { return port, nil }}
	if err := p.waitUntil("PONG", pong); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// startRedisWithReplica starts a Redis primary and one replica of it, both
// with AOF everysec (RDB snapshots off: a background save would fork
// mid-run), and waits until the replica's link is up.
func startRedisWithReplica(bin, tmp string) (*system, error) {
	s := &system{}
	var primary int
	for i, name := range []string{"redis primary", "redis replica"} {
		port, err := harness.FreePort()
		if err != nil {
			s.stop()
			return nil, err
		}
		dir := filepath.Join(tmp, fmt.Sprintf("redis-%d", i))
		args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--save", "",
			"--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no"}
		if i == 0 {
			primary = port
		} else {
			args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(primary))
		}
		p, err := startProc(name, bin, args, port, dir)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.procs = append(s.procs, p)
		if err := p.waitUntil("PONG", pong); err != nil {
			s.stop()
			return nil, err
		}
	}
	if err := s.procs[1].waitUntil("master_link_status:up", func(c *redis.Client) bool {
		return strings.Contains(c.Info(context.Background(), "replication").Val(), "master_link_status:up")
	}); err != nil {
		s.stop()
		return nil, err
	}
	s.target = func() (int, error) { return primary, nil }
	return s, nil
}

// Sharded clusters: keel with --groups, and Redis Cluster as its yardstick.
const (
	shardedNodes  = 3
	shardedGroups = 3 // one group led by each node
	// placedNodes nodes, as many groups, placedReplicas replicas each.
	placedNodes    = 6
	placedReplicas = 3
	// createTimeout bounds redis-cli --cluster create.
	createTimeout = time.Minute
)

// master is one master line of CLUSTER NODES.
type master struct {
	addr   string
	myself bool
	slots  string // the slot ranges, space-separated
}

// clusterMasters reads the node's CLUSTER NODES; see parseMasters.
func clusterMasters(p *proc) ([]master, string, error) {
	c := p.client()
	defer c.Close()
	text, err := c.ClusterNodes(context.Background()).Result()
	if err != nil {
		return nil, "", errors.Wrapf(err, "%s: CLUSTER NODES", p.Name)
	}
	return parseMasters(text), text, nil
}

// parseMasters picks the masters out of CLUSTER NODES text. A node flagged
// fail? or fail is not one (keel shows a leaderless group's stand-in so).
func parseMasters(text string) []master {
	var ms []master
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		flags := strings.Split(f[2], ",")
		if !slices.Contains(flags, "master") || slices.Contains(flags, "fail?") || slices.Contains(flags, "fail") {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		ms = append(ms, master{addr: addr, myself: slices.Contains(flags, "myself"), slots: strings.Join(f[8:], " ")})
	}
	return ms
}

// shardLayout is the node's view of who serves which slots, in a stable
// order; it errors unless there are want masters, each with slots.
func shardLayout(p *proc, want int) (string, error) {
	ms, text, err := clusterMasters(p)
	if err != nil {
		return "", err
	}
	var lines []string
	for _, m := range ms {
		if m.slots != "" {
			lines = append(lines, m.addr+" "+m.slots)
		}
	}
	if len(lines) != want {
		return "", errors.Newf("%s: CLUSTER NODES shows %d masters with slots, want %d:\n%s", p.Name, len(lines), want, strings.TrimSpace(text))
	}
	slices.Sort(lines)
	return strings.Join(lines, "; "), nil
}

// waitAllMasters waits until every node of s is a master with slots in its
// own view, and all of them show the same len(s.procs) masters with
// cluster_state:ok: for keel --groups, every node leads a group.
func waitAllMasters(s *system, what string) error {
	deadline := time.Now().Add(startTimeout)
	for {
		why := ""
		var first string
		for _, p := range s.procs {
			if p.Exited() {
				return errors.Newf("%s exited (%v) waiting for %s; log:\n%s", p.Name, p.Err(), what, p.LogTail())
			}
			layout, err := shardLayout(p, len(s.procs))
			if err == nil {
				ms, _, _ := clusterMasters(p)
				if !slices.ContainsFunc(ms, func(m master) bool { return m.myself && m.slots != "" }) {
					err = errors.Newf("%s is not a master with slots in its own CLUSTER NODES", p.Name)
				}
			}
			if err == nil && first != "" && layout != first {
				err = errors.Newf("%s sees %q, %s sees %q", s.procs[0].Name, first, p.Name, layout)
			}
			if err == nil {
				c := p.client()
				info := c.ClusterInfo(context.Background()).Val()
				c.Close()
				if !strings.Contains(info, "cluster_state:ok") {
					err = errors.Newf("%s: no cluster_state:ok", p.Name)
				}
			}
			if err != nil {
				why = err.Error()
				break
			}
			if first == "" {
				first = layout
			}
		}
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Newf("%s: not ready after %s: %s", what, startTimeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shardedSystem fills in how a sharded cluster is driven: redis-benchmark
// --cluster enters at the first node, and is measured only while every
// node is a master.
func shardedSystem(s *system) {
	s.layout = func() (string, error) { return shardLayout(s.procs[0], len(s.procs)) }
	s.target = func() (int, error) {
		if _, err := s.layout(); err != nil {
			return 0, err
		}
		return s.procs[0].Port, nil
	}
}

// startKeelSharded starts shardedNodes keel nodes with --groups
// shardedGroups: every node hosts a replica of every group, group g owns
// the g-th slot range, and leadership spreads so that each node leads one.
// It waits (startTimeout) until CLUSTER NODES on every node shows every
// node as a master.
func startKeelSharded(bin, tmp string) (*system, error) {
	return startKeelGroups(bin, tmp, "sharded", shardedNodes, shardedGroups, 0)
}

// startKeelPlaced starts issue 17's placed cluster: placedNodes keel nodes
// with --groups placedNodes --replicas placedReplicas, so each node hosts
// half of the groups and leads one.
func startKeelPlaced(bin, tmp string) (*system, error) {
	return startKeelGroups(bin, tmp, "placed", placedNodes, placedNodes, placedReplicas)
}

// startKeelGroups starts nodes keel nodes with --groups groups (and
// --replicas replicas unless 0), and waits until each leads one group.
func startKeelGroups(bin, tmp, name string, nodes, groups, replicas int) (*system, error) {
	ports, err := harness.FreeClusterPorts(nodes)
	if err != nil {
		return nil, err
	}
	peers := make([]string, len(ports))
	for i, p := range ports {
		peers[i] = fmt.Sprintf("%d@127.0.0.1:%d", i+1, p)
	}
	s := &system{}
	for i, port := range ports {
		dir := filepath.Join(tmp, fmt.Sprintf("%s-node-%d", name, i+1))
		args := append(keelFlags(port, dir), "--node-id", strconv.Itoa(i+1), "--groups", strconv.Itoa(groups),
			"--peers", strings.Join(peers, ","), "--cluster-insecure", "yes")
		if replicas > 0 {
			args = append(args, "--replicas", strconv.Itoa(replicas))
		}
		p, err := startProc(fmt.Sprintf("keel %s node %d", name, i+1), bin, args, port, dir)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.procs = append(s.procs, p)
	}
	if err := waitAllMasters(s, fmt.Sprintf("every node leading one of %d groups", groups)); err != nil {
		s.stop()
		return nil, err
	}
	shardedSystem(s)
	return s, nil
}

// startRedisCluster starts shardedNodes redis-server --cluster-enabled
// processes (AOF everysec, RDB off, as the other Redis), assigns the slots
// with redis-cli --cluster create --cluster-replicas 0, and waits until
// every node sees all of them as masters.
func startRedisCluster(ctx context.Context, serverBin, tmp string) (*system, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, errors.Wrap(err, "redis-cli is needed to create a Redis Cluster")
	}
	ports, err := harness.FreeClusterPorts(shardedNodes)
	if err != nil {
		return nil, err
	}
	s := &system{}
	var addrs []string
	for i, port := range ports {
		dir := filepath.Join(tmp, fmt.Sprintf("redis-cluster-%d", i+1))
		args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--save", "",
			"--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"}
		p, err := startProc(fmt.Sprintf("redis cluster node %d", i+1), serverBin, args, port, dir)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.procs = append(s.procs, p)
		addrs = append(addrs, p.Addr())
	}
	for _, p := range s.procs {
		if err := p.waitUntil("PONG", pong); err != nil {
			s.stop()
			return nil, err
		}
	}
	cctx, cancel := context.WithTimeout(ctx, createTimeout)
	defer cancel()
	create := exec.CommandContext(cctx, cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		s.stop()
		return nil, errors.Wrapf(err, "redis-cli --cluster create: %s", out)
	}
	if err := waitAllMasters(s, "every Redis Cluster node a master"); err != nil {
		s.stop()
		return nil, err
	}
	shardedSystem(s)
	return s, nil
}
