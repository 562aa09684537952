package node

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/engine"
)

func (h *aclNode) info(s *Session, field string) int64 {
	h.t.Helper()
	out := h.do(s, "INFO", "all")
	i := strings.Index(out, field+":")
	if i < 0 {
		h.t.Fatalf("INFO has no %s", field)
	}
	v := out[i+len(field)+1:]
	v = v[:strings.IndexAny(v, "\r\n\\")]
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		h.t.Fatalf("INFO %s: %q", field, v)
	}
	return n
}

// Evictions go through the log: the keyspace a node recovers from its
// log after evicting is the one it had, key for key; with the leader
// deleting in place instead (EvictionUnlogged), recovery brings the
// evicted keys back, which is how the test would fail.
func TestEvictionLoggedAndReplayed(t *testing.T) {
	for _, unlogged := range []bool{false, true} {
		t.Run("unlogged="+strconv.FormatBool(unlogged), func(t *testing.T) {
			fs := disk.NewMemFS()
			cfg := Config{MaxMemory: 40 << 10, MaxMemoryPolicy: engine.AllKeysLRU}
			if unlogged {
				cfg.Knobs = &TestingKnobs{EvictionUnlogged: true}
			}
			h := newACLNode(t, cfg, fs)
			s := h.n.NewSession(nil)
			val := strings.Repeat("v", 1000)
			for i := range 200 {
				h.expect(s, "OK", "SET", fmt.Sprintf("k%03d", i), val)
			}
			evicted, used := h.info(s, "evicted_keys"), h.info(s, "used_memory_evict")
			if evicted < 150 {
				t.Fatalf("evicted_keys %d after 200 SETs of 1 KB under a 40 KB limit", evicted)
			}
			if used > 40<<10+2000 {
				t.Fatalf("used_memory_evict %d, over maxmemory by more than one value", used)
			}
			before := h.do(s, "KEYS", "*")
			h.expect(s, "OK", "CONFIG", "RESETSTAT")
			if n := h.info(s, "evicted_keys"); n != 0 {
				t.Fatalf("evicted_keys %d after CONFIG RESETSTAT", n)
			}
			h.close()
			h = newACLNode(t, Config{MaxMemory: 40 << 10, MaxMemoryPolicy: engine.AllKeysLRU}, fs)
			s = h.n.NewSession(nil)
			after := h.do(s, "KEYS", "*")
			defer h.close()
			if unlogged {
				if after == before {
					t.Fatal("the unlogged evictions were not undone by recovery: the test cannot tell")
				}
				return
			}
			if after != before {
				t.Fatalf("recovered keys %s, had %s", after, before)
			}
		})
	}
}

// noeviction (or nothing the policy may take): the commands that need
// memory are refused with Redis's error, in their place in a pipeline,
// and change nothing; the others run. MULTI refuses to queue; an EXEC
// whose block needs memory is discarded.
func TestOOMRefusals(t *testing.T) {
	h := newACLNode(t, Config{MaxMemory: 20 << 10}, nil)
	defer h.close()
	s := h.n.NewSession(nil)
	val := strings.Repeat("v", 1000)
	i := 0
	for ; i < 100; i++ {
		if r := h.do(s, "SET", fmt.Sprintf("k%03d", i), val); r != "OK" {
			if r != "(error) "+ErrMsgOOM {
				t.Fatalf("SET k%03d: %s", i, r)
			}
			break
		}
	}
	if i == 100 || i < 10 {
		t.Fatalf("%d SETs of 1 KB before OOM under 20 KB", i)
	}
	oom := "(error) " + ErrMsgOOM
	got := h.run(s, []string{"GET", "k000"}, []string{"APPEND", "k000", "x"}, []string{"STRLEN", "k000"}, []string{"INCR", "n"}, []string{"EXISTS", "n"})
	want := []string{`"` + val + `"`, oom, "(integer) 1000", oom, "(integer) 0"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("pipeline: got %q, want %q", got, want)
	}
	h.expect(s, "OK", "MULTI")
	h.expect(s, oom, "GET", "k000")
	h.expect(s, "(error) EXECABORT Transaction discarded because of previous errors.", "EXEC")
	// volatile-lru with no key holding a TTL: nothing to evict either.
	h.expect(s, "OK", "CONFIG", "SET", "maxmemory-policy", "volatile-lru")
	h.expect(s, oom, "SET", "x", "y")
	// The limit crossed after queuing.
	h.expect(s, "OK", "CONFIG", "SET", "maxmemory", "0")
	h.expect(s, "OK", "MULTI")
	h.expect(s, "QUEUED", "SET", "x", "y")
	h.expect(h.n.NewSession(nil), "OK", "CONFIG", "SET", "maxmemory", "20k")
	h.expect(s, "(error) "+errMsgExecOOM, "EXEC")
	h.expect(s, "(integer) 0", "EXISTS", "x")
	// DEL frees room: writes run again.
	h.expect(s, "(integer) 10", "DEL", "k000", "k001", "k002", "k003", "k004", "k005", "k006", "k007", "k008", "k009")
	h.expect(s, "OK", "SET", "x", "y")
	if n := h.info(s, "evicted_keys"); n != 0 {
		t.Fatalf("evicted_keys %d without an evicting policy", n)
	}
}

// Lowering maxmemory online evicts down to it on the ticks, each tick a
// bounded batch; writes meanwhile are not refused.
func TestLoweredLimitEvictsOnTicks(t *testing.T) {
	h := newACLNode(t, Config{MaxMemoryPolicy: engine.AllKeysRandom}, nil)
	defer h.close()
	s := h.n.NewSession(nil)
	val := strings.Repeat("v", 100)
	const keys = 5000
	for i := 0; i < keys; i += 500 {
		var cmds [][]string
		for j := i; j < i+500; j++ {
			cmds = append(cmds, []string{"SET", "k" + strconv.Itoa(j), val})
		}
		h.run(s, cmds...)
	}
	h.expect(s, "OK", "CONFIG", "SET", "maxmemory", "100000")
	ticks := 0
	for ; h.info(s, "used_memory_evict") > 100000; ticks++ {
		before := h.info(s, "evicted_keys")
		h.n.Tick(1, int64(h.n.clock.Now()))
		if n := h.info(s, "evicted_keys") - before; n > evictTickKeysMax || n <= 0 {
			t.Fatalf("tick %d evicted %d keys (bound %d)", ticks, n, evictTickKeysMax)
		}
		if ticks > keys/evictTickKeysMax+2 {
			t.Fatal("still over the limit")
		}
	}
	if ticks < 2 {
		t.Fatalf("evicted down to the limit in %d ticks: the per-tick bound did not apply", ticks)
	}
	h.expect(s, "OK", "SET", "x", "y")
}

func TestKeysPerBatch(t *testing.T) {
	for _, c := range []struct{ tenacity, keys int }{{0, 16}, {1, 16}, {10, 100}, {20, 404}, {30, 1024}, {100, 1024}} {
		if got := keysPerBatch(c.tenacity); got != c.keys {
			t.Errorf("tenacity %d: %d keys per batch, want %d", c.tenacity, got, c.keys)
		}
	}
}
