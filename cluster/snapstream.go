package cluster

import (
	"encoding/binary"
	"hash/crc32"
	"path"

	"github.com/cockroachdb/errors"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/keel-db/keel/disk"
)

// Snapshots to followers, of any size (docs/cluster.md, "Snapshots to
// followers").
//
// When Raft decides a follower needs a snapshot (the leader's log no longer
// reaches back to what the follower holds) it emits MsgSnap. The leader
// does not send that message as it is: it streams the snapshot file to the
// follower in checksummed chunks, each read from the file when it is sent,
// at most snapWindowChunks unacknowledged and at most
// Options.SnapshotSendBytesPerTick per tick over all followers. The
// follower appends each chunk, in order, to snap/<index>.snap.<fp>.part and
// acknowledges the offset it holds. Once the file is whole it is synced and
// verified (every block's checksum, disk.ScanSnapshot), and the follower
// says so; the leader then sends Raft's MsgSnap itself, whose Data names
// the streamed file instead of holding it, and Raft's Restore path runs on
// the follower with installSnapshot loading the local file. The follower
// confirms the install, and only then does the leader report
// SnapshotFinish; a stream that is refused or makes no progress reports
// SnapshotFailure, so Raft's progress for the follower stays true (it
// probes, and asks for a snapshot again when one is still needed).
//
// Resuming: a stream is named by the sender's (term, sequence) and the
// file by (index, size, fingerprint). A follower that restarts, or a leader
// that restarts and streams the same file again, finds the partial file:
// the follower keeps its sound prefix and reports that offset, and the
// leader goes on from there. A newer snapshot on the leader ends a stream
// that has delivered nothing yet (SnapshotFailure), and Raft asks for the
// newer one: the follower would need it anyway, as the leader's log starts
// after it. A stream under way goes on to the end (the open file outlives
// its removal by retention): installing it is progress, and the follower
// asks for the newer one next. Ending it instead would never let a
// follower catch up whenever the leader snapshots faster than it streams
// (a big data set under steady writes: cluster-big-snapshots found it).
//
// Flow control is go-back-N: the follower takes only the chunk at the
// offset it holds and answers any other with that offset ("refused"); a
// refusal, or a window that sees no acknowledgement for
// snapAckTimeoutTicks, makes the leader resend from the offset the
// follower holds. Each go-back starts a new epoch, and a refusal of an
// older epoch (chunks already in flight when the leader went back) is not
// acted on again.
//
// Every peer message starts with a kind byte. A Raft message is the kind
// peerKindRaftChecked, the CRC32C of the rest, and a marshaled
// raftpb.Message (peerframe.go); chunks and acks carry their own CRC. The
// runtime may frame a message further (the sharded server's group frame)
// outside these bytes.

const (
	// peerKindRaft opened a bare marshaled raftpb.Message (its first
	// byte is always 0x08: field 1, the type, as a varint), as Raft
	// messages travelled before they carried a checksum; it is refused.
	peerKindRaft        = 0x08
	peerKindSnapChunk   = 0xB1
	peerKindSnapAck     = 0xB2
	peerKindRaftChecked = 0xB3

	// MessageBytesMaxDefault is Options.MessageBytesMax's default: the
	// transport's frame bound less peerFrameHeadroomBytes.
	MessageBytesMaxDefault = TransportMessageBytesMax - peerFrameHeadroomBytes
	// TransportMessageBytesMax is the production transport's frame bound
	// (transport.MessageBytesMax; a server test holds them equal). The
	// replica imports no network code, so it is stated here too.
	TransportMessageBytesMax = 64 << 20
	// peerFrameHeadroomBytes is left under the transport's bound for what
	// a runtime wraps around a replica's message (the sharded server adds
	// a tag and a uvarint group id: 11 bytes at most).
	peerFrameHeadroomBytes = 64
	// messageBytesMin is the smallest Options.MessageBytesMax accepted:
	// below it Raft's own messages (a vote, a heartbeat, an append of one
	// small entry) stop fitting.
	messageBytesMin = 4 << 10

	// SnapshotSendBytesPerTickDefault is Options.SnapshotSendBytesPerTick's
	// default: 8 MiB per 100 ms tick, 80 MiB/s, over every follower the
	// leader streams to. Reading and checksumming a chunk costs about
	// 0.7 ms per MiB under the replica's owner (BenchmarkSnapshotChunk),
	// so this leaves client commands more than nine tenths of each tick.
	SnapshotSendBytesPerTickDefault = 8 << 20

	// snapChunkBytesMax bounds a chunk's data (it is also cut to fit
	// Options.MessageBytesMax).
	snapChunkBytesMax = 1 << 20
	// snapWindowChunks bounds the chunks sent to a follower and not yet
	// acknowledged: it is what a stream holds in the transport's queue.
	snapWindowChunks = 8
	// snapAckTimeoutTicks is how long a leader waits for an answer before
	// resending (the window from the last acknowledged offset, a probe or
	// the MsgSnap): half a second.
	snapAckTimeoutTicks = 5
	// snapRetriesMax bounds consecutive resends without progress before
	// the stream is abandoned (SnapshotFailure): ten seconds of silence.
	snapRetriesMax = 20
	// snapRetryBackoffTicks is the pause after an abandoned stream before
	// the next one to the same follower starts.
	snapRetryBackoffTicks = 10
	// snapVerifyFailuresMax bounds the times a follower receives a stream
	// again from the sound prefix of a whole file that failed to verify,
	// before it gives up on that stream (the leader's file may be bad).
	snapVerifyFailuresMax = 3

	// snapMsgHeaderBytes: kind, CRC32C of everything after it, from, to,
	// stream term, stream sequence, index, size (u64 each), fingerprint,
	// epoch (u32), offset (u64: where the chunk starts, or what an ack
	// holds), flags or status (u8). A chunk's data follows.
	snapMsgHeaderBytes = 1 + 4 + 6*8 + 4 + 4 + 8 + 1

	// snapDescriptorMagic opens the Data of a MsgSnap whose snapshot was
	// streamed: the stream's term, sequence, size and fingerprint follow.
	snapDescriptorMagic = "KSS1"
	snapDescriptorBytes = len(snapDescriptorMagic) + 8 + 8 + 8 + 4
)

