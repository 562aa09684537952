package node

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keel-db/keel/resp"
)

// The slow log, as Redis's: every command that took at least
// slowlog-log-slower-than microseconds (its share of its batch's time,
// batchstats.go) is kept, newest first, up to slowlog-max-len entries.
// EXEC is not logged itself; its commands are, one by one.

const (
	slowlogSlowerDefault = 10000 // µs, Redis's default
	slowlogMaxLenDefault = 128
	// slowlogArgsMax and slowlogArgBytesMax bound what an entry keeps of
	// a command (Redis's SLOWLOG_ENTRY_MAX_ARGC and _STRING).
	slowlogArgsMax     = 32
	slowlogArgBytesMax = 128
	slowlogGetDefault  = 10
)

type slowlogEntry struct {
	id, unixSec, micros int64
	argv                [][]byte
	addr, name          string
}

type slowlogState struct {
	slowerMicros atomic.Int64 // slowlog-log-slower-than; negative: off
	maxLen       atomic.Int64 // slowlog-max-len

	mu      sync.Mutex
	entries []slowlogEntry // oldest first
	nextID  int64
}

func (s *slowlogState) init() {
	s.slowerMicros.Store(slowlogSlowerDefault)
	s.maxLen.Store(slowlogMaxLenDefault)
}

// slowlogArgs is what an entry (or a MONITOR line) keeps of argv: at most
// slowlogArgsMax arguments of slowlogArgBytesMax bytes, the secrets of
// AUTH and HELLO replaced, as Redis does.
func slowlogArgs(argv [][]byte) [][]byte {
	n := min(len(argv), slowlogArgsMax)
	out := make([][]byte, n)
	redacted := redactedArgs(argv)
	for j := range n {
		a := argv[j]
		switch {
		case n != len(argv) && j == n-1:
			a = []byte("... (" + strconv.Itoa(len(argv)-n+1) + " more arguments)")
		case slices.Contains(redacted, j):
			a = []byte("(redacted)")
		case len(a) > slowlogArgBytesMax:
			a = append(append([]byte(nil), a[:slowlogArgBytesMax]...), "... ("+strconv.Itoa(len(a)-slowlogArgBytesMax)+" more bytes)"...)
		default:
			a = append([]byte(nil), a...)
		}
		out[j] = a
	}
	return out
}

// redactedArgs are the positions of argv Redis never shows: AUTH's
// arguments, HELLO's AUTH user and password.
func redactedArgs(argv [][]byte) []int {
	var out []int
	switch {
	case eqFold(argv[0], "auth"):
		for j := 1; j < len(argv); j++ {
			out = append(out, j)
		}
	case eqFold(argv[0], "hello"):
		for j := 1; j+2 < len(argv); j++ {
			if eqFold(argv[j], "auth") {
				out = append(out, j+1, j+2)
				j += 2
			}
		}
	}
	return out
}

// slowlogAdd logs r's command, run by c.
func (n *Node) slowlogAdd(c *Session, r *cmdRec) {
	c.mu.Lock()
	name := c.name
	c.mu.Unlock()
	e := slowlogEntry{unixSec: n.clock.Now() / 1e9, micros: r.ns / 1000, argv: slowlogArgs(r.argv), addr: c.addr(), name: name}
	s := &n.slowlog
	s.mu.Lock()
	defer s.mu.Unlock()
	e.id = s.nextID
	s.nextID++
	s.entries = append(s.entries, e)
	if over := int64(len(s.entries)) - s.maxLen.Load(); over > 0 {
		s.entries = slices.Delete(s.entries, 0, int(over))
	}
}

var slowlogSubs = []subcommand{
	{name: "slowlog|get", arity: -2, flags: []string{"admin", "loading", "stale"}},
	{name: "slowlog|len", arity: 2, flags: []string{"admin", "loading", "stale"}},
	{name: "slowlog|reset", arity: 2, flags: []string{"admin", "loading", "stale"}},
	{name: "slowlog|help", arity: 2, flags: []string{"loading", "stale"}},
}

