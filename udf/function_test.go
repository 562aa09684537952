package udf

import (
	"context"
	"strings"
	"testing"

	"github.com/keel-db/keel/engine"
)

func fn(t *testing.T, h *Host, args ...string) string {
	t.Helper()
	var r recorder
	h.Function(context.Background(), bs(append([]string{"FUNCTION"}, args...)...), &r)
	return strings.TrimSpace(r.String())
}

func TestFunctionCommands(t *testing.T) {
	h := newHost(t, NewConfig())
	counter := string(FormatPayload("counter", example(t, "counter")))
	transfer := string(FormatPayload("bank", example(t, "transfer")))
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"LOAD", counter}, `"counter"`},
		{[]string{"LOAD", counter}, "-ERR Library 'counter' already exists"},
		{[]string{"load", "replace", counter}, `"counter"`},
		{[]string{"LOAD", "bogus", counter}, "-ERR Unknown option given: bogus"},
		{[]string{"LOAD", transfer}, `"bank"`},
		{[]string{"LIST"}, `*2 %3 "library_name" "bank" "engine" "WASM" "functions" *2 %3 "name" "balance" "description" nil "flags" ~0 %3 "name" "transfer" "description" nil "flags" ~0 ` +
			`%3 "library_name" "counter" "engine" "WASM" "functions" *1 %3 "name" "incr_by" "description" nil "flags" ~0`},
		{[]string{"LIST", "LIBRARYNAME", "co*"}, `*1 %3 "library_name" "counter" "engine" "WASM" "functions" *1 %3 "name" "incr_by" "description" nil "flags" ~0`},
		{[]string{"STATS"}, `%2 "running_script" nil "engines" %1 "WASM" %2 "libraries_count" :2 "functions_count" :3`},
		{[]string{"DELETE", "nope"}, "-ERR Library not found"},
		{[]string{"DELETE", "bank"}, "+OK"},
		{[]string{"STATS"}, `%2 "running_script" nil "engines" %1 "WASM" %2 "libraries_count" :1 "functions_count" :1`},
		{[]string{"FLUSH"}, "+OK"},
		{[]string{"LIST"}, "*0"},
		{[]string{"KILL"}, "-NOTBUSY No scripts in execution right now."},
		{[]string{"NOPE"}, "-ERR unknown subcommand 'NOPE'. Try FUNCTION HELP."},
		{[]string{"DELETE"}, "-ERR wrong number of arguments for 'function|delete' command"},
	}
	for i, s := range steps {
		if got := fn(t, h, s.args...); got != s.want {
			t.Fatalf("step %d FUNCTION %s:\n got %s\nwant %s", i, s.args[0], got, s.want)
		}
	}
	if got := fn(t, h, "LIST", "WITHCODE"); got != "*0" {
		t.Fatal(got)
	}
	fn(t, h, "LOAD", counter)
	if got := fn(t, h, "LIST", "WITHCODE"); !strings.Contains(got, `"library_code" "#!wasm name=counter\n\x00asm`) {
		t.Fatalf("WITHCODE: %.200s", got)
	}
}

func TestDumpRestore(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, NewConfig(), "counter", "transfer")
	dump := h.Dump()
	if string(h.Dump()) != string(dump) {
		t.Fatal("DUMP is not deterministic")
	}
	// Corruption is refused and changes nothing.
	bad := append([]byte(nil), dump...)
	bad[len(bad)/2] ^= 1
	if err := h.Restore(ctx, bad, RestoreFlush); err == nil || Message(err) != "ERR payload version or checksum are wrong" {
		t.Fatalf("corrupt restore: %v", err)
	}
	if err := h.Restore(ctx, dump, RestoreAppend); err == nil || Message(err) != "ERR Library counter already exists" {
		t.Fatalf("append over existing: %v", err)
	}
	if err := h.Restore(ctx, dump, RestoreReplace); err != nil {
		t.Fatal(err)
	}
	// Into a fresh host: same libraries, same functions, same dump.
	h2 := newHost(t, NewConfig(), "abi")
	if err := h2.Restore(ctx, dump, RestoreFlush); err != nil {
		t.Fatal(err)
	}
	if string(h2.Dump()) != string(dump) {
		t.Fatal("restored host dumps differently")
	}
	if got := call(t, h2, newFakeStore(), "incr_by", []string{"k"}, []string{"2"}); got != "(integer) 2" {
		t.Fatalf("after restore: %s", got)
	}
	if got := call(t, h2, newFakeStore(), "getv", []string{"k"}, nil); got != "-ERR Function not found" {
		t.Fatalf("FLUSH policy kept abi: %s", got)
	}
	var r recorder
	h2.Function(ctx, [][]byte{[]byte("FUNCTION"), []byte("RESTORE"), dump, []byte("bogus")}, &r)
	if !strings.HasPrefix(r.String(), "-ERR Wrong restore policy") {
		t.Fatal(r.String())
	}
}

func TestFCallParsing(t *testing.T) {
	h := newHost(t, NewConfig(), "counter")
	s := newFakeStore()
	for _, c := range []struct{ argv, want string }{
		{"FCALL incr_by 1 k 5", "(integer) 5"},
		{"fcall_ro incr_by 1 k 5", "-ERR Write commands are not allowed from read-only scripts."},
		{"FCALL incr_by x k 5", "-ERR value is not an integer or out of range"},
		{"FCALL incr_by -1 k", "-ERR Number of keys can't be negative"},
		{"FCALL incr_by 3 k", "-ERR Number of keys can't be greater than number of args"},
		{"FCALL incr_by", "-ERR wrong number of arguments for 'fcall' command"},
		{"FCALL nope 0", "-ERR Function not found"},
	} {
		res, err := h.FCall(context.Background(), bs(strings.Fields(c.argv)...), s)
		got := res.Reply.String()
		if err != nil {
			got = "-" + Message(err)
		}
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("%s = %s, want %s", c.argv, got, c.want)
		}
	}
	if !IsFunctionWrite(bs("FUNCTION", "load", "x")) || IsFunctionWrite(bs("FUNCTION", "LIST")) {
		t.Fatal("IsFunctionWrite")
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		ok   bool
	}{{"*", "abc", true}, {"a?c", "abc", true}, {"a[bx]c", "abc", true}, {"a[^b]c", "abc", false}, {"a[a-c]*", "abzz", true}, {`a\*`, "a*", true}, {`a\*`, "ab", false}, {"co*", "bank", false}} {
		if got := engine.GlobMatch([]byte(c.p), []byte(c.s)); got != c.ok {
			t.Errorf("engine.GlobMatch(%q, %q) = %v", c.p, c.s, got)
		}
	}
}
