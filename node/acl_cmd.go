package node

import (
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/resp"
)

// The ACL command, authentication, the ACL log, and where a session
// enforces the check (session.go, multi.go and commands.go call in here).

var aclSubs = []subcommand{
	{name: "acl|cat", arity: -2, flags: []string{"noscript", "loading", "stale"}},
	{name: "acl|deluser", arity: -3, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "acl|dryrun", arity: -4, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "acl|genpass", arity: -2, flags: []string{"noscript", "loading", "stale"}},
	{name: "acl|getuser", arity: 3, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "acl|help", arity: 2, flags: []string{"loading", "stale"}},
	{name: "acl|list", arity: 2, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "acl|load", arity: 2, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "acl|log", arity: -2, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "acl|save", arity: 2, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "acl|setuser", arity: -3, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "acl|users", arity: 2, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "acl|whoami", arity: 2, flags: []string{"noscript", "loading", "stale"}},
}

func init() {
	serverCommands["acl"] = &serverCommand{name: "acl", arity: -2, categories: []string{"@slow"}, run: cmdACL, subs: aclSubs,
		doc: commandDoc{summary: "A container for Access List Control commands.", since: "6.0.0", group: "server", complexity: "Depends on subcommand."}}
	extraConfig["acllog-max-len"] = struct {
		get   func(n *Node) string
		check func(v string) bool
		set   func(n *Node, v string)
		bad   string
	}{
		get: func(n *Node) string { return strconv.FormatInt(n.acl.log.max.Load(), 10) },
		check: func(v string) bool {
			x, err := strconv.ParseInt(v, 10, 64)
			return err == nil && x >= 0
		},
		set: func(n *Node, v string) {
			x, _ := strconv.ParseInt(v, 10, 64)
			n.acl.log.max.Store(x)
		},
		bad: "argument must be between 0 and 9223372036854775807 inclusive",
	}
}

const (
	errNoACLFile = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration."
	errACLSave   = "ERR There was an error trying to save the ACLs. Please check the server logs for more information"
	// aclGenpassBitsMax is ACL GENPASS's bound (Redis's GENPASS_MAX_BITS).
	aclGenpassBitsMax = 4096
)

// aclGroup is the group that keeps the ACL table: group 1.
const aclGroup = 1

func cmdACL(c *Session, argv [][]byte) {
	sub := strings.ToLower(string(truncate(argv[1], 32)))
	if !subArityOK(c, aclSubs, "acl|"+sub, len(argv)) {
		return
	}
	n := c.n
	switch sub {
	case "setuser", "deluser":
		c.submitThen(aclGroup, n.aclWriteSteps(argv, c.Out), nil)
	case "load":
		aclLoad(c)
	case "save":
		aclSave(c)
	case "getuser":
		aclGetUser(c, argv[2])
	case "list", "users":
		users := n.aclTableInForce()
		c.Out.WriteArray(len(users))
		for _, u := range users {
			if sub == "users" {
				c.Out.WriteBulkString(u.name)
			} else {
				c.Out.WriteBulkString("user " + u.name + " " + u.describe())
			}
		}
	case "whoami":
		c.Out.WriteBulkString(c.user.Load().name)
	case "cat":
		aclCat(c, argv)
	case "genpass":
		aclGenpass(c, argv)
	case "log":
		aclLogCmd(c, argv)
	case "dryrun":
		aclDryRun(c, argv)
	case "help":
		help := []string{
			"ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"CAT [<category>]",
			"    List all commands that belong to <category>, or all command categories",
			"    when no category is specified.",
			"DELUSER <username> [<username> ...]",
			"    Delete a list of users.",
			"DRYRUN <username> <command> [<arg> ...]",
			"    Returns whether the user can execute the given command without executing the command.",
			"GETUSER <username>",
			"    Get the user's details.",
			"GENPASS [<bits>]",
			"    Generate a secure 256-bit user password. The optional `bits` argument can",
			"    be used to specify a different size.",
			"LIST",
			"    Show users details in config file format.",
			"LOAD",
			"    Reload users from the ACL file.",
			"LOG [<count> | RESET]",
			"    Show the ACL log entries.",
			"SAVE",
			"    Save the current config to the ACL file.",
			"SETUSER <username> <attribute> [<attribute> ...]",
			"    Create or modify a user with the specified attributes.",
			"USERS",
			"    List all the registered usernames.",
			"WHOAMI",
			"    Return the current connection username.",
			"HELP",
			"    Prints this help.", // Redis 7's words (keel's other HELPs say "Print")
		}
		c.Out.WriteArray(len(help))
		for _, h := range help {
			c.Out.WriteSimple(h)
		}
	default:
		unknownSubcommand(c, "acl", argv[1])
	}
}

