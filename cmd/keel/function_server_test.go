package main

import (
	"bytes"
	"context"
	stdnet "net"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/seam"
	"github.com/keel-db/keel/server"
)

// TestFunctionCommandAgainstServer runs `keel function` against the real
// server rather than a stand-in.
func TestFunctionCommandAgainstServer(t *testing.T) {
	r, err := cluster.Open(cluster.Options{Rand: seam.NewRand()})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{Logf: t.Logf}, r)
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		srv.Shutdown()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	port := strconv.Itoa(ln.Addr().(*stdnet.TCPAddr).Port)
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := functionMain(append(args, "--port", port), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run("load", "--name", "counter", "../../testdata/functions/counter.wasm"); code != 0 {
		t.Fatalf("load: %d %s", code, out)
	}
	if code, out := run("load", "--name", "counter", "../../testdata/functions/counter.wasm"); code == 0 || !strings.Contains(out, "already exists") {
		t.Fatalf("second load: %d %s", code, out)
	}
	if code, out := run("load", "--name", "counter", "../../testdata/functions/counter.wasm", "--replace"); code != 0 {
		t.Fatalf("load --replace: %d %s", code, out)
	}
	if code, out := run("list"); code != 0 || !strings.Contains(out, "counter") || !strings.Contains(out, "incr_by") {
		t.Fatalf("list: %d %s", code, out)
	}
	rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), Protocol: 2})
	defer rdb.Close()
	if n, err := rdb.FCall(context.Background(), "incr_by", []string{"k"}, 7).Int64(); err != nil || n != 7 {
		t.Fatalf("FCALL after keel function load: %d %v", n, err)
	}
	if code, out := run("delete", "counter"); code != 0 {
		t.Fatalf("delete: %d %s", code, out)
	}
	if err := rdb.FCall(context.Background(), "incr_by", []string{"k"}, 7).Err(); err == nil || !strings.Contains(err.Error(), "Function not found") {
		t.Fatalf("FCALL after delete: %v", err)
	}
}
