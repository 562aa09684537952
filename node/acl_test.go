package node

import (
	"slices"
	"strings"
	"testing"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/resp"
)

// aclNode is a single node with one in-memory replica (appendonly off
// unless fs is given), driven by the test runtime.
type aclNode struct {
	t  *testing.T
	n  *Node
	rt *testRuntime
	fs disk.FS
}

func newACLNode(t *testing.T, cfg Config, fs disk.FS) *aclNode {
	t.Helper()
	rt := &testRuntime{}
	cfg.Clock, cfg.Rand = fixedClock(1767225600e9), new(counterRand)
	if cfg.FS == nil {
		cfg.FS = fs
	}
	n, err := New(cfg, rt)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.OpenGroups(func(g uint64) cluster.Options {
		if fs == nil {
			return cluster.Options{}
		}
		return cluster.Options{FS: fs, Dir: "data", AppendOnly: true, Fsync: cluster.FsyncAlways}
	}); err != nil {
		t.Fatal(err)
	}
	return &aclNode{t: t, n: n, rt: rt, fs: fs}
}

func (h *aclNode) close() {
	for g := uint64(1); g <= uint64(h.n.Groups()); g++ {
		if err := h.n.Replica(g).Close(); err != nil {
			h.t.Fatal(err)
		}
	}
}

// run sends one batch of commands on s and returns each reply rendered
// by resp.Reply.String.
func (h *aclNode) run(s *Session, cmds ...[]string) []string {
	h.t.Helper()
	batch := make([][][]byte, len(cmds))
	for i, c := range cmds {
		for _, a := range c {
			batch[i] = append(batch[i], []byte(a))
		}
	}
	s.Begin(batch)
	for {
		st, ok := s.Next()
		if !ok {
			break
		}
		h.n.Submit(st.Group, int64(h.n.clock.Now()), st.Reqs, nil)
	}
	out := s.TakeOutput()
	if s.Subscribed() {
		out, _ = s.TakePushed()
	}
	var replies []string
	for len(out) > 0 {
		r, k, err := resp.ParseReply(out)
		if err != nil {
			h.t.Fatalf("reply: %v in %q", err, out)
		}
		replies = append(replies, r.String())
		out = out[k:]
	}
	s.ResetOutput()
	return replies
}

// do runs one command and returns its reply.
func (h *aclNode) do(s *Session, args ...string) string {
	h.t.Helper()
	r := h.run(s, args)
	if len(r) != 1 {
		h.t.Fatalf("%q: %d replies %q", args, len(r), r)
	}
	return r[0]
}

func (h *aclNode) expect(s *Session, want string, args ...string) {
	h.t.Helper()
	if got := h.do(s, args...); got != want {
		h.t.Errorf("%q: got %s, want %s", args, got, want)
	}
}

// Redis's default user: on, nopass, every command, key and channel, and a
// new connection is it without AUTH.
func TestACLDefaultUser(t *testing.T) {
	h := newACLNode(t, Config{}, nil)
	s := h.n.NewSession(nil)
	h.expect(s, `["user default on nopass sanitize-payload ~* &* +@all"]`, "ACL", "LIST")
	h.expect(s, `"default"`, "ACL", "WHOAMI")
	h.expect(s, `["default"]`, "ACL", "USERS")
	h.expect(s, `["flags" ["on" "nopass" "sanitize-payload"] "passwords" [] "commands" "+@all" "keys" "~*" "channels" "&*" "selectors" []]`,
		"ACL", "GETUSER", "default")
	h.expect(s, "(nil)", "ACL", "GETUSER", "nobody")
	h.expect(s, "(error) ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?", "AUTH", "x")
	h.expect(s, "OK", "AUTH", "default", "anything")
	if !strings.Contains(h.do(s, "CLIENT", "INFO"), " user=default ") {
		t.Error("CLIENT INFO does not name the default user")
	}
}

