package sim

import (
	"strconv"
	"strings"

	"github.com/keel-db/keel/checker"
)

// BankConfig turns the workload into the transfer workload through WASM
// functions (docs/functions.md): one client loads the library and opens
// the accounts (the plain keys k0..), then every client moves money with
// FCALL transfer, reads every account with MGET (the checker's bank model
// holds each complete read to the opening total) and reads single
// balances with FCALL_RO balance.
type BankConfig struct {
	// Library is the FUNCTION LOAD payload ("#!wasm name=...\n" + module)
	// of a library exporting transfer and balance as in
	// testdata/functions/transfer.c.
	Library string
	// Opening is every account's opening balance.
	Opening int64
	// AmountMax bounds one transfer (amounts are 1..AmountMax).
	AmountMax int64
	// Multi moves money with transactions instead of functions (MULTI
	// INCRBY INCRBY EXEC, no Library needed; see banktxn.go).
	Multi bool
	// Watch (with Multi) makes each transfer a WATCH-retry loop: read the
	// payer's balance under WATCH, give up if it is short, else EXEC the
	// two INCRBYs under the watch and start over when EXEC answers null.
	Watch bool
	// SplitPct is the share (percent) of FCALL transfers sent to
	// transfer_split instead (scenarios/testdata/bank2.c: it reads and
	// writes each key twice); the Library must export it.
	SplitPct int
}

// bankSetupClient runs the setup before anyone else issues anything.
const bankSetupClient = 0

// bankProgress is the setup's progress: the library load, then one SET per
// account, issued in order by the setup client.
type bankProgress struct {
	step  int
	ready bool
	watch map[uint64]*watchFlow // by client id (banktxn.go)
	// watchRetries counts watched EXECs that answered null.
	watchRetries int
}

// bankWaiting reports whether c must hold back while the setup runs.
func (c *Client) bankWaiting() bool {
	b := c.r.cfg.Workload.Bank
	// A queue workload through functions loads its library first, the
	// same way (queue.go).
	setup := b != nil || (c.r.cfg.Workload.Queue != nil && c.r.cfg.Workload.Queue.Library != "")
	return setup && !c.r.bank.ready && c.id-clientIDBase != bankSetupClient
}

func (c *Client) genBank() opSpec {
	b := c.r.cfg.Workload.Bank
	if b.Multi {
		return c.genBankMulti()
	}
	n := c.r.cfg.Workload.PlainKeys
	acct := c.r.cfg.Workload.keyName // k0.. (or tagged: KeyTags)
	// In a multi-group world the library is loaded through every node
	// first (FUNCTION LOAD runs on the groups the receiving node leads),
	// and again wherever a call finds it missing (reloadAt).
	loads := 1
	if c.multiGroup() {
		loads = len(c.r.Group.Nodes)
	}
	if !c.r.bank.ready {
		// Only the setup client gets here. Each step is issued after the
		// previous one answered, so the accounts are all open (or the
		// outcome of one is unknown) before anyone else starts.
		step := c.r.bank.step
		c.r.bank.step++
		switch {
		case step < loads:
			op := opSpec{argv: []string{"FUNCTION", "LOAD", b.Library}}
			if c.multiGroup() {
				op.at = c.r.Group.Nodes[step]
			}
			return op
		case step < loads+n:
			v := strconv.FormatInt(b.Opening, 10)
			k := acct(step - loads)
			return opSpec{argv: []string{"SET", k, v}, hist: &checker.Op{Kind: checker.Set, Key: k, Value: v}}
		}
		c.r.bank.ready = true
	}
	if len(c.r.cfg.Workload.KeyTags) > 0 {
		return c.genTaggedBank()
	}
	switch p := c.rng.IntN(100); {
	case p < 60:
		from := c.rng.IntN(n)
		to := (from + 1 + c.rng.IntN(n-1)) % n
		amt := 1 + c.rng.Int64N(b.AmountMax)
		fn := "transfer"
		if b.SplitPct > 0 && c.rng.IntN(100) < b.SplitPct {
			fn = "transfer_split"
		}
		return opSpec{argv: []string{"FCALL", fn, "2", acct(from), acct(to), strconv.FormatInt(amt, 10)},
			hist: &checker.Op{Kind: checker.Transfer, From: acct(from), To: acct(to), Amount: amt}}
	case p < 85:
		keys := make([]string, n)
		for i := range keys {
			keys[i] = acct(i)
		}
		return opSpec{argv: append([]string{"MGET"}, keys...), hist: &checker.Op{Kind: checker.MGet, Keys: keys}}
	default:
		return opSpec{argv: []string{"FCALL_RO", "balance", "1", acct(c.rng.IntN(n))}}
	}
}

