//go:build unix

package server

import (
	"strconv"
	"syscall"
	"time"
)

func cpuTimes() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// reservedFDs are file descriptors kept for the listener, log and data
// files beyond one per client (Redis's CONFIG_MIN_RESERVED_FDS).
const reservedFDs = 32

// RaiseOpenFilesLimit raises RLIMIT_NOFILE so that maxClients connections
// fit, as Redis does at start. When the limit cannot be raised far enough it
// returns the number of clients that do fit, and a message to log.
func RaiseOpenFilesLimit(maxClients int) (int, string) {
	want := uint64(maxClients + reservedFDs)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return maxClients, "cannot read the open files limit: " + err.Error()
	}
	if lim.Cur >= want {
		return maxClients, ""
	}
	old := lim.Cur
	nl := syscall.Rlimit{Cur: want, Max: max(lim.Max, want)}
	err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl)
	if err != nil && lim.Max > lim.Cur {
		// Not allowed to raise the hard limit: take what the hard limit allows.
		nl = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl) == nil {
			lim.Cur = lim.Max
		}
	} else if err == nil {
		return maxClients, "increased maximum number of open files to " + strconv.Itoa(int(want)) + " (it was originally set to " + strconv.Itoa(int(old)) + ")"
	}
	fit := int(lim.Cur) - reservedFDs
	if uint64(fit) >= uint64(maxClients) {
		return maxClients, ""
	}
	fit = max(fit, 1)
	msg := "You requested maxclients of " + strconv.Itoa(maxClients) + " requiring at least " + strconv.Itoa(int(want)) +
		" max file descriptors. Server can't set maximum open files to " + strconv.Itoa(int(want)) +
		" because of OS error: " + errString(err) + ". Current maximum open files is " + strconv.Itoa(int(lim.Cur)) +
		". maxclients has been reduced to " + strconv.Itoa(fit) + " to compensate for low ulimit."
	return fit, msg
}

func errString(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}
