package node

import (
	"io"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/resp"
)

// BACKUP (keel's own) lets `keel backup` copy a running node's newest
// snapshots over the client protocol, without stopping writes:
//
//	SAVE                               (Redis's: a snapshot of every group this node leads, now)
//	BACKUP LIST                        -> [[group, index, bytes], ...] the newest snapshot of each group hosted
//	BACKUP READ group index offset     -> up to BackupChunkBytes of that snapshot file from offset
//
// A snapshot is the state at one Raft index, written by the group's own
// step, so it holds exactly the writes applied up to that index; its
// blocks carry checksums that restore verifies. A snapshot file never
// changes once in place, but a newer one may replace it while a backup
// reads: READ then answers an error naming it, and the backup is run
// again. The bytes are read through the replica's file system, outside
// the group's step: a backup does not hold up the group's clients.

// BackupChunkBytes bounds one BACKUP READ reply.
const BackupChunkBytes = 1 << 20

var backupSubs = []subcommand{
	{name: "backup|list", arity: 2, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "backup|read", arity: 5, flags: []string{"admin", "noscript", "loading", "stale"}},
	{name: "backup|help", arity: 2, flags: []string{"loading", "stale"}},
}

func init() {
	serverCommands["backup"] = &serverCommand{name: "backup", arity: -2, categories: []string{"@slow"}, run: cmdBackup, subs: backupSubs,
		doc: commandDoc{summary: "Copies this node's newest snapshots (keel backup).", since: "0.1.0", group: "server", complexity: "Depends on subcommand."}}
	for name, d := range map[string]commandDoc{
		"backup|list": {summary: "Lists the newest snapshot of each group this node hosts.", since: "0.1.0", complexity: "O(groups)"},
		"backup|read": {summary: "Reads a chunk of a snapshot file.", since: "0.1.0", complexity: "O(N) where N is the chunk's size", syntax: "group index offset"},
		"backup|help": {summary: "Returns helpful text about the different subcommands.", since: "0.1.0", complexity: "O(1)"},
	} {
		subDocs[name] = d
	}
	aclSubCategories["backup|list"] = "@admin @slow @dangerous"
	aclSubCategories["backup|read"] = "@admin @slow @dangerous"
	aclSubCategories["backup|help"] = "@slow"
}

func cmdBackup(c *Session, argv [][]byte) {
	sub := strings.ToLower(string(truncate(argv[1], 32)))
	if !subArityOK(c, backupSubs, "backup|"+sub, len(argv)) {
		return
	}
	switch sub {
	case "list":
		type snap struct {
			g, index uint64
			size     int64
		}
		var snaps []snap
		for _, gr := range c.n.groups {
			if !gr.hosted.Load() {
				continue
			}
			var s snap
			var fs disk.FS
			var name string
			var ok bool
			c.inGroup(gr.id, func() {
				if gr.replica != nil && gr.dead == "" {
					fs, name, s.index, ok = gr.replica.SnapshotFile()
				}
			})
			if !ok {
				continue
			}
			size, err := fs.Stat(name)
			if err != nil {
				c.Out.WriteError("ERR group " + strconv.FormatUint(gr.id, 10) + ": " + oneLine(err))
				return
			}
			s.g, s.size = gr.id, size
			snaps = append(snaps, s)
		}
		c.Out.WriteArray(len(snaps))
		for _, s := range snaps {
			c.Out.WriteArray(3)
			c.Out.WriteInt(int64(s.g))
			c.Out.WriteInt(int64(s.index))
			c.Out.WriteInt(s.size)
		}
	case "read":
		g, ok1 := resp.ParseInt(argv[2])
		index, ok2 := resp.ParseInt(argv[3])
		off, ok3 := resp.ParseInt(argv[4])
		if !ok1 || !ok2 || !ok3 || off < 0 || index < 0 {
			c.Out.WriteError("ERR value is not an integer or out of range")
			return
		}
		if g < 1 || g > int64(len(c.n.groups)) {
			c.Out.WriteError("ERR no such group")
			return
		}
		gr := c.n.groups[g-1]
		if !gr.hosted.Load() {
			c.Out.WriteError("ERR group " + strconv.FormatInt(g, 10) + " is not hosted on this node")
			return
		}
		var fs disk.FS
		var dir string
		c.inGroup(gr.id, func() {
			if gr.replica != nil && gr.dead == "" {
				if f, name, _, ok := gr.replica.SnapshotFile(); ok {
					fs, dir = f, name[:strings.LastIndexByte(name, '/')+1]
				}
			}
		})
		if fs == nil {
			c.Out.WriteError("ERR group " + strconv.FormatInt(g, 10) + " has no snapshot on this node")
			return
		}
		chunk, err := readChunk(fs, dir+disk.SnapshotName(uint64(index)), off)
		if err != nil {
			c.Out.WriteError("ERR snapshot " + strconv.FormatInt(index, 10) + " of group " + strconv.FormatInt(g, 10) +
				" cannot be read (a newer snapshot may have replaced it; run the backup again): " + oneLine(err))
			return
		}
		c.Out.WriteBulk(chunk)
	case "help":
		writeHelp(c, "BACKUP",
			"LIST",
			"    Return [group, index, bytes] of the newest snapshot of each group this node hosts.",
			"READ <group> <index> <offset>",
			"    Return up to 1 MB of that snapshot file from <offset> (empty at its end).",
		)
	default:
		unknownSubcommand(c, "backup", argv[1])
	}
}

func readChunk(fs disk.FS, name string, off int64) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	size, err := f.Size()
	if err != nil {
		return nil, errors.Wrapf(err, "size of %s", name)
	}
	if off >= size {
		return []byte{}, nil
	}
	buf := make([]byte, min(size-off, BackupChunkBytes))
	n, err := f.ReadAt(buf, off)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
		return nil, errors.Wrapf(err, "read %s", name)
	}
	return buf[:n], nil
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }
