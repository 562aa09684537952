package server

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/keel-db/keel/cluster"
)

// infoSections in the order INFO prints them.
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "cluster", "keyspace"}

// Optional views of the keyspace. The engine grows these; INFO reports
// what it offers.
type (
	expiresCounter interface{ Expires() int }
	usedBytes      interface{ UsedBytes() int64 }
)

type keyspaceInfo struct {
	keys, expires  int
	usedBytes      int64
	haveUsed       bool
	lastSaveMillis int64
	replicaErr     error
	recovery       cluster.RecoveryStats
	persistence    cluster.PersistenceStats
	group          cluster.GroupStats
}

func (s *Server) keyspace(sh *shard, w *waiter) keyspaceInfo {
	var ki keyspaceInfo
	sh.do(w, func(r *cluster.Replica) {
		ki.lastSaveMillis, ki.replicaErr, ki.recovery = r.LastSaveMillis(), r.Err(), r.Recovery()
		ki.persistence = r.Persistence()
		ki.group = r.GroupStats()
		db := r.DB()
		ki.keys = db.Len()
		var anyDB any = db
		if e, ok := anyDB.(expiresCounter); ok {
			ki.expires = e.Expires()
		}
		if u, ok := anyDB.(usedBytes); ok {
			ki.usedBytes, ki.haveUsed = u.UsedBytes(), true
		}
	})
	return ki
}

func cmdInfo(c *client, argv [][]byte) {
	want := map[string]bool{}
	all := len(argv) == 1
	for _, a := range argv[1:] {
		s := strings.ToLower(string(a))
		switch s {
		case "all", "everything", "default":
			all = true
		default:
			want[s] = true
		}
	}
	c.out.WriteVerbatim(c.srv.info(c, all, want), "txt")
}

// keyspaceOf reads the keyspace facts INFO reports. With several replica
// groups, keys and expires are summed over the groups this node leads
// (group 1 when it leads none), as a Redis Cluster master counts its own
// slots; the rest describes group 1's replica.
func (c *client) keyspaceOf() keyspaceInfo {
	ki := c.srv.keyspace(c.srv.shard, c.wait)
	if len(c.srv.groups) == 1 {
		return ki
	}
	ki.keys, ki.expires = 0, 0
	for _, gi := range c.srv.fanoutTargets(fanLed) {
		k := c.srv.keyspace(c.srv.groups[gi].shard, c.waiterFor(gi))
		ki.keys += k.keys
		ki.expires += k.expires
	}
	return ki
}

func (s *Server) info(c *client, all bool, want map[string]bool) string {
	var b strings.Builder
	var ki *keyspaceInfo
	ks := func() keyspaceInfo {
		if ki == nil {
			v := c.keyspaceOf()
			ki = &v
		}
		return *ki
	}
	for _, sec := range infoSections {
		if !all && !want[sec] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + strings.ToUpper(sec[:1]) + sec[1:] + "\r\n")
		switch sec {
		case "server":
			s.infoServer(&b)
		case "clients":
			s.infoClients(&b)
		case "memory":
			s.infoMemory(&b, ks())
		case "persistence":
			s.infoPersistence(&b, ks())
		case "stats":
			s.infoStats(&b)
		case "replication":
			s.infoReplication(&b, ks())
		case "cpu":
			s.infoCPU(&b)
		case "cluster":
			kv(&b, "cluster_enabled", boolInt(s.node != nil))
			if s.node != nil && len(s.groups) > 1 {
				kv(&b, "replica_groups", len(s.groups))
				led := s.node.ledGroups()
				kv(&b, "replica_groups_led", len(led))
				var ids []string
				for _, g := range led {
					ids = append(ids, strconv.FormatUint(g, 10))
				}
				kv(&b, "replica_groups_led_ids", strings.Join(ids, ","))
			}
		case "keyspace":
			if k := ks(); k.keys > 0 {
				fmt.Fprintf(&b, "db0:keys=%d,expires=%d,avg_ttl=0\r\n", k.keys, k.expires)
			}
		}
	}
	return b.String()
}

func kv(b *strings.Builder, k string, v any) {
	b.WriteString(k)
	b.WriteByte(':')
	switch v := v.(type) {
	case string:
		b.WriteString(v)
	case int:
		b.WriteString(strconv.Itoa(v))
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case uint64:
		b.WriteString(strconv.FormatUint(v, 10))
	default:
		fmt.Fprint(b, v)
	}
	b.WriteString("\r\n")
}

