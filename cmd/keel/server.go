package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"math"
	stdnet "net"
	"net/http"
	_ "net/http/pprof" // served only with --pprof-addr
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keel-db/keel/node"
	"github.com/keel-db/keel/resp"
	"github.com/keel-db/keel/transport"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/seam"
	"github.com/keel-db/keel/server"
)

func init() { subcommands["server"] = runServer }

// serverOptions are the settings of keel server, by redis.conf name.
type serverOptions struct {
	bind, dir, appendFsync, requirePass, config string
	pprofAddr                                   string
	port, maxClients                            int
	eventLoops                                  int
	appendOnly                                  bool
	maxMemory, protoMaxBulkLen                  int64
	queryBufferLimit                            int64 // 0: resp's default
	notifyKeyspaceEvents                        string
	pubsubLimit, normalLimit                    node.BufferLimit
	timeout                                     time.Duration
	busyReplyThreshold, functionTimeLimit       time.Duration   // 0: the defaults; negative: 0
	functions                                   functionOptions // server_functions.go

	// memory is maxmemory-policy and the knobs that go with it.
	memory server.MemoryPolicy

	// Cluster mode (docs/cluster.md): --node-id N --peers "1@host:port,...";
	// cluster-enabled is implied by --peers and may be stated.
	nodeID         uint64
	peers          string
	join           bool
	clusterEnabled string // "", "yes" or "no"
	// groups (--groups G, keel's own): replica groups the cluster's slots
	// are sharded over; each hosting node keeps its replica in
	// DIR/group-<g> when G > 1 (node.GroupDir). 1: one group owning
	// every slot, in DIR itself, as before sharding. replicas (--replicas
	// N, keel's own): each group's replication factor; 0 (the default)
	// or at least the number of peers puts every group on every node,
	// fewer places each on N nodes (node/placement.go).
	groups   int
	replicas int
	// groupsMax (--groups-max M, keel's own): how many groups splits
	// (keel cluster split) may grow a placed cluster to; --groups when 0.
	groupsMax int
	// nodeDeadAfter (--node-dead-after): a placed cluster re-creates the
	// replicas of a node unheard for that long (node/moves.go).
	nodeDeadAfter time.Duration
	// Bus security (redis.conf's names): tls-cluster yes with the three
	// files, or cluster-insecure yes (keel's own) for plaintext.
	tlsCluster                         bool
	tlsCertFile, tlsKeyFile, tlsCAFile string
	clusterInsecure                    bool
	// Client TLS (redis.conf's names): a TLS listener on tlsPort with the
	// same certificate, key and CA files; tlsAuthClients is yes, no or
	// optional.
	tlsPort        int
	tlsAuthClients string
	// aofLoadTruncated (redis.conf's aof-load-truncated): cut a torn log
	// tail at recovery (yes, the default) or refuse to start (no).
	aofLoadTruncated bool
	// ACL (docs/security.md): aclfile, or user directives ("user <name>
	// <rule>...", one per line, repeatable), not both.
	aclFile string
	users   []string
	// settings are node settings by CONFIG SET's names (slowlog-*,
	// latency-*, loglevel, ...), checked by the node, applied at start.
	settings [][2]string
	// logFile is logfile ("": stderr); metricsAddr is --metrics-addr, where
	// Prometheus metrics are served ("": off).
	logFile, metricsAddr string
}

func defaultServerOptions() serverOptions {
	return serverOptions{
		bind: "127.0.0.1", port: 6379, dir: "./keel-data", appendOnly: true, appendFsync: "everysec",
		maxClients: server.MaxClientsDefault, protoMaxBulkLen: resp.BulkBytesMaxDefault, groups: 1, aofLoadTruncated: true,
		tlsAuthClients: "yes",
	}
}

