package engine

import (
	"fmt"
	"testing"
)

// BenchmarkLoad compares recovery's two ways in: Restore key by key and
// the bulk Loader, 1M keys with 200-byte values in key order (a snapshot).
//
//	go test -run - -bench Load -benchtime 3x ./engine/
func BenchmarkLoad(b *testing.B) {
	const keys = 1_000_000
	entries := make([]Entry, keys)
	val := make([]byte, 200)
	for i := range val {
		val[i] = 'a' + byte(i%26)
	}
	for i := range entries {
		entries[i] = Entry{Type: TypeString, Key: []byte(fmt.Sprintf("key:%08d", i)), Value: val}
	}
	for _, way := range []string{"restore", "loader"} {
		b.Run(way, func(b *testing.B) {
			cpu := cpuNanos()
			for i := 0; i < b.N; i++ {
				db := newTestDB()
				if way == "restore" {
					db.Reserve(keys)
					for _, e := range entries {
						db.Restore(e)
					}
				} else {
					ld := db.NewLoader(keys)
					for _, e := range entries {
						ld.Add(e)
					}
					ld.Finish()
				}
				if db.Len() != keys {
					b.Fatalf("%d keys", db.Len())
				}
			}
			b.ReportMetric(float64(keys)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
			// CPU time is steadier than wall time on a shared machine.
			b.ReportMetric(float64(cpuNanos()-cpu)/float64(keys)/float64(b.N), "cpu-ns/key")
		})
	}
}