// bankSetupEnded issues a setup step again when it may not have
// happened (read: a node read its request):
//   - an account's opening SET refused with an error (disk full: keel's
//     contract is that it did nothing) or, in the single-node world, no
//     node read: left unopened, the account would take transfers while
//     the checker holds every read to the total of the opened ones
//     (cluster-fcall swarm seed 101010, cluster-bank-watch 101036). The
//     replicated world re-issues a SET no node read itself (abandon);
//   - in the single-node world, a FUNCTION LOAD that got no reply (a
//     crash before it was durable loses it, and every call after it
//     would find no function: fcall-transfer swarm seed 99040) or an
//     error other than the library already being there (which says an
//     earlier attempt did load it). The replicated world has loadAgain.
//
// An opening SET whose outcome is unknown stays as it was: the checker
// tries it both ways.
func (c *Client) bankSetupEnded(op *opSpec, r *Reply, read bool) {
	if c.r.bank.ready || c.id-clientIDBase != bankSetupClient || len(op.argv) < 2 {
		return
	}
	one := c.r.Group == nil
	switch {
	case op.argv[0] == "SET" && (r != nil && r.IsError() || one && r == nil && !read):
		c.r.W.Trace(c.name, "setup: "+op.argv[1]+" not opened; opening it again")
		c.r.bank.step--
	case one && op.argv[0] == "FUNCTION" && op.argv[1] == "LOAD":
		if r == nil || r.IsError() && !strings.Contains(r.Str, "already exists") {
			c.r.W.Trace(c.name, "setup: the library may not be loaded; loading it again")
			c.r.bank.step--
		}
	}
}

// genTaggedBank is genBank over accounts spread across hash tags (so
// across replica groups): one bank per tag. A transfer moves money
// between two accounts of one tag, a read takes every account of one tag
// (a cluster serves a call or an MGET only within one slot).
func (c *Client) genTaggedBank() opSpec {
	b := c.r.cfg.Workload.Bank
	w := &c.r.cfg.Workload
	switch p := c.rng.IntN(100); {
	case p < 60:
		from := c.plainKey()
		to := c.sameTagKey(from)
		for to == from {
			to = c.sameTagKey(from)
		}
		amt := 1 + c.rng.Int64N(b.AmountMax)
		return opSpec{argv: []string{"FCALL", "transfer", "2", from, to, strconv.FormatInt(amt, 10)},
			hist: &checker.Op{Kind: checker.Transfer, From: from, To: to, Amount: amt}}
	case p < 85:
		t := c.rng.IntN(len(w.KeyTags))
		var keys []string
		for i := t; i < w.PlainKeys; i += len(w.KeyTags) {
			keys = append(keys, w.keyName(i))
		}
		return opSpec{argv: append([]string{"MGET"}, keys...), hist: &checker.Op{Kind: checker.MGet, Keys: keys}}
	default:
		return opSpec{argv: []string{"FCALL_RO", "balance", "1", c.plainKey()}}
	}
}

// reloadAt makes FUNCTION LOAD at n the client's next operation after a
// call there found no library: n led the call's group, so the load runs
// there (on every group n leads).
func (c *Client) reloadAt(n *Node) {
	b := c.r.cfg.Workload.Bank
	if b == nil || b.Library == "" || !c.multiGroup() || c.route.again != nil {
		return
	}
	c.r.W.Trace(c.name, "function not found at n"+itoa(int64(n.cfg.ID))+": load the library there")
	c.route.again = &opSpec{argv: []string{"FUNCTION", "LOAD", b.Library}, at: n}
}

