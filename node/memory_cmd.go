package node

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/resp"
)

// MEMORY USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE and HELP.
//
// USAGE answers from the engine's own accounting of the key (what
// INFO's used_memory_dataset sums: engine.DB.KeyBytes), read from this
// node's replica of the key's group; in cluster mode a node that does not
// lead that group answers MOVED, as for a read, unless the connection
// sent READONLY. SAMPLES is accepted and changes nothing: the engine
// counts a collection's nodes exactly. STATS and DOCTOR describe the Go
// process: its heap stands for Redis's allocator.

var memorySubs = []subcommand{
	{name: "memory|usage", arity: -3, flags: []string{"readonly"}},
	{name: "memory|stats", arity: 2},
	{name: "memory|doctor", arity: 2},
	{name: "memory|malloc-stats", arity: 2},
	{name: "memory|purge", arity: 2},
	{name: "memory|help", arity: 2, flags: []string{"loading", "stale"}},
}

func init() {
	serverCommands["memory"] = &serverCommand{name: "memory", arity: -2, categories: []string{"@slow"}, run: cmdMemory, subs: memorySubs,
		doc: commandDoc{summary: "A container for memory diagnostics commands.", since: "4.0.0", group: "server", complexity: "Depends on subcommand."}}
	for name, d := range map[string]commandDoc{
		"memory|usage":        {summary: "Estimates the memory usage of a key.", since: "4.0.0", complexity: "O(N) where N is the number of samples.", syntax: "key [SAMPLES count]"},
		"memory|stats":        {summary: "Returns details about memory usage.", since: "4.0.0", complexity: "O(1)"},
		"memory|doctor":       {summary: "Outputs a memory problems report.", since: "4.0.0", complexity: "O(1)"},
		"memory|malloc-stats": {summary: "Returns the allocator statistics.", since: "4.0.0", complexity: "Depends on how much memory is allocated, could be slow"},
		"memory|purge":        {summary: "Asks the allocator to release memory.", since: "4.0.0", complexity: "Depends on how much memory is allocated, could be slow"},
		"memory|help":         {summary: "Outputs helpful text about the different subcommands.", since: "4.0.0", complexity: "O(1)"},
	} {
		subDocs[name] = d
	}
	aclSubCategories["memory|usage"] = "@read @slow"
	aclSubCategories["memory|stats"] = "@slow"
	aclSubCategories["memory|doctor"] = "@slow"
	aclSubCategories["memory|malloc-stats"] = "@slow"
	aclSubCategories["memory|purge"] = "@slow"
	aclSubCategories["memory|help"] = "@slow"
}

func cmdMemory(c *Session, argv [][]byte) {
	sub := strings.ToLower(string(truncate(argv[1], 32)))
	if !subArityOK(c, memorySubs, "memory|"+sub, len(argv)) {
		return
	}
	switch sub {
	case "usage":
		memoryUsage(c, argv)
	case "stats":
		memoryStats(c)
	case "doctor":
		c.Out.WriteVerbatim(c.memoryDoctor(), "txt")
	case "malloc-stats":
		h := c.n.rt.Host()
		c.Out.WriteVerbatim(fmt.Sprintf("Go runtime heap: alloc %d, live %d, peak %d, sys %d bytes; %d GCs, %d ns of GC pauses; RSS %d bytes\n",
			h.HeapAlloc, h.HeapLive, h.HeapPeak, h.HeapSys, h.NumGC, h.GCPauseTotalNs, h.RSS), "txt")
	case "purge":
		if r, ok := c.n.rt.(interface{ ReleaseMemory() }); ok {
			r.ReleaseMemory()
		}
		c.Out.WriteSimple("OK")
	case "help":
		writeHelp(c, "MEMORY",
			"DOCTOR",
			"    Return memory problems reports.",
			"MALLOC-STATS",
			"    Return internal statistics report from the memory allocator.",
			"PURGE",
			"    Attempt to purge dirty pages for reclamation by the allocator.",
			"STATS",
			"    Return information about the memory usage of the server.",
			"USAGE <key> [SAMPLES <count>]",
			"    Return memory in bytes used by <key> and its value. Nested values are",
			"    sampled up to <count> times (default: 5, 0 means sample all).",
		)
	default:
		unknownSubcommand(c, "memory", argv[1])
	}
}

