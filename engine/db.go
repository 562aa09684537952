package engine

import (
	"strings"

	"github.com/keel-db/keel/seam"
)

// Options configure a DB.
type Options struct {
	// Rand serves commands that pick at random (RANDOMKEY). Required.
	Rand seam.Rand
}

// DB is one keyspace. It is not safe for concurrent use: one owner applies
// commands to it at a time (the shard's executor).
type DB struct {
	opts Options
	m    map[string][]byte // PLACEHOLDER: replaced by the point + ordered index
}

// New returns an empty keyspace.
func New(opts Options) *DB {
	return &DB{opts: opts, m: map[string][]byte{}}
}

// Exec runs one command. now is Unix milliseconds; for a logged command it
// is the time recorded in the log entry, so replay reproduces it exactly.
// It checks the name and arity and writes exactly one reply to w.
func (db *DB) Exec(now int64, argv [][]byte, w Writer) {
	if len(argv) == 0 {
		w.WriteError("ERR empty command")
		return
	}
	c := Lookup(argv[0])
	if c == nil {
		w.WriteError("ERR unknown command '" + string(argv[0]) + "', with args beginning with: ")
		return
	}
	if !c.ArityOK(len(argv)) {
		w.WriteError("ERR wrong number of arguments for '" + strings.ToLower(string(argv[0])) + "' command")
		return
	}
	c.run(db, now, argv, w)
}

// Len is the number of keys, expired-but-not-yet-collected ones included.
func (db *DB) Len() int { return len(db.m) }

func init() {
	register(&Command{Name: "get", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1,
		run: func(db *DB, now int64, argv [][]byte, w Writer) {
			v, ok := db.m[string(argv[1])]
			if !ok {
				w.WriteNull()
				return
			}
			w.WriteBulk(v)
		}})
	register(&Command{Name: "set", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1,
		run: func(db *DB, now int64, argv [][]byte, w Writer) {
			db.m[string(argv[1])] = append([]byte(nil), argv[2]...)
			w.WriteSimple("OK")
		}})
}
