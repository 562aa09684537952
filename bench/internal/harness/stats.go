package harness

import (
	"math"
	"sort"
)

// Median of xs ignoring NaNs (a missing measurement); NaN when none remain.
// With an even count it is the mean of the two middle values.
func Median(xs []float64) float64 {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	mid := len(v) / 2
	if len(v)%2 == 1 {
		return v[mid]
	}
	return (v[mid-1] + v[mid]) / 2
}

// Ratios returns num[i]/den[i] per round; a round where either side is
// missing or the denominator is zero gives NaN, which Median skips. Pairing
// by round is the point: both were measured back to back, under the same
// load from whoever else shares the machine.
func Ratios(num, den []float64) []float64 {
	n := min(len(num), len(den))
	out := make([]float64, n)
	for i := 0; i < n; i++ {
		if math.IsNaN(num[i]) || math.IsNaN(den[i]) || den[i] == 0 {
			out[i] = math.NaN()
			continue
		}
		out[i] = num[i] / den[i]
	}
	return out
}

// MedianRatio is the median of per-round ratios num/den.
func MedianRatio(num, den []float64) float64 { return Median(Ratios(num, den)) }

// Field picks one figure from each result, index = round.
func Field(rs []Result, f func(Result) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

// Ops, P50 and P99 are the figures Field picks.
func Ops(r Result) float64 { return r.OpsPerSec }
func P50(r Result) float64 { return r.P50Millis }
func P99(r Result) float64 { return r.P99Millis }
