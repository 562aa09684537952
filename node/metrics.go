package node

import "github.com/keel-db/keel/cluster"

// What the runtime's metrics read (server/metrics.go exposes them to
// Prometheus): the same figures INFO shows, as plain values. Every reader
// here is safe from any goroutine; GroupMetrics takes each group's
// Exclusive in turn.

// CommandStat is one command's (or subcommand's, "client|list")
// statistics since the start or CONFIG RESETSTAT.
type CommandStat struct {
	Name                    string
	Calls, Rejected, Failed int64
	Nanos                   int64 // time of the calls
	// Buckets[k] is how many calls took less than 2^k µs; Tracked is how
	// many calls the histogram holds (latency-tracking yes).
	Buckets [LatencyBucketsMax]uint64
	Tracked uint64
}

// CommandStats are the commands with activity, in name order.
func (n *Node) CommandStats() []CommandStat {
	tab := statTable()
	totals := n.cstats.totals()
	out := make([]CommandStat, 0, len(totals))
	for _, t := range totals {
		cs := CommandStat{Name: tab.info[t.id].name, Calls: t.calls, Rejected: t.rejected, Failed: t.failed, Nanos: t.nanos}
		if t.hasHist {
			cs.Tracked = t.hist.total()
			copy(cs.Buckets[:], t.hist.cumulative(LatencyBucketsMax))
		}
		out = append(out, cs)
	}
	return out
}

// ErrorStats are the error replies by code (INFO errorstats), codes
// sorted, and the total (total_error_replies).
func (n *Node) ErrorStats() (codes []string, counts []int64, total int64) {
	codes, byCode := n.cstats.errorCodes()
	for _, c := range codes {
		counts = append(counts, byCode[c])
	}
	return codes, counts, n.cstats.errsTotal.Load()
}

// ConnectionStats are the open sessions and the connections accepted and
// refused since the start.
func (n *Node) ConnectionStats() (open int, received, rejected int64) {
	return n.Sessions(), n.stats.connectionsReceived.Load(), n.stats.rejectedConnections.Load()
}

// Host is the runtime's facts about the process (heap, RSS, CPU).
func (n *Node) Host() HostInfo { return n.rt.Host() }

// GroupMetrics is one replica group as this node's replica sees it.
type GroupMetrics struct {
	ID            uint64
	Keys, Expires int
	UsedBytes     int64
	Raft          cluster.GroupStats
	Persistence   cluster.PersistenceStats
	LeaderChanges int64
	ExpiredKeys   int64
	Hosted, Dead  bool // Hosted: this node has a replica of the group
}

// GroupMetrics reads every group this node hosts, each inside its
// Exclusive.
func (n *Node) GroupMetrics() []GroupMetrics {
	out := make([]GroupMetrics, 0, len(n.groups))
	for _, gr := range n.groups {
		m := GroupMetrics{ID: gr.id, LeaderChanges: gr.leaderChanges.Load()}
		if !gr.hosted.Load() {
			out = append(out, m) // placement: hosted elsewhere
			continue
		}
		n.rt.Exclusive(nil, gr.id, func() {
			r := gr.replica
			m.Dead = gr.dead != ""
			if r == nil {
				return
			}
			m.Hosted = true
			db := r.DB()
			m.Keys, m.Expires, m.UsedBytes, m.ExpiredKeys = db.Len(), db.Expires(), db.UsedBytes(), db.ExpiredKeys()
			m.Raft, m.Persistence = r.GroupStats(), r.Persistence()
		})
		out = append(out, m)
	}
	return out
}