// set applies one directive, from a flag or a config file line.
func (o *serverOptions) set(name, value string) error {
	var err error
	switch strings.ToLower(name) {
	case "bind":
		o.bind = value
	case "port":
		o.port, err = strconv.Atoi(value)
		if err == nil && (o.port < 0 || o.port > 65535) {
			err = errors.New("out of range")
		}
	case "dir":
		o.dir = value
	case "appendonly":
		o.appendOnly, err = parseYesNo(value)
	case "appendfsync":
		switch strings.ToLower(value) {
		case "everysec", "always", "no":
			o.appendFsync = strings.ToLower(value)
		default:
			err = errors.New("must be everysec, always or no")
		}
	case "requirepass":
		o.requirePass = value
	case "pprof-addr":
		// keel's own: serve net/http/pprof on this address (profiling only).
		o.pprofAddr = value
	case "maxmemory":
		o.maxMemory, err = parseMemory(value)
	case "maxmemory-policy", "maxmemory-samples", "maxmemory-eviction-tenacity", "lfu-log-factor", "lfu-decay-time":
		err = o.memory.Set(strings.ToLower(name), value)
	case "event-loops":
		// keel's own: how many event loops serve clients (0: a goroutine
		// per client; "auto": server.Config's default, one).
		if strings.EqualFold(value, "auto") {
			o.eventLoops = 0
			break
		}
		o.eventLoops, err = strconv.Atoi(value)
		if err == nil && o.eventLoops < 0 {
			err = errors.New("must be auto or at least 0")
		}
		if err == nil && o.eventLoops == 0 {
			o.eventLoops = -1
		}
	case "maxclients":
		o.maxClients, err = strconv.Atoi(value)
		if err == nil && o.maxClients < 1 {
			err = errors.New("must be at least 1")
		}
	case "notify-keyspace-events":
		if !node.ValidNotifyKeyspaceEvents(value) {
			err = errors.New("invalid event class character; use 'Ag$lshzxeKEtmdn'")
		}
		o.notifyKeyspaceEvents = value
	case "client-output-buffer-limit":
		// The normal and pubsub classes are kept (several lines may each
		// set one); keel has no replicas to feed through a connection.
		normal, pubsub, ok := node.ParseBufferLimits(value)
		switch {
		case !ok:
			err = errors.New(`want "<class> <hard> <soft> <seconds>", class normal, replica or pubsub`)
		case normal != nil:
			o.normalLimit = *normal
		}
		if pubsub != nil {
			o.pubsubLimit = *pubsub
		}
	case "timeout":
		var secs int64
		secs, err = strconv.ParseInt(value, 10, 64)
		if err == nil && secs < 0 {
			err = errors.New("must be 0 (never) or a number of seconds")
		}
		o.timeout = time.Duration(secs) * time.Second
	case "busy-reply-threshold", "lua-time-limit", "function-time-limit":
		var ms int64
		ms, err = strconv.ParseInt(value, 10, 64)
		if err == nil && (ms < 0 || ms > math.MaxInt64/int64(time.Millisecond)) {
			err = errors.New("must be a number of milliseconds, 0 or more")
		}
		d := time.Duration(ms) * time.Millisecond
		if d == 0 {
			d = -1 // an explicit 0: node.Config reads 0 as "the default"
		}
		if strings.EqualFold(name, "function-time-limit") {
			o.functionTimeLimit = d
		} else {
			o.busyReplyThreshold = d
		}
	case "node-id":
		o.nodeID, err = strconv.ParseUint(value, 10, 64)
		if err == nil && o.nodeID == 0 {
			err = errors.New("must be a positive integer")
		}
	case "peers":
		_, err = node.ParsePeers(value)
		o.peers = value
	case "groups":
		o.groups, err = strconv.Atoi(value)
		if err == nil && o.groups < 1 {
			err = errors.New("must be a positive integer")
		}
	case "groups-max":
		o.groupsMax, err = strconv.Atoi(value)
		if err == nil && o.groupsMax < 1 {
			err = errors.New("must be a positive integer")
		}
	case "replicas":
		o.replicas, err = strconv.Atoi(value)
		if err == nil && o.replicas < 0 {
			err = errors.New("must be 0 (every node) or a positive integer")
		}
	case "node-dead-after":
		o.nodeDeadAfter, err = time.ParseDuration(value)
		if err == nil && o.nodeDeadAfter < time.Second {
			err = errors.New("must be a duration of at least 1s, as 5m or 90s")
		}
	case "join":
		var on bool
		on, err = parseYesNo(value)
		o.join = on
	case "tls-port":
		o.tlsPort, err = strconv.Atoi(value)
		if err == nil && (o.tlsPort < 0 || o.tlsPort > 65535) {
			err = errors.New("out of range")
		}
	case "tls-auth-clients":
		switch v := strings.ToLower(value); v {
		case "yes", "no", "optional":
			o.tlsAuthClients = v
		default:
			err = errors.New("must be yes, no or optional")
		}
	case "aof-load-truncated":
		o.aofLoadTruncated, err = parseYesNo(value)
	case "aclfile":
		o.aclFile = value
	case "user":
		if strings.TrimSpace(value) == "" {
			err = errors.New("want a user name and its rules")
		}
		o.users = append(o.users, value)
	case "tls-cluster":
		o.tlsCluster, err = parseYesNo(value)
	case "tls-cert-file":
		o.tlsCertFile = value
	case "tls-key-file":
		o.tlsKeyFile = value
	case "tls-ca-cert-file":
		o.tlsCAFile = value
	case "cluster-insecure":
		o.clusterInsecure, err = parseYesNo(value)
	case "cluster-enabled":
		var on bool
		on, err = parseYesNo(value)
		o.clusterEnabled = map[bool]string{true: "yes", false: "no"}[on]
	case "client-query-buffer-limit":
		o.queryBufferLimit, err = parseMemory(value)
		if err == nil && (o.queryBufferLimit < 1<<20 || o.queryBufferLimit > 1<<40) {
			err = errors.New("must be between 1mb and 1tb")
		}
	case "proto-max-bulk-len":
		o.protoMaxBulkLen, err = parseMemory(value)
		if err == nil && o.protoMaxBulkLen < 1<<20 {
			err = errors.New("must be at least 1mb")
		}
	case "logfile":
		o.logFile = value
	case "metrics-addr":
		o.metricsAddr = value
	default:
		if ok, ferr := o.functions.set(name, value); ok {
			return ferr
		}
		ok, serr := node.CheckSetting(name, value)
		if !ok {
			return errors.Newf("unknown directive %q", name)
		}
		if err = serr; err == nil {
			o.settings = append(o.settings, [2]string{strings.ToLower(name), value})
		}
	}
	if err != nil {
		return errors.Wrapf(err, "bad value %q for %s", value, name)
	}
	return nil
}

