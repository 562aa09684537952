package node

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/keel-db/keel/engine"
)

var configSubs = []subcommand{
	{name: "config|get", arity: -3, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "config|set", arity: -4, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "config|resetstat", arity: 2, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "config|help", arity: 2, flags: []string{"loading", "stale"}},
}

// configParams are the values CONFIG GET reports, by redis.conf name.
func (n *Node) configParams() map[string]string {
	yesno := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	params := map[string]string{
		"bind":             n.cfg.Bind,
		"port":             strconv.Itoa(n.cfg.Port),
		"dir":              n.cfg.Dir,
		"appendonly":       yesno(n.cfg.AppendOnly),
		"appendfsync":      n.cfg.AppendFsync,
		"requirepass":      n.password(),
		"maxmemory":        strconv.FormatInt(n.MaxMemory(), 10),
		"maxmemory-policy": n.mem.Load().policy.String(),
		"maxclients":       strconv.FormatInt(n.maxClients.Load(), 10),
		"databases":        "1",
		"save":             "",
		"tcp-keepalive":    "15",
		"hz":               "10",
		"protected-mode":   "no",
		"cluster-enabled":  yesno(n.clustered),
	}
	for name, p := range extraConfig {
		params[name] = p.get(n)
	}
	return params
}

func cmdConfig(c *Session, argv [][]byte) {
	sub := strings.ToLower(string(argv[1]))
	if !subArityOK(c, configSubs, "config|"+sub, len(argv)) {
		return
	}
	switch sub {
	case "get":
		params := c.n.configParams()
		names := make([]string, 0, len(params))
		for name := range params {
			for _, pat := range argv[2:] {
				if engine.GlobMatch([]byte(strings.ToLower(string(pat))), []byte(name)) {
					names = append(names, name)
					break
				}
			}
		}
		// An alias answers under its own name when asked by that name
		// exactly, as in Redis (a pattern finds the current name only).
		for _, pat := range argv[2:] {
			alias := strings.ToLower(string(pat))
			if canon, ok := configAliases[alias]; ok && !slices.Contains(names, alias) {
				params[alias] = params[canon]
				names = append(names, alias)
			}
		}
		sort.Strings(names)
		c.Out.WriteMap(len(names))
		for _, n := range names {
			c.Out.WriteBulkString(n)
			c.Out.WriteBulkString(params[n])
		}
	case "set":
		configSet(c, argv)
	case "resetstat":
		c.n.resetStats()
		c.Out.WriteSimple("OK")
	case "help":
		help := []string{
			"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
			"SET <directive> <value>", "    Set the configuration <directive> to <value>.",
			"RESETSTAT", "    Reset statistics reported by the INFO command.",
			"HELP", "    Prints this help.",
		}
		c.Out.WriteArray(len(help))
		for _, h := range help {
			c.Out.WriteSimple(h)
		}
	default:
		unknownSubcommand(c, "config", argv[1])
	}
}

// configSet applies the parameters that take effect online. All pairs are
// checked before any is applied, as in Redis 7.
func configSet(c *Session, argv [][]byte) {
	if len(argv)%2 != 0 {
		c.Out.WriteError("ERR wrong number of arguments for 'config|set' command")
		return
	}
	type change struct {
		name string
		val  []byte
		n    int64
	}
	var changes []change
	for i := 2; i < len(argv); i += 2 {
		name := strings.ToLower(string(argv[i]))
		if canon, ok := configAliases[name]; ok {
			name = canon
		}
		ch := change{name: name, val: argv[i+1]}
		switch name {
		case "maxclients":
			n, err := strconv.ParseInt(string(ch.val), 10, 64)
			if err != nil || n < 1 {
				c.Out.WriteError("ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 2147483647 inclusive")
				return
			}
			ch.n = n
		case "requirepass":
		default:
			if p, ok := extraConfig[name]; ok {
				if !p.check(string(ch.val)) {
					c.Out.WriteError("ERR CONFIG SET failed (possibly related to argument '" + name + "') - " + p.bad)
					return
				}
				break
			}
			c.Out.WriteError("ERR Unknown option or number of arguments for CONFIG SET - '" + string(truncate(argv[i], 128)) + "'")
			return
		}
		changes = append(changes, ch)
	}
	for _, ch := range changes {
		switch ch.name {
		case "maxclients":
			c.n.maxClients.Store(ch.n)
		case "requirepass":
			p := string(ch.val)
			c.n.requirePass.Store(&p)
			c.n.rebuildACL() // the default user's password on this node
		default:
			extraConfig[ch.name].set(c.n, string(ch.val))
		}
	}
	c.Out.WriteSimple("OK")
}
