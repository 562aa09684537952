package engine

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
)

// memScenarios are the memory comparisons of docs/engine.md: a million
// elements in one collection of each type, and a million small
// collections, written as Redis would receive them (the same shapes as
// the redis-server side of the comparison).
var memScenarios = []struct {
	name  string
	n     int // elements (big) or keys (small)
	build func(db *DB, n int)
}{
	{"biglist", 1_000_000, func(db *DB, n int) {
		bulk(db, n, "RPUSH", "biglist", func(i int) []string { return []string{"value:" + strconv.Itoa(i)} })
	}},
	{"bigset", 1_000_000, func(db *DB, n int) {
		bulk(db, n, "SADD", "bigset", func(i int) []string { return []string{"member:" + strconv.Itoa(i)} })
	}},
	{"bigintset", 1_000_000, func(db *DB, n int) {
		bulk(db, n, "SADD", "bigintset", func(i int) []string { return []string{strconv.Itoa(i)} })
	}},
	{"bighash", 1_000_000, func(db *DB, n int) {
		bulk(db, n, "HSET", "bighash", func(i int) []string {
			return []string{"field:" + strconv.Itoa(i), "value:" + strconv.Itoa(i)}
		})
	}},
	{"bigzset", 1_000_000, func(db *DB, n int) {
		bulk(db, n, "ZADD", "bigzset", func(i int) []string { return []string{strconv.Itoa(i), "member:" + strconv.Itoa(i)} })
	}},
	{"smallhash", 1_000_000, func(db *DB, n int) {
		for i := 0; i < n; i++ {
			s := strconv.Itoa(i)
			exec(db, 1, "HSET", "h:"+s, "name", "user"+s, "email", "u"+s+"@x.io", "age", strconv.Itoa(i%90), "city", "paris", "plan", "free")
		}
	}},
	{"smallset", 1_000_000, func(db *DB, n int) {
		for i := 0; i < n; i++ {
			exec(db, 1, "SADD", "s:"+strconv.Itoa(i), "red", "green", "blue", "tag"+strconv.Itoa(i%100), "x")
		}
	}},
	{"smallintset", 1_000_000, func(db *DB, n int) {
		for i := 0; i < n; i++ {
			exec(db, 1, "SADD", "i:"+strconv.Itoa(i), "1", "2", "3", strconv.Itoa(i%1000), "42")
		}
	}},
	{"smalllist", 1_000_000, func(db *DB, n int) {
		for i := 0; i < n; i++ {
			s := strconv.Itoa(i)
			exec(db, 1, "RPUSH", "l:"+s, "a"+s, "b", "c", "d", "e")
		}
	}},
	{"smallzset", 1_000_000, func(db *DB, n int) {
		for i := 0; i < n; i++ {
			exec(db, 1, "ZADD", "z:"+strconv.Itoa(i), "1", "one", "2", "two", "3", "three", "4.5", "four", strconv.Itoa(i%100), "five")
		}
	}},
}

// bulk adds n elements to key, 1000 per command.
func bulk(db *DB, n int, cmd, key string, elem func(i int) []string) {
	for i := 0; i < n; i += 1000 {
		args := []string{cmd, key}
		for j := i; j < min(n, i+1000); j++ {
			args = append(args, elem(j)...)
		}
		exec(db, 1, args...)
	}
}

// BenchmarkCollectionMemory reports, per element (big collections) or per
// key (small ones), the live heap the engine holds after a GC and what
// UsedBytes (INFO's used_memory_dataset) counts.
//
//	go test -run '^$' -bench CollectionMemory -benchtime 1x ./engine
func BenchmarkCollectionMemory(b *testing.B) {
	for _, sc := range memScenarios {
		b.Run(sc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				db := newTestDB()
				sc.build(db, sc.n)
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(sc.n), "heap-B/elem")
				b.ReportMetric(float64(db.UsedBytes())/float64(sc.n), "used-B/elem")
				runtime.KeepAlive(db)
			}
		})
	}
}

