package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	stdnet "net"
	"strconv"
	"strings"
	"testing"

	"github.com/keel-db/keel/udf"
)

// respWriter is a RESP2 engine.Writer.
type respWriter struct{ b bytes.Buffer }

func (w *respWriter) WriteSimple(s string)     { fmt.Fprintf(&w.b, "+%s\r\n", s) }
func (w *respWriter) WriteError(msg string)    { fmt.Fprintf(&w.b, "-%s\r\n", msg) }
func (w *respWriter) WriteInt(n int64)         { fmt.Fprintf(&w.b, ":%d\r\n", n) }
func (w *respWriter) WriteBulk(b []byte)       { fmt.Fprintf(&w.b, "$%d\r\n%s\r\n", len(b), b) }
func (w *respWriter) WriteBulkString(s string) { w.WriteBulk([]byte(s)) }
func (w *respWriter) WriteNull()               { w.b.WriteString("$-1\r\n") }
func (w *respWriter) WriteArray(n int)         { fmt.Fprintf(&w.b, "*%d\r\n", n) }
func (w *respWriter) WriteNullArray()          { w.b.WriteString("*-1\r\n") }
func (w *respWriter) WriteDouble(f float64)    { w.WriteBulkString(strconv.FormatFloat(f, 'g', -1, 64)) }
func (w *respWriter) WriteMap(n int)           { w.WriteArray(2 * n) }
func (w *respWriter) WriteSet(n int)           { w.WriteArray(n) }

func readCommand(r *bufio.Reader) ([][]byte, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || line[0] != '*' {
		return nil, fmt.Errorf("bad array header %q", line)
	}
	argv := make([][]byte, n)
	for i := range argv {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil {
			return nil, err
		}
		argv[i] = make([]byte, size+2)
		if _, err := io.ReadFull(r, argv[i]); err != nil {
			return nil, err
		}
		argv[i] = argv[i][:size]
	}
	return argv, nil
}

// fakeFunctionServer serves FUNCTION through a real udf.Host, and AUTH,
// over loopback: enough for `keel function` until the server hosts udf.
func fakeFunctionServer(t *testing.T, password string) (port int) {
	ctx := context.Background()
	h, err := udf.NewHost(ctx, udf.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); h.Close(ctx) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// One connection at a time: Host has one owner.
			r := bufio.NewReader(c)
			authed := password == ""
			for {
				argv, err := readCommand(r)
				if err != nil {
					break
				}
				var w respWriter
				switch name := strings.ToUpper(string(argv[0])); {
				case name == "AUTH" && string(argv[len(argv)-1]) == password:
					authed = true
					w.WriteSimple("OK")
				case name == "AUTH":
					w.WriteError("WRONGPASS invalid username-password pair or user is disabled.")
				case !authed:
					w.WriteError("NOAUTH Authentication required.")
				case name == "FUNCTION":
					h.Function(ctx, argv, &w)
				default:
					w.WriteError("ERR unknown command '" + name + "'")
				}
				if _, err := c.Write(w.b.Bytes()); err != nil {
					break
				}
			}
			c.Close()
		}
	}()
	return ln.Addr().(*stdnet.TCPAddr).Port
}

func TestFunctionCommand(t *testing.T) {
	port := strconv.Itoa(fakeFunctionServer(t, "sekret"))
	wasm := "../../testdata/functions/counter.wasm"
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := functionMain(append(args, "--port", port, "--password", "sekret"), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errs := run("load", "--name", "counter", wasm); code != 0 || out != "counter\n" {
		t.Fatalf("load: %d %q %q", code, out, errs)
	}
	if code, _, errs := run("load", "--name", "counter", wasm); code != 1 || !strings.Contains(errs, "ERR Library 'counter' already exists") {
		t.Fatalf("load again: %d %q", code, errs)
	}
	if code, out, errs := run("load", wasm, "--name", "counter", "--replace"); code != 0 || out != "counter\n" {
		t.Fatalf("load --replace: %d %q %q", code, out, errs)
	}
	if code, _, errs := run("load", "--name", "bad", "function_test.go"); code != 1 || !strings.Contains(errs, "not a valid WebAssembly module") {
		t.Fatalf("load junk: %d %q", code, errs)
	}
	if code, out, _ := run("list"); code != 0 || out != "counter (WASM)\n  incr_by\n" {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, out, _ := run("delete", "counter"); code != 0 || out != "OK\n" {
		t.Fatalf("delete: %d %q", code, out)
	}
	if code, _, _ := run("load", wasm); code != 2 {
		t.Fatalf("load without --name: %d", code)
	}
	var out, errb bytes.Buffer
	if code := functionMain([]string{"load", "--name", "x", wasm, "--port", port, "--password", "wrong"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "WRONGPASS") {
		t.Fatalf("wrong password: %d %q", code, errb.String())
	}
}
