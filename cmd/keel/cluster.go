package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	stdnet "net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/node"
	"github.com/keel-db/keel/transport/pki"
	"github.com/redis/go-redis/v9"
)

// keel cluster local: a whole cluster on one machine in one command, for
// trying keel as Redis Cluster (redis-cli -c, go-redis ClusterClient) and
// for scripts. It only starts `keel server` children with the flags of the
// cluster-node contract (docs/cluster.md) and watches them; it shares nothing
// with them but their command lines and their logs.

func init() { subcommands["cluster"] = runCluster }

const clusterUsage = `usage: keel cluster local [flags]
       keel cluster reshard --node host:port --slots A-B --to G [--batch N]
       keel cluster split --node host:port --group G [--slots A-B] [--batch N]
       keel cluster addnode --node host:port --id N --addr host:port
       keel cluster delnode --node host:port --id N
       keel cluster certs [--dir D] (--nodes N | --id N)
       keel cluster status --node host:port

reshard moves a slot range between replica groups (keel cluster reshard -h);
split adds a replica group and moves half of a group's slots to it (-h);
addnode and delnode add or remove a node in every replica group (-h);
certs makes the cluster bus's CA and node certificates (-h);
status prints every node's view of every group, with lag and health (-h).

Starts --nodes keel server processes on this machine as one cluster (node ids
1..N, client ports base-port..base-port+N-1, bus ports client port + 10000),
forwards their logs prefixed with the node, prints how to connect once a leader
is elected, and stops them all on Ctrl-C (SIGINT) or SIGTERM.

flags:
  --nodes 3               number of nodes (1..15)
  --base-port 7001        client port of node 1
  --bind 127.0.0.1        address the nodes listen on and advertise
  --dir ./keel-cluster    data directory; node N uses DIR/node-N
  --appendfsync everysec  everysec, always or no (passed to every node)
  --groups 1              replica groups the slots are sharded over
  --groups-max 0          groups keel cluster split may grow a placed
                          cluster to (0: --groups, no split)
  --replicas 3            nodes each group is placed on (every node when
                          --nodes is not above it; see docs/cluster.md)
  --requirepass PASS      the password clients must AUTH with (every node)
  --metrics-base-port 0   node N serves Prometheus metrics on port P+N-1 (0: off)

The nodes' bus is mutual TLS: a CA and one certificate per node are made in
DIR/tls on the first run and reused after (see docs/security.md).
`

const (
	// clusterNodesMax bounds --nodes: every node is a Raft voter of the one
	// group, and a group of more than 15 voters only slows commits.
	clusterNodesMax = 15
	// clusterBusPortOffset is Redis Cluster's distance from client to bus port.
	clusterBusPortOffset = 10000
	// clusterReadyTimeout bounds the wait for every node's "ready" line
	// (a node replays its log first, which can take a while on big data).
	clusterReadyTimeout = 5 * time.Minute
	// clusterLeaderTimeout bounds the wait for cluster_state:ok after all
	// nodes are ready; elections take 1–2 s, more on a loaded machine.
	clusterLeaderTimeout = 30 * time.Second
	// clusterStopTimeout is how long a node gets to exit after SIGTERM
	// before it is killed.
	clusterStopTimeout = 30 * time.Second
	// clusterLogLineBytesMax bounds one forwarded log line.
	clusterLogLineBytesMax = 1 << 20
)

// serverTakesBusTLS says whether `keel server` accepts the bus TLS flags
// of busTLSFlags. While it does not, keel cluster local neither makes
// certificates nor passes them, and its nodes' bus is plaintext; the
// server's flags are wired with its restructuring, which sets this true.
var serverTakesBusTLS = true

// busTLSFlags are the `keel server` flags (redis.conf's names) that put
// node id on the cluster bus with its certificate from tlsDir, in the
// layout of pki.Ensure.
func busTLSFlags(tlsDir string, id uint64) []string {
	return []string{"--tls-cluster", "yes",
		"--tls-cert-file", pki.NodeCertFile(tlsDir, id),
		"--tls-key-file", pki.NodeKeyFile(tlsDir, id),
		"--tls-ca-cert-file", pki.CACertFile(tlsDir)}
}