func parseYesNo(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, errors.New("must be yes or no")
}

// parseMemory reads redis.conf memory units: 1k = 1000, 1kb = 1024, and
// the same for m/mb and g/gb; a bare number is bytes.
func parseMemory(v string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	mul := int64(1)
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1e9}, {"m", 1e6}, {"k", 1e3}, {"b", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mul = strings.TrimSuffix(s, u.suffix), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.Newf("not a memory size: %q", v)
	}
	return n * mul, nil
}

// readConfigFile applies "name value" lines. Values may be quoted.
func (o *serverOptions) readConfigFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errors.Wrapf(err, "open config file")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, _ := strings.Cut(line, " ")
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' && value[len(value)-1] == '"' || value[0] == '\'' && value[len(value)-1] == '\'') {
			value = value[1 : len(value)-1]
		}
		if err := o.set(name, value); err != nil {
			return errors.Wrapf(err, "%s:%d", path, n)
		}
	}
	return errors.Wrapf(sc.Err(), "read config file")
}

// parseServerArgs reads [config-file] then --name value flags (or
// --name=value). A --config flag names the file too; flags win over it.
func parseServerArgs(args []string) (serverOptions, error) {
	o := defaultServerOptions()
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		o.config, args = args[0], args[1:]
	}
	type kv struct{ name, value string }
	var flags []kv
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return o, errors.Newf("unexpected argument %q", a)
		}
		name := strings.TrimLeft(a, "-")
		if name == "h" || name == "help" {
			return o, flag.ErrHelp
		}
		value, hasValue := "", false
		if n, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = n, v, true
		}
		if !hasValue {
			if i+1 >= len(args) {
				return o, errors.Newf("flag --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if name == "config" {
			o.config = value
			continue
		}
		flags = append(flags, kv{name, value})
	}
	if o.config != "" {
		if err := o.readConfigFile(o.config); err != nil {
			return o, err
		}
	}
	for _, f := range flags {
		if err := o.set(f.name, f.value); err != nil {
			return o, err
		}
	}
	return o, nil
}

