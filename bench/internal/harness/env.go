package harness

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"
)

// Tools are the external programs the harnesses drive.
type Tools struct {
	RedisServer, RedisBenchmark string
}

// FindTools finds redis-server and redis-benchmark on PATH and, when
// install is set and one is missing, installs them from Debian packages.
func FindTools(install bool) (Tools, error) {
	look := func() (Tools, error) {
		var t Tools
		var err error
		if t.RedisServer, err = exec.LookPath("redis-server"); err != nil {
			return t, err
		}
		t.RedisBenchmark, err = exec.LookPath("redis-benchmark")
		return t, err
	}
	t, err := look()
	if err == nil || !install {
		return t, errors.Wrap(err, "redis-server and redis-benchmark must be on PATH")
	}
	fmt.Println("redis-server or redis-benchmark missing: installing redis-server redis-tools from Debian packages")
	sh := "apt-get update && apt-get install -y redis-server redis-tools"
	if os.Geteuid() != 0 {
		sh = "sudo sh -c '" + sh + "'"
	}
	cmd := exec.Command("sh", "-c", sh)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return t, errors.Wrap(err, "install redis")
	}
	t, err = look()
	return t, errors.Wrap(err, "after installing redis")
}

// ModuleRoot finds the directory holding keel's go.mod, so a harness works
// from anywhere inside the module.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", errors.Wrap(err, "getwd")
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/keel-db/keel") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the keel module (no go.mod naming github.com/keel-db/keel)")
		}
		dir = parent
	}
}

// BuildKeel builds ./cmd/keel of the module at root into bin.
func BuildKeel(ctx context.Context, root, bin string) error {
	fmt.Println("building keel: go build -o", bin, "./cmd/keel")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/keel")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	return errors.Wrap(build.Run(), "build keel")
}

// WriteReport writes a run's Markdown report to outDir (relative to root
// unless absolute), named by the run's start, and returns its path.
func WriteReport(root, outDir string, started time.Time, markdown string) (string, error) {
	if !filepath.IsAbs(outDir) {
		outDir = filepath.Join(root, outDir)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", errors.Wrap(err, "results dir")
	}
	out := filepath.Join(outDir, started.Format("2006-01-02T1504Z")+".md")
	if err := os.WriteFile(out, []byte(markdown), 0o644); err != nil {
		return "", errors.Wrap(err, "write report")
	}
	return out, nil
}

// CPUModel is the first "model name" of /proc/cpuinfo text; "unknown"
// when there is none.
func CPUModel(cpuinfo string) string {
	for _, line := range strings.Split(cpuinfo, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// MachineCPUModel is this machine's CPU model; "unknown" when unreadable.
func MachineCPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	return CPUModel(string(b))
}

// LoadAverage is the 1, 5 and 15 minute load averages; "unknown" when
// unreadable.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// CommandOutput is the trimmed output of a command run in dir (empty: the
// current directory); "unknown" when it fails.
func CommandOutput(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// KeelCommit is the short HEAD commit of the work tree at dir, marked when
// tracked files have uncommitted changes.
func KeelCommit(dir string) string {
	commit := CommandOutput(dir, "git", "rev-parse", "--short", "HEAD")
	if dirty := CommandOutput(dir, "git", "status", "--porcelain", "--untracked-files=no"); dirty != "" && dirty != "unknown" {
		commit += " (work tree has uncommitted changes)"
	}
	return commit
}

// Main runs a harness: parse reads os.Args[1:] (exit 0 on -h, 2 on a bad
// flag), then run gets the configuration and a context cancelled on SIGINT
// or SIGTERM. On an interrupt or an error every process started through
// Start is killed before the program exits (130 on interrupt, 1 on error):
// a harness must never leave servers behind on a shared machine. name
// prefixes the messages.
func Main[C any](name string, parse func(args []string) (C, error), run func(context.Context, C) error) {
	cfg, err := parse(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, name+": interrupted; stopping servers")
		cancel()
		KillAll()
		os.Exit(130)
	}()
	if err := run(ctx, cfg); err != nil {
		KillAll()
		fmt.Fprintf(os.Stderr, "%s: %+v\n", name, err)
		os.Exit(1)
	}
}

// Workspace is what a run starts from: the tools, the module root, and a
// temporary directory for servers' data and logs.
type Workspace struct {
	Tools
	Root, Tmp string
}

// Setup finds the tools and the module root and makes a temporary
// directory named by tmpPrefix. cleanup removes it unless keep is set, in
// which case its path is printed.
func Setup(install, keep bool, tmpPrefix string) (ws Workspace, cleanup func(), err error) {
	cleanup = func() {}
	if ws.Tools, err = FindTools(install); err != nil {
		return ws, cleanup, err
	}
	if ws.Root, err = ModuleRoot(); err != nil {
		return ws, cleanup, err
	}
	if ws.Tmp, err = os.MkdirTemp("", tmpPrefix); err != nil {
		return ws, cleanup, errors.Wrap(err, "temp dir")
	}
	if keep {
		fmt.Println("keeping", ws.Tmp)
	} else {
		tmp := ws.Tmp
		cleanup = func() { os.RemoveAll(tmp) }
	}
	return ws, cleanup, nil
}

// KeelBinary is the keel binary a harness runs: given (--keel-bin) when
// set, else one built from the module into the workspace.
func (ws Workspace) KeelBinary(ctx context.Context, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	bin := filepath.Join(ws.Tmp, "keel")
	return bin, BuildKeel(ctx, ws.Root, bin)
}
