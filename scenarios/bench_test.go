package scenarios

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is this process's user+system CPU time. On a shared machine the
// wall clock measures the neighbours too; CPU time measures the run.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScenario reports, per scenario, simulated seconds per wall
// second and seeds per second (each iteration is one seed, checker
// included), and the same per CPU second (porcupine's search uses more
// than one core, so CPU time can exceed wall time). go test -run - -bench Scenario ./scenarios/
func BenchmarkScenario(b *testing.B) {
	for _, s := range All() {
		b.Run(s.Name, func(b *testing.B) {
			var simTime time.Duration
			var ops int64
			start, cpu0 := time.Now(), cpuTime()
			for i := 0; i < b.N; i++ {
				out := RunSeed(s, uint64(i+1))
				simTime += out.SimTime
				ops += out.Ops
			}
			wall, cpu := time.Since(start), cpuTime()-cpu0
			b.ReportMetric(simTime.Seconds()/wall.Seconds(), "sim-s/wall-s")
			b.ReportMetric(float64(b.N)/wall.Seconds(), "seeds/s")
			b.ReportMetric(float64(ops)/float64(b.N), "ops/seed")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/seed")
			b.ReportMetric(simTime.Seconds()/cpu.Seconds(), "sim-s/cpu-s")
		})
	}
}