// clusterPeers validates the cluster flags together and returns the
// peers (nil without cluster mode).
func (o *serverOptions) clusterPeers() ([]cluster.TopoNode, error) {
	if o.peers == "" {
		switch {
		case o.groups > 1:
			return nil, errors.New("--groups needs cluster mode: --peers \"1@host:port,...\" and --node-id")
		case o.replicas > 0:
			return nil, errors.New("--replicas needs cluster mode: --peers \"1@host:port,...\" and --node-id")
		case o.clusterEnabled == "yes":
			return nil, errors.New("cluster-enabled yes needs --peers \"1@host:port,2@host:port,...\" and --node-id")
		case o.nodeID != 0:
			return nil, errors.New("--node-id needs --peers")
		}
		return nil, nil
	}
	if o.clusterEnabled == "no" {
		return nil, errors.New("--peers contradicts cluster-enabled no")
	}
	if o.nodeID == 0 {
		return nil, errors.New("--peers needs --node-id: which of the peers this node is")
	}
	if !o.appendOnly {
		return nil, errors.New("cluster mode needs appendonly yes: a replica group keeps its Raft log on disk")
	}
	if o.groups < 1 || o.groups > node.GroupsMax {
		return nil, errors.Newf("--groups %d: must be between 1 and %d", o.groups, node.GroupsMax)
	}
	if o.groupsMax != 0 && (o.groupsMax < o.groups || o.groupsMax > node.GroupsMax) {
		return nil, errors.Newf("--groups-max %d: must be between --groups (%d) and %d", o.groupsMax, o.groups, node.GroupsMax)
	}
	peers, err := node.ParsePeers(o.peers)
	if err != nil {
		return nil, err
	}
	var self *cluster.TopoNode
	for i := range peers {
		if peers[i].ID == o.nodeID {
			self = &peers[i]
		}
	}
	if self == nil {
		return nil, errors.Newf("--node-id: node id %d is not among the peers", o.nodeID)
	}
	switch {
	case o.tlsCluster && o.clusterInsecure:
		return nil, errors.New("--tls-cluster yes and --cluster-insecure yes: choose one")
	case o.tlsCluster && (o.tlsCertFile == "" || o.tlsKeyFile == "" || o.tlsCAFile == ""):
		return nil, errors.New("--tls-cluster yes needs --tls-cert-file, --tls-key-file and --tls-ca-cert-file (keel cluster certs makes them)")
	case !o.tlsCluster && !o.clusterInsecure:
		return nil, errors.New("--peers needs a secure cluster bus: --tls-cluster yes with --tls-cert-file, --tls-key-file and --tls-ca-cert-file " +
			"(keel cluster certs makes them), or --cluster-insecure yes to run the bus in plaintext, where anyone who reaches port+10000 can take over the cluster")
	}
	if self.Port != o.port {
		return nil, errors.Newf("--port %d differs from node %d's address %s:%d in --peers (a peer address is its client port)",
			o.port, o.nodeID, self.Host, self.Port)
	}
	return peers, nil
}

func runServer(args []string) int {
	o, err := parseServerArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(os.Stdout, serverUsage())
		return 0
	}
	if err == nil {
		_, err = o.clusterPeers()
	}
	if err == nil {
		err = node.CheckACLConfig(o.aclFile, o.users, disk.OS())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "keel server: %v\n(keel server --help lists the flags)\n", err)
		return 2
	}
	logger, err := newLogger(o.logFile, o.logLevel())
	if err != nil {
		fmt.Fprintf(os.Stderr, "keel server: %v\n", err)
		return 1
	}
	defer logger.Close()
	if err := serve(o, logger); err != nil {
		logger.Printf("keel server: %v", err)
		return 1
	}
	return 0
}

