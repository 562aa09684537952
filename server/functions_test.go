package server

import (
	"context"
	stdnet "net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/disk"
	"github.com/keel-db/keel/seam"
	"github.com/keel-db/keel/udf"
)

func functionPayload(t testing.TB, lib string) string {
	t.Helper()
	code, err := os.ReadFile(filepath.Join("..", "testdata", "functions", lib+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return string(udf.FormatPayload(lib, code))
}

// startDurable serves a replica with appendonly on dir; stop closes it.
func startDurable(t *testing.T, dir string) (addr string, stop func()) {
	t.Helper()
	r, err := cluster.Open(cluster.Options{FS: disk.OS(), Dir: dir, AppendOnly: true, Fsync: cluster.FsyncAlways, Rand: seam.NewRand()})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Config{Logf: t.Logf, Dir: dir}, r)
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Shutdown()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func wantErr(t *testing.T, err error, prefix string) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("error %v, want prefix %q", err, prefix)
	}
}

func TestFunctionsGoRedis(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, Config{})
	rdb := ts.client(t, nil)
	for _, lib := range []string{"counter", "transfer", "ratelimit", "spin", "hog", "trap_after_write"} {
		name, err := rdb.FunctionLoad(ctx, functionPayload(t, lib)).Result()
		if err != nil || name != lib {
			t.Fatalf("load %s: %q %v", lib, name, err)
		}
	}
	_, err := rdb.FunctionLoad(ctx, functionPayload(t, "counter")).Result()
	wantErr(t, err, "ERR Library 'counter' already exists")
	if _, err := rdb.FunctionLoadReplace(ctx, functionPayload(t, "counter")).Result(); err != nil {
		t.Fatal(err)
	}
	_, err = rdb.FunctionLoad(ctx, "#!wasm name=junk\nnot a module").Result()
	wantErr(t, err, "ERR")

	// counter
	if n, err := rdb.FCall(ctx, "incr_by", []string{"c"}, 5).Int64(); err != nil || n != 5 {
		t.Fatalf("incr_by: %d %v", n, err)
	}
	if n, err := rdb.FCall(ctx, "incr_by", []string{"c"}, -2).Int64(); err != nil || n != 3 {
		t.Fatalf("incr_by: %d %v", n, err)
	}
	// transfer, both outcomes
	rdb.Set(ctx, "acct:a", 10, 0)
	if n, err := rdb.FCall(ctx, "transfer", []string{"acct:a", "acct:b"}, 4).Int64(); err != nil || n != 1 {
		t.Fatalf("transfer: %d %v", n, err)
	}
	_, err = rdb.FCall(ctx, "transfer", []string{"acct:a", "acct:b"}, 7).Result()
	wantErr(t, err, "ERR insufficient funds")
	if v, _ := rdb.MGet(ctx, "acct:a", "acct:b").Result(); v[0] != "6" || v[1] != "4" {
		t.Fatalf("balances after refusal: %v", v)
	}
	if n, err := rdb.FCallRO(ctx, "balance", []string{"acct:b"}).Int64(); err != nil || n != 4 {
		t.Fatalf("balance: %d %v", n, err)
	}
	_, err = rdb.FCallRO(ctx, "incr_by", []string{"c"}, 1).Result()
	wantErr(t, err, "ERR Write commands are not allowed from read-only scripts.")
	_, err = rdb.FCall(ctx, "incr_by", []string{"c"}).Result()
	wantErr(t, err, "ERR")
	// ratelimit: capacity 2, so the third call in the same instant is refused
	var allowed []int64
	for i := 0; i < 3; i++ {
		v, err := rdb.FCall(ctx, "ratelimit", []string{"rl"}, 2, 1).Slice()
		if err != nil || len(v) != 2 {
			t.Fatalf("ratelimit: %v %v", v, err)
		}
		allowed = append(allowed, v[0].(int64))
	}
	if allowed[0] != 1 || allowed[1] != 1 || allowed[2] != 0 {
		t.Fatalf("ratelimit allowed %v", allowed)
	}
	if ttl, _ := rdb.PTTL(ctx, "rl").Result(); ttl <= 0 {
		t.Fatalf("ratelimit key has no TTL: %v", ttl)
	}

	// hostile guests: nothing changes, and others are served meanwhile
	before := keyspace(t, rdb)
	var wg sync.WaitGroup
	other := ts.client(t, nil)
	for _, c := range []struct{ fn, keys, want string }{
		{"spin", "", "ERR function 'spin' ran out of fuel"},
		{"hog", "", "ERR function 'hog' exceeded the memory limit"},
		{"trap_after_write", "c", "ERR"},
	} {
		var keys []string
		if c.keys != "" {
			keys = []string{c.keys}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if err := other.Ping(ctx).Err(); err != nil {
					t.Errorf("ping during %s: %v", c.fn, err)
				}
			}
		}()
		_, err := rdb.FCall(ctx, c.fn, keys).Result()
		wantErr(t, err, c.want)
		wg.Wait()
	}
	if after := keyspace(t, rdb); after != before {
		t.Fatalf("hostile guests changed the keyspace:\n%s\n%s", before, after)
	}

	// FUNCTION LIST / DUMP / DELETE / FLUSH / RESTORE / STATS
	libs, err := rdb.FunctionList(ctx, redis.FunctionListQuery{LibraryNamePattern: "tr*", WithCode: true}).Result()
	if err != nil || len(libs) != 2 || libs[0].Name != "transfer" || libs[1].Name != "trap_after_write" || libs[0].Code == "" || libs[0].Engine != "WASM" {
		t.Fatalf("list: %+v %v", libs, err)
	}
	if len(libs[0].Functions) != 2 || libs[0].Functions[0].Name != "balance" || libs[0].Functions[1].Name != "transfer" {
		t.Fatalf("transfer's functions: %+v", libs[0].Functions)
	}
	dump, err := rdb.FunctionDump(ctx).Result()
	if err != nil || dump == "" {
		t.Fatalf("dump: %v", err)
	}
	if err := rdb.FunctionDelete(ctx, "counter").Err(); err != nil {
		t.Fatal(err)
	}
	_, err = rdb.FCall(ctx, "incr_by", []string{"c"}, 1).Result()
	wantErr(t, err, "ERR Function not found")
	wantErr(t, rdb.FunctionDelete(ctx, "counter").Err(), "ERR Library not found")
	if err := rdb.FunctionFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if libs, _ := rdb.FunctionList(ctx, redis.FunctionListQuery{}).Result(); len(libs) != 0 {
		t.Fatalf("after flush: %+v", libs)
	}
	if err := rdb.FunctionRestore(ctx, dump).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.FCall(ctx, "incr_by", []string{"c"}, 1).Int64(); err != nil || n != 4 {
		t.Fatalf("after restore: %d %v", n, err)
	}
	wantErr(t, rdb.FunctionRestore(ctx, dump).Err(), "ERR Library")
	if err := rdb.Do(ctx, "FUNCTION", "RESTORE", dump, "REPLACE").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.FunctionStats(ctx).Result(); err != nil {
		t.Fatalf("stats: %v", err)
	}
}

