// Package resp is keel's codec for the Redis protocol (RESP2 and RESP3):
// Reader parses the commands a client sends (multibulk and inline, with
// redis.conf's limits on sizes and buffers), Writer encodes replies (it is
// the engine.Writer every command writes to), and ParseReply / ReadReply
// decode replies the way a client does (the simulator's clients and the
// tests use them).
//
// The production runtime (server/) reads sockets through a Reader and
// writes each batch's Writer bytes with one write(2); the simulator feeds
// the same Reader from its simulated connections, so a command takes the
// same path through the codec in both worlds.
//
// It does no I/O of its own beyond the io.Reader it is given, starts no
// goroutines and reads no clock.
//
// May import: nothing of keel.
package resp
