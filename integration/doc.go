// Package integration holds tests that run real keel processes: the
// binary built from ./cmd/keel, started as a user would start it, on
// loopback, driven by an unmodified Redis client library (go-redis), and
// killed with real signals. They complement the simulator (sim/,
// scenarios/), which breaks the same code deterministically; these check
// what the simulator cannot see: the production runtime, sockets, files,
// process start-up and the command-line contracts of docs/operations.md
// and docs/cluster.md.
//
// Files: keel_test.go (building the binary once, free ports, starting and
// stopping nodes, their logs), cluster_local_test.go (`keel cluster
// local`), cluster_kill_test.go (kill -9 of a cluster's leader under
// load: failover and no acknowledged write lost).
//
// May import: nothing of keel; it is a black-box client.
package integration
