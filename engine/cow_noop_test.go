package engine

import (
	"strconv"
	"testing"
)

// TestNoOpWritesUnderViewKeepTheKey: a write that changes nothing in a
// large collection (SADD of a member already there, HSET of the same
// value, ZADD of the same score) while a View is alive must leave the key
// reading its own nodes after the View is gone and its nodes are reused.
func TestNoOpWritesUnderViewKeepTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, fill string
		noop       []string
		check      []string
		want       string
	}{
		{"sadd", "SADD", []string{"SADD", "k", "m:42"}, []string{"SISMEMBER", "k", "m:4000"}, ":1"},
		{"hset", "HSET", []string{"HSET", "k", "m:42", "v"}, []string{"HGET", "k", "m:4000"}, `"v"`},
		{"zadd", "ZADD", []string{"ZADD", "k", "42", "m:42"}, []string{"ZSCORE", "k", "m:4000"}, ",4000"},
		{"srem", "SADD", []string{"SREM", "k", "absent"}, []string{"SISMEMBER", "k", "m:4000"}, ":1"},
		{"hdel", "HSET", []string{"HDEL", "k", "absent"}, []string{"HGET", "k", "m:4000"}, `"v"`},
		{"zrem", "ZADD", []string{"ZREM", "k", "absent"}, []string{"ZSCORE", "k", "m:4000"}, ",4000"},
		{"zadd nx", "ZADD", []string{"ZADD", "k", "NX", "7", "m:42"}, []string{"ZSCORE", "k", "m:4000"}, ",4000"},
		{"zadd xx", "ZADD", []string{"ZADD", "k", "XX", "42", "m:42"}, []string{"ZSCORE", "k", "m:4000"}, ",4000"},
		{"smove", "SADD", []string{"SMOVE", "k", "k", "m:42"}, []string{"SISMEMBER", "k", "m:4000"}, ":1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := newTestDB()
			bulk(db, 5000, tc.fill, "k", func(i int) []string {
				s := strconv.Itoa(i)
				switch tc.fill {
				case "HSET":
					return []string{"m:" + s, "v"}
				case "ZADD":
					return []string{s, "m:" + s}
				}
				return []string{"m:" + s}
			})
			db.modCount++
			v := db.View()
			if got := exec(db, 1, tc.noop...); got != ":0" && got != ":1" {
				t.Fatalf("%v = %s", tc.noop, got)
			}
			v.Release()
			db.modCount++
			db.reclaim()
			// Reuse the freed cells.
			bulk(db, 5000, "RPUSH", "other", func(i int) []string { return []string{"x" + strconv.Itoa(i)} })
			if got := exec(db, 1, tc.check...); got != tc.want {
				t.Fatalf("%v = %s, want %s", tc.check, got, tc.want)
			}
			if got := exec(db, 1, "EXISTS", "k"); got != ":1" {
				t.Fatalf("EXISTS = %s", got)
			}
		})
	}
}
