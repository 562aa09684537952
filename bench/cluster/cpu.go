package main

import (
	"math"
	"time"

	"github.com/keel-db/keel/bench/internal/harness"
)

// CPU accounting of one run: what every server process and redis-benchmark
// spent, from /proc (Linux). On a machine whose cores the servers share
// with the load generator, CPU per request moves much less with outside
// load than throughput does, and it bounds throughput once the cores are
// busy: ops/s <= cores / (CPU per request of everything serving it).

// cpuUse is what one run cost.
type cpuUse struct {
	wall     time.Duration
	requests int
	// server is each server process's utime+stime over the run: the
	// process redis-benchmark drives (a group's leader) first, then the
	// others in start order.
	server []time.Duration
	client time.Duration // redis-benchmark's own
	// machineBusy is the share of all the machine's CPU time (every
	// process, this run's and anyone else's) that was not idle, from
	// /proc/stat; NaN when unreadable.
	machineBusy float64
}

// perRequest is d per request in µs.
func (u cpuUse) perRequest(d time.Duration) float64 {
	return float64(d.Nanoseconds()) / 1e3 / float64(u.requests)
}

func (u cpuUse) serverTotal() time.Duration {
	var t time.Duration
	for _, d := range u.server {
		t += d
	}
	return t
}

// utilization is the share of cores × wall that the run's own processes
// (servers and redis-benchmark) used.
func (u cpuUse) utilization(cores int) float64 {
	return float64(u.serverTotal()+u.client) / (float64(u.wall) * float64(cores))
}

// cpuMeter takes the readings before a run and turns the ones after into
// a cpuUse.
type cpuMeter struct {
	pids        []int
	server      []time.Duration
	busy, total int64
	machineOK   bool
	start       time.Time
}

func startCPU(pids []int) (*cpuMeter, error) {
	m := &cpuMeter{pids: pids}
	for _, pid := range pids {
		d, err := harness.ProcessCPU(pid)
		if err != nil {
			return nil, err
		}
		m.server = append(m.server, d)
	}
	var err error
	m.busy, m.total, err = harness.MachineTicks()
	m.machineOK = err == nil
	m.start = time.Now()
	return m, nil
}

// stop reads the counters again; requests is how many the run sent.
func (m *cpuMeter) stop(requests int, client time.Duration) (cpuUse, error) {
	u := cpuUse{wall: time.Since(m.start), requests: requests, client: client, machineBusy: math.NaN()}
	for i, pid := range m.pids {
		d, err := harness.ProcessCPU(pid)
		if err != nil {
			return u, err
		}
		u.server = append(u.server, d-m.server[i])
	}
	if busy, total, err := harness.MachineTicks(); err == nil && m.machineOK && total > m.total {
		u.machineBusy = float64(busy-m.busy) / float64(total-m.total)
	}
	return u, nil
}
