package node

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The latency monitor, as Redis's: events that took at least
// latency-monitor-threshold milliseconds (0: off) are sampled, one sample
// a second per event (the worst of that second), the last
// latencySamplesMax of each kept with the event's all-time worst.
//
// Events, and who reports them (NoteLatency):
//   - command, fast-command: a command's share of its batch's time
//     (batchstats.go; "fast" as COMMAND INFO flags it), by the node;
//   - expire-cycle: a group's active expiry in a tick, by the node
//     (group.go measures it around the replica's cycle with its clock);
//   - wal-write, wal-fsync, snapshot-fsync: the write-ahead log's appends
//     and fsyncs and the snapshot files' fsyncs, by the production
//     runtime, which times its file system (server/timedfs.go);
//   - snapshot: a background snapshot job from its start to its file
//     being durable, by the production runtime;
//   - eviction-cycle: an eviction pass under maxmemory, by the eviction
//     code.
//
// In the simulator the clock does not move within a call, so events
// measured by the node are never above a threshold there.

const (
	// latencySamplesMax is how many samples an event keeps (Redis's
	// LATENCY_TS_LEN).
	latencySamplesMax = 160
	// latencyEventsMax bounds the distinct events (names come from keel's
	// own code, never from clients; the bound is a guard).
	latencyEventsMax = 64
)

type latencySample struct {
	unixSec, ms int64
}

type latencySeries struct {
	samples [latencySamplesMax]latencySample
	idx     int // where the next sample goes
	maxMs   int64
}

type latencyMonitor struct {
	thresholdMs atomic.Int64 // latency-monitor-threshold; 0: off

	mu     sync.Mutex
	events map[string]*latencySeries
}

func (m *latencyMonitor) init() { m.events = map[string]*latencySeries{} }

// NoteLatency reports that event took nanos, at the node's clock's time;
// it is sampled when it reaches latency-monitor-threshold. Safe from any
// goroutine.
func (n *Node) NoteLatency(event string, nanos int64) {
	m := &n.latency
	thr := m.thresholdMs.Load()
	ms := nanos / 1e6
	if thr <= 0 || ms < thr {
		return
	}
	now := n.clock.Now() / 1e9
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := m.events[event]
	if ts == nil {
		if len(m.events) >= latencyEventsMax {
			return
		}
		ts = &latencySeries{}
		m.events[event] = ts
	}
	ts.maxMs = max(ts.maxMs, ms)
	prev := (ts.idx + latencySamplesMax - 1) % latencySamplesMax
	if ts.samples[prev].unixSec == now {
		ts.samples[prev].ms = max(ts.samples[prev].ms, ms)
		return
	}
	ts.samples[ts.idx] = latencySample{unixSec: now, ms: ms}
	ts.idx = (ts.idx + 1) % latencySamplesMax
}

// history is an event's samples, oldest first.
func (ts *latencySeries) history() []latencySample {
	var out []latencySample
	for j := range latencySamplesMax {
		s := ts.samples[(ts.idx+j)%latencySamplesMax]
		if s.unixSec != 0 {
			out = append(out, s)
		}
	}
	return out
}

var latencySubs = []subcommand{
	{name: "latency|latest", arity: 2, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "latency|history", arity: 3, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "latency|reset", arity: -2, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "latency|doctor", arity: 2, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "latency|histogram", arity: -2, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "latency|help", arity: 2, flags: []string{"loading", "stale"}},
}

func init() {
	serverCommands["latency"] = &serverCommand{name: "latency", arity: -2, categories: []string{"@slow"}, run: cmdLatency, subs: latencySubs,
		doc: commandDoc{summary: "A container for latency diagnostics commands.", since: "2.8.13", group: "server", complexity: "Depends on subcommand."}}
	for name, d := range map[string]commandDoc{
		"latency|latest":    {summary: "Returns the latest latency samples for all events.", since: "2.8.13", complexity: "O(1)"},
		"latency|history":   {summary: "Returns timestamp-latency samples for an event.", since: "2.8.13", complexity: "O(1)", syntax: "event"},
		"latency|reset":     {summary: "Resets the latency data for one or more events.", since: "2.8.13", complexity: "O(1)", syntax: "[event ...]"},
		"latency|doctor":    {summary: "Returns a human-readable latency analysis report.", since: "2.8.13", complexity: "O(1)"},
		"latency|histogram": {summary: "Returns the cumulative distribution of latencies of a subset or all commands.", since: "7.0.0", complexity: "O(N) where N is the number of commands with latency information being retrieved.", syntax: "[command ...]"},
		"latency|help":      {summary: "Returns helpful text about the different subcommands.", since: "2.8.13", complexity: "O(1)"},
	} {
		subDocs[name] = d
	}
	for _, s := range latencySubs {
		aclSubCategories[s.name] = "@admin @slow @dangerous"
	}
	aclSubCategories["latency|help"] = "@slow"
}