// A user limited to ~app:* (the done-when): its keys work, any
// other key is refused with Redis 7.2's words, and the refusals are in
// the ACL log.
func TestACLKeyPatterns(t *testing.T) {
	h := newACLNode(t, Config{}, nil)
	admin := h.n.NewSession(nil)
	h.expect(admin, "OK", "ACL", "SETUSER", "alice", "on", ">pw", "~app:*", "+@all", "-@dangerous")
	s := h.n.NewSession(nil)
	h.expect(s, "(error) WRONGPASS invalid username-password pair or user is disabled.", "AUTH", "alice", "nope")
	h.expect(s, "OK", "AUTH", "alice", "pw")
	h.expect(s, `"alice"`, "ACL", "WHOAMI")
	h.expect(s, "OK", "SET", "app:1", "v")
	h.expect(s, `"v"`, "GET", "app:1")
	h.expect(s, "(error) NOPERM No permissions to access a key", "GET", "other")
	h.expect(s, "(error) NOPERM No permissions to access a key", "MSET", "app:2", "x", "other", "y")
	h.expect(s, "(error) NOPERM User alice has no permissions to run the 'keys' command", "KEYS", "*")
	h.expect(s, "(error) NOPERM User alice has no permissions to run the 'flushall' command", "FLUSHALL")
	h.expect(s, "(error) NOPERM User alice has no permissions to run the 'acl|setuser' command", "ACL", "SETUSER", "alice", "~*")
	h.expect(s, "(error) NOPERM User alice has no permissions to run the 'config|set' command", "CONFIG", "SET", "maxclients", "10")
	// Pipelined: the refusal keeps its place among the replies.
	if got := h.run(s, []string{"SET", "app:3", "a"}, []string{"GET", "nope"}, []string{"GET", "app:3"}); !slices.Equal(got,
		[]string{"OK", "(error) NOPERM No permissions to access a key", `"a"`}) {
		t.Errorf("pipeline: %q", got)
	}
	// Arity and unknown commands are answered before the ACL, as in Redis.
	h.expect(s, "(error) ERR wrong number of arguments for 'get' command", "GET")
	if !strings.HasPrefix(h.do(s, "NOSUCH"), "(error) ERR unknown command 'NOSUCH'") {
		t.Error("unknown command not answered as such")
	}
	if got := h.do(s, "CLIENT", "LIST"); got != "(error) NOPERM User alice has no permissions to run the 'client|list' command" {
		t.Errorf("CLIENT LIST: %s", got)
	}
	list := h.do(admin, "CLIENT", "LIST")
	if !strings.Contains(list, " user=alice ") || !strings.Contains(list, " user=default ") {
		t.Errorf("CLIENT LIST users: %s", list)
	}
	log := h.do(admin, "ACL", "LOG")
	for _, want := range []string{`"reason" "key" "context" "toplevel" "object" "nope" "username" "alice"`,
		`"reason" "command" "context" "toplevel" "object" "keys" "username" "alice"`,
		`"reason" "auth" "context" "toplevel" "object" "AUTH" "username" "alice"`} {
		if !strings.Contains(log, want) {
			t.Errorf("ACL LOG lacks %s: %s", want, log)
		}
	}
	if !strings.Contains(log, "cmd=config|set user=alice") {
		t.Errorf("ACL LOG client-info: %s", log)
	}
	h.expect(admin, "OK", "ACL", "LOG", "RESET")
	h.expect(admin, "[]", "ACL", "LOG")
	// The same refusal twice within a minute is one entry, counted twice.
	h.do(s, "GET", "x")
	h.do(s, "GET", "x")
	if log := h.do(admin, "ACL", "LOG"); !strings.HasPrefix(log, `[["count" (integer) 2 "reason" "key"`) {
		t.Errorf("grouped entry: %s", log)
	}
	if info := h.do(admin, "INFO", "stats"); !strings.Contains(info, "acl_access_denied_key:5") {
		t.Errorf("INFO stats: %s", info)
	}
}

