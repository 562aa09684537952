//go:build !linux

package server

import "errors"

// Event loops are Linux's (epoll); elsewhere every connection has a
// goroutine of its own.

const loopsSupported = false

type eventLoop struct{}

func newEventLoop(*Server) (*eventLoop, error) { return nil, errNoLoops }
func (*eventLoop) enroll(*conn) bool           { return false }
func (*eventLoop) run()                        {}
func (*eventLoop) close()                      {}
func (*eventLoop) complete(*loopBatch)         {}
func (*conn) readFD([]byte) (int, error)       { return 0, errNoLoops }
func (*conn) writeFD([]byte) (int, error)      { return 0, errNoLoops }
func (*conn) killFD()                          {}

var errNoLoops = errors.New("server: no event loops on this platform")
