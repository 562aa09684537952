package node

import (
	"bytes"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
)

// The table of users, and where it lives.
//
// The table is replica state of group 1, the ACL's home on a node with
// several groups (cluster/acl.go): ACL SETUSER, DELUSER and LOAD are sent
// there, logged, and applied on every replica with applyACLEntry, so every
// node of a cluster agrees on it and it survives restarts in the log and
// in snapshots. Its bytes are the table in the aclfile's format (one
// "user <name> <rules>" line per user, sorted by name), which ACL SAVE
// writes as they are.
//
// Until the first ACL change is applied the group has no table, and each
// node uses the one its configuration gives: the aclfile, or the user
// directives, or else Redis's default user alone. The first ACL change
// sent from a node whose configuration gives users carries that table
// along (ACL LOAD ... SEED, applied only while there is no table), so the
// configured users are not lost when the table is first written.
//
// requirepass stays what it is in Redis, the default user's password, but
// per node: on a node with requirepass set the default user's password is
// that one (and nopass is off), whatever the replicated table says of the
// default user's passwords.

const (
	// aclTableBytesMax bounds the table in its text form: an ACL change
	// that would make it larger is refused.
	aclTableBytesMax = 16 << 20
	// aclTableSource names the replicated table in errors about it.
	aclTableSource = "acl-table"
)

// aclTable is a set of users, never changed once built.
type aclTable struct {
	users map[string]*aclUser
	names []string // sorted bytewise, as Redis's users rax
}

func newACLTable() *aclTable {
	return &aclTable{users: map[string]*aclUser{"default": newDefaultUser()}, names: []string{"default"}}
}

// with is t with u added or replacing the user of the same name.
func (t *aclTable) with(u *aclUser) *aclTable {
	o := &aclTable{users: make(map[string]*aclUser, len(t.users)+1), names: t.names}
	for k, v := range t.users {
		o.users[k] = v
	}
	if _, ok := o.users[u.name]; !ok {
		i, _ := slices.BinarySearch(t.names, u.name)
		o.names = slices.Insert(slices.Clone(t.names), i, u.name)
	}
	o.users[u.name] = u
	return o
}

// without is t without the named users.
func (t *aclTable) without(names map[string]bool) *aclTable {
	o := &aclTable{users: map[string]*aclUser{}}
	for _, n := range t.names {
		if !names[n] {
			o.users[n] = t.users[n]
			o.names = append(o.names, n)
		}
	}
	return o
}

