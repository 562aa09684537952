package scenarios

import (
	"sort"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/node"
	"github.com/keel-db/keel/sim"
)

// PlantedBug is a deliberate bug (a cluster.TestingKnobs field) run in the
// scenario that catches it: the proof that a green sweep means something.
// Its scenario, "planted-<Name>", is found by Lookup (so `keel sim replay
// --scenario planted-<Name> --seed N` replays a failure) but is not in All:
// `--scenario all` never runs a planted bug. Only the simulated node gets
// the knobs; the server has no way to set them.
type PlantedBug struct {
	Name    string
	Summary string
	// Base is the scenario the bug runs in.
	Base string
	// Knobs switches the bug on in the replicas, NodeKnobs in the node
	// around them (sessions, transactions, pub/sub).
	Knobs     cluster.TestingKnobs
	NodeKnobs node.TestingKnobs
	// CheckerBlind: the bug breaks an invariant the linearizability
	// checker cannot see (a notification lost, a follower that never
	// catches up, a TTL dropped), so TestPlantedBugs requires the
	// simulator's own checks, not an illegal history, to catch it.
	CheckerBlind bool
	// Seeds is the range TestPlantedBugs sweeps in -short mode (found
	// empirically: at least one seed fails with the bug, all pass without),
	// Long the range it sweeps otherwise.
	Seeds, Long [2]uint64
	// Tune adjusts the base scenario's world (nil: as is).
	Tune func(*sim.Config)
	// Invariant, when set, is the Raft invariant the bug breaks
	// (sim.InvElectionSafety, ...): TestPlantedBugs requires a failing
	// seed whose failures name it, so each invariant check is proven to
	// bite.
	Invariant string
}

// PlantedPrefix starts the name of every planted-bug scenario.
const PlantedPrefix = "planted-"

