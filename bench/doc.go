// Command bench measures keel side by side with Redis on the same machine,
// in the same run, and reports ratios (speed is claimed only as a
// ratio to the anchor measured alongside it).
//
//	go run ./bench              # full run: modes off,everysec; 3 rounds; memory and scan
//	go run ./bench --quick      # short smoke run
//	go run ./bench --recovery   # also time kill -9 → restart → every key loaded
//	go run ./bench --profile 20 # also a CPU profile of keel under SET/GET -P 16
//
// docs/performance.md explains what is measured and why, and holds the
// results; bench/results/ keeps each run's Markdown report.
//
// It installs Redis from Debian packages when redis-server or redis-benchmark
// is missing, builds keel from this module, starts both on loopback on free
// ports with equivalent persistence, and drives both with redis-benchmark,
// alternating the two systems test by test so that machine noise (the
// machine is shared) hits both alike. Absolute numbers move a lot from run to
// run; the median of per-round keel/Redis ratios is the figure that counts.
//
// The harness is a black-box client: it starts binaries and speaks RESP over
// loopback with its own small client (resp.go), so it depends on no keel
// package and its numbers cannot be flattered by in-process shortcuts.
//
// Files: main.go (flags, orchestration), proc.go (each system's server
// flags, readiness), redisbench.go (the workloads and redis-benchmark
// flags), memory.go (bytes per key, prefix scan), recovery.go
// (restart timing), profile.go (CPU profile), report.go (text and Markdown
// tables), resp.go (client). bench/inproc is the one exception to the
// black-box rule: a Go benchmark that runs the server in-process so it can
// be profiled without a pprof flag.
//
// What every harness does alike (process start/stop, running and parsing
// redis-benchmark, medians of per-round ratios, formats, tools, machine
// description) lives in bench/internal/harness, shared with bench/cluster
// and bench/latency (GET latency with 10M keys under a write load, keel and
// Redis side by side: go run ./bench/latency).
//
// May import: bench/internal/harness; nothing else of keel.
package main
