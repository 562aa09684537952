package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/node"
)

// The ACL directives, redis.conf's: user lines accumulate, in order;
// aclfile names the file. Whether both may be given is the node's call
// (it refuses, as Redis does).
func TestACLDirectives(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "keel.conf")
	if err := os.WriteFile(conf, []byte("user alice on >pw ~app:* +@all\nuser default off\naclfile /etc/keel/users.acl\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseServerArgs([]string{conf, "--user", "bob on nopass"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"alice on >pw ~app:* +@all", "default off", "bob on nopass"}; !slices.Equal(o.users, want) {
		t.Errorf("users %q, want %q", o.users, want)
	}
	if o.aclFile != "/etc/keel/users.acl" {
		t.Errorf("aclfile %q", o.aclFile)
	}
	if _, err := parseServerArgs([]string{"--user", " "}); err == nil {
		t.Error("an empty user directive was accepted")
	}
	// What the node would refuse is refused before it starts.
	if err := node.CheckACLConfig("", []string{"x +nosuch"}, disk.OS()); err == nil || !strings.Contains(err.Error(), "'+nosuch'") {
		t.Errorf("bad user directive: %v", err)
	}
	if err := node.CheckACLConfig(filepath.Join(t.TempDir(), "none.acl"), nil, disk.OS()); err == nil || !strings.Contains(err.Error(), "No such file or directory") {
		t.Errorf("missing aclfile: %v", err)
	}
	if err := node.CheckACLConfig("x.acl", o.users, disk.OS()); err == nil {
		t.Error("aclfile and user directives together were accepted")
	}
}
