package engine

import (
	"strings"
)

// objectHelp is OBJECT HELP's text, Redis 7.0's.
var objectHelp = []string{
	"ENCODING <key>",
	"    Return the kind of internal representation used in order to store the value",
	"    associated with a <key>.",
	"FREQ <key>",
	"    Return the access frequency index of the <key>. The returned integer is",
	"    proportional to the logarithm of the recent access frequency of the key.",
	"IDLETIME <key>",
	"    Return the idle time of the <key>, that is the approximated number of",
	"    seconds elapsed since the last access to the key.",
	"REFCOUNT <key>",
	"    Return the number of references of the value associated with the specified",
	"    <key>.",
}

// objectSharedRefcount is what Redis reports for its shared small integers.
const objectSharedRefcount = 2147483647

func cmdObject(db *DB, now int64, argv [][]byte, w Writer) {
	sub := strings.ToLower(string(argv[1]))
	if sub == "help" {
		if len(argv) != 2 {
			w.WriteError(errArity("object|help"))
			return
		}
		w.WriteArray(len(objectHelp) + 3)
		w.WriteSimple(strings.ToUpper(string(argv[0])) + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
		for _, l := range objectHelp {
			w.WriteSimple(l)
		}
		w.WriteSimple("HELP")
		w.WriteSimple("    Prints this help.")
		return
	}
	switch sub {
	case "encoding", "refcount", "idletime", "freq":
	default:
		w.WriteError("ERR unknown subcommand '" + string(truncateArg(argv[1], 128)) + "'. Try OBJECT HELP.")
		return
	}
	if len(argv) != 3 {
		w.WriteError(errArity("object|" + sub))
		return
	}
	// OBJECT neither touches the key nor raises keymiss (LOOKUP_NOTOUCH,
	// LOOKUP_NONOTIFY), but an expired key is gone.
	r := db.peek(now, argv[2])
	if r == 0 {
		w.WriteNull()
		return
	}
	switch sub {
	case "encoding":
		if db.typeOf(r) == TypeString {
			w.WriteBulkString(stringEncoding(db.valOf(r), db.rec(r).strEnc))
		} else {
			w.WriteBulkString(encodingName(db.encOf(r)))
		}
	case "refcount":
		// Small integers are Redis's shared objects, unless a limit
		// with an LRU or LFU policy needs each key's own metadata.
		if v := db.valOf(r); db.typeOf(r) == TypeString && db.sharedIntegers() && stringEncoding(v, db.rec(r).strEnc) == "int" {
			if n, _ := parseInt(v); n >= 0 && n < 10000 {
				w.WriteInt(objectSharedRefcount)
				return
			}
		}
		w.WriteInt(1)
	case "idletime":
		if db.acc.lfu {
			w.WriteError("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
			return
		}
		w.WriteInt(int64(idleMillis(db.rec(r).access, now) / lruClockResolution))
	case "freq":
		if !db.acc.lfu {
			w.WriteError("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
			return
		}
		// Decayed as it would be if read now, without being read.
		w.WriteInt(int64(db.lfuDecr(db.rec(r).access, now)))
	}
}

func truncateArg(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func init() {
	register(&Command{Name: "object", Arity: -2, Flags: ReadOnly, FirstKey: 2, LastKey: 2, Step: 1,
		Categories: []string{"@keyspace", "@read", "@slow"}, run: cmdObject})
}
