package engine

import (
	"bufio"
	"fmt"
	stdnet "net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScripts runs the command stories in testdata/*.txt. Each block is
//
//	run [now=MS] [redis=skip]
//	SET k v
//	GET k
//	----
//	+OK
//	"v"
//
// with one command per line (arguments split like a shell: "double quoted"
// with \n, \r, \t, \xHH, \", \\ escapes; 'single quoted' literally) and one
// rendered reply per line (see recorder). now is the Unix ms the commands
// run at; it persists to later blocks until changed.
//
// The expected replies were recorded from Redis 7.0.15: with
// KEEL_REDIS_ADDR=127.0.0.1:PORT the test also sends every block not
// marked redis=skip to that server and reports its replies instead of the
// engine's (blocks that depend on the clock are marked), so `go test -run TestScripts -rewrite` with it
// set rewrites the files with Redis's answers, and a plain run then checks
// keel against them.
func TestScripts(t *testing.T) {
	redisAddr := os.Getenv("KEEL_REDIS_ADDR")
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		if filepath.Ext(path) != ".txt" {
			return
		}
		db := newTestDB()
		now := int64(1_700_000_000_000)
		var rc *respClient
		if redisAddr != "" {
			rc = dialRedis(t, redisAddr)
			defer rc.close()
			rc.do(t, "FLUSHALL")
		}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			if td.Cmd != "run" {
				t.Fatalf("unknown directive %q", td.Cmd)
			}
			if td.HasArg("now") {
				td.ScanArgs(t, "now", &now)
			}
			useRedis := rc != nil && !td.HasArg("redis")
			var out strings.Builder
			for _, line := range strings.Split(td.Input, "\n") {
				if strings.TrimSpace(line) == "" {
					continue
				}
				args, err := splitArgs(line)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				// The engine runs every block, so its state stays whole
				// for the redis=skip blocks that follow.
				reply := exec(db, now, args...)
				if useRedis {
					reply = rc.do(t, args...)
				}
				out.WriteString(reply)
				out.WriteByte('\n')
			}
			return out.String()
		})
	})
}

// splitArgs splits a command line into arguments.
func splitArgs(line string) ([]string, error) {
	var args []string
	i := 0
	for {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i == len(line) {
			return args, nil
		}
		var b strings.Builder
		switch line[i] {
		case '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				c := line[i]
				if c == '\\' && i+1 < len(line) {
					i++
					switch line[i] {
					case 'n':
						c = '\n'
					case 'r':
						c = '\r'
					case 't':
						c = '\t'
					case 'x':
						if i+2 >= len(line) {
							return nil, fmt.Errorf("bad \\x escape")
						}
						v, err := strconv.ParseUint(line[i+1:i+3], 16, 8)
						if err != nil {
							return nil, err
						}
						c = byte(v)
						i += 2
					default:
						c = line[i]
					}
				}
				b.WriteByte(c)
			}
			if i == len(line) {
				return nil, fmt.Errorf("unterminated quote")
			}
			i++
		case '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			b.WriteString(line[i+1 : i+1+j])
			i += j + 2
		default:
			for i < len(line) && line[i] != ' ' {
				b.WriteByte(line[i])
				i++
			}
		}
		args = append(args, b.String())
	}
}

// respClient is the smallest RESP2 client that renders replies the way
// recorder does, so Redis's answers and the engine's compare as text.
type respClient struct {
	conn stdnet.Conn
	r    *bufio.Reader
}

func dialRedis(t *testing.T, addr string) *respClient {
	c, err := stdnet.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return &respClient{conn: c, r: bufio.NewReader(c)}
}

func (c *respClient) close() { c.conn.Close() }

func (c *respClient) do(t *testing.T, args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	c.read(t, &rec)
	return rec.String()
}

func (c *respClient) read(t *testing.T, rec *recorder) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	body := line[1:]
	switch line[0] {
	case '+':
		rec.WriteSimple(body)
	case '-':
		rec.WriteError(body)
	case ':':
		n, _ := strconv.ParseInt(body, 10, 64)
		rec.WriteInt(n)
	case '$':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			rec.WriteNull()
			return
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(c.r, buf); err != nil {
			t.Fatal(err)
		}
		rec.WriteBulk(buf[:n])
	case '*':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			rec.WriteNullArray()
			return
		}
		rec.WriteArray(n)
		for i := 0; i < n; i++ {
			c.read(t, rec)
		}
	default:
		t.Fatalf("unexpected reply %q", line)
	}
}

func ioReadFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