// logLevel is the loglevel the options set, notice by default.
func (o *serverOptions) logLevel() string {
	level := "notice"
	for _, s := range o.settings {
		if s[0] == "loglevel" {
			level = strings.ToLower(s[1])
		}
	}
	return level
}

func serve(o serverOptions, logger *processLogger) error {
	if o.pprofAddr != "" {
		pln, err := stdnet.Listen("tcp", o.pprofAddr)
		if err != nil {
			return errors.Wrapf(err, "listen for pprof on %s", o.pprofAddr)
		}
		logger.Printf("pprof on http://%s/debug/pprof/", pln.Addr())
		go http.Serve(pln, nil)
	}
	maxClients, msg := server.RaiseOpenFilesLimit(o.maxClients)
	if msg != "" {
		logger.Print(msg)
	}
	fsync := map[string]cluster.FsyncPolicy{"everysec": cluster.FsyncEverySec, "always": cluster.FsyncAlways, "no": cluster.FsyncNo}[o.appendFsync]
	peers, err := o.clusterPeers()
	if err != nil {
		return err
	}
	groups := max(o.groups, 1)
	// The groups this node hosts: all, or its share of the placement
	// (node/placement.go computes the same from the same flags).
	var hosted []uint64
	for g := uint64(1); g <= uint64(groups); g++ {
		hosted = append(hosted, g)
	}
	_, hostedErr := os.Stat(filepath.Join(o.dir, node.HostedFileName))
	moved := hostedErr == nil // moves changed the groups this node hosts (node/moves.go)
	if peers != nil && o.replicas > 0 && o.replicas < len(peers) && !moved && !o.join {
		var ids []uint64
		for _, p := range peers {
			ids = append(ids, p.ID)
		}
		place, err := cluster.Place(ids, groups, o.replicas)
		if err != nil {
			return err
		}
		hosted = place.Hosted(o.nodeID)
	}
	if o.appendOnly && !moved && !(o.join && o.replicas > 0) {
		if err := checkGroupsLayout(o.dir, groups, hosted); err != nil {
			return err
		}
	}
	limits := resp.DefaultLimits()
	limits.BulkBytesMax = o.protoMaxBulkLen
	switch {
	case o.queryBufferLimit > 0:
		// Set by name: it wins, as in Redis (a bulk longer than it
		// closes the connection at the query buffer limit).
		limits.QueryBufferBytesMax = int(o.queryBufferLimit)
	case int64(limits.QueryBufferBytesMax) < o.protoMaxBulkLen+(1<<20):
		limits.QueryBufferBytesMax = int(o.protoMaxBulkLen + 1<<20)
	}
	configFile := o.config
	if configFile != "" {
		if abs, err := filepath.Abs(configFile); err == nil {
			configFile = abs
		}
	}
	// One replica per group, each in its own directory (the node's dir
	// itself with one group). The server runs the everysec fsync off the
	// group's queue (server/maintenance.go); after a failed write or
	// fsync the node reopens a replica from what is durable on disk,
	// never by retrying the fsync.
	replicaOptions := func(g uint64) cluster.Options {
		dir := node.GroupDir(o.dir, groups, g)
		copts := cluster.Options{Dir: dir, AppendOnly: o.appendOnly, Fsync: fsync, Rand: seam.NewRand(), BackgroundSync: true,
			Functions: o.functions.config(dir, o.appendOnly), RefuseTruncatedTail: !o.aofLoadTruncated}
		if o.appendOnly {
			copts.FS = disk.OS()
		}
		return copts
	}
	if o.appendOnly {
		for _, g := range hosted {
			dir := node.GroupDir(o.dir, groups, g)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return errors.Wrapf(err, "create data directory %s", dir)
			}
		}
	}
	var busTLS *transport.TLS
	if peers != nil && o.tlsCluster {
		if busTLS, err = transport.LoadTLS(o.tlsCertFile, o.tlsKeyFile, o.tlsCAFile); err != nil {
			return err
		}
	}
	if peers != nil && o.clusterInsecure {
		logger.Printf("WARNING: the cluster bus on port %d runs in plaintext (--cluster-insecure yes): anyone who reaches it can read the data and take over the cluster", o.port+10000)
	}
	srv, err := server.Open(server.Config{
		Bind: o.bind, Port: o.port, Dir: o.dir, AppendOnly: o.appendOnly, AppendFsync: o.appendFsync,
		RequirePass: o.requirePass, MaxMemory: o.maxMemory, Memory: o.memory, OwnsProcess: true, MaxClients: maxClients, EventLoops: o.eventLoops, Limits: limits,
		NotifyKeyspaceEvents: o.notifyKeyspaceEvents, PubSubLimit: o.pubsubLimit, NormalLimit: o.normalLimit, Timeout: o.timeout,
		BusyReplyThreshold: o.busyReplyThreshold, FunctionTimeLimit: o.functionTimeLimit,
		ConfigFile: configFile, Logf: logger.Printf,
		NodeID: o.nodeID, Peers: peers, Groups: groups, MaxGroups: o.groupsMax, Replicas: o.replicas, NodeDeadAfter: o.nodeDeadAfter, Join: o.join, PeerBind: o.bind,
		BusTLS: busTLS, BusInsecure: o.clusterInsecure,
		ACLFile: o.aclFile, Users: o.users, Settings: o.settings,
		ReplicaOptions: replicaOptions,
	})
	if err != nil {
		return errors.Wrapf(err, "start with data directory %s", o.dir)
	}
	srv.Node().OnLogLevel(logger.setLevel)
	if o.metricsAddr != "" {
		mln, err := stdnet.Listen("tcp", o.metricsAddr)
		if err != nil {
			srv.Close()
			return errors.Wrapf(err, "listen for metrics on %s", o.metricsAddr)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", srv.MetricsHandler())
		logger.Printf("metrics on http://%s/metrics", mln.Addr())
		go http.Serve(mln, mux)
	}
	if peers != nil {
		groupsText := ""
		if groups > 1 {
			groupsText = fmt.Sprintf(", %d replica groups", groups)
		}
		if len(hosted) < groups {
			groupsText += fmt.Sprintf(" of %d replicas each, hosting %v", o.replicas, hosted)
		}
		logger.Printf("cluster node %d of %s%s; peers on port %d", o.nodeID, o.peers, groupsText, o.port+10000)
	}
	lns, err := o.listen()
	if err != nil {
		srv.Close() // closes the cluster node too
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		select {
		case s := <-sigs:
			logger.Printf("received %v, scheduling shutdown", s)
			srv.Shutdown()
		case <-srv.ShutdownRequested():
		}
	}()
	persistence := "appendonly no"
	if o.appendOnly {
		persistence = "appendonly yes appendfsync " + o.appendFsync + " dir " + o.dir
	}
	var where []string
	for _, l := range lns {
		where = append(where, l.kind+" "+l.Addr().String())
	}
	logger.always(fmt.Sprintf("keel %s ready to accept connections %s (%s, maxclients %d)", server.Version, strings.Join(where, ", "), persistence, maxClients))
	for _, l := range lns[1:] {
		go func() {
			if err := srv.Serve(l); err != nil {
				logger.Printf("serving %s: %v", l.kind, err)
			}
		}()
	}
	if err := srv.Serve(lns[0]); err != nil {
		return errors.Wrap(err, "serve")
	}
	logger.Printf("keel exited cleanly, bye bye")
	return nil
}

