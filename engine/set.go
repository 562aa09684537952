package engine

import "encoding/binary"

// intsetLen is an intset's member count.
func intsetLen(v []byte) int { return int(binary.LittleEndian.Uint16(v[2:])) }

// intsetDecode reads one member of width len(b).
func intsetDecode(b []byte) int64 {
	switch len(b) {
	case 2:
		return int64(int16(binary.LittleEndian.Uint16(b)))
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(b)))
	}
	return int64(binary.LittleEndian.Uint64(b))
}

// intsetAt is the i-th member (ascending) of intset v.
func intsetAt(v []byte, i int) int64 {
	width := int(v[1])
	o := intsetHdrBytes + i*width
	return intsetDecode(v[o : o+width])
}
