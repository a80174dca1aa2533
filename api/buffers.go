package api

import "sync"

// maxPooledBuffer is the largest buffer kept for reuse; a larger one (a
// big export page, an 8 MiB batch) goes to the garbage collector.
const maxPooledBuffer = 1 << 20

// bufferPool reuses the buffers that request bodies are read into and
// response pages are built in. A fresh buffer per request, grown by
// append to a 40 KB page, cost a node about a fifth of its CPU serving
// session pages (runtime.growslice and the page faults of zeroing new
// memory in a pprof CPU profile).
type bufferPool struct{ p sync.Pool }

// get returns an empty buffer.
func (bp *bufferPool) get() *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 4096)
	return &b
}

// put gives b back; nothing may use it afterwards.
func (bp *bufferPool) put(b *[]byte) {
	if cap(*b) > maxPooledBuffer {
		return
	}
	*b = (*b)[:0]
	bp.p.Put(b)
}
