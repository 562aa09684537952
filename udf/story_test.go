package udf

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestStories runs the scripts in testdata/stories/*.txt: a host, a fake keyspace
// and a clock, driven by commands a reviewer can read.
//
//	host [fuel=N] [pages=N]        start a host (each file starts with one)
//	load name=LIB file=EXAMPLE [replace]
//	fcall / fcall_ro               the input line is FCALL's argv after the
//	                               command name; prints the reply or error and
//	                               the effects applied
//	set                            input lines "key value [pxat]"
//	state                          the keyspace, sorted
//	advance ms=N                   move the clock
//	function                       input line: FUNCTION's arguments
//
// Rewrite the expected output with: go test ./udf/ -run TestStories -rewrite
func TestStories(t *testing.T) {
	datadriven.Walk(t, "testdata/stories", func(t *testing.T, path string) {
		var h *Host
		s := newFakeStore()
		ctx := context.Background()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "host":
				cfg := NewConfig()
				if d.HasArg("fuel") {
					var n int64
					d.ScanArgs(t, "fuel", &n)
					cfg = cfg.WithFuel(n)
				}
				if d.HasArg("pages") {
					var n int
					d.ScanArgs(t, "pages", &n)
					cfg = cfg.WithMemoryLimitPages(uint32(n))
				}
				h = newHost(t, cfg)
				return "ok"
			case "load":
				var name, file string
				d.ScanArgs(t, "name", &name)
				d.ScanArgs(t, "file", &file)
				lib, err := h.Load(ctx, name, example(t, file), d.HasArg("replace"))
				if err != nil {
					return Message(err)
				}
				return lib.Name() + ": " + strings.Join(lib.Functions(), " ")
			case "fcall", "fcall_ro":
				argv := bs(append([]string{d.Cmd}, strings.Fields(d.Input)...)...)
				res, err := h.FCall(ctx, argv, s)
				if err != nil {
					return "error: " + Message(err)
				}
				var b strings.Builder
				b.WriteString(res.Reply.String())
				for _, e := range res.Effects {
					b.WriteString("\neffect: " + strings.Join(strs(e), " "))
				}
				s.apply(t, res.Effects)
				return b.String()
			case "set":
				for _, line := range strings.Split(d.Input, "\n") {
					f := strings.Fields(line)
					s.vals[f[0]] = []byte(f[1])
					if len(f) == 3 {
						at, _ := strconv.ParseInt(f[2], 10, 64)
						s.pxat[f[0]] = at
					}
				}
				return "ok"
			case "state":
				if st := strings.TrimSpace(s.snapshot()); st != "" {
					return strings.ReplaceAll(st, " ", "\n")
				}
				return "(empty)"
			case "advance":
				var ms int64
				d.ScanArgs(t, "ms", &ms)
				s.now += ms
				return "now=" + strconv.FormatInt(s.now, 10)
			case "function":
				var r recorder
				h.Function(ctx, bs(append([]string{"FUNCTION"}, strings.Fields(d.Input)...)...), &r)
				return strings.TrimSpace(r.String())
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}
