package node

import (
	"strconv"
	"strings"

	"github.com/keel-db/keel/resp"
)

var clientSubs = []subcommand{
	{name: "client|id", arity: 2, flags: []string{"noscript", "loading", "stale"}},
	{name: "client|setname", arity: 3, flags: []string{"noscript", "loading", "stale"}},
	{name: "client|getname", arity: 2, flags: []string{"noscript", "loading", "stale"}},
	{name: "client|list", arity: -2, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "client|info", arity: 2, flags: []string{"noscript", "loading", "stale"}},
	{name: "client|kill", arity: -3, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "client|setinfo", arity: 4, flags: []string{"noscript", "loading", "stale"}},
	{name: "client|unblock", arity: -3, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "client|help", arity: 2, flags: []string{"loading", "stale"}},
}

const errClientName = "ERR Client names cannot contain spaces, newlines or special characters."

func subArityOK(c *Session, subs []subcommand, full string, argc int) bool {
	for i, s := range subs {
		if s.name == full {
			c.lastCmd.Store(&subs[i].name)
			if !arityOK(s.arity, argc) {
				wrongArgs(c, full)
				return false
			}
			return true
		}
	}
	return true
}

func cmdClient(c *Session, argv [][]byte) {
	sub := strings.ToLower(string(argv[1]))
	if !subArityOK(c, clientSubs, "client|"+sub, len(argv)) {
		return
	}
	switch sub {
	case "id":
		c.Out.WriteInt(int64(c.id))
	case "setname":
		if !validClientName(argv[2]) {
			c.Out.WriteError(errClientName)
			return
		}
		c.mu.Lock()
		c.name = string(argv[2])
		c.mu.Unlock()
		c.Out.WriteSimple("OK")
	case "getname":
		c.mu.Lock()
		name := c.name
		c.mu.Unlock()
		if name == "" {
			c.Out.WriteNull()
			return
		}
		c.Out.WriteBulkString(name)
	case "info":
		c.Out.WriteVerbatim(c.describe(c.n.clock.Now()), "txt")
	case "list":
		clientList(c, argv)
	case "kill":
		clientKill(c, argv)
	case "setinfo":
		attr := strings.ToLower(string(argv[2]))
		if attr != "lib-name" && attr != "lib-ver" {
			c.Out.WriteError("ERR Unrecognized option '" + string(truncate(argv[2], 128)) + "'")
			return
		}
		if !validClientName(argv[3]) {
			c.Out.WriteError("ERR " + attr + " cannot contain spaces, newlines or special characters.")
			return
		}
		c.mu.Lock()
		if attr == "lib-name" {
			c.libName = string(argv[3])
		} else {
			c.libVer = string(argv[3])
		}
		c.mu.Unlock()
		c.Out.WriteSimple("OK")
	case "unblock":
		clientUnblock(c, argv) // blocking.go
	case "help":
		help := []string{
			"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GETNAME", "    Return the name of the current connection.",
			"ID", "    Return the ID of the current connection.",
			"INFO", "    Return information about the current client connection.",
			"KILL <ip:port>", "    Kill connection made from <ip:port>.",
			"KILL <option> <value> [<option> <value> [...]]",
			"    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>,",
			"    TYPE normal|master|replica|pubsub, USER <username>, SKIPME yes|no, MAXAGE <seconds>.",
			"LIST [options ...]", "    Return information about client connections. Options: TYPE normal|master|replica|pubsub, ID id [id ...].",
			"SETINFO <option> <value>", "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
			"SETNAME <name>", "    Assign the name <name> to the current connection.",
			"UNBLOCK <clientid> [TIMEOUT|ERROR]",
			"    Unblock the specified blocked client.",
			"HELP", "    Prints this help.",
		}
		c.Out.WriteArray(len(help))
		for _, h := range help {
			c.Out.WriteSimple(h)
		}
	default:
		unknownSubcommand(c, "client", argv[1])
	}
}

// describe is the client's CLIENT LIST line, in Redis 7.2's field order.
// Buffer figures of other clients are not tracked and read 0.
func (c *Session) describe(now int64) string {
	c.mu.Lock()
	name, libName, libVer := c.name, c.libName, c.libVer
	c.mu.Unlock()
	cmd := "NULL"
	if p := c.lastCmd.Load(); p != nil {
		cmd = *p
	}
	idle := now - c.lastActive.Load()
	var b strings.Builder
	b.WriteString("id=" + strconv.FormatUint(c.id, 10))
	laddr, fd := "", -1
	if c.conn != nil {
		laddr, fd = c.conn.LocalAddr(), c.conn.FD()
	}
	b.WriteString(" addr=" + c.addr() + " laddr=" + laddr)
	b.WriteString(" fd=" + strconv.Itoa(fd))
	b.WriteString(" name=" + name)
	b.WriteString(" age=" + strconv.FormatInt((now-c.created)/1e9, 10))
	b.WriteString(" idle=" + strconv.FormatInt(max(idle, 0)/1e9, 10))
	b.WriteString(" " + c.clientListFields()) // pubsub.go
	b.WriteString(" cmd=" + cmd + " user=" + c.user.Load().name + " redir=-1 resp=" + strconv.Itoa(int(c.proto.Load())))
	b.WriteString(" lib-name=" + libName + " lib-ver=" + libVer + "\n")
	return b.String()
}

