//go:build linux

package server

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
)

// gateFS holds every file write while its gate is locked: a replica whose
// log cannot be written does not acknowledge appends, so its leader's
// writes wait for their commit as long as the test likes.
type gateFS struct {
	disk.FS
	gate *sync.RWMutex
}

type gateFile struct {
	disk.File
	gate *sync.RWMutex
}

func (f gateFile) Write(p []byte) (int, error) {
	f.gate.RLock()
	defer f.gate.RUnlock()
	return f.File.Write(p)
}

func (fs gateFS) Create(name string) (disk.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return gateFile{f, fs.gate}, nil
}

func (fs gateFS) OpenAppend(name string) (disk.File, error) {
	f, err := fs.FS.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return gateFile{f, fs.gate}, nil
}

// A replicated group's clients are served by the event loop too: each
// pipeline's replies come back whole and in order, and the connections
// stay in the loop.
func TestLoopClusterServesClients(t *testing.T) {
	tc := newTestCluster(t, 3)
	lead := tc.leader()
	srv := tc.srvs[lead].srv
	if len(srv.loops) != 1 {
		t.Fatalf("%d event loops in cluster mode, want 1", len(srv.loops))
	}
	const conns, rounds = 4, 50
	cs := make([]*rawConn, conns)
	for i := range cs {
		cs[i] = tc.raw(lead)
	}
	waitInLoops(t, srv, conns)
	var wg sync.WaitGroup
	errs := make(chan string, conns)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := "k" + strconv.Itoa(i)
			var b strings.Builder
			for r := range rounds {
				b.WriteString(cmd("SET", k, strconv.Itoa(r)))
				b.WriteString(cmd("GET", k))
				b.WriteString(cmd("INCR", "n{"+k+"}"))
			}
			c.send(b.String())
			for r := range rounds {
				for _, want := range []string{"+OK", "$" + strconv.Itoa(r), ":" + strconv.Itoa(r+1)} {
					if got := c.reply(); got != want {
						errs <- k + ": reply " + got + ", want " + want
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if got := srv.inLoops(); got != conns {
		t.Fatalf("%d connections in the loop after their pipelines, want %d", got, conns)
	}
}

// A connection whose batch waits for its commit is not read from until
// the batch is answered; what it sends meanwhile neither makes the loop
// spin (level-triggered readiness on a socket the loop does not read)
// nor jumps ahead of the batch.
func TestLoopClusterInputWhileInFlight(t *testing.T) {
	tc, lead, hold, release := gatedCluster(t)
	srv := tc.srvs[lead].srv
	c := tc.raw(lead)
	if got := c.do("SET", "a", "1"); got != "+OK" {
		t.Fatal(got)
	}
	waitInLoops(t, srv, 1)
	hold()
	c.send(cmd("SET", "k", "v"))
	time.Sleep(50 * time.Millisecond) // in flight: the followers cannot append
	c.send(cmd("GET", "k"))
	time.Sleep(50 * time.Millisecond)
	l := srv.loops[0]
	before := l.turns.Load()
	time.Sleep(300 * time.Millisecond)
	if n := l.turns.Load() - before; n > 20 {
		t.Fatalf("the loop took %d turns in 300 ms with a connection in flight: it spins", n)
	}
	if got := srv.inLoops(); got != 1 {
		t.Fatalf("%d connections in the loop, want 1", got)
	}
	release()
	for _, want := range []string{"+OK", "$v"} {
		if got := c.reply(); got != want {
			t.Fatalf("reply %q, want %q", got, want)
		}
	}
	if got := c.do("GET", "k"); got != "$v" {
		t.Fatalf("GET k = %q", got)
	}
	waitInLoops(t, srv, 1)
}

// A pipeline whose commands belong to two groups runs as two steps: the
// loop submits the first, and the second, which the loop cannot wait
// for, goes to the connection's own goroutine with the rest of the batch.
// Every command is answered once, in order.
func TestLoopClusterStepsOfTwoGroups(t *testing.T) {
	tc := newTestClusterGroups(t, 3, 2)
	tc.waitGroupLeaders(false)
	split := cluster.SplitSlots(2)
	keyOf := func(g int) string {
		for i := 0; ; i++ {
			k := "k" + strconv.Itoa(i)
			if split[g][0].Contains(cluster.KeySlot([]byte(k))) {
				return k
			}
		}
	}
	k1, k2 := keyOf(0), keyOf(1)
	srv := tc.srvs[0].srv
	c := tc.raw(0)
	if got := c.do("PING"); got != "+PONG" {
		t.Fatal(got)
	}
	waitInLoops(t, srv, 1)
	c.send(cmd("SET", k1, "1") + cmd("SET", k2, "2") + cmd("GET", k1) + cmd("GET", k2))
	for i, want := range []string{"+OK", "+OK", "$1", "$2"} {
		got := c.reply()
		if got != want && !strings.HasPrefix(got, "-MOVED ") {
			t.Fatalf("reply %d: %q, want %q or a redirect", i, got, want)
		}
	}
	if got := c.do("PING"); got != "+PONG" {
		t.Fatal(got)
	}
	waitInLoops(t, srv, 0) // its second step took it out of the loop
}

// A connection's idle timeout counts from its last interaction, as in
// Redis and on a connection's own goroutine (whose read deadline is set
// after the replies are written): a batch that waited in flight longer
// than the timeout for its commit does not make the loop close the
// connection as idle right after its reply.
func TestLoopClusterIdleAfterLongFlight(t *testing.T) {
	tc, lead, hold, release := gatedCluster(t)
	srv := tc.srvs[lead].srv
	c := tc.raw(lead)
	if got := c.do("CONFIG", "SET", "timeout", "1"); got != "+OK" {
		t.Fatal(got)
	}
	waitInLoops(t, srv, 1)
	hold()
	c.send(cmd("SET", "k", "v"))
	time.Sleep(1500 * time.Millisecond) // in flight past the timeout
	release()
	// The hold is longer than an election timeout, so the leader may
	// have stepped down (CheckQuorum) and answered that the write's
	// outcome is unknown; either way the batch was answered now.
	if got := c.reply(); got != "+OK" && got != "-"+cluster.ErrMsgLeaderLost {
		t.Fatalf("SET: %q", got)
	}
	// Well within the timeout from the reply, and past a sweep or two:
	// the connection must still be open (PING is the session's own).
	time.Sleep(300 * time.Millisecond)
	if got := c.do("PING"); got != "+PONG" {
		t.Fatalf("PING after a long commit = %q, want +PONG (closed as idle?)", got)
	}
}

// gatedCluster is a 3-node cluster whose followers' log writes wait while
// hold is in effect, so that the leader's batches stay in flight; release
// undoes hold (also at the end of the test).
func gatedCluster(t *testing.T) (tc *testCluster, lead int, hold, release func()) {
	gates := make([]sync.RWMutex, 3)
	tc = &testCluster{t: t, dir: t.TempDir(), fs: func(i int, g uint64) disk.FS {
		return gateFS{FS: disk.OS(), gate: &gates[i]}
	}}
	tc.startAll(3)
	lead = tc.leader()
	held := false
	hold = func() {
		for i := range gates {
			if i != lead {
				gates[i].Lock()
			}
		}
		held = true
	}
	release = func() {
		if held {
			held = false
			for i := range gates {
				if i != lead {
					gates[i].Unlock()
				}
			}
		}
	}
	t.Cleanup(release) // before the servers stop (cleanups run last first)
	return tc, lead, hold, release
}

// CLIENT KILL of a connection whose batch is in flight closes it once the
// batch is answered; the loop's other connection goes on, and the write
// the killed client sent is applied (it was committed).
func TestLoopClusterKillInFlight(t *testing.T) {
	tc, lead, hold, release := gatedCluster(t)
	srv := tc.srvs[lead].srv
	c, k := tc.raw(lead), tc.raw(lead)
	id := strings.TrimPrefix(c.do("CLIENT", "ID"), ":")
	if got := k.do("PING"); got != "+PONG" {
		t.Fatal(got)
	}
	waitInLoops(t, srv, 2)
	hold()
	c.send(cmd("SET", "k", "v"))
	time.Sleep(50 * time.Millisecond) // in flight
	c.send(cmd("GET", "k"))           // its socket signals: out of epoll
	time.Sleep(50 * time.Millisecond)
	if got := k.do("CLIENT", "KILL", "ID", id); got != ":1" {
		t.Fatalf("CLIENT KILL ID %s = %q", id, got)
	}
	release()
	if !closesSoon(c) {
		t.Fatal("the killed connection stays open")
	}
	if got := k.do("GET", "k"); got != "$v" {
		t.Fatalf("GET k = %q", got)
	}
	waitInLoops(t, srv, 1)
}

// Close with batches in flight that will not commit (the followers do not
// write) hands them back to the loop abandoned: Close returns and the
// clients' connections close, whether or not their sockets had signalled.
func TestLoopClusterCloseInFlight(t *testing.T) {
	tc, lead, hold, _ := gatedCluster(t)
	srv := tc.srvs[lead].srv
	c1, c2 := tc.raw(lead), tc.raw(lead)
	for _, c := range []*rawConn{c1, c2} {
		if got := c.do("PING"); got != "+PONG" {
			t.Fatal(got)
		}
	}
	waitInLoops(t, srv, 2)
	hold()
	c1.send(cmd("SET", "k1", "v"))
	c2.send(cmd("SET", "k2", "v"))
	time.Sleep(50 * time.Millisecond) // in flight
	c2.send(cmd("GET", "k2"))         // c2's socket signals: out of epoll
	time.Sleep(50 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close does not return with batches in flight")
	}
	for i, c := range []*rawConn{c1, c2} {
		if !closesSoon(c) {
			t.Fatalf("connection %d stays open after Close", i+1)
		}
	}
	if got := srv.inLoops(); got != 0 {
		t.Fatalf("%d connections in the loop after Close", got)
	}
}
