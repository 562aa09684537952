package engine

import (
	"math/big"
	"strings"
)

// INCRBYFLOAT must give Redis's digits, and Redis computes in C long
// double (x87 80-bit extended on x86-64: 64-bit mantissa, 15-bit exponent)
// and prints with "%.17Lf" minus trailing zeros. 10.5 + 0.1 is "10.6"
// there but "10.59999999999999964" in float64, so keel emulates the
// format with big.Float at 64 bits of precision, rounding to nearest even
// like the x87 unit and glibc's strtold/printf. Decimal inputs parse with
// one rounding as long as 5^exponent fits in 128 bits (|exponent| <= 55),
// which covers every number people type; beyond that the last bit may
// differ from glibc.
const (
	longDoublePrec = 64
	// Finite long doubles have big.Float MantExp in (ldExpMin, ldExpMax]:
	// LDBL_MAX < 2^16384, and the smallest subnormal is 2^-16445.
	ldExpMax = 16384
	ldExpMin = -16445
	// longDoubleCharsMax is Redis's MAX_LONG_DOUBLE_CHARS: longer inputs
	// are not floats.
	longDoubleCharsMax = 5 * 1024
	// longDoubleDigits is the %.17Lf precision.
	longDoubleDigits = 17
)

type longDouble struct{ f big.Float }

func newLongDouble() *big.Float {
	return new(big.Float).SetPrec(longDoublePrec).SetMode(big.ToNearestEven)
}

func longDoubleZero() longDouble { return longDouble{f: *newLongDouble()} }

// parseLongDouble is Redis's string2ld: strtold over the whole string,
// no leading space, rejecting NaN and out-of-range values (but accepting
// "inf", "infinity" and hex floats, as strtold does).
func parseLongDouble(b []byte) (longDouble, bool) {
	if len(b) == 0 || len(b) >= longDoubleCharsMax || isSpace(b[0]) {
		return longDouble{}, false
	}
	s := string(b)
	body := s
	neg := false
	if body[0] == '+' || body[0] == '-' {
		neg = body[0] == '-'
		body = body[1:]
	}
	f := newLongDouble()
	lower := strings.ToLower(body)
	switch {
	case lower == "inf" || lower == "infinity":
		f.SetInf(neg)
		return longDouble{f: *f}, true
	case len(body) > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X'):
		if !validNumber(body[2:], isHexDigit, 'p') {
			return longDouble{}, false
		}
		if _, _, err := f.Parse(s, 0); err != nil {
			return longDouble{}, false
		}
	default:
		if !validNumber(body, isDigit, 'e') {
			return longDouble{}, false
		}
		if _, _, err := f.Parse(s, 10); err != nil {
			return longDouble{}, false
		}
	}
	if f.Sign() != 0 {
		if e := f.MantExp(nil); e > ldExpMax || e <= ldExpMin {
			return longDouble{}, false // ERANGE: strtold gives ±HUGE_VALL or 0
		}
	}
	return longDouble{f: *f}, true
}

func isDigit(c byte) bool    { return '0' <= c && c <= '9' }
func isHexDigit(c byte) bool { return isDigit(c) || ('a' <= c|0x20 && c|0x20 <= 'f') }

// validNumber checks digits [. digits] [exp [+-] decimal digits], with at
// least one mantissa digit, which is all strtold consumes.
func validNumber(s string, digit func(byte) bool, exp byte) bool {
	i, n := 0, 0
	for i < len(s) && digit(s[i]) {
		i, n = i+1, n+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && digit(s[i]) {
			i, n = i+1, n+1
		}
	}
	if n == 0 {
		return false
	}
	if i < len(s) && s[i]|0x20 == exp {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		m := 0
		for i < len(s) && isDigit(s[i]) {
			i, m = i+1, m+1
		}
		if m == 0 {
			return false
		}
	}
	return i == len(s)
}

// add returns a+b rounded to long double, or false if either is infinite
// or the sum overflows.
func (a *longDouble) add(b longDouble) (longDouble, bool) {
	if a.f.IsInf() || b.f.IsInf() {
		return longDouble{}, false
	}
	sum := newLongDouble()
	sum.Add(&a.f, &b.f)
	if sum.Sign() != 0 && sum.MantExp(nil) > ldExpMax {
		return longDouble{}, false
	}
	return longDouble{f: *sum}, true
}

// appendHuman appends Redis's ld2string(LD_STR_HUMAN): "%.17Lf" with
// trailing zeros (and a bare point) removed, and "-0" written as "0".
func (a *longDouble) appendHuman(dst []byte) []byte {
	if a.f.IsInf() {
		if a.f.Signbit() {
			return append(dst, "-inf"...)
		}
		return append(dst, "inf"...)
	}
	s := a.f.Text('f', longDoubleDigits)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return append(dst, s...)
}
