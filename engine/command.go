package engine

import "sort"

// Flags describe a command to the layers above: whether it must go through
// the log, whether it may run on a read-only replica, and so on.
type Flags uint16

const (
	// Write commands change the keyspace (or may): they are logged and
	// replicated, and replayed on recovery with the same now.
	Write Flags = 1 << iota
	// ReadOnly commands never change the keyspace and may be served
	// without going through the log.
	ReadOnly
	// Fast commands run in O(1) or O(log n).
	Fast
	// DenyOOM commands may grow memory; refused above maxmemory.
	DenyOOM
	// Blocking commands may wait for a key (BLPOP and the like,
	// cmd_block.go); the engine runs them without waiting.
	Blocking
)

// Command is one entry of the engine's command table. Arity and the key
// specification follow Redis's COMMAND INFO conventions: a negative arity
// means "at least -Arity arguments, the name included"; keys are at
// argv[FirstKey], argv[FirstKey+Step], ... up to LastKey (negative counts
// from the end; 0 means no keys).
type Command struct {
	Name     string // lower case
	Arity    int
	Flags    Flags
	FirstKey int
	LastKey  int
	Step     int
	// Tips are Redis ACL categories and hints reported by COMMAND INFO,
	// for example "@string", "@fast".
	Categories []string
	// Doc is what COMMAND DOCS reports (Redis's own text), for the
	// commands the server does not document itself.
	Doc CommandDoc

	run func(db *DB, now int64, argv [][]byte, w Writer)
	// keys finds the keys of a command whose key positions depend on its
	// arguments (Redis's "movablekeys": a numkeys argument, as LMPOP and
	// ZUNIONSTORE have). FirstKey..LastKey then give what Redis's COMMAND
	// INFO reports, which may be fewer keys or none.
	keys func(argv [][]byte) []int
}

// MovableKeys reports whether the command's keys depend on its arguments
// (COMMAND INFO's "movablekeys"): only Keys finds them all.
func (c *Command) MovableKeys() bool { return c.keys != nil }

// CommandDoc is a command's documentation as COMMAND DOCS reports it;
// Syntax is the arguments in the documentation's compact form ("key
// [NX|XX] score member [score member ...]").
type CommandDoc struct {
	Summary, Since, Group, Complexity, Syntax string
}

// serverDocumented are the engine commands server/docs.go documents
// itself (engineDocs); the others carry their Doc here.
var serverDocumented = map[string]struct{}{
	"get": {}, "set": {}, "mget": {}, "mset": {}, "msetnx": {}, "setnx": {}, "setex": {}, "psetex": {}, "getset": {},
	"getdel": {}, "getex": {}, "append": {}, "strlen": {}, "getrange": {}, "setrange": {}, "incr": {}, "decr": {},
	"incrby": {}, "decrby": {}, "incrbyfloat": {}, "del": {}, "unlink": {}, "exists": {}, "type": {}, "rename": {},
	"renamenx": {}, "copy": {}, "keys": {}, "randomkey": {}, "dbsize": {}, "touch": {}, "flushall": {}, "flushdb": {},
	"scan": {}, "expire": {}, "pexpire": {}, "expireat": {}, "pexpireat": {}, "ttl": {}, "pttl": {},
	"expiretime": {}, "pexpiretime": {}, "persist": {},
}

var commandTable = map[string]*Command{}

// cmdIndex is commandTable again, as an open-addressed table that Lookup
// probes with a hash it computes while lower-casing the name: a command
// is looked up four or five times on its way (session, routing, log,
// engine), and the map's string hashing and probing were 6-12% of the
// server's CPU under pipelined collection commands. Filled by register
// (package init only), read-only after.
var cmdIndex [cmdIndexSize]*Command

// cmdIndexSize is a power of two kept at least twice the command count
// (register panics past half full), so probes stay short.
const cmdIndexSize = 1024

// cmdHashStep is one byte of FNV-1a.
func cmdHashStep(h uint32, c byte) uint32 { return (h ^ uint32(c)) * 16777619 }

const cmdHashSeed uint32 = 2166136261

func register(c *Command) {
	if _, dup := commandTable[c.Name]; dup {
		panic("engine: command registered twice: " + c.Name)
	}
	if 2*(len(commandTable)+1) > cmdIndexSize {
		panic("engine: cmdIndexSize too small for the command table")
	}
	commandTable[c.Name] = c
	h := cmdHashSeed
	for i := 0; i < len(c.Name); i++ {
		h = cmdHashStep(h, c.Name[i])
	}
	i := h & (cmdIndexSize - 1)
	for cmdIndex[i] != nil {
		i = (i + 1) & (cmdIndexSize - 1)
	}
	cmdIndex[i] = c
}

func init() {
	for name, d := range commandDocs {
		if c := commandTable[name]; c != nil {
			c.Doc = d
		}
	}
}

// Lookup finds a command by name, case-insensitively, without allocating
// for names up to 32 bytes. It returns nil for commands the engine does
// not implement (connection and server commands live in the server).
func Lookup(name []byte) *Command {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil
	}
	h := cmdHashSeed
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
		h = cmdHashStep(h, c)
	}
	lower := buf[:len(name)]
	for i := h & (cmdIndexSize - 1); ; i = (i + 1) & (cmdIndexSize - 1) {
		c := cmdIndex[i]
		if c == nil || c.Name == string(lower) {
			return c
		}
	}
}

// Commands returns the engine's command table sorted by name.
func Commands() []*Command {
	out := make([]*Command, 0, len(commandTable))
	for _, c := range commandTable {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Keys returns the positions in argv of the command's keys, per its key
// specification. argv must have passed the arity check.
func (c *Command) Keys(argv [][]byte) []int {
	if c.keys != nil {
		return c.keys(argv)
	}
	first, last := c.fixedKeyRange(len(argv))
	var out []int
	for i := first; i <= last; i += c.Step {
		out = append(out, i)
	}
	return out
}

// fixedKeyRange is where argv's keys lie by the command's first and last
// key positions (Keys, for a command whose keys do not move with its
// arguments): positions first..last, every Step; first > last when none.
func (c *Command) fixedKeyRange(argc int) (first, last int) {
	if c.FirstKey <= 0 {
		return 1, 0
	}
	last = c.LastKey
	if last < 0 {
		last += argc
	}
	return c.FirstKey, min(last, argc-1)
}

// ArityOK reports whether argc (name included) satisfies the arity.
func (c *Command) ArityOK(argc int) bool {
	if c.Arity >= 0 {
		return argc == c.Arity
	}
	return argc >= -c.Arity
}
