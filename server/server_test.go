package server

import (
	"bytes"
	"fmt"
	"io"
	stdnet "net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestConnectionCommandsRaw(t *testing.T) {
	ts := startServer(t, Config{})
	rc := ts.raw(t)
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "+PONG"},
		{[]string{"ping", "hi"}, "$hi"},
		{[]string{"PING", "a", "b"}, "-ERR wrong number of arguments for 'ping' command"},
		{[]string{"ECHO", "x y"}, "$x y"},
		{[]string{"ECHO"}, "-ERR wrong number of arguments for 'echo' command"},
		{[]string{"SELECT", "0"}, "+OK"},
		{[]string{"SELECT", "1"}, "-ERR DB index is out of range"},
		{[]string{"SELECT", "x"}, "-ERR value is not an integer or out of range"},
		{[]string{"CLIENT", "GETNAME"}, "$nil"},
		{[]string{"CLIENT", "SETNAME", "conn-a"}, "+OK"},
		{[]string{"CLIENT", "GETNAME"}, "$conn-a"},
		{[]string{"CLIENT", "SETNAME", "a b"}, "-ERR Client names cannot contain spaces, newlines or special characters."},
		{[]string{"CLIENT", "SETNAME"}, "-ERR wrong number of arguments for 'client|setname' command"},
		{[]string{"CLIENT", "SETINFO", "LIB-NAME", "go-redis(,go1.26)"}, "+OK"},
		{[]string{"CLIENT", "SETINFO", "LIB-VER", "9.23.0"}, "+OK"},
		{[]string{"CLIENT", "SETINFO", "COLOR", "red"}, "-ERR Unrecognized option 'COLOR'"},
		{[]string{"CLIENT", "NOPE"}, "-ERR unknown subcommand 'NOPE'. Try CLIENT HELP."},
		{[]string{"CLIENT", "KILL", "1.2.3.4:5"}, "-ERR No such client"},
		{[]string{"CLIENT", "KILL", "ID", "999999"}, ":0"},
		{[]string{"CLIENT", "KILL", "ID", "0"}, "-ERR client-id should be greater than 0"},
		{[]string{"CLIENT", "KILL", "ID"}, "-ERR No such client"},
		{[]string{"CLIENT", "KILL", "ID", "5", "SKIPME"}, "-ERR syntax error"},
		{[]string{"HELLO", "4"}, "-NOPROTO unsupported protocol version"},
		{[]string{"HELLO", "x"}, "-ERR Protocol version is not an integer or out of range"},
		{[]string{"HELLO", "2", "FOO"}, "-ERR Syntax error in HELLO option 'FOO'"},
		{[]string{"AUTH", "pw"}, "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"},
		{[]string{"AUTH", "default", "anything"}, "+OK"},
		{[]string{"AUTH", "bob", "pw"}, "-WRONGPASS invalid username-password pair or user is disabled."},
		{[]string{"CONFIG", "GET", "maxclients"}, "*[$maxclients $10000]"},
		{[]string{"CONFIG", "GET", "appendf*", "port"}, "*[$appendfsync $everysec $port $0]"},
		{[]string{"CONFIG", "SET", "maxclients", "5000"}, "+OK"},
		{[]string{"CONFIG", "GET", "maxclients"}, "*[$maxclients $5000]"},
		{[]string{"CONFIG", "SET", "maxclients", "many"}, "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer"},
		{[]string{"CONFIG", "SET", "save", ""}, "-ERR Unknown option or number of arguments for CONFIG SET - 'save'"},
		{[]string{"CONFIG", "RESETSTAT"}, "+OK"},
		{[]string{"CONFIG", "FOO"}, "-ERR unknown subcommand 'FOO'. Try CONFIG HELP."},
		{[]string{"foo", "bar", "baz"}, "-ERR unknown command 'foo', with args beginning with: 'bar' 'baz' "},
		{[]string{"FOOBAR"}, "-ERR unknown command 'FOOBAR', with args beginning with: "},
		{[]string{"COMMAND", "INFO", "nosuch"}, "*[*nil]"},
		{[]string{"SHUTDOWN", "PLEASE"}, "-ERR syntax error"},
	}
	for _, s := range steps {
		if got := rc.do(s.args...); got != s.want {
			t.Errorf("%q: got %q, want %q", s.args, got, s.want)
		}
	}
	// HELLO 3 switches this connection to RESP3: maps and nulls change.
	got := rc.do("HELLO", "3")
	if !strings.HasPrefix(got, "%[$server $keel $version $7.2.0 $proto :3 $id :") || !strings.HasSuffix(got, "$mode $standalone $role $master $modules *[]]") {
		t.Fatalf("HELLO 3: %s", got)
	}
	if got := rc.do("CLIENT", "SETNAME", ""); got != "+OK" {
		t.Fatal(got)
	}
	if got := rc.do("CLIENT", "GETNAME"); got != "_" {
		t.Fatalf("RESP3 null: %q", got)
	}
	if got := rc.do("CONFIG", "GET", "port"); got != "%[$port $0]" {
		t.Fatalf("RESP3 map: %q", got)
	}
	if got := rc.do("QUIT"); got != "+OK" {
		t.Fatal(got)
	}
	if !rc.closed() {
		t.Fatal("QUIT did not close the connection")
	}
}

