package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/errors"
)

// recoveryVariant is one way a system persists before the crash.
type recoveryVariant struct {
	label string
	mode  mode
	// save issues SAVE before the crash (a snapshot: Redis's RDB, keel's
	// snapshot file), so recovery loads a snapshot instead of replaying.
	save bool
}

func recoveryVariants(sys system) []recoveryVariant {
	if sys.name == "redis" {
		return []recoveryVariant{
			{label: "RDB (SAVE)", mode: modes["off"], save: true},
			{label: "AOF everysec", mode: modes["everysec"]},
		}
	}
	return []recoveryVariant{
		{label: "log everysec", mode: modes["everysec"]},
		{label: "snapshot (SAVE) + log", mode: modes["everysec"], save: true},
	}
}

type recoveryResult struct {
	system, variant string
	keys            int
	diskBytes       int64
	seconds         float64 // process start → PONG with DBSIZE == keys
	err             error
}

// everysecGrace is how long to wait after the last write before kill -9 so
// that an everysec fsync has certainly covered it (RPO ≤ 1 s).
const everysecGrace = 1500 * time.Millisecond

// recoveryTimeout bounds one restart (issue 4: RTO ≤ 60 s for 100M keys;
// generous here so a slow build still yields a number).
const recoveryTimeout = 10 * time.Minute

// measureRecovery loads keys, crashes the server with SIGKILL, restarts it on
// the same directory and times start → every key served.
func measureRecovery(sys system, v recoveryVariant, dir string, keys, valueBytes int) recoveryResult {
	res := recoveryResult{system: sys.name, variant: v.label, keys: keys}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.err = errors.Wrap(err, "mkdir")
		return res
	}
	s, err := startServer(sys, v.mode, dir, 0)
	if err != nil {
		res.err = err
		return res
	}
	c, err := s.waitReady(time.Minute, -1)
	if err != nil {
		s.Kill()
		res.err = err
		return res
	}
	if err := loadKeys(c, "rec:%010d", 0, keys, valueBytes); err != nil {
		c.Close()
		s.Kill()
		res.err = err
		return res
	}
	if v.save {
		c.SetDeadline(time.Now().Add(recoveryTimeout))
		if _, err := c.Do("SAVE"); err != nil {
			c.Close()
			s.Kill()
			res.err = errors.Wrapf(err, "%s SAVE", sys.name)
			return res
		}
	}
	c.Close()
	time.Sleep(everysecGrace)
	s.Kill()
	res.diskBytes = dirBytes(dir)

	start := time.Now()
	s2, err := startServer(sys, v.mode, dir, 0)
	if err != nil {
		res.err = err
		return res
	}
	defer s2.Stop()
	c2, err := s2.waitReady(recoveryTimeout, int64(keys))
	if err != nil {
		res.err = err
		return res
	}
	res.seconds = time.Since(start).Seconds()
	c2.Close()
	return res
}

func dirBytes(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}
