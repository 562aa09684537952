package server

import (
	"bufio"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/resp"
)

// The introspection commands (INFO commandstats/errorstats/latencystats,
// SLOWLOG, LATENCY, CLIENT REPLY/PAUSE/NO-EVICT/KILL, MONITOR, MEMORY)
// answer as Redis 7's do: the same commands run against a real
// redis-server and against keel, reply by reply; what differs by nature
// (times, ids, addresses, sizes) is masked before comparing.
func TestIntrospectionMatchesRedis(t *testing.T) {
	raddr, ver := startRedis(t)
	ks := startServer(t, Config{})
	a := &aclCompare{t: t, keelAddr: ks.addr, redisAddr: raddr, redisVer: ver, conns: map[string]*cmpConn{}}
	t.Logf("reference: redis-server %s", ver)

	// Settings: the defaults, then changed, and what a bad value says.
	for _, p := range []string{"slowlog-log-slower-than", "slowlog-max-len", "latency-monitor-threshold", "latency-tracking",
		"latency-tracking-info-percentiles"} {
		a.do("c", cmpExact, "CONFIG", "GET", p)
	}
	a.do("c", cmpExact, "CONFIG", "SET", "slowlog-log-slower-than", "x")
	a.do("c", cmpExact, "CONFIG", "SET", "slowlog-max-len", "-1")
	a.do("c", cmpExact, "CONFIG", "SET", "latency-tracking-info-percentiles", "50 101")
	a.do("c", cmpExact, "CONFIG", "SET", "latency-tracking-info-percentiles", "50 99 99.9")

	// Command statistics from a clean start: calls, rejected (arity,
	// unknown subcommand) and failed calls (a type error), errors by code.
	a.do("c", cmpExact, "CONFIG", "RESETSTAT")
	a.do("c", cmpExact, "SET", "k", "v")
	a.do("c", cmpExact, "GET", "k")
	a.do("c", cmpExact, "GET")
	a.do("c", cmpExact, "INCR", "k")
	a.do("c", cmpExact, "LPUSH", "k", "x")
	a.do("c", cmpExact, "NOSUCHCOMMAND")
	a.do("c", cmpExact, "CLIENT", "NOSUCH")
	a.do("c", cmpExact, "PING")
	a.do("c", cmpExact, "MULTI")
	a.do("c", cmpExact, "SET", "k2", "1")
	a.do("c", cmpExact, "INCR", "k")
	a.do("c", cmpExact, "EXEC")
	a.compareInfo("c", "commandstats", maskUsec)
	a.compareInfo("c", "errorstats", nil)
	a.compareInfo("c", "latencystats", maskPercentiles)
	stats := a.infoLines("c", "stats")
	if !strings.Contains(stats.keel, "total_error_replies:") {
		t.Errorf("INFO stats has no total_error_replies:\n%s", stats.keel)
	}

	// LATENCY HISTOGRAM: the commands asked for, their calls.
	a.do("c", cmpExact, "LATENCY", "HISTOGRAM", "nosuch")
	kh := sendCmd(t, a.conn("c").keel, []string{"LATENCY", "HISTOGRAM", "set", "get"})
	rh := sendCmd(t, a.conn("c").redis, []string{"LATENCY", "HISTOGRAM", "set", "get"})
	if hs, rs := histShape(kh), histShape(rh); hs != rs {
		t.Errorf("LATENCY HISTOGRAM set get:\n keel:  %s\n redis: %s", hs, rs)
	}

	// The slow log: everything is slow at 0 µs; what each entry says
	// of its command and client (not its id, time or duration).
	a.do("c", cmpExact, "CLIENT", "SETNAME", "app")
	a.do("c", cmpExact, "CONFIG", "SET", "slowlog-log-slower-than", "0")
	a.do("c", cmpExact, "SLOWLOG", "RESET")
	a.do("c", cmpExact, "SET", "k3", strings.Repeat("x", 200))
	a.do("c", cmpExact, "AUTH", "secret")
	a.do("c", cmpExact, "MULTI")
	a.do("c", cmpExact, "SET", "k4", "1")
	a.do("c", cmpExact, "INCR", "k4")
	a.do("c", cmpExact, "EXEC")
	a.do("c", cmpExact, "GET")
	a.do("c", cmpExact, "SLOWLOG", "LEN")
	a.compareSlowlog("c")
	a.do("c", cmpExact, "SLOWLOG", "GET", "-2")
	a.do("c", cmpExact, "SLOWLOG", "GET", "x")
	a.do("c", cmpExact, "SLOWLOG", "GET", "1", "2")
	a.do("c", cmpExact, "SLOWLOG", "LEN", "x")
	a.do("c", cmpExact, "SLOWLOG", "NOSUCH")
	a.do("c", cmpExact, "SLOWLOG", "HELP")
	a.do("c", cmpExact, "CONFIG", "SET", "slowlog-max-len", "2")
	a.do("c", cmpExact, "PING")
	a.do("c", cmpExact, "SLOWLOG", "LEN")
	a.do("c", cmpExact, "CONFIG", "SET", "slowlog-log-slower-than", "-1")
	a.do("c", cmpExact, "SLOWLOG", "RESET")
	a.do("c", cmpExact, "SLOWLOG", "LEN")

	// The latency monitor, off and empty; its errors.
	a.do("c", cmpExact, "LATENCY", "LATEST")
	a.do("c", cmpExact, "LATENCY", "HISTORY", "command")
	a.do("c", cmpExact, "LATENCY", "RESET")
	a.do("c", cmpExact, "LATENCY", "DOCTOR")
	// keel has no LATENCY GRAPH (an ASCII chart): its help says so.
	lh := sendCmd(t, a.conn("c").keel, []string{"LATENCY", "HELP"}).String()
	rh2 := strings.Replace(sendCmd(t, a.conn("c").redis, []string{"LATENCY", "HELP"}).String(),
		" GRAPH <event>     Return an ASCII latency graph for the <event> class.", "", 1)
	if lh != rh2 {
		t.Errorf("LATENCY HELP:\n keel:  %s\n redis: %s", lh, rh2)
	}
	a.do("c", cmpExact, "LATENCY", "NOSUCH")
	a.do("c", cmpExact, "LATENCY", "HISTORY")
	a.do("c", cmpExact, "CONFIG", "SET", "latency-monitor-threshold", "100")
	a.do("c", cmpExact, "LATENCY", "DOCTOR")

	// CLIENT: its new subcommands' replies and errors.
	a.do("c", cmpExact, "CLIENT", "NO-EVICT", "on")
	a.do("c", cmpExact, "CLIENT", "NO-EVICT", "maybe")
	a.do("c", cmpExact, "CLIENT", "REPLY", "maybe")
	a.do("c", cmpExact, "CLIENT", "PAUSE", "x")
	a.do("c", cmpExact, "CLIENT", "PAUSE", "-1")
	a.do("c", cmpExact, "CLIENT", "PAUSE", "10", "READ")
	a.do("c", cmpExact, "CLIENT", "PAUSE")
	a.do("c", cmpExact, "CLIENT", "UNPAUSE")
	a.do("c", cmpExact, "CLIENT", "KILL", "ID", "999999")
	a.do("c", cmpExact, "CLIENT", "KILL", "USER", "nosuch")
	a.do("c", cmpExact, "CLIENT", "KILL", "ADDR", "1.2.3.4:5")
	ki := sendCmd(t, a.conn("c").keel, []string{"CLIENT", "INFO"}).Str
	ri := sendCmd(t, a.conn("c").redis, []string{"CLIENT", "INFO"}).Str
	if kf, rf := field(ki, "flags"), field(ri, "flags"); kf != rf {
		t.Errorf("CLIENT INFO flags after NO-EVICT on: keel %q, redis %q", kf, rf)
	}
	a.do("c", cmpExact, "CLIENT", "NO-EVICT", "off")

	// MEMORY.
	a.do("c", cmpExact, "MEMORY", "USAGE", "nosuch")
	a.do("c", cmpExact, "MEMORY", "USAGE", "k", "SAMPLES")
	a.do("c", cmpExact, "MEMORY", "USAGE", "k", "SAMPLES", "x")
	a.do("c", cmpExact, "MEMORY", "USAGE")
	a.do("c", cmpExact, "MEMORY", "NOSUCH")
	for _, args := range [][]string{{"MEMORY", "USAGE", "k"}, {"MEMORY", "USAGE", "k", "SAMPLES", "0"}} {
		kr := sendCmd(t, a.conn("c").keel, args)
		if kr.Kind != ':' || kr.Int <= 0 {
			t.Errorf("%q: %s, want a positive integer", args, kr)
		}
	}
	kr := sendCmd(t, a.conn("c").keel, []string{"MEMORY", "STATS"})
	rr := sendCmd(t, a.conn("c").redis, []string{"MEMORY", "STATS"})
	for _, name := range []string{"peak.allocated", "total.allocated", "keys.count", "dataset.bytes", "fragmentation"} {
		if !strings.Contains(kr.String(), `"`+name+`"`) || !strings.Contains(rr.String(), `"`+name+`"`) {
			t.Errorf("MEMORY STATS: %q missing\n keel: %s", name, kr)
		}
	}

	if a.mismatches > 0 {
		t.Logf("%d of %d steps differ", a.mismatches, a.steps)
	}
}

