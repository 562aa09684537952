package cluster

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
)

// BenchmarkSubmitSET measures SET throughput through Submit, batchSize
// commands per Submit (what group commit gathers from that many
// concurrent clients), under each persistence setting. Compare the
// ns/op of always and everysec with off for the ratios in
// docs/durability.md:
//
//	go test -run - -bench SubmitSET -benchtime 2s ./cluster/
func BenchmarkSubmitSET(b *testing.B) {
	for _, batchSize := range []int{1, 50} {
		for _, mode := range []string{"off", "no", "everysec", "always"} {
			b.Run(fmt.Sprintf("batch=%d/%s", batchSize, mode), func(b *testing.B) {
				o := Options{FS: disk.OS(), Dir: b.TempDir(), AppendOnly: mode != "off", SnapshotLogBytes: -1}
				switch mode {
				case "no":
					o.Fsync = FsyncNo
				case "everysec":
					o.Fsync = FsyncEverySec
				case "always":
					o.Fsync = FsyncAlways
				}
				r, err := Open(o)
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				value := make([]byte, 100)
				reqs := make([]Request, batchSize)
				keys := make([][]byte, 100000)
				for i := range keys {
					keys[i] = []byte("key:" + strconv.Itoa(i))
				}
				w := &engine.Discard{}
				now := t0
				b.SetBytes(int64(len(value)))
				b.ResetTimer()
				for i := 0; i < b.N; i += batchSize {
					for j := range reqs {
						reqs[j] = Request{Argv: [][]byte{[]byte("SET"), keys[(i+j)%len(keys)], value}, W: w}
					}
					r.Submit(now, reqs)
					now += 20_000 // 20 µs per batch of virtual time
					if i%(batchSize*500) == 0 {
						r.Tick(now)
					}
				}
			})
		}
	}
}

// BenchmarkRecovery measures Open on a data directory holding keys keys
// with 200-byte values, from a snapshot and from the log alone; it reports
// keys/s.
//
//	go test -run - -bench Recovery -benchtime 3x ./cluster/
func BenchmarkRecovery(b *testing.B) {
	keys := benchKeys
	for _, from := range []string{"snapshot", "log"} {
		b.Run(fmt.Sprintf("keys=%d/from=%s", keys, from), func(b *testing.B) {
			dir := b.TempDir()
			o := Options{FS: disk.OS(), Dir: dir, AppendOnly: true, Fsync: FsyncNo, SnapshotLogBytes: -1}
			r, err := Open(o)
			if err != nil {
				b.Fatal(err)
			}
			value := make([]byte, 200)
			for i := range value {
				value[i] = 'a' + byte(i%26)
			}
			const batch = 1000
			reqs := make([]Request, batch)
			w := &engine.Discard{}
			for i := 0; i < keys; i += batch {
				for j := range reqs {
					reqs[j] = Request{Argv: [][]byte{[]byte("SET"), []byte(fmt.Sprintf("key:%08d", i+j)), value}, W: w}
				}
				r.Submit(t0, reqs)
			}
			if from == "snapshot" {
				rw := &rec{}
				r.Submit(t0, []Request{{Argv: argv("SAVE"), W: rw}})
				if rw.String() != "+OK" {
					b.Fatal(rw.String())
				}
			}
			if err := r.Close(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := Open(o)
				if err != nil {
					b.Fatal(err)
				}
				if n := r.DB().Len(); n != keys {
					b.Fatalf("recovered %d keys", n)
				}
				b.StopTimer()
				_ = r.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(keys)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}

// benchKeys is the recovery benchmark's key count (1M, the figure).
var benchKeys = 1_000_000
