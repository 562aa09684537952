package sim

import "time"

// simEpoch is where every node's clock starts (before skew): a fixed Unix
// time, so traces and expiry times do not depend on when a run happens.
const simEpoch = int64(1_767_225_600) * int64(time.Second) // 2026-01-01T00:00:00Z

// ClockConfig is one node's clock error.
type ClockConfig struct {
	// Skew is a constant offset from true (virtual) time.
	Skew time.Duration
	// DriftPPM is the rate error in parts per million (±); it must stay
	// above -1e6 so the clock still moves forward.
	DriftPPM int64
}

// Clock is a node's seam.Clock: virtual time seen through the node's skew,
// drift and any steps a scenario applied. It is monotonic: scenarios step
// it forward only (see docs/simulation.md for why).
type Clock struct {
	w     *World
	cfg   ClockConfig
	steps int64
	gate  faultGate
	// onStep, when set, hears each step as the stretch of the clock's
	// readings it skipped (Node: the oracle's durability window).
	onStep func(fromNs, toNs int64)
}

func newClock(w *World, cfg ClockConfig) *Clock {
	if cfg.DriftPPM <= -1_000_000 {
		cfg.DriftPPM = -999_999
	}
	return &Clock{w: w, cfg: cfg}
}

// Now implements seam.Clock.
func (c *Clock) Now() int64 { return c.at(c.w.now) }

// at is what the clock reads at virtual time v.
func (c *Clock) at(v int64) int64 {
	return simEpoch + int64(c.cfg.Skew) + c.steps + v + v/1_000_000*c.cfg.DriftPPM + (v%1_000_000)*c.cfg.DriftPPM/1_000_000
}

// Step jumps the clock forward by d (an NTP step). Negative steps are
// refused: the oracle's expiry model assumes monotonic node clocks.
func (c *Clock) Step(d time.Duration) {
	if c.gate.allow("clock-step", d > 0) {
		from := c.Now()
		c.steps += int64(d)
		if c.onStep != nil {
			c.onStep(from, c.Now())
		}
	}
}

// virtualFor converts a duration on this clock into virtual time.
func (c *Clock) virtualFor(d time.Duration) time.Duration {
	return time.Duration(int64(d) * 1_000_000 / (1_000_000 + c.cfg.DriftPPM))
}

// Timers is seam.Timers on the event queue in one node's clock.
type Timers struct{ c *Clock }

// AfterFunc implements seam.Timers.
func (t Timers) AfterFunc(d time.Duration, f func()) func() bool {
	live := true
	t.c.w.After(t.c.virtualFor(d), func() {
		if live {
			live = false
			f()
		}
	})
	return func() bool {
		was := live
		live = false
		return was
	}
}