// Chunk flags and ack statuses.
const (
	chunkProbe = 1 // no data: "which offset do you hold?"

	ackHeld      = 1 // the follower holds offset bytes of the file
	ackRefused   = 2 // a chunk was refused (out of order, corrupt, or the whole file failed to verify): resend from offset
	ackComplete  = 3 // the file is whole and verified: send the MsgSnap
	ackInstalled = 4 // installed, or the follower is already past the index
	ackMissing   = 5 // the MsgSnap came but the follower holds no whole file: stream it again
	ackAbort     = 6 // the follower cannot take it (its disk failed): give up for now
)

// streamID names a stream: the sender's term and sequence (which grow with
// every stream a leader starts), and the file it carries.
type streamID struct {
	term, seq uint64
	index     uint64
	size      uint64
	fp        uint32
}

func (a streamID) sameFile(b streamID) bool {
	return a.index == b.index && a.size == b.size && a.fp == b.fp
}

func (a streamID) newer(b streamID) bool {
	return a.term > b.term || a.term == b.term && a.seq > b.seq
}

// snapMsg is a chunk or an ack, decoded.
type snapMsg struct {
	kind     byte
	from, to uint64
	id       streamID
	epoch    uint32
	offset   uint64
	flag     uint8
	data     []byte
}

func encodeSnapMsg(buf []byte, m *snapMsg) []byte {
	buf = buf[:snapMsgHeaderBytes]
	buf[0] = m.kind
	p := buf[5:]
	le := binary.LittleEndian
	le.PutUint64(p[0:], m.from)
	le.PutUint64(p[8:], m.to)
	le.PutUint64(p[16:], m.id.term)
	le.PutUint64(p[24:], m.id.seq)
	le.PutUint64(p[32:], m.id.index)
	le.PutUint64(p[40:], m.id.size)
	le.PutUint32(p[48:], m.id.fp)
	le.PutUint32(p[52:], m.epoch)
	le.PutUint64(p[56:], m.offset)
	p[64] = m.flag
	buf = buf[:snapMsgHeaderBytes+len(m.data)]
	if len(m.data) > 0 && &buf[snapMsgHeaderBytes] != &m.data[0] {
		copy(buf[snapMsgHeaderBytes:], m.data)
	}
	crc := crc32.Update(0, crcTable, buf[:1])
	crc = crc32.Update(crc, crcTable, buf[5:])
	le.PutUint32(buf[1:], crc)
	return buf
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var errSnapChecksum = errors.New("checksum mismatch")

// decodeSnapMsg checks a chunk or ack; m.data aliases data.
func decodeSnapMsg(data []byte) (snapMsg, error) {
	var m snapMsg
	if len(data) < snapMsgHeaderBytes {
		return m, errors.Newf("%d bytes, shorter than the %d-byte header", len(data), snapMsgHeaderBytes)
	}
	le := binary.LittleEndian
	crc := crc32.Update(0, crcTable, data[:1])
	crc = crc32.Update(crc, crcTable, data[5:])
	if crc != le.Uint32(data[1:]) {
		return m, errSnapChecksum
	}
	p := data[5:]
	m.kind = data[0]
	m.from, m.to = le.Uint64(p[0:]), le.Uint64(p[8:])
	m.id = streamID{term: le.Uint64(p[16:]), seq: le.Uint64(p[24:]), index: le.Uint64(p[32:]), size: le.Uint64(p[40:]), fp: le.Uint32(p[48:])}
	m.epoch, m.offset, m.flag = le.Uint32(p[52:]), le.Uint64(p[56:]), p[64]
	m.data = data[snapMsgHeaderBytes:]
	switch {
	case m.kind == peerKindSnapAck && len(m.data) > 0:
		return m, errors.Newf("an ack with %d bytes of data", len(m.data))
	case m.kind == peerKindSnapAck && (m.flag < ackHeld || m.flag > ackAbort):
		return m, errors.Newf("unknown ack status %d", m.flag)
	case m.offset > m.id.size || uint64(len(m.data)) > m.id.size-m.offset:
		return m, errors.Newf("bytes [%d,+%d) past the snapshot's %d", m.offset, len(m.data), m.id.size)
	case m.kind == peerKindSnapChunk && m.flag&chunkProbe != 0 && len(m.data) > 0:
		return m, errors.New("a probe with data")
	}
	return m, nil
}

func encodeSnapDescriptor(id streamID) []byte {
	b := append(make([]byte, 0, snapDescriptorBytes), snapDescriptorMagic...)
	b = binary.LittleEndian.AppendUint64(b, id.term)
	b = binary.LittleEndian.AppendUint64(b, id.seq)
	b = binary.LittleEndian.AppendUint64(b, id.size)
	return binary.LittleEndian.AppendUint32(b, id.fp)
}

func decodeSnapDescriptor(s *pb.Snapshot) (streamID, bool) {
	d := s.Data
	if len(d) != snapDescriptorBytes || string(d[:len(snapDescriptorMagic)]) != snapDescriptorMagic {
		return streamID{}, false
	}
	d = d[len(snapDescriptorMagic):]
	le := binary.LittleEndian
	return streamID{term: le.Uint64(d), seq: le.Uint64(d[8:]), index: s.Metadata.Index, size: le.Uint64(d[16:]), fp: le.Uint32(d[24:])}, true
}

// SnapshotStreamStats are what INFO and GroupStats report about
// snapshots streamed to and from this replica.
type SnapshotStreamStats struct {
	// Sender (leader) side.
	StreamsStarted, StreamsAborted uint64
	ChunksSent, ChunksRetried      uint64 // retried: sent again after a go-back
	BytesSent                      uint64
	Streaming                      int // followers being streamed to now
	// Receiver (follower) side.
	ChunksReceived, BytesReceived uint64
	// ChunksRefused counts chunks and stream messages refused and never
	// applied: malformed or corrupt, out of order or repeated, stale.
	ChunksRefused uint64
	// VerifyFailures counts whole files that failed verification and
	// were received again from their sound prefix.
	VerifyFailures uint64
}

type outState uint8

const (
	outWaiting    outState = iota // backing off after an abandoned stream
	outProbing                    // asked the follower which offset it holds
	outSending                    // streaming chunks
	outInstalling                 // the follower holds the whole file; MsgSnap sent
)

// snapOut is a stream from this leader to one follower.
type snapOut struct {
	to    uint64
	id    streamID
	msg   pb.Message // Raft's MsgSnap, sent once the follower holds the file
	f     disk.File
	state outState
	// startTick: when a waiting stream starts.
	startTick uint64
	// acked is what the follower confirmed holding; next is the offset of
	// the next chunk to send; sentMax the furthest ever sent (a chunk
	// below it is a resend).
	acked, next, sentMax uint64
	epoch                uint32
	idle, retries        int
}

// snapIn is the stream this follower is receiving (at most one).
type snapIn struct {
	from        uint64
	id          streamID
	name        string
	f           disk.File // nil once complete
	held        uint64
	complete    bool
	epoch       uint32 // of the last chunk taken
	verifyFails int
}

// snapStreams is a replica's streaming state (group.go's groupState holds
// it).
type snapStreams struct {
	out     []*snapOut // sorted by follower id
	seq     uint64
	tokens  int64
	ticks   uint64
	rr      int
	backoff []snapBackoff
	in      *snapIn
	stats   SnapshotStreamStats
}

type snapBackoff struct{ to, until uint64 }

// messageBytesMax is the bound on every message handed to Options.Send.
func (r *Replica) messageBytesMax() int {
	if r.opts.MessageBytesMax > 0 {
		return r.opts.MessageBytesMax
	}
	return MessageBytesMaxDefault
}

// appendBytesMax is Raft's MaxSizePerMsg: the entries of one append stay
// within a quarter of the message bound. Raft always sends at least one
// entry, which replicatedCommandBytesMax and entryBytesMax keep within half.
func (r *Replica) appendBytesMax() uint64 {
	return uint64(min(msgBytesMax, r.messageBytesMax()/4))
}

// entryBytesMax is where a replicated batch's writes are cut into another
// entry.
func (r *Replica) entryBytesMax() int { return min(entryBytesTarget, r.messageBytesMax()/4) }

// replicatedCommandBytesMax bounds one write of a replicated group: its
// entry must reach the followers in one message. (A larger one would be
// logged by the leader and then never replicated, stalling the group.)
func (r *Replica) replicatedCommandBytesMax() int {
	return min(commandBytesMax, r.messageBytesMax()/2)
}

func (r *Replica) snapChunkBytes() uint64 {
	return uint64(min(snapChunkBytesMax, r.messageBytesMax()-snapMsgHeaderBytes))
}

func (r *Replica) snapBudget() int64 {
	if r.opts.SnapshotSendBytesPerTick != 0 {
		return r.opts.SnapshotSendBytesPerTick
	}
	return SnapshotSendBytesPerTickDefault
}

func (r *Replica) sendSnapMsg(m *snapMsg) {
	m.from = r.ID()
	buf := encodeSnapMsg(make([]byte, snapMsgHeaderBytes+len(m.data)), m)
	if r.opts.Send != nil {
		r.opts.Send(m.to, buf)
	}
}

// --- Sender (leader) ---

// startStream takes over a MsgSnap Raft emitted for m.To.
func (r *Replica) startStream(m pb.Message) {
	ss := &r.g.snap
	r.dropStream(m.To)
	ss.seq++
	s := &snapOut{to: m.To, msg: m, id: streamID{term: m.Term, seq: ss.seq, index: m.Snapshot.Metadata.Index}}
	ss.stats.StreamsStarted++
	r.insertStream(s)
	for _, b := range ss.backoff {
		if b.to == m.To && b.until > ss.ticks {
			s.state, s.startTick = outWaiting, b.until
			return
		}
	}
	r.openStream(s)
}

func (r *Replica) insertStream(s *snapOut) {
	ss := &r.g.snap
	i := 0
	for i < len(ss.out) && ss.out[i].to < s.to {
		i++
	}
	ss.out = append(ss.out, nil)
	copy(ss.out[i+1:], ss.out[i:])
	ss.out[i] = s
}

// openStream opens the snapshot file and probes the follower.
func (r *Replica) openStream(s *snapOut) {
	name := path.Join(disk.SnapshotDir(r.opts.Dir), disk.SnapshotName(s.id.index))
	f, err := r.opts.FS.Open(name)
	if err == nil {
		var size int64
		if size, err = f.Size(); err == nil {
			s.id.size = r.opts.Knobs.streamedSize(size)
			s.id.fp, err = disk.SnapshotFingerprint(f, size)
		}
		if err != nil {
			_ = f.Close()
		}
	}
	if err != nil {
		r.endStream(s, raft.SnapshotFailure, true)
		return
	}
	s.f = f
	r.probe(s)
}

func (r *Replica) probe(s *snapOut) {
	s.state, s.idle, s.epoch = outProbing, 0, s.epoch+1
	r.sendSnapMsg(&snapMsg{kind: peerKindSnapChunk, to: s.to, id: s.id, epoch: s.epoch, offset: s.acked, flag: chunkProbe})
}

func (r *Replica) sendInstall(s *snapOut) {
	s.state, s.idle = outInstalling, 0
	m := s.msg
	snap := *m.Snapshot
	snap.Data = encodeSnapDescriptor(s.id)
	m.Snapshot = &snap
	buf, err := encodeRaftMsg(&m)
	if err != nil {
		r.endStream(s, raft.SnapshotFailure, true)
		return
	}
	if r.opts.Send != nil {
		r.opts.Send(m.To, buf)
	}
}

// endStream removes s and tells Raft how it ended; backoff delays the
// next stream to the same follower.
func (r *Replica) endStream(s *snapOut, status raft.SnapshotStatus, backoff bool) {
	ss := &r.g.snap
	r.dropStream(s.to)
	if status == raft.SnapshotFinish {
		r.g.snapSent++
	} else {
		ss.stats.StreamsAborted++
	}
	if backoff {
		until := ss.ticks + snapRetryBackoffTicks
		found := false
		for i := range ss.backoff {
			if ss.backoff[i].to == s.to {
				ss.backoff[i].until, found = until, true
			}
		}
		if !found {
			ss.backoff = append(ss.backoff, snapBackoff{to: s.to, until: until})
		}
	}
	r.rn.ReportSnapshot(s.to, status)
}

// dropStream forgets the stream to follower to, telling Raft nothing.
func (r *Replica) dropStream(to uint64) {
	ss := &r.g.snap
	for i, s := range ss.out {
		if s.to == to {
			if s.f != nil {
				_ = s.f.Close()
			}
			ss.out = append(ss.out[:i], ss.out[i+1:]...)
			return
		}
	}
}

// dropStreams forgets every outgoing stream: leadership was lost (Raft
// resets every follower's progress when it is regained) or the replica
// closes.
func (r *Replica) dropStreams() {
	for len(r.g.snap.out) > 0 {
		r.dropStream(r.g.snap.out[0].to)
	}
	r.g.snap.backoff = nil
}

func (r *Replica) outStream(to uint64) *snapOut {
	for _, s := range r.g.snap.out {
		if s.to == to {
			return s
		}
	}
	return nil
}

// pumpStream sends s's next chunks while its window and the tick's budget
// allow. Each chunk is read from the file now, into the message itself.
func (r *Replica) pumpStream(s *snapOut) {
	ss := &r.g.snap
	chunk := r.snapChunkBytes()
	window := snapWindowChunks * chunk
	unthrottled := r.snapBudget() < 0
	for s.state == outSending && s.next < s.id.size && s.next-s.acked < window && (unthrottled || ss.tokens > 0) {
		n := min(chunk, s.id.size-s.next)
		buf := make([]byte, snapMsgHeaderBytes+n)
		data := buf[snapMsgHeaderBytes:]
		if k, _ := s.f.ReadAt(data, int64(s.next)); k < len(data) {
			// A read that fails (or a file that shrank): abandon the
			// stream; Raft asks again after the backoff.
			r.endStream(s, raft.SnapshotFailure, true)
			return
		}
		m := snapMsg{kind: peerKindSnapChunk, from: r.ID(), to: s.to, id: s.id, epoch: s.epoch, offset: s.next, data: data}
		encodeSnapMsg(buf, &m)
		if s.next < s.sentMax {
			ss.stats.ChunksRetried++
		}
		s.next += n
		s.sentMax = max(s.sentMax, s.next)
		ss.stats.ChunksSent++
		ss.stats.BytesSent += n
		ss.tokens -= int64(n)
		if r.opts.Send != nil {
			r.opts.Send(s.to, buf)
		}
	}
}

// onSnapAck is a follower's answer to a stream.
func (r *Replica) onSnapAck(a *snapMsg) {
	ss := &r.g.snap
	s := r.outStream(a.from)
	if s == nil || s.id != a.id || a.to != r.ID() || s.state == outWaiting {
		ss.stats.ChunksRefused++
		return
	}
	switch a.flag {
	case ackHeld, ackRefused:
		if s.state == outInstalling {
			break // late: the follower already said it holds the whole file
		}
		progress := a.offset > s.acked
		if a.epoch == s.epoch && (a.flag == ackRefused || s.state == outProbing) {
			// The follower says where it is, for the chunks of this
			// epoch: go on from there (back, or forward past what it
			// already held).
			s.acked, s.next, s.state, s.idle = a.offset, a.offset, outSending, 0
			if a.flag == ackRefused {
				s.epoch++
			}
		} else if progress && s.state == outSending {
			s.acked = a.offset
			s.next = max(s.next, s.acked)
		}
		if progress {
			s.idle, s.retries = 0, 0
		}
	case ackComplete:
		if s.state != outInstalling {
			s.acked, s.next, s.retries = s.id.size, s.id.size, 0
			r.sendInstall(s)
		}
	case ackInstalled:
		r.endStream(s, raft.SnapshotFinish, false)
		return
	case ackMissing:
		if s.state == outInstalling {
			r.probe(s)
		}
	case ackAbort:
		r.endStream(s, raft.SnapshotFailure, true)
		return
	}
	r.pumpStream(s)
}

// tickStreams runs once per Tick on a leader: budget, timeouts, streams
// Raft no longer needs or that a newer snapshot replaced.
func (r *Replica) tickStreams() {
	ss := &r.g.snap
	ss.ticks++
	n := 0
	for _, b := range ss.backoff {
		if b.until > ss.ticks {
			ss.backoff[n] = b
			n++
		}
	}
	ss.backoff = ss.backoff[:n]
	if len(ss.out) == 0 {
		ss.tokens = 0
		return
	}
	budget := r.snapBudget()
	ss.tokens = min(ss.tokens+budget, budget)
	var needed []uint64
	r.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if pr.State == tracker.StateSnapshot {
			needed = append(needed, id)
		}
	})
	for _, s := range append([]*snapOut(nil), ss.out...) {
		wanted := false
		for _, id := range needed {
			wanted = wanted || id == s.to
		}
		switch {
		case !wanted:
			// Raft caught the follower up another way (or dropped
			// it): nothing to report.
			if s.state == outInstalling {
				r.g.snapSent++
			}
			r.dropStream(s.to)
			continue
		case s.id.index < r.store.snapIndex && s.acked == 0 && s.state != outInstalling:
			// Nothing delivered yet, and the follower would need the
			// newer one next anyway: Raft sends it once told this one
			// failed. (One under way goes on: see the top of the file.)
			r.endStream(s, raft.SnapshotFailure, false)
			continue
		}
		switch s.state {
		case outWaiting:
			if ss.ticks >= s.startTick {
				r.openStream(s)
			}
			continue
		case outSending:
			if s.next == s.acked && s.acked < s.id.size {
				continue // nothing in flight: waiting for budget
			}
		}
		s.idle++
		if s.idle < snapAckTimeoutTicks {
			continue
		}
		s.idle = 0
		s.retries++
		if s.retries > snapRetriesMax {
			r.endStream(s, raft.SnapshotFailure, true)
			continue
		}
		switch {
		case s.state == outInstalling:
			r.sendInstall(s)
		case s.state == outProbing || s.acked == s.id.size:
			r.probe(s)
		default: // go back to what the follower confirmed
			s.next = s.acked
			s.epoch++
		}
	}
	for i := range ss.out {
		if len(ss.out) == 0 {
			break
		}
		r.pumpStream(ss.out[(ss.rr+i)%len(ss.out)])
	}
	ss.rr++
}

