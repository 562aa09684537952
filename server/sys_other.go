//go:build !unix

package server

import "time"

func cpuTimes() (user, sys time.Duration) { return 0, 0 }

// RaiseOpenFilesLimit is a no-op where there is no RLIMIT_NOFILE.
func RaiseOpenFilesLimit(maxClients int) (int, string) { return maxClients, "" }
