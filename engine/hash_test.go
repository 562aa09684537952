package engine

import (
	"fmt"
	"strings"
	"testing"
)

// manyArgs returns " prefix0 val0 prefix1 val1 ..." for building long
// command lines.
func manyArgs(n int, format string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteByte(' ')
		b.WriteString(strings.ReplaceAll(format, "%d", fmt.Sprint(i)))
	}
	return b.String()
}

func TestHashCompare(t *testing.T) {
	big := "HSET big" + manyArgs(600, "f%d v%d")
	runCompare(t, map[string]string{
		"basic": `
			HSET h a 1 b 2 c 3
			HSET h a 10 d 4
			HGET h a
			HGET h nope
			HGET nokey a
			HMGET h a nope d
			HMGET nokey a b
			HLEN h
			HLEN nokey
			HSTRLEN h a
			HSTRLEN h nope
			HSTRLEN nokey a
			HEXISTS h a
			HEXISTS h nope
			HEXISTS nokey a
			HGETALL h
			HKEYS h
			HVALS h
			HGETALL nokey
			HKEYS nokey
			OBJECT ENCODING h
			TYPE h
			HDEL h a nope
			HDEL h a
			HDEL nokey a
			HGETALL h
			HDEL h b c d
			EXISTS h
			HMSET m x 1 y 2
			HGETALL m
			HSETNX m x 9
			HSETNX m z 9
			HSETNX newkey f v
			HGETALL m
			HGETALL newkey
		`,
		"errors": `
			HSET h a
			HSET h a 1 b
			HMSET h a
			HSET
			HGET h
			HDEL h
			HLEN
			SET s v
			HSET s a 1
			HGET s a
			HMGET s a
			HDEL s a
			HLEN s
			HGETALL s
			HKEYS s
			HVALS s
			HEXISTS s a
			HSTRLEN s a
			HSETNX s a 1
			HINCRBY s a 1
			HINCRBYFLOAT s a 1
			HRANDFIELD s
			HRANDFIELD s 2
			HSCAN s 0
			HSET h a 1
			GET h
			INCR h
			APPEND h x
		`,
		"incr": `
			HINCRBY h n 5
			HINCRBY h n -7
			HINCRBY h n abc
			HINCRBY h n 1.5
			HINCRBY h n 9223372036854775807
			HSET h n 9223372036854775800
			HINCRBY h n 7
			HINCRBY h n 8
			HSET h s hello
			HINCRBY h s 1
			HSET h sp " 1"
			HINCRBY h sp 1
			HINCRBYFLOAT h f 1.5
			HINCRBYFLOAT h f 0.1
			HINCRBYFLOAT h f 10.5
			HINCRBYFLOAT h f abc
			HINCRBYFLOAT h f inf
			HINCRBYFLOAT h f -inf
			HINCRBYFLOAT h f 1e5000
			HINCRBYFLOAT h s 1
			HSET h i inf
			HINCRBYFLOAT h i 1
			HINCRBYFLOAT h n 1
			HINCRBYFLOAT h n2 3.0e3
			HINCRBYFLOAT h n2 -3000
			HGETALL h
			HINCRBY fresh f 1
			HINCRBYFLOAT fresh2 f 2.5
			HGETALL fresh
			HGETALL fresh2
		`,
		"encoding": `
			HSET h a 1
			OBJECT ENCODING h
			HSET h long "` + strings.Repeat("x", 64) + `"
			OBJECT ENCODING h
			HSET h longer "` + strings.Repeat("x", 65) + `"
			OBJECT ENCODING h
			HSET h2 "` + strings.Repeat("k", 65) + `" v
			OBJECT ENCODING h2
			HSETNX h3 a 1
			HSETNX h3 a "` + strings.Repeat("x", 65) + `"
			OBJECT ENCODING h3
			HINCRBY h4 "` + strings.Repeat("k", 65) + `" 1
			OBJECT ENCODING h4
			` + "HSET h5" + manyArgs(512, "f%d v") + `
			OBJECT ENCODING h5
			HSET h5 one more
			OBJECT ENCODING h5
			HDEL h5 one` + manyArgs(511, "f%d") + `
			OBJECT ENCODING h5
			HGETALL h5
		`,
		"large": big + `
			HLEN big
			HGET big f550
			HMGET big f0 f599 nope
			HEXISTS big f42
			HSTRLEN big f7
			pairs: HGETALL big
			sort: HKEYS big
			sort: HVALS big
			HDEL big f0 f1 f2 nope
			HLEN big
			HSET big f3 new nf new
			HGET big f3
			HINCRBY big cnt 3
			HINCRBYFLOAT big fl 1.25
			pairs: HGETALL big
			OBJECT ENCODING big
		`,
		"randfield": `
			HRANDFIELD nokey
			HRANDFIELD nokey 3
			HRANDFIELD nokey -3 WITHVALUES
			HSET h a 1 b 2 c 3
			HRANDFIELD h 0
			HRANDFIELD h 3
			HRANDFIELD h 10
			HRANDFIELD h 10 WITHVALUES
			resp3: HRANDFIELD h 10 WITHVALUES
			skip: HRANDFIELD h 1 withvalues
			HRANDFIELD h 1 2
			HRANDFIELD h 1 WITHVALUES x
			HRANDFIELD h abc
			HRANDFIELD h -9223372036854775808
			HRANDFIELD h -9223372036854775807 WITHVALUES
			HRANDFIELD h 4611686018427387904 WITHVALUES
			skip: HRANDFIELD h
			skip: HRANDFIELD h -5
			skip: HRANDFIELD h 2 WITHVALUES
		`,
		"scan": `
			HSCAN nokey 0
			HSCAN h abc
			HSET h a 1 b 2 ab 3
			HSCAN h 0
			HSCAN h 0 MATCH a*
			HSCAN h 0 COUNT 1
			HSCAN h 0 COUNT 0
			HSCAN h 0 COUNT x
			HSCAN h 0 TYPE string
			HSCAN h 0 MATCH
			HSCAN h 123
		`,
		"resp3": `
			HSET h a 1 b 2
			resp3: HGETALL h
			resp3: HGETALL nokey
			resp3: HKEYS h
			resp3: HMGET h a x
			resp3: HGET h x
		`,
	})
}

