package server

import (
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/seam"
)

// slowSyncFS makes every fsync take at least syncDelay.
type slowSyncFS struct{ disk.FS }

const syncDelay = 3 * time.Millisecond

type slowSyncFile struct{ disk.File }

func (f slowSyncFile) Sync() error {
	time.Sleep(syncDelay)
	return f.File.Sync()
}

func (fs slowSyncFS) Create(name string) (disk.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return slowSyncFile{f}, nil
}

func (fs slowSyncFS) OpenAppend(name string) (disk.File, error) {
	f, err := fs.FS.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return slowSyncFile{f}, nil
}

// The latency monitor samples the disk's slow fsyncs (the log's and a
// snapshot's) and a snapshot job, as LATENCY LATEST/HISTORY/DOCTOR show;
// RESET forgets them.
func TestLatencyMonitorDiskEvents(t *testing.T) {
	dir := t.TempDir()
	opts := cluster.Options{FS: slowSyncFS{disk.OS()}, Dir: dir, AppendOnly: true, Fsync: cluster.FsyncAlways, Rand: seam.NewRand()}
	ts := serveOpen(t, Config{AppendOnly: true, AppendFsync: "always", Dir: dir,
		ReplicaOptions: func(uint64) cluster.Options { return opts }})
	rc := ts.raw(t)
	if r := rc.do("CONFIG", "SET", "latency-monitor-threshold", "1"); r != "+OK" {
		t.Fatal(r)
	}
	rc.do("SET", "a", "1")
	rc.do("SAVE")
	rc.do("BGSAVE")
	waitFor(t, "the snapshot event", func() bool { return strings.Contains(rc.do("LATENCY", "LATEST"), "$snapshot ") })
	latest := rc.do("LATENCY", "LATEST")
	for _, event := range []string{"wal-fsync", "snapshot-fsync", "snapshot"} {
		if !strings.Contains(latest, "$"+event+" ") {
			t.Errorf("LATENCY LATEST has no %s event: %s", event, latest)
		}
	}
	if h := rc.do("LATENCY", "HISTORY", "wal-fsync"); !strings.HasPrefix(h, "*[*[:") {
		t.Errorf("LATENCY HISTORY wal-fsync: %s", h)
	}
	if d := rc.do("LATENCY", "DOCTOR"); !strings.Contains(d, "wal-fsync") || !strings.Contains(d, "The disk is slow") {
		t.Errorf("LATENCY DOCTOR: %s", d)
	}
	if r := rc.do("LATENCY", "RESET", "wal-fsync", "nosuch"); r != ":1" {
		t.Errorf("LATENCY RESET wal-fsync nosuch: %s", r)
	}
	if h := rc.do("LATENCY", "HISTORY", "wal-fsync"); h != "*[]" {
		t.Errorf("LATENCY HISTORY after RESET: %s", h)
	}
}
