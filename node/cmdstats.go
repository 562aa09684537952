package node

import (
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keel-db/keel/engine"
)

// Command statistics, as Redis 7 keeps them: calls, time, rejected and
// failed calls per command and subcommand (INFO commandstats), error
// replies by their code (INFO errorstats), and a latency histogram per
// command (INFO latencystats, LATENCY HISTOGRAM). The runtime's metrics
// read the same numbers (metrics.go).
//
// A session notes what each command of a batch did as it runs it
// (batchstats.go) and folds the batch into one shard of these tables at
// its end, under the shard's lock: sessions spread over the shards, so
// connections on different cores seldom share a lock or a cache line, and
// the hot path takes one lock per batch, not per command. Readers (INFO,
// the metrics) sum the shards.
//
// Time comes from the node's clock (Config.Clock): the wall clock in the
// server, the simulated clock in the simulator, whose time does not move
// while a call runs, so the figures there are as deterministic as the
// rest of a run (and reach no trace).

const (
	// statShards is how many shards the command tables are split into.
	statShards = 8
	// errorCodesMax bounds the distinct error codes errorstats tracks
	// (Redis's ERROR_STATS_NUMBER): past it new codes are not added, and
	// total_error_replies still counts them.
	errorCodesMax = 128
	// histSub is the sub-buckets per power of two of a latency histogram
	// (about 12% wide), histUnitNanos its smallest unit (1/8 µs) and
	// histBuckets its size: up to 2^35 units, about 71 minutes.
	histSub       = 8
	histUnitNanos = 125
	histBuckets   = histSub*31 + 2*histSub
	// LatencyBucketsMax is how many power-of-two bounds (1 µs, 2 µs, 4 µs,
	// ...) CommandStat.Buckets has: up to 2^22 µs, about 4.2 s.
	LatencyBucketsMax = 23
)

// latencyHist counts calls by duration: bucket i < 2*histSub holds the
// durations of i units; above, histSub buckets per power of two.
type latencyHist [histBuckets]uint64

// histIndex is the bucket of a duration in nanoseconds.
func histIndex(ns int64) int {
	if ns < 0 {
		ns = 0
	}
	v := uint64(ns) / histUnitNanos
	if v < 2*histSub {
		return int(v)
	}
	e := bits.Len64(v) - 4 // v>>e is in [histSub, 2*histSub)
	i := histSub*e + int(v>>uint(e))
	return min(i, histBuckets-1)
}

// histUpperUnits is the exclusive upper bound of bucket i, in units.
func histUpperUnits(i int) uint64 {
	if i < 2*histSub {
		return uint64(i + 1)
	}
	e := i/histSub - 1
	m := uint64(i%histSub + histSub)
	return (m + 1) << uint(e)
}

// histBoundIndex is the first bucket whose durations are at least 2^k µs:
// the buckets below it hold exactly the calls under that bound.
func histBoundIndex(k int) int {
	if k == 0 {
		return histSub // 1 µs is 8 units
	}
	return histSub*k + histSub
}

func (h *latencyHist) total() uint64 {
	var t uint64
	for _, c := range h {
		t += c
	}
	return t
}

// percentile is the duration in microseconds under which p percent of
// the calls fall: the upper bound of the bucket that holds that rank, as
// HdrHistogram reports the highest value equivalent to it.
func (h *latencyHist) percentile(p float64, total uint64) float64 {
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h {
		seen += c
		if seen >= rank {
			return float64(histUpperUnits(i)) * histUnitNanos / 1000
		}
	}
	return float64(histUpperUnits(histBuckets-1)) * histUnitNanos / 1000
}

// cumulative is how many calls took less than 2^k µs, for k in [0, n).
func (h *latencyHist) cumulative(n int) []uint64 {
	out := make([]uint64, n)
	var seen uint64
	i := 0
	for k := range n {
		for end := min(histBoundIndex(k), histBuckets); i < end; i++ {
			seen += h[i]
		}
		out[k] = seen
	}
	return out
}

// cmdStat is one command's counters in one shard.
type cmdStat struct {
	calls, rejected, failed int64
	nanos                   int64
	hist                    *latencyHist // made on the first call that records one
}