// aclLoad reads this node's aclfile and, if it is a valid table, sends it
// to group 1: once applied, it is every node's table.
func aclLoad(c *Session) {
	a := &c.n.acl
	if a.file == "" {
		c.Out.WriteError(errNoACLFile)
		return
	}
	text, err := disk.ReadFile(a.fs, a.file)
	if err != nil {
		c.Out.WriteError("ERR Error loading ACLs, opening file '" + a.file + "': " + osErrorText(err))
		return
	}
	if _, errs := parseACLFile(a.file, text); errs != "" {
		c.Out.WriteError("ERR " + errs) // nothing goes to the log
		return
	}
	argv := [][]byte{[]byte("ACL"), []byte("LOAD"), []byte(a.file), text}
	c.submitThen(aclGroup, c.n.aclWriteSteps(argv, c.Out), nil)
}

// osErrorText is strerror's text for the errors a missing or unreadable
// file gives.
func osErrorText(err error) string {
	if errors.Is(err, disk.ErrNotExist) {
		return "No such file or directory"
	}
	return err.Error()
}

// aclSave writes the replicated table (the configured one while there is
// none) to this node's aclfile: a temporary file, synced, renamed over
// it, the directory synced. Files are 0600 (disk.FS creates them so).
func aclSave(c *Session) {
	n := c.n
	a := &n.acl
	if a.file == "" {
		c.Out.WriteError(errNoACLFile)
		return
	}
	a.mu.Lock()
	text := a.replicated
	if text == nil {
		text = a.seed.encode()
	}
	a.mu.Unlock()
	tmp := a.file + ".tmp"
	// Created afresh, so 0600 whatever a leftover had.
	_ = a.fs.Remove(tmp)
	err := disk.WriteFile(a.fs, tmp, text)
	if err == nil {
		err = a.fs.Rename(tmp, a.file)
	}
	if err == nil {
		err = a.fs.SyncDir(path.Dir(a.file))
	}
	if err != nil {
		_ = a.fs.Remove(tmp)
		n.logf("ACL SAVE to %s: %v", a.file, err)
		c.Out.WriteError(errACLSave)
		return
	}
	c.Out.WriteSimple("OK")
}

func aclGetUser(c *Session, name []byte) {
	ref := c.n.aclUserRef(name)
	var u *aclUser
	if ref != nil {
		u = ref.cur.Load()
	}
	if u == nil {
		c.Out.WriteNull()
		return
	}
	w := c.Out
	w.WriteMap(6)
	w.WriteBulkString("flags")
	flags := u.flagNames()
	w.WriteSet(len(flags))
	for _, f := range flags {
		w.WriteBulkString(f)
	}
	w.WriteBulkString("passwords")
	w.WriteArray(len(u.passwords))
	for _, p := range u.passwords {
		w.WriteBulkString(p)
	}
	writeSelector(w, u.selectors[0])
	w.WriteBulkString("selectors")
	w.WriteArray(len(u.selectors) - 1)
	for _, s := range u.selectors[1:] {
		w.WriteMap(3)
		writeSelector(w, s)
	}
}

// writeSelector writes a selector's three fields of ACL GETUSER.
func writeSelector(w *resp.Writer, s *aclSelector) {
	w.WriteBulkString("commands")
	w.WriteBulkString(s.describeCommands())
	w.WriteBulkString("keys")
	w.WriteBulkString(s.describeKeys())
	w.WriteBulkString("channels")
	w.WriteBulkString(s.describeChannels())
}

func aclCat(c *Session, argv [][]byte) {
	if len(argv) == 2 {
		c.Out.WriteArray(len(aclCategories))
		for _, cat := range aclCategories {
			c.Out.WriteBulkString(cat)
		}
		return
	}
	if len(argv) != 3 {
		aclSyntaxError(c, argv)
		return
	}
	bit := aclCategory(string(argv[2]))
	if bit == 0 {
		c.Out.WriteError("ERR Unknown category '" + string(truncate(argv[2], 128)) + "'")
		return
	}
	var names []string
	for _, cmd := range aclCommands().all {
		if cmd.cats&bit != 0 {
			names = append(names, cmd.name)
		}
	}
	c.Out.WriteArray(len(names))
	for _, name := range names {
		c.Out.WriteBulkString(name)
	}
}

