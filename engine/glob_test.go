package engine

import (
	"strings"
	"testing"
)

// A pattern of many stars against a long near-miss is where a recursive
// matcher goes exponential; this one backtracks to the last star only, so
// the call returns (and the test ends) at once. Patterns reach it from the
// network through KEYS, SCAN, PSUBSCRIBE and CONFIG GET.
func TestGlobMatchHostilePatternIsPolynomial(t *testing.T) {
	pat := []byte(strings.Repeat("*a", 40) + "*b")
	s := []byte(strings.Repeat("a", 4000))
	if GlobMatch(pat, s) {
		t.Fatal("matched a string without a 'b'")
	}
	if !GlobMatch(pat, append(s, 'b')) {
		t.Fatal("did not match once the 'b' is there")
	}
}
