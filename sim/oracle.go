package sim

import (
	"strconv"
	"strings"
)

// failuresMax bounds the failure messages one run keeps; the first one
// matters most and the count says how many followed.
const failuresMax = 20

// Durability is what a scenario promises about acknowledged writes across
// a crash.
type Durability struct {
	// Kind: "always" (every acknowledged write survives), "window" (writes
	// acknowledged within Window of the crash may be lost), "any" (any
	// suffix may be lost: appendfsync no, or bit rot that may hit the last
	// record, which is indistinguishable from a torn write).
	Kind     string
	WindowMs int64
}

// pendingWrite is a write executed since the last verified recovery.
type pendingWrite struct {
	argv  []string
	nowMs int64
	acked bool
	ackMs int64
	// mayAbort: an EXEC under WATCH the node was executing when it
	// crashed: it may have aborted (a write of a watched key got there
	// first, in the same batch or the one before) and written nothing.
	mayAbort bool
}

// abortBranchesMax bounds the recovered states a recovery check tries for
// in-flight watched EXECs (each one applied or aborted): 2^6, more than
// the clients of any bank world; past it, the rest count as applied.
const abortBranchesMax = 64

// Oracle checks a single node's replies against the sequential model, in
// the order the node executed them, and each recovery against the prefixes
// of the writes it executed: the recovered keyspace must equal the model
// after some prefix (no invented values, no resurrected deletes, losses
// only as a suffix), long enough to hold every write the durability
// promise covers.
type Oracle struct {
	dur Durability
	// tolerateWriteErrors: the scenario injects disk faults, so a write may
	// be refused with an error (and must then not have happened).
	tolerateWriteErrors bool
	base, cur           state
	pending             []pendingWrite
	crashMs             int64
	crashed             bool
	// stalls are the stretches (node clock, ms) the node could not run:
	// they do not count against the durability window.
	stalls []stall

	// notify: the node raises keyspace events for subscribers; events
	// are those its executed writes raised, in execution order
	// (subscriber.go).
	notify bool
	events []notifyEvent

	// changes counts, per key, the executed writes that changed it, and
	// watched the count each connection saw at its WATCH's read (the
	// grammar's WATCH check, watchCheck).
	changes map[string]int64
	watched map[uint64]watchSnap

	Failures      []string
	FailuresTotal int
	Stats         OracleStats
	// now reads virtual time, so the first failure's moment is known
	// (firstFailAt; shrinking cuts a run just after it).
	now func() int64
	// reach counts a marker (aim.go).
	reach       func(string)
	firstFailAt int64
}

type stall struct{ from, to int64 }

// stallsMax bounds the stall intervals kept; the oldest are merged.
const stallsMax = 1024

// Stalled records that the node could not run from fromMs to toMs.
func (o *Oracle) Stalled(fromMs, toMs int64) {
	if n := len(o.stalls); n > 0 && fromMs <= o.stalls[n-1].to {
		o.stalls[n-1].to = max(o.stalls[n-1].to, toMs)
		return
	}
	if len(o.stalls) == stallsMax {
		o.stalls[1].from = o.stalls[0].from
		o.stalls = o.stalls[1:]
	}
	o.stalls = append(o.stalls, stall{fromMs, toMs})
}

// stalledBetween is how long the node was stalled within [a, b].
func (o *Oracle) stalledBetween(a, b int64) int64 {
	var d int64
	for _, s := range o.stalls {
		lo, hi := max(s.from, a), min(s.to, b)
		if hi > lo {
			d += hi - lo
		}
	}
	return d
}

// OracleStats counts what was checked.
type OracleStats struct {
	Checked, Writes, Refused, InFlight, Recoveries, LostWrites, RefusedStarts int64
	// WatchChecked counts the watched EXECs the grammar's WATCH check
	// judged.
	WatchChecked int64
}

func newOracle(dur Durability, tolerateWriteErrors bool) *Oracle {
	return &Oracle{dur: dur, tolerateWriteErrors: tolerateWriteErrors, base: state{}, cur: state{}}
}

func (o *Oracle) fail(msg string) {
	if o.FailuresTotal == 0 && o.now != nil {
		o.firstFailAt = o.now()
	}
	o.FailuresTotal++
	if len(o.Failures) < failuresMax {
		o.Failures = append(o.Failures, msg)
	}
}

