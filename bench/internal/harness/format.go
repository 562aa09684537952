package harness

import (
	"fmt"
	"math"
)

// FmtOps formats a throughput: 812.3k, 1.25M; "–" when missing.
func FmtOps(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	if x >= 1e6 {
		return fmt.Sprintf("%.2fM", x/1e6)
	}
	return fmt.Sprintf("%.1fk", x/1e3)
}

// FmtMillis formats a latency in milliseconds; "–" when missing.
func FmtMillis(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.3f", x)
}

// FmtRatio formats a ratio with two decimals and unit (e.g. "×", or none);
// "–" when it is missing or infinite.
func FmtRatio(x float64, unit string) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f", x) + unit
}