// checkGroupsLayout refuses to start on data written with another
// --groups: with one group the replica lives in dir itself, with G > 1 in
// dir/group-1..G, and each group's slots depend on G (SplitSlots), so a
// changed count would silently ignore data or give two groups one slot.
func checkGroupsLayout(dir string, groups int, hosted []uint64) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errors.Wrapf(err, "read data directory %s", dir)
	}
	var found []int
	oneGroup := false
	for _, e := range entries {
		if n, ok := strings.CutPrefix(e.Name(), "group-"); ok && e.IsDir() {
			if g, err := strconv.Atoi(n); err == nil && g >= 1 {
				found = append(found, g)
			}
		}
		if e.Name() == "wal" && e.IsDir() {
			oneGroup = true
		}
	}
	switch {
	case groups == 1 && len(found) > 0:
		return errors.Newf("data directory %s holds the data of a node started with --groups %d (%s/group-N): start it with that --groups (the count cannot change on existing data)",
			dir, slices.Max(found), dir)
	case groups > 1 && oneGroup:
		return errors.Newf("data directory %s holds the data of a node started without --groups (one group, %s/wal): --groups cannot change on existing data",
			dir, dir)
	case groups > 1 && len(found) > 0 && len(hosted) == groups && (len(found) != groups || slices.Max(found) != groups):
		return errors.Newf("data directory %s holds %d replica groups (up to group-%d), not %d: --groups cannot change on existing data",
			dir, len(found), slices.Max(found), groups)
	case groups > 1 && len(found) > 0 && len(hosted) < groups && !slices.Equal(sortedInts(found), hostedInts(hosted)):
		return errors.Newf("data directory %s holds replica groups %v, but with --groups %d and --replicas this node hosts %v: --groups, --replicas and --peers cannot change on existing data",
			dir, sortedInts(found), groups, hosted)
	}
	return nil
}

