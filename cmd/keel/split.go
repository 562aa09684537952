package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
)

// keel cluster split: splits a replica group of a placed cluster online
// (docs/cluster.md, "Splitting a group"). Two steps, each of which a
// rerun finds where a crash left it:
//  1. a new, empty group: CLUSTER ADDGROUP (a write of the meta record,
//     answered by group 1's leader), whose nodes bootstrap it; skipped
//     when the cluster already has an empty group (one added by a run
//     that died before moving anything);
//  2. the slots: the upper half of the group's slots (or --slots) move to
//     the new group with the slot move of `keel cluster reshard`; a move
//     left half-done (the group still migrating slots) is finished first.

const splitUsage = `usage: keel cluster split --node host:port --group G [--slots A-B] [--batch N]

Splits replica group G of a placed cluster (--replicas below the nodes,
started with --groups-max above the groups it has): adds an empty group on
the least loaded nodes, waits for its leader, then moves the upper half of
G's slots (or slots A-B, all in G) to it, keys included, while clients keep
reading and writing them. Prints progress; returns once the slots are in the
new group. Rerun the same command if it was interrupted: it finds the group
it added (an empty one) or the move it left half-done and finishes it.

flags:
  --node host:port   a node of the cluster
  --group G          the group to split (CLUSTER GROUPS lists them)
  --slots A-B        the slots to give the new group (default: G's upper half)
  --batch 100        keys per MOVEKEYS step
`

const (
	// splitAddTimeout bounds the wait for the new group to be known, with
	// a leader, at --node.
	splitAddTimeout = 2 * time.Minute
	// splitRetryPause paces the polls of CLUSTER GROUPS.
	splitRetryPause = 200 * time.Millisecond
	// splitUnsureWait is how long the command looks for a new group after
	// an ADDGROUP whose outcome it cannot know before sending it again.
	splitUnsureWait = 5 * time.Second
)

type splitOptions struct {
	node     string
	group    uint64
	slots    cluster.SlotRange
	hasSlots bool
	batch    int
}

func parseSplitArgs(args []string) (splitOptions, error) {
	var o splitOptions
	fs := clusterFlags("keel cluster split", &o.node)
	var slots string
	var group int
	fs.IntVar(&group, "group", 0, "")
	fs.StringVar(&slots, "slots", "", "")
	fs.IntVar(&o.batch, "batch", cluster.ReshardBatchDefault, "")
	if err := parseClusterFlags(fs, args, &o.node); err != nil {
		return o, err
	}
	if group < 1 {
		return o, errors.New("--group G is required: a group number (1 or more)")
	}
	o.group = uint64(group)
	if slots != "" {
		r, err := cluster.ParseSlotRange(slots)
		if err != nil {
			return o, errors.Wrap(err, "--slots")
		}
		o.slots, o.hasSlots = r, true
	}
	if o.batch < 1 {
		return o, errors.Newf("--batch %d: must be at least 1", o.batch)
	}
	return o, nil
}

func runClusterSplit(args []string) int {
	o, err := parseSplitArgs(args)
	return runClusterAdmin("split", splitUsage, o, err, split)
}

// splitPlan is what is left of splitting group g as the groups stand:
// the ranges to move and the group to move them to (0: a group must be
// added first). Done: the slots are already out of g (a rerun after the
// split finished, with --slots).
type splitPlan struct {
	ranges []cluster.SlotRange
	to     uint64
	done   bool
}

