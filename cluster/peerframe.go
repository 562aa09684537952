package cluster

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/cockroachdb/errors"
	pb "go.etcd.io/raft/v3/raftpb"
)

// A Raft message on the bus is framed as
//
//	u8   peerKindRaftChecked
//	u32  CRC32C (little-endian) of the marshaled message
//	...  the marshaled raftpb.Message
//
// go.etcd.io/raft trusts what it is handed: a message whose bits were
// changed on the way can make it panic (a message "from" the receiver
// itself, a commit index past its log, a snapshot request on an empty
// log) or, worse, apply a wrong entry. The production transport checks a
// CRC of its own, but a frame damaged in memory before or after it, or
// one that collides, must still never reach Raft: the replica checks its
// own checksum end to end, and then that the message is addressed to it
// and not sent by itself (cluster-bus-attack found a node crashed by a
// flipped bit within 1.6 s of attacks).

// raftFrameHeaderBytes is the kind byte and the checksum.
const raftFrameHeaderBytes = 5

// encodeRaftMsg frames m for the bus.
func encodeRaftMsg(m *pb.Message) ([]byte, error) {
	buf := make([]byte, raftFrameHeaderBytes+m.Size())
	n, err := m.MarshalTo(buf[raftFrameHeaderBytes:])
	if err != nil {
		return nil, errors.Wrap(err, "cluster: marshal a Raft message")
	}
	buf = buf[:raftFrameHeaderBytes+n]
	buf[0] = peerKindRaftChecked
	binary.LittleEndian.PutUint32(buf[1:], crc32.Checksum(buf[raftFrameHeaderBytes:], crcTable))
	return buf, nil
}

// decodeRaftMsg checks and decodes a framed Raft message for replica
// self. Any damage is an error, and nothing of the message is used.
func decodeRaftMsg(data []byte, self uint64) (pb.Message, error) {
	var m pb.Message
	if len(data) < raftFrameHeaderBytes {
		return m, errors.Newf("cluster: a %d-byte Raft message, shorter than its header", len(data))
	}
	body := data[raftFrameHeaderBytes:]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(data[1:]) {
		return m, errors.New("cluster: Raft message checksum mismatch")
	}
	if err := m.Unmarshal(body); err != nil {
		return m, errors.Wrap(err, "cluster: malformed peer message")
	}
	switch {
	case m.To != self:
		return m, errors.Newf("cluster: a Raft message for node %d reached node %d", m.To, self)
	case m.From == 0 || m.From == self:
		return m, errors.Newf("cluster: a Raft message claiming to come from node %d reached node %d", m.From, self)
	}
	return m, nil
}
