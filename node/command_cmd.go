package node

import (
	"sort"
	"strings"

	"github.com/keel-db/keel/resp"

	"github.com/keel-db/keel/engine"
)

var commandSubs = []subcommand{
	{name: "command|count", arity: 2, flags: []string{"loading", "stale"}},
	{name: "command|docs", arity: -2, flags: []string{"loading", "stale"}},
	{name: "command|info", arity: -2, flags: []string{"loading", "stale"}},
	{name: "command|list", arity: -2, flags: []string{"loading", "stale"}},
	{name: "command|help", arity: 2, flags: []string{"loading", "stale"}},
}

// cmdEntry is one row of COMMAND's view: an engine command or a server one.
type cmdEntry struct {
	name                    string
	arity                   int
	flags                   []string
	firstKey, lastKey, step int
	categories              []string
	subs                    []subcommand
	doc                     commandDoc
}

func engineFlags(f engine.Flags) []string {
	var out []string
	if f&engine.Write != 0 {
		out = append(out, "write")
	}
	if f&engine.ReadOnly != 0 {
		out = append(out, "readonly")
	}
	if f&engine.DenyOOM != 0 {
		out = append(out, "denyoom")
	}
	if f&engine.Fast != 0 {
		out = append(out, "fast")
	}
	return out
}