// --- Receiver (follower) ---

// have reports whether this replica already holds index: applied, or
// committed in its own log (Raft would ignore a snapshot at or below its
// commit index).
func (r *Replica) have(index uint64) bool {
	return index <= r.applied || index <= r.rn.BasicStatus().Commit
}

func (r *Replica) ackStream(to uint64, id streamID, epoch uint32, offset uint64, status uint8) {
	r.sendSnapMsg(&snapMsg{kind: peerKindSnapAck, to: to, id: id, epoch: epoch, offset: offset, flag: status})
}

// onSnapChunk takes a chunk (or probe) of a stream.
func (r *Replica) onSnapChunk(c *snapMsg) error {
	ss := &r.g.snap
	if c.to != r.ID() {
		ss.stats.ChunksRefused++
		return errors.Newf("cluster: snapshot chunk for node %d reached node %d", c.to, r.ID())
	}
	if c.id.term < r.rn.BasicStatus().Term || r.g.raftState == raft.StateLeader {
		ss.stats.ChunksRefused++ // a deposed leader's
		return nil
	}
	if r.have(c.id.index) {
		r.ackStream(c.from, c.id, c.epoch, c.id.size, ackInstalled)
		return nil
	}
	// The leader streams a snapshot this follower lacks: it is behind,
	// whatever the heartbeats say (fresh).
	r.g.snapBehind = max(r.g.snapBehind, c.id.index)
	in := ss.in
	if in == nil || in.id != c.id || in.from != c.from {
		if in != nil && !c.id.newer(in.id) {
			ss.stats.ChunksRefused++ // an older stream's, still in flight
			return nil
		}
		if !r.adoptStream(c) {
			r.ackStream(c.from, c.id, c.epoch, 0, ackAbort)
			return nil
		}
		in = ss.in
	}
	switch {
	case c.flag&chunkProbe != 0 || in.complete:
		if c.flag&chunkProbe == 0 {
			ss.stats.ChunksRefused++
		}
		status := uint8(ackHeld)
		if in.complete {
			status = ackComplete
		}
		r.ackStream(c.from, c.id, c.epoch, in.held, status)
	case c.offset != in.held:
		// Out of order: a gap (lost chunk) or a repeat. Say where this
		// file stands; for a gap, the leader goes back to it.
		ss.stats.ChunksRefused++
		status := uint8(ackRefused)
		if c.offset < in.held {
			status = ackHeld
		}
		r.ackStream(c.from, c.id, c.epoch, in.held, status)
	default:
		if _, err := in.f.Write(c.data); err != nil {
			r.abortIn()
			r.ackStream(c.from, c.id, c.epoch, 0, ackAbort)
			return nil
		}
		in.held += uint64(len(c.data))
		in.epoch = max(in.epoch, c.epoch)
		ss.stats.ChunksReceived++
		ss.stats.BytesReceived += uint64(len(c.data))
		if in.held == in.id.size {
			r.completeIn(c.epoch)
			return nil
		}
		r.ackStream(c.from, c.id, c.epoch, in.held, ackHeld)
	}
	return nil
}

