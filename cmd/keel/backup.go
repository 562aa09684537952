package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/node"
)

func init() {
	subcommands["backup"] = func(args []string) int { return backupMain(args, os.Stdout, os.Stderr) }
	subcommands["restore"] = func(args []string) int { return restoreMain(args, os.Stdout, os.Stderr) }
}

const backupUsage = `usage: keel backup --node host:port --out FILE [--from follower|leader|named] [--password P] [--user U]
       keel restore FILE --dir DIR [--new-cluster]        (or --in FILE)

backup   asks the node for a snapshot of every group it leads (SAVE), then
         copies its newest snapshot of each group it hosts into FILE, over
         the client port, while the node keeps serving writes. FILE is
         written as FILE.tmp and renamed once complete and checksummed: an
         interrupted backup leaves no file that looks complete.
         --from (cluster mode): where each group of the node's comes from:
         follower (the default) a connected follower of the group when
         the node leads it, else the node; leader the group's leader;
         named the node itself. The summary names each group's source.
restore  checks FILE's checksum and every snapshot block's, and makes DIR
         (which must not hold data) a data directory for keel server --dir
         DIR: a single node holding the keys of the backup's index.
         --new-cluster makes DIR node 1 of a new cluster instead (the only
         voter of each group; start it with --node-id 1, --peers listing
         itself and the next node to add, and for a sharded node's backup
         the backup's --groups), which grows with --join and keel cluster
         addnode.
`

// backupMagic opens a backup file; then "groups N", then per group
// "snapshot G INDEX BYTES" and that many bytes of its snapshot file; last
// "sha256 HEX" over everything before that line.
const backupMagic = "KEELBAK1"

// backupTimeout bounds each request to the node.
const backupTimeout = 60 * time.Second

