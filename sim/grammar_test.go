package sim

import (
	"bufio"
	stdnet "net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/resp"
)

// TestGrammarCoversWriteCommands holds the grammar to the engine's command
// table: every write command is drawn by the grammar or excluded with a
// reason, so a new command cannot silently escape the workload; every
// command the grammar draws has a model.
func TestGrammarCoversWriteCommands(t *testing.T) {
	inGrammar := map[string]bool{}
	for _, g := range grammarSpecs {
		if inGrammar[g.name] {
			t.Errorf("%s: two grammars", g.name)
		}
		inGrammar[g.name] = true
		if engine.Lookup([]byte(g.name)) == nil {
			t.Errorf("%s: in the grammar, not in the engine's command table", g.name)
		}
		if !modelled(g.name) {
			t.Errorf("%s: in the grammar without a model (gmodel.go)", g.name)
		}
	}
	writes := 0
	for _, c := range engine.Commands() {
		if c.Flags&engine.Write == 0 {
			continue
		}
		writes++
		why, excluded := grammarExcluded[c.Name]
		switch {
		case inGrammar[c.Name] && excluded:
			t.Errorf("%s: both drawn and excluded", c.Name)
		case !inGrammar[c.Name] && !excluded:
			t.Errorf("write command %s is neither in the grammar (sim/grammar.go) nor excluded with a reason", c.Name)
		case excluded && why == "":
			t.Errorf("%s: excluded without a reason", c.Name)
		}
	}
	for name := range grammarExcluded {
		if c := engine.Lookup([]byte(name)); c == nil || c.Flags&engine.Write == 0 {
			t.Errorf("%s: excluded, but not a write command of the engine", name)
		}
	}
	if writes < 60 {
		t.Fatalf("only %d write commands in the engine's table: the check looks at the wrong table", writes)
	}
}

// grammarTestClient is a client of a bare run, enough to draw commands.
func grammarTestClient(seed uint64, g *GrammarConfig) *Client {
	w := NewWorld(seed, nil)
	r := &Run{cfg: Config{Workload: WorkloadConfig{Grammar: g}}, W: w}
	return &Client{r: r, id: clientIDBase, rng: w.Stream("client/0")}
}

// TestGrammarDrawsEveryCommand: a few thousand draws reach every command
// of the grammar and each of its options, the same draws for the same
// seed.
func TestGrammarDrawsEveryCommand(t *testing.T) {
	g := &GrammarConfig{Keys: 6, Zipf: 1.2, IllFormedPct: 5}
	draw := func() []string {
		c := grammarTestClient(7, g)
		var out []string
		for i := 0; i < 20000; i++ {
			c.seq++
			out = append(out, strings.Join(c.grammarCommand(true), " "))
		}
		return out
	}
	a, b := draw(), draw()
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatal("the same seed drew different commands")
	}
	seen := map[string]bool{}
	words := map[string]bool{}
	for _, cmd := range a {
		f := strings.Fields(cmd)
		seen[strings.ToLower(f[0])] = true
		for _, w := range f[1:] {
			words[w] = true
		}
	}
	for _, s := range grammarSpecs {
		if s.weight > 0 && !seen[s.name] {
			t.Errorf("%s never drawn", s.name)
		}
		for _, w := range strings.FieldsFunc(s.syntax, func(r rune) bool { return strings.ContainsRune(" []<>|.", r) }) {
			if strings.ToUpper(w) == w && !words[w] {
				t.Errorf("%s: option %s never drawn", s.name, w)
			}
		}
	}
	if !seen["flushdb"] {
		t.Error("FLUSHDB never drawn")
	}
	if !words["BOGUS"] {
		t.Error("no ill-formed command drawn")
	}
}