// Planted lists the planted bugs, in issue 5's order.
var Planted = []PlantedBug{
	{
		Name:    "snapshot-walk-skips-keys",
		Summary: "a snapshot's walk of the keyspace drops one key in every 64 (a batching loop's off-by-one): a restart from the snapshot loses acknowledged writes, which only a world with thousands of keys shows",
		Base:    "crash-many-keys", Knobs: cluster.TestingKnobs{SnapshotWalkSkipsKeys: true},
		Seeds: [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "ack-before-fsync",
		Summary: "appendfsync always acknowledges writes before the WAL is fsynced",
		Base:    "crash-restart", Knobs: cluster.TestingKnobs{AckBeforeFsync: true},
		Seeds: [2]uint64{1, 4}, Long: [2]uint64{1, 40},
	},
	{
		Name:    "stale-read",
		Summary: "GET is answered from a pending snapshot's point-in-time view instead of the live keyspace",
		Base:    "baseline", Knobs: cluster.TestingKnobs{StaleReadFromSnapshot: true},
		Seeds: [2]uint64{5, 9}, Long: [2]uint64{1, 40},
	},
	{
		Name:    "incrby-lost-update",
		Summary: "INCRBY is logged as the SET of its result, computed from the keyspace before the batch (an earlier INCRBY of the same batch is lost)",
		Base:    "slow-disk", Knobs: cluster.TestingKnobs{IncrByFromBatchStart: true},
		Seeds: [2]uint64{1, 4}, Long: [2]uint64{1, 40},
	},
	{
		Name:    "deleted-key-resurrected",
		Summary: "recovery replays from the newest snapshot's index but loads the keys of the one before it: deleted keys come back",
		Base:    "crash-restart", Knobs: cluster.TestingKnobs{RecoverOlderSnapshotData: true},
		Seeds: [2]uint64{1, 3}, Long: [2]uint64{1, 40},
	},
	{
		Name:    "truncate-after-torn",
		Summary: "recovery trusts its first read of the active WAL segment and truncates at any bad record, dropping the valid fsynced records after a transient read flip",
		Base:    readFlips, Knobs: cluster.TestingKnobs{WALTornTailAnywhere: true},
		// Seeds 7 and 73 of this world fail with the correct program too
		// (two flipped reads in a row: it refuses to start), see readFlips.
		Seeds: [2]uint64{1, 3}, Long: [2]uint64{8, 47},
	},
	{
		Name:    "apply-twice",
		Summary: "recovery replays the WAL from the snapshot's index instead of the entry after it: that entry is applied twice",
		Base:    "crash-restart", Knobs: cluster.TestingKnobs{ReplayFromSnapshotIndex: true},
		Tune: func(c *sim.Config) {
			// Many snapshots and restarts: the entry at the snapshot
			// index must hold an INCRBY of an integer for it to show.
			c.Node.SnapshotLogBytes = 2 << 10
			c.Schedule = func(r *sim.Run) { every(r, 300*time.Millisecond, r.Node.PowerOff) }
		},
		Seeds: [2]uint64{1, 7}, Long: [2]uint64{1, 40},
	},
	{
		Name:    "watch-ignored",
		Summary: "EXEC hands its block to the replica without the connection's WATCHed keys: a watched transfer runs although the payer's balance changed",
		Base:    "bank-watch", NodeKnobs: node.TestingKnobs{IgnoreWatch: true},
		Seeds: [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "cluster-watch-ignored",
		Summary: "EXEC hands its block to the replica without the connection's WATCHed keys: a watched transfer runs although the payer's balance changed",
		Base:    "cluster-bank-watch", NodeKnobs: node.TestingKnobs{IgnoreWatch: true},
		Seeds: [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "notify-dropped",
		Summary: "the node loses every 300th keyspace event a replica raises (counted, never published): a subscriber misses the notification of a write it was owed",
		Base:    "pubsub-notify", NodeKnobs: node.TestingKnobs{DropNotifyEvery: 300},
		// Notifications are not in the linearizability history.
		CheckerBlind: true,
		Seeds:        [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "moved-keys-lose-ttl",
		Summary: "IMPORTKEYS stores the keys a slot move carries without their deadlines: a key with a TTL lives forever in the group it moved to",
		Base:    "cluster-reshard-ttl", Knobs: cluster.TestingKnobs{MovedKeysLoseTTL: true},
		// The values stay right: only the TTL check sees it.
		CheckerBlind: true,
		Seeds:        [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "fcall-keys-ungated",
		Summary: "the slot gate walks no key of an FCALL: a call on a migrating slot whose keys are locked or already moved runs on the group giving the slot away",
		Base:    "cluster-fcall-groups", Knobs: cluster.TestingKnobs{FCallKeysUngated: true},
		Seeds: [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "snapshot-stream-drops-tail",
		Summary: "the leader announces a streamed snapshot one byte shorter than its file: the follower's copy never verifies and a follower that needs a snapshot never catches up",
		Base:    "cluster-big-snapshots", Knobs: cluster.TestingKnobs{SnapStreamDropsTail: true},
		// The leader's answers stay right: convergence and the follower
		// reads see it.
		CheckerBlind: true,
		Seeds:        [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "vote-reject-lost",
		Summary: "a vote response leaves with its Reject flag cleared: a candidate counts a refusal as a vote, and two candidates of one term can both win",
		Base:    "cluster-leader-crash", Knobs: cluster.TestingKnobs{VoteRejectLost: true},
		Invariant: sim.InvElectionSafety,
		Seeds:     [2]uint64{1, 4}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "log-truncate-off-by-one",
		Summary: "when a new leader's entries conflict with a follower's log, the log store cuts the stale suffix one entry too late: the first conflicting entry survives",
		Base:    "cluster-leader-partition", Knobs: cluster.TestingKnobs{LogTruncateOffByOne: true},
		Invariant: sim.InvLogMatching,
		Seeds:     [2]uint64{1, 4}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "cluster-ack-before-fsync",
		Summary: "appendfsync always acknowledges (and votes on) entries before the WAL is fsynced, on every replica of a group: a power loss of the whole group loses committed entries",
		Base:    "cluster-leader-crash", Knobs: cluster.TestingKnobs{AckBeforeFsync: true},
		Invariant: sim.InvLeaderCompleteness,
		Seeds:     [2]uint64{1, 4}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "apply-before-commit",
		Summary: "a replicated replica applies the entries it persisted before they commit: a leader cut off applies writes a new leader replaces",
		Base:    "cluster-leader-partition", Knobs: cluster.TestingKnobs{ApplyBeforeCommit: true},
		Invariant: sim.InvStateMachine,
		Seeds:     [2]uint64{1, 4}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "follower-evicts",
		Summary: "a follower over maxmemory evicts keys of its own choosing on its ticks, unlogged: its keyspace drifts from the leader's at the same applied index",
		Base:    "cluster-evict", NodeKnobs: node.TestingKnobs{FollowerEvicts: true},
		// It is caught on about a third of seeds (6 of 1..20 before the
		// ordered index's per-key charge went from 10 to 14 bytes, 7
		// after); the short pair is two that the checker itself judges.
		Seeds: [2]uint64{14, 15}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "eviction-unlogged",
		Summary: "the leader deletes the keys it evicts in place instead of logging their eviction: followers and its own replay still hold them",
		Base:    "cluster-evict", NodeKnobs: node.TestingKnobs{EvictionUnlogged: true},
		Seeds: [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "placement-replica-twice",
		Summary: "the node counts group 1's first node twice in its placement, in place of the last: group 1 runs on two nodes, its keys with one copy fewer than --replicas promises",
		Base:    "cluster-placement", NodeKnobs: node.TestingKnobs{PlaceReplicaTwice: true},
		// The answers stay right (two of two still commit): the voter and
		// placement checks see it.
		CheckerBlind: true,
		Seeds:        [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "lost-blocked-pop",
		Summary: "a blocked client's retry that pops an element is read as \"nothing there\": the element left the list through the log, the client times out, nobody gets it",
		Base:    "queue-crash-partition", NodeKnobs: node.TestingKnobs{LoseRetriedPop: true},
		Seeds: [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "zrank-reversed",
		Summary: "the node hands ZRANK to the replica as ZREVRANK: ranks read off the wrong end of the order",
		Base:    "zset-crash-partition", NodeKnobs: node.TestingKnobs{ZRankReversed: true},
		Seeds: [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "sadd-counts-every-member",
		Summary: "the node answers SADD with the number of members it was given, as if every one were new: a member already there is counted twice",
		Base:    "set-crash-partition", NodeKnobs: node.TestingKnobs{SAddCountsEveryMember: true},
		Seeds: [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "follower-pops-wrong-end",
		Summary: "a follower (or a recovery) applies a function's RPOP effect as LPOP: its list differs from the leader's, and once it leads, pops return the wrong elements",
		Base:    "fcall-queue-crash-partition", Knobs: cluster.TestingKnobs{FollowerPopsWrongEnd: true},
		Seeds: [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "getex-unlogged",
		Summary: "GETEX is submitted as a read: its PERSIST or new TTL changes the node's memory and never reaches the log, so a restart brings the old TTL back",
		Base:    "grammar", Knobs: cluster.TestingKnobs{GetExUnlogged: true},
		// The grammar workload keeps no linearizability history: the
		// oracle's recovery check sees it.
		CheckerBlind: true,
		Seeds:        [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "move-drops-before-removed",
		Summary: "a node deletes its replica of a group as soon as the meta record places the group elsewhere, while the group still counts it as a voter",
		Base:    "cluster-grow", NodeKnobs: node.TestingKnobs{DropBeforeRemoved: true},
		// The answers stay right while two of three voters remain: the
		// drop check (sim/moves.go) sees it.
		CheckerBlind: true,
		Seeds:        [2]uint64{4, 5}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "move-removes-before-promote",
		Summary: "a group's leader removes the replica a move takes away while the new one is still a learner: the group runs on one voter fewer than its replication factor",
		Base:    "cluster-grow", NodeKnobs: node.TestingKnobs{RemoveBeforePromote: true},
		// Two voters of two still commit: the voter-count check
		// (sim/moves.go) sees it.
		CheckerBlind: true,
		Seeds:        [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "dead-on-own-view",
		Summary: "the meta leader marks a member dead on its own silence alone, ignoring the other nodes' reports: a leader cut off from one node that the rest still hear re-creates its replicas elsewhere",
		Base:    "cluster-dead-view", NodeKnobs: node.TestingKnobs{DeadOnOwnView: true},
		// The final record lists the cut-off node dead (the scenario's
		// own check); the moves themselves are correct.
		CheckerBlind: true,
		Seeds:        [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "acl-digest-trusts-index",
		Summary: "a node outside group 1 takes an ACL digest of a newer index for the table it has, without comparing hashes: it never learns a changed table",
		Base:    "cluster-dead-view", NodeKnobs: node.TestingKnobs{ACLDigestTrustsIndex: true},
		// The final users differ (the scenario's own check).
		CheckerBlind: true,
		Seeds:        [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
	{
		Name:    "torn-tail-resync",
		Summary: "WAL recovery steps over a bad record in the active segment to the next valid one: a torn tail that lost an earlier sector and kept a later one brings back records after a hole",
		Base:    "bank-crash", Knobs: cluster.TestingKnobs{WALTornTailResync: true},
		// A rare state: a power loss that kept a later sector of the
		// unsynced tail and lost an earlier one (1 seed in 400).
		CheckerBlind: true,
		Seeds:        [2]uint64{131, 132}, Long: [2]uint64{101, 140},
	},
	{
		Name:    "receive-clears-snapshots",
		Summary: "a follower about to receive its leader's snapshot deletes its own snapshots first (to make room): a crash before the install completes leaves no snapshot and a log compacted past its start",
		Base:    "cluster-follower-crash", Knobs: cluster.TestingKnobs{ReceiveClearsSnapshots: true},
		// A rare state: a crash in the snapshot-install window of a
		// follower that had snapshots of its own (1 seed in 100). The
		// refusal to start catches it, not the history.
		CheckerBlind: true,
		Seeds:        [2]uint64{15, 16}, Long: [2]uint64{1, 40},
	},
	{
		Name:    "snapshot-job-clears-first",
		Summary: "a snapshot job deletes the snapshots it replaces (and fsyncs the directory) before writing the new one: a crash while it writes leaves no snapshot and a log compacted past its start",
		Base:    "crash-restart", Knobs: cluster.TestingKnobs{SnapshotJobClearsFirst: true},
		// A rare state: a crash in the snapshot-write window after the
		// first snapshot (2 seeds in 100).
		CheckerBlind: true,
		Seeds:        [2]uint64{1, 2}, Long: [2]uint64{1, 100},
	},
	{
		Name:    "split-founder-skips-open",
		Summary: "the first node of a group a split adds never opens its replica: the group bootstraps on the other two, counting a voter that holds nothing",
		Base:    "cluster-split", NodeKnobs: node.TestingKnobs{SkipFoundingOpen: true},
		// Two voters of three still commit: the end checks (sim/moves.go
		// and multigroup.go: every node of a target holds a replica of
		// the group) see it.
		CheckerBlind: true,
		Seeds:        [2]uint64{1, 2}, Long: [2]uint64{1, 20},
	},
}

// readFlips is the world of truncate-after-torn: transient bit flips on
// WAL reads during restarts, nothing rotten at rest, appendfsync always.
// Every flip is a read error a re-read fixes, so no acknowledged write may
// be lost. It is not registered: with two flipped reads in a row of the
// same segment (seeds 7 and 73 of 1..80), the correct program refuses to
// start (or, when both land in the last batch, cuts it as a torn tail),
// which this world's strict durability counts as a failure.
const readFlips = "read-flips"

func readFlipsConfig(seed uint64) sim.Config {
	cfg := base(readFlips, seed, cluster.FsyncAlways)
	// One segment: a flip in a fully synced older segment makes the
	// correct program refuse to start when its re-read flips too.
	cfg.Node.SegmentBytes = 16 << 20
	cfg.Schedule = func(r *sim.Run) {
		every(r, time.Second, func() {
			r.Trace("read flips on")
			r.Node.FS.SetFaults(sim.DiskFaults{Kinds: sim.KindWAL, ReadFlipProb: readFlipProb})
			r.Node.PowerOff()
			r.At(time.Duration(r.Now())+200*time.Millisecond, func() {
				r.Trace("read flips off")
				r.Node.FS.SetFaults(sim.DiskFaults{})
			})
		})
	}
	return cfg
}

// readFlipProb is the chance that one read of a WAL segment returns a
// flipped bit while flips are on.
const readFlipProb = 0.05

var planted = map[string]*Scenario{}

func init() {
	for i := range Planted {
		p := &Planted[i]
		name := PlantedPrefix + p.Name
		knobs, nodeKnobs := p.Knobs, p.NodeKnobs
		baseName := p.Base
		tune := p.Tune
		planted[name] = &Scenario{
			Name:    name,
			Summary: "planted bug: " + p.Summary + " (in " + baseName + ")",
			Config: func(seed uint64) sim.Config {
				var cfg sim.Config
				if baseName == readFlips {
					cfg = readFlipsConfig(seed)
				} else {
					cfg = registry[baseName].Config(seed)
				}
				cfg.Scenario = name
				if tune != nil {
					tune(&cfg)
				}
				if knobs != (cluster.TestingKnobs{}) {
					k := knobs
					cfg.Node.Knobs = &k
				}
				if nodeKnobs != (node.TestingKnobs{}) {
					k := nodeKnobs
					cfg.Node.NodeKnobs = &k
				}
				return cfg
			},
		}
	}
}

// PlantedScenarios returns the planted-bug scenarios, sorted by name.
func PlantedScenarios() []*Scenario {
	out := make([]*Scenario, 0, len(planted))
	for _, s := range planted {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
