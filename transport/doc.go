// Package transport is the network seam between keel nodes: a Transport that
// sends opaque, bounded messages to peers by node id and delivers incoming
// ones to a handler. The production implementation speaks TCP on each
// peer's client port + 10000; the simulator implements the same interface
// with seeded delay, loss, duplication, reordering and partitions.
//
// Import the standard library's net as stdnet in this package.
//
// May import: nothing of keel.
package transport