// adoptStream makes c's stream the one this follower receives: the same
// file as before keeps what it holds (a new stream of it after a leader's
// restart or an abandoned stream); a partial file left by a restart of
// this node is kept up to its sound prefix; anything else starts empty.
func (r *Replica) adoptStream(c *snapMsg) bool {
	ss := &r.g.snap
	if in := ss.in; in != nil && in.id.sameFile(c.id) {
		in.from, in.id = c.from, c.id
		return true
	}
	r.closeIn()
	fs := r.opts.FS
	dir := disk.SnapshotDir(r.opts.Dir)
	if err := fs.MkdirAll(dir); err != nil {
		return false
	}
	base := disk.ReceivingSnapshotName(c.id.index, c.id.fp)
	r.removeReceiving(base)
	in := &snapIn{from: c.from, id: c.id, name: path.Join(dir, base)}
	var f disk.File
	if _, err := fs.Stat(in.name); err == nil {
		valid, meta, serr := disk.ScanSnapshot(fs, in.name)
		if valid > 0 && meta.Index != c.id.index && meta.Index != 0 || uint64(valid) > c.id.size {
			valid = 0
		}
		if serr == nil && uint64(valid) == c.id.size {
			in.held, in.complete = c.id.size, true
			ss.in = in
			return true
		}
		if f, err = fs.OpenAppend(in.name); err == nil {
			if err = f.Truncate(valid); err != nil {
				_ = f.Close()
			}
		}
		if err != nil {
			_ = fs.Remove(in.name)
			return false
		}
		in.held = uint64(valid)
	} else {
		if err := r.opts.Knobs.clearSnapshotsFirst(fs, r.opts.Dir); err != nil {
			return false
		}
		var err error
		if f, err = fs.Create(in.name); err != nil {
			return false
		}
	}
	in.f = f
	ss.in = in
	return true
}

