package server

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-db/keel/cluster"
)

// twin is one client connection to keel and one to Redis, sent the same
// commands; replies are compared.
type twin struct {
	t           *testing.T
	keel, redis *rawConn
}

type twins struct {
	t                *testing.T
	keelTS           *testServer
	redisAddr        string
	ctlKeel, ctlRedi *rawConn
}

func (tw *twins) conn() *twin {
	r := (&testServer{addr: tw.redisAddr}).raw(tw.t)
	return &twin{t: tw.t, keel: tw.keelTS.raw(tw.t), redis: r}
}

func encode(args ...string) string {
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.String()
}

// send sends a command to both and reads nothing.
func (c *twin) send(args ...string) {
	c.t.Helper()
	c.keel.send(encode(args...))
	c.redis.send(encode(args...))
}

// read reads one reply from both and compares them.
func (c *twin) read(what string) string {
	c.t.Helper()
	k, r := c.keel.reply(), c.redis.reply()
	if k != r {
		c.t.Errorf("%s:\n keel:  %s\n redis: %s", what, k, r)
	}
	return k
}

func (c *twin) do(args ...string) string {
	c.t.Helper()
	c.send(args...)
	return c.read(strings.Join(args, " "))
}

// blocked waits until both servers report n blocked clients.
func (tw *twins) blocked(n int) {
	tw.t.Helper()
	tw.blockedT(tw.t, n)
}

func (tw *twins) blockedT(t *testing.T, n int) {
	t.Helper()
	for _, ctl := range []*rawConn{tw.ctlKeel, tw.ctlRedi} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			info := ctl.do("INFO", "clients")
			if strings.Contains(info, "blocked_clients:"+strconv.Itoa(n)+"\r\n") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("never %d blocked clients: %s", n, info)
			}
		}
	}
}

func startTwins(t *testing.T) *twins {
	addr, _ := startRedis(t)
	ks := startServer(t, Config{})
	return &twins{t: t, keelTS: ks, redisAddr: addr, ctlKeel: ks.raw(t), ctlRedi: (&testServer{addr: addr}).raw(t)}
}

