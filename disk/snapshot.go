package disk

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// A snapshot file, snap/<index>.snap (index a 16-digit hex Raft index), is
//
//	magic "KEELSNP1"
//	block*                 each: u32 payloadLen, u32 CRC32C(kind+payload),
//	                       u8 kind, payload
//
// The first block is the header (kind 1): u32 format version, u64 Raft
// index, u64 term, i64 save time (Unix ms), u64 keys hint (an upper bound
// on the entry count, so a loader can size its indexes), u32 voter count,
// u64 voters; in format version 2 (written only when the group has
// learners, so a file without them is byte for byte a version 1 file),
// then u32 learner count, u64 learners. Raft's configuration at the
// snapshot is voters and learners both: a replica restarted from a file
// that kept only the voters forgot a learner that was catching up.
// Then entry blocks (kind 2): u32 count, then per entry u8 type, varint
// expireAt (Unix ms, 0 = none), uvarint key length, key, uvarint value
// length, value. Last, the trailer (kind 3): u64 entry count, u64 entry
// block count. A file is valid only if every block's checksum matches, the
// trailer is present, its counts match, and nothing follows it. Per-block
// checksums let a loader verify and decode blocks in parallel later.
//
// Files are written as snap/<index>.snap.tmp, fsynced, renamed into place
// and the directory fsynced, so a crash leaves either the old set of
// snapshots or the new one, plus perhaps a .tmp that recovery deletes.

const (
	snapMagic   = "KEELSNP1"
	snapVersion = 1
	// snapVersionLearners is the header that also lists the learners.
	snapVersionLearners = 2
	snapDirName         = "snap"
	snapSuffix          = ".snap"
	tmpSuffix           = ".tmp"
	partSuffix          = ".part"

	blockHeader  = 1
	blockEntries = 2
	blockTrailer = 3

	blockPrefixBytes = 9
	// snapBlockBytesTarget is when an entry block is cut; an entry bigger
	// than this gets a block of its own.
	snapBlockBytesTarget = 256 << 10
	// SnapBlockBytesMax bounds one block (one entry, in the worst case).
	SnapBlockBytesMax = 1 << 30
)

// SnapshotMeta describes a snapshot.
type SnapshotMeta struct {
	Index      uint64
	Term       uint64
	Voters     []uint64
	Learners   []uint64
	SaveMillis int64
	// KeysHint is an upper bound on Entries known when the file is started
	// (the view's size); loaders use it to size their indexes.
	KeysHint uint64
	Entries  uint64 // known after writing or reading the whole file
}

// SnapTypeFunctions is a reserved entry type, never an engine value type:
// the entry's value is the replica's function registry (udf.Host.Dump),
// its key empty. At most one per snapshot, before the keys.
const SnapTypeFunctions uint8 = 0xFF

// SnapEntry is one key in a snapshot, in the engine's terms.
type SnapEntry struct {
	Type     uint8
	Key      []byte
	Value    []byte
	ExpireAt int64
}

// SnapshotDir is where snapshots of the data directory dir live.
func SnapshotDir(dir string) string { return path.Join(dir, snapDirName) }

// SnapshotName is the file name of the snapshot at index.
func SnapshotName(index uint64) string { return fmt.Sprintf("%016x%s", index, snapSuffix) }

