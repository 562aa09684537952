package cluster

import (
	"testing"

	"github.com/keel-db/keel/disk"
)

func TestReplicaRoundTrip(t *testing.T) {
	dir := t.TempDir()
	fs := disk.OS()
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