// encode is the table in the aclfile's format (ACL SAVE, ACL LIST).
func (t *aclTable) encode() []byte {
	var b bytes.Buffer
	for _, n := range t.names {
		b.WriteString("user ")
		b.WriteString(n)
		b.WriteByte(' ')
		b.WriteString(t.users[n].describe())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// parseACLFile reads a table in the aclfile's format, as Redis's
// ACLLoadFromFile does: errors name source and the line; with any error
// nothing is returned, and errs is Redis's message (without ERR).
func parseACLFile(source string, text []byte) (t *aclTable, errs string) {
	t = &aclTable{users: map[string]*aclUser{}}
	var b strings.Builder
	for i, line := range strings.Split(string(text), "\n") {
		lineno := i + 1
		line = strings.Trim(line, " \t\r\n")
		if line == "" {
			continue
		}
		argv := strings.Split(line, " ")
		if argv[0] != "user" || len(argv) < 2 {
			b.WriteString(source + ":" + strconv.Itoa(lineno) + " should start with user keyword followed by the username. ")
			continue
		}
		name := argv[1]
		if hasSpaces([]byte(name)) {
			b.WriteString("'" + source + ":" + strconv.Itoa(lineno) + ": username '" + name + "' contains invalid characters. ")
			continue
		}
		if _, dup := t.users[name]; dup {
			b.WriteString("WARNING: Duplicate user '" + name + "' found on line " + strconv.Itoa(lineno) + ". ")
			continue
		}
		u := newACLUser(name)
		ops := make([][]byte, len(argv)-2)
		for j, a := range argv[2:] {
			ops[j] = []byte(a)
		}
		merged, bad := mergeSelectorArgs(ops)
		if bad >= 0 {
			b.WriteString(source + ":" + strconv.Itoa(lineno) + ": Unmatched parenthesis in selector definition.")
		}
		syntaxErr := false
		for _, op := range merged {
			op = bytes.Trim(op, "\t\r\n")
			e := u.set(op)
			switch {
			case e == aclOK:
			case e == aclErrUnknown:
				b.WriteString(source + ":" + strconv.Itoa(lineno) + ": Error in applying operation '" + string(op) + "': " + e.String() + ". ")
			case !syntaxErr:
				b.WriteString(source + ":" + strconv.Itoa(lineno) + ": " + e.String() + ". ")
				syntaxErr = true
			}
		}
		u.finish()
		t.users[name] = u
		t.names = append(t.names, name)
	}
	if b.Len() > 0 {
		return nil, b.String() + "WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
	}
	if t.users["default"] == nil {
		t.users["default"] = newDefaultUser()
		t.names = append(t.names, "default")
	}
	sort.Strings(t.names)
	return t, ""
}

// setUser is ACL SETUSER name ops... applied to t: the new table, or
// Redis's error (with ERR) and nil. Every rule is applied to a copy of
// the user first: one bad rule changes nothing.
func (t *aclTable) setUser(name []byte, ops [][]byte) (*aclTable, string) {
	if hasSpaces(name) {
		return nil, "ERR Usernames can't contain spaces or null characters"
	}
	merged, bad := mergeSelectorArgs(ops)
	if bad >= 0 {
		return nil, "ERR Unmatched parenthesis in acl selector starting at '" + string(ops[bad]) + "'."
	}
	u := newACLUser(string(name))
	if old := t.users[string(name)]; old != nil {
		u = old.clone()
	}
	for _, op := range merged {
		if e := u.set(op); e != aclOK {
			return nil, "ERR Error in ACL SETUSER modifier '" + safeErrorText(op) + "': " + e.String()
		}
	}
	u.finish()
	return t.with(u), ""
}

// safeErrorText keeps an error on one line, as Redis's
// addReplyErrorSdsSafe does.
func safeErrorText(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, string(b))
}

// The logged ACL commands (cluster.IsACLWrite) the node sends to group 1:
//
//	ACL SETUSER <name> <rule>...       as the client sent it
//	ACL DELUSER <name>...              as the client sent it
//	ACL LOAD <source> <text> [SEED]    the table in the aclfile's format;
//	                                   SEED: only if there is no table yet
//
// applyACLEntry is cluster.Options.ACL for them: pure, the same on every
// replica. table is the replicated table (nil: none yet, which reads as
// the default user alone).
func (n *Node) applyACLEntry(table []byte, argv [][]byte, w engine.Writer) []byte {
	t, err := n.acl.parsed(table)
	if err != nil {
		w.WriteError("ERR " + err.Error())
		return nil
	}
	var nt *aclTable
	deleted := -1 // DELUSER's reply
	switch {
	case len(argv) >= 3 && eqFold(argv[1], "setuser"):
		var msg string
		if nt, msg = t.setUser(argv[2], argv[3:]); msg != "" {
			w.WriteError(msg)
			return nil
		}
	case len(argv) >= 3 && eqFold(argv[1], "deluser"):
		del := map[string]bool{}
		for _, name := range argv[2:] {
			if string(name) == "default" {
				w.WriteError("ERR The 'default' user cannot be removed")
				return nil
			}
			if t.users[string(name)] != nil {
				del[string(name)] = true
			}
		}
		if len(del) == 0 {
			w.WriteInt(0)
			return nil
		}
		nt, deleted = t.without(del), len(del)
	case len(argv) >= 4 && eqFold(argv[1], "load"):
		if len(argv) > 4 && eqFold(argv[4], "seed") && table != nil {
			w.WriteSimple("OK") // there is a table: the seed is not needed
			return nil
		}
		var errs string
		if nt, errs = parseACLFile(string(argv[2]), argv[3]); errs != "" {
			w.WriteError("ERR " + errs)
			return nil
		}
	default:
		w.WriteError("ERR unknown ACL table change '" + string(truncate(argv[min(1, len(argv)-1)], 64)) + "'")
		return nil
	}
	text := nt.encode()
	if len(text) > aclTableBytesMax {
		w.WriteError("ERR ACL table too large (" + strconv.Itoa(len(text)) + " bytes, at most " + strconv.Itoa(aclTableBytesMax) + ")")
		return nil
	}
	if deleted >= 0 {
		w.WriteInt(int64(deleted))
	} else {
		w.WriteSimple("OK")
	}
	n.acl.remember(text, nt)
	return text
}

// aclRef is a user name as sessions hold it: the node swaps the user it
// points to when the table changes, so every session of that user follows
// at once; nil once the user is deleted.
type aclRef struct {
	name string
	cur  atomic.Pointer[aclUser]
}

// nodeACL is a node's ACL state.
type nodeACL struct {
	// rebuildMu serialises rebuildACL (group 1's apply, CONFIG SET
	// requirepass); mu guards the fields below.
	rebuildMu sync.Mutex
	mu        sync.Mutex
	// seed is the table this node's configuration gives (the aclfile,
	// user directives, or the default user alone); seedText its encoding
	// when the configuration gives users (nil otherwise: nothing to seed).
	seed       *aclTable
	seedText   []byte
	seedSource string
	// replicated is group 1's table as applied (nil: none yet), and
	// cache the table last parsed or built from replicated bytes.
	replicated []byte
	cache      struct {
		text  []byte
		table *aclTable
	}
	// refs are the users of the table in force, by name; def is the
	// default user's (never deleted).
	refs map[string]*aclRef
	def  atomic.Pointer[aclRef]
	// file is the aclfile (empty: none), read and written through fs.
	file string
	fs   disk.FS

	log aclLog // acl_cmd.go
}

// parsed is the table behind replicated bytes (nil: the default user
// alone), from the cache when it holds them.
func (a *nodeACL) parsed(text []byte) (*aclTable, error) {
	if text == nil {
		return newACLTable(), nil
	}
	a.mu.Lock()
	if a.cache.table != nil && bytes.Equal(a.cache.text, text) {
		t := a.cache.table
		a.mu.Unlock()
		return t, nil
	}
	a.mu.Unlock()
	t, errs := parseACLFile(aclTableSource, text)
	if errs != "" {
		return nil, errors.Newf("replicated ACL table unreadable: %s", errs)
	}
	a.remember(text, t)
	return t, nil
}

func (a *nodeACL) remember(text []byte, t *aclTable) {
	a.mu.Lock()
	a.cache.text, a.cache.table = text, t
	a.mu.Unlock()
}

// initACL builds the configured table (Config.ACLFile or Config.Users)
// and puts it in force.
func (n *Node) initACL() error {
	a := &n.acl
	a.refs = map[string]*aclRef{}
	a.file, a.fs = n.cfg.ACLFile, n.cfg.FS
	a.log.max.Store(aclLogMaxLenDefault)
	t, err := configuredACL(n.cfg.ACLFile, n.cfg.Users, n.cfg.FS)
	if err != nil {
		return err
	}
	a.seed = t
	switch {
	case n.cfg.ACLFile != "":
		a.seedText, a.seedSource = t.encode(), n.cfg.ACLFile
	case len(n.cfg.Users) > 0:
		a.seedText, a.seedSource = t.encode(), "config"
	}
	for _, name := range a.seed.names {
		if u := a.seed.users[name]; !u.on {
			n.logf("the user '%s' is disabled (there is no 'on' modifier in the user description): make sure this is not a configuration error", name)
		}
	}
	n.rebuildACL()
	return nil
}

// CheckACLConfig reports what is wrong with an ACL configuration (the
// aclfile read through fs, or user directives) before a node starts with
// it: the errors New would give, in Redis's words.
func CheckACLConfig(aclFile string, users []string, fs disk.FS) error {
	_, err := configuredACL(aclFile, users, fs)
	return err
}

// configuredACL is the table an ACL configuration gives: the aclfile, or
// the user directives, or the default user alone.
func configuredACL(aclFile string, users []string, fs disk.FS) (*aclTable, error) {
	switch {
	case aclFile != "" && len(users) > 0:
		return nil, errors.New("configuring users with user directives and an aclfile at the same time is invalid: " +
			"define either an ACL file or the users in the configuration, not both")
	case aclFile != "":
		if fs == nil {
			return nil, errors.New("node: Config.ACLFile needs Config.FS")
		}
		text, err := disk.ReadFile(fs, aclFile)
		if err != nil {
			return nil, errors.Newf("Error loading ACLs, opening file '%s': %s", aclFile, osErrorText(err))
		}
		t, errs := parseACLFile(aclFile, text)
		if errs != "" {
			return nil, errors.Newf("ACL errors: %s", errs)
		}
		return t, nil
	case len(users) > 0:
		return configuredUsers(users)
	}
	return newACLTable(), nil
}

// configuredUsers is the table of redis.conf's user directives, each
// "<name> <rule>...": the default user and those listed ("user default"
// starts from reset, as in Redis).
func configuredUsers(lines []string) (*aclTable, error) {
	t := newACLTable()
	seen := map[string]bool{}
	for _, line := range lines {
		f := splitArgs(line) // quotes group, as redis.conf's parser does
		if len(f) == 0 {
			return nil, errors.New("user directive without a user name")
		}
		name := f[0]
		if seen[name] {
			return nil, errors.Newf("user %s: %s", name, aclErrDuplicate)
		}
		seen[name] = true
		u := newACLUser(name)
		if name == "default" {
			u = t.users["default"].clone()
			u.set([]byte("reset"))
		}
		ops := make([][]byte, len(f)-1)
		for i, op := range f[1:] {
			ops[i] = []byte(op)
		}
		merged, bad := mergeSelectorArgs(ops)
		if bad >= 0 {
			return nil, errors.Newf("user %s: Unmatched parenthesis in acl selector starting at '%s'.", name, ops[bad])
		}
		for _, op := range merged {
			if e := u.set(op); e != aclOK {
				return nil, errors.Newf("Error loading ACL rule '%s' for the user named '%s': %s", op, name, e)
			}
		}
		u.finish()
		t = t.with(u)
	}
	return t, nil
}

// aclChanged is group 1's OnACLChanged: the table its replica applied.
// It runs inside the group's Exclusive.
func (n *Node) aclChanged(table []byte) {
	n.acl.mu.Lock()
	n.acl.replicated = table
	n.acl.mu.Unlock()
	n.rebuildACL()
}

// rebuildACL puts in force the table the node should check against: the
// replicated one once there is one, else the configured one, with this
// node's requirepass as the default user's password. Sessions of users no
// longer in it are disconnected, as are subscribers whose user lost a
// channel they are subscribed to.
func (n *Node) rebuildACL() {
	a := &n.acl
	a.rebuildMu.Lock()
	defer a.rebuildMu.Unlock()
	a.mu.Lock()
	base, replicated := a.seed, a.replicated
	a.mu.Unlock()
	if replicated != nil {
		t, err := a.parsed(replicated)
		if err != nil {
			// Checksummed bytes a keel wrote are unreadable only when a
			// later keel wrote rules this one does not know: keep the
			// table in force rather than guess.
			n.logf("ACL: %v; keeping the table in force", err)
			return
		}
		base = t
	}
	if pass := n.password(); pass != "" {
		d := base.users["default"].clone()
		d.passwords, d.nopass = []string{aclHashPassword([]byte(pass))}, false
		d.finish()
		base = base.with(d)
	}
	var gone, changed []*aclRef
	a.mu.Lock()
	for _, name := range base.names {
		u := base.users[name]
		ref := a.refs[name]
		if ref == nil {
			ref = &aclRef{name: name}
			a.refs[name] = ref
		}
		if old := ref.cur.Swap(u); old != nil && old != u {
			changed = append(changed, ref)
		}
	}
	a.def.Store(a.refs["default"])
	names := make([]string, 0, len(a.refs))
	for name := range a.refs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if base.users[name] == nil {
			ref := a.refs[name]
			ref.cur.Store(nil)
			delete(a.refs, name)
			gone = append(gone, ref)
		}
	}
	a.mu.Unlock()
	if len(gone) == 0 && len(changed) == 0 {
		return
	}
	for _, s := range n.sessionList() {
		ref := s.user.Load()
		switch {
		case slices.Contains(gone, ref):
			// A session in the middle of a batch sees it when the batch
			// ends (Session.Next) and closes after its replies; the
			// order of the two stores makes one of them see the other.
			s.killed.Store(true)
			if !s.busy.Load() {
				n.rt.Disconnect(s)
			}
		case slices.Contains(changed, ref) && s.subscriptionsRevoked(ref.cur.Load()):
			s.killed.Store(true)
			n.rt.Disconnect(s)
		}
	}
}

