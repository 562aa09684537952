package node

import (
	"strings"

	"github.com/keel-db/keel/resp"
)

// commandDoc is what COMMAND DOCS reports. The arguments are written once,
// in the compact syntax of Redis's documentation ("key [EX seconds|PX
// milliseconds] [NX|XX]"), and converted to Redis 7's argument maps, which
// redis-cli turns into its typing hints.
type commandDoc struct {
	summary, since, group, complexity string
	syntax                            string
}

func writeCommandDoc(w *resp.Writer, d commandDoc, subs []subcommand) {
	n := 4
	args := parseSyntax(d.syntax)
	if len(args) > 0 {
		n++
	}
	if len(subs) > 0 {
		n++
	}
	group := d.group
	if group == "" {
		group = "generic"
	}
	w.WriteMap(n)
	w.WriteBulkString("summary")
	w.WriteBulkString(d.summary)
	w.WriteBulkString("since")
	w.WriteBulkString(d.since)
	w.WriteBulkString("group")
	w.WriteBulkString(group)
	w.WriteBulkString("complexity")
	w.WriteBulkString(d.complexity)
	if len(args) > 0 {
		w.WriteBulkString("arguments")
		writeArgs(w, args)
	}
	if len(subs) > 0 {
		w.WriteBulkString("subcommands")
		w.WriteMap(len(subs))
		for _, s := range subs {
			w.WriteBulkString(s.name)
			sd := subDocs[s.name]
			if sd.group == "" {
				sd.group = group
			}
			writeCommandDoc(w, sd, nil)
		}
	}
}

// docArg is one argument in COMMAND DOCS's shape.
type docArg struct {
	name, typ, token string
	optional, multi  bool
	args             []docArg
}

func writeArgs(w *resp.Writer, args []docArg) {
	w.WriteArray(len(args))
	for _, a := range args {
		n := 3
		if a.token != "" {
			n++
		}
		if a.optional || a.multi {
			n++
		}
		if len(a.args) > 0 {
			n++
		}
		w.WriteMap(n)
		w.WriteBulkString("name")
		w.WriteBulkString(a.name)
		w.WriteBulkString("type")
		w.WriteBulkString(a.typ)
		w.WriteBulkString("display_text")
		w.WriteBulkString(a.name)
		if a.token != "" {
			w.WriteBulkString("token")
			w.WriteBulkString(a.token)
		}
		if a.optional || a.multi {
			w.WriteBulkString("flags")
			var flags []string
			if a.optional {
				flags = append(flags, "optional")
			}
			if a.multi {
				flags = append(flags, "multiple")
			}
			w.WriteSet(len(flags))
			for _, f := range flags {
				w.WriteSimple(f)
			}
		}
		if len(a.args) > 0 {
			w.WriteBulkString("arguments")
			writeArgs(w, a.args)
		}
	}
}

func tokenizeSyntax(s string) []string {
	var toks []string
	cur := strings.Builder{}
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ':
			flush()
		case '[', ']', '|':
			flush()
			toks = append(toks, string(c))
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return toks
}

