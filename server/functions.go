package server

import (
	"context"
	"errors"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/udf"
)

// Function calls seen and stopped from outside the replica that runs them
// (node/functions.go says what a client sees). Each group's function host
// gets a udf.Guard of its own; the server then
//
//   - answers FUNCTION KILL with the guards (node.Config.KillFunctions),
//     on the connection's goroutine while the call holds the group;
//   - watches the guards every busyPollInterval: it marks a group busy
//     while a call has held it longer than busy-reply-threshold, so that
//     new requests for it get -BUSY instead of waiting (the group's queue
//     clears the mark as soon as the call's batch is done), and stops a
//     call that has run longer than function-time-limit. The watcher, not
//     a deadline on each call's context, enforces the limit: a context
//     with a deadline costs a timer and a context.AfterFunc per call,
//     which measured 40 % of a warm FCALL's cost in the server (the
//     limit is then kept within busyPollInterval, as the busy mark is);
//   - stops every call at Shutdown (SHUTDOWN, SIGTERM) before waiting for
//     the groups.

// busyPollInterval is how often the guards are looked at: how late a
// group may turn busy after its threshold.
const busyPollInterval = 20 * time.Millisecond

var (
	errFunctionTimeLimit = errors.New("ran longer than function-time-limit")
	errShuttingDown      = errors.New("server shutting down")
)

// withFunctionGuard gives group g's replica options the group's guard, and
// a call context that is already ended once the server is stopping.
func (s *Server) withFunctionGuard(g uint64, o cluster.Options) cluster.Options {
	cfg := udf.NewConfig()
	if o.Functions != nil {
		cfg = *o.Functions
	}
	cfg = cfg.WithGuard(s.guards[g-1]).WithCallContext(func(ctx context.Context) (context.Context, context.CancelFunc) {
		select {
		case <-s.shutdown:
			// A call that starts after Shutdown stopped the running ones
			// (a batch that was already queued) stops at once too.
			ctx, cancel := context.WithCancelCause(ctx)
			cancel(errShuttingDown)
			return ctx, func() {}
		default:
		}
		return ctx, func() {}
	})
	o.Functions = &cfg
	return o
}

// killFunctions is FUNCTION KILL over every group's calls: "" if it
// stopped one, else the reply (UNKILLABLE when only calls that wrote
// run, NOTBUSY when none does).
func (s *Server) killFunctions() string {
	msg := udf.NotBusyMessage
	for _, g := range s.guards {
		err := g.FunctionKill()
		if err == nil {
			return ""
		}
		if m := udf.Message(err); m != udf.NotBusyMessage {
			msg = m
		}
	}
	return msg
}

// stopFunctions stops every call in progress (shutdown).
func (s *Server) stopFunctions() {
	for _, g := range s.guards {
		if n := g.KillAll(errShuttingDown); n > 0 {
			s.cfg.Logf("shutdown: stopped %d running function call(s)", n)
		}
	}
}

// watchFunctions marks groups busy while a call holds them past
// busy-reply-threshold and stops calls past function-time-limit, until
// shutdown.
func (s *Server) watchFunctions() {
	t := time.NewTicker(busyPollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.shutdown:
			return
		case <-t.C:
		}
		now := s.clock.Now()
		threshold := s.node.BusyReplyThreshold().Nanoseconds()
		limit := s.node.FunctionTimeLimit().Nanoseconds()
		for i, g := range s.guards {
			b := false
			for _, c := range g.Running() {
				if limit > 0 && now-c.Started > limit {
					g.Kill(c.ID, errFunctionTimeLimit)
					continue
				}
				if now-c.Started > threshold {
					b = true
				}
			}
			if b != s.node.GroupBusy(uint64(i+1)) {
				s.node.SetGroupBusy(uint64(i+1), b)
				if b {
					s.cfg.Logf("group %d busy: a function call has run longer than busy-reply-threshold (%v)", i+1, s.node.BusyReplyThreshold())
				}
			}
		}
	}
}
