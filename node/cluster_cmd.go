package node

import (
	"strconv"
	"strings"

	"github.com/keel-db/keel/resp"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
)

// The Redis Cluster commands: CLUSTER's introspection subcommands, and
// READONLY / READWRITE / ASKING, which set per-connection routing state.
// Without cluster mode all of them answer Redis's "cluster support
// disabled" error.

const errClusterDisabled = "ERR This instance has cluster support disabled"

var clusterSubs = []subcommand{
	{name: "cluster|slots", arity: 2, flags: []string{"loading", "stale"}},
	{name: "cluster|shards", arity: 2, flags: []string{"loading", "stale"}},
	{name: "cluster|nodes", arity: 2, flags: []string{"loading", "stale"}},
	{name: "cluster|info", arity: 2, flags: []string{"loading", "stale"}},
	{name: "cluster|keyslot", arity: 3, flags: []string{"loading", "stale"}},
	{name: "cluster|myid", arity: 2, flags: []string{"loading", "stale"}},
	{name: "cluster|countkeysinslot", arity: 3, flags: []string{"loading", "stale"}},
	{name: "cluster|getkeysinslot", arity: 4, flags: []string{"loading", "stale"}},
	{name: "cluster|help", arity: 2, flags: []string{"loading", "stale"}},
	{name: "cluster|addnode", arity: 4, flags: []string{"admin"}},
	{name: "cluster|delnode", arity: 3, flags: []string{"admin"}},
	{name: "cluster|groups", arity: 2, flags: []string{"loading", "stale"}},
	{name: "cluster|reshard", arity: -4, flags: []string{"admin"}},
	{name: "cluster|placement", arity: 2, flags: []string{"loading", "stale"}},
	{name: "cluster|addgroup", arity: 2, flags: []string{"admin"}},
}

func init() {
	for _, sc := range []*serverCommand{
		{name: "cluster", arity: -2, categories: []string{"@slow"}, run: cmdCluster, subs: clusterSubs,
			doc: commandDoc{summary: "A container for Redis Cluster commands.", since: "3.0.0", group: "cluster", complexity: "Depends on subcommand."}},
		{name: "readonly", arity: 1, flags: []string{"loading", "stale", "fast"}, categories: []string{"@fast", "@connection"}, run: cmdReadOnly,
			doc: commandDoc{summary: "Enables read-only queries for a connection to a Redis Cluster replica node.", since: "3.0.0", group: "cluster", complexity: "O(1)"}},
		{name: "readwrite", arity: 1, flags: []string{"loading", "stale", "fast"}, categories: []string{"@fast", "@connection"}, run: cmdReadWrite,
			doc: commandDoc{summary: "Enables read-write queries for a connection to a Redis Cluster replica node.", since: "3.0.0", group: "cluster", complexity: "O(1)"}},
		{name: "asking", arity: 1, flags: []string{"fast"}, categories: []string{"@fast", "@connection"}, run: cmdAsking,
			doc: commandDoc{summary: "Signals that a cluster client is following an -ASK redirect.", since: "3.0.0", group: "cluster", complexity: "O(1)"}},
	} {
		serverCommands[sc.name] = sc
	}
	for name, d := range map[string]commandDoc{
		"cluster|slots":           {summary: "Returns the mapping of cluster slots to nodes.", since: "3.0.0", complexity: "O(N) where N is the total number of Cluster nodes"},
		"cluster|shards":          {summary: "Returns the mapping of cluster slots to shards.", since: "7.0.0", complexity: "O(N) where N is the total number of cluster nodes"},
		"cluster|nodes":           {summary: "Returns the cluster configuration for a node.", since: "3.0.0", complexity: "O(N) where N is the total number of Cluster nodes"},
		"cluster|info":            {summary: "Returns information about the state of a node.", since: "3.0.0", complexity: "O(1)"},
		"cluster|keyslot":         {summary: "Returns the hash slot for a key.", since: "3.0.0", complexity: "O(N) where N is the number of bytes in the key", syntax: "key"},
		"cluster|myid":            {summary: "Returns the ID of a node.", since: "3.0.0", complexity: "O(1)"},
		"cluster|countkeysinslot": {summary: "Returns the number of keys in a hash slot.", since: "3.0.0", complexity: "O(N) where N is the number of keys on the node (keel keeps no per-slot index)", syntax: "slot"},
		"cluster|getkeysinslot":   {summary: "Returns the key names in a hash slot.", since: "3.0.0", complexity: "O(N) where N is the number of keys on the node (keel keeps no per-slot index)", syntax: "slot count"},
		"cluster|help":            {summary: "Returns helpful text about the different subcommands.", since: "5.0.0", complexity: "O(1)"},
		"cluster|addnode":         {summary: "Adds a voter to the replica groups this node leads (keel; send to every group's leader).", since: "keel", complexity: "O(G) where G is the number of replica groups this node leads", syntax: "id host:port"},
		"cluster|delnode":         {summary: "Removes a voter from the replica groups this node leads (keel; send to every group's leader).", since: "keel", complexity: "O(G) where G is the number of replica groups this node leads", syntax: "id"},
		"cluster|placement":       {summary: "Returns the meta record (members, each group's target and configuration) and the moves left (keel).", since: "keel", complexity: "O(G) where G is the number of replica groups"},
		"cluster|addgroup":        {summary: "Adds an empty replica group to a placed cluster, on the least loaded nodes (keel; `keel cluster split` then moves slots to it).", since: "keel", complexity: "O(N+G) where N is the number of nodes and G of replica groups"},
		"cluster|groups":          {summary: "Returns each replica group's leader, members and slots (keel).", since: "keel", complexity: "O(G) where G is the number of replica groups"},
		"cluster|reshard":         {summary: "One step of a slot move between replica groups, proposed through group g's log (keel; `keel cluster reshard` drives it).", since: "keel", complexity: "O(N) where N is the number of keys moved", syntax: "g IMPORTING|MIGRATING|MOVEKEYS|IMPORTKEYS|DELKEYS|NODE|STABLE ..."},
	} {
		subDocs[name] = d
	}
}