// %R~ and %W~ grant reads or writes only, with Redis's key flags: a
// command that reads and writes its key (INCR, SET ... GET) needs both,
// one that only looks at it (EXISTS, TYPE) needs a pattern, no access.
func TestACLReadWriteKeyPatterns(t *testing.T) {
	h := newACLNode(t, Config{}, nil)
	admin := h.n.NewSession(nil)
	h.expect(admin, "OK", "ACL", "SETUSER", "bob", "on", "nopass", "%R~r:*", "%W~w:*", "+@all")
	h.expect(admin, `["flags" ["on" "nopass" "sanitize-payload"] "passwords" [] "commands" "+@all" "keys" "%R~r:* %W~w:*" "channels" "" "selectors" []]`,
		"ACL", "GETUSER", "bob")
	s := h.n.NewSession(nil)
	h.expect(s, "OK", "AUTH", "bob", "x")
	const noKey = "(error) NOPERM No permissions to access a key"
	for _, c := range []struct {
		want string
		args []string
	}{
		{"(nil)", []string{"GET", "r:1"}},
		{noKey, []string{"SET", "r:1", "v"}},
		{"OK", []string{"SET", "w:1", "1"}},
		{noKey, []string{"GET", "w:1"}},
		{noKey, []string{"INCR", "w:1"}},
		{noKey, []string{"SET", "w:1", "v", "GET"}},
		{"(integer) 1", []string{"EXISTS", "w:1"}},
		{"(integer) 0", []string{"EXISTS", "r:1"}},
		{noKey, []string{"EXISTS", "x"}},
		{"(integer) 1", []string{"DEL", "w:1"}},
		{noKey, []string{"COPY", "w:1", "w:2"}},
	} {
		h.expect(s, c.want, c.args...)
	}
	// Collections, keys found by a key count included: a STORE writes its
	// destination and reads its sources; LMOVE reads and deletes from its
	// source and only inserts into its destination.
	for _, c := range []struct {
		want string
		args []string
	}{
		{"(integer) 1", []string{"SADD", "w:s", "a"}},
		{noKey, []string{"SMEMBERS", "w:s"}},
		{"(integer) 0", []string{"SINTERSTORE", "w:d", "r:a", "r:b"}},
		{noKey, []string{"SINTERSTORE", "w:d", "r:a", "w:s"}},
		{"(integer) 0", []string{"ZUNIONSTORE", "w:z", "2", "r:a", "r:b"}},
		{noKey, []string{"ZUNIONSTORE", "w:z", "2", "r:a", "x"}},
		{noKey, []string{"ZUNION", "2", "r:a", "x"}},
		{"(integer) 0", []string{"SINTERCARD", "2", "r:a", "r:b"}},
		{noKey, []string{"SINTERCARD", "2", "r:a", "w:s"}},
		{noKey, []string{"LMPOP", "1", "r:l", "LEFT"}},
		{noKey, []string{"LMOVE", "r:l", "w:l", "LEFT", "RIGHT"}},
		{noKey, []string{"HGET", "x", "f"}},
		{"(nil)", []string{"HGET", "r:h", "f"}},
		{noKey, []string{"BITOP", "AND", "w:b", "x"}},
	} {
		h.expect(s, c.want, c.args...)
	}
	h.expect(admin, "OK", "ACL", "SETUSER", "bob", "%RW~w:*")
	h.expect(s, "(integer) 1", "INCR", "w:1")
	h.expect(s, "(nil)", "LMOVE", "w:l", "w:m", "LEFT", "RIGHT")
	if got := h.do(admin, "ACL", "GETUSER", "bob"); !strings.Contains(got, `"keys" "%R~r:* ~w:*"`) {
		t.Errorf("%%W~ then %%RW~ on one pattern: %s", got)
	}
}

// Channel patterns: PUBLISH and SUBSCRIBE name channels, matched as globs;
// PSUBSCRIBE names patterns, matched literally.
func TestACLChannels(t *testing.T) {
	h := newACLNode(t, Config{}, nil)
	admin := h.n.NewSession(nil)
	h.expect(admin, "OK", "ACL", "SETUSER", "carol", "on", "nopass", "allkeys", "+@all", "resetchannels", "&news.*")
	s := h.n.NewSession(nil)
	h.expect(s, "OK", "AUTH", "carol", "x")
	const noChan = "(error) NOPERM No permissions to access a channel"
	h.expect(s, "(integer) 0", "PUBLISH", "news.1", "m")
	h.expect(s, noChan, "PUBLISH", "sport", "m")
	h.expect(s, noChan, "SUBSCRIBE", "news.1", "sport")
	h.expect(s, noChan, "PSUBSCRIBE", "news.1*")
	h.expect(s, `["psubscribe" "news.*" (integer) 1]`, "PSUBSCRIBE", "news.*")
	if log := h.do(admin, "ACL", "LOG", "1"); !strings.Contains(log, `"reason" "channel" "context" "toplevel" "object" "news.1*"`) {
		t.Errorf("ACL LOG: %s", log)
	}
	// Taking away a channel the subscriber listens to disconnects it;
	// other changes do not.
	h.expect(admin, "OK", "ACL", "SETUSER", "carol", "+get")
	if len(h.rt.disconnected) != 0 {
		t.Fatalf("disconnected %v after an unrelated change", h.rt.disconnected)
	}
	h.expect(admin, "OK", "ACL", "SETUSER", "carol", "resetchannels", "&sport")
	if !slices.Contains(h.rt.disconnected, s.ID()) {
		t.Fatalf("subscriber not disconnected when its channel was revoked: %v", h.rt.disconnected)
	}
}