// completeIn syncs and verifies a file that arrived whole. One that fails
// keeps its sound prefix and is received again from there.
func (r *Replica) completeIn(epoch uint32) {
	ss := &r.g.snap
	in := ss.in
	err := in.f.Sync()
	if cerr := in.f.Close(); err == nil {
		err = cerr
	}
	in.f = nil
	if err != nil {
		// Never sync the same dirty pages twice (fsyncgate): start over.
		r.abortIn()
		r.ackStream(in.from, in.id, epoch, 0, ackAbort)
		return
	}
	valid, meta, err := disk.ScanSnapshot(r.opts.FS, in.name)
	if err != nil {
		// A read can return flipped bits that are not on the disk.
		valid, meta, err = disk.ScanSnapshot(r.opts.FS, in.name)
	}
	if err == nil && meta.Index == in.id.index && uint64(valid) == in.id.size {
		in.complete = true
		r.ackStream(in.from, in.id, epoch, in.held, ackComplete)
		return
	}
	ss.stats.VerifyFailures++
	in.verifyFails++
	if meta.Index != in.id.index {
		valid = 0
	}
	var f disk.File
	if in.verifyFails <= snapVerifyFailuresMax {
		if f, err = r.opts.FS.OpenAppend(in.name); err == nil {
			if err = f.Truncate(valid); err != nil {
				_ = f.Close()
			}
		}
	}
	if in.verifyFails > snapVerifyFailuresMax || err != nil {
		r.abortIn()
		r.ackStream(in.from, in.id, epoch, 0, ackAbort)
		return
	}
	in.f, in.held = f, uint64(valid)
	r.ackStream(in.from, in.id, epoch, in.held, ackRefused)
}

