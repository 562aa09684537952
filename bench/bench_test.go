package main

import (
	"bufio"
	"bytes"
	stdnet "net"
	"strings"
	"testing"

	"github.com/keel-db/keel/bench/internal/harness"
)

func TestRequestsFor(t *testing.T) {
	set, mget := allTests[0], allTests[4]
	for _, tc := range []struct {
		base, p int
		t       benchTest
		want    int
	}{{100, 1, set, 100}, {100, 2, set, 100}, {100, 16, set, 800}, {100, 1, mget, 100}, {100, 16, mget, 200}, {100, 2, mget, 100}} {
		if got := requestsFor(tc.base, tc.p, tc.t); got != tc.want {
			t.Errorf("requestsFor(%d, %d, %s) = %d, want %d", tc.base, tc.p, tc.t.name, got, tc.want)
		}
	}
}

func TestParseInfo(t *testing.T) {
	info := "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nused_memory_rss:2097152\r\n\r\n"
	f := parseInfo(info)
	if infoInt(f, "used_memory") != 1048576 || infoInt(f, "used_memory_rss") != 2097152 {
		t.Errorf("parseInfo = %v", f)
	}
	if infoInt(f, "used_memory_human") != -1 || infoInt(f, "absent") != -1 {
		t.Errorf("non-integer or absent fields must read as -1")
	}
	if got := perKey(1000, 3000, 10); got != 200 {
		t.Errorf("perKey = %v, want 200", got)
	}
	if got := perKey(-1, 3000, 10); got != -1 {
		t.Errorf("perKey with unknown baseline = %v, want -1", got)
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tredis-server\nVmPeak:\t  100 kB\nVmRSS:\t   12345 kB\nThreads:\t5\n"
	got, err := harness.ParseVmRSS([]byte(status))
	if err != nil || got != 12345*1024 {
		t.Fatalf("parseVmRSS = %d, %v", got, err)
	}
	if _, err := harness.ParseVmRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("want an error without VmRSS")
	}
}

func TestRESPRoundTrip(t *testing.T) {
	client, srv := stdnet.Pipe()
	defer client.Close()
	c := harness.NewConn(client)
	gotCmd := make(chan string, 1)
	go func() {
		defer srv.Close()
		r := bufio.NewReader(srv)
		var cmd bytes.Buffer
		// *6 then six length/value pairs: 13 lines.
		for i := 0; i < 13; i++ {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd.WriteString(line)
		}
		gotCmd <- cmd.String()
		srv.Write([]byte("*2\r\n$3\r\n123\r\n*3\r\n$5\r\npfx:1\r\n$-1\r\n:7\r\n-ERR oops\r\n"))
	}()
	r, err := c.Do("SCAN", "0", "MATCH", "pfx:*", "COUNT", "1000")
	if err != nil {
		t.Fatal(err)
	}
	if want := "*6\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nMATCH\r\n$5\r\npfx:*\r\n$5\r\nCOUNT\r\n$4\r\n1000\r\n"; <-gotCmd != want {
		t.Errorf("command encoding differs from RESP")
	}
	if r.Kind != '*' || len(r.Elems) != 2 || r.Elems[0].Str != "123" {
		t.Fatalf("reply = %+v", r)
	}
	page := r.Elems[1].Elems
	if len(page) != 3 || page[0].Str != "pfx:1" || !page[1].Null || page[2].Num != 7 {
		t.Fatalf("page = %+v", page)
	}
	if _, err := c.Read(); err == nil || err.Error() != "ERR oops" {
		t.Fatalf("error reply = %v, want respError ERR oops", err)
	}
}

func TestValueForIsDistinctAndPrintable(t *testing.T) {
	a, b, a2 := make([]byte, 200), make([]byte, 200), make([]byte, 200)
	valueFor(1, a)
	valueFor(2, b)
	valueFor(1, a2)
	if bytes.Equal(a, b) || !bytes.Equal(a, a2) {
		t.Fatalf("values must differ per key and repeat per seed")
	}
	distinct := map[byte]bool{}
	for _, ch := range a {
		if ch < '+' || ch > 'z' {
			t.Fatalf("non-printable byte %q", ch)
		}
		distinct[ch] = true
	}
	if len(distinct) < 30 {
		t.Errorf("only %d distinct bytes in a 200-byte value: too compressible", len(distinct))
	}
}