func TestInlineAndPipelinedRaw(t *testing.T) {
	ts := startServer(t, Config{})
	rc := ts.raw(t)
	rc.send("PING\r\necho \"a b\"\r\n\r\nping 'x y'\nFOO 'bar'\r\n*1\r\n$4\r\nPING\r\n")
	for _, want := range []string{"+PONG", "$a b", "$x y", "-ERR unknown command 'FOO', with args beginning with: 'bar' ", "+PONG"} {
		if got := rc.reply(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestAuthRequirePass(t *testing.T) {
	ts := startServer(t, Config{RequirePass: "s3cret"})
	rc := ts.raw(t)
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "-NOAUTH Authentication required."},
		{[]string{"GET", "k"}, "-NOAUTH Authentication required."},
		{[]string{"nosuch"}, "-ERR unknown command 'nosuch', with args beginning with: "},
		{[]string{"HELLO", "3"}, "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"},
		{[]string{"AUTH", "wrong"}, "-WRONGPASS invalid username-password pair or user is disabled."},
		{[]string{"AUTH", "a", "b", "c"}, "-ERR syntax error"},
		{[]string{"AUTH", "s3cret"}, "+OK"},
		{[]string{"PING"}, "+PONG"},
		{[]string{"CONFIG", "GET", "requirepass"}, "*[$requirepass $s3cret]"},
	}
	for _, s := range steps {
		if got := rc.do(s.args...); got != s.want {
			t.Errorf("%q: got %q, want %q", s.args, got, s.want)
		}
	}
	// HELLO with AUTH authenticates and switches protocol in one step.
	rc2 := ts.raw(t)
	if got := rc2.do("HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "x"); !strings.HasPrefix(got, "%[") {
		t.Fatalf("HELLO AUTH: %s", got)
	}
	if got := rc2.do("CLIENT", "GETNAME"); got != "$x" {
		t.Fatal(got)
	}
	// go-redis with a password.
	c := ts.client(t, &redis.Options{Password: "s3cret", Protocol: 3})
	if err := c.Ping(ctx()).Err(); err != nil {
		t.Fatal(err)
	}
	bad := ts.client(t, &redis.Options{Password: "nope"})
	if err := bad.Ping(ctx()).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestGoRedisConnectionCommands(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			ts := startServer(t, Config{Port: 6399})
			c := ts.client(t, &redis.Options{Protocol: proto, ClientName: "tester"})
			if v, err := c.Ping(ctx()).Result(); err != nil || v != "PONG" {
				t.Fatalf("PING: %q %v", v, err)
			}
			if v, err := c.Echo(ctx(), "hello").Result(); err != nil || v != "hello" {
				t.Fatalf("ECHO: %q %v", v, err)
			}
			id, err := c.ClientID(ctx()).Result()
			if err != nil || id <= 0 {
				t.Fatalf("CLIENT ID: %d %v", id, err)
			}
			if name, err := c.ClientGetName(ctx()).Result(); err != nil || name != "tester" {
				t.Fatalf("CLIENT GETNAME: %q %v", name, err)
			}
			list, err := c.ClientList(ctx()).Result()
			if err != nil || !strings.Contains(list, "id="+strconv.FormatInt(id, 10)+" ") || !strings.Contains(list, "name=tester") ||
				!strings.Contains(list, fmt.Sprintf("resp=%d", proto)) {
				t.Fatalf("CLIENT LIST: %q %v", list, err)
			}
			info, err := c.ClientInfo(ctx()).Result()
			if err != nil || info.ID != id || info.Name != "tester" {
				t.Fatalf("CLIENT INFO: %+v %v", info, err)
			}
			tm, err := c.Time(ctx()).Result()
			if err != nil || time.Since(tm).Abs() > time.Minute {
				t.Fatalf("TIME: %v %v", tm, err)
			}
			cfg, err := c.ConfigGet(ctx(), "port").Result()
			if err != nil || cfg["port"] != "6399" {
				t.Fatalf("CONFIG GET: %v %v", cfg, err)
			}
			n, err := c.Do(ctx(), "COMMAND", "COUNT").Int()
			if err != nil || n < 12 {
				t.Fatalf("COMMAND COUNT: %d %v", n, err)
			}
			cmds, err := c.Command(ctx()).Result()
			if err != nil {
				t.Fatalf("COMMAND: %v", err)
			}
			if g := cmds["get"]; g == nil || g.Arity != 2 || g.FirstKeyPos != 1 || !g.ReadOnly {
				t.Fatalf("COMMAND get: %+v", g)
			}
			if p := cmds["ping"]; p == nil || p.Arity != -1 {
				t.Fatalf("COMMAND ping: %+v", p)
			}
			docs, err := c.Do(ctx(), "COMMAND", "DOCS", "set", "client").Result()
			if err != nil {
				t.Fatalf("COMMAND DOCS: %v", err)
			}
			if s := fmt.Sprint(docs); !strings.Contains(s, "expiration") || !strings.Contains(s, "client|setname") {
				t.Fatalf("COMMAND DOCS: %v", s)
			}
			infoAll, err := c.Info(ctx()).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"# Server", "redis_version:7.2.0", "keel_version:" + Version, "# Clients", "connected_clients:1",
				"# Memory", "used_memory:", "used_memory_rss:", "# Persistence", "# Stats", "total_commands_processed:", "# Replication", "role:master", "# Keyspace"} {
				if !strings.Contains(infoAll, want) {
					t.Errorf("INFO lacks %q", want)
				}
			}
			mem, err := c.Info(ctx(), "memory").Result()
			if err != nil || strings.Contains(mem, "# Server") || !strings.Contains(mem, "used_memory:") {
				t.Fatalf("INFO memory: %q %v", mem, err)
			}
			if rss := infoField(mem, "used_memory_rss"); rss <= 0 {
				t.Fatalf("used_memory_rss %d", rss)
			}
			runtime.GC() // the server runs in this process: now a GC has marked its heap
			mem, err = c.Info(ctx(), "memory").Result()
			if err != nil {
				t.Fatal(err)
			}
			if live, used := infoField(mem, "used_memory_live"), infoField(mem, "used_memory_peak"); live <= 0 || live > used {
				t.Fatalf("used_memory_live %d, used_memory_peak %d", live, used)
			}
			if err := c.Do(ctx(), "SELECT", "0").Err(); err != nil {
				t.Fatal(err)
			}
			if err := c.Do(ctx(), "NOSUCH", "x").Err(); err == nil || err.Error() != "ERR unknown command 'NOSUCH', with args beginning with: 'x' " {
				t.Fatalf("unknown: %v", err)
			}
		})
	}
}

