package node

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/keel-db/keel/cluster"
)

// infoSections in the order INFO prints them; infoNotDefault are those
// only "all", "everything" or their own name ask for, as in Redis 7.
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu",
	"commandstats", "errorstats", "latencystats", "cluster", "groups", "keyspace"}

// groups is keel's own (ops.go): every replica group as this node's
// replica sees it, for keel cluster status.
var infoNotDefault = map[string]bool{"commandstats": true, "latencystats": true, "groups": true}

// HostInfo is what the runtime knows of its process, for INFO. The
// simulator reports fixed values.
type HostInfo struct {
	ProcessID      int
	Executable     string
	MultiplexAPI   string // multiplexing_api
	OS             string
	GoVersion      string
	StartedNanos   int64 // process start on the node's clock
	HeapAlloc      uint64
	HeapLive       uint64 // what the last GC found reachable; 0 unknown
	HeapPeak       uint64
	HeapSys        uint64
	NumGC          uint64
	GCPauseTotalNs uint64
	RSS            uint64
	SystemMemory   uint64
	CPUUser        float64 // seconds
	CPUSys         float64
}

type keyspaceInfo struct {
	keys, expires  int
	usedBytes      int64
	lastSaveMillis int64
	replicaErr     error
	recovery       cluster.RecoveryStats
	persistence    cluster.PersistenceStats
	group          cluster.GroupStats
}

// keyspace reads group g's figures inside its Exclusive.
func (c *Session) keyspace(g uint64) keyspaceInfo {
	var ki keyspaceInfo
	gr := c.n.group(g)
	c.n.rt.Exclusive(c, g, func() {
		r := gr.replica
		if r == nil {
			return
		}
		ki.lastSaveMillis, ki.replicaErr, ki.recovery = r.LastSaveMillis(), r.Err(), r.Recovery()
		ki.persistence = r.Persistence()
		ki.group = r.GroupStats()
		db := r.DB()
		ki.keys, ki.expires, ki.usedBytes = db.Len(), db.Expires(), db.UsedBytes()
	})
	return ki
}

func cmdInfo(c *Session, argv [][]byte) {
	want := map[string]bool{}
	all, dflt := false, len(argv) == 1
	for _, a := range argv[1:] {
		s := strings.ToLower(string(a))
		switch s {
		case "all", "everything":
			all = true
		case "default":
			dflt = true
		default:
			want[s] = true
		}
	}
	if dflt && !all {
		for _, sec := range infoSections {
			if !infoNotDefault[sec] {
				want[sec] = true
			}
		}
	}
	c.Out.WriteVerbatim(c.n.info(c, all, want), "txt")
}

// keyspaceOf reads the keyspace facts INFO reports. With several replica
// groups, keys and expires are summed over the groups this node leads
// (group 1 when it leads none), as a Redis Cluster master counts its own
// slots; the rest describes group 1's replica.
func (c *Session) keyspaceOf() keyspaceInfo {
	ki := c.keyspace(c.n.firstHosted())
	if len(c.n.groups) == 1 {
		return ki
	}
	ki.keys, ki.expires = 0, 0
	for _, g := range c.n.fanoutTargets(fanLed) {
		k := c.keyspace(g)
		ki.keys += k.keys
		ki.expires += k.expires
	}
	return ki
}