func backupMain(args []string, stdout, stderr io.Writer) int {
	if wantsHelp(args) {
		fmt.Fprint(stdout, backupUsage)
		return 0
	}
	fs := flag.NewFlagSet("keel backup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("node", "", "host:port of the node")
	out := fs.String("out", "", "backup file to write")
	password := fs.String("password", "", "password")
	user := fs.String("user", "", "ACL user")
	from := fs.String("from", backupFromFollower, "follower, leader or named")
	if err := fs.Parse(args); err != nil || *addr == "" || *out == "" || fs.NArg() > 0 {
		msg := missingFlags(map[string]string{"--node host:port": *addr, "--out FILE": *out}, fs.Args())
		if err != nil {
			msg = err.Error()
		}
		fmt.Fprintf(stderr, "keel backup: %s\n\n%s", msg, backupUsage)
		return 2
	}
	if *from != backupFromFollower && *from != backupFromLeader && *from != backupFromNamed {
		fmt.Fprintf(stderr, "keel backup: --from %q: want follower, leader or named\n\n%s", *from, backupUsage)
		return 2
	}
	dial := func(a string) *redis.Client {
		return redis.NewClient(&redis.Options{Addr: a, Username: *user, Password: *password, Protocol: 2,
			DisableIdentity: true, MaxRetries: -1, ReadTimeout: backupTimeout, WriteTimeout: backupTimeout})
	}
	c := dial(*addr)
	defer c.Close()
	summary, err := backupFrom(c, *addr, dial, *from, *out)
	if err != nil {
		fmt.Fprintf(stderr, "keel backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "backup of %s -> %s: %s\n", *addr, *out, summary)
	return 0
}

type backupSnap struct {
	group, index uint64
	size         int64
}

// Where `keel backup` copies each group from (--from).
const (
	backupFromFollower = "follower" // a live follower of the group when the named node leads it
	backupFromLeader   = "leader"   // the group's leader
	backupFromNamed    = "named"    // the named node, whatever its role
)

// backupSource is the node a group is copied from, and why.
type backupSource struct {
	id   uint64 // 0: not a cluster node
	addr string
	role string // its role in the group: leader, follower, or "" outside cluster mode
}

func (s backupSource) String() string {
	if s.id == 0 {
		return s.addr
	}
	return fmt.Sprintf("node %d %s (%s)", s.id, s.addr, s.role)
}

// planBackup picks the node to copy each group the named node hosts
// from. A node outside cluster mode (CLUSTER NODES refused) is its own
// source. In a cluster it reads CLUSTER NODES from the named node and
// INFO groups from every node: with from=follower a group the named
// node leads is copied from the connected follower that has applied the
// most (lowest id on a tie), and from the named node when it has none;
// with from=leader from the group's leader; with from=named from the
// named node. The result is sorted by group.
func planBackup(ctx context.Context, dial func(addr string) *redis.Client, named, from string) (map[uint64]backupSource, []uint64, error) {
	c := dial(named)
	text, err := c.ClusterNodes(ctx).Result()
	c.Close()
	var refused redis.Error
	if err != nil && errors.As(err, &refused) {
		// Not a cluster node: one node, copied from itself.
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, errors.Wrapf(err, "CLUSTER NODES from %s", named)
	}
	nodes, err := parseClusterNodes(text)
	if err != nil {
		return nil, nil, err
	}
	var self uint64
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) > 2 && slices.Contains(strings.Split(f[2], ","), "myself") {
			self, _ = strconv.ParseUint(strings.TrimLeft(f[0], "0"), 10, 64)
		}
	}
	if self == 0 {
		return nil, nil, errors.Newf("CLUSTER NODES from %s names no node as myself", named)
	}
	// Every node's view of its replicas; an unreachable node has none.
	views := map[uint64]map[uint64]groupView{}
	addrs := map[uint64]string{self: named}
	for _, n := range nodes {
		if n.id != self {
			addrs[n.id] = n.addr
		}
		if n.id != self && n.state != "connected" {
			continue
		}
		nc := dial(addrs[n.id])
		info, err := nc.Info(ctx, "groups").Result()
		nc.Close()
		if err != nil {
			if n.id == self {
				return nil, nil, errors.Wrapf(err, "INFO groups from %s", named)
			}
			continue
		}
		views[n.id] = map[uint64]groupView{}
		for _, g := range parseInfoGroups(info) {
			if g.hosted {
				views[n.id][g.group] = g
			}
		}
	}
	plan := map[uint64]backupSource{}
	var groups []uint64
	for g, mine := range views[self] {
		groups = append(groups, g)
		src := backupSource{id: self, addr: named, role: mine.role}
		switch {
		case from == backupFromLeader && mine.role != "leader":
			lv, ok := views[mine.leader][g]
			if mine.leader == 0 || !ok || lv.role != "leader" {
				return nil, nil, errors.Newf("group %d: its leader (node %d as %s sees it) does not answer as its leader; use --from named or follower", g, mine.leader, named)
			}
			src = backupSource{id: mine.leader, addr: addrs[mine.leader], role: "leader"}
		case from == backupFromFollower && mine.role == "leader":
			var best uint64
			for id, v := range views {
				f, ok := v[g]
				if id == self || !ok || f.role != "follower" {
					continue
				}
				if b := views[best][g]; best == 0 || f.applied > b.applied || f.applied == b.applied && id < best {
					best = id
				}
			}
			if best != 0 {
				src = backupSource{id: best, addr: addrs[best], role: "follower"}
			}
		}
		plan[g] = src
	}
	slices.Sort(groups)
	if len(groups) == 0 {
		return nil, nil, errors.Newf("%s hosts no replica group", named)
	}
	return plan, groups, nil
}

// takeBackup copies every group c's node hosts into out, from that node.
func takeBackup(c *redis.Client, out string) (string, error) {
	return takeBackupPlan(c, "", nil, nil, nil, out)
}

// backupFrom plans where each group comes from (--from) and takes the
// backup; with from=named the plan is skipped: the named node alone.
func backupFrom(c *redis.Client, addr string, dial func(string) *redis.Client, from, out string) (string, error) {
	if from == backupFromNamed {
		return takeBackupPlan(c, addr, dial, nil, nil, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), backupTimeout)
	plan, groups, err := planBackup(ctx, dial, addr, from)
	cancel()
	if err != nil {
		return "", err
	}
	return takeBackupPlan(c, addr, dial, plan, groups, out)
}

// takeBackupPlan copies the named node's groups into out: from the node
// itself (plan nil), or each from the node plan names. Each source node
// is asked for a SAVE once (a SAVE covers every replica the node hosts,
// a follower's too), then its newest snapshot of each group it is the
// source of is read.
func takeBackupPlan(named *redis.Client, namedAddr string, dial func(string) *redis.Client, plan map[uint64]backupSource, groups []uint64, out string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), backupTimeout)
	defer cancel()
	// The sources in the order of the groups they give.
	type source struct {
		src    backupSource
		c      *redis.Client
		groups []uint64
	}
	var sources []*source
	if plan == nil {
		sources = append(sources, &source{src: backupSource{addr: namedAddr}, c: named})
	} else {
		byAddr := map[string]*source{}
		for _, g := range groups {
			p := plan[g]
			s := byAddr[p.addr]
			if s == nil {
				s = &source{src: p, c: named}
				if p.addr != namedAddr {
					s.c = dial(p.addr)
					defer s.c.Close()
				}
				byAddr[p.addr] = s
				sources = append(sources, s)
			}
			s.groups = append(s.groups, g)
		}
	}
	var snaps []backupSnap
	from := map[uint64]*source{}
	for _, s := range sources {
		if err := s.c.Do(ctx, "SAVE").Err(); err != nil {
			var reply redis.Error
			if errors.As(err, &reply) {
				// The node refused: an in-memory node has nothing on disk.
				return "", errors.Wrapf(err, "SAVE on %s (a node started with appendonly no keeps nothing on disk to back up)", s.src)
			}
			return "", errors.Wrapf(err, "SAVE on %s", s.src)
		}
		list, err := s.c.Do(ctx, "BACKUP", "LIST").Slice()
		if err != nil {
			return "", errors.Wrapf(err, "BACKUP LIST on %s", s.src)
		}
		got := map[uint64]backupSnap{}
		for _, e := range list {
			f, ok := e.([]any)
			if !ok || len(f) != 3 {
				return "", errors.Newf("BACKUP LIST on %s: unexpected reply %v", s.src, e)
			}
			g, _ := f[0].(int64)
			idx, _ := f[1].(int64)
			size, _ := f[2].(int64)
			got[uint64(g)] = backupSnap{uint64(g), uint64(idx), size}
		}
		if plan == nil {
			for g := range got {
				s.groups = append(s.groups, g)
			}
			slices.Sort(s.groups)
		}
		for _, g := range s.groups {
			snap, ok := got[g]
			if !ok {
				return "", errors.Newf("%s has no snapshot of group %d to copy", s.src, g)
			}
			snaps = append(snaps, snap)
			from[g] = s
		}
	}
	slices.SortFunc(snaps, func(a, b backupSnap) int { return cmp.Compare(a.group, b.group) })
	if len(snaps) == 0 {
		return "", errors.New("the node has no snapshot to copy")
	}
	tmp := out + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", errors.Wrap(err, "create the backup file")
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	fmt.Fprintf(w, "%s\ngroups %d\n", backupMagic, len(snaps))
	var parts []string
	for _, s := range snaps {
		src := from[s.group]
		fmt.Fprintf(w, "snapshot %d %d %d\n", s.group, s.index, s.size)
		var got int64
		for got < s.size {
			rctx, rcancel := context.WithTimeout(context.Background(), backupTimeout)
			chunk, err := src.c.Do(rctx, "BACKUP", "READ", s.group, s.index, got).Text()
			rcancel()
			if err != nil {
				return "", errors.Wrapf(err, "group %d snapshot %d at offset %d from %s", s.group, s.index, got, src.src)
			}
			if len(chunk) == 0 {
				return "", errors.Newf("group %d snapshot %d ended at %d bytes of %d", s.group, s.index, got, s.size)
			}
			if _, err := w.WriteString(chunk); err != nil {
				return "", errors.Wrap(err, "write the backup file")
			}
			got += int64(len(chunk))
		}
		if got != s.size {
			return "", errors.Newf("group %d snapshot %d: %d bytes, want %d", s.group, s.index, got, s.size)
		}
		part := fmt.Sprintf("group %d at index %d (%d bytes)", s.group, s.index, s.size)
		if plan != nil {
			part += " from " + src.src.String()
		}
		parts = append(parts, part)
	}
	if err := w.Flush(); err != nil {
		return "", errors.Wrap(err, "write the backup file")
	}
	if _, err := fmt.Fprintf(f, "sha256 %s\n", hex.EncodeToString(h.Sum(nil))); err != nil {
		return "", errors.Wrap(err, "write the backup file")
	}
	if err := f.Sync(); err != nil {
		return "", errors.Wrap(err, "fsync the backup file")
	}
	if err := f.Close(); err != nil {
		return "", errors.Wrap(err, "close the backup file")
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", errors.Wrap(err, "rename the backup file into place")
	}
	done = true
	if d, err := os.Open(filepath.Dir(out)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return strings.Join(parts, ", "), nil
}