func infoField(info, name string) int64 {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

func TestClientKill(t *testing.T) {
	ts := startServer(t, Config{})
	victim := ts.raw(t)
	vid := victim.do("CLIENT", "ID")
	other := ts.raw(t)
	killer := ts.raw(t)
	if got := killer.do("CLIENT", "KILL", "ID", vid[1:]); got != ":1" {
		t.Fatalf("KILL ID: %s", got)
	}
	if !victim.closed() {
		t.Fatal("victim still connected")
	}
	// Old form, by address.
	addr := other.conn.LocalAddr().String()
	if got := killer.do("CLIENT", "KILL", addr); got != "+OK" {
		t.Fatalf("KILL addr: %s", got)
	}
	if !other.closed() {
		t.Fatal("other still connected")
	}
	// SKIPME yes (default) spares the caller; SKIPME no kills it after the reply.
	if got := killer.do("CLIENT", "KILL", "ADDR", killer.conn.LocalAddr().String()); got != ":0" {
		t.Fatalf("skipme: %s", got)
	}
	if got := killer.do("CLIENT", "KILL", "ADDR", killer.conn.LocalAddr().String(), "SKIPME", "no"); got != ":1" {
		t.Fatalf("skipme no: %s", got)
	}
	if !killer.closed() {
		t.Fatal("killer still connected")
	}
}

func TestStatsAndResetStat(t *testing.T) {
	ts := startServer(t, Config{})
	c := ts.client(t, nil)
	for i := 0; i < 10; i++ {
		c.Ping(ctx())
	}
	info := c.Info(ctx(), "stats").Val()
	if n := infoField(info, "total_commands_processed"); n < 10 {
		t.Fatalf("total_commands_processed %d", n)
	}
	c.ConfigResetStat(ctx())
	info = c.Info(ctx(), "stats").Val()
	if n := infoField(info, "total_commands_processed"); n > 2 {
		t.Fatalf("after RESETSTAT: total_commands_processed %d", n)
	}
}

func TestPipeline1000InOrder(t *testing.T) {
	ts := startServer(t, Config{})
	for _, proto := range []int{2, 3} {
		c := ts.client(t, &redis.Options{Protocol: proto})
		cmds, err := c.Pipelined(ctx(), func(p redis.Pipeliner) error {
			for i := 0; i < 1000; i++ {
				if i%3 == 0 {
					p.Echo(ctx(), strconv.Itoa(i)) // a connection command between keyspace ones
				} else {
					p.Set(ctx(), "k"+strconv.Itoa(i), i, 0)
					p.Get(ctx(), "k"+strconv.Itoa(i))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		j := 0
		for i := 0; i < 1000; i++ {
			if i%3 == 0 {
				if v := cmds[j].(*redis.StringCmd).Val(); v != strconv.Itoa(i) {
					t.Fatalf("reply %d: echo %q", j, v)
				}
				j++
				continue
			}
			if v := cmds[j].(*redis.StatusCmd).Val(); v != "OK" {
				t.Fatalf("reply %d: set %q", j, v)
			}
			if v := cmds[j+1].(*redis.StringCmd).Val(); v != strconv.Itoa(i) {
				t.Fatalf("reply %d: get %q", j+1, v)
			}
			j += 2
		}
	}
}

// Many clients writing at once are group-committed by the shard; each
// sees its own replies in order.
func TestConcurrentClients(t *testing.T) {
	ts := startServer(t, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			c := ts.client(t, nil)
			for i := 0; i < 50; i++ {
				cmds, err := c.Pipelined(ctx(), func(p redis.Pipeliner) error {
					for k := 0; k < 20; k++ {
						key := fmt.Sprintf("g%d:%d", g, k)
						p.Set(ctx(), key, fmt.Sprintf("%d-%d", i, k), 0)
						p.Get(ctx(), key)
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				for k := 0; k < 20; k++ {
					if v := cmds[2*k+1].(*redis.StringCmd).Val(); v != fmt.Sprintf("%d-%d", i, k) {
						errs <- fmt.Errorf("client %d: got %q", g, v)
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestProtocolAbuseClosesOnlyThatConnection(t *testing.T) {
	ts := startServer(t, Config{})
	good := ts.client(t, nil)
	good.Set(ctx(), "survivor", "yes", 0)
	cases := []struct {
		name, in, reply string
	}{
		{"absurd multibulk", "*99999999999\r\n", "-ERR Protocol error: invalid multibulk length"},
		{"negative bulk", "*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length"},
		{"huge bulk", "*1\r\n$99999999999\r\n", "-ERR Protocol error: invalid bulk length"},
		{"not a bulk", "*2\r\n$3\r\nGET\r\nxyz\r\n", "-ERR Protocol error: expected '$', got 'x'"},
		{"unbalanced", "SET \"a b\r\n", "-ERR Protocol error: unbalanced quotes in request"},
		{"binary garbage", "*\x00\xff\xfe\r\n", "-ERR Protocol error: invalid multibulk length"},
		{"10 MB inline", strings.Repeat("A", 10<<20), "-ERR Protocol error: too big inline request"},
		{"truncated frame then EOF", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc", ""},
	}
	for _, tc := range cases {
		rc := ts.raw(t)
		go func() { rc.conn.Write([]byte(tc.in)) }() // the server may close before reading it all
		if tc.reply == "" {
			rc.conn.(*stdnet.TCPConn).CloseWrite()
			if !rc.closed() {
				t.Errorf("%s: connection left open", tc.name)
			}
		} else {
			if got := rc.reply(); got != tc.reply {
				t.Errorf("%s: got %q, want %q", tc.name, got, tc.reply)
			}
			if !rc.closed() {
				t.Errorf("%s: connection left open", tc.name)
			}
		}
		if v, err := good.Get(ctx(), "survivor").Result(); err != nil || v != "yes" {
			t.Fatalf("after %s the other client got %q %v", tc.name, v, err)
		}
	}
	// Binary garbage from a seeded generator, many connections.
	for i := 0; i < 50; i++ {
		rc := ts.raw(t)
		junk := make([]byte, 1+i*37%4096)
		x := uint32(i*2654435761 + 1)
		for j := range junk {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			junk[j] = byte(x)
		}
		rc.conn.Write(junk)
		rc.conn.(*stdnet.TCPConn).CloseWrite()
		rc.closed()
	}
	if v, err := good.Get(ctx(), "survivor").Result(); err != nil || v != "yes" {
		t.Fatalf("after garbage the other client got %q %v", v, err)
	}
}

func TestMaxClients(t *testing.T) {
	ts := startServer(t, Config{MaxClients: 3})
	var held []*rawConn
	for i := 0; i < 3; i++ {
		rc := ts.raw(t)
		if got := rc.do("PING"); got != "+PONG" {
			t.Fatal(got)
		}
		held = append(held, rc)
	}
	over := ts.raw(t)
	if got := over.reply(); got != "-ERR max number of clients reached" {
		t.Fatalf("got %q", got)
	}
	if !over.closed() {
		t.Fatal("rejected connection left open")
	}
	held[0].conn.Close()
	// The freed slot is reusable once the server noticed the close.
	for i := 0; ; i++ {
		rc := ts.raw(t)
		rc.send("PING\r\n")
		if got := rc.reply(); got == "+PONG" {
			break
		} else if i > 100 {
			t.Fatalf("slot never freed: %q", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	info := ts.client(t, nil)
	_ = info
}

// Idle connections must be cheap and must not stop a working client. The
// client ends live in a helper process (this test binary re-executed), so
// each process needs only one descriptor per connection.
func TestManyIdleConnections(t *testing.T) {
	const n = 10000
	for _, need := range []uint64{n + 256} {
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Skipf("getrlimit: %v", err)
		}
		if lim.Cur < need {
			nl := syscall.Rlimit{Cur: need, Max: max(lim.Max, need)}
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err != nil {
				t.Skipf("needs %d open files, limit is %d and cannot be raised: %v", need, lim.Cur, err)
			}
		}
	}
	ts := startServer(t, Config{})
	good := ts.client(t, nil)
	var before runtimeMem
	before.read()

	helper := exec.Command(os.Args[0], "-test.run=^TestIdleClientsHelper$", "-test.v")
	// n connections in all, at the default maxclients: n-1 idle and one busy.
	helper.Env = append(os.Environ(), "KEEL_IDLE_HELPER_ADDR="+ts.addr, "KEEL_IDLE_HELPER_N="+strconv.Itoa(n-1))
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	helper.Stdout, helper.Stderr = &out, &out
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	// Keep a working client busy while the idle ones pile up.
	for i := 0; int64(ts.srv.Node().Sessions()) < n; i++ {
		if v, err := good.Ping(ctx()).Result(); err != nil || v != "PONG" {
			t.Fatalf("with %d connections: %q %v", int64(ts.srv.Node().Sessions()), v, err)
		}
		if i > 6000 {
			t.Fatalf("server has %d clients; helper said: %s", int64(ts.srv.Node().Sessions()), out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v, err := good.Ping(ctx()).Result(); err != nil || v != "PONG" {
		t.Fatalf("PING: %q %v", v, err)
	}
	if got := good.Info(ctx(), "clients").Val(); infoField(got, "connected_clients") != n {
		t.Fatalf("INFO clients: %s", got)
	}
	var after runtimeMem
	after.read()
	t.Logf("%d idle connections: %.1f KiB of heap and stack each on the server",
		n-1, float64(after.total()-before.total())/(n-1)/1024)
	// One more is refused with Redis's error.
	over := ts.raw(t)
	if got := over.reply(); got != "-ERR max number of clients reached" {
		t.Fatalf("connection %d: %q", n+1, got)
	}
	stdin.Close() // the helper now checks a few idle connections still answer
	if err := helper.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out.String())
	}
}

// TestIdleClientsHelper is the client side of TestManyIdleConnections.
func TestIdleClientsHelper(t *testing.T) {
	addr := os.Getenv("KEEL_IDLE_HELPER_ADDR")
	if addr == "" {
		t.Skip("runs only as TestManyIdleConnections's helper process")
	}
	n, _ := strconv.Atoi(os.Getenv("KEEL_IDLE_HELPER_N"))
	conns := make([]stdnet.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := stdnet.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	io.Copy(io.Discard, os.Stdin)
	for _, i := range []int{0, n / 2, n - 1} {
		conns[i].Write([]byte("PING\r\n"))
		buf := make([]byte, 7)
		conns[i].SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := ioReadFullConn(conns[i], buf); err != nil || !bytes.Equal(buf, []byte("+PONG\r\n")) {
			t.Fatalf("idle connection %d: %q %v", i, buf, err)
		}
	}
}

func ioReadFullConn(c stdnet.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
