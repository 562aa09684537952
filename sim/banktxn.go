package sim

import (
	"strconv"
	"strings"

	"github.com/keel-db/keel/checker"
	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
)

// The transfer workload through transactions (BankConfig.Multi): a
// transfer is MULTI INCRBY from -amt INCRBY to amt EXEC, handed to the
// replica as one cluster.Txn, exactly as the server hands over an EXEC;
// every balance is read either with MGET or with a read-only EXEC of one
// GET per account. The checker's bank model holds every complete read to
// the opening total and treats the EXEC as one atomic transfer
// (Op.Overdraft: nothing refuses it, balances may go negative), so a
// crash that kept one half of a transfer shows up as a read whose sum is
// off, or as a history with no linearization.
//
// A transaction travels through the simulator as words: "EXEC" followed
// by its commands separated by txnSep (no workload argument is txnSep).

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

// txnCommands splits words made by txnWords; ok is false for a plain
// command (a bare EXEC is not a transaction here).
func txnCommands(words []string) (cmds [][]string, ok bool) {
	if len(words) < 2 || !strings.EqualFold(words[0], "exec") {
		return nil, false
	}
	cur := []string{}
	for _, w := range words[1:] {
		if w == txnSep {
			cmds = append(cmds, cur)
			cur = []string{}
			continue
		}
		cur = append(cur, w)
	}
	return append(cmds, cur), true
}

// requestFor builds the replica request for one client request.
func requestFor(argv [][]byte, words []string, w engine.Writer) cluster.Request {
	cmds, ok := txnCommands(words)
	if !ok {
		return cluster.Request{Argv: argv, W: w}
	}
	t := &cluster.Txn{}
	for _, c := range cmds {
		a := make([][]byte, len(c))
		for i, s := range c {
			a[i] = []byte(s)
		}
		t.Cmds = append(t.Cmds, a)
	}
	return cluster.Request{Argv: [][]byte{[]byte("EXEC")}, W: w, Txn: t}
}

// predictTxn runs every command of a transaction against a copy of s:
// one array reply, and the writes of all of them as one.
func predictTxn(s state, nowMs int64, cmds [][]string) expectation {
	cur := s
	copied := false
	out := expectation{reply: Reply{Kind: '*', Elems: make([]Reply, 0, len(cmds))}}
	for _, c := range cmds {
		e := predict(cur, nowMs, c)
		out.reply.Elems = append(out.reply.Elems, e.reply)
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
	acct := func(i int) string { return "k" + strconv.Itoa(i) }
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
	switch p := c.rng.IntN(100); {
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