// cmdReadOnly lets a follower serve this connection's keyed reads locally
// (possibly stale, within the bound cluster/group.go states).
func cmdReadOnly(c *Session, argv [][]byte) {
	if !c.n.clustered {
		c.Out.WriteError(errClusterDisabled)
		return
	}
	c.readOnly = true
	c.Out.WriteSimple("OK")
}

func cmdReadWrite(c *Session, argv [][]byte) {
	if !c.n.clustered {
		c.Out.WriteError(errClusterDisabled)
		return
	}
	c.readOnly = false
	c.Out.WriteSimple("OK")
}

// cmdAsking accepts a client following -ASK: its next command may be
// served by a replica group importing the command's slot
// (cluster.Request.Asking). Within MULTI the flag lasts until EXEC.
func cmdAsking(c *Session, argv [][]byte) {
	if !c.n.clustered {
		c.Out.WriteError(errClusterDisabled)
		return
	}
	c.asking = true
	c.Out.WriteSimple("OK")
}

// isLeader reports whether this node leads a group (any, with several).
func (c *Session) isLeader() bool {
	if len(c.n.groups) > 1 {
		return len(c.n.ledGroups()) > 0
	}
	lead := false
	gr := c.n.groups[0]
	c.n.rt.Exclusive(c, 1, func() {
		if gr.replica != nil && gr.dead == "" {
			lead = gr.replica.IsLeader()
		}
	})
	return lead
}