// TestBlockingPopsAgainstRedis runs the blocking pops on keel and on a
// real Redis side by side: clients block, others push from plain
// commands, MULTI and pipelines, and each reply (what is served, to whom,
// in which order, timeouts, CLIENT UNBLOCK, errors) must be Redis's.
func TestBlockingPopsAgainstRedis(t *testing.T) {
	tw := startTwins(t)
	a, b, c := tw.conn(), tw.conn(), tw.conn()

	t.Run("served in the order clients blocked", func(t *testing.T) {
		a.send("BLPOP", "q1", "q2", "0")
		tw.blocked(1)
		b.send("BRPOP", "q2", "0")
		tw.blocked(2)
		c.do("RPUSH", "q2", "x", "y", "z")
		a.read("a's BLPOP")
		b.read("b's BRPOP")
		tw.blocked(0)
		c.do("LRANGE", "q2", "0", "-1")
		// One element for two waiters: the first served, the second waits.
		a.send("BLPOP", "q3", "0")
		tw.blocked(1)
		b.send("BLPOP", "q3", "0")
		tw.blocked(2)
		c.do("LPUSH", "q3", "one")
		a.read("first waiter")
		tw.blocked(1)
		c.do("LPUSH", "q3", "two")
		b.read("second waiter")
		c.do("EXISTS", "q3")
	})

	t.Run("timeouts", func(t *testing.T) {
		a.do("BLPOP", "nokey", "0.05")
		a.do("BZPOPMIN", "nokey", "0.05")
		a.do("BLMOVE", "nokey", "d", "LEFT", "LEFT", "0.05")
		a.do("BRPOPLPUSH", "nokey", "d", "0.05")
		a.do("BLMPOP", "0.05", "1", "nokey", "LEFT")
		a.do("BLPOP", "nokey", "-1")
		a.do("BLPOP", "nokey", "x")
		a.do("BLMPOP", "0", "0", "nokey", "LEFT")
	})

	t.Run("each command's reply", func(t *testing.T) {
		a.send("BRPOPLPUSH", "src", "dst", "0")
		tw.blocked(1)
		c.do("RPUSH", "src", "a", "b")
		a.read("BRPOPLPUSH")
		c.do("LRANGE", "dst", "0", "-1")
		a.send("BLMOVE", "e", "dst", "RIGHT", "LEFT", "0")
		tw.blocked(1)
		c.do("RPUSH", "e", "c")
		a.read("BLMOVE")
		c.do("LRANGE", "dst", "0", "-1")
		a.send("BLMPOP", "0", "2", "m1", "m2", "RIGHT", "COUNT", "5")
		tw.blocked(1)
		c.do("RPUSH", "m2", "1", "2", "3")
		a.read("BLMPOP")
		a.send("BZPOPMAX", "z1", "z2", "0")
		tw.blocked(1)
		c.do("ZADD", "z2", "1.5", "m", "3", "n")
		a.read("BZPOPMAX")
		a.send("BZMPOP", "0", "1", "z3", "MIN", "COUNT", "2")
		tw.blocked(1)
		c.do("ZADD", "z3", "1", "a", "2", "b", "3", "c")
		a.read("BZMPOP")
		a.keel.do("HELLO", "3") // server, version and id differ
		a.redis.do("HELLO", "3")
		a.send("BZPOPMIN", "z4", "0")
		tw.blocked(1)
		c.do("ZADD", "z4", "2.5", "q")
		a.read("BZPOPMIN in RESP3")
		a.do("BLPOP", "nokey", "0.05")
		a.keel.do("HELLO", "2")
		a.redis.do("HELLO", "2")
	})

	t.Run("woken by MULTI, inside MULTI never blocks", func(t *testing.T) {
		a.send("BLPOP", "mk", "0")
		tw.blocked(1)
		c.do("MULTI")
		c.do("RPUSH", "mk", "in-multi")
		c.do("LLEN", "mk")
		c.do("EXEC")
		a.read("woken by EXEC")
		c.do("MULTI")
		c.do("BLPOP", "mk", "0")
		c.do("BLMOVE", "mk", "x", "LEFT", "LEFT", "0")
		c.do("BZPOPMIN", "mk", "0")
		c.do("BLMPOP", "0", "1", "mk", "LEFT")
		c.do("EXEC")
	})

	t.Run("pipelined after a blocking command", func(t *testing.T) {
		a.keel.send(encode("BLPOP", "pk", "0") + encode("PING") + encode("LLEN", "pk"))
		a.redis.send(encode("BLPOP", "pk", "0") + encode("PING") + encode("LLEN", "pk"))
		tw.blocked(1)
		c.do("RPUSH", "pk", "p1", "p2")
		a.read("BLPOP")
		a.read("PING")
		a.read("LLEN")
	})

	t.Run("a key of another type keeps it waiting", func(t *testing.T) {
		a.send("BLPOP", "tk", "0")
		tw.blocked(1)
		c.do("SET", "tk", "string")
		c.do("DEL", "tk")
		c.do("ZADD", "tk", "1", "m")
		c.do("DEL", "tk")
		c.do("RPUSH", "tk", "finally")
		a.read("BLPOP")
	})

	t.Run("CLIENT UNBLOCK", func(t *testing.T) {
		ka, ra := a.keel.do("CLIENT", "ID"), a.redis.do("CLIENT", "ID")
		a.send("BLPOP", "uk", "0")
		tw.blocked(1)
		ck, cr := c.keel.do("CLIENT", "UNBLOCK", ka[1:]), c.redis.do("CLIENT", "UNBLOCK", ra[1:])
		if ck != cr {
			t.Errorf("CLIENT UNBLOCK: keel %s, redis %s", ck, cr)
		}
		a.read("unblocked with a timeout")
		a.send("BZPOPMIN", "uk", "0")
		tw.blocked(1)
		ck, cr = c.keel.do("CLIENT", "UNBLOCK", ka[1:], "error"), c.redis.do("CLIENT", "UNBLOCK", ra[1:], "error")
		if ck != cr {
			t.Errorf("CLIENT UNBLOCK ERROR: keel %s, redis %s", ck, cr)
		}
		a.read("unblocked with an error")
		ck, cr = c.keel.do("CLIENT", "UNBLOCK", ka[1:]), c.redis.do("CLIENT", "UNBLOCK", ra[1:])
		if ck != cr {
			t.Errorf("CLIENT UNBLOCK of a client not blocked: keel %s, redis %s", ck, cr)
		}
		c.do("CLIENT", "UNBLOCK", "abc")
		c.do("CLIENT", "UNBLOCK", "1", "later")
		tw.blocked(0)
	})

	t.Run("a closed connection stops waiting", func(t *testing.T) {
		gone := tw.conn()
		gone.send("BLPOP", "ck", "0")
		tw.blocked(1)
		b.send("BLPOP", "ck", "0")
		tw.blocked(2)
		gone.keel.conn.Close()
		gone.redis.conn.Close()
		tw.blocked(1)
		c.do("RPUSH", "ck", "v")
		b.read("the waiter behind the closed one")
		tw.blocked(0)
		c.do("LLEN", "ck")
	})
}