// closeIn closes the stream being received, keeping its file.
func (r *Replica) closeIn() {
	if in := r.g.snap.in; in != nil && in.f != nil {
		_ = in.f.Close()
		in.f = nil
	}
	r.g.snap.in = nil
}

// abortIn drops the stream being received and its file.
func (r *Replica) abortIn() {
	if in := r.g.snap.in; in != nil {
		r.closeIn()
		_ = r.opts.FS.Remove(in.name)
	}
}

// removeReceiving deletes every partial snapshot but keep (a base name):
// this follower receives one stream at a time.
func (r *Replica) removeReceiving(keep string) {
	dir := disk.SnapshotDir(r.opts.Dir)
	names, err := r.opts.FS.List(dir)
	if err != nil {
		return
	}
	for _, n := range names {
		if _, _, ok := disk.ParseReceivingSnapshotName(n); ok && n != keep {
			_ = r.opts.FS.Remove(path.Join(dir, n))
		}
	}
}

// removeStaleReceiving deletes partial snapshots this replica no longer
// needs (at or below what it has applied), at Open.
func (r *Replica) removeStaleReceiving() {
	dir := disk.SnapshotDir(r.opts.Dir)
	names, err := r.opts.FS.List(dir)
	if err != nil {
		return
	}
	for _, n := range names {
		if idx, _, ok := disk.ParseReceivingSnapshotName(n); ok && idx <= r.applied {
			_ = r.opts.FS.Remove(path.Join(dir, n))
		}
	}
}

