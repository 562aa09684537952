package server

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/node"
)

// Prometheus metrics (--metrics-addr): what INFO shows, in Prometheus's
// names and units. Most are read from the node when scraped (a collector:
// nothing on the command path but the node's own statistics); the disk
// latencies are observed as they happen, by the file system the replicas
// write through (timedFS), which also reports them to the node's latency
// monitor (LATENCY wal-write, wal-fsync, snapshot-fsync).

// promMetrics is a server's registry and the histograms it observes itself.
type promMetrics struct {
	reg *prometheus.Registry

	walWrite, walFsync, snapFsync prometheus.Histogram
	snapshotBytes                 prometheus.Histogram
	walBytes                      prometheus.Counter
	recoverySeconds               prometheus.Gauge
}

// diskSecondsBuckets: 50 µs to about 6.5 s, doubling.
var diskSecondsBuckets = prometheus.ExponentialBuckets(50e-6, 2, 18)

func newMetrics(s *Server) *promMetrics {
	m := &promMetrics{reg: prometheus.NewRegistry()}
	m.walWrite = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keel_wal_append_duration_seconds",
		Help: "Time of one write to the write-ahead log.", Buckets: diskSecondsBuckets})
	m.walFsync = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keel_wal_fsync_duration_seconds",
		Help: "Time of one fsync of the write-ahead log.", Buckets: diskSecondsBuckets})
	m.snapFsync = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keel_snapshot_fsync_duration_seconds",
		Help: "Time of one fsync of a snapshot file.", Buckets: diskSecondsBuckets})
	m.snapshotBytes = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keel_snapshot_size_bytes",
		Help:    "Size of each snapshot file written (taken locally or received from a leader).",
		Buckets: prometheus.ExponentialBuckets(4096, 4, 12)})
	m.walBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "keel_wal_written_bytes_total",
		Help: "Bytes written to the write-ahead log."})
	m.recoverySeconds = prometheus.NewGauge(prometheus.GaugeOpts{Name: "keel_recovery_duration_seconds",
		Help: "How long opening the replicas took at start (snapshot load and log replay)."})
	m.reg.MustRegister(m.walWrite, m.walFsync, m.snapFsync, m.snapshotBytes, m.walBytes, m.recoverySeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		nodeCollector{s})
	return m
}

// MetricsHandler serves the node's metrics in Prometheus's exposition
// format (mount it at /metrics).
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// nodeCollector reads the node when scraped.
type nodeCollector struct{ s *Server }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	dCommands        = desc("keel_commands_total", "Commands run, by command (INFO commandstats calls).", "cmd")
	dCommandsFailed  = desc("keel_commands_failed_total", "Commands that ran and answered an error, by command.", "cmd")
	dCommandsRefused = desc("keel_commands_rejected_total", "Commands refused before running (arity, ACL, redirects, OOM), by command.", "cmd")
	dCommandSeconds  = desc("keel_command_duration_seconds", "Command latency as the client waited for it (queue, replica, commit), by command.", "cmd")
	dErrors          = desc("keel_error_replies_total", "Error replies, by error code (INFO errorstats).", "code")
	dClients         = desc("keel_connected_clients", "Client connections open.")
	dConnsReceived   = desc("keel_connections_received_total", "Client connections accepted.")
	dConnsRejected   = desc("keel_connections_rejected_total", "Client connections refused at maxclients.")
	dHeap            = desc("keel_memory_heap_bytes", "Go heap in use (INFO used_memory).")
	dRSS             = desc("keel_memory_rss_bytes", "Resident set size of the process.")
	dDataset         = desc("keel_dataset_bytes", "What the group's keys cost in the engine's accounting (INFO used_memory_dataset).", "group")
	dKeys            = desc("keel_keys", "Keys in this node's replica of the group.", "group")
	dExpires         = desc("keel_keys_with_expiry", "Keys with a time to live in this node's replica of the group.", "group")
	dExpired         = desc("keel_expired_keys_total", "Keys deleted because their time to live ran out.", "group")
	dEvicted         = desc("keel_evicted_keys_total", "Keys evicted under maxmemory.")
	dTerm            = desc("keel_raft_term", "Raft term of the group.", "group")
	dLeader          = desc("keel_raft_leader_id", "Node id of the group's leader as this node sees it (0: none known).", "group")
	dIsLeader        = desc("keel_raft_is_leader", "1 when this node leads the group.", "group")
	dCommit          = desc("keel_raft_commit_index", "Raft commit index of the group.", "group")
	dApplied         = desc("keel_raft_applied_index", "Raft index applied to this node's replica.", "group")
	dPending         = desc("keel_raft_proposals_pending", "Batches proposed and not yet committed.", "group")
	dLeaderChanges   = desc("keel_raft_leader_changes_total", "Changes of the group's leader seen by this node.", "group")
	dSnapSent        = desc("keel_raft_snapshots_sent_total", "Snapshots followers confirmed installing from this node.", "group")
	dSnapRecvd       = desc("keel_raft_snapshots_received_total", "Snapshots this node installed from a leader.", "group")
	dSnapBytesSent   = desc("keel_snapshot_stream_sent_bytes_total", "Snapshot bytes streamed to followers.", "group")
	dSnapBytesRecvd  = desc("keel_snapshot_stream_received_bytes_total", "Snapshot bytes received from a leader.", "group")
	dLogBytes        = desc("keel_wal_bytes_since_snapshot", "Log bytes written since the last snapshot.", "group")
	dDiskFull        = desc("keel_disk_full", "1 while the group's disk is full (writes refused).", "group")
)