// parseSyntax turns "key [EX seconds|PX milliseconds] [GET] value ..." into
// arguments: UPPER words are tokens (alone: pure tokens; before a lower
// word: that value's token), lower words are values, [..] is optional, |
// separates alternatives, and "..." repeats the element before it.
func parseSyntax(s string) []docArg {
	toks := tokenizeSyntax(s)
	p := 0
	var parseAlts func() []docArg
	parseSeq := func() []docArg {
		var seq []docArg
		for p < len(toks) && toks[p] != "]" && toks[p] != "|" {
			t := toks[p]
			p++
			switch {
			case t == "[":
				alts := parseAlts()
				if p < len(toks) && toks[p] == "]" {
					p++
				}
				var a docArg
				if len(alts) == 1 {
					a = alts[0]
				} else {
					a = docArg{name: altName(alts), typ: "oneof", args: alts}
				}
				a.optional = true
				seq = append(seq, a)
			case t == "...":
				if len(seq) > 0 {
					seq[len(seq)-1].multi = true
				}
			case strings.ToUpper(t) == t && strings.ToLower(t) != t:
				if p < len(toks) && isValueWord(toks[p]) {
					v := toks[p]
					p++
					seq = append(seq, docArg{name: v, typ: valueType(v), token: t})
				} else {
					seq = append(seq, docArg{name: strings.ToLower(t), typ: "pure-token", token: t})
				}
			default:
				seq = append(seq, docArg{name: t, typ: valueType(t)})
			}
		}
		return seq
	}
	parseAlts = func() []docArg {
		var alts []docArg
		for {
			seq := parseSeq()
			switch len(seq) {
			case 0:
			case 1:
				alts = append(alts, seq[0])
			default:
				alts = append(alts, docArg{name: seq[0].name, typ: "block", args: seq})
			}
			if p < len(toks) && toks[p] == "|" {
				p++
				continue
			}
			return alts
		}
	}
	top := parseAlts()
	if len(top) > 1 {
		return []docArg{{name: altName(top), typ: "oneof", args: top}}
	}
	if len(top) == 1 && top[0].typ == "block" && !top[0].optional {
		return top[0].args
	}
	return top
}

func isValueWord(t string) bool {
	return t != "[" && t != "]" && t != "|" && t != "..." && strings.ToLower(t) == t
}

func valueType(name string) string {
	switch {
	case name == "key" || strings.HasSuffix(name, "key") && !strings.Contains(name, "-"):
		return "key"
	case name == "pattern":
		return "pattern"
	case strings.HasPrefix(name, "unix-time"):
		return "unix-time"
	case name == "seconds" || name == "milliseconds" || name == "count" || name == "increment" ||
		name == "decrement" || name == "offset" || name == "start" || name == "end" || name == "index" ||
		name == "cursor" || name == "db" || name == "port" || name == "protover" || name == "client-id":
		return "integer"
	}
	return "string"
}

func altName(alts []docArg) string {
	if len(alts) > 0 && alts[0].token != "" && alts[0].typ != "pure-token" {
		return "expiration"
	}
	return "condition"
}

// serverDocs documents the connection commands.
var serverDocs = map[string]commandDoc{
	"ping":     {summary: "Returns the server's liveliness response.", since: "1.0.0", group: "connection", complexity: "O(1)", syntax: "[message]"},
	"echo":     {summary: "Returns the given string.", since: "1.0.0", group: "connection", complexity: "O(1)", syntax: "message"},
	"hello":    {summary: "Handshakes with the Redis server.", since: "6.0.0", group: "connection", complexity: "O(1)", syntax: "[protover [AUTH username password] [SETNAME clientname]]"},
	"auth":     {summary: "Authenticates the connection.", since: "1.0.0", group: "connection", complexity: "O(N) where N is the number of passwords defined for the user", syntax: "[username] password"},
	"select":   {summary: "Changes the selected database.", since: "1.0.0", group: "connection", complexity: "O(1)", syntax: "index"},
	"quit":     {summary: "Closes the connection.", since: "1.0.0", group: "connection", complexity: "O(1)"},
	"time":     {summary: "Returns the server time.", since: "2.6.0", group: "server", complexity: "O(1)"},
	"shutdown": {summary: "Synchronously saves the database(s) to disk and shuts down the Redis server.", since: "1.0.0", group: "server", complexity: "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)", syntax: "[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]"},
	"client":   {summary: "A container for client connection commands.", since: "2.4.0", group: "connection", complexity: "Depends on subcommand."},
	"command":  {summary: "Returns detailed information about all commands.", since: "2.8.13", group: "server", complexity: "O(N) where N is the total number of Redis commands"},
	"info":     {summary: "Returns information and statistics about the server.", since: "1.0.0", group: "server", complexity: "O(1)", syntax: "[section ...]"},
	"config":   {summary: "A container for server configuration commands.", since: "2.0.0", group: "server", complexity: "Depends on subcommand."},
}

