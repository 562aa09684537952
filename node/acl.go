package node

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/keel-db/keel/engine"
)

// ACL: Redis 7.2's users and permissions (docs/security.md, "ACL").
//
// This file is the model: the command registry the rules name (every
// command and subcommand keel answers, with Redis's ACL categories), a
// user and its selectors, the rules that change them (ACL SETUSER's
// words), their description (ACL LIST, GETUSER, the aclfile) and the
// permission check. acl_table.go is the table of users, how it is kept
// as replica state and followed by the node; acl_cmd.go the ACL command,
// AUTH, the ACL log and where a session enforces the check.
//
// A user is immutable once published: a change builds a new user and the
// node swaps it in (aclRef), so a session checks a command with two
// pointer loads and, for a user allowed everything (the default user),
// nothing else.

// aclCategories are Redis's ACL categories, in Redis's order (ACL CAT).
var aclCategories = []string{
	"keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog",
	"geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection",
	"transaction", "scripting",
}

// aclCategory is the bit of a category name (any letter case), 0 if none.
func aclCategory(name string) uint32 {
	for i, c := range aclCategories {
		if strings.EqualFold(c, name) {
			return 1 << i
		}
	}
	return 0
}

func aclCategoryBits(cats []string) uint32 {
	var bits uint32
	for _, c := range cats {
		bits |= aclCategory(strings.TrimPrefix(c, "@"))
	}
	return bits
}

// Key permissions a command needs on a key, from Redis's key specs:
// ACCESS reads it, INSERT/DELETE/UPDATE write it. A key needing neither
// (EXISTS, TYPE) only has to match some pattern.
const (
	aclPermRead  uint8 = 1
	aclPermWrite uint8 = 2
	aclPermRW          = aclPermRead | aclPermWrite
)

// How a command names its keys and channels, for the check.
const (
	aclKeysNone   uint8 = iota
	aclKeysEngine       // engine.Command's FirstKey/LastKey/Step
	aclKeysAll          // every argument after the name (WATCH)
	aclKeysFcall        // FCALL/FCALL_RO: numkeys, then the keys
)

const (
	aclChanNone     uint8 = iota
	aclChanFirst          // PUBLISH, SPUBLISH: argv[1]
	aclChanAll            // SUBSCRIBE, SSUBSCRIBE: every argument
	aclChanPatterns       // PSUBSCRIBE: every argument, a pattern
)

// aclKeyPerms is each engine command's key permission, from Redis 7's key
// specs (COMMAND INFO): one entry for every key, or two when the first
// key (a source) differs from the second (a destination). A test holds
// every engine command to an entry here.
var aclKeyPerms = map[string][]uint8{
	"append": {aclPermWrite}, "copy": {aclPermRead, aclPermWrite}, "decr": {aclPermRW}, "decrby": {aclPermRW},
	"del": {aclPermWrite}, "exists": {0}, "expire": {aclPermWrite}, "expireat": {aclPermWrite},
	"expiretime": {aclPermRead}, "get": {aclPermRead}, "getdel": {aclPermRW}, "getex": {aclPermRW},
	"getrange": {aclPermRead}, "getset": {aclPermRW}, "incr": {aclPermRW}, "incrby": {aclPermRW},
	"incrbyfloat": {aclPermRW}, "mget": {aclPermRead}, "mset": {aclPermWrite}, "msetnx": {aclPermWrite},
	"persist": {aclPermWrite}, "pexpire": {aclPermWrite}, "pexpireat": {aclPermWrite},
	"pexpiretime": {aclPermRead}, "psetex": {aclPermWrite}, "pttl": {aclPermRead},
	"rename": {aclPermRW, aclPermWrite}, "renamenx": {aclPermRW, aclPermWrite},
	// SET reads its key too with GET (setGetKeys in Redis).
	"set": {aclPermWrite}, "setex": {aclPermWrite}, "setnx": {aclPermWrite}, "setrange": {aclPermWrite},
	"strlen": {0}, "substr": {aclPermRead}, "touch": {0}, "ttl": {aclPermRead}, "type": {0},
	"unlink": {aclPermWrite},
	// The collection commands; for a command with two key specs, the
	// first names only the first key.
	"bitcount": {aclPermRead}, "bitfield": {aclPermRW}, "bitfield_ro": {aclPermRead},
	"bitop": {aclPermWrite, aclPermRead}, "bitpos": {aclPermRead}, "getbit": {aclPermRead},
	"hdel": {aclPermWrite}, "hexists": {0}, "hget": {aclPermRead}, "hgetall": {aclPermRead},
	"hincrby": {aclPermRW}, "hincrbyfloat": {aclPermRW}, "hkeys": {aclPermRead}, "hlen": {0},
	"hmget": {aclPermRead}, "hmset": {aclPermWrite}, "hrandfield": {aclPermRead}, "hscan": {aclPermRead},
	"hset": {aclPermWrite}, "hsetnx": {aclPermWrite}, "hstrlen": {0}, "hvals": {aclPermRead},
	"lcs": {aclPermRead}, "lindex": {aclPermRead}, "linsert": {aclPermWrite}, "llen": {0},
	"lmove": {aclPermRW, aclPermWrite}, "lmpop": {aclPermRW}, "lpop": {aclPermRW}, "lpos": {aclPermRead},
	"lpush": {aclPermWrite}, "lpushx": {aclPermWrite}, "lrange": {aclPermRead}, "lrem": {aclPermWrite},
	"lset": {aclPermWrite}, "ltrim": {aclPermWrite}, "object": {0}, "rpop": {aclPermRW},
	"rpoplpush": {aclPermRW, aclPermWrite}, "rpush": {aclPermWrite}, "rpushx": {aclPermWrite},
	"sadd": {aclPermWrite}, "scard": {0}, "sdiff": {aclPermRead}, "sdiffstore": {aclPermWrite, aclPermRead},
	"setbit": {aclPermRW}, "sinter": {aclPermRead}, "sintercard": {aclPermRead},
	"sinterstore": {aclPermWrite, aclPermRead}, "sismember": {0}, "smembers": {aclPermRead},
	"smismember": {aclPermRead}, "smove": {aclPermRW, aclPermWrite}, "spop": {aclPermRW},
	"srandmember": {aclPermRead}, "srem": {aclPermWrite}, "sscan": {aclPermRead}, "sunion": {aclPermRead},
	"sunionstore": {aclPermWrite, aclPermRead}, "zadd": {aclPermWrite}, "zcard": {0}, "zcount": {aclPermRead},
	"zdiff": {aclPermRead}, "zdiffstore": {aclPermWrite, aclPermRead}, "zincrby": {aclPermRW},
	"zinter": {aclPermRead}, "zintercard": {aclPermRead}, "zinterstore": {aclPermWrite, aclPermRead},
	"zlexcount": {aclPermRead}, "zmpop": {aclPermRW}, "zmscore": {aclPermRead}, "zpopmax": {aclPermRW},
	"zpopmin": {aclPermRW}, "zrandmember": {aclPermRead}, "zrange": {aclPermRead}, "zrangebylex": {aclPermRead},
	"zrangebyscore": {aclPermRead}, "zrangestore": {aclPermWrite, aclPermRead}, "zrank": {aclPermRead},
	"zrem": {aclPermWrite}, "zremrangebylex": {aclPermWrite}, "zremrangebyrank": {aclPermWrite},
	"zremrangebyscore": {aclPermWrite}, "zrevrange": {aclPermRead}, "zrevrangebylex": {aclPermRead},
	"zrevrangebyscore": {aclPermRead}, "zrevrank": {aclPermRead}, "zscan": {aclPermRead},
	"zscore": {aclPermRead}, "zunion": {aclPermRead}, "zunionstore": {aclPermWrite, aclPermRead},
	// The blocking pops, as the pops they become.
	"blpop": {aclPermRW}, "brpop": {aclPermRW}, "brpoplpush": {aclPermRW, aclPermWrite},
	"blmove": {aclPermRW, aclPermWrite}, "blmpop": {aclPermRW}, "bzpopmin": {aclPermRW},
	"bzpopmax": {aclPermRW}, "bzmpop": {aclPermRW},
}