func (nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dCommands, dCommandsFailed, dCommandsRefused, dCommandSeconds, dErrors, dClients,
		dConnsReceived, dConnsRejected, dHeap, dRSS, dDataset, dKeys, dExpires, dExpired, dEvicted, dTerm, dLeader, dIsLeader,
		dCommit, dApplied, dPending, dLeaderChanges, dSnapSent, dSnapRecvd, dSnapBytesSent, dSnapBytesRecvd, dLogBytes, dDiskFull} {
		ch <- d
	}
}

// commandBucketsSeconds are the command histogram's bounds: 2^k µs.
var commandBucketsSeconds = func() []float64 {
	b := make([]float64, node.LatencyBucketsMax)
	for k := range b {
		b[k] = math.Ldexp(1e-6, k)
	}
	return b
}()

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.s.node
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, cs := range n.CommandStats() {
		name := strings.ReplaceAll(cs.Name, "|", " ")
		counter(dCommands, float64(cs.Calls), name)
		counter(dCommandsFailed, float64(cs.Failed), name)
		counter(dCommandsRefused, float64(cs.Rejected), name)
		if cs.Tracked > 0 {
			buckets := make(map[float64]uint64, len(commandBucketsSeconds))
			for k, b := range commandBucketsSeconds {
				buckets[b] = cs.Buckets[k]
			}
			ch <- prometheus.MustNewConstHistogram(dCommandSeconds, cs.Tracked, float64(cs.Nanos)/1e9, buckets, name)
		}
	}
	codes, counts, _ := n.ErrorStats()
	for i, code := range codes {
		counter(dErrors, float64(counts[i]), code)
	}
	open, received, rejected := n.ConnectionStats()
	gauge(dClients, float64(open))
	counter(dConnsReceived, float64(received))
	counter(dConnsRejected, float64(rejected))
	h := n.Host()
	gauge(dHeap, float64(h.HeapAlloc))
	gauge(dRSS, float64(h.RSS))
	counter(dEvicted, float64(n.EvictedKeys()))
	self := n.ID()
	for _, g := range n.GroupMetrics() {
		if !g.Hosted {
			continue
		}
		id := strconv.FormatUint(g.ID, 10)
		gauge(dDataset, float64(g.UsedBytes), id)
		gauge(dKeys, float64(g.Keys), id)
		gauge(dExpires, float64(g.Expires), id)
		counter(dExpired, float64(g.ExpiredKeys), id)
		r := g.Raft
		gauge(dTerm, float64(r.Term), id)
		gauge(dLeader, float64(r.Leader), id)
		isLeader := 0.0
		if r.Role == "leader" && (r.Leader == self || !n.Clustered()) {
			isLeader = 1
		}
		gauge(dIsLeader, isLeader, id)
		gauge(dCommit, float64(r.Commit), id)
		gauge(dApplied, float64(r.Applied), id)
		gauge(dPending, float64(r.QueuedBatches), id)
		counter(dLeaderChanges, float64(g.LeaderChanges), id)
		counter(dSnapSent, float64(r.SnapshotsSent), id)
		counter(dSnapRecvd, float64(r.SnapshotsReceived), id)
		counter(dSnapBytesSent, float64(r.Snapshot.BytesSent), id)
		counter(dSnapBytesRecvd, float64(r.Snapshot.BytesReceived), id)
		gauge(dLogBytes, float64(g.Persistence.LogBytesSinceSave), id)
		full := 0.0
		if g.Persistence.DiskFull {
			full = 1
		}
		gauge(dDiskFull, full, id)
	}
}

// timedFS is the replicas' file system with its write-ahead log and
// snapshot files timed: writes and fsyncs go to the histograms and to
// the node's latency monitor.
type timedFS struct {
	disk.FS
	s *Server
}

func (fs timedFS) wrap(name string, f disk.File, err error) (disk.File, error) {
	if err != nil {
		return f, err
	}
	switch {
	case strings.HasSuffix(name, ".log"):
		return &timedFile{File: f, s: fs.s, wal: true}, nil
	case strings.Contains(name, ".snap"):
		return &timedFile{File: f, s: fs.s}, nil
	}
	return f, nil
}

func (fs timedFS) Create(name string) (disk.File, error) {
	f, err := fs.FS.Create(name)
	return fs.wrap(name, f, err)
}

func (fs timedFS) OpenAppend(name string) (disk.File, error) {
	f, err := fs.FS.OpenAppend(name)
	return fs.wrap(name, f, err)
}

type timedFile struct {
	disk.File
	s       *Server
	wal     bool
	written int64
}

func (f *timedFile) Write(p []byte) (int, error) {
	if !f.wal {
		n, err := f.File.Write(p)
		f.written += int64(n)
		return n, err
	}
	start := time.Now()
	n, err := f.File.Write(p)
	d := time.Since(start)
	m := f.s.metrics
	m.walWrite.Observe(d.Seconds())
	m.walBytes.Add(float64(n))
	f.s.node.NoteLatency("wal-write", int64(d))
	return n, err
}

func (f *timedFile) Sync() error {
	start := time.Now()
	err := f.File.Sync()
	d := time.Since(start)
	m := f.s.metrics
	if f.wal {
		m.walFsync.Observe(d.Seconds())
		f.s.node.NoteLatency("wal-fsync", int64(d))
	} else {
		m.snapFsync.Observe(d.Seconds())
		f.s.node.NoteLatency("snapshot-fsync", int64(d))
	}
	return err
}

func (f *timedFile) Close() error {
	if !f.wal && f.written > 0 {
		f.s.metrics.snapshotBytes.Observe(float64(f.written))
		f.written = 0
	}
	return f.File.Close()
}