type statShard struct {
	mu   sync.Mutex
	cmds []cmdStat // by statInfo id
	_    [64]byte  // keep neighbouring shards' locks off one cache line
}

// cmdStats is the node's command statistics.
type cmdStats struct {
	shards [statShards]statShard

	errMu       sync.Mutex
	errs        map[string]int64 // by error code, at most errorCodesMax
	errsWarned  bool
	errsTotal   atomic.Int64
	errsDropped atomic.Int64 // codes past errorCodesMax

	tracking    atomic.Bool               // latency-tracking
	percentiles atomic.Pointer[[]float64] // latency-tracking-info-percentiles
}

func (s *cmdStats) init() {
	n := len(statTable().info)
	for i := range s.shards {
		s.shards[i].cmds = make([]cmdStat, n)
	}
	s.errs = map[string]int64{}
	s.tracking.Store(true)
	p := []float64{50, 99, 99.9}
	s.percentiles.Store(&p)
}

func (s *cmdStats) shard(session uint64) *statShard { return &s.shards[session%statShards] }

// noteError counts one error reply by its code.
func (n *Node) noteError(code []byte) {
	s := &n.cstats
	s.errsTotal.Add(1)
	s.errMu.Lock()
	if _, ok := s.errs[string(code)]; ok {
		s.errs[string(code)]++
	} else if len(s.errs) < errorCodesMax {
		s.errs[string(code)] = 1
	} else {
		s.errsDropped.Add(1)
		if !s.errsWarned {
			s.errsWarned = true
			s.errMu.Unlock()
			n.logf("errorstats: %d error codes are tracked already; new ones are counted in total_error_replies only", errorCodesMax)
			return
		}
	}
	s.errMu.Unlock()
}

// reset is CONFIG RESETSTAT's part.
func (s *cmdStats) reset() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for j := range sh.cmds {
			h := sh.cmds[j].hist
			if h != nil {
				clear(h[:])
			}
			sh.cmds[j] = cmdStat{hist: h}
		}
		sh.mu.Unlock()
	}
	s.errMu.Lock()
	clear(s.errs)
	s.errsWarned = false
	s.errMu.Unlock()
	s.errsTotal.Store(0)
	s.errsDropped.Store(0)
}

// cmdTotals is one command's counters summed over the shards.
type cmdTotals struct {
	id                      int
	calls, rejected, failed int64
	nanos                   int64
	hist                    latencyHist
	hasHist                 bool
}

// totals sums every command with activity, in name order.
func (s *cmdStats) totals() []cmdTotals {
	n := len(statTable().info)
	sums := make([]cmdTotals, n)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for j := range sh.cmds {
			cs := &sh.cmds[j]
			if cs.calls == 0 && cs.rejected == 0 && cs.failed == 0 {
				continue
			}
			t := &sums[j]
			t.calls += cs.calls
			t.rejected += cs.rejected
			t.failed += cs.failed
			t.nanos += cs.nanos
			if cs.hist != nil {
				t.hasHist = true
				for b, c := range cs.hist {
					t.hist[b] += c
				}
			}
		}
		sh.mu.Unlock()
	}
	out := sums[:0]
	for j := range sums {
		t := sums[j]
		if t.calls == 0 && t.rejected == 0 && t.failed == 0 {
			continue
		}
		t.id = j
		out = append(out, t)
	}
	return out
}

func (s *cmdStats) errorCodes() ([]string, map[string]int64) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	codes := make([]string, 0, len(s.errs))
	counts := make(map[string]int64, len(s.errs))
	for code, c := range s.errs {
		codes = append(codes, code)
		counts[code] = c
	}
	slices.Sort(codes)
	return codes, counts
}

// INFO commandstats, errorstats, latencystats, and the error totals of
// INFO stats; in name order (Redis prints its hash order).