func cmdLatency(c *Session, argv [][]byte) {
	sub := strings.ToLower(string(truncate(argv[1], 32)))
	if !subArityOK(c, latencySubs, "latency|"+sub, len(argv)) {
		return
	}
	m := &c.n.latency
	switch sub {
	case "latest":
		m.mu.Lock()
		names := sortedEvents(m.events)
		c.Out.WriteArray(len(names))
		for _, name := range names {
			ts := m.events[name]
			last := ts.samples[(ts.idx+latencySamplesMax-1)%latencySamplesMax]
			c.Out.WriteArray(4)
			c.Out.WriteBulkString(name)
			c.Out.WriteInt(last.unixSec)
			c.Out.WriteInt(last.ms)
			c.Out.WriteInt(ts.maxMs)
		}
		m.mu.Unlock()
	case "history":
		m.mu.Lock()
		var h []latencySample
		if ts := m.events[string(argv[2])]; ts != nil {
			h = ts.history()
		}
		m.mu.Unlock()
		c.Out.WriteArray(len(h))
		for _, s := range h {
			c.Out.WriteArray(2)
			c.Out.WriteInt(s.unixSec)
			c.Out.WriteInt(s.ms)
		}
	case "reset":
		m.mu.Lock()
		reset := 0
		if len(argv) == 2 {
			reset = len(m.events)
			clear(m.events)
		} else {
			for _, a := range argv[2:] {
				if _, ok := m.events[string(a)]; ok {
					delete(m.events, string(a))
					reset++
				}
			}
		}
		m.mu.Unlock()
		c.Out.WriteInt(int64(reset))
	case "doctor":
		c.Out.WriteVerbatim(c.n.latencyDoctor(), "txt")
	case "histogram":
		latencyHistogram(c, argv[2:])
	case "help":
		writeHelp(c, "LATENCY",
			"DOCTOR",
			"    Return a human readable latency analysis report.",
			"HISTORY <event>",
			"    Return time-latency samples for the <event> class.",
			"LATEST",
			"    Return the latest latency samples for all events.",
			"RESET [<event> ...]",
			"    Reset latency data of one or more <event> classes.",
			"    (default: reset all data for all event classes)",
			"HISTOGRAM [COMMAND ...]",
			"    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
			"    If no commands are specified then all histograms are replied.",
		)
	default:
		unknownSubcommand(c, "latency", argv[1])
	}
}