// keyspace renders every key and value, for before/after comparisons.
func keyspace(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, k := range sortedStrings(keys) {
		v, _ := rdb.Get(ctx, k).Result()
		b.WriteString(k + "=" + v + "\n")
	}
	return b.String()
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// durableClient starts a server with appendonly on dir and a go-redis
// client to it; the func closes both (a test restarts on the same dir).
func durableClient(t *testing.T, dir string) (*redis.Client, func()) {
	addr, stop := startDurable(t, dir)
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	return c, func() { c.Close(); stop() }
}

// loadLibraries loads testdata/functions' libraries by name.
func loadLibraries(ctx context.Context, t *testing.T, rdb *redis.Client, libs ...string) {
	t.Helper()
	for _, lib := range libs {
		if err := rdb.FunctionLoad(ctx, functionPayload(t, lib)).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFunctionsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() (*redis.Client, func()) { return durableClient(t, dir) }
	rdb, stop := open()
	loadLibraries(ctx, t, rdb, "counter", "transfer")
	rdb.Set(ctx, "a", 10, 0)
	if err := rdb.FCall(ctx, "transfer", []string{"a", "b"}, 3).Err(); err != nil {
		t.Fatal(err)
	}
	stop()

	// Replayed from the log.
	rdb, stop = open()
	if v, _ := rdb.MGet(ctx, "a", "b").Result(); v[0] != "7" || v[1] != "3" {
		t.Fatalf("after log replay: %v", v)
	}
	if n, err := rdb.FCall(ctx, "incr_by", []string{"n"}, 2).Int64(); err != nil || n != 2 {
		t.Fatalf("after log replay: %d %v", n, err)
	}
	if err := rdb.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.FunctionDelete(ctx, "transfer").Err(); err != nil {
		t.Fatal(err)
	}
	stop()

	// From the snapshot plus the log after it.
	rdb, stop = open()
	defer stop()
	libs, err := rdb.FunctionList(ctx, redis.FunctionListQuery{}).Result()
	if err != nil || len(libs) != 1 || libs[0].Name != "counter" {
		t.Fatalf("after snapshot: %+v %v", libs, err)
	}
	if n, err := rdb.FCall(ctx, "incr_by", []string{"n"}, 2).Int64(); err != nil || n != 4 {
		t.Fatalf("after snapshot: %d %v", n, err)
	}
}