// TestGrammarModelAgreesWithRedis runs the grammar's commands on a real
// redis-server (Redis 7) and on the typed model, in one order, and
// requires the same replies: the model is Redis's behaviour, not keel's
// (the simulator then holds keel to it). Replies that depend on the
// millisecond a command ran (TTL, PTTL, EXPIRETIME) are not compared;
// the keys' TTLs still are, through every later reply.
func TestGrammarModelAgreesWithRedis(t *testing.T) {
	addr := startRedisForGrammar(t)
	conn, err := stdnet.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	do := func(argv []string) Reply {
		w := resp.NewWriter()
		w.WriteArray(len(argv))
		for _, a := range argv {
			w.WriteBulkString(a)
		}
		if _, err := conn.Write(w.Bytes()); err != nil {
			t.Fatal(err)
		}
		r, err := resp.ReadReply(br)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// TTLs of hundreds of seconds: none expires while the test runs.
	g := &GrammarConfig{Keys: 6, Zipf: 1.2, IllFormedPct: 5}
	st := state{}
	n := 6000
	if testing.Short() {
		n = 2000
	}
	mismatches := 0
	for seed := uint64(1); seed <= 3; seed++ {
		do([]string{"FLUSHALL"})
		st = state{}
		c := grammarTestClient(seed, g)
		for i := 0; i < n; i++ {
			c.seq++
			c.r.W.now = time.Now().UnixNano() - simEpoch
			argv := longTTLs(c.grammarCommand(true))
			nowMs := time.Now().UnixMilli()
			e := predict(st, nowMs, argv)
			r := do(argv)
			name := strings.ToLower(argv[0])
			timed := name == "ttl" || name == "pttl" || name == "expiretime" || name == "pexpiretime"
			if msg := e.check(r); msg != "" && !timed {
				mismatches++
				if mismatches <= 20 {
					t.Errorf("seed %d #%d %s: %s", seed, i, strings.Join(argv, " "), msg)
				}
			}
			if e.write && !(r.IsError() && !e.reply.IsError()) {
				st.apply(e.muts)
			}
		}
	}
	if mismatches > 20 {
		t.Errorf("%d mismatches in all", mismatches)
	}
}

// longTTLs stretches a command's relative TTLs (EX, PX, SETEX, EXPIRE...)
// to hundreds of seconds and moves absolute ones as far, so no key
// expires between the model's clock and Redis's.
func longTTLs(argv []string) []string {
	out := append([]string(nil), argv...)
	name := strings.ToLower(out[0])
	scale := func(i int, by int64) {
		if i < len(out) {
			if n, err := strconv.ParseInt(out[i], 10, 64); err == nil && n > 0 {
				out[i] = strconv.FormatInt(n*by, 10)
			}
		}
	}
	shift := func(i int, by int64) {
		if i < len(out) {
			if n, err := strconv.ParseInt(out[i], 10, 64); err == nil {
				out[i] = strconv.FormatInt(n+by, 10)
			}
		}
	}
	switch name {
	case "setex", "expire":
		scale(2, 100)
	case "psetex", "pexpire":
		scale(2, 100)
		shift(2, 100_000)
	case "expireat":
		shift(2, 200)
	case "pexpireat":
		shift(2, 200_000)
	}
	for i := 2; i < len(out)-1; i++ {
		switch strings.ToLower(out[i]) {
		case "ex":
			scale(i+1, 100)
		case "px":
			scale(i+1, 100)
			shift(i+1, 100_000)
		case "exat":
			shift(i+1, 200)
		case "pxat":
			shift(i+1, 200_000)
		}
	}
	return out
}

func startRedisForGrammar(t *testing.T) string {
	t.Helper()
	bin, err := osexec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not on PATH (apt-get install -y redis-server): comparison skipped")
	}
	l, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*stdnet.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	cmd := osexec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "",
		"--appendonly", "no", "--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for i := 0; i < 300; i++ {
		if c, err := stdnet.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(10 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	t.Fatalf("redis-server did not start: %s", log)
	return ""
}

var _ = sort.Strings
