package disk

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// The write-ahead log is a sequence of segment files wal/<seq>.log, seq a
// 16-digit hex number counting up from 1. Each segment is a run of
// records; a record is
//
//	offset size field
//	0      4    bodyLen   little-endian, bytes after the 8-byte prefix
//	4      4    crc       CRC32C (Castagnoli) of bytes [0,4) and [8,8+bodyLen)
//	8      1    type      RecEntry, RecHardState, RecSnapshot
//	9      8    index     Raft index (entries, snapshot markers)
//	17     8    term      Raft term
//	25     8    synced    how many bytes of this segment were known durable
//	                      (fsynced) when this record was written
//	33     ...  payload   bodyLen-25 bytes
//
// The synced field is what lets recovery tell a torn tail from rot in the
// middle: bytes below a later valid record's synced offset had been fsynced,
// so a crash cannot have torn them. See ScanWAL for the exact rule.

// RecordType says what a WAL record carries.
type RecordType uint8

const (
	// RecEntry is a Raft log entry; the payload is chosen by the caller
	// (cluster encodes the entry type and data).
	RecEntry RecordType = 1
	// RecHardState is Raft's HardState (term, vote, commit) in the payload.
	RecHardState RecordType = 2
	// RecSnapshot marks that a snapshot at Index/Term was made durable.
	RecSnapshot RecordType = 3
)

const (
	recordPrefixBytes = 8
	recordFixedBytes  = 25 // type, index, term, synced
	// RecordHeaderBytes is the framing overhead of one record.
	RecordHeaderBytes = recordPrefixBytes + recordFixedBytes
	// RecordPayloadBytesMax bounds one record, so a corrupt length can
	// never make recovery allocate without limit and a single command can
	// never wedge the log.
	RecordPayloadBytesMax = 256 << 20
	// SegmentBytesDefault is when the WAL moves on to a new segment.
	SegmentBytesDefault = 64 << 20
	walDirName          = "wal"
	segmentSuffix       = ".log"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Record is one WAL record.
type Record struct {
	Type    RecordType
	Index   uint64
	Term    uint64
	Payload []byte
}

// SegmentName is the file name of segment seq.
func SegmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentSuffix) }

func parseSegmentName(name string) (uint64, bool) {
	if len(name) != 16+len(segmentSuffix) || !strings.HasSuffix(name, segmentSuffix) {
		return 0, false
	}
	seq, err := strconv.ParseUint(name[:16], 16, 64)
	return seq, err == nil && seq > 0
}

// appendRecord encodes r at the end of buf.
func appendRecord(buf []byte, r Record, synced int64) []byte {
	start := len(buf)
	bodyLen := recordFixedBytes + len(r.Payload)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(bodyLen))
	buf = append(buf, 0, 0, 0, 0) // crc, filled below
	buf = append(buf, byte(r.Type))
	buf = binary.LittleEndian.AppendUint64(buf, r.Index)
	buf = binary.LittleEndian.AppendUint64(buf, r.Term)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(synced))
	buf = append(buf, r.Payload...)
	crc := crc32.Update(0, crcTable, buf[start:start+4])
	crc = crc32.Update(crc, crcTable, buf[start+8:])
	binary.LittleEndian.PutUint32(buf[start+4:], crc)
	return buf
}

// parseRecord decodes the record at b[off:]. ok is false when the bytes
// there are not a complete record with a matching checksum.
func parseRecord(b []byte, off int64) (r Record, synced int64, next int64, ok bool) {
	return parseRecordCRC(b, off, true)
}

