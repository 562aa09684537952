package server

import (
	"sync"
	"time"
)

// pauseGate is where connections held by CLIENT PAUSE wait: the node
// calls changed (node.Node.OnPause) when a pause starts, grows or ends,
// which wakes every waiter to try its command again.
type pauseGate struct {
	mu sync.Mutex
	ch chan struct{} // closed and replaced on every change
}

func (p *pauseGate) changed() {
	p.mu.Lock()
	if p.ch != nil {
		close(p.ch)
	}
	p.ch = make(chan struct{})
	p.mu.Unlock()
}

func (p *pauseGate) signal() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch == nil {
		p.ch = make(chan struct{})
	}
	return p.ch
}

// pauseWait blocks until the node's clock reaches until, the pause
// changes, or the server stops; false when it stops.
func (c *conn) pauseWait(until int64) bool {
	s := c.srv
	ch := s.pause.signal()
	d := time.Duration(until - s.clock.Now())
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ch:
	case <-s.shutdown:
		return false
	}
	return true
}