func (s *Server) infoServer(b *strings.Builder) {
	up := time.Since(s.started)
	exe, _ := os.Executable()
	kv(b, "redis_version", RedisVersion)
	kv(b, "keel_version", Version)
	kv(b, "redis_mode", s.mode())
	kv(b, "os", runtime.GOOS+" "+runtime.GOARCH)
	kv(b, "arch_bits", strconv.Itoa(strconv.IntSize))
	kv(b, "multiplexing_api", "go netpoll")
	kv(b, "go_version", runtime.Version())
	kv(b, "process_id", os.Getpid())
	kv(b, "run_id", s.runID)
	kv(b, "tcp_port", s.cfg.Port)
	kv(b, "server_time_usec", s.clock.Now()/1e3)
	kv(b, "uptime_in_seconds", int64(up/time.Second))
	kv(b, "uptime_in_days", int64(up/(24*time.Hour)))
	kv(b, "hz", int(time.Second/tickInterval))
	kv(b, "executable", exe)
	kv(b, "config_file", s.cfg.ConfigFile)
}

// mode is Redis's redis_mode (INFO) and HELLO's mode.
func (s *Server) mode() string {
	if s.node != nil {
		return "cluster"
	}
	return "standalone"
}

// infoReplication is Redis's replication section, the group's Raft leader
// playing the master; raft_* lines are keel's own.
func (s *Server) infoReplication(b *strings.Builder, ki keyspaceInfo) {
	g := ki.group
	if s.node == nil || g.Role == "leader" || len(s.groups) > 1 && len(s.node.ledGroups()) > 0 {
		kv(b, "role", "master")
		kv(b, "connected_slaves", 0)
	} else {
		kv(b, "role", "slave")
		host, port, status := "", 0, "down"
		for _, n := range s.node.Nodes() {
			if n.ID == g.Leader {
				host, port, status = n.Host, n.Port, "up"
			}
		}
		kv(b, "master_host", host)
		kv(b, "master_port", port)
		kv(b, "master_link_status", status)
	}
	kv(b, "master_failover_state", "no-failover")
	kv(b, "master_replid", s.runID)
	kv(b, "master_repl_offset", g.Applied)
	if s.node == nil {
		return
	}
	kv(b, "raft_node_id", s.node.id)
	kv(b, "raft_role", g.Role)
	kv(b, "raft_leader", g.Leader)
	kv(b, "raft_term", g.Term)
	kv(b, "raft_commit_index", g.Commit)
	kv(b, "raft_snapshots_sent", g.SnapshotsSent)
	kv(b, "raft_snapshots_received", g.SnapshotsReceived)
	kv(b, "raft_leadership_lost", g.LeadershipLost)
	kv(b, "raft_queued_batches", g.QueuedBatches)
}

func (s *Server) infoClients(b *strings.Builder) {
	kv(b, "connected_clients", s.nclients.Load())
	kv(b, "maxclients", s.maxClients.Load())
	kv(b, "blocked_clients", 0)
	kv(b, "pubsub_clients", 0)
}

// heapSamples are the runtime/metrics the ticker reads once a second for
// used_memory_peak. runtime.ReadMemStats would stop the world for it (it
// showed in the scheduler-latency trace of the 10M-key GET latency runs,
// docs/performance.md); reading metrics does not.
var heapSamples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"}, // HeapAlloc: live and not yet swept
	{Name: "/gc/heap/live:bytes"},                // live as of the last GC's mark
}

// readHeap is HeapAlloc and the heap the last GC found live, without
// stopping the world.
func readHeap() (alloc, live uint64) {
	samples := make([]metrics.Sample, len(heapSamples))
	copy(samples, heapSamples)
	metrics.Read(samples)
	if samples[0].Value.Kind() == metrics.KindUint64 {
		alloc = samples[0].Value.Uint64()
	}
	if samples[1].Value.Kind() == metrics.KindUint64 {
		live = samples[1].Value.Uint64()
	}
	return alloc, live
}

// notePeakMemory samples the heap for used_memory_peak, once a second.
func (s *Server) notePeakMemory() {
	alloc, _ := readHeap()
	if alloc > s.peakAlloc.Load() {
		s.peakAlloc.Store(alloc)
	}
}