// transferOutput maps FCALL transfer's replies to the bank model's
// outputs.
func transferOutput(r Reply) (checker.Value, bool) {
	if r.Kind == '*' {
		return multiTransferOutput(r)
	}
	switch {
	case r.Kind == ':' && r.Int == 1:
		return checker.Str("OK"), true
	case r.Kind == '-' && strings.Contains(r.Str, "insufficient funds"):
		return checker.Str(checker.InsufficientFunds), true
	}
	return checker.Value{}, false
}

// predictFunction is the sequential model of FUNCTION LOAD and of the
// transfer library's functions.
// libraries are the names of the function libraries the single-node
// model knows the workload loads (the recovery probe asks the node which
// it holds).
func (w *WorkloadConfig) libraries() []string {
	var libs []string
	if g := w.Grammar; g != nil && g.FcallPct > 0 {
		libs = append(libs, "rmw")
	}
	if w.Bank != nil && w.Bank.Library != "" {
		libs = append(libs, libraryName(w.Bank.Library))
	}
	return libs
}

// libraryName is the name a FUNCTION LOAD payload's first line gives.
func libraryName(payload string) string {
	return strings.TrimPrefix(strings.SplitN(payload, "\n", 2)[0], "#!wasm name=")
}

// libKeyPrefix starts the model key that says a function library is
// loaded (FUNCTION LOAD): never a workload key, never in a SCAN.
const libKeyPrefix = "\x00lib:"

func predictFunction(s state, nowMs int64, argv []string) expectation {
	name := strings.ToLower(argv[0])
	if name == "function" {
		if len(argv) == 3 && strings.EqualFold(argv[1], "load") {
			lib := libraryName(argv[2])
			if _, ok := s[libKeyPrefix+lib]; ok {
				return expectation{reply: errReply("ERR Library '" + lib + "' already exists"), write: true}
			}
			// The library is a key of the model that no probe reads: it
			// is logged as writes are, and a crash may lose it.
			return expectation{reply: bulkReply(lib), write: true, muts: []mutation{put(libKeyPrefix+lib, kv{})}}
		}
		return expectation{reply: errReply("ERR the simulator's model does not know function " + argv[1])}
	}
	balance := func(k string) (int64, kv) {
		v, ok := s.get(k, nowMs)
		if !ok {
			return 0, kv{}
		}
		n, _ := isCanonicalInt(v.val)
		return n, v
	}
	switch {
	case name == "fcall" && len(argv) > 1 && argv[1] == "rmw":
		return predictRMW(s, nowMs, argv)
	case len(argv) == 4 && argv[1] == "balance":
		n, _ := balance(argv[3])
		return expectation{reply: intReply(n)}
	case name == "fcall" && len(argv) == 6 && (argv[1] == "transfer" || argv[1] == "transfer_split"):
		// transfer_split ends where transfer does (its SETs drop a TTL,
		// and accounts have none).
		amt, _ := strconv.ParseInt(argv[5], 10, 64)
		from, fv := balance(argv[3])
		if from < amt {
			return expectation{reply: errReply("ERR insufficient funds")}
		}
		to, tv := balance(argv[4])
		fv.val, tv.val = strconv.FormatInt(from-amt, 10), strconv.FormatInt(to+amt, 10)
		return expectation{reply: intReply(1), write: true, muts: []mutation{{key: argv[3], v: fv}, {key: argv[4], v: tv}}}
	}
	return expectation{reply: errReply("ERR the simulator's model does not know " + strings.Join(argv[:min(2, len(argv))], " "))}
}

// traceArg shortens an argument for the trace (a module is kilobytes of
// binary).
func traceArg(a string) string {
	const keep = 32
	if len(a) <= keep {
		return a
	}
	return strconv.Quote(a[:keep]) + "...(" + strconv.Itoa(len(a)) + " bytes)"
}
