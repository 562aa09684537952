package server

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// evictSide is one server of the maxmemory comparison: a client, an
// admin connection, a subscriber, and the INFO field maxmemory is
// compared with (Redis: used_memory; keel: used_memory_evict).
type evictSide struct {
	name         string
	a, admin     *rawConn
	sub          *rawConn
	usedField    string
	replies      []string
	lastEvicted  int64
	lastFreqRepl string
}

func (s *evictSide) info(field string) int64 {
	s.a.t.Helper()
	out := s.admin.do("info", "all")
	for _, line := range strings.Split(out, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				s.a.t.Fatalf("%s: INFO %s = %q", s.name, field, v)
			}
			return n
		}
	}
	s.a.t.Fatalf("%s: INFO has no %s", s.name, field)
	return 0
}

// fill sets the limit a little above what the server holds and writes
// 10 KB values until one is refused; it returns how many were stored.
func (s *evictSide) fill(t *testing.T) int {
	t.Helper()
	used := s.info(s.usedField)
	if r := s.admin.do("config", "set", "maxmemory", strconv.FormatInt(used+200<<10, 10)); r != "+OK" {
		t.Fatalf("%s: CONFIG SET maxmemory: %s", s.name, r)
	}
	val := strings.Repeat("v", 10000)
	for i := 0; i < 1000; i++ {
		r := s.a.do("set", fmt.Sprintf("k%03d", i), val)
		if strings.HasPrefix(r, "-OOM") {
			return i
		}
		if r != "+OK" {
			t.Fatalf("%s: SET k%03d: %s", s.name, i, r)
		}
	}
	t.Fatalf("%s: 1000 SETs of 10 KB and no OOM", s.name)
	return 0
}

// TestEvictionMatchesRedis runs the maxmemory paths side by side with a
// real Redis 7 and compares the replies: the OOM error of a denyoom
// command, of queuing in MULTI, of an EXEC whose block needs memory when
// the limit was crossed after queuing, a read-only EXEC that still runs,
// the CONFIG SET refusals, OBJECT FREQ / IDLETIME under each kind of
// policy, eviction under allkeys-lru with its evicted_keys count and
// its "evicted" keyspace event.
func TestEvictionMatchesRedis(t *testing.T) {
	redisAddr, _ := startRedis(t)
	ts := startServer(t, Config{})
	sides := []*evictSide{
		{name: "redis", a: dialRaw(t, redisAddr), admin: dialRaw(t, redisAddr), sub: dialRaw(t, redisAddr), usedField: "used_memory"},
		{name: "keel", a: ts.raw(t), admin: ts.raw(t), sub: ts.raw(t), usedField: "used_memory_evict"},
	}
	for _, s := range sides {
		if n := s.fill(t); n < 5 {
			t.Fatalf("%s: only %d values before OOM", s.name, n)
		}
		// Well over the limit: Redis's used memory moves with its
		// buffers (a refused SET's arguments are freed after it).
		if r := s.admin.do("config", "set", "maxmemory", strconv.FormatInt(s.info(s.usedField)-50000, 10)); r != "+OK" {
			t.Fatal(r)
		}
	}
	// Each step runs on both servers; its replies are compared.
	type step struct {
		conn string // "a" or "admin"
		args []string
	}
	setMax := func(v string) step { return step{"admin", []string{"config", "set", "maxmemory", v}} }
	a := func(args ...string) step { return step{"a", args} }
	steps := []step{
		a("set", "foo", "bar"),
		a("append", "k000", "x"),
		a("exists", "k000"),
		a("strlen", "k000"),
		a("object", "freq", "k000"),
		// Queuing anything while out of memory is refused and fails the block.
		a("multi"), a("get", "k000"), a("exec"),
		// The limit crossed after queuing: a block needing memory is
		// discarded, a read-only one runs.
		setMax("0"), a("multi"), a("set", "x", "y"), a("strlen", "k000"), setMax("1"), a("exec"),
		setMax("0"), a("multi"), a("strlen", "k000"), setMax("1"), a("exec"),
		a("set", "x", "y"),
		// The CONFIG SET refusals.
		setMax("0"),
		a("config", "set", "maxmemory-policy", "lru"),
		a("config", "set", "maxmemory-samples", "0"),
		a("config", "set", "maxmemory-samples", "65"),
		a("config", "get", "maxmemory-samples"),
		a("config", "set", "maxmemory-samples", "5"),
		a("config", "set", "maxmemory-eviction-tenacity", "101"),
		a("config", "set", "lfu-log-factor", "-1"),
		a("config", "set", "lfu-decay-time", "-1"),
		a("config", "set", "maxmemory", "-1"),
		a("config", "set", "maxmemory", "abc"),
		a("config", "get", "maxmemory-policy"),
		a("config", "set", "maxmemory-policy", "ALLKEYS-LFU"),
		a("config", "get", "maxmemory-policy"),
		a("object", "idletime", "k000"),
		a("config", "set", "maxmemory-policy", "volatile-lru"),
		a("object", "freq", "k000"),
		// volatile-lru with no key holding a TTL: nothing to evict.
		setMax("1"), a("set", "foo", "bar"),
	}
	for _, s := range sides {
		for _, st := range steps {
			c := s.a
			if st.conn == "admin" {
				c = s.admin
			}
			if st.conn == "admin" && st.args[0] == "config" && st.args[3] == "1" {
				// Back to a limit: the state before, whatever the server
				// holds (its used memory differs).
				st.args = []string{"config", "set", "maxmemory", strconv.FormatInt(s.info(s.usedField)-50000, 10)}
			}
			s.replies = append(s.replies, c.do(st.args...))
		}
	}
	for i, st := range steps {
		if r, k := sides[0].replies[i], sides[1].replies[i]; r != k {
			t.Errorf("%q: redis %.200q, keel %.200q", st.args, r, k)
		}
	}
	// Eviction: allkeys-lru frees room for the write, counts it, and
	// raises the "evicted" event.
	for _, s := range sides {
		if r := s.admin.do("config", "set", "notify-keyspace-events", "Ee"); r != "+OK" {
			t.Fatalf("%s: %s", s.name, r)
		}
		if r := s.sub.do("subscribe", "__keyevent@0__:evicted"); !strings.HasPrefix(r, "*[$subscribe") {
			t.Fatalf("%s: SUBSCRIBE: %s", s.name, r)
		}
		before := s.info("evicted_keys")
		// Redis evicts before any command once the policy allows it;
		// keel before a command that needs memory, and on its ticks.
		if r := s.admin.do("config", "set", "maxmemory-policy", "allkeys-lru"); r != "+OK" {
			t.Fatalf("%s: %s", s.name, r)
		}
		if r := s.a.do("set", "foo", "bar"); r != "+OK" {
			t.Errorf("%s: SET under allkeys-lru over the limit: %s", s.name, r)
		}
		if after := s.info("evicted_keys"); after <= before {
			t.Errorf("%s: evicted_keys %d then %d", s.name, before, after)
		}
		msg := s.sub.reply()
		if !strings.HasPrefix(msg, "*[$message $__keyevent@0__:evicted $k") {
			t.Errorf("%s: event %.100q", s.name, msg)
		}
		if used, limit := s.info(s.usedField), s.info("maxmemory"); used > limit+10000 {
			t.Errorf("%s: used %d over maxmemory %d after eviction", s.name, used, limit)
		}
	}
}
