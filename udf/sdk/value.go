package sdk

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Kind is the type of a Value: what a command replied, in RESP2's shapes.
type Kind byte

// The kinds, named by their tag in keel.call's reply encoding
// (docs/functions.md).
const (
	Nil    Kind = '_'
	Int    Kind = ':'
	Bulk   Kind = '$' // also doubles (ZSCORE, ZINCRBY), as their text
	Status Kind = '+'
	Err    Kind = '-'
	Array  Kind = '*'
)

// Value is a command's reply decoded.
type Value struct {
	Kind  Kind
	Int   int64   // Int
	Str   []byte  // Bulk, Status, Err
	Elems []Value // Array
}

// Float parses a Bulk value (a score) as a float64.
func (v Value) Float() (float64, error) {
	return strconv.ParseFloat(string(v.Str), 64)
}

// Strings returns an Array's elements as byte slices (nil elements as nil).
func (v Value) Strings() [][]byte {
	out := make([][]byte, len(v.Elems))
	for i, e := range v.Elems {
		out[i] = e.Str
	}
	return out
}

// CallError is an error reply of a command (WRONGTYPE, a syntax error, an
// overflow): Msg is Redis's text, code first.
type CallError struct{ Msg string }

func (e *CallError) Error() string { return e.Msg }

var errMalformed = errors.New("keel sdk: malformed keel.call reply")

// DecodeReply decodes keel.call's reply encoding: a tag byte, then for ':'
// an i64le, for '$' '+' '-' a u32le length and the bytes, for '*' a u32le
// count and the elements, for '_' nothing. The Values alias b.
func DecodeReply(b []byte) (Value, error) {
	v, rest, err := decodeValue(b, 0)
	if err == nil && len(rest) != 0 {
		err = errMalformed
	}
	return v, err
}

func decodeValue(b []byte, depth int) (Value, []byte, error) {
	if len(b) == 0 || depth > 64 {
		return Value{}, nil, errMalformed
	}
	v := Value{Kind: Kind(b[0])}
	b = b[1:]
	switch v.Kind {
	case Nil:
		return v, b, nil
	case Int:
		if len(b) < 8 {
			return Value{}, nil, errMalformed
		}
		v.Int = int64(binary.LittleEndian.Uint64(b))
		return v, b[8:], nil
	case Bulk, Status, Err:
		if len(b) < 4 {
			return Value{}, nil, errMalformed
		}
		n := binary.LittleEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return Value{}, nil, errMalformed
		}
		v.Str = b[4 : 4+n]
		return v, b[4+n:], nil
	case Array:
		if len(b) < 4 {
			return Value{}, nil, errMalformed
		}
		n := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) { // every element takes a byte at least
			return Value{}, nil, errMalformed
		}
		v.Elems = make([]Value, n)
		for i := range v.Elems {
			var err error
			if v.Elems[i], b, err = decodeValue(b, depth+1); err != nil {
				return Value{}, nil, err
			}
		}
		return v, b, nil
	}
	return Value{}, nil, errMalformed
}

// EncodeArgv is keel.call's argument encoding: each argument as a u32le
// length and its bytes.
func EncodeArgv(args ...[]byte) []byte {
	n := 0
	for _, a := range args {
		n += 4 + len(a)
	}
	out := make([]byte, 0, n)
	for _, a := range args {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(a)))
		out = append(out, a...)
	}
	return out
}