// busTLSHosts are the hosts a local node's certificate lists besides its
// id: the loopback names and the --bind address.
func busTLSHosts(bind string) []string {
	hosts := strings.Split(certsHostsDefault, ",")
	if ip := stdnet.ParseIP(bind); (ip == nil || !ip.IsUnspecified()) && !slices.Contains(hosts, bind) {
		hosts = append(hosts, bind)
	}
	return hosts
}

func runCluster(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, clusterUsage)
		return 2
	}
	if isHelp(args[0]) {
		fmt.Fprint(os.Stdout, clusterUsage)
		return 0
	}
	if args[0] == "status" {
		return runClusterStatus(args[1:], os.Stdout, os.Stderr) // status.go
	}
	if args[0] == "reshard" {
		return runClusterReshard(args[1:])
	}
	if args[0] == "split" {
		return runClusterSplit(args[1:]) // split.go
	}
	if args[0] == "addnode" || args[0] == "delnode" {
		return runClusterMember(args[0] == "addnode", args[1:])
	}
	if args[0] == "certs" {
		return runClusterCerts(args[1:])
	}
	if args[0] != "local" {
		fmt.Fprintf(os.Stderr, "keel cluster: unknown command %q\n\n%s", args[0], clusterUsage)
		return 2
	}
	o, err := parseClusterLocalArgs(args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(os.Stderr, clusterUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "keel cluster local: %v\n\n%s", err, clusterUsage)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "keel cluster local: find the keel binary: %v\n", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	return runClusterLocal(o, exe, os.Stdout, sigs)
}

type clusterLocalOptions struct {
	nodes, basePort int
	groups          int
	replicas        int
	groupsMax       int // --groups-max (0: --groups)
	bind, dir       string
	appendFsync     string
	requirePass     string
	// metricsBasePort: node N serves its metrics on bind:metricsBasePort+N-1
	// (0: off).
	metricsBasePort int
}

// tlsDir holds the cluster's bus certificates.
func (o clusterLocalOptions) tlsDir() string { return filepath.Join(o.dir, "tls") }

func parseClusterLocalArgs(args []string) (clusterLocalOptions, error) {
	fs := flag.NewFlagSet("keel cluster local", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed once, with the usage, by the caller
	var o clusterLocalOptions
	fs.IntVar(&o.nodes, "nodes", 3, "")
	fs.IntVar(&o.basePort, "base-port", 7001, "")
	fs.StringVar(&o.bind, "bind", "127.0.0.1", "")
	fs.StringVar(&o.dir, "dir", "./keel-cluster", "")
	fs.StringVar(&o.appendFsync, "appendfsync", "everysec", "")
	fs.IntVar(&o.groups, "groups", 1, "")
	fs.IntVar(&o.replicas, "replicas", 3, "")
	fs.IntVar(&o.groupsMax, "groups-max", 0, "")
	fs.StringVar(&o.requirePass, "requirepass", "", "")
	fs.IntVar(&o.metricsBasePort, "metrics-base-port", 0, "")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, errors.Newf("unexpected arguments %q", fs.Args())
	}
	if o.nodes < 1 || o.nodes > clusterNodesMax {
		return o, errors.Newf("--nodes %d: must be between 1 and %d", o.nodes, clusterNodesMax)
	}
	if last := o.basePort + o.nodes - 1 + clusterBusPortOffset; o.basePort < 1 || last > 65535 {
		return o, errors.Newf("--base-port %d: ports %d..%d and bus ports up to %d must lie in 1..65535",
			o.basePort, o.basePort, o.basePort+o.nodes-1, last)
	}
	switch o.appendFsync = strings.ToLower(o.appendFsync); o.appendFsync {
	case "everysec", "always", "no":
	default:
		return o, errors.Newf("--appendfsync %q: must be everysec, always or no", o.appendFsync)
	}
	if o.dir == "" {
		return o, errors.New("--dir must not be empty")
	}
	if o.metricsBasePort < 0 || o.metricsBasePort > 0 && o.metricsBasePort+o.nodes-1 > 65535 {
		return o, errors.Newf("--metrics-base-port %d: ports up to %d must lie in 1..65535", o.metricsBasePort, o.metricsBasePort+o.nodes-1)
	}
	if o.groups < 1 || o.groups > node.GroupsMax {
		return o, errors.Newf("--groups %d: must be between 1 and %d", o.groups, node.GroupsMax)
	}
	if o.replicas < 1 {
		return o, errors.Newf("--replicas %d: must be a positive integer", o.replicas)
	}
	if o.groupsMax != 0 && (o.groupsMax < o.groups || o.groupsMax > node.GroupsMax || o.replicas >= o.nodes) {
		return o, errors.Newf("--groups-max %d: must be between --groups (%d) and %d, on a placed cluster (--replicas below --nodes)", o.groupsMax, o.groups, node.GroupsMax)
	}
	if o.replicas < o.nodes && o.groups*o.replicas < o.nodes {
		return o, errors.Newf("--nodes %d --groups %d --replicas %d: some node would host no group; use --groups %d or more (or --replicas %d)",
			o.nodes, o.groups, o.replicas, (o.nodes+o.replicas-1)/o.replicas, o.nodes)
	}
	return o, nil
}

