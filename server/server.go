package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	stdnet "net"
	"os"

	"sync"
	"sync/atomic"
	"time"

	cerrors "github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/node"
	"github.com/keel-db/keel/resp"
	"github.com/keel-db/keel/seam"
	"github.com/keel-db/keel/transport"
	"github.com/keel-db/keel/udf"
)

// Version is keel's own version, reported as keel_version in INFO.
const Version = node.Version

const (
	// MaxClientsDefault is Redis's maxclients default.
	MaxClientsDefault = node.MaxClientsDefault
	// GroupsMax bounds --groups.
	GroupsMax = node.GroupsMax
	// tickInterval paces node.Tick: elections, active expiry and the
	// everysec fsync. Redis's hz 10.
	tickInterval = 100 * time.Millisecond
	// acceptBackoffMax bounds the pause after a failing accept (EMFILE).
	acceptBackoffMax = time.Second
	// peerInboxMessagesMax bounds the peer messages received but not yet
	// stepped, per group; a receiving goroutine that finds it full waits
	// (TCP then pushes back on the sender, whose bounded queue drops).
	peerInboxMessagesMax = 4096
	// stepBatchMessagesMax bounds how many peer messages one turn of a
	// group steps, so that client batches interleave with a burst.
	stepBatchMessagesMax = 256
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
	MaxMemory   int64 // maxmemory; Memory the policy and its knobs
	// OwnsProcess: this server is the process's only one (keel server),
	// so the Go runtime's memory limit may follow maxmemory (memory.go).
	// Tests that run several servers in one process leave it off.
	OwnsProcess bool
	Memory      MemoryPolicy
	MaxClients  int
	Limits      resp.Limits
	ConfigFile  string
	// PubSubLimit is client-output-buffer-limit pubsub; the default when
	// zero.
	PubSubLimit node.PubSubLimit
	// NotifyKeyspaceEvents is notify-keyspace-events.
	NotifyKeyspaceEvents string
	// NormalLimit is client-output-buffer-limit's normal class; Timeout
	// closes idle connections (0: never).
	NormalLimit node.BufferLimit
	Timeout     time.Duration
	// EventLoops is how many event loops serve plain-TCP clients
	// (loop_linux.go, --event-loops): 0 is eventLoopsAuto; negative
	// serves every client from a goroutine of its own.
	EventLoops int
	// BusyReplyThreshold and FunctionTimeLimit are busy-reply-threshold
	// and function-time-limit (node/functions.go; defaults when 0).
	BusyReplyThreshold time.Duration
	FunctionTimeLimit  time.Duration
	// ACLFile is aclfile; Users are the user directives (node.Config).
	ACLFile string
	Users   []string
	// Settings are node settings by CONFIG SET's names, applied at start
	// (node.Config.Settings).
	Settings [][2]string

	// Cluster mode (--node-id, --peers, --groups, --replicas, --join):
	// NodeID is this node's id among Peers (each peer's address is its
	// client port; peer traffic uses the port + 10000 on PeerBind, the
	// node's own host when empty). Empty Peers: a single node. Replicas
	// below len(Peers) places each group on that many nodes
	// (node/placement.go); the node opens only the groups it hosts.
	NodeID uint64
	Peers  []cluster.TopoNode
	Groups int
	// MaxGroups is how many groups splits may grow the cluster to
	// (--groups-max; Groups when 0): the server keeps a queue, ticker
	// and stepper for each from the start (node.Config.MaxGroups).
	MaxGroups int
	Replicas  int
	// NodeDeadAfter is --node-dead-after (node.Config.NodeDeadAfter).
	NodeDeadAfter time.Duration
	Join          bool
	PeerBind      string
	// The cluster bus is mutual TLS with BusTLS (--tls-cluster yes), or
	// plaintext when BusInsecure says so by name (--cluster-insecure
	// yes); one of them is required in cluster mode.
	BusTLS      *transport.TLS
	BusInsecure bool

	// ReplicaOptions gives group g's replica options (file system, data
	// directory, fsync policy, randomness, function limits); the node adds
	// its membership and routing hooks, opens it, and reopens it with the
	// same options after a disk failure. Open needs it; New takes an
	// opened replica instead.
	ReplicaOptions func(g uint64) cluster.Options

	// Logf writes one log line. Nil discards.
	Logf func(format string, args ...any)
	// Clock is the production wall clock unless a test supplies another.
	Clock seam.Clock
}

