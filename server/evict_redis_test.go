package server

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
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

// policyOutcome is what one server's first evictions under a policy took.
type policyOutcome struct {
	evicted    int // evicted_keys
	hot, cold  int // hot and cold keys among the first evictionsCompared
	persistent int // keys without a TTL among all evictions
	// Mean TTL rank (the key's number: its TTL rises with it) of the
	// first evictionsCompared evicted TTL keys, and of the others.
	rankFirst, rankRest float64
}

// evictionsCompared is how many of each server's first evictions (in
// the order of their "evicted" events) are compared.
const evictionsCompared = 120

// TestEvictionPoliciesMatchRedis runs each evicting policy side by side
// with Redis on the same commands: 200 cold keys and 50 hot ones (read
// a second later under LRU, read 100 times under LFU), under the
// volatile policies each with a TTL rising with its number, next to 100
// keys without one; then the limit drops by about 150 keys' worth (as
// each server counts a key) and a write makes both evict. The choices
// are random on both sides, and the two count memory differently, so the
// first evictionsCompared evictions (their "evicted" events, in order)
// are compared, not the keys: LRU and LFU take no more hot keys than
// Redis does (plus a small margin), volatile policies never take a key
// without a TTL, volatile-ttl takes the nearest deadlines first, as
// Redis does.
func TestEvictionPoliciesMatchRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a second per LRU policy (the LRU clock counts seconds)")
	}
	redisAddr, _ := startRedis(t)
	ts := startServer(t, Config{})
	type server struct {
		name      string
		c, sub    *rawConn
		usedField string
	}
	servers := []server{{"redis", dialRaw(t, redisAddr), dialRaw(t, redisAddr), "used_memory"},
		{"keel", ts.raw(t), ts.raw(t), "used_memory_evict"}}
	info := func(s server, field string) int64 {
		out := s.c.do("info", "all")
		i := strings.Index(out, field+":")
		if i < 0 {
			t.Fatalf("%s: INFO has no %s", s.name, field)
		}
		v := out[i+len(field)+1:]
		n, _ := strconv.ParseInt(v[:strings.IndexByte(v, '\r')], 10, 64)
		return n
	}
	for _, s := range servers {
		if r := s.c.do("config", "set", "notify-keyspace-events", "Ee"); r != "+OK" {
			t.Fatal(r)
		}
		if r := s.sub.do("subscribe", "__keyevent@0__:evicted"); !strings.HasPrefix(r, "*[$subscribe") {
			t.Fatal(r)
		}
	}
	val := strings.Repeat("v", 1000)
	for _, policy := range []string{"allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"} {
		volatile := strings.HasPrefix(policy, "volatile")
		outcomes := map[string]policyOutcome{}
		perKey := map[string]int64{} // what one key costs each server
		for _, s := range servers {
			for _, cmd := range [][]string{{"flushall"}, {"config", "set", "maxmemory", "0"}, {"config", "set", "maxmemory-policy", policy}, {"config", "resetstat"}} {
				if r := s.c.do(cmd...); r != "+OK" {
					t.Fatalf("%s: %q: %s", s.name, cmd, r)
				}
			}
			usedEmpty := info(s, s.usedField)
			set := func(key string, ttl int) {
				args := []string{"set", key, val}
				if volatile {
					args = append(args, "ex", strconv.Itoa(ttl))
				}
				if r := s.c.do(args...); r != "+OK" {
					t.Fatalf("%s: SET %s: %s", s.name, key, r)
				}
			}
			for i := range 200 {
				set(fmt.Sprintf("c:%03d", i), 10000+i)
			}
			for i := range 50 {
				set(fmt.Sprintf("h:%03d", i), 20000+i)
			}
			loaded := 250
			if volatile {
				loaded += 100
				for i := range 100 {
					if r := s.c.do("set", fmt.Sprintf("p:%03d", i), val); r != "+OK" {
						t.Fatal(r)
					}
				}
			}
			perKey[s.name] = (info(s, s.usedField) - usedEmpty) / int64(loaded)
		}
		if strings.HasSuffix(policy, "-lru") {
			time.Sleep(1100 * time.Millisecond) // the cold keys' idle time reaches a second
		}
		for _, s := range servers {
			reads := 1
			if strings.HasSuffix(policy, "-lfu") {
				reads = 100
			}
			for range reads {
				for i := range 50 {
					s.c.do("get", fmt.Sprintf("h:%03d", i))
				}
			}
			limit := info(s, s.usedField) - 150*perKey[s.name]
			if r := s.c.do("config", "set", "maxmemory", strconv.FormatInt(limit, 10)); r != "+OK" {
				t.Fatal(r)
			}
			if r := s.c.do("set", "trigger", "x"); r != "+OK" {
				t.Fatalf("%s %s: SET after lowering the limit: %s", s.name, policy, r)
			}
			// Redis evicts within its time limit and goes on in a timer;
			// keel within its key bound and goes on on ticks.
			for deadline := time.Now().Add(5 * time.Second); info(s, s.usedField) > limit && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			var o policyOutcome
			o.evicted = int(info(s, "evicted_keys"))
			var rankFirst, rankRest, nFirst, nRest float64
			for i := range o.evicted {
				msg := s.sub.reply()
				key, ok := strings.CutPrefix(msg, "*[$message $__keyevent@0__:evicted $")
				if !ok {
					t.Fatalf("%s: event %q", s.name, msg)
				}
				key = strings.TrimSuffix(key, "]")
				var n int
				switch {
				case strings.HasPrefix(key, "p:"):
					o.persistent++
					continue
				case strings.HasPrefix(key, "h:"):
					n, _ = strconv.Atoi(key[2:])
					n += 200
					if i < evictionsCompared {
						o.hot++
					}
				case strings.HasPrefix(key, "c:"):
					n, _ = strconv.Atoi(key[2:])
					if i < evictionsCompared {
						o.cold++
					}
				}
				if i < evictionsCompared {
					rankFirst, nFirst = rankFirst+float64(n), nFirst+1
				} else {
					rankRest, nRest = rankRest+float64(n), nRest+1
				}
			}
			o.rankFirst, o.rankRest = rankFirst/max(nFirst, 1), rankRest/max(nRest, 1)
			outcomes[s.name] = o
			t.Logf("%s %s (%d B a key): evicted %d; of the first %d: %d hot, %d cold; without TTL %d; mean TTL rank of the first %.0f, of the rest %.0f",
				policy, s.name, perKey[s.name], o.evicted, evictionsCompared, o.hot, o.cold, o.persistent, o.rankFirst, o.rankRest)
		}
		r, k := outcomes["redis"], outcomes["keel"]
		if k.evicted < evictionsCompared || r.evicted < evictionsCompared {
			t.Fatalf("%s: evicted keel %d, Redis %d: fewer than the %d compared", policy, k.evicted, r.evicted, evictionsCompared)
		}
		if volatile && (k.persistent != 0 || r.persistent != 0) {
			t.Errorf("%s: keys without a TTL evicted: keel %d, Redis %d", policy, k.persistent, r.persistent)
		}
		if strings.HasSuffix(policy, "-lru") || strings.HasSuffix(policy, "-lfu") {
			if k.hot > r.hot+3 {
				t.Errorf("%s: of the first %d evictions keel took %d hot keys, Redis %d", policy, evictionsCompared, k.hot, r.hot)
			}
		}
		if strings.HasSuffix(policy, "-random") && (k.hot == 0 || r.hot == 0) {
			t.Errorf("%s: a random policy took no hot key among %d (keel %d, Redis %d)", policy, evictionsCompared, k.hot, r.hot)
		}
		if policy == "volatile-ttl" && !(k.rankFirst < k.rankRest && r.rankFirst < r.rankRest) {
			t.Errorf("volatile-ttl: mean TTL rank of the first evictions and the rest: keel %.0f/%.0f, Redis %.0f/%.0f",
				k.rankFirst, k.rankRest, r.rankFirst, r.rankRest)
		}
	}
}

