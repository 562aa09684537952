// Package server is keel's production runtime: it runs a node.Node (the
// sans-I/O node that decides everything: sessions, routing, redirects,
// pub/sub, fan-out, the reaction to disk failures) with sockets,
// goroutines and timers. It is the node.Runtime of a real process, as the
// simulator (sim/) is the node.Runtime of a simulated one.
//
// What it does:
//   - accepts client connections and refuses them past maxclients; a
//     connection reads every command already buffered into one batch
//     with resp.Reader, hands it to its node.Session, carries out the
//     Steps the session returns, and writes the batch's replies with one
//     write(2) (conn.go). Plain-TCP connections are served by an epoll
//     event loop (loop_linux.go), which resumes a replicated group's
//     batches when they commit, until one must wait (a blocking command,
//     a subscriber, a function call, a reply the socket does not take),
//     when it moves to a goroutine of its own; TLS connections have one
//     from the start;
//   - serialises access to each replica group with an execQueue, a
//     LevelDB-style writer queue with group commit: the goroutine at its
//     head submits every batch queued behind it in one node.Submit, and
//     the queue is how it provides node.Runtime.Exclusive (queue.go);
//   - ticks every group (node.Tick), runs background snapshot jobs and
//     the everysec fsync on goroutines of their own (maintenance.go), and
//     drains subscribers' pushed output with a writer goroutine each;
//   - in cluster mode, runs the peer transport on each node's client
//     port + 10000 (mutual TLS unless asked otherwise): received messages
//     are routed by the node to their group and stepped in batches by one
//     goroutine per group (peers.go);
//   - reports the process's facts (memory, CPU, pid) to INFO.
//
// docs/architecture.md shows how a command travels through it;
// docs/concurrency.md says why the queue, and not an executor goroutine.
//
// This is the only place besides cmd/ that knows it runs in the real
// world: it reads the wall clock (through seam.Wall), opens sockets and
// starts goroutines.
//
// May import: node, cluster, engine, resp, seam, disk, transport, udf.
package server
