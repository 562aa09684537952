package udf

import (
	"bytes"
	"strconv"

	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/seam"
)

// EngineStore is the Store a replica gives a call: reads of the engine's
// keyspace at the call's time, through engine.Exec (GET, EXISTS, SCAN), so
// they follow the engine's own expiry and type rules exactly. It reads
// only; the replica applies Result.Effects after the call.
//
// It uses the public command surface only. A prefix scan restarts SCAN at
// the prefix and skips to `after`, which costs the keys before `after`
// under the prefix; an engine method that seeks to `after` would make it
// O(limit).
type EngineStore struct {
	DB *engine.DB
	// NowMillis is the call's time: the log entry's time.
	NowMillis int64
	R         seam.Rand
	w         captureWriter
	argv      [2][]byte // GET and EXISTS, reused
}

// Command names of the store's reads. The engine never writes into argv.
var (
	cmdGet    = []byte("GET")
	cmdExists = []byte("EXISTS")
)

// scanCountPerRound is the COUNT of each SCAN the store issues.
const scanCountPerRound = 256

func (s *EngineStore) exec(argv ...[]byte) []capture {
	if s.w.vals == nil {
		s.w.vals = s.w.inline[:0]
	}
	s.w.vals = s.w.vals[:0]
	s.DB.Exec(s.NowMillis, argv, &s.w)
	return s.w.vals
}

// Get implements Store. The value aliases the engine's reply buffer: it
// is valid until the next call into the store, as Store allows.
func (s *EngineStore) Get(key []byte) ([]byte, bool, error) {
	s.argv = [2][]byte{cmdGet, key}
	r := s.exec(s.argv[:]...)
	switch {
	case len(r) == 1 && r[0].kind == ReplyBulk:
		return r[0].b, true, nil
	case len(r) == 1 && r[0].kind == ReplyNil:
		return nil, false, nil
	case len(r) == 1 && r[0].kind == ReplyError:
		return nil, false, &Error{msg: string(r[0].b)}
	}
	return nil, false, &Error{msg: "ERR internal: unexpected GET reply"}
}

// Exists implements Store.
func (s *EngineStore) Exists(key []byte) bool {
	s.argv = [2][]byte{cmdExists, key}
	r := s.exec(s.argv[:]...)
	return len(r) == 1 && r[0].kind == ReplyInt && r[0].n == 1
}

// Scan implements Store.
func (s *EngineStore) Scan(prefix, after []byte, limit int) [][]byte {
	pattern := make([]byte, 0, len(prefix)+8)
	for _, c := range prefix {
		if c == '*' || c == '?' || c == '[' || c == ']' || c == '\\' {
			pattern = append(pattern, '\\')
		}
		pattern = append(pattern, c)
	}
	pattern = append(pattern, '*')
	var out [][]byte
	cursor := []byte("0")
	count := []byte(strconv.Itoa(scanCountPerRound))
	for {
		r := s.exec([]byte("SCAN"), cursor, []byte("MATCH"), pattern, []byte("COUNT"), count)
		// [cursor, [keys...]] arrives flattened: array(2), bulk, array(n), n bulks.
		if len(r) < 3 || r[1].kind != ReplyBulk {
			return out
		}
		for _, k := range r[3:] {
			if after == nil || bytes.Compare(k.b, after) > 0 {
				out = append(out, append([]byte(nil), k.b...))
				if len(out) == limit {
					return out
				}
			}
		}
		cursor = append(cursor[:0], r[1].b...)
		if string(cursor) == "0" {
			return out
		}
	}
}

// Now implements Store.
func (s *EngineStore) Now() int64 { return s.NowMillis }

// Rand implements Store.
func (s *EngineStore) Rand() uint64 { return s.R.Uint64() }

type capture struct {
	kind ReplyKind
	n    int64
	b    []byte
}

// captureWriter flattens one reply; the slices alias the engine's buffers
// until the next command, so callers copy what they keep. inline holds
// the short replies of GET and EXISTS without an allocation.
type captureWriter struct {
	vals   []capture
	inline [4]capture
}

func (w *captureWriter) WriteSimple(s string) {
	w.vals = append(w.vals, capture{kind: ReplySimple, b: []byte(s)})
}
func (w *captureWriter) WriteError(msg string) {
	w.vals = append(w.vals, capture{kind: ReplyError, b: []byte(msg)})
}
func (w *captureWriter) WriteInt(n int64) { w.vals = append(w.vals, capture{kind: ReplyInt, n: n}) }
func (w *captureWriter) WriteBulk(b []byte) {
	w.vals = append(w.vals, capture{kind: ReplyBulk, b: b})
}
func (w *captureWriter) WriteBulkString(s string) { w.WriteBulk([]byte(s)) }
func (w *captureWriter) WriteNull()               { w.vals = append(w.vals, capture{kind: ReplyNil}) }
func (w *captureWriter) WriteArray(n int) {
	w.vals = append(w.vals, capture{kind: ReplyArray, n: int64(n)})
}
func (w *captureWriter) WriteNullArray()     { w.WriteNull() }
func (w *captureWriter) WriteDouble(float64) { w.vals = append(w.vals, capture{kind: ReplyBulk}) }
func (w *captureWriter) WriteMap(n int)      { w.WriteArray(2 * n) }
func (w *captureWriter) WriteSet(n int)      { w.WriteArray(n) }

var _ Store = (*EngineStore)(nil)

// ExecRead implements KeyStore.
func (s *EngineStore) ExecRead(argv [][]byte, w engine.Writer) { s.DB.Exec(s.NowMillis, argv, w) }

// Pending implements KeyStore: the engine has applied everything.
func (s *EngineStore) Pending([]byte) bool { return false }

// KeyBytes implements KeyStore.
func (s *EngineStore) KeyBytes(key []byte) int64 {
	n, _ := s.DB.KeyBytes(max(s.NowMillis, s.DB.Clock()), key)
	return n
}

// CopyKey implements KeyStore.
func (s *EngineStore) CopyKey(key []byte, dst *engine.DB) error {
	return CopyKey(s.DB, s.NowMillis, key, dst)
}

// CopyKey copies key's live value at now from src into dst (nothing when
// it has none), piece by piece as snapshots carry it, so that a large
// collection is never held twice in one buffer. The caller bounds the
// size (KeyBytes) before: this copies whatever is there.
func CopyKey(src *engine.DB, now int64, key []byte, dst *engine.DB) error {
	e, ok := src.LiveEntry(now, key)
	if !ok {
		return nil
	}
	units := e.Units()
	var piece []byte
	for from := uint64(0); ; {
		var next uint64
		piece, next = e.AppendPiece(piece[:0], from, engine.PieceBytesDefault)
		typ := e.Type
		if from > 0 {
			typ |= engine.TypeContinued
		}
		if err := dst.Restore(engine.Entry{Type: typ, Key: key, Value: piece, ExpireAt: e.ExpireAt}); err != nil {
			return err
		}
		if next >= units || next == from {
			return nil
		}
		from = next
	}
}

var _ KeyStore = (*EngineStore)(nil)
