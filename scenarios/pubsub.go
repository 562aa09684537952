package scenarios

import (
	"time"

	"github.com/keel-db/keel/sim"
)

// Keyspace notifications under faults (sim/subscriber.go): the baseline
// world with notify-keyspace-events on, writers doing SET/INCRBY/DEL on
// plain keys only (no TTL key: an expiry's event has no moment the model
// could time), and subscriber clients on __keyevent@0__:* that ping their
// connection and subscribe again when it dies. Crashes and partitions cut
// subscriptions short; every session must still have received exactly the
// events of the writes the node executed while it was subscribed, in
// execution order (a lost session: a prefix of them).
const (
	// notifySubscribers: subscriber clients beside the ten writers.
	notifySubscribers = 3
	// notifyFlags is notify-keyspace-events: keyevent channels for the
	// generic (del) and string (set, incrby) classes.
	notifyFlags = "Eg$"
)

func init() {
	register(&Scenario{
		Name: "pubsub-notify",
		Summary: "keyspace notifications (notify-keyspace-events Eg$): subscribers on __keyevent@0__:* ping and resubscribe while the node loses power " +
			"and connections are cut; a session that stayed connected gets every event of every write executed while it was subscribed, exactly once, " +
			"in execution order; a lost one a gap-free prefix",
		Config: func(seed uint64) sim.Config {
			cfg := base("pubsub-notify", seed, policyFor(seed))
			cfg.Node.NotifyKeyspaceEvents = notifyFlags
			cfg.Node.FS.TornProb = 0.3
			cfg.Workload.VolatileKeys = 0
			cfg.Workload.Subscribers = notifySubscribers
			cfg.Schedule = func(r *sim.Run) {
				crashEvery(r, 2*time.Second)
				every(r, 1500*time.Millisecond, func() {
					partitionSome(r)
					r.At(time.Duration(r.Now())+time.Duration(50+r.Rand.IntN(600))*time.Millisecond, r.Net.Heal)
				})
			}
			return cfg
		},
	})
}

// partitionSome cuts the node off from every client, or some clients both
// ways, or one direction of some clients' links (requests or replies
// lost), as the partition scenario does.
func partitionSome(r *sim.Run) {
	r.Fault("partition")
	cutClients(r)
}

// cutClients makes one of partitionSome's cuts.
func cutClients(r *sim.Run) {
	all := []uint64{r.Node.ID()}
	for _, c := range r.Clients {
		all = append(all, c.ID())
	}
	switch r.Rand.IntN(4) {
	case 0:
		r.Net.Isolate(r.Node.ID(), all)
	case 1:
		var cut []uint64
		for _, c := range r.Clients {
			if r.Rand.IntN(2) == 0 {
				cut = append(cut, c.ID())
			}
		}
		r.Net.Partition([]uint64{r.Node.ID()}, cut)
	case 2:
		for _, c := range r.Clients {
			if r.Rand.IntN(2) == 0 {
				r.Net.Block(r.Node.ID(), c.ID())
			}
		}
	default:
		for _, c := range r.Clients {
			if r.Rand.IntN(2) == 0 {
				r.Net.Block(c.ID(), r.Node.ID())
			}
		}
	}
}
