package udf

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// Guest memories are recycled: without this every call allocates and
// zeroes a fresh linear memory through the Go heap (a large object each
// time, then swept and scavenged), which was most of a call's cost.
//
// What must stay true: a call never sees bytes of an earlier call. A
// buffer is cleared when its instance is freed, and bytes past a buffer's
// length are never written (a guest can only touch [0, len)), so every
// buffer handed out is all zeroes, exactly like a fresh one.
const (
	// memPoolBuffersMax bounds how many idle memories are kept.
	memPoolBuffersMax = 4
	// memPoolBufferBytesMax: larger memories are dropped, not kept, so a
	// single hog does not pin its 16 MiB.
	memPoolBufferBytesMax = 4 << 20
)

type memPool struct {
	mu   sync.Mutex // instances are closed on the calling goroutine; wazero may free from its own
	free [][]byte
	// peak is the largest linear memory handed out, in bytes (tests check
	// it never passes the limit). Written only by Reallocate, on the
	// call's goroutine.
	peak uint64
}

// Allocate implements experimental.MemoryAllocator.
func (p *memPool) Allocate(capacity, maxBytes uint64) experimental.LinearMemory {
	m := &pooledMemory{pool: p, max: maxBytes}
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		m.buf = p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
	}
	p.mu.Unlock()
	if m.buf == nil {
		m.buf = make([]byte, 0, min(max(capacity, 64<<10), maxBytes))
	}
	return m
}

type pooledMemory struct {
	pool *memPool
	buf  []byte
	max  uint64
}

// Reallocate implements experimental.LinearMemory.
func (m *pooledMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	m.pool.peak = max(m.pool.peak, size)
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size] // already zero past the old length
		return m.buf
	}
	nb := make([]byte, size, min(max(size, 2*uint64(cap(m.buf))), m.max))
	copy(nb, m.buf)
	m.buf = nb
	return m.buf
}

// Free implements experimental.LinearMemory.
func (m *pooledMemory) Free() {
	buf := m.buf
	m.buf = nil
	if buf == nil || cap(buf) > memPoolBufferBytesMax {
		return
	}
	clear(buf)
	buf = buf[:0]
	m.pool.mu.Lock()
	if len(m.pool.free) < memPoolBuffersMax {
		m.pool.free = append(m.pool.free, buf)
	}
	m.pool.mu.Unlock()
}
