package server

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/engine"
	"github.com/keel-db/keel/node"
	"github.com/redis/go-redis/v9"
)

// show renders a go-redis Do result compactly: "nil", ":1", "abc",
// "[a b]", or the error text.
func show(v any, err error) string {
	if errors.Is(err, redis.Nil) {
		return "nil"
	}
	if err != nil {
		return err.Error()
	}
	switch v := v.(type) {
	case nil:
		return "nil"
	case int64:
		return ":" + strconv.FormatInt(v, 10)
	case string:
		return v
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = show(e, nil)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

type step struct {
	args []any
	want string
}

func s(want string, args ...any) step { return step{args: args, want: want} }

// runSteps runs a script of commands and expected replies (as Redis 7
// gives them), skipping scripts that use a command the engine does not
// have yet.
func runSteps(t *testing.T, c *redis.Client, steps []step) {
	t.Helper()
	for _, st := range steps {
		name := fmt.Sprint(st.args[0])
		if !node.KnownCommand([]byte(name)) {
			t.Skipf("the engine has no %s yet", strings.ToUpper(name))
		}
	}
	for _, st := range steps {
		got := show(c.Do(ctx(), st.args...).Result())
		ok := false
		// "a || b": either; "~p": any reply starting with p.
		for _, alt := range strings.Split(st.want, " || ") {
			if p, isPrefix := strings.CutPrefix(alt, "~"); isPrefix && strings.HasPrefix(got, p) || got == alt {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%v: got %q, want %q", st.args, got, st.want)
		}
	}
}

func TestKeyspaceCommandsGoRedis(t *testing.T) {
	scripts := map[string][]step{
		"set-get": {
			s("OK", "SET", "k", "v"), s("v", "GET", "k"), s("nil", "GET", "nokey"),
			s("nil", "SET", "k", "x", "NX"), s("OK", "SET", "k", "v2", "XX"), s("nil", "SET", "k2", "v", "XX"),
			s("v2", "SET", "k", "v3", "GET"), s("nil", "SET", "new", "v", "GET"),
			s("OK", "SET", "t", "v", "EX", "100"), s(":100", "TTL", "t"),
			s("OK", "SET", "t", "w", "KEEPTTL"), s(":100", "TTL", "t"), s("OK", "SET", "t", "w"), s(":-1", "TTL", "t"),
			s("ERR invalid expire time in 'set' command", "SET", "k", "v", "EX", "0"),
			s("ERR value is not an integer or out of range", "SET", "k", "v", "EX", "x"),
			s("ERR syntax error", "SET", "k", "v", "EX", "10", "PX", "100"),
			s("ERR syntax error", "SET", "k", "v", "NX", "XX"),
			s("ERR wrong number of arguments for 'get' command", "GET"),
		},
		"multi": {
			s("OK", "MSET", "a", "1", "b", "2"), s("[1 2 nil]", "MGET", "a", "b", "c"),
			s(":0", "MSETNX", "a", "3", "c", "4"), s(":1", "MSETNX", "c", "3", "d", "4"), s("[1 3]", "MGET", "a", "c"),
			s("ERR wrong number of arguments for 'mset' command", "MSET", "a", "1", "b"),
		},
		"set-variants": {
			s(":1", "SETNX", "k", "v"), s(":0", "SETNX", "k", "w"), s("v", "GET", "k"),
			s("OK", "SETEX", "e", "100", "v"), s(":100", "TTL", "e"),
			s("ERR invalid expire time in 'setex' command", "SETEX", "e", "0", "v"),
			s("OK", "PSETEX", "p", "100000", "v"), s(":100", "TTL", "p"),
			s("v", "GETSET", "k", "w"), s("w", "GETDEL", "k"), s("nil", "GETDEL", "k"),
			s("v", "GETEX", "e", "PERSIST"), s(":-1", "TTL", "e"), s("v", "GETEX", "e", "EX", "50"), s(":50", "TTL", "e"),
		},
		"string-ops": {
			s(":3", "APPEND", "k", "abc"), s(":6", "APPEND", "k", "def"), s(":6", "STRLEN", "k"), s(":0", "STRLEN", "nokey"),
			s("bcd", "GETRANGE", "k", "1", "3"), s("abcdef", "GETRANGE", "k", "0", "-1"), s("ef", "GETRANGE", "k", "-2", "-1"),
			s(":8", "SETRANGE", "k", "5", "XYZ"), s("abcdeXYZ", "GET", "k"),
			s(":4", "SETRANGE", "z", "2", "ab"), s("\x00\x00ab", "GET", "z"),
		},
		"counters": {
			s(":1", "INCR", "n"), s(":11", "INCRBY", "n", "10"), s(":10", "DECR", "n"), s(":5", "DECRBY", "n", "5"),
			s("OK", "SET", "s", "abc"), s("ERR value is not an integer or out of range", "INCR", "s"),
			s("ERR value is not an integer or out of range", "INCRBY", "n", "x"),
			s("OK", "SET", "max", "9223372036854775807"), s("ERR increment or decrement would overflow", "INCR", "max"),
			s("6.5", "INCRBYFLOAT", "n", "1.5"), s("ERR value is not a valid float", "INCRBYFLOAT", "s", "1"),
			s("ERR value is not a valid float", "INCRBYFLOAT", "n", "abc"),
		},
		"keys": {
			s("OK", "MSET", "a", "1", "b", "2", "c", "3"), s(":2", "DEL", "a", "b", "x"), s(":1", "UNLINK", "c"),
			s("OK", "SET", "a", "1"), s(":2", "EXISTS", "a", "a", "x"), s("string", "TYPE", "a"), s("none", "TYPE", "x"),
			s("OK", "RENAME", "a", "b"), s("nil", "GET", "a"), s("ERR no such key", "RENAME", "a", "c"),
			s("OK", "SET", "c", "3"), s(":0", "RENAMENX", "b", "c"), s(":1", "RENAMENX", "b", "d"),
			s(":1", "COPY", "d", "e"), s(":0", "COPY", "d", "e"), s(":1", "COPY", "c", "e", "REPLACE"), s("3", "GET", "e"),
			s("[c d e]", "KEYS", "*"), s("[d]", "KEYS", "d*"), s(":3", "DBSIZE"), s(":2", "TOUCH", "c", "d", "x"),
			s("OK", "FLUSHDB", "ASYNC"), s(":0", "DBSIZE"), s("nil", "RANDOMKEY"), s("OK", "SET", "only", "1"), s("only", "RANDOMKEY"),
			s("OK", "FLUSHALL", "SYNC"), s(":0", "DBSIZE"),
		},
		"ttl": {
			s("OK", "SET", "k", "v"), s(":-1", "TTL", "k"), s(":-2", "TTL", "nokey"), s(":-2", "PTTL", "nokey"),
			s(":1", "EXPIRE", "k", "100"), s(":100", "TTL", "k"), s(":100000 || ~:99", "PTTL", "k"),
			s(":0", "EXPIRE", "k", "200", "NX"), s(":1", "EXPIRE", "k", "200", "XX"), s(":0", "EXPIRE", "k", "100", "GT"),
			s(":1", "EXPIRE", "k", "100", "LT"), s(":0", "EXPIRE", "nokey", "100"),
			s("ERR NX and XX, GT or LT options at the same time are not compatible", "EXPIRE", "k", "10", "NX", "XX"),
			s(":1", "EXPIREAT", "k", "4102444800"), s(":4102444800", "EXPIRETIME", "k"), s(":4102444800000", "PEXPIRETIME", "k"),
			s(":1", "PEXPIREAT", "k", "4102444800500"), s(":4102444800500", "PEXPIRETIME", "k"),
			s(":1", "PERSIST", "k"), s(":0", "PERSIST", "k"), s(":-1", "EXPIRETIME", "k"), s(":-2", "EXPIRETIME", "nokey"),
			s(":1", "PEXPIRE", "k", "100000"), s(":100", "TTL", "k"),
			s(":1", "EXPIRE", "k", "-1"), s("nil", "GET", "k"), s(":0", "EXISTS", "k"),
		},
	}
	names := make([]string, 0, len(scripts))
	for name := range scripts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, proto := range []int{2, 3} {
		ts := startServer(t, Config{})
		for _, name := range names {
			t.Run(fmt.Sprintf("resp%d/%s", proto, name), func(t *testing.T) {
				c := ts.client(t, &redis.Options{Protocol: proto})
				if err := c.FlushAll(ctx()).Err(); err != nil && engine.Lookup([]byte("flushall")) != nil {
					t.Fatal(err)
				}
				runSteps(t, c, scripts[name])
			})
		}
	}
}

// Keys expire on time whether or not they are read again.
func TestExpiryLazyAndActive(t *testing.T) {
	for _, name := range []string{"pexpire", "dbsize", "set"} {
		if engine.Lookup([]byte(name)) == nil {
			t.Skipf("the engine has no %s yet", name)
		}
	}
	ts := startServer(t, Config{})
	c := ts.client(t, nil)
	c.Set(ctx(), "lazy", "v", 50*time.Millisecond)
	const n = 500
	if _, err := c.Pipelined(ctx(), func(p redis.Pipeliner) error {
		for i := 0; i < n; i++ {
			p.Set(ctx(), "active:"+strconv.Itoa(i), "v", 50*time.Millisecond)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := c.Get(ctx(), "lazy").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("expired key still readable: %v", err)
	}
	// Never read again, the others must still leave: poll DBSIZE.
	deadline := time.Now().Add(20 * time.Second)
	for {
		size, err := c.DBSize(ctx()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if size == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d expired keys still in the keyspace after 20s: active expiry does not run", size)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SCAN MATCH prefix* returns every matching key, in one call when COUNT
// covers them.
func TestScanPrefix(t *testing.T) {
	if engine.Lookup([]byte("scan")) == nil {
		t.Skip("the engine has no SCAN yet")
	}
	ts := startServer(t, Config{})
	c := ts.client(t, nil)
	if _, err := c.Pipelined(ctx(), func(p redis.Pipeliner) error {
		for i := 0; i < 5000; i++ {
			p.Set(ctx(), fmt.Sprintf("other:%d", i), "v", 0)
			if i < 1000 {
				p.Set(ctx(), fmt.Sprintf("user:42:%d", i), "v", 0)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	keys, cursor, err := c.Scan(ctx(), 0, "user:42:*", 1000).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1000 {
		t.Fatalf("got %d keys (cursor %d), want 1000", len(keys), cursor)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if !strings.HasPrefix(k, "user:42:") || seen[k] {
			t.Fatalf("bad or duplicate key %q", k)
		}
		seen[k] = true
	}
	// A full iteration with a small COUNT sees every key exactly once.
	all := map[string]int{}
	for cur := uint64(0); ; {
		ks, next, err := c.Scan(ctx(), cur, "", 100).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			all[k]++
		}
		if next == 0 {
			break
		}
		cur = next
	}
	if len(all) != 6000 {
		t.Fatalf("full scan saw %d keys, want 6000", len(all))
	}
	for k, n := range all {
		if n != 1 {
			t.Fatalf("%q returned %d times", k, n)
		}
	}
}