// aclSyntaxError is Redis's addReplySubcommandSyntaxError.
func aclSyntaxError(c *Session, argv [][]byte) {
	c.Out.WriteError("ERR unknown subcommand or wrong number of arguments for '" + string(truncate(argv[1], 128)) + "'. Try ACL HELP.")
}

func aclGenpass(c *Session, argv [][]byte) {
	if len(argv) > 3 {
		aclSyntaxError(c, argv)
		return
	}
	bits := int64(256)
	if len(argv) == 3 {
		v, ok := resp.ParseInt(argv[2])
		if !ok {
			c.Out.WriteError("ERR value is not an integer or out of range")
			return
		}
		bits = v
	}
	if bits <= 0 || bits > aclGenpassBitsMax {
		c.Out.WriteError("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to " + strconv.Itoa(aclGenpassBitsMax))
		return
	}
	chars := int((bits + 3) / 4)
	const hexDigits = "0123456789abcdef"
	pass := make([]byte, 0, chars+16)
	c.n.secretsMu.Lock()
	for len(pass) < chars {
		r := c.n.secrets.Uint64()
		for i := 0; i < 16 && len(pass) < chars; i++ {
			pass = append(pass, hexDigits[r&15])
			r >>= 4
		}
	}
	c.n.secretsMu.Unlock()
	c.Out.WriteBulk(pass)
}

// aclDryRun is ACL DRYRUN user command [arg...]: the check alone, with the
// verbose wording, answered as a bulk string when refused.
func aclDryRun(c *Session, argv [][]byte) {
	ref := c.n.aclUserRef(argv[2])
	var u *aclUser
	if ref != nil {
		u = ref.cur.Load()
	}
	if u == nil {
		c.Out.WriteError("ERR User '" + string(argv[2]) + "' not found")
		return
	}
	cargv := argv[3:]
	reg := aclCommands()
	var cmd *aclCmd
	if base := reg.lookup(string(cargv[0])); base != nil && !strings.Contains(string(cargv[0]), "|") {
		cmd = base
		if base.subs != nil && len(cargv) >= 2 {
			cmd = base.subs[strings.ToLower(string(cargv[1]))]
		}
	}
	if cmd == nil {
		c.Out.WriteError("ERR Command '" + string(cargv[0]) + "' not found")
		return
	}
	if !arityOK(cmd.arity, len(cargv)) {
		c.Out.WriteError("ERR wrong number of arguments for '" + cmd.name + "' command")
		return
	}
	res, pos := u.check(cmd, cargv)
	if res == aclAllowed {
		c.Out.WriteSimple("OK")
		return
	}
	c.Out.WriteBulkString(aclDenialText(res, u.name, cmd, cargv[pos], true))
}

// aclDenialText is Redis 7.2's getAclErrorMessage (without NOPERM).
func aclDenialText(res aclResult, user string, cmd *aclCmd, arg []byte, verbose bool) string {
	switch res {
	case aclDeniedKey:
		if verbose {
			return "User " + user + " has no permissions to access the '" + string(arg) + "' key"
		}
		return "No permissions to access a key"
	case aclDeniedChannel:
		if verbose {
			return "User " + user + " has no permissions to access the '" + string(arg) + "' channel"
		}
		return "No permissions to access a channel"
	}
	return "User " + user + " has no permissions to run the '" + cmd.name + "' command"
}

// aclExecReason is why EXEC refuses a queued command it checks again.
func aclExecReason(res aclResult) string {
	switch res {
	case aclDeniedCmd:
		return "no permission to execute the command or subcommand"
	case aclDeniedKey:
		return "no permission to touch the specified keys"
	case aclDeniedChannel:
		return "no permission to access one of the channels used as arguments"
	}
	return "no permission"
}

// The session's side.

// aclUnrestricted reports whether the session's user may run anything:
// the default user's case, and all the hot path pays (two loads).
func (c *Session) aclUnrestricted() bool {
	u := c.user.Load().cur.Load()
	return u != nil && u.unrestricted
}