// tickReceiving drops a stream this follower no longer needs.
func (r *Replica) tickReceiving() {
	if in := r.g.snap.in; in != nil && r.have(in.id.index) {
		r.abortIn()
	}
}

// admitSnap decides whether a MsgSnap may reach Raft: only when this
// follower holds the whole streamed file it names (or is past its index,
// and Raft will ignore it). Otherwise the leader is told to stream again.
func (r *Replica) admitSnap(m *pb.Message) (bool, error) {
	ss := &r.g.snap
	if m.Snapshot == nil {
		return false, errors.New("cluster: MsgSnap without a snapshot")
	}
	id, ok := decodeSnapDescriptor(m.Snapshot)
	if !ok {
		ss.stats.ChunksRefused++
		return false, errors.Newf("cluster: MsgSnap at index %d does not name a streamed snapshot (%d bytes of data)", m.Snapshot.Metadata.Index, len(m.Snapshot.Data))
	}
	if r.have(id.index) {
		r.ackStream(m.From, id, 0, id.size, ackInstalled)
		return true, nil
	}
	if in := ss.in; in != nil && in.complete && in.id.sameFile(id) {
		return true, nil
	}
	ss.stats.ChunksRefused++
	r.ackStream(m.From, id, 0, 0, ackMissing)
	return false, nil
}

