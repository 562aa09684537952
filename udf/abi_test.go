package udf

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

type captureLogger struct{ lines []string }

func (l *captureLogger) Log(lib, fn string, level LogLevel, msg string) {
	l.lines = append(l.lines, lib+"/"+fn+" "+[]string{"debug", "info", "warn", "error"}[level&3]+": "+msg)
}

func TestABIReadsAndWrites(t *testing.T) {
	h := newHost(t, NewConfig(), "abi")
	s := newFakeStore()
	steps := []struct {
		fn         string
		keys, args []string
		want       string
		state      string
	}{
		{"setv", []string{"a"}, []string{"1"}, "OK", "a=1 "},
		{"setv", []string{"t"}, []string{"v", "2500"}, "OK", "a=1 t=v@1700000002500 "},
		{"getv", []string{"t"}, nil, `"v"`, ""},
		{"existsv", []string{"t"}, nil, "(integer) 1", ""},
		{"existsv", []string{"nope"}, nil, "(integer) 0", ""},
		// KEEPTTL through a move keeps nothing of the source's TTL but
		// keeps the destination's: dst did not exist, so none.
		{"movev", []string{"t", "u"}, nil, "(integer) 1", "a=1 u=v "},
		{"movev", []string{"gone", "u"}, nil, "(integer) 0", "a=1 u=v "},
		{"delv", []string{"a", "missing"}, nil, "(integer) 1", "u=v "},
		{"incrv", []string{"n"}, []string{"41"}, "(integer) 41", "n=41 u=v "},
		{"setv", []string{"p:1"}, []string{"x"}, "OK", ""},
		{"setv", []string{"p:2"}, []string{"x"}, "OK", ""},
		{"setv", []string{"p:3"}, []string{"x"}, "OK", ""},
		{"setv", []string{"q:1"}, []string{"x"}, "OK", ""},
		{"scanp", []string{"p:"}, nil, `["p:1" "p:2" "p:3"]`, ""},
		{"scanp", []string{"p:"}, []string{"p:1", "1"}, `["p:2"]`, ""},
		{"shapes", nil, nil, `[(integer) 1 "two" (nil) [OK] (error) ERR nested error]`, ""},
		{"noreply", nil, nil, "(nil)", ""},
		{"twice", nil, nil, "-ERR function replied more than once", ""},
		{"fail_reply", []string{"f"}, nil, "(error) CUSTOM something went wrong", ""},
		{"getv", []string{"f"}, nil, `"x"`, ""},
		{"recurse", nil, []string{"100000000"}, "-ERR function 'recurse' trapped: wasm error: out of bounds memory access", ""},
	}
	for i, st := range steps {
		got := call(t, h, s, st.fn, st.keys, st.args)
		if got != st.want {
			t.Fatalf("step %d %s %v %v = %s, want %s", i, st.fn, st.keys, st.args, got, st.want)
		}
		if st.state != "" && s.snapshot() != st.state {
			t.Fatalf("step %d %s: state %q, want %q", i, st.fn, s.snapshot(), st.state)
		}
	}
}

// A call sees its own writes, including deletes, in get and scan.
func TestScanSeesOwnWrites(t *testing.T) {
	h := newHost(t, NewConfig(), "abi")
	s := newFakeStore()
	for _, k := range []string{"p:a", "p:b", "p:c", "p:d"} {
		s.vals[k] = []byte("1")
	}
	st := &callState{h: h, store: s, keys: bs("p:"), now: s.now}
	st.del([]byte("p:b"))
	st.set([]byte("p:bb"), []byte("2"), 0)
	st.del([]byte("p:c"))
	got := st.scan([]byte("p:"), nil, 2)
	if strings.Join(strs(got), ",") != "p:a,p:bb" {
		t.Fatalf("scan limit 2 = %q", got)
	}
	got = st.scan([]byte("p:"), []byte("p:bb"), 10)
	if strings.Join(strs(got), ",") != "p:d" {
		t.Fatalf("scan after p:bb = %q", got)
	}
	if e := st.effects(); len(e) != 3 || strings.Join(strs(e[0]), " ") != "DEL p:b" || strings.Join(strs(e[1]), " ") != "SET p:bb 2" {
		t.Fatalf("effects %q", e)
	}
}

func TestClockAndRandomComeFromStore(t *testing.T) {
	h := newHost(t, NewConfig(), "abi")
	a, b := newFakeStore(), newFakeStore()
	ra := call(t, h, a, "clock", nil, nil)
	rb := call(t, h, b, "clock", nil, nil)
	if ra != rb || !strings.HasPrefix(ra, "[(integer) 1700000000000 ") {
		t.Fatalf("clock %s vs %s", ra, rb)
	}
}

func TestLog(t *testing.T) {
	l := &captureLogger{}
	h := newHost(t, NewConfig().WithLogger(l), "abi")
	if got := call(t, h, newFakeStore(), "logv", nil, []string{"hi there"}); got != "OK" {
		t.Fatal(got)
	}
	if len(l.lines) != 1 || l.lines[0] != "abi/logv info: hi there" {
		t.Fatalf("log %q", l.lines)
	}
}

// A Go guest built with udf/sdk: the toolchain builds it (it is too big to
// commit), so this is skipped with -short.
func TestGoGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go guest")
	}
	code := buildGoGuest(t)
	l := &captureLogger{}
	h := newHost(t, NewConfig().WithLogger(l))
	lib, err := h.Load(context.Background(), "gocounter", code, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(lib.Functions(), ",") != "hello,incr_by,score" {
		t.Fatalf("functions %v", lib.Functions())
	}
	s := newFakeStore()
	for _, want := range []string{"(integer) 3", "(integer) 6"} {
		if got := call(t, h, s, "incr_by", []string{"c"}, []string{"3"}); got != want {
			t.Fatalf("incr_by = %s, want %s", got, want)
		}
	}
	if got := call(t, h, s, "incr_by", []string{"c"}, []string{"x"}); got != "-ERR usage: FCALL incr_by 1 key n" {
		t.Fatalf("bad arg: %s", got)
	}
	if got := call(t, h, s, "hello", nil, []string{"keel"}); got != `"hello keel at 1700000000000"` {
		t.Fatalf("hello = %s", got)
	}
	if len(l.lines) != 1 || l.lines[0] != "gocounter/hello info: hello from a Go guest\n" {
		t.Fatalf("log %q", l.lines)
	}
	t.Logf("Go guest: %d bytes, fuel used over 4 calls: %d", len(code), h.Stats().FuelUsed)
}

// A call sees no state left by an earlier one, though memories are pooled.
func TestNoStateAcrossCalls(t *testing.T) {
	h := newHost(t, NewConfig(), "abi", "counter")
	s := newFakeStore()
	for i := 0; i < 6; i++ {
		if got := call(t, h, s, "leak", nil, nil); got != "(integer) 1" {
			t.Fatalf("call %d: leak = %s", i, got)
		}
		if got := call(t, h, s, "scribble", nil, nil); got != "(integer) 0" {
			t.Fatalf("call %d: scribble = %s", i, got)
		}
		call(t, h, s, "incr_by", []string{"k"}, []string{"1"})
	}
}

// buildGoGuest builds testdata/functions/go/counter with udf/sdk.
func buildGoGuest(t testing.TB) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "counter_go.wasm")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-buildmode=c-shared", "-o", out, "./testdata/functions/go/counter")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build Go guest: %v\n%s", err, b)
	}
	code, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return code
}