// Executed checks one reply of a command the node ran at nowMs and
// acknowledged at ackMs (both on the node's clock).
func (o *Oracle) Executed(argv []string, r Reply, nowMs, ackMs int64) {
	if o.reach != nil && plainSetOnTTLKey(o.cur, nowMs, argv) {
		o.reach(MarkSetOnTTLKey)
	}
	e := predict(o.cur, nowMs, argv)
	o.Stats.Checked++
	// A refusal above maxmemory comes before the command runs, whatever
	// error it would have answered (evict.go).
	if e.write && r.IsError() && (!e.reply.IsError() || strings.HasPrefix(r.Str, "OOM ")) {
		if o.tolerateWriteErrors {
			o.Stats.Refused++
			return
		}
		o.fail("t=" + fmtMs(nowMs) + " " + strings.Join(argv, " ") + ": unexpected error " + r.String())
		return
	}
	if msg := e.check(r); msg != "" {
		o.fail("t=" + fmtMs(nowMs) + " " + strings.Join(argv, " ") + ": " + msg)
	}
	if e.orNull && r.Kind == '_' {
		return // a watched EXEC that aborted: nothing written
	}
	if o.notify {
		if ev := notifyEventOf(argv, r); ev != "" {
			o.events = append(o.events, notifyEvent{event: ev, key: argv[1]})
		}
	}
	if e.write {
		o.Stats.Writes++
		o.countChanges(e.muts, nowMs)
		o.cur.apply(e.muts)
		o.pending = append(o.pending, pendingWrite{argv: argv, nowMs: nowMs, acked: true, ackMs: ackMs})
		if len(o.pending) > pendingFoldAt && !o.crashed {
			o.fold(nowMs)
		}
	}
}

// Evicted records a logged eviction of keys at nowMs (sim/evict.go): the
// keys leave the model as by a DEL that nobody acknowledged.
func (o *Oracle) Evicted(keys []string, nowMs int64) {
	argv := append([]string{"DEL"}, keys...)
	e := predict(o.cur, nowMs, argv)
	o.cur.apply(e.muts)
	o.pending = append(o.pending, pendingWrite{argv: argv, nowMs: nowMs})
}

// InFlight records a write the node was executing when it crashed: it may
// or may not have reached the disk.
func (o *Oracle) InFlight(argv []string, nowMs int64) {
	e := predict(o.cur, nowMs, argv)
	if !e.write {
		return
	}
	o.Stats.InFlight++
	o.cur.apply(e.muts)
	o.pending = append(o.pending, pendingWrite{argv: argv, nowMs: nowMs, mayAbort: e.orNull})
}

// Crashed marks the moment the node went down (its clock).
func (o *Oracle) Crashed(nowMs int64) {
	if !o.crashed {
		o.crashed, o.crashMs = true, nowMs
	}
}

// StartRefused counts a node that would not start from its disk. Only
// scenarios that rot bits at rest may see it.
func (o *Oracle) StartRefused(err string) {
	o.Stats.RefusedStarts++
	if o.dur.Kind != "any" {
		o.fail("node refused to start from its disk: " + err)
	}
}

// probeKey is what the recovery probe read for one key.
type probeKey struct {
	val    Reply // GET
	pttl   Reply // PTTL
	hasTTL bool
	// typed are the replies to typedProbe's reads (the grammar workload
	// only).
	typed []Reply
}

// typedProbe are the reads that see a key of any type whole, after GET
// and PTTL (the grammar workload's recovery probe).
var typedProbe = [][]string{{"HGETALL"}, {"LRANGE", "", "0", "-1"}, {"SMEMBERS"}, {"ZRANGE", "", "0", "-1", "WITHSCORES"}}

func typedProbeArgv(k string) [][]string {
	out := make([][]string, len(typedProbe))
	for i, p := range typedProbe {
		argv := append([]string{p[0], k}, p[min(2, len(p)):]...)
		out[i] = argv
	}
	return out
}