// receivedSnapshot is the whole, verified file a MsgSnap names, for
// installSnapshot.
func (r *Replica) receivedSnapshot(s pb.Snapshot) (*snapIn, error) {
	id, ok := decodeSnapDescriptor(&s)
	in := r.g.snap.in
	if !ok || in == nil || !in.complete || !in.id.sameFile(id) {
		return nil, errors.AssertionFailedf("cluster: raft installs snapshot %d, which this follower does not hold whole", s.Metadata.Index)
	}
	return in, nil
}

// snapInstalled tells the leader the snapshot was installed.
func (r *Replica) snapInstalled(in *snapIn) {
	r.g.snap.in = nil
	r.ackStream(in.from, in.id, in.epoch, in.id.size, ackInstalled)
}

// SnapshotStreams reports the snapshot streams' counters.
func (r *Replica) SnapshotStreams() SnapshotStreamStats {
	s := r.g.snap.stats
	s.Streaming = len(r.g.snap.out)
	return s
}

// stepSnap handles a chunk or an ack. A malformed or corrupt message is an
// error and is applied nowhere; a corrupt chunk of the stream being
// received is asked for again.
func (r *Replica) stepSnap(data []byte, sender uint64) error {
	m, err := decodeSnapMsg(data)
	if err == nil && sender != 0 && m.from != sender {
		err = errors.Newf("a snapshot stream message from node %d claims to come from node %d", sender, m.from)
	}
	if err != nil {
		r.g.snap.stats.ChunksRefused++
		if in := r.g.snap.in; in != nil && data[0] == peerKindSnapChunk && errors.Is(err, errSnapChecksum) && r.fatal == nil {
			r.ackStream(in.from, in.id, in.epoch, in.held, ackRefused)
		}
		return errors.Wrap(err, "cluster: malformed snapshot stream message")
	}
	if r.fatal != nil {
		return nil
	}
	if m.kind == peerKindSnapAck {
		if r.g.raftState == raft.StateLeader {
			r.onSnapAck(&m)
		}
		return nil
	}
	return r.onSnapChunk(&m)
}
