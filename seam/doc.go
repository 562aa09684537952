// Package seam declares the narrow interfaces through which keel's core
// (engine, cluster, the log, udf) reaches the world: a clock, timers and a
// source of randomness. The disk and network seams live in disk.FS and
// transport.Transport. Each seam has a production implementation here (prod.go,
// the only file in the package allowed to read the wall clock or the OS
// random source) and a simulated one in sim/.
//
// Rule: core code receives these as values and never calls time.Now,
// time.Sleep, the global math/rand or crypto/rand directly. A failing
// simulation seed replays exactly only because of that.
//
// May import: nothing of keel.
package seam
