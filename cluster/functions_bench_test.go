package cluster

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
)

// BenchmarkSubmitFCall compares FCALL incr_by (testdata/functions/counter)
// with plain INCRBY through Submit, batches of 50 (what group commit
// gathers from 50 clients), with and without the log:
//
//	go test -run - -bench SubmitFCall -benchtime 2s ./cluster/
func BenchmarkSubmitFCall(b *testing.B) {
	for _, mode := range []string{"off", "everysec"} {
		for _, cmd := range []string{"INCRBY", "FCALL"} {
			b.Run(fmt.Sprintf("%s/%s", mode, cmd), func(b *testing.B) {
				r := benchReplicaWith(b, mode, "counter")
				const batch = 50
				keys := make([][]byte, 100000)
				for i := range keys {
					keys[i] = []byte("key:" + strconv.Itoa(i))
				}
				reqs := make([]Request, batch)
				one := []byte("1")
				w := &engine.Discard{}
				b.ResetTimer()
				for i := 0; i < b.N; i += batch {
					for j := range reqs {
						k := keys[(i+j)%len(keys)]
						if cmd == "FCALL" {
							reqs[j] = Request{Argv: [][]byte{[]byte("FCALL"), []byte("incr_by"), one, k, one}, W: w}
						} else {
							reqs[j] = Request{Argv: [][]byte{[]byte("INCRBY"), k, one}, W: w}
						}
					}
					r.Submit(t0+int64(i), reqs)
				}
			})
		}
	}
}

// BenchmarkSubmitFCallHIncrBy compares FCALL call 1 h HINCRBY h f 1 (a
// collection command through keel.call: testdata/functions/collections)
// with plain HINCRBY through Submit, one request per batch (as -P 1) and
// batches of 50, with and without the log:
//
//	go test -run - -bench SubmitFCallHIncrBy -benchtime 2s ./cluster/
func BenchmarkSubmitFCallHIncrBy(b *testing.B) {
	for _, mode := range []string{"off", "everysec"} {
		for _, batch := range []int{1, 50} {
			for _, cmd := range []string{"HINCRBY", "FCALL"} {
				b.Run(fmt.Sprintf("%s/batch%d/%s", mode, batch, cmd), func(b *testing.B) {
					r := benchReplicaWith(b, mode, "collections")
					keys := make([][]byte, 1000)
					for i := range keys {
						keys[i] = []byte("hash:" + strconv.Itoa(i))
					}
					reqs := make([]Request, batch)
					one, f := []byte("1"), []byte("f")
					w := &engine.Discard{}
					b.ResetTimer()
					for i := 0; i < b.N; i += batch {
						for j := range reqs {
							k := keys[(i+j)%len(keys)]
							if cmd == "FCALL" {
								reqs[j] = Request{Argv: [][]byte{[]byte("FCALL"), []byte("call"), one, k, []byte("HINCRBY"), k, f, one}, W: w}
							} else {
								reqs[j] = Request{Argv: [][]byte{[]byte("HINCRBY"), k, f, one}, W: w}
							}
						}
						r.Submit(t0+int64(i), reqs)
					}
					b.StopTimer()
					if w.Err != "" {
						b.Fatal(w.Err)
					}
				})
			}
		}
	}
}

// benchReplicaWith opens a replica on a temporary directory, with the log
// under everysec unless mode is "off", and loads the library lib; it is
// closed when the benchmark ends.
func benchReplicaWith(b *testing.B, mode, lib string) *Replica {
	b.Helper()
	r, err := Open(Options{FS: disk.OS(), Dir: b.TempDir(), AppendOnly: mode != "off", Fsync: FsyncEverySec,
		SnapshotLogBytes: -1, Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	if got := doReqs(r, t0, loadArgv(b, lib)); got != "$"+lib {
		b.Fatal(got)
	}
	return r
}