// probeDiffers reports whether key k's probe differs from st.
func probeDiffers(st state, k string, p probeKey, nowMs int64) bool {
	if !sameReply(predict(st, nowMs, []string{"get", k}).reply, p.val) ||
		(p.hasTTL && !sameReply(predict(st, nowMs, []string{"pttl", k}).reply, p.pttl)) {
		return true
	}
	for j, argv := range typedProbeArgv(k)[:len(p.typed)] {
		if predict(st, nowMs, argv).check(p.typed[j]) != "" {
			return true
		}
	}
	return false
}

// pendingFoldAt bounds the writes kept for prefix checks: past it, the
// writes that must be durable by now are folded into the base.
const pendingFoldAt = 4096

// mustSurvive is the length of the prefix of pending writes that a crash
// at crashMs may not lose: every acknowledged write under always, those
// acknowledged more than the window before the crash under a window (time
// the node spent stalled does not count: no fsync can run then), none
// under "any".
func (o *Oracle) mustSurvive(crashMs int64) int {
	minK := 0
	for i, w := range o.pending {
		if !w.acked {
			continue
		}
		switch o.dur.Kind {
		case "always":
			minK = i + 1
		case "window":
			if w.ackMs < crashMs-o.dur.WindowMs && w.ackMs < crashMs-o.dur.WindowMs-o.stalledBetween(w.ackMs, crashMs) {
				minK = i + 1
			}
		}
	}
	return minK
}

// fold moves the writes that must survive any crash from now on into the
// base state. Writes after them stay pending even across recoveries: a
// process restart recovers from the page cache, and a later power loss
// may still take unsynced writes from before that restart.
func (o *Oracle) fold(nowMs int64) {
	k := o.mustSurvive(nowMs)
	if k == 0 {
		return
	}
	for _, w := range o.pending[:k] {
		o.base.apply(predict(o.base, w.nowMs, w.argv).muts)
	}
	o.pending = append(o.pending[:0], o.pending[k:]...)
}

// Recovered checks the keyspace a node recovered (read at nowMs by the
// probe): it must equal the model after some prefix of the pending writes,
// at least as long as mustSurvive. The longest such prefix is adopted.
func (o *Oracle) Recovered(keys []string, probe []probeKey, nowMs int64) {
	o.Stats.Recoveries++
	minK := 0
	if o.crashed {
		minK = o.mustSurvive(o.crashMs)
	}
	// Each branch is the model after the prefix with some in-flight
	// watched EXECs aborted (skipped lists them).
	type branch struct {
		st      state
		skipped []int
	}
	branches := []branch{{st: o.base.clone()}}
	best, firstMatch := -1, -1
	var bestSkipped []int
	closest, closestDiff := 0, len(keys)+1
	for k := 0; ; k++ {
		for _, b := range branches {
			if d := diffProbe(b.st, keys, probe, nowMs); d < closestDiff {
				closest, closestDiff = k, d
			}
			if closestDiff == 0 {
				if firstMatch < 0 {
					firstMatch = k
				}
				if k >= minK {
					best, bestSkipped = k, b.skipped
				}
				closestDiff = len(keys) + 1 // keep looking for longer matches
			}
		}
		if k == len(o.pending) {
			break
		}
		w := o.pending[k]
		if w.mayAbort && 2*len(branches) <= abortBranchesMax {
			for _, b := range branches {
				branches = append(branches, branch{st: b.st.clone(), skipped: append(append([]int(nil), b.skipped...), k)})
			}
			for i := range branches[:len(branches)/2] {
				branches[i].st.apply(predict(branches[i].st, w.nowMs, w.argv).muts)
			}
			continue
		}
		for _, b := range branches {
			b.st.apply(predict(b.st, w.nowMs, w.argv).muts)
		}
	}
	if best < 0 {
		if firstMatch >= 0 {
			closest = firstMatch
		}
		o.fail(o.explain(keys, probe, nowMs, minK, firstMatch, closest))
		// Adopt what the node serves, so later checks stay meaningful
		// (with the libraries the model had: no probe reads them).
		o.base = probeState(keys, probe, nowMs)
		o.pending = o.pending[:0]
	} else {
		for _, w := range o.pending[best:] {
			if w.acked {
				o.Stats.LostWrites++
			}
		}
		o.pending = o.pending[:best]
		// The in-flight watched EXECs the match needed aborted wrote
		// nothing.
		for i := len(bestSkipped) - 1; i >= 0; i-- {
			if j := bestSkipped[i]; j < len(o.pending) {
				o.pending = append(o.pending[:j], o.pending[j+1:]...)
			}
		}
	}
	o.cur = o.base.clone()
	for _, w := range o.pending {
		o.cur.apply(predict(o.cur, w.nowMs, w.argv).muts)
	}
	o.crashed = false
	o.fold(nowMs)
}

