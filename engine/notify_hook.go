package engine

// SetNotify replaces Options.Notify: the runtime attaches its keyspace
// notifications only while they are enabled, so a DB without listeners
// pays nothing per write (the key is not even converted). Same rules as
// Options.Notify; call it between commands, never inside one.
func (db *DB) SetNotify(fn func(event string, key []byte)) { db.opts.Notify = fn }

// SetReady replaces Options.Ready (see there), under the same rules as
// SetNotify.
func (db *DB) SetReady(fn func(key []byte)) { db.opts.Ready = fn }
