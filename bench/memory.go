package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
)

// memResult is one system's memory and prefix-scan measurement.
type memResult struct {
	keys int
	// INFO memory fields before and after loading; -1 when not reported.
	usedBefore, usedAfter int64
	rssBefore, rssAfter   int64 // INFO used_memory_rss
	// VmRSS of the process from /proc, the same yardstick for both systems
	// whatever their INFO says.
	procBefore, procAfter int64
	loadSeconds           float64
	scanMillis            []float64 // one per repetition
	scanCalls             int       // SCAN round trips in the last repetition
	scanFound             int       // distinct matching keys in the last repetition
	err                   error
}

func perKey(before, after int64, keys int) float64 {
	if before < 0 || after < 0 || keys == 0 {
		return -1
	}
	return float64(after-before) / float64(keys)
}

// parseInfo reads INFO's "field:value" lines.
func parseInfo(text string) map[string]string {
	fields := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if ok {
			fields[k] = v
		}
	}
	return fields
}

func infoInt(fields map[string]string, name string) int64 {
	v, ok := fields[name]
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// memSample reads INFO memory and the process RSS.
func memSample(s *server, c *harness.Conn) (used, rss, proc int64, err error) {
	used, rss = -1, -1
	if r, err := c.Do("INFO", "memory"); err == nil {
		f := parseInfo(r.Str)
		used, rss = infoInt(f, "used_memory"), infoInt(f, "used_memory_rss")
	}
	proc, err = s.RSS()
	return used, rss, proc, err
}

// scanPrefix is the sparse prefix the scan test looks for.
const scanPrefix = "pfx:"

// scanCount is the COUNT hint given to SCAN.
const scanCount = 1000

// memorySettle lets the allocator return freed pages and the Go runtime
// finish a cycle before RSS is read.
const memorySettle = 1 * time.Second

// loadForMemory loads keys-matches filler keys and matches prefix keys, all
// with valueBytes-byte values, and samples memory before and after.
func loadForMemory(s *server, c *harness.Conn, keys, matches, valueBytes int) memResult {
	res := memResult{keys: keys}
	time.Sleep(memorySettle)
	var err error
	if res.usedBefore, res.rssBefore, res.procBefore, err = memSample(s, c); err != nil {
		res.err = err
		return res
	}
	start := time.Now()
	if err := loadKeys(c, "mem:%010d", 0, keys-matches, valueBytes); err != nil {
		res.err = errors.Wrapf(err, "load %s", s.sys.name)
		return res
	}
	if err := loadKeys(c, scanPrefix+"%06d", 0, matches, valueBytes); err != nil {
		res.err = errors.Wrapf(err, "load %s", s.sys.name)
		return res
	}
	res.loadSeconds = time.Since(start).Seconds()
	if r, err := c.Do("DBSIZE"); err != nil || r.Num != int64(keys) {
		res.err = errors.Newf("%s: DBSIZE after load = %d (%v), want %d", s.sys.name, r.Num, err, keys)
		return res
	}
	time.Sleep(memorySettle)
	if res.usedAfter, res.rssAfter, res.procAfter, err = memSample(s, c); err != nil {
		res.err = err
	}
	return res
}

// scanOnce iterates SCAN MATCH prefix* to cursor 0 and returns the distinct
// matches found and the number of calls.
func scanOnce(c *harness.Conn) (found, calls int, elapsed time.Duration, err error) {
	seen := map[string]bool{}
	cursor := "0"
	start := time.Now()
	for {
		r, err := c.Do("SCAN", cursor, "MATCH", scanPrefix+"*", "COUNT", strconv.Itoa(scanCount))
		if err != nil {
			return 0, calls, 0, errors.Wrap(err, "SCAN")
		}
		calls++
		if r.Kind != '*' || len(r.Elems) != 2 {
			return 0, calls, 0, errors.Newf("SCAN: unexpected reply %+v", r)
		}
		for _, k := range r.Elems[1].Elems {
			seen[k.Str] = true
		}
		cursor = r.Elems[0].Str
		if cursor == "0" {
			break
		}
		if calls > scanCallsMax {
			return 0, calls, 0, errors.Newf("SCAN did not finish in %d calls", scanCallsMax)
		}
	}
	return len(seen), calls, time.Since(start), nil
}

// scanCallsMax bounds a SCAN loop against a server whose cursor never ends.
const scanCallsMax = 1 << 20

func (m memResult) summary() string {
	return fmt.Sprintf("used %.0f B/key, INFO rss %.0f B/key, process RSS %.0f B/key, load %.2fs",
		perKey(m.usedBefore, m.usedAfter, m.keys), perKey(m.rssBefore, m.rssAfter, m.keys),
		perKey(m.procBefore, m.procAfter, m.keys), m.loadSeconds)
}

// runMemory loads the same keys into fresh servers (persistence off) and
// measures bytes per key and the sparse prefix scan, alternating the scan
// repetitions between the two systems.
func runMemory(cfg config, redis, keel system, tmp string) (memResult, memResult) {
	var res [2]memResult
	var servers [2]*server
	var conns [2]*harness.Conn
	for i, sys := range []system{redis, keel} {
		dir := filepath.Join(tmp, sys.name+"-memory")
		fail := func(err error) (memResult, memResult) {
			res[i].err = err
			return res[0], res[1]
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(errors.Wrap(err, "mkdir"))
		}
		s, err := startServer(sys, modes["off"], dir, 0)
		if err != nil {
			return fail(err)
		}
		defer s.Stop()
		c, err := s.waitReady(time.Minute, -1)
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		servers[i], conns[i] = s, c
		fmt.Printf("memory: loading %d keys into %s ... ", cfg.memoryKeys, sys.name)
		res[i] = loadForMemory(s, c, cfg.memoryKeys, cfg.scanMatches, cfg.dataBytes)
		if res[i].err != nil {
			fmt.Println("failed:", res[i].err)
			return res[0], res[1]
		}
		fmt.Println(res[i].summary())
	}
	for rep := 0; rep < cfg.scanReps; rep++ {
		for i := range conns {
			found, calls, elapsed, err := scanOnce(conns[i])
			if err != nil {
				res[i].err = errors.Wrapf(err, "%s prefix scan", servers[i].sys.name)
				return res[0], res[1]
			}
			if found != cfg.scanMatches {
				res[i].err = errors.Newf("%s prefix scan found %d keys, want %d", servers[i].sys.name, found, cfg.scanMatches)
				return res[0], res[1]
			}
			res[i].scanFound, res[i].scanCalls = found, calls
			res[i].scanMillis = append(res[i].scanMillis, float64(elapsed.Microseconds())/1000)
		}
		fmt.Printf("scan %d/%d: redis %.3f ms (%d calls), keel %.3f ms (%d calls)\n", rep+1, cfg.scanReps,
			res[0].scanMillis[rep], res[0].scanCalls, res[1].scanMillis[rep], res[1].scanCalls)
	}
	return res[0], res[1]
}
