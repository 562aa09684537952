package node

import (
	"strconv"
	"strings"
	"sync/atomic"
)

// nodeOps is what a node keeps for its operators: command statistics
// (cmdstats.go), the slow log (slowlog.go), the latency monitor
// (latency.go), MONITOR's clients (monitor.go), CLIENT PAUSE (pause.go),
// and counters the runtime's metrics read (metrics.go). Embedded in Node.
type nodeOps struct {
	cstats    cmdStats
	slowlog   slowlogState
	latency   latencyMonitor
	mon       monitors
	opsConfig // ops_config.go

	pause   atomic.Pointer[pauseState]
	onPause atomic.Pointer[func()]
}

func (n *Node) initOps() {
	n.cstats.init()
	n.slowlog.init()
	n.latency.init()
}

// resetOps is CONFIG RESETSTAT's part: command and error statistics and
// latency histograms (the slow log and the latency monitor have their
// own RESET, as in Redis).
func (n *Node) resetOps() { n.cstats.reset() }

// EvictedKeys is INFO's evicted_keys (evict.go), for the metrics.
func (n *Node) EvictedKeys() int64 { return n.evictedKeys() }

func yesNoParam(get func(n *Node) bool, set func(n *Node, on bool)) configParam {
	return configParam{
		get: func(n *Node) string {
			if get(n) {
				return "yes"
			}
			return "no"
		},
		check: func(v string) bool {
			v = strings.ToLower(v)
			return v == "yes" || v == "no"
		},
		set: func(n *Node, v string) { set(n, strings.EqualFold(v, "yes")) },
		bad: "argument must be 'yes' or 'no'",
	}
}

func int64Param(min int64, get func(n *Node) int64, set func(n *Node, v int64)) configParam {
	return configParam{
		get: func(n *Node) string { return strconv.FormatInt(get(n), 10) },
		check: func(v string) bool {
			x, err := strconv.ParseInt(v, 10, 64)
			return err == nil && x >= min
		},
		set: func(n *Node, v string) {
			x, _ := strconv.ParseInt(v, 10, 64)
			set(n, x)
		},
		bad: "argument must be between " + strconv.FormatInt(min, 10) + " and 9223372036854775807 inclusive",
	}
}

// configWhy words the refusal of a value where Redis has more than one
// reason (CONFIG SET); the parameter's bad otherwise.
var configWhy = map[string]func(v string) string{}

// intWhy is Redis's wording for integer setting name: not a number, or
// out of its range (the setting's own bad).
func intWhy(name string) func(v string) string {
	return func(v string) string {
		if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
			return "argument couldn't be parsed into an integer"
		}
		return extraConfig[name].bad
	}
}

// parsePercentiles reads latency-tracking-info-percentiles: numbers
// between 0 and 100, separated by spaces (none is allowed).
func parsePercentiles(v string) ([]float64, bool) {
	out := []float64{}
	for _, f := range strings.Fields(v) {
		p, err := strconv.ParseFloat(f, 64)
		if err != nil || p < 0 || p > 100 {
			return nil, false
		}
		out = append(out, p)
	}
	return out, true
}

func init() {
	extraConfig["slowlog-log-slower-than"] = int64Param(-1,
		func(n *Node) int64 { return n.slowlog.slowerMicros.Load() },
		func(n *Node, v int64) { n.slowlog.slowerMicros.Store(v) })
	extraConfig["slowlog-max-len"] = int64Param(0,
		func(n *Node) int64 { return n.slowlog.maxLen.Load() },
		func(n *Node, v int64) { n.slowlog.maxLen.Store(v) })
	extraConfig["latency-monitor-threshold"] = int64Param(0,
		func(n *Node) int64 { return n.latency.thresholdMs.Load() },
		func(n *Node, v int64) { n.latency.thresholdMs.Store(v) })
	for _, name := range []string{"slowlog-log-slower-than", "slowlog-max-len", "latency-monitor-threshold", "timeout",
		"acllog-max-len", "busy-reply-threshold", "function-time-limit"} {
		configWhy[name] = intWhy(name)
	}
	extraConfig["latency-tracking"] = yesNoParam(
		func(n *Node) bool { return n.cstats.tracking.Load() },
		func(n *Node, on bool) { n.cstats.tracking.Store(on) })
	extraConfig["latency-tracking-info-percentiles"] = configParam{
		get: func(n *Node) string {
			var parts []string
			for _, p := range *n.cstats.percentiles.Load() {
				parts = append(parts, formatPercentile(p))
			}
			return strings.Join(parts, " ")
		},
		check: func(v string) bool {
			_, ok := parsePercentiles(v)
			return ok
		},
		set: func(n *Node, v string) {
			p, _ := parsePercentiles(v)
			n.cstats.percentiles.Store(&p)
		},
		bad: "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]",
	}
}

// ExpiredKeys is how many keys this node's replicas deleted because
// their time to live ran out, summed over the groups it hosts (INFO
// expired_keys, the keel_expired_keys_total metric). Each group is read
// inside its Exclusive.
func (n *Node) ExpiredKeys() int64 {
	var total int64
	for _, g := range n.groups {
		if !g.hosted.Load() {
			continue
		}
		n.rt.Exclusive(nil, g.id, func() {
			if r := g.replica; r != nil {
				total += r.DB().ExpiredKeys()
			}
		})
	}
	return total
}

// tickTimed ticks gr's replica; when the tick expired keys (active
// expiry), its time is reported as the expire-cycle latency event. The
// replica's tick also drives Raft and the everysec fsync, so the figure
// is an upper bound of the cycle's; a tick that expired nothing is not
// reported.
func (n *Node) tickTimed(gr *group, now int64) {
	if n.latency.thresholdMs.Load() <= 0 {
		gr.replica.Tick(now)
		return
	}
	before := gr.replica.DB().ExpiredKeys()
	start := n.clock.Now()
	gr.replica.Tick(now)
	if gr.replica.DB().ExpiredKeys() != before {
		n.NoteLatency("expire-cycle", n.clock.Now()-start)
	}
}

// infoGroups is INFO groups (keel's own, not in INFO's default): one line
// per replica group as this node sees it,
//
//	group1:hosted=1,role=leader,leader=1,term=2,commit_index=104,applied_index=104,keys=10
//
// (hosted=0: placed on other nodes; role, leader and term are then its
// peers' reports). keel cluster status reads it from every node.
func (n *Node) infoGroups(b *strings.Builder) {
	for _, g := range n.GroupMetrics() {
		gr := n.group(g.ID)
		line := "group" + strconv.FormatUint(g.ID, 10) + ":hosted="
		if !g.Hosted {
			line += "0,role=none,leader=" + strconv.FormatUint(gr.leader.Load(), 10) + ",term=" + strconv.FormatUint(gr.term.Load(), 10)
			b.WriteString(line + "\r\n")
			continue
		}
		r := g.Raft
		role := r.Role
		if g.Dead {
			role = "dead"
		}
		line += "1,role=" + role + ",leader=" + strconv.FormatUint(r.Leader, 10) + ",term=" + strconv.FormatUint(r.Term, 10) +
			",commit_index=" + strconv.FormatUint(r.Commit, 10) + ",applied_index=" + strconv.FormatUint(r.Applied, 10) +
			",keys=" + strconv.Itoa(g.Keys)
		b.WriteString(line + "\r\n")
	}
}