// parseRecordCRC is parseRecord; checkCRC false skips the checksum, for a
// record validPrefix has already checked (recovery read every segment
// twice through CRC32C otherwise: a tenth of replay time).
func parseRecordCRC(b []byte, off int64, checkCRC bool) (r Record, synced int64, next int64, ok bool) {
	rest := b[off:]
	if len(rest) < RecordHeaderBytes {
		return Record{}, 0, 0, false
	}
	bodyLen := int64(binary.LittleEndian.Uint32(rest))
	if bodyLen < recordFixedBytes || bodyLen > recordFixedBytes+RecordPayloadBytesMax ||
		recordPrefixBytes+bodyLen > int64(len(rest)) {
		return Record{}, 0, 0, false
	}
	body := rest[recordPrefixBytes : recordPrefixBytes+bodyLen]
	if checkCRC {
		crc := crc32.Update(0, crcTable, rest[:4])
		crc = crc32.Update(crc, crcTable, body)
		if crc != binary.LittleEndian.Uint32(rest[4:]) {
			return Record{}, 0, 0, false
		}
	}
	r = Record{
		Type:    RecordType(body[0]),
		Index:   binary.LittleEndian.Uint64(body[1:]),
		Term:    binary.LittleEndian.Uint64(body[9:]),
		Payload: body[recordFixedBytes:],
	}
	synced = int64(binary.LittleEndian.Uint64(body[17:]))
	return r, synced, off + recordPrefixBytes + bodyLen, true
}

// ErrCorrupt marks a log or snapshot that is damaged in a way a crash
// cannot explain; keel refuses to start on it rather than guess.
var ErrCorrupt = errors.New("corrupt data")

// WALOptions configure a WAL.
type WALOptions struct {
	FS FS
	// Dir is the data directory; segments live in Dir/wal.
	Dir string
	// SegmentBytes is the size past which a new segment is started
	// (SegmentBytesDefault when zero).
	SegmentBytes int64
	// RefuseTornTail makes recovery refuse a torn tail instead of cutting
	// it (Redis's aof-load-truncated no): OpenWAL returns a
	// *TornTailError, marked ErrTornTail, naming what would be cut, and
	// has changed nothing on disk.
	RefuseTornTail bool
	// Planted plants a deliberate recovery bug for tests (nil in
	// production: the correct program).
	Planted *WALPlanted
}

// ErrTornTail marks OpenWAL's refusal of a torn tail under
// WALOptions.RefuseTornTail.
var ErrTornTail = errors.New("torn log tail")

// TornTailError is that refusal: the tail recovery would have cut.
type TornTailError struct {
	Segment string // path of the log's last segment
	At      int64  // offset of the first bad record: the segment's length after the cut
	Bytes   int64  // bytes from At to the end of the segment
}

func (e *TornTailError) Error() string {
	return fmt.Sprintf("wal: torn tail: file %s at offset %d, %d bytes would be cut", e.Segment, e.At, e.Bytes)
}

// WALPlanted are deliberate bugs, switched on only by tests that prove the
// simulator catches them (cluster.TestingKnobs passes them down).
type WALPlanted struct {
	// TornTailAnywhere: recovery trusts its first read of the active
	// segment and calls any bad record in it a torn tail, truncating
	// there, without the re-read and the sync-mark check of rule 4 (as if
	// only the active segment's tail could ever be damaged). A transient
	// read flip then destroys the fsynced, acknowledged records after the
	// flipped one.
	TornTailAnywhere bool
	// TornTailResync: recovery steps over a bad record in the last segment
	// to the next valid record after it and reads on from there (the
	// resynchronisation of log formats that can find their next record),
	// as if a torn sector in the middle of a tail were a hole to skip. A
	// power loss that kept a later sector of the unsynced tail and lost an
	// earlier one then brings back records whose predecessors are gone:
	// the log skips an index, and the node refuses to start.
	TornTailResync bool
}

func (p *WALPlanted) tornTailAnywhere() bool { return p != nil && p.TornTailAnywhere }

func (p *WALPlanted) tornTailResync() bool { return p != nil && p.TornTailResync }

// resyncAfter is the offset of the first valid record after the bad one
// at off in b (TornTailResync), or -1.
func resyncAfter(b []byte, off int64) int64 {
	for o := off + 1; o+RecordHeaderBytes <= int64(len(b)); o++ {
		if _, _, _, ok := parseRecord(b, o); ok {
			return o
		}
	}
	return -1
}

type segmentInfo struct {
	seq       uint64
	lastIndex uint64 // highest RecEntry index in the segment, 0 if none
}