// Commands are checked as they are queued (a refusal aborts the block,
// as any queueing error), and again when EXEC runs them: a permission
// lost in between answers that command with Redis's EXEC-time error and
// the rest of the block runs.
func TestACLMulti(t *testing.T) {
	h := newACLNode(t, Config{}, nil)
	admin := h.n.NewSession(nil)
	h.expect(admin, "OK", "ACL", "SETUSER", "dave", "on", "nopass", "~*", "&*", "+@all", "-flushall")
	s := h.n.NewSession(nil)
	h.expect(s, "OK", "AUTH", "dave", "x")
	if got := h.run(s, []string{"MULTI"}, []string{"SET", "a", "1"}, []string{"FLUSHALL"}, []string{"EXEC"}); !slices.Equal(got, []string{
		"OK", "QUEUED", "(error) NOPERM User dave has no permissions to run the 'flushall' command",
		"(error) EXECABORT Transaction discarded because of previous errors."}) {
		t.Errorf("refused while queueing: %q", got)
	}
	if log := h.do(admin, "ACL", "LOG", "1"); !strings.Contains(log, `"context" "multi" "object" "flushall"`) {
		t.Errorf("ACL LOG context: %s", log)
	}
	h.run(s, []string{"MULTI"}, []string{"SET", "a", "1"}, []string{"GET", "a"})
	h.expect(admin, "OK", "ACL", "SETUSER", "dave", "-get")
	if got := h.do(s, "EXEC"); got != `[OK (error) NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand]` {
		t.Errorf("EXEC after the change: %s", got)
	}
	h.expect(s, `(error) NOPERM User dave has no permissions to run the 'get' command`, "GET", "a")
	h.expect(admin, `"1"`, "GET", "a")
}

// FCALL's declared keys are checked like any command's.
func TestACLFcallKeys(t *testing.T) {
	h := newACLNode(t, Config{}, nil)
	admin := h.n.NewSession(nil)
	h.expect(admin, "OK", "ACL", "SETUSER", "erin", "on", "nopass", "~app:*", "+@all")
	s := h.n.NewSession(nil)
	h.expect(s, "OK", "AUTH", "erin", "x")
	h.expect(s, "(error) NOPERM No permissions to access a key", "FCALL", "f", "2", "app:1", "other")
	h.expect(s, "(error) NOPERM No permissions to access a key", "FCALL_RO", "f", "1", "other")
	// Its own keys pass the check; the missing function is FCALL's error.
	if got := h.do(s, "FCALL", "f", "1", "app:1", "arg"); strings.Contains(got, "NOPERM") {
		t.Errorf("FCALL on allowed keys: %s", got)
	}
}

// Selectors: a command runs if the root or any selector allows it.
func TestACLSelectors(t *testing.T) {
	h := newACLNode(t, Config{}, nil)
	admin := h.n.NewSession(nil)
	h.expect(admin, "OK", "ACL", "SETUSER", "fay", "on", "nopass", "~a*", "+get", "(~b*", "+set)", "(+config|get)")
	h.expect(admin, `["user default on nopass sanitize-payload ~* &* +@all" "user fay on nopass sanitize-payload ~a* resetchannels -@all +get (~b* resetchannels -@all +set) (resetchannels -@all +config|get)"]`,
		"ACL", "LIST")
	s := h.n.NewSession(nil)
	h.expect(s, "OK", "AUTH", "fay", "x")
	h.expect(s, "(nil)", "GET", "a1")
	h.expect(s, "OK", "SET", "b1", "v")
	h.expect(s, "(error) NOPERM No permissions to access a key", "GET", "b1")
	// The most relevant refusal is told: the selector allowing SET
	// refused the key, which outranks the root refusing the command.
	h.expect(s, "(error) NOPERM No permissions to access a key", "SET", "a1", "v")
	h.expect(s, "(error) NOPERM User fay has no permissions to run the 'config|set' command", "CONFIG", "SET", "maxclients", "5")
	if got := h.do(s, "CONFIG", "GET", "maxclients"); !strings.Contains(got, "maxclients") {
		t.Errorf("CONFIG GET from a selector: %s", got)
	}
	h.expect(admin, "(error) ERR Unmatched parenthesis in acl selector starting at '(+get'.", "ACL", "SETUSER", "fay", "(+get", "~x")
	h.expect(admin, "OK", "ACL", "SETUSER", "fay", "clearselectors")
	h.expect(s, "(error) NOPERM User fay has no permissions to run the 'set' command", "SET", "b1", "v")
}

