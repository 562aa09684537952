package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
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
}