// WAL appends records to the active segment. It is not safe for concurrent
// use. After any error other than a cleanly handled ErrNoSpace it is Broken
// and refuses further writes: the owner must reopen from disk.
type WAL struct {
	opts    WALOptions
	dir     string
	segs    []segmentInfo // oldest first; the last is active
	f       File
	size    int64 // bytes of the active segment known written (good offset)
	synced  int64 // bytes of the active segment known durable
	buf     []byte
	broken  error
	written int64 // bytes appended since open, for statistics
	// syncing is the background fsync handed out by StartSync and not yet
	// reported to SyncDone, or nil.
	syncing *SyncJob
}

// ScanResult tells what recovery found.
type ScanResult struct {
	Records int
	// TruncatedAt, when TruncatedBytes > 0, names where a torn tail was cut.
	TruncatedSegment string
	TruncatedAt      int64
	TruncatedBytes   int64
	// StaleSegments were left by an interrupted compaction and removed.
	StaleSegments []string
}

// walBufBytesKept bounds the encode buffer kept between appends.
const walBufBytesKept = 4 << 20

// OpenWAL recovers the log in opts.Dir/wal and opens it for appending.
// visit sees every valid record in log order; it may keep Payload (each
// segment is read into its own buffer, never reused).
//
// The recovery rule, exactly:
//  1. Segments are read in sequence order. If the sequence has a gap, the
//     segments before it are leftovers of an interrupted compaction and are
//     deleted (the caller checks that the log still continues its snapshot).
//  2. Within a segment, records are parsed one after another. A record is
//     bad when fewer than its header's bytes remain, its length is out of
//     bounds or runs past the end of the file, or its CRC32C does not match.
//  3. A bad record in any segment but the last is corruption: segments are
//     fsynced in full before the next one is created, so no crash can leave
//     one torn.
//  4. A bad record at offset off in the last segment is a torn tail, and the
//     segment is truncated to off (and fsynced), unless some later offset in
//     the segment holds a valid record whose synced field is greater than
//     off: that record proves the bytes at off had been fsynced before it
//     was written, so they were damaged after being made durable
//     (corruption in the middle), and recovery refuses to start with an
//     error naming the file and offset.
//  5. A valid record of an unknown type is refused (written by a newer
//     version).
//
// Under opts.RefuseTornTail the torn tail of rule 4 is refused instead of
// cut. Every change OpenWAL makes to a log on disk (cutting a torn tail,
// removing the stale segments of rule 1) comes after the whole log has
// been read and judged, so a refusal changes nothing.
func OpenWAL(opts WALOptions, visit func(Record) error) (*WAL, ScanResult, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = SegmentBytesDefault
	}
	w := &WAL{opts: opts, dir: path.Join(opts.Dir, walDirName)}
	var res ScanResult
	if err := opts.FS.MkdirAll(w.dir); err != nil {
		return nil, res, errors.Wrap(err, "wal")
	}
	names, err := opts.FS.List(w.dir)
	if err != nil {
		return nil, res, errors.Wrap(err, "wal")
	}
	var seqs []uint64
	for _, n := range names {
		if seq, ok := parseSegmentName(n); ok {
			seqs = append(seqs, seq)
		}
	}
	// Only the last contiguous run of segments is the log. Older segments
	// cut off by a gap are compaction's leftovers whose removal was not yet
	// durable when the node crashed (compaction removes oldest first); the
	// caller's continuity check against the snapshot catches a real loss.
	// They are removed once the log has been read without a refusal.
	var stale []uint64
	for i := len(seqs) - 1; i > 0; i-- {
		if seqs[i] != seqs[i-1]+1 {
			stale, seqs = seqs[:i], seqs[i:]
			break
		}
	}
	for i, seq := range seqs {
		last := i == len(seqs)-1
		info, size, err := w.scanSegment(seq, last, visit, &res)
		if err != nil {
			return nil, res, err
		}
		w.segs = append(w.segs, info)
		if last {
			w.size, w.synced = size, size
		}
	}
	if len(stale) > 0 {
		for _, seq := range stale {
			if err := opts.FS.Remove(w.segPath(seq)); err != nil && !errors.Is(err, ErrNotExist) {
				return nil, res, errors.Wrap(err, "wal: remove stale segment")
			}
			res.StaleSegments = append(res.StaleSegments, SegmentName(seq))
		}
		if err := opts.FS.SyncDir(w.dir); err != nil {
			return nil, res, errors.Wrap(err, "wal: sync dir")
		}
	}
	if len(w.segs) == 0 {
		if err := w.createSegment(1); err != nil {
			return nil, res, err
		}
		if err := opts.FS.SyncDir(opts.Dir); err != nil {
			return nil, res, errors.Wrap(err, "wal: sync data dir")
		}
		return w, res, nil
	}
	active := w.segs[len(w.segs)-1]
	f, err := opts.FS.OpenAppend(w.segPath(active.seq))
	if err != nil {
		return nil, res, errors.Wrap(err, "wal: open active segment")
	}
	w.f = f
	return w, res, nil
}

