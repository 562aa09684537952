package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-db/keel/checker"
)

const historiesDir = "../../testdata/histories"

// TestCheckHistories runs every hand-written history through `keel check`.
// The file name says what it must give: ok-* exit 0, illegal-* exit 1,
// bad-* exit 2 (with the line number below); bank-* use the bank model.
func TestCheckHistories(t *testing.T) {
	badLine := map[string]string{
		"bad-json-line3.jsonl":         "line 3: bad JSON",
		"bad-missing-field.jsonl":      `line 2: missing field "key"`,
		"bad-unknown-op.jsonl":         `line 3: unknown op "append"`,
		"bad-return-before-call.jsonl": `line 1: "return" 10 is before "call" 20`,
	}
	// What each violation's explanation must name: the key and an operation
	// of the conflict.
	conflict := map[string][]string{
		"illegal-stale-read.jsonl":             {`key "x"`, `client 2 [40,50] get x -> "1"`},
		"illegal-lost-update-incrby.jsonl":     {`key "n"`, `incrby n 1 -> 1`},
		"illegal-never-written.jsonl":          {`key "x"`, `get x -> "c"`},
		"illegal-resurrected.jsonl":            {`key "x"`, `client 2 [60,70] get x -> "v"`},
		"illegal-time-travel.jsonl":            {`key "x"`, `client 4 [50,60] get x -> "old"`},
		"illegal-unknown-cannot-explain.jsonl": {`key "n"`, `get n -> "7"`},
		"illegal-deadline-too-late.jsonl":      {`key "x"`, `client 2 [100,?<=500] set x "b"`, `get x -> "b"`},
		"bank-illegal-torn-read.jsonl":         {`mget acct:a acct:b -> ["40" "0"]`},
		"bank-illegal-overdraft.jsonl":         {`client 2 [45,95] transfer acct:a->acct:b 10 -> "OK"`, `the state says "insufficient"`},
	}
	files, err := filepath.Glob(filepath.Join(historiesDir, "*.jsonl"))
	if err != nil || len(files) < 15 {
		t.Fatalf("histories: %v %v", files, err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			model := "kv"
			if strings.HasPrefix(name, "bank-") {
				model = "bank"
			}
			want := -1
			switch {
			case strings.Contains(name, "ok-"):
				want = 0
			case strings.Contains(name, "illegal-"):
				want = 1
			case strings.HasPrefix(name, "bad-"):
				want = 2
			default:
				t.Fatalf("name %s says no expected verdict", name)
			}
			var stdout, stderr bytes.Buffer
			html := filepath.Join(t.TempDir(), "v.html")
			code := runCheck([]string{"--model", model, "--history", path, "--html", html}, nil, &stdout, &stderr)
			if code != want {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, want, &stdout, &stderr)
			}
			if want != 2 {
				if b, err := os.ReadFile(html); err != nil || !bytes.Contains(b, []byte("<html")) {
					t.Fatalf("no visualization: %v", err)
				}
			}
			switch want {
			case 0:
				if !strings.HasPrefix(stdout.String(), "linearizable") {
					t.Fatalf("stdout %q", &stdout)
				}
			case 1:
				words, ok := conflict[name]
				if !ok {
					t.Fatalf("add %s's expected explanation to the conflict table", name)
				}
				for _, w := range words {
					if !strings.Contains(stdout.String(), w) {
						t.Errorf("explanation lacks %q:\n%s", w, &stdout)
					}
				}
			case 2:
				w, ok := badLine[name]
				if !ok {
					t.Fatalf("add %s's expected error to the badLine table", name)
				}
				if !strings.Contains(stderr.String(), path+": "+w) {
					t.Fatalf("stderr %q lacks %q", &stderr, w)
				}
			}
		})
	}
}

func TestCheckFlagsAndHTML(t *testing.T) {
	dir := t.TempDir()
	html := filepath.Join(dir, "out.html")
	var stdout, stderr bytes.Buffer
	path := filepath.Join(historiesDir, "illegal-stale-read.jsonl")
	if code := runCheck([]string{"--history", path, "--html", html}, nil, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d: %s %s", code, &stdout, &stderr)
	}
	b, err := os.ReadFile(html)
	if err != nil || !bytes.Contains(b, []byte("<html")) || !bytes.Contains(b, []byte(`set x \"2\"`)) {
		t.Fatalf("visualization: %v, %d bytes", err, len(b))
	}

	// Standard input.
	stdout.Reset()
	in := strings.NewReader(`{"client": 0, "op": "get", "key": "k", "call": 1, "return": 2, "output": null}`)
	if code := runCheck([]string{"--history", "-"}, in, &stdout, &stderr); code != 0 {
		t.Fatalf("stdin: exit %d: %s", code, &stdout)
	}

	for _, args := range [][]string{
		{},
		{"--history"},
		{"--history", path, "extra"},
		{"--model", "graph", "--history", path},
		{"--history", filepath.Join(dir, "missing.jsonl")},
		{"--model", "kv", "--history", filepath.Join(historiesDir, "bank-ok-transfers.jsonl")},
	} {
		stderr.Reset()
		if code := runCheck(args, nil, &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, &stderr)
		}
	}
}

// TestCheckTimeoutExit3: a search that runs out of time answers unknown.
func TestCheckTimeoutExit3(t *testing.T) {
	var ops []checker.Op
	for i := range 40 {
		ops = append(ops, checker.Op{Client: i, Kind: checker.IncrBy, Key: "n", Delta: int64(1) << i, Call: int64(i), Unknown: true})
	}
	ops = append(ops, checker.Op{Client: 40, Kind: checker.Get, Key: "n", Call: 0, Return: 1000, Output: checker.Str("never")})
	path := filepath.Join(t.TempDir(), "hard.jsonl")
	var buf bytes.Buffer
	if err := checker.WriteHistory(&buf, ops); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runCheck([]string{"--history", path, "--timeout", "50ms"}, nil, &stdout, &stderr); code != 3 {
		t.Fatalf("exit %d: %s %s", code, &stdout, &stderr)
	}
	if !strings.HasPrefix(stdout.String(), "unknown") {
		t.Fatalf("stdout %q", &stdout)
	}
}

// TestKeelMainHelper is not a test: TestCheckBinary runs the test binary
// again with this as its only test, and it becomes the keel binary.
func TestKeelMainHelper(t *testing.T) {
	if os.Getenv("KEEL_TEST_MAIN") != "1" {
		t.Skip("helper process for TestCheckBinary")
	}
	os.Args = append([]string{"keel"}, strings.Split(os.Getenv("KEEL_TEST_ARGS"), "\x1f")...)
	main()
}

// TestCheckBinary runs `keel check` as a process, through main and its exit
// status, the way a CI script does.
func TestCheckBinary(t *testing.T) {
	for file, want := range map[string]int{
		"ok-unknown-happened.jsonl":   0,
		"illegal-resurrected.jsonl":   1,
		"bad-missing-field.jsonl":     2,
		"bank-ok-transfers.jsonl":     2, // transfers need --model bank
		"illegal-time-travel.jsonl":   1,
		"ok-unknown-not-happened.jsn": 2, // no such file
	} {
		args := []string{"check", "--model", "kv", "--history", filepath.Join(historiesDir, file)}
		cmd := exec.Command(os.Args[0], "-test.run=^TestKeelMainHelper$")
		cmd.Env = append(os.Environ(), "KEEL_TEST_MAIN=1", "KEEL_TEST_ARGS="+strings.Join(args, "\x1f"))
		out, err := cmd.CombinedOutput()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Errorf("keel %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
		}
	}
}
