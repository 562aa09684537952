package server

import (
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestTxnScripts runs the transaction and pub/sub stories in
// testdata/txn. Directives:
//
//	server [notify=FLAGS]   start a fresh server
//	do [conn=NAME]          send each input line as an inline command (one
//	                        write); print one reply per line
//	read [conn=NAME] [n=N]  print the next N (default 1) replies or pushes
//
// Regenerate expectations with: go test ./server -run TestTxnScripts -rewrite
func TestTxnScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/txn", func(t *testing.T, path string) {
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
					var s string
					td.ScanArgs(t, "n", &s)
					n, _ = strconv.Atoi(s)
				}
				var out strings.Builder
				for i := 0; i < n; i++ {
					out.WriteString(rc.reply() + "\n")
				}
				return out.String()
			}
			t.Fatalf("%s: unknown directive %q", td.Pos, td.Cmd)
			return ""
		})
	})
}