func cmdCluster(c *Session, argv [][]byte) {
	if !c.n.clustered {
		c.Out.WriteError(errClusterDisabled)
		return
	}
	sub := strings.ToLower(string(argv[1]))
	if !subArityOK(c, clusterSubs, "cluster|"+sub, len(argv)) {
		return
	}
	switch sub {
	case "slots":
		t := c.topology()
		t.WriteSlots(c.Out)
	case "shards":
		t := c.topology()
		t.WriteShards(c.Out)
	case "nodes":
		t := c.topology()
		c.Out.WriteVerbatim(t.NodesText(), "txt")
	case "groups":
		t := c.topology()
		t.WriteGroups(c.Out)
	case "info":
		// ok once every group has a leader this node knows.
		views := c.views()
		known := true
		for _, v := range views {
			known = known && v.leader != 0
		}
		t := c.n.topologyOf(views)
		t.Down = nil
		c.Out.WriteVerbatim(t.InfoText(known), "txt")
	case "reshard":
		// A step of a slot move, proposed through group g's log
		// (cluster/reshard.go says which steps and in what order).
		if len(c.n.groups) == 1 {
			c.Out.WriteError("ERR CLUSTER RESHARD needs replica groups to move slots between: start the nodes with --groups 2 or more")
			return
		}
		g, ok := cluster.ReshardGroup(argv)
		if !ok {
			c.Out.WriteError("ERR CLUSTER RESHARD <group> <step> ...: the group must be a positive integer")
			return
		}
		if count := c.n.groupCount(); g > uint64(count) && g <= uint64(len(c.n.groups)) {
			// A split just added it and this node has not heard of it
			// yet (the meta record reaches it with the next pings).
			c.Out.WriteError("TRYAGAIN replica group " + strconv.FormatUint(g, 10) + " is not known to this node yet; retry")
			return
		}
		if count := c.n.groupCount(); g < 1 || g > uint64(count) {
			c.Out.WriteError("ERR no replica group " + strconv.FormatUint(g, 10) + " in this cluster (groups 1.." + strconv.Itoa(count) + ")")
			return
		}
		c.submitThen(g, []cluster.Request{{Argv: argv, W: c.Out}}, nil)
	case "placement":
		c.Out.WriteVerbatim(c.n.placementText(), "txt") // moves.go
	case "addgroup":
		c.metaAddGroup() // moves.go
	case "addnode", "delnode":
		if c.n.plc.on {
			// Placed: a change of the meta record (moves.go), through
			// group 1's log; the moves follow on their own.
			c.metaMembership(sub, argv)
			return
		}
		// A Raft configuration change, answered once it applies
		// (cluster/group.go); a follower redirects it to the leader.
		if sub == "addnode" {
			if _, err := ParsePeers("1@" + string(argv[3])); err != nil {
				c.Out.WriteError("ERR invalid node address '" + string(argv[3]) + "': want host:port of its client port")
				return
			}
		}
		if len(c.n.groups) > 1 {
			c.membershipOnLedGroups(sub, argv)
			return
		}
		c.submitThen(1, []cluster.Request{{Argv: argv, W: c.Out}}, nil)
	case "keyslot":
		c.Out.WriteInt(int64(cluster.KeySlot(argv[2])))
	case "myid":
		c.Out.WriteBulkString(cluster.NodeName(c.n.id))
	case "countkeysinslot":
		slot, ok := resp.ParseInt(argv[2])
		if !ok {
			c.Out.WriteError(errNotInteger)
			return
		}
		if slot < 0 || slot >= cluster.SlotCount {
			c.Out.WriteError("ERR Invalid slot")
			return
		}
		n := 0
		c.keysInSlot(int(slot), func([]byte) bool { n++; return true })
		c.Out.WriteInt(int64(n))
	case "getkeysinslot":
		slot, ok1 := resp.ParseInt(argv[2])
		max, ok2 := resp.ParseInt(argv[3])
		if !ok1 || !ok2 {
			c.Out.WriteError(errNotInteger)
			return
		}
		if slot < 0 || slot >= cluster.SlotCount || max < 0 {
			c.Out.WriteError("ERR Invalid slot or number of keys")
			return
		}
		var keys [][]byte
		if max > 0 {
			c.keysInSlot(int(slot), func(k []byte) bool {
				keys = append(keys, append([]byte(nil), k...))
				return int64(len(keys)) < max
			})
		}
		c.Out.WriteArray(len(keys))
		for _, k := range keys {
			c.Out.WriteBulk(k)
		}
	case "help":
		help := []string{
			"CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"COUNTKEYSINSLOT <slot>", "    Return the number of keys in <slot>.",
			"GETKEYSINSLOT <slot> <count>", "    Return key names stored by current node in a slot.",
			"INFO", "    Return information about the cluster.",
			"KEYSLOT <key>", "    Return the hash slot for <key>.",
			"MYID", "    Return the node id.",
			"ADDNODE <id> <host:port>", "    (keel) Add node <id>, started with --join, as a voter of the groups this node leads.",
			"DELNODE <id>", "    (keel) Remove node <id> from the groups this node leads.",
			"GROUPS", "    (keel) Return each replica group's leader, members, owned, migrating and importing slots.",
			"PLACEMENT", "    (keel) Return the meta record: members and states, each group's target and configuration, moves left.",
			"ADDGROUP", "    (keel) Add an empty replica group on the least loaded nodes; use `keel cluster split`.",
			"RESHARD <group> <step> ...", "    (keel) One step of a slot move between groups; use `keel cluster reshard`.",
			"NODES", "    Return cluster configuration seen by node. Output format:",
			"    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
			"SHARDS", "    Return information about slot range mappings and the nodes associated with them.",
			"SLOTS", "    Return information about slots range mappings. Each range is made of:",
			"    start, end, master and replicas IP addresses, ports and ids",
			"HELP", "    Prints this help.",
		}
		c.Out.WriteArray(len(help))
		for _, h := range help {
			c.Out.WriteSimple(h)
		}
	default:
		unknownSubcommand(c, "cluster", argv[1])
	}
}

const errNotInteger = "ERR value is not an integer or out of range"

// keysInSlot calls fn with each live key of slot in key order until fn
// returns false. It scans a point-in-time view of the whole keyspace off
// the shard: keel keeps no per-slot index (Redis does), so this is O(keys
// on the node), for operators and tests rather than hot paths.
func (c *Session) keysInSlot(slot int, fn func(key []byte) bool) {
	var view *engine.View
	// The group this node routes the slot to.
	gr := c.n.group(c.n.groupOf(slot))
	c.n.rt.Exclusive(c, gr.id, func() {
		if gr.replica != nil && gr.dead == "" {
			view = gr.replica.DB().View()
		}
	})
	if view == nil {
		return // dead replica
	}
	defer view.Release()
	nowMillis := c.n.clock.Now() / 1e6
	view.Ascend(func(e engine.Entry) bool {
		if e.ExpireAt != 0 && e.ExpireAt <= nowMillis {
			return true
		}
		if cluster.KeySlot(e.Key) != slot {
			return true
		}
		return fn(e.Key)
	})
}
