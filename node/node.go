package node

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/resp"
	"github.com/keel-db/keel/seam"
)

// Version is keel's own version, reported as keel_version in INFO.
const Version = "0.1.0"

// RedisVersion is the Redis release whose behaviour keel follows; clients
// read it from HELLO and INFO (redis_version) to decide what to send.
const RedisVersion = "7.2.0"

const (
	// MaxClientsDefault is Redis's maxclients default.
	MaxClientsDefault = 10000
	// GroupsMax bounds --groups: each group is a Raft group on every node
	// (a ticker, a stepper, a log and its fsyncs), so more than a few
	// dozen only costs.
	GroupsMax = 64
)

// Config is what a node is: its place in a cluster (or none), and the
// settings redis.conf names. Fields named after redis.conf directives
// mean the same.
type Config struct {
	// ID is this node's id in a cluster; 0 for a single node. Peers are
	// every founding node of the cluster (this one included), sorted by
	// id; empty for a single node.
	ID    uint64
	Peers []cluster.TopoNode
	// Groups is how many replica groups the cluster has (1 when 0).
	// Replicas is each group's replication factor (placement.go): 0, or
	// at least the founding nodes, puts every group on every node.
	Groups   int
	Replicas int
	// MaxGroups is how many groups splits (CLUSTER ADDGROUP, `keel
	// cluster split`) may grow a placed cluster to (--groups-max;
	// Groups when 0). The node keeps a slot for each from the start (the
	// runtime a queue, ticker and stepper), so that a group added at run
	// time needs no resizing of what every request reads; every node of
	// the cluster must be started with the same value.
	MaxGroups int
	// Join: the node is not a founding member and waits to be added with
	// CLUSTER ADDNODE (--join yes).
	Join bool

	Bind        string
	Port        int
	Dir         string
	AppendOnly  bool
	AppendFsync string // everysec, always, no
	RequirePass string
	MaxMemory   int64 // maxmemory (0: none); the policy and its knobs below
	MaxClients  int
	Limits      resp.Limits
	ConfigFile  string
	// PubSubLimit is client-output-buffer-limit pubsub; DefaultPubSubLimit
	// when zero. NormalLimit is its normal class (none when zero, Redis's
	// default).
	PubSubLimit PubSubLimit
	NormalLimit BufferLimit
	// Timeout closes a connection idle that long (redis.conf's timeout; 0
	// never).
	Timeout time.Duration
	// BusyReplyThreshold is busy-reply-threshold (functions.go;
	// BusyReplyThresholdDefault when 0, zero when negative: busy as soon
	// as a call runs), FunctionTimeLimit function-time-limit
	// (FunctionTimeLimitDefault when 0, none when negative). KillFunctions is FUNCTION KILL: it stops the function calls
	// running on this node that have not written and returns "" if it
	// stopped one, else the error reply (udf.Guard.FunctionKill's). nil
	// (a runtime that runs one thing at a time, the simulator) answers
	// NOTBUSY.
	BusyReplyThreshold time.Duration
	FunctionTimeLimit  time.Duration
	KillFunctions      func() string
	// NotifyKeyspaceEvents is notify-keyspace-events.
	NotifyKeyspaceEvents string
	// TickHz is how often the runtime ticks each group (INFO hz); 10
	// when 0.
	TickHz int
	// ACL (acl*.go): ACLFile is aclfile, read at start and by ACL LOAD,
	// written by ACL SAVE, through FS. Users are the user directives,
	// each "<name> <rule>...". At most one of the two; neither: the
	// default user alone, until the replicated table says otherwise.
	ACLFile string
	Users   []string
	FS      disk.FS

	// Clock is the node's time (the wall clock in production, a simulated
	// clock in the simulator); Rand its randomness (RANDOMKEY across
	// groups, SCAN cursors). RunID is INFO's run_id.
	Clock seam.Clock
	Rand  seam.Rand
	RunID string
	// Secrets draws the passwords ACL GENPASS makes: a cryptographically
	// secure source in production; Rand when nil (tests, the simulator).
	Secrets seam.Rand

	// PeerPings has the node ping its peers so that it can tell which
	// have gone silent (liveness.go); the production runtime sets it.
	PeerPings bool
	// NodeDeadAfter is --node-dead-after: with placement, the meta
	// group's leader marks a member it has not heard from for that long
	// dead, and its replicas are re-created elsewhere (moves.go).
	// NodeDeadAfterDefault when 0, never when negative.
	NodeDeadAfter time.Duration
	// MovesAtOnce is how many groups may be moving at the same time
	// (moves.go): 1 when 0. More moves more bytes at once.
	MovesAtOnce int

	// Settings are the online settings (CONFIG SET's names, ops_config.go)
	// given by the config file or flags, applied in order at start.
	Settings [][2]string

	// Knobs plant deliberate bugs for tests (knobs.go): nil in
	// production, set only by the simulator.
	Knobs *TestingKnobs

	// MaxMemoryPolicy is maxmemory-policy; the others are
	// maxmemory-samples, maxmemory-eviction-tenacity, lfu-log-factor and
	// lfu-decay-time: Redis's default when 0, zero when negative
	// (evict.go).
	MaxMemoryPolicy           engine.Policy
	MaxMemorySamples          int
	MaxMemoryEvictionTenacity int
	LFULogFactor              int
	LFUDecayTime              int
	// OnEviction, when set, hears of every eviction entry this node
	// proposes and of its end here (evict.go): the simulator's history
	// learns evictions from the log this way.
	OnEviction func(g, batch uint64, keys [][]byte, stage EvictionStage)
}

