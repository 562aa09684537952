package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	stdnet "net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-db/keel/resp"

	"github.com/keel-db/keel/cluster"
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
	// tickInterval paces Replica.Tick: active expiry and the everysec
	// fsync. Redis's hz 10.
	tickInterval = 100 * time.Millisecond
	// acceptBackoffMax bounds the pause after a failing accept (EMFILE).
	acceptBackoffMax = time.Second
)

// Config is the server's configuration, as set by flags and the config
// file. Fields named after redis.conf directives mean the same.
type Config struct {
	Bind        string
	Port        int
	Dir         string
	AppendOnly  bool
	AppendFsync string // everysec, always, no
	RequirePass string
	MaxMemory   int64 // stored and reported; eviction is not implemented yet
	MaxClients  int
	Limits      resp.Limits
	ConfigFile  string
	// Logf writes one log line. Nil discards.
	Logf func(format string, args ...any)
	// Clock is the production wall clock unless a test supplies another.
	Clock seam.Clock
	// Reopen opens the replica again from disk; the server calls it after
	// the replica reports a fatal disk error. Nil: a failed replica keeps
	// refusing writes and serving reads until restarted by hand.
	Reopen func() (*cluster.Replica, error)
	// ReopenGroup is Reopen for a node hosting several replica groups
	// (NewGroups): it opens group g's replica again. Nil: Reopen serves
	// group 1 and the other groups are not reopened.
	ReopenGroup func(g uint64) (*cluster.Replica, error)
	// PubSubLimit is client-output-buffer-limit pubsub (pubsub.go);
	// DefaultPubSubLimit when zero.
	PubSubLimit PubSubLimit
	// NotifyKeyspaceEvents is notify-keyspace-events (notify.go).
	NotifyKeyspaceEvents string
	// Cluster, when set, makes the server a node of a replicated group
	// speaking Redis Cluster (cluster.go); the replica must have been
	// opened with its ReplicaOptions. The server closes it.
	Cluster *ClusterNode
}

// Server serves the Redis protocol on top of one replica, or in cluster
// mode with --groups > 1 one replica per replica group (groups.go).
type Server struct {
	cfg     Config
	node    *ClusterNode // cluster mode; nil otherwise
	groups  []*group     // groups[g-1] hosts group g; one without sharding
	shard   *shard       // groups[0].shard: the only one without sharding
	clock   seam.Clock
	started time.Time
	runID   string

	maxClients  atomic.Int64
	requirePass atomic.Pointer[string]

	mu        sync.Mutex
	clients   map[uint64]*client
	listeners []stdnet.Listener
	closing   bool

	nextID    atomic.Uint64
	nclients  atomic.Int64
	conns     sync.WaitGroup
	stats     stats
	peakAlloc atomic.Uint64

	jobs  sync.WaitGroup
	fatal atomic.Pointer[error]

	shutdown     chan struct{}
	shutdownOnce sync.Once
	closeOnce    sync.Once
	closeErr     error

	scans groupScans // SCAN across the groups this node leads (fanout.go)

	pubsub *pubsub // pubsub.go, notify.go
	psExt
}

// stats are the counters of INFO stats. Commands are counted per client
// (no shared cache line on the hot path) and folded in here when a client
// leaves.
type stats struct {
	connectionsReceived atomic.Int64
	rejectedConnections atomic.Int64
	commandsRetired     atomic.Int64 // commands of clients that are gone
	commandsBase        atomic.Int64 // subtracted by CONFIG RESETSTAT
	netInput            atomic.Int64
	netOutput           atomic.Int64
	replicaReopens      atomic.Int64 // replicas reopened from disk after a disk failure
}

// group is one replica group this server hosts: the shard owning its
// replica, the replica's background work, and the goroutines that tick it
// and step its peer messages.
type group struct {
	id          uint64 // 1-based
	shard       *shard
	maint       maintenance
	tickerDone  chan struct{}
	stepperDone chan struct{} // cluster mode: stepPeers returned
}

// New returns a server over replica; the server owns the replica from now
// on and closes it in Close.
func New(cfg Config, replica *cluster.Replica) *Server {
	return NewGroups(cfg, []*cluster.Replica{replica})
}

// NewGroups returns a server over one replica per replica group,
// replicas[g-1] being group g's, each opened with Cluster's GroupOptions
// (several groups need cluster mode). The server owns and closes them.
func NewGroups(cfg Config, replicas []*cluster.Replica) *Server {
	if len(replicas) == 0 || len(replicas) > 1 && (cfg.Cluster == nil || cfg.Cluster.Groups() != len(replicas)) {
		panic("server: NewGroups needs one replica per group of the cluster node")
	}
	if cfg.Clock == nil {
		cfg.Clock = seam.Wall{}
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
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	var id [20]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic("server: OS entropy source failed: " + err.Error())
	}
	s := &Server{
		cfg:      cfg,
		node:     cfg.Cluster,
		clock:    cfg.Clock,
		started:  time.Now(),
		runID:    hex.EncodeToString(id[:]),
		clients:  map[uint64]*client{},
		shutdown: make(chan struct{}),
	}
	for i, r := range replicas {
		s.groups = append(s.groups, &group{id: uint64(i + 1), shard: newShard(r, cfg.Clock, cfg.Cluster != nil),
			tickerDone: make(chan struct{})})
	}
	s.shard = s.groups[0].shard
	s.maxClients.Store(int64(cfg.MaxClients))
	s.initPubsub()
	pass := cfg.RequirePass
	s.requirePass.Store(&pass)
	for _, g := range s.groups {
		go s.tick(g)
		if s.node != nil {
			g.stepperDone = make(chan struct{})
			go s.stepPeers(g)
		}
	}
	return s
}

