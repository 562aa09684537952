package cluster

import (
	"encoding/binary"

	"github.com/cockroachdb/errors"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/keel-db/keel/disk"
)

// The data of a keel log entry (raftpb.Entry.Data of an EntryNormal):
//
//	u8      format version (1)
//	u64     proposal id (lets the proposer match the entry to waiting replies)
//	i64     now, Unix ms: the leader's clock, kept monotonic, passed to
//	        engine.Exec on apply and on every replay
//	uvarint command count
//	per command: uvarint argc, then per argument uvarint length + bytes
//
// An entry with empty data is Raft's own (a new leader's first entry).

const entryVersion = 1

// entryBytesTarget is when a Submit batch's writes are cut into another
// entry; every entry of one Submit still goes out in one WAL write.
const entryBytesTarget = 4 << 20

// commandBytesMax bounds one encoded command so its entry fits a record.
const commandBytesMax = disk.RecordPayloadBytesMax - 64

func encodeEntryHeader(buf []byte, id uint64, nowMillis int64, count int) []byte {
	buf = append(buf, entryVersion)
	buf = binary.LittleEndian.AppendUint64(buf, id)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(nowMillis))
	return binary.AppendUvarint(buf, uint64(count))
}

func encodedCommandBytes(argv [][]byte) int {
	n := binary.MaxVarintLen64
	for _, a := range argv {
		n += binary.MaxVarintLen64 + len(a)
	}
	return n
}

func appendCommand(buf []byte, argv [][]byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(argv)))
	for _, a := range argv {
		buf = binary.AppendUvarint(buf, uint64(len(a)))
		buf = append(buf, a...)
	}
	return buf
}

var errBadEntry = errors.New("malformed log entry")

// entryReader walks the commands of one entry without copying arguments.
type entryReader struct {
	ID        uint64
	NowMillis int64
	Count     int
	rest      []byte
	argv      [][]byte // scratch, reused per command
}

func (r *entryReader) reset(data []byte) error {
	if len(data) < 17 || data[0] != entryVersion {
		return errBadEntry
	}
	r.ID = binary.LittleEndian.Uint64(data[1:])
	r.NowMillis = int64(binary.LittleEndian.Uint64(data[9:]))
	n, k := binary.Uvarint(data[17:])
	if k <= 0 || n > uint64(len(data)) {
		return errBadEntry
	}
	r.Count = int(n)
	r.rest = data[17+k:]
	return nil
}

// next decodes the next command; the returned argv is valid until the
// following call.
func (r *entryReader) next() ([][]byte, error) {
	argc, k := binary.Uvarint(r.rest)
	if k <= 0 || argc > uint64(len(r.rest)) {
		return nil, errBadEntry
	}
	r.rest = r.rest[k:]
	r.argv = r.argv[:0]
	for i := uint64(0); i < argc; i++ {
		l, k := binary.Uvarint(r.rest)
		if k <= 0 || l > uint64(len(r.rest)-k) {
			return nil, errBadEntry
		}
		r.argv = append(r.argv, r.rest[k:k+int(l):k+int(l)])
		r.rest = r.rest[k+int(l):]
	}
	return r.argv, nil
}

// WAL record payloads for Raft's types. A RecEntry's payload is the
// entry type byte then the entry data; a RecHardState carries commit in
// Index, term in Term and the vote as its payload.

// appendEntryPayload appends the payload of e's WAL record (a RecEntry
// of e's index and term) to buf: its type, then its data.
func appendEntryPayload(buf []byte, e pb.Entry) []byte {
	buf = append(buf, byte(e.Type))
	return append(buf, e.Data...)
}

func recordEntry(r disk.Record) (pb.Entry, error) {
	if len(r.Payload) < 1 {
		return pb.Entry{}, errBadEntry
	}
	e := pb.Entry{Index: r.Index, Term: r.Term, Type: pb.EntryType(r.Payload[0])}
	if len(r.Payload) > 1 {
		e.Data = r.Payload[1:]
	}
	return e, nil
}

func hardStateRecord(hs pb.HardState) disk.Record {
	return disk.Record{Type: disk.RecHardState, Index: hs.Commit, Term: hs.Term,
		Payload: binary.LittleEndian.AppendUint64(nil, hs.Vote)}
}

func recordHardState(r disk.Record) (pb.HardState, error) {
	if len(r.Payload) != 8 {
		return pb.HardState{}, errBadEntry
	}
	return pb.HardState{Term: r.Term, Commit: r.Index, Vote: binary.LittleEndian.Uint64(r.Payload)}, nil
}