// random draws from the node's randomness; safe for concurrent use.
func (n *Node) random() uint64 {
	n.randMu.Lock()
	defer n.randMu.Unlock()
	return n.rand.Uint64()
}

// Runtime is what a node needs from the world it runs in. The production
// server (server/) implements it with sockets and goroutines; the
// simulator (sim/) with its event loop. Every method must return without
// waiting on a client.
type Runtime interface {
	// Exclusive runs fn while the runtime holds group g's replica for
	// it alone (the server's writer queue; the simulator's single
	// thread). s is the session asking, nil when the node itself asks.
	Exclusive(s *Session, g uint64, fn func())
	// Send hands a message for peer to to the network. It never blocks
	// and may drop (Raft retransmits).
	Send(to uint64, msg []byte)
	// Wake says session s has output that arrived outside its own batch
	// (pub/sub messages, keyspace notifications): TakePushed returns it.
	Wake(s *Session)
	// Unpark says session s, parked in a blocking command (Step.Park),
	// can go on: the runtime calls its Next again. It is called inside
	// some group's Exclusive or from another session, and must not wait.
	Unpark(s *Session)
	// Disconnect closes s's connection (CLIENT KILL, an output limit).
	Disconnect(s *Session)
	// StartJob runs a snapshot job of group g's replica r in the
	// background (it reads only an immutable view and the disk), then
	// reports back with JobDone under Exclusive. WaitJob blocks until
	// the job of group g handed out last, if any, has finished writing.
	StartJob(g uint64, r *cluster.Replica, job *cluster.Job)
	WaitJob(g uint64)
	// StartSync runs the everysec fsync of group g's replica r in the
	// background (cluster.Options.BackgroundSync), then reports back with
	// SyncDone under Exclusive.
	StartSync(g uint64, r *cluster.Replica, sj *cluster.SyncJob)
	// OpenGroup asks the runtime to open this node's replica of group g
	// at run time (a move placed it here, moves.go): soon, not within
	// the current call, it builds the group's options as for the groups
	// opened at start and calls Node.OpenGroup inside Exclusive(g), then
	// ticks the group and steps its messages as any other's. DropGroup
	// likewise calls Node.DropGroup inside Exclusive(g), once no job of
	// the group runs.
	OpenGroup(g uint64)
	DropGroup(g uint64)
	// Shutdown asks the process to stop (SHUTDOWN, or a replica that
	// could not be reopened).
	Shutdown()
	// Host reports the process's facts for INFO.
	Host() HostInfo
	// Logf writes one log line.
	Logf(format string, args ...any)
}