// subscriptionsRevoked reports whether u may no longer subscribe to one
// of the session's channels or patterns (Redis disconnects such a
// subscriber when its user changes).
func (c *Session) subscriptionsRevoked(u *aclUser) bool {
	if u == nil || u.unrestricted {
		return false
	}
	allowed := func(ch []byte, isPattern bool) bool {
		for _, s := range u.selectors {
			if s.allChannels || s.channelAllowed(ch, isPattern) {
				return true
			}
		}
		return false
	}
	ps := c.n.pubsub
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if c.sub == nil {
		return false
	}
	for _, k := range []subKind{subChannel, subPattern, subShard} {
		for name := range c.sub.of(k) {
			if !allowed([]byte(name), k == subPattern) {
				return true
			}
		}
	}
	return false
}

// aclUserRef is the named user's ref, nil if there is no such user.
func (n *Node) aclUserRef(name []byte) *aclRef {
	n.acl.mu.Lock()
	defer n.acl.mu.Unlock()
	return n.acl.refs[string(name)]
}

// aclTableInForce is the table the node checks against, with names sorted.
// ACLUsers are the names of the users of the table in force, sorted (the
// simulator checks that every node has the cluster's).
func (n *Node) ACLUsers() []string {
	var out []string
	for _, u := range n.aclTableInForce() {
		out = append(out, u.name)
	}
	return out
}