// ListSnapshots returns the paths of the snapshots in dir, newest (highest
// index) first, and the leftover temporary files to delete.
func ListSnapshots(fs FS, dir string) (snaps, temps []string, err error) {
	sd := SnapshotDir(dir)
	names, err := fs.List(sd)
	if err != nil {
		if errors.Is(err, ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, errors.Wrap(err, "snapshot: list")
	}
	type snap struct {
		index uint64
		name  string
	}
	var found []snap
	for _, n := range names {
		if strings.HasSuffix(n, tmpSuffix) {
			temps = append(temps, path.Join(sd, n))
			continue
		}
		if len(n) != 16+len(snapSuffix) || !strings.HasSuffix(n, snapSuffix) {
			continue
		}
		idx, perr := strconv.ParseUint(n[:16], 16, 64)
		if perr != nil {
			continue
		}
		found = append(found, snap{idx, path.Join(sd, n)})
	}
	sort.Slice(found, func(i, j int) bool { return found[i].index > found[j].index })
	for _, s := range found {
		snaps = append(snaps, s.name)
	}
	return snaps, temps, nil
}

// SnapshotWriter writes one snapshot file.
type SnapshotWriter struct {
	fs        FS
	dir       string
	tmp, name string
	f         File
	meta      SnapshotMeta
	block     []byte // current entry block: prefix + count + entries
	inBlock   uint32
	blocks    uint64
	err       error
}

// CreateSnapshot starts the snapshot described by meta in dir's snap/.
func CreateSnapshot(fs FS, dir string, meta SnapshotMeta) (*SnapshotWriter, error) {
	sd := SnapshotDir(dir)
	if err := fs.MkdirAll(sd); err != nil {
		return nil, errors.Wrap(err, "snapshot")
	}
	name := path.Join(sd, SnapshotName(meta.Index))
	sw := &SnapshotWriter{fs: fs, dir: sd, tmp: name + tmpSuffix, name: name, meta: meta}
	f, err := fs.Create(sw.tmp)
	if err != nil {
		return nil, errors.Wrap(err, "snapshot: create")
	}
	sw.f = f
	hdr := []byte(snapMagic)
	var p []byte
	version := uint32(snapVersion)
	if len(meta.Learners) > 0 {
		version = snapVersionLearners
	}
	p = binary.LittleEndian.AppendUint32(p, version)
	p = binary.LittleEndian.AppendUint64(p, meta.Index)
	p = binary.LittleEndian.AppendUint64(p, meta.Term)
	p = binary.LittleEndian.AppendUint64(p, uint64(meta.SaveMillis))
	p = binary.LittleEndian.AppendUint64(p, meta.KeysHint)
	p = binary.LittleEndian.AppendUint32(p, uint32(len(meta.Voters)))
	for _, v := range meta.Voters {
		p = binary.LittleEndian.AppendUint64(p, v)
	}
	if version == snapVersionLearners {
		p = binary.LittleEndian.AppendUint32(p, uint32(len(meta.Learners)))
		for _, l := range meta.Learners {
			p = binary.LittleEndian.AppendUint64(p, l)
		}
	}
	hdr = appendBlock(hdr, blockHeader, p)
	if _, err := f.Write(hdr); err != nil {
		sw.Abort()
		return nil, errors.Wrap(err, "snapshot: write header")
	}
	sw.resetBlock()
	return sw, nil
}

func appendBlock(buf []byte, kind byte, payload []byte) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(payload)))
	crc := crc32.Update(0, crcTable, []byte{kind})
	crc = crc32.Update(crc, crcTable, payload)
	buf = binary.LittleEndian.AppendUint32(buf, crc)
	buf = append(buf, kind)
	return append(buf, payload...)
}

func (sw *SnapshotWriter) resetBlock() {
	sw.block = append(sw.block[:0], make([]byte, blockPrefixBytes+4)...)
	sw.inBlock = 0
}

// Add appends one entry.
func (sw *SnapshotWriter) Add(e SnapEntry) error {
	if sw.err != nil {
		return sw.err
	}
	need := 1 + 2*binary.MaxVarintLen64 + len(e.Key) + len(e.Value)
	if need > SnapBlockBytesMax {
		sw.err = errors.Newf("snapshot: entry of %d bytes exceeds the block bound", need)
		return sw.err
	}
	if sw.inBlock > 0 && len(sw.block)+need > snapBlockBytesTarget {
		if err := sw.flushBlock(); err != nil {
			return err
		}
	}
	b := sw.block
	b = append(b, e.Type)
	b = binary.AppendVarint(b, e.ExpireAt)
	b = binary.AppendUvarint(b, uint64(len(e.Key)))
	b = append(b, e.Key...)
	b = binary.AppendUvarint(b, uint64(len(e.Value)))
	b = append(b, e.Value...)
	sw.block = b
	sw.inBlock++
	sw.meta.Entries++
	return nil
}

func (sw *SnapshotWriter) flushBlock() error {
	if sw.inBlock == 0 {
		return nil
	}
	b := sw.block
	payload := b[blockPrefixBytes:]
	binary.LittleEndian.PutUint32(payload, sw.inBlock)
	binary.LittleEndian.PutUint32(b, uint32(len(payload)))
	crc := crc32.Update(0, crcTable, []byte{blockEntries})
	crc = crc32.Update(crc, crcTable, payload)
	binary.LittleEndian.PutUint32(b[4:], crc)
	b[8] = blockEntries
	if _, err := sw.f.Write(b); err != nil {
		sw.err = errors.Wrap(err, "snapshot: write")
		return sw.err
	}
	sw.blocks++
	if cap(sw.block) > 2*snapBlockBytesTarget {
		sw.block = nil // do not keep one huge entry's buffer
	}
	sw.resetBlock()
	return nil
}