func clientList(c *Session, argv [][]byte) {
	var ids map[uint64]bool
	typeNone := false
	for i := 2; i < len(argv); i++ {
		switch {
		case eqFold(argv[i], "type") && i+1 < len(argv):
			i++
			switch strings.ToLower(string(argv[i])) {
			case "normal":
			case "master", "replica", "slave", "pubsub":
				typeNone = true
			default:
				c.Out.WriteError("ERR Unknown client type '" + string(truncate(argv[i], 128)) + "'")
				return
			}
		case eqFold(argv[i], "id") && i+1 < len(argv):
			ids = map[uint64]bool{}
			for i++; i < len(argv); i++ {
				id, ok := resp.ParseInt(argv[i])
				if !ok || id <= 0 {
					c.Out.WriteError("ERR Invalid client ID")
					return
				}
				ids[uint64(id)] = true
			}
		default:
			c.Out.WriteError("ERR syntax error")
			return
		}
	}
	now := c.n.clock.Now()
	var b strings.Builder
	if !typeNone {
		for _, o := range c.n.sessionList() {
			if ids != nil && !ids[o.id] {
				continue
			}
			b.WriteString(o.describe(now))
		}
	}
	c.Out.WriteVerbatim(b.String(), "txt")
}

func clientKill(c *Session, argv [][]byte) {
	if len(argv) == 3 {
		// Old form: CLIENT KILL addr:port.
		for _, o := range c.n.sessionList() {
			if o.addr() == string(argv[2]) {
				c.kill(o)
				c.Out.WriteSimple("OK")
				return
			}
		}
		c.Out.WriteError("ERR No such client")
		return
	}
	var (
		id            uint64
		addr, laddr   string
		skipMe        = true
		typeNone      bool
		user          *aclRef
		maxAge        int64
		haveID        bool
		haveAddr      bool
		haveLaddr     bool
		haveMaxAge    bool
		syntaxErrored bool
	)
	for i := 2; i < len(argv); i += 2 {
		if i+1 >= len(argv) {
			syntaxErrored = true
			break
		}
		v := argv[i+1]
		switch strings.ToLower(string(argv[i])) {
		case "id":
			n, ok := resp.ParseInt(v)
			if !ok || n <= 0 {
				c.Out.WriteError("ERR client-id should be greater than 0")
				return
			}
			id, haveID = uint64(n), true
		case "addr":
			addr, haveAddr = string(v), true
		case "laddr":
			laddr, haveLaddr = string(v), true
		case "type":
			switch strings.ToLower(string(v)) {
			case "normal":
			case "master", "replica", "slave", "pubsub":
				typeNone = true
			default:
				c.Out.WriteError("ERR Unknown client type '" + string(truncate(v, 128)) + "'")
				return
			}
		case "user":
			if user = c.n.aclUserRef(v); user == nil {
				c.Out.WriteError("ERR No such user '" + string(truncate(v, 128)) + "'")
				return
			}
		case "skipme":
			switch strings.ToLower(string(v)) {
			case "yes":
				skipMe = true
			case "no":
				skipMe = false
			default:
				c.Out.WriteError("ERR syntax error")
				return
			}
		case "maxage":
			n, ok := resp.ParseInt(v)
			if !ok || n <= 0 {
				c.Out.WriteError("ERR syntax error")
				return
			}
			maxAge, haveMaxAge = n, true
		default:
			syntaxErrored = true
		}
		if syntaxErrored {
			break
		}
	}
	if syntaxErrored {
		c.Out.WriteError("ERR syntax error")
		return
	}
	killed := 0
	now := c.n.clock.Now()
	if !typeNone {
		for _, o := range c.n.sessionList() {
			if haveID && o.id != id || haveAddr && o.addr() != addr || haveLaddr && o.localAddr() != laddr ||
				skipMe && o == c || haveMaxAge && (now-o.created)/1e9 < maxAge || user != nil && o.user.Load() != user {
				continue
			}
			c.kill(o)
			killed++
		}
	}
	c.Out.WriteInt(int64(killed))
}

// kill disconnects o. A client killing itself gets its reply first.
func (c *Session) kill(o *Session) {
	if o == c {
		c.closeAfter = true
		return
	}
	o.killed.Store(true)
	c.n.rt.Disconnect(o)
}

func (c *Session) localAddr() string {
	if c.conn == nil {
		return ""
	}
	return c.conn.LocalAddr()
}
