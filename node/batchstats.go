package node

import (
	"bytes"
	"sync/atomic"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/resp"
)

// A session notes what each command of its batch did (a cmdRec) as it
// runs it, and at the batch's end folds the notes into the node's command
// statistics (cmdstats.go), the slow log and the latency monitor.
//
// Time: the session reads the node's clock at the batch's start (Begin),
// when a step it handed out is answered, and at the batch's end if
// commands ran since the last reading. Each stretch between two readings
// is divided evenly among the commands it answered: a request's share of
// its step is its time in the group's queue, on the replica and, in a
// replicated group, until its entry commits, which is what its client
// waited for; a command answered by the session (PING, INFO) gets the
// time the session spent on it. A continuation's command (a node-wide
// command merged from several groups) keeps collecting until it is
// answered. Per-command clock readings would cost more than the commands.
//
// Errors: the session looks at a step's replies only when the writer's
// error count moved (resp.Writer.Errors), or when some must be dropped
// (CLIENT REPLY) or an EXEC's elements attributed to its commands; an
// error's code and its text say whether the command failed or was
// rejected (classifyError).

// Record flags.
const (
	recStep     uint16 = 1 << iota // answered by the step it went out in
	recInner                       // one of an EXEC's commands: its reply is an element of the EXEC's
	recCont                        // answered by a continuation, after steps of its own
	recRejected                    // refused before it ran (arity, NOAUTH, NOPERM, MOVED, ...)
	recFailed                      // ran and answered an error
	recQuiet                       // CLIENT REPLY OFF or SKIP: its reply is dropped
	recNotRun                      // an EXEC's command that never ran (the block was aborted)
	recNoStat                      // counted nowhere: queued in MULTI (the EXEC counts it)
)

// cmdRec is what one command of the batch did.
type cmdRec struct {
	argv  [][]byte // valid until the batch ends (the slow log copies it)
	ns    int64
	id    int32 // statRegistry id, -1: no command statistics
	inner int32 // EXEC: how many recInner records follow it
	flags uint16
}

// sessionObs is a session's part in the node's observability: the batch's
// records, CLIENT REPLY, MONITOR, and the buffer figures CLIENT LIST shows.
type sessionObs struct {
	recs []cmdRec
	open int   // recs[open:] have not had their time yet
	t    int64 // the clock at the last reading
	// The step out: the first record it answers, where its replies
	// start in Out and Out's error count then; scan: some of its records
	// need their replies looked at (a quiet one, an EXEC).
	stepFirst, stepAt, stepErrs int
	stepScan                    bool
	// cont is the record whose continuation runs (-1: none), contAt and
	// contErrs where its reply starts and Out's error count then.
	cont, contAt, contErrs int
	// waited: the batch waited for CLIENT UNPAUSE; the wait is no
	// command's time.
	waited bool
	// queued: the command just run was queued in MULTI.
	queued bool
	// quiet: the command about to run has its reply dropped; shown: the
	// command just run (CLIENT REPLY ON) is answered anyway.
	quiet, shown bool

	// CLIENT REPLY: OFF drops every reply; SKIP the next command's.
	replyOff, skipNext bool
	// pauseUntil: the command met holds for CLIENT PAUSE (pause.go).
	pauseUntil int64

	// A MULTI block's connection commands (multi_side.go): txnGroup is
	// the group its EXEC went to, side that group while one of them runs
	// inside the step, ahead the replies computed at EXEC and aheadNext
	// the next one to write.
	txnGroup, side uint64
	ahead          [][]byte
	aheadNext      int

	// Caches of the last statistics id found, for pipelines of one command.
	lastEC   *engine.Command
	lastECID int32
	lastSC   *serverCommand
	lastSCID int32

	// monitor: the session ran MONITOR (monitor.go). monOwn holds the
	// lines of its own commands until its replies are out, as Redis
	// shows a monitor its own command after answering it.
	monitor bool
	monOwn  []byte

	// Mirrors for CLIENT LIST, read from other goroutines.
	noEvict atomic.Bool
	argvMem atomic.Int64 // arguments of the batch in progress
	outLen  atomic.Int64 // output being written
	outCap  atomic.Int64 // the output buffer's capacity (rbs)
	outPeak atomic.Int64 // the largest output of a batch (rbp)
}

// obsBegin starts the batch's records; now is the clock at Begin.
func (c *Session) obsBegin(now int64, cmds [][][]byte) {
	o := &c.obs
	o.t, o.open, o.stepFirst, o.cont = now, 0, 0, -1
	var mem int64
	for _, argv := range cmds {
		for _, a := range argv {
			mem += int64(len(a))
		}
	}
	o.argvMem.Store(mem)
}