func human(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

func (s *Server) infoMemory(b *strings.Builder, ki keyspaceInfo) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	used := ms.HeapAlloc
	if ms.HeapAlloc > s.peakAlloc.Load() {
		s.peakAlloc.Store(ms.HeapAlloc)
	}
	rss := rssBytes()
	kv(b, "used_memory", used)
	kv(b, "used_memory_human", human(used))
	kv(b, "used_memory_rss", rss)
	kv(b, "used_memory_rss_human", human(rss))
	kv(b, "used_memory_peak", s.peakAlloc.Load())
	kv(b, "used_memory_peak_human", human(s.peakAlloc.Load()))
	// used_memory is Go's HeapAlloc, which counts garbage not yet swept;
	// used_memory_live is what the last GC found reachable.
	if _, live := readHeap(); live > 0 {
		kv(b, "used_memory_live", live)
		kv(b, "used_memory_live_human", human(live))
	}
	if ki.haveUsed {
		kv(b, "used_memory_dataset", ki.usedBytes)
	}
	kv(b, "total_system_memory", totalSystemMemory())
	kv(b, "go_heap_sys", ms.HeapSys)
	kv(b, "go_num_gc", uint64(ms.NumGC))
	kv(b, "go_gc_pause_total_ns", ms.PauseTotalNs)
	kv(b, "maxmemory", s.cfg.MaxMemory)
	kv(b, "maxmemory_human", human(uint64(s.cfg.MaxMemory)))
	kv(b, "maxmemory_policy", "noeviction")
	kv(b, "mem_allocator", "go")
	if used > 0 && rss > 0 {
		kv(b, "mem_fragmentation_ratio", fmt.Sprintf("%.2f", float64(rss)/float64(used)))
	}
}

func (s *Server) infoPersistence(b *strings.Builder, ki keyspaceInfo) {
	kv(b, "loading", 0)
	aof := 0
	if s.cfg.AppendOnly {
		aof = 1
	}
	kv(b, "aof_enabled", aof)
	status := "ok"
	if ki.replicaErr != nil {
		// The replica stopped accepting writes after a disk fault.
		status = "err"
	}
	kv(b, "aof_last_write_status", status)
	if ki.replicaErr != nil {
		kv(b, "aof_last_error", strings.ReplaceAll(ki.replicaErr.Error(), "\n", " "))
	}
	p := ki.persistence
	kv(b, "rdb_changes_since_last_save", p.ChangesSinceLastSave)
	kv(b, "rdb_bgsave_in_progress", boolInt(p.BgsaveInProgress))
	kv(b, "rdb_last_save_time", ki.lastSaveMillis/1000)
	bgStatus := "ok"
	if !p.LastBgsaveOK {
		bgStatus = "err"
	}
	kv(b, "rdb_last_bgsave_status", bgStatus)
	kv(b, "aof_disk_full", boolInt(p.DiskFull))
	kv(b, "raft_applied_index", p.AppliedIndex)
	kv(b, "snapshot_index", p.SnapshotIndex)
	kv(b, "wal_segments", p.WALSegments)
	kv(b, "wal_bytes_since_snapshot", p.LogBytesSinceSave)
	kv(b, "appendfsync", s.cfg.AppendFsync)
	kv(b, "dir", s.cfg.Dir)
	kv(b, "recovery_snapshot_keys_loaded", ki.recovery.KeysLoaded)
	kv(b, "recovery_log_entries_replayed", ki.recovery.EntriesReplayed)
	kv(b, "recovery_truncated_bytes", ki.recovery.TruncatedBytes)
}

func (s *Server) infoStats(b *strings.Builder) {
	in, out := s.stats.netInput.Load(), s.stats.netOutput.Load()
	for _, c := range s.clientList() {
		in += c.bytesIn.Load()
		out += c.bytesOut.Load()
	}
	kv(b, "total_connections_received", s.stats.connectionsReceived.Load())
	kv(b, "total_commands_processed", s.totalCommands())
	kv(b, "total_net_input_bytes", in)
	kv(b, "total_net_output_bytes", out)
	kv(b, "rejected_connections", s.stats.rejectedConnections.Load())
	kv(b, "replica_reopens", s.stats.replicaReopens.Load())
	s.infoPubsub(b) // pubsub.go
}

func (s *Server) infoCPU(b *strings.Builder) {
	user, sys := cpuTimes()
	kv(b, "used_cpu_sys", fmt.Sprintf("%.6f", sys.Seconds()))
	kv(b, "used_cpu_user", fmt.Sprintf("%.6f", user.Seconds()))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
