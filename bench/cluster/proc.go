package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	stdnet "net"
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

const (
	// busPortOffset: a keel node's bus port is its client port + 10000.
	busPortOffset = 10000
	// Cluster ports are picked below Linux's ephemeral range (32768 and
	// up), bus ports included, so outgoing connections never hold them.
	clusterPortLow, clusterPortHigh = 20000, 22700
	startTimeout                    = time.Minute
)

// proc is one server process owned by the harness, spoken to with go-redis.
type proc struct{ *harness.Proc }

func startProc(name, bin string, args []string, port int, dir string) (*proc, error) {
	p, err := harness.Start(name, bin, args, nil, dir, port)
	if err != nil {
		return nil, err
	}
	return &proc{p}, nil
}

func (p *proc) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: p.Addr(), Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
}

// waitUntil polls cond on the process until it returns true.
func (p *proc) waitUntil(what string, cond func(*redis.Client) bool) error {
	c := p.client()
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for !cond(c) {
		if p.Exited() {
			return errors.Newf("%s exited (%v) waiting for %s; log:\n%s", p.Name, p.Err(), what, p.LogTail())
		}
		if time.Now().After(deadline) {
			return errors.Newf("%s: no %s after %s; log:\n%s", p.Name, what, startTimeout, p.LogTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func pong(c *redis.Client) bool { return c.Ping(context.Background()).Val() == "PONG" }

// freeClusterPorts returns n client ports whose bus ports are free too.
func freeClusterPorts(n int) ([]int, error) {
	free := func(p int) bool {
		for _, q := range []int{p, p + busPortOffset} {
			ln, err := stdnet.Listen("tcp", "127.0.0.1:"+strconv.Itoa(q))
			if err != nil {
				return false
			}
			ln.Close()
		}
		return true
	}
	var ports []int
	for try := 0; try < 500 && len(ports) < n; try++ {
		if p := clusterPortLow + rand.IntN(clusterPortHigh-clusterPortLow); !slices.Contains(ports, p) && free(p) {
			ports = append(ports, p)
		}
	}
	if len(ports) < n {
		return nil, errors.Newf("found only %d of %d free port pairs in %d..%d", len(ports), n, clusterPortLow, clusterPortHigh)
	}
	return ports, nil
}

// system is one side of the comparison.
type system struct {
	procs []*proc
	// target is the port redis-benchmark drives now (the cluster's current
	// leader; the primary).
	target func() (int, error)
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

func startKeelCluster(bin, tmp string, size int) (*system, error) {
	ports, err := freeClusterPorts(size)
	if err != nil {
		return nil, err
	}
	peers := make([]string, size)
	for i, p := range ports {
		peers[i] = fmt.Sprintf("%d@127.0.0.1:%d", i+1, p)
	}
	s := &system{}
	for i, port := range ports {
		dir := filepath.Join(tmp, fmt.Sprintf("cluster-node-%d", i+1))
		args := append(keelFlags(port, dir), "--node-id", strconv.Itoa(i+1), "--peers", strings.Join(peers, ","))
		p, err := startProc(fmt.Sprintf("keel cluster node %d", i+1), bin, args, port, dir)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.procs = append(s.procs, p)
	}
	for _, p := range s.procs {
		if err := p.waitUntil("cluster_state:ok", func(c *redis.Client) bool {
			return strings.Contains(c.ClusterInfo(context.Background()).Val(), "cluster_state:ok")
		}); err != nil {
			s.stop()
			return nil, err
		}
	}
	s.target = func() (int, error) {
		for _, p := range s.procs {
			if !p.Exited() && leads(p) {
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

// leads reports whether the node's own CLUSTER NODES line says it is a
// master (a leader, not a stand-in for a leaderless group: "fail?").
func leads(p *proc) bool {
	c := p.client()
	defer c.Close()
	text, err := c.ClusterNodes(context.Background()).Result()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		flags := strings.Split(f[2], ",")
		if slices.Contains(flags, "myself") && slices.Contains(flags, "master") && !slices.Contains(flags, "fail?") {
			return true
		}
	}
	return false
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
