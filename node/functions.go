package node

import (
	"strconv"
	"time"

	"github.com/keel-db/keel/udf"
)

// A function call (FCALL) runs inside its group's replica, holding the
// group for as long as it runs. Fuel bounds it deterministically
// (function-fuel; a few milliseconds at the default), and the runtime
// bounds it in wall-clock time (function-time-limit) and can stop it
// from outside (FUNCTION KILL, shutdown): udf.Guard. While a call runs:
//
//   - Clients of other groups, and every command the session answers
//     itself (PING, INFO, CLIENT, CONFIG, FUNCTION KILL, SHUTDOWN, ...),
//     keep being served.
//   - Requests for the call's group wait for it, as in Redis until
//     busy-reply-threshold. Once the call has run longer than that, the
//     runtime marks the group busy (SetGroupBusy) and a request for it
//     gets Redis's -BUSY at once instead (requests already waiting keep
//     waiting; EXEC and node-wide commands wait too).
//   - FUNCTION KILL stops a call that has not written, as in Redis
//     (-UNKILLABLE otherwise: wait for function-time-limit, or SHUTDOWN
//     NOSAVE); SHUTDOWN and SIGTERM stop every call first.
//
// The node reads no clock for this: whether a group is busy is the
// runtime's input (the simulator, which runs one thing at a time, never
// sets it), and FUNCTION KILL goes to Config.KillFunctions.

// Defaults of the function settings.
const (
	// BusyReplyThresholdDefault is Redis's busy-reply-threshold.
	BusyReplyThresholdDefault = 5 * time.Second
	// FunctionTimeLimitDefault bounds one call in wall-clock time: far
	// above what the default fuel allows (milliseconds), so it stops only
	// a call whose fuel was raised or whose host calls cost more than
	// priced.
	FunctionTimeLimitDefault = time.Second
)

// SetGroupBusy is the runtime saying that a function call has held group
// g longer than busy-reply-threshold (busy), or no longer does.
func (n *Node) SetGroupBusy(g uint64, busy bool) { n.group(g).busy.Store(busy) }

// GroupBusy reports whether group g is marked busy.
func (n *Node) GroupBusy(g uint64) bool { return n.group(g).busy.Load() }

// BusyReplyThreshold is busy-reply-threshold, as now set.
func (n *Node) BusyReplyThreshold() time.Duration {
	return time.Duration(n.fnLimits.Load().busyReply)
}

// FunctionTimeLimit is function-time-limit, as now set (0: none).
func (n *Node) FunctionTimeLimit() time.Duration {
	return time.Duration(n.fnLimits.Load().timeLimit)
}

type fnLimits struct{ busyReply, timeLimit int64 } // nanoseconds

func (n *Node) initFunctionLimits() {
	l := fnLimits{busyReply: int64(BusyReplyThresholdDefault), timeLimit: int64(FunctionTimeLimitDefault)}
	if n.cfg.BusyReplyThreshold != 0 {
		l.busyReply = max(0, int64(n.cfg.BusyReplyThreshold))
	}
	if n.cfg.FunctionTimeLimit != 0 {
		l.timeLimit = max(0, int64(n.cfg.FunctionTimeLimit))
	}
	n.fnLimits.Store(&l)
}

// isFunctionKill reports whether argv is FUNCTION KILL, which the session
// answers itself: the call it stops holds the group's replica.
func isFunctionKill(argv [][]byte) bool {
	return len(argv) == 2 && eqFold(argv[0], "function") && eqFold(argv[1], "kill")
}

// functionKill answers FUNCTION KILL.
func (c *Session) functionKill() {
	msg := udf.NotBusyMessage
	if kill := c.n.cfg.KillFunctions; kill != nil {
		msg = kill()
	}
	if msg == "" {
		c.n.logf("function killed by FUNCTION KILL (client id=%d addr=%s)", c.id, c.addr())
		c.Out.WriteSimple("OK")
		return
	}
	c.Out.WriteError(msg)
}

func init() {
	msParam := func(get func(l fnLimits) int64, set func(l *fnLimits, ns int64)) configParam {
		return configParam{
			get: func(n *Node) string {
				return strconv.FormatInt(get(*n.fnLimits.Load())/int64(time.Millisecond), 10)
			},
			check: func(v string) bool {
				ms, err := strconv.ParseInt(v, 10, 64)
				return err == nil && ms >= 0 && ms <= int64(1<<63-1)/int64(time.Millisecond)
			},
			set: func(n *Node, v string) {
				ms, _ := strconv.ParseInt(v, 10, 64)
				l := *n.fnLimits.Load()
				set(&l, ms*int64(time.Millisecond))
				n.fnLimits.Store(&l)
			},
			bad: "argument must be between 0 and 9223372036854775807 inclusive",
		}
	}
	extraConfig["busy-reply-threshold"] = msParam(
		func(l fnLimits) int64 { return l.busyReply },
		func(l *fnLimits, ns int64) { l.busyReply = ns })
	extraConfig["function-time-limit"] = msParam(
		func(l fnLimits) int64 { return l.timeLimit },
		func(l *fnLimits, ns int64) { l.timeLimit = ns })
	configAliases["lua-time-limit"] = "busy-reply-threshold"
}