// Node is one keel node: its replica groups, the slot table and routing,
// every client session and its state, pub/sub, the cluster's address
// book, leadership spreading and the reaction to disk failures. It does
// no I/O of its own: its Runtime carries out what it decides.
//
// Concurrency: a Session is used by one goroutine at a time (its
// connection's); the group operations (Submit, Tick, Step, JobDone,
// SyncDone, CloseGroup) run only inside Runtime.Exclusive for their
// group; the node's shared state is guarded by its own locks and atomics,
// so the production runtime may drive sessions and groups from many
// goroutines. The simulator drives everything from one.
type Node struct {
	cfg Config
	rt  Runtime

	clock  seam.Clock
	rand   seam.Rand // only through random(): sessions draw from many goroutines
	randMu sync.Mutex

	// clustered: cluster mode (--peers); the node speaks Redis Cluster.
	clustered bool
	id        uint64

	groups []*group // groups[g-1] is group g

	// table is the slot → group routing table (groups.go), rebuilt
	// whole from every group's applied slot view and swapped atomically.
	table atomic.Pointer[slotTable]

	// mu guards nodes (the address book), each group's members and
	// slots, and the sessions registry.
	mu       sync.Mutex
	nodes    []cluster.TopoNode
	sessions map[uint64]*Session
	nextID   atomic.Uint64

	maxClients  atomic.Int64
	requirePass atomic.Pointer[string]
	limits      atomic.Pointer[limitsState] // limits.go
	fnLimits    atomic.Pointer[fnLimits]    // functions.go
	live        liveness                    // liveness.go
	mem         atomic.Pointer[memConfig]   // evict.go
	evictedBase atomic.Int64                // evict.go: CONFIG RESETSTAT
	bus         busPubsub                   // pubsub_bus.go
	plc         placement                   // placement.go
	meta        metaState                   // meta.go, under mu
	mv          movesState                  // moves.go
	nodeTicks   int                         // group 1's ticks, hosted or not (moves.go)

	stats stats

	scans groupScans // SCAN across the groups this node leads (fanout.go)

	pubsub *pubsub  // pubsub.go, notify.go
	blk    blocking // blocked clients (blocking.go)
	psExt

	acl       nodeACL // acl_table.go
	aclBus    aclBus  // acl_bus.go
	secrets   seam.Rand
	secretsMu sync.Mutex

	// badFrames counts refused peer messages; the first is logged.
	badFrames atomic.Int64
	// onPeer follows the address book for the runtime (OnPeer).
	onPeer func(id uint64, clientAddr string)

	nodeOps // statistics, slow log, latency, MONITOR, CLIENT PAUSE (ops.go)
}

// stats are the counters of INFO stats. Commands are counted per session
// (no shared cache line on the hot path) and folded in here when a
// session ends.
type stats struct {
	connectionsReceived atomic.Int64
	rejectedConnections atomic.Int64
	commandsRetired     atomic.Int64 // commands of sessions that are gone
	commandsBase        atomic.Int64 // subtracted by CONFIG RESETSTAT
	netInput            atomic.Int64
	netOutput           atomic.Int64
	replicaReopens      atomic.Int64 // replicas reopened from disk after a disk failure
}

// New returns a node; its replicas are opened next, with GroupOptions and
// Adopt (or OpenGroups, which does both).
func New(cfg Config, rt Runtime) (*Node, error) {
	if cfg.Groups <= 0 {
		cfg.Groups = 1
	}
	if cfg.Groups > GroupsMax {
		return nil, errors.Newf("--groups %d: must be between 1 and %d", cfg.Groups, GroupsMax)
	}
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = cfg.Groups
	}
	if cfg.MaxGroups < cfg.Groups || cfg.MaxGroups > GroupsMax {
		return nil, errors.Newf("--groups-max %d: must be between --groups (%d) and %d", cfg.MaxGroups, cfg.Groups, GroupsMax)
	}
	if cfg.Clock == nil || cfg.Rand == nil {
		return nil, errors.New("node: Config needs a Clock and a Rand")
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = MaxClientsDefault
	}
	if cfg.Limits == (resp.Limits{}) {
		cfg.Limits = resp.DefaultLimits()
	}
	if cfg.AppendFsync == "" {
		cfg.AppendFsync = "everysec"
	}
	if cfg.TickHz <= 0 {
		cfg.TickHz = 10
	}
	n := &Node{cfg: cfg, rt: rt, clock: cfg.Clock, rand: cfg.Rand, secrets: cfg.Secrets, sessions: map[uint64]*Session{}}
	if n.secrets == nil {
		n.secrets = cfg.Rand
	}
	if len(cfg.Peers) > 0 {
		if !slices.ContainsFunc(cfg.Peers, func(p cluster.TopoNode) bool { return p.ID == cfg.ID }) {
			return nil, errors.Newf("node id %d is not among the peers", cfg.ID)
		}
		n.clustered, n.id = true, cfg.ID
		n.nodes = slices.Clone(cfg.Peers)
		slices.SortFunc(n.nodes, func(a, b cluster.TopoNode) int { return cmp.Compare(a.ID, b.ID) })
	} else if cfg.Groups > 1 {
		return nil, errors.New("--groups needs cluster mode: --peers \"1@host:port,...\" and --node-id")
	}
	for i := range cfg.MaxGroups {
		g := &group{id: uint64(i + 1), members: map[uint64]bool{}}
		for _, p := range n.nodes {
			if i < cfg.Groups {
				g.members[p.ID] = true
			}
		}
		n.groups = append(n.groups, g)
	}
	if err := n.initPlacement(); err != nil {
		return nil, err
	}
	if cfg.MaxGroups > cfg.Groups && !n.plc.on {
		return nil, errors.Newf("--groups-max %d: splitting groups needs placement (--replicas below the number of nodes)", cfg.MaxGroups)
	}
	if err := n.initMoves(); err != nil {
		return nil, err
	}
	n.maxClients.Store(int64(cfg.MaxClients))
	pass := cfg.RequirePass
	n.requirePass.Store(&pass)
	n.initPubsub()
	n.initBlocking()
	n.initLimits()
	n.initFunctionLimits()
	n.initMemory()
	n.initOps()
	if err := n.initOpsConfig(); err != nil {
		return nil, err
	}
	if err := n.initACL(); err != nil {
		return nil, err
	}
	return n, nil
}