// aclSubCategories are the categories of the subcommands keel answers, as
// Redis 7 gives them (COMMAND INFO); keel's own subcommands follow the
// same rule (admin, dangerous: changes the cluster).
var aclSubCategories = map[string]string{
	"client|id": "@slow @connection", "client|setname": "@slow @connection", "client|getname": "@slow @connection",
	"client|list": "@admin @slow @dangerous @connection", "client|info": "@slow @connection",
	"client|kill": "@admin @slow @dangerous @connection", "client|setinfo": "@slow @connection",
	"client|help": "@slow @connection", "client|unblock": "@admin @slow @dangerous @connection",
	"client|pause": "@admin @slow @dangerous @connection", "client|unpause": "@admin @slow @dangerous @connection",
	"client|reply": "@slow @connection", "client|no-evict": "@admin @slow @dangerous @connection",
	"command|count": "@slow @connection", "command|docs": "@slow @connection", "command|info": "@slow @connection",
	"command|list": "@slow @connection", "command|help": "@slow @connection",
	"config|get": "@admin @slow @dangerous", "config|set": "@admin @slow @dangerous",
	"config|resetstat": "@admin @slow @dangerous", "config|rewrite": "@admin @slow @dangerous", "config|help": "@slow",
	"pubsub|channels": "@pubsub @slow", "pubsub|numsub": "@pubsub @slow", "pubsub|numpat": "@pubsub @slow",
	"pubsub|shardchannels": "@pubsub @slow", "pubsub|shardnumsub": "@pubsub @slow", "pubsub|help": "@slow",
	"cluster|slots": "@slow", "cluster|shards": "@slow", "cluster|nodes": "@slow", "cluster|info": "@slow",
	"cluster|keyslot": "@slow", "cluster|myid": "@slow", "cluster|countkeysinslot": "@slow",
	"cluster|getkeysinslot": "@slow", "cluster|help": "@slow", "cluster|groups": "@slow", "cluster|placement": "@slow",
	"cluster|addnode": "@admin @slow @dangerous", "cluster|delnode": "@admin @slow @dangerous",
	"cluster|reshard": "@admin @slow @dangerous", "cluster|addgroup": "@admin @slow @dangerous",
	"function|load": "@write @slow @scripting", "function|delete": "@write @slow @scripting",
	"function|flush": "@write @slow @scripting", "function|restore": "@write @slow @scripting",
	"function|list": "@slow @scripting", "function|dump": "@slow @scripting", "function|stats": "@slow @scripting",
	"function|kill": "@slow @scripting", "function|help": "@slow @scripting",
	"acl|cat": "@slow", "acl|deluser": "@admin @slow @dangerous", "acl|dryrun": "@admin @slow @dangerous",
	"acl|genpass": "@slow", "acl|getuser": "@admin @slow @dangerous", "acl|help": "@slow",
	"acl|list": "@admin @slow @dangerous", "acl|load": "@admin @slow @dangerous", "acl|log": "@admin @slow @dangerous",
	"acl|save": "@admin @slow @dangerous", "acl|setuser": "@admin @slow @dangerous",
	"acl|users": "@admin @slow @dangerous", "acl|whoami": "@slow",
	"object|encoding": "@keyspace @read @slow", "object|freq": "@keyspace @read @slow",
	"object|idletime": "@keyspace @read @slow", "object|refcount": "@keyspace @read @slow",
	"object|help": "@keyspace @slow",
}

