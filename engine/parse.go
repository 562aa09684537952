package engine

import "math"

// Redis's error replies, word for word.
const (
	errSyntax       = "ERR syntax error"
	errNotInt       = "ERR value is not an integer or out of range"
	errOverflow     = "ERR increment or decrement would overflow"
	errDecrOverflow = "ERR decrement would overflow"
	errNotFloat     = "ERR value is not a valid float"
	errNaNInf       = "ERR increment would produce NaN or Infinity"
	errWrongType    = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errTooBig       = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
	errNoSuchKey    = "ERR no such key"
	errSameObject   = "ERR source and destination objects are the same"
	errOffset       = "ERR offset is out of range"
	errDBIndex      = "ERR DB index is out of range"
)

func errExpireTime(cmd string) string {
	return "ERR invalid expire time in '" + cmd + "' command"
}

// parseInt is Redis's string2ll: an optional '-', no '+', no leading zeros
// (except "0" itself), no spaces, at most 20 bytes, within int64.
func parseInt(b []byte) (int64, bool) {
	const longStrSize = 21
	if len(b) == 0 || len(b) >= longStrSize {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	i := 0
	neg := false
	if b[0] == '-' {
		neg = true
		i++
		if i == len(b) {
			return 0, false
		}
	}
	if b[i] < '1' || b[i] > '9' {
		return 0, false
	}
	var v uint64
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > math.MaxUint64/10 {
			return 0, false
		}
		v *= 10
		if v > math.MaxUint64-uint64(c-'0') {
			return 0, false
		}
		v += uint64(c - '0')
	}
	if neg {
		if v > uint64(math.MaxInt64)+1 {
			return 0, false
		}
		return int64(-v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}