// Commit writes the trailer, fsyncs, renames the file into place and
// fsyncs the directory. It returns the final path and the entry count.
func (sw *SnapshotWriter) Commit() (string, SnapshotMeta, error) {
	if err := sw.flushBlock(); err != nil {
		sw.Abort()
		return "", sw.meta, err
	}
	var p []byte
	p = binary.LittleEndian.AppendUint64(p, sw.meta.Entries)
	p = binary.LittleEndian.AppendUint64(p, sw.blocks)
	if _, err := sw.f.Write(appendBlock(nil, blockTrailer, p)); err != nil {
		sw.Abort()
		return "", sw.meta, errors.Wrap(err, "snapshot: write trailer")
	}
	if err := sw.f.Sync(); err != nil {
		sw.Abort()
		return "", sw.meta, errors.Wrap(err, "snapshot: fsync")
	}
	if err := sw.f.Close(); err != nil {
		sw.f = nil
		sw.Abort()
		return "", sw.meta, errors.Wrap(err, "snapshot: close")
	}
	sw.f = nil
	if err := sw.fs.Rename(sw.tmp, sw.name); err != nil {
		sw.Abort()
		return "", sw.meta, errors.Wrap(err, "snapshot: rename")
	}
	if err := sw.fs.SyncDir(sw.dir); err != nil {
		return "", sw.meta, errors.Mark(errors.Wrap(err, "snapshot: fsync directory after rename"), ErrDirSync)
	}
	return sw.name, sw.meta, nil
}

// ErrDirSync marks a failed directory fsync: the directory's state on disk
// is unknown, so the owner must restart from disk rather than go on.
var ErrDirSync = errors.New("directory fsync failed")

// Abort closes and removes the temporary file.
func (sw *SnapshotWriter) Abort() {
	if sw.f != nil {
		_ = sw.f.Close()
		sw.f = nil
	}
	_ = sw.fs.Remove(sw.tmp)
}

// snapReader reads blocks sequentially, each straight into one reused
// buffer: two reads per block (prefix, payload), no intermediate copy and
// no allocation per block.
type snapReader struct {
	f    File
	name string
	size int64
	off  int64 // file offset of the next unread byte
	buf  []byte
}

func (r *snapReader) corrupt(format string, args ...interface{}) error {
	return errors.Mark(errors.Newf("snapshot %s offset %d: %s", r.name, r.off, fmt.Sprintf(format, args...)), ErrCorrupt)
}

// next returns the next block's kind and payload; the payload is valid
// until the following call.
func (r *snapReader) next() (byte, []byte, error) {
	if r.size-r.off < blockPrefixBytes {
		return 0, nil, r.corrupt("file ends inside a block header (no trailer)")
	}
	var pre [blockPrefixBytes]byte
	if err := r.read(pre[:]); err != nil {
		return 0, nil, err
	}
	n := int64(binary.LittleEndian.Uint32(pre[:]))
	if n > SnapBlockBytesMax || n > r.size-r.off {
		r.off -= blockPrefixBytes
		return 0, nil, r.corrupt("block length %d runs past the end of the file", n)
	}
	if int64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	payload := r.buf[:n]
	if err := r.read(payload); err != nil {
		return 0, nil, err
	}
	crc := crc32.Update(0, crcTable, pre[8:9])
	crc = crc32.Update(crc, crcTable, payload)
	if crc != binary.LittleEndian.Uint32(pre[4:]) {
		r.off -= blockPrefixBytes + n
		return 0, nil, r.corrupt("block checksum mismatch")
	}
	return pre[8], payload, nil
}

func (r *snapReader) read(p []byte) error {
	n, err := r.f.ReadAt(p, r.off)
	if n < len(p) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return errors.Wrapf(err, "snapshot %s: read at %d", r.name, r.off)
	}
	r.off += int64(n)
	return nil
}

// ReadSnapshot verifies and loads the snapshot at name, calling fn for each
// entry in order. Key and Value are valid only during the call (fn copies
// what it keeps; engine.DB.Restore does). fn runs before the whole file has
// been verified: on error the caller must discard what it loaded.
//
// header, if not nil, sees the header's metadata before the first entry.
func ReadSnapshot(fs FS, name string, header func(SnapshotMeta) error, fn func(SnapEntry) error) (SnapshotMeta, error) {
	meta, _, err := readSnapshot(fs, name, header, fn)
	return meta, err
}

// ScanSnapshot verifies the snapshot file at name as ReadSnapshot does,
// loading nothing, and reports how long a prefix of it is sound: the magic
// and every block before the first one that is cut short, fails its
// checksum or does not decode. err is nil only when the whole file is a
// valid snapshot, and valid is then its size. A snapshot being received
// from a leader is resumed from valid after a restart (what a crash tore
// off the end is simply received again), and one that arrived whole but
// fails here is received again from valid.
func ScanSnapshot(fs FS, name string) (valid int64, meta SnapshotMeta, err error) {
	meta, valid, err = readSnapshot(fs, name, nil, func(SnapEntry) error { return nil })
	return valid, meta, err
}

