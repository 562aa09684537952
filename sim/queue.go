package sim

import (
	"strconv"
	"time"

	"github.com/keel-db/keel/checker"
)

// QueueConfig turns the workload into queue traffic on lists (issue 21):
// producers LPUSH unique values onto the plain keys, consumers RPOP them
// or wait for one with BLPOP, and the checker's queue model holds every
// reply to one list per key (a lost pop, a duplicated one, FIFO broken
// are illegal). The final phase drains every list with RPOPs, so an
// acknowledged push that is not there at the end is caught too.
type QueueConfig struct {
	// BlockTimeout is BLPOP's timeout: long enough that pushes wake
	// waiters, short enough to stay well under the client's timeout.
	BlockTimeout time.Duration
	// Library, when set, is a FUNCTION LOAD payload of a library that
	// exports `call` as testdata/functions/collections.c does (an engine
	// command on its declared key, through keel.call). The setup client
	// loads it first (as the bank's does); then pushes and pops run as
	// FCALL call 1 k LPUSH k v and FCALL call 1 k RPOP k, and BLPOP
	// waiters are woken by pushes that functions made. The history is the
	// same, so the queue model checks it.
	Library string
}

// queueReloadPct is the share (percent) of a function queue's operations
// that load the library again (FUNCTION LOAD REPLACE), so that a load
// whose outcome a crash made unknown is not the end of the workload.
const queueReloadPct = 1

// genQueue draws the next queue operation.
func (c *Client) genQueue() opSpec {
	lib := c.r.cfg.Workload.Queue.Library
	if lib != "" && !c.r.bank.ready {
		// Only the setup client gets here. Its next operation is drawn
		// after the load answered, and lets the others start.
		if c.r.bank.step == 0 {
			c.r.bank.step++
			return opSpec{argv: []string{"FUNCTION", "LOAD", lib}}
		}
		c.r.bank.ready = true
	}
	k := c.plainKey()
	p := c.rng.IntN(100)
	if lib != "" {
		if c.rng.IntN(100) < queueReloadPct {
			return opSpec{argv: []string{"FUNCTION", "LOAD", "REPLACE", lib}}
		}
		switch {
		case p < 50:
			v := "c" + itoa(int64(c.id)) + "-" + itoa(int64(c.seq+1))
			return opSpec{argv: []string{"FCALL", "call", "1", k, "LPUSH", k, v}, hist: &checker.Op{Kind: checker.LPush, Key: k, Value: v}}
		case p < 75:
			return opSpec{argv: []string{"FCALL", "call", "1", k, "RPOP", k}, hist: &checker.Op{Kind: checker.RPop, Key: k}}
		}
	}
	switch {
	case p < 50:
		v := "c" + itoa(int64(c.id)) + "-" + itoa(int64(c.seq+1)) // unique: a duplicated pop shows
		return opSpec{argv: []string{"LPUSH", k, v}, hist: &checker.Op{Kind: checker.LPush, Key: k, Value: v}}
	case p < 75:
		return opSpec{argv: []string{"RPOP", k}, hist: &checker.Op{Kind: checker.RPop, Key: k}}
	default:
		secs := strconv.FormatFloat(c.r.cfg.Workload.Queue.BlockTimeout.Seconds(), 'f', -1, 64)
		return opSpec{argv: []string{"BLPOP", k, secs}, hist: &checker.Op{Kind: checker.BLPop, Key: k}}
	}
}

// blpopOutput maps BLPOP's reply to the queue model's output: the
// element of [key, element], or null once it timed out.
func blpopOutput(r Reply) (checker.Value, bool) {
	switch {
	case r.Kind == '_':
		return checker.Nil, true
	case r.Kind == '*' && len(r.Elems) == 2 && r.Elems[1].Kind == '$':
		return checker.Str(r.Elems[1].Str), true
	}
	return checker.Value{}, false
}

// queueDrain is the final phase's script for a queue workload: per key,
// one RPOP more than the elements that can be left — pushes issued
// (acknowledged or not) less pops that returned one — so the last one
// must find the list empty.
func (r *Run) queueDrain() []opSpec {
	pushes := map[string]int{}
	for _, op := range r.History {
		switch {
		case op.Kind == checker.LPush:
			pushes[op.Key]++
		case op.Kind.Pops() && !op.Unknown && op.Output.Kind == checker.StrValue:
			pushes[op.Key]--
		}
	}
	var script []opSpec
	for _, k := range r.keys {
		for i := 0; i <= pushes[k]; i++ {
			script = append(script, opSpec{argv: []string{"RPOP", k}, hist: &checker.Op{Kind: checker.RPop, Key: k}})
		}
	}
	return script
}