// objectSubs: OBJECT is one engine command, but to ACL rules (as in Redis)
// a container of subcommands with their own categories.
var objectSubs = []subcommand{
	{name: "object|encoding", arity: 3}, {name: "object|freq", arity: 3}, {name: "object|help", arity: 2},
	{name: "object|idletime", arity: 3}, {name: "object|refcount", arity: 3},
}

// aclReplicaCommands are the commands the replica answers (not in the
// engine's table nor the node's): Redis 7's arity and categories.
var aclReplicaCommands = []struct {
	name  string
	arity int
	cats  string
	subs  []subcommand
}{
	{"save", 1, "@admin @slow @dangerous", nil},
	{"bgsave", -1, "@admin @slow @dangerous", nil},
	{"lastsave", 1, "@admin @fast @dangerous", nil},
	{"bgrewriteaof", 1, "@admin @slow @dangerous", nil},
	{"fcall", -3, "@slow @scripting", nil},
	{"fcall_ro", -3, "@slow @scripting", nil},
	{"function", -2, "@slow", []subcommand{
		{name: "function|delete", arity: 3}, {name: "function|dump", arity: 2}, {name: "function|flush", arity: -2},
		{name: "function|help", arity: 2}, {name: "function|kill", arity: 2}, {name: "function|list", arity: -2},
		{name: "function|load", arity: -3}, {name: "function|restore", arity: -3}, {name: "function|stats", arity: 2},
	}},
}

// aclCmd is one command or subcommand as the ACL rules see it.
type aclCmd struct {
	id     int
	name   string // full name, lower case: "get", "config|set"
	cats   uint32
	arity  int
	noAuth bool // AUTH, HELLO, QUIT, RESET: every user may run them
	parent *aclCmd
	subs   map[string]*aclCmd // by subcommand name ("set" for config|set)
	// keys and chans say where the arguments the check looks at are.
	keys   uint8
	chans  uint8
	engine *engine.Command
	perms  []uint8 // aclKeysEngine: aclKeyPerms' entry
	pubsub bool    // PUBLISH-like (aclChanFirst), for the check
}

// aclCommandBits is the size of a selector's command bitmap. Its last bit
// is never a command's: +@all sets it, and a selector that has it was
// built from +@all (its description starts with +@all, and it would be
// allowed commands added later), as in Redis.
const (
	aclCommandWords = 8
	aclCommandBits  = aclCommandWords * 64
	aclFutureBit    = aclCommandBits - 1
)

// aclRegistry is every command the rules may name.
type aclRegistry struct {
	byName map[string]*aclCmd // top-level commands and full subcommand names
	all    []*aclCmd          // by id: sorted by full name
	top    []*aclCmd          // top-level commands, sorted
}

// aclCommands is built on first use: the node's connection commands are
// registered by the init functions of several files.
var aclCommands = sync.OnceValue(buildACLRegistry)

