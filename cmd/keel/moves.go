package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/redis/go-redis/v9"
)

// keel cluster addnode / delnode on a placed cluster (--replicas below the
// nodes; docs/cluster.md, "Moves"). The change is one write of the meta
// record (CLUSTER ADDNODE/DELNODE, answered by group 1's leader, -MOVED
// from any other node); the nodes then move replicas on their own. The
// command sends the change, following -MOVED and retrying a version race,
// then reads CLUSTER PLACEMENT until the record is balanced, no group is
// moving and the node is in (addnode) or out (delnode), printing each
// change of progress.

// placement is what CLUSTER PLACEMENT says (the fields the CLI follows).
type placement struct {
	version      uint64
	moving       int
	underRepl    int
	balanced     bool
	lastMove     string
	members      map[uint64]string // id → state
	placementOff bool
}

func readPlacement(ctx context.Context, c *redis.Client) (placement, error) {
	text, err := c.Do(ctx, "CLUSTER", "PLACEMENT").Text()
	if err != nil {
		return placement{}, err
	}
	return parsePlacement(text), nil
}

// parsePlacement reads CLUSTER PLACEMENT's lines.
func parsePlacement(text string) placement {
	p := placement{members: map[uint64]string{}}
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "placement":
			p.placementOff = v == "off"
		case "meta_version":
			p.version, _ = strconv.ParseUint(v, 10, 64)
		case "groups_moving":
			p.moving, _ = strconv.Atoi(v)
		case "groups_under_replicated":
			p.underRepl, _ = strconv.Atoi(v)
		case "balanced":
			p.balanced = v == "true"
		case "last_move":
			p.lastMove = v
		case "member":
			f := strings.Fields(v)
			if len(f) == 3 {
				if id, err := strconv.ParseUint(f[0], 10, 64); err == nil {
					p.members[id] = f[2]
				}
			}
		}
	}
	return p
}

// placedCluster reports whether the node at addr runs a placed cluster.
func placedCluster(ctx context.Context, mc *memberConn, addr string) (bool, error) {
	p, err := readPlacement(ctx, mc.client(addr))
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) && strings.Contains(err.Error(), "unknown subcommand") {
			return false, nil // an older keel: no placement
		}
		return false, err
	}
	return !p.placementOff, nil
}

// changePlacedMembership is changeMembership on a placed cluster.
func changePlacedMembership(ctx context.Context, mc *memberConn, o memberOptions, out io.Writer) error {
	argv := []any{"CLUSTER", strings.ToUpper(o.verb()), strconv.FormatUint(o.id, 10)}
	if o.add {
		argv = append(argv, o.addr)
	}
	start, progress := time.Now(), time.Now()
	at := o.node
	for {
		if ctx.Err() != nil {
			return errors.New("interrupted; rerun the same command (the change is idempotent)")
		}
		err := mc.client(at).Do(ctx, argv...).Err()
		if err == nil {
			fmt.Fprintf(out, "meta record: %s %d recorded (at %s)\n", argv[1], o.id, at)
			break
		}
		msg := err.Error()
		if f := strings.Fields(msg); len(f) == 3 && f[0] == "MOVED" {
			at = f[2] // group 1's leader keeps the record
			continue
		}
		var rerr redis.Error
		if errors.As(err, &rerr) && !strings.HasPrefix(msg, "ERR meta record: version") && !strings.HasPrefix(msg, "TRYAGAIN") {
			return errors.Newf("%s at %s: %s", argv[1], at, msg)
		}
		if time.Since(progress) > memberStallTimeout {
			return errors.Newf("%s: no answer for %s (last: %s)", argv[1], memberStallTimeout, msg)
		}
		at = o.node
		time.Sleep(memberRetryPause)
	}
	last := ""
	progress = time.Now()
	for {
		if ctx.Err() != nil {
			return errors.New("interrupted; the moves go on without the command: keel cluster status or CLUSTER PLACEMENT shows them")
		}
		p, err := readPlacement(ctx, mc.client(o.node))
		if err == nil {
			state, in := p.members[o.id]
			line := fmt.Sprintf("meta version %d, last move %s, groups moving %d, under-replicated %d, node %d %s",
				p.version, p.lastMove, p.moving, p.underRepl, o.id, map[bool]string{true: state, false: "not a member"}[in])
			if line != last {
				fmt.Fprintln(out, line)
				last, progress = line, time.Now()
			}
			if p.balanced && p.moving == 0 && (o.add && state == "active" || !o.add && !in) {
				fmt.Fprintf(out, "done: node %d %s, replicas balanced, in %s\n", o.id, map[bool]string{true: "added", false: "removed"}[o.add],
					time.Since(start).Round(time.Millisecond))
				return nil
			}
		}
		if time.Since(progress) > memberStallTimeout {
			return errors.Newf("no progress for %s (a group without a leader, a node down?); the moves resume on their own", memberStallTimeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