// BenchmarkListPushPop, BenchmarkSetAdd...: the collection hot paths,
// per operation, for allocation counts and relative speed.
func BenchmarkCollectionOps(b *testing.B) {
	big := newTestDB()
	bulk(big, 100_000, "RPUSH", "l", func(i int) []string { return []string{"value:" + strconv.Itoa(i)} })
	bulk(big, 100_000, "SADD", "s", func(i int) []string { return []string{"member:" + strconv.Itoa(i)} })
	bulk(big, 100_000, "HSET", "h", func(i int) []string { return []string{"field:" + strconv.Itoa(i), "v"} })
	bulk(big, 100_000, "ZADD", "z", func(i int) []string { return []string{strconv.Itoa(i), "member:" + strconv.Itoa(i)} })
	exec(big, 1, "HSET", "hs", "a", "1", "b", "2", "c", "3")
	exec(big, 1, "SADD", "ss", "a", "b", "c")
	exec(big, 1, "ZADD", "zs", "1", "a", "2", "b")
	ops := []struct {
		name string
		argv [][]byte
		undo [][]byte
	}{
		{"LPUSH+LPOP/large", argvOf("LPUSH", "l", "x"), argvOf("LPOP", "l")},
		{"RPUSH+RPOP/large", argvOf("RPUSH", "l", "x"), argvOf("RPOP", "l")},
		{"LINDEX/large", argvOf("LINDEX", "l", "50000"), nil},
		{"LRANGE100/large", argvOf("LRANGE", "l", "0", "99"), nil},
		{"SADD+SREM/large", argvOf("SADD", "s", "x"), argvOf("SREM", "s", "x")},
		{"SISMEMBER/large", argvOf("SISMEMBER", "s", "member:4242"), nil},
		{"HSET/large", argvOf("HSET", "h", "field:4242", "v2"), nil},
		{"HGET/large", argvOf("HGET", "h", "field:4242"), nil},
		{"ZADD/large", argvOf("ZADD", "z", "7", "member:4242"), nil},
		{"ZADD update/large", argvOf("ZADD", "z", "8", "member:4243"), argvOf("ZADD", "z", "9", "member:4243")},
		{"SADD existing/large", argvOf("SADD", "s", "member:4242"), nil},
		{"ZSCORE/large", argvOf("ZSCORE", "z", "member:4242"), nil},
		{"ZRANK/large", argvOf("ZRANK", "z", "member:4242"), nil},
		{"HSET/small", argvOf("HSET", "hs", "b", "9"), nil},
		{"HGET/small", argvOf("HGET", "hs", "b"), nil},
		{"SADD+SREM/small", argvOf("SADD", "ss", "x"), argvOf("SREM", "ss", "x")},
		{"ZADD/small", argvOf("ZADD", "zs", "3", "b"), nil},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuNanos()
			for i := 0; i < b.N; i++ {
				big.Exec(1, op.argv, &sink)
				if op.undo != nil {
					big.Exec(1, op.undo, &sink)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

func argvOf(args ...string) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = []byte(a)
	}
	return out
}

// TestCollectionHotPathsDoNotAllocate: the pipelined collection commands
// redis-benchmark measures (issue 21), on collections past their compact
// encodings, allocate nothing once warm.
func TestCollectionHotPathsDoNotAllocate(t *testing.T) {
	db := newTestDB()
	const n = 5000
	bulk(db, n, "RPUSH", "l", func(i int) []string { return []string{"value:" + strconv.Itoa(i)} })
	bulk(db, n, "SADD", "s", func(i int) []string { return []string{"member:" + strconv.Itoa(i)} })
	bulk(db, n, "HSET", "h", func(i int) []string { return []string{"field:" + strconv.Itoa(i), "value:" + strconv.Itoa(i)} })
	bulk(db, n, "ZADD", "z", func(i int) []string { return []string{strconv.Itoa(i), "member:" + strconv.Itoa(i)} })
	for _, op := range []struct {
		name     string
		do, undo [][]byte
	}{
		{"LPUSH+LPOP", argvOf("LPUSH", "l", "x"), argvOf("LPOP", "l")},
		{"RPUSH+RPOP", argvOf("RPUSH", "l", "x"), argvOf("RPOP", "l")},
		{"LRANGE 0 99", argvOf("LRANGE", "l", "0", "99"), nil},
		{"SADD+SREM", argvOf("SADD", "s", "x"), argvOf("SREM", "s", "x")},
		{"SADD existing", argvOf("SADD", "s", "member:42"), nil},
		{"HSET overwrite", argvOf("HSET", "h", "field:42", "value:43"), argvOf("HSET", "h", "field:42", "value:4")},
		{"ZADD update", argvOf("ZADD", "z", "4242.5", "member:42"), argvOf("ZADD", "z", "42", "member:42")},
		{"ZADD new", argvOf("ZADD", "z", "1", "x"), argvOf("ZREM", "z", "x")},
	} {
		var d Discard
		run := func() {
			db.Exec(1, op.do, &d)
			if op.undo != nil {
				db.Exec(1, op.undo, &d)
			}
			if d.Err != "" {
				t.Fatalf("%s: %s", op.name, d.Err)
			}
		}
		run() // warm the scratch buffers
		if a := testing.AllocsPerRun(50, run); a != 0 {
			t.Errorf("%s: %.1f allocations", op.name, a)
		}
	}
	// The updates left every collection as it was.
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{"LLEN", "l"}, ":5000"},
		{[]string{"SCARD", "s"}, ":5000"},
		{[]string{"HGET", "h", "field:42"}, `"value:4"`},
		{[]string{"ZSCORE", "z", "member:42"}, ",42"},
		{[]string{"ZRANK", "z", "member:42"}, ":42"},
		{[]string{"ZCARD", "z"}, ":5000"},
	} {
		if got := fmt.Sprint(exec(db, 1, c.argv...)); got != c.want {
			t.Errorf("%v = %s, want %s", c.argv, got, c.want)
		}
	}
}