var (
	reUsec        = regexp.MustCompile(`usec=\d+,usec_per_call=[0-9.]+`)
	rePercentiles = regexp.MustCompile(`p(50|99|99\.9)=[0-9.]+`)
)

func maskUsec(s string) string        { return reUsec.ReplaceAllString(s, "usec=U") }
func maskPercentiles(s string) string { return rePercentiles.ReplaceAllString(s, "p$1=P") }

type infoPair struct{ keel, redis string }

// infoLines is INFO section on both servers, without its header.
func (a *aclCompare) infoLines(name, section string) infoPair {
	c := a.conn(name)
	k := sendCmd(a.t, c.keel, []string{"INFO", section}).Str
	r := sendCmd(a.t, c.redis, []string{"INFO", section}).Str
	return infoPair{k, r}
}

// compareInfo compares INFO section's lines, sorted (Redis prints its
// hash order), masked by mask; keel's own commands are left out.
func (a *aclCompare) compareInfo(name, section string, mask func(string) string) {
	a.t.Helper()
	p := a.infoLines(name, section)
	norm := func(s string) string {
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(s), "\r\n") {
			if strings.HasPrefix(l, "#") || l == "" || strings.Contains(l, "_info:") || strings.Contains(l, "_info|") {
				continue // INFO itself: it runs as the comparison's probe
			}
			if mask != nil {
				l = mask(l)
			}
			lines = append(lines, l)
		}
		slices.Sort(lines)
		return strings.Join(lines, "\n")
	}
	if k, r := norm(p.keel), norm(p.redis); k != r {
		a.mismatches++
		a.t.Errorf("INFO %s:\n keel:\n%s\n redis:\n%s", section, k, r)
	}
}

