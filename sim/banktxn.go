package sim

import (
	"strconv"
	"strings"

	"github.com/keel-db/keel/checker"
)

// The transfer workload through transactions (BankConfig.Multi): a
// transfer is MULTI INCRBY from -amt INCRBY to amt EXEC, sent as one
// pipeline on a real connection, so the node's session queues the block
// and hands EXEC to the replica as one cluster.Txn, exactly as for any
// client; every balance is read either with MGET or with a read-only
// EXEC of one GET per account. The checker's bank model holds every
// complete read to the opening total and treats the EXEC as one atomic
// transfer (Op.Overdraft: nothing refuses it, balances may go negative),
// so a crash that kept one half of a transfer shows up as a read whose
// sum is off, or as a history with no linearization.
//
// With BankConfig.Watch a transfer is a WATCH-retry loop through the
// session's own WATCH: WATCH the payer and GET it (one pipeline), then,
// on the same connection, MULTI INCRBY INCRBY EXEC; a null EXEC (the key
// changed) starts it over, and so does a connection that broke in between
// (its WATCH is gone with the session).
//
// A transaction is spelled as words while the workload builds it: "EXEC"
// followed by its commands separated by txnSep (no workload argument is
// txnSep); opCommands turns it into the pipeline sent.

const txnSep = ";"

// txnWords encodes a transaction's commands as one request's words.
func txnWords(cmds ...[]string) []string {
	w := []string{"EXEC"}
	for i, c := range cmds {
		if i > 0 {
			w = append(w, txnSep)
		}
		w = append(w, c...)
	}
	return w
}

// Markers right after "EXEC": the words are a WATCH of the key and a
// read of it (txnObserve), or the block runs under the watch its
// connection took (txnWatched; the oracle then allows a null answer).
const (
	txnObserve = "+observe"
	txnWatched = "+watched"
)

// opCommands is the pipeline an operation sends.
func opCommands(op *opSpec) [][]string {
	cmds, marker, ok := txnParse(op.argv)
	if !ok {
		return [][]string{op.argv}
	}
	if marker == txnObserve {
		return [][]string{{"WATCH", cmds[0][1]}, cmds[0]}
	}
	out := [][]string{{"MULTI"}}
	out = append(out, cmds...)
	return append(out, []string{"EXEC"})
}

// txnCommands splits words made by txnWords; ok is false for a plain
// command (a bare EXEC is not a transaction here).
func txnCommands(words []string) (cmds [][]string, ok bool) {
	cmds, _, ok = txnParse(words)
	return cmds, ok
}

func txnParse(words []string) (cmds [][]string, marker string, ok bool) {
	if len(words) < 2 || !strings.EqualFold(words[0], "exec") {
		return nil, "", false
	}
	rest := words[1:]
	if rest[0] == txnObserve || rest[0] == txnWatched {
		marker, rest = rest[0], rest[1:]
	}
	cur := []string{}
	for _, w := range rest {
		if w == txnSep {
			cmds = append(cmds, cur)
			cur = []string{}
			continue
		}
		cur = append(cur, w)
	}
	return append(cmds, cur), marker, true
}

// predictTxn runs every command of a transaction against a copy of s:
// one array reply, and the writes of all of them as one.
func predictTxn(s state, nowMs int64, words []string) expectation {
	cmds, marker, _ := txnParse(words)
	e := predictBlock(s, nowMs, cmds)
	e.orNull = marker == txnWatched
	return e
}

func predictBlock(s state, nowMs int64, cmds [][]string) expectation {
	cur := s
	copied := false
	out := expectation{reply: Reply{Kind: '*', Elems: make([]Reply, 0, len(cmds))}}
	for _, c := range cmds {
		e := predict(cur, nowMs, c)
		out.reply.Elems = append(out.reply.Elems, e.reply)
		out.elemUnordered = append(out.elemUnordered, e.unordered)
		if e.write {
			out.write = true
			out.muts = append(out.muts, e.muts...)
			if !copied {
				cur, copied = s.clone(), true
			}
			cur.apply(e.muts)
		}
	}
	return out
}

