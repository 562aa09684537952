package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	stdnet "net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/redis/go-redis/v9"
)

const (
	// BusPortOffset: a keel node's bus port is its client port + 10000.
	BusPortOffset = 10000
	// Cluster ports are picked below Linux's ephemeral range (32768 and
	// up), bus ports included, so outgoing connections never hold them.
	clusterPortLow, clusterPortHigh = 20000, 22700
	// StartTimeout bounds how long a server or cluster may take to be ready.
	StartTimeout = time.Minute
)

// Client is a go-redis client of the process (RESP2, no retries: a
// harness wants to see errors).
func (p *Proc) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: p.Addr(), Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
}

// WaitUntil polls cond on the process until it returns true, failing
// (with the log's tail) if the process exits or StartTimeout passes.
func (p *Proc) WaitUntil(what string, cond func(*redis.Client) bool) error {
	c := p.Client()
	defer c.Close()
	deadline := time.Now().Add(StartTimeout)
	for !cond(c) {
		if p.Exited() {
			return errors.Newf("%s exited (%v) waiting for %s; log:\n%s", p.Name, p.Err(), what, p.LogTail())
		}
		if time.Now().After(deadline) {
			return errors.Newf("%s: no %s after %s; log:\n%s", p.Name, what, StartTimeout, p.LogTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Pong is a WaitUntil condition: the server answers PING.
func Pong(c *redis.Client) bool { return c.Ping(context.Background()).Val() == "PONG" }

// FreeClusterPorts returns n client ports whose bus ports are free too.
func FreeClusterPorts(n int) ([]int, error) {
	free := func(p int) bool {
		for _, q := range []int{p, p + BusPortOffset} {
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

// StartKeelGroup starts size keel nodes of one cluster (node ids 1..size,
// data in tmp/<prefix>-node-<id>), each with args(port, dir) followed by
// --node-id, --peers and --cluster-insecure yes (loopback only), and waits
// until every node reports cluster_state:ok. On error nothing is left
// running.
func StartKeelGroup(bin, tmp, prefix string, size int, args func(port int, dir string) []string) ([]*Proc, error) {
	ports, err := FreeClusterPorts(size)
	if err != nil {
		return nil, err
	}
	peers := make([]string, size)
	for i, p := range ports {
		peers[i] = fmt.Sprintf("%d@127.0.0.1:%d", i+1, p)
	}
	var procs []*Proc
	stop := func() {
		for _, p := range procs {
			p.Stop()
		}
	}
	for i, port := range ports {
		dir := filepath.Join(tmp, fmt.Sprintf("%s-node-%d", prefix, i+1))
		a := append(args(port, dir), "--node-id", strconv.Itoa(i+1), "--peers", strings.Join(peers, ","), "--cluster-insecure", "yes")
		p, err := Start(fmt.Sprintf("keel %s node %d", prefix, i+1), bin, a, nil, dir, port)
		if err != nil {
			stop()
			return nil, err
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		if err := p.WaitUntil("cluster_state:ok", func(c *redis.Client) bool {
			return strings.Contains(c.ClusterInfo(context.Background()).Val(), "cluster_state:ok")
		}); err != nil {
			stop()
			return nil, err
		}
	}
	return procs, nil
}

// Leads reports whether the node's own CLUSTER NODES line says it is a
// master (a leader, not a stand-in for a leaderless group: "fail?").
func (p *Proc) Leads() bool {
	c := p.Client()
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