func buildACLRegistry() *aclRegistry {
	reg := &aclRegistry{byName: map[string]*aclCmd{}}
	addSubs := func(parent *aclCmd, subs []subcommand) {
		if len(subs) == 0 {
			return
		}
		parent.subs = map[string]*aclCmd{}
		for _, s := range subs {
			cats, ok := aclSubCategories[s.name]
			if !ok {
				cats = "@slow"
			}
			sc := &aclCmd{name: s.name, arity: s.arity, cats: aclCategoryBits(strings.Fields(cats)), parent: parent}
			_, short, _ := strings.Cut(s.name, "|")
			parent.subs[short] = sc
			reg.byName[s.name] = sc
		}
	}
	add := func(c *aclCmd) {
		if _, dup := reg.byName[c.name]; dup {
			return
		}
		reg.byName[c.name] = c
		reg.top = append(reg.top, c)
	}
	for _, ec := range engine.Commands() {
		if serverCommands[ec.Name] != nil {
			continue
		}
		c := &aclCmd{name: ec.Name, arity: ec.Arity, cats: aclCategoryBits(ec.Categories), engine: ec}
		if ec.FirstKey > 0 || ec.MovableKeys() {
			c.keys, c.perms = aclKeysEngine, aclKeyPerms[ec.Name]
			if c.perms == nil {
				// A command added to the engine without an entry above:
				// its flags decide, erring on the strict side.
				c.perms = []uint8{aclPermRW}
				if ec.Flags&engine.ReadOnly != 0 {
					c.perms = []uint8{aclPermRead}
				}
			}
		}
		if ec.Name == "object" {
			c.cats = aclCategoryBits([]string{"@slow"})
			addSubs(c, objectSubs)
			for name, sc := range c.subs {
				if name != "help" {
					sc.keys, sc.perms, sc.engine = c.keys, c.perms, ec
				}
			}
		}
		add(c)
	}
	for _, sc := range serverCommands {
		c := &aclCmd{name: sc.name, arity: sc.arity, cats: aclCategoryBits(sc.categories), noAuth: sc.noAuth}
		switch sc.name {
		case "watch":
			c.keys = aclKeysAll
		case "publish", "spublish":
			c.chans, c.pubsub = aclChanFirst, true
		case "subscribe", "ssubscribe":
			c.chans = aclChanAll
		case "psubscribe":
			c.chans = aclChanPatterns
		}
		addSubs(c, sc.subs)
		add(c)
	}
	for _, rc := range aclReplicaCommands {
		c := &aclCmd{name: rc.name, arity: rc.arity, cats: aclCategoryBits(strings.Fields(rc.cats))}
		if rc.name == "fcall" || rc.name == "fcall_ro" {
			c.keys = aclKeysFcall
			c.perms = []uint8{aclPermRW}
			if rc.name == "fcall_ro" {
				c.perms = []uint8{aclPermRead}
			}
		}
		addSubs(c, rc.subs)
		add(c)
	}
	sort.Slice(reg.top, func(i, j int) bool { return reg.top[i].name < reg.top[j].name })
	for _, c := range reg.top {
		reg.all = append(reg.all, c)
		for _, s := range sortedSubs(c) {
			reg.all = append(reg.all, s)
		}
	}
	sort.Slice(reg.all, func(i, j int) bool { return reg.all[i].name < reg.all[j].name })
	if len(reg.all) >= aclFutureBit {
		panic("node: more commands than an ACL selector's bitmap holds; raise aclCommandWords")
	}
	for i, c := range reg.all {
		c.id = i
	}
	return reg
}

// sortedSubs are c's subcommands by name.
func sortedSubs(c *aclCmd) []*aclCmd {
	out := make([]*aclCmd, 0, len(c.subs))
	for _, s := range c.subs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *aclCmd) int { return strings.Compare(a.name, b.name) })
	return out
}

// lowerInto lower-cases b into buf without allocating; false when it does
// not fit.
func lowerInto(buf []byte, b []byte) ([]byte, bool) {
	if len(b) > len(buf) {
		return nil, false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(b)], true
}

// command is the command argv runs as the rules see it: the subcommand
// argv[1] names for a container, the container itself when argv[1] names
// none it has (the container then answers with an error). nil: unknown.
func (reg *aclRegistry) command(argv [][]byte) *aclCmd {
	var buf [32]byte
	name, ok := lowerInto(buf[:], argv[0])
	if !ok {
		return nil
	}
	c := reg.byName[string(name)]
	if c == nil || c.subs == nil || len(argv) < 2 {
		return c
	}
	sub, ok := lowerInto(buf[:], argv[1])
	if !ok {
		return c
	}
	if s := c.subs[string(sub)]; s != nil {
		return s
	}
	return c
}

// lookup is Redis's ACLLookupCommand: a command by name, "cmd|sub" for a
// subcommand (or the command itself when it has none), nil if unknown.
func (reg *aclRegistry) lookup(name string) *aclCmd {
	name = strings.ToLower(name)
	base, sub, hasSub := strings.Cut(name, "|")
	if strings.Contains(sub, "|") {
		return nil // one level of subcommands
	}
	c := reg.byName[base]
	if c == nil || !hasSub || c.subs == nil {
		return c
	}
	return c.subs[sub]
}

// Errors of a rule, by the errno Redis sets (ACLSetUserStringError).
type aclErr int

const (
	aclOK aclErr = iota
	aclErrSyntax
	aclErrUnknown
	aclErrKeyAfterAll
	aclErrChannelAfterAll
	aclErrNoSuchPass
	aclErrBadHash
	aclErrDuplicate
	aclErrFirstArgSub
)

func (e aclErr) String() string {
	switch e {
	case aclErrUnknown:
		return "Unknown command or category name in ACL"
	case aclErrSyntax:
		return "Syntax error"
	case aclErrKeyAfterAll:
		return "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
	case aclErrChannelAfterAll:
		return "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
	case aclErrNoSuchPass:
		return "The password you are trying to remove from the user does not exist"
	case aclErrBadHash:
		return "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
	case aclErrDuplicate:
		return "Duplicate user found. A user can only be defined once in config files"
	case aclErrFirstArgSub:
		return "Allowing first-arg of a subcommand is not supported"
	}
	return "Wrong format"
}

// aclPattern is a key pattern and the access it grants (~: both).
type aclPattern struct {
	pat  []byte
	perm uint8
}

// aclSelector is a set of permissions: commands, keys, channels. A user
// has its root selector and any number of others; a command runs if one
// of them allows it.
type aclSelector struct {
	allCommands bool // +@all and nothing taken away since: no bit to test
	bits        [aclCommandWords]uint64
	// firstArgs: a command otherwise denied is allowed with these first
	// arguments (+select|0), by command id.
	firstArgs map[int][]string
	// rules are the command rules as given, each once, in order (Redis
	// 7.2's command_rules): what the description shows after +@all/-@all.
	rules       []string
	allKeys     bool
	keys        []aclPattern
	allChannels bool
	channels    [][]byte
}