// localNode is one child keel server.
type localNode struct {
	id, port int
	addr     string
	dir      string
	cmd      *exec.Cmd
	ready    chan struct{} // closed at its "ready" log line
	done     chan struct{} // closed when it has exited and its log is drained
	err      error         // its Wait error, valid after done
}

// lineWriter serializes whole lines from several nodes onto one writer.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}

func runClusterLocal(o clusterLocalOptions, exe string, stdout io.Writer, sigs <-chan os.Signal) int {
	out := &lineWriter{w: stdout}
	fail := func(format string, args ...any) int {
		out.printf("keel cluster local: "+format+"\n", args...)
		return 1
	}
	nodes := make([]*localNode, o.nodes)
	peers := make([]string, o.nodes)
	for i := range nodes {
		id, port := i+1, o.basePort+i
		addr := stdnet.JoinHostPort(o.bind, strconv.Itoa(port))
		nodes[i] = &localNode{id: id, port: port, addr: addr, dir: filepath.Join(o.dir, "node-"+strconv.Itoa(id)),
			ready: make(chan struct{}), done: make(chan struct{})}
		peers[i] = strconv.Itoa(id) + "@" + addr
	}
	var stopping sync.Once
	stopAll := func() {
		stopping.Do(func() { stopLocalNodes(nodes, out) })
	}
	// abort says why, then stops every node started so far.
	abort := func(format string, args ...any) int {
		out.printf("keel cluster local: "+format+"\n", args...)
		stopAll()
		return 1
	}
	// A port another program holds would make one node fail to listen
	// while the others run; say which port before starting anything.
	for _, n := range nodes {
		for _, p := range []int{n.port, n.port + clusterBusPortOffset} {
			ln, err := stdnet.Listen("tcp", stdnet.JoinHostPort(o.bind, strconv.Itoa(p)))
			if err != nil {
				return fail("port %d (node %d) is not free: %v; choose another --base-port", p, n.id, err)
			}
			ln.Close()
		}
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			return fail("create %s: %v", n.dir, err)
		}
	}
	if serverTakesBusTLS {
		ids := make([]uint64, len(nodes))
		for i, n := range nodes {
			ids[i] = uint64(n.id)
		}
		created, err := pki.Ensure(o.tlsDir(), ids, busTLSHosts(o.bind), time.Now())
		if err != nil {
			return fail("bus certificates: %v", err)
		}
		if len(created) > 0 {
			out.printf("keel cluster local: made bus certificates in %s (%d files)\n", o.tlsDir(), len(created))
		}
	}
	for _, n := range nodes {
		if err := n.start(exe, o, strings.Join(peers, ","), out); err != nil {
			return abort("%v", err)
		}
	}
	// Wait for every node's ready line; a node that exits first, or a
	// signal, ends the whole cluster.
	readyBy := time.After(clusterReadyTimeout)
	for _, n := range nodes {
		select {
		case <-n.ready:
		case <-n.done:
			return abort("node %d exited before it was ready (%v); see its log above", n.id, n.err)
		case s := <-sigs:
			out.printf("keel cluster local: received %v, stopping\n", s)
			stopAll()
			return 0
		case <-readyBy:
			return abort("node %d not ready after %s", n.id, clusterReadyTimeout)
		}
	}
	leader, err := waitClusterOK(nodes, o.requirePass, sigs)
	if errors.Is(err, errInterrupted) {
		out.printf("keel cluster local: interrupted, stopping\n")
		stopAll()
		return 0
	}
	if err != nil {
		out.printf("keel cluster local: %v; the nodes keep running\n", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "keel cluster local: %d nodes ready", len(nodes))
	if o.groups > 1 {
		fmt.Fprintf(&b, ", %d replica groups", o.groups)
	}
	if o.replicas < len(nodes) {
		fmt.Fprintf(&b, " of %d replicas each", o.replicas)
	}
	if leader != "" {
		fmt.Fprintf(&b, ", leader %s", leader)
	}
	b.WriteString("\n")
	for _, n := range nodes {
		fmt.Fprintf(&b, "  node %d  %s  bus %d  dir %s\n", n.id, n.addr, n.port+clusterBusPortOffset, n.dir)
	}
	if serverTakesBusTLS {
		fmt.Fprintf(&b, "bus: mutual TLS, certificates in %s\n", o.tlsDir())
	}
	fmt.Fprintf(&b, "connect with: redis-cli -c -p %d\n", nodes[0].port)
	b.WriteString("stop with Ctrl-C\n")
	out.printf("%s", b.String())

	// Watch: report every node that exits while the cluster should run;
	// the rest keep serving (a majority still elects a leader).
	code := 0
	exits := make(chan *localNode, len(nodes))
	for _, n := range nodes {
		go func() { <-n.done; exits <- n }()
	}
	for alive := len(nodes); ; {
		select {
		case s := <-sigs:
			out.printf("keel cluster local: received %v, stopping %d nodes\n", s, alive)
			stopAll()
			return code
		case n := <-exits:
			// Ctrl-C in a terminal signals the nodes too (one process
			// group); a node that stopped for it did not die unexpectedly.
			select {
			case s := <-sigs:
				out.printf("keel cluster local: received %v, stopping %d nodes\n", s, alive-1)
				stopAll()
				return code
			default:
			}
			alive--
			code = 1
			out.printf("keel cluster local: node %d (%s) exited unexpectedly (%v); %d of %d nodes still running\n",
				n.id, n.addr, exitText(n.err), alive, len(nodes))
			if alive == 0 {
				return fail("every node has exited")
			}
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// start runs the node's keel server and forwards its output, each line
// prefixed with the node, until it exits.
func (n *localNode) start(exe string, o clusterLocalOptions, peers string, out *lineWriter) error {
	n.cmd = exec.Command(exe, n.serverArgs(o, peers)...)
	r, w, err := os.Pipe()
	if err != nil {
		return errors.Wrap(err, "pipe for a node's log")
	}
	n.cmd.Stdout, n.cmd.Stderr = w, w
	if err := n.cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return errors.Wrapf(err, "start node %d (%s server)", n.id, exe)
	}
	w.Close() // the child holds the write end; EOF comes when it exits
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		defer r.Close()
		prefix := fmt.Sprintf("[node %d :%d] ", n.id, n.port)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), clusterLogLineBytesMax)
		ready := false
		for sc.Scan() {
			line := sc.Text()
			out.printf("%s%s\n", prefix, line)
			if !ready && slices.Contains(strings.Fields(line), "ready") {
				ready = true
				close(n.ready)
			}
		}
		// A line over the bound ends forwarding; drain so the child
		// never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, r)
	}()
	go func() {
		n.err = n.cmd.Wait()
		<-drained
		close(n.done)
	}()
	return nil
}