func (w *WAL) segPath(seq uint64) string { return path.Join(w.dir, SegmentName(seq)) }

// validPrefix is the length of the run of valid records at the start of b.
func validPrefix(b []byte) int64 {
	var off int64
	for off < int64(len(b)) {
		_, _, next, ok := parseRecord(b, off)
		if !ok {
			break
		}
		off = next
	}
	return off
}

func (w *WAL) scanSegment(seq uint64, last bool, visit func(Record) error, res *ScanResult) (segmentInfo, int64, error) {
	info := segmentInfo{seq: seq}
	name := w.segPath(seq)
	b, err := ReadFile(w.opts.FS, name)
	if err != nil {
		return info, 0, errors.Wrap(err, "wal: read segment")
	}
	valid := validPrefix(b)
	if valid < int64(len(b)) && !(last && w.opts.Planted.tornTailAnywhere()) {
		// A read can return flipped bits that are not on the platter;
		// read once more before calling anything damaged.
		b2, err := ReadFile(w.opts.FS, name)
		if err != nil {
			return info, 0, errors.Wrap(err, "wal: read segment")
		}
		if v2 := validPrefix(b2); v2 > valid {
			b, valid = b2, v2
		}
	}
	var off int64
	for off < int64(len(b)) {
		// Records starting below valid are on the chain validPrefix
		// walked from offset 0, so their checksums have been verified.
		r, _, next, ok := parseRecordCRC(b, off, off >= valid)
		if !ok && last && w.opts.Planted.tornTailResync() {
			if o := resyncAfter(b, off); o > 0 {
				off = o
				continue
			}
		}
		if !ok {
			break
		}
		switch r.Type {
		case RecEntry, RecHardState, RecSnapshot:
		default:
			return info, 0, errors.Mark(errors.Newf("wal: %s offset %d: record of unknown type %d (written by a newer keel?): refusing to start",
				name, off, r.Type), ErrCorrupt)
		}
		if r.Type == RecEntry && r.Index > info.lastIndex {
			info.lastIndex = r.Index
		}
		if err := visit(r); err != nil {
			return info, 0, errors.Wrapf(err, "wal: %s offset %d", name, off)
		}
		res.Records++
		off = next
	}
	if off == int64(len(b)) {
		return info, off, nil
	}
	if !last {
		return info, 0, errors.Mark(errors.Newf("wal: corrupt record in %s at offset %d (segment %d of a longer log, fully synced before the next began): refusing to start",
			name, off, seq), ErrCorrupt)
	}
	for o := off + 1; o+RecordHeaderBytes <= int64(len(b)) && !w.opts.Planted.tornTailAnywhere(); o++ {
		if _, synced, _, ok := parseRecord(b, o); ok && synced > off {
			return info, 0, errors.Mark(errors.Newf("wal: corrupt record in %s at offset %d, followed by a valid record at offset %d whose sync mark (%d) proves offset %d had been fsynced: corruption in the middle of the log, refusing to start",
				name, off, o, synced, off), ErrCorrupt)
		}
	}
	if w.opts.RefuseTornTail {
		return info, 0, errors.Mark(&TornTailError{Segment: name, At: off, Bytes: int64(len(b)) - off}, ErrTornTail)
	}
	f, err := w.opts.FS.OpenAppend(name)
	if err != nil {
		return info, 0, errors.Wrap(err, "wal: open torn segment")
	}
	defer func() { _ = f.Close() }()
	if err := f.Truncate(off); err != nil {
		return info, 0, errors.Wrapf(err, "wal: truncate torn tail of %s at %d", name, off)
	}
	if err := f.Sync(); err != nil {
		return info, 0, errors.Wrapf(err, "wal: sync truncated %s", name)
	}
	res.TruncatedSegment, res.TruncatedAt, res.TruncatedBytes = name, off, int64(len(b))-off
	return info, off, nil
}

