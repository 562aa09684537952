//go:build linux

package server

import (
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/keel-db/keel/resp"
)

// TestEvictionAccountingTracksRSS measures what maxmemory is compared
// with (INFO used_memory_evict, the engine's UsedBytes) against what the
// process really holds for the data: RSS after loading, less RSS before,
// both taken after debug.FreeOSMemory so that garbage and pages the Go
// runtime has not yet returned do not count. For values of 10 B to 1 MB
// the two must be within 10% (issue 16). The figures are in
// docs/engine.md, "Eviction".
func TestEvictionAccountingTracksRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 48 MB per value size")
	}
	const target = 48 << 20
	for _, size := range []int{10, 100, 1000, 10_000, 100_000, 1_000_000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			ts := startServer(t, Config{})
			rc := ts.raw(t)
			used := func() int64 {
				out := rc.do("info", "memory")
				i := strings.Index(out, "used_memory_evict:")
				if i < 0 {
					t.Fatalf("INFO memory has no used_memory_evict: %.200q", out)
				}
				v := out[i+len("used_memory_evict:"):]
				v = v[:strings.IndexByte(v, '\r')]
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			debug.FreeOSMemory()
			rssBefore, usedBefore := int64(rssBytes()), used()
			val := strings.Repeat("v", size)
			perBatch := max(1, min(1000, (4<<20)/size))
			keys := 0
			for used()-usedBefore < target {
				w := resp.NewWriter()
				for range perBatch {
					w.WriteArray(3)
					w.WriteBulkString("set")
					w.WriteBulkString(fmt.Sprintf("key:%08d", keys))
					w.WriteBulkString(val)
					keys++
				}
				rc.send(string(w.Bytes()))
				for range perBatch {
					if r := rc.reply(); r != "+OK" {
						t.Fatalf("SET: %s", r)
					}
				}
			}
			debug.FreeOSMemory()
			rss := int64(rssBytes()) - rssBefore
			acc := used() - usedBefore
			ratio := float64(acc) / float64(rss)
			t.Logf("value %d B: %d keys, used_memory_evict +%d, RSS +%d, ratio %.3f, %.1f B/key counted, %.1f B/key in RSS",
				size, keys, acc, rss, ratio, float64(acc)/float64(keys), float64(rss)/float64(keys))
			if ratio < 0.9 || ratio > 1.1 {
				t.Errorf("value %d B: the accounting says %d bytes, RSS grew by %d (ratio %.3f, outside 0.9..1.1)", size, acc, rss, ratio)
			}
		})
	}
}
