package server

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/seam"
	"github.com/keel-db/keel/udf"
)

// serveHostile serves one in-memory group whose function host gets fuel
// calls, with the hostile library (testdata/functions/hostile.c) loaded.
func serveHostile(t *testing.T, fuel int64, cfg Config) *testServer {
	t.Helper()
	fcfg := udf.NewConfig()
	if fuel > 0 {
		fcfg = fcfg.WithFuel(fuel)
	}
	cfg.ReplicaOptions = func(uint64) cluster.Options {
		return cluster.Options{Rand: seam.NewRand(), Functions: &fcfg}
	}
	ts := serveOpen(t, cfg)
	c := ts.client(t, nil)
	if err := c.Do(ctx(), "FUNCTION", "LOAD", functionPayload(t, "hostile")).Err(); err != nil {
		t.Fatal(err)
	}
	return ts
}

// fcallAsync runs FCALL fn on its own connection and delivers its error.
func fcallAsync(t *testing.T, ts *testServer, fn string, keys ...string) <-chan error {
	c := ts.client(t, &redis.Options{ReadTimeout: -1, MaxRetries: -1})
	out := make(chan error, 1)
	args := []any{"FCALL", fn, len(keys)}
	for _, k := range keys {
		args = append(args, k)
	}
	go func() { out <- c.Do(ctx(), args...).Err() }()
	return out
}

// waitRunning waits until a function call runs on the server.
func waitRunning(t *testing.T, ts *testServer) {
	t.Helper()
	waitCall(t, ts, func(udf.CallInfo) bool { return true }, "no function call started")
}

// waitWrote waits until a running call has buffered a write, so that
// FUNCTION KILL meets an unkillable call rather than one that has not yet
// got to its write (which it would stop).
func waitWrote(t *testing.T, ts *testServer) {
	t.Helper()
	waitCall(t, ts, func(c udf.CallInfo) bool { return c.Wrote }, "no running function call wrote")
}

func waitCall(t *testing.T, ts *testServer, ok func(udf.CallInfo) bool, fail string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, g := range ts.srv.guards {
			for _, c := range g.Running() {
				if ok(c) {
					return
				}
			}
		}
	}
	t.Fatal(fail)
}

// The hostile loop of 64 KiB memory.fills, at the default fuel:
// each call ends with "out of fuel", and a client of the same group is
// answered in between. Times are logged, not asserted (they are
// benchmark figures; docs/functions.md): the assertions are the outcome.
func TestFillLoopIsStoppedAndOthersAreServed(t *testing.T) {
	ts := serveHostile(t, 0, Config{})
	other := ts.client(t, nil)
	const calls = 20
	done := make(chan struct{})
	var worst time.Duration
	var served int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			start := time.Now()
			if err := other.Set(ctx(), "k", i, 0).Err(); err != nil {
				t.Errorf("SET while functions run: %v", err)
				return
			}
			worst = max(worst, time.Since(start))
			served++
		}
	}()
	c := ts.client(t, nil)
	var slowest time.Duration
	for range calls {
		start := time.Now()
		err := c.Do(ctx(), "FCALL", "fill_loop", 0).Err()
		slowest = max(slowest, time.Since(start))
		if err == nil || !strings.Contains(err.Error(), "out of fuel") {
			t.Fatalf("FCALL fill_loop: %v, want the out-of-fuel error", err)
		}
	}
	close(done)
	wg.Wait()
	if served == 0 {
		t.Fatal("the other client was never answered while the calls ran")
	}
	t.Logf("fill_loop at the default fuel: slowest call %v; the other client: %d SETs answered, slowest %v", slowest, served, worst)
}

