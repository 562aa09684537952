package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/keel-db/keel/scenarios"
)

// progressBarWidth is the number of cells in the terminal's progress bar.
const progressBarWidth = 30

// progressBar is the one line keel sim run redraws on a terminal:
// "[#########.....] 12/40 seeds 30%, 3.1 seeds/s, 0 failures, about 9s left".
func progressBar(done, total int, rate float64, failures int, left time.Duration, width int) string {
	filled := 0
	pct := 100
	if total > 0 {
		filled = done * width / total
		pct = done * 100 / total
	}
	bar := strings.Repeat("#", filled) + strings.Repeat(".", width-filled)
	return fmt.Sprintf("[%s] %d/%d seeds %d%%, %.1f seeds/s, %d failures, about %s left", bar, done, total, pct, rate, failures, left)
}

// sweepCommand is the keel sim run command of a sweep.
func sweepCommand(p scenarios.SweepParams) string {
	cmd := "keel sim run --scenario " + p.Scenario + " --seeds " + p.Seeds
	if p.Swarm {
		cmd += " --swarm"
	}
	return cmd
}

// resumeJobs splits a sweep's jobs into those still to run and the
// recorded results of the others (the state file's results of seeds the
// sweep holds, each once: the last recorded wins).
func resumeJobs(jobs []job, recorded []scenarios.SeedResult) (todo []job, prior []scenarios.SeedResult) {
	byKey := map[scenarios.SeedKey]scenarios.SeedResult{}
	for _, r := range recorded {
		byKey[scenarios.SeedKey{Scenario: r.Scenario, Seed: r.Seed}] = r
	}
	for _, j := range jobs {
		if r, ok := byKey[scenarios.SeedKey{Scenario: j.Scenario, Seed: j.Seed}]; ok {
			prior = append(prior, r)
		} else {
			todo = append(todo, j)
		}
	}
	return todo, prior
}