// kindListener is a client listener and what it speaks ("tcp", "tls").
type kindListener struct {
	stdnet.Listener
	kind string
}

// listen opens the client listeners on --bind: TLS on --tls-port (when
// set) and plain TCP on --port. --port 0 means what it means to Redis
// when a TLS port is set — no plain listener, TLS only — and otherwise
// what tests and scripts have always used it for: a free port, shown in
// the ready line.
func (o *serverOptions) listen() ([]kindListener, error) {
	var lns []kindListener
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	if o.port != 0 || o.tlsPort == 0 {
		addr := stdnet.JoinHostPort(o.bind, strconv.Itoa(o.port))
		ln, err := stdnet.Listen("tcp", addr)
		if err != nil {
			return nil, errors.Wrapf(err, "listen on %s", addr)
		}
		lns = append(lns, kindListener{ln, "tcp"})
	}
	if o.tlsPort != 0 {
		cfg, err := o.clientTLS()
		if err != nil {
			closeAll()
			return nil, err
		}
		addr := stdnet.JoinHostPort(o.bind, strconv.Itoa(o.tlsPort))
		ln, err := tls.Listen("tcp", addr, cfg)
		if err != nil {
			closeAll()
			return nil, errors.Wrapf(err, "listen for TLS clients on %s", addr)
		}
		lns = append(lns, kindListener{ln, "tls"})
	}
	return lns, nil
}

// clientTLS is the TLS configuration of the client listener, as Redis's
// tls-cert-file, tls-key-file, tls-ca-cert-file and tls-auth-clients
// make it: TLS 1.2 or 1.3; with tls-auth-clients yes a client must
// present a certificate the CA signed, with optional it may.
func (o *serverOptions) clientTLS() (*tls.Config, error) {
	if o.tlsCertFile == "" || o.tlsKeyFile == "" {
		return nil, errors.New("--tls-port needs --tls-cert-file and --tls-key-file")
	}
	cert, err := tls.LoadX509KeyPair(o.tlsCertFile, o.tlsKeyFile)
	if err != nil {
		return nil, errors.Wrapf(err, "client TLS: load %s and %s", o.tlsCertFile, o.tlsKeyFile)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch o.tlsAuthClients {
	case "no":
		cfg.ClientAuth = tls.NoClientCert
		return cfg, nil
	case "optional":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	default:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if o.tlsCAFile == "" {
		return nil, errors.Newf("--tls-auth-clients %s needs --tls-ca-cert-file (the CA client certificates must chain to)", o.tlsAuthClients)
	}
	pem, err := os.ReadFile(o.tlsCAFile)
	if err != nil {
		return nil, errors.Wrap(err, "client TLS: read the CA file")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.Newf("client TLS: %s holds no PEM certificate", o.tlsCAFile)
	}
	cfg.ClientCAs = pool
	return cfg, nil
}

func sortedInts(v []int) []int {
	v = slices.Clone(v)
	slices.Sort(v)
	return v
}

func hostedInts(gs []uint64) []int {
	out := make([]int, len(gs))
	for i, g := range gs {
		out[i] = int(g)
	}
	return out
}
