package engine

// Writer receives replies. The server's implementation encodes RESP2 or
// RESP3 into a connection's output buffer; tests and the simulator record
// values. A command writes exactly one top-level reply; an aggregate header
// (Array, Map, Set) is followed by exactly its elements.
//
// Slices and strings passed in are only valid during the call: the engine
// hands over its own value buffers (no copy on GET) and may overwrite them
// in place by the next command, so a Writer must copy what it keeps.
type Writer interface {
	WriteSimple(s string)
	// WriteError takes the whole message, code included: "ERR syntax error",
	// "WRONGTYPE Operation against a key holding the wrong kind of value".
	WriteError(msg string)
	WriteInt(n int64)
	WriteBulk(b []byte)
	WriteBulkString(s string)
	// WriteNull is a missing value ($-1 in RESP2, _ in RESP3).
	WriteNull()
	WriteArray(n int)
	// WriteNullArray is *-1 in RESP2 and _ in RESP3.
	WriteNullArray()
	// WriteDouble is a bulk string in RESP2 and ',' in RESP3.
	WriteDouble(f float64)
	// WriteMap announces n key/value pairs (RESP3 '%', RESP2 an array of 2n).
	WriteMap(n int)
	// WriteSet announces n elements (RESP3 '~', RESP2 an array).
	WriteSet(n int)
}

// Discard is a Writer that keeps nothing of a reply but its error message,
// for replies nobody reads (log replay, benchmarks) or that only matter when
// they fail (effects, SHUTDOWN SAVE). Reset Err before reusing it.
type Discard struct{ Err string }

func (*Discard) WriteSimple(string)      {}
func (d *Discard) WriteError(msg string) { d.Err = msg }
func (*Discard) WriteInt(int64)          {}
func (*Discard) WriteBulk([]byte)        {}
func (*Discard) WriteBulkString(string)  {}
func (*Discard) WriteNull()              {}
func (*Discard) WriteArray(int)          {}
func (*Discard) WriteNullArray()         {}
func (*Discard) WriteDouble(float64)     {}
func (*Discard) WriteMap(int)            {}
func (*Discard) WriteSet(int)            {}