func sortedEvents(events map[string]*latencySeries) []string {
	names := make([]string, 0, len(events))
	for name := range events {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// latencyHistogram is LATENCY HISTOGRAM: for each command asked (every
// command with calls when none is; a container stands for its
// subcommands), its calls and the cumulative count of calls under each
// power of two of microseconds, where the count grows.
func latencyHistogram(c *Session, names [][]byte) {
	tab := statTable()
	totals := c.n.cstats.totals()
	byID := map[int]*cmdTotals{}
	for i := range totals {
		if totals[i].hasHist && totals[i].hist.total() > 0 {
			byID[totals[i].id] = &totals[i]
		}
	}
	var ids []int
	if len(names) == 0 {
		for _, t := range totals {
			if byID[t.id] != nil {
				ids = append(ids, t.id)
			}
		}
	} else {
		reg := aclCommands()
		for _, name := range names {
			cmd := reg.lookup(string(name))
			if cmd == nil {
				continue
			}
			add := func(id int) {
				if byID[id] != nil && !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
			add(cmd.id)
			for _, s := range sortedSubs(cmd) {
				add(s.id)
			}
		}
	}
	c.Out.WriteMap(len(ids))
	for _, id := range ids {
		t := byID[id]
		total := t.hist.total()
		c.Out.WriteBulkString(tab.info[id].name)
		c.Out.WriteMap(2)
		c.Out.WriteBulkString("calls")
		c.Out.WriteInt(int64(total))
		c.Out.WriteBulkString("histogram_usec")
		type point struct{ usec, count uint64 }
		var pts []point
		var prev uint64
		for k, cum := range t.hist.cumulative(64) {
			if cum > prev {
				pts = append(pts, point{1 << uint(k), cum})
				prev = cum
			}
			if cum == total {
				break
			}
		}
		c.Out.WriteMap(len(pts))
		for _, p := range pts {
			c.Out.WriteInt(int64(p.usec))
			c.Out.WriteInt(int64(p.count))
		}
	}
}

// latencyDoctor is LATENCY DOCTOR's report: Redis's words where the
// events are Redis's, keel's advice for its own.
func (n *Node) latencyDoctor() string {
	m := &n.latency
	if m.thresholdMs.Load() <= 0 {
		return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n"
	}
	now := n.clock.Now() / 1e9
	m.mu.Lock()
	names := sortedEvents(m.events)
	type analysis struct {
		name                    string
		samples                 int
		avg, mad, maxMs, oldest int64
	}
	var found []analysis
	for _, name := range names {
		ts := m.events[name]
		h := ts.history()
		if len(h) == 0 {
			continue
		}
		a := analysis{name: name, samples: len(h), maxMs: ts.maxMs, oldest: h[0].unixSec}
		var sum int64
		for _, s := range h {
			sum += s.ms
			a.oldest = min(a.oldest, s.unixSec)
		}
		a.avg = sum / int64(len(h))
		var dev int64
		for _, s := range h {
			d := s.ms - a.avg
			if d < 0 {
				d = -d
			}
			dev += d
		}
		a.mad = dev / int64(len(h))
		found = append(found, a)
	}
	m.mu.Unlock()
	if len(found) == 0 {
		return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n"
	}
	var b strings.Builder
	b.WriteString("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n")
	advice := map[string]bool{}
	for i, a := range found {
		period := max(now-a.oldest, 1)
		fmt.Fprintf(&b, "%d. %s: %d latency spikes (average %dms, mean deviation %dms, period %.2f sec). Worst all time event %dms.\n",
			i+1, a.name, a.samples, a.avg, a.mad, float64(period)/float64(a.samples), a.maxMs)
		switch a.name {
		case "command":
			slower := n.slowlog.slowerMicros.Load()
			if slower < 0 || n.slowlog.maxLen.Load() == 0 {
				advice["slowlog-enable"] = true
			} else if slower/1000 > m.thresholdMs.Load() {
				advice["slowlog-tune"] = true
			}
			advice["slowlog-inspect"], advice["large-objects"] = true, true
		case "fast-command":
			advice["scheduler"] = true
		case "wal-write", "wal-fsync", "snapshot-fsync":
			advice["disk"] = true
			if a.name != "snapshot-fsync" && *n.appendFsync.Load() == "always" {
				advice["fsync-policy"] = true
			}
		case "snapshot":
			advice["snapshot"] = true
		case "expire-cycle":
			advice["large-objects"], advice["expire"] = true, true
		case "eviction-cycle":
			advice["eviction"] = true
		}
	}
	b.WriteString("\nI have a few advices for you:\n\n")
	thr := m.thresholdMs.Load()
	for _, k := range []string{"slowlog-enable", "slowlog-tune", "slowlog-inspect", "large-objects", "scheduler", "disk", "fsync-policy", "snapshot", "expire", "eviction"} {
		if !advice[k] {
			continue
		}
		switch k {
		case "slowlog-enable":
			b.WriteString("- The system slow log is disabled, and this is probably not what you want. Please use 'CONFIG SET slowlog-log-slower-than " + strconv.FormatInt(thr*1000, 10) + "' to enable it, and 'CONFIG SET slowlog-max-len 128' to keep the last 128 slow commands.\n")
		case "slowlog-tune":
			b.WriteString("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than " + strconv.FormatInt(thr*1000, 10) + "'.\n")
		case "slowlog-inspect":
			b.WriteString("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n")
		case "large-objects":
			b.WriteString("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n")
		case "scheduler":
			b.WriteString("- Fast commands took long: the process did not get the CPU for a while. Lower the system's load, look for a noisy neighbour, and look at Go's garbage collection (INFO memory: go_num_gc, go_gc_pause_total_ns).\n")
		case "disk":
			b.WriteString("- The disk is slow to take the write-ahead log or the snapshots: use a local disk (an SSD) that nothing else writes to heavily.\n")
		case "fsync-policy":
			b.WriteString("- With appendfsync always every batch of writes waits for an fsync; 'CONFIG SET appendfsync everysec' bounds the loss to about a second of writes and takes the fsync off the write path.\n")
		case "snapshot":
			b.WriteString("- Snapshots take long to write: they run in the background, but compete with the log for the disk. The log size that triggers one is the knob to turn.\n")
		case "expire":
			b.WriteString("- Many keys expire at the same time: spread their times to live (add some randomness) so active expiry does not meet them all in one cycle.\n")
		case "eviction":
			b.WriteString("- Evicting under maxmemory takes long: raise maxmemory, or write less at once, so that fewer keys must go in one cycle.\n")
		}
	}
	return b.String()
}