// obsBefore is taken before the session runs a command itself.
func (c *Session) obsBefore() (at, errs, nreqs int) {
	o := &c.obs
	o.queued, o.shown = false, false
	o.quiet = o.replyOff || o.skipNext
	o.skipNext = false
	return c.Out.Len(), c.Out.Errors(), len(c.reqs)
}

// noteGathered records a request gathered for the step (ec: its engine
// command, nil for the replica's own).
func (c *Session) noteGathered(ec *engine.Command, argv [][]byte) {
	o := &c.obs
	var id int32
	switch {
	case ec == nil:
		id = statID(argv)
	case ec == o.lastEC:
		id = o.lastECID
	default:
		got, ok := statTable().byEngine[ec]
		if !ok || len(argv) > 1 && ec.Name == "object" {
			id = statID(argv) // a subcommand: object|encoding
		} else {
			id = got
			o.lastEC, o.lastECID = ec, id
		}
	}
	flags := recStep
	if o.replyOff || o.skipNext {
		flags |= recQuiet
		o.skipNext = false
		o.stepScan = true
	}
	o.recs = append(o.recs, cmdRec{argv: argv, id: id, flags: flags})
	if c.n.mon.active.Load() > 0 && (ec == nil || ec.ArityOK(len(argv))) {
		c.feedMonitors(argv, id)
	}
}

// noteRun records a command the session ran itself (at, errs, nreqs
// from obsBefore): answered now, by the step it gathered (EXEC, a
// node-wide command on one group) or by a continuation.
func (c *Session) noteRun(argv [][]byte, at, errs, nreqs int) {
	o := &c.obs
	rec := cmdRec{argv: argv, id: -1}
	quiet := o.quiet && !o.shown
	if o.queued {
		rec.flags |= recNoStat
	} else {
		rec.id = c.sessionStatID(argv)
	}
	switch {
	case c.cont != nil:
		rec.flags |= recCont
		if quiet {
			rec.flags |= recQuiet
		}
		o.cont, o.contAt, o.contErrs = len(o.recs), at, errs
		o.recs = append(o.recs, rec)
		c.feedIfCalled(&rec)
	case len(c.reqs) > nreqs:
		rec.flags |= recStep
		if quiet {
			rec.flags |= recQuiet
			o.stepScan = true
		}
		var txn *cluster.Txn
		if last := c.reqs[len(c.reqs)-1]; last.Txn != nil {
			txn = last.Txn
			rec.inner = int32(len(txn.Cmds))
			o.stepScan = true
			o.txnGroup = c.runGroup
			c.runAhead(txn)
		}
		o.recs = append(o.recs, rec)
		if txn != nil {
			for _, cmd := range txn.Cmds {
				inner := cmdRec{argv: cmd, id: statID(cmd), flags: recStep | recInner}
				o.recs = append(o.recs, inner)
				c.feedIfCalled(&inner)
			}
		}
		c.feedIfCalled(&rec)
	default:
		if c.Out.Errors() != errs {
			c.classifyAt(&rec, at)
		}
		if quiet {
			c.Out.Cut(at, c.Out.Len())
		}
		o.recs = append(o.recs, rec)
		c.feedIfCalled(&rec)
	}
}

// sessionStatID is statID with a cache for commands without subcommands.
func (c *Session) sessionStatID(argv [][]byte) int32 {
	o := &c.obs
	sc := lookupServerCommand(argv[0])
	if sc == nil || len(sc.subs) > 0 {
		return statID(argv)
	}
	if sc == o.lastSC {
		return o.lastSCID
	}
	id, ok := statTable().byServer[sc]
	if !ok {
		return statID(argv)
	}
	o.lastSC, o.lastSCID = sc, id
	return id
}

// noteYield marks where the step's replies will start.
func (c *Session) noteYield() {
	c.obs.stepAt, c.obs.stepErrs = c.Out.Len(), c.Out.Errors()
}

// obsStepDone runs when the step out is answered: its replies are looked
// at if need be, and the stretch since the last reading is shared out.
func (c *Session) obsStepDone() {
	o := &c.obs
	if o.stepFirst < len(o.recs) {
		if o.stepScan || c.Out.Errors() != o.stepErrs {
			c.scanStep()
		}
		o.stepFirst, o.stepScan = len(o.recs), false
	}
	c.obsReading(c.n.clock.Now())
}

