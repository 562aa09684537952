package server

import (
	"bufio"
	"errors"
	"io"
	stdnet "net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/internal/redistest"
)

// dialRaw opens a raw RESP connection to addr.
func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	conn, err := stdnet.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawConn{t: t, conn: conn, br: bufio.NewReader(conn)}
}

// Redis 7 and keel side by side: each script runs on a fresh connection to
// both, and every reply (and whether the connection was then closed) must
// be the same.
func TestClientLimitsMatchRedis(t *testing.T) {
	redisAddr := redistest.Start(t, "--requirepass", "secret")
	keel := startServer(t, Config{RequirePass: "secret"})
	type step struct {
		send   string // raw bytes (a command, or a header that announces more)
		closed bool   // the server closes the connection after replying
	}
	scripts := map[string][]step{
		"unauthenticated bulk":      {{send: "*2\r\n$3\r\nSET\r\n$500000000\r\n", closed: true}},
		"unauthenticated multibulk": {{send: "*11\r\n", closed: true}},
		"small command before auth": {{send: "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"}},
		"auth then a big bulk": {
			{send: "*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n"},
			{send: "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$20000\r\n" + strings.Repeat("v", 20000) + "\r\n"},
			{send: "*2\r\n$6\r\nSTRLEN\r\n$3\r\nbig\r\n"},
		},
		"online settings": {
			{send: "*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n"},
			{send: cmd("CONFIG", "SET", "timeout", "-1")},
			{send: cmd("CONFIG", "SET", "timeout", "300")},
			{send: cmd("CONFIG", "GET", "timeout")},
			{send: cmd("CONFIG", "SET", "client-query-buffer-limit", "2mb")},
			{send: cmd("CONFIG", "GET", "client-query-buffer-limit")},
			{send: cmd("CONFIG", "SET", "proto-max-bulk-len", "4mb")},
			{send: cmd("CONFIG", "GET", "proto-max-bulk-len")},
			{send: cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0 pubsub 32mb 8mb 60")},
			{send: cmd("CONFIG", "SET", "client-output-buffer-limit", "nonsense 1 2")},
			{send: cmd("CONFIG", "SET", "timeout", "0")},
			{send: cmd("CONFIG", "SET", "client-query-buffer-limit", "1gb")},
			{send: cmd("CONFIG", "SET", "proto-max-bulk-len", "512mb")},
		},
		"busy-reply-threshold and its old name": {
			{send: "*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n"},
			{send: cmd("CONFIG", "GET", "busy-reply-threshold")},
			{send: cmd("CONFIG", "GET", "lua-time-limit")},
			{send: cmd("CONFIG", "GET", "busy*")},
			{send: cmd("CONFIG", "SET", "busy-reply-threshold", "-1")},
			{send: cmd("CONFIG", "SET", "lua-time-limit", "250")},
			{send: cmd("CONFIG", "GET", "busy-reply-threshold")},
			{send: cmd("CONFIG", "SET", "busy-reply-threshold", "5000")},
			{send: cmd("FUNCTION", "KILL")},
		},
		"a reply over the normal hard limit": {
			{send: "*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n"},
			{send: cmd("SET", "big2", strings.Repeat("w", 100000))},
			{send: cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 1kb 0 0")},
			{send: cmd("GET", "big2"), closed: true},
		},
	}
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			run := func(addr string) []string {
				rc := dialRaw(t, addr)
				var out []string
				for _, st := range script {
					rc.send(st.send)
					if st.closed {
						// Whether the reply that crossed a limit still goes
						// out before the close depends on timing in Redis;
						// the close is what both must do.
						out = append(out, "closed="+boolWord(closesSoon(rc)))
						continue
					}
					out = append(out, rc.reply())
				}
				return out
			}
			want, got := run(redisAddr), run(keel.addr)
			// Undo what the script set, on both servers, before the next one.
			for _, addr := range []string{redisAddr, keel.addr} {
				rc := dialRaw(t, addr)
				rc.do("AUTH", "secret")
				rc.do("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0")
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("keel:\n  %s\nRedis:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

func cmd(args ...string) string {
	var b strings.Builder
	b.WriteString("*" + itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.String()
}

// closesSoon reads what the server still sends and reports whether it
// then closes the connection (within 5 s).
func closesSoon(rc *rawConn) bool {
	rc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, rc.br)
	var ne stdnet.Error
	return err == nil || !(errors.As(err, &ne) && ne.Timeout())
}

func boolWord(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// An idle client is closed once CONFIG SET timeout passes; a subscriber
// is not, as in Redis.
func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, Config{})
	admin := ts.raw(t)
	if got := admin.do("CONFIG", "SET", "timeout", "1"); got != "+OK" {
		t.Fatal(got)
	}
	idle := ts.raw(t)
	idle.do("PING")
	sub := ts.raw(t)
	sub.do("SUBSCRIBE", "ch")
	start := time.Now()
	if !idle.closed() {
		t.Fatal("an idle client was not closed")
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("closed after %s, before its timeout", d)
	}
	// The subscriber is still there: a message reaches it.
	pub := ts.raw(t)
	if got := pub.do("PUBLISH", "ch", "hi"); got != ":1" {
		t.Fatalf("PUBLISH reached %s subscribers", got)
	}
	if got := sub.reply(); got != "*[$message $ch $hi]" {
		t.Fatalf("subscriber got %q", got)
	}
	pub.do("CONFIG", "SET", "timeout", "0")
}

func itoa(v int) string { return strconv.Itoa(v) }