func diffProbe(st state, keys []string, probe []probeKey, nowMs int64) int {
	d := 0
	for i, k := range keys {
		if probeDiffers(st, k, probe[i], nowMs) {
			d++
		}
	}
	return d
}

func probeState(keys []string, probe []probeKey, nowMs int64) state {
	st := state{}
	for i, k := range keys {
		v, ok := probedValue(probe[i])
		if ok {
			if probe[i].hasTTL && probe[i].pttl.Kind == ':' && probe[i].pttl.Int >= 0 {
				v.exp = nowMs + probe[i].pttl.Int
			}
			st[k] = v
		}
	}
	return st
}

func (o *Oracle) explain(keys []string, probe []probeKey, nowMs int64, minK, firstMatch, closest int) string {
	var b strings.Builder
	b.WriteString("recovery at t=" + fmtMs(nowMs) + " (crash at t=" + fmtMs(o.crashMs) + ", durability " + o.dur.Kind + "): ")
	if firstMatch >= 0 {
		b.WriteString("acknowledged writes lost: the recovered keyspace matches only " + strconv.Itoa(firstMatch) +
			" of " + strconv.Itoa(len(o.pending)) + " pending writes, but the first " + strconv.Itoa(minK) +
			" had to survive; first lost: ")
		for _, w := range o.pending[firstMatch:minK] {
			if w.acked {
				b.WriteString(strings.Join(w.argv, " ") + " (acknowledged t=" + fmtMs(w.ackMs) + ")")
				break
			}
		}
		return b.String()
	}
	b.WriteString("the recovered keyspace equals no prefix of the " + strconv.Itoa(len(o.pending)) +
		" writes that a crash could still undo (an invented value, a resurrected delete, or a lost write followed by a kept one). ")
	st := o.base.clone()
	for _, w := range o.pending[:closest] {
		st.apply(predict(st, w.nowMs, w.argv).muts)
	}
	b.WriteString("Closest is the prefix of " + strconv.Itoa(closest) + " writes")
	if closest > 0 {
		w := o.pending[closest-1]
		b.WriteString(" (last: " + strings.Join(w.argv, " ") + " at t=" + fmtMs(w.nowMs) + ")")
	}
	b.WriteString("; keys that differ from it (recovered vs model, value/pttl):")
	for i, k := range keys {
		gv := predict(st, nowMs, []string{"get", k}).reply
		gt := predict(st, nowMs, []string{"pttl", k}).reply
		if probeDiffers(st, k, probe[i], nowMs) {
			b.WriteString(" " + k + ": " + probe[i].val.String() + "/" + probe[i].pttl.String() + " vs " + gv.String() + "/" + gt.String())
			for j, argv := range typedProbeArgv(k)[:len(probe[i].typed)] {
				if e := predict(st, nowMs, argv); e.check(probe[i].typed[j]) != "" {
					b.WriteString(" " + argv[0] + " " + probe[i].typed[j].String() + " vs " + e.reply.String())
				}
			}
			// Where did the recovered value come from?
			for j := len(o.pending) - 1; j >= 0; j-- {
				w := o.pending[j]
				if len(w.argv) > 2 && w.argv[1] == k && w.argv[2] == probe[i].val.Str {
					b.WriteString(" (written by write " + strconv.Itoa(j+1) + ": " + strings.Join(w.argv, " ") + " at t=" + fmtMs(w.nowMs) + ")")
					break
				}
			}
			b.WriteString(";")
		}
	}
	return b.String()
}

func fmtMs(ms int64) string {
	ms -= simEpoch / 1e6
	return strconv.FormatInt(ms/1000, 10) + "." + pad3(ms%1000) + "s"
}

func pad3(n int64) string {
	s := strconv.FormatInt(n, 10)
	for len(s) < 3 {
		s = "0" + s
	}
	return s
}