// serverArgs is the node's `keel server` command line.
func (n *localNode) serverArgs(o clusterLocalOptions, peers string) []string {
	args := []string{"server", "--bind", o.bind, "--port", strconv.Itoa(n.port), "--dir", n.dir,
		"--appendonly", "yes", "--appendfsync", o.appendFsync,
		"--node-id", strconv.Itoa(n.id), "--peers", peers}
	if o.groups > 1 {
		args = append(args, "--groups", strconv.Itoa(o.groups))
	}
	if o.replicas < o.nodes {
		args = append(args, "--replicas", strconv.Itoa(o.replicas))
	}
	if o.groupsMax > o.groups {
		args = append(args, "--groups-max", strconv.Itoa(o.groupsMax))
	}
	if o.requirePass != "" {
		args = append(args, "--requirepass", o.requirePass)
	}
	if o.metricsBasePort > 0 {
		args = append(args, "--metrics-addr", stdnet.JoinHostPort(o.bind, strconv.Itoa(o.metricsBasePort+n.id-1)))
	}
	if serverTakesBusTLS {
		args = append(args, busTLSFlags(o.tlsDir(), uint64(n.id))...)
	}
	return args
}

// stopLocalNodes sends SIGTERM to every running node and waits for them,
// killing any that outlives clusterStopTimeout.
func stopLocalNodes(nodes []*localNode, out *lineWriter) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n.cmd == nil || n.cmd.Process == nil {
			continue
		}
		select {
		case <-n.done:
			continue
		default:
		}
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-n.done:
			case <-time.After(clusterStopTimeout):
				out.printf("keel cluster local: node %d still running %s after SIGTERM; killing it\n", n.id, clusterStopTimeout)
				_ = n.cmd.Process.Kill()
				<-n.done
			}
		}()
	}
	wg.Wait()
	out.printf("keel cluster local: all nodes stopped\n")
}

