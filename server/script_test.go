package server

import (
	"bufio"
	"errors"
	stdnet "net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestScripts runs the RESP stories in testdata/resp (protocol and
// connection commands) and testdata/txn (transactions and pub/sub): a
// reviewer reads the exchange, not the harness. Directives:
//
//	server [requirepass=PW] [maxclients=N] [notify=FLAGS]   start a fresh server
//	do [conn=NAME]          send each input line as an inline command (one
//	                        write: a pipeline); print one reply per line
//	read [conn=NAME] [n=N]  print the next N (default 1) replies or pushes
//	raw [conn=NAME]         send the input (Go string escapes) as raw bytes;
//	                        print every reply until the server closes
//
// Regenerate expectations with: go test ./server -run TestScripts -rewrite
func TestScripts(t *testing.T) {
	for _, dir := range []string{"testdata/resp", "testdata/txn"} {
		t.Run(dir, func(t *testing.T) { runScripts(t, dir) })
	}
}

func runScripts(t *testing.T, dir string) {
	datadriven.Walk(t, dir, func(t *testing.T, path string) {
		var ts *testServer
		conns := map[string]*rawConn{}
		conn := func(td *datadriven.TestData) *rawConn {
			name := "default"
			if td.HasArg("conn") {
				td.ScanArgs(t, "conn", &name)
			}
			if conns[name] == nil {
				conns[name] = ts.raw(t)
			}
			return conns[name]
		}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			switch td.Cmd {
			case "server":
				cfg := Config{}
				if td.HasArg("requirepass") {
					td.ScanArgs(t, "requirepass", &cfg.RequirePass)
				}
				if td.HasArg("maxclients") {
					td.ScanArgs(t, "maxclients", &cfg.MaxClients)
				}
				if td.HasArg("notify") {
					td.ScanArgs(t, "notify", &cfg.NotifyKeyspaceEvents)
				}
				ts = startServer(t, cfg)
				conns = map[string]*rawConn{}
				return ""
			case "do":
				rc := conn(td)
				lines := strings.Split(td.Input, "\n")
				rc.send(strings.Join(lines, "\r\n") + "\r\n")
				var out strings.Builder
				for range lines {
					out.WriteString(rc.reply() + "\n")
				}
				return out.String()
			case "read":
				rc := conn(td)
				n := 1
				if td.HasArg("n") {
					td.ScanArgs(t, "n", &n)
				}
				var out strings.Builder
				for i := 0; i < n; i++ {
					out.WriteString(rc.reply() + "\n")
				}
				return out.String()
			case "raw":
				rc := conn(td)
				in, err := strconv.Unquote(`"` + strings.ReplaceAll(td.Input, `"`, `\"`) + `"`)
				if err != nil {
					t.Fatalf("%s: %v", td.Pos, err)
				}
				go rc.conn.Write([]byte(in)) // the server may close before reading it all
				var out strings.Builder
				rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(rc.conn)
				for {
					r, err := readReply(br)
					if err != nil {
						var ne stdnet.Error
						if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
							out.WriteString("(still open)\n")
						} else {
							out.WriteString("(closed)\n")
						}
						return out.String()
					}
					out.WriteString(r + "\n")
				}
			}
			t.Fatalf("%s: unknown directive %q", td.Pos, td.Cmd)
			return ""
		})
	})
}