// aclCheck checks argv against the session's user. A command the rules
// do not know, or with the wrong number of arguments, passes: the command
// answers with its own error, which Redis gives before the check.
func (c *Session) aclCheck(argv [][]byte) (res aclResult, pos int, cmd *aclCmd, u *aclUser) {
	ref := c.user.Load()
	u = ref.cur.Load()
	if u == nil {
		// The user was deleted: nothing runs as it any more.
		c.closeAfter = true
		return aclDeniedCmd, 0, &aclCmd{name: strings.ToLower(string(truncate(argv[0], 64)))}, &aclUser{name: ref.name}
	}
	if u.unrestricted {
		return aclAllowed, 0, nil, u
	}
	cmd = aclCommands().command(argv)
	if cmd == nil || !arityOK(cmd.arity, len(argv)) {
		return aclAllowed, 0, cmd, u
	}
	res, pos = u.check(cmd, argv)
	return res, pos, cmd, u
}

// aclPermits is the check without its side effects (plainRequest).
func (c *Session) aclPermits(argv [][]byte) bool {
	u := c.user.Load().cur.Load()
	if u == nil {
		return false
	}
	cmd := aclCommands().command(argv)
	if cmd == nil || !arityOK(cmd.arity, len(argv)) {
		return true
	}
	res, _ := u.check(cmd, argv)
	return res == aclAllowed
}

// aclDeny checks argv; when refused it logs the refusal and returns the
// NOPERM error to answer, else "".
func (c *Session) aclDeny(argv [][]byte) string {
	if c.aclUnrestricted() {
		return ""
	}
	res, pos, cmd, u := c.aclCheck(argv)
	if res == aclAllowed {
		return ""
	}
	if cmd != nil {
		c.lastCmd.Store(&cmd.name)
	}
	ctx := "toplevel"
	if c.tx.active {
		ctx = "multi"
	}
	c.n.aclLogAdd(c, res, ctx, aclLogObject(res, cmd, argv, pos), u.name)
	return "NOPERM " + aclDenialText(res, u.name, cmd, argv[pos], false)
}

func aclLogObject(res aclResult, cmd *aclCmd, argv [][]byte, pos int) string {
	if res == aclDeniedCmd {
		return cmd.name
	}
	return string(argv[pos])
}

// aclExecDenied checks a queued command again at EXEC: the error that
// takes its place in the block, or "".
func (c *Session) aclExecDenied(argv [][]byte) string {
	if c.aclUnrestricted() {
		return ""
	}
	res, pos, cmd, u := c.aclCheck(argv)
	if res == aclAllowed {
		return ""
	}
	c.n.aclLogAdd(c, res, "multi", aclLogObject(res, cmd, argv, pos), u.name)
	return "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. " +
		"This command is no longer allowed for the following reason: " + aclExecReason(res)
}

// needsAuth reports whether the session must authenticate first: it has
// not, and the default user does not let it in (off, or a password).
func (c *Session) needsAuth() bool { return !c.authed && !c.n.defaultUserOpen() }

// authenticate checks user and pass (AUTH, HELLO AUTH); on success the
// session runs as that user from now on. A failure is logged (the
// object is the command's name as sent).
func (c *Session) authenticate(cmdName, user, pass []byte) bool {
	ref := c.n.aclUserRef(user)
	if ref != nil {
		if u := ref.cur.Load(); u != nil && u.checkPassword(pass) {
			c.user.Store(ref)
			c.authed = true
			return true
		}
	}
	ctx := "toplevel"
	if c.tx.active {
		ctx = "multi"
	}
	c.n.aclLogAdd(c, aclDeniedAuth, ctx, string(cmdName), string(user))
	return false
}

// The ACL log: a node's own record of refusals (Redis's ACL LOG), newest
// first, similar refusals within a minute counted in one entry.

const (
	// aclLogMaxLenDefault is acllog-max-len's default.
	aclLogMaxLenDefault = 128
	// aclLogGroupMillis: a refusal like one of the last aclLogGroupScan
	// entries, within this long, counts in it.
	aclLogGroupMillis = 60000
	aclLogGroupScan   = 10
)

type aclLogEntry struct {
	count                     int64
	reason                    aclResult
	context, object, username string
	updatedMillis             int64
	clientInfo                string
	id, createdMillis         int64
}

