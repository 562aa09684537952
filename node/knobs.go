package node

import (
	"slices"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
)

// TestingKnobs plant deliberate bugs in the node, so that tests can prove
// the simulator catches them (a sweep that cannot fail proves nothing).
// They are cluster.TestingKnobs' counterpart for what the node decides:
// sessions, transactions, pub/sub. Production code never sets them: only
// the simulator's node passes them (sim.NodeConfig.NodeKnobs through
// Config.Knobs); keel server has no way to. A nil *TestingKnobs is the
// correct program, and every hook below is a no-op on nil. Each knob is
// one plausible mistake, a small deviation next to the correct line it
// replaces; scenarios/planted.go runs each in a scenario that catches it
// (docs/checker.md, "Planted bugs").
type TestingKnobs struct {
	// DropNotifyEvery, when N > 0, loses every N-th keyspace event a
	// replica raises (notify.go): the event is counted but never
	// published, the kind of slip a "skip the publish when the
	// subscriber registry is busy" shortcut makes. A subscriber that
	// stays connected misses a notification of a write it was owed.
	DropNotifyEvery int

	// IgnoreWatch: EXEC hands its block to the replica without the keys
	// the connection WATCHed (multi.go), as if the watch list were reset
	// one line too early. The block then always runs, so a WATCH-retry
	// transfer that read a balance which changed since pays out money the
	// payer no longer has.
	IgnoreWatch bool

	// FollowerEvicts: a follower over maxmemory evicts keys of its own
	// choosing on every tick (evict.go), as if "only the leader decides"
	// were forgotten. Its keyspace then drifts from the leader's at the
	// same applied index.
	FollowerEvicts bool
	// EvictionUnlogged: the leader deletes the victims it picks in place
	// instead of logging their eviction (evict.go). The followers, and
	// the leader's own replay after a restart, still hold them.
	EvictionUnlogged bool
	// PlaceReplicaTwice: the node counts group 1's first node twice in
	// its placement, in place of the group's last (placement.go), as a
	// loop that fills replica slots from the wrong index would. Group 1
	// then runs on one node fewer than --replicas: its keys have fewer
	// copies than promised and one more failure stops it.
	PlaceReplicaTwice bool

	// LoseRetriedPop: a blocked client's retry that pops an element
	// (blocking.go) is read as "nothing there" when its reply is an
	// array, as if the check for an empty pop looked at the reply's type
	// instead of its null: the element has left the list through the log,
	// the client waits on and times out, and nobody ever gets it.
	LoseRetriedPop bool

	// ZRankReversed: the node hands ZRANK to the replica as ZREVRANK (a
	// rank read off the wrong end of the order, as a port from an index
	// kept highest-first would). Right for a one-member set only.
	ZRankReversed bool

	// SAddCountsEveryMember: the node answers SADD with the number of
	// members it was given, as if every one were new (the count taken
	// from the request instead of the reply): a client is told it added a
	// member the set already held, which it then counts twice.
	SAddCountsEveryMember bool

	// DropBeforeRemoved: a node deletes its replica of a group as soon as
	// the meta record no longer places it there (moves.go), without
	// waiting for the group's configuration to leave it out: the group
	// still counts a voter whose data is gone (the check a move exists
	// to keep, "drop only after the removal committed").
	DropBeforeRemoved bool

	// RemoveBeforePromote: a group's leader removes the replica a move
	// takes away while the new one is still a learner (moves.go), the
	// order reversed: for a while the group has one voter fewer than its
	// replication factor, one failure from stopping (and a move of the
	// last two copies from losing them).
	RemoveBeforePromote bool

	// DeadOnOwnView: the meta leader marks a member dead on its own
	// silence alone (moves.go, markDead), the other nodes' heard frames
	// ignored (liveness.go), as before they existed. A meta leader cut
	// off from one node that every other node still hears then re-creates
	// that node's replicas elsewhere and drops them from it.
	DeadOnOwnView bool

	// ACLDigestTrustsIndex: a node outside group 1 takes a digest of a
	// newer index for the table it has (acl_bus.go), the hash not
	// compared, as if "a newer index" meant "nothing changed": it never
	// pulls a changed table and keeps checking against an old one.
	ACLDigestTrustsIndex bool

	// SkipFoundingOpen: the preferred leader of a group a split adds
	// (the first node of its target) never opens its replica (moves.go),
	// as a loop over the new group's nodes that starts at index 1 would.
	// The group bootstraps on the others, counting the missing node as a
	// voter: its keys have one copy fewer than promised, and one more
	// failure stops it.
	SkipFoundingOpen bool
}

func (k *TestingKnobs) aclDigestTrustsIndex() bool { return k != nil && k.ACLDigestTrustsIndex }

func (k *TestingKnobs) deadOnOwnView() bool { return k != nil && k.DeadOnOwnView }

func (k *TestingKnobs) skipFoundingOpen() bool { return k != nil && k.SkipFoundingOpen }

func (k *TestingKnobs) removeBeforePromote() bool { return k != nil && k.RemoveBeforePromote }

func (k *TestingKnobs) dropBeforeRemoved() bool { return k != nil && k.DropBeforeRemoved }

// dropNotify reports whether the keyspace event numbered seq (1-based,
// counted per notifier) is lost (DropNotifyEvery).
func (k *TestingKnobs) dropNotify(seq int64) bool {
	return k != nil && k.DropNotifyEvery > 0 && seq%int64(k.DropNotifyEvery) == 0
}

func (k *TestingKnobs) ignoreWatch() bool { return k != nil && k.IgnoreWatch }

func (k *TestingKnobs) followerEvicts() bool   { return k != nil && k.FollowerEvicts }
func (k *TestingKnobs) evictionUnlogged() bool { return k != nil && k.EvictionUnlogged }

// placeReplicaTwice plants PlaceReplicaTwice in p (after its check).
func (k *TestingKnobs) placeReplicaTwice(p *cluster.Placement) {
	if k == nil || !k.PlaceReplicaTwice || len(p.Replicas) == 0 || len(p.Replicas[0]) < 2 {
		return
	}
	reps := slices.Clone(p.Replicas[0])
	reps[len(reps)-1] = reps[0]
	p.Replicas = slices.Clone(p.Replicas)
	p.Replicas[0] = reps
}

func (k *TestingKnobs) loseRetriedPop() bool { return k != nil && k.LoseRetriedPop }

// request is a plain request as the planted bugs change it: ZRANK turned
// into ZREVRANK (ZRankReversed), SADD's count replaced (
// SAddCountsEveryMember).
func (k *TestingKnobs) request(argv [][]byte, w engine.Writer) ([][]byte, engine.Writer) {
	switch {
	case k == nil:
	case k.ZRankReversed && eqFold(argv[0], "zrank"):
		argv = append([][]byte{[]byte("ZREVRANK")}, argv[1:]...)
	case k.SAddCountsEveryMember && eqFold(argv[0], "sadd") && len(argv) > 2:
		w = &countEvery{Writer: w, n: int64(len(argv) - 2)}
	}
	return argv, w
}

// countEvery answers an integer reply with n instead.
type countEvery struct {
	engine.Writer
	n int64
}

func (c *countEvery) WriteInt(int64) { c.Writer.WriteInt(c.n) }