// commandTable is every command keel answers, sorted by name.
func commandTable() []cmdEntry {
	var out []cmdEntry
	for _, ec := range engine.Commands() {
		if serverCommands[ec.Name] != nil {
			continue
		}
		doc, ok := engineDocs[ec.Name]
		if !ok {
			d := ec.Doc
			doc = commandDoc{summary: d.Summary, since: d.Since, group: d.Group, complexity: d.Complexity, syntax: d.Syntax}
		}
		flags := engineFlags(ec.Flags)
		if ec.MovableKeys() {
			flags = append(flags, "movablekeys")
		}
		out = append(out, cmdEntry{
			name: ec.Name, arity: ec.Arity, flags: flags,
			firstKey: ec.FirstKey, lastKey: ec.LastKey, step: ec.Step,
			categories: ec.Categories, doc: doc,
		})
	}
	for _, sc := range serverCommands {
		out = append(out, cmdEntry{name: sc.name, arity: sc.arity, flags: sc.flags,
			categories: sc.categories, subs: sc.subs, doc: sc.doc})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func findCommand(table []cmdEntry, name string) *cmdEntry {
	name = strings.ToLower(name)
	i := sort.Search(len(table), func(i int) bool { return table[i].name >= name })
	if i < len(table) && table[i].name == name {
		return &table[i]
	}
	return nil
}

func cmdCommand(c *Session, argv [][]byte) {
	table := commandTable()
	if len(argv) == 1 {
		c.Out.WriteArray(len(table))
		for i := range table {
			writeCommandInfo(c.Out, &table[i])
		}
		return
	}
	sub := strings.ToLower(string(argv[1]))
	if !subArityOK(c, commandSubs, "command|"+sub, len(argv)) {
		return
	}
	switch sub {
	case "count":
		c.Out.WriteInt(int64(len(table)))
	case "list":
		var names []string
		switch {
		case len(argv) == 2:
			for _, e := range table {
				names = append(names, e.name)
			}
		case len(argv) == 5 && eqFold(argv[2], "filterby"):
			val := string(argv[4])
			for _, e := range table {
				switch {
				case eqFold(argv[3], "pattern"):
					if engine.GlobMatch([]byte(strings.ToLower(val)), []byte(e.name)) {
						names = append(names, e.name)
					}
				case eqFold(argv[3], "aclcat"):
					for _, cat := range e.categories {
						if strings.EqualFold(strings.TrimPrefix(cat, "@"), val) {
							names = append(names, e.name)
							break
						}
					}
				case eqFold(argv[3], "module"):
				default:
					c.Out.WriteError("ERR syntax error")
					return
				}
			}
		default:
			c.Out.WriteError("ERR syntax error")
			return
		}
		c.Out.WriteArray(len(names))
		for _, n := range names {
			c.Out.WriteBulkString(n)
		}
	case "info":
		if len(argv) == 2 {
			c.Out.WriteArray(len(table))
			for i := range table {
				writeCommandInfo(c.Out, &table[i])
			}
			return
		}
		c.Out.WriteArray(len(argv) - 2)
		for _, a := range argv[2:] {
			if e := findCommand(table, string(a)); e != nil {
				writeCommandInfo(c.Out, e)
			} else {
				c.Out.WriteNullArray()
			}
		}
	case "docs":
		var sel []*cmdEntry
		if len(argv) == 2 {
			for i := range table {
				sel = append(sel, &table[i])
			}
		} else {
			for _, a := range argv[2:] {
				if e := findCommand(table, string(a)); e != nil {
					sel = append(sel, e)
				}
			}
		}
		c.Out.WriteMap(len(sel))
		for _, e := range sel {
			c.Out.WriteBulkString(e.name)
			writeCommandDoc(c.Out, e.doc, e.subs)
		}
	case "help":
		help := []string{
			"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"(no subcommand)", "    Return details about all commands.",
			"COUNT", "    Return the total number of commands in this server.",
			"LIST", "    Return a list of all commands in this server.",
			"INFO [<command-name> ...]", "    Return details about multiple commands.",
			"DOCS [<command-name> ...]", "    Return documentation details about multiple commands.",
			"HELP", "    Prints this help.",
		}
		c.Out.WriteArray(len(help))
		for _, h := range help {
			c.Out.WriteSimple(h)
		}
	default:
		unknownSubcommand(c, "command", argv[1])
	}
}

// writeCommandInfo writes Redis 7's ten-element COMMAND INFO entry.
func writeCommandInfo(w *resp.Writer, e *cmdEntry) {
	w.WriteArray(10)
	w.WriteBulkString(e.name)
	w.WriteInt(int64(e.arity))
	w.WriteSet(len(e.flags))
	for _, f := range e.flags {
		w.WriteSimple(f)
	}
	w.WriteInt(int64(e.firstKey))
	w.WriteInt(int64(e.lastKey))
	w.WriteInt(int64(e.step))
	w.WriteSet(len(e.categories))
	for _, cat := range e.categories {
		w.WriteSimple(cat)
	}
	w.WriteSet(0) // tips
	writeKeySpecs(w, e)
	w.WriteArray(len(e.subs))
	for _, s := range e.subs {
		w.WriteArray(10)
		w.WriteBulkString(s.name)
		w.WriteInt(int64(s.arity))
		w.WriteSet(len(s.flags))
		for _, f := range s.flags {
			w.WriteSimple(f)
		}
		w.WriteInt(0)
		w.WriteInt(0)
		w.WriteInt(0)
		w.WriteSet(0)
		w.WriteSet(0)
		w.WriteArray(0)
		w.WriteArray(0)
	}
}

// writeKeySpecs describes the key positions as one Redis 7 key spec
// (begin_search index, find_keys range).
func writeKeySpecs(w *resp.Writer, e *cmdEntry) {
	if e.firstKey == 0 {
		w.WriteArray(0)
		return
	}
	w.WriteArray(1)
	w.WriteMap(3)
	w.WriteBulkString("flags")
	w.WriteSet(0)
	w.WriteBulkString("begin_search")
	w.WriteMap(2)
	w.WriteBulkString("type")
	w.WriteBulkString("index")
	w.WriteBulkString("spec")
	w.WriteMap(1)
	w.WriteBulkString("index")
	w.WriteInt(int64(e.firstKey))
	w.WriteBulkString("find_keys")
	w.WriteMap(2)
	w.WriteBulkString("type")
	w.WriteBulkString("range")
	w.WriteBulkString("spec")
	w.WriteMap(3)
	last := e.lastKey
	if last > 0 {
		last -= e.firstKey
	}
	w.WriteBulkString("lastkey")
	w.WriteInt(int64(last))
	w.WriteBulkString("keystep")
	w.WriteInt(int64(e.step))
	w.WriteBulkString("limit")
	w.WriteInt(0)
}