var subDocs = map[string]commandDoc{
	"client|id":        {summary: "Returns the unique client ID of the connection.", since: "5.0.0", complexity: "O(1)"},
	"client|setname":   {summary: "Sets the connection name.", since: "2.6.9", complexity: "O(1)", syntax: "connection-name"},
	"client|getname":   {summary: "Returns the name of the connection.", since: "2.6.9", complexity: "O(1)"},
	"client|list":      {summary: "Lists open connections.", since: "2.4.0", complexity: "O(N) where N is the number of client connections", syntax: "[TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id ...]"},
	"client|info":      {summary: "Returns information about the connection.", since: "6.2.0", complexity: "O(1)"},
	"client|kill":      {summary: "Terminates open connections.", since: "2.4.0", complexity: "O(N) where N is the number of client connections", syntax: "ip:port|[ID client-id] [ADDR ip:port] [LADDR ip:port] [SKIPME yes/no]"},
	"client|setinfo":   {summary: "Sets information specific to the client or connection.", since: "7.2.0", complexity: "O(1)", syntax: "LIB-NAME libname|LIB-VER libver"},
	"client|pause":     {summary: "Suspends commands processing.", since: "3.0.0", complexity: "O(1)", syntax: "timeout [WRITE|ALL]"},
	"client|unpause":   {summary: "Resumes processing commands from paused clients.", since: "6.2.0", complexity: "O(N) Where N is the number of paused clients"},
	"client|reply":     {summary: "Instructs the server whether to reply to commands.", since: "3.2.0", complexity: "O(1)", syntax: "ON|OFF|SKIP"},
	"client|no-evict":  {summary: "Sets the client eviction mode of the connection.", since: "7.0.0", complexity: "O(1)", syntax: "ON|OFF"},
	"client|help":      {summary: "Returns helpful text about the different subcommands.", since: "5.0.0", complexity: "O(1)"},
	"command|count":    {summary: "Returns a count of commands.", since: "2.8.13", complexity: "O(1)"},
	"command|docs":     {summary: "Returns documentary information about one, multiple or all commands.", since: "7.0.0", complexity: "O(N) where N is the number of commands to look up", syntax: "[command-name ...]"},
	"command|info":     {summary: "Returns information about one, multiple or all commands.", since: "2.8.13", complexity: "O(N) where N is the number of commands to look up", syntax: "[command-name ...]"},
	"command|list":     {summary: "Returns a list of command names.", since: "7.0.0", complexity: "O(N) where N is the total number of Redis commands", syntax: "[FILTERBY MODULE module-name|ACLCAT category|PATTERN pattern]"},
	"command|help":     {summary: "Returns helpful text about the different subcommands.", since: "5.0.0", complexity: "O(1)"},
	"config|get":       {summary: "Returns the effective values of configuration parameters.", since: "2.0.0", complexity: "O(N) when N is the number of configuration parameters provided", syntax: "parameter ..."},
	"config|set":       {summary: "Sets configuration parameters in-flight.", since: "2.0.0", complexity: "O(N) when N is the number of configuration parameters provided", syntax: "parameter value ..."},
	"config|rewrite":   {summary: "Persists the effective configuration to file.", since: "2.8.0", complexity: "O(1)"},
	"config|resetstat": {summary: "Resets the server's statistics.", since: "2.0.0", complexity: "O(1)"},
	"config|help":      {summary: "Returns helpful text about the different subcommands.", since: "5.0.0", complexity: "O(1)"},
}

