package harness

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat and /proc/stat times:
// 100 on every Linux architecture Go supports (`getconf CLK_TCK`).
const clockTicks = 100

// ProcessCPU is a process's utime+stime so far, from /proc/PID/stat.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, errors.Wrap(err, "read process stat")
	}
	ut, st, err := ParseProcStat(b)
	if err != nil {
		return 0, errors.Wrapf(err, "pid %d", pid)
	}
	return Ticks(ut + st), nil
}

// Ticks converts clock ticks (USER_HZ) to a duration.
func Ticks(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicks }

// ParseProcStat returns utime and stime, fields 14 and 15 of
// /proc/PID/stat, in clock ticks. The second field, the command name in
// parentheses, may itself hold spaces and parentheses: the fields are
// counted from the last ')'.
func ParseProcStat(stat []byte) (utime, stime int64, err error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 || bytes.IndexByte(stat, '(') < 0 {
		return 0, 0, errors.Newf("no (command) in process stat %q", stat)
	}
	// After the name: state (field 3), ppid (4), ..., utime (14), stime (15).
	f := strings.Fields(string(stat[end+1:]))
	const utimeAt, stimeAt = 14 - 3, 15 - 3
	if len(f) <= stimeAt {
		return 0, 0, errors.Newf("process stat has %d fields after the command, want at least %d: %q", len(f), stimeAt+1, stat)
	}
	if utime, err = strconv.ParseInt(f[utimeAt], 10, 64); err != nil {
		return 0, 0, errors.Wrap(err, "process stat utime")
	}
	if stime, err = strconv.ParseInt(f[stimeAt], 10, 64); err != nil {
		return 0, 0, errors.Wrap(err, "process stat stime")
	}
	if utime < 0 || stime < 0 {
		return 0, 0, errors.Newf("negative times in process stat %q", stat)
	}
	return utime, stime, nil
}

// MachineTicks returns the busy and total clock ticks of all CPUs so far,
// from /proc/stat's "cpu" line (busy: all but idle and iowait).
func MachineTicks() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, errors.Wrap(err, "read /proc/stat")
	}
	return ParseMachineStat(b)
}

// ParseMachineStat is MachineTicks over the text of /proc/stat.
func ParseMachineStat(b []byte) (busy, total int64, err error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	// cpu user nice system idle iowait irq softirq steal [guest guest_nice]:
	// guest time is already counted in user and nice.
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, errors.Newf("/proc/stat starts %q, want the cpu line", line)
	}
	for i, s := range f[1:9] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, errors.Wrapf(err, "/proc/stat cpu field %d", i+1)
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}