// genBankMulti is genBank for BankConfig.Multi.
func (c *Client) genBankMulti() opSpec {
	b := c.r.cfg.Workload.Bank
	n := c.r.cfg.Workload.PlainKeys
	acct := c.r.cfg.Workload.keyName // k0.. (or tagged: KeyTags)
	if !c.r.bank.ready {
		step := c.r.bank.step
		c.r.bank.step++
		if step < n {
			v := strconv.FormatInt(b.Opening, 10)
			return opSpec{argv: []string{"SET", acct(step), v}, hist: &checker.Op{Kind: checker.Set, Key: acct(step), Value: v}}
		}
		c.r.bank.ready = true
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = acct(i)
	}
	if b.Watch {
		if op, ok := c.genWatchStep(acct); ok {
			return op
		}
	}
	switch p := c.rng.IntN(100); {
	case p < 60 && b.Watch:
		from := c.rng.IntN(n)
		f := c.watchFlow()
		f.from, f.to = acct(from), acct((from+1+c.rng.IntN(n-1))%n)
		f.amt = 1 + c.rng.Int64N(b.AmountMax)
		return c.observeOp(f)
	case p < 60:
		from := c.rng.IntN(n)
		to := (from + 1 + c.rng.IntN(n-1)) % n
		amt := 1 + c.rng.Int64N(b.AmountMax)
		a := strconv.FormatInt(amt, 10)
		return opSpec{argv: txnWords([]string{"INCRBY", acct(from), "-" + a}, []string{"INCRBY", acct(to), a}),
			hist: &checker.Op{Kind: checker.Transfer, From: acct(from), To: acct(to), Amount: amt, Overdraft: true}}
	case p < 80:
		return opSpec{argv: append([]string{"MGET"}, keys...), hist: &checker.Op{Kind: checker.MGet, Keys: keys}}
	default:
		// A read-only EXEC: one consistent state, never logged.
		gets := make([][]string, n)
		for i, k := range keys {
			gets[i] = []string{"GET", k}
		}
		return opSpec{argv: txnWords(gets...), hist: &checker.Op{Kind: checker.MGet, Keys: keys}}
	}
}

// multiTransferOutput maps a transfer EXEC's reply to the bank model's
// output: two integers (the new balances) mean it ran.
func multiTransferOutput(r Reply) (checker.Value, bool) {
	if r.Kind == '*' && len(r.Elems) == 2 && r.Elems[0].Kind == ':' && r.Elems[1].Kind == ':' {
		return checker.Str("OK"), true
	}
	return checker.Value{}, false
}

// watchFlow is one client's WATCH-retry transfer in progress.
type watchFlow struct {
	from, to string
	amt      int64
	stage    int // watchIdle, watchObserving, watchReady, watchExecuting
	// conn is the connection the WATCH went on: the EXEC must go there.
	conn *conn
}

const (
	watchIdle = iota
	watchObserving
	watchReady
	watchExecuting
)

func (c *Client) watchFlow() *watchFlow {
	if c.r.bank.watch == nil {
		c.r.bank.watch = map[uint64]*watchFlow{}
	}
	f := c.r.bank.watch[c.id]
	if f == nil {
		f = &watchFlow{}
		c.r.bank.watch[c.id] = f
	}
	return f
}

// observeOp reads the payer's balance under a fresh WATCH.
func (c *Client) observeOp(f *watchFlow) opSpec {
	f.stage, f.conn = watchObserving, nil
	return opSpec{argv: []string{"EXEC", txnObserve, "GET", f.from}, keepsSession: true}
}

// genWatchStep continues a transfer in progress: the EXEC once the
// balance was read and covers the amount.
func (c *Client) genWatchStep(acct func(int) string) (opSpec, bool) {
	f := c.watchFlow()
	if f.stage == watchRetrying {
		return c.observeOp(f), true
	}
	if f.stage != watchReady {
		return opSpec{}, false
	}
	f.stage = watchExecuting
	a := strconv.FormatInt(f.amt, 10)
	words := append([]string{"EXEC", txnWatched}, "INCRBY", f.from, "-"+a, txnSep, "INCRBY", f.to, a)
	return opSpec{argv: words, hist: &checker.Op{Kind: checker.Transfer, From: f.from, To: f.to, Amount: f.amt}, session: f.conn}, true
}

// bankReplied advances the client's WATCH-retry flow with a reply (nil:
// outcome unknown). A watched EXEC that answered null changed nothing: it
// leaves the history and the transfer starts over.
func (c *Client) bankReplied(op *opSpec, r *Reply) {
	b := c.r.cfg.Workload.Bank
	if b == nil || !b.Watch || c.r.bank.watch[c.id] == nil {
		return
	}
	f := c.r.bank.watch[c.id]
	switch f.stage {
	case watchObserving:
		f.stage = watchIdle
		if r == nil || r.IsError() {
			return
		}
		var bal int64
		if r.Kind == '$' {
			bal, _ = strconv.ParseInt(r.Str, 10, 64)
		}
		if bal >= f.amt {
			f.stage, f.conn = watchReady, op.session
		}
	case watchExecuting:
		f.stage = watchIdle
		if r != nil && r.Kind == '_' {
			op.hist = nil
			c.r.bank.watchRetries++
			c.r.W.Trace(c.name, "watch: EXEC aborted (null), retrying the transfer")
			c.watchRetry(f)
		}
	}
}

// watchRetry makes the client's next operation the observing read again.
func (c *Client) watchRetry(f *watchFlow) { f.stage = watchRetrying }

const watchRetrying = watchExecuting + 1
