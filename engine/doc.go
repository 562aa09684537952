// Package engine is keel's keyspace state machine: a point index and an
// ordered index over the same keys, values, expiry (lazy on access, active
// through a timing wheel), and the semantics of every data command —
// strings, bitmaps, lists, sets, hashes and sorted sets. Keys and values
// live in large pointer-free blocks (arena.go) that the indexes name by
// 32-bit refs, so the garbage collector does not scan the keyspace key by
// key; a small collection is packed into its key's cell, a large one is a
// counted B+tree whose nodes are cells of the same blocks (tree.go)
// (docs/engine.md, "Storage layout" and "Collections").
//
// It is pure: Exec(now, argv, w) depends only on the keyspace, now (Unix
// milliseconds, passed in) and argv, so replaying the same commands with the
// same times yields the same state and the same replies — which is what lets
// the log, recovery, replicas and the simulator all run this code. Reads that
// need chance (RANDOMKEY, SRANDMEMBER) draw from the seam.Rand given in
// Options; a write that does (SPOP) runs with ExecSeeded and draws from the
// seed its caller derives from the log entry. Nothing here reads a clock,
// the OS or global randomness, starts a goroutine, or lets map iteration
// order reach a reply.
//
// May import: seam, and small shared types only.
package engine