// engineDocs documents the keyspace commands of the engine's table.
var engineDocs = map[string]commandDoc{
	"get":         {summary: "Returns the string value of a key.", since: "1.0.0", group: "string", complexity: "O(1)", syntax: "key"},
	"set":         {summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", since: "1.0.0", group: "string", complexity: "O(1)", syntax: "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]"},
	"mget":        {summary: "Atomically returns the string values of one or more keys.", since: "1.0.0", group: "string", complexity: "O(N) where N is the number of keys to retrieve.", syntax: "key ..."},
	"mset":        {summary: "Atomically creates or modifies the string values of one or more keys.", since: "1.0.1", group: "string", complexity: "O(N) where N is the number of keys to set.", syntax: "key value ..."},
	"msetnx":      {summary: "Atomically modifies the string values of one or more keys only when all keys don't exist.", since: "1.0.1", group: "string", complexity: "O(N) where N is the number of keys to set.", syntax: "key value ..."},
	"setnx":       {summary: "Set the string value of a key only when the key doesn't exist.", since: "1.0.0", group: "string", complexity: "O(1)", syntax: "key value"},
	"setex":       {summary: "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", since: "2.0.0", group: "string", complexity: "O(1)", syntax: "key seconds value"},
	"psetex":      {summary: "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", since: "2.6.0", group: "string", complexity: "O(1)", syntax: "key milliseconds value"},
	"getset":      {summary: "Returns the previous string value of a key after setting it to a new value.", since: "1.0.0", group: "string", complexity: "O(1)", syntax: "key value"},
	"getdel":      {summary: "Returns the string value of a key after deleting the key.", since: "6.2.0", group: "string", complexity: "O(1)", syntax: "key"},
	"getex":       {summary: "Returns the string value of a key after setting its expiration time.", since: "6.2.0", group: "string", complexity: "O(1)", syntax: "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]"},
	"append":      {summary: "Appends a string to the value of a key. Creates the key if it doesn't exist.", since: "2.0.0", group: "string", complexity: "O(1)", syntax: "key value"},
	"strlen":      {summary: "Returns the length of a string value.", since: "2.2.0", group: "string", complexity: "O(1)", syntax: "key"},
	"getrange":    {summary: "Returns a substring of the string stored at a key.", since: "2.4.0", group: "string", complexity: "O(N) where N is the length of the returned string.", syntax: "key start end"},
	"setrange":    {summary: "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", since: "2.2.0", group: "string", complexity: "O(1)", syntax: "key offset value"},
	"incr":        {summary: "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", since: "1.0.0", group: "string", complexity: "O(1)", syntax: "key"},
	"decr":        {summary: "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", since: "1.0.0", group: "string", complexity: "O(1)", syntax: "key"},
	"incrby":      {summary: "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", since: "1.0.0", group: "string", complexity: "O(1)", syntax: "key increment"},
	"decrby":      {summary: "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", since: "1.0.0", group: "string", complexity: "O(1)", syntax: "key decrement"},
	"incrbyfloat": {summary: "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", since: "2.6.0", group: "string", complexity: "O(1)", syntax: "key increment"},
	"del":         {summary: "Deletes one or more keys.", since: "1.0.0", group: "generic", complexity: "O(N) where N is the number of keys that will be removed.", syntax: "key ..."},
	"unlink":      {summary: "Asynchronously deletes one or more keys.", since: "4.0.0", group: "generic", complexity: "O(1) for each key removed regardless of its size.", syntax: "key ..."},
	"exists":      {summary: "Determines whether one or more keys exist.", since: "1.0.0", group: "generic", complexity: "O(N) where N is the number of keys to check.", syntax: "key ..."},
	"type":        {summary: "Determines the type of value stored at a key.", since: "1.0.0", group: "generic", complexity: "O(1)", syntax: "key"},
	"rename":      {summary: "Renames a key and overwrites the destination.", since: "1.0.0", group: "generic", complexity: "O(1)", syntax: "key newkey"},
	"renamenx":    {summary: "Renames a key only when the target key name doesn't exist.", since: "1.0.0", group: "generic", complexity: "O(1)", syntax: "key newkey"},
	"copy":        {summary: "Copies the value of a key to a new key.", since: "6.2.0", group: "generic", complexity: "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.", syntax: "source destination [DB destination-db] [REPLACE]"},
	"keys":        {summary: "Returns all key names that match a pattern.", since: "1.0.0", group: "generic", complexity: "O(N) with N being the number of keys in the database; O(log N + M) for a literal prefix followed by *", syntax: "pattern"},
	"randomkey":   {summary: "Returns a random key name from the database.", since: "1.0.0", group: "generic", complexity: "O(1)"},
	"dbsize":      {summary: "Returns the number of keys in the database.", since: "1.0.0", group: "server", complexity: "O(1)"},
	"touch":       {summary: "Returns the number of existing keys out of those specified after updating the time they were last accessed.", since: "3.2.1", group: "generic", complexity: "O(N) where N is the number of keys that will be touched.", syntax: "key ..."},
	"flushall":    {summary: "Removes all keys from all databases.", since: "1.0.0", group: "server", complexity: "O(N) where N is the total number of keys in all databases", syntax: "[ASYNC|SYNC]"},
	"flushdb":     {summary: "Remove all keys from the current database.", since: "1.0.0", group: "server", complexity: "O(N) where N is the number of keys in the selected database", syntax: "[ASYNC|SYNC]"},
	"expire":      {summary: "Sets the expiration time of a key in seconds.", since: "1.0.0", group: "generic", complexity: "O(1)", syntax: "key seconds [NX|XX|GT|LT]"},
	"pexpire":     {summary: "Sets the expiration time of a key in milliseconds.", since: "2.6.0", group: "generic", complexity: "O(1)", syntax: "key milliseconds [NX|XX|GT|LT]"},
	"expireat":    {summary: "Sets the expiration time of a key to a Unix timestamp.", since: "1.2.0", group: "generic", complexity: "O(1)", syntax: "key unix-time-seconds [NX|XX|GT|LT]"},
	"pexpireat":   {summary: "Sets the expiration time of a key to a Unix milliseconds timestamp.", since: "2.6.0", group: "generic", complexity: "O(1)", syntax: "key unix-time-milliseconds [NX|XX|GT|LT]"},
	"ttl":         {summary: "Returns the expiration time in seconds of a key.", since: "1.0.0", group: "generic", complexity: "O(1)", syntax: "key"},
	"pttl":        {summary: "Returns the expiration time in milliseconds of a key.", since: "2.6.0", group: "generic", complexity: "O(1)", syntax: "key"},
	"expiretime":  {summary: "Returns the expiration time of a key as a Unix timestamp.", since: "7.0.0", group: "generic", complexity: "O(1)", syntax: "key"},
	"pexpiretime": {summary: "Returns the expiration time of a key as a Unix milliseconds timestamp.", since: "7.0.0", group: "generic", complexity: "O(1)", syntax: "key"},
	"persist":     {summary: "Removes the expiration time of a key.", since: "2.2.0", group: "generic", complexity: "O(1)", syntax: "key"},
	"scan":        {summary: "Iterates over the key names in the database.", since: "2.8.0", group: "generic", complexity: "O(log N + M) per call, M the keys returned or skipped", syntax: "cursor [MATCH pattern] [COUNT count] [TYPE type]"},
	"save":        {summary: "Synchronously saves the database(s) to disk.", since: "1.0.0", group: "server", complexity: "O(N) where N is the total number of keys in all databases"},
	"bgsave":      {summary: "Asynchronously saves the database(s) to disk.", since: "1.0.0", group: "server", complexity: "O(N) where N is the total number of keys in all databases", syntax: "[SCHEDULE]"},
	"lastsave":    {summary: "Returns the Unix timestamp of the last successful save to disk.", since: "1.0.0", group: "server", complexity: "O(1)"},
}