// readSnapshot is ReadSnapshot that also reports the end of the last block
// that verified (0 when even the magic is wrong).
func readSnapshot(fs FS, name string, header func(SnapshotMeta) error, fn func(SnapEntry) error) (meta SnapshotMeta, valid int64, err error) {
	f, err := fs.Open(name)
	if err != nil {
		return meta, 0, errors.Wrap(err, "snapshot: open")
	}
	defer func() { _ = f.Close() }()
	size, err := f.Size()
	if err != nil {
		return meta, 0, errors.Wrap(err, "snapshot: size")
	}
	r := &snapReader{f: f, name: name, size: size}
	magic := make([]byte, len(snapMagic))
	if size < int64(len(magic)) {
		return meta, 0, r.corrupt("file too short")
	}
	if err := r.read(magic); err != nil {
		return meta, 0, err
	}
	if string(magic) != snapMagic {
		r.off = 0
		return meta, 0, r.corrupt("bad magic %q", magic)
	}
	valid = r.off
	kind, p, err := r.next()
	if err != nil {
		return meta, valid, err
	}
	const fixed = 40
	if kind != blockHeader || len(p) < fixed {
		return meta, valid, r.corrupt("first block is not a header")
	}
	version := binary.LittleEndian.Uint32(p)
	if version != snapVersion && version != snapVersionLearners {
		return meta, valid, r.corrupt("format version %d not supported (this keel reads %d and %d)", version, snapVersion, snapVersionLearners)
	}
	meta.Index = binary.LittleEndian.Uint64(p[4:])
	meta.Term = binary.LittleEndian.Uint64(p[12:])
	meta.SaveMillis = int64(binary.LittleEndian.Uint64(p[20:]))
	meta.KeysHint = binary.LittleEndian.Uint64(p[28:])
	nv := int(binary.LittleEndian.Uint32(p[36:]))
	if nv > (len(p)-fixed)/8 {
		return meta, valid, r.corrupt("header length does not match its voter count")
	}
	for i := 0; i < nv; i++ {
		meta.Voters = append(meta.Voters, binary.LittleEndian.Uint64(p[fixed+8*i:]))
	}
	rest := p[fixed+8*nv:]
	if version == snapVersionLearners {
		if len(rest) < 4 {
			return meta, valid, r.corrupt("header has no learner count")
		}
		nl := int(binary.LittleEndian.Uint32(rest))
		rest = rest[4:]
		if nl > len(rest)/8 {
			return meta, valid, r.corrupt("header length does not match its learner count")
		}
		for i := 0; i < nl; i++ {
			meta.Learners = append(meta.Learners, binary.LittleEndian.Uint64(rest[8*i:]))
		}
		rest = rest[8*nl:]
	}
	if len(rest) != 0 {
		return meta, valid, r.corrupt("header has %d bytes past its members", len(rest))
	}
	valid = r.off
	if header != nil {
		if err := header(meta); err != nil {
			return meta, valid, err
		}
	}
	var blocks uint64
	for {
		kind, p, err := r.next()
		if err != nil {
			return meta, valid, err
		}
		switch kind {
		case blockEntries:
			n, err := decodeEntries(p, fn)
			if err != nil {
				// r.off is past the block; report where it starts.
				r.off = valid
				return meta, valid, r.corrupt("%v", err)
			}
			meta.Entries += n
			blocks++
			valid = r.off
		case blockTrailer:
			if len(p) != 16 {
				return meta, valid, r.corrupt("bad trailer")
			}
			if c := binary.LittleEndian.Uint64(p); c != meta.Entries {
				return meta, valid, r.corrupt("trailer counts %d entries, file holds %d", c, meta.Entries)
			}
			if c := binary.LittleEndian.Uint64(p[8:]); c != blocks {
				return meta, valid, r.corrupt("trailer counts %d blocks, file holds %d", c, blocks)
			}
			if r.off != size {
				// Trailer and all: a whole snapshot, then bytes it
				// never had.
				return meta, r.off, r.corrupt("%d bytes after the trailer", size-r.off)
			}
			return meta, size, nil
		default:
			return meta, valid, r.corrupt("unknown block kind %d", kind)
		}
	}
}

// snapTrailerBlockBytes is a trailer block's length: prefix and two u64s.
const snapTrailerBlockBytes = blockPrefixBytes + 16

