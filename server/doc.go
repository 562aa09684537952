// Package server is keel's production runtime around a cluster.Replica: the
// RESP2/RESP3 codec, the TCP accept loop and one goroutine per connection,
// the shard that serialises access to the replica with group commit, and
// the connection-level commands (PING, HELLO, AUTH, CLIENT, COMMAND, INFO,
// CONFIG, ...), MULTI queueing (multi.go), pub/sub with its per-client
// outbox and output limit (pubsub.go) and keyspace notifications
// (notify.go). Every other command is handed to Replica.Submit; EXEC as
// one request carrying a cluster.Txn.
//
// A connection goroutine reads every pipelined command already buffered as
// one batch, runs it (taking the shard itself rather than handing commands
// to another goroutine), and answers the whole batch with one write. See
// docs/concurrency.md for why.
//
// In cluster mode (Config.Cluster, cluster.go) the server is one voter of
// a replicated group and speaks Redis Cluster: batches go in with
// SubmitAsync and are answered when they commit, non-leaders redirect
// (-MOVED, -TRYAGAIN, -READONLY), keys across slots get -CROSSSLOT, and
// CLUSTER SLOTS/SHARDS/NODES/INFO describe the group (cluster_cmd.go).
// Peer messages travel over the transport package's TCP implementation and are
// stepped into the replica through the shard like everything else.
//
// With --groups G > 1 (groups.go, fanout.go) the node hosts one replica
// of each of G replica groups, each behind its own shard, ticker and peer
// stepper; peer messages carry their group. Keyed requests go to the
// group a slot table (built from the replicas' OnSlotsChanged) routes
// their slot to, a pipeline being cut into per-group runs submitted in
// order; node-wide keyless commands answer for the groups this node
// leads; CLUSTER RESHARD steps go to the group they name.
//
// This is the only place besides cmd/ that knows it runs in the real world:
// it reads the wall clock (through seam.Wall), opens sockets and starts
// goroutines.
//
// May import: cluster, engine, udf, seam, transport (the production TCP transport).
package server