func memoryUsage(c *Session, argv [][]byte) {
	for j := 3; j < len(argv); j += 2 {
		if !eqFold(argv[j], "samples") || j+1 >= len(argv) {
			c.Out.WriteError("ERR syntax error")
			return
		}
		if v, ok := resp.ParseInt(argv[j+1]); !ok {
			c.Out.WriteError("ERR value is not an integer or out of range")
			return
		} else if v < 0 {
			c.Out.WriteError("ERR syntax error")
			return
		}
	}
	key := argv[2]
	g := uint64(1)
	slot := cluster.KeySlot(key)
	if len(c.n.groups) > 1 {
		g = c.n.groupOf(slot)
	}
	gr := c.n.group(g)
	if !gr.hosted.Load() {
		// Placement: the group lives on other nodes (MOVED to its leader).
		c.Out.WriteError(c.n.notHostedRedirect(g, &cluster.Request{Argv: [][]byte{[]byte("GET"), key}, Asking: c.asking}))
		return
	}
	var (
		bytes    int64
		found    bool
		redirect string
	)
	now := c.n.clock.Now()
	c.inGroup(g, func() {
		r := gr.replica
		if r == nil || gr.dead != "" {
			redirect = ErrMsgGroupDead
			return
		}
		if c.n.clustered && !c.readOnly && !r.IsLeader() {
			redirect = c.n.groupRedirect(g, &cluster.Request{Argv: argv}, r.Leader())
			return
		}
		bytes, found = r.DB().KeyBytes(now/1e6, key)
	})
	switch {
	case redirect != "":
		c.Out.WriteError(redirect)
	case !found:
		c.Out.WriteNull()
	default:
		c.Out.WriteInt(bytes)
	}
}

// memoryFigures are what MEMORY STATS and DOCTOR look at.
type memoryFigures struct {
	host                       HostInfo
	keys                       int
	dataset                    int64
	clientsNormal, clientsPeak int64
	queryBufMax, outputBufMax  int64
	clients                    int
}

func (c *Session) memoryFigures() memoryFigures {
	f := memoryFigures{host: c.n.rt.Host()}
	for _, g := range c.memoryGroups() {
		ki := c.keyspace(g)
		f.keys += ki.keys
		f.dataset += ki.usedBytes
	}
	for _, s := range c.n.sessionList() {
		f.clients++
		m := s.bufferFigures()
		f.clientsNormal += m.totMem
		f.queryBufMax = max(f.queryBufMax, m.qbufCap)
		f.outputBufMax = max(f.outputBufMax, m.omem)
	}
	return f
}

// memoryGroups are the groups whose keys this node counts (those it
// leads, as INFO's keyspace; group 1 when it leads none).
func (c *Session) memoryGroups() []uint64 {
	if len(c.n.groups) == 1 {
		return []uint64{1}
	}
	if led := c.n.fanoutTargets(fanLed); len(led) > 0 {
		return led
	}
	return []uint64{1}
}

func memoryStats(c *Session) {
	f := c.memoryFigures()
	h := f.host
	used := int64(h.HeapAlloc)
	overhead := max(used-f.dataset, 0)
	perKey := int64(0)
	if f.keys > 0 {
		perKey = used / int64(f.keys)
	}
	pct := func(a, b int64) float64 {
		if b <= 0 {
			return 0
		}
		return 100 * float64(a) / float64(b)
	}
	frag := 0.0
	if used > 0 {
		frag = float64(h.RSS) / float64(used)
	}
	type field struct {
		name string
		v    any
	}
	fields := []field{
		{"peak.allocated", int64(max(h.HeapPeak, h.HeapAlloc))},
		{"total.allocated", used},
		{"replication.backlog", int64(0)},
		{"clients.slaves", int64(0)},
		{"clients.normal", f.clientsNormal},
		{"aof.buffer", int64(0)},
		{"overhead.total", overhead},
		{"keys.count", int64(f.keys)},
		{"keys.bytes-per-key", perKey},
		{"dataset.bytes", f.dataset},
		{"dataset.percentage", pct(f.dataset, used)},
		{"peak.percentage", pct(used, int64(max(h.HeapPeak, h.HeapAlloc)))},
		{"allocator.allocated", used},
		{"allocator.active", int64(h.HeapSys)},
		{"allocator.resident", int64(h.RSS)},
		{"fragmentation", frag},
		{"fragmentation.bytes", int64(h.RSS) - used},
	}
	c.Out.WriteMap(len(fields))
	for _, fl := range fields {
		c.Out.WriteBulkString(fl.name)
		switch v := fl.v.(type) {
		case int64:
			c.Out.WriteInt(v)
		case float64:
			c.Out.WriteDouble(v)
		}
	}
}