func (s *aclSelector) clone() *aclSelector {
	o := *s
	o.rules = slices.Clone(s.rules)
	o.keys = slices.Clone(s.keys)
	o.channels = slices.Clone(s.channels)
	if s.firstArgs != nil {
		o.firstArgs = make(map[int][]string, len(s.firstArgs))
		for id, args := range s.firstArgs {
			o.firstArgs[id] = slices.Clone(args)
		}
	}
	return &o
}

func (s *aclSelector) bit(id int) bool { return s.bits[id/64]&(1<<(id%64)) != 0 }

func (s *aclSelector) setBit(id int, on bool) {
	if on {
		s.bits[id/64] |= 1 << (id % 64)
		return
	}
	s.bits[id/64] &^= 1 << (id % 64)
	s.allCommands = false
}

// changePerm allows or denies a command, and its subcommands with it.
func (s *aclSelector) changePerm(c *aclCmd, allow bool) {
	s.setBit(c.id, allow)
	delete(s.firstArgs, c.id)
	for _, sub := range c.subs {
		s.setBit(sub.id, allow)
	}
}

// changeCategory allows or denies every command of a category.
func (s *aclSelector) changeCategory(cat uint32, allow bool) {
	for _, c := range aclCommands().top {
		if c.cats&cat != 0 {
			s.changePerm(c, allow)
		}
		for _, sub := range c.subs {
			if sub.cats&cat != 0 {
				s.changePerm(sub, allow)
			}
		}
	}
}

// updateRules records a command rule: any earlier rule for the same
// command (or one of its subcommands) is dropped, and this one appended.
func (s *aclSelector) updateRules(rule string, allow bool) {
	rule = strings.ToLower(rule)
	s.rules = slices.DeleteFunc(s.rules, func(r string) bool {
		body := r[1:]
		return body == rule || strings.HasPrefix(body, rule+"|")
	})
	sign := "-"
	if allow {
		sign = "+"
	}
	s.rules = append(s.rules, sign+rule)
}

// hasSpaces is ACLStringHasSpaces: patterns and names keep no blanks.
func hasSpaces(s []byte) bool {
	for _, c := range s {
		switch c {
		case ' ', '\t', '\n', '\v', '\f', '\r', 0:
			return true
		}
	}
	return false
}

// set applies one selector rule (ACLSetSelector).
func (s *aclSelector) set(op []byte) aclErr {
	switch {
	case eqFold(op, "allkeys") || string(op) == "~*":
		s.allKeys, s.keys = true, nil
	case eqFold(op, "resetkeys"):
		s.allKeys, s.keys = false, nil
	case eqFold(op, "allchannels") || string(op) == "&*":
		s.allChannels, s.channels = true, nil
	case eqFold(op, "resetchannels"):
		s.allChannels, s.channels = false, nil
	case eqFold(op, "allcommands") || eqFold(op, "+@all"):
		for i := range s.bits {
			s.bits[i] = ^uint64(0)
		}
		s.allCommands, s.rules, s.firstArgs = true, nil, nil
	case eqFold(op, "nocommands") || eqFold(op, "-@all"):
		s.bits = [aclCommandWords]uint64{}
		s.allCommands, s.rules, s.firstArgs = false, nil, nil
	case len(op) > 0 && (op[0] == '~' || op[0] == '%'):
		return s.addKeyPattern(op)
	case len(op) > 0 && op[0] == '&':
		if s.allChannels {
			return aclErrChannelAfterAll
		}
		if hasSpaces(op[1:]) {
			return aclErrSyntax
		}
		if !slices.ContainsFunc(s.channels, func(p []byte) bool { return string(p) == string(op[1:]) }) {
			s.channels = append(s.channels, slices.Clone(op[1:]))
		}
		s.allChannels = false
	case len(op) > 0 && op[0] == '+' && (len(op) < 2 || op[1] != '@'):
		return s.allowCommand(string(op[1:]))
	case len(op) > 0 && op[0] == '-' && (len(op) < 2 || op[1] != '@'):
		c := aclCommands().lookup(string(op[1:]))
		if c == nil {
			return aclErrUnknown
		}
		s.changePerm(c, false)
		s.updateRules(c.name, false)
	case len(op) > 1 && (op[0] == '+' || op[0] == '-') && op[1] == '@':
		cat := aclCategory(string(op[2:]))
		if cat == 0 {
			return aclErrUnknown
		}
		s.updateRules(string(op[1:]), op[0] == '+')
		s.changeCategory(cat, op[0] == '+')
	default:
		return aclErrSyntax
	}
	return aclOK
}

