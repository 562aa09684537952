package engine

import (
	"math"
	"strconv"
)

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

// parseDoubleBody parses b (no leading space) as C's strtod would if it
// had to consume all of b: an optional sign, then inf, infinity, nan
// (any case), a hex float (0x..., exponent optional) or a decimal one.
// strict adds string2d's range rule: a value that overflows, or underflows
// to zero, is rejected; otherwise it is ±inf or 0 as strtod gives.
func parseDoubleBody(b []byte, strict bool) (float64, bool) {
	s := b
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	switch {
	case equalFold(s, "inf") || equalFold(s, "infinity"):
		if neg {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case equalFold(s, "nan"):
		return math.NaN(), true
	}
	hex := len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')
	var mant []byte
	if hex {
		if !validNumber(bytesAsString(s[2:]), isHexDigit, 'p') {
			return 0, false
		}
		mant = s[2:]
	} else {
		if !validNumber(bytesAsString(s), isDigit, 'e') {
			return 0, false
		}
		mant = s
	}
	var f float64
	var err error
	if hex && !bytesContainsFold(s, 'p') {
		// strtod takes a hex float without exponent; Go's parser wants one.
		var buf [64]byte
		f, err = strconv.ParseFloat(string(append(append(buf[:0], b...), "p0"...)), 64)
	} else {
		f, err = strconv.ParseFloat(bytesAsString(b), 64)
	}
	if err != nil {
		if !math.IsInf(f, 0) {
			return 0, false
		}
		return f, !strict // overflow: strtod's HUGE_VAL and ERANGE
	}
	if strict && f == 0 {
		// Underflow to zero is ERANGE for string2d; a written zero is not.
		for _, c := range mant {
			if c == 'e' || c == 'E' || c == 'p' || c == 'P' {
				break
			}
			if c != '0' && c != '.' {
				return 0, false
			}
		}
	}
	return f, true
}

func bytesContainsFold(b []byte, c byte) bool {
	for _, x := range b {
		if x|0x20 == c {
			return true
		}
	}
	return false
}
