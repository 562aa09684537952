package engine

import (
	"testing"

	"pgregory.net/rapid"
)

// replyCounter checks the Writer contract: exactly one top-level reply,
// aggregates followed by exactly their elements.
type replyCounter struct {
	top     int
	pending []int
}

func (c *replyCounter) elem() {
	if len(c.pending) == 0 {
		c.top++
		return
	}
	for len(c.pending) > 0 {
		c.pending[len(c.pending)-1]--
		if c.pending[len(c.pending)-1] > 0 {
			return
		}
		c.pending = c.pending[:len(c.pending)-1]
	}
}

func (c *replyCounter) open(n int) {
	if n == 0 {
		c.elem()
		return
	}
	// A nested aggregate counts as its parent's element when it closes
	// (elem pops finished levels and decrements the parent then).
	if len(c.pending) == 0 {
		c.top++
	}
	c.pending = append(c.pending, n)
}

func (c *replyCounter) WriteSimple(string)     { c.elem() }
func (c *replyCounter) WriteError(string)      { c.elem() }
func (c *replyCounter) WriteInt(int64)         { c.elem() }
func (c *replyCounter) WriteBulk([]byte)       { c.elem() }
func (c *replyCounter) WriteBulkString(string) { c.elem() }
func (c *replyCounter) WriteNull()             { c.elem() }
func (c *replyCounter) WriteArray(n int)       { c.open(n) }
func (c *replyCounter) WriteNullArray()        { c.elem() }
func (c *replyCounter) WriteDouble(float64)    { c.elem() }
func (c *replyCounter) WriteMap(n int)         { c.open(2 * n) }
func (c *replyCounter) WriteSet(n int)         { c.open(n) }

// TestAnyArgs throws random arguments at every command: no panic, exactly
// one well-formed reply each time, and the indexes stay consistent.
func TestAnyArgs(t *testing.T) {
	var names []string
	for _, c := range Commands() {
		names = append(names, c.Name)
	}
	tokens := []string{
		"k", "k2", "user:1", "", "0", "1", "-1", "10", "1.5", "abc", "inf", "nan", "1e400",
		"9223372036854775807", "-9223372036854775808", "18446744073709551616", "536870911",
		"NX", "XX", "GT", "LT", "EX", "PX", "EXAT", "PXAT", "KEEPTTL", "GET", "PERSIST",
		"MATCH", "COUNT", "TYPE", "REPLACE", "DB", "SYNC", "ASYNC", "*", "[", "\\", "k*", "string",
	}
	rapid.Check(t, func(t *rapid.T) {
		db := newTestDB()
		now := int64(1_000_000)
		for i := rapid.IntRange(1, 60).Draw(t, "n"); i > 0; i-- {
			argv := [][]byte{[]byte(rapid.SampledFrom(names).Draw(t, "cmd"))}
			for j := rapid.IntRange(0, 6).Draw(t, "argc"); j > 0; j-- {
				argv = append(argv, []byte(rapid.SampledFrom(tokens).Draw(t, "arg")))
			}
			now += int64(rapid.IntRange(0, 2000).Draw(t, "dt"))
			var c replyCounter
			db.Exec(now, argv, &c)
			if c.top != 1 || len(c.pending) != 0 {
				t.Fatalf("%q: %d top-level replies, %d unfinished aggregates", argv, c.top, len(c.pending))
			}
			if rapid.IntRange(0, 9).Draw(t, "expire") == 0 {
				db.ActiveExpire(now, 10)
			}
		}
		checkWheel(t, db)
	})
}