// planSplit decides the rest of a split of group g (slots: the --slots
// range, nil for the upper half). In order: a move g left half-done is
// finished (to the group it was going to: the one g is migrating to, or
// one owning slots g still owns); the --slots range already
// owned by another group is done; otherwise the slots go to the highest
// group owning none (one a run that died added), or to a new group.
func planSplit(groups []groupState, g uint64, slots *cluster.SlotRange) (splitPlan, error) {
	i := slices.IndexFunc(groups, func(x groupState) bool { return x.id == g })
	if i < 0 {
		return splitPlan{}, errors.Newf("no group %d in this cluster (CLUSTER GROUPS lists %d)", g, len(groups))
	}
	src := groups[i]
	if len(src.migrating) > 0 {
		var p splitPlan
		for r, to := range src.migrating {
			if p.to != 0 && to != p.to {
				return splitPlan{}, errors.Newf("group %d is moving slots to groups %d and %d: finish those moves with keel cluster reshard first", g, p.to, to)
			}
			p.to = to
			p.ranges = append(p.ranges, r)
		}
		slices.SortFunc(p.ranges, func(a, b cluster.SlotRange) int { return a.First - b.First })
		return p, nil
	}
	// Stopped between the target's NODE and the source's: both own the
	// range (a node not hosting the source does not see its migrating
	// state). The move resumes to the other owner.
	for _, x := range groups {
		if x.id == g {
			continue
		}
		var both []cluster.SlotRange
		for _, r := range x.owned {
			if covers(src.owned, r) {
				both = append(both, r)
			}
		}
		if len(both) > 0 {
			return splitPlan{ranges: both, to: x.id}, nil
		}
	}
	var p splitPlan
	if slots != nil {
		for _, x := range groups {
			if x.id != g && covers(x.owned, *slots) {
				return splitPlan{done: true, to: x.id}, nil
			}
		}
		if !covers(src.owned, *slots) {
			return splitPlan{}, errors.Newf("slots %s are not all in group %d", *slots, g)
		}
		if slotCount(src.owned) == slots.Len() {
			return splitPlan{}, errors.Newf("slots %s are all of group %d's: a split leaves it some", *slots, g)
		}
		p.ranges = []cluster.SlotRange{*slots}
	} else {
		// One range only: a rerun then finds a half-done split by the
		// move in progress, where the upper half of several ranges,
		// moved one after the other, would be computed anew from what
		// is left.
		if len(src.owned) > 1 {
			return splitPlan{}, errors.Newf("group %d owns %d slot ranges (%s): name the slots to split off with --slots A-B", g, len(src.owned), rangesText(src.owned))
		}
		p.ranges = cluster.SplitRanges(src.owned)
		if len(p.ranges) == 0 {
			return splitPlan{}, errors.Newf("group %d owns %d slots: too few to split", g, slotCount(src.owned))
		}
	}
	for _, x := range slices.Backward(groups) {
		if x.id != g && len(x.owned) == 0 {
			p.to = x.id
			break
		}
	}
	return p, nil
}

func slotCount(rs []cluster.SlotRange) int {
	n := 0
	for _, r := range rs {
		n += r.Len()
	}
	return n
}

// split runs the split o describes, printing progress to out.
func split(ctx context.Context, o splitOptions, out io.Writer) error {
	rc := &reshardConn{clients: map[string]*redis.Client{}, leader: map[uint64]string{}}
	defer rc.close()
	discover := func() ([]groupState, error) {
		var groups []groupState
		var err error
		for try, deadline := 0, time.Now().Add(reshardDiscoverTimeout); ; try++ {
			groups, err = rc.discover(ctx, o.node)
			if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
				return groups, err
			}
			var rerr redis.Error
			if errors.As(err, &rerr) && !strings.HasPrefix(rerr.Error(), "LOADING") {
				return nil, err // the node answered: retrying will not help
			}
			if try == 0 {
				fmt.Fprintf(out, "%v; retrying for up to %s\n", err, reshardDiscoverTimeout)
			}
			time.Sleep(time.Second)
		}
	}
	groups, err := discover()
	if err != nil {
		return err
	}
	var slots *cluster.SlotRange
	if o.hasSlots {
		slots = &o.slots
	}
	plan, err := planSplit(groups, o.group, slots)
	if err != nil {
		return err
	}
	if plan.done {
		fmt.Fprintf(out, "slots %s are already in group %d: nothing to do\n", o.slots, plan.to)
		return nil
	}
	start := time.Now()
	if plan.to == 0 {
		if groups, plan, err = addGroup(ctx, rc, o, groups, slots, discover, out); err != nil {
			return err
		}
		fmt.Fprintf(out, "group %d added, leader node %d, in %s\n", plan.to, groups[len(groups)-1].leader, time.Since(start).Round(time.Millisecond))
	} else {
		fmt.Fprintf(out, "group %d owns no slots: moving slots to it\n", plan.to)
	}
	for _, r := range plan.ranges {
		if err := reshard(ctx, reshardOptions{node: o.node, slots: r, to: plan.to, batch: o.batch}, out); err != nil {
			return errors.Wrap(err, "rerun the same command to finish the split")
		}
	}
	fmt.Fprintf(out, "done: group %d split, slots %s now in group %d, in %s\n", o.group, rangesText(plan.ranges), plan.to, time.Since(start).Round(time.Millisecond))
	return nil
}

