package transport

// MessageBytesMax bounds one node-to-node message. A peer that announces a
// larger frame is disconnected.
const MessageBytesMax = 64 << 20

// Handler receives a message from a peer. The byte slice is owned by the
// handler after the call.
type Handler func(from uint64, msg []byte)

// Transport delivers messages between nodes. Send never blocks on the
// network: a message that cannot be queued (peer unreachable, queue full)
// is dropped, as Raft tolerates loss.
type Transport interface {
	Send(to uint64, msg []byte)
	Close() error
}
