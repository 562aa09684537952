//go:build unix

package transport

import (
	stdnet "net"
	"syscall"
)

// rawWriter is a connection Send may write to directly.
type rawWriter = syscall.RawConn

// rawOf returns conn's raw connection if it is plaintext TCP; nil (the
// sender goroutine writes everything) otherwise.
func rawOf(conn stdnet.Conn) rawWriter {
	tc, ok := conn.(*stdnet.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// writeNonblocking makes one write(2) of b to rc's socket, which Go keeps
// non-blocking, and returns what it took: a full socket (EAGAIN) or a
// signal is not an error, just fewer bytes.
func writeNonblocking(rc rawWriter, b []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), b)
		return true // never wait for the socket: that is the sender goroutine's job
	})
	if err != nil {
		return 0, err
	}
	if werr == syscall.EAGAIN || werr == syscall.EINTR {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	return n, nil
}