// addGroup adds the group the split moves slots to, and waits until
// --node knows it with a leader (the record reaches a node not hosting
// group 1 with the next pings). CLUSTER ADDGROUP follows -MOVED to group
// 1's leader. After an outcome it cannot know (a lost connection,
// -TRYAGAIN while a group added just before forms, a version race) it
// looks for the group a while before asking again: an ADDGROUP sent
// twice would add two groups.
func addGroup(ctx context.Context, rc *reshardConn, o splitOptions, groups []groupState, slots *cluster.SlotRange,
	discover func() ([]groupState, error), out io.Writer) ([]groupState, splitPlan, error) {
	start := time.Now()
	for {
		plan, err := planSplit(groups, o.group, slots)
		if err != nil || plan.to != 0 {
			if err == nil && plan.done {
				err = errors.Newf("slots %s are already in group %d", o.slots, plan.to)
			}
			return groups, plan, err
		}
		if time.Since(start) > splitAddTimeout {
			return nil, splitPlan{}, errors.Newf("no new group with a leader after %s; rerun the same command to finish the split", splitAddTimeout)
		}
		before := len(groups)
		applied, err := sendAddGroup(ctx, rc, o.node, out)
		if err != nil {
			return nil, splitPlan{}, err
		}
		wait := splitUnsureWait
		if applied {
			wait = splitAddTimeout
		}
		for deadline := time.Now().Add(wait); ; time.Sleep(splitRetryPause) {
			if ctx.Err() != nil {
				return nil, splitPlan{}, errors.New("interrupted; rerun the same command to finish the split")
			}
			if groups, err = discover(); err != nil {
				return nil, splitPlan{}, err
			}
			if len(groups) > before && groups[len(groups)-1].leader != 0 || time.Now().After(deadline) {
				break
			}
		}
	}
}

// sendAddGroup sends CLUSTER ADDGROUP once (following -MOVED): applied,
// or not known to be (a lost connection, -TRYAGAIN, a version race).
func sendAddGroup(ctx context.Context, rc *reshardConn, node string, out io.Writer) (applied bool, err error) {
	at := node
	for hops := 0; hops <= reshardRedirectsMax; hops++ {
		if ctx.Err() != nil {
			return false, errors.New("interrupted; rerun the same command to finish the split")
		}
		err := rc.client(at).Do(ctx, "CLUSTER", "ADDGROUP").Err()
		if err == nil {
			fmt.Fprintf(out, "meta record: ADDGROUP recorded (at %s)\n", at)
			return true, nil
		}
		msg := err.Error()
		if f := strings.Fields(msg); len(f) == 3 && f[0] == "MOVED" {
			at = f[2] // group 1's leader keeps the record
			continue
		}
		var rerr redis.Error
		if errors.As(err, &rerr) && !strings.HasPrefix(msg, "ERR meta record: version") && !strings.HasPrefix(msg, "TRYAGAIN") {
			return false, errors.Newf("CLUSTER ADDGROUP at %s: %s", at, msg)
		}
		fmt.Fprintf(out, "CLUSTER ADDGROUP at %s: %s; looking for the group before asking again\n", at, msg)
		return false, nil
	}
	return false, nil // a leader change in progress: look, then ask again
}

func rangesText(rs []cluster.SlotRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}
