package engine

import (
	"bufio"
	"fmt"
	"math"
	stdnet "net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The comparison harness runs the same commands on the engine and on a
// real redis-server started beside the test (once per test binary, on a
// free loopback port) and requires the same replies. It skips, saying
// so, when redis-server is not on PATH; CI installs it.
//
// A case is a list of command lines (splitArgs syntax). A line may start
// with a mode:
//
//	sort: CMD        the reply is an array whose order is unspecified
//	                 (a hash table's): compare it sorted
//	pairs: CMD       an array of pairs (HGETALL of a hash table): compare
//	                 the pairs sorted
//	skip: CMD        run on both, compare nothing (random replies)
//	keel=REPLY: CMD  keel deliberately answers REPLY, not Redis 7.0's
//	                 (encoding names that follow Redis 7.2); not sent
//	resp3: CMD       compare over RESP3 (HELLO 3 on the Redis side)
//
// Doubles are rendered as Redis 7.0 writes them ("%.17g"), so the engine's
// float64 must be Redis's exactly.

var redisServer struct {
	once sync.Once
	addr string
	cmd  *osexec.Cmd
	dir  string
	err  string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if redisServer.cmd != nil {
		_ = redisServer.cmd.Process.Kill()
		_ = redisServer.cmd.Wait()
		_ = os.RemoveAll(redisServer.dir)
	}
	os.Exit(code)
}

// redisAddr starts the test binary's redis-server (first call) and returns
// its address, or skips the test.
func redisAddr(t *testing.T) string {
	t.Helper()
	redisServer.once.Do(func() {
		bin, err := osexec.LookPath("redis-server")
		if err != nil {
			redisServer.err = "redis-server not on PATH (apt-get install -y redis-server): comparison skipped"
			return
		}
		l, err := stdnet.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			redisServer.err = err.Error()
			return
		}
		port := l.Addr().(*stdnet.TCPAddr).Port
		l.Close()
		dir, err := os.MkdirTemp("", "keel-redis-compare")
		if err != nil {
			redisServer.err = err.Error()
			return
		}
		cmd := osexec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "",
			"--appendonly", "no", "--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "log"))
		if err := cmd.Start(); err != nil {
			redisServer.err = err.Error()
			return
		}
		redisServer.cmd, redisServer.dir = cmd, dir
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		for i := 0; i < 200; i++ {
			if c, err := stdnet.Dial("tcp", addr); err == nil {
				c.Close()
				redisServer.addr = addr
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		redisServer.err = "redis-server did not start listening on " + addr
	})
	if redisServer.addr == "" {
		t.Skip(redisServer.err)
	}
	return redisServer.addr
}

// cmpRecorder renders replies like recorder, with doubles written as
// Redis 7.0 does (RESP2: a bulk "%.17g"; RESP3: ",%.17g"), and RESP3's
// types when proto is 3 (the engine sees it through Proto).
type cmpRecorder struct {
	recorder
	proto int
}

func (r *cmpRecorder) Proto() int { return r.proto }

func redisDouble(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', 17, 64)
}

func (r *cmpRecorder) WriteDouble(f float64) {
	if r.proto == 3 {
		r.elem("," + redisDouble(f))
		return
	}
	r.elem(strconv.Quote(redisDouble(f)))
}

func (r *cmpRecorder) WriteMap(n int) {
	if r.proto == 3 {
		r.openTagged("%", 2*n)
		return
	}
	r.open(2 * n)
}

func (r *cmpRecorder) WriteSet(n int) {
	if r.proto == 3 {
		r.openTagged("~", n)
		return
	}
	r.open(n)
}

func (r *cmpRecorder) WriteNull() {
	if r.proto == 3 {
		r.elem("_")
		return
	}
	r.elem("(nil)")
}

func (r *cmpRecorder) WriteNullArray() {
	if r.proto == 3 {
		r.elem("_")
		return
	}
	r.elem("(nil-array)")
}

// openTagged opens an aggregate written with a type tag before '['.
func (r *recorder) openTagged(tag string, n int) {
	if len(r.pending) > 0 && !strings.HasSuffix(r.b.String(), "[") {
		r.b.WriteByte(' ')
	}
	r.b.WriteString(tag)
	if n == 0 {
		r.b.WriteString("[]")
		r.closeDone()
		return
	}
	r.b.WriteByte('[')
	r.pending = append(r.pending, n)
}

// execProto runs argv on db and renders the reply as cmpRecorder does.
func execProto(db *DB, now int64, proto int, args ...string) string {
	argv := make([][]byte, len(args))
	for i, a := range args {
		argv[i] = []byte(a)
	}
	r := &cmpRecorder{proto: proto}
	db.Exec(now, argv, r)
	if len(r.pending) != 0 {
		return r.String() + " <INCOMPLETE>"
	}
	return r.String()
}

// redisConn is a RESP2/RESP3 client rendering replies as cmpRecorder.
type redisConn struct {
	conn  stdnet.Conn
	r     *bufio.Reader
	proto int
}

func dialCompare(t *testing.T, addr string, proto int) *redisConn {
	t.Helper()
	c, err := stdnet.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rc := &redisConn{conn: c, r: bufio.NewReader(c), proto: 2}
	if proto == 3 {
		rc.do(t, "HELLO", "3")
		rc.proto = 3
	}
	return rc
}

func (c *redisConn) do(t *testing.T, args ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if err := c.conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	rec := &cmpRecorder{proto: c.proto}
	c.read(t, rec)
	return rec.String()
}

func (c *redisConn) read(t *testing.T, rec *cmpRecorder) {
	t.Helper()
	line, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	body := line[1:]
	n, _ := strconv.Atoi(body)
	switch line[0] {
	case '+':
		rec.WriteSimple(body)
	case '-':
		rec.WriteError(body)
	case ':':
		v, _ := strconv.ParseInt(body, 10, 64)
		rec.WriteInt(v)
	case '$':
		if n < 0 {
			rec.WriteNull()
			return
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(c.r, buf); err != nil {
			t.Fatal(err)
		}
		rec.WriteBulk(buf[:n])
	case ',':
		rec.elem("," + body)
	case '_':
		rec.elem("_")
	case '*', '%', '~':
		if n < 0 {
			rec.WriteNullArray()
			return
		}
		switch line[0] {
		case '*':
			rec.open(n)
		case '%':
			rec.openTagged("%", 2*n)
			n *= 2
		case '~':
			rec.openTagged("~", n)
		}
		for i := 0; i < n; i++ {
			c.read(t, rec)
		}
	default:
		t.Fatalf("unexpected reply %q", line)
	}
}

// compareCase runs one case's lines on a fresh engine and a flushed Redis.
func compareCase(t *testing.T, addr string, lines []string) {
	t.Helper()
	r2 := dialCompare(t, addr, 2)
	defer r2.conn.Close()
	r3 := dialCompare(t, addr, 3)
	defer r3.conn.Close()
	r2.do(t, "FLUSHALL")
	db := newTestDB()
	now := time.Now().UnixMilli()
	for _, line := range lines {
		mode := ""
		want := ""
		for _, m := range []string{"sort: ", "pairs: ", "skip: ", "resp3: "} {
			if strings.HasPrefix(line, m) {
				mode, line = m[:len(m)-2], line[len(m):]
			}
		}
		if strings.HasPrefix(line, "keel=") {
			i := strings.Index(line, ": ")
			mode, want, line = "keel", line[len("keel="):i], line[i+2:]
		}
		args, err := splitArgs(line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		proto := 2
		rc := r2
		if mode == "resp3" {
			proto, rc = 3, r3
		}
		got := execProto(db, now, proto, args...)
		if mode == "keel" {
			if got != want {
				t.Errorf("%s\n keel: %s\n want: %s (keel's own answer)", line, got, want)
			}
			continue
		}
		red := rc.do(t, args...)
		switch mode {
		case "skip":
			continue
		case "sort":
			got, red = sortedReply(got, 1), sortedReply(red, 1)
		case "pairs":
			got, red = sortedReply(got, 2), sortedReply(red, 2)
		}
		if got != red {
			t.Errorf("%s\n keel:  %s\n redis: %s", line, got, red)
		}
	}
}

// sortedReply sorts the elements (in groups of n) of a rendered flat
// array of bulk strings.
func sortedReply(s string, n int) string {
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return s
	}
	// A SCAN reply, [cursor [elements]]: sort the elements.
	if i := strings.Index(s, " ["); i > 0 && strings.HasSuffix(s, "]]") && !strings.Contains(s[1:i], "[") {
		return s[:i+1] + sortedReply(s[i+1:len(s)-1], n) + "]"
	}
	var toks []string
	body := s[1 : len(s)-1]
	for len(body) > 0 {
		if body[0] == ' ' {
			body = body[1:]
			continue
		}
		if body[0] != '"' {
			i := strings.IndexByte(body, ' ')
			if i < 0 {
				i = len(body)
			}
			toks = append(toks, body[:i])
			body = body[i:]
			continue
		}
		// A quoted Go string: find its end.
		j := 1
		for j < len(body) && body[j] != '"' {
			if body[j] == '\\' {
				j++
			}
			j++
		}
		toks = append(toks, body[:j+1])
		body = body[j+1:]
	}
	var groups []string
	for i := 0; i+n <= len(toks); i += n {
		groups = append(groups, strings.Join(toks[i:i+n], " "))
	}
	sort.Strings(groups)
	return "[" + strings.Join(groups, " ") + "]"
}

// runCompare runs named cases against Redis.
func runCompare(t *testing.T, cases map[string]string) {
	addr := redisAddr(t)
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var lines []string
			for _, l := range strings.Split(cases[name], "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					lines = append(lines, l)
				}
			}
			compareCase(t, addr, lines)
		})
	}
}

