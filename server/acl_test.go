package server

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The done-when: a user limited to ~app:* gets -NOPERM on any
// other key, from go-redis (RESP2 AUTH and RESP3 HELLO AUTH) as from
// redis-cli.
func TestACLUserLimitedToAppKeysGoRedis(t *testing.T) {
	ts := startServer(t, Config{})
	admin := ts.client(t, nil)
	if err := admin.Do(ctx(), "ACL", "SETUSER", "app", "on", ">apppw", "~app:*", "+@all", "-@dangerous").Err(); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []int{2, 3} {
		c := ts.client(t, &redis.Options{Username: "app", Password: "apppw", Protocol: proto})
		if err := c.Set(ctx(), "app:1", "v", 0).Err(); err != nil {
			t.Fatalf("RESP%d SET app:1: %v", proto, err)
		}
		if v, err := c.Get(ctx(), "app:1").Result(); err != nil || v != "v" {
			t.Fatalf("RESP%d GET app:1: %q %v", proto, v, err)
		}
		err := c.Get(ctx(), "other").Err()
		if err == nil || err.Error() != "NOPERM No permissions to access a key" {
			t.Fatalf("RESP%d GET other: %v", proto, err)
		}
		if err := c.FlushAll(ctx()).Err(); err == nil || err.Error() != "NOPERM User app has no permissions to run the 'flushall' command" {
			t.Fatalf("RESP%d FLUSHALL: %v", proto, err)
		}
		if who, err := c.Do(ctx(), "ACL", "WHOAMI").Text(); err != nil || who != "app" {
			t.Fatalf("RESP%d WHOAMI: %q %v", proto, who, err)
		}
	}
	bad := ts.client(t, &redis.Options{Username: "app", Password: "wrong"})
	if err := bad.Ping(ctx()).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong password: %v", err)
	}
	entries, err := admin.ACLLog(ctx(), 10).Result()
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range entries {
		reasons = append(reasons, e.Reason+":"+e.Object+":"+e.Username)
	}
	for _, want := range []string{"key:other:app", "command:flushall:app", "auth:auth:app"} {
		if !strings.Contains(strings.Join(reasons, " "), want) {
			t.Errorf("ACL LOG %q lacks %s", reasons, want)
		}
	}
}

func TestACLUserLimitedToAppKeysRedisCli(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed (apt-get install -y redis-tools)")
	}
	ts := startServer(t, Config{})
	port := ts.addr[strings.LastIndexByte(ts.addr, ':')+1:]
	run := func(args ...string) string {
		out, err := exec.Command(cli, append([]string{"-h", "127.0.0.1", "-p", port, "--no-auth-warning"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %q: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("ACL", "SETUSER", "app", "on", ">apppw", "~app:*", "+@all", "-@dangerous"); got != "OK" {
		t.Fatalf("ACL SETUSER: %q", got)
	}
	as := []string{"--user", "app", "--pass", "apppw"}
	if got := run(append(as, "SET", "app:1", "v")...); got != "OK" {
		t.Fatalf("SET app:1: %q", got)
	}
	if got := run(append(as, "GET", "other")...); got != "NOPERM No permissions to access a key" {
		t.Fatalf("GET other: %q", got)
	}
	if got := run(append(as, "-3", "GET", "other")...); got != "NOPERM No permissions to access a key" {
		t.Fatalf("GET other (RESP3): %q", got)
	}
	if got := run("ACL", "GETUSER", "app"); !strings.Contains(got, "~app:*") || !strings.Contains(got, "+@all -@dangerous") {
		t.Fatalf("ACL GETUSER: %q", got)
	}
	if got := run("CLIENT", "KILL", "USER", "app"); got != strconv.Itoa(0) {
		t.Fatalf("CLIENT KILL USER: %q", got)
	}
}