// SETUSER's rules: every error is Redis's, and a bad rule changes nothing.
func TestACLSetUserErrors(t *testing.T) {
	h := newACLNode(t, Config{}, nil)
	s := h.n.NewSession(nil)
	for _, c := range []struct {
		rule, err string
	}{
		{"+nosuch", "Unknown command or category name in ACL"},
		{"+@nosuch", "Unknown command or category name in ACL"},
		{"bogus", "Syntax error"},
		{"~a b", "Syntax error"},
		{"%X~a", "Syntax error"},
		{"#abc", "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"},
		{"<nope", "The password you are trying to remove from the user does not exist"},
		{"+config|nosuch", "Unknown command or category name in ACL"},
		{"+client|kill|x", "Allowing first-arg of a subcommand is not supported"},
		{"+get|", "Syntax error"},
	} {
		want := "(error) ERR Error in ACL SETUSER modifier '" + c.rule + "': " + c.err
		h.expect(s, want, "ACL", "SETUSER", "gil", "on", c.rule)
	}
	h.expect(s, "(nil)", "ACL", "GETUSER", "gil")
	h.expect(s, "OK", "ACL", "SETUSER", "gil", "allkeys")
	h.expect(s, "(error) ERR Error in ACL SETUSER modifier '~x': Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
		"ACL", "SETUSER", "gil", "~x")
	h.expect(s, "(error) ERR Usernames can't contain spaces or null characters", "ACL", "SETUSER", "a b")
	h.expect(s, "(error) ERR The 'default' user cannot be removed", "ACL", "DELUSER", "gil", "default")
	h.expect(s, "(integer) 1", "ACL", "DELUSER", "gil", "nobody")
	// Command rules keep the order given, each command once (Redis 7.2).
	h.expect(s, "OK", "ACL", "SETUSER", "hal", "+@read", "-@read", "+get", "+CONFIG|GET", "-config", "+select|0", "+@all", "-@dangerous", "+info")
	if got := h.do(s, "ACL", "GETUSER", "hal"); !strings.Contains(got, `"commands" "+@all -@dangerous +info"`) {
		t.Errorf("rules: %s", got)
	}
	h.expect(s, "OK", "ACL", "SETUSER", "hal", "-@all", "+@read", "-@read", "+get", "+config|get", "-config", "+select|0")
	if got := h.do(s, "ACL", "GETUSER", "hal"); !strings.Contains(got, `"commands" "-@all -@read +get -config +select|0"`) {
		t.Errorf("rules: %s", got)
	}
	h.expect(s, "OK", "ACL", "SETUSER", "hal", "on", ">a", ">b", ">a", "<b")
	if got := h.do(s, "ACL", "GETUSER", "hal"); !strings.Contains(got, `"passwords" ["ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"]`) {
		t.Errorf("passwords (SHA-256, once each): %s", got)
	}
}

// requirepass is the default user's password on this node; CONFIG SET
// changes it for new connections.
func TestACLRequirePass(t *testing.T) {
	h := newACLNode(t, Config{RequirePass: "s3cret"}, nil)
	s := h.n.NewSession(nil)
	h.expect(s, "(error) NOAUTH Authentication required.", "GET", "k")
	h.expect(s, "(error) NOAUTH Authentication required.", "ACL", "WHOAMI")
	h.expect(s, "(error) WRONGPASS invalid username-password pair or user is disabled.", "AUTH", "nope")
	h.expect(s, "OK", "AUTH", "s3cret")
	if got := h.do(s, "ACL", "LIST"); got != `["user default on sanitize-payload #`+aclHashPassword([]byte("s3cret"))+` ~* &* +@all"]` {
		t.Errorf("ACL LIST: %s", got)
	}
	h.expect(s, "OK", "CONFIG", "SET", "requirepass", "")
	h.expect(h.n.NewSession(nil), "(nil)", "GET", "k")
	h.expect(s, "OK", "CONFIG", "SET", "requirepass", "other")
	s2 := h.n.NewSession(nil)
	h.expect(s2, "(error) NOAUTH Authentication required.", "PING")
	if got := h.run(s2, []string{"HELLO", "3", "AUTH", "default", "other"}); len(got) != 1 || !strings.HasPrefix(got[0], `{"server" "keel"`) {
		t.Errorf("HELLO 3 AUTH: %q", got)
	}
	// RESET goes back to the default user, unauthenticated while it has
	// a password.
	h.expect(s, "OK", "ACL", "SETUSER", "nia", "on", "nopass", "+@all", "~*")
	h.expect(s, "OK", "AUTH", "nia", "x")
	h.expect(s, "RESET", "RESET")
	h.expect(s, "(error) NOAUTH Authentication required.", "ACL", "WHOAMI")
	h.expect(s, "OK", "AUTH", "other")
	h.expect(s, `"default"`, "ACL", "WHOAMI")
	h.expect(s, "OK", "ACL", "SETUSER", "default", "off")
	h.expect(h.n.NewSession(nil), "(error) WRONGPASS invalid username-password pair or user is disabled.", "AUTH", "other")
}