// Thresholds of MEMORY DOCTOR, Redis's.
const (
	doctorEmptyBytes        = 5 << 20 // below it: "this instance is empty"
	doctorPeakRatio         = 1.5     // peak over used
	doctorFragRatio         = 1.4     // RSS over used ...
	doctorFragBytes         = 10 << 20
	doctorClientBufferBytes = 200 << 10 // a client's query or output buffer
)

func (c *Session) memoryDoctor() string {
	f := c.memoryFigures()
	h := f.host
	if h.HeapAlloc < doctorEmptyBytes {
		return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting."
	}
	var issues []string
	if float64(h.HeapPeak) > doctorPeakRatio*float64(h.HeapAlloc) {
		issues = append(issues, " * Peak memory: In the past this instance used more than 150% the memory that is currently using. "+
			"The Go runtime returns freed memory to the system lazily, so RSS may stay near the peak for a while; MEMORY PURGE returns it now. "+
			"Peak "+human(h.HeapPeak)+", now "+human(h.HeapAlloc)+".")
	}
	if h.HeapAlloc > 0 && float64(h.RSS) > doctorFragRatio*float64(h.HeapAlloc) && h.RSS-h.HeapAlloc > doctorFragBytes {
		issues = append(issues, " * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 "+
			"(RSS "+human(h.RSS)+" for "+human(h.HeapAlloc)+" of heap in use). Garbage not yet collected, freed memory not yet "+
			"returned to the system, goroutine stacks and buffers count in RSS.")
	}
	if f.queryBufMax > doctorClientBufferBytes {
		issues = append(issues, " * Big client buffers: a client's query buffer is "+human(uint64(f.queryBufMax))+
			"; a client sending very large commands (or pipelines) holds that much until its command is read. See CLIENT LIST (qbuf).")
	}
	if f.outputBufMax > doctorClientBufferBytes {
		issues = append(issues, " * Big client buffers: a client's output buffer holds "+human(uint64(f.outputBufMax))+
			"; a slow reader (a subscriber, MONITOR) keeps its pending output in memory. See CLIENT LIST (omem) and client-output-buffer-limit.")
	}
	if len(issues) == 0 {
		return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base."
	}
	return "Sam, I detected a few issues in this instance memory implants:\n\n" + strings.Join(issues, "\n\n") +
		"\n\nI'm here to keep you safe, Sam. I want to help you.\n"
}

// bufferFigures are the session's buffers as CLIENT LIST shows them,
// read from any goroutine.
type bufferFigures struct {
	qbuf, qbufCap, argvMem, multiMem int64
	rbs, rbp, omem, totMem           int64
	monitor                          bool
}

// sessionBytes is what a session costs before its buffers: the session,
// its writer and reader and a connection's bookkeeping in the runtime.
const sessionBytes = 2 << 10

func (c *Session) bufferFigures() bufferFigures {
	o := &c.obs
	var f bufferFigures
	if c.conn != nil {
		q, qc := c.conn.QueryBuffer()
		f.qbuf, f.qbufCap = int64(q), int64(qc)
	}
	f.argvMem, f.multiMem = o.argvMem.Load(), c.tx.shownBytes.Load()
	f.rbs, f.rbp = o.outCap.Load(), o.outPeak.Load()
	f.omem = o.outLen.Load()
	c.n.pubsub.mu.Lock()
	box := c.box
	c.n.pubsub.mu.Unlock()
	if box != nil {
		pending, _ := box.pending()
		f.omem += int64(pending)
		f.monitor = box.mon.Load()
	}
	f.totMem = sessionBytes + f.qbufCap + f.rbs + f.omem + f.argvMem + f.multiMem
	return f
}

func itoa64(v int64) string { return strconv.FormatInt(v, 10) }