// probedValue rebuilds a key's model value from its probe (GET, then the
// typed reads).
func probedValue(p probeKey) (kv, bool) {
	if p.val.Kind == '$' {
		return kv{val: p.val.Str}, true
	}
	if len(p.typed) != len(typedProbe) {
		return kv{}, false
	}
	if r := p.typed[0]; r.Kind == '*' && len(r.Elems) > 0 {
		h := map[string]string{}
		for i := 0; i+1 < len(r.Elems); i += 2 {
			h[r.Elems[i].Str] = r.Elems[i+1].Str
		}
		return kv{typ: tHash, h: h}, true
	}
	if r := p.typed[1]; r.Kind == '*' && len(r.Elems) > 0 {
		var l []string
		for _, e := range r.Elems {
			l = append(l, e.Str)
		}
		return kv{typ: tList, l: l}, true
	}
	if r := p.typed[2]; r.Kind == '*' && len(r.Elems) > 0 {
		m := map[string]struct{}{}
		for _, e := range r.Elems {
			m[e.Str] = struct{}{}
		}
		return kv{typ: tSet, s: m}, true
	}
	if r := p.typed[3]; r.Kind == '*' && len(r.Elems) > 0 {
		z := map[string]float64{}
		for i := 0; i+1 < len(r.Elems); i += 2 {
			f, _ := parseFloatArg(r.Elems[i+1].Str)
			z[r.Elems[i].Str] = f
		}
		return kv{typ: tZSet, z: z}, true
	}
	return kv{}, false
}

type watchSnap struct {
	key     string
	changes int64
}

// countChanges counts the keys muts change (a write that leaves a key as
// it was is not counted: Redis may or may not call it a modification).
func (o *Oracle) countChanges(muts []mutation, nowMs int64) {
	if o.changes == nil {
		return
	}
	for _, m := range muts {
		old, had := o.cur.get(m.key, nowMs) // an expired key counts as gone
		if m.del && !had || !m.del && had && sameKV(old, m.v) {
			continue
		}
		o.changes[m.key]++
	}
}

// watchCheck is the grammar workload's WATCH check, one-sided: the
// workload WATCHes a key and reads it with TOUCH (which nothing else
// sends) on one connection, then sends its block; if a write changed the
// key in between, in the node's execution order, the EXEC must abort
// (answer null). Aborting when nothing changed stays allowed (an expiry,
// or a write that left the key as it was, may count as a change).
func (o *Oracle) watchCheck(conn uint64, words []string, r Reply, nowMs int64) {
	if o.changes == nil {
		o.changes, o.watched = map[string]int64{}, map[uint64]watchSnap{}
	}
	if len(words) == 2 && strings.EqualFold(words[0], "touch") {
		o.watched[conn] = watchSnap{key: words[1], changes: o.changes[words[1]]}
		return
	}
	if _, ok := txnCommands(words); !ok {
		return
	}
	w, ok := o.watched[conn]
	if !ok {
		return
	}
	delete(o.watched, conn)
	o.Stats.WatchChecked++
	if o.changes[w.key] != w.changes && r.Kind != '_' {
		o.fail("t=" + fmtMs(nowMs) + " " + strings.Join(words, " ") + ": EXEC ran although its watched key " + w.key +
			" changed " + strconv.FormatInt(o.changes[w.key]-w.changes, 10) + " time(s) since the WATCH (reply " + r.String() + ")")
	}
}

// sameKV reports whether two model values are the same.
func sameKV(a, b kv) bool {
	if a.typ != b.typ || a.val != b.val || a.exp != b.exp || len(a.h) != len(b.h) || len(a.l) != len(b.l) || len(a.s) != len(b.s) || len(a.z) != len(b.z) {
		return false
	}
	for k, v := range a.h {
		if w, ok := b.h[k]; !ok || w != v {
			return false
		}
	}
	for i := range a.l {
		if a.l[i] != b.l[i] {
			return false
		}
	}
	for k := range a.s {
		if _, ok := b.s[k]; !ok {
			return false
		}
	}
	for k, v := range a.z {
		if w, ok := b.z[k]; !ok || w != v {
			return false
		}
	}
	return true
}