func init() {
	serverCommands["slowlog"] = &serverCommand{name: "slowlog", arity: -2, categories: []string{"@slow"}, run: cmdSlowlog, subs: slowlogSubs,
		doc: commandDoc{summary: "A container for slow log commands.", since: "2.2.12", group: "server", complexity: "Depends on subcommand."}}
	for name, d := range map[string]commandDoc{
		"slowlog|get":   {summary: "Returns the slow log's entries.", since: "2.2.12", complexity: "O(N) where N is the number of entries returned", syntax: "[count]"},
		"slowlog|len":   {summary: "Returns the number of entries in the slow log.", since: "2.2.12", complexity: "O(1)"},
		"slowlog|reset": {summary: "Clears all entries from the slow log.", since: "2.2.12", complexity: "O(N) where N is the number of entries in the slowlog"},
		"slowlog|help":  {summary: "Show helpful text about the different subcommands", since: "6.2.0", complexity: "O(1)"},
	} {
		subDocs[name] = d
	}
	for name, cats := range map[string]string{
		"slowlog|get": "@admin @slow @dangerous", "slowlog|len": "@admin @slow @dangerous",
		"slowlog|reset": "@admin @slow @dangerous", "slowlog|help": "@slow",
	} {
		aclSubCategories[name] = cats
	}
}

func cmdSlowlog(c *Session, argv [][]byte) {
	sub := strings.ToLower(string(truncate(argv[1], 32)))
	if !subArityOK(c, slowlogSubs, "slowlog|"+sub, len(argv)) {
		return
	}
	s := &c.n.slowlog
	switch sub {
	case "get":
		if len(argv) > 3 {
			c.Out.WriteError("ERR unknown subcommand or wrong number of arguments for '" + string(truncate(argv[1], 128)) + "'. Try SLOWLOG HELP.")
			return
		}
		count := int64(slowlogGetDefault)
		if len(argv) == 3 {
			v, ok := resp.ParseInt(argv[2])
			if !ok || v < -1 {
				c.Out.WriteError("ERR count should be greater than or equal to -1")
				return
			}
			count = v
		}
		s.mu.Lock()
		entries := s.entries
		if count >= 0 && int64(len(entries)) > count {
			entries = entries[int64(len(entries))-count:]
		}
		entries = slices.Clone(entries)
		s.mu.Unlock()
		c.Out.WriteArray(len(entries))
		for i := len(entries) - 1; i >= 0; i-- {
			e := entries[i]
			c.Out.WriteArray(6)
			c.Out.WriteInt(e.id)
			c.Out.WriteInt(e.unixSec)
			c.Out.WriteInt(e.micros)
			c.Out.WriteArray(len(e.argv))
			for _, a := range e.argv {
				c.Out.WriteBulk(a)
			}
			c.Out.WriteBulkString(e.addr)
			c.Out.WriteBulkString(e.name)
		}
	case "len":
		s.mu.Lock()
		l := len(s.entries)
		s.mu.Unlock()
		c.Out.WriteInt(int64(l))
	case "reset":
		s.mu.Lock()
		s.entries = nil
		s.mu.Unlock()
		c.Out.WriteSimple("OK")
	case "help":
		writeHelp(c, "SLOWLOG",
			"GET [<count>]",
			"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
			"    Entries are made of:",
			"    id, timestamp, time in microseconds, arguments array, client IP and port,",
			"    client name",
			"LEN",
			"    Return the length of the slowlog.",
			"RESET",
			"    Reset the slowlog.",
		)
	default:
		unknownSubcommand(c, "slowlog", argv[1])
	}
}

// writeHelp writes a container's HELP reply in Redis's shape.
func writeHelp(c *Session, cmd string, lines ...string) {
	c.Out.WriteArray(len(lines) + 3)
	c.Out.WriteSimple(cmd + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
	for _, l := range lines {
		c.Out.WriteSimple(l)
	}
	c.Out.WriteSimple("HELP")
	c.Out.WriteSimple("    Prints this help.")
}
