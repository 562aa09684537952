// Package node is everything a keel node decides, written sans-I/O: the
// replica groups it hosts and what it does after every call into one
// (note the leader, spread leadership, hand background jobs to the
// runtime, reopen a replica after a fatal disk error), the slot table and
// every redirect it answers (MOVED, ASK, TRYAGAIN, READONLY, CROSSSLOT),
// each client session's state (AUTH, RESP2/3, MULTI/WATCH/EXEC, ASKING,
// READONLY, subscriber mode) and the connection-level commands (PING,
// HELLO, CLIENT, COMMAND, INFO, CONFIG, CLUSTER, PUBSUB, ACL, ...), what
// operators look at (cmdstats.go and batchstats.go: command and error
// statistics; slowlog.go, latency.go, monitor.go, memory_cmd.go,
// pause.go, backup_cmd.go, ops_config.go: online settings and CONFIG
// REWRITE; metrics.go: what the runtime's metrics read), the
// ACL every command is checked against (acl.go: the model and the check;
// acl_table.go: the users, kept as group 1's replica state; acl_cmd.go:
// ACL, AUTH, the ACL log, enforcement), node-wide
// commands fanned out over the groups it leads and their merged replies,
// pub/sub and keyspace notifications, and the cluster's address book.
//
// It takes inputs and returns outputs, the way go.etcd.io/raft's RawNode
// does: a session is handed a batch of parsed commands (Session.Begin)
// and returns Steps — runs of requests for one replica group — until its
// batch is answered (Session.Next); peer messages are routed to their
// group (Route) and stepped (Step); ticks (Tick) and finished background
// jobs (JobDone, SyncDone) come in; replies, peer messages (Runtime.Send),
// wake-ups of subscribers (Runtime.Wake) and disk work through the
// disk.FS seam of the replicas go out. A Runtime carries them out: the
// production server (server/: sockets, goroutines, timers) and the
// simulator (sim/: one event loop over simulated connections, disks and
// clocks) drive this same code, byte for byte, so what the simulator
// verified is what runs. docs/architecture.md shows how a command travels
// through it in both worlds.
//
// It starts no goroutine, reads no clock (time comes from Config.Clock),
// draws randomness only from Config.Rand, opens no socket and lets no map
// order reach an output. Its shared state has locks because the
// production runtime drives sessions and groups from many goroutines; the
// simulator drives it from one.
//
// May import: cluster, engine, resp, seam, disk (types), udf (its reply
// texts). Never a network package: the node imports no sockets (a test
// enforces it).
package node