// Deleting a user disconnects its sessions: at once when idle, after the
// replies of the batch when the session deleted its own user.
func TestACLDeleteUserDisconnects(t *testing.T) {
	h := newACLNode(t, Config{}, nil)
	admin := h.n.NewSession(nil)
	h.expect(admin, "OK", "ACL", "SETUSER", "ivy", "on", "nopass", "+@all", "~*")
	idle, self := h.n.NewSession(nil), h.n.NewSession(nil)
	h.expect(idle, "OK", "AUTH", "ivy", "x")
	h.expect(self, "OK", "AUTH", "ivy", "x")
	h.expect(admin, "(error) ERR No such user 'nobody'", "CLIENT", "KILL", "USER", "nobody")
	if got := h.run(self, []string{"ACL", "DELUSER", "ivy"}, []string{"PING"}); !slices.Equal(got, []string{"(integer) 1"}) || !self.CloseAfter() {
		t.Errorf("deleting its own user: %q, close %v", got, self.CloseAfter())
	}
	if !slices.Contains(h.rt.disconnected, idle.ID()) || slices.Contains(h.rt.disconnected, self.ID()) {
		t.Errorf("disconnected %v, want %d (idle) and not %d (busy)", h.rt.disconnected, idle.ID(), self.ID())
	}
	if got := h.run(idle, []string{"PING"}); len(got) != 0 || !idle.CloseAfter() {
		t.Errorf("a session of a deleted user ran %q", got)
	}
	// CLIENT KILL USER
	h.expect(admin, "OK", "ACL", "SETUSER", "jo", "on", "nopass", "+@all")
	j := h.n.NewSession(nil)
	h.expect(j, "OK", "AUTH", "jo", "x")
	h.expect(admin, "(integer) 1", "CLIENT", "KILL", "USER", "jo")
	if !slices.Contains(h.rt.disconnected, j.ID()) {
		t.Errorf("CLIENT KILL USER did not disconnect %d: %v", j.ID(), h.rt.disconnected)
	}
}