// compareSlowlog compares SLOWLOG GET's entries without their ids, times
// and durations, and the client's port.
func (a *aclCompare) compareSlowlog(name string) {
	a.t.Helper()
	c := a.conn(name)
	shape := func(r resp.Reply) string {
		var b strings.Builder
		for _, e := range r.Elems {
			if len(e.Elems) != 6 {
				b.WriteString("bad entry " + e.String())
				continue
			}
			host, _, _ := strings.Cut(e.Elems[4].Str, ":")
			b.WriteString(e.Elems[3].String() + " " + host + " " + e.Elems[5].String() + "\n")
		}
		return b.String()
	}
	k := shape(sendCmd(a.t, c.keel, []string{"SLOWLOG", "GET"}))
	r := shape(sendCmd(a.t, c.redis, []string{"SLOWLOG", "GET"}))
	if k != r {
		a.mismatches++
		a.t.Errorf("SLOWLOG GET:\n keel:\n%s\n redis:\n%s", k, r)
	}
}

// histShape is LATENCY HISTOGRAM's reply without its buckets.
func histShape(r resp.Reply) string {
	var b strings.Builder
	for i := 0; i+1 < len(r.Elems); i += 2 {
		v := r.Elems[i+1]
		b.WriteString(r.Elems[i].Str + ":")
		for j := 0; j+1 < len(v.Elems); j += 2 {
			if v.Elems[j].Str == "calls" {
				b.WriteString(v.Elems[j+1].String())
			}
		}
		b.WriteString(" ")
	}
	return b.String()
}

func field(line, name string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v
		}
	}
	return ""
}

