package cluster

import (
	"testing"

	"github.com/keel-db/keel/disk"
)

// The round trip runs on the real disk too: the replica's test of
// osfs.go, locking included.
func TestReplicaRoundTrip(t *testing.T) {
	t.Run("os", func(t *testing.T) { testReplicaRoundTrip(t, disk.OS(), t.TempDir()) })
	t.Run("mem", func(t *testing.T) { testReplicaRoundTrip(t, disk.NewMemFS(), "data") })
}

func testReplicaRoundTrip(t *testing.T, fs disk.FS, dir string) {
	r := openT(t, fs, dir)
	got := do(r, t0, "GET a", "SET a 1", "GET a", "SET a 2", "GET a", "SET b")
	want := "$nil +OK $1 +OK $2 -ERR wrong number of arguments for 'set' command"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openT(t, fs, dir)
	defer r.Close()
	if got := do(r, t0+sec, "GET a"); got != "$2" {
		t.Fatalf("after reopen GET a = %q", got)
	}
}

func TestFsyncPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy             FsyncPolicy
		afterSubmit, after bool // write survives a crash right after Submit / after a Tick 1 s later
	}{
		{FsyncAlways, true, true},
		{FsyncEverySec, false, true},
		{FsyncNo, false, false},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			fs, dir := newTestDisk(), "data"
			r := openT(t, fs, dir, func(o *Options) { o.Fsync = tc.policy })
			defer r.Close()
			if got := do(r, t0, "SET k v", "SET j w", "GET k"); got != "+OK +OK $v" {
				t.Fatal(got)
			}
			check := func(want bool, when string) {
				c := openT(t, fs.crashClone(), dir)
				defer c.Close()
				got := do(c, t0+5*sec, "GET k", "GET j")
				if (got == "$v $w") != want {
					t.Fatalf("%s: crash copy answers %q, want present=%v", when, got, want)
				}
			}
			check(tc.afterSubmit, "right after Submit")
			r.Tick(t0 + sec)
			check(tc.after, "after a Tick 1s later")
		})
	}
}

func TestDiskFullRefusesWritesServesReads(t *testing.T) {
	fs, dir := newTestDisk(), "data"
	r := openT(t, fs, dir)
	defer r.Close()
	if got := do(r, t0, "SET a 1"); got != "+OK" {
		t.Fatal(got)
	}
	fs.spaceLeft = 10 // the next batch tears after 10 bytes
	got := do(r, t0+1, "SET b 2", "GET a", "SET c 3")
	if got != "-"+ErrMsgDiskFull+" $1 -"+ErrMsgDiskFull {
		t.Fatalf("on ENOSPC: %q", got)
	}
	if r.Err() != nil {
		t.Fatalf("ENOSPC must not be fatal: %v", r.Err())
	}
	if p := r.Persistence(); !p.DiskFull || p.AOFLastWriteOK {
		t.Fatalf("stats %+v", p)
	}
	if got := do(r, t0+2, "GET b", "SET d 4", "GET a"); got != "$nil -"+ErrMsgDiskFull+" $1" {
		t.Fatalf("while full: %q", got)
	}
	// The refused write is really not on disk.
	c := openT(t, fs.crashClone(), dir)
	if got := do(c, t0+3, "GET a", "GET b", "GET c"); got != "$1 $nil $nil" {
		t.Fatalf("crash copy while full: %q", got)
	}
	c.Close()
	// Still full: the probe fails, writes stay refused.
	r.Tick(t0 + 3*sec)
	if got := do(r, t0+3*sec, "SET e 5"); got != "-"+ErrMsgDiskFull {
		t.Fatalf("still full: %q", got)
	}
	fs.spaceLeft = -1
	r.Tick(t0 + 4*sec)
	if got := do(r, t0+4*sec, "SET b 22", "GET b"); got != "+OK $22" {
		t.Fatalf("after space returned: %q", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openT(t, fs, dir)
	if got := do(r, t0+5*sec, "GET a", "GET b", "GET c", "GET d"); got != "$1 $22 $nil $nil" {
		t.Fatalf("after reopen: %q", got)
	}
}

func TestFsyncFailureIsFatal(t *testing.T) {
	fs, dir := newTestDisk(), "data"
	r := openT(t, fs, dir)
	if got := do(r, t0, "SET a 1"); got != "+OK" {
		t.Fatal(got)
	}
	fs.failSync = true
	if got := do(r, t0+1, "SET a 2", "GET a"); got != "-"+ErrMsgDiskFatal+" $1" {
		t.Fatalf("on failed fsync: %q", got)
	}
	if r.Err() == nil {
		t.Fatal("a failed fsync must make the replica fatal")
	}
	fs.failSync = false
	// Never retried: still refusing, even though fsync would work now.
	if got := do(r, t0+2, "SET b 1", "GET a"); got != "-"+ErrMsgDiskFatal+" $1" {
		t.Fatalf("after failed fsync: %q", got)
	}
	_ = r.Close()
	r = openT(t, fs, dir)
	defer r.Close()
	if got := do(r, t0+3, "GET a", "GET b"); got != "$1 $nil" && got != "$2 $nil" {
		t.Fatalf("reopened: %q", got)
	}
	if got := do(r, t0+3, "SET b 1"); got != "+OK" {
		t.Fatalf("reopened replica refuses writes: %q", got)
	}
}

// The clock a restarted node proposes with never goes below the times
// already in its log, so TTLs replay the way they ran.
func TestTimeMonotonicAcrossRestart(t *testing.T) {
	fs, dir := disk.NewMemFS(), "data"
	r := openT(t, fs, dir)
	do(r, t0+10*sec, "SET k v PX 5000")
	_ = r.Close()
	r = openT(t, fs, dir)
	defer r.Close()
	// The wall clock went back 20 s across the restart; the key set at
	// t0+10s must still expire at t0+15s as far as the log is concerned.
	if got := do(r, t0-10*sec, "PTTL k"); got != ":5000" {
		t.Fatalf("PTTL after the clock went back: %s", got)
	}
}
