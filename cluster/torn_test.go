package cluster

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// After a crash that tears unsynced data in any way a page cache can,
// recovery never refuses to start, and the state it recovers is the state
// after some prefix of the acknowledged batches: under always the whole
// of them, under everysec and no at least those before the last fsync.
func TestTornCrashRecoversAPrefix(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for seed := 0; seed < seeds; seed++ {
		for _, policy := range []FsyncPolicy{FsyncAlways, FsyncEverySec, FsyncNo} {
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(policy)))
			fs, dir := newTestDisk(), "data"
			r := openT(t, fs, dir, func(o *Options) { o.Fsync = policy; o.SegmentBytes = 1 << 10 })
			now := t0
			states := []string{dump(r, now)}
			durable := 0 // index in states known fsynced
			for b := 0; b < 60; b++ {
				var cmds []string
				for j := rng.IntN(4); j >= 0; j-- {
					k := fmt.Sprintf("k%d", rng.IntN(12))
					switch rng.IntN(3) {
					case 0:
						cmds = append(cmds, "DEL "+k)
					case 1:
						cmds = append(cmds, "INCR n"+k)
					default:
						cmds = append(cmds, fmt.Sprintf("SET %s %d-%d", k, b, j))
					}
				}
				do(r, now, cmds...)
				states = append(states, dump(r, now))
				if policy == FsyncAlways {
					durable = len(states) - 1
				}
				now += 50e6
				if rng.IntN(8) == 0 {
					now += sec
					r.Tick(now)
					if policy == FsyncEverySec {
						durable = len(states) - 1
					}
				}
			}
			c, err := Open(Options{FS: fs.tornClone(rng), Dir: dir, AppendOnly: true})
			if err != nil {
				t.Fatalf("seed %d %s: refused to start after a torn crash: %v", seed, policy, err)
			}
			got := dump(c, now)
			_ = c.Close()
			_ = r.Close()
			ok := false
			for i := durable; i < len(states); i++ {
				if states[i] == got {
					ok = true
					break
				}
			}
			if !ok {
				t.Fatalf("seed %d %s: recovered state is not the state after any batch from %d on:\n%s", seed, policy, durable, got)
			}
		}
	}
}