// ID is this node's id in its cluster (0 for a single node).
func (n *Node) ID() uint64 { return n.id }

// Clustered reports cluster mode.
func (n *Node) Clustered() bool { return n.clustered }

// Groups is how many replica groups the node is ready for: the cluster's
// (it hosts HostedGroups of them) and, with --groups-max, those splits may
// add (GroupCount is how many there are now). The runtime keeps a queue
// for each.
func (n *Node) Groups() int { return len(n.groups) }

// GroupCount is how many replica groups the cluster has now: the meta
// record's with placement (splits add groups), else --groups.
func (n *Node) GroupCount() int { return n.groupCount() }

func (n *Node) groupCount() int {
	if !n.plc.on {
		return len(n.groups)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return min(len(n.meta.rec.Targets), len(n.groups))
}

// Config is the node's configuration as it started.
func (n *Node) Config() Config { return n.cfg }

// MaxClients is maxclients, which CONFIG SET may change.
func (n *Node) MaxClients() int64 { return n.maxClients.Load() }

func (n *Node) password() string { return *n.requirePass.Load() }

// NoteConnection counts an accepted connection, or one refused at the
// maxclients limit (INFO stats).
func (n *Node) NoteConnection(rejected bool) {
	n.stats.connectionsReceived.Add(1)
	if rejected {
		n.stats.rejectedConnections.Add(1)
	}
}

// Sessions is how many sessions are open.
func (n *Node) Sessions() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.sessions)
}

func (n *Node) logf(format string, args ...any) { n.rt.Logf(format, args...) }

// sessionList returns the open sessions sorted by id.
func (n *Node) sessionList() []*Session {
	n.mu.Lock()
	out := make([]*Session, 0, len(n.sessions))
	for _, c := range n.sessions {
		out = append(out, c)
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b *Session) int { return cmp.Compare(a.id, b.id) })
	return out
}

func (n *Node) totalCommands() int64 {
	total := n.stats.commandsRetired.Load()
	n.mu.Lock()
	for _, c := range n.sessions {
		total += c.commands.Load()
	}
	n.mu.Unlock()
	return total - n.stats.commandsBase.Load()
}

func (n *Node) resetStats() {
	n.stats.commandsBase.Add(n.totalCommands())
	n.stats.connectionsReceived.Store(0)
	n.stats.rejectedConnections.Store(0)
	n.stats.netInput.Store(0)
	n.stats.netOutput.Store(0)
	n.evictedBase.Store(n.evictedKeys() + n.evictedBase.Load())
}

// mode is Redis's redis_mode (INFO) and HELLO's mode.
func (n *Node) mode() string {
	if n.clustered {
		return "cluster"
	}
	return "standalone"
}

func itoa(v int) string { return strconv.Itoa(v) }
