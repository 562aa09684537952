package node

import (
	"slices"
	"testing"
)

// The hosted file keeps, for a group a split added, the target it was
// opened with; older files (no @) still read; bad ones are refused whole.
func TestParseHostedTargets(t *testing.T) {
	hosted, joined, targets, err := parseHosted("1 3j 5j@5,6,1\n", 6)
	if err != nil || !slices.Equal(hosted, []bool{true, false, true, false, true, false}) ||
		!slices.Equal(joined, []bool{false, false, true, false, true, false}) ||
		!slices.Equal(targets[4], []uint64{5, 6, 1}) || targets[2] != nil {
		t.Fatalf("parseHosted: %v %v %v %v", hosted, joined, targets, err)
	}
	for _, bad := range []string{"7", "0", "5j@1,,x", "5j@0", "x@1"} {
		if _, _, _, err := parseHosted(bad, 6); err == nil {
			t.Errorf("parseHosted(%q) accepted", bad)
		}
	}
}