// CLIENT REPLY OFF, SKIP and ON drop the replies Redis drops, in a
// pipeline too; MONITOR shows other clients' commands as Redis's lines.
func TestClientReplyAndMonitorMatchRedis(t *testing.T) {
	raddr, _ := startRedis(t)
	ks := startServer(t, Config{})
	pipeline := []string{
		"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n",
		"*2\r\n$3\r\nGET\r\n$1\r\na\r\n",
		"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n",
		"*2\r\n$4\r\nINCR\r\n$1\r\na\r\n",
		"*1\r\n$4\r\nPING\r\n",
		"*1\r\n$3\r\nGET\r\n", // an error, dropped too
		"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$2\r\nON\r\n",
		"*2\r\n$3\r\nGET\r\n$1\r\na\r\n",
	}
	for _, batched := range []bool{true, false} {
		got := map[string]string{}
		for name, addr := range map[string]string{"keel": ks.addr, "redis": raddr} {
			rw := dialRW(t, addr)
			sendCmd(t, rw, []string{"DEL", "a"})
			if batched {
				rw.WriteString(strings.Join(pipeline, ""))
				rw.Flush()
			} else {
				for _, p := range pipeline {
					rw.WriteString(p)
					rw.Flush()
					time.Sleep(5 * time.Millisecond) // let each arrive as its own batch
				}
			}
			var replies []string
			for range 3 { // GET (after SKIP), CLIENT REPLY ON's OK, GET
				r, err := resp.ReadReply(rw.Reader)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				replies = append(replies, r.String())
			}
			got[name] = strings.Join(replies, " ")
		}
		if got["keel"] != got["redis"] {
			t.Errorf("CLIENT REPLY (batched %v):\n keel:  %s\n redis: %s", batched, got["keel"], got["redis"])
		}
	}

	reLine := regexp.MustCompile(`^\d+\.\d{6} \[0 [0-9.]+:\d+\] (.*)$`)
	lines := map[string][]string{}
	for name, addr := range map[string]string{"keel": ks.addr, "redis": raddr} {
		mon := dialRW(t, addr)
		if r := sendCmd(t, mon, []string{"MONITOR"}); r.String() != "OK" {
			t.Fatalf("%s: MONITOR: %s", name, r)
		}
		other := dialRW(t, addr)
		for _, args := range [][]string{{"SET", "m", "a b\"\n\x01"}, {"GET", "m"}, {"AUTH", "x", "y"}, {"CONFIG", "GET", "x"}, {"GET"},
			{"MULTI"}, {"SET", "m", "1"}, {"INCR", "m"}, {"PING"}, {"EXEC"}, {"MULTI"}, {"GET", "m"}, {"DISCARD"}} {
			sendCmd(t, other, args)
		}
		sendCmd(t, other, []string{"ECHO", "end"})
		for {
			r, err := resp.ReadReply(mon.Reader)
			if err != nil {
				t.Fatalf("%s: reading the monitor: %v", name, err)
			}
			m := reLine.FindStringSubmatch(r.Str)
			if m == nil {
				t.Fatalf("%s: monitor line %q", name, r.Str)
			}
			lines[name] = append(lines[name], m[1])
			if m[1] == `"ECHO" "end"` || m[1] == `"echo" "end"` {
				break
			}
		}
	}
	if k, r := strings.Join(lines["keel"], "\n"), strings.Join(lines["redis"], "\n"); !strings.EqualFold(k, r) {
		t.Errorf("MONITOR lines:\n keel:\n%s\n redis:\n%s", k, r)
	}
	_ = bufio.NewReader
}

// CLIENT PAUSE WRITE holds writes, not reads, until CLIENT UNPAUSE; a
// half-sent command shows in its client's qbuf.
func TestClientPauseAndQueryBuffer(t *testing.T) {
	ks := startServer(t, Config{})
	admin, writer, reader := ks.raw(t), ks.raw(t), ks.raw(t)
	if r := admin.do("CLIENT", "PAUSE", "60000", "WRITE"); r != "+OK" {
		t.Fatalf("CLIENT PAUSE: %s", r)
	}
	writer.send("*3\r\n$3\r\nSET\r\n$1\r\np\r\n$1\r\n1\r\n")
	if r := reader.do("GET", "p"); r != "$nil" {
		t.Fatalf("GET during the pause: %s", r)
	}
	writer.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := writer.br.ReadByte(); err == nil {
		t.Fatal("a write was answered during CLIENT PAUSE WRITE")
	}
	if r := admin.do("CLIENT", "UNPAUSE"); r != "+OK" {
		t.Fatalf("CLIENT UNPAUSE: %s", r)
	}
	if r := writer.reply(); r != "+OK" {
		t.Fatalf("SET after UNPAUSE: %s", r)
	}
	if r := reader.do("GET", "p"); r != "$1" {
		t.Fatalf("GET after UNPAUSE: %s", r)
	}

	half := ks.raw(t)
	id := strings.TrimPrefix(half.do("CLIENT", "ID"), ":")
	half.send("*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$100000\r\n" + strings.Repeat("x", 50000))
	var line string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		list := strings.TrimPrefix(admin.do("CLIENT", "LIST", "ID", id), "$")
		if q := field(list, "qbuf"); q != "" && q != "0" {
			line = list
			break
		}
	}
	if line == "" {
		t.Fatal("CLIENT LIST never showed the half-sent command in qbuf")
	}
	qbuf, _ := strconv.Atoi(field(line, "qbuf"))
	tot, _ := strconv.Atoi(field(line, "tot-mem"))
	if qbuf < 50000 || tot < qbuf {
		t.Errorf("qbuf %d (want >= 50000), tot-mem %d (want >= qbuf): %s", qbuf, tot, line)
	}
}
