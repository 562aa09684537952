package main

import (
	"fmt"

	"github.com/cockroachdb/errors"
	"github.com/keel-db/keel/bench/internal/harness"
)

// loadBatchKeys is how many SETs are in flight per round trip when loading.
const loadBatchKeys = 1000

// loadKeys writes n keys named fmt.Sprintf(pattern, i), each with its own
// valueBytes-byte value (valueFor), in pipelined batches, and checks every
// reply.
func loadKeys(c *harness.Conn, pattern string, first, n, valueBytes int) error {
	set := []byte("SET")
	value := make([]byte, valueBytes)
	for start := first; start < first+n; start += loadBatchKeys {
		end := min(start+loadBatchKeys, first+n)
		for i := start; i < end; i++ {
			valueFor(uint64(i), value)
			c.Send(set, []byte(fmt.Sprintf(pattern, i)), value)
		}
		if err := c.Flush(); err != nil {
			return err
		}
		for i := start; i < end; i++ {
			r, err := c.Read()
			if err != nil {
				return errors.Wrapf(err, "SET key %d", i)
			}
			if r.Str != "OK" {
				return errors.Newf("SET key %d: unexpected reply %+v", i, r)
			}
		}
	}
	return nil
}

// valueFor fills buf with printable pseudo-random bytes derived from seed
// (splitmix64). Values differ per key and do not compress, so neither
// system gains from LZF in RDB files or from sharing equal values.
func valueFor(seed uint64, buf []byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	x := seed
	for i := range buf {
		if i%8 == 0 {
			x += 0x9e3779b97f4a7c15
			z := x
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
			z = (z ^ (z >> 27)) * 0x94d049bb133111eb
			x = z ^ (z >> 31)
		}
		buf[i] = alphabet[(x>>(6*(i%8)))&63]
	}
}