func restoreMain(args []string, stdout, stderr io.Writer) int {
	if wantsHelp(args) {
		fmt.Fprint(stdout, backupUsage)
		return 0
	}
	var in string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		in, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("keel restore", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", "", "data directory to make")
	inFlag := fs.String("in", "", "backup file")
	newCluster := fs.Bool("new-cluster", false, "make DIR node 1 of a new cluster")
	err := fs.Parse(args)
	if *inFlag != "" {
		in = *inFlag
	}
	if err != nil || in == "" || *dir == "" || fs.NArg() > 0 {
		msg := missingFlags(map[string]string{"FILE (or --in FILE)": in, "--dir DIR": *dir}, fs.Args())
		if err != nil {
			msg = err.Error()
		}
		fmt.Fprintf(stderr, "keel restore: %s\n\n%s", msg, backupUsage)
		return 2
	}
	res, err := restoreBackup(in, *dir, *newCluster)
	if err != nil {
		fmt.Fprintf(stderr, "keel restore: %v\n", err)
		return 1
	}
	start := fmt.Sprintf("keel server --dir %s", *dir)
	if *newCluster {
		groups := ""
		if res.groups > 1 {
			groups = fmt.Sprintf(" --groups %d", res.groups)
		}
		// --peers must list a second node: a one-peer node is not
		// replicated and takes no CLUSTER ADDNODE.
		start = fmt.Sprintf("keel server --dir %s --node-id %d --peers \"%d@HOST:PORT,2@HOST2:PORT2\"%s, then start node 2 with --join yes and run keel cluster addnode --id 2",
			*dir, restoreNodeID, restoreNodeID, groups)
	}
	fmt.Fprintf(stdout, "restored %s into %s: %s; start it with: %s\n", in, *dir, res.summary, start)
	return 0
}

// restoreNodeID is the node a --new-cluster restore makes: the only voter
// of every group, so it elects itself and the others join it.
const restoreNodeID = 1

type restoreResult struct {
	groups  int
	summary string
}

// restoreBackup checks the backup's checksum, then writes each group's
// snapshot into dir through disk's snapshot writer, every block verified
// on the way. Without newCluster the voters are cleared: dir becomes a
// single node's data (one group only: several need cluster mode). With
// newCluster node restoreNodeID is every group's only voter: dir is the
// first node of a new cluster with the backup's --groups, which grows
// with --join and keel cluster addnode. A failed restore removes what it
// wrote (dir was empty).
func restoreBackup(in, dir string, newCluster bool) (restoreResult, error) {
	f, err := os.Open(in)
	if err != nil {
		return restoreResult{}, errors.Wrap(err, "open the backup")
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return restoreResult{}, err
	}
	const trailerBytes = len("sha256 ") + 64 + 1
	if st.Size() < int64(trailerBytes) {
		return restoreResult{}, errors.New("not a complete keel backup (too short)")
	}
	trailer := make([]byte, trailerBytes)
	if _, err := f.ReadAt(trailer, st.Size()-int64(trailerBytes)); err != nil {
		return restoreResult{}, errors.Wrap(err, "read the backup's checksum")
	}
	want, ok := strings.CutPrefix(strings.TrimSuffix(string(trailer), "\n"), "sha256 ")
	if !ok {
		return restoreResult{}, errors.New("not a complete keel backup (no checksum line at its end)")
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, st.Size()-int64(trailerBytes))); err != nil {
		return restoreResult{}, errors.Wrap(err, "read the backup")
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return restoreResult{}, errors.Newf("the backup's checksum does not match (sha256 %s, the file says %s): it is damaged", got, want)
	}
	r := bufio.NewReader(io.NewSectionReader(f, 0, st.Size()-int64(trailerBytes)))
	line := func() (string, error) {
		s, err := r.ReadString('\n')
		return strings.TrimSuffix(s, "\n"), err
	}
	if m, err := line(); err != nil || m != backupMagic {
		return restoreResult{}, errors.New("not a keel backup")
	}
	gl, err := line()
	groups, perr := strconv.Atoi(strings.TrimPrefix(gl, "groups "))
	if err != nil || perr != nil || groups < 1 || groups > node.GroupsMax {
		return restoreResult{}, errors.Newf("bad backup header %q", gl)
	}
	if groups > 1 && !newCluster {
		return restoreResult{}, errors.Newf("the backup holds %d groups (a sharded cluster's node): restore it with --new-cluster (several groups need cluster mode)", groups)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return restoreResult{}, errors.Newf("%s is not empty: restore into a new directory", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return restoreResult{}, errors.Wrap(err, "create the data directory")
	}
	done := false
	defer func() {
		if done {
			return
		}
		// dir was empty: everything in it is this restore's.
		if entries, err := os.ReadDir(dir); err == nil {
			for _, e := range entries {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
	}()
	var parts []string
	for want := uint64(1); want <= uint64(groups); want++ {
		sl, err := line()
		var g, index uint64
		var size int64
		if _, serr := fmt.Sscanf(sl, "snapshot %d %d %d", &g, &index, &size); err != nil || serr != nil || size < 0 {
			return restoreResult{}, errors.Newf("bad backup section %q", sl)
		}
		if g != want {
			// A node hosting some of the groups (--replicas below the
			// node count) cannot seed a cluster that needs them all.
			return restoreResult{}, errors.Newf("the backup has group %d where group %d should be: it does not hold every group of its cluster (back up a node hosting all of them)", g, want)
		}
		part, err := restoreGroup(r, dir, groups, g, size, newCluster)
		if err != nil {
			return restoreResult{}, err
		}
		parts = append(parts, part)
	}
	if rest, _ := r.Peek(1); len(rest) > 0 {
		return restoreResult{}, errors.New("the backup holds more than its header says")
	}
	done = true
	return restoreResult{groups: groups, summary: strings.Join(parts, ", ")}, nil
}

// restoreGroup copies size bytes of group g's snapshot from r into its
// directory under dir, checking every block.
func restoreGroup(r io.Reader, dir string, groups int, g uint64, size int64, newCluster bool) (string, error) {
	gdir := node.GroupDir(dir, groups, g)
	if err := os.MkdirAll(gdir, 0o700); err != nil {
		return "", errors.Wrap(err, "create the group's directory")
	}
	// The snapshot's bytes go to a scratch file, read back through the
	// snapshot reader (which checks every block) into a new snapshot.
	scratch := filepath.Join(dir, "restore.scratch")
	defer os.Remove(scratch)
	sf, err := os.Create(scratch)
	if err != nil {
		return "", errors.Wrap(err, "create a scratch file")
	}
	if n, err := io.CopyN(sf, r, size); err != nil || n != size {
		sf.Close()
		return "", errors.Wrapf(err, "the backup ends inside group %d's snapshot", g)
	}
	if err := sf.Close(); err != nil {
		return "", err
	}
	osfs := disk.OS()
	var sw *disk.SnapshotWriter
	meta, err := disk.ReadSnapshot(osfs, scratch, func(m disk.SnapshotMeta) error {
		m.Voters, m.Learners = nil, nil // a single node: no group to rejoin
		if newCluster {
			m.Voters = []uint64{restoreNodeID}
		}
		var err error
		sw, err = disk.CreateSnapshot(osfs, gdir, m)
		return err
	}, func(e disk.SnapEntry) error { return sw.Add(e) })
	if err != nil {
		if sw != nil {
			sw.Abort()
		}
		return "", errors.Wrapf(err, "group %d's snapshot", g)
	}
	if _, _, err := sw.Commit(); err != nil {
		return "", errors.Wrap(err, "write the snapshot")
	}
	// Entries counts the keys, and the function registry when there is one.
	return fmt.Sprintf("group %d at index %d, %d entries", g, meta.Index, meta.Entries), nil
}
