//go:build !unix

package transport

import stdnet "net"

// rawWriter is a connection Send may write to directly: none here, so the
// sender goroutine writes everything.
type rawWriter = any

func rawOf(stdnet.Conn) rawWriter { return nil }

func writeNonblocking(rawWriter, []byte) (int, error) { return 0, nil }
