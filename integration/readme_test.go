package integration

import (
	"bufio"
	"context"
	"fmt"
	stdnet "net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestREADMEWalk walks the README as a newcomer does: every ```sh block,
// in order, each line as written, in one shell, from a directory that
// looks like the repository's root (its tracked entries linked in, so
// `go build -o bin/keel ./cmd/keel` builds there and the data directories
// the README creates land in a scratch directory). Every line must exit
// 0; a line whose comment is a reply (# OK, # (integer) 5, # (error) ...,
// # "text", # (nil)) must print exactly that (redis-cli is made to print
// as it does on a terminal, and to retry a TRYAGAIN, which a cluster
// answers during an election — the machine running the walk may be busy
// enough to see one); a line run in the background (&) must log
// "ready" or "connect with" before the next line runs. A block right
// after <!-- walk: skip ... --> is not run.
//
// It needs redis-cli and the ports the README uses (6379, 7001-7007 and
// their bus ports 17001-17007); without them it is skipped with a message,
// unless KEEL_REQUIRE_REDIS=1 (CI), when it fails.
func TestREADMEWalk(t *testing.T) {
	need := func(why string) {
		t.Helper()
		if os.Getenv("KEEL_REQUIRE_REDIS") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		need("redis-cli is not installed (apt-get install redis-tools; .ci/run installs it)")
	}
	for _, p := range []int{6379, 7001, 7002, 7003, 7004, 7005, 7006, 7007, 17001, 17002, 17003, 17004, 17005, 17006, 17007} {
		ln, err := stdnet.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			need(fmt.Sprintf("port %d, which the README uses, is busy: %v", p, err))
		}
		ln.Close()
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := readmeCommands(string(readme))
	if len(lines) < 20 {
		t.Fatalf("found only %d command lines in README.md", len(lines))
	}

	// The walk's root: the repository's tracked top-level entries, linked.
	dir := t.TempDir()
	ls, err := exec.Command("git", "-C", root, "ls-files").Output()
	if err != nil {
		t.Skipf("git ls-files: %v (the walk needs a git checkout)", err)
	}
	seen := map[string]bool{}
	for _, f := range strings.Fields(string(ls)) {
		top, _, _ := strings.Cut(f, "/")
		if seen[top] {
			continue
		}
		seen[top] = true
		if err := os.Symlink(filepath.Join(root, top), filepath.Join(dir, top)); err != nil {
			t.Fatal(err)
		}
	}

	var script strings.Builder
	script.WriteString(`set -u
wait_ready() { # log pid pattern
	for _ in $(seq 1200); do
		grep -qE "$3" "$1" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || { echo "exited before it was ready:"; tail -20 "$1"; return 1; }
		sleep 0.1
	done
	echo "not ready after 120 s:"; tail -20 "$1"; return 1
}
redis-cli() { # as on a terminal; TRYAGAIN (an election) is retried, as it asks
	local in=/dev/null out
	case " $* " in *" -x "*) in=$(mktemp); cat > "$in" ;; esac
	for _ in $(seq 20); do
		out=$(command redis-cli --no-raw "$@" < "$in" 2>&1)
		case "$out" in *TRYAGAIN*) sleep 0.5 ;; *) break ;; esac
	done
	[ "$in" = /dev/null ] || rm -f "$in"
	printf '%s\n' "$out"
}
`)
	for i, l := range lines {
		cmd := l.cmd
		fmt.Fprintf(&script, "echo '@@@ %d'\n", i)
		if strings.HasSuffix(cmd, "&") {
			log := filepath.Join(dir, fmt.Sprintf("background-%d.log", i))
			// A server says it is ready once; keel cluster local relays
			// each of its nodes' "ready" lines as they come, and says
			// "connect with" once all of them listen (waiting for the
			// first "ready" lost the walk's next command to a node
			// still starting, on a loaded machine).
			ready := "ready to accept connections"
			if strings.Contains(cmd, "cluster local") {
				ready = "connect with"
			}
			fmt.Fprintf(&script, "%s > %s 2>&1 &\nwait_ready %s $! '%s'\n", strings.TrimSuffix(cmd, "&"), log, log, ready)
		} else {
			fmt.Fprintf(&script, "%s\n", cmd)
		}
		fmt.Fprintf(&script, "echo \"@@@ rc $?\"\n")
	}
	script.WriteString("kill $(jobs -p) 2>/dev/null; wait\n")

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-c", script.String())
	sh.Dir = dir
	sh.Env = append(os.Environ(), "REDISCLI_HISTFILE=/dev/null")
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	sh.Cancel = func() error { return syscall.Kill(-sh.Process.Pid, syscall.SIGKILL) }
	t.Cleanup(func() {
		if sh.Process != nil {
			_ = syscall.Kill(-sh.Process.Pid, syscall.SIGKILL)
		}
	})
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Logf("the walk's shell: %v", err)
	}
	// The servers' logs live in dir, which the test removes: on a failure
	// their ends are what says why (a node that exited, a stalled move).
	defer func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(dir, "background-*.log"))
		for _, f := range logs {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			t.Logf("the last %d lines of %s:\n%s", min(len(ls), walkLogLines), filepath.Base(f), strings.Join(ls[max(0, len(ls)-walkLogLines):], "\n"))
		}
	}()
	outputs, rcs := splitWalkOutput(string(out))
	checked := 0
	for _, l := range lines {
		if l.want != "" {
			checked++
		}
	}
	if checked < 8 {
		t.Errorf("only %d README lines show a reply to check; the parsing of comments is off", checked)
	}
	for i, l := range lines {
		got, ran := outputs[i]
		switch {
		case !ran:
			t.Fatalf("README line %d never ran: %s\nthe walk's output:\n%s", l.line, l.cmd, out)
		case rcs[i] != "0":
			t.Errorf("README line %d exited %s: %s\n%s", l.line, rcs[i], l.cmd, got)
		case l.want != "" && strings.TrimSpace(got) != l.want:
			t.Errorf("README line %d: %s\nprinted %q, the README says %q", l.line, l.cmd, strings.TrimSpace(got), l.want)
		}
	}
}