// Server is the production runtime of a keel node: it listens, runs one
// goroutine per connection (parsing with resp.Reader, running the batch
// through the node's Session, writing the replies with one write), an
// execQueue per replica group, a ticker and a peer stepper per group,
// the peer transport, background snapshot and fsync jobs, and a writer
// goroutine per subscriber. Everything it decides is the node's
// (node.Node); this package only carries it out.
type Server struct {
	cfg     Config
	node    *node.Node
	groups  []*group // groups[g-1] runs group g
	clock   seam.Clock
	started time.Time

	// loops serve plain-TCP clients (loop_linux.go); none when
	// Config.EventLoops is negative. nextLoop picks the loop of the next
	// connection, in turn.
	loops    []*eventLoop
	nextLoop atomic.Uint32

	mu        sync.Mutex
	conns     map[*conn]struct{}
	listeners []stdnet.Listener
	closing   bool
	connWG    sync.WaitGroup

	peakAlloc atomic.Uint64
	releasing atomic.Bool // conn.go: releaseMemory is running

	// The runtime's memory limit following maxmemory (memory.go).
	baseMemory  int64        // the runtime's memory when the server opened
	ownMemLimit bool         // GOMEMLIMIT given: leave the limit alone
	limitFor    atomic.Int64 // the maxmemory the limit was set for; -1 before the first

	jobs  sync.WaitGroup
	fatal atomic.Pointer[error]

	tr atomic.Pointer[transport.TCP]

	// guards[g-1] sees and stops group g's function calls (functions.go).
	guards      []*udf.Guard
	watcherDone chan struct{}

	pause   pauseGate    // CLIENT PAUSE's waiters (pause.go)
	metrics *promMetrics // metrics.go

	shutdown     chan struct{}
	shutdownOnce sync.Once
	closeOnce    sync.Once
	closeErr     error
}

// group is one replica group's runtime: the queue owning access to it,
// its background work, and the goroutines that tick it and step its peer
// messages.
type group struct {
	id          uint64
	queue       *execQueue
	maint       maintenance
	inbox       chan peerMsg
	tickerDone  chan struct{}
	stepperDone chan struct{} // cluster mode: stepPeers returned
}

type peerMsg struct {
	from uint64
	data []byte
}

// Open opens every replica group of the node the configuration describes
// (with cfg.ReplicaOptions) and returns the server, which owns them. In
// cluster mode it also starts the peer transport.
func Open(cfg Config) (*Server, error) {
	if cfg.ReplicaOptions == nil {
		return nil, cerrors.New("server: Open needs Config.ReplicaOptions")
	}
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := s.node.OpenGroups(s.replicaOptions); err != nil {
		return nil, err
	}
	s.metrics.recoverySeconds.Set(time.Since(start).Seconds())
	if err := s.start(); err != nil {
		s.closeReplicas()
		return nil, err
	}
	return s, nil
}

// replicaOptions are group g's replica options before the node makes
// them its own (node.GroupOptions): at start and when a move opens a
// replica here (OpenGroup).
func (s *Server) replicaOptions(g uint64) cluster.Options {
	o := s.cfg.ReplicaOptions(g)
	if o.FS != nil {
		o.FS = timedFS{FS: o.FS, s: s} // metrics.go
	}
	return s.withFunctionGuard(g, o)
}

// New returns a single-node server over an opened replica, which it owns
// from now on (tests and benchmarks). It cannot be reopened after a disk
// failure: the replica then refuses writes and serves reads.
func New(cfg Config, replica *cluster.Replica) *Server {
	cfg.Peers, cfg.Groups = nil, 1
	s, err := newServer(cfg)
	if err == nil {
		err = s.node.Adopt([]*cluster.Replica{replica})
	}
	if err == nil {
		err = s.start()
	}
	if err != nil {
		panic("server: New: " + err.Error())
	}
	return s
}