// The user directives and the aclfile give the table until an ACL change
// is applied; the first change starts from them (seed).
func TestACLConfiguredUsers(t *testing.T) {
	h := newACLNode(t, Config{Users: []string{`alice on ">pw" ~app:* +@all`, "default on nopass ~* +@read"}}, nil)
	s := h.n.NewSession(nil)
	h.expect(s, "(error) NOPERM User default has no permissions to run the 'set' command", "SET", "k", "v")
	h.expect(s, "OK", "AUTH", "alice", "pw")
	want := `["user alice on sanitize-payload #` + aclHashPassword([]byte("pw")) + ` ~app:* resetchannels +@all" "user default on nopass sanitize-payload ~* resetchannels -@all +@read"]`
	h.expect(s, want, "ACL", "LIST")
	h.expect(s, "OK", "ACL", "SETUSER", "bob", "on")
	if got := h.do(s, "ACL", "USERS"); got != `["alice" "bob" "default"]` {
		t.Errorf("after the first change: %s", got)
	}
	for _, bad := range []Config{
		{Users: []string{"x +nosuch"}},
		{Users: []string{"x on", "x off"}},
		{Users: []string{"x on"}, ACLFile: "users.acl", FS: disk.NewMemFS()},
		{ACLFile: "missing.acl", FS: disk.NewMemFS()},
	} {
		bad.Clock, bad.Rand = fixedClock(0), new(counterRand)
		if _, err := New(bad, &testRuntime{}); err == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
}

// ACL SAVE writes the table to the aclfile (0600, through a temporary file
// renamed over it); ACL LOAD reads it back through the log, and refuses a
// file with errors, changing nothing.
func TestACLFileSaveLoad(t *testing.T) {
	fs := disk.NewMemFS()
	if err := disk.WriteFile(fs, "users.acl", []byte("user alice on nopass ~* +@all\n")); err != nil {
		t.Fatal(err)
	}
	h := newACLNode(t, Config{ACLFile: "users.acl"}, fs)
	s := h.n.NewSession(nil)
	h.expect(s, `["alice" "default"]`, "ACL", "USERS")
	h.expect(s, "OK", "ACL", "SETUSER", "bob", "on", "~b*")
	h.expect(s, "OK", "ACL", "SAVE")
	text, err := disk.ReadFile(fs, "users.acl")
	if err != nil {
		t.Fatal(err)
	}
	if want := "user alice on nopass sanitize-payload ~* resetchannels +@all\nuser bob on sanitize-payload ~b* resetchannels -@all\nuser default on nopass sanitize-payload ~* &* +@all\n"; string(text) != want {
		t.Errorf("saved %q, want %q", text, want)
	}
	if _, err := fs.Stat("users.acl.tmp"); err == nil {
		t.Error("the temporary file was left behind")
	}
	if err := disk.WriteFile(fs, "users.acl", []byte("user carol on\nuser dan +nosuch\nnot a user line\n")); err != nil {
		t.Fatal(err)
	}
	h.expect(s, "(error) ERR users.acl:2: Error in applying operation '+nosuch': Unknown command or category name in ACL. users.acl:3 should start with user keyword followed by the username. WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
		"ACL", "LOAD")
	h.expect(s, `["alice" "bob" "default"]`, "ACL", "USERS")
	if err := disk.WriteFile(fs, "users.acl", []byte("user carol on nopass +@all\n")); err != nil {
		t.Fatal(err)
	}
	h.expect(s, "OK", "ACL", "LOAD")
	h.expect(s, `["carol" "default"]`, "ACL", "USERS")
	h2 := newACLNode(t, Config{}, nil)
	h2.expect(h2.n.NewSession(nil), "(error) "+errNoACLFile, "ACL", "SAVE")
}

// The table is replica state: after a restart it comes back from the log,
// and from a snapshot once one is taken.
func TestACLSurvivesRestart(t *testing.T) {
	fs := disk.NewMemFS()
	h := newACLNode(t, Config{}, fs)
	s := h.n.NewSession(nil)
	h.expect(s, "OK", "ACL", "SETUSER", "kim", "on", ">pw", "~k:*", "+get")
	h.close()
	h = newACLNode(t, Config{}, fs)
	s = h.n.NewSession(nil)
	h.expect(s, `["default" "kim"]`, "ACL", "USERS")
	h.expect(s, "OK", "SAVE")
	h.expect(s, "OK", "ACL", "SETUSER", "lee", "on")
	h.close()
	h = newACLNode(t, Config{}, fs)
	if rec := h.n.Replica(1).Recovery(); rec.Snapshot == "" {
		t.Fatal("no snapshot loaded")
	}
	s = h.n.NewSession(nil)
	h.expect(s, `["default" "kim" "lee"]`, "ACL", "USERS")
	h.expect(s, "OK", "AUTH", "kim", "pw")
	h.expect(s, "(error) NOPERM No permissions to access a key", "GET", "x")
	h.close()
}

// ACL CAT, DRYRUN, GENPASS, HELP and the subcommand errors.
func TestACLInfoCommands(t *testing.T) {
	h := newACLNode(t, Config{}, nil)
	s := h.n.NewSession(nil)
	if got := h.do(s, "ACL", "CAT"); !strings.HasPrefix(got, `["keyspace" "read" "write"`) || !strings.HasSuffix(got, `"transaction" "scripting"]`) {
		t.Errorf("ACL CAT: %s", got)
	}
	dangerous := h.do(s, "ACL", "CAT", "dangerous")
	for _, want := range []string{`"flushall"`, `"keys"`, `"acl|setuser"`, `"config|set"`, `"client|kill"`, `"shutdown"`} {
		if !strings.Contains(dangerous, want) {
			t.Errorf("ACL CAT dangerous lacks %s: %s", want, dangerous)
		}
	}
	if strings.Contains(dangerous, `"get"`) {
		t.Errorf("ACL CAT dangerous: %s", dangerous)
	}
	h.expect(s, "(error) ERR Unknown category 'nosuch'", "ACL", "CAT", "nosuch")
	h.expect(s, "OK", "ACL", "SETUSER", "mo", "on", "~a*", "&c", "+get", "+publish")
	h.expect(s, "OK", "ACL", "DRYRUN", "mo", "get", "a1")
	h.expect(s, `"User mo has no permissions to access the 'b1' key"`, "ACL", "DRYRUN", "mo", "get", "b1")
	h.expect(s, `"User mo has no permissions to run the 'set' command"`, "ACL", "DRYRUN", "mo", "set", "a", "b")
	h.expect(s, `"User mo has no permissions to access the 'd' channel"`, "ACL", "DRYRUN", "mo", "publish", "d", "m")
	h.expect(s, "(error) ERR User 'no' not found", "ACL", "DRYRUN", "no", "get", "a")
	h.expect(s, "(error) ERR Command 'nosuch' not found", "ACL", "DRYRUN", "mo", "nosuch")
	h.expect(s, "(error) ERR wrong number of arguments for 'get' command", "ACL", "DRYRUN", "mo", "get")
	if got := h.do(s, "ACL", "GENPASS"); len(got) != 66 {
		t.Errorf("GENPASS: %s", got)
	}
	if got := h.do(s, "ACL", "GENPASS", "5"); len(got) != 4 {
		t.Errorf("GENPASS 5: %s", got)
	}
	h.expect(s, "(error) ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096", "ACL", "GENPASS", "0")
	h.expect(s, "(error) ERR value is not an integer or out of range", "ACL", "GENPASS", "x")
	h.expect(s, "(error) ERR unknown subcommand or wrong number of arguments for 'LOG'. Try ACL HELP.", "ACL", "LOG", "1", "2")
	h.expect(s, "(error) ERR unknown subcommand 'NOSUCH'. Try ACL HELP.", "ACL", "NOSUCH")
	h.expect(s, "(error) ERR wrong number of arguments for 'acl|getuser' command", "ACL", "GETUSER")
	if got := h.do(s, "ACL", "HELP"); !strings.HasPrefix(got, "[ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are: CAT [<category>]") {
		t.Errorf("ACL HELP: %s", got)
	}
}

// Every engine command has its key permissions written down, and every
// command and subcommand keel answers has an ACL id.
func TestACLRegistryComplete(t *testing.T) {
	reg := aclCommands()
	for _, ec := range engine.Commands() {
		if (ec.FirstKey > 0 || ec.MovableKeys()) && aclKeyPerms[ec.Name] == nil {
			t.Errorf("engine command %s: no entry in aclKeyPerms", ec.Name)
		}
		if reg.byName[ec.Name] == nil {
			t.Errorf("engine command %s: not in the ACL registry", ec.Name)
		}
	}
	for name, sc := range serverCommands {
		if reg.byName[name] == nil {
			t.Errorf("server command %s: not in the ACL registry", name)
		}
		for _, sub := range sc.subs {
			if _, ok := aclSubCategories[sub.name]; !ok {
				t.Errorf("subcommand %s: no categories", sub.name)
			}
		}
	}
	for name := range replicaCommands {
		if reg.byName[name] == nil {
			t.Errorf("replica command %s: not in the ACL registry", name)
		}
	}
	for i, c := range reg.all {
		if c.id != i || i > 0 && reg.all[i-1].name >= c.name {
			t.Fatalf("registry out of order at %d: %s", i, c.name)
		}
	}
}

// BenchmarkACLCheck is what a restricted user's command costs on top of
// the default user's two loads: the registry lookup and the check of its
// keys against ~app:*.
//
//	go test ./node -run '^$' -bench ACLCheck -benchmem
func BenchmarkACLCheck(b *testing.B) {
	t := newACLTable()
	t, msg := t.setUser([]byte("app"), [][]byte{[]byte("on"), []byte("nopass"), []byte("~app:*"), []byte("+@all"), []byte("-@dangerous")})
	if msg != "" {
		b.Fatal(msg)
	}
	u := t.users["app"]
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"GET", []string{"GET", "app:000042"}},
		{"MSET4", []string{"MSET", "app:1", "v", "app:2", "v", "app:3", "v", "app:4", "v"}},
		{"CLIENTID", []string{"CLIENT", "ID"}},
	} {
		argv := make([][]byte, len(c.argv))
		for i, a := range c.argv {
			argv[i] = []byte(a)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				cmd := aclCommands().command(argv)
				if res, _ := u.check(cmd, argv); res != aclAllowed {
					b.Fatal("refused")
				}
			}
		})
	}
}