// FCALL above maxmemory with nothing to evict: keel's functions declare
// no flags, so every FCALL is refused with the plain OOM error, as Redis
// refuses a function without no-writes (checked against redis-server
// 7.0.15 with a Lua library); FCALL_RO runs.
func TestFcallUnderOOM(t *testing.T) {
	ts := startServer(t, Config{})
	rc := ts.raw(t)
	for _, lib := range []string{"counter", "transfer"} {
		if r := rc.do("function", "load", functionPayload(t, lib)); r != "$"+lib {
			t.Fatalf("FUNCTION LOAD %s: %s", lib, r)
		}
	}
	if r := rc.do("set", "acct:b", "4"); r != "+OK" {
		t.Fatal(r)
	}
	if r := rc.do("config", "set", "maxmemory", "1"); r != "+OK" {
		t.Fatal(r)
	}
	if r := rc.do("fcall", "incr_by", "1", "c", "5"); r != "-OOM command not allowed when used memory > 'maxmemory'." {
		t.Errorf("FCALL incr_by under OOM: %s", r)
	}
	if r := rc.do("fcall_ro", "balance", "1", "acct:b"); r != ":4" {
		t.Errorf("FCALL_RO balance under OOM: %s", r)
	}
	if r := rc.do("exists", "c"); r != ":0" {
		t.Errorf("the refused FCALL wrote: EXISTS c = %s", r)
	}
	if r := rc.do("config", "set", "maxmemory", "0"); r != "+OK" {
		t.Fatal(r)
	}
	if r := rc.do("fcall", "incr_by", "1", "c", "5"); r != ":5" {
		t.Errorf("FCALL incr_by without a limit: %s", r)
	}
}
