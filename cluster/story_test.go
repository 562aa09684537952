package cluster

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/keel-db/keel/disk"
)

// TestRecoveryStories runs testdata/*.txt: recovery sequences told as
// scripts. Commands:
//
//	open [fsync=always|everysec|no]   open the replica, print what recovery found
//	submit                            one batch, a command per input line
//	tick                              advance 1 s and Tick
//	save                              SAVE
//	close                             Close
//	crash                             power loss: unsynced bytes vanish
//	tear bytes=N                      cut N bytes off the end of the newest segment
//	flip file=wal|snap at=N           flip a bit N bytes into the oldest segment / newest snapshot (negative: from the end)
//	ls                                list the data directory
func TestRecoveryStories(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, script string) {
		fs, dir := newTestDisk(), "data"
		var r *Replica
		now := t0
		datadriven.RunTest(t, script, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "open":
				o := Options{FS: fs, Dir: dir, AppendOnly: true, Fsync: FsyncAlways, NowNanos: now}
				if d.HasArg("fsync") {
					var p string
					d.ScanArgs(t, "fsync", &p)
					o.Fsync = map[string]FsyncPolicy{"always": FsyncAlways, "everysec": FsyncEverySec, "no": FsyncNo}[p]
				}
				var err error
				r, err = Open(o)
				if err != nil {
					r = nil
					return "error: " + strings.ReplaceAll(err.Error(), dir+"/", "")
				}
				rs := r.Recovery()
				out := fmt.Sprintf("snapshot: %s\nkeys loaded: %d\nentries replayed: %d\napplied index: %d\n",
					rel(dir, rs.Snapshot), rs.KeysLoaded, rs.EntriesReplayed, r.AppliedIndex())
				if rs.TruncatedBytes > 0 {
					out += fmt.Sprintf("torn tail: %d bytes cut from %s at offset %d\n", rs.TruncatedBytes, rel(dir, rs.TruncatedSegment), rs.TruncatedAt)
				}
				for _, c := range rs.CorruptSnapshots {
					out += "set aside corrupt snapshot: " + rel(dir, c) + "\n"
				}
				return out
			case "submit":
				cmds := strings.Split(strings.TrimSpace(d.Input), "\n")
				now += 1e6
				return do(r, now, cmds...) + "\n"
			case "tick":
				now += sec
				r.Tick(now)
				return ""
			case "save":
				return do(r, now, "SAVE") + "\n"
			case "close":
				if err := r.Close(); err != nil {
					return "error: " + err.Error()
				}
				r = nil
				return ""
			case "crash":
				// The machine comes back with what the disk kept; the dead
				// process (r) is abandoned with its handles and lock.
				fs = fs.crashClone()
				r = nil
				return ""
			case "tear":
				var n int
				d.ScanArgs(t, "bytes", &n)
				segs, _ := fs.List(path.Join(dir, "wal"))
				p := path.Join(dir, "wal", segs[len(segs)-1])
				b := readFile(t, fs, p)
				writeFile(t, fs, p, b[:len(b)-n])
				return fmt.Sprintf("cut %s from %d to %d bytes\n", rel(dir, p), len(b), len(b)-n)
			case "flip":
				var file string
				var at int
				d.ScanArgs(t, "file", &file)
				d.ScanArgs(t, "at", &at)
				var p string
				if file == "wal" {
					segs, _ := fs.List(path.Join(dir, "wal"))
					p = path.Join(dir, "wal", segs[0])
				} else {
					snaps, _, _ := disk.ListSnapshots(fs, dir)
					p = snaps[0]
				}
				b := readFile(t, fs, p)
				if at < 0 {
					at += len(b)
				}
				b[at] ^= 0x08
				writeFile(t, fs, p, b)
				return fmt.Sprintf("flipped a bit of %s at offset %d\n", rel(dir, p), at)
			case "ls":
				var out strings.Builder
				var walk func(sub string)
				walk = func(sub string) {
					names, _ := fs.List(sub)
					for _, n := range names {
						switch p := path.Join(sub, n); {
						case fs.mem.IsDir(p):
							walk(p)
						case n != lockFileName:
							fmt.Fprintf(&out, "%s\n", rel(dir, p))
						}
					}
				}
				walk(dir)
				return out.String()
			}
			t.Fatalf("unknown command %s", d.Cmd)
			return ""
		})
		if r != nil {
			_ = r.Close()
		}
	})
}

func rel(dir, p string) string {
	if p == "" {
		return "none"
	}
	r, err := filepath.Rel(dir, p)
	if err != nil {
		return p
	}
	return r
}
