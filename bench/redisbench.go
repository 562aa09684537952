package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/keel-db/keel/bench/internal/harness"
)

// benchTest is one workload of the comparison.
type benchTest struct {
	name string // the --tests name and the table label
	// args are what follows the common flags on the redis-benchmark command
	// line: either "-t x" for a built-in test or a custom command.
	args []string
	// probe is one command that must succeed on a system before its numbers
	// are trusted: redis-benchmark counts error replies as replies, so a
	// server answering "-ERR unknown command" would otherwise look fast.
	probe []string
	// multiKey marks MSET and MGET, which touch mgetKeys keys per request.
	multiKey bool
	// collection marks the collection tests, left out of the default run.
	collection bool
	// row is the CSV row to read when redis-benchmark prints several
	// (empty: it prints one).
	row string
}

// mgetKeys is the number of keys in MGET, matching redis-benchmark's MSET
// test, which always sets 10 keys.
const mgetKeys = 10

func mgetArgs() []string {
	args := []string{"MGET"}
	for i := 0; i < mgetKeys; i++ {
		args = append(args, "key:__rand_int__")
	}
	return args
}

// allTests is the comparison's workload list in the order it runs: GET and
// MGET follow SET so they mostly hit keys that exist.
var allTests = []benchTest{
	{name: "SET", args: []string{"-t", "set"}, probe: []string{"SET", "key:probe", "v"}},
	{name: "GET", args: []string{"-t", "get"}, probe: []string{"GET", "key:probe"}},
	{name: "INCR", args: []string{"-t", "incr"}, probe: []string{"INCR", "counter:probe"}},
	{name: "MSET", args: []string{"-t", "mset"}, probe: []string{"MSET", "key:probe", "v", "key:probe2", "w"}, multiKey: true},
	{name: "MGET", args: mgetArgs(), probe: []string{"MGET", "key:probe", "key:probe2"}, multiKey: true},
	// The collection tests (issue 21), redis-benchmark's own; run them
	// with --tests collections (or by name). LPOP/RPOP/SPOP/ZPOPMIN pop
	// what the pushes before them left, so they run after them.
	{name: "LPUSH", args: []string{"-t", "lpush"}, probe: []string{"LPUSH", "list:probe", "v"}, collection: true},
	{name: "RPUSH", args: []string{"-t", "rpush"}, probe: []string{"RPUSH", "list:probe", "v"}, collection: true},
	{name: "LPOP", args: []string{"-t", "lpop"}, probe: []string{"LPOP", "list:probe"}, collection: true},
	{name: "RPOP", args: []string{"-t", "rpop"}, probe: []string{"RPOP", "list:probe"}, collection: true},
	{name: "SADD", args: []string{"-t", "sadd"}, probe: []string{"SADD", "set:probe", "m"}, collection: true},
	{name: "HSET", args: []string{"-t", "hset"}, probe: []string{"HSET", "hash:probe", "f", "v"}, collection: true},
	{name: "SPOP", args: []string{"-t", "spop"}, probe: []string{"SPOP", "set:probe"}, collection: true},
	{name: "ZADD", args: []string{"-t", "zadd"}, probe: []string{"ZADD", "zset:probe", "1", "m"}, collection: true},
	{name: "ZPOPMIN", args: []string{"-t", "zpopmin"}, probe: []string{"ZPOPMIN", "zset:probe"}, collection: true},
	// lrange_100 makes redis-benchmark fill its list first (an LPUSH
	// row): row names the one measured.
	{name: "LRANGE_100", args: []string{"-t", "lrange_100"}, probe: []string{"LRANGE", "list:probe", "0", "99"}, collection: true, row: "LRANGE_100 (first 100 elements)"},
}

// benchParams are the redis-benchmark settings common to every test.
type benchParams struct {
	clients   int
	dataBytes int
	keyspace  int
	requests  int
	pipeline  int
}

func (p benchParams) args(port int) []string {
	return []string{
		"-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-c", strconv.Itoa(p.clients), "-n", strconv.Itoa(p.requests),
		"-d", strconv.Itoa(p.dataBytes), "-r", strconv.Itoa(p.keyspace),
		"-P", strconv.Itoa(p.pipeline),
	}
}

// runRedisBenchmark runs one test against one server and parses its CSV.
func runRedisBenchmark(ctx context.Context, bin string, port int, p benchParams, t benchTest) (harness.Result, error) {
	return harness.RunRedisBenchmarkRow(ctx, bin, append(p.args(port), t.args...), t.row)
}

// requestsFor scales the request count with the pipeline depth so that a
// pipelined run lasts about as long as an unpipelined one (a run of a
// fraction of a second measures mostly start-up and noise). Pipelining
// gains multi-key commands (10 keys each) only about 2×, not 8×, so their
// pipelined runs get a quarter of that.
func requestsFor(base, pipeline int, t benchTest) int {
	scale := max(1, pipeline/2)
	if t.multiKey && pipeline > 1 {
		return max(base, base*scale/4)
	}
	return base * scale
}

func (t benchTest) String() string { return fmt.Sprintf("%s(%s)", t.name, strings.Join(t.args, " ")) }
