package cluster

import (
	"os"
	"strconv"
)

// KEEL_BENCH_KEYS overrides the recovery benchmark's key count (for
// profiling on a small machine); the figures in docs/ use the default.
func init() {
	if n, err := strconv.Atoi(os.Getenv("KEEL_BENCH_KEYS")); err == nil && n > 0 {
		benchKeys = n
	}
}
