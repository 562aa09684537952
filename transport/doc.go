// Package transport is the network seam between keel nodes: a Transport that
// sends opaque, bounded messages to peers by node id and delivers incoming
// ones to a handler with the sender's authenticated id. The production
// implementation speaks TCP on each peer's client port + 10000, over mutual
// TLS 1.3 with a cluster CA whose certificates name their node (pki), with
// checksummed frames; plaintext only when asked for by name. The simulator
// implements the same interface with seeded delay, loss, duplication,
// reordering and partitions.
//
// Files: transport.go the interface; tcp.go the TCP transport (the only
// file that opens sockets, starts goroutines or sleeps); tls.go the bus's
// TLS identity and checks; frame.go the hello and frame format; pki/ the
// certificates.
//
// Import the standard library's net as stdnet in this package.
//
// May import: nothing of keel but transport/pki.
package transport
