package server

import (
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
func (s *Server) configParams() map[string]string {
	yesno := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	params := map[string]string{
		"bind":                      s.cfg.Bind,
		"port":                      strconv.Itoa(s.cfg.Port),
		"dir":                       s.cfg.Dir,
		"appendonly":                yesno(s.cfg.AppendOnly),
		"appendfsync":               s.cfg.AppendFsync,
		"requirepass":               s.password(),
		"maxmemory":                 strconv.FormatInt(s.cfg.MaxMemory, 10),
		"maxmemory-policy":          "noeviction",
		"maxclients":                strconv.FormatInt(s.maxClients.Load(), 10),
		"proto-max-bulk-len":        strconv.FormatInt(s.cfg.Limits.BulkBytesMax, 10),
		"client-query-buffer-limit": strconv.Itoa(s.cfg.Limits.QueryBufferBytesMax),
		"databases":                 "1",
		"save":                      "",
		"timeout":                   "0",
		"tcp-keepalive":             "15",
		"hz":                        "10",
		"protected-mode":            "no",
		"cluster-enabled":           yesno(s.node != nil),
	}
	for name, p := range extraConfig {
		params[name] = p.get(s)
	}
	return params
}

func cmdConfig(c *client, argv [][]byte) {
	sub := strings.ToLower(string(argv[1]))
	if !subArityOK(c, configSubs, "config|"+sub, len(argv)) {
		return
	}
	switch sub {
	case "get":
		params := c.srv.configParams()
		names := make([]string, 0, len(params))
		for name := range params {
			for _, pat := range argv[2:] {
				if engine.GlobMatch([]byte(strings.ToLower(string(pat))), []byte(name)) {
					names = append(names, name)
					break
				}
			}
		}
		sort.Strings(names)
		c.out.WriteMap(len(names))
		for _, n := range names {
			c.out.WriteBulkString(n)
			c.out.WriteBulkString(params[n])
		}
	case "set":
		configSet(c, argv)
	case "resetstat":
		c.srv.resetStats()
		c.out.WriteSimple("OK")
	case "help":
		help := []string{
			"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
			"SET <directive> <value>", "    Set the configuration <directive> to <value> (maxclients, requirepass).",
			"RESETSTAT", "    Reset statistics reported by the INFO command.",
			"HELP", "    Print this help.",
		}
		c.out.WriteArray(len(help))
		for _, h := range help {
			c.out.WriteSimple(h)
		}
	default:
		unknownSubcommand(c, "config", argv[1])
	}
}

// configSet applies the parameters that take effect online. All pairs are
// checked before any is applied, as in Redis 7.
func configSet(c *client, argv [][]byte) {
	if len(argv)%2 != 0 {
		c.out.WriteError("ERR wrong number of arguments for 'config|set' command")
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
		ch := change{name: name, val: argv[i+1]}
		switch name {
		case "maxclients":
			n, err := strconv.ParseInt(string(ch.val), 10, 64)
			if err != nil || n < 1 {
				c.out.WriteError("ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 2147483647 inclusive")
				return
			}
			ch.n = n
		case "requirepass":
		default:
			if p, ok := extraConfig[name]; ok {
				if !p.check(string(ch.val)) {
					c.out.WriteError("ERR CONFIG SET failed (possibly related to argument '" + name + "') - " + p.bad)
					return
				}
				break
			}
			c.out.WriteError("ERR Unknown option or number of arguments for CONFIG SET - '" + string(truncate(argv[i], 128)) + "'")
			return
		}
		changes = append(changes, ch)
	}
	for _, ch := range changes {
		switch ch.name {
		case "maxclients":
			c.srv.maxClients.Store(ch.n)
		case "requirepass":
			p := string(ch.val)
			c.srv.requirePass.Store(&p)
		default:
			extraConfig[ch.name].set(c.srv, string(ch.val))
		}
	}
	c.out.WriteSimple("OK")
}