// walkLogLines is how much of each server's log a failed walk shows.
const walkLogLines = 60

// readmeLine is one command of the README and the reply its comment shows
// ("" when the comment is prose, or there is none).
type readmeLine struct {
	line      int
	cmd, want string
}

// A comment that is a reply redis-cli prints.
var replyComment = regexp.MustCompile(`^(OK|\(integer\) -?\d+|\(nil\)|\(error\) .+|"[^"]*")$`)

// readmeCommands are the command lines of README.md's sh blocks, with
// continuation lines joined.
func readmeCommands(readme string) []readmeLine {
	var out []readmeLine
	in, skip, pending, pendingLine := false, false, "", 0
	skipNext := false
	sc := bufio.NewScanner(strings.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		switch {
		case !in && strings.HasPrefix(text, "<!-- walk: skip"):
			skipNext = true
			continue
		case !in && strings.HasPrefix(text, "```sh"):
			in, skip, skipNext = true, skipNext, false
			continue
		case in && strings.HasPrefix(text, "```"):
			in = false
			continue
		case !in || skip || strings.TrimSpace(text) == "":
			continue
		}
		if pending == "" {
			pendingLine = n
		}
		if strings.HasSuffix(text, "\\") {
			pending += strings.TrimSuffix(text, "\\")
			continue
		}
		cmd, comment := splitShellComment(pending + text)
		pending = ""
		l := readmeLine{line: pendingLine, cmd: strings.TrimSpace(cmd)}
		if replyComment.MatchString(comment) {
			l.want = comment
		}
		out = append(out, l)
	}
	return out
}

// splitShellComment cuts a line at its comment: a # after a blank, outside
// quotes.
func splitShellComment(line string) (cmd, comment string) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i], strings.TrimSpace(line[i+1:])
		}
	}
	return line, ""
}

// splitWalkOutput cuts the walk's output at its markers: what each line
// printed, and its exit status.
func splitWalkOutput(out string) (outputs, rcs map[int]string) {
	outputs, rcs = map[int]string{}, map[int]string{}
	cur := -1
	var b strings.Builder
	for _, line := range strings.SplitAfter(out, "\n") {
		switch {
		case strings.HasPrefix(line, "@@@ rc "):
			rcs[cur] = strings.TrimSpace(strings.TrimPrefix(line, "@@@ rc "))
			outputs[cur] = b.String()
			b.Reset()
		case strings.HasPrefix(line, "@@@ "):
			cur, _ = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "@@@ ")))
			b.Reset()
		default:
			b.WriteString(line)
		}
	}
	return outputs, rcs
}
