package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runKeel runs the keel binary (this test binary through
// TestKeelMainHelper) with args and returns its exit code, stdout and
// stderr.
func runKeel(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKeelMainHelper$")
	cmd.Env = append(os.Environ(), "KEEL_TEST_MAIN=1", "KEEL_TEST_ARGS="+strings.Join(args, "\x1f"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	// The helper is a test binary: it adds its own verdict line.
	out := strings.TrimSuffix(strings.TrimSuffix(stdout.String(), "PASS\n"), "ok\n")
	return code, out, stderr.String()
}

// Every help form prints usage on stdout and exits 0; a usage error exits
// 2 and names what is missing; keel server --help lists every flag with
// its default; no go-redis log line comes before keel's own error.
func TestCLIHelpAndUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"help", "server"}, {"server", "--help"}, {"server", "-h"},
		{"sim", "--help"}, {"sim", "run", "--help"}, {"check", "--help"}, {"function", "--help"}, {"cluster", "--help"}, {"help", "check"}, {"backup", "--help"}, {"help", "restore"}} {
		code, out, errOut := runKeel(t, args...)
		if code != 0 || !strings.Contains(out, "usage:") {
			t.Errorf("keel %s: exit %d, stdout %q, stderr %q; want usage on stdout, exit 0", strings.Join(args, " "), code, out, errOut)
		}
	}
	_, out, _ := runKeel(t, "server", "--help")
	for _, topic := range serverFlags {
		for _, f := range topic.flags {
			if !strings.Contains(out, "--"+f.name+" ") {
				t.Errorf("keel server --help does not list --%s", f.name)
			}
			if f.name == "config" {
				continue
			}
			// Each listed flag is one keel server takes.
			o := defaultServerOptions()
			if err := o.set(f.name, "x"); err != nil && strings.Contains(err.Error(), "unknown directive") {
				t.Errorf("--%s is listed but keel server does not know it", f.name)
			}
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"sim", "run", "--scenario", "kv-basic"}, "missing --seeds"},
		{[]string{"sim", "run"}, "missing --scenario NAME|all and --seeds"},
		{[]string{"check"}, "missing --history"},
		{[]string{"function", "load", "x.wasm"}, "missing --name"},
		{[]string{"function", "load", "--name", "lib"}, "missing FILE.wasm"},
		{[]string{"server", "--nosuch", "1"}, `unknown directive "nosuch"`},
		{[]string{"backup", "--node", "127.0.0.1:1"}, "missing --out FILE"},
		{[]string{"restore", "x.keel"}, "missing --dir DIR"},
		{[]string{"server", "--slowlog-max-len", "-1"}, "slowlog-max-len"},
		{[]string{"server", "--loglevel", "loud"}, "debug, verbose, notice, warning"},
	} {
		code, _, errOut := runKeel(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("keel %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
	code, _, errOut := runKeel(t, "function", "list", "--port", "1")
	if code != 1 || !strings.HasPrefix(errOut, "keel function list: ") || strings.Contains(errOut, "pool.go") {
		t.Errorf("keel function list --port 1: exit %d, stderr %q; want keel's own error first and only", code, errOut)
	}
}

// --logfile takes the log, in slog's text format with Redis's level
// names; --loglevel warning drops notices but never the ready line.
func TestServerLogFileAndLevel(t *testing.T) {
	dir := t.TempDir()
	logFile := dir + "/keel.log"
	args := []string{"server", "--port", "0", "--dir", dir + "/data", "--loglevel", "warning", "--logfile", logFile}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKeelMainHelper$")
	cmd.Env = append(os.Environ(), "KEEL_TEST_MAIN=1", "KEEL_TEST_ARGS="+strings.Join(args, "\x1f"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	var log string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(logFile)
		if log = string(b); strings.Contains(log, "ready") {
			break
		}
	}
	if !strings.Contains(log, "ready to accept connections") {
		t.Fatalf("no ready line in the log file %q (stderr %q)", log, stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if !strings.HasPrefix(line, "time=") || !strings.Contains(line, " level=warning msg=") {
			t.Errorf("log line %q: want time=... level=warning msg=... (notices dropped)", line)
		}
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr has output with --logfile: %q", stderr.String())
	}
}

// keel cluster local --metrics-base-port P gives node N --metrics-addr
// on port P+N-1, and refuses ports past 65535.
func TestClusterLocalMetricsPorts(t *testing.T) {
	o, err := parseClusterLocalArgs([]string{"--nodes", "3", "--dir", "d", "--metrics-base-port", "9121"})
	if err != nil {
		t.Fatal(err)
	}
	n := &localNode{id: 3, port: 7003, dir: "d/node-3"}
	if args := strings.Join(n.serverArgs(o, "P"), " "); !strings.Contains(args, "--metrics-addr 127.0.0.1:9123") {
		t.Errorf("node 3's args: %s", args)
	}
	if _, err := parseClusterLocalArgs([]string{"--nodes", "3", "--metrics-base-port", "65534"}); err == nil {
		t.Error("--metrics-base-port 65534 with 3 nodes accepted")
	}
}