func (n *Node) info(c *Session, all bool, want map[string]bool) string {
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
			n.infoServer(&b)
		case "clients":
			n.infoClients(&b)
		case "memory":
			n.infoMemory(&b, ks())
		case "persistence":
			n.infoPersistence(&b, ks())
		case "stats":
			n.infoStats(&b)
		case "replication":
			n.infoReplication(&b, ks())
		case "cpu":
			n.infoCPU(&b)
		case "commandstats":
			n.infoCommandStats(&b) // cmdstats.go
		case "errorstats":
			n.infoErrorStats(&b)
		case "latencystats":
			n.infoLatencyStats(&b)
		case "groups":
			n.infoGroups(&b) // ops.go
		case "cluster":
			kv(&b, "cluster_enabled", boolInt(n.clustered))
			if n.clustered && len(n.groups) > 1 {
				kv(&b, "replica_groups", n.groupCount())
				led := n.ledGroups()
				kv(&b, "replica_groups_led", len(led))
				var ids []string
				for _, g := range led {
					ids = append(ids, strconv.FormatUint(g, 10))
				}
				kv(&b, "replica_groups_led_ids", strings.Join(ids, ","))
				if n.plc.on { // placement.go
					ids = ids[:0]
					for _, g := range n.HostedGroups() {
						ids = append(ids, strconv.FormatUint(g, 10))
					}
					kv(&b, "replica_groups_hosted_ids", strings.Join(ids, ","))
					// Moves (moves.go): what CLUSTER PLACEMENT details.
					rec := n.MetaRecord()
					moving := n.movesPending(rec)
					kv(&b, "placement_meta_version", strconv.FormatUint(rec.Version, 10))
					kv(&b, "placement_groups_moving", moving)
					kv(&b, "placement_groups_under_replicated", cluster.UnderReplicated(rec))
					kv(&b, "placement_balanced", boolInt(cluster.Balanced(rec) && moving == 0))
				}
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

func (n *Node) infoServer(b *strings.Builder) {
	h := n.rt.Host()
	now := n.clock.Now()
	up := max(now-h.StartedNanos, 0) / 1e9
	kv(b, "redis_version", RedisVersion)
	kv(b, "keel_version", Version)
	kv(b, "redis_mode", n.mode())
	kv(b, "os", h.OS)
	kv(b, "arch_bits", strconv.Itoa(strconv.IntSize))
	kv(b, "multiplexing_api", h.MultiplexAPI)
	kv(b, "go_version", h.GoVersion)
	kv(b, "process_id", h.ProcessID)
	kv(b, "run_id", n.cfg.RunID)
	kv(b, "tcp_port", n.cfg.Port)
	kv(b, "server_time_usec", now/1e3)
	kv(b, "uptime_in_seconds", up)
	kv(b, "uptime_in_days", up/(24*3600))
	kv(b, "hz", n.cfg.TickHz)
	kv(b, "executable", h.Executable)
	kv(b, "config_file", n.cfg.ConfigFile)
}

// infoReplication is Redis's replication section, the group's Raft leader
// playing the master; raft_* lines are keel's own.
func (n *Node) infoReplication(b *strings.Builder, ki keyspaceInfo) {
	g := ki.group
	if !n.clustered || g.Role == "leader" || len(n.groups) > 1 && len(n.ledGroups()) > 0 {
		kv(b, "role", "master")
		kv(b, "connected_slaves", 0)
	} else {
		kv(b, "role", "slave")
		host, port, status := "", 0, "down"
		for _, p := range n.Nodes() {
			if p.ID == g.Leader {
				host, port, status = p.Host, p.Port, "up"
			}
		}
		kv(b, "master_host", host)
		kv(b, "master_port", port)
		kv(b, "master_link_status", status)
	}
	kv(b, "master_failover_state", "no-failover")
	kv(b, "master_replid", n.cfg.RunID)
	kv(b, "master_repl_offset", g.Applied)
	if !n.clustered {
		return
	}
	kv(b, "raft_node_id", n.id)
	kv(b, "raft_role", g.Role)
	kv(b, "raft_leader", g.Leader)
	kv(b, "raft_term", g.Term)
	kv(b, "raft_commit_index", g.Commit)
	kv(b, "raft_snapshots_sent", g.SnapshotsSent)
	kv(b, "raft_snapshots_received", g.SnapshotsReceived)
	kv(b, "raft_leadership_lost", g.LeadershipLost)
	kv(b, "raft_queued_batches", g.QueuedBatches)
}

func (n *Node) infoClients(b *strings.Builder) {
	kv(b, "connected_clients", n.Sessions())
	kv(b, "maxclients", n.maxClients.Load())
	kv(b, "blocked_clients", n.blk.count.Load())
	kv(b, "pubsub_clients", n.pubsubClients())
}

func human(v uint64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2fG", float64(v)/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.2fM", float64(v)/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.2fK", float64(v)/(1<<10))
	}
	return fmt.Sprintf("%dB", v)
}

func (n *Node) infoMemory(b *strings.Builder, ki keyspaceInfo) {
	h := n.rt.Host()
	used, rss := h.HeapAlloc, h.RSS
	peak := max(h.HeapPeak, used)
	kv(b, "used_memory", used)
	kv(b, "used_memory_human", human(used))
	kv(b, "used_memory_rss", rss)
	kv(b, "used_memory_rss_human", human(rss))
	kv(b, "used_memory_peak", peak)
	kv(b, "used_memory_peak_human", human(peak))
	// used_memory is Go's HeapAlloc, which counts garbage not yet swept;
	// used_memory_live is what the last GC found reachable.
	if h.HeapLive > 0 {
		kv(b, "used_memory_live", h.HeapLive)
		kv(b, "used_memory_live_human", human(h.HeapLive))
	}
	kv(b, "used_memory_dataset", ki.usedBytes)
	kv(b, "total_system_memory", h.SystemMemory)
	kv(b, "go_heap_sys", h.HeapSys)
	kv(b, "go_num_gc", h.NumGC)
	kv(b, "go_gc_pause_total_ns", h.GCPauseTotalNs)
	n.infoMaxMemory(b, used) // evict.go
	kv(b, "mem_allocator", "go")
	if used > 0 && rss > 0 {
		kv(b, "mem_fragmentation_ratio", fmt.Sprintf("%.2f", float64(rss)/float64(used)))
	}
}

func (n *Node) infoPersistence(b *strings.Builder, ki keyspaceInfo) {
	kv(b, "loading", 0)
	aof := 0
	if n.cfg.AppendOnly {
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
	kv(b, "appendfsync", n.cfg.AppendFsync)
	kv(b, "dir", n.cfg.Dir)
	kv(b, "recovery_snapshot_keys_loaded", ki.recovery.KeysLoaded)
	kv(b, "recovery_log_entries_replayed", ki.recovery.EntriesReplayed)
	kv(b, "recovery_truncated_bytes", ki.recovery.TruncatedBytes)
}

func (n *Node) infoStats(b *strings.Builder) {
	in, out := n.stats.netInput.Load(), n.stats.netOutput.Load()
	for _, c := range n.sessionList() {
		if c.conn != nil {
			in += c.conn.BytesIn()
		}
		out += c.bytesOut.Load()
	}
	kv(b, "total_connections_received", n.stats.connectionsReceived.Load())
	kv(b, "total_commands_processed", n.totalCommands())
	kv(b, "total_net_input_bytes", in)
	kv(b, "total_net_output_bytes", out)
	kv(b, "rejected_connections", n.stats.rejectedConnections.Load())
	kv(b, "replica_reopens", n.stats.replicaReopens.Load())
	kv(b, "expired_keys", n.ExpiredKeys())
	kv(b, "evicted_keys", n.evictedKeys())
	n.infoErrorTotals(b) // cmdstats.go
	n.infoPubsub(b)      // pubsub.go
	n.infoACL(b)         // acl_cmd.go
}

func (n *Node) infoCPU(b *strings.Builder) {
	h := n.rt.Host()
	kv(b, "used_cpu_sys", fmt.Sprintf("%.6f", h.CPUSys))
	kv(b, "used_cpu_user", fmt.Sprintf("%.6f", h.CPUUser))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
