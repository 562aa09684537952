package main

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestZipfMatchesItsLaw: the law is 1/(k+1)^theta normalised, and the
// drawn frequencies of the first ranks and of the tail follow it.
func TestZipfMatchesItsLaw(t *testing.T) {
	const n, draws, theta = 1000, 2_000_000, 0.99
	z := newZipf(n, theta)
	if p0, p1 := z.prob(0), z.prob(1); math.Abs(p1/p0-1/math.Pow(2, theta)) > 1e-9 {
		t.Fatalf("P(1)/P(0) = %g, want 2^-%g", p1/p0, theta)
	}
	r := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, n)
	for range draws {
		k := z.next(r)
		if k < 0 || k >= n {
			t.Fatalf("rank %d out of [0, %d)", k, n)
		}
		counts[k]++
	}
	for _, k := range []int{0, 1, 2, 9, 99} {
		want := draws * z.prob(k)
		got := float64(counts[k])
		if math.Abs(got-want) > 0.03*want+50 {
			t.Errorf("rank %d drawn %0.f times, want about %.0f", k, got, want)
		}
	}
	// The tail is reached too: the last tenth of the ranks gets its share.
	tail, want := 0, 0.0
	for k := n * 9 / 10; k < n; k++ {
		tail += counts[k]
		want += draws * z.prob(k)
	}
	if math.Abs(float64(tail)-want) > 0.05*want {
		t.Errorf("last tenth drawn %d times, want about %.0f", tail, want)
	}
}