// snapHeaderBytesMax bounds the header block SnapshotFingerprint reads
// (its payload is 40 bytes and 8 per voter).
const snapHeaderBytesMax = 1 << 20

// SnapshotFingerprint identifies a snapshot file's content without reading
// it all: the CRC32C of its header block (index, term, save time, keys
// hint, voters) and of its trailer block (entry and block counts). Two
// files at one index with the same header were taken at the same save
// time of the same applied state, so they hold the same entries; a leader
// that streams a snapshot names it by (index, size, fingerprint), and a
// follower resumes a partial copy only of the same file. It checks no
// checksum: the receiver verifies what arrives.
func SnapshotFingerprint(f File, size int64) (uint32, error) {
	var pre [len(snapMagic) + blockPrefixBytes]byte
	if size < int64(len(pre))+snapTrailerBlockBytes {
		return 0, errors.Newf("snapshot: %d bytes is too short for a snapshot", size)
	}
	if _, err := f.ReadAt(pre[:], 0); err != nil {
		return 0, errors.Wrap(err, "snapshot: read header")
	}
	n := int64(binary.LittleEndian.Uint32(pre[len(snapMagic):]))
	if n > snapHeaderBytesMax || int64(len(pre))+n+snapTrailerBlockBytes > size {
		return 0, errors.Newf("snapshot: header block of %d bytes does not fit a %d-byte file", n, size)
	}
	buf := make([]byte, blockPrefixBytes+n+snapTrailerBlockBytes)
	hdr, trailer := buf[:blockPrefixBytes+n], buf[blockPrefixBytes+n:]
	if _, err := f.ReadAt(hdr, int64(len(snapMagic))); err != nil {
		return 0, errors.Wrap(err, "snapshot: read header")
	}
	if _, err := f.ReadAt(trailer, size-snapTrailerBlockBytes); err != nil && !errors.Is(err, io.EOF) {
		return 0, errors.Wrap(err, "snapshot: read trailer")
	}
	return crc32.Checksum(buf, crcTable), nil
}

// ReceivingSnapshotName is the file name under snap/ of a snapshot being
// received from a leader: its index and fingerprint, so that a follower
// resumes only a copy of the same file. It is not a snapshot name (recovery
// never loads it) and not a temporary one (recovery keeps it, to resume).
func ReceivingSnapshotName(index uint64, fingerprint uint32) string {
	return fmt.Sprintf("%016x%s.%08x%s", index, snapSuffix, fingerprint, partSuffix)
}

// ParseReceivingSnapshotName reverses ReceivingSnapshotName.
func ParseReceivingSnapshotName(name string) (index uint64, fingerprint uint32, ok bool) {
	const n = 16 + len(snapSuffix) + 1 + 8 + len(partSuffix)
	if len(name) != n || name[16:16+len(snapSuffix)+1] != snapSuffix+"." || !strings.HasSuffix(name, partSuffix) {
		return 0, 0, false
	}
	idx, err := strconv.ParseUint(name[:16], 16, 64)
	if err != nil {
		return 0, 0, false
	}
	fp, err := strconv.ParseUint(name[16+len(snapSuffix)+1:16+len(snapSuffix)+9], 16, 32)
	if err != nil {
		return 0, 0, false
	}
	return idx, uint32(fp), true
}

var errShortEntry = errors.New("entry block ends inside an entry")

func decodeEntries(p []byte, fn func(SnapEntry) error) (uint64, error) {
	if len(p) < 4 {
		return 0, errShortEntry
	}
	count := binary.LittleEndian.Uint32(p)
	p = p[4:]
	for i := uint32(0); i < count; i++ {
		var e SnapEntry
		if len(p) < 1 {
			return 0, errShortEntry
		}
		e.Type = p[0]
		p = p[1:]
		x, n := binary.Varint(p)
		if n <= 0 {
			return 0, errShortEntry
		}
		e.ExpireAt, p = x, p[n:]
		kl, n := binary.Uvarint(p)
		if n <= 0 || kl > uint64(len(p)-n) {
			return 0, errShortEntry
		}
		p = p[n:]
		e.Key, p = p[:kl:kl], p[kl:]
		vl, n := binary.Uvarint(p)
		if n <= 0 || vl > uint64(len(p)-n) {
			return 0, errShortEntry
		}
		p = p[n:]
		e.Value, p = p[:vl:vl], p[vl:]
		if err := fn(e); err != nil {
			return 0, err
		}
	}
	if len(p) != 0 {
		return 0, errors.New("bytes after the last entry of a block")
	}
	return uint64(count), nil
}
