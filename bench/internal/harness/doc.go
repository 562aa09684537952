// Package harness holds what every keel benchmark harness (bench,
// bench/cluster, bench/fcall, bench/latency) does alike: start and stop server processes and never
// leave one behind, run redis-benchmark and parse its CSV, take medians of
// per-round ratios, format figures, and find the tools, the module root
// and the machine the figures depend on. The harnesses keep what they
// measure and how they report it; this package keeps how.
//
// Like its importers it is a black-box client: it starts binaries and
// reads their output, and so may import nothing of keel.
package harness