type aclLog struct {
	mu      sync.Mutex
	entries []*aclLogEntry // newest first
	nextID  int64
	max     atomic.Int64 // acllog-max-len
	// denied counts refusals by reason for INFO.
	denied [aclDeniedChannel + 1]atomic.Int64
}

func (n *Node) aclLogAdd(c *Session, reason aclResult, context, object, username string) {
	l := &n.acl.log
	l.denied[reason].Add(1)
	now := n.clock.Now() / 1e6
	info := strings.TrimSuffix(c.describe(n.clock.Now()), "\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.entries {
		if i >= aclLogGroupScan {
			break
		}
		delta := e.updatedMillis - now
		if delta < 0 {
			delta = -delta
		}
		if e.reason == reason && e.context == context && delta <= aclLogGroupMillis && e.object == object && e.username == username {
			e.count++
			e.updatedMillis, e.clientInfo = now, info
			copy(l.entries[1:i+1], l.entries[:i])
			l.entries[0] = e
			return
		}
	}
	e := &aclLogEntry{count: 1, reason: reason, context: context, object: object, username: username,
		updatedMillis: now, clientInfo: info, id: l.nextID, createdMillis: now}
	l.nextID++
	l.entries = append([]*aclLogEntry{e}, l.entries...)
	if max := int(l.max.Load()); len(l.entries) > max {
		clear(l.entries[max:])
		l.entries = l.entries[:max]
	}
}

var aclReasonNames = [...]string{aclDeniedCmd: "command", aclDeniedKey: "key", aclDeniedAuth: "auth", aclDeniedChannel: "channel"}

func aclLogCmd(c *Session, argv [][]byte) {
	if len(argv) > 3 {
		aclSyntaxError(c, argv)
		return
	}
	l := &c.n.acl.log
	count := int64(10)
	if len(argv) == 3 {
		if eqFold(argv[2], "reset") {
			l.mu.Lock()
			l.entries = nil
			l.mu.Unlock()
			c.Out.WriteSimple("OK")
			return
		}
		v, ok := resp.ParseInt(argv[2])
		if !ok {
			c.Out.WriteError("ERR value is not an integer or out of range")
			return
		}
		count = max(v, 0)
	}
	now := c.n.clock.Now() / 1e6
	l.mu.Lock()
	entries := l.entries[:min(int64(len(l.entries)), count)]
	out := make([]aclLogEntry, len(entries))
	for i, e := range entries {
		out[i] = *e
	}
	l.mu.Unlock()
	w := c.Out
	w.WriteArray(len(out))
	for _, e := range out {
		w.WriteMap(10)
		w.WriteBulkString("count")
		w.WriteInt(e.count)
		w.WriteBulkString("reason")
		w.WriteBulkString(aclReasonNames[e.reason])
		w.WriteBulkString("context")
		w.WriteBulkString(e.context)
		w.WriteBulkString("object")
		w.WriteBulkString(e.object)
		w.WriteBulkString("username")
		w.WriteBulkString(e.username)
		w.WriteBulkString("age-seconds")
		w.WriteDouble(float64(now-e.updatedMillis) / 1000)
		w.WriteBulkString("client-info")
		w.WriteBulkString(e.clientInfo)
		w.WriteBulkString("entry-id")
		w.WriteInt(e.id)
		w.WriteBulkString("timestamp-created")
		w.WriteInt(e.createdMillis)
		w.WriteBulkString("timestamp-last-updated")
		w.WriteInt(e.updatedMillis)
	}
}

// infoACL adds Redis 7.2's ACL counters to INFO stats.
func (n *Node) infoACL(b *strings.Builder) {
	d := &n.acl.log.denied
	kv(b, "acl_access_denied_auth", d[aclDeniedAuth].Load())
	kv(b, "acl_access_denied_cmd", d[aclDeniedCmd].Load())
	kv(b, "acl_access_denied_key", d[aclDeniedKey].Load())
	kv(b, "acl_access_denied_channel", d[aclDeniedChannel].Load())
}

// aclDeniedMarkers replaces, in a block about to run, each command the
// session's user may no longer run by the error that answers in its place
// (cluster.DeniedCommand), as Redis checks again at EXEC.
func (c *Session) aclDeniedMarkers(cmds [][][]byte) {
	if c.aclUnrestricted() {
		return
	}
	for i, argv := range cmds {
		if msg := c.aclExecDenied(argv); msg != "" {
			cmds[i] = cluster.DeniedCommand(msg)
		}
	}
}