func (n *Node) infoCommandStats(b *strings.Builder) {
	tab := statTable()
	for _, t := range n.cstats.totals() {
		usec := t.nanos / 1000
		per := 0.0
		if t.calls > 0 {
			per = float64(usec) / float64(t.calls)
		}
		b.WriteString("cmdstat_" + tab.info[t.id].name + ":calls=" + strconv.FormatInt(t.calls, 10) +
			",usec=" + strconv.FormatInt(usec, 10) + ",usec_per_call=" + strconv.FormatFloat(per, 'f', 2, 64) +
			",rejected_calls=" + strconv.FormatInt(t.rejected, 10) + ",failed_calls=" + strconv.FormatInt(t.failed, 10) + "\r\n")
	}
}

func (n *Node) infoErrorStats(b *strings.Builder) {
	codes, counts := n.cstats.errorCodes()
	for _, code := range codes {
		b.WriteString("errorstat_" + code + ":count=" + strconv.FormatInt(counts[code], 10) + "\r\n")
	}
}

func (n *Node) infoLatencyStats(b *strings.Builder) {
	tab := statTable()
	ps := *n.cstats.percentiles.Load()
	for _, t := range n.cstats.totals() {
		total := t.hist.total()
		if !t.hasHist || total == 0 {
			continue
		}
		b.WriteString("latency_percentiles_usec_" + tab.info[t.id].name + ":")
		for i, p := range ps {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("p" + formatPercentile(p) + "=" + strconv.FormatFloat(t.hist.percentile(p, total), 'f', 3, 64))
		}
		b.WriteString("\r\n")
	}
}

// formatPercentile writes 50 as "50" and 99.9 as "99.9", as Redis does.
func formatPercentile(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) }

func (n *Node) infoErrorTotals(b *strings.Builder) {
	kv(b, "unexpected_error_replies", 0)
	kv(b, "total_error_replies", n.cstats.errsTotal.Load())
}

// statInfo is what the statistics know of each command and subcommand,
// by the id the ACL registry gives it (acl.go): every command keel
// answers, sorted by full name ("client|list").
type statInfo struct {
	name  string
	fast  bool // the "fast-command" latency event rather than "command"
	admin bool // not shown to MONITOR, as Redis hides admin commands
	// skipSlowlog: EXEC, whose commands are logged one by one.
	skipSlowlog bool
	// mayReplicate: held by CLIENT PAUSE WRITE (writes, FCALL, the
	// FUNCTION changes, PUBLISH), as Redis's "may replicate" commands.
	mayReplicate bool
}

type statRegistry struct {
	info     []statInfo
	byEngine map[*engine.Command]int32
	byServer map[*serverCommand]int32 // commands without subcommands
}

var statTable = sync.OnceValue(func() *statRegistry {
	acl := aclCommands()
	reg := &statRegistry{info: make([]statInfo, len(acl.all)), byEngine: map[*engine.Command]int32{}, byServer: map[*serverCommand]int32{}}
	for _, c := range acl.all {
		in := statInfo{name: c.name}
		base, sub, hasSub := strings.Cut(c.name, "|")
		var flags []string
		switch {
		case c.engine != nil:
			in.fast = c.engine.Flags&engine.Fast != 0
			in.mayReplicate = c.engine.Flags&engine.ReadOnly == 0
			if !hasSub {
				reg.byEngine[c.engine] = int32(c.id)
			}
		case serverCommands[base] != nil:
			sc := serverCommands[base]
			flags = sc.flags
			if hasSub {
				for _, s := range sc.subs {
					if s.name == c.name {
						flags = s.flags
					}
				}
			} else if len(sc.subs) == 0 {
				reg.byServer[sc] = int32(c.id)
			}
		}
		in.fast = in.fast || slices.Contains(flags, "fast")
		in.admin = slices.Contains(flags, "admin") || base == "save" || base == "bgsave" || base == "bgrewriteaof"
		in.skipSlowlog = slices.Contains(flags, "skip_slowlog")
		switch c.name {
		case "fcall", "function|load", "function|delete", "function|flush", "function|restore", "publish", "spublish":
			in.mayReplicate = true
		}
		_ = sub
		reg.info[c.id] = in
	}
	return reg
})

// statID is the statistics id argv runs as, -1 when keel does not know
// the command (the subcommand a container does not have counts on the
// container, which answers with its error: see classifyError).
func statID(argv [][]byte) int32 {
	if c := aclCommands().command(argv); c != nil {
		return int32(c.id)
	}
	return -1
}
