package scenarios

import (
	"math/rand/v2"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/sim"
)

// The queue scenarios (issue 21): lists used as queues in a 3-node group.
// Producers LPUSH unique values, consumers RPOP or block in BLPOP, on a
// few keys so that consumers wait and are woken by pushes from other
// connections; the leader crashes or is partitioned away, so blocked
// clients are redirected and pops retried. The history is checked with
// the queue model (checker/queue.go), and the final phase drains every
// list, so an acknowledged push that vanished is caught as well.
const (
	queueKeys    = 8
	queueClients = 6
	// queueBlock is BLPOP's timeout: clients wait long enough to be woken
	// by pushes and time out well under the client's own timeout.
	queueBlock = 300 * time.Millisecond
)

func queueConfig(name string, seed uint64) sim.Config {
	cfg := clusterBase(name, seed, cluster.FsyncAlways)
	cfg.Node.FS.TornProb = 0.3
	cfg.Workload.Clients = queueClients
	cfg.Workload.PlainKeys = queueKeys
	cfg.Workload.Queue = &sim.QueueConfig{BlockTimeout: queueBlock}
	cfg.Group.FollowerReadPct = 0 // READONLY GETs of a list answer WRONGTYPE
	return cfg
}

// zsetConfig is queueConfig's world with sorted sets: ZADD, ZINCRBY,
// ZSCORE, ZRANK and ZPOPMIN over 5 members per key.
func zsetConfig(name string, seed uint64) sim.Config {
	cfg := queueConfig(name, seed)
	cfg.Workload.Queue = nil
	cfg.Workload.ZSet = &sim.ZSetConfig{Members: 5}
	return cfg
}

// setConfig is queueConfig's world with sets: SADD, SREM, SISMEMBER,
// SCARD and SPOP over 6 members per key.
func setConfig(name string, seed uint64) sim.Config {
	cfg := queueConfig(name, seed)
	cfg.Workload.Queue = nil
	cfg.Workload.Set = &sim.SetConfig{Members: 6}
	return cfg
}

func init() {
	register(&Scenario{
		Name:    "set-crash-partition",
		Summary: "3-node group, sets (SADD, SREM, SISMEMBER, SCARD, SPOP over a few members): the leader loses power, crashes mid-I/O or is partitioned away, again and again; appendfsync always; linearizable (set model), every key popped empty at the end",
		Config: func(seed uint64) sim.Config {
			cfg := setConfig("set-crash-partition", seed)
			cfg.Schedule = leaderFaults
			return cfg
		},
	})
	register(&Scenario{
		Name:    "zset-crash-partition",
		Summary: "3-node group, sorted sets (ZADD, ZINCRBY, ZSCORE, ZRANK, ZPOPMIN over a few members with tying scores): the leader loses power, crashes mid-I/O or is partitioned away, again and again; appendfsync always; linearizable (zset model), every key popped empty at the end",
		Config: func(seed uint64) sim.Config {
			cfg := zsetConfig("zset-crash-partition", seed)
			cfg.Schedule = leaderFaults
			return cfg
		},
	})
	register(&Scenario{
		Name:    "queue-crash-partition",
		Summary: "3-node group, lists as queues (LPUSH, RPOP, BLPOP with clients blocked and woken across connections): the leader loses power, crashes mid-I/O or is partitioned away, again and again; appendfsync always; linearizable (queue model), every list drained at the end",
		Config: func(seed uint64) sim.Config {
			cfg := queueConfig("queue-crash-partition", seed)
			cfg.Schedule = leaderFaults
			return cfg
		},
	})
}

// leaderFaults: from clusterFaultsFrom, the leader is partitioned away
// from both followers (clients still reach it) or loses power or crashes
// mid-I/O, every 1.2 s or so.
func leaderFaults(r *sim.Run) {
	faultCycles(r, 1200*time.Millisecond, func() time.Duration {
		l := r.Group.Leader()
		if l != nil && r.Rand.IntN(2) == 0 {
			r.Fault("partition")
			r.Net.Partition([]uint64{l.ID()}, nodeIDs(r.Group.Followers()))
			return 500*time.Millisecond + time.Duration(r.Rand.Int64N(int64(2*time.Second)))
		}
		return crashNode(r, l)
	})
}

func init() {
	register(&Scenario{
		Name: "queue-reshard",
		Summary: "3 nodes, 2 replica groups, lists as queues (LPUSH, RPOP, BLPOP): a slot range holding queues moves from group 1 to group 2 and back under load " +
			"while clients wait in BLPOP (a blocked client on a moved slot retries: MOVED, ASK, TRYAGAIN) and group leaders lose power or are cut off; " +
			"linearizable (queue model), every list drained at the end",
		Config: func(seed uint64) sim.Config {
			rng := rand.New(rand.NewPCG(seed, 0x9e0e))
			moved, other := reshardRange(rng)
			g2 := cluster.SplitSlots(2)[1][0]
			// Many keys, so each holds few operations for the search.
			tags := tagsIn([]cluster.SlotRange{moved, other, g2}, []int{4, 2, 2})
			cfg := shardBase("queue-reshard", seed, cluster.FsyncAlways, 2, tags)
			cfg.Node.FS.TornProb = 0.3
			cfg.Workload.Clients = queueClients
			cfg.Workload.Queue = &sim.QueueConfig{BlockTimeout: queueBlock}
			cfg.Group.FollowerReadPct = 0
			batch := 1 + rng.IntN(4)
			pause := time.Duration(rng.IntN(30)) * time.Millisecond
			cfg.Schedule = func(r *sim.Run) {
				faultCycles(r, time.Second, func() time.Duration { return shardFault(r, false) })
				start := 1500*time.Millisecond + time.Duration(r.Rand.Int64N(int64(1500*time.Millisecond)))
				aim := &aimedCrash{r: r}
				movesBackAndForth(r, start, sim.SlotMoveSpec{Range: moved, From: 1, To: 2, Batch: batch, StepPause: pause, OnStep: aim.step})
			}
			return cfg
		},
	})
}