func newServer(cfg Config) (*Server, error) {
	if cfg.Clock == nil {
		cfg.Clock = seam.Wall{}
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	var id [20]byte
	var secretsSeed [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic("server: OS entropy source failed: " + err.Error())
	}
	if _, err := rand.Read(secretsSeed[:]); err != nil {
		panic("server: OS entropy source failed: " + err.Error())
	}
	s := &Server{
		cfg:      cfg,
		clock:    cfg.Clock,
		started:  time.Now(),
		conns:    map[*conn]struct{}{},
		shutdown: make(chan struct{}),

		baseMemory:  runtimeMemory(),
		ownMemLimit: !cfg.OwnsProcess || operatorMemLimit(),
	}
	s.limitFor.Store(-1)
	for range max(cfg.Groups, cfg.MaxGroups, 1) {
		s.guards = append(s.guards, udf.NewGuard(cfg.Clock))
	}
	n, err := node.New(node.Config{
		ID: cfg.NodeID, Peers: cfg.Peers, Groups: cfg.Groups, MaxGroups: cfg.MaxGroups, Replicas: cfg.Replicas, Join: cfg.Join,
		Bind: cfg.Bind, Port: cfg.Port, Dir: cfg.Dir, AppendOnly: cfg.AppendOnly, AppendFsync: cfg.AppendFsync,
		RequirePass: cfg.RequirePass, MaxMemory: cfg.MaxMemory, MaxMemoryPolicy: cfg.Memory.Policy,
		MaxMemorySamples: cfg.Memory.Samples, MaxMemoryEvictionTenacity: cfg.Memory.Tenacity,
		LFULogFactor: cfg.Memory.LFULogFactor, LFUDecayTime: cfg.Memory.LFUDecayTime, MaxClients: cfg.MaxClients, Limits: cfg.Limits,
		ConfigFile: cfg.ConfigFile, PubSubLimit: cfg.PubSubLimit, NotifyKeyspaceEvents: cfg.NotifyKeyspaceEvents,
		NormalLimit: cfg.NormalLimit, Timeout: cfg.Timeout,
		BusyReplyThreshold: cfg.BusyReplyThreshold, FunctionTimeLimit: cfg.FunctionTimeLimit, KillFunctions: s.killFunctions,
		TickHz: int(time.Second / tickInterval), PeerPings: true, NodeDeadAfter: cfg.NodeDeadAfter,
		ACLFile: cfg.ACLFile, Users: cfg.Users, FS: disk.OS(), Settings: cfg.Settings,
		Clock: cfg.Clock, Rand: seam.NewRand(), RunID: hex.EncodeToString(id[:]),
		// ACL GENPASS passwords: a generator no other output can predict.
		Secrets: mrand.NewChaCha8(secretsSeed),
	}, nodeRuntime{s})
	if err != nil {
		return nil, err
	}
	s.node = n
	s.metrics = newMetrics(s)
	n.OnPeer(s.setPeer)
	n.OnPause(s.pause.changed)
	return s, nil
}

// start builds each group's runtime and starts the transport, tickers and
// steppers, once the node has its replicas.
func (s *Server) start() error {
	for g := uint64(1); g <= uint64(s.node.Groups()); g++ {
		gr := &group{id: g, queue: newExecQueue(s.node, g, s.clock), tickerDone: make(chan struct{})}
		if !s.node.Hosts(g) && !s.node.Placed() {
			close(gr.tickerDone)
			s.groups = append(s.groups, gr)
			continue
		}
		// Placement: a group without a replica here still gets its
		// queue (requests routed to it are answered -MOVED inside it),
		// ticker (node.Tick does nothing for it, but group 1's carries
		// the node's own tick) and stepper: a move may open its replica
		// here at any time (OpenGroup).
		if s.node.Clustered() {
			gr.inbox = make(chan peerMsg, peerInboxMessagesMax)
			gr.stepperDone = make(chan struct{})
		}
		s.groups = append(s.groups, gr)
	}
	if s.node.Clustered() {
		if err := s.listenPeers(); err != nil {
			return err
		}
	}
	for _, g := range s.groups {
		if !s.node.Hosts(g.id) && !s.node.Placed() {
			continue
		}
		go s.tick(g)
		if g.inbox != nil {
			go s.stepPeers(g)
		}
	}
	if err := s.startLoops(); err != nil {
		return err
	}
	s.watcherDone = make(chan struct{})
	go func() {
		defer close(s.watcherDone)
		s.watchFunctions()
	}()
	return nil
}

// eventLoopsAuto is how many event loops Config.EventLoops 0 starts:
// one, as Redis has. A node's requests meet in its group's queue, so a
// second loop mostly waits for the first there: on two cores, two loops
// served 0.7× the requests of one at -P 1 (docs/performance.md, "Event
// loops").
const eventLoopsAuto = 1

// startLoops starts the event loops. A replicated group's batches are
// answered later, from whichever goroutine runs the group when they
// commit (eventLoop.complete), so cluster mode has loops too.
func (s *Server) startLoops() error {
	n := s.cfg.EventLoops
	if n == 0 {
		n = eventLoopsAuto
	}
	if n <= 0 || !loopsSupported {
		return nil
	}
	for _, g := range s.groups {
		g.queue.loops = true
	}
	for range n {
		l, err := newEventLoop(s)
		if err != nil {
			for _, l := range s.loops {
				l.close()
			}
			s.loops = nil
			return err
		}
		s.loops = append(s.loops, l)
		go l.run()
	}
	return nil
}

// Node is the node this server runs (tests).
func (s *Server) Node() *node.Node { return s.node }

// ShutdownRequested is closed when a client sent SHUTDOWN or Shutdown was
// called; Serve then returns.
func (s *Server) ShutdownRequested() <-chan struct{} { return s.shutdown }

// Shutdown asks Serve to stop, and stops any function call in progress
// (it would hold its group); it does not wait.
func (s *Server) Shutdown() {
	s.shutdownOnce.Do(func() { close(s.shutdown) })
	s.stopFunctions()
}

// do runs fn with group g held exclusively, from a goroutine that is not
// a connection's.
func (s *Server) do(g uint64, fn func()) {
	q := s.groups[g-1].queue
	q.do(q.newWaiter(), fn)
}

// tick drives group g: node.Tick every tickInterval, and once a second
// the heap sample for INFO's used_memory_peak.
func (s *Server) tick(g *group) {
	defer close(g.tickerDone)
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	w := g.queue.newWaiter()
	tickFn := func() { s.node.Tick(g.id, s.clock.Now()) }
	samplesPeak := g.id == 1
	for n := 1; ; n++ {
		select {
		case <-s.shutdown:
			return
		case <-t.C:
			g.queue.do(w, tickFn)
			if samplesPeak {
				s.followMaxMemory()
				if n%int(time.Second/tickInterval) == 0 {
					s.notePeakMemory()
				}
			}
		}
	}
}

// Serve accepts connections on ln until Shutdown (or a SHUTDOWN command),
// then closes every connection and the replicas. It returns nil after a
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
		nc, err := ln.Accept()
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
		if int64(s.node.Sessions()) >= s.node.MaxClients() {
			s.node.NoteConnection(true)
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			nc.Write([]byte("-ERR max number of clients reached\r\n"))
			nc.Close()
			continue
		}
		s.node.NoteConnection(false)
		c := s.newConn(nc)
		if c == nil {
			nc.Close()
			return nil // closing
		}
		if len(s.loops) > 0 && s.loops[s.nextLoop.Add(1)%uint32(len(s.loops))].enroll(c) {
			continue
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

// Close stops accepting, disconnects every client, stops the tickers and
// closes the replicas (flushing their logs). It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.Shutdown()
		s.mu.Lock()
		s.closing = true
		for _, ln := range s.listeners {
			ln.Close()
		}
		for c := range s.conns {
			c.kill()
		}
		s.mu.Unlock()
		// Batches waiting for a commit that no tick or peer message will
		// bring any more are given up (cluster mode).
		for _, g := range s.groups {
			g.queue.close()
		}
		s.connWG.Wait()
		for _, l := range s.loops {
			l.close()
		}
		if s.watcherDone != nil {
			<-s.watcherDone
		}
		for _, g := range s.groups {
			<-g.tickerDone
			if g.stepperDone != nil {
				<-g.stepperDone
			}
		}
		if tr := s.tr.Load(); tr != nil {
			if err := tr.Close(); err != nil {
				s.cfg.Logf("closing the peer transport: %v", err)
			}
		}
		s.jobs.Wait() // a background save finishes (and is installed) first
		for _, g := range s.groups {
			if d := s.node.Dead(g.id); d != "" && s.fatal.Load() == nil {
				ferr := cerrors.Newf("group %d: %s", g.id, d)
				s.fatal.Store(&ferr)
			}
			s.do(g.id, func() {
				if err := s.node.CloseGroup(g.id, s.clock.Now()); err != nil {
					s.cfg.Logf("%v", err)
					if s.closeErr == nil {
						s.closeErr = err
					}
				}
			})
		}
	})
	return s.closeErr
}

// closeReplicas closes the replicas of a server that never started.
func (s *Server) closeReplicas() {
	for g := uint64(1); g <= uint64(s.node.Groups()); g++ {
		if r := s.node.Replica(g); r != nil {
			r.Close()
		}
	}
}

func (s *Server) newConn(nc stdnet.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	return c
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

func (s *Server) logf(format string, args ...any) { s.cfg.Logf(format, args...) }
