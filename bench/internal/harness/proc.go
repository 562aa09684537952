package harness

import (
	"bytes"
	"fmt"
	stdnet "net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"
)

const (
	// StopTimeout is how long a server gets to exit after SIGTERM.
	StopTimeout = 30 * time.Second
	// logTailBytes bounds the log excerpt put in error messages.
	logTailBytes = 2000
)

// Proc is one server process owned by a harness.
type Proc struct {
	Name string
	Port int
	Cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // the Wait error, valid after done
}

// running tracks every started process so an interrupt or an error can
// stop them all: a harness must never leave servers behind on a shared
// machine.
var running struct {
	sync.Mutex
	procs map[*Proc]bool
}

// Start runs bin with args in dir (created if missing), its output
// appended to dir+".log" (a restart on the same directory keeps the first
// run's log), env added to the environment. It returns once the process is
// started; the caller polls for readiness.
func Start(name, bin string, args, env []string, dir string, port int) (*Proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, errors.Wrap(err, "mkdir")
	}
	logPath := dir + ".log"
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, errors.Wrap(err, "open server log")
	}
	p := &Proc{Name: name, Port: port, log: logPath, done: make(chan struct{})}
	if strings.ContainsRune(bin, filepath.Separator) && !filepath.IsAbs(bin) {
		// The process runs in dir: a path like bin/keel (--keel-bin)
		// means the one seen from here.
		if abs, err := filepath.Abs(bin); err == nil {
			bin = abs
		}
	}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Dir = dir
	p.Cmd.Stdout, p.Cmd.Stderr = logf, logf
	p.Cmd.Env = append(os.Environ(), env...)
	if err := p.Cmd.Start(); err != nil {
		logf.Close()
		return nil, errors.Wrapf(err, "start %s", bin)
	}
	running.Lock()
	if running.procs == nil {
		running.procs = map[*Proc]bool{}
	}
	running.procs[p] = true
	running.Unlock()
	go func() {
		p.err = p.Cmd.Wait()
		logf.Close()
		close(p.done)
		running.Lock()
		delete(running.procs, p)
		running.Unlock()
	}()
	return p, nil
}

// Addr is the loopback address the process serves on.
func (p *Proc) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.Port) }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's Wait error; valid once Exited.
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// LogTail is the end of the process's log, for error messages.
func (p *Proc) LogTail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
	}
	return string(bytes.TrimSpace(b))
}

// Stop ends the process gracefully (SIGTERM), then forcibly after
// StopTimeout, and returns once it has exited.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(StopTimeout):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the process with SIGKILL, as a crash would, and returns once
// it has exited.
func (p *Proc) Kill() {
	if !p.Exited() {
		_ = p.Cmd.Process.Kill()
	}
	<-p.done
}

// KillAll kills every process still running; for an interrupt or a fatal
// error.
func KillAll() {
	running.Lock()
	procs := make([]*Proc, 0, len(running.procs))
	for p := range running.procs {
		procs = append(procs, p)
	}
	running.Unlock()
	for _, p := range procs {
		_ = p.Cmd.Process.Kill()
	}
}

// FreePort is a loopback TCP port nobody listens on now.
func FreePort() (int, error) {
	l, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, errors.Wrap(err, "find a free port")
	}
	defer l.Close()
	return l.Addr().(*stdnet.TCPAddr).Port, nil
}

// RSS is the process's resident set size, from /proc (Linux).
func (p *Proc) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		return 0, errors.Wrap(err, "read process status")
	}
	return ParseVmRSS(b)
}

// ParseVmRSS extracts VmRSS (reported in kB) from /proc/PID/status.
func ParseVmRSS(status []byte) (int64, error) {
	for _, line := range bytes.Split(status, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("VmRSS:")) {
			continue
		}
		var kb int64
		if _, err := fmt.Sscanf(string(bytes.TrimPrefix(line, []byte("VmRSS:"))), "%d kB", &kb); err != nil {
			return 0, errors.Wrapf(err, "parse %q", line)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("no VmRSS line in process status")
}
