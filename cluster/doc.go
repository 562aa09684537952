// Package cluster is a keel node's replicated state: replica groups, each a
// Raft log (go.etcd.io/raft/v3 RawNode, driven sans-I/O) stored in keel's
// own WAL on disk.FS, applied in order to an engine.DB. A single node is a
// one-voter group. It decides which commands go through the log (writes)
// and which are served from applied state (reads), keeps each client's
// replies in order, runs group commit and the fsync policy, takes
// snapshots and compacts the log, and reacts to disk faults.
//
// Files: replica.go (Open/recovery, Submit, apply, fault reactions),
// storage.go (raft.Storage over the WAL), codec.go (what a log entry
// holds), save.go and snapshot.go (SAVE/BGSAVE jobs, compaction, INFO
// persistence), txn.go (EXEC as one step and one log entry, WATCH
// decided before proposing, keyspace-event hook; docs/transactions.md),
// functions.go (FUNCTION and FCALL: the udf host, effects entries,
// libraries in snapshots; docs/functions.md), group.go (a replicated
// group: ReadIndex, redirects, membership, snapshot catch-up),
// snapstream.go (snapshots streamed to followers in checksummed,
// acknowledged, throttled chunks that resume), slots.go
// and slotrange.go (hash slots, slot ranges), slotstate.go (the slots a
// group owns, migrates and imports; the gate; CLUSTER RESHARD steps),
// reshard.go (the slot-move driver), topology.go (the CLUSTER replies),
// acl.go (the ACL table as replica state, its meaning the node's; in
// snapshots).
// docs/durability.md and docs/cluster.md tell the whole story.
//
// It is sans-I/O apart from the disk.FS seam: no goroutines, no clock (time
// is passed in), no sockets. The server and the simulator drive the same
// code.
//
// May import: engine, disk, udf, seam. No network code: the runtime
// carries its messages.
package cluster