// TestHashScanLarge walks a tree-backed hash with HSCAN in small steps:
// every field comes back exactly once, with its value.
func TestHashScanLarge(t *testing.T) {
	db := newTestDB()
	const n = 1000
	for i := 0; i < n; i++ {
		exec(db, 1, "HSET", "h", fmt.Sprintf("field:%d", i), fmt.Sprintf("v%d", i))
	}
	seen := map[string]string{}
	cursor := "0"
	for calls := 0; ; calls++ {
		if calls > n {
			t.Fatal("scan does not finish")
		}
		var r cmpRecorder
		db.Exec(1, [][]byte{[]byte("HSCAN"), []byte("h"), []byte(cursor), []byte("COUNT"), []byte("7")}, &r)
		toks := strings.Fields(strings.NewReplacer("[", " ", "]", " ").Replace(r.String()))
		cursor = strings.Trim(toks[0], `"`)
		for i := 1; i+1 < len(toks); i += 2 {
			f, v := strings.Trim(toks[i], `"`), strings.Trim(toks[i+1], `"`)
			if _, dup := seen[f]; dup {
				t.Fatalf("field %s returned twice", f)
			}
			seen[f] = v
		}
		if cursor == "0" {
			break
		}
	}
	if len(seen) != n {
		t.Fatalf("scan returned %d fields, want %d", len(seen), n)
	}
	for f, v := range seen {
		if "v"+strings.TrimPrefix(f, "field:") != v {
			t.Fatalf("field %s has value %s", f, v)
		}
	}
}
