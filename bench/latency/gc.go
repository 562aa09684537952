package main

import (
	"fmt"
	"strconv"
	"strings"
)

// gcSummary adds up the GC cycles GODEBUG=gctrace=1 reported in one phase.
type gcSummary struct {
	cycles int
	// stwMaxMillis is the longest stop-the-world pause (sweep termination
	// or mark termination); stwTotalMillis their sum.
	stwMaxMillis, stwTotalMillis float64
	// markMillis is the concurrent mark and scan wall time, summed.
	markMillis float64
	// heapMB is the live heap (the last "->" figure) of the last cycle.
	heapMB int
}

func (g gcSummary) String() string {
	if g.cycles == 0 {
		return "no GC"
	}
	return fmt.Sprintf("%d GC, mark %.0f ms, STW max %.2f ms, live heap %d MB", g.cycles, g.markMillis, g.stwMaxMillis, g.heapMB)
}

// parseGCTrace reads gctrace lines such as
//
//	gc 12 @3.456s 2%: 0.020+15+0.010 ms clock, 0.040+1.2/7.5/0+0.020 ms cpu, 4->5->2 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 2 P
//
// and ignores every other line. ok is false when none was found.
func parseGCTrace(log string) (g gcSummary, ok bool) {
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "gc ") {
			continue
		}
		clock, rest, found := strings.Cut(line, " ms clock")
		if !found {
			continue
		}
		i := strings.LastIndexByte(clock, ' ')
		parts := strings.Split(clock[i+1:], "+")
		if len(parts) != 3 {
			continue
		}
		var v [3]float64
		bad := false
		for j, p := range parts {
			f, err := strconv.ParseFloat(p, 64)
			if err != nil {
				bad = true
				break
			}
			v[j] = f
		}
		if bad {
			continue
		}
		ok = true
		g.cycles++
		g.stwTotalMillis += v[0] + v[2]
		g.stwMaxMillis = max(g.stwMaxMillis, v[0], v[2])
		g.markMillis += v[1]
		for _, f := range strings.Split(rest, ", ") {
			if heap, found := strings.CutSuffix(f, " MB"); found && strings.Contains(heap, "->") {
				hs := strings.Split(heap, "->")
				if n, err := strconv.Atoi(hs[len(hs)-1]); err == nil {
					g.heapMB = n
				}
			}
		}
	}
	return g, ok
}