var errInterrupted = errors.New("interrupted")

// waitClusterOK polls CLUSTER INFO on every node until each reports
// cluster_state:ok (its group has a leader), and returns the leader's
// address from CLUSTER SLOTS.
func waitClusterOK(nodes []*localNode, password string, sigs <-chan os.Signal) (string, error) {
	clients := make([]*redis.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: n.addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, Password: password,
			DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
		defer clients[i].Close()
	}
	deadline := time.After(clusterLeaderTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		ok := 0
		for i, c := range clients {
			info, err := c.ClusterInfo(context.Background()).Result()
			switch {
			case err != nil:
				last = fmt.Sprintf("node %d: CLUSTER INFO: %v", nodes[i].id, err)
			case strings.Contains(info, "cluster_state:ok"):
				ok++
			default:
				last = fmt.Sprintf("node %d: cluster_state is not ok yet", nodes[i].id)
			}
		}
		if ok == len(clients) {
			break
		}
		for _, n := range nodes {
			select {
			case <-n.done:
				return "", errors.Newf("node %d exited while waiting for a leader", n.id)
			default:
			}
		}
		select {
		case <-sigs:
			return "", errInterrupted
		case <-deadline:
			return "", errors.Newf("no leader after %s (%s)", clusterLeaderTimeout, last)
		case <-tick.C:
		}
	}
	slots, err := clients[0].ClusterSlots(context.Background()).Result()
	if err != nil || len(slots) == 0 || len(slots[0].Nodes) == 0 {
		return "", errors.Wrap(err, "CLUSTER SLOTS")
	}
	return slots[0].Nodes[0].Addr, nil
}
