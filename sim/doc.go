// Package sim is keel's deterministic world: a virtual-time event queue,
// seeded randomness split into independent streams, per-node clocks with
// skew and drift, a simulated disk that models the page cache (unsynced
// bytes vanish on a crash, writes tear at sector granularity, fsync fails,
// bits rot, the disk fills; the model is disk.MemFS behind disk.ErrorFS,
// and fs.go wires it to a node), a simulated network (delay, loss,
// duplication, reordering, partitions, forged and corrupted frames),
// nodes that run the production node.Node (and its cluster.Replicas)
// sans-I/O, behind the production RESP reader and writer on simulated
// connections (conn.go), workload clients that behave as go-redis does
// (following the node's own MOVED/ASK/TRYAGAIN) and record a history, an
// oracle that checks every reply and every recovery against a sequential
// model of the keyspace, and a trace whose hash identifies the run. What
// sim/ holds is the world; every decision a node makes is the node's.
//
// One seed determines everything. A run is one goroutine; because
// go.etcd.io/raft draws election jitter from crypto/rand.Reader, a run
// installs a seeded reader for its duration, so one process never runs two
// worlds at once (Run refuses loudly).
//
// May import: everything it drives (node, resp, cluster, disk, engine, transport, seam), and
// checker for its history type (never its search: that runs after a world,
// in scenarios, because porcupine uses goroutines and the wall clock).
package sim