func (n *Node) aclTableInForce() []*aclUser {
	n.acl.mu.Lock()
	defer n.acl.mu.Unlock()
	names := make([]string, 0, len(n.acl.refs))
	for name := range n.acl.refs {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]*aclUser, 0, len(names))
	for _, name := range names {
		if u := n.acl.refs[name].cur.Load(); u != nil {
			out = append(out, u)
		}
	}
	return out
}

// defaultUserOpen reports whether the default user lets in a connection
// that has not authenticated (on and nopass), as Redis's authRequired.
func (n *Node) defaultUserOpen() bool {
	u := n.acl.def.Load().cur.Load()
	return u != nil && u.on && u.nopass
}

// aclWriteSteps are the requests an ACL change sends to group 1: the
// change, after the configured table when the group has none yet (so that
// it starts from this node's configuration, not from nothing).
func (n *Node) aclWriteSteps(argv [][]byte, w engine.Writer) []cluster.Request {
	n.acl.mu.Lock()
	seed := n.acl.replicated == nil && n.acl.seedText != nil
	src, text := n.acl.seedSource, n.acl.seedText
	n.acl.mu.Unlock()
	req := cluster.Request{Argv: argv, W: w}
	if !seed || eqFold(argv[1], "load") {
		return []cluster.Request{req}
	}
	seedArgv := [][]byte{[]byte("ACL"), []byte("LOAD"), []byte(src), text, []byte("SEED")}
	return []cluster.Request{{Argv: seedArgv, W: &engine.Discard{}}, req}
}