// A call that would run for ever (fuel far beyond any time, no wall-clock
// limit): past busy-reply-threshold its group answers -BUSY while
// connection commands are served; FUNCTION KILL stops it; the group
// serves again.
func TestFunctionKillAndBusy(t *testing.T) {
	ts := serveHostile(t, 1<<60, Config{BusyReplyThreshold: 100 * time.Millisecond, FunctionTimeLimit: -1})
	other := ts.client(t, nil)
	if got, err := other.Do(ctx(), "FUNCTION", "KILL").Result(); err == nil || err.Error() != udf.NotBusyMessage {
		t.Fatalf("FUNCTION KILL with nothing running: %v %v, want %q", got, err, udf.NotBusyMessage)
	}
	spin := fcallAsync(t, ts, "spin_ro")
	waitRunning(t, ts)
	var busyErr error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ts.srv.node.GroupBusy(1) {
			busyErr = other.Get(ctx(), "k").Err()
			break
		}
	}
	if busyErr == nil || busyErr.Error() != udf.BusyMessage {
		t.Fatalf("GET while a call runs past the threshold: %v, want %q", busyErr, udf.BusyMessage)
	}
	if err := other.Ping(ctx()).Err(); err != nil {
		t.Fatalf("PING while busy: %v", err)
	}
	if v, err := other.ConfigGet(ctx(), "busy-reply-threshold").Result(); err != nil || v["busy-reply-threshold"] != "100" {
		t.Fatalf("CONFIG GET while busy: %v %v", v, err)
	}
	select {
	case err := <-spin:
		t.Fatalf("the call ended on its own: %v", err)
	default:
	}
	if err := other.Do(ctx(), "FUNCTION", "KILL").Err(); err != nil {
		t.Fatalf("FUNCTION KILL: %v", err)
	}
	select {
	case err := <-spin:
		if err == nil || err.Error() != "ERR function 'spin_ro' killed: "+udf.ErrFunctionKill.Error() {
			t.Fatalf("the killed call answered %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("FUNCTION KILL did not stop the call")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := other.Set(ctx(), "k", "v", 0).Err()
		if err == nil {
			break
		}
		if err.Error() != udf.BusyMessage || time.Now().After(deadline) {
			t.Fatalf("SET after the kill: %v", err)
		}
	}
}

// A call that has written cannot be killed (Redis's UNKILLABLE), but
// function-time-limit stops it, and so does a shutdown; its write is
// never applied.
func TestFunctionThatWroteIsStoppedByTheTimeLimitAndByShutdown(t *testing.T) {
	t.Run("time limit", func(t *testing.T) {
		ts := serveHostile(t, 1<<60, Config{BusyReplyThreshold: time.Hour, FunctionTimeLimit: time.Hour})
		other := ts.client(t, nil)
		if err := other.ConfigSet(ctx(), "function-time-limit", "300").Err(); err != nil {
			t.Fatal(err)
		}
		spin := fcallAsync(t, ts, "write_spin", "w")
		waitWrote(t, ts)
		if err := other.Do(ctx(), "FUNCTION", "KILL").Err(); err == nil || err.Error() != udf.UnkillableMessage {
			t.Fatalf("FUNCTION KILL of a call that wrote: %v, want %q", err, udf.UnkillableMessage)
		}
		select {
		case err := <-spin:
			if err == nil || err.Error() != "ERR function 'write_spin' killed: ran longer than function-time-limit" {
				t.Fatalf("the call answered %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("function-time-limit did not stop the call")
		}
		if n, err := other.Exists(ctx(), "w").Result(); err != nil || n != 0 {
			t.Fatalf("EXISTS w after the stopped call: %d %v, want 0 (its write discarded)", n, err)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		ts := serveHostile(t, 1<<60, Config{FunctionTimeLimit: -1})
		spin := fcallAsync(t, ts, "write_spin", "w")
		waitRunning(t, ts)
		ts.srv.Shutdown() // what SIGTERM does
		select {
		case err := <-ts.done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
			ts.done <- nil // for the cleanup
		case <-time.After(30 * time.Second):
			t.Fatal("shutdown waited for a running function")
		}
		if err := <-spin; err == nil {
			t.Fatal("the stopped call answered OK")
		}
	})
}

// SHUTDOWN NOSAVE from a client is served while a call holds the group.
func TestShutdownCommandWhileAFunctionRuns(t *testing.T) {
	ts := serveHostile(t, 1<<60, Config{BusyReplyThreshold: -1, FunctionTimeLimit: -1}) // busy at once
	spin := fcallAsync(t, ts, "spin_ro")
	waitRunning(t, ts)
	other := ts.client(t, &redis.Options{MaxRetries: -1})
	if err := other.Do(ctx(), "SHUTDOWN", "NOSAVE").Err(); err == nil {
		t.Fatal("SHUTDOWN NOSAVE answered instead of closing the connection")
	}
	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		ts.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("SHUTDOWN NOSAVE waited for a running function")
	}
	<-spin
}