// ShutdownRequested is closed when a client sent SHUTDOWN or Shutdown was
// called; Serve then returns.
func (s *Server) ShutdownRequested() <-chan struct{} { return s.shutdown }

// Shutdown asks Serve to stop; it does not wait.
func (s *Server) Shutdown() { s.shutdownOnce.Do(func() { close(s.shutdown) }) }

// tick drives group g's replica: Tick every tickInterval, then the
// background work it asks for; in cluster mode it also records the
// group's leader and, with several groups, spreads leadership.
func (s *Server) tick(g *group) {
	defer close(g.tickerDone)
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	w := g.shard.newWaiter()
	n := 1
	spreadSeen := 0
	tickFn := func(r *cluster.Replica) {
		if s.node != nil && n%spreadCheckTicks == 0 {
			s.node.spreadLeadership(g.id, r, &spreadSeen)
		}
		r.Tick(s.clock.Now())
		s.afterTick(g, r)
		if s.node != nil {
			s.node.noteLeader(g.id, r.Leader())
		}
	}
	for ; ; n++ {
		select {
		case <-s.shutdown:
			return
		case <-t.C:
			g.shard.do(w, tickFn)
			if g.id == 1 && n%int(time.Second/tickInterval) == 0 {
				s.notePeakMemory()
			}
		}
	}
}

// Serve accepts connections on ln until Shutdown (or a SHUTDOWN command),
// then closes every connection and the replica. It returns nil after a
// requested shutdown.
func (s *Server) Serve(ln stdnet.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return errors.New("server: closed")
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()

	acceptErr := make(chan error, 1)
	go func() { acceptErr <- s.acceptLoop(ln) }()
	select {
	case <-s.shutdown:
		return s.closeAfterShutdown()
	case err := <-acceptErr:
		select {
		case <-s.shutdown:
			return s.closeAfterShutdown()
		default:
		}
		s.Shutdown()
		if cerr := s.Close(); cerr != nil {
			s.cfg.Logf("closing after accept failure: %v", cerr)
		}
		return err
	}
}

// closeAfterShutdown closes the server; a replica that could not be
// reopened after a disk failure makes the shutdown an error.
func (s *Server) closeAfterShutdown() error {
	err := s.Close()
	if f := s.fatal.Load(); f != nil {
		return *f
	}
	return err
}

func (s *Server) acceptLoop(ln stdnet.Listener) error {
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			var ne stdnet.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporaryAccept(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), acceptBackoffMax)
				s.cfg.Logf("accept: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.stats.connectionsReceived.Add(1)
		if s.nclients.Load() >= s.maxClients.Load() {
			s.stats.rejectedConnections.Add(1)
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			conn.Write([]byte("-ERR max number of clients reached\r\n"))
			conn.Close()
			continue
		}
		c := s.newClient(conn)
		if c == nil {
			conn.Close()
			return nil // closing
		}
		go c.serve()
	}
}

func isTemporaryAccept(err error) bool {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return true // EMFILE, ENFILE, ECONNABORTED: the listener itself is fine
	}
	return false
}

// Close stops accepting, disconnects every client, stops the ticker and
// closes the replica (flushing its log). It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.Shutdown()
		s.mu.Lock()
		s.closing = true
		for _, ln := range s.listeners {
			ln.Close()
		}
		for _, c := range s.clients {
			c.conn.Close()
		}
		s.mu.Unlock()
		// Batches waiting for a commit that no tick or peer message will
		// bring any more are given up (cluster mode).
		for _, g := range s.groups {
			g.shard.close()
		}
		s.conns.Wait()
		for _, g := range s.groups {
			<-g.tickerDone
			if s.node != nil {
				<-g.stepperDone
			}
		}
		if s.node != nil {
			if err := s.node.Close(); err != nil {
				s.cfg.Logf("closing the peer transport: %v", err)
			}
		}
		s.jobs.Wait() // a background save finishes (and is installed) first
		for _, g := range s.groups {
			w := g.shard.newWaiter()
			g.shard.do(w, func(r *cluster.Replica) {
				r.Tick(s.clock.Now())
				if err := r.Close(); err != nil {
					s.cfg.Logf("closing the replica of group %d: %v", g.id, err)
					if s.closeErr == nil {
						s.closeErr = err
					}
				}
			})
		}
	})
	return s.closeErr
}

func (s *Server) newClient(conn stdnet.Conn) *client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	c := newClient(s, conn)
	s.clients[c.id] = c
	s.nclients.Add(1)
	s.conns.Add(1)
	return c
}

func (s *Server) removeClient(c *client) {
	s.mu.Lock()
	delete(s.clients, c.id)
	s.mu.Unlock()
	s.stats.commandsRetired.Add(c.commands.Load())
	s.stats.netInput.Add(c.bytesIn.Load())
	s.stats.netOutput.Add(c.bytesOut.Load())
	s.nclients.Add(-1)
	s.conns.Done()
}

// clientList returns the connected clients sorted by id.
func (s *Server) clientList() []*client {
	s.mu.Lock()
	out := make([]*client, 0, len(s.clients))
	for _, c := range s.clients {
		out = append(out, c)
	}
	s.mu.Unlock()
	sortClients(out)
	return out
}

func (s *Server) totalCommands() int64 {
	n := s.stats.commandsRetired.Load()
	s.mu.Lock()
	for _, c := range s.clients {
		n += c.commands.Load()
	}
	s.mu.Unlock()
	return n - s.stats.commandsBase.Load()
}

func (s *Server) resetStats() {
	s.stats.commandsBase.Add(s.totalCommands())
	s.stats.connectionsReceived.Store(0)
	s.stats.rejectedConnections.Store(0)
	s.stats.netInput.Store(0)
	s.stats.netOutput.Store(0)
}

func (s *Server) password() string { return *s.requirePass.Load() }
