package cluster

import (
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/seam"
)

// FsyncPolicy is appendfsync.
type FsyncPolicy int

const (
	// FsyncEverySec replies after write(2) and syncs at most a second later.
	FsyncEverySec FsyncPolicy = iota
	// FsyncAlways replies only after the batch is synced.
	FsyncAlways
	// FsyncNo leaves syncing to the OS.
	FsyncNo
)

// Options configure a Replica.
type Options struct {
	FS  disk.FS
	Dir string
	// AppendOnly turns persistence on. Off, writes apply straight to the
	// engine and nothing touches the disk.
	AppendOnly bool
	Fsync      FsyncPolicy
	Rand       seam.Rand
}

// Request is one client command. Its reply is written to W when the
// command runs; commands submitted by one client run, and reply, in the
// order submitted.
type Request struct {
	Argv [][]byte
	W    engine.Writer
}

// Replica is one replica group's member on this node.
type Replica struct {
	opts Options
	db   *engine.DB
}

// Open recovers the replica from opts.Dir (or starts empty).
func Open(opts Options) (*Replica, error) {
	return &Replica{opts: opts, db: engine.New(engine.Options{Rand: opts.Rand})}, nil
}

// Submit runs a batch of requests at time now (Unix nanoseconds). On a
// single node every reply has been written when Submit returns.
func (r *Replica) Submit(now int64, reqs []Request) {
	ms := seam.Millis(now)
	for i := range reqs {
		r.db.Exec(ms, reqs[i].Argv, reqs[i].W)
	}
}

// Tick advances time: active expiry, the everysec fsync, snapshots.
func (r *Replica) Tick(now int64) {}

// DB exposes the applied keyspace to read-only introspection (INFO, DBSIZE
// in the server). Callers must hold the replica's owner.
func (r *Replica) DB() *engine.DB { return r.db }

// Close releases the replica's files.
func (r *Replica) Close() error { return nil }