func (w *WAL) createSegment(seq uint64) error {
	f, err := w.opts.FS.Create(w.segPath(seq))
	if err != nil {
		_ = w.opts.FS.Remove(w.segPath(seq))
		return errors.Wrap(err, "wal: create segment")
	}
	if err := w.opts.FS.SyncDir(w.dir); err != nil {
		_ = f.Close()
		w.broken = errors.Wrap(err, "wal: sync dir after creating segment")
		return w.broken
	}
	if w.f != nil {
		if w.syncing != nil && w.syncing.f == w.f {
			// A background fsync may not have started on it yet: closing
			// now would fail it (and a failed fsync is fatal). SyncDone
			// closes it.
			w.syncing.closeAfter = true
		} else {
			_ = w.f.Close()
		}
	}
	w.f = f
	w.segs = append(w.segs, segmentInfo{seq: seq})
	w.size, w.synced = 0, 0
	return nil
}

// Broken is non-nil once the WAL can no longer be trusted (a failed fsync,
// a failed write that could not be undone). Its owner must reopen from disk.
func (w *WAL) Broken() error { return w.broken }

// Dirty reports whether some appended bytes are not yet fsynced.
func (w *WAL) Dirty() bool { return w.synced < w.size }

// BytesWritten counts bytes appended since the WAL was opened.
func (w *WAL) BytesWritten() int64 { return w.written }