// addKeyPattern is ~pattern, %R~pattern, %W~pattern, %RW~pattern.
func (s *aclSelector) addKeyPattern(op []byte) aclErr {
	if s.allKeys {
		return aclErrKeyAfterAll
	}
	var perm uint8
	off := 1
	if op[0] == '%' {
		for ; off < len(op); off++ {
			c := op[off]
			if c == 'r' || c == 'R' {
				if perm&aclPermRead != 0 {
					return aclErrSyntax
				}
				perm |= aclPermRead
			} else if c == 'w' || c == 'W' {
				if perm&aclPermWrite != 0 {
					return aclErrSyntax
				}
				perm |= aclPermWrite
			} else if c == '~' && perm != 0 {
				off++
				break
			} else {
				return aclErrSyntax
			}
		}
	} else {
		perm = aclPermRW
	}
	pat := op[off:]
	if hasSpaces(pat) {
		return aclErrSyntax
	}
	for i := range s.keys {
		if string(s.keys[i].pat) == string(pat) {
			s.keys[i].perm |= perm
			s.allKeys = false
			return aclOK
		}
	}
	s.keys = append(s.keys, aclPattern{pat: slices.Clone(pat), perm: perm})
	s.allKeys = false
	return aclOK
}

// allowCommand is +command, +command|subcommand and +command|first-arg.
func (s *aclSelector) allowCommand(name string) aclErr {
	reg := aclCommands()
	i := strings.LastIndexByte(name, '|')
	if i < 0 {
		c := reg.lookup(name)
		if c == nil {
			return aclErrUnknown
		}
		s.changePerm(c, true)
		s.updateRules(c.name, true)
		return aclOK
	}
	base, sub := name[:i], name[i+1:]
	c := reg.lookup(base)
	switch {
	case c == nil:
		return aclErrUnknown
	case c.parent != nil:
		return aclErrFirstArgSub
	case sub == "":
		return aclErrSyntax
	}
	if c.subs != nil {
		sc := reg.lookup(name)
		if sc == nil {
			return aclErrUnknown
		}
		s.changePerm(sc, true)
	} else {
		// +select|0: SELECT allowed with that first argument only.
		// Redis deprecates it but still accepts it.
		if s.firstArgs == nil {
			s.firstArgs = map[int][]string{}
		}
		if !slices.ContainsFunc(s.firstArgs[c.id], func(a string) bool { return strings.EqualFold(a, sub) }) {
			s.firstArgs[c.id] = append(s.firstArgs[c.id], sub)
		}
	}
	s.updateRules(name, true)
	return aclOK
}

// describeCommands is the selector's command rules as ACL SETUSER takes
// them: +@all or -@all, then the rules in the order given.
func (s *aclSelector) describeCommands() string {
	var b strings.Builder
	if s.bit(aclFutureBit) {
		b.WriteString("+@all")
	} else {
		b.WriteString("-@all")
	}
	for _, r := range s.rules {
		b.WriteByte(' ')
		b.WriteString(r)
	}
	return b.String()
}

func (p aclPattern) String() string {
	switch p.perm {
	case aclPermRead:
		return "%R~" + string(p.pat)
	case aclPermWrite:
		return "%W~" + string(p.pat)
	}
	return "~" + string(p.pat)
}

// describeKeys and describeChannels are ACL GETUSER's "keys" and
// "channels" fields.
func (s *aclSelector) describeKeys() string {
	if s.allKeys {
		return "~*"
	}
	parts := make([]string, len(s.keys))
	for i, p := range s.keys {
		parts[i] = p.String()
	}
	return strings.Join(parts, " ")
}

func (s *aclSelector) describeChannels() string {
	if s.allChannels {
		return "&*"
	}
	parts := make([]string, len(s.channels))
	for i, p := range s.channels {
		parts[i] = "&" + string(p)
	}
	return strings.Join(parts, " ")
}

// describe is the selector in ACL LIST's words (ACLDescribeSelector).
func (s *aclSelector) describe() string {
	var b strings.Builder
	if s.allKeys {
		b.WriteString("~* ")
	} else {
		for _, p := range s.keys {
			b.WriteString(p.String())
			b.WriteByte(' ')
		}
	}
	if s.allChannels {
		b.WriteString("&* ")
	} else {
		b.WriteString("resetchannels ")
		for _, p := range s.channels {
			b.WriteByte('&')
			b.Write(p)
			b.WriteByte(' ')
		}
	}
	b.WriteString(s.describeCommands())
	return b.String()
}

// aclUser is one user. Published users are never changed: a change
// builds a new one (clone) and the node swaps it in.
type aclUser struct {
	name         string
	on           bool
	nopass       bool
	sanitize     bool // sanitize-payload
	skipSanitize bool // skip-sanitize-payload
	passwords    []string
	selectors    []*aclSelector // [0] is the root selector
	// unrestricted: some selector allows every command, key and channel;
	// the check then costs nothing more.
	unrestricted bool
}

// newACLUser is a new user as ACL SETUSER creates it: off, no password,
// no permissions (Redis 7.2: sanitize-payload set).
func newACLUser(name string) *aclUser {
	return &aclUser{name: name, sanitize: true, selectors: []*aclSelector{{}}}
}

// newDefaultUser is Redis's default user: on, nopass, +@all ~* &*.
func newDefaultUser() *aclUser {
	u := newACLUser("default")
	for _, op := range []string{"+@all", "~*", "&*", "on", "nopass"} {
		u.set([]byte(op))
	}
	u.finish()
	return u
}

func (u *aclUser) clone() *aclUser {
	o := *u
	o.passwords = slices.Clone(u.passwords)
	o.selectors = make([]*aclSelector, len(u.selectors))
	for i, s := range u.selectors {
		o.selectors[i] = s.clone()
	}
	return &o
}