// TestBlockingPopsInCluster: in a three-node group a follower redirects a
// blocking pop as it redirects any write, keys of several slots are
// refused, the leader serves a client blocked on it when another pushes,
// and a client blocked on a leader that hands leadership over is answered
// -MOVED to the new one, as Redis Cluster answers a client blocked on a
// slot its node no longer serves.
func TestBlockingPopsInCluster(t *testing.T) {
	tc := newTestCluster(t, 3)
	lead := tc.leader()
	fol := (lead + 1) % 3
	if got := tc.raw(fol).do("BLPOP", "q", "0"); !strings.HasPrefix(got, "-MOVED ") || !strings.HasSuffix(got, " "+tc.srvs[lead].addr) {
		t.Errorf("BLPOP on a follower: %s, want -MOVED to %s", got, tc.srvs[lead].addr)
	}
	if got := tc.raw(lead).do("BLPOP", "a", "b", "0"); got != "-CROSSSLOT Keys in request don't hash to the same slot" {
		t.Errorf("BLPOP over two slots: %s", got)
	}
	blocked := tc.raw(lead)
	blocked.send(encode("BLPOP", "{t}a", "{t}b", "0"))
	waitBlocked := func(rc *rawConn, n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if strings.Contains(rc.do("INFO", "clients"), "blocked_clients:"+strconv.Itoa(n)+"\r\n") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("never %d blocked clients", n)
			}
		}
	}
	ctl := tc.raw(lead)
	waitBlocked(ctl, 1)
	if got := tc.raw(lead).do("RPUSH", "{t}b", "x", "y"); got != ":2" {
		t.Fatalf("RPUSH: %s", got)
	}
	if got := blocked.reply(); got != "*[${t}b $x]" {
		t.Errorf("served: %s", got)
	}
	// The pop went through the log: a follower reads what is left.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rc := tc.raw(fol)
		rc.do("READONLY")
		if got := rc.do("LRANGE", "{t}b", "0", "-1"); got == "*[$y]" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the follower holds %s, want [y]", got)
		}
	}

	blocked.send(encode("BZPOPMIN", "{t}z", "0"))
	waitBlocked(ctl, 1)
	to := uint64(fol + 1)
	tc.srvs[lead].srv.onReplica(0, func(r *cluster.Replica) { r.TransferLeadership(to) })
	if got := blocked.reply(); !strings.HasPrefix(got, "-MOVED ") || !strings.HasSuffix(got, " "+tc.srvs[fol].addr) {
		t.Errorf("blocked on a leader that stepped down: %s, want -MOVED to %s", got, tc.srvs[fol].addr)
	}
	waitBlocked(ctl, 0)
}