// Append writes recs to the log with a single write. It does not sync.
// On ErrNoSpace (test with errors.Is) the partial write has been truncated
// away and the log is as it was: the caller may refuse the batch and try
// again later. Any other error leaves the WAL Broken.
func (w *WAL) Append(recs []Record) error {
	if w.broken != nil {
		return w.broken
	}
	if w.size >= w.opts.SegmentBytes {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	buf := w.buf[:0]
	for _, r := range recs {
		if len(r.Payload) > RecordPayloadBytesMax {
			return errors.AssertionFailedf("wal: record payload of %d bytes exceeds %d", len(r.Payload), RecordPayloadBytesMax)
		}
		buf = appendRecord(buf, r, w.synced)
	}
	if cap(buf) <= walBufBytesKept {
		w.buf = buf
	}
	n, err := w.f.Write(buf)
	if err == nil && n != len(buf) {
		err = errors.Newf("short write: %d of %d bytes", n, len(buf))
	}
	if err != nil {
		// Undo the partial write so that a refused batch is really not in
		// the log. If even that fails, the file's tail is unknown.
		if terr := w.f.Truncate(w.size); terr != nil {
			w.broken = errors.Wrapf(errors.CombineErrors(err, terr), "wal: append to %s failed and could not be undone", w.segPath(w.active()))
			return w.broken
		}
		if !errors.Is(err, ErrNoSpace) {
			w.broken = errors.Wrapf(err, "wal: append to %s", w.segPath(w.active()))
			return w.broken
		}
		return errors.Wrapf(err, "wal: append to %s", w.segPath(w.active()))
	}
	for _, r := range recs {
		if r.Type == RecEntry {
			s := &w.segs[len(w.segs)-1]
			if r.Index > s.lastIndex {
				s.lastIndex = r.Index
			}
		}
	}
	w.size += int64(n)
	w.written += int64(n)
	return nil
}

func (w *WAL) active() uint64 { return w.segs[len(w.segs)-1].seq }

// rotate seals the active segment (fsynced in full, which recovery rule 3
// relies on) and starts the next one.
func (w *WAL) rotate() error {
	if err := w.Sync(); err != nil {
		return err
	}
	return w.createSegment(w.active() + 1)
}

// Sync makes every appended byte durable. A failure breaks the WAL: the
// kernel may have dropped the dirty pages, so syncing again could report
// success over lost data (fsyncgate).
func (w *WAL) Sync() error {
	if w.broken != nil {
		return w.broken
	}
	if w.synced == w.size {
		return nil
	}
	if err := w.f.Sync(); err != nil {
		w.broken = errors.Wrapf(err, "wal: fsync %s", w.segPath(w.active()))
		return w.broken
	}
	w.synced = w.size
	return nil
}

// SyncJob is an fsync of the active segment handed to the runtime, so that
// the everysec fsync (milliseconds on a busy disk) runs off the thread that
// applies commands while appends go on: Redis does its everysec fsync on a
// background thread for the same reason. Run touches only the file; the
// WAL's owner reports the result with SyncDone.
type SyncJob struct {
	f          File
	seq        uint64 // segment the file belongs to
	upTo       int64  // bytes of that segment written when the job started
	closeAfter bool   // the segment was rotated away; SyncDone closes f
}

// Run fsyncs the file. It may run on any goroutine, concurrently with
// Append on the WAL.
func (j *SyncJob) Run() error { return j.f.Sync() }

// StartSync returns a job that makes every byte appended so far durable,
// or nil when there is nothing to sync, the WAL is broken, or a job is
// already out. The WAL must not be closed while the job runs (or its
// result must be ignored).
func (w *WAL) StartSync() *SyncJob {
	if w.broken != nil || w.syncing != nil || w.synced == w.size {
		return nil
	}
	w.syncing = &SyncJob{f: w.f, seq: w.active(), upTo: w.size}
	return w.syncing
}

// SyncDone records a finished job. A failure breaks the WAL, exactly as a
// failed Sync does (fsyncgate). On success the bytes the job covered are
// durable; if the segment was rotated meanwhile, rotation already synced
// it in full.
func (w *WAL) SyncDone(j *SyncJob, err error) error {
	if w.syncing == j {
		w.syncing = nil
	}
	if j.closeAfter {
		_ = j.f.Close()
	}
	if err != nil {
		if w.broken == nil {
			w.broken = errors.Wrapf(err, "wal: fsync %s", w.segPath(j.seq))
		}
		return w.broken
	}
	if w.broken != nil {
		return w.broken
	}
	if len(w.segs) > 0 && j.seq == w.active() && j.upTo > w.synced {
		w.synced = j.upTo
	}
	return nil
}

// Compact removes the oldest segments whose entries all have index <= through,
// never the active one, and returns the names removed.
func (w *WAL) Compact(through uint64) ([]string, error) {
	var removed []string
	for len(w.segs) > 1 && w.segs[0].lastIndex <= through {
		name := w.segPath(w.segs[0].seq)
		if err := w.opts.FS.Remove(name); err != nil {
			return removed, errors.Wrap(err, "wal: compact")
		}
		removed = append(removed, name)
		w.segs = w.segs[1:]
	}
	if len(removed) > 0 {
		if err := w.opts.FS.SyncDir(w.dir); err != nil {
			return removed, errors.Wrap(err, "wal: sync dir after compaction")
		}
	}
	return removed, nil
}

// Segments returns the names of the live segments, oldest first.
func (w *WAL) Segments() []string {
	out := make([]string, len(w.segs))
	for i, s := range w.segs {
		out[i] = w.segPath(s.seq)
	}
	return out
}

// Close syncs (unless broken) and closes the active segment.
func (w *WAL) Close() error {
	if w.f == nil {
		return nil
	}
	var err error
	if w.broken == nil {
		err = w.Sync()
	}
	cerr := w.f.Close()
	w.f = nil
	if err != nil {
		return err
	}
	return cerr
}