// obsContDone runs after a continuation returned without setting another:
// its command is answered, or (a last request writing to Out) will be by
// the step it just gathered.
func (c *Session) obsContDone() {
	o := &c.obs
	if o.cont < 0 {
		return
	}
	i := o.cont
	o.cont = -1
	r := &o.recs[i]
	if len(c.reqs) > 0 {
		r.flags = r.flags&^recCont | recStep
		o.stepFirst, o.stepScan = i, true
		return
	}
	if c.Out.Errors() != o.contErrs {
		c.classifyAt(r, o.contAt)
	}
	if r.flags&recQuiet != 0 {
		c.Out.Cut(o.contAt, c.Out.Len())
	}
}

// obsReading shares the time since the last reading among the records
// that have not had theirs.
func (c *Session) obsReading(now int64) {
	o := &c.obs
	if k := len(o.recs) - o.open; k > 0 {
		share := max(now-o.t, 0) / int64(k)
		for i := o.open; i < len(o.recs); i++ {
			o.recs[i].ns += share
		}
		o.open = len(o.recs)
		if o.cont >= 0 {
			o.open = o.cont // still running: it keeps collecting
		}
	}
	o.t = now
}

// obsEnd ends the batch: the last stretch is shared out and the records
// are folded into the node's statistics.
func (c *Session) obsEnd() {
	o := &c.obs
	if o.open < len(o.recs) {
		c.obsReading(c.n.clock.Now())
	}
	if len(o.recs) > 0 {
		c.n.foldBatch(c, o.recs)
	}
	clear(o.recs)
	o.recs = o.recs[:0]
	o.argvMem.Store(0)
}

// scanStep walks the replies of the step just answered: errors counted
// and attributed, quiet replies cut out, an EXEC's elements attributed to
// its commands.
func (c *Session) scanStep() {
	o := &c.obs
	b := c.Out.Bytes()
	pos := o.stepAt
	var cuts [][2]int
	for i := o.stepFirst; i < len(o.recs); i++ {
		r := &o.recs[i]
		if r.flags&recStep == 0 || r.flags&recInner != 0 {
			continue
		}
		if pos > len(b) {
			break
		}
		start := pos
		if r.inner > 0 {
			pos = c.scanExec(b, pos, i)
		} else {
			end, errText, ok := replyEnd(b, pos)
			if !ok {
				break
			}
			if errText != nil {
				c.classify(r, errText)
			}
			pos = end
		}
		if r.flags&recQuiet != 0 {
			cuts = append(cuts, [2]int{start, pos})
		}
	}
	for j := len(cuts) - 1; j >= 0; j-- {
		c.Out.Cut(cuts[j][0], cuts[j][1])
	}
}

// scanExec reads the reply of the EXEC record i at b[pos:]: an array of
// its commands' replies, or (aborted, refused) no command ran.
func (c *Session) scanExec(b []byte, pos, i int) int {
	o := &c.obs
	r := &o.recs[i]
	inner := o.recs[i+1 : i+1+int(r.inner)]
	notRun := func() {
		for j := range inner {
			inner[j].flags |= recNotRun
		}
	}
	if pos >= len(b) {
		return pos
	}
	if b[pos] != '*' {
		end, errText, ok := replyEnd(b, pos)
		if errText != nil {
			c.classify(r, errText)
		}
		notRun()
		if !ok {
			return len(b)
		}
		return end
	}
	nl := bytes.IndexByte(b[pos:], '\n')
	if nl < 2 {
		notRun()
		return len(b)
	}
	n, ok := resp.ParseInt(b[pos+1 : pos+nl-1])
	if !ok || n != int64(len(inner)) {
		notRun() // a null array: a watched key changed
		end, _, _ := replyEnd(b, pos)
		return end
	}
	pos += nl + 1
	for j := range inner {
		end, errText, ok := replyEnd(b, pos)
		if !ok {
			return len(b)
		}
		if errText != nil {
			c.classify(&inner[j], errText)
		}
		pos = end
	}
	return pos
}

// classifyAt classifies the first reply written at Out[at:].
func (c *Session) classifyAt(r *cmdRec, at int) {
	b := c.Out.Bytes()
	if at >= len(b) {
		return // moved to the outbox (a subscriber's), or none
	}
	if _, errText, _ := replyEnd(b, at); errText != nil {
		c.classify(r, errText)
	}
}

// classify counts an error reply of r's command.
func (c *Session) classify(r *cmdRec, errText []byte) {
	code, rejected, unknown := classifyError(errText)
	c.n.noteError(code)
	switch {
	case unknown:
		r.id = -1 // Redis counts an unknown (sub)command in errorstats only
	case rejected:
		r.flags |= recRejected
	default:
		r.flags |= recFailed
	}
}