func TestParseFlagsQuickAndOverrides(t *testing.T) {
	c, err := parseFlags([]string{"--quick", "--rounds", "2", "--tests", "get,MGET"})
	if err != nil {
		t.Fatal(err)
	}
	if c.rounds != 2 || c.requests != 10000 || len(c.modes) != 1 || c.modes[0].name != "off" || c.memoryKeys != 100000 {
		t.Errorf("quick config = %+v", c)
	}
	if len(c.tests) != 2 || c.tests[0].name != "GET" || c.tests[1].name != "MGET" {
		t.Errorf("tests = %v", c.tests)
	}
	c, err = parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.rounds != 3 || len(c.modes) != 2 || len(c.tests) != 5 || len(c.pipelines) != 2 || c.pipelines[1] != 16 {
		t.Errorf("default config = %+v", c)
	}
	for _, bad := range [][]string{{"--modes", "fast"}, {"--tests", "xadd"}, {"--pipelines", "0"}, {"--rounds", "0"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%v) accepted", bad)
		}
	}
}

func TestMGETUsesTenRandomKeys(t *testing.T) {
	args := mgetArgs()
	if args[0] != "MGET" || len(args) != 1+mgetKeys || args[1] != "key:__rand_int__" {
		t.Errorf("mgetArgs = %v", args)
	}
}

func TestServerArgsMatchPersistence(t *testing.T) {
	redis := system{name: "redis", redisLike: true}
	got := strings.Join(redis.args(7000, "/d", modes["everysec"]), " ")
	if want := "--bind 127.0.0.1 --port 7000 --dir /d --save  --appendonly yes --daemonize no --appendfsync everysec"; got != want {
		t.Errorf("redis args = %q, want %q", got, want)
	}
	keel := system{name: "keel", extraArgs: []string{"--pprof", "x"}}
	got = strings.Join(keel.args(7001, "/k", modes["off"]), " ")
	if want := "server --bind 127.0.0.1 --port 7001 --dir /k --appendonly no --pprof x"; got != want {
		t.Errorf("keel args = %q, want %q", got, want)
	}
}

func res(ops, p50, p99 float64) harness.Result {
	return harness.Result{OpsPerSec: ops, P50Millis: p50, P99Millis: p99}
}

func TestSummaryTables(t *testing.T) {
	off := cell{mode: "off", test: "SET", pipeline: 1}
	ev := cell{mode: "everysec", test: "SET", pipeline: 1}
	r1 := summarize(off, &series{
		redis: []harness.Result{res(100, 0.5, 1), res(50, 0.6, 2), res(100, 0.5, 1)},
		keel:  []harness.Result{res(120, 0.4, 1), res(60, 0.5, 1), res(90, 0.5, 2)},
	})
	if r1.opsRatio != 1.2 || r1.redisOps != 100 || r1.keelOps != 90 || r1.p99Ratio != 1 {
		t.Errorf("summary = %+v", r1)
	}
	r2 := summarize(ev, &series{redis: []harness.Result{res(80, 1, 2)}, keel: []harness.Result{res(45, 1, 2)}})
	pt := persistenceTable([]row{r1, r2})
	if len(pt.rows) != 1 || pt.rows[0][3] != "0.80×" || pt.rows[0][4] != "0.50×" {
		t.Errorf("persistence table = %v", pt.rows)
	}
	md := throughputTable([]row{r1}).markdown()
	if !strings.Contains(md, "| off | SET | 1 | 0.1k | 0.1k | 1.20× |") {
		t.Errorf("markdown = %s", md)
	}
}

// TestScanOnceFollowsCursorAndDedupes runs the prefix-scan loop against a
// scripted server: two pages, a key repeated across them (SCAN may return
// a key twice), the second page ending at cursor 0.
func TestScanOnceFollowsCursorAndDedupes(t *testing.T) {
	client, srv := stdnet.Pipe()
	defer client.Close()
	cursors := make(chan string, 2)
	go func() {
		defer srv.Close()
		r := bufio.NewReader(srv)
		pages := []string{
			"*2\r\n$2\r\n17\r\n*2\r\n$5\r\npfx:1\r\n$5\r\npfx:2\r\n",
			"*2\r\n$1\r\n0\r\n*2\r\n$5\r\npfx:2\r\n$5\r\npfx:3\r\n",
		}
		for _, page := range pages {
			var lines []string
			for i := 0; i < 13; i++ { // SCAN cursor MATCH p COUNT n: 6 args
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				lines = append(lines, strings.TrimSpace(line))
			}
			cursors <- lines[4]
			srv.Write([]byte(page))
		}
	}()
	found, calls, _, err := scanOnce(harness.NewConn(client))
	if err != nil {
		t.Fatal(err)
	}
	if found != 3 || calls != 2 {
		t.Errorf("found %d keys in %d calls, want 3 in 2", found, calls)
	}
	if first, second := <-cursors, <-cursors; first != "0" || second != "17" {
		t.Errorf("cursors sent = %q, %q; want 0 then 17", first, second)
	}
}
