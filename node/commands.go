package node

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/keel-db/keel/resp"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/engine"
)

// serverCommand is a connection-level command: it runs on the connection's
// goroutine and never touches the keyspace through the log.
type serverCommand struct {
	name       string // lower case
	arity      int
	flags      []string // COMMAND INFO flags
	categories []string // ACL categories
	noAuth     bool     // allowed before AUTH
	run        func(c *Session, argv [][]byte)
	subs       []subcommand
	doc        commandDoc
}

// subcommand is reported by COMMAND INFO / DOCS (name is "client|id").
type subcommand struct {
	name  string
	arity int
	flags []string
	doc   commandDoc
}

// serverCommands is filled by the init functions of the files that define
// connection commands (this one, cluster_cmd.go, multi.go, pubsub.go), in
// whatever order they run.
var serverCommands = map[string]*serverCommand{}

// lookupServerCommand finds a connection command without allocating.
func lookupServerCommand(name []byte) *serverCommand {
	var buf [16]byte
	if len(name) > len(buf) {
		return nil
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return serverCommands[string(buf[:len(name)])]
}

// replicaCommands are handled by cluster.Replica itself rather than the
// engine (persistence); they are routed like engine commands.
var replicaCommands = map[string]bool{"save": true, "bgsave": true, "lastsave": true, "bgrewriteaof": true,
	"function": true, "fcall": true, "fcall_ro": true}

func isReplicaCommand(name []byte) bool {
	if len(name) > 16 {
		return false
	}
	return replicaCommands[strings.ToLower(string(name))]
}

func init() {
	cmds := []*serverCommand{
		{name: "ping", arity: -1, flags: []string{"fast", "sentinel"}, categories: []string{"@fast", "@connection"}, run: cmdPing},
		{name: "echo", arity: 2, flags: []string{"loading", "stale", "fast"}, categories: []string{"@fast", "@connection"}, run: cmdEcho},
		{name: "hello", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth", "sentinel", "allow_busy"}, categories: []string{"@fast", "@connection"}, noAuth: true, run: cmdHello},
		{name: "auth", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "no_auth", "sentinel", "allow_busy"}, categories: []string{"@fast", "@connection"}, noAuth: true, run: cmdAuth},
		{name: "select", arity: 2, flags: []string{"loading", "stale", "fast"}, categories: []string{"@fast", "@connection"}, run: cmdSelect},
		{name: "quit", arity: -1, flags: []string{"allow_busy", "noscript", "loading", "stale", "fast", "no_auth"}, categories: []string{"@fast", "@connection"}, noAuth: true, run: cmdQuit},
		{name: "time", arity: 1, flags: []string{"loading", "stale", "fast"}, categories: []string{"@fast"}, run: cmdTime},
		{name: "shutdown", arity: -1, flags: []string{"admin", "noscript", "loading", "stale", "no_multi", "sentinel", "allow_busy"}, categories: []string{"@admin", "@slow", "@dangerous"}, run: cmdShutdown},
		{name: "client", arity: -2, flags: []string{"sentinel"}, categories: []string{"@slow"}, run: cmdClient, subs: clientSubs},
		{name: "command", arity: -1, flags: []string{"loading", "stale"}, categories: []string{"@slow", "@connection"}, run: cmdCommand, subs: commandSubs},
		{name: "info", arity: -1, flags: []string{"loading", "stale", "sentinel"}, categories: []string{"@slow", "@dangerous"}, run: cmdInfo},
		{name: "config", arity: -2, flags: nil, categories: []string{"@slow"}, run: cmdConfig, subs: configSubs},
	}
	for _, sc := range cmds {
		sc.doc = serverDocs[sc.name]
		serverCommands[sc.name] = sc
	}
}

// runServerCommand applies Redis's checks in Redis's order — arity, then
// authentication, then the ACL — and runs the command.
func (c *Session) runServerCommand(sc *serverCommand, argv [][]byte) {
	if !arityOK(sc.arity, len(argv)) {
		c.Out.WriteError("ERR wrong number of arguments for '" + sc.name + "' command")
		return
	}
	if !sc.noAuth && c.needsAuth() {
		c.Out.WriteError(errNoAuth)
		return
	}
	if msg := c.aclDeny(argv); msg != "" {
		c.Out.WriteError(msg)
		return
	}
	sc.run(c, argv)
}

func arityOK(arity, argc int) bool {
	if arity >= 0 {
		return argc == arity
	}
	return argc >= -arity
}

func wrongArgs(c *Session, full string) {
	c.Out.WriteError("ERR wrong number of arguments for '" + full + "' command")
}

func unknownSubcommand(c *Session, cmd string, sub []byte) {
	c.Out.WriteError("ERR unknown subcommand '" + string(truncate(sub, 128)) + "'. Try " + strings.ToUpper(cmd) + " HELP.")
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func eqFold(b []byte, s string) bool { return bytes.EqualFold(b, []byte(s)) }

func cmdPing(c *Session, argv [][]byte) {
	switch len(argv) {
	case 1:
		c.Out.WriteSimple("PONG")
	case 2:
		c.Out.WriteBulk(argv[1])
	default:
		wrongArgs(c, "ping")
	}
}

func cmdEcho(c *Session, argv [][]byte) { c.Out.WriteBulk(argv[1]) }

func cmdQuit(c *Session, argv [][]byte) {
	c.Out.WriteSimple("OK")
	c.closeAfter = true
}

func cmdTime(c *Session, argv [][]byte) {
	now := c.n.clock.Now()
	var tmp [20]byte
	c.Out.WriteArray(2)
	c.Out.WriteBulk(strconv.AppendInt(tmp[:0], now/1e9, 10))
	c.Out.WriteBulk(strconv.AppendInt(tmp[:0], (now%1e9)/1e3, 10))
}

func cmdSelect(c *Session, argv [][]byte) {
	n, ok := resp.ParseInt(argv[1])
	if !ok {
		c.Out.WriteError("ERR value is not an integer or out of range")
		return
	}
	if n != 0 {
		c.Out.WriteError("ERR DB index is out of range")
		return
	}
	c.Out.WriteSimple("OK")
}

const errWrongPass = "WRONGPASS invalid username-password pair or user is disabled."

func cmdAuth(c *Session, argv [][]byte) {
	if len(argv) > 3 {
		c.Out.WriteError("ERR syntax error")
		return
	}
	user, pass := []byte("default"), argv[1]
	if len(argv) == 3 {
		user, pass = argv[1], argv[2]
	} else if u := c.n.acl.def.Load().cur.Load(); u != nil && u.nopass {
		c.Out.WriteError("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		return
	}
	if msg := c.n.aclUnknown(); msg != "" { // acl_bus.go
		c.Out.WriteError(msg)
		return
	}
	if !c.authenticate(argv[0], user, pass) {
		c.Out.WriteError(errWrongPass)
		return
	}
	c.Out.WriteSimple("OK")
}

// validClientName is Redis's rule: printable ASCII without spaces.
func validClientName(name []byte) bool {
	for _, ch := range name {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

func cmdHello(c *Session, argv [][]byte) {
	proto := int64(c.Out.Proto())
	next := 1
	if len(argv) >= 2 {
		v, ok := resp.ParseInt(argv[1])
		if !ok {
			c.Out.WriteError("ERR Protocol version is not an integer or out of range")
			return
		}
		if v < 2 || v > 3 {
			c.Out.WriteError("NOPROTO unsupported protocol version")
			return
		}
		proto = v
		next = 2
	}
	var user, pass, name []byte
	hasName := false
	for j := next; j < len(argv); j++ {
		more := len(argv) - 1 - j
		switch {
		case eqFold(argv[j], "auth") && more >= 2:
			user, pass = argv[j+1], argv[j+2]
			j += 2
		case eqFold(argv[j], "setname") && more >= 1:
			name, hasName = argv[j+1], true
			j++
		default:
			c.Out.WriteError("ERR Syntax error in HELLO option '" + string(truncate(argv[j], 128)) + "'")
			return
		}
	}
	if msg := c.n.aclUnknown(); user != nil && msg != "" { // acl_bus.go
		c.Out.WriteError(msg)
		return
	}
	if user != nil && !c.authenticate(argv[0], user, pass) {
		c.Out.WriteError(errWrongPass)
		return
	}
	if c.needsAuth() {
		c.Out.WriteError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if hasName {
		if !validClientName(name) {
			c.Out.WriteError(errClientName)
			return
		}
		c.mu.Lock()
		c.name = string(name)
		c.mu.Unlock()
	}
	c.Out.SetProto(int(proto))
	c.proto.Store(int32(proto))
	c.Out.WriteMap(7)
	c.Out.WriteBulkString("server")
	c.Out.WriteBulkString("keel")
	c.Out.WriteBulkString("version")
	c.Out.WriteBulkString(RedisVersion)
	c.Out.WriteBulkString("proto")
	c.Out.WriteInt(proto)
	c.Out.WriteBulkString("id")
	c.Out.WriteInt(int64(c.id))
	c.Out.WriteBulkString("mode")
	c.Out.WriteBulkString(c.n.mode())
	role := "master"
	if c.n.clustered && !c.isLeader() {
		role = "replica"
	}
	c.Out.WriteBulkString("role")
	c.Out.WriteBulkString(role)
	c.Out.WriteBulkString("modules")
	c.Out.WriteArray(0)
}

func cmdShutdown(c *Session, argv [][]byte) {
	save := false
	for _, a := range argv[1:] {
		switch {
		case eqFold(a, "nosave"):
			save = false
		case eqFold(a, "save"):
			save = true
		case eqFold(a, "now"), eqFold(a, "force"):
		case eqFold(a, "abort"):
			c.Out.WriteError("ERR No shutdown in progress.")
			return
		default:
			c.Out.WriteError("ERR syntax error")
			return
		}
	}
	if !save {
		c.shutdown()
		return
	}
	// SAVE on every group in turn, then stop; the first failure answers.
	var next func(g uint64)
	next = func(g uint64) {
		if g > uint64(len(c.n.groups)) {
			c.shutdown()
			return
		}
		rec := &engine.Discard{}
		c.submitThen(g, []cluster.Request{{Argv: [][]byte{[]byte("SAVE")}, W: rec}}, func() {
			if rec.Err != "" {
				c.n.logf("SHUTDOWN SAVE (group %d): %s", g, rec.Err)
				c.Out.WriteError("ERR Errors trying to SHUTDOWN. Check logs.")
				return
			}
			next(g + 1)
		})
	}
	next(1)
}

func (c *Session) shutdown() {
	c.n.logf("user requested shutdown (client id=%d addr=%s)", c.id, c.addr())
	// As in Redis, a successful SHUTDOWN has no reply: the connection closes.
	c.closeAfter = true
	c.n.rt.Shutdown()
}

// addr is the client's address as CLIENT LIST shows it.
func (c *Session) addr() string {
	if c.conn == nil {
		return ""
	}
	return c.conn.RemoteAddr()
}

// KnownCommand reports whether name is a command keel answers (any
// letter case).
func KnownCommand(name []byte) bool {
	return lookupServerCommand(name) != nil || engine.Lookup(name) != nil || isReplicaCommand(name)
}