// readStrings reads one RESP2 array of bulk strings (pub/sub messages).
func (c *redisConn) readStrings(t *testing.T) []string {
	t.Helper()
	line, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if line[0] != '*' {
		t.Fatalf("not an array: %q", line)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		hdr, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if hdr[0] == ':' {
			out = append(out, strings.TrimSpace(hdr[1:]))
			continue
		}
		l, _ := strconv.Atoi(strings.TrimSpace(hdr[1:]))
		buf := make([]byte, l+2)
		if _, err := ioReadFull(c.r, buf); err != nil {
			t.Fatal(err)
		}
		out = append(out, string(buf[:l]))
	}
	return out
}

// runCompareEvents runs each case's commands on the engine and on Redis
// with keyspace notifications on (every class, "new" and "keymiss"
// included) and requires the same events, "event:key", command by command.
func runCompareEvents(t *testing.T, cases map[string]string) {
	addr := redisAddr(t)
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			main := dialCompare(t, addr, 2)
			defer main.conn.Close()
			main.do(t, "FLUSHALL")
			main.do(t, "CONFIG", "SET", "notify-keyspace-events", "KEAnm")
			defer main.do(t, "CONFIG", "SET", "notify-keyspace-events", "")
			sub := dialCompare(t, addr, 2)
			defer sub.conn.Close()
			fmt.Fprintf(sub.conn, "*2\r\n$10\r\nPSUBSCRIBE\r\n$15\r\n__keyevent@0__*\r\n")
			sub.readStrings(t)
			fmt.Fprintf(sub.conn, "*2\r\n$9\r\nSUBSCRIBE\r\n$8\r\n__marker\r\n")
			sub.readStrings(t)
			var events []string
			db := New(Options{Rand: &SplitMix64{}, Notify: func(ev string, key []byte) {
				events = append(events, ev+":"+string(key))
			}})
			now := time.Now().UnixMilli()
			for i, l := range strings.Split(cases[name], "\n") {
				if l = strings.TrimSpace(l); l == "" {
					continue
				}
				args, err := splitArgs(l)
				if err != nil {
					t.Fatal(err)
				}
				events = nil
				execProto(db, now, 2, args...)
				main.do(t, args...)
				main.do(t, "PUBLISH", "__marker", strconv.Itoa(i))
				var red []string
				for {
					msg := sub.readStrings(t)
					if msg[0] == "message" {
						break
					}
					// pmessage, pattern, channel "__keyevent@0__:<event>", key
					red = append(red, strings.TrimPrefix(msg[2], "__keyevent@0__:")+":"+msg[3])
				}
				if fmt.Sprint(events) != fmt.Sprint(red) {
					t.Errorf("%s\n keel:  %v\n redis: %v", l, events, red)
				}
			}
		})
	}
}