// finish computes what the check reads once the user is complete.
func (u *aclUser) finish() {
	u.unrestricted = false
	for _, s := range u.selectors {
		if s.allCommands && s.allKeys && s.allChannels {
			u.unrestricted = true
		}
	}
}

// aclHashPassword is Redis's stored form of a password: SHA-256, hex.
func aclHashPassword(pass []byte) string {
	sum := sha256.Sum256(pass)
	return hex.EncodeToString(sum[:])
}

func validPasswordHash(h []byte) bool {
	if len(h) != sha256.Size*2 {
		return false
	}
	for _, c := range h {
		if (c < 'a' || c > 'f') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// set applies one rule to the user (ACLSetUser). An empty rule does
// nothing.
func (u *aclUser) set(op []byte) aclErr {
	if len(op) == 0 {
		return aclOK
	}
	switch {
	case eqFold(op, "on"):
		u.on = true
	case eqFold(op, "off"):
		u.on = false
	case eqFold(op, "skip-sanitize-payload"):
		u.skipSanitize, u.sanitize = true, false
	case eqFold(op, "sanitize-payload"):
		u.skipSanitize, u.sanitize = false, true
	case eqFold(op, "nopass"):
		u.nopass, u.passwords = true, nil
	case eqFold(op, "resetpass"):
		u.nopass, u.passwords = false, nil
	case op[0] == '>' || op[0] == '#':
		var h string
		if op[0] == '>' {
			h = aclHashPassword(op[1:])
		} else {
			if !validPasswordHash(op[1:]) {
				return aclErrBadHash
			}
			h = string(op[1:])
		}
		if !slices.Contains(u.passwords, h) {
			u.passwords = append(u.passwords, h)
		}
		u.nopass = false
	case op[0] == '<' || op[0] == '!':
		var h string
		if op[0] == '<' {
			h = aclHashPassword(op[1:])
		} else {
			if !validPasswordHash(op[1:]) {
				return aclErrBadHash
			}
			h = string(op[1:])
		}
		i := slices.Index(u.passwords, h)
		if i < 0 {
			return aclErrNoSuchPass
		}
		u.passwords = slices.Delete(u.passwords, i, i+1)
	case op[0] == '(' && op[len(op)-1] == ')':
		s := &aclSelector{}
		for _, sop := range splitArgs(string(op[1 : len(op)-1])) {
			if e := s.set([]byte(sop)); e != aclOK {
				return e
			}
		}
		u.selectors = append(u.selectors, s)
	case eqFold(op, "clearselectors"):
		u.selectors = u.selectors[:1]
	case eqFold(op, "reset"):
		for _, r := range []string{"resetpass", "resetkeys", "resetchannels", "off", "sanitize-payload", "clearselectors", "-@all"} {
			u.set([]byte(r))
		}
	default:
		return u.selectors[0].set(op)
	}
	return aclOK
}

// splitArgs splits a selector's rules as Redis's sdssplitargs does for
// what ACL rules can hold: blanks separate, and double or single quotes
// group (with \" and \' inside).
func splitArgs(s string) []string {
	var out []string
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
		if i >= len(s) {
			break
		}
		var b strings.Builder
		for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
			if q := s[i]; q == '"' || q == '\'' {
				i++
				for i < len(s) && s[i] != q {
					if s[i] == '\\' && i+1 < len(s) && (s[i+1] == q || s[i+1] == '\\') {
						i++
					}
					b.WriteByte(s[i])
					i++
				}
				i++ // the closing quote
				continue
			}
			b.WriteByte(s[i])
			i++
		}
		out = append(out, b.String())
	}
	return out
}

// mergeSelectorArgs joins a selector spread over several arguments
// ("(+get" "~k*)") into one, as Redis does (ACLMergeSelectorArguments).
// bad is the index of an argument opening a selector never closed, or -1.
func mergeSelectorArgs(args [][]byte) (merged [][]byte, bad int) {
	open := -1
	var sel []byte
	for j, op := range args {
		if open < 0 && len(op) > 0 && op[0] == '(' && op[len(op)-1] != ')' {
			sel, open = slices.Clone(op), j
			continue
		}
		if open >= 0 {
			sel = append(append(sel, ' '), op...)
			if len(op) > 0 && op[len(op)-1] == ')' {
				merged, open = append(merged, sel), -1
			}
			continue
		}
		merged = append(merged, op)
	}
	if open >= 0 {
		return nil, open
	}
	return merged, -1
}

// flagNames are the user's flags in Redis's order (ACLUserFlags).
func (u *aclUser) flagNames() []string {
	var out []string
	if u.on {
		out = append(out, "on")
	} else {
		out = append(out, "off")
	}
	if u.nopass {
		out = append(out, "nopass")
	}
	if u.skipSanitize {
		out = append(out, "skip-sanitize-payload")
	}
	if u.sanitize {
		out = append(out, "sanitize-payload")
	}
	return out
}

// describe is the user in ACL LIST's and the aclfile's words, after
// "user <name> " (ACLDescribeUser).
func (u *aclUser) describe() string {
	var b strings.Builder
	for _, f := range u.flagNames() {
		b.WriteString(f)
		b.WriteByte(' ')
	}
	for _, p := range u.passwords {
		b.WriteByte('#')
		b.WriteString(p)
		b.WriteByte(' ')
	}
	for i, s := range u.selectors {
		if i == 0 {
			b.WriteString(s.describe())
		} else {
			b.WriteString(" (" + s.describe() + ")")
		}
	}
	return b.String()
}