// rejections are the errors Redis gives before a command runs (counted
// as rejected_calls): its arity, authentication, permissions, memory,
// the cluster's redirects, a server that cannot take it now.
var rejections = []string{
	"ERR wrong number of arguments", "NOAUTH ", "NOPERM ", "OOM ", "MOVED ", "ASK ", "TRYAGAIN ",
	"CROSSSLOT ", "CLUSTERDOWN ", "READONLY ", "MISCONF ", "BUSY ", "LOADING ", "MASTERDOWN ",
	"NOREPLICAS ", "ERR Command not allowed inside a transaction", "ERR Can't execute '",
}

// classifyError reads an error reply's text: its code (the first word,
// within 32 bytes, else ERR, as Redis's errorstats), whether it is a
// rejection, and whether it names an unknown command or subcommand.
func classifyError(text []byte) (code []byte, rejected, unknown bool) {
	code = []byte("ERR")
	if sp := bytes.IndexByte(text[:min(len(text), 31)], ' '); sp > 0 {
		code = text[:sp]
	}
	if bytes.HasPrefix(text, []byte("ERR unknown command ")) || bytes.HasPrefix(text, []byte("ERR unknown subcommand ")) {
		return code, true, true
	}
	for _, p := range rejections {
		if len(text) >= len(p) && string(text[:len(p)]) == p {
			return code, true, false
		}
	}
	return code, false, false
}

// replyEnd reads the whole reply that starts at b[pos]: where it ends
// and, when it is an error, the error's text. ok is false when b does not
// hold all of it.
func replyEnd(b []byte, pos int) (end int, errText []byte, ok bool) {
	pending := 1
	first := true
	for pending > 0 {
		if pos >= len(b) {
			return len(b), errText, false
		}
		nl := bytes.IndexByte(b[pos:], '\n')
		if nl < 1 {
			return len(b), errText, false
		}
		typ, line := b[pos], b[pos+1:pos+nl-1]
		next := pos + nl + 1
		pending--
		switch typ {
		case '-':
			if first {
				errText = line
			}
		case '$', '=', '!':
			if n, ok := resp.ParseInt(line); ok && n >= 0 {
				if typ == '!' && first && next+int(n) <= len(b) {
					errText = b[next : next+int(n)]
				}
				next += int(n) + 2
			}
		case '*', '~', '>', '%', '|':
			if n, ok := resp.ParseInt(line); ok && n > 0 {
				if typ == '%' || typ == '|' {
					n *= 2
				}
				pending += int(n)
			}
			if typ == '|' {
				pending++ // an attribute comes before the reply it describes
			}
		}
		first = false
		pos = next
	}
	return min(pos, len(b)), errText, pos <= len(b)
}

// foldBatch adds a finished batch's records to the statistics, the slow
// log and the latency monitor.
func (n *Node) foldBatch(c *Session, recs []cmdRec) {
	s := &n.cstats
	track := s.tracking.Load()
	sh := s.shard(c.id)
	sh.mu.Lock()
	for i := range recs {
		r := &recs[i]
		if r.id < 0 || r.flags&(recNoStat|recNotRun) != 0 {
			continue
		}
		cs := &sh.cmds[r.id]
		if r.flags&recRejected != 0 {
			cs.rejected++
			continue
		}
		cs.calls++
		cs.nanos += r.ns
		if r.flags&recFailed != 0 {
			cs.failed++
		}
		if track {
			if cs.hist == nil {
				cs.hist = new(latencyHist)
			}
			cs.hist[histIndex(r.ns)]++
		}
	}
	sh.mu.Unlock()
	slower, latencyMs := n.slowlog.slowerMicros.Load(), n.latency.thresholdMs.Load()
	if slower < 0 && latencyMs <= 0 {
		return
	}
	tab := statTable()
	for i := range recs {
		r := &recs[i]
		if r.id < 0 || r.flags&(recNoStat|recNotRun|recRejected) != 0 {
			continue
		}
		if slower >= 0 && r.ns/1000 >= slower && !tab.info[r.id].skipSlowlog {
			n.slowlogAdd(c, r)
		}
		if latencyMs > 0 && r.ns/1e6 >= latencyMs {
			event := "command"
			if tab.info[r.id].fast {
				event = "fast-command"
			}
			n.NoteLatency(event, r.ns)
		}
	}
}

// noteOutput mirrors the batch's output about to be written, for CLIENT
// LIST's omem, rbs and rbp.
func (c *Session) noteOutput(size int) {
	o := &c.obs
	o.outLen.Store(int64(size))
	o.outCap.Store(int64(c.Out.Cap()))
	if int64(size) > o.outPeak.Load() {
		o.outPeak.Store(int64(size))
	}
}