// checkPassword reports whether pass is one of the user's passwords (any
// password for a nopass user). Disabled users never match. Each stored
// hash is compared in constant time.
func (u *aclUser) checkPassword(pass []byte) bool {
	if !u.on {
		return false
	}
	if u.nopass {
		return true
	}
	h := aclHashPassword(pass)
	ok := false
	for _, p := range u.passwords {
		if subtle.ConstantTimeCompare([]byte(h), []byte(p)) == 1 {
			ok = true
		}
	}
	return ok
}

// Results of the check, in Redis's order of relevance (ACL_DENIED_*).
type aclResult int

const (
	aclAllowed aclResult = iota
	aclDeniedCmd
	aclDeniedKey
	aclDeniedAuth
	aclDeniedChannel
)

// check decides whether the user may run argv as command c: the first
// selector that allows it wins; otherwise the most relevant refusal (a
// command refusal below a key, below a channel; the last argument among
// equals), with the position of the key or channel refused (0 for the
// command), as Redis's ACLCheckAllUserCommandPerm.
func (u *aclUser) check(c *aclCmd, argv [][]byte) (aclResult, int) {
	res, pos := aclDeniedCmd, 0
	for _, s := range u.selectors {
		r, p := s.check(c, argv)
		if r == aclAllowed {
			return aclAllowed, 0
		}
		if r > res || r == res && p > pos {
			res, pos = r, p
		}
	}
	return res, pos
}

func (s *aclSelector) check(c *aclCmd, argv [][]byte) (aclResult, int) {
	if !s.allCommands && !c.noAuth && !s.bit(c.id) {
		args := s.firstArgs[c.id]
		idx := 1
		if c.parent != nil {
			idx = 2
		}
		if len(args) == 0 || idx >= len(argv) ||
			!slices.ContainsFunc(args, func(a string) bool { return eqFold(argv[idx], a) }) {
			return aclDeniedCmd, 0
		}
	}
	if !s.allKeys && c.keys != aclKeysNone {
		pos := 0
		visitACLKeys(c, argv, func(i int, perm uint8) bool {
			if !s.keyAllowed(argv[i], perm) {
				pos = i
				return false
			}
			return true
		})
		if pos > 0 {
			return aclDeniedKey, pos
		}
	}
	if !s.allChannels && c.chans != aclChanNone {
		first, last := 1, len(argv)-1
		if c.chans == aclChanFirst {
			last = 1
		}
		for i := first; i <= last && i < len(argv); i++ {
			if !s.channelAllowed(argv[i], c.chans == aclChanPatterns) {
				return aclDeniedChannel, i
			}
		}
	}
	return aclAllowed, 0
}

func (s *aclSelector) keyAllowed(key []byte, need uint8) bool {
	for _, p := range s.keys {
		if p.perm&need == need && engine.GlobMatch(p.pat, key) {
			return true
		}
	}
	return false
}

// channelAllowed: a channel is matched against the patterns as a glob; a
// pattern being subscribed to (PSUBSCRIBE) only by equal text.
func (s *aclSelector) channelAllowed(ch []byte, isPattern bool) bool {
	for _, p := range s.channels {
		if isPattern && string(p) == string(ch) || !isPattern && engine.GlobMatch(p, ch) {
			return true
		}
	}
	return false
}

// visitACLKeys calls visit with the position and needed permission of
// each key argv names, until visit returns false. argv has passed the
// arity check.
func visitACLKeys(c *aclCmd, argv [][]byte, visit func(pos int, perm uint8) bool) {
	switch c.keys {
	case aclKeysAll:
		for i := 1; i < len(argv); i++ {
			if !visit(i, 0) {
				return
			}
		}
	case aclKeysFcall:
		if len(argv) < 3 {
			return
		}
		n, ok := parseFcallNumKeys(argv[2], len(argv)-3)
		if !ok {
			return
		}
		for i := 3; i < 3+n; i++ {
			if !visit(i, c.perms[0]) {
				return
			}
		}
	case aclKeysEngine:
		ec := c.engine
		last := ec.LastKey
		if last < 0 {
			last += len(argv)
		}
		step := max(ec.Step, 1)
		perm := c.perms[0]
		if ec.Name == "set" {
			for _, a := range argv[3:] {
				if eqFold(a, "get") {
					perm = aclPermRW
				}
			}
		}
		if ec.MovableKeys() {
			// A key count decides where the keys are (ZUNIONSTORE,
			// LMPOP, SINTERCARD, ...): the engine finds them.
			for k, i := range ec.Keys(argv) {
				p := perm
				if k > 0 && len(c.perms) > 1 {
					p = c.perms[1]
				}
				if !visit(i, p) {
					return
				}
			}
			return
		}
		for i, k := ec.FirstKey, 0; i <= last && i < len(argv); i, k = i+step, k+1 {
			p := perm
			if k > 0 && len(c.perms) > 1 {
				p = c.perms[1]
			}
			if !visit(i, p) {
				return
			}
		}
	}
}

// parseFcallNumKeys reads FCALL's numkeys; false when it is not a count
// of the arguments that follow (FCALL then answers the error itself).
func parseFcallNumKeys(b []byte, rest int) (int, bool) {
	n := 0
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= rest
}
